//! The admin endpoint (`[admin] listen`): `GET /metrics` (Prometheus text),
//! `GET /healthz`, `POST /reload`. It runs on its own thread with blocking
//! sockets, one request per connection: it serves a scraper and an operator,
//! never client traffic, and it binds only its own address, so nothing on a
//! proxy listener can reach it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use ringway_protocol::h1::{BodyFraming, HeadLimits, Method};
use ringway_protocol::parse_request;

use crate::control::{Event, ReloadStats};
use crate::metrics::MetricsSource;

/// A request head or body slower than this is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `POST /reload` waits for the control thread.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Request bodies are read (so closing does not reset the answer) up to this.
const MAX_BODY: u64 = 64 << 10;

pub struct Admin {
    pub metrics: MetricsSource,
    pub reloads: Arc<ReloadStats>,
    pub events: mpsc::Sender<Event>,
}

/// Bind the admin address. Done before the proxy listens, so that a client
/// (or a test) that sees the proxy up finds the admin endpoint up too, and a
/// taken address stops the start.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Serve `listener` on a new thread.
pub fn spawn(listener: TcpListener, admin: Admin) -> io::Result<()> {
    std::thread::Builder::new()
        .name("ringway-admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = admin.serve(stream) {
                            tracing::debug!("admin connection: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("admin accept: {e}"),
                }
            }
        })?;
    Ok(())
}

impl Admin {
    fn serve(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut buf = BytesMut::with_capacity(4096);
        let limits = HeadLimits {
            max_head_size: 16 << 10,
            max_headers: 100,
        };
        let head = loop {
            match parse_request(&mut buf, &limits, Vec::new()) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(error) => {
                    let reason = format!("{}\n", error.reason());
                    return respond(&mut stream, error.status(), "text/plain", &reason, false);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if let BodyFraming::Length(len) = head.framing() {
            if len > MAX_BODY {
                let body = "request body too large\n";
                return respond(&mut stream, 413, "text/plain", body, false);
            }
            let missing = len.saturating_sub(buf.len() as u64);
            io::copy(&mut (&mut stream).take(missing), &mut io::sink())?;
        }
        let path = head.path().split(|&b| b == b'?').next().unwrap_or_default();
        let head_only = head.method() == Method::Head;
        let (status, body) = match (path, head.method()) {
            (b"/metrics", Method::Get | Method::Head) => {
                let text = self.metrics.render(
                    self.reloads.ok.load(Ordering::Relaxed),
                    self.reloads.failed.load(Ordering::Relaxed),
                );
                let content_type = "text/plain; version=0.0.4; charset=utf-8";
                return respond(&mut stream, 200, content_type, &text, head_only);
            }
            (b"/healthz", Method::Get | Method::Head) => (200, "ok\n".to_string()),
            (b"/reload", Method::Post) => self.reload(),
            (b"/metrics" | b"/healthz" | b"/reload", _) => (405, "method not allowed\n".into()),
            _ => (
                404,
                "not found: GET /metrics, GET /healthz, POST /reload\n".into(),
            ),
        };
        respond(
            &mut stream,
            status,
            "text/plain; charset=utf-8",
            &body,
            head_only,
        )
    }

    /// Ask the control thread to reload and wait for its verdict.
    fn reload(&self) -> (u16, String) {
        let (reply, answer) = mpsc::channel();
        if self.events.send(Event::Reload(reply)).is_err() {
            return (503, "shutting down\n".into());
        }
        match answer.recv_timeout(RELOAD_TIMEOUT) {
            Ok(Ok(message)) => (200, message + "\n"),
            Ok(Err(message)) => (400, message + "\n"),
            Err(_) => (503, "the reload did not finish in time\n".into()),
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ringway_protocol::reason_phrase(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}
