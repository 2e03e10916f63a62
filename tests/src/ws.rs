//! WebSocket peers for the upgrade tests: a tungstenite echo server, a raw
//! upstream that answers the handshake and then runs a test's own script on
//! the socket, and client helpers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// A valid `Sec-WebSocket-Key`: RFC 6455 §1.3's sample.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Messages up to 64 MiB, frames up to 32 MiB: the tests send 16 MiB messages.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(32 << 20))
}

/// An upstream accepting connections on a thread each.
pub struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Run `serve` on a small-stack thread for every accepted connection.
pub fn upstream(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            let _ = thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || serve(stream));
        }
    });
    Upstream { addr, accepted }
}

/// A tungstenite server echoing every text and binary message.
pub fn echo_upstream() -> Upstream {
    upstream(|stream| {
        let Ok(mut ws) = tungstenite::accept_with_config(stream, Some(config())) else {
            return;
        };
        loop {
            match ws.read() {
                Ok(msg) if msg.is_text() || msg.is_binary() => {
                    if ws.send(msg).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })
}

/// Read an HTTP head (through CRLFCRLF) byte by byte, so nothing after it is
/// consumed. `None` if the peer closed first.
pub fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

/// The 101 a raw upstream sends.
pub const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A raw upstream: reads the request head, then hands the socket and the
/// head to `script`.
pub fn raw_upstream(script: impl Fn(TcpStream, String) + Send + Sync + 'static) -> Upstream {
    upstream(move |mut stream| {
        if let Some(head) = read_head(&mut stream) {
            script(stream, head);
        }
    })
}

/// A raw WebSocket handshake request for `path`.
pub fn handshake(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A tungstenite client on `path` through `proxy`.
pub fn connect(proxy: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(proxy).expect("connect to ringway");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let url = format!("ws://{proxy}{path}");
    let (ws, response) = tungstenite::client::client_with_config(url, stream, Some(config()))
        .unwrap_or_else(|e| panic!("handshake through ringway: {e}"));
    assert_eq!(response.status(), 101);
    ws
}

/// Send `msg` and expect it back.
pub fn echo(ws: &mut WebSocket<TcpStream>, msg: Message) {
    ws.send(msg.clone()).expect("send");
    let back = ws.read().expect("read the echo");
    assert!(back == msg, "echo differs ({} bytes)", back.len());
}

/// Read from `stream` until end of stream or `timeout`; the bytes read and
/// whether the end arrived.
pub fn read_to_end(stream: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (got, false),
        }
    }
}

/// Read exactly `n` bytes.
pub fn read_exact(stream: &mut TcpStream, n: usize) -> io::Result<Vec<u8>> {
    let mut got = vec![0u8; n];
    stream.read_exact(&mut got)?;
    Ok(got)
}

/// Write all of `bytes`.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
}
