//! Request-smuggling defences (DESIGN.md §4, RFC 9112 §6.3, §7.1, §2.2, §5.2): every
//! ambiguous or malformed request is answered 400 and its connection closed, the upstream
//! never sees a request hidden inside it, and the proxy goes on serving fresh connections.

use std::time::Duration;

use ringway_tests::{Driver, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request};

both_drivers!(ambiguous_requests_get_400_and_close);

/// A request the upstream must never see; the cases below hide it in their bodies.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n";

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let post = "POST /front HTTP/1.1\r\nHost: test.local\r\n";
    let chunked = format!("{post}Transfer-Encoding: chunked\r\n\r\n");
    let s = SMUGGLED;
    let raw = |text: String| text.into_bytes();
    vec![
        (
            "Content-Length with Transfer-Encoding",
            raw(format!(
                "{post}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "Transfer-Encoding before Content-Length",
            raw(format!(
                "{post}Transfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "two different Content-Length",
            raw(format!(
                "{post}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{s}",
                s.len()
            )),
        ),
        (
            "Content-Length list with different values",
            raw(format!("{post}Content-Length: 0, {}\r\n\r\n{s}", s.len())),
        ),
        (
            "Content-Length with a sign",
            raw(format!("{post}Content-Length: +5\r\n\r\nhello")),
        ),
        (
            "Content-Length in hex",
            raw(format!("{post}Content-Length: 0x5\r\n\r\nhello")),
        ),
        (
            "Transfer-Encoding: chunked, gzip",
            raw(format!(
                "{post}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            raw(format!(
                "{post}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "Transfer-Encoding: chunked, chunked",
            raw(format!(
                "{post}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "unknown Transfer-Encoding",
            raw(format!("{post}Transfer-Encoding: foo\r\n\r\n0\r\n\r\n{s}")),
        ),
        (
            "space before the colon of Transfer-Encoding",
            raw(format!(
                "{post}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            raw(format!(
                "POST /front HTTP/1.0\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "obs-fold",
            raw(format!(
                "{post}X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"
            )),
        ),
        (
            "obs-fold of Transfer-Encoding",
            raw(format!(
                "{post}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{s}"
            )),
        ),
        (
            "bare LF line ends",
            b"GET /lf HTTP/1.1\nHost: test.local\n\n".to_vec(),
        ),
        (
            "one bare LF inside the head",
            b"GET /lf HTTP/1.1\r\nHost: test.local\nX-A: b\r\n\r\n".to_vec(),
        ),
        (
            "NUL in a header value",
            b"GET /nul HTTP/1.1\r\nHost: test.local\r\nX-A: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "CR in a header value",
            b"GET /cr HTTP/1.1\r\nHost: test.local\r\nX-A: a\rb\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/1.1 without Host",
            b"GET /nohost HTTP/1.1\r\nX-A: b\r\n\r\n".to_vec(),
        ),
        (
            "two Host headers",
            b"GET /twohosts HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n".to_vec(),
        ),
        (
            "space in the request target",
            b"GET /a b HTTP/1.1\r\nHost: test.local\r\n\r\n".to_vec(),
        ),
        (
            "invalid chunk size",
            raw(format!("{chunked}zz\r\nhello\r\n0\r\n\r\n")),
        ),
        (
            "chunk size with 0x prefix",
            raw(format!("{chunked}0x5\r\nhello\r\n0\r\n\r\n")),
        ),
        (
            "negative chunk size",
            raw(format!("{chunked}-5\r\nhello\r\n0\r\n\r\n")),
        ),
        (
            "overflowing chunk size",
            raw(format!(
                "{chunked}1000000000000000000000005\r\nhello\r\n0\r\n\r\n"
            )),
        ),
        (
            "chunk size line ending in bare LF",
            raw(format!("{chunked}5\nhello\r\n0\r\n\r\n")),
        ),
        (
            "chunked body smuggling a second request",
            raw(format!("{chunked}3\r\nabc{s}0\r\n\r\n")),
        ),
        (
            "chunk data longer than its size",
            raw(format!("{chunked}3\r\nabcdef\r\n0\r\n\r\n{s}")),
        ),
    ]
}

fn ambiguous_requests_get_400_and_close(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut failures = Vec::new();
    let mut fresh_targets = Vec::new();
    for (i, (name, raw)) in cases().into_iter().enumerate() {
        let mut client = proxy.connect();
        client.set_patience(Duration::from_secs(5));
        client.send(&raw).expect("send");
        match client.read_response("POST") {
            Ok(resp) if resp.status == 400 => {
                if let Err(e) = client.expect_close(Duration::from_secs(3)) {
                    failures.push(format!("{name}: 400 but {e}"));
                }
            }
            Ok(resp) => failures.push(format!("{name}: answered {} instead of 400", resp.status)),
            Err(e) => failures.push(format!("{name}: no 400 response ({e})")),
        }
        drop(client);
        // The proxy keeps serving, and the upstream saw nothing of the bad request.
        let target = format!("/fresh/{i}");
        let mut fresh = proxy.connect();
        let resp = fresh.roundtrip(&request::get(&target));
        assert_eq!(resp.status, 200, "fresh request after {name}");
        fresh_targets.push(target);
        let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
        if seen != fresh_targets {
            failures.push(format!("{name}: the upstream received {seen:?}"));
            fresh_targets = seen;
        }
    }
    let late: Vec<String> = backend
        .requests()
        .into_iter()
        .map(|r| r.target)
        .filter(|t| !t.starts_with("/fresh/"))
        .collect();
    if !late.is_empty() {
        failures.push(format!("the upstream received {late:?}"));
    }
    assert!(
        failures.is_empty(),
        "smuggling defences failed:\n{}",
        failures.join("\n")
    );
}
