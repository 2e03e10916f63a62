//! Headers on the way through (DESIGN.md §2.2): Host preserved, X-Forwarded-* and X-Real-IP
//! added and not spoofable, hop-by-hop fields removed both ways (RFC 9110 §7.6.1), route
//! header edits, repeated fields, absolute-form targets (RFC 9112 §3.2.2).

use ringway_tests::{
    Driver, LISTEN, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request,
};

both_drivers!(
    forwarding_headers_are_added,
    spoofed_forwarding_headers_are_replaced,
    trusted_proxy_forwarded_for_is_appended,
    hop_by_hop_headers_are_removed_both_ways,
    route_header_edits_apply,
    repeated_fields_keep_their_order,
    absolute_form_target_is_forwarded_in_origin_form,
    each_connection_forwards_its_own_address,
);

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

fn repeated_fields_keep_their_order(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let headers = [
        ("X-Multi", "one"),
        ("X-Other", "x"),
        ("X-Multi", "two"),
        ("X-Multi", "three, four"),
    ];
    let resp = client.roundtrip(&request::with_body("GET", "/multi", &headers, b""));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.headers.get_all("set-cookie"),
        ["first=1", "second=2"],
        "every Set-Cookie line reaches the client, in order"
    );
    let req = &backend.requests()[0];
    assert_eq!(
        req.headers.get_all("x-multi").join(", "),
        "one, two, three, four",
        "repeated request fields keep their order (RFC 9110 §5.3)"
    );
}

fn absolute_form_target_is_forwarded_in_origin_form(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    let raw = b"GET http://abs.test:81/abs/path?q=1 HTTP/1.1\r\nHost: ignored.test\r\n\r\n";
    let resp = client.roundtrip(raw);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-echo-target"), Some("/abs/path?q=1"));
    let req = &backend.requests()[0];
    // RFC 9112 §3.2.2: the request-target's authority wins over the Host field, and a proxy
    // MUST send a Host generated from it.
    assert_eq!(req.headers.get_all("host"), ["abs.test:81"]);
}

// DESIGN.md §2.2: X-Forwarded-For and X-Real-IP are the connection's peer.
// The lines are rendered once per connection; whatever one connection keeps
// must never reach the next one on the same worker.
fn each_connection_forwards_its_own_address(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let sources = ["127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.2"];
    for (i, source) in sources.into_iter().enumerate() {
        let mut client = proxy.connect_from(source.parse().unwrap());
        for _ in 0..2 {
            let resp = client.roundtrip(&request::with_body("GET", "/", &[("Host", "a")], b""));
            assert_eq!(resp.status, 200);
        }
        // Closed before the next connection, whose state may reuse this one's.
        drop(client);
        let requests = backend.requests();
        for req in &requests[2 * i..2 * i + 2] {
            assert_eq!(req.headers.get_all("x-forwarded-for"), [source], "{i}");
            assert_eq!(req.headers.get_all("x-real-ip"), [source], "{i}");
        }
    }
}
