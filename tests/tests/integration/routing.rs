//! Routing: nginx location precedence, URI replacement of inline proxy URLs, allow/deny,
//! 404, and server selection by Host (DESIGN.md §2.1, §2.2).

use ringway_tests::{Driver, LISTEN, Ringway, app_config, backend, both_drivers, request};

both_drivers!(
    nginx_location_precedence,
    inline_proxy_url_replaces_matched_prefix,
    allow_and_deny,
    unmatched_path_is_404,
    server_without_routes_answers_404,
    server_chosen_by_host,
    path_tricks_cannot_bypass_an_acl,
    response_headers_apply_to_error_pages,
);

/// The example of nginx's `location` documentation, as ringway routes with distinct bodies.
fn nginx_location_precedence(driver: Driver) {
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  path = "/"
  respond = 200
  body = "A"
  [[server.route]]
  prefix = "/"
  respond = 200
  body = "B"
  [[server.route]]
  prefix = "/documents/"
  respond = 200
  body = "C"
  [[server.route]]
  prefix = "/images/"
  stop_regex = true
  respond = 200
  body = "D"
  [[server.route]]
  regex = '\.(gif|jpg|jpeg)$'
  case_insensitive = true
  respond = 200
  body = "E"
  [[server.route]]
  path = "/empty"
  respond = 204
"#
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let table = [
        ("/", "A"),
        ("/index.html", "B"),
        ("/documents/document.html", "C"),
        ("/images/1.gif", "D"),
        ("/documents/1.jpg", "E"),
        ("/documents/1.JPG", "E"),
        // Beyond the documented five: the regex sees the path, not the query; a prefix
        // without stop_regex loses to a matching regex; stop_regex wins even without one.
        ("/documents/1.jpg?size=big", "E"),
        ("/documents/1.jpg.txt", "C"),
        ("/images/notes.txt", "D"),
        ("/deep/a.Jpeg", "E"),
        ("/?q=1", "A"),
    ];
    for (target, expected) in table {
        let resp = client.roundtrip(&request::get(target));
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(resp.body_text(), expected, "route chosen for {target}");
    }
    let resp = client.roundtrip(&request::get("/empty"));
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());
    assert_eq!(
        client.roundtrip(&request::get("/")).body_text(),
        "A",
        "still in sync after 204"
    );
}

fn inline_proxy_url_replaces_matched_prefix(driver: Driver) {
    let backend = backend::echo_backend();
    let b = backend.addr();
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/jhub/"
  proxy = "http://{b}/hub/"
  [[server.route]]
  prefix = "/api"
  proxy = "http://{b}/v2"
  [[server.route]]
  path = "/exact"
  proxy = "http://{b}/replaced"
  [[server.route]]
  prefix = "/plain/"
  proxy = "http://{b}"
"#
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let table = [
        ("/jhub/x?y=1", "/hub/x?y=1"),
        ("/jhub/", "/hub/"),
        ("/jhub/a/b/c.js", "/hub/a/b/c.js"),
        ("/api/users?id=7", "/v2/users?id=7"),
        ("/exact?q=1", "/replaced?q=1"),
        ("/plain/kept/as/is?z", "/plain/kept/as/is?z"),
    ];
    for (sent, arrives) in table {
        let resp = client.roundtrip(&request::get(sent));
        assert_eq!(resp.status, 200, "{sent}");
        assert_eq!(
            resp.header("x-echo-target"),
            Some(arrives),
            "{sent} upstream target"
        );
    }
}

fn allow_and_deny(driver: Driver) {
    let backend = backend::echo_backend();
    let config = app_config(
        backend.addr(),
        r#"  [[server.route]]
  prefix = "/denied"
  deny = ["127.0.0.1"]
  proxy = "app"
  [[server.route]]
  prefix = "/allowed"
  allow = ["127.0.0.1"]
  proxy = "app"
  [[server.route]]
  prefix = "/elsewhere"
  allow = ["10.0.0.0/8", "192.168.1.0/24"]
  proxy = "app"
  [[server.route]]
  prefix = "/deny-first"
  allow = ["127.0.0.1"]
  deny = ["127.0.0.0/8"]
  proxy = "app"
  [[server.route]]
  prefix = "/deny-others"
  deny = ["10.0.0.0/8"]
  proxy = "app"
"#,
    );
    let proxy = Ringway::start(&config, driver);
    let table = [
        ("/denied", 403),
        ("/allowed", 200),
        ("/elsewhere", 403),
        ("/deny-first", 403),
        ("/deny-others", 200),
    ];
    for (target, status) in table {
        let mut client = proxy.connect();
        let resp = client.roundtrip(&request::get(target));
        assert_eq!(resp.status, status, "{target}");
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        ["/allowed", "/deny-others"],
        "denied requests reached the upstream"
    );
}

fn unmatched_path_is_404(driver: Driver) {
    let backend = backend::echo_backend();
    let config = app_config(
        backend.addr(),
        r#"  [[server.route]]
  prefix = "/api/"
  proxy = "app"
"#,
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/other")).status, 404);
    assert_eq!(
        client.roundtrip(&request::get("/api")).status,
        404,
        "/api is not under /api/"
    );
    let resp = client.roundtrip(&request::get("/api/x"));
    assert_eq!(resp.status, 200, "a 404 keeps the connection usable");
    assert_eq!(backend.request_count(), 1);
}

fn server_without_routes_answers_404(driver: Driver) {
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
"#
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/")).status, 404);
    assert_eq!(client.roundtrip(&request::get("/anything")).status, 404);
}

fn server_chosen_by_host(driver: Driver) {
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
names = ["a.test"]
  [[server.route]]
  prefix = "/"
  respond = 200
  body = "A"
[[server]]
listen = ["{LISTEN}"]
names = ["*.wild.test"]
  [[server.route]]
  prefix = "/"
  respond = 200
  body = "W"
[[server]]
listen = ["{LISTEN}"]
names = ["b.test"]
default = true
  [[server.route]]
  prefix = "/"
  respond = 200
  body = "B"
"#
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let table = [
        ("a.test", "A"),
        ("A.TEST", "A"),
        ("a.test:8080", "A"),
        ("a.test.", "A"),
        ("x.wild.test", "W"),
        ("deep.x.wild.test:1", "W"),
        ("b.test", "B"),
        ("unknown.test", "B"),
        ("wild.test", "B"),
        ("127.0.0.1", "B"),
    ];
    for (host, expected) in table {
        let resp = client.roundtrip(&request::with_body("GET", "/", &[("Host", host)], b""));
        assert_eq!(resp.status, 200, "Host {host}");
        assert_eq!(resp.body_text(), expected, "server chosen for Host {host}");
    }
}

/// Routes match the normalised path, as nginx's locations do: escapes decoded, slashes
/// merged, dot segments resolved. Matching the raw path would let `/%61dmin` slip past a
/// `deny` on `/admin` into the catch-all route.
fn path_tricks_cannot_bypass_an_acl(driver: Driver) {
    let backend = backend::echo_backend();
    let config = app_config(
        backend.addr(),
        r#"  [[server.route]]
  prefix = "/admin"
  deny = ["0.0.0.0/0", "::/0"]
  proxy = "app"
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
    );
    let proxy = Ringway::start(&config, driver);
    let table = [
        ("/admin", 403),
        ("/admin/users", 403),
        ("//admin", 403),
        ("/./admin", 403),
        ("/%61dmin", 403),
        ("/%2Fadmin", 403),
        ("/public/../admin", 403),
        ("/public/%2e%2e/admin", 403),
        ("/../admin", 400),
        ("/public/page", 200),
    ];
    let mut failures = Vec::new();
    for (target, status) in table {
        let mut client = proxy.connect();
        let resp = client.roundtrip(&request::get(target));
        if resp.status != status {
            failures.push(format!("{target}: {} instead of {status}", resp.status));
        }
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert!(
        failures.is_empty(),
        "ACL bypass: {failures:?}; upstream saw {seen:?}"
    );
    assert_eq!(seen, ["/public/page"]);
}

/// DESIGN.md §2.2: `response_headers` apply to every response, ringway's own error pages
/// included (nginx `add_header ... always`).
fn response_headers_apply_to_error_pages(driver: Driver) {
    let backend = backend::echo_backend();
    let down = backend::closed_port();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}"]
[upstreams.down]
servers = ["{down}"]
[[server]]
listen = ["{LISTEN}"]
response_headers = {{ "X-Frame-Options" = "DENY" }}
  [[server.route]]
  prefix = "/ok/"
  proxy = "app"
  [[server.route]]
  prefix = "/denied/"
  deny = ["127.0.0.1"]
  proxy = "app"
  [[server.route]]
  prefix = "/down/"
  proxy = "down"
  [[server.route]]
  path = "/fixed"
  respond = 200
  body = "fixed"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let table = [
        ("/ok/x", 200),
        ("/denied/x", 403),
        ("/down/x", 502),
        ("/missing", 404),
        ("/fixed", 200),
    ];
    for (target, status) in table {
        let mut client = proxy.connect();
        let resp = client.roundtrip(&request::get(target));
        assert_eq!(resp.status, status, "{target}");
        assert_eq!(
            resp.header("x-frame-options"),
            Some("DENY"),
            "{target} ({status})"
        );
    }
}
