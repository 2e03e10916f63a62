//! Issue 4: bodies of known length from `splice_threshold` up move socket to
//! socket by splice on both drivers (never through user space), and arrive
//! byte-exact; `splice_threshold = "0"` copies. A splice never waits inside
//! the worker: a quiet upstream or a client that stops reading holds up its
//! own transfer only.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringway_tests::http::HttpStream;
use ringway_tests::proxy::free_addr;
use ringway_tests::{
    Driver, Ringway, app_config, backend, both_drivers, pseudo_random_body, request,
};

fn spliced_bytes(admin: SocketAddr) -> u64 {
    let stream = TcpStream::connect(admin).expect("admin");
    let mut client = HttpStream::client(stream, Duration::from_secs(10)).expect("client");
    let text = client.roundtrip(&request::get("/metrics")).body_text();
    text.lines()
        .find_map(|l| l.strip_prefix("ringway_spliced_body_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("ringway_spliced_body_bytes_total in /metrics")
}

fn config(upstream: SocketAddr, admin: SocketAddr, runtime: &str) -> String {
    format!(
        "[runtime]\n{runtime}\n[admin]\nlisten = \"{admin}\"\n{}",
        app_config(
            upstream,
            "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n"
        )
    )
}

both_drivers!(large_bodies_are_spliced_byte_exact);

fn large_bodies_are_spliced_byte_exact(driver: Driver) {
    let body = pseudo_random_body(3 * 1024 * 1024 + 123, 4);
    let app = backend::fixed_body_backend(body.clone());
    let admin = free_addr();
    let proxy = Ringway::start(&config(app.addr(), admin, ""), driver);
    let mut client = proxy.connect();
    // Twice on one connection: the connection is still usable after a splice.
    for n in 0..2 {
        let resp = client.roundtrip(&request::get(&format!("/big/{n}")));
        assert_eq!(resp.status, 200);
        assert!(
            resp.body == body,
            "body {n} differs ({} bytes)",
            resp.body.len()
        );
    }
    let small = client.roundtrip(&request::get("/after"));
    assert_eq!(small.status, 200);
    // All but what arrived with the head (a read's worth) went by splice.
    let spliced = spliced_bytes(admin);
    assert!(
        spliced > 2 * (body.len() as u64 - 256 * 1024),
        "only {spliced} bytes spliced of 2 x {} ({driver:?})",
        body.len()
    );
}

both_drivers!(large_uploads_are_spliced_byte_exact);

fn large_uploads_are_spliced_byte_exact(driver: Driver) {
    let body = pseudo_random_body(3 * 1024 * 1024 + 7, 6);
    let app = backend::echo_backend();
    let admin = free_addr();
    let config = config(app.addr(), admin, "").replace(
        "[[server]]",
        "[limits]\nmax_body_size = \"16M\"\n[[server]]",
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    for n in 0..2 {
        let raw = request::with_body("POST", &format!("/up/{n}"), &[], &body);
        let resp = client.roundtrip(&raw);
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-echo-body-len"),
            Some(body.len().to_string().as_str())
        );
        assert!(resp.body == body, "echo {n} differs");
    }
    // Counters move after an answer is written; one more request on the
    // connection makes sure the uploads' are in.
    assert_eq!(client.roundtrip(&request::get("/after")).status, 200);
    // Request and response bodies: all but a read's worth of each.
    let spliced = spliced_bytes(admin);
    assert!(
        spliced > 4 * (body.len() as u64 - 256 * 1024),
        "only {spliced} bytes spliced ({driver:?})"
    );
}

both_drivers!(splice_threshold_zero_copies);

fn splice_threshold_zero_copies(driver: Driver) {
    let body = pseudo_random_body(1024 * 1024, 5);
    let app = backend::fixed_body_backend(body.clone());
    let admin = free_addr();
    let proxy = Ringway::start(
        &config(app.addr(), admin, "splice_threshold = \"0\""),
        driver,
    );
    let resp = proxy.connect().roundtrip(&request::get("/big"));
    assert!(resp.body == body);
    assert_eq!(spliced_bytes(admin), 0);
}

both_drivers!(a_client_that_stops_reading_holds_up_only_its_own_body);

/// A client that stops reading a large spliced body fills its socket and the
/// pipe; the worker (the only one) serves other connections meanwhile, and
/// the body arrives whole once the client reads again.
fn a_client_that_stops_reading_holds_up_only_its_own_body(driver: Driver) {
    // More than the client's receive buffer, the proxy's send buffer and a
    // pipe together can hold.
    let body = pseudo_random_body(16 * 1024 * 1024 + 5, 8);
    let app = backend::fixed_body_backend(body.clone());
    let admin = free_addr();
    let proxy = Ringway::start(&config(app.addr(), admin, ""), driver);
    let mut stalled = proxy.connect();
    stalled.send(&request::get("/big")).expect("request");
    // Wait until the proxy is stuck on the full client socket: the backend
    // has sent what fits and the splice counter stops moving.
    let start = std::time::Instant::now();
    let mut last = 0;
    loop {
        let now = spliced_bytes(admin);
        if now > 1024 * 1024 && now == last {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "splicing never stalled"
        );
        last = now;
        let pause = std::time::Instant::now();
        while pause.elapsed() < Duration::from_millis(100) {
            std::hint::spin_loop();
        }
    }
    assert!(last < body.len() as u64, "the whole body went out unread");
    // Another client on the same worker is served, body and all.
    let mut other = proxy.connect();
    let resp = other.roundtrip(&request::get("/other"));
    assert!(resp.status == 200 && resp.body == body, "second client");
    // The stalled client reads on: every byte, in order.
    let resp = stalled.read_response("GET").expect("stalled response");

    assert_eq!(resp.status, 200);
    assert!(
        resp.body == body,
        "stalled body differs ({} bytes)",
        resp.body.len()
    );
}

both_drivers!(an_upstream_that_goes_quiet_mid_body_holds_up_only_its_own_body);

/// An upstream that stops sending in the middle of a large body leaves the
/// splice waiting for it, not the worker: what arrived is forwarded, other
/// requests are served, and the rest follows when the upstream goes on.
fn an_upstream_that_goes_quiet_mid_body_holds_up_only_its_own_body(driver: Driver) {
    let body = pseudo_random_body(2 * 1024 * 1024, 9);
    let first = 700 * 1024;
    let quiet = backend::gated_body_backend(body.clone(), first);
    let other = backend::fixed_body_backend(b"other".to_vec());
    let admin = free_addr();
    let config = config(quiet.addr(), admin, "").replace(
        "[[server]]",
        &format!("[upstreams.other]\nservers = [\"{}\"]\n[[server]]", other.addr()),
    ).replace(
        "[[server.route]]\nprefix = \"/\"",
        "[[server.route]]\nprefix = \"/other\"\nproxy = \"other\"\n[[server.route]]\nprefix = \"/\"",
    );
    let proxy = Ringway::start(&config, driver);
    let mut waiting = proxy.connect();
    waiting.send(&request::get("/big")).expect("request");
    // What the upstream sent before going quiet goes on to the client (all
    // but what arrived with the head, a read's worth).
    let start = std::time::Instant::now();
    while spliced_bytes(admin) + 256 * 1024 < first as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the first part was not forwarded"
        );
    }
    let resp = proxy.connect().roundtrip(&request::get("/other"));
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"other"[..]));
    quiet.release();
    let resp = waiting.read_response("GET").expect("response");
    assert_eq!(resp.status, 200);
    assert!(
        resp.body == body,
        "body differs ({} bytes)",
        resp.body.len()
    );
    assert!(!quiet.gate_expired(), "the test waited too long");
}

both_drivers!(an_upload_faster_than_its_upstream_arrives_whole);

/// The client sends its whole body while the upstream is not reading yet:
/// the last client bytes wait in the pipe for room upstream, after the body
/// has been taken in full. They go on when the upstream reads.
fn an_upload_faster_than_its_upstream_arrives_whole(driver: Driver) {
    let body = pseudo_random_body(1024 * 1024 + 3, 10);
    let app = backend::slow_sink_backend(Duration::from_millis(300));
    let admin = free_addr();
    let config = config(app.addr(), admin, "").replace(
        "[[server]]",
        "[limits]\nmax_body_size = \"16M\"\n[[server]]",
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    for n in 0..2 {
        let raw = request::with_body("PUT", &format!("/up/{n}"), &[], &body);
        let resp = client.roundtrip(&raw);
        assert_eq!(resp.status, 200, "upload {n}");
        assert_eq!(resp.body_text(), body.len().to_string(), "upload {n}");
    }
    assert!(spliced_bytes(admin) > 2 * (body.len() as u64 - 256 * 1024));
}
