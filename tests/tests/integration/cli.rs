//! The command line (DESIGN.md §3): `check`, `run` without a config, `demo`.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::binary::ringway_binary;
use ringway_tests::proxy::{TempDir, free_addr};
use ringway_tests::{Driver, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request};
use serde_json::Value;

fn ringway(args: &[&str], cwd: &Path) -> Output {
    Command::new(ringway_binary())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run ringway")
}

/// Run ringway with `args`; its output if it exits within `limit`, else `None` (it is
/// killed then).
fn exit_within(args: &[&str], cwd: &Path, limit: Duration) -> Option<Output> {
    let mut child = Command::new(ringway_binary())
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ringway");
    let began = Instant::now();
    while began.elapsed() < limit {
        if child.try_wait().expect("wait for ringway").is_some() {
            return Some(child.wait_with_output().expect("ringway's output"));
        }
        thread::park_timeout(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn write_config(dir: &TempDir, text: &str) -> String {
    let path = dir.path().join("ringway.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

const VALID: &str = r#"[upstreams.app]
servers = ["127.0.0.1:9"]

[[server]]
listen = ["127.0.0.1:1"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#;

#[test]
fn check_accepts_a_valid_config() {
    let dir = TempDir::new();
    let file = write_config(&dir, VALID);
    let out = ringway(&["check", "-c", &file], dir.path());
    assert!(
        out.status.success(),
        "check of a valid config: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `FILE:LINE:COL:` as DESIGN.md §2 prints it; the file as given, or at least its name.
fn has_position(stderr: &str, file: &str, line_col: &str) -> bool {
    stderr.contains(&format!("{file}:{line_col}:"))
        || stderr.contains(&format!("ringway.toml:{line_col}:"))
}

#[test]
fn check_reports_a_typo_with_position_and_suggestion() {
    let dir = TempDir::new();
    // `prefx` is on line 7, column 3.
    let file = write_config(&dir, &VALID.replace("  prefix = \"/\"", "  prefx = \"/\""));
    let out = ringway(&["check", "-c", &file], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status for an invalid config; stderr:\n{stderr}"
    );
    assert!(
        has_position(&stderr, &file, "7:3"),
        "no {file}:7:3: in:\n{stderr}"
    );
    assert!(
        stderr.contains("server[0].route[0]"),
        "no key path in:\n{stderr}"
    );
    assert!(
        stderr.contains("prefx"),
        "the unknown key is not named:\n{stderr}"
    );
    assert!(
        stderr.contains("did you mean") && stderr.contains("prefix"),
        "no suggestion in:\n{stderr}"
    );
}

#[test]
fn check_suggests_the_nearest_upstream_and_reports_every_error() {
    let dir = TempDir::new();
    let text = VALID
        .replace("proxy = \"app\"", "proxy = \"apq\"")
        .replace("servers = ", "servrs = ");
    let file = write_config(&dir, &text);
    let out = ringway(&["check", "-c", &file], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    // Line 2: `servrs` (did you mean `servers`); line 8: unknown upstream "apq".
    assert!(
        has_position(&stderr, &file, "2:1"),
        "servrs error missing:\n{stderr}"
    );
    assert!(
        stderr.contains("servers"),
        "no suggestion for servrs:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(":8:") && l.contains("apq")),
        "unknown upstream error missing:\n{stderr}"
    );
}

#[test]
fn run_with_an_invalid_config_fails_without_serving() {
    let dir = TempDir::new();
    let file = write_config(&dir, &VALID.replace("prefix", "prefx"));
    let out = ringway(
        &["run", "-c", &file, "--workers", "1", "--no-pin"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "run accepted an invalid config");
    assert!(
        stderr.contains("prefx"),
        "the error is not reported:\n{stderr}"
    );
}

/// The tuning flags take the ranges of the `[runtime]` keys they override: a value the
/// config file would refuse is refused on the command line too, before anything starts.
#[test]
fn tuning_flags_out_of_range_are_refused() {
    let dir = TempDir::new();
    let listen = free_addr().to_string();
    let file = write_config(&dir, &VALID.replace("127.0.0.1:1", &listen));
    for (flag, value, range) in [
        ("--buffer-size", "0", "1K..=64M"),
        ("--buffer-size", "100", "1K..=64M"),
        ("--buffer-size", "128MiB", "1K..=64M"),
        ("--workers", "5000", "0..=4096"),
        ("--ring-entries", "0", "1..=32768"),
        ("--ring-entries", "65536", "1..=32768"),
    ] {
        let args = ["run", "-c", &file, flag, value, "--no-pin"];
        let Some(out) = exit_within(&args, dir.path(), Duration::from_secs(10)) else {
            panic!("ringway started with {flag} {value}");
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(flag) && stderr.contains(range),
            "{flag} {value}: the range is not named:\n{stderr}"
        );
    }
    let out = ringway(&["check", "-c", &file], dir.path());
    assert!(out.status.success(), "the config itself is valid");
}

#[test]
fn run_without_config_uses_the_embedded_default() {
    let default_addr: SocketAddr = "127.0.0.1:8080".parse().expect("address");
    if TcpListener::bind(default_addr).is_err() {
        eprintln!("skipped: 127.0.0.1:8080 is in use, cannot test the embedded default config");
        return;
    }
    let dir = TempDir::new();
    let args = ["run", "--workers", "1", "--no-pin"].map(String::from);
    let proxy = Ringway::spawn(&args, default_addr, dir).expect("ringway run without a config");
    let resp = proxy.connect().roundtrip(&request::get("/"));
    assert_eq!(resp.status, 200);
    assert!(
        !resp.body.is_empty(),
        "the default page should say ringway is running"
    );
}

/// Find a header in the demo's JSON, whether `headers` is an object or a list of pairs.
fn json_header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    let value = match headers {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v),
        Value::Array(items) => items.iter().find_map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => pair[0]
                .as_str()
                .filter(|k| k.eq_ignore_ascii_case(name))
                .map(|_| &pair[1]),
            Value::Object(field) => field
                .get("name")
                .and_then(Value::as_str)
                .filter(|k| k.eq_ignore_ascii_case(name))
                .and_then(|_| field.get("value")),
            _ => None,
        }),
        _ => None,
    }?;
    match value {
        Value::String(s) => Some(s),
        Value::Array(values) => values.first().and_then(Value::as_str),
        _ => None,
    }
}

#[test]
fn demo_echoes_the_proxied_request_as_json() {
    let addr = free_addr();
    let args = ["demo".to_owned(), "--listen".to_owned(), addr.to_string()];
    let proxy = Ringway::spawn(&args, addr, TempDir::new()).expect("ringway demo");
    let mut client = proxy.connect();
    let headers = [("Host", "demo.test:1234"), ("X-Test", "yes")];
    let resp = client.roundtrip(&request::with_body(
        "POST",
        "/demo/path?q=1",
        &headers,
        b"ping",
    ));
    assert_eq!(resp.status, 200);
    let json: Value = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("demo body is not JSON ({e}): {}", resp.body_text()));
    assert_eq!(json["method"], "POST", "{json}");
    assert_eq!(json["uri"], "/demo/path?q=1", "{json}");
    assert_eq!(json["body"], "ping", "{json}");
    let headers = &json["headers"];
    let expected = [
        ("host", "demo.test:1234"),
        ("x-test", "yes"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "demo.test:1234"),
    ];
    for (name, value) in expected {
        assert_eq!(json_header(headers, name), Some(value), "{name} in {json}");
    }
}

both_drivers!(sigterm_closes_idle_keep_alive_connections);

/// DESIGN.md §3: a draining worker closes keep-alive connections idle between
/// requests at once, rather than waiting out `shutdown_timeout` for them.
fn sigterm_closes_idle_keep_alive_connections(driver: Driver) {
    let backend = backend::echo_backend();
    let config = proxy_config(backend.addr(), TEST_LIMITS)
        .replace(r#"shutdown_timeout = "1s""#, r#"shutdown_timeout = "10s""#);
    let proxy = Ringway::start(&config, driver);
    let mut idle = proxy.connect();
    for path in ["/one", "/two"] {
        let resp = idle.roundtrip(&request::get(path));
        assert_eq!(resp.status, 200);
    }
    let began = Instant::now();
    proxy.sigterm();
    idle.expect_close(Duration::from_secs(5))
        .expect("the idle connection is closed");
    exits_cleanly_within(
        proxy,
        began,
        Duration::from_secs(5),
        "only an idle connection open",
    );
}

/// After SIGTERM at `began`: exit status 0, no later than `limit` after it.
fn exits_cleanly_within(proxy: Ringway, began: Instant, limit: Duration, left: &str) {
    let exited = proxy.stop();
    assert!(
        exited.status.success(),
        "exit after SIGTERM: {}",
        exited.status
    );
    assert!(
        began.elapsed() < limit,
        "drain took {:?} with {left}",
        began.elapsed()
    );
}

both_drivers!(sigterm_drains_in_flight_requests);

/// DESIGN.md §3: SIGTERM drains gracefully then exits 0; a request in flight is answered.
fn sigterm_drains_in_flight_requests(driver: Driver) {
    let backend = backend::slow_head_backend(Duration::from_millis(700));
    let config = proxy_config(backend.addr(), TEST_LIMITS)
        .replace(r#"shutdown_timeout = "1s""#, r#"shutdown_timeout = "5s""#);
    let proxy = Ringway::start(&config, driver);
    let in_flight = {
        let mut client = proxy.connect();
        thread::spawn(move || client.roundtrip(&request::get("/in-flight")))
    };
    thread::sleep(Duration::from_millis(200));
    let began = Instant::now();
    proxy.sigterm();
    let resp = in_flight.join().expect("in-flight client");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_text(), "/in-flight");
    exits_cleanly_within(
        proxy,
        began,
        Duration::from_secs(4),
        "nothing left in flight",
    );
}
