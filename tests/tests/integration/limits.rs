//! Client-side protections (DESIGN.md §2 `[limits]`, §4): 413, 431, 408, and streaming a
//! 1 GiB upload in bounded memory.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::{
    Driver, LISTEN, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, pseudo_random_body,
    request,
};

both_drivers!(
    declared_body_over_limit_is_413_without_reading_it,
    streamed_body_over_limit_is_413_and_close,
    body_at_the_limit_passes,
    route_limit_overrides_global,
    expect_100_continue_over_limit_gets_413_not_100,
    oversized_head_is_431,
    too_many_headers_is_431,
    incomplete_head_is_408,
    slowloris_trickle_is_408,
    stalled_request_body_is_408,
    one_gib_upload_streams_in_bounded_memory,
    one_gib_download_to_a_slow_reader_in_bounded_memory,
    idle_keep_alive_connection_is_closed,
    connections_over_max_connections_wait_in_the_backlog,
);

const SMALL_BODY: &str = r#"header_timeout = "3s"
max_body_size = "1KiB""#;

fn declared_body_over_limit_is_413_without_reading_it(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), SMALL_BODY), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    // Only the head is sent: the answer must not wait for a body that never comes.
    client
        .send(b"POST /big HTTP/1.1\r\nHost: test.local\r\nContent-Length: 1025\r\n\r\n")
        .expect("send head");
    let resp = client.read_response("POST").expect("413 before the body");
    assert_eq!(resp.status, 413);
    client
        .expect_close(Duration::from_secs(3))
        .expect("closed after 413");
    assert_eq!(backend.request_count(), 0);
    assert_eq!(
        backend.connections(),
        0,
        "the upstream was contacted for a 413"
    );
}

fn streamed_body_over_limit_is_413_and_close(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), SMALL_BODY), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    let body = pseudo_random_body(2000, 1);
    // All of it in one write: the proxy reads everything before it closes, so its close
    // cannot turn into a reset that destroys the 413 in flight.
    let pieces: Vec<&[u8]> = vec![&body[..600], &body[600..]];
    client
        .send(&request::chunked("POST", "/big", &[], &pieces))
        .expect("send");
    let resp = client
        .read_response("POST")
        .expect("413 for a streamed body");
    assert_eq!(resp.status, 413);
    client
        .expect_close(Duration::from_secs(3))
        .expect("closed after 413");
    assert_eq!(
        backend.request_count(),
        0,
        "the upstream received a complete oversized body"
    );
    let resp = proxy.connect().roundtrip(&request::get("/after"));
    assert_eq!(resp.status, 200);
}

fn body_at_the_limit_passes(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), SMALL_BODY), driver);
    let mut client = proxy.connect();
    let body = pseudo_random_body(1024, 2);
    let resp = client.roundtrip(&request::with_body("POST", "/exact", &[], &body));
    assert_eq!(resp.status, 200);
    assert!(resp.body == body);
    let pieces: Vec<&[u8]> = body.chunks(100).collect();
    let resp = client.roundtrip(&request::chunked("POST", "/exact", &[], &pieces));
    assert_eq!(resp.status, 200, "1024 chunked bytes are within 1KiB");
}

fn route_limit_overrides_global(driver: Driver) {
    let backend = backend::echo_backend();
    let config = format!(
        r#"[log]
access = "off"
[limits]
max_body_size = "1KiB"
[upstreams.app]
servers = ["{}"]
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/small/"
  max_body_size = "100"
  proxy = "app"
  [[server.route]]
  prefix = "/large/"
  max_body_size = "4KiB"
  proxy = "app"
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let table = [
        ("/small/x", 200, 413),
        ("/x", 200, 200),
        ("/x", 2000, 413),
        ("/large/x", 4000, 200),
    ];
    for (target, len, status) in table {
        let mut client = proxy.connect();
        client.set_patience(Duration::from_secs(5));
        client
            .send(&request::with_body(
                "POST",
                target,
                &[],
                &pseudo_random_body(len, 5),
            ))
            .expect("send");
        let resp = client.read_response("POST").expect("response");
        assert_eq!(resp.status, status, "POST {target} with {len} bytes");
    }
}

fn expect_100_continue_over_limit_gets_413_not_100(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), SMALL_BODY), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    client
        .send(b"POST /big HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        .expect("send head");
    let resp = client.read_response("POST").expect("final response");
    assert_eq!(
        resp.interim,
        Vec::<u16>::new(),
        "100 Continue invites a body that will be refused"
    );
    assert_eq!(resp.status, 413);
}

fn oversized_head_is_431(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
max_header_size = "1KiB""#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    let mut client = proxy.connect();
    let fits = "a".repeat(500);
    let resp = client.roundtrip(&request::with_body("GET", "/ok", &[("X-Big", &fits)], b""));
    assert_eq!(resp.status, 200, "a 0.6 KiB head is within 1 KiB");
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    let big = "a".repeat(2000);
    client
        .send(&request::with_body(
            "GET",
            "/big-head",
            &[("X-Big", &big)],
            b"",
        ))
        .expect("send");
    let resp = client.read_response("GET").expect("431");
    assert_eq!(resp.status, 431);
    client
        .expect_close(Duration::from_secs(3))
        .expect("closed after 431");
    assert_eq!(backend.request_count(), 1);
}

fn too_many_headers_is_431(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
max_headers = 10"#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    let names: Vec<String> = (0..20).map(|i| format!("X-H{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body("GET", "/few", &headers[..5], b""));
    assert_eq!(resp.status, 200, "6 headers are within 10");
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    client
        .send(&request::with_body("GET", "/many", &headers, b""))
        .expect("send");
    let resp = client.read_response("GET").expect("431");
    assert_eq!(resp.status, 431);
    client
        .expect_close(Duration::from_secs(3))
        .expect("closed after 431");
    assert_eq!(backend.request_count(), 1);
}

const ONE_SECOND_HEAD: &str = r#"header_timeout = "1s""#;

fn incomplete_head_is_408(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), ONE_SECOND_HEAD), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    let began = Instant::now();
    client
        .send(b"GET /slow HTTP/1.1\r\nHost: test.local\r\n")
        .expect("send half a head");
    let resp = client.read_response("GET").expect("408");
    let waited = began.elapsed();
    assert_eq!(resp.status, 408);
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_millis(2500),
        "408 after {waited:?}, header_timeout is 1s"
    );
    client
        .expect_close(Duration::from_secs(2))
        .expect("closed after 408");
    assert_eq!(backend.request_count(), 0);
}

fn slowloris_trickle_is_408(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), ONE_SECOND_HEAD), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(5));
    let began = Instant::now();
    client
        .send(b"GET /slow HTTP/1.1\r\nHost: test.local\r\nX-Slow: ")
        .expect("send");
    // A byte every 200 ms: the connection is never idle, but the head never completes.
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let mut stream: TcpStream = client.get_ref().try_clone().expect("clone the socket");
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if stream.write_all(b"a").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let outcome = client.read_response("GET");
    let waited = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    trickle.join().expect("trickle thread");
    let resp = outcome.expect("408 for a trickled head");
    assert_eq!(resp.status, 408);
    assert!(
        waited <= Duration::from_millis(2500),
        "header_timeout covers the whole head: 408 came after {waited:?}"
    );
    assert_eq!(backend.request_count(), 0);
}

/// A request body that stops arriving is answered 408 once the route's
/// `read_timeout` (2 s in `proxy_config`) has passed without a byte (nginx:
/// client_body_timeout), and the connection closes: whether the body is copied
/// (a small one) or spliced (one above `splice_threshold`, io_uring).
fn stalled_request_body_is_408(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    for (declared, sent) in [(1_000, 100), (1_000_000, 100 << 10)] {
        let mut client = proxy.connect();
        client.set_patience(Duration::from_secs(8));
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: {declared}\r\n\r\n"
        );
        client.send(head.as_bytes()).expect("send the head");
        client
            .send(&pseudo_random_body(sent, 7))
            .expect("send part of the body");
        let began = Instant::now();
        let resp = client
            .read_response("POST")
            .expect("408 for a stalled body");
        let waited = began.elapsed();
        assert_eq!(resp.status, 408, "{declared} B declared, {sent} sent");
        assert!(
            waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(5),
            "408 after {waited:?}, read_timeout is 2s ({declared} B declared)"
        );
        client
            .expect_close(Duration::from_secs(3))
            .expect("closed after 408");
    }
    assert_eq!(
        backend.request_count(),
        0,
        "no request was completed upstream"
    );
}

fn one_gib_upload_streams_in_bounded_memory(driver: Driver) {
    const TOTAL: u64 = 1 << 30;
    let backend = backend::sink_backend();
    let config = format!(
        r#"[log]
access = "off"
[limits]
max_body_size = "0"
[upstreams.app]
servers = ["{}"]
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(30));
    let began = Instant::now();
    client
        .send(
            format!("PUT /gib HTTP/1.1\r\nHost: test.local\r\nContent-Length: {TOTAL}\r\n\r\n")
                .as_bytes(),
        )
        .expect("send head");
    let block = pseudo_random_body(256 * 1024, 9);
    let mut sent = 0u64;
    while sent < TOTAL {
        client.send(&block).expect("upload block");
        sent += block.len() as u64;
    }
    let resp = client.read_response("PUT").expect("response after 1 GiB");
    let elapsed = began.elapsed();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body_text(),
        TOTAL.to_string(),
        "bytes the upstream received"
    );
    let hwm = proxy.vm_hwm_kib();
    eprintln!("1 GiB upload on {driver:?}: {elapsed:?}, ringway VmHWM {hwm} KiB");
    assert!(
        hwm < 64 * 1024,
        "ringway peak RSS {hwm} KiB for a streamed upload (limit 64 MiB)"
    );
}

fn one_gib_download_to_a_slow_reader_in_bounded_memory(driver: Driver) {
    const TOTAL: u64 = 1 << 30;
    let backend = backend::big_response_backend(TOTAL);
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(30));
    let began = Instant::now();
    client.send(&request::get("/gib")).expect("send");
    let head = client.read_response_head().expect("response head");
    assert_eq!(head.status, 200);
    // Not reading for a while: a proxy without backpressure would buffer what the upstream
    // keeps sending.
    thread::sleep(Duration::from_secs(1));
    let framing = ringway_tests::http::response_framing("GET", &head).expect("framing");
    let mut received = 0u64;
    client
        .read_body(framing, &mut |part| received += part.len() as u64)
        .expect("the whole download");
    assert_eq!(received, TOTAL);
    let hwm = proxy.vm_hwm_kib();
    eprintln!(
        "1 GiB download on {driver:?}: {:?}, ringway VmHWM {hwm} KiB",
        began.elapsed()
    );
    assert!(
        hwm < 64 * 1024,
        "ringway peak RSS {hwm} KiB for a streamed download (limit 64 MiB)"
    );
}

fn idle_keep_alive_connection_is_closed(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
keepalive_timeout = "1s""#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/before-idle")).status, 200);
    let began = Instant::now();
    client
        .expect_close(Duration::from_secs(4))
        .expect("an idle keep-alive connection is closed after keepalive_timeout");
    let idle = began.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle <= Duration::from_millis(3000),
        "closed after {idle:?} idle, keepalive_timeout is 1s"
    );
}

fn connections_over_max_connections_wait_in_the_backlog(driver: Driver) {
    let backend = backend::echo_backend();
    let config = proxy_config(backend.addr(), TEST_LIMITS)
        .replace("[runtime]\n", "[runtime]\nmax_connections = 2\n");
    let proxy = Ringway::start(&config, driver);
    // The readiness probe of `Ringway::start` may still count for a moment; let it go.
    thread::sleep(Duration::from_millis(200));
    let mut first = proxy.connect();
    let mut second = proxy.connect();
    assert_eq!(first.roundtrip(&request::get("/1")).status, 200);
    assert_eq!(second.roundtrip(&request::get("/2")).status, 200);
    let mut third = proxy.connect();
    third.send(&request::get("/3")).expect("send");
    third.set_patience(Duration::from_millis(700));
    assert!(
        third.read_response("GET").is_err(),
        "a third connection was served with max_connections = 2"
    );
    drop(first);
    third.set_patience(Duration::from_secs(5));
    let resp = third
        .read_response("GET")
        .expect("served once a slot is free");
    assert_eq!(resp.header("x-echo-target"), Some("/3"));
}
