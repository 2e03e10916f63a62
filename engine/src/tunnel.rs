//! An upgraded connection (a WebSocket, or any protocol an upstream switched
//! to with 101): the client and upstream sockets joined, bytes moved both ways
//! until both sides have closed, either fails, or neither sent anything for
//! the route's `idle_timeout`.
//!
//! With a plain client both directions splice through a pipe (see `splice`):
//! no byte enters user space and an idle tunnel holds no buffer. Over TLS each
//! direction copies through one buffer of `buffer_size` bytes, held only
//! while data flows where readiness can be asked of the socket.
//!
//! Half-close (RFC 9293 §3.6): when one side ends its stream, the other
//! side's write half is shut down and the opposite direction keeps flowing.

use std::cell::{Cell, UnsafeCell};
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, Splitable};
use monoio::net::TcpStream;
use ringway_protocol::RequestHead;
use ringway_protocol::h1::Version;

use crate::access_log::{Entry, RequestLine};
use crate::buffer::write_all;
use crate::clock::Stamp;
use crate::metrics::Counter;
use crate::splice::{Failed, PipePool, Step, set_nonblocking};
use crate::stream::ClientStream;
use crate::worker::Worker;

/// Per-worker tunnel state: the pipe pool. (Its counters are in
/// `Worker::metrics`, for the admin endpoint.)
#[derive(Default)]
pub struct Tunnels {
    pub pipes: PipePool,
}

/// An upstream that answered 101, waiting for the client connection to be
/// handed over (after the request has been accounted for).
pub struct Pending {
    pub upstream: TcpStream,
    pub addr: SocketAddr,
    /// Upstream bytes that arrived behind the 101 head: the new protocol's first.
    pub early: Bytes,
    pub idle_timeout: Duration,
    /// The 101 head was written to the client: the bytes count as headers.
    pub started: Stamp,
    /// A compact copy of the request head for the access log line, written
    /// when the tunnel ends (as nginx does).
    pub log_head: Option<RequestHead>,
}

/// Bytes one direction moved, and when anything last moved either way.
struct Flow<'a> {
    activity: &'a Cell<Instant>,
    moved: &'a Cell<u64>,
    worker_total: &'a Counter,
}

impl Flow<'_> {
    fn record(&self, n: usize) {
        self.activity.set(Instant::now());
        self.moved.set(self.moved.get() + n as u64);
        self.worker_total.add(n as u64);
    }
}

/// Run the tunnel to its end and write the access log line.
/// `client_early` are client bytes read behind the request head.
pub async fn run(
    worker: &Worker,
    client: ClientStream,
    client_early: Bytes,
    peer: SocketAddr,
    pending: Pending,
) {
    let tunnels = &worker.tunnels;
    let metrics = &worker.metrics;
    metrics.upgraded_active.add(1);
    metrics.upgrades_total.add(1);
    let activity = Cell::new(Instant::now());
    let (up_moved, down_moved) = (Cell::new(0), Cell::new(0));
    let up = Flow {
        activity: &activity,
        moved: &up_moved,
        worker_total: &metrics.tunnel_bytes_from_client,
    };
    let down = Flow {
        activity: &activity,
        moved: &down_moved,
        worker_total: &metrics.tunnel_bytes_to_client,
    };
    let size = worker.buffer_size;
    let upstream = pending.upstream;
    let early = pending.early;
    // Only the path taken is allocated (boxed): the task of an idle tunnel
    // holds the state of one pair of directions, not the largest of three.
    let work = async {
        let (mut ur, mut uw) = upstream.into_split();
        let up_socket = Some(ur.0.clone());
        match client.into_tcp() {
            Ok(tcp) => {
                set_nonblocking(&tcp)?;
                set_nonblocking(socket(&ur.0))?;
                let (mut cr, mut cw) = tcp.into_split();
                let pipes = &tunnels.pipes;
                Box::pin(both(
                    splice_direction(&mut cr, &mut uw, client_early, pipes, &up),
                    splice_direction(&mut ur, &mut cw, early, pipes, &down),
                ))
                .await
            }
            // TLS: the socket's readiness says nothing about plaintext the
            // session already holds, so the client side keeps its buffer.
            Err(client) => {
                let (mut cr, mut cw) = client.into_split();
                Box::pin(both(
                    copy_direction(&mut cr, &mut uw, client_early, None, size, &up),
                    copy_direction(&mut ur, &mut cw, early, up_socket, size, &down),
                ))
                .await
            }
        }
    };
    let result = monoio::select! {
        result = work => result,
        () = idle(&activity, pending.idle_timeout) => Err(io::ErrorKind::TimedOut.into()),
        () = drained(worker) => Err(io::Error::other("shutdown_timeout reached")),
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, upstream = %pending.addr, "tunnel closed: {e}");
    }
    metrics.upgraded_active.sub(1);
    let head = pending.log_head.as_ref();
    worker.access_log.log(&Entry {
        peer,
        request: head.map(|h| RequestLine {
            method: h.method_bytes(),
            target: h.target(),
            version: match h.version() {
                Version::Http10 => "HTTP/1.0",
                Version::Http11 => "HTTP/1.1",
            },
        }),
        status: 101,
        body_bytes: down_moved.get(),
        referer: head.and_then(|h| h.header(b"referer")),
        user_agent: head.and_then(|h| h.header(b"user-agent")),
        duration: worker.clock.now() - pending.started,
        upstream: Some(pending.addr),
    });
}

/// Resolves when a stopping worker's `shutdown_timeout` is about to run out:
/// tunnels carry on through the drain, then close themselves just before the
/// worker gives up on them, so that their log lines are still written.
async fn drained(worker: &Worker) {
    worker.shutdown.wait().await;
    let margin = DRAIN_MARGIN.min(worker.shutdown_timeout / 10);
    monoio::time::sleep(worker.shutdown_timeout.saturating_sub(margin)).await;
}

/// How long before `shutdown_timeout` ends a draining tunnel closes.
const DRAIN_MARGIN: Duration = Duration::from_millis(100);

/// Resolves once nothing has moved for `timeout`. One timer per tunnel,
/// re-armed only when it fires: traffic just moves `activity` forward.
async fn idle(activity: &Cell<Instant>, timeout: Duration) {
    loop {
        let now = Instant::now();
        let left = timeout.saturating_sub(now.saturating_duration_since(activity.get()));
        if left.is_zero() {
            return;
        }
        // Long timeouts (days) re-arm in steps: the loop re-reads activity anyway.
        monoio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}

/// The longest single sleep of the idle watchdog.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Drive both directions until both have ended; the first error ends both.
async fn both(
    a: impl Future<Output = io::Result<()>>,
    b: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_done, mut b_done) = (false, false);
    poll_fn(|cx| {
        if !a_done && let Poll::Ready(result) = a.as_mut().poll(cx) {
            result?;
            a_done = true;
        }
        if !b_done && let Poll::Ready(result) = b.as_mut().poll(cx) {
            result?;
            b_done = true;
        }
        if a_done && b_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The socket under a split half, for readiness waits.
fn socket(half: &Rc<UnsafeCell<TcpStream>>) -> &TcpStream {
    // SAFETY: the UnsafeCell is the one monoio's split halves share. monoio
    // itself takes shared references through it (`peer_addr`) while the
    // other half may be mid-operation; `readable` likewise only reads the
    // stream's descriptor handle to submit a poll, and is called from the
    // direction that owns the read half, never during its own read.
    unsafe { &*half.get() }
}

/// One direction over splice: wait until the source has bytes, then move
/// them through a pooled pipe into the destination, waiting for room there
/// when it is full. Both sockets are non-blocking (see `splice`).
async fn splice_direction(
    from: &mut OwnedReadHalf<TcpStream>,
    to: &mut monoio::io::OwnedWriteHalf<TcpStream>,
    early: Bytes,
    pipes: &PipePool,
    flow: &Flow<'_>,
) -> io::Result<()> {
    forward_early(to, early, flow).await?;
    let (source, destination) = (socket(&from.0), socket(&to.0));
    let (source_fd, destination_fd) = (source.as_raw_fd(), destination.as_raw_fd());
    let mut left = u64::MAX;
    loop {
        // Errors count as readable: the splice reports them.
        let _ = source.readable(false).await;
        let mut pipe = pipes.take()?;
        loop {
            match pipe.transfer(source_fd, destination_fd, &mut left) {
                Ok((step, moved)) => {
                    if moved > 0 {
                        flow.record(moved as usize);
                    }
                    match step {
                        Step::SourceEmpty => break,
                        // Errors count as writable: the splice reports them.
                        Step::DestinationFull => {
                            let _ = destination.writable(false).await;
                        }
                        Step::End | Step::Done => {
                            pipes.put(pipe);
                            return to.shutdown().await;
                        }
                    }
                }
                // The pipe may still hold bytes: `put` closes it.
                Err(Failed::Source(e) | Failed::Destination(e)) => {
                    pipes.put(pipe);
                    return Err(e);
                }
            }
        }
        pipes.put(pipe);
    }
}

/// One direction through a user-space buffer. With `ready` (a plain socket)
/// the buffer is allocated when bytes are waiting and dropped when a read
/// drained the socket, so an idle direction holds none.
async fn copy_direction<R: AsyncReadRent, W: AsyncWriteRent>(
    from: &mut R,
    to: &mut W,
    early: Bytes,
    ready: Option<Rc<UnsafeCell<TcpStream>>>,
    size: usize,
    flow: &Flow<'_>,
) -> io::Result<()> {
    forward_early(to, early, flow).await?;
    let mut held: Option<Vec<u8>> = None;
    loop {
        if held.is_none()
            && let Some(source) = &ready
        {
            let _ = socket(source).readable(false).await;
        }
        let buf = held.take().unwrap_or_else(|| Vec::with_capacity(size));
        let (result, buf) = from.read(buf).await;
        let n = result?;
        if n == 0 {
            return to.shutdown().await;
        }
        let full = n == buf.capacity();
        let (result, mut buf) = monoio::io::AsyncWriteRentExt::write_all(to, buf).await;
        result?;
        flow.record(n);
        if full || ready.is_none() {
            buf.clear();
            held = Some(buf);
        }
    }
}

async fn forward_early(
    to: &mut impl AsyncWriteRent,
    early: Bytes,
    flow: &Flow<'_>,
) -> io::Result<()> {
    if early.is_empty() {
        return Ok(());
    }
    let n = early.len();
    write_all(to, early).await?;
    flow.record(n);
    Ok(())
}
