//! Open loop (`--rate`) against a backend that stalls once for 100 ms. A
//! closed loop hides the stall behind the single request that waited; the
//! open loop keeps its schedule and times every request from its scheduled
//! send time, so the requests that fell due during the stall carry it and
//! it shows in p99, as wrk2 shows it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ringway_load::client::{self, LoadConfig, Mode};
use ringway_load::request::RequestSpec;
use ringway_load::runtime::DriverChoice;

const STALL: Duration = Duration::from_millis(100);
/// The stall hits the first request answered this long after the first.
const STALL_AFTER: Duration = Duration::from_millis(300);
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Answers bodiless requests on a thread per connection, pausing once.
fn start_stalling_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let first_request = Arc::new(OnceLock::new());
    let stalled = Arc::new(AtomicBool::new(false));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let first_request = Arc::clone(&first_request);
            let stalled = Arc::clone(&stalled);
            thread::spawn(move || serve(stream, &first_request, &stalled));
        }
    });
    addr
}

#[expect(
    clippy::disallowed_methods,
    reason = "a test backend thread of its own, not a worker: blocking it is the stall"
)]
fn serve(stream: TcpStream, first_request: &OnceLock<Instant>, stalled: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                let first = *first_request.get_or_init(Instant::now);
                if first.elapsed() >= STALL_AFTER && !stalled.swap(true, Ordering::Relaxed) {
                    thread::sleep(STALL);
                }
                if writer.write_all(RESPONSE).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

fn config(addr: SocketAddr, rate: Option<f64>) -> LoadConfig {
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
        connections: 1,
        threads: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        rate,
        pin_cpus: None,
        driver: DriverChoice::Auto,
        mode: Mode::Http,
        tls: None,
        tls_name: String::new(),
    }
}

#[test]
fn a_100_ms_stall_shows_in_open_loop_p99() {
    let addr = start_stalling_backend();
    let report = client::run(&config(addr, Some(1_000.0))).unwrap();
    println!("{}", report.to_text());
    assert_eq!(report.rate, Some(1_000.0));
    assert_eq!(report.errors.total(), 0, "{:?}", report.errors);
    // The schedule holds through the stall: about 1,000 requests in 1 s
    // (the last few, still in flight at the deadline, are not counted).
    assert!(
        (900..=1_010).contains(&report.requests),
        "{} requests at 1000/s for 1 s",
        report.requests
    );
    let l = report.latency_us;
    assert!(
        l.max >= 100_000.0,
        "the stall did not happen: max {} µs",
        l.max
    );
    // About 100 of 1,000 requests fell due during the stall, with latencies
    // from 100 ms down to 0: the 99th percentile lies among them.
    assert!(l.p99 >= 80_000.0, "p99 {} µs hides the 100 ms stall", l.p99);
    assert!(
        l.p50 < 50_000.0,
        "p50 {} µs: most requests were not stalled",
        l.p50
    );
}

#[test]
fn the_same_stall_hides_from_a_closed_loop() {
    let addr = start_stalling_backend();
    let report = client::run(&config(addr, None)).unwrap();
    assert_eq!(report.rate, None);
    let l = report.latency_us;
    assert!(
        l.max >= 100_000.0,
        "the stall did not happen: max {} µs",
        l.max
    );
    // One request of thousands waited; every other ran at once.
    assert!(
        report.requests > 1_000,
        "too few requests ({}) to tell",
        report.requests
    );
    assert!(l.p99 < 80_000.0, "p99 {} µs", l.p99);
}
