//! TLS together with the other features: WebSockets over TLS (issue 6) and
//! certificates that change on reload (issue 7).

use ringway_tests::tls::{Pki, TlsClient};
use ringway_tests::{Driver, LISTEN, Ringway, backend, both_drivers, pseudo_random_body};
use tungstenite::Message;

const ALPN_H1: &[&[u8]] = &[b"http/1.1"];

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: site.test\r\n\r\n").into_bytes()
}

both_drivers!(websocket_over_tls_echoes);

/// A `wss://` client: the TLS session ends at ringway, the tunnel to the
/// upstream is plain, and messages of every size come back byte-exact (the
/// copy path: TLS records cannot be spliced).
fn websocket_over_tls_echoes(driver: Driver) {
    let pki = Pki::new();
    let leaf = pki.leaf("site", &["site.test"]);
    let upstream = ringway_tests::ws::echo_upstream();
    let config = format!(
        "[log]\naccess = \"off\"\n[[server]]\nlisten = [\"{LISTEN} tls\"]\n{}\n  [[server.route]]\n  prefix = \"/\"\n  proxy = \"http://{}\"\n",
        leaf.tls_table(),
        upstream.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let tls = TlsClient::connect(proxy.addr(), "site.test", pki.client_config(ALPN_H1, true))
        .expect("TLS handshake");
    let (mut ws, response) = tungstenite::client::client_with_config(
        "wss://site.test/socket",
        tls.into_stream(),
        Some(ringway_tests::ws::config()),
    )
    .unwrap_or_else(|e| panic!("WebSocket handshake over TLS: {e}"));
    assert_eq!(response.status(), 101);
    for msg in [
        Message::text("over TLS"),
        Message::binary(pseudo_random_body(1 << 20, 11)),
        Message::binary(pseudo_random_body(70_000, 12)),
    ] {
        ws.send(msg.clone()).expect("send");
        let back = ws.read().expect("read the echo");
        assert!(back == msg, "echo over TLS differs ({} bytes)", back.len());
    }
}

both_drivers!(certificates_change_on_reload);

/// Issue 7: "TLS certificates reload with it": after a reload, new handshakes
/// present the new certificate; a connection made before keeps working.
fn certificates_change_on_reload(driver: Driver) {
    let pki = Pki::new();
    let old = pki.leaf("old", &["site.test"]);
    let new = pki.leaf("new", &["site.test"]);
    let app = backend::echo_backend();
    let config = |leaf: &ringway_tests::tls::Leaf| {
        format!(
            "[log]\naccess = \"off\"\n[[server]]\nlisten = [\"{LISTEN} tls\"]\n{}\n  [[server.route]]\n  prefix = \"/\"\n  proxy = \"http://{}\"\n",
            leaf.tls_table(),
            app.addr()
        )
    };
    let proxy = Ringway::start(&config(&old), driver);
    let client_config = pki.client_config(ALPN_H1, true);
    let mut before =
        TlsClient::connect(proxy.addr(), "site.test", client_config.clone()).expect("handshake");
    assert_eq!(before.peer_leaf(), Some(&old.der));
    assert_eq!(before.roundtrip(&get("/before")).status, 200);

    proxy.rewrite_config(&config(&new));
    let out = proxy.reload();
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut after =
        TlsClient::connect(proxy.addr(), "site.test", client_config).expect("handshake");
    assert_eq!(after.peer_leaf(), Some(&new.der), "the new certificate");
    assert_eq!(after.roundtrip(&get("/after")).status, 200);
    assert_eq!(before.roundtrip(&get("/still")).status, 200);
}
