//! A client connection: read request heads (with `header_timeout` and
//! `keepalive_timeout`), route them, answer or hand them to `proxy`, and keep
//! the connection for the next request while both sides allow it. Requests on a
//! connection are served strictly one after another, so pipelined requests are
//! answered in order.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use ringway_protocol::h1::{
    BodyDecoder, BodyFraming, HeadLimits, HeaderField, Method, RequestHead, Version,
};
use ringway_protocol::{ProtocolError, normalize_path, parse_request_into, write_simple_response};

use crate::access_log::{Entry, RequestLine};
use crate::buffer::{self, IoVecPair, read_more, write_vec};
use crate::clock::Stamp;
use crate::deadline::Deadline;
use crate::proxy;
use crate::route::Found;
use crate::shutdown::Wait;
use crate::snapshot::{Action, HeaderEdits, Limits, Route, Server, Snapshot};
use crate::stream::ClientStream;
use crate::tunnel::{self, Pending};
use crate::vars::{RequestVars, with_edits};
use crate::worker::{Active, Worker, client_stream};

/// Per-connection state, reused by every request on the connection.
pub struct Connection<'w> {
    pub worker: &'w Worker,
    pub stream: ClientStream,
    pub peer: SocketAddr,
    /// The configured listen address the connection came in on.
    pub listen: SocketAddr,
    /// Its index in the snapshot of the current request.
    pub listener: usize,
    pub local_port: u16,
    /// Its buffers, taken from the worker's spares and given back at the end.
    pub bufs: Buffers,
    /// Metrics slot of the current request: its route, else its server's.
    pub metric: usize,
    /// Set when the upstream switched protocols: the connection becomes a tunnel.
    pub upgrade: Option<Pending>,
    /// The one timer bounding every read and write of the request in progress.
    pub deadline: Deadline<'w>,
    /// The worker's shutdown signal, waited on between requests; registered
    /// once for the connection's life.
    stop: Wait<'w>,
}

/// What came of reading a request head. The head itself goes into the slot
/// `read_head` is given: moved along with this result out of its future and
/// into the match, it was copied three times more per request (a `memcpy` of
/// 150 bytes each, 87 instructions in all, callgrind).
enum HeadRead {
    Head(Stamp),
    /// The client closed, or stayed idle past the keep-alive timeout.
    Closed,
    Rejected(ProtocolError, Stamp),
    TimedOut(Stamp),
}

/// How a request ended, for the access log and the keep-alive decision.
pub struct Outcome {
    pub status: u16,
    pub body_bytes: u64,
    pub keep_alive: bool,
    pub upstream: Option<SocketAddr>,
}

/// Where `Connection::route` sends a request.
enum Routed<'s, 'h> {
    /// Answered with `status` on `server` (and `route`, once one matched).
    Refused {
        server: &'s Server,
        route: Option<&'s Route>,
        status: u16,
        close: bool,
    },
    /// Answered by `found.route` on `server`; `path` is the normalised one
    /// it matched, `body` the request body's decoder.
    To {
        server: &'s Server,
        found: Found<'s>,
        path: Cow<'h, [u8]>,
        body: BodyDecoder,
    },
}

/// Serve an accepted connection (after its TLS handshake, on a TLS
/// address) until it closes or becomes a tunnel.
pub async fn serve(
    worker: Rc<Worker>,
    socket: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    local_port: u16,
) {
    let _active = Active(&worker);
    let mut deadline = Deadline::new(&worker.clock);
    let Some(stream) = client_stream(&worker, &mut deadline, socket, peer, listen).await else {
        return;
    };
    let worker = &worker;
    let mut conn = Connection {
        worker,
        stream,
        peer,
        listen,
        listener: 0,
        local_port,
        bufs: worker.take_buffers(),
        metric: 0,
        upgrade: None,
        deadline,
        stop: worker.shutdown.wait(),
    };
    let mut first = true;
    let mut previous: Option<Rc<Arc<Snapshot>>> = None;
    let mut parsed: Option<RequestHead> = None;
    let upgrade = loop {
        // The snapshot is loaded once per request, when its head has arrived:
        // a reload takes effect on the next request of an existing keep-alive
        // connection, even one that was idle across the reload. If the reload
        // removed this connection's listen address, its next request is served
        // on the snapshot it had and the connection then closes (nginx: old
        // workers finish their connections with the old configuration).
        // The wait for the head began under the previous request's snapshot,
        // so its limits bound it (one snapshot load per request, not two).
        // One call of `read_head`, not one per arm: a future polled from one
        // place is inlined into this one (callgrind: 60-70 instructions per request).
        let loaded;
        let limits = match &previous {
            Some(snapshot) => &snapshot.limits,
            None => {
                loaded = worker.snapshots.load().limits.clone();
                &loaded
            }
        };
        let read = conn.read_head(limits, first, &mut parsed).await;
        let current = worker.snapshot();
        // The listener's index changes only with the snapshot.
        let index = match &previous {
            Some(old) if Rc::ptr_eq(old, &current) => Some(conn.listener),
            _ => current.listener_index(listen),
        };
        let (snapshot, last) = match index {
            Some(index) => {
                conn.listener = index;
                (current, false)
            }
            None => match previous.take() {
                Some(old) => (old, true),
                None => break None,
            },
        };
        let keep_alive = match read {
            HeadRead::Head(started) => {
                let head = parsed.as_ref().expect("read_head put the head in the slot");
                // Routed by a plain function and answered by a future polled
                // from here: each level of futures between this task and its
                // operation is a cache line or two more that every wake-up
                // reads back (callgrind: about 6 first-level data misses and
                // 30 instructions per proxied request). The head is lent, not
                // moved into a future: it is a few hundred bytes, copied on
                // every move.
                let outcome = match conn.route(&snapshot, head) {
                    Routed::Refused {
                        server,
                        route,
                        status,
                        close,
                    } => conn.respond_error(head, server, route, status, close).await,
                    Routed::To {
                        server,
                        found,
                        path,
                        body,
                    } => match &found.route.action {
                        Action::Proxy(target) => {
                            let forward = proxy::forward(
                                &mut conn, &snapshot, server, &found, &path, head, body, target,
                            );
                            forward.await
                        }
                        _ => conn.answer_locally(head, server, found.route, &path).await,
                    },
                };
                let keep_alive = conn.finish(head, started, outcome);
                if let Some(head) = parsed.take() {
                    let (bytes, scratch) = head.into_parts();
                    conn.bufs.scratch = scratch;
                    conn.bufs.take_back(bytes);
                }
                keep_alive
            }
            HeadRead::Closed => false,
            HeadRead::Rejected(error, started) => {
                tracing::debug!(peer = %peer, "rejected request: {}", error.reason());
                conn.answer_unrouted(&snapshot, error.status(), started)
                    .await;
                false
            }
            HeadRead::TimedOut(started) => {
                tracing::debug!(peer = %peer, "request head timed out");
                conn.answer_unrouted(&snapshot, 408, started).await;
                false
            }
        };
        if let Some(pending) = conn.upgrade.take() {
            break Some(pending);
        }
        if !keep_alive || last || worker.shutdown.is_stopping() {
            break None;
        }
        first = false;
        previous = Some(snapshot);
    };
    // Client bytes already read behind an upgrade's head go first.
    let early = upgrade
        .as_ref()
        .map(|_| Bytes::copy_from_slice(&conn.bufs.buf));
    let Connection { stream, bufs, .. } = conn;
    worker.recycle_buffers(bufs);
    if let (Some(pending), Some(early)) = (upgrade, early) {
        // Only the two sockets go on. A task of its own, counted as active
        // until it ends: this future's request-handling state (kilobytes) is
        // freed instead of living as long as the tunnel, for days.
        worker.active.set(worker.active.get() + 1);
        let worker = worker.clone();
        monoio::spawn(async move {
            tunnel::run(&worker, stream, early, peer, pending).await;
            worker.active.set(worker.active.get() - 1);
        });
    }
}

/// A connection's buffers, kept by its worker when the connection ends and
/// handed to the next one, so that a new connection per request allocates
/// none of them. Nothing of one connection reaches the next: every buffer
/// is emptied on the way back, the forwarding lines (which hold the peer's
/// address) included.
pub struct Buffers {
    /// Bytes read from the client and not yet consumed: the next head, or body.
    pub buf: BytesMut,
    /// Where heads are written before they go out.
    pub out: Vec<u8>,
    /// The iovecs of a head written together with body bytes, made on first use.
    pub iov: Option<IoVecPair>,
    /// Scratch for expanded header values.
    pub arena: Vec<u8>,
    /// Scratch for the upstream request target after URI replacement.
    pub target: Vec<u8>,
    pub scratch: Vec<HeaderField>,
    /// The head sent upstream, kept for a retry; reused request after request.
    pub upstream_head: Vec<u8>,
    /// X-Forwarded-For, X-Real-IP and X-Forwarded-Proto from this connection
    /// alone (`ringway_protocol::connection_lines`), rendered by its first
    /// proxied request and copied whole by every one after.
    pub forwarding_lines: Vec<u8>,
    /// Header spans of upstream responses, reused.
    pub response_scratch: Vec<HeaderField>,
}

/// Buffers kept per worker for connections to come; a burst of closes beyond
/// this frees the rest.
const SPARE_BUFFERS: usize = 32;

/// Buffers that grew past this (a huge head, say) are freed, not kept.
const SPARE_LIMIT: usize = 64 * 1024;

impl Buffers {
    fn new(buffer_size: usize) -> Buffers {
        Buffers {
            buf: BytesMut::with_capacity(buffer_size),
            out: Vec::with_capacity(1024),
            iov: None,
            arena: Vec::new(),
            target: Vec::new(),
            scratch: Vec::new(),
            upstream_head: Vec::with_capacity(1024),
            forwarding_lines: Vec::new(),
            response_scratch: Vec::new(),
        }
    }

    /// Take back, for the next read, the buffer a request head took whole
    /// (`parse_request_into`): the same memory, so no allocation, and never
    /// shared, so no reference count to update. Unless the connection read
    /// into a new one meanwhile (`linger` does, after an error): the head's
    /// is then let go, as is a head split off a buffer that still has room.
    fn take_back(&mut self, mut head: BytesMut) {
        if self.buf.capacity() == 0 {
            head.clear();
            self.buf = head;
        }
    }

    /// Empty every buffer; false if one is too large to keep.
    fn clear(&mut self) -> bool {
        self.buf.clear();
        self.out.clear();
        self.arena.clear();
        self.target.clear();
        self.scratch.clear();
        self.upstream_head.clear();
        self.forwarding_lines.clear();
        self.response_scratch.clear();
        self.buf
            .capacity()
            .max(self.out.capacity())
            .max(self.upstream_head.capacity())
            <= SPARE_LIMIT
    }
}

impl Worker {
    fn take_buffers(&self) -> Buffers {
        self.spare_buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Buffers::new(self.buffer_size))
    }

    fn recycle_buffers(&self, mut buffers: Buffers) {
        let mut spare = self.spare_buffers.borrow_mut();
        if spare.len() < SPARE_BUFFERS && buffers.clear() {
            spare.push(buffers);
        }
    }
}

impl Connection<'_> {
    /// Read and parse the next request head into `slot`.
    async fn read_head(
        &mut self,
        limits: &Limits,
        first: bool,
        slot: &mut Option<RequestHead>,
    ) -> HeadRead {
        let timeouts = (limits.header_timeout, limits.keepalive_timeout);
        let limits = HeadLimits {
            max_head_size: limits.max_header_size,
            max_headers: limits.max_headers,
        };
        // An idle keep-alive connection waits `keepalive_timeout` for the next
        // request; once a head has begun, all of it must arrive within
        // `header_timeout` (nginx: client_header_timeout, also for the first request).
        let clock = &self.worker.clock;
        let mut started = (!self.bufs.buf.is_empty() || first).then(|| clock.now());
        loop {
            if !self.bufs.buf.is_empty() {
                let at = *started.get_or_insert_with(|| clock.now());
                match parse_request_into(&mut self.bufs.buf, &limits, &mut self.bufs.scratch, slot)
                {
                    Ok(true) => return HeadRead::Head(at),
                    Ok(false) => {}
                    Err(error) => return HeadRead::Rejected(error, at),
                }
            }
            // Idle since the previous request ended, which read the clock.
            let until = match started {
                Some(at) => at + timeouts.0,
                None => clock.deadline(timeouts.1),
            };
            // A new connection is expected to send a request, even while the
            // worker drains (it may have been taken from the accept queue then).
            let between_requests = self.bufs.buf.is_empty() && !first;
            // Between requests, a stopping worker closes the connection.
            let stop = between_requests.then_some(&mut self.stop);
            let size = self.worker.buffer_size;
            let buf = &mut self.bufs.buf;
            // A plain socket is read directly, not through `ClientStream`'s
            // read: a level of futures less on every request's first wake-up.
            let read = match &mut self.stream {
                ClientStream::Plain(tcp) => {
                    let read = self.deadline.run(until, read_more(tcp, buf, size));
                    UnlessStopped { read, stop }.await
                }
                tls => {
                    let read = self.deadline.run(until, read_more(tls, buf, size));
                    UnlessStopped { read, stop }.await
                }
            };
            let Some(result) = read else {
                return HeadRead::Closed;
            };
            match result {
                Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
                Ok(Ok(_)) => {}
                // A connection that never sent a byte is closed silently, as nginx does.
                Err(_) if self.bufs.buf.is_empty() && !first => return HeadRead::Closed,
                Err(_) => return HeadRead::TimedOut(started.unwrap_or_else(|| clock.now())),
            }
            if started.is_none() && !self.bufs.buf.is_empty() {
                started = Some(clock.now());
            }
        }
    }

    /// Count and log an answered request. Returns whether the connection may
    /// carry another request.
    fn finish(&mut self, head: &RequestHead, started: Stamp, outcome: Outcome) -> bool {
        let elapsed = self.worker.clock.now() - started;
        let metrics = &self.worker.metrics;
        metrics.request(self.metric, outcome.status, elapsed);
        metrics.response_bytes.add(outcome.body_bytes);
        if let Some(pending) = &mut self.upgrade {
            // Logged when the tunnel ends, as nginx does.
            pending.log_head = crate::upgrade::compact(head);
            pending.started = started;
            return false;
        }
        if self.worker.access_log.enabled() {
            // Only a written line looks the headers up.
            let request = RequestLine {
                method: head.method_bytes(),
                target: head.target(),
                version: match head.version() {
                    Version::Http10 => "HTTP/1.0",
                    Version::Http11 => "HTTP/1.1",
                },
            };
            self.worker.access_log.log(&Entry {
                peer: self.peer,
                request: Some(request),
                status: outcome.status,
                body_bytes: outcome.body_bytes,
                referer: head.header(b"referer"),
                user_agent: head.header(b"user-agent"),
                duration: elapsed,
                upstream: outcome.upstream,
            });
        }
        outcome.keep_alive
    }

    /// Where a request goes: its server, route and normalised path, or the
    /// error it is refused with; decided before anything is awaited.
    fn route<'s, 'h>(&mut self, snapshot: &'s Snapshot, head: &'h RequestHead) -> Routed<'s, 'h> {
        let refused = |server, route, status, close| Routed::Refused {
            server,
            route,
            status,
            close,
        };
        let index = snapshot.server_for(self.listener, head.host());
        if let Some(sni) = self.stream.sni() {
            // The certificate came from the server the SNI named; a Host naming
            // another server must not be served on it (RFC 9110 §15.5.20, and
            // RFC 6066 §3: the SNI and Host should agree). Names resolve in the
            // current snapshot, so a reload between requests cannot confuse them.
            let by_sni = snapshot.server_for(self.listener, Some(sni));
            if head.host().is_some() && by_sni != index {
                return refused(&snapshot.servers[by_sni], None, 421, false);
            }
        }
        let server = &snapshot.servers[index];
        self.metric = server.metric;
        let path = match normalize_path(head.path()) {
            Ok(path) => path,
            Err(error) => return refused(server, None, error.status(), true),
        };
        let Some(found) = server.routes.find(&path) else {
            return refused(server, None, 404, false);
        };
        let route = found.route;
        self.metric = route.metric;
        if !route.access.permits(self.peer.ip()) {
            return refused(server, Some(route), 403, false);
        }
        let body = BodyDecoder::new(head.framing(), route.max_body_size);
        if let Err(error) = body.check_declared() {
            // Refused before a byte of the body is read, so 100-continue
            // clients never send it (RFC 9110 §10.1.1).
            return refused(server, Some(route), error.status(), true);
        }
        Routed::To {
            server,
            found,
            path,
            body,
        }
    }

    /// Answer a request a route answers itself: `respond` or `redirect`.
    async fn answer_locally(
        &mut self,
        head: &RequestHead,
        server: &Server,
        route: &Route,
        path: &[u8],
    ) -> Outcome {
        let (status, content_type, text, location) = match &route.action {
            Action::Respond { status, body } => {
                (*status, &b"text/plain; charset=utf-8"[..], body, None)
            }
            Action::Redirect {
                status,
                location,
                body,
            } => (*status, &b"text/html"[..], body, Some(location)),
            Action::Proxy(_) => unreachable!("proxied requests are forwarded from `serve`"),
        };
        let vars = self.vars(head, path);
        let close = !head.keep_alive() || head.framing() != BodyFraming::Empty;
        let tls = self.stream.is_tls();
        let head_only = head.method() == Method::Head;
        let own = [server.response_headers_for(tls), &route.response_headers];
        let lists: &[&HeaderEdits] = match location {
            Some(location) => &[own[0], own[1], location],
            None => &own,
        };
        self.answer(
            status,
            content_type,
            text,
            lists,
            Some(&vars),
            close,
            head_only,
        )
        .await
    }

    pub fn vars<'a>(&self, head: &'a RequestHead, uri: &'a [u8]) -> RequestVars<'a> {
        RequestVars {
            head,
            peer: self.peer,
            scheme: self.stream.scheme(),
            server_port: self.local_port,
            uri,
        }
    }

    /// Answer with one of ringway's own error pages; `response_headers` of the
    /// server and route apply (nginx `add_header ... always`).
    pub async fn respond_error(
        &mut self,
        head: &RequestHead,
        server: &Server,
        route: Option<&Route>,
        status: u16,
        close: bool,
    ) -> Outcome {
        // A request body that was not read cannot be skipped safely: close.
        let close = close || !head.keep_alive() || head.framing() != BodyFraming::Empty;
        let empty = HeaderEdits::default();
        let route_headers = route.map_or(&empty, |r| &r.response_headers);
        let vars = self.vars(head, head.path());
        let page = error_page(status);
        let head_only = head.method() == Method::Head;
        let lists = [
            server.response_headers_for(self.stream.is_tls()),
            route_headers,
        ];
        self.answer(
            status,
            b"text/html",
            page.as_bytes(),
            &lists,
            Some(&vars),
            close,
            head_only,
        )
        .await
    }

    /// Answer a request that never got as far as a parsed head (400, 408, 431):
    /// the default server's headers apply, the connection closes.
    async fn answer_unrouted(&mut self, snapshot: &Snapshot, status: u16, started: Stamp) {
        let listener = &snapshot.listeners[self.listener.min(snapshot.listeners.len() - 1)];
        let server = &snapshot.servers[listener.default_server];
        let page = error_page(status);
        let lists = [server.response_headers_for(self.stream.is_tls())];
        let outcome = self
            .answer(
                status,
                b"text/html",
                page.as_bytes(),
                &lists,
                None,
                true,
                false,
            )
            .await;
        let elapsed = self.worker.clock.now() - started;
        self.worker
            .metrics
            .request(crate::metrics::UNPARSED_SLOT, outcome.status, elapsed);
        self.worker.access_log.log(&Entry {
            peer: self.peer,
            request: None,
            status: outcome.status,
            body_bytes: outcome.body_bytes,
            referer: None,
            user_agent: None,
            duration: elapsed,
            upstream: None,
        });
    }

    /// Write one of ringway's own responses (`respond` routes, error pages)
    /// with the `response_headers` of `lists` applied, and send it.
    #[allow(clippy::too_many_arguments)] // the parts of one response
    async fn answer(
        &mut self,
        status: u16,
        content_type: &[u8],
        body: &[u8],
        lists: &[&HeaderEdits],
        vars: Option<&RequestVars<'_>>,
        close: bool,
        head_only: bool,
    ) -> Outcome {
        let mut out = std::mem::take(&mut self.bufs.out);
        with_edits(lists, vars, &mut self.bufs.arena, |edits| {
            write_simple_response(
                &mut out,
                status,
                Some(content_type),
                edits,
                body,
                close,
                head_only,
            )
        });
        let body_bytes = if head_only { 0 } else { body.len() as u64 };
        self.send_out(out, status, body_bytes, close).await
    }

    /// Write `out` to the client and keep its allocation for the next head.
    pub async fn send_out(
        &mut self,
        out: Vec<u8>,
        status: u16,
        body_bytes: u64,
        close: bool,
    ) -> Outcome {
        let write = write_vec(&mut self.stream, out);
        let until = self.worker.clock.deadline(Duration::from_secs(60));
        let (result, out) = match self.deadline.run(until, write).await {
            Ok(done) => done,
            Err(_) => (
                Err(std::io::ErrorKind::TimedOut.into()),
                Vec::with_capacity(1024),
            ),
        };
        self.bufs.out = out;
        if close && status >= 400 && result.is_ok() {
            self.linger().await;
        }
        Outcome {
            status,
            body_bytes,
            keep_alive: !close && result.is_ok(),
            upstream: None,
        }
    }

    /// nginx's lingering close: after an error answer on a connection that is
    /// closing, stop sending and discard what the client still sends for a
    /// short while. Closing a socket with unread input makes the kernel send a
    /// reset, which can destroy the answer before the client has read it.
    pub async fn linger(&mut self) {
        let size = self.worker.buffer_size;
        let until = self.worker.clock.deadline(LINGER_TIME);
        let (stream, buf) = (&mut self.stream, &mut self.bufs.buf);
        buffer::linger(stream, buf, size, &mut self.deadline, until).await;
    }
}

/// How long a closing connection is drained after an error answer (nginx:
/// lingering_time).
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A small HTML body like nginx's, naming the status.
pub fn error_page(status: u16) -> String {
    let line = format!("{status} {}", ringway_protocol::reason_phrase(status));
    format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n<hr><center>ringway</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// A read that gives way to the worker's stop signal when `stop` is given:
/// `None` then. The read is polled first, so bytes that arrived are never
/// dropped for a stop.
struct UnlessStopped<'s, 'w, F> {
    read: F,
    stop: Option<&'s mut Wait<'w>>,
}

impl<F: Future> Future for UnlessStopped<'_, '_, F> {
    type Output = Option<F::Output>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `read` is pinned with `self` and never moved out of it;
        // `stop` is a reference, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        if let Poll::Ready(result) = unsafe { Pin::new_unchecked(&mut this.read) }.poll(cx) {
            return Poll::Ready(Some(result));
        }
        match this.stop.as_deref_mut() {
            Some(stop) => Pin::new(stop).poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}
