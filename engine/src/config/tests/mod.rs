//! Loading whole config files: defaults, every setting, errors and their
//! positions, servers, routes and upstreams.

mod errors;
mod servers;
mod tls;
mod upstreams;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::snapshot::{AccessFormat, AccessTarget, Action, Driver, ProxyTarget};

pub(super) const MINIMAL: &str = r#"
[[server]]
listen = ["127.0.0.1:8080"]
  [[server.route]]
  prefix = "/"
  respond = 204
"#;

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match load_str(text, "ringway.toml") {
        Ok(_) => panic!("config should have been refused:\n{text}"),
        Err(e) => {
            assert!(!e.errors.is_empty());
            e.errors
        }
    }
}

/// The one error a config produces, as its Display line.
pub(super) fn single_error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got:\n{}",
        ConfigErrors {
            errors: errors.clone()
        }
    );
    errors[0].to_string()
}

pub(super) fn load(text: &str) -> Snapshot {
    load_str(text, "ringway.toml").unwrap_or_else(|e| panic!("config refused:\n{e}\n---\n{text}"))
}

pub(super) fn proxy_target(snapshot: &Snapshot, server: usize, route: usize) -> &ProxyTarget {
    match &snapshot.servers[server].routes.routes()[route].action {
        Action::Proxy(target) => target,
        other => panic!("not a proxy route: {other:?}"),
    }
}
#[test]
fn defaults() {
    let s = load(MINIMAL);
    assert_eq!(s.runtime.workers, 0);
    assert!(s.runtime.pin);
    assert_eq!(s.runtime.driver, Driver::Auto);
    assert_eq!(s.runtime.buffer_size, 16384);
    assert_eq!(s.runtime.ring_entries, 1024);
    assert_eq!(s.runtime.max_connections, 100_000);
    assert_eq!(s.runtime.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(s.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(s.limits.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(s.limits.max_header_size, 16384);
    assert_eq!(s.limits.max_headers, 100);
    assert_eq!(s.limits.max_body_size, Some(1 << 20));
    assert_eq!(s.log.level, tracing::Level::INFO);
    assert_eq!(s.log.access, AccessTarget::Stdout);
    assert_eq!(s.log.format, AccessFormat::Combined);
    assert!(s.upstreams.is_empty());
    assert_eq!(s.source, None);

    let server = &s.servers[0];
    assert_eq!(server.max_body_size, Some(1 << 20));
    assert!(server.names.is_empty());
    assert!(server.trusted_proxies.is_empty());
    assert!(server.response_headers.edits.is_empty());
    let route = &server.routes.routes()[0];
    assert_eq!(&*route.label, "prefix \"/\"");
    assert_eq!(route.max_body_size, Some(1 << 20));
    assert_eq!(route.connect_timeout, Duration::from_secs(5));
    assert_eq!(route.read_timeout, Duration::from_secs(60));
    assert_eq!(route.send_timeout, Duration::from_secs(60));
    assert!(route.access.allow.is_empty() && route.access.deny.is_empty());
    assert!(matches!(&route.action, Action::Respond { status: 204, body } if body.is_empty()));
}

#[test]
fn every_global_setting() {
    let s = load(&format!(
        r#"
[runtime]
workers = 4
pin = false
driver = "io_uring"
buffer_size = "64K"
ring_entries = 4096
max_connections = 5000
shutdown_timeout = "5s"

[limits]
header_timeout = "300ms"
keepalive_timeout = "0"
max_header_size = "8KiB"
max_headers = 256
max_body_size = "0"

[log]
level = "debug"
access = "/var/log/ringway/access.log"
access_format = "json"
{MINIMAL}"#
    ));
    assert_eq!(s.runtime.workers, 4);
    assert!(!s.runtime.pin);
    assert_eq!(s.runtime.driver, Driver::IoUring);
    assert_eq!(s.runtime.buffer_size, 65536);
    assert_eq!(s.runtime.ring_entries, 4096);
    assert_eq!(s.runtime.max_connections, 5000);
    assert_eq!(s.runtime.shutdown_timeout, Duration::from_secs(5));
    assert_eq!(s.limits.header_timeout, Duration::from_millis(300));
    assert_eq!(s.limits.keepalive_timeout, Duration::ZERO);
    assert_eq!(s.limits.max_header_size, 8192);
    assert_eq!(s.limits.max_headers, 256);
    assert_eq!(s.limits.max_body_size, None);
    assert_eq!(s.servers[0].routes.routes()[0].max_body_size, None);
    assert_eq!(s.log.level, tracing::Level::DEBUG);
    assert_eq!(
        s.log.access,
        AccessTarget::File("/var/log/ringway/access.log".into())
    );
    assert_eq!(s.log.format, AccessFormat::Json);

    let off = load(&format!(
        "[log]\naccess = \"off\"\n[runtime]\ndriver = \"epoll\"\n{MINIMAL}"
    ));
    assert_eq!(off.log.access, AccessTarget::Off);
    assert_eq!(off.runtime.driver, Driver::Epoll);
}

#[test]
fn out_of_range_settings() {
    let e = single_error(&format!("[limits]\nmax_headers = 300\n{MINIMAL}"));
    assert!(e.starts_with("ringway.toml:2:15: limits.max_headers: 300 is out of range 1..=256 (ringway parses headers"), "{e}");
    let e = single_error(&format!("[limits]\nmax_headers = 0\n{MINIMAL}"));
    assert!(e.contains("0 would refuse every request"), "{e}");
    let e = single_error(&format!("[runtime]\nring_entries = 65536\n{MINIMAL}"));
    assert!(e.contains("IORING_MAX_ENTRIES"), "{e}");
    let e = single_error(&format!("[runtime]\nbuffer_size = 10\n{MINIMAL}"));
    assert!(
        e.contains("runtime.buffer_size: 10 bytes is out of range 1K..=64M"),
        "{e}"
    );
    let e = single_error(&format!("[limits]\nheader_timeout = \"0s\"\n{MINIMAL}"));
    assert!(
        e.contains("limits.header_timeout: must be greater than 0"),
        "{e}"
    );
    let e = single_error(&format!("[limits]\nmax_body_size = \"1.5M\"\n{MINIMAL}"));
    assert!(
        e.contains("ringway.toml:2:17: limits.max_body_size: invalid size"),
        "{e}"
    );
    let e = single_error(&format!("[runtime]\nshutdown_timeout = 30\n{MINIMAL}"));
    assert!(
        e.contains("runtime.shutdown_timeout: a duration needs a unit: write \"30s\""),
        "{e}"
    );
    let e = single_error(&format!("[log]\nlevel = \"trace\"\n{MINIMAL}"));
    assert!(e.contains("log.level: unknown value \"trace\""), "{e}");
}

#[test]
fn sizes_may_be_integers_or_strings() {
    let s = load(&format!(
        "[limits]\nmax_body_size = 2048\n[runtime]\nbuffer_size = \"1M\"\n{MINIMAL}"
    ));
    assert_eq!(s.limits.max_body_size, Some(2048));
    assert_eq!(s.runtime.buffer_size, 1 << 20);
    let e = single_error(&format!("[limits]\nmax_body_size = -1\n{MINIMAL}"));
    assert!(e.contains("cannot be negative"), "{e}");
}

#[test]
fn embedded_default_config() {
    let s = load_str(DEFAULT_CONFIG, "default").unwrap();
    assert_eq!(s.listeners.len(), 1);
    assert_eq!(
        s.listeners[0].addr,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    let found = s.servers[0].routes.find(b"/anything").unwrap();
    match &found.route.action {
        Action::Respond { status, body } => {
            assert_eq!(*status, 200);
            let body = std::str::from_utf8(body).unwrap();
            assert!(body.contains("ringway is running"), "{body}");
            assert!(
                body.contains("ringway demo") && body.contains("README"),
                "{body}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn jatos_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/jatos.toml");
    let s = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.source.as_deref(), Some(path.as_path()));
    assert_eq!(
        s.listeners[0].addr,
        "0.0.0.0:80".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.upstreams.len(), 1);
    assert_eq!(
        s.upstreams[0].servers[0].addr,
        "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
    );
    let server = &s.servers[0];
    assert_eq!(server.max_body_size, Some(500 << 20));
    let routes = &server.routes;
    let ws = routes.find(b"/publix/123/group/join").unwrap();
    assert!(matches!(
        routes.matcher(ws.index),
        crate::route::Matcher::Regex(_)
    ));
    assert_eq!(ws.route.idle_timeout, Duration::from_secs(7 * 24 * 3600));
    assert!(ws.route.websocket);
    let gui = routes.find(b"/jatos/admin").unwrap();
    assert!(gui.route.access.permits("192.168.1.20".parse().unwrap()));
    assert!(!gui.route.access.permits("203.0.113.9".parse().unwrap()));
    let rest = routes.find(b"/publix/abc").unwrap();
    assert_eq!(&*rest.route.label, "prefix \"/\"");
    assert_eq!(rest.route.read_timeout, Duration::from_secs(300));
    assert_eq!(rest.route.idle_timeout, Duration::from_secs(3600));
}

#[test]
fn upgrade_options_per_route() {
    let text = r#"
[[server]]
listen = ["127.0.0.1:8080"]
  [[server.route]]
  prefix = "/ws"
  proxy = "http://127.0.0.1:9000"
  idle_timeout = "90s"
  [[server.route]]
  prefix = "/plain"
  proxy = "http://127.0.0.1:9000"
  websocket = false
"#;
    let s = load_str(text, "ringway.toml").unwrap_or_else(|e| panic!("{e}"));
    let routes = &s.servers[0].routes;
    let ws = routes.find(b"/ws/x").unwrap().route;
    assert_eq!(ws.idle_timeout, Duration::from_secs(90));
    assert!(ws.websocket);
    let plain = routes.find(b"/plain").unwrap().route;
    assert_eq!(plain.idle_timeout, Duration::from_secs(3600));
    assert!(!plain.websocket);
    let zero = text.replace("\"90s\"", "\"0s\"");
    let e = single_error(&zero);
    assert!(
        e.contains("server[0].route[0].idle_timeout: must be greater than 0"),
        "{e}"
    );
}

#[test]
fn unreadable_file_is_a_config_error() {
    let e = load_file(Path::new("/nonexistent/ringway.toml")).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].line, 0);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ringway.toml: cannot read config: "),
        "{e}"
    );
}

#[test]
fn admin_and_pid_file() {
    let s = load(&format!(
        "[runtime]\npid_file = \"/tmp/rw.pid\"\n[admin]\nlisten = \"127.0.0.1:9901\"\n{MINIMAL}"
    ));
    assert_eq!(s.admin, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(
        s.runtime.pid_file.as_deref(),
        Some(std::path::Path::new("/tmp/rw.pid"))
    );
    let s = load(MINIMAL);
    assert_eq!(s.admin, None);
    assert_eq!(s.runtime.pid_file, None);
}

#[test]
fn admin_address_must_not_be_a_server_address() {
    let message = single_error(
        "[admin]\nlisten = \"127.0.0.1:8080\"\n[[server]]\nlisten = [\"127.0.0.1:8080\"]\n[[server.route]]\nprefix = \"/\"\nrespond = 200\n",
    );
    assert!(message.contains("admin.listen"), "{message}");
    assert!(
        message.contains("is also a server's listen address"),
        "{message}"
    );
    let message = single_error(&format!("[admin]\nlisten = \"nowhere\"\n{MINIMAL}"));
    assert!(message.contains("admin.listen"), "{message}");
    let message = single_error(&format!("[runtime]\npid_file = \"\"\n{MINIMAL}"));
    assert!(
        message.contains("runtime.pid_file: empty pid_file"),
        "{message}"
    );
}
