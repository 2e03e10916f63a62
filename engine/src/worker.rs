//! One worker: a thread pinned to a CPU, its own monoio runtime, its own
//! listening sockets, upstream pool and access log. The only state it shares is
//! the `ArcSwap<Snapshot>` it loads once per request and the stop flag.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::access_log::{AccessLog, Entry};
use crate::downstream;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;
use crate::stream::ClientStream;
use crate::tls;
use crate::upstream::{UpstreamPool, set_nodelay};

/// How often an idle worker looks at the stop flag. Only the accept side
/// polls it, never a request.
const STOP_POLL: Duration = Duration::from_millis(50);

pub struct Worker {
    pub index: usize,
    pub snapshots: Arc<ArcSwap<Snapshot>>,
    pub buffer_size: usize,
    pub max_connections: usize,
    pub pool: RefCell<UpstreamPool>,
    pub access_log: AccessLog,
    /// Set by the control thread on SIGTERM/SIGINT.
    pub stop: Arc<AtomicBool>,
    /// The worker-local view of `stop`, which also wakes idle connections.
    pub shutdown: Shutdown,
    pub shutdown_timeout: Duration,
    pub active: Cell<usize>,
}

/// A listening socket handed to a worker, with the index of its address in
/// `Snapshot::listeners`.
pub struct WorkerListener {
    pub listener: usize,
    pub socket: std::net::TcpListener,
}

/// The worker's main future: accept on every listener until the stop flag is
/// set, then drain: stop accepting, close idle keep-alive connections, and let
/// requests in flight finish for up to `shutdown_timeout`.
pub async fn run(worker: Rc<Worker>, listeners: Vec<WorkerListener>) {
    for l in listeners {
        let local_port = l.socket.local_addr().map_or(0, |a| a.port());
        match TcpListener::from_std(l.socket) {
            Ok(socket) => {
                monoio::spawn(accept_loop(worker.clone(), socket, l.listener, local_port));
            }
            Err(e) => tracing::error!(worker = worker.index, "listener: {e}"),
        }
    }
    while !worker.stop.load(Ordering::Relaxed) {
        monoio::time::sleep(STOP_POLL).await;
    }
    worker.shutdown.begin();
    let deadline = std::time::Instant::now() + worker.shutdown_timeout;
    while worker.active.get() > 0 && std::time::Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if worker.active.get() > 0 {
        tracing::warn!(
            worker = worker.index,
            "shutdown_timeout reached; closing {} connections",
            worker.active.get()
        );
    }
}

async fn accept_loop(worker: Rc<Worker>, socket: TcpListener, listener: usize, local_port: u16) {
    loop {
        if worker.active.get() >= worker.max_connections {
            // Leave further connections in the kernel backlog until one closes.
            monoio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let accepted = monoio::select! {
            accepted = socket.accept() => accepted,
            // Dropping the socket closes it: the kernel sends new
            // connections to the other workers' sockets, or refuses them.
            () = worker.shutdown.wait() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                set_nodelay(&stream);
                worker.active.set(worker.active.get() + 1);
                let w = worker.clone();
                monoio::spawn(async move {
                    if let Some(client) = client_stream(&w, stream, peer, listener).await {
                        downstream::serve(&w, client, peer, listener, local_port).await;
                    }
                    w.active.set(w.active.get() - 1);
                });
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                tracing::warn!(worker = worker.index, "accept: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The client stream for an accepted socket: as is on a plain address; on a
/// TLS address after a handshake on this worker, bounded by
/// `handshake_timeout`. `None` when the connection is already dealt with.
async fn client_stream(
    worker: &Worker,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    listener: usize,
) -> Option<ClientStream> {
    let (config, timeout) = {
        let snapshot = worker.snapshots.load();
        let Some(config) = snapshot.listeners.get(listener).and_then(|l| l.tls.clone()) else {
            return Some(ClientStream::Plain(stream));
        };
        (config, snapshot.limits.handshake_timeout)
    };
    let started = std::time::Instant::now();
    match monoio::time::timeout(timeout, tls::accept(stream, config)).await {
        Ok(Ok(tls::Accepted::Tls { stream, sni })) => Some(ClientStream::Tls { stream, sni }),
        Ok(Ok(tls::Accepted::Plain(stream))) => {
            plain_http_on_tls_port(stream).await;
            worker.access_log.log(&Entry {
                peer,
                request: None,
                status: 400,
                body_bytes: PLAIN_HTTP_BODY.len() as u64,
                referer: None,
                user_agent: None,
                duration: started.elapsed(),
                upstream: None,
            });
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

const PLAIN_HTTP_BODY: &str = "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n<hr><center>ringway</center>\r\n</body>\r\n</html>\r\n";

/// nginx's answer to plain HTTP on a TLS port: a 400 in plain text, then a
/// short lingering close so the client reads it instead of a reset.
async fn plain_http_on_tls_port(mut stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    );
    let write = stream.write_all(answer.into_bytes());
    if monoio::time::timeout(LINGER, write).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let until = std::time::Instant::now() + LINGER;
    let mut buf = vec![0u8; 4096];
    loop {
        let wait = until.saturating_duration_since(std::time::Instant::now());
        match monoio::time::timeout(wait, stream.read(buf)).await {
            Ok((Ok(n), b)) if n > 0 => buf = b,
            _ => return,
        }
    }
}

/// How long the plain-HTTP answer may take to write and to drain.
const LINGER: Duration = Duration::from_secs(1);
