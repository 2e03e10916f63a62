//! One worker: a thread pinned to a CPU, its own monoio runtime, its own
//! listening sockets, upstream pool and access log. The only state it shares is
//! the `ArcSwap<Snapshot>` it loads once per request and the stop flag.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use monoio::net::TcpListener;

use crate::access_log::AccessLog;
use crate::downstream;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;
use crate::stream::ClientStream;
use crate::tunnel::Tunnels;
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
    /// Upgraded connections: counters, pipes, splice or copy.
    pub tunnels: Tunnels,
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
                    downstream::serve(&w, ClientStream::Plain(stream), peer, listener, local_port)
                        .await;
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
