//! Upstream faults (DESIGN.md §4): refused → 502, connect and read timeouts → 504,
//! malformed responses → 502, an upstream dying mid-response closes the client connection,
//! and stale pooled connections are retried transparently for idempotent requests.

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::backend::FullBacklog;
use ringway_tests::{
    Driver, LISTEN, ReadError, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request,
};

both_drivers!(
    refused_connection_is_502,
    slow_upstream_is_504,
    connect_timeout_is_504,
    malformed_upstream_responses_are_502,
    upstream_dying_mid_response_closes_client,
    stale_pooled_connection_is_retried,
    client_gone_while_upstream_is_slow,
    stale_pooled_connection_is_not_used_for_a_post,
    early_upstream_response_reaches_the_client,
    round_robin_spreads_requests_by_weight,
    refused_server_is_skipped,
    a_head_the_upstream_reads_slowly_arrives_whole,
);

fn refused_connection_is_502(driver: Driver) {
    let down = backend::closed_port();
    let proxy = Ringway::start(&proxy_config(down.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/down")).status, 502);
    let resp = client.roundtrip(&request::with_body("POST", "/down", &[], b"data"));
    assert_eq!(resp.status, 502);
}

fn slow_upstream_is_504(driver: Driver) {
    let backend = backend::slow_head_backend(Duration::from_secs(3));
    let config = format!(
        r#"[log]
access = "off"
[upstreams.slow]
servers = ["{}"]
read_timeout = "1s"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/short"
  read_timeout = "300ms"
  proxy = "slow"
  [[server.route]]
  prefix = "/"
  proxy = "slow"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let table = [
        ("/", Duration::from_millis(900), Duration::from_millis(2500)),
        (
            "/short",
            Duration::from_millis(250),
            Duration::from_millis(900),
        ),
    ];
    for (target, at_least, at_most) in table {
        let mut client = proxy.connect();
        let began = Instant::now();
        let resp = client.roundtrip(&request::get(target));
        let waited = began.elapsed();
        assert_eq!(resp.status, 504, "{target}");
        assert!(
            waited >= at_least && waited <= at_most,
            "{target}: 504 after {waited:?}, expected within {at_least:?}..{at_most:?}"
        );
    }
}

fn connect_timeout_is_504(driver: Driver) {
    let blackhole = FullBacklog::new();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.unreachable]
servers = ["{}"]
connect_timeout = "500ms"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "unreachable"
"#,
        blackhole.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let began = Instant::now();
    let resp = client.roundtrip(&request::get("/"));
    let waited = began.elapsed();
    assert_eq!(resp.status, 504);
    assert!(
        waited >= Duration::from_millis(400) && waited <= Duration::from_secs(4),
        "504 after {waited:?} with connect_timeout 500ms"
    );
}

/// Responses an upstream may not send; each must become a 502 for the client.
fn malformed_responses() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        huge_head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "f".repeat(100)).as_bytes());
    }
    huge_head.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    let fixed: &[(&str, &[u8])] = &[
        ("not HTTP at all", b"NOT HTTP AT ALL\r\n\r\n"),
        (
            "status not a number",
            b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "two status digits",
            b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "two different Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "negative Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            "bare LF line ends",
            b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        ),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
        ),
        (
            "NUL in a header value",
            b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok",
        ),
        ("closed without a response", b""),
    ];
    let mut cases: Vec<(&str, Vec<u8>)> = fixed.iter().map(|(n, r)| (*n, r.to_vec())).collect();
    cases.push(("a 200 KiB response head", huge_head));
    cases
}

fn malformed_upstream_responses_are_502(driver: Driver) {
    let cases = malformed_responses();
    let backends: Vec<_> = cases
        .iter()
        .map(|(_, raw)| backend::malformed_response_backend(raw.clone()))
        .collect();
    let mut config = String::from("[log]\naccess = \"off\"\n");
    for (i, b) in backends.iter().enumerate() {
        let _ = write!(config, "[upstreams.bad{i}]\nservers = [\"{}\"]\n", b.addr());
    }
    let _ = write!(config, "[[server]]\nlisten = [\"{LISTEN}\"]\n");
    for i in 0..backends.len() {
        let _ = write!(
            config,
            "  [[server.route]]\n  prefix = \"/bad{i}/\"\n  proxy = \"bad{i}\"\n"
        );
    }
    let proxy = Ringway::start(&config, driver);
    let mut failures = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let mut client = proxy.connect();
        client
            .send(&request::get(&format!("/bad{i}/x")))
            .expect("send");
        match client.read_response("GET") {
            Ok(resp) if resp.status == 502 => {}
            Ok(resp) => failures.push(format!("{name}: client got {}", resp.status)),
            Err(e) => failures.push(format!("{name}: no response ({e})")),
        }
    }
    assert!(
        failures.is_empty(),
        "malformed upstream responses:\n{}",
        failures.join("\n")
    );
}

fn upstream_dying_mid_response_closes_client(driver: Driver) {
    let by_length = backend::dying_mid_response_backend(false);
    let by_chunks = backend::dying_mid_response_backend(true);
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/length/"
  proxy = "http://{}"
  [[server.route]]
  prefix = "/chunked/"
  proxy = "http://{}"
"#,
        by_length.addr(),
        by_chunks.addr()
    );
    let proxy = Ringway::start(&config, driver);
    for target in ["/length/x", "/chunked/x"] {
        let mut client = proxy.connect();
        client.send(&request::get(target)).expect("send");
        match client.read_response("GET") {
            // The head was already forwarded: the only honest signal left is the close.
            Err(ReadError::Truncated | ReadError::Reset) => {}
            // Or the proxy noticed before sending anything.
            Ok(resp) if resp.status == 502 => {}
            Ok(resp) => panic!(
                "{target}: upstream died after 1000 bytes but the client got a complete-looking \
                 {} response with {} bytes ({:?})",
                resp.status,
                resp.body.len(),
                resp.framing
            ),
            Err(e) => panic!("{target}: expected the connection to close, got {e}"),
        }
    }
}

fn stale_pooled_connection_is_retried(driver: Driver) {
    let backend = backend::closing_after_response_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    for round in 0..3 {
        let target = format!("/round/{round}");
        let resp = client.roundtrip(&request::get(&target));
        assert_eq!(
            resp.status, 200,
            "round {round}: a stale pooled connection must be retried"
        );
        assert_eq!(resp.body_text(), target);
        // Let the upstream's FIN reach the pooled connection before it is reused.
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(backend.connections(), 3);
    assert_eq!(backend.request_count(), 3);
}

/// A client that gives up while the upstream is still working must not leave that upstream
/// connection in the pool: its late answer would be served to the next request.
fn client_gone_while_upstream_is_slow(driver: Driver) {
    let backend = backend::slow_head_backend(Duration::from_millis(500));
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    for round in 0..3 {
        let mut client = proxy.connect();
        client
            .send(&request::get(&format!("/abandoned/{round}")))
            .expect("send");
        thread::sleep(Duration::from_millis(100));
        drop(client);
    }
    // Let the late answers arrive at the proxy.
    thread::sleep(Duration::from_millis(800));
    let mut client = proxy.connect();
    for round in 0..3 {
        let target = format!("/wanted/{round}");
        let resp = client.roundtrip(&request::get(&target));
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.body_text(),
            target,
            "got the answer to another request"
        );
    }
}

/// A pooled connection the upstream has closed (its FIN already arrived) must not carry a
/// request whose body cannot be replayed (RFC 9112 §9.3.1: no automatic retry of a
/// non-idempotent request that may have been applied): nginx drops cached connections as
/// soon as the server closes them. Here the upstream closes every connection after one
/// response.
fn stale_pooled_connection_is_not_used_for_a_post(driver: Driver) {
    let backend = backend::closing_after_response_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    for round in 0..3 {
        let get = format!("/get/{round}");
        assert_eq!(client.roundtrip(&request::get(&get)).body_text(), get);
        thread::sleep(Duration::from_millis(100));
        let post = format!("/post/{round}");
        let resp = client.roundtrip(&request::with_body("POST", &post, &[], b"payload"));
        assert_eq!(
            resp.status, 200,
            "POST round {round} on a connection the upstream had closed"
        );
        assert_eq!(resp.body_text(), post);
        thread::sleep(Duration::from_millis(100));
    }
}

/// An upstream may answer before it has read the request body. A client sending a body
/// "SHOULD monitor the network connection for an error response while it is transmitting the
/// request" (RFC 9112 §9.5): the proxy must relay that answer rather than block on a body the
/// upstream no longer reads until send_timeout (HAProxy relays it).
fn early_upstream_response_reaches_the_client(driver: Driver) {
    const BODY: u64 = 64 << 20;
    let backend = backend::early_response_backend(Duration::from_secs(8));
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
    client.set_patience(Duration::from_secs(5));
    let mut writer = client.get_ref().try_clone().expect("clone the socket");
    let uploader = thread::spawn(move || {
        use std::io::Write as _;
        let head =
            format!("PUT /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: {BODY}\r\n\r\n");
        writer.write_all(head.as_bytes())?;
        let block = vec![b'u'; 256 * 1024];
        let mut sent = 0;
        while sent < BODY {
            writer.write_all(&block)?;
            sent += block.len() as u64;
        }
        Ok::<u64, std::io::Error>(sent)
    });
    let began = Instant::now();
    let outcome = client.read_response("PUT");
    let waited = began.elapsed();
    // Unblock the uploader whatever happened.
    let _ = client.get_ref().shutdown(std::net::Shutdown::Both);
    let _ = uploader.join();
    let resp = outcome.unwrap_or_else(|e| {
        panic!("no answer {waited:?} after the upstream refused the upload early: {e}")
    });
    assert_eq!(
        resp.status, 413,
        "the upstream's own answer, got {}",
        resp.status
    );
    assert_eq!(resp.body_text(), "too big!");
}

fn round_robin_spreads_requests_by_weight(driver: Driver) {
    let light = backend::echo_backend();
    let heavy = backend::echo_backend();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = [{{ addr = "{}", weight = 1 }}, {{ addr = "{}", weight = 3 }}]
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        light.addr(),
        heavy.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    for i in 0..40 {
        assert_eq!(
            client.roundtrip(&request::get(&format!("/rr/{i}"))).status,
            200
        );
    }
    assert_eq!(
        (light.request_count(), heavy.request_count()),
        (10, 30),
        "weights 1:3 over 40 requests"
    );
}

/// DESIGN.md §4: a server that refuses the connection is skipped for the next one. Nothing
/// was sent, so this holds for a POST too.
fn refused_server_is_skipped(driver: Driver) {
    let backend = backend::echo_backend();
    let down = backend::closed_port();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}", "{}"]
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        down,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    for i in 0..4 {
        let get = format!("/get/{i}");
        let resp = client.roundtrip(&request::get(&get));
        assert_eq!(resp.status, 200, "{get}");
        let post = format!("/post/{i}");
        let resp = client.roundtrip(&request::with_body("POST", &post, &[], b"body"));
        assert_eq!(resp.status, 200, "{post}");
        assert_eq!(resp.body_text(), "body");
    }
    assert_eq!(backend.request_count(), 8);
}

/// A head far larger than the sockets between proxy and upstream hold, to an upstream that
/// reads nothing for a while on each new connection: the proxy's first write of it ends short, and the rest must
/// follow without the response to wake anything (on io_uring the write runs behind the read
/// of the response, `engine/src/behind.rs`). Stuck, the request would end in a 504 at the
/// 2 s `read_timeout`.
fn a_head_the_upstream_reads_slowly_arrives_whole(driver: Driver) {
    let backend = backend::slow_reader_backend(Duration::from_millis(500));
    let limits = "header_timeout = \"3s\"\nmax_header_size = \"1MiB\"";
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(10));
    let big = "b".repeat(300 * 1024);
    let raw = format!("GET /big HTTP/1.1\r\nHost: test.local\r\nX-Big: {big}\r\n\r\n");
    let resp = client.roundtrip(raw.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, format!("{} 0", big.len()).as_bytes());
    // The connection goes on, and so does the next request on it.
    let resp = client.roundtrip(&request::get("/small"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"0 0");
    // A small body that came with such a head goes out behind it in the same write, and
    // is consumed only once all of that write has gone: neither lost nor sent twice.
    let raw = request::with_body("POST", "/big", &[("X-Big", &big)], b"hello");
    let resp = client.roundtrip(&raw);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, format!("{} 5", big.len()).as_bytes());
    let resp = client.roundtrip(&request::get("/small"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"0 0");
    assert_eq!(backend.connections(), 4);
}
