//! TLS termination (DESIGN.md §1, §2): certificates chosen by SNI, the default server for
//! unknown or missing SNI, 421 when Host and SNI disagree, redirects to HTTPS, HSTS only over
//! TLS, plain HTTP on the TLS port, stalled handshakes, resumption, and config errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use ringway_tests::binary::ringway_binary;
use ringway_tests::proxy::{TempDir, free_addr};
use ringway_tests::tls::{DROP_PATIENCE, Leaf, Pki, TlsClient, start_workers};
use ringway_tests::{
    Driver, HttpStream, LISTEN, Ringway, backend, both_drivers, pseudo_random_body, request,
};

both_drivers!(
    sni_selects_the_certificate_and_the_server,
    host_naming_another_server_than_sni_is_421,
    http_redirects_to_https_keeping_path_and_query,
    hsts_and_forwarded_proto_only_over_tls,
    plain_http_on_the_tls_port_gets_400,
    stalled_handshake_is_dropped,
    large_post_over_tls_is_byte_exact,
    large_post_over_tls_with_64k_buffers_is_byte_exact,
    responses_over_tls_with_heads_shorter_and_longer_than_the_upstreams,
    sessions_resume_across_workers,
    tls12_sessions_resume_with_tickets,
    curl_verifies_the_chain,
);

const ALPN_H1: &[&[u8]] = &[b"http/1.1"];

fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// Four servers on one TLS address: two exact names, a wildcard, and the default server,
/// whose certificate also covers `unknown.test` so that a client asking for that name can
/// verify what it gets.
struct Sites {
    pki: Pki,
    a: Leaf,
    b: Leaf,
    wild: Leaf,
    default: Leaf,
}

impl Sites {
    fn new() -> Sites {
        let pki = Pki::new();
        Sites {
            a: pki.leaf("a", &["a.test"]),
            b: pki.leaf("b", &["b.test"]),
            wild: pki.leaf("wild", &["*.wild.test"]),
            default: pki.leaf("default", &["default.test", "unknown.test"]),
            pki,
        }
    }

    fn config(&self) -> String {
        let server = |names: &str, leaf: &Leaf, body: &str, extra: &str| {
            format!(
                "[[server]]\nlisten = [\"{LISTEN} tls\"]\nnames = [{names}]\n{}\n{extra}\n  [[server.route]]\n  prefix = \"/\"\n  respond = 200\n  body = \"{body}\"\n",
                leaf.tls_table()
            )
        };
        format!(
            "[log]\naccess = \"off\"\n{}{}{}{}",
            server("\"a.test\"", &self.a, "a", ""),
            server("\"b.test\"", &self.b, "b", ""),
            server("\"*.wild.test\"", &self.wild, "wild", ""),
            server(
                "\"default.test\"",
                &self.default,
                "default",
                "default = true"
            ),
        )
    }
}

fn sni_selects_the_certificate_and_the_server(driver: Driver) {
    let sites = Sites::new();
    let proxy = Ringway::start(&sites.config(), driver);
    let with_sni = sites.pki.client_config(ALPN_H1, true);
    let cases = [
        ("a.test", &sites.a, "a"),
        ("b.test", &sites.b, "b"),
        ("x.wild.test", &sites.wild, "wild"),
        ("unknown.test", &sites.default, "default"),
        ("default.test", &sites.default, "default"),
    ];
    for (name, leaf, body) in cases {
        let mut client = TlsClient::connect(proxy.addr(), name, with_sni.clone())
            .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
        assert_eq!(
            client.peer_leaf(),
            Some(&leaf.der),
            "certificate for SNI {name}"
        );
        let resp = client.roundtrip(&get(name, "/"));
        assert_eq!(
            (resp.status, resp.body_text().as_str()),
            (200, body),
            "{name}"
        );
    }

    // No SNI at all: the default server's certificate; requests are routed by Host.
    let without_sni = sites.pki.client_config(ALPN_H1, false);
    let mut client = TlsClient::connect(proxy.addr(), "default.test", without_sni).unwrap();
    assert_eq!(client.peer_leaf(), Some(&sites.default.der));
    assert_eq!(
        client.roundtrip(&get("default.test", "/")).body_text(),
        "default"
    );
    let resp = client.roundtrip(&get("a.test", "/"));
    assert_eq!((resp.status, resp.body_text().as_str()), (200, "a"));

    // A client offering only h2 shares no protocol with ringway: no_application_protocol.
    let h2_only = sites.pki.client_config(&[b"h2"], true);
    let refused = TlsClient::connect(proxy.addr(), "a.test", h2_only);
    assert!(
        refused.is_err(),
        "an h2-only client must fail the handshake"
    );
}

fn host_naming_another_server_than_sni_is_421(driver: Driver) {
    let sites = Sites::new();
    let proxy = Ringway::start(&sites.config(), driver);
    let config = sites.pki.client_config(ALPN_H1, true);
    let mut client = TlsClient::connect(proxy.addr(), "a.test", config.clone()).unwrap();
    let resp = client.roundtrip(&get("b.test", "/"));
    assert_eq!(resp.status, 421, "Host b.test on a connection for a.test");
    // Same server under another spelling of the name, and the connection stays usable.
    let resp = client.roundtrip(&get("A.TEST:443", "/"));
    assert_eq!((resp.status, resp.body_text().as_str()), (200, "a"));
    let resp = client.roundtrip(&get("unknown.test", "/"));
    assert_eq!(
        resp.status, 421,
        "an unknown Host means the default server, not a.test"
    );

    // SNI for an unknown name selects the default server; a Host naming it is fine.
    let mut client = TlsClient::connect(proxy.addr(), "unknown.test", config).unwrap();
    assert_eq!(client.roundtrip(&get("other.unknown", "/")).status, 200);
    assert_eq!(client.roundtrip(&get("x.wild.test", "/")).status, 421);
}

fn http_redirects_to_https_keeping_path_and_query(driver: Driver) {
    let config = format!(
        r#"[log]
access = "off"
[[server]]
listen = ["{LISTEN}"]
response_headers = {{ "X-Site" = "plain" }}
  [[server.route]]
  prefix = "/"
  redirect = "https://$host$request_uri"
  [[server.route]]
  prefix = "/temporary/"
  redirect = "https://elsewhere.test$uri"
  status = 307
"#
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    let resp = client.roundtrip(&get("Example.TEST:80", "/a/b%20c?x=1&y=%2F"));
    assert_eq!(resp.status, 301);
    assert_eq!(
        resp.header("location"),
        Some("https://example.test/a/b%20c?x=1&y=%2F")
    );
    assert_eq!(
        resp.header("x-site"),
        Some("plain"),
        "response_headers apply"
    );
    assert!(
        resp.body_text().contains("301 Moved Permanently"),
        "{}",
        resp.body_text()
    );
    assert_eq!(resp.header("strict-transport-security"), None);

    let resp = client.roundtrip(&get("example.test", "/temporary/x?q"));
    assert_eq!(resp.status, 307);
    assert_eq!(
        resp.header("location"),
        Some("https://elsewhere.test/temporary/x")
    );

    let resp = client.roundtrip(b"HEAD /h HTTP/1.1\r\nHost: h.test\r\n\r\n");
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("location"), Some("https://h.test/h"));
    assert!(resp.body.is_empty());
}

fn hsts_and_forwarded_proto_only_over_tls(driver: Driver) {
    let pki = Pki::new();
    let leaf = pki.leaf("site", &["site.test"]);
    let backend = backend::echo_backend();
    let plain = free_addr();
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}"]
[[server]]
listen = ["{LISTEN} tls", "{plain}"]
names = ["site.test"]
{}
hsts = "max-age=63072000; includeSubDomains"
  [[server.route]]
  path = "/"
  respond = 200
  [[server.route]]
  prefix = "/app/"
  proxy = "app"
  [[server.route]]
  prefix = "/redirect"
  redirect = "https://site.test/"
"#,
        backend.addr(),
        leaf.tls_table()
    );
    let proxy = Ringway::start(&config, driver);
    let hsts = Some("max-age=63072000; includeSubDomains");
    let paths = ["/", "/app/x", "/missing", "/redirect"];
    let statuses = [200, 200, 404, 301];

    let mut tls =
        TlsClient::connect(proxy.addr(), "site.test", pki.client_config(ALPN_H1, true)).unwrap();
    for (path, status) in paths.iter().zip(statuses) {
        let resp = tls.roundtrip(&get("site.test", path));
        assert_eq!(resp.status, status, "{path} over TLS");
        assert_eq!(
            resp.header("strict-transport-security"),
            hsts,
            "{path} over TLS"
        );
    }
    let mut http =
        HttpStream::client(TcpStream::connect(plain).unwrap(), Duration::from_secs(10)).unwrap();
    for (path, status) in paths.iter().zip(statuses) {
        let resp = http.roundtrip(&get("site.test", path));
        assert_eq!(resp.status, status, "{path} over plain HTTP");
        assert_eq!(
            resp.header("strict-transport-security"),
            None,
            "{path} over plain HTTP"
        );
    }
    let seen: Vec<Option<String>> = backend
        .requests()
        .iter()
        .map(|r| r.headers.get("x-forwarded-proto").map(str::to_owned))
        .collect();
    assert_eq!(seen, [Some("https".to_owned()), Some("http".to_owned())]);
}

fn plain_http_on_the_tls_port_gets_400(driver: Driver) {
    let sites = Sites::new();
    let proxy = Ringway::start(&sites.config(), driver);
    let mut client = proxy.connect();
    let began = Instant::now();
    let resp = client.roundtrip(&get("a.test", "/"));
    assert_eq!(resp.status, 400);
    assert!(
        resp.body_text()
            .contains("The plain HTTP request was sent to HTTPS port"),
        "{}",
        resp.body_text()
    );
    client.expect_close(DROP_PATIENCE).unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
}

fn stalled_handshake_is_dropped(driver: Driver) {
    let sites = Sites::new();
    let config = sites.config() + "[limits]\nhandshake_timeout = \"1s\"\n";
    let proxy = Ringway::start(&config, driver);
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    // The start of a ClientHello record, and then nothing.
    stream
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    stream.set_read_timeout(Some(DROP_PATIENCE)).unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf);
    let waited = began.elapsed();
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected the proxy to close, got {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "dropped after {waited:?}, handshake_timeout is 1s"
    );
    // The worker is fine afterwards.
    let mut client = TlsClient::connect(
        proxy.addr(),
        "a.test",
        sites.pki.client_config(ALPN_H1, true),
    )
    .unwrap();
    assert_eq!(client.roundtrip(&get("a.test", "/")).status, 200);
}

fn large_post_over_tls_is_byte_exact(driver: Driver) {
    large_post_over_tls(driver, "");
}

/// Reads and writes of 64 KiB hand rustls several records at once.
fn large_post_over_tls_with_64k_buffers_is_byte_exact(driver: Driver) {
    large_post_over_tls(driver, "[runtime]\nbuffer_size = \"64KiB\"\n");
}

/// ringway serving `site.test` over TLS in front of `backend`, with `runtime` lines before
/// the config, `server` lines in the server's table and `route` lines in its one route; and a
/// client connected to it.
fn echo_over_tls(
    driver: Driver,
    backend: &backend::Backend,
    runtime: &str,
    server: &str,
    route: &str,
) -> (Ringway, TlsClient) {
    let pki = Pki::new();
    let leaf = pki.leaf("site", &["site.test"]);
    let config = format!(
        "{runtime}[log]\naccess = \"off\"\n[[server]]\nlisten = [\"{LISTEN} tls\"]\n{}\n{server}  [[server.route]]\n  prefix = \"/\"\n  proxy = \"http://{}\"\n{route}",
        leaf.tls_table(),
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let client =
        TlsClient::connect(proxy.addr(), "site.test", pki.client_config(ALPN_H1, true)).unwrap();
    (proxy, client)
}

fn large_post_over_tls(driver: Driver, runtime: &str) {
    let backend = backend::echo_backend();
    let (_proxy, mut client) =
        echo_over_tls(driver, &backend, runtime, "max_body_size = \"2MiB\"\n", "");
    let body = pseudo_random_body(1 << 20, 7);
    for _ in 0..2 {
        let resp = client.roundtrip(&request::with_body("POST", "/upload", &[], &body));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), body.len());
        assert!(resp.body == body, "the echoed body differs");
    }
}

/// Over TLS the response head is joined to the body in the upstream's buffer when it fits
/// and otherwise copied with up to 16 KiB of body into one record; either way every byte
/// arrives, in order, on a reused connection.
fn responses_over_tls_with_heads_shorter_and_longer_than_the_upstreams(driver: Driver) {
    let backend = backend::echo_backend();
    let long = "l".repeat(300);
    for added in [
        "",
        &*format!("  response_headers = {{ \"X-Added\" = \"{long}\" }}\n"),
    ] {
        let (_proxy, mut client) = echo_over_tls(driver, &backend, "", "", added);
        for len in [1025, 16 * 1024, 16 * 1024 + 1, 60_000, 100] {
            let body = pseudo_random_body(len, len as u64);
            let resp = client.roundtrip(&request::with_body("POST", "/up", &[], &body));
            assert_eq!(resp.status, 200, "{len}");
            assert_eq!(resp.header("x-echo-target"), Some("/up"));
            assert_eq!(resp.header("x-added").is_some(), !added.is_empty());
            assert!(resp.body == body, "{len}: the echoed body differs");
        }
    }
}

fn sessions_resume_across_workers(driver: Driver) {
    let sites = Sites::new();
    let proxy = start_workers(&sites.config(), driver, 2);
    let config = sites.pki.client_config(ALPN_H1, true);
    let mut kinds = Vec::new();
    // SO_REUSEPORT spreads connections over both workers by their source port; with twelve
    // connections the chance that all land on one worker is 2^-11.
    for i in 0..12 {
        let mut client = TlsClient::connect(proxy.addr(), "a.test", config.clone()).unwrap();
        // Reading a response also reads the TLS 1.3 tickets sent after the handshake.
        assert_eq!(
            client.roundtrip(&get("a.test", "/")).status,
            200,
            "connection {i}"
        );
        assert_eq!(
            client.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        kinds.push(client.handshake_kind());
    }
    assert_eq!(kinds[0], Some(rustls::HandshakeKind::Full));
    for (i, kind) in kinds.iter().enumerate().skip(1) {
        assert_eq!(
            *kind,
            Some(rustls::HandshakeKind::Resumed),
            "connection {i}"
        );
    }
}

fn tls12_sessions_resume_with_tickets(driver: Driver) {
    let sites = Sites::new();
    let proxy = Ringway::start(&sites.config(), driver);
    let config = sites
        .pki
        .client_config_for(&[&rustls::version::TLS12], ALPN_H1, true);
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let mut client = TlsClient::connect(proxy.addr(), "b.test", config.clone()).unwrap();
        assert_eq!(
            client.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(client.roundtrip(&get("b.test", "/")).body_text(), "b");
        kinds.push(client.handshake_kind());
    }
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(kinds, [Some(Full), Some(Resumed), Some(Resumed)]);
}

fn curl_verifies_the_chain(driver: Driver) {
    let sites = Sites::new();
    let proxy = Ringway::start(&sites.config(), driver);
    let port = proxy.addr().port();
    for (name, body) in [("a.test", "a"), ("b.test", "b"), ("deep.wild.test", "wild")] {
        let out = Command::new("curl")
            .args(["-sS", "--http1.1", "--max-time", "10", "--cacert"])
            .arg(sites.pki.ca_path())
            .arg("--resolve")
            .arg(format!("{name}:{port}:127.0.0.1"))
            .arg(format!("https://{name}:{port}/"))
            .output();
        let Ok(out) = out else {
            eprintln!("SKIPPED: curl is not installed");
            return;
        };
        assert!(
            out.status.success(),
            "curl {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), body, "curl {name}");
    }
}

/// `ringway check` names the file, line, column and key of each TLS mistake.
#[test]
fn check_reports_tls_errors_with_positions() {
    let pki = Pki::new();
    let a = pki.leaf("a", &["a.test"]);
    let b = pki.leaf("b", &["b.test"]);
    let dir = TempDir::new();
    let file = dir.path().join("ringway.toml");
    let config = format!(
        r#"[[server]]
listen = ["127.0.0.1:8443 tls"]
tls = {{ cert = "/nonexistent/site.crt", key = {key_a:?} }}
  [[server.route]]
  prefix = "/"
  respond = 200
[[server]]
listen = ["127.0.0.1:9443 tls"]
tls = {{ cert = {cert_a:?}, key = {key_b:?} }}
  [[server.route]]
  prefix = "/"
  respond = 200
[[server]]
listen = ["127.0.0.1:10443 tls"]
  [[server.route]]
  prefix = "/"
  respond = 200
"#,
        key_a = a.key.display().to_string(),
        cert_a = a.cert.display().to_string(),
        key_b = b.key.display().to_string(),
    );
    std::fs::write(&file, config).unwrap();
    let out = Command::new(ringway_binary())
        .arg("check")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let origin = file.display().to_string();
    for expected in [
        format!("{origin}:3:16: server[0].tls.cert: cannot read \"/nonexistent/site.crt\""),
        format!("{origin}:9:"),
        "server[1].tls.key: ".to_owned(),
        "does not belong to the certificate".to_owned(),
        format!(
            "{origin}:14:11: server[2].listen[0]: no certificate for the TLS address 127.0.0.1:10443"
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// The JupyterHub and OpenTalk examples pass `ringway check` once their certificate paths
/// point at real files.
#[test]
fn tls_examples_pass_check() {
    let pki = Pki::new();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let table = regex_free_tls_tables;
    for name in ["jupyterhub.toml", "opentalk.toml"] {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        let rewritten = table(&text, &pki);
        assert_ne!(rewritten, text, "{name} has tls tables");
        let file = pki.dir().join(name);
        std::fs::write(&file, rewritten).unwrap();
        let out = Command::new(ringway_binary())
            .arg("check")
            .arg("-c")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    }
}

/// Replaces every `tls = { cert = "...", key = "..." }` line with a table for a fresh leaf.
fn regex_free_tls_tables(text: &str, pki: &Pki) -> String {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            if line.starts_with("tls = { cert = ") {
                pki.leaf(&format!("example{i}"), &["example.test"])
                    .tls_table()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
