//! Proxying proper: methods, bodies both ways, upstream keep-alive, pipelining, HTTP/1.0,
//! 100-continue, streaming, concurrency and the access log (DESIGN.md §1, §2.2).

use std::thread;
use std::time::Duration;

use ringway_tests::http::Fnv;
use ringway_tests::{
    Driver, Framing, LISTEN, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config,
    pseudo_random_body, request,
};

both_drivers!(
    methods_and_target_pass_unchanged,
    content_length_body_is_byte_exact,
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
    concurrent_clients_never_see_each_others_bodies,
    client_abort_mid_upload_leaves_the_proxy_serving,
    upstream_pool_keeps_at_most_keepalive_idle_connections,
    access_log_has_a_line_per_request,
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
    for (method, len) in [("POST", 1000), ("PUT", 1), ("POST", 0), ("PATCH", 65_537)] {
        let body = pseudo_random_body(len, len as u64);
        let resp = client.roundtrip(&request::with_body(method, "/upload", &[], &body));
        assert_eq!(resp.status, 200, "{method} {len}");
        assert_eq!(resp.header("x-echo-method"), Some(method));
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
fn concurrent_clients_never_see_each_others_bodies(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
max_body_size = "1MiB""#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    thread::scope(|scope| {
        for client_id in 0..8u64 {
            let proxy = &proxy;
            scope.spawn(move || {
                let mut client = proxy.connect();
                for i in 0..20u64 {
                    let len =
                        usize::try_from((client_id * 7919 + i * 104_729) % 200_000).unwrap_or(0);
                    let body = pseudo_random_body(len, client_id << 32 | i);
                    let target = format!("/client/{client_id}/{i}");
                    let raw = if i % 3 == 0 {
                        let pieces: Vec<&[u8]> = body.chunks(10_000).collect();
                        request::chunked("POST", &target, &[], &pieces)
                    } else {
                        request::with_body("POST", &target, &[], &body)
                    };
                    let resp = client.roundtrip(&raw);
                    assert_eq!(resp.status, 200, "{target}");
                    assert_eq!(resp.header("x-echo-target"), Some(target.as_str()));
                    assert!(
                        resp.body == body,
                        "{target}: got another body ({} bytes)",
                        resp.body.len()
                    );
                }
            });
        }
    });
    assert_eq!(backend.request_count(), 160);
}

fn client_abort_mid_upload_leaves_the_proxy_serving(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    for round in 0..3 {
        let mut client = proxy.connect();
        let mut partial =
            b"POST /aborted HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100000\r\n\r\n"
                .to_vec();
        partial.extend(pseudo_random_body(30_000, round));
        client.send(&partial).expect("send part of the body");
        thread::sleep(Duration::from_millis(100));
        drop(client);
        let resp = proxy.connect().roundtrip(&request::get("/next"));
        assert_eq!(resp.status, 200, "round {round}");
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        ["/next", "/next", "/next"],
        "an aborted upload reached the upstream whole"
    );
}

fn upstream_pool_keeps_at_most_keepalive_idle_connections(driver: Driver) {
    let backend = backend::slow_head_backend(Duration::from_millis(300));
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}"]
keepalive = 2
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    // Six requests at once need six upstream connections.
    thread::scope(|scope| {
        for i in 0..6 {
            let proxy = &proxy;
            scope.spawn(move || {
                let target = format!("/burst/{i}");
                let resp = proxy.connect().roundtrip(&request::get(&target));
                assert_eq!(resp.body_text(), target);
            });
        }
    });
    assert_eq!(backend.connections(), 6);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while backend.open_connections() > 2 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        backend.open_connections() <= 2,
        "{} upstream connections still open with keepalive = 2",
        backend.open_connections()
    );
    let resp = proxy.connect().roundtrip(&request::get("/after-burst"));
    assert_eq!(resp.body_text(), "/after-burst");
    assert_eq!(
        backend.connections(),
        6,
        "an idle pooled connection is reused"
    );
}

fn access_log_has_a_line_per_request(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/logged-get")).status, 200);
    let post = request::with_body("POST", "/logged-post", &[], b"12345");
    assert_eq!(client.roundtrip(&post).status, 200);
    drop(client);
    let exited = proxy.stop();
    assert!(
        exited.status.success(),
        "SIGTERM must drain and exit 0, got {}",
        exited.status
    );
    for line in [
        "\"GET /logged-get HTTP/1.1\" 200 ",
        "\"POST /logged-post HTTP/1.1\" 200 5 ",
    ] {
        assert_eq!(
            exited.stdout.matches(line).count(),
            1,
            "access log must have exactly one line with {line:?}; log:\n{}",
            exited.stdout
        );
    }
}
