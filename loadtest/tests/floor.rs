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
        driver: DriverChoice::Auto,
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
