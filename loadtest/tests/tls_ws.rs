//! End-to-end over real loopback sockets: the client's TLS against the
//! backend's TLS (a rustls server), trust by CA file or `--insecure`, and
//! WebSocket echoes of every frame length encoding through the backend's
//! echo, plain and over TLS, idle WebSockets, and a server whose
//! handshake answer carries the wrong accept key.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ringway_load::backend::{Backend, BackendConfig};
use ringway_load::client::{self, LoadConfig, Mode};
use ringway_load::report::Report;
use ringway_load::request::RequestSpec;
use ringway_load::runtime::DriverChoice;
use ringway_load::tls::{ClientTls, Trust, server_config};

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files.
struct Certificate {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificate {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ringway-load-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        Certificate { dir, cert, key }
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn backend(tls: Option<&Certificate>) -> Backend {
    Backend::start(&BackendConfig {
        tls: tls.map(|c| server_config(&c.cert, &c.key).unwrap()),
        listen: "127.0.0.1:0".parse().unwrap(),
        body_size: 100,
        threads: 1,
        pin_cpus: None,
        driver: DriverChoice::Auto,
    })
    .unwrap()
}

fn load(addr: SocketAddr, mode: Mode, tls: Option<ClientTls>, close: bool) -> LoadConfig {
    let scheme = if tls.is_some() { "https" } else { "http" };
    LoadConfig {
        url: format!("{scheme}://localhost:{}/", addr.port()),
        addr,
        request: RequestSpec {
            method: "GET".into(),
            target: "/".into(),
            host: format!("localhost:{}", addr.port()),
            headers: Vec::new(),
            body_size: 0,
            close,
        },
        connections: 2,
        threads: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(300),
        timeout: Duration::from_secs(2),
        rate: None,
        pin_cpus: None,
        driver: DriverChoice::Auto,
        mode,
        tls,
        tls_name: "localhost".into(),
    }
}

fn trusting(path: &Path, resume: bool) -> Option<ClientTls> {
    Some(ClientTls {
        trust: Trust::CaFile(path.to_owned()),
        resume,
    })
}

fn assert_clean(report: &Report, what: &str) {
    assert!(report.requests > 0, "{what}: nothing completed");
    assert_eq!(report.errors.total(), 0, "{what}: {:?}", report.errors);
}

#[test]
fn https_keep_alive_and_new_connections_verified_by_ca_file() {
    let cert = Certificate::new("verify");
    let server = backend(Some(&cert));
    let addr = server.addr();
    let keep_alive = client::run(&load(addr, Mode::Http, trusting(&cert.cert, true), false));
    assert_clean(&keep_alive.unwrap(), "keep-alive");
    for resume in [true, false] {
        let report = client::run(&load(addr, Mode::Http, trusting(&cert.cert, resume), true));
        let report = report.unwrap();
        assert_clean(&report, "new connection per request");
        assert!(report.tls && !report.keep_alive);
    }
    server.stop().unwrap();
}

#[test]
fn an_unknown_certificate_fails_verification_unless_insecure() {
    let served = Certificate::new("served");
    let other = Certificate::new("other");
    let server = backend(Some(&served));
    let addr = server.addr();
    let refused = client::run(&load(addr, Mode::Http, trusting(&other.cert, true), false)).unwrap();
    assert_eq!(refused.requests, 0);
    assert!(refused.errors.tls > 0, "{:?}", refused.errors);
    assert_eq!(refused.errors.total(), refused.errors.tls);
    let insecure = ClientTls {
        trust: Trust::Insecure,
        resume: true,
    };
    let accepted = client::run(&load(addr, Mode::Http, Some(insecure), false)).unwrap();
    assert_clean(&accepted, "insecure");
    // A plain client against the TLS port gets no HTTP answer at all.
    let plain = client::run(&load(addr, Mode::Http, None, false)).unwrap();
    assert_eq!(plain.requests, 0);
    server.stop().unwrap();
}

#[test]
fn websocket_echo_in_every_length_encoding() {
    let server = backend(None);
    // 125 and 126 straddle the 7-bit length, 65535 and 65536 the 16-bit
    // one (RFC 6455 §5.2).
    for msg_size in [1, 125, 126, 65_535, 65_536, 1 << 20] {
        let mut config = load(server.addr(), Mode::WsEcho { msg_size }, None, false);
        // A message counts only if it starts and ends inside the window: a
        // debug build on a busy machine needs more than 300 ms for 1 MiB.
        if msg_size > 65_536 {
            config.duration = Duration::from_secs(1);
        }
        let report = client::run(&config).unwrap();
        assert_clean(&report, &format!("{msg_size}-byte messages"));
        let header = match msg_size {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        // Server frames are unmasked, client frames carry 4 mask bytes.
        assert_eq!(
            report.bytes_read,
            report.requests * (msg_size + header) as u64
        );
        assert_eq!(
            report.bytes_written,
            report.requests * (msg_size + header + 4) as u64
        );
    }
    server.stop().unwrap();
}

#[test]
fn websocket_echo_over_tls_and_idle_websockets() {
    let cert = Certificate::new("wss");
    let server = backend(Some(&cert));
    let echo = client::run(&load(
        server.addr(),
        Mode::WsEcho { msg_size: 70_000 },
        trusting(&cert.cert, true),
        false,
    ))
    .unwrap();
    assert_clean(&echo, "wss echo");
    let mut idle = load(
        server.addr(),
        Mode::WsIdle,
        trusting(&cert.cert, true),
        false,
    );
    idle.connections = 20;
    // They open over the first half of the warmup; the rest is slack for
    // debug-build handshakes on a busy machine.
    idle.warmup = Duration::from_millis(1500);
    let report = client::run(&idle).unwrap();
    assert_eq!(report.requests, 20, "{:?}", report.errors);
    assert_eq!(report.ws_open_at_end, Some(20));
    assert_eq!(report.errors.total(), 0);
    server.stop().unwrap();
}

#[test]
fn a_wrong_accept_key_is_a_protocol_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(());
    let alive = Arc::downgrade(&stop);
    let server = thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming() {
            if alive.upgrade().is_none() {
                return;
            }
            let Ok(mut stream) = stream else { return };
            let mut head = [0u8; 2048];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            );
        }
    });
    let mut config = load(addr, Mode::WsEcho { msg_size: 10 }, None, false);
    config.connections = 1;
    let report = client::run(&config).unwrap();
    assert_eq!(report.requests, 0);
    assert!(report.errors.protocol > 0, "{:?}", report.errors);
    assert_eq!(report.errors.total(), report.errors.protocol);
    drop(stop);
    // One last connection wakes the accept loop so that it sees the drop.
    let _ = std::net::TcpStream::connect(addr);
    server.join().unwrap();
}
