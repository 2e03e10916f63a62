//! End-to-end: the built-in backend on a loopback port, loaded by the
//! client for a bounded time, and the client against scripted servers that
//! answer with chunked bodies, error statuses, or not at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ringway_load::backend::{Backend, BackendConfig};
use ringway_load::client::{self, LoadConfig, Mode};
use ringway_load::request::RequestSpec;
use ringway_load::runtime::DriverChoice;

fn start_backend(body_size: usize) -> Backend {
    Backend::start(&BackendConfig {
        tls: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        body_size,
        threads: 1,
        pin_cpus: None,
        driver: DriverChoice::Auto,
    })
    .unwrap()
}

fn load(addr: SocketAddr, connections: usize, duration: Duration) -> LoadConfig {
    LoadConfig {
        url: format!("http://{addr}/"),
        addr,
        request: RequestSpec {
            method: "GET".into(),
            target: "/".into(),
            host: addr.to_string(),
            headers: Vec::new(),
            body_size: 0,
            close: false,
        },
        connections,
        threads: 1,
        warmup: Duration::from_millis(100),
        duration,
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
fn one_second_of_load_against_the_backend() {
    let backend = start_backend(100);
    let report = client::run(&load(backend.addr(), 8, Duration::from_secs(1))).unwrap();
    assert!(report.requests > 100, "only {} requests", report.requests);
    assert_eq!(report.errors.total(), 0, "{:?}", report.errors);
    // Every response is the same fixed head and 100-byte body.
    assert_eq!(report.bytes_read % report.requests, 0);
    assert!(report.bytes_read / report.requests > 100);
    assert_eq!(report.requests_per_sec, report.requests as f64);
    let l = report.latency_us;
    assert!(
        l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p99_9 && l.p99_9 <= l.max
    );
    // Closed loop over 8 connections: no latency can exceed the window.
    assert!(l.max < 1_100_000.0);
    // Little's law: with every moment of a connection attributed to one
    // request, mean latency is connections / throughput (edge effects of
    // the window are a few requests out of thousands).
    let little = 8.0 / report.requests_per_sec * 1e6;
    assert!(
        (l.mean - little).abs() < little * 0.1,
        "mean {} µs, Little's law {little} µs",
        l.mean
    );
    backend.stop().unwrap();
}

#[test]
fn new_connection_per_request_and_request_bodies() {
    let backend = start_backend(10);
    let mut config = load(backend.addr(), 4, Duration::from_millis(500));
    config.request.close = true;
    config.request.method = "POST".into();
    config.request.body_size = 3000;
    let report = client::run(&config).unwrap();
    assert!(!report.keep_alive);
    assert!(report.requests > 10, "only {} requests", report.requests);
    assert_eq!(report.errors.total(), 0, "{:?}", report.errors);
    backend.stop().unwrap();
}

#[test]
fn backend_answers_pipelined_requests_then_closes() {
    let backend = start_backend(5);
    let mut stream = TcpStream::connect(backend.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n\
              HEAD /b HTTP/1.1\r\n\r\n\
              GET /c HTTP/1.1\r\nConnection: close\r\n\r\n\
              GET /never HTTP/1.1\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{answer}");
    assert_eq!(
        answer.matches("xxxxx").count(),
        2,
        "HEAD must get no body: {answer}"
    );
    assert!(
        answer.ends_with("Connection: close\r\n\r\nxxxxx"),
        "{answer}"
    );
    backend.stop().unwrap();
}

/// A server that answers every request with `response` until stopped.
struct ScriptedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: thread::JoinHandle<()>,
}

impl ScriptedServer {
    fn start(response: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                thread::spawn(move || answer_requests(stream, response));
            }
        });
        ScriptedServer { addr, stop, accept }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        self.accept.join().unwrap();
    }
}

/// Reads bodiless request heads line by line and answers each one; ends
/// when the client closes.
fn answer_requests(stream: TcpStream, response: &[u8]) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                if writer.write_all(response).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

#[test]
fn chunked_error_responses_are_read_whole_and_counted_as_status_errors() {
    let server = ScriptedServer::start(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
          3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n",
    );
    let report = client::run(&load(server.addr, 2, Duration::from_millis(400))).unwrap();
    assert!(report.requests > 10, "only {} requests", report.requests);
    assert_eq!(report.errors.status, report.requests);
    assert_eq!(
        report.errors.total(),
        report.requests,
        "{:?}",
        report.errors
    );
    server.stop();
}

#[test]
fn malformed_responses_are_protocol_errors() {
    let server = ScriptedServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    let report = client::run(&load(server.addr, 1, Duration::from_millis(300))).unwrap();
    assert_eq!(report.requests, 0);
    assert!(report.errors.protocol > 0, "{:?}", report.errors);
    server.stop();
}

#[test]
fn refused_connections_are_connect_errors() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let report = client::run(&load(addr, 2, Duration::from_millis(300))).unwrap();
    assert_eq!(report.requests, 0);
    assert!(report.errors.connect > 0, "{:?}", report.errors);
}

#[test]
fn silent_server_gives_timeouts_and_the_run_still_ends_on_time() {
    let server = ScriptedServer::start(b"");
    let mut config = load(server.addr, 2, Duration::from_millis(700));
    config.warmup = Duration::ZERO;
    config.timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let report = client::run(&config).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(report.requests, 0);
    assert!(report.errors.timeout >= 4, "{:?}", report.errors);
    server.stop();
}
