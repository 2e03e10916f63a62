//! Servers, listeners, names, routes, access lists and header edits.

use super::*;

#[test]
fn route_match_and_action_rules() {
    let head = "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\n";
    let cases = [
        ("respond = 200\n", "a route needs one match"),
        ("prefix = \"/\"\n", "a route needs one action"),
        (
            "prefix = \"/\"\npath = \"/\"\nrespond = 200\n",
            "`prefix` conflicts with `path`",
        ),
        (
            "prefix = \"/\"\nrespond = 200\nproxy = \"http://127.0.0.1:1\"\n",
            "`respond` conflicts with `proxy`",
        ),
        ("prefix = \"x\"\nrespond = 200\n", "must start with \"/\""),
        (
            "prefix = \"/a?b\"\nrespond = 200\n",
            "a query or fragment never matches",
        ),
        (
            "prefix = \"/\"\ncase_insensitive = true\nrespond = 200\n",
            "`case_insensitive` applies only to `regex`",
        ),
        (
            "regex = \"^/\"\nstop_regex = true\nrespond = 200\n",
            "`stop_regex` applies only to `prefix`",
        ),
        (
            "prefix = \"/\"\nproxy = \"http://127.0.0.1:1\"\nbody = \"x\"\n",
            "`body` needs `respond",
        ),
        (
            "prefix = \"/\"\nrespond = 99\n",
            "status 99 is out of range 100..=599",
        ),
        (
            "prefix = \"/\"\nrespond = 204\nbody = \"x\"\n",
            "a 204 response cannot have a body",
        ),
        (
            "regex = \"^/a\"\nproxy = \"http://127.0.0.1:1/x/\"\n",
            "which a regex route cannot have",
        ),
        (
            "prefix = \"/\"\nproxy = \"ftp://h:1\"\n",
            "only \"http://host:port[/uri]\" URLs",
        ),
        (
            "prefix = \"/\"\nproxy = \"http://127.0.0.1:1/?a=1\"\n",
            "a query or fragment in a proxy URL",
        ),
    ];
    for (route, message) in cases {
        let e = single_error(&format!("{head}{route}"));
        assert!(e.contains(message), "{route:?}: {e}");
    }
}

#[test]
fn duplicate_routes_in_one_server() {
    let text = "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/a\"\nrespond = 200\n[[server.route]]\npath = \"/a\"\nrespond = 200\n[[server.route]]\nprefix = \"/a\"\nrespond = 201\n";
    let e = single_error(text);
    assert!(e.starts_with("ringway.toml:10:10: server[0].route[2]: duplicate route: prefix \"/a\" is already server[0].route[0]'s"), "{e}");
    let two_servers = "[[server]]\nlisten = [\"127.0.0.1:80\"]\n[[server.route]]\nprefix = \"/a\"\nrespond = 200\n[[server]]\nlisten = [\"127.0.0.1:81\"]\n[[server.route]]\nprefix = \"/a\"\nrespond = 200\n";
    load(two_servers);
}

#[test]
fn listeners_names_and_defaults() {
    let s = load(
        r#"
[[server]]
listen = ["127.0.0.1:80", "[::1]:80"]
names = ["www.Example.com.", "*.example.com"]
  [[server.route]]
  prefix = "/"
  respond = 200
[[server]]
listen = ["127.0.0.1:80"]
names = ["other.org"]
default = true
"#,
    );
    assert_eq!(s.listeners.len(), 2);
    assert_eq!(
        s.listeners[0].addr,
        "127.0.0.1:80".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.listeners[0].servers, vec![0, 1]);
    assert_eq!(s.listeners[0].default_server, 1);
    assert_eq!(s.listeners[1].servers, vec![0]);
    assert_eq!(s.listeners[1].default_server, 0);
    assert_eq!(
        s.servers[0].names,
        vec![
            crate::snapshot::ServerName::Exact("www.example.com".into()),
            crate::snapshot::ServerName::Wildcard(".example.com".into()),
        ]
    );

    let dup_name = "[[server]]\nlisten = [\"127.0.0.1:80\"]\nnames = [\"a.com\"]\n[[server]]\nlisten = [\"127.0.0.1:80\"]\nnames = [\"A.com\"]\n";
    let e = single_error(dup_name);
    assert!(e.starts_with("ringway.toml:6:10: server[1].names: \"a.com\" on 127.0.0.1:80 is already a name of server[0]"), "{e}");
    let other_address = dup_name.replacen("127.0.0.1:80", "127.0.0.1:81", 1);
    load(&other_address);

    let two_defaults = "[[server]]\nlisten = [\"127.0.0.1:80\"]\ndefault = true\n[[server]]\nlisten = [\"127.0.0.1:80\"]\ndefault = true\n";
    assert!(
        single_error(two_defaults)
            .contains("server[1].default: 127.0.0.1:80 already has a default server: server[0]")
    );

    let bad_listen = [
        ("[\"80\"]", "give the IP too, e.g. \"0.0.0.0:80\""),
        ("[\"*:8080\"]", "\"0.0.0.0:8080\""),
        (
            "[\"localhost:80\"]",
            "invalid listen address \"localhost:80\"",
        ),
        (
            "[\"127.0.0.1:80\", \"127.0.0.1:80\"]",
            "127.0.0.1:80 is listed twice",
        ),
        ("[]", "`listen` needs at least one address"),
    ];
    for (listen, message) in bad_listen {
        let e = single_error(&format!("[[server]]\nlisten = {listen}\n"));
        assert!(e.contains(message), "{listen}: {e}");
    }
    assert!(single_error("[[server]]\nnames = [\"a\"]\n").contains("a server needs `listen`"));
    for bad_name in ["a.*.com", "www.example.*", "a.com:80", "a b", ""] {
        let e = single_error(&format!(
            "[[server]]\nlisten = [\"127.0.0.1:80\"]\nnames = [{bad_name:?}]\n"
        ));
        assert!(e.contains("server[0].names[0]"), "{bad_name}: {e}");
    }
}

#[test]
fn access_lists_and_trusted_proxies() {
    let s = load(
        r#"
[[server]]
listen = ["127.0.0.1:80"]
trusted_proxies = ["10.0.0.0/8"]
  [[server.route]]
  prefix = "/jatos"
  allow = ["192.168.1.0/24", "127.0.0.1"]
  deny = ["192.168.1.13"]
  respond = 200
"#,
    );
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(s.servers[0].trusted_proxies.contains(ip("10.9.8.7")));
    let access = &s.servers[0].routes.routes()[0].access;
    assert!(access.permits(ip("192.168.1.12")));
    assert!(access.permits(ip("127.0.0.1")));
    assert!(!access.permits(ip("192.168.1.13")), "deny is checked first");
    assert!(
        !access.permits(ip("8.8.8.8")),
        "a non-empty allow list refuses the rest"
    );

    let e = single_error(&format!(
        "{}\n  allow = [\"192.168.1.0/33\"]\n",
        MINIMAL.trim_end()
    ));
    assert!(
        e.contains("server[0].route[0].allow[0]: invalid CIDR \"192.168.1.0/33\""),
        "{e}"
    );
    let e = single_error(
        "[[server]]\nlisten = [\"127.0.0.1:80\"]\ntrusted_proxies = [\"proxy.local\"]\n",
    );
    assert!(
        e.contains("server[0].trusted_proxies[0]: invalid address"),
        "{e}"
    );
}

#[test]
fn header_edits() {
    let s = load(
        r#"
[[server]]
listen = ["127.0.0.1:80"]
response_headers = { "X-Content-Type-Options" = "nosniff", "Server" = "" }
  [[server.route]]
  prefix = "/"
  respond = 200
  request_headers = { "X-Original-Host" = "$http_host", "X-Scheme" = "${scheme}" }
"#,
    );
    let edits = &s.servers[0].response_headers.edits;
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[0].name.as_ref(), b"x-content-type-options");
    assert_eq!(
        edits[0]
            .value
            .as_ref()
            .and_then(|t| t.literal())
            .map(|b| b.as_ref()),
        Some(&b"nosniff"[..])
    );
    assert_eq!(edits[1].name.as_ref(), b"server");
    assert!(edits[1].value.is_none(), "\"\" removes the header");
    let request = &s.servers[0].routes.routes()[0].request_headers.edits;
    assert_eq!(request[0].name.as_ref(), b"x-original-host");
    assert!(
        request[0]
            .value
            .as_ref()
            .is_some_and(|t| t.literal().is_none())
    );

    let bad = [
        ("{ \"Bad Name\" = \"x\" }", "invalid header name"),
        (
            "{ \"X-A\" = \"a\\r\\nInjected: 1\" }",
            "cannot contain CR, LF or NUL",
        ),
        (
            "{ \"X-A\" = \"$hots\" }",
            "unknown variable \"$hots\" (did you mean \"$host\"?)",
        ),
        ("{ \"X-A\" = \"a\", \"x-a\" = \"b\" }", "is set twice"),
    ];
    for (table, message) in bad {
        let e = single_error(&format!(
            "[[server]]\nlisten = [\"127.0.0.1:80\"]\nresponse_headers = {table}\n"
        ));
        assert!(e.contains(message), "{table}: {e}");
        assert!(e.contains("server[0].response_headers."), "{table}: {e}");
    }
}

#[test]
fn body_size_inheritance() {
    let s = load(
        r#"
[limits]
max_body_size = "2M"
[[server]]
listen = ["127.0.0.1:80"]
max_body_size = "500M"
  [[server.route]]
  prefix = "/upload"
  max_body_size = "0"
  respond = 200
  [[server.route]]
  prefix = "/"
  respond = 200
[[server]]
listen = ["127.0.0.1:81"]
  [[server.route]]
  prefix = "/"
  respond = 200
"#,
    );
    assert_eq!(s.servers[0].max_body_size, Some(500 << 20));
    assert_eq!(s.servers[0].routes.routes()[0].max_body_size, None);
    assert_eq!(
        s.servers[0].routes.routes()[1].max_body_size,
        Some(500 << 20)
    );
    assert_eq!(s.servers[1].max_body_size, Some(2 << 20));
    assert_eq!(s.servers[1].routes.routes()[0].max_body_size, Some(2 << 20));
}
