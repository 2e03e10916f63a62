//! Named upstreams, inline proxy URLs and `replace_uri`.

use super::*;

#[test]
fn inline_urls_and_replace_uri() {
    let s = load(
        r#"
[upstreams.hub]
servers = ["127.0.0.1:8000"]
keepalive = 8
connect_timeout = "1s"
read_timeout = "2m"

[[server]]
listen = ["127.0.0.1:80"]
  [[server.route]]
  prefix = "/jhub/"
  proxy = "http://127.0.0.1:8001/hub/"
  [[server.route]]
  prefix = "/root/"
  proxy = "http://127.0.0.1:8001/"
  [[server.route]]
  prefix = "/plain/"
  proxy = "http://127.0.0.1:8001"
  [[server.route]]
  path = "/exact"
  proxy = "http://localhost:8002/other"
  [[server.route]]
  prefix = "/"
  proxy = "hub"
  send_timeout = "3s"
"#,
    );
    assert_eq!(
        s.upstreams.len(),
        3,
        "hub, then one per distinct inline authority"
    );
    assert_eq!(&*s.upstreams[0].name, "hub");
    assert_eq!(&*s.upstreams[1].name, "127.0.0.1:8001");
    let inline = &s.upstreams[1];
    assert_eq!(inline.keepalive, 32);
    assert_eq!(
        (
            inline.connect_timeout,
            inline.read_timeout,
            inline.send_timeout
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_secs(60)
        )
    );
    assert_eq!(
        inline.servers[0].addr,
        "127.0.0.1:8001".parse::<SocketAddr>().unwrap()
    );

    let uri = |route| {
        proxy_target(&s, 0, route)
            .replace_uri
            .as_deref()
            .map(|b| b.to_vec())
    };
    assert_eq!(uri(0), Some(b"/hub/".to_vec()));
    assert_eq!(uri(1), Some(b"/".to_vec()));
    assert_eq!(uri(2), None);
    assert_eq!(uri(3), Some(b"/other".to_vec()));
    assert_eq!(proxy_target(&s, 0, 0).upstream, 1);
    assert_eq!(proxy_target(&s, 0, 2).upstream, 1);
    assert_eq!(proxy_target(&s, 0, 3).upstream, 2);
    assert_eq!(proxy_target(&s, 0, 4).upstream, 0);
    assert!(
        s.upstreams[2]
            .servers
            .iter()
            .all(|srv| srv.addr.ip().is_loopback())
    );

    let hub_route = &s.servers[0].routes.routes()[4];
    assert_eq!(
        hub_route.connect_timeout,
        Duration::from_secs(1),
        "from the upstream"
    );
    assert_eq!(
        hub_route.read_timeout,
        Duration::from_secs(120),
        "from the upstream"
    );
    assert_eq!(
        hub_route.send_timeout,
        Duration::from_secs(3),
        "from the route"
    );
    assert_eq!(s.upstreams[0].keepalive, 8);
    let found = s.servers[0].routes.find(b"/jhub/api").unwrap();
    assert_eq!((found.index, found.matched_len), (0, 6));
}

#[test]
fn upstream_servers() {
    let s = load(&format!(
        r#"
[upstreams.b]
servers = [{{ addr = "10.0.0.2:9000", weight = 2 }}, "[::1]:9001"]
[upstreams.a]
servers = ["localhost:9000"]
balance = "round_robin"
{MINIMAL}"#
    ));
    let names: Vec<&str> = s.upstreams.iter().map(|u| &*u.name).collect();
    assert_eq!(names, vec!["b", "a"], "file order, not alphabetical");
    let b = &s.upstreams[0].servers;
    assert_eq!(
        (b[0].addr, b[0].weight),
        ("10.0.0.2:9000".parse().unwrap(), 2)
    );
    assert_eq!((b[1].addr, b[1].weight), ("[::1]:9001".parse().unwrap(), 1));
    assert!(!s.upstreams[1].servers.is_empty());
    assert!(
        s.upstreams[1]
            .servers
            .iter()
            .all(|srv| srv.addr.port() == 9000)
    );

    let bad = [
        ("servers = [\"127.0.0.1\"]", "missing port"),
        ("servers = [\"::1:80\"]", "an IPv6 address needs brackets"),
        (
            "servers = [\"host.invalid:80\"]",
            "cannot resolve \"host.invalid\"",
        ),
        ("servers = [\"127.0.0.1:99999\"]", "invalid port"),
        ("servers = []", "an upstream needs at least one server"),
        ("keepalive = 2", "needs `servers`"),
        (
            "servers = [{ addr = \"127.0.0.1:1\", weight = 0 }]",
            "weight must be at least 1",
        ),
        ("servers = [5]", "invalid type: integer `5`"),
    ];
    for (body, message) in bad {
        let e = single_error(&format!("[upstreams.x]\n{body}\n{MINIMAL}"));
        assert!(e.contains(message), "{body}: {e}");
        assert!(e.contains("upstreams.x"), "{body}: {e}");
    }
}
