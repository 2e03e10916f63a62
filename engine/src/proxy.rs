//! Forwarding one request to an upstream and its response back: pick a server,
//! reuse or open a connection, write the rewritten head, stream the request
//! body, read the response head, stream the response body, and return the
//! connection to the pool when both messages ended cleanly.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringway_protocol::h1::{
    BodyDecoder, BodyFraming, HeadLimits, Method, RequestHead, ResponseHead, Version,
};
use ringway_protocol::{
    ClientResponse, Forwarded, UpstreamRequest, parse_response, write_request_head,
    write_response_head,
};

use crate::buffer::{read_more, write_all, write_keep, write_vec};
use crate::downstream::{Connection, Outcome};
use crate::error::ProxyError;
use crate::route::Found;
use crate::snapshot::{ProxyTarget, Route, Server, Snapshot};
use crate::splice::{drain, fill, splice_once};
use crate::upgrade;
use crate::upstream::{self, UpstreamConn, is_stale_error};
use crate::vars::with_edits;

/// Upstream response heads may be larger than client heads (cookies); nginx's
/// proxy_buffer_size is 4-8 KiB, so this is generous.
const RESPONSE_HEAD_LIMITS: HeadLimits = HeadLimits {
    max_head_size: 64 * 1024,
    max_headers: 256,
};

/// Body bytes that arrived with the response head are sent in the same write
/// as the head when there are at most this many.
const COALESCE_LIMIT: usize = 16 * 1024;

#[allow(clippy::too_many_arguments)] // one request's context, passed once
pub async fn forward(
    conn: &mut Connection<'_>,
    snapshot: &Snapshot,
    server: &Server,
    found: &Found<'_>,
    path: &[u8],
    head: &RequestHead,
    mut body: BodyDecoder,
    target: &ProxyTarget,
) -> Outcome {
    let route = found.route;
    let upstream = &snapshot.upstreams[target.upstream];
    let upgrading = match upgrade::admit(conn, head, server, route).await {
        Ok(upgrading) => upgrading,
        Err(refused) => return refused,
    };
    build_target(
        &mut conn.target,
        head,
        path,
        found.matched_len,
        target.replace_uri.as_ref(),
    );

    // The upstream request head, written once and resent as is on a retry.
    let trusted_peer = server.trusted_proxies.contains(conn.peer.ip());
    let forwarded = Forwarded {
        client: conn.peer.ip(),
        proto: conn.stream.scheme(),
        trusted_peer,
    };
    // The head lives in the connection's own buffer, reused request after
    // request, and is kept until the exchange ends so a retry can resend it.
    let mut request_head = std::mem::take(&mut conn.upstream_head);
    request_head.clear();
    {
        let vars = conn.vars(head, path);
        let target_bytes = &conn.target;
        with_edits(
            &[&route.request_headers],
            Some(&vars),
            &mut conn.arena,
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

    let result = exchange(
        conn,
        route,
        upstream,
        target.upstream,
        head,
        &mut body,
        &mut request_head,
        upgrading,
    )
    .await;
    conn.upstream_head = request_head;
    let (mut up, response) = match result {
        Ok(pair) => pair,
        Err(error) => return fail(conn, head, server, route, &body, error).await,
    };
    let addr = up.addr;
    if response.status() == 101 {
        // RFC 9110 §7.8: the new protocol starts after the request body.
        let outcome = if body.is_done() {
            upgrade::switch(conn, server, route, head, path, up, &response).await
        } else {
            let error = ProxyError::UpstreamProtocol(ringway_protocol::ProtocolError::BadStatus);
            fail(conn, head, server, route, &body, error).await
        };
        conn.response_scratch = response.into_scratch();
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
        &response,
        body_unsent,
    )
    .await;
    let status = response.status();
    conn.response_scratch = response.into_scratch();
    match outcome {
        Ok((body_bytes, reusable, close)) => {
            // A connection asked to upgrade is never reused, whatever it answered.
            if reusable && !body_unsent && !upgrading {
                let mut pool = conn.worker.pool.borrow_mut();
                pool.put(up, upstream.keepalive);
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

/// The target sent upstream: nginx's `proxy_pass` URI rule when the route has
/// one (the matched part of the normalised path is replaced), else the client's
/// target in origin-form.
fn build_target(
    out: &mut Vec<u8>,
    head: &RequestHead,
    path: &[u8],
    matched_len: usize,
    replace_uri: Option<&Bytes>,
) {
    out.clear();
    match replace_uri {
        Some(uri) => {
            out.extend_from_slice(uri);
            out.extend_from_slice(&path[matched_len.min(path.len())..]);
        }
        None if head.target().first() == Some(&b'/') => {
            out.extend_from_slice(head.target());
            return;
        }
        None => out.extend_from_slice(head.path()),
    }
    if let Some(query) = head.query() {
        out.push(b'?');
        out.extend_from_slice(query);
    }
}

/// Send the request and read the response head, retrying where DESIGN.md §4
/// allows: the next server when a connect fails, and once on a fresh
/// connection when a reused keep-alive connection turns out to be closed.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    conn: &mut Connection<'_>,
    route: &Route,
    upstream: &crate::snapshot::Upstream,
    upstream_index: usize,
    head: &RequestHead,
    body: &mut BodyDecoder,
    request_head: &mut Vec<u8>,
    upgrading: bool,
) -> Result<(UpstreamConn, ResponseHead), ProxyError> {
    let first = conn.worker.pool.borrow_mut().pick(upstream_index, upstream);
    let servers = upstream.servers.len();
    let replayable = head.method().is_idempotent() && head.framing() == BodyFraming::Empty;
    let mut server_attempt = 0;
    // An upgrade gets a connection of its own: it leaves the pool for good.
    let mut allow_pooled = !upgrading;
    loop {
        let addr = upstream.servers[(first + server_attempt) % servers].addr;
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
            None => match upstream::connect(addr, route.connect_timeout, conn.worker.buffer_size)
                .await
            {
                Ok(up) => {
                    conn.worker.metrics.upstream_connect[upstream.metric]
                        .observe(up.opened.elapsed());
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
            },
        };
        let sent = Instant::now();
        match send_and_receive(conn, route, &mut up, head, body, request_head, upgrading).await {
            Ok(response) => {
                conn.worker.metrics.upstream_response[upstream.metric].observe(sent.elapsed());
                return Ok((up, response));
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

/// Has any of the request body been consumed (so the request can no longer be replayed)?
fn sent_body(body: &BodyDecoder, head: &RequestHead) -> bool {
    head.framing() != BodyFraming::Empty && (body.payload_len() > 0 || body.is_done())
}

async fn send_and_receive(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    head: &RequestHead,
    body: &mut BodyDecoder,
    request_head: &mut Vec<u8>,
    upgrading: bool,
) -> Result<ResponseHead, ProxyError> {
    // A failed write means no response byte arrived: retryable if replayable.
    let closed = |source: std::io::Error| ProxyError::UpstreamClosed {
        source,
        retryable: true,
    };
    let write = write_keep(&mut up.stream, request_head);
    match monoio::time::timeout(route.send_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(closed(e)),
        Err(_) => return Err(ProxyError::UpstreamTimeout),
    }
    send_body(conn, route, up, body).await?;
    read_response_head(up, route.read_timeout, head.method(), upgrading, conn).await
}

/// Stream the request body: validate framing as bytes arrive and forward
/// exactly the bytes that belong to the body, verbatim, never more than one
/// buffer at a time.
///
/// While it does, the upstream connection is watched: an upstream may answer
/// (413, 401, ...) before it has read the body, and then stop reading it. The
/// sender "SHOULD monitor the network connection for an error response while
/// it is transmitting the request" (RFC 9112 §9.5): sending stops and the
/// answer is relayed; the client connection closes after it, since the rest of
/// its body was never read.
async fn send_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    body: &mut BodyDecoder,
) -> Result<(), ProxyError> {
    // The whole body already arrived with the head (the common case for small
    // bodies): one write, no watching needed.
    if !body.is_done() && !conn.buf.is_empty() {
        let n = body
            .advance(&conn.buf, |_| {})
            .map_err(ProxyError::ClientProtocol)?;
        if body.is_done() {
            let chunk = conn.buf.split_to(n).freeze();
            return match monoio::time::timeout(route.send_timeout, write_all(&mut up.stream, chunk))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: true,
                }),
                Err(_) => Err(ProxyError::UpstreamTimeout),
            };
        }
        return send_body_watched(conn, route, up, body, n).await;
    }
    if body.is_done() {
        return Ok(());
    }
    send_body_watched(conn, route, up, body, 0).await
}

/// The rest of `send_body`, racing every wait against the upstream becoming
/// readable. `ready` bytes at the front of the client buffer are already
/// validated body bytes.
async fn send_body_watched(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    body: &mut BodyDecoder,
    mut ready: usize,
) -> Result<(), ProxyError> {
    let watch = ReadWatch::new(&up.stream).map_err(|source| ProxyError::UpstreamClosed {
        source,
        retryable: false,
    })?;
    loop {
        if ready == 0 && !conn.buf.is_empty() && !body.is_done() {
            ready = body
                .advance(&conn.buf, |_| {})
                .map_err(ProxyError::ClientProtocol)?;
        }
        if ready > 0 {
            let chunk = conn.buf.split_to(ready).freeze();
            ready = 0;
            let write = monoio::time::timeout(route.send_timeout, write_all(&mut up.stream, chunk));
            let written = monoio::select! {
                written = write => written,
                () = watch.readable() => return Ok(()),
            };
            match written {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    return Err(ProxyError::UpstreamClosed {
                        source,
                        retryable: true,
                    });
                }
                Err(_) => return Err(ProxyError::UpstreamTimeout),
            }
        }
        if body.is_done() {
            return Ok(());
        }
        if conn.buf.is_empty()
            && let Some(left) = body.remaining_length()
            && splices(conn, left)
        {
            return splice_request_body(conn, route, up, body, &watch).await;
        }
        let read = read_more(&mut conn.stream, &mut conn.buf, conn.worker.buffer_size);
        let read = monoio::time::timeout(route.read_timeout, read);
        let result = monoio::select! {
            result = read => result,
            () = watch.readable() => return Ok(()),
        };
        match result {
            Ok(Ok(0)) => {
                return Err(ProxyError::ClientIo(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ProxyError::ClientIo(e)),
            Err(_) => return Err(ProxyError::ClientTimeout),
        }
    }
}

/// The rest of a large length-delimited request body, client to upstream by
/// splice, a pipeful at a time. Like `send_body_watched`, every wait races
/// the upstream answering early; then sending stops (a pipe that may still
/// hold bytes is dropped, not pooled).
async fn splice_request_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    body: &mut BodyDecoder,
    watch: &ReadWatch,
) -> Result<(), ProxyError> {
    let Some(client) = conn.stream.tcp() else {
        return Err(ProxyError::ClientIo(std::io::ErrorKind::Unsupported.into()));
    };
    let pipes = &conn.worker.tunnels.pipes;
    let mut pipe = pipes.take().map_err(ProxyError::ClientIo)?;
    while let Some(left) = body.remaining_length().filter(|&left| left > 0) {
        // Wait for client bytes first: a splice on a silent socket would hold
        // an io_uring worker thread (see `splice`).
        let wait = monoio::time::timeout(route.read_timeout, client.readable(false));
        let filled = monoio::select! {
            waited = wait => match waited {
                Ok(_) => fill(client, &mut pipe, left).await,
                Err(_) => return Err(ProxyError::ClientTimeout),
            },
            () = watch.readable() => {
                pipes.put(pipe);
                return Ok(());
            }
        };
        let filled = match filled {
            Ok(0) => {
                return Err(ProxyError::ClientIo(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(ProxyError::ClientIo(e)),
        };
        body.skip(u64::from(filled))
            .map_err(ProxyError::ClientProtocol)?;
        conn.worker.metrics.spliced_bytes.add(u64::from(filled));
        let write =
            monoio::time::timeout(route.send_timeout, drain(&mut up.stream, &mut pipe, filled));
        let written = monoio::select! {
            written = write => written,
            () = watch.readable() => return Ok(()),
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: true,
                });
            }
            Err(_) => return Err(ProxyError::UpstreamTimeout),
        }
    }
    pipes.put(pipe);
    Ok(())
}

/// Readiness of an upstream socket while its stream is busy writing: a second
/// handle on the same socket (a dup'd descriptor) that is only ever polled,
/// never read, so cancelling a wait on it loses no data.
struct ReadWatch {
    stream: monoio::net::TcpStream,
}

impl ReadWatch {
    fn new(stream: &monoio::net::TcpStream) -> std::io::Result<ReadWatch> {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = stream.as_raw_fd();
        // SAFETY: `fd` is the open socket owned by `stream`, which outlives
        // this call; it is only borrowed to duplicate it.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let owned = borrowed.as_fd().try_clone_to_owned()?;
        let std_stream = std::net::TcpStream::from(owned);
        Ok(ReadWatch {
            stream: monoio::net::TcpStream::from_std(std_stream)?,
        })
    }

    /// Resolves when the upstream has sent something (or closed). Errors count
    /// as readable: reading the response head will report them.
    async fn readable(&self) {
        let _ = self.stream.readable(false).await;
    }
}

async fn read_response_head(
    up: &mut UpstreamConn,
    read_timeout: Duration,
    method: Method,
    upgrading: bool,
    conn: &mut Connection<'_>,
) -> Result<ResponseHead, ProxyError> {
    loop {
        if !up.buf.is_empty() {
            match parse_response(
                &mut up.buf,
                &RESPONSE_HEAD_LIMITS,
                method,
                std::mem::take(&mut conn.response_scratch),
            ) {
                Ok(Some(response)) if response.status() == 101 && upgrading => {
                    return Ok(response);
                }
                Ok(Some(response)) if response.status() == 101 => {
                    // A 101 to a request that asked for no upgrade (RFC 9110 §15.2.2).
                    conn.response_scratch = response.into_scratch();
                    return Err(ProxyError::UpstreamProtocol(
                        ringway_protocol::ProtocolError::BadStatus,
                    ));
                }
                Ok(Some(response)) if response.status() < 200 => {
                    // Interim responses (100, 103) are not relayed; the final one follows.
                    conn.response_scratch = response.into_scratch();
                    continue;
                }
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(e) => return Err(ProxyError::UpstreamProtocol(e)),
            }
        }
        let read = read_more(&mut up.stream, &mut up.buf, conn.worker.buffer_size);
        match monoio::time::timeout(read_timeout, read).await {
            Ok(Ok(0)) => {
                return Err(ProxyError::UpstreamClosed {
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                    retryable: up.buf.is_empty(),
                });
            }
            Ok(Ok(_)) => {}
            Ok(Err(source)) if is_stale_error(&source) || up.buf.is_empty() => {
                return Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: up.buf.is_empty(),
                });
            }
            Ok(Err(source)) => {
                return Err(ProxyError::UpstreamClosed {
                    source,
                    retryable: false,
                });
            }
            Err(_) => return Err(ProxyError::UpstreamTimeout),
        }
    }
}

/// Write the response head and stream the body to the client. Returns the body
/// bytes sent, whether the upstream connection may be pooled, and whether the
/// client connection must close.
#[allow(clippy::too_many_arguments)]
async fn relay_response(
    conn: &mut Connection<'_>,
    route: &Route,
    server: &Server,
    head: &RequestHead,
    path: &[u8],
    up: &mut UpstreamConn,
    response: &ResponseHead,
    force_close: bool,
) -> Result<(u64, bool, bool), (ProxyError, u64)> {
    let framing = response.framing();
    // An HTTP/1.0 client cannot read chunked framing: de-chunk and close.
    let dechunk = head.version() == Version::Http10 && framing == BodyFraming::Chunked;
    let close = force_close
        || !head.keep_alive()
        || framing == BodyFraming::UntilClose
        || dechunk
        || conn.worker.shutdown.is_stopping();
    let mut out = std::mem::take(&mut conn.out);
    {
        let vars = conn.vars(head, path);
        with_edits(
            &[
                server.response_headers_for(conn.stream.is_tls()),
                &route.response_headers,
            ],
            Some(&vars),
            &mut conn.arena,
            |edits| {
                let client = ClientResponse {
                    client_version: head.version(),
                    close,
                    dechunk,
                    edits,
                };
                write_response_head(&mut out, response, &client);
            },
        );
    }
    let mut decoder = BodyDecoder::new(framing, None);
    // Body bytes written to the client so far, and how much of `out` is the
    // head (not counted as body) until the head has been flushed.
    let mut sent: u64 = 0;
    let mut head_pending = out.len();
    let mid = |e: String, sent: u64| (ProxyError::UpstreamMidResponse(e), sent);
    loop {
        // Small runs of body bytes are copied behind the head (or behind each
        // other) so that they leave in one write; large runs go out as slices
        // of the upstream buffer; de-chunked payload is always copied.
        if !up.buf.is_empty() && !decoder.is_done() {
            let n = if dechunk {
                decoder.advance(&up.buf, |payload| out.extend_from_slice(payload))
            } else {
                decoder.advance(&up.buf, |_| {})
            }
            .map_err(|e| mid(e.reason().to_string(), sent))?;
            let run = up.buf.split_to(n);
            if !dechunk && n <= COALESCE_LIMIT {
                out.extend_from_slice(&run);
            } else if !dechunk {
                flush(conn, route, &mut out, &mut head_pending, &mut sent)
                    .await
                    .map_err(|e| mid(e, sent))?;
                write_chunk(conn, route, run.freeze())
                    .await
                    .map_err(|e| mid(e, sent))?;
                sent += n as u64;
            }
        }
        flush(conn, route, &mut out, &mut head_pending, &mut sent)
            .await
            .map_err(|e| mid(e, sent))?;
        if decoder.is_done() {
            break;
        }
        if let BodyFraming::Length(total) = framing {
            // What is left of a large body goes socket to socket through a
            // pipe: all of it was declared, none of it needs looking at.
            let left = total - decoder.payload_len();
            if up.buf.is_empty() && splices(conn, left) {
                splice_body(conn, route, up, left)
                    .await
                    .map_err(|e| mid(e, sent))?;
                sent += left;
                conn.worker.metrics.spliced_bytes.add(left);
                break;
            }
        }
        let read = read_more(&mut up.stream, &mut up.buf, conn.worker.buffer_size);
        match monoio::time::timeout(route.read_timeout, read).await {
            Ok(Ok(0)) => {
                decoder
                    .finish_on_eof()
                    .map_err(|_| mid("upstream closed before the end of the body".into(), sent))?;
                break;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(mid(e.to_string(), sent)),
            Err(_) => return Err(mid("upstream read timed out mid-body".into(), sent)),
        }
    }
    conn.out = out;
    let reusable = response.keep_alive() && framing != BodyFraming::UntilClose && up.buf.is_empty();
    Ok((sent, reusable, close))
}

/// Does a body remainder of `left` bytes (request or response) go by splice?
/// Only on io_uring (where splice is an asynchronous operation; the epoll
/// driver copies), only to a plain client (TLS needs the bytes), and only
/// from `--splice-threshold` up: below it, a read and a write cost less
/// than the pipe's four operations.
fn splices(conn: &mut Connection<'_>, left: u64) -> bool {
    let threshold = conn.worker.splice_threshold;
    threshold > 0
        && left >= threshold
        && conn.worker.tunnels.splice.get()
        && conn.stream.tcp().is_some()
}

/// Move `left` body bytes from the upstream to the client with splice,
/// waiting for the upstream to be readable before each pipeful (a splice on
/// an empty socket would hold an io_uring worker thread while it waits).
/// Each pipeful has `read_timeout` to arrive and `send_timeout` to leave.
async fn splice_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    mut left: u64,
) -> Result<(), String> {
    let Some(client) = conn.stream.tcp() else {
        return Err("splice needs a plain client socket".into());
    };
    let pipes = &conn.worker.tunnels.pipes;
    let mut pipe = pipes.take().map_err(|e| format!("pipe: {e}"))?;
    let patience = route.read_timeout + route.send_timeout;
    while left > 0 {
        let step = async {
            let _ = up.stream.readable(false).await;
            splice_once(&mut up.stream, client, &mut pipe, left).await
        };
        match monoio::time::timeout(patience, step).await {
            Ok(Ok(0)) => return Err("upstream closed before the end of the body".into()),
            Ok(Ok(n)) => left -= n as u64,
            // A readiness that turned out empty: the pipe is still empty.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // The pipe may hold bytes: it is dropped, not pooled.
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("body splice timed out".into()),
        }
    }
    pipes.put(pipe);
    Ok(())
}

/// Write what `out` holds to the client (if anything), counting body bytes.
async fn flush(
    conn: &mut Connection<'_>,
    route: &Route,
    out: &mut Vec<u8>,
    head_pending: &mut usize,
    sent: &mut u64,
) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    let body_len = out.len() - *head_pending;
    let write = write_vec(&mut conn.stream, std::mem::take(out));
    match monoio::time::timeout(route.send_timeout, write).await {
        Ok((result, buf)) => {
            *out = buf;
            result.map_err(|e| format!("client: {e}"))?;
            *head_pending = 0;
            *sent += body_len as u64;
            Ok(())
        }
        Err(_) => Err("client write timed out".into()),
    }
}

async fn write_chunk(conn: &mut Connection<'_>, route: &Route, chunk: Bytes) -> Result<(), String> {
    match monoio::time::timeout(route.send_timeout, write_all(&mut conn.stream, chunk)).await {
        Ok(result) => result.map_err(|e| format!("client: {e}")),
        Err(_) => Err("client write timed out".into()),
    }
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
