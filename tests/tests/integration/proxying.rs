//! Proxying proper: methods, bodies both ways, upstream keep-alive, pipelining, HTTP/1.0,
//! 100-continue, streaming, forwarding and hop-by-hop headers (DESIGN.md §1, §2.2).

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
    forwarding_headers_are_added,
    spoofed_forwarding_headers_are_replaced,
    trusted_proxy_forwarded_for_is_appended,
    hop_by_hop_headers_are_removed_both_ways,
    route_header_edits_apply,
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
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 1);
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

fn forwarding_headers_are_added(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body(
        "GET",
        "/fwd",
        &[("Host", "Example.Test:8443")],
        b"",
    ));
    assert_eq!(resp.status, 200);
    let req = &backend.requests()[0];
    assert_eq!(
        req.headers.get_all("host"),
        ["Example.Test:8443"],
        "Host preserved"
    );
    assert_eq!(req.headers.get_all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(req.headers.get_all("x-forwarded-proto"), ["http"]);
    assert_eq!(
        req.headers.get_all("x-forwarded-host"),
        ["Example.Test:8443"]
    );
    assert_eq!(req.headers.get_all("x-real-ip"), ["127.0.0.1"]);
}

fn spoofed_forwarding_headers_are_replaced(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let spoofed = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-For", "7.7.7.7"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
    ];
    let resp = client.roundtrip(&request::with_body("GET", "/spoof", &spoofed, b""));
    assert_eq!(resp.status, 200);
    let req = &backend.requests()[0];
    assert_eq!(
        req.headers.get_all("x-forwarded-for"),
        ["127.0.0.1"],
        "client cannot spoof XFF"
    );
    assert_eq!(req.headers.get_all("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(req.headers.get_all("x-forwarded-proto"), ["http"]);
}

fn trusted_proxy_forwarded_for_is_appended(driver: Driver) {
    let backend = backend::echo_backend();
    let config = proxy_config(backend.addr(), TEST_LIMITS).replace(
        &format!("listen = [\"{LISTEN}\"]"),
        &format!("listen = [\"{LISTEN}\"]\ntrusted_proxies = [\"127.0.0.0/8\"]"),
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(&request::with_body(
        "GET",
        "/trusted",
        &[("X-Forwarded-For", "6.6.6.6")],
        b"",
    ));
    assert_eq!(resp.status, 200);
    let req = &backend.requests()[0];
    let chain = req.headers.get_all("x-forwarded-for").join(", ");
    assert_eq!(
        chain, "6.6.6.6, 127.0.0.1",
        "a trusted peer's XFF is appended to"
    );
}

fn hop_by_hop_headers_are_removed_both_ways(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let headers = [
        ("Connection", "keep-alive, X-Client-Hop"),
        ("X-Client-Hop", "secret"),
        ("Keep-Alive", "timeout=300"),
        ("TE", "trailers"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("X-End2End", "kept"),
    ];
    let resp = client.roundtrip(&request::with_body("GET", "/hop", &headers, b""));
    assert_eq!(resp.status, 200);
    let req = &backend.requests()[0];
    for name in [
        "connection",
        "x-client-hop",
        "keep-alive",
        "te",
        "proxy-connection",
        "upgrade",
    ] {
        let value = req.headers.get(name);
        let stripped = value.is_none()
            || (name == "connection"
                && !value.is_some_and(|v| v.to_ascii_lowercase().contains("x-client-hop")));
        assert!(
            stripped,
            "hop-by-hop {name}: {value:?} reached the upstream"
        );
    }
    assert_eq!(req.headers.get("x-end2end"), Some("kept"));
    assert!(
        !resp.headers.contains("x-backend-hop"),
        "field named in the upstream's Connection reached the client"
    );
    assert_ne!(
        resp.header("keep-alive"),
        Some("timeout=60, max=1000"),
        "upstream Keep-Alive reached the client"
    );
    assert!(
        !resp
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("x-backend-hop")),
        "upstream Connection header reached the client"
    );
    assert_eq!(resp.header("x-backend-end2end"), Some("yes"));
}

fn route_header_edits_apply(driver: Driver) {
    let backend = backend::echo_backend();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}"]
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
  request_headers = {{ "X-Added" = "yes", "X-Remove-Me" = "", "X-Host" = "$host", "X-Client" = "$remote_addr" }}
  response_headers = {{ "X-Resp-Added" = "1", "X-Backend-End2End" = "" }}
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let headers = [("Host", "Mixed.Case:81"), ("X-Remove-Me", "secret")];
    let resp = client.roundtrip(&request::with_body("GET", "/edit", &headers, b""));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-resp-added"), Some("1"));
    assert!(
        !resp.headers.contains("x-backend-end2end"),
        "response header \"\" removes it"
    );
    let req = &backend.requests()[0];
    assert_eq!(req.headers.get("x-added"), Some("yes"));
    assert!(
        !req.headers.contains("x-remove-me"),
        "request header \"\" removes it"
    );
    assert_eq!(
        req.headers.get("x-host"),
        Some("mixed.case"),
        "$host: no port, lower case"
    );
    assert_eq!(req.headers.get("x-client"), Some("127.0.0.1"));
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
