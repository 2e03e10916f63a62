//! Proxying proper: methods, bodies both ways, upstream keep-alive, pipelining, HTTP/1.0,
//! 100-continue, streaming, small buffers, IPv6 (DESIGN.md §1, §2.2).

use std::io::{Read, Write};
use std::time::Duration;

use ringway_tests::http::Fnv;
use ringway_tests::{
    Driver, Framing, LISTEN, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config,
    pseudo_random_body, request,
};

both_drivers!(
    methods_and_target_pass_unchanged,
    content_length_body_is_byte_exact,
    response_heads_shorter_and_longer_than_the_upstreams,
    an_upstream_head_passes_unchanged_or_rewritten_as_the_client_needs,
    small_body_leaves_with_the_head,
    chunked_body_is_resent_chunked,
    three_mib_random_bodies_are_byte_exact,
    head_response_has_no_body,
    upstream_connection_reused_over_one_client_connection,
    upstream_connection_reused_across_client_connections,
    pipelined_requests_are_answered_in_order,
    http10_client_gets_response_then_close,
    http10_keep_alive_when_asked,
    http10_client_never_gets_chunked,
    expect_100_continue_is_answered_before_the_body,
    chunked_response_streams_before_upstream_finishes,
    close_delimited_response_arrives_whole,
    interim_and_bodiless_responses_keep_the_connection_in_sync,
    small_buffers_carry_large_heads_and_bodies,
    ipv6_listener_and_client,
);

fn methods_and_target_pass_unchanged(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let target = "/hello/w%C3%B6rld;p=1?x=1&y=%20z&empty=";
    for method in ["GET", "DELETE", "OPTIONS", "PATCH", "PROPFIND"] {
        let resp = client.roundtrip(&request::with_body(method, target, &[], b""));
        assert_eq!(resp.status, 200, "{method}");
        assert_eq!(resp.header("x-echo-method"), Some(method));
        assert_eq!(resp.header("x-echo-target"), Some(target));
        assert_eq!(resp.header("x-echo-body-len"), Some("0"), "{method}");
    }
    for req in backend.requests() {
        assert_eq!(req.version, 1, "ringway speaks HTTP/1.1 upstream");
        assert_eq!(req.body_len, 0);
    }
    assert_eq!(backend.request_count(), 5);
}

fn content_length_body_is_byte_exact(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    // 1024 and 1025 straddle the size up to which the proxy copies body bytes
    // behind the response head instead of writing both with one writev.
    let cases = [
        ("POST", 1000),
        ("PUT", 1),
        ("POST", 0),
        ("PATCH", 65_537),
        ("POST", 1024),
        ("PUT", 1025),
    ];
    for (method, len) in cases {
        let body = pseudo_random_body(len, len as u64);
        let resp = client.roundtrip(&request::with_body(method, "/upload", &[], &body));
        assert_eq!(resp.status, 200, "{method} {len}");
        // The whole head on failure: this once failed in CI (the 1 KiB
        // buffer pass) with the field missing and was not reproduced.
        assert_eq!(
            resp.header("x-echo-method"),
            Some(method),
            "{method} {len}: {:?}",
            resp.headers
        );
        assert_eq!(resp.body.len(), len, "{method} echoed length");
        assert!(resp.body == body, "{method} {len}: echoed body differs");
    }
    let reqs = backend.requests();
    assert_eq!(reqs[0].framing, Framing::Length(1000));
    assert_eq!(reqs[3].framing, Framing::Length(65_537));
    assert_eq!(
        reqs[3].body_hash,
        Fnv::of(&pseudo_random_body(65_537, 65_537))
    );
}

/// The proxy writes its response head over the tail of the upstream's, right in front of the
/// body bytes that came with it, when it is no longer (the echo backend's hop-by-hop fields
/// are dropped); when it is (a route adds a long field), it copies a small body behind the
/// head and writes a larger one with a writev. Bodies from none, through the largest copied
/// (1024 bytes) and the smallest written with a writev, to several reads' worth, several on
/// one connection so that the upstream's buffer is reused: every head and body byte-exact.
fn response_heads_shorter_and_longer_than_the_upstreams(driver: Driver) {
    let backend = backend::echo_backend();
    let long = "l".repeat(300);
    for added in [None, Some(&long)] {
        let mut config = proxy_config(backend.addr(), TEST_LIMITS);
        if let Some(value) = added {
            config.push_str(&format!(
                "  response_headers = {{ \"X-Added\" = \"{value}\" }}\n"
            ));
        }
        let proxy = Ringway::start(&config, driver);
        let mut client = proxy.connect();
        for len in [
            0,
            100,
            1024,
            1025,
            16 * 1024,
            16 * 1024 + 1,
            60_000,
            100,
            1025,
        ] {
            let body = pseudo_random_body(len, len as u64);
            let resp = client.roundtrip(&request::with_body("POST", "/up", &[], &body));
            // In any order: the proxy writes the length it relays last.
            let mut names: Vec<&str> = resp.headers.0.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            let mut expected = vec![
                "Content-Length",
                "Content-Type",
                "X-Echo-Method",
                "X-Echo-Target",
                "X-Echo-Connection",
                "X-Echo-Body-Len",
                "X-Echo-Body-Hash",
                "X-Backend-End2End",
                "Set-Cookie",
                "Set-Cookie",
            ];
            if added.is_some() {
                expected.push("x-added");
            }
            expected.sort_unstable();
            assert_eq!(names, expected, "{len}, added {}", added.is_some());
            assert_eq!(resp.header("x-added"), added.map(String::as_str));
            assert_eq!(resp.header("x-echo-target"), Some("/up"));
            assert_eq!(resp.header("content-length"), Some(&*len.to_string()));
            assert!(resp.body == body, "{len}: body differs");
        }
    }
    assert_eq!(
        backend.connections(),
        2,
        "one upstream connection per proxy, reused"
    );
}

/// An upstream head that needs no change (HTTP/1.1, plain fields, nothing hop-by-hop,
/// Content-Length last) reaches an HTTP/1.1 keep-alive client byte for byte, sent from the
/// upstream's buffer together with the body; an HTTP/1.0 client or a closing request gets it
/// rewritten. Bodies from none to several reads' worth, on one connection each.
fn an_upstream_head_passes_unchanged_or_rewritten_as_the_client_needs(driver: Driver) {
    let backend = backend::sized_body_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    // Raw bytes, to see the head exactly as sent.
    let mut client = std::net::TcpStream::connect(proxy.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for len in [0, 100, 1024, 1025, 16 * 1024, 60_000, 100] {
        let raw = format!("GET /{len} HTTP/1.1\r\nHost: t\r\n\r\n");
        client.write_all(raw.as_bytes()).unwrap();
        let expected_head = format!(
            "HTTP/1.1 200 OK\r\nServer: sized\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
        );
        let mut got = vec![0; expected_head.len() + len];
        client.read_exact(&mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got[..expected_head.len()]),
            expected_head,
            "{len}"
        );
        assert!(
            got[expected_head.len()..] == pseudo_random_body(len, len as u64),
            "{len}: body differs"
        );
    }
    // The same head, rewritten: "Connection: close" for a closing request and for an
    // HTTP/1.0 client.
    for raw in [
        "GET /1025 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /1025 HTTP/1.0\r\n\r\n",
    ] {
        let resp = proxy.connect().roundtrip(raw.as_bytes());
        assert_eq!(resp.header("connection"), Some("close"), "{raw}");
        assert_eq!(resp.header("server"), Some("sized"));
        assert!(resp.body == pseudo_random_body(1025, 1025), "{raw}");
    }
}

/// A small body that arrives whole with its head goes upstream in the same write: one TCP
/// segment, not a head and then a body (the backend counts the segments its connection has
/// received). Each request is the first on a fresh proxy, so on a new upstream connection.
fn small_body_leaves_with_the_head(driver: Driver) {
    let cases = [
        (
            "form",
            request::with_body("POST", "/", &[], b"name=value&other=1"),
            18,
        ),
        (
            "chunked",
            request::chunked("PUT", "/", &[], &[b"chu", b"nked"]),
            7,
        ),
        (
            "600 B",
            request::with_body("POST", "/", &[], &[b'j'; 600]),
            600,
        ),
    ];
    for (name, raw, payload) in cases {
        let backend = backend::segment_counting_backend();
        let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
        let resp = proxy.connect().roundtrip(&raw);
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(resp.header("x-data-segments"), Some("1"), "{name}");
        assert_eq!(
            resp.header("x-body-len"),
            Some(&*payload.to_string()),
            "{name}"
        );
    }
}

fn chunked_body_is_resent_chunked(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    // A chunk extension and a trailer field are legal (RFC 9112 §7.1.1, §7.1.2).
    let raw = b"PUT /chunks HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n\
                6;name=value\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";
    let resp = client.roundtrip(raw);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_text(), "hello chunked world");
    let body = pseudo_random_body(100_000, 7);
    let pieces: Vec<&[u8]> = body.chunks(7_777).collect();
    let resp = client.roundtrip(&request::chunked("POST", "/chunks2", &[], &pieces));
    assert_eq!(resp.status, 200);
    assert!(
        resp.body == body,
        "100 kB chunked body differs after the proxy"
    );
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 2);
    for req in &reqs {
        assert_eq!(
            req.framing,
            Framing::Chunked,
            "chunked bodies are re-sent chunked"
        );
        assert!(!req.headers.contains("content-length"));
    }
    assert_eq!(reqs[0].body, b"hello chunked world");
}

fn three_mib_random_bodies_are_byte_exact(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
max_body_size = "8MiB""#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    let body = pseudo_random_body(3 << 20, 0x5eed);
    let hash = format!("{:016x}", Fnv::of(&body));
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body("POST", "/big", &[], &body));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("x-echo-body-hash"),
        Some(hash.as_str()),
        "upload"
    );
    assert_eq!(resp.body.len(), body.len());
    assert!(
        resp.body == body,
        "3 MiB Content-Length body differs on the way back"
    );
    let pieces: Vec<&[u8]> = body.chunks(64 * 1024 + 3).collect();
    let resp = client.roundtrip(&request::chunked("PUT", "/big", &[], &pieces));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("x-echo-body-hash"),
        Some(hash.as_str()),
        "chunked upload"
    );
    assert!(
        resp.body == body,
        "3 MiB chunked body differs on the way back"
    );
}

fn head_response_has_no_body(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body("HEAD", "/h", &[], b""));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-length"),
        Some("5"),
        "HEAD keeps the GET length"
    );
    // The response to HEAD has no body even though it announces 5 bytes: the next response on
    // the connection must start right after the head.
    let resp = client.roundtrip(&request::get("/after-head"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-echo-target"), Some("/after-head"));
}

fn upstream_connection_reused_over_one_client_connection(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    for i in 0..100 {
        let resp = client.roundtrip(&request::get(&format!("/seq/{i}")));
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-echo-target"),
            Some(format!("/seq/{i}").as_str())
        );
    }
    assert_eq!(backend.request_count(), 100);
    assert_eq!(
        backend.connections(),
        1,
        "100 requests must share one upstream connection"
    );
}

fn upstream_connection_reused_across_client_connections(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    for i in 0..100 {
        let mut client = proxy.connect();
        // Half the clients ask to close: that is hop-by-hop and must not close the upstream.
        let headers: &[(&str, &str)] = if i % 2 == 0 {
            &[("Connection", "close")]
        } else {
            &[]
        };
        let resp = client.roundtrip(&request::with_body("GET", &format!("/c/{i}"), headers, b""));
        assert_eq!(resp.status, 200);
        if i % 2 == 0 {
            client
                .expect_close(Duration::from_secs(3))
                .expect("Connection: close from the client is honoured");
        }
    }
    assert_eq!(backend.request_count(), 100);
    assert_eq!(
        backend.connections(),
        1,
        "100 client connections one after another must share one upstream connection"
    );
}

fn pipelined_requests_are_answered_in_order(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let mut batch = request::get("/p1");
    batch.extend(request::with_body("POST", "/p2", &[], b"hello"));
    batch.extend(request::chunked("PUT", "/p3", &[], &[b"chu", b"nked"]));
    batch.extend(request::with_body("HEAD", "/p4", &[], b""));
    batch.extend(request::get("/p5"));
    client.send(&batch).expect("send the pipelined batch");
    let expected = [
        ("GET", "/p1", ""),
        ("POST", "/p2", "hello"),
        ("PUT", "/p3", "chunked"),
        ("HEAD", "/p4", ""),
        ("GET", "/p5", ""),
    ];
    for (method, target, body) in expected {
        let resp = client
            .read_response(method)
            .unwrap_or_else(|e| panic!("pipelined {method} {target}: {e}"));
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-echo-target"),
            Some(target),
            "answers out of order"
        );
        assert_eq!(resp.body_text(), body);
    }
}

fn http10_client_gets_response_then_close(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    // HTTP/1.0 may omit Host (RFC 9112 §3.2 only requires it of 1.1).
    let resp = client.roundtrip(b"POST /ten HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(resp.status, 200);
    assert_ne!(
        resp.framing,
        Framing::Chunked,
        "HTTP/1.0 cannot read chunked"
    );
    assert_eq!(resp.body_text(), "abc");
    client
        .expect_close(Duration::from_secs(3))
        .expect("HTTP/1.0 without keep-alive: connection closed after the response");
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].target, "/ten");
    assert_eq!(reqs[0].version, 1);
    assert!(
        reqs[0].headers.contains("host"),
        "an HTTP/1.1 request upstream needs a Host (RFC 9112 §3.2)"
    );
}

fn http10_keep_alive_when_asked(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let raw = b"GET /ka1 HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n";
    let resp = client.roundtrip(raw);
    assert_eq!(resp.status, 200);
    assert!(
        matches!(resp.framing, Framing::Length(_)),
        "a kept-alive HTTP/1.0 response needs Content-Length, got {:?}",
        resp.framing
    );
    assert!(
        resp.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("keep-alive")),
        "HTTP/1.0 keep-alive must be confirmed with Connection: keep-alive"
    );
    let resp = client.roundtrip(b"GET /ka2 HTTP/1.0\r\nHost: test.local\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-echo-target"), Some("/ka2"));
    client
        .expect_close(Duration::from_secs(3))
        .expect("closed after an HTTP/1.0 request without keep-alive");
}

fn http10_client_never_gets_chunked(driver: Driver) {
    let backend = backend::chunked_flush_backend(
        b"first ".to_vec(),
        vec![b"second ".to_vec(), b"third".to_vec()],
    );
    backend.release();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(b"GET /old HTTP/1.0\r\nHost: test.local\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_ne!(resp.framing, Framing::Chunked);
    assert!(!resp.headers.contains("transfer-encoding"));
    assert_eq!(resp.body_text(), "first second third");
}

fn expect_100_continue_is_answered_before_the_body(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    client
        .send(b"POST /continue HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        .expect("send head");
    client.set_patience(Duration::from_secs(5));
    let interim = client
        .read_response_head()
        .expect("ringway must answer 100 Continue before the body is sent");
    assert_eq!(interim.status, 100);
    assert_eq!(interim.version, 1);
    client.send(b"hello world").expect("send body");
    let resp = client.read_response("POST").expect("final response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_text(), "hello world");
    // Clients (curl) stop waiting for 100 and send the body anyway: no stray 100 may come
    // after the final response and desynchronise the next one.
    for round in 0..2 {
        let resp = client.roundtrip(
            format!(
                "POST /eager/{round} HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\n\
                 Expect: 100-continue\r\n\r\neager"
            )
            .as_bytes(),
        );
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-echo-target"),
            Some(format!("/eager/{round}").as_str())
        );
        assert_eq!(resp.body_text(), "eager");
    }
    let resp = client.roundtrip(&request::get("/last"));
    assert_eq!(resp.header("x-echo-target"), Some("/last"));
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].body, b"hello world");
}

fn chunked_response_streams_before_upstream_finishes(driver: Driver) {
    let first = b"first part, flushed at once;".to_vec();
    let rest = vec![b" second".to_vec(), b" and last".to_vec()];
    let backend = backend::chunked_flush_backend(first.clone(), rest);
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    client.send(&request::get("/stream")).expect("send");
    let head = client
        .read_response_head()
        .expect("response head before the body ends");
    assert_eq!(head.status, 200);
    let framing = ringway_tests::http::response_framing("GET", &head).expect("framing");
    let mut body = Vec::new();
    client
        .read_body(framing, &mut |part| {
            body.extend_from_slice(part);
            if body.len() >= first.len() {
                backend.release();
            }
        })
        .expect("complete streamed body");
    assert!(
        !backend.gate_expired(),
        "the first chunk did not reach the client while the upstream was still sending"
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        "first part, flushed at once; second and last"
    );
}

fn close_delimited_response_arrives_whole(driver: Driver) {
    let body = pseudo_random_body(200_000, 3);
    let backend = backend::close_delimited_backend(body.clone());
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::get("/until-close"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), body.len());
    assert!(resp.body == body, "close-delimited body differs");
}

/// Upstream responses that are valid but easy to mis-frame: an interim 103 before the final
/// answer, 204 and 304 announcing a length they never send (RFC 9112 §6.3 rules 1-2). Each is
/// requested twice on one client connection: a proxy that mis-frames one answers the second
/// request late, wrongly, or not at all.
fn interim_and_bodiless_responses_keep_the_connection_in_sync(driver: Driver) {
    let early_hints = backend::canned_response_backend(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let no_content =
        backend::canned_response_backend(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
    let not_modified = backend::canned_response_backend(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"v1\"\r\n\r\n",
    );
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/103"
  proxy = "http://{}"
  read_timeout = "2s"
  [[server.route]]
  prefix = "/204"
  proxy = "http://{}"
  read_timeout = "2s"
  [[server.route]]
  prefix = "/304"
  proxy = "http://{}"
  read_timeout = "2s"
"#,
        early_hints.addr(),
        no_content.addr(),
        not_modified.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    client.set_patience(Duration::from_secs(4));
    for (target, status, body) in [("/103", 200, "ok"), ("/204", 204, ""), ("/304", 304, "")] {
        for round in 0..2 {
            let resp = client.roundtrip(&request::get(target));
            assert_eq!(resp.status, status, "{target} round {round}");
            assert_eq!(resp.body_text(), body, "{target} round {round}");
        }
    }
    assert_eq!(early_hints.request_count(), 2);
    assert_eq!(no_content.request_count(), 2);
    assert_eq!(not_modified.request_count(), 2);
}

/// Eight clients at once on one worker, each posting its own bodies on a keep-alive
/// connection: every echo must be the client's own body (DESIGN.md §4: nothing may corrupt
/// another connection).
/// `buffer_size` is the read size, not a limit: heads and bodies larger than it must cross
/// buffer boundaries intact in both directions.
fn small_buffers_carry_large_heads_and_bodies(driver: Driver) {
    let backend = backend::echo_backend();
    let config = format!(
        "[runtime]\nbuffer_size = \"1KiB\"\n{}",
        proxy_config(
            backend.addr(),
            "header_timeout = \"3s\"\nmax_body_size = \"4MiB\""
        )
        .replace("[runtime]\n", "")
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let big_value = "v".repeat(10_000);
    let body = pseudo_random_body(3 << 20, 11);
    let headers = [
        ("X-Large", big_value.as_str()),
        ("X-Echo-Big-Header", "12000"),
    ];
    let resp = client.roundtrip(&request::with_body(
        "POST",
        "/small-buffers",
        &headers,
        &body,
    ));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("x-big").map(str::len),
        Some(12_000),
        "12 KB response field"
    );
    assert!(resp.body == body, "3 MiB body through 1 KiB buffers");
    let pieces: Vec<&[u8]> = body.chunks(3000).collect();
    let resp = client.roundtrip(&request::chunked(
        "PUT",
        "/small-buffers",
        &headers,
        &pieces,
    ));
    assert_eq!(resp.status, 200);
    assert!(
        resp.body == body,
        "3 MiB chunked body through 1 KiB buffers"
    );
    let req = &backend.requests()[0];
    assert_eq!(req.headers.get("x-large"), Some(big_value.as_str()));
}

fn ipv6_listener_and_client(driver: Driver) {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let listen = listener.local_addr().expect("address");
    drop(listener);
    let backend = backend::echo_backend();
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{listen}"]
  [[server.route]]
  prefix = "/"
  proxy = "http://{}"
  allow = ["::1"]
"#,
        backend.addr()
    );
    let dir = ringway_tests::proxy::TempDir::new();
    let file = dir.path().join("ringway.toml");
    std::fs::write(&file, config).expect("write config");
    let args = [
        "run".to_owned(),
        "-c".to_owned(),
        file.display().to_string(),
        "--workers".to_owned(),
        "1".to_owned(),
        "--driver".to_owned(),
        driver.as_arg().to_owned(),
        "--no-pin".to_owned(),
    ];
    let proxy = Ringway::spawn(&args, listen, dir).expect("ringway on [::1]");
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body(
        "GET",
        "/v6",
        &[("Host", "[::1]:8080")],
        b"",
    ));
    assert_eq!(
        resp.status, 200,
        "allow = [\"::1\"] admits an IPv6 loopback client"
    );
    let req = &backend.requests()[0];
    assert_eq!(req.headers.get("x-forwarded-for"), Some("::1"));
    assert_eq!(req.headers.get("x-real-ip"), Some("::1"));
    assert_eq!(req.headers.get("x-forwarded-host"), Some("[::1]:8080"));
}
