//! One worker: a thread pinned to a CPU, its own monoio runtime, its own
//! listening sockets, upstream pool and access log. The only state it shares is
//! the `ArcSwap<Snapshot>` it loads once per request, the stop flag and the
//! command inbox the control thread uses on a reload.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::AsyncWriteRentExt;
use monoio::net::{TcpListener, TcpStream};

use crate::access_log::{AccessLog, Entry};
use crate::buffer;
use crate::clock::Clock;
use crate::deadline::Deadline;
use crate::downstream;
use crate::metrics::WorkerMetrics;
use crate::shutdown::Shutdown;
use crate::snapshot::{Published, Snapshot};
use crate::stream::ClientStream;
use crate::tls;
use crate::tunnel::Tunnels;
use crate::upstream::UpstreamPool;

/// How often a worker looks at the stop flag and its command inbox, and
/// closes surplus idle upstream connections. Only this housekeeping loop
/// polls, never a request.
const STOP_POLL: Duration = Duration::from_millis(50);

pub struct Worker {
    pub index: usize,
    pub snapshots: Arc<Published>,
    /// The published snapshot as this worker's connections share it (see
    /// `snapshot`), and the generation it was published as.
    pub current: RefCell<Rc<Arc<Snapshot>>>,
    pub current_generation: Cell<u64>,
    pub buffer_size: usize,
    /// Bodies of known length with at least this many bytes left go by splice (0: never).
    pub splice_threshold: u64,
    pub max_connections: usize,
    pub pool: RefCell<UpstreamPool>,
    pub access_log: AccessLog,
    /// Set by the control thread on SIGTERM/SIGINT.
    pub stop: Arc<AtomicBool>,
    /// The worker-local view of `stop`, which also wakes idle connections.
    pub shutdown: Shutdown,
    pub shutdown_timeout: Duration,
    pub active: Cell<usize>,
    /// Read by the admin endpoint; written only here.
    pub metrics: Arc<WorkerMetrics>,
    /// Upgraded connections: counters, pipes, splice or copy.
    pub tunnels: Tunnels,
    /// Exact where durations are reported, the last reading for deadlines.
    pub clock: Clock,
    /// Buffers of closed client connections, for the next ones
    /// (`downstream::Buffers`).
    pub spare_buffers: RefCell<Vec<crate::downstream::Buffers>>,
    /// The worker runs on io_uring, where a write completes without being
    /// polled and may be left behind a read (`behind`).
    pub completion_io: Cell<bool>,
}

impl Worker {
    /// The snapshot a request is served with: the published one, handed out
    /// through a worker-local `Rc`, so that taking it is a plain increment
    /// instead of an atomic one on the counter every worker's requests write
    /// (a cache line that would bounce between cores on every request).
    /// Looking at the published generation writes nothing shared.
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
        let generation = self.snapshots.generation();
        if generation != self.current_generation.get() {
            *self.current.borrow_mut() = Rc::new(self.snapshots.load_full());
            self.current_generation.set(generation);
        }
        Rc::clone(&self.current.borrow())
    }
}

/// A listening socket handed to a worker, with the configured address it
/// serves (the key of its entry in `Snapshot::listeners`, stable across reloads).
pub struct WorkerListener {
    pub addr: SocketAddr,
    pub socket: std::net::TcpListener,
}

/// What the control thread asks of a running worker on a reload.
pub enum Command {
    /// Start accepting on a listen address the new config added.
    Listen(WorkerListener),
    /// Stop accepting on a listen address the new config removed; its open
    /// connections finish their current request on the old snapshot.
    Unlisten(SocketAddr),
    /// A new snapshot is published: close idle upstream connections to servers
    /// it no longer names, then acknowledge.
    Reloaded(mpsc::Sender<()>),
}

/// The worker's main future, for `block_on`: accept on every listener until
/// the stop flag is set, carrying out reload commands meanwhile; then drain:
/// stop accepting, close idle keep-alive connections, and let requests in
/// flight finish for up to `shutdown_timeout`. The runtime polls it once
/// per pass of the event loop in which the clock was read, which ends that
/// reading (`Clock::expiring`).
pub async fn run(
    worker: Rc<Worker>,
    listeners: Vec<WorkerListener>,
    inbox: mpsc::Receiver<Command>,
) {
    worker.completion_io.set(!monoio::utils::is_legacy());
    let clock = worker.clone();
    clock
        .clock
        .expiring(accept_and_drain(worker, listeners, inbox))
        .await;
}

async fn accept_and_drain(
    worker: Rc<Worker>,
    listeners: Vec<WorkerListener>,
    inbox: mpsc::Receiver<Command>,
) {
    let mut accepting: Vec<(SocketAddr, Rc<Shutdown>)> = Vec::with_capacity(listeners.len());
    for l in listeners {
        listen(&worker, l, &mut accepting);
    }
    while !worker.stop.load(Ordering::Relaxed) {
        monoio::time::sleep(STOP_POLL).await;
        {
            let mut pool = worker.pool.borrow_mut();
            // Also what keeps `clock.recent()` within a tick of now.
            pool.trim(worker.clock.now());
            worker.metrics.pool_idle.set(pool.idle_count() as u64);
        }
        while let Ok(command) = inbox.try_recv() {
            match command {
                Command::Listen(l) => listen(&worker, l, &mut accepting),
                Command::Unlisten(addr) => accepting.retain(|(a, stop)| {
                    if *a == addr {
                        stop.begin();
                    }
                    *a != addr
                }),
                Command::Reloaded(ack) => {
                    // Take the new snapshot now, so an idle worker does not
                    // keep the old one alive until its next request.
                    let snapshot = worker.snapshot();
                    worker.pool.borrow_mut().retain_servers(|addr| {
                        snapshot
                            .upstreams
                            .iter()
                            .any(|u| u.servers.iter().any(|s| s.addr == addr))
                    });
                    let _ = ack.send(());
                }
            }
        }
    }
    worker.shutdown.begin();
    for (_, stop) in &accepting {
        stop.begin();
    }
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

fn listen(worker: &Rc<Worker>, l: WorkerListener, accepting: &mut Vec<(SocketAddr, Rc<Shutdown>)>) {
    let local_port = l.socket.local_addr().map_or(0, |a| a.port());
    match TcpListener::from_std(l.socket) {
        Ok(socket) => {
            let stop = Rc::new(Shutdown::default());
            accepting.push((l.addr, stop.clone()));
            monoio::spawn(accept_loop(
                worker.clone(),
                socket,
                l.addr,
                local_port,
                stop,
            ));
        }
        Err(e) => tracing::error!(worker = worker.index, "listener {}: {e}", l.addr),
    }
}

async fn accept_loop(
    worker: Rc<Worker>,
    socket: TcpListener,
    addr: SocketAddr,
    local_port: u16,
    stop: Rc<Shutdown>,
) {
    loop {
        if worker.active.get() >= worker.max_connections {
            // Leave further connections in the kernel backlog until one closes.
            monoio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let accepted = monoio::select! {
            accepted = socket.accept() => accepted,
            () = stop.wait() => {
                drain_backlog(&worker, &socket, addr, local_port);
                // Dropping the socket closes it: the kernel sends new
                // connections to the other workers' sockets (or to a new
                // ringway on the same addresses), or refuses them.
                return;
            }
        };
        match accepted {
            Ok((stream, peer)) => serve_accepted(&worker, stream, peer, addr, local_port),
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                tracing::warn!(worker = worker.index, "accept: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serve an accepted connection on its own task, counted as active.
fn serve_accepted(
    worker: &Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    addr: SocketAddr,
    local_port: u16,
) {
    // TCP_NODELAY came with the socket from its listener (`listener::bind`).
    worker.active.set(worker.active.get() + 1);
    worker.metrics.connections_total.add(1);
    worker.metrics.connections_active.add(1);
    // The task's future is `serve`'s own, not a block around it: one level
    // of futures fewer for every wake-up to descend through.
    monoio::spawn(downstream::serve(
        worker.clone(),
        stream,
        peer,
        addr,
        local_port,
    ));
}

/// A connection counted as active (`serve_accepted`) until this is dropped.
pub(crate) struct Active<'w>(pub(crate) &'w Worker);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
        self.0.metrics.connections_active.sub(1);
    }
}

/// Before a listening socket closes, take every connection already in its
/// accept queue: closing it would reset them, though their clients did
/// nothing wrong. They are served like requests in flight. (Connections
/// arriving between this and the close are still reset unless the kernel
/// migrates them: `sysctl net.ipv4.tcp_migrate_req=1`, see docs/operations.md.)
fn drain_backlog(worker: &Rc<Worker>, socket: &TcpListener, addr: SocketAddr, local_port: u16) {
    use std::os::fd::{AsRawFd, FromRawFd};
    loop {
        // SAFETY: null address pointers are allowed (the peer is asked for
        // below); the listening fd is owned by `socket`, open for this call.
        let fd = unsafe {
            libc::accept4(
                socket.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            // EAGAIN: the queue is empty (the listener is non-blocking).
            return;
        }
        // SAFETY: accept4 returned a new fd that nothing else owns.
        let std_stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        let Ok(peer) = std_stream.peer_addr() else {
            continue;
        };
        match TcpStream::from_std(std_stream) {
            Ok(stream) => serve_accepted(worker, stream, peer, addr, local_port),
            Err(e) => tracing::debug!("queued connection from {peer}: {e}"),
        }
    }
}

/// The client stream for an accepted socket: as is on a plain address; on a
/// TLS address after a handshake on this worker, bounded by
/// `handshake_timeout` (timed by the connection's `deadline`). `None` when
/// the connection is already dealt with.
pub(crate) async fn client_stream(
    worker: &Worker,
    deadline: &mut Deadline<'_>,
    stream: TcpStream,
    peer: SocketAddr,
    addr: SocketAddr,
) -> Option<ClientStream> {
    let (config, timeout) = {
        let snapshot = worker.snapshots.load();
        let listener = snapshot
            .listener_index(addr)
            .map(|i| &snapshot.listeners[i]);
        let Some(config) = listener.and_then(|l| l.tls.clone()) else {
            return Some(ClientStream::Plain(stream));
        };
        (config, snapshot.limits.handshake_timeout)
    };
    let started = std::time::Instant::now();
    let at = worker.clock.deadline(timeout);
    match deadline.run(at, tls::accept(stream, config)).await {
        Ok(Ok(tls::Accepted::Tls { stream, sni })) => Some(ClientStream::Tls { stream, sni }),
        Ok(Ok(tls::Accepted::Plain(stream))) => {
            plain_http_on_tls_port(worker, deadline, stream).await;
            let elapsed = started.elapsed();
            worker
                .metrics
                .request(crate::metrics::UNPARSED_SLOT, 400, elapsed);
            worker.access_log.log(&Entry {
                peer,
                request: None,
                status: 400,
                body_bytes: PLAIN_HTTP_BODY.len() as u64,
                referer: None,
                user_agent: None,
                duration: elapsed,
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
async fn plain_http_on_tls_port(
    worker: &Worker,
    deadline: &mut Deadline<'_>,
    mut stream: TcpStream,
) {
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    );
    let write = stream.write_all(answer.into_bytes());
    if deadline
        .run(worker.clock.deadline(LINGER), write)
        .await
        .is_err()
    {
        return;
    }
    let mut scratch = BytesMut::new();
    let until = worker.clock.deadline(LINGER);
    buffer::linger(&mut stream, &mut scratch, 4096, deadline, until).await;
}

/// How long the plain-HTTP answer may take to write and to drain.
const LINGER: Duration = Duration::from_secs(1);
