//! Mock upstream servers, each named by the one behaviour a test needs from it.
//!
//! Every backend listens on 127.0.0.1:0, serves each accepted connection on its own std
//! thread, counts connections, and records every complete request it received. Dropping the
//! `Backend` sets its stop flag and joins the acceptor, which joins the connection threads; all
//! reads poll the flag, so no thread outlives its test.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::{HttpStream, Request};

const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// The longest a gated backend waits for `Backend::release` before giving up on its own.
const GATE_LIMIT: Duration = Duration::from_secs(10);

/// What a backend shares with the threads that serve its connections.
#[derive(Debug, Default)]
pub struct Shared {
    stop: Arc<AtomicBool>,
    gate: AtomicBool,
    gate_expired: AtomicBool,
    connections: AtomicUsize,
    open: AtomicUsize,
    requests: Mutex<Vec<Request>>,
}

impl Shared {
    fn record(&self, req: &Request) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(req.clone());
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleep for `d`, or less if the backend is being dropped.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.stopped() {
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until the test calls `Backend::release` (bounded, and cut short by stop).
    fn wait_gate(&self) {
        let until = Instant::now() + GATE_LIMIT;
        while !self.gate.load(Ordering::Acquire) && !self.stopped() {
            if Instant::now() >= until {
                self.gate_expired.store(true, Ordering::Release);
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One accepted connection as a behaviour sees it.
pub struct Connection<'a> {
    pub stream: HttpStream,
    /// 0-based index of this connection among the backend's accepted connections.
    pub index: usize,
    pub shared: &'a Shared,
}

impl Connection<'_> {
    /// Read the next request and record it; None when the peer closed or the backend stops.
    fn next_request(&mut self, keep_body: bool) -> Option<Request> {
        let mut req = self.stream.read_request(keep_body).ok()?;
        req.connection = self.index;
        self.shared.record(&req);
        Some(req)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.send(bytes)
    }

    fn close(&mut self) {
        // Errors mean the peer went first, which is what closing wants anyway.
        let _ = self.stream.get_ref().shutdown(Shutdown::Both);
    }
}

type Behaviour = dyn Fn(&mut Connection<'_>) + Send + Sync;

/// A running mock upstream.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("addr", &self.addr).finish()
    }
}

impl Backend {
    fn spawn(behaviour: Arc<Behaviour>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend on 127.0.0.1:0");
        Backend::spawn_on(listener, behaviour)
    }

    fn spawn_on(listener: TcpListener, behaviour: Arc<Behaviour>) -> Backend {
        listener
            .set_nonblocking(true)
            .expect("non-blocking backend listener");
        let addr = listener.local_addr().expect("backend address");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, &shared, &behaviour))
        };
        Backend {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed by either side.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Every complete request received so far, in arrival order per connection.
    pub fn requests(&self) -> Vec<Request> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Let a gated backend (`chunked_flush_backend`) send the rest of its response.
    pub fn release(&self) {
        self.shared.gate.store(true, Ordering::Release);
    }

    /// True if a gated backend gave up waiting for `release` and sent the rest on its own.
    pub fn gate_expired(&self) -> bool {
        self.shared.gate_expired.load(Ordering::Acquire)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            // A panicking behaviour has already failed its test; nothing to add here.
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, behaviour: &Arc<Behaviour>) {
    let mut workers = Vec::new();
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                let index = shared.connections.fetch_add(1, Ordering::SeqCst);
                shared.open.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(shared);
                let behaviour = Arc::clone(behaviour);
                workers.push(thread::spawn(move || {
                    serve(stream, index, &shared, &*behaviour)
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

fn serve(stream: TcpStream, index: usize, shared: &Shared, behaviour: &Behaviour) {
    serve_connection(stream, index, shared, behaviour);
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

fn serve_connection(stream: TcpStream, index: usize, shared: &Shared, behaviour: &Behaviour) {
    // Accepted sockets inherit nothing from the non-blocking listener on Linux, but be explicit.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let Ok(stream) = HttpStream::server(stream, Arc::clone(&shared.stop)) else {
        return;
    };
    let mut conn = Connection {
        stream,
        index,
        shared,
    };
    behaviour(&mut conn);
}

/// Answers every request 200 with the request body echoed back and `x-echo-*` headers naming
/// what it received. Keep-alive until the proxy closes. The response also carries hop-by-hop
/// headers (`Keep-Alive`, a field named in `Connection`) that the proxy must strip, and
/// end-to-end ones it must keep (`X-Backend-End2End`, two `Set-Cookie`, which can never be
/// joined into one line: RFC 9110 §5.3).
pub fn echo_backend() -> Backend {
    Backend::spawn(Arc::new(|conn: &mut Connection<'_>| {
        while let Some(req) = conn.next_request(true) {
            // A HEAD response announces the length a GET would have (RFC 9110 §9.3.2) and
            // sends no body: a proxy that waits for one stalls the connection.
            let (length, body): (usize, &[u8]) = if req.method == "HEAD" {
                (5, b"")
            } else {
                (req.body.len(), &req.body)
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\n\
                 Content-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\n\
                 X-Echo-Method: {}\r\n\
                 X-Echo-Target: {}\r\n\
                 X-Echo-Connection: {}\r\n\
                 X-Echo-Body-Len: {}\r\n\
                 X-Echo-Body-Hash: {:016x}\r\n\
                 Keep-Alive: timeout=60, max=1000\r\n\
                 Connection: keep-alive, X-Backend-Hop\r\n\
                 X-Backend-Hop: secret\r\n\
                 X-Backend-End2End: yes\r\n\
                 Set-Cookie: first=1\r\n\
                 Set-Cookie: second=2\r\n\r\n",
                length, req.method, req.target, req.connection, req.body_len, req.body_hash,
            );
            let mut out = head.into_bytes();
            // `X-Echo-Big-Header: N` asks for an N-byte response field, to test large heads.
            if let Some(n) = req
                .headers
                .get("x-echo-big-header")
                .and_then(|v| v.parse().ok())
            {
                out.truncate(out.len() - 2);
                out.extend_from_slice(format!("X-Big: {}\r\n\r\n", "b".repeat(n)).as_bytes());
            }
            out.extend_from_slice(body);
            let close = req
                .headers
                .get("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if conn.write(&out).is_err() || close {
                return;
            }
        }
    }))
}

/// Answers every request 200 with, in `X-Data-Segments`, how many TCP segments carrying
/// data its connection had received once the request was complete (Linux's
/// `tcpi_data_segs_in`): a proxy that writes a request's head and body together sends it in
/// one.
pub fn segment_counting_backend() -> Backend {
    Backend::spawn(Arc::new(|conn: &mut Connection<'_>| {
        while let Some(req) = conn.next_request(false) {
            let segments = data_segments_in(conn.stream.get_ref()).expect("TCP_INFO");
            let out = format!(
                "HTTP/1.1 200 OK\r\nX-Data-Segments: {segments}\r\nX-Body-Len: {}\r\n\
                 Content-Length: 0\r\n\r\n",
                req.body_len
            );
            if conn.write(out.as_bytes()).is_err() {
                return;
            }
        }
    }))
}

/// `struct tcp_info` of linux/tcp.h up to `tcpi_data_segs_out` (Linux 4.6): the kernel
/// copies as much of its own as this holds. The libc crate stops at `tcpi_total_retrans`.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    bytes: [u8; 8],
    times_and_counts: [u32; 24],
    rates_and_totals: [u64; 4],
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
}

/// Segments with data received on `stream` so far.
fn data_segments_in(stream: &TcpStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut info = TcpInfo::default();
    let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: `info` is a plain C struct of `len` bytes that outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < std::mem::size_of::<TcpInfo>() {
        return Err(io::Error::other("kernel too old for tcpi_data_segs_in"));
    }
    Ok(info.data_segs_in)
}

/// Counts the request body without keeping it, for very large uploads; answers 200 with the
/// payload length as the body.
pub fn sink_backend() -> Backend {
    Backend::spawn(Arc::new(|conn: &mut Connection<'_>| {
        while let Some(req) = conn.next_request(false) {
            if answer_body_len(conn, &req).is_err() {
                return;
            }
        }
    }))
}

/// 200 with the request's payload length as the body.
fn answer_body_len(conn: &mut Connection<'_>, req: &Request) -> io::Result<()> {
    let body = req.body_len.to_string();
    let out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write(out.as_bytes())
}

/// Like `sink_backend`, but with a small receive buffer, and waiting `delay` after each request
/// head before reading the body: an upstream slower than its client, whose socket is full
/// nearly all the time, to the last bytes of the body.
pub fn slow_sink_backend(delay: Duration) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        let socket = socket2::SockRef::from(conn.stream.get_ref());
        if socket.set_recv_buffer_size(16 * 1024).is_err() {
            return;
        }
        while conn.stream.wait_for_head().is_ok() {
            conn.shared.pause(delay);
            let Some(req) = conn.next_request(false) else {
                return;
            };
            if answer_body_len(conn, &req).is_err() {
                return;
            }
        }
    }))
}

/// Reads nothing for `delay` after it accepts a connection, then answers one request 200
/// with the length of its `X-Big` field and of its body (`"307200 5"`) and closes: an
/// upstream that takes a head larger than the sockets hold more slowly than the proxy
/// writes it, so the proxy's first write of the head, on a new connection every time,
/// ends short.
///
/// Loopback's 64 KiB segments would size the proxy's send buffer in megabytes
/// (Linux sizes it by segments): the listener asks for 536-byte ones, which
/// keeps it at tens of KiB, as on a real network.
pub fn slow_reader_backend(delay: Duration) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend on 127.0.0.1:0");
    socket2::SockRef::from(&listener)
        .set_mss(536)
        .expect("TCP_MAXSEG on the backend listener");
    Backend::spawn_on(
        listener,
        Arc::new(move |conn: &mut Connection<'_>| {
            conn.shared.pause(delay);
            let Some(req) = conn.next_request(false) else {
                return;
            };
            let big = req.headers.get("x-big").map_or(0, str::len);
            let body = format!("{big} {}", req.body_len);
            let out = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if conn.write(out.as_bytes()).is_ok() {
                conn.close();
            }
        }),
    )
}

/// Waits `delay` after each request before answering 200 with the request target as the
/// body: an upstream too slow for `read_timeout`, whose late answers name their request.
pub fn slow_head_backend(delay: Duration) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        while let Some(req) = conn.next_request(true) {
            conn.shared.pause(delay);
            let out = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                req.target.len(),
                req.target
            );
            if conn.write(out.as_bytes()).is_err() {
                return;
            }
        }
    }))
}

/// Answers with a chunked body: `first` is sent and flushed at once, then the backend waits for
/// `Backend::release` before sending `rest` and the last chunk. A proxy that buffers whole
/// responses cannot deliver `first` before the release.
pub fn chunked_flush_backend(first: Vec<u8>, rest: Vec<Vec<u8>>) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        while conn.next_request(true).is_some() {
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(&chunk(&first));
            if conn.write(&out).is_err() {
                return;
            }
            conn.shared.wait_gate();
            let mut out = Vec::new();
            for part in &rest {
                out.extend_from_slice(&chunk(part));
            }
            out.extend_from_slice(b"0\r\n\r\n");
            if conn.write(&out).is_err() {
                return;
            }
        }
    }))
}

/// Encode `data` as one chunk (RFC 9112 §7.1).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Answers 200 without Content-Length or Transfer-Encoding: the body is delimited by closing
/// the connection (RFC 9112 §6.3 rule 8).
pub fn close_delimited_backend(body: Vec<u8>) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        if conn.next_request(true).is_some() {
            let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            out.extend_from_slice(&body);
            let _ = conn.write(&out);
            conn.close();
        }
    }))
}

/// Answers every request with exactly `raw` and keeps the connection: for valid but unusual
/// responses (interim 1xx, 204/304 announcing a length) that must not desynchronise the proxy.
pub fn canned_response_backend(raw: &'static [u8]) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        while conn.next_request(true).is_some() {
            if conn.write(raw).is_err() {
                return;
            }
        }
    }))
}

/// Answers every request 200 with a `len`-byte body (a repeating pattern), written in 256 KiB
/// blocks as fast as the proxy takes them: a large download.
pub fn big_response_backend(len: u64) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        let block = vec![b'd'; 256 * 1024];
        while conn.next_request(true).is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            if conn.write(head.as_bytes()).is_err() {
                return;
            }
            let mut left = len;
            while left > 0 {
                let n = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
                if conn.shared.stopped() || conn.write(&block[..n]).is_err() {
                    return;
                }
                left -= n as u64;
            }
        }
    }))
}

/// Answers every request with exactly `raw` and closes: for malformed upstream responses.
pub fn malformed_response_backend(raw: Vec<u8>) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        if conn.next_request(true).is_some() {
            let _ = conn.write(&raw);
            conn.close();
        }
    }))
}

/// Answers one request per connection as a keep-alive response (no `Connection: close`) and
/// then closes the connection: every pooled connection the proxy keeps from it is stale.
pub fn closing_after_response_backend() -> Backend {
    Backend::spawn(Arc::new(|conn: &mut Connection<'_>| {
        if let Some(req) = conn.next_request(true) {
            let out = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                req.target.len(),
                req.target
            );
            let _ = conn.write(out.as_bytes());
            conn.close();
        }
    }))
}

/// Answers `413` as soon as a request head arrives, without reading the body, then keeps the
/// connection open and unread for `hold`: an upstream that refuses an upload early, as
/// application servers do for oversized or unauthorised uploads (RFC 9112 §9.5: a client
/// sending a body monitors the connection for such an answer).
pub fn early_response_backend(hold: Duration) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        if conn.stream.wait_for_head().is_err() {
            return;
        }
        let out = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!";
        if conn.write(out).is_ok() {
            conn.shared.pause(hold);
        }
        conn.close();
    }))
}

/// Sends a head promising more body than it sends, then closes: an upstream that dies in the
/// middle of a response. `chunked` picks chunked framing (no last chunk) instead of a length.
pub fn dying_mid_response_backend(chunked: bool) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        if conn.next_request(true).is_some() {
            let partial = vec![b'x'; 1000];
            let out = if chunked {
                let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                out.extend_from_slice(&chunk(&partial));
                out
            } else {
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
                out.extend_from_slice(&partial);
                out
            };
            let _ = conn.write(&out);
            // Give the proxy time to forward the head before the connection dies.
            conn.shared.pause(Duration::from_millis(100));
            conn.close();
        }
    }))
}

/// A port on 127.0.0.1 where nothing listens: connecting to it is refused.
///
/// The port stays bound, by a socket that never listens, for as long as the value lives, so
/// no other test running in parallel can be given it meanwhile (a port merely released can be
/// the next `bind(0)`'s, and a proxy or backend answering there turns "refused" into a 200).
#[derive(Debug)]
pub struct ClosedPort {
    addr: SocketAddr,
    _socket: std::os::fd::OwnedFd,
}

impl ClosedPort {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

pub fn closed_port() -> ClosedPort {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned by the OwnedFd at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes for both calls, and `fd` is open.
    unsafe {
        assert_eq!(
            libc::bind(fd, (&raw const addr).cast(), len),
            0,
            "bind 127.0.0.1:0: {}",
            io::Error::last_os_error()
        );
        assert_eq!(
            libc::getsockname(fd, (&raw mut addr).cast(), &mut len),
            0,
            "getsockname: {}",
            io::Error::last_os_error()
        );
    }
    ClosedPort {
        addr: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, u16::from_be(addr.sin_port))),
        _socket: socket,
    }
}

/// A loopback listener whose accept queue is full and never drained: a connection attempt to
/// it gets no SYN-ACK, so the proxy's connect times out (a loopback stand-in for a host that
/// drops packets).
#[derive(Debug)]
pub struct FullBacklog {
    listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn new() -> FullBacklog {
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // SAFETY: listen(2) on a socket we own and keep open; no pointers are involved. Calling
        // it again on a listening socket only lowers the backlog (to one queued connection).
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0) failed");
        let addr = listener.local_addr().expect("local address");
        // Fill the queue; attempts beyond its size time out, which is the point.
        let queued = (0..3)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
            .collect();
        FullBacklog {
            listener,
            _queued: queued,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("local address")
    }
}

impl Default for FullBacklog {
    fn default() -> Self {
        FullBacklog::new()
    }
}

/// Answers every request 200 with a body of as many bytes as its target's last segment says
/// (`/16384`; pseudo-random, seeded by the length), head and body in one write, keep-alive.
/// The head is `HTTP/1.1 200 OK`, `Server`, `Content-Type`, `Content-Length` last: one a proxy
/// may pass on unchanged.
pub fn sized_body_backend() -> Backend {
    Backend::spawn(Arc::new(|conn: &mut Connection<'_>| {
        while let Some(req) = conn.next_request(false) {
            let len: usize = req
                .target
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nServer: sized\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
            )
            .into_bytes();
            out.extend_from_slice(&crate::pseudo_random_body(len, len as u64));
            if conn.write(&out).is_err() {
                return;
            }
        }
    }))
}

/// Answers every request 200 with `body` (keep-alive): the head and the first `first` bytes at
/// once, the rest only after `Backend::release`. An upstream that goes quiet in the middle of
/// a large body.
pub fn gated_body_backend(body: Vec<u8>, first: usize) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        while conn.next_request(true).is_some() {
            let mut out =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(&body[..first]);
            if conn.write(&out).is_err() {
                return;
            }
            conn.shared.wait_gate();
            if conn.write(&body[first..]).is_err() {
                return;
            }
        }
    }))
}

/// Answers every request 200 with `body` (keep-alive), written in 100 KiB pieces with a
/// pause after the first, so that a proxy sees the body arrive over several reads.
pub fn fixed_body_backend(body: Vec<u8>) -> Backend {
    Backend::spawn(Arc::new(move |conn: &mut Connection<'_>| {
        while conn.next_request(true).is_some() {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if conn.write(head.as_bytes()).is_err() {
                return;
            }
            for (i, piece) in body.chunks(100 * 1024).enumerate() {
                if conn.write(piece).is_err() {
                    return;
                }
                if i == 0 {
                    conn.shared.pause(Duration::from_millis(20));
                }
            }
        }
    }))
}
