//! The response on its way to the client: the rewritten head, then the body
//! coalesced, copied a buffer at a time, de-chunked for HTTP/1.0 clients, or
//! spliced socket to socket when large.

use bytes::Bytes;
use ringway_protocol::h1::{BodyDecoder, BodyFraming, RequestHead, ResponseHead, Version};
use ringway_protocol::{ClientResponse, write_response_head};

use crate::buffer::{read_more, write_head_body, write_vec};
use crate::downstream::Connection;
use crate::error::ProxyError;
use crate::snapshot::{Route, Server};
use crate::splice::splice_once;
use crate::upstream::UpstreamConn;
use crate::vars::with_edits;

use super::COALESCE_LIMIT;

/// Write the response head and stream the body to the client. Returns the body
/// bytes sent, whether the upstream connection may be pooled, and whether the
/// client connection must close.
#[allow(clippy::too_many_arguments)]
pub(super) async fn relay_response(
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
    let mut out = std::mem::take(&mut conn.bufs.out);
    {
        let vars = conn.vars(head, path);
        with_edits(
            &[
                server.response_headers_for(conn.stream.is_tls()),
                &route.response_headers,
            ],
            Some(&vars),
            &mut conn.bufs.arena,
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
        // Runs of body bytes go out as slices of the upstream buffer, in one
        // vectored write with whatever `out` holds (the head), never copied.
        // Over TLS, which copies into its records anyway, small runs are
        // copied behind the head so that both make one record. De-chunked
        // payload is always copied.
        if !up.buf.is_empty() && !decoder.is_done() {
            let n = if dechunk {
                decoder.advance(&up.buf, |payload| out.extend_from_slice(payload))
            } else {
                decoder.advance(&up.buf, |_| {})
            }
            .map_err(|e| mid(e.reason().to_string(), sent))?;
            let run = up.buf.split_to(n);
            if dechunk {
            } else if n <= COALESCE_LIMIT && conn.stream.is_tls() {
                out.extend_from_slice(&run);
            } else {
                send(
                    conn,
                    route,
                    &mut out,
                    run.freeze(),
                    &mut head_pending,
                    &mut sent,
                )
                .await
                .map_err(|e| mid(e, sent))?;
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
        match conn
            .deadline
            .run(conn.worker.clock.deadline(route.read_timeout), read)
            .await
        {
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
    conn.bufs.out = out;
    let reusable = response.keep_alive() && framing != BodyFraming::UntilClose && up.buf.is_empty();
    Ok((sent, reusable, close))
}

/// Does a body remainder of `left` bytes (request or response) go by splice?
/// Only on io_uring (where splice is an asynchronous operation; the epoll
/// driver copies), only to a plain client (TLS needs the bytes), and only
/// from `--splice-threshold` up: below it, a read and a write cost less
/// than the pipe's four operations.
pub(super) fn splices(conn: &mut Connection<'_>, left: u64) -> bool {
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
        match conn
            .deadline
            .run(conn.worker.clock.deadline(patience), step)
            .await
        {
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
    match conn
        .deadline
        .run(conn.worker.clock.deadline(route.send_timeout), write)
        .await
    {
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

/// Write what `out` holds followed by `body` to the client in one vectored
/// write, counting body bytes.
async fn send(
    conn: &mut Connection<'_>,
    route: &Route,
    out: &mut Vec<u8>,
    body: Bytes,
    head_pending: &mut usize,
    sent: &mut u64,
) -> Result<(), String> {
    let body_len = out.len() - *head_pending + body.len();
    let iov = conn.bufs.iov.take().unwrap_or_default();
    let write = write_head_body(&mut conn.stream, std::mem::take(out), body, iov);
    match conn
        .deadline
        .run(conn.worker.clock.deadline(route.send_timeout), write)
        .await
    {
        Ok((result, buf, iov)) => {
            *out = buf;
            conn.bufs.iov = Some(iov);
            result.map_err(|e| format!("client: {e}"))?;
            *head_pending = 0;
            *sent += body_len as u64;
            Ok(())
        }
        Err(_) => Err("client write timed out".into()),
    }
}
