//! Forwarding one request to an upstream and its response back: pick a server,
//! reuse or open a connection, write the rewritten head, stream the request
//! body, read the response head, stream the response body, and return the
//! connection to the pool when both messages ended cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::AsyncWriteRentExt;
use ringway_protocol::h1::{
    BodyDecoder, BodyFraming, HeadLimits, HeaderField, Method, RequestHead, ResponseHead, Version,
};
use ringway_protocol::{
    Forwarded, UpstreamRequest, connection_lines, parse_response_into, write_request_head,
};

use crate::behind::{self, ReadBehind};
use crate::buffer::{read_more, write_all};
use crate::deadline::Elapsed;
use crate::downstream::{Connection, Outcome};
use crate::error::ProxyError;
use crate::route::Found;
use crate::snapshot::{ProxyTarget, Route, Server, Snapshot};
use crate::upgrade;
use crate::upstream::{self, RESPONSE_HEAD_ROOM, UpstreamConn};
use crate::vars::with_edits;

mod request_body;
mod response_body;

use request_body::send_body;
use response_body::relay_response;

/// Upstream response heads may be larger than client heads (cookies); nginx's
/// proxy_buffer_size is 4-8 KiB, so this is generous.
const RESPONSE_HEAD_LIMITS: HeadLimits = HeadLimits {
    max_head_size: 64 * 1024,
    max_headers: 256,
};

/// Body bytes that arrived with a head are copied behind it and sent in the
/// same write when there are at most this many: a request body going
/// upstream (`copy_whole_body`), a response body going to a TLS client.
const COALESCE_LIMIT: usize = 16 * 1024;

/// The upstream head buffer a connection keeps between requests at most.
const UPSTREAM_HEAD_KEEP: usize = 4 * 1024;

/// Proxy one request to `target` and relay the answer.
///
/// Not an `async fn`, here nor in `exchange` and `relay_response`: an
/// `async fn` keeps its arguments twice in its future, as captured and as
/// locals moved from them at the first poll (rust-lang/rust#62958); an
/// `async move` block uses the captured ones in place. With these three
/// (and `forwarded` scoped below) the connection's task shrank from 4,488 to
/// 4,208 bytes (`-Zprint-type-sizes`), a request's instructions by about 50
/// and its first-level data misses by about 6 (callgrind, docs/benchmarks.md).
#[allow(clippy::too_many_arguments)] // one request's context, passed once
#[allow(clippy::manual_async_fn)] // see above
pub fn forward(
    conn: &mut Connection<'_>,
    snapshot: &Snapshot,
    server: &Server,
    found: &Found<'_>,
    path: &[u8],
    head: &RequestHead,
    mut body: BodyDecoder,
    target: &ProxyTarget,
) -> impl Future<Output = Outcome> {
    async move {
        let route = found.route;
        let upstream = &snapshot.upstreams[target.upstream];
        // Most requests ask for no upgrade: no admission future to make and poll.
        let upgrading = head.wants_upgrade()
            && match upgrade::admit(conn, head, server, route).await {
                Ok(upgrading) => upgrading,
                Err(refused) => return refused,
            };
        let rewritten = build_target(
            &mut conn.bufs.target,
            head,
            path,
            found.matched_len,
            target.replace_uri.as_ref(),
        );

        // The upstream request head, written once and resent as is on a retry.
        // The head lives in the connection's own buffer, reused request after
        // request, and is kept until the exchange ends so a retry can resend it.
        let mut request_head = std::mem::take(&mut conn.bufs.upstream_head);
        request_head.clear();
        // What writes it lives in this block only: a local still in scope at
        // an await below would be kept in the future, and written to a line
        // of it on every request.
        {
            let trusted_peer = server.trusted_proxies.contains(conn.peer.ip());
            if conn.bufs.forwarding_lines.is_empty() {
                connection_lines(
                    &mut conn.bufs.forwarding_lines,
                    conn.peer.ip(),
                    conn.stream.scheme(),
                );
            }
            let forwarded = Forwarded {
                client: conn.peer.ip(),
                proto: conn.stream.scheme(),
                trusted_peer,
                lines: &conn.bufs.forwarding_lines,
            };
            let vars = conn.vars(head, path);
            let target_bytes = if rewritten {
                &conn.bufs.target[..]
            } else {
                head.target()
            };
            with_edits(
                &[&route.request_headers],
                Some(&vars),
                &mut conn.bufs.arena,
                |edits| {
                    let request = UpstreamRequest {
                        target: target_bytes,
                        forwarded: &forwarded,
                        default_host: upstream.name.as_bytes(),
                        pass_upgrade: upgrading,
                        edits,
                    };
                    write_request_head(&mut request_head, head, &request);
                },
            );
        }

        if head.expect_continue() && head.version() == Version::Http11 && !body.is_done() {
            // The proxy takes the body itself, so it answers the expectation
            // (RFC 9110 §10.1.1); Expect is not forwarded.
            let interim = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            if write_all(&mut conn.stream, interim).await.is_err() {
                return closed(CLIENT_CLOSED);
            }
        }

        let coalesced = copy_whole_body(&mut request_head, &conn.bufs.buf, &body);
        let coalesced = coalesced.as_ref();
        // The response head is parsed into this slot, where it stays until it
        // has been relayed: returned up through `exchange` it was copied at
        // every level (callgrind).
        let mut response = None;
        let result = exchange(
            conn,
            route,
            upstream,
            target.upstream,
            head,
            &mut body,
            &mut request_head,
            coalesced,
            upgrading,
            &mut response,
        )
        .await;
        if request_head.capacity() > UPSTREAM_HEAD_KEEP {
            // Grown by a body copied behind the head (or a huge head): an idle
            // keep-alive connection keeps a head's worth, not a body's.
            request_head = Vec::with_capacity(1024);
        }
        conn.bufs.upstream_head = request_head;
        conn.worker.metrics.request_bytes.add(body.payload_len());
        let (mut up, status) = match (result, &response) {
            (Ok(up), Some(response)) => (up, response.status()),
            (Err(error), _) => return fail(conn, head, server, route, &body, error).await,
            (Ok(_), None) => unreachable!("an exchange that succeeds fills the slot"),
        };
        let addr = up.addr;
        if status == 101 {
            let mut response = response.take().expect("the exchange filled the slot");
            // Bytes of the new protocol the server sent behind its head.
            up.buf = response.split_rest();
            // RFC 9110 §7.8: the new protocol starts after the request body.
            let outcome = if body.is_done() {
                upgrade::switch(conn, server, route, head, path, up, &response).await
            } else {
                let error =
                    ProxyError::UpstreamProtocol(ringway_protocol::ProtocolError::BadStatus);
                fail(conn, head, server, route, &body, error).await
            };
            conn.bufs.response_scratch = response.into_scratch();
            return outcome;
        }
        // An early answer (see `send_body`) leaves the rest of the request body
        // unread on both connections: neither can carry another request.
        let body_unsent = !body.is_done();
        let outcome = relay_response(
            conn,
            route,
            server,
            head,
            path,
            &mut up,
            &mut response,
            body_unsent,
        )
        .await;
        match outcome {
            Ok((body_bytes, reusable, close)) => {
                // A connection asked to upgrade is never reused, whatever it answered.
                if reusable && !body_unsent && !upgrading {
                    let mut pool = conn.worker.pool.borrow_mut();
                    pool.put(up, upstream.keepalive, conn.worker.clock.recent());
                    conn.worker.metrics.pool_idle.set(pool.idle_count() as u64);
                }
                if body_unsent {
                    // The client is still sending the body: drain a little so the
                    // close does not reset the answer away (see `linger`).
                    conn.linger().await;
                }
                Outcome {
                    status,
                    body_bytes,
                    keep_alive: !close,
                    upstream: Some(addr),
                }
            }
            Err((error, body_bytes)) => {
                tracing::debug!(peer = %conn.peer, upstream = %addr, "{error}");
                Outcome {
                    status,
                    body_bytes,
                    keep_alive: false,
                    upstream: Some(addr),
                }
            }
        }
    }
}

/// A body of at most `COALESCE_LIMIT` bytes that arrived whole with the head
/// is copied behind the upstream request head, so that both leave in one
/// write and one segment instead of two. Returns how many bytes of `buf` were
/// copied and the decoder as it is past them. The bytes stay in `buf` and
/// `body` does not move until that write has succeeded (in `exchange`),
/// so a request whose write failed still counts as unsent and may be retried.
fn copy_whole_body(
    request_head: &mut Vec<u8>,
    buf: &[u8],
    body: &BodyDecoder,
) -> Option<(usize, BodyDecoder)> {
    if body.is_done() || buf.is_empty() {
        return None;
    }
    let mut past = body.clone();
    match past.advance(buf, |_| {}) {
        Ok(n) if past.is_done() && n <= COALESCE_LIMIT => {
            request_head.extend_from_slice(&buf[..n]);
            Some((n, past))
        }
        _ => None,
    }
}

/// The target sent upstream: nginx's `proxy_pass` URI rule when the route has
/// one (the matched part of the normalised path is replaced), else the client's
/// target in origin-form. Written into `out` and true, or false when it is
/// the client's target as sent (origin-form, no rule): that is sent from the
/// head itself, uncopied.
fn build_target(
    out: &mut Vec<u8>,
    head: &RequestHead,
    path: &[u8],
    matched_len: usize,
    replace_uri: Option<&Bytes>,
) -> bool {
    out.clear();
    match replace_uri {
        Some(uri) => {
            out.extend_from_slice(uri);
            out.extend_from_slice(&path[matched_len.min(path.len())..]);
        }
        None if head.target().first() == Some(&b'/') => return false,
        None => out.extend_from_slice(head.path()),
    }
    if let Some(query) = head.query() {
        out.push(b'?');
        out.extend_from_slice(query);
    }
    true
}

/// Send the request and read the response head, retrying where DESIGN.md §4
/// allows: the next server when a connect fails, and once on a fresh
/// connection when a reused keep-alive connection turns out to be closed.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // its arguments kept once, see `forward`
fn exchange(
    conn: &mut Connection<'_>,
    route: &Route,
    upstream: &crate::snapshot::Upstream,
    upstream_index: usize,
    head: &RequestHead,
    body: &mut BodyDecoder,
    request_head: &mut Vec<u8>,
    coalesced: Option<&(usize, BodyDecoder)>,
    upgrading: bool,
    response: &mut Option<ResponseHead>,
) -> impl Future<Output = Result<Box<UpstreamConn>, ProxyError>> {
    async move {
        let first = conn.worker.pool.borrow_mut().pick(upstream_index, upstream);
        let servers = upstream.servers.len();
        let replayable = head.method().is_idempotent() && head.framing() == BodyFraming::Empty;
        let mut server_attempt = 0;
        // An upgrade gets a connection of its own: it leaves the pool for good.
        let mut allow_pooled = !upgrading;
        loop {
            // `first` and `server_attempt` are both below `servers`.
            let index = first + server_attempt;
            let index = if index < servers {
                index
            } else {
                index - servers
            };
            let addr = upstream.servers[index].addr;
            let pooled = if allow_pooled {
                let mut pool = conn.worker.pool.borrow_mut();
                let pooled = pool.take(addr, !replayable);
                conn.worker.metrics.pool_idle.set(pool.idle_count() as u64);
                pooled
            } else {
                None
            };
            let mut up = match pooled {
                Some(up) => up,
                None => {
                    // The connect's start is an exact reading, its end the pass's:
                    // a connect done within its pass counts as 0 (stamps saturate).
                    let opened = conn.worker.clock.exact();
                    let at = conn.worker.clock.deadline(route.connect_timeout);
                    let connecting =
                        upstream::connect(addr, &mut conn.deadline, at, conn.worker.buffer_size);
                    match connecting.await {
                        Ok(up) => {
                            let connected = conn.worker.clock.now();
                            conn.worker.metrics.upstream_connect[upstream.metric]
                                .observe(connected - opened);
                            up
                        }
                        Err(error) => {
                            tracing::debug!(upstream = %addr, "{error}");
                            server_attempt += 1;
                            if server_attempt < servers {
                                continue;
                            }
                            return Err(error);
                        }
                    }
                }
            };
            // The clock was read when the head arrived, or just now after a connect.
            let sent = conn.worker.clock.recent();
            // Write the request head (with a body copied behind it when
            // `coalesced`, see `copy_whole_body`), the rest of the body, and
            // read the response head into `response`: in this loop itself, not
            // in a future of its own, as every level of futures is work and a
            // cache line or two more on each wake-up.
            let exchanged: Result<(), ProxyError> = 'exchanged: {
                // A failed write means the request never arrived whole: retryable if
                // replayable (bytes a read behind it got go with the connection).
                let closed = |source: std::io::Error| ProxyError::UpstreamClosed {
                    source,
                    retryable: true,
                };
                // The buffer of a reused connection is empty but may have only
                // the tail of its allocation left: take all of it back (nothing
                // else holds it by now, so this neither allocates nor copies).
                if up.buf.is_empty() {
                    up.buf.reserve(conn.worker.buffer_size + RESPONSE_HEAD_ROOM);
                }
                // The first read of the response when it was made behind the
                // head's write.
                let mut first_read = None;
                // The head is lent to the write and comes back with its result,
                // kept for a retry (a write cut short by its deadline takes it
                // along, and is not retried).
                if (body.is_done() || coalesced.is_some()) && conn.worker.completion_io.get() {
                    // Nothing follows the head: its write completes behind the
                    // first read of the response (`behind`).
                    let (mut reading, mut writing) = behind::halves(&mut up.stream);
                    let mut write = pin!(writing.write(std::mem::take(request_head)));
                    let mut read = pin!(read_more(
                        &mut reading,
                        &mut up.buf,
                        conn.worker.buffer_size
                    ));
                    conn.deadline
                        .wake_by(conn.worker.clock.deadline(behind::WRITE_CHECK));
                    let read_at = conn.worker.clock.deadline(route.read_timeout);
                    let mut wrote = None;
                    let behind = ReadBehind::new(read.as_mut(), write.as_mut(), &mut wrote);
                    let got = conn.deadline.run(read_at, behind).await;
                    let send_at = conn.worker.clock.deadline(route.send_timeout);
                    let (result, owned) = match wrote {
                        Some(wrote) => wrote,
                        None => match conn.deadline.run(send_at, write.as_mut()).await {
                            Ok(wrote) => wrote,
                            Err(Elapsed) => break 'exchanged Err(ProxyError::UpstreamTimeout),
                        },
                    };
                    *request_head = owned;
                    match result {
                        Ok(done) if done == request_head.len() => {}
                        // Short: the rest, waited for, before the response.
                        Ok(done) => {
                            let deadline = &mut conn.deadline;
                            match behind::write_rest(
                                &mut writing,
                                deadline,
                                send_at,
                                request_head,
                                done,
                            )
                            .await
                            {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => break 'exchanged Err(closed(e)),
                                Err(Elapsed) => break 'exchanged Err(ProxyError::UpstreamTimeout),
                            }
                        }
                        Err(e) => break 'exchanged Err(closed(e)),
                    }
                    first_read = Some(match got {
                        Ok(Some(read)) => Ok(read),
                        // The write needed looking at first; the read goes on.
                        Ok(None) => conn.deadline.run(read_at, read.as_mut()).await,
                        Err(Elapsed) => Err(Elapsed),
                    });
                } else {
                    let write = up.stream.write_all(std::mem::take(request_head));
                    let at = conn.worker.clock.deadline(route.send_timeout);
                    match conn.deadline.run(at, write).await {
                        Ok((result, owned)) => {
                            *request_head = owned;
                            if let Err(e) = result {
                                break 'exchanged Err(closed(e));
                            }
                        }
                        Err(_) => break 'exchanged Err(ProxyError::UpstreamTimeout),
                    }
                }
                if let Some((len, past)) = coalesced
                    && !body.is_done()
                {
                    // The whole body went out behind the head: consume it.
                    *body = past.clone();
                    conn.bufs.buf.advance(*len);
                }
                if !body.is_done()
                    && let Err(error) = send_body(conn, route, &mut up, body).await
                {
                    break 'exchanged Err(error);
                }
                // The response head, read into `response`.
                loop {
                    let scratch = &mut conn.bufs.response_scratch;
                    if let Some(parsed) =
                        final_head(&mut up.buf, scratch, head.method(), upgrading, response)
                    {
                        break 'exchanged parsed;
                    }
                    let got = match first_read.take() {
                        Some(got) => got,
                        None => {
                            let read =
                                read_more(&mut up.stream, &mut up.buf, conn.worker.buffer_size);
                            let at = conn.worker.clock.deadline(route.read_timeout);
                            conn.deadline.run(at, read).await
                        }
                    };
                    if let Some(error) = head_read_failed(got, &up.buf) {
                        break 'exchanged Err(error);
                    }
                }
            };
            match exchanged {
                Ok(()) => {
                    let arrived = conn.worker.clock.now();
                    conn.worker.metrics.upstream_response[upstream.metric].observe(arrived - sent);
                    return Ok(up);
                }
                Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: true,
                }) if up.reused && (replayable || !sent_body(body, head)) => {
                    // A keep-alive connection the server had already closed:
                    // nothing was processed, try once more on a new connection.
                    tracing::debug!(upstream = %addr, "stale keep-alive connection: {source}");
                    allow_pooled = false;
                }
                Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: true,
                }) if replayable && server_attempt + 1 < servers => {
                    tracing::debug!(upstream = %addr, "{source}; trying the next server");
                    server_attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Parse the response head at the start of `buf` into `slot`, skipping
/// interim responses (100, 103: not relayed, the final one follows). `None`
/// while the final head is incomplete. The final head takes `buf` along
/// with what came behind it (`parse_response_into`).
fn final_head(
    buf: &mut BytesMut,
    scratch: &mut Vec<HeaderField>,
    method: Method,
    upgrading: bool,
    slot: &mut Option<ResponseHead>,
) -> Option<Result<(), ProxyError>> {
    while !buf.is_empty() {
        let parsed = parse_response_into(buf, &RESPONSE_HEAD_LIMITS, method, scratch, slot);
        match (parsed, slot.as_ref().map(ResponseHead::status)) {
            (Ok(true), Some(101)) if upgrading => return Some(Ok(())),
            (Ok(true), Some(101)) => {
                // A 101 to a request that asked for no upgrade (RFC 9110 §15.2.2).
                *scratch = slot.take().expect("parsed").into_scratch();
                let error = ringway_protocol::ProtocolError::BadStatus;
                return Some(Err(ProxyError::UpstreamProtocol(error)));
            }
            (Ok(true), Some(status)) if status < 200 => {
                // What came behind it (the final head, perhaps) goes back.
                *scratch = slot.take().expect("parsed").into_rest(buf);
            }
            (Ok(true), _) => return Some(Ok(())),
            (Ok(false), _) => return None,
            (Err(e), _) => return Some(Err(ProxyError::UpstreamProtocol(e))),
        }
    }
    None
}

/// What a read for the response head that brought nothing means: a closed
/// connection, retryable when no byte of an answer had arrived (`buffered`
/// empty: a stale keep-alive connection fails so), or a timeout. `None` for
/// a read that brought bytes.
fn head_read_failed(
    read: Result<std::io::Result<usize>, Elapsed>,
    buffered: &[u8],
) -> Option<ProxyError> {
    let retryable = buffered.is_empty();
    match read {
        Ok(Ok(0)) => Some(ProxyError::UpstreamClosed {
            source: std::io::ErrorKind::UnexpectedEof.into(),
            retryable,
        }),
        Ok(Ok(_)) => None,
        Ok(Err(source)) => Some(ProxyError::UpstreamClosed { source, retryable }),
        Err(Elapsed) => Some(ProxyError::UpstreamTimeout),
    }
}

/// Has any of the request body been consumed (so the request can no longer be replayed)?
fn sent_body(body: &BodyDecoder, head: &RequestHead) -> bool {
    head.framing() != BodyFraming::Empty && (body.payload_len() > 0 || body.is_done())
}

/// Answer a failure that happened before any of the response reached the client.
async fn fail(
    conn: &mut Connection<'_>,
    head: &RequestHead,
    server: &Server,
    route: &Route,
    body: &BodyDecoder,
    error: ProxyError,
) -> Outcome {
    tracing::debug!(peer = %conn.peer, side = ?error.side(), "{error}");
    let Some(status) = error.status() else {
        return closed(CLIENT_CLOSED);
    };
    // After a failure mid-body the rest of the body is still on the wire.
    let close = !body.is_done()
        || matches!(
            error,
            ProxyError::ClientProtocol(_) | ProxyError::ClientTimeout
        );
    conn.respond_error(head, server, Some(route), status, close)
        .await
}

/// The status logged when the client went away before it could be answered
/// (nginx's 499, which operators grep for).
const CLIENT_CLOSED: u16 = 499;

fn closed(status: u16) -> Outcome {
    Outcome {
        status,
        body_bytes: 0,
        keep_alive: false,
        upstream: None::<SocketAddr>,
    }
}
