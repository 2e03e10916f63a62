//! The floor relay between the load generator and the built-in backend:
//! HTTP passes through unparsed, keep-alive and new connections alike, and
//! a half-close from the client reaches the backend.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringway_load::backend::{Backend, BackendConfig};
use ringway_load::client::{self, LoadConfig, Mode};
use ringway_load::floor::{Floor, FloorConfig};
use ringway_load::request::RequestSpec;
use ringway_load::runtime::DriverChoice;

fn start(body_size: usize) -> (Backend, Floor) {
    start_floor(body_size, false, DriverChoice::Auto)
}

fn start_floor(body_size: usize, http: bool, driver: DriverChoice) -> (Backend, Floor) {
    let backend = Backend::start(&BackendConfig {
        tls: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        body_size,
        threads: 1,
        pin_cpus: None,
        driver: DriverChoice::Auto,
    })
    .unwrap();
    let floor = Floor::start(&FloorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: backend.addr(),
        threads: 2,
        pin_cpus: None,
        driver,
        http,
    })
    .unwrap();
    (backend, floor)
}

fn load(addr: SocketAddr, close: bool) -> LoadConfig {
    LoadConfig {
        url: format!("http://{addr}/"),
        addr,
        request: RequestSpec {
            method: "GET".into(),
            target: "/".into(),
            host: addr.to_string(),
            headers: Vec::new(),
            body_size: 0,
            close,
        },
        connections: 4,
        threads: 1,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        rate: None,
        pin_cpus: None,
        driver: DriverChoice::Auto,
        mode: Mode::Http,
        tls: None,
        tls_name: String::new(),
    }
}

#[test]
fn http_through_the_floor_to_the_backend() {
    let (backend, floor) = start(16 * 1024);
    for close in [false, true] {
        let report = client::run(&load(floor.addr(), close)).unwrap();
        assert!(report.requests > 20, "only {} requests", report.requests);
        assert_eq!(report.errors.total(), 0, "{:?}", report.errors);
        // Each response is the backend's whole 16 KiB body and its head.
        assert_eq!(report.bytes_read % report.requests, 0);
        assert!(report.bytes_read / report.requests > 16 * 1024);
    }
    floor.stop().unwrap();
    backend.stop().unwrap();
}

/// The HTTP floor carries the load generator's requests like a proxy, on
/// both drivers: keep-alive and a new connection per request, a body that
/// fits one read and one that takes many.
#[test]
fn http_floor_carries_keep_alive_and_new_connections() {
    for driver in [DriverChoice::IoUring, DriverChoice::Epoll] {
        for body in [100, 1024 * 1024] {
            let (backend, floor) = start_floor(body, true, driver);
            for close in [false, true] {
                let report = client::run(&load(floor.addr(), close)).unwrap();
                assert!(report.requests > 5, "only {} requests", report.requests);
                assert_eq!(
                    report.errors.total(),
                    0,
                    "{driver:?} {body} {:?}",
                    report.errors
                );
                assert_eq!(report.bytes_read % report.requests, 0);
                assert!(report.bytes_read / report.requests > body as u64);
            }
            floor.stop().unwrap();
            backend.stop().unwrap();
        }
    }
}

/// A backend of the test's own: answers each request head with `answer`,
/// on every connection, and sends every head it read down `heads`.
fn recording_backend(answer: &'static [u8]) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (send, heads) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let (Ok(mut conn), send) = (conn, send.clone()) else {
                return;
            };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let _ = send.send(String::from_utf8(head).unwrap());
                        if conn.write_all(answer).is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, heads)
}

fn http_floor(upstream: SocketAddr, driver: DriverChoice) -> Floor {
    Floor::start(&FloorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        threads: 1,
        pin_cpus: None,
        driver,
        http: true,
    })
    .unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Heads split anywhere and pipelined go upstream rewritten as a proxy
/// writes them, one response per request comes back, and `Connection:
/// close` ends the connection after its response.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test's own thread pauses between two writes of one head; no worker is blocked"
)]
fn http_floor_rewrites_heads_and_keeps_pipelined_requests_in_order() {
    for driver in [DriverChoice::IoUring, DriverChoice::Epoll] {
        let (upstream, heads) =
            recording_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let floor = http_floor(upstream, driver);
        let mut stream = connect(floor.addr());
        stream.write_all(b"GET /a HTTP/1.1\r\nHo").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        stream
            .write_all(
                b"st: x.test\r\nConnection: keep-alive\r\nX-Real-IP: 6.6.6.6\r\n\r\n\
                  GET /b HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".repeat(2)
        );
        let forwarded = "X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\n\
                         X-Forwarded-Proto: http\r\nX-Forwarded-Host: x.test\r\n\r\n";
        for path in ["/a", "/b"] {
            let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(
                head,
                format!("GET {path} HTTP/1.1\r\nHost: x.test\r\n{forwarded}"),
                "{driver:?}"
            );
        }
        floor.stop().unwrap();
    }
}

/// A request body is refused with 501, a response the floor cannot frame
/// or one followed by unannounced bytes with 502; each closes the
/// connection, and nothing is relayed half.
#[test]
fn http_floor_refuses_what_it_does_not_carry() {
    // One request on a connection of its own; all the floor answers until it closes.
    let answer = |floor: &Floor, request: &[u8]| {
        let mut stream = connect(floor.addr());
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let (upstream, _heads) = recording_backend(b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    let floor = http_floor(upstream, DriverChoice::Auto);
    let refused = answer(
        &floor,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert!(refused.starts_with("HTTP/1.1 501 "), "{refused}");
    let unframed = answer(&floor, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(unframed.starts_with("HTTP/1.1 502 "), "{unframed}");
    assert!(!unframed.contains("until close"), "{unframed}");
    floor.stop().unwrap();

    // An answer followed by bytes it did not announce (sent in one write,
    // so they arrive with it): none of it is relayed.
    let (upstream, _heads) =
        recording_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200");
    let floor = http_floor(upstream, DriverChoice::Auto);
    let overrun = answer(&floor, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(overrun.starts_with("HTTP/1.1 502 "), "{overrun}");
    assert!(!overrun.contains("200 OK"), "{overrun}");
    floor.stop().unwrap();
}

#[test]
fn bytes_pass_unparsed_and_a_half_close_ends_the_exchange() {
    let (backend, floor) = start(5);
    let mut stream = TcpStream::connect(floor.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Two pipelined requests, then the client's FIN: the backend answers
    // both and, seeing end of stream, closes; the relay passes that on.
    stream
        .write_all(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{answer}");
    assert!(answer.ends_with("\r\n\r\nxxxxx"), "{answer}");
    floor.stop().unwrap();
    backend.stop().unwrap();
}

/// `ringway-load floor` and `backend` as compare starts them: SIGTERM (what
/// compare sends) and SIGINT stop them with a normal exit, so exit handlers
/// run (the profiling runtime of `build_pgo.sh`'s training build writes its
/// profile in one). A signal's default action would kill the process instead.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the test's own thread waits for a child process, no worker is blocked"
)]
fn the_cli_servers_exit_normally_on_sigterm_and_sigint() {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let harness = env!("CARGO_BIN_EXE_ringway-load");
    for (command, signal) in [
        ("floor", "-TERM"),
        ("floor", "-INT"),
        ("backend", "-TERM"),
        ("backend", "-INT"),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![command, "--listen", &listen];
        if command == "floor" {
            args.extend(["--upstream", "127.0.0.1:9"]);
        }
        let mut child = Command::new(harness)
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(&listen).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{command} never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
                panic!("{command} did not exit on {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{command} on {signal}: {status}");
    }
}
