//! Upstream connections of one worker: server selection (weighted round robin),
//! connecting with a timeout, and the keep-alive pool.
//!
//! Everything here is owned by one worker thread; nothing is shared, so there is
//! no lock. Idle connections are keyed by server address, which stays meaningful
//! across reloads (upstream indexes do not).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use monoio::net::TcpStream;

use crate::clock::Stamp;
use crate::deadline::Deadline;
use crate::error::ProxyError;
use crate::snapshot::Upstream;

/// Room for a response head on top of `buffer_size` in an upstream
/// connection's buffer, so that a head and a full buffer of body arrive in
/// one read and leave in one write (a 16 KiB body with the default
/// `buffer_size` included). Pages of it that are never read into cost no memory.
pub const RESPONSE_HEAD_ROOM: usize = 4 * 1024;

/// A connection to an upstream server and its read buffer. It lives in a
/// `Box` from connect to close: handing it from the pool to a request and
/// back moves a pointer, not its 170 bytes, on every request.
pub struct UpstreamConn {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub buf: BytesMut,
    /// Taken from the pool: a failure before the response may mean the
    /// server closed it while idle, which is worth one retry.
    pub reused: bool,
}

/// Idle connections beyond an upstream's `keepalive` stay pooled while they
/// keep being reused; one left idle this long is closed. Closing the surplus
/// at once, as nginx does, makes a load whose idle count hovers above
/// `keepalive` pay a new upstream connection (and a TIME_WAIT socket) for a
/// large share of its requests: 14 % of them at 64 clients and `keepalive =
/// 32`. HAProxy purges idle connections gradually for the same reason.
pub const SURPLUS_IDLE: Duration = Duration::from_secs(1);

/// The idle connections to one server, most recently used last.
struct IdleList {
    addr: SocketAddr,
    /// The `keepalive` of the upstream that last returned a connection here.
    keepalive: usize,
    conns: VecDeque<Idle>,
}

struct Idle {
    conn: Box<UpstreamConn>,
    since: Stamp,
}

impl IdleList {
    /// Close the longest-idle connections while more than `keepalive` are
    /// pooled and the oldest has been idle for `SURPLUS_IDLE`. The list is
    /// used last in, first out, so its front is what recent traffic did not need.
    fn trim(&mut self, now: Stamp) -> usize {
        let before = self.conns.len();
        while self.conns.len() > self.keepalive
            && self
                .conns
                .front()
                .is_some_and(|idle| now - idle.since >= SURPLUS_IDLE)
        {
            self.conns.pop_front();
        }
        before - self.conns.len()
    }
}

#[derive(Default)]
pub struct UpstreamPool {
    /// Idle connections per server address. A worker talks to a handful of
    /// servers, so a linear scan beats hashing a `SocketAddr` twice per request.
    idle: Vec<IdleList>,
    /// Round-robin position per upstream index.
    cursors: Vec<u64>,
    /// Idle connections in all of `idle`.
    idle_total: usize,
}

impl UpstreamPool {
    /// The servers of `upstream` in the order to try them for this request:
    /// weighted round robin start, then the others as fall-backs.
    pub fn pick(&mut self, upstream_index: usize, upstream: &Upstream) -> usize {
        // One server: no weights to sum, no division.
        if upstream.servers.len() <= 1 {
            return 0;
        }
        if self.cursors.len() <= upstream_index {
            self.cursors.resize(upstream_index + 1, 0);
        }
        let total: u64 = upstream
            .servers
            .iter()
            .map(|s| u64::from(s.weight.max(1)))
            .sum();
        let cursor = self.cursors[upstream_index];
        self.cursors[upstream_index] = cursor.wrapping_add(1);
        let mut slot = cursor % total.max(1);
        for (i, server) in upstream.servers.iter().enumerate() {
            let weight = u64::from(server.weight.max(1));
            if slot < weight {
                return i;
            }
            slot -= weight;
        }
        0
    }

    /// An idle connection to `addr`, if one is pooled. With `verify`, idle
    /// connections the server has closed meanwhile are discarded first: a
    /// request that cannot be replayed must not be sent on one.
    pub fn take(&mut self, addr: SocketAddr, verify: bool) -> Option<Box<UpstreamConn>> {
        let list = self.idle.iter_mut().find(|list| list.addr == addr)?;
        while let Some(Idle { mut conn, .. }) = list.conns.pop_back() {
            self.idle_total -= 1;
            if verify && !is_open(&conn.stream) {
                continue;
            }
            conn.reused = true;
            return Some(conn);
        }
        None
    }

    /// Keep `conn` for reuse (`keepalive = 0` never pools). More than
    /// `keepalive` idle connections to its server are kept only while traffic
    /// keeps reusing them (see `SURPLUS_IDLE`). `now` stamps it idle.
    pub fn put(&mut self, conn: Box<UpstreamConn>, keepalive: usize, now: Stamp) {
        if keepalive == 0 || !conn.buf.is_empty() {
            return;
        }
        let list = match self.idle.iter().position(|list| list.addr == conn.addr) {
            Some(i) => &mut self.idle[i],
            None => {
                self.idle.push(IdleList {
                    addr: conn.addr,
                    keepalive,
                    conns: VecDeque::with_capacity(keepalive.min(64)),
                });
                self.idle.last_mut().expect("just pushed")
            }
        };
        list.keepalive = keepalive;
        list.conns.push_back(Idle { conn, since: now });
        self.idle_total += 1;
        self.idle_total -= list.trim(now);
    }

    /// Close the surplus idle connections that have not been reused for
    /// `SURPLUS_IDLE`; the worker calls this on its housekeeping tick, so the
    /// surplus goes also when traffic stops.
    pub fn trim(&mut self, now: Stamp) {
        for list in &mut self.idle {
            self.idle_total -= list.trim(now);
        }
    }

    /// Close the idle connections to servers for which `keep` is false (a
    /// reload removed them).
    pub fn retain_servers(&mut self, mut keep: impl FnMut(SocketAddr) -> bool) {
        self.idle.retain(|list| keep(list.addr));
        self.idle_total = self.idle.iter().map(|list| list.conns.len()).sum();
    }

    pub fn idle_count(&self) -> usize {
        self.idle_total
    }
}

/// Open a new connection to `addr` by `at` (the connection's `deadline`).
pub async fn connect(
    addr: SocketAddr,
    deadline: &mut Deadline<'_>,
    at: Stamp,
    buffer_size: usize,
) -> Result<Box<UpstreamConn>, ProxyError> {
    let stream = match deadline.run(at, TcpStream::connect_addr(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ProxyError::Connect(e)),
        Err(_) => return Err(ProxyError::ConnectTimeout),
    };
    set_nodelay(&stream);
    Ok(Box::new(UpstreamConn {
        stream,
        addr,
        buf: BytesMut::with_capacity(buffer_size + RESPONSE_HEAD_ROOM),
        reused: false,
    }))
}

pub fn set_nodelay(stream: &TcpStream) {
    // Without TCP_NODELAY a small response written after a large one waits for
    // the peer's delayed ACK (40 ms): never wanted in a proxy.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
}

/// Is an idle connection still open? A server that closed it has left an
/// EOF (or, against the protocol, stray bytes) to read; an open idle
/// connection has nothing. One non-blocking `recv(MSG_PEEK)`, paid only by
/// requests that cannot be retried.
fn is_open(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid, writable 1-byte buffer for the duration of the
    // call, and the fd is owned by `stream`, which outlives the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&raw mut byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}
