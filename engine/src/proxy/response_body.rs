//! The response on its way to the client: the rewritten head, then the body
//! coalesced, copied a buffer at a time, de-chunked for HTTP/1.0 clients, or
//! spliced socket to socket when large.

use std::os::fd::AsRawFd;

use bytes::Bytes;
use ringway_protocol::h1::{BodyDecoder, BodyFraming, RequestHead, ResponseHead, Version};
use ringway_protocol::{ClientResponse, write_response_head};

use crate::buffer::{BodyReads, read_more, write_head_body, write_vec};
use crate::downstream::Connection;
use crate::error::ProxyError;
use crate::snapshot::{Route, Server};
use crate::splice::{Failed, Step, set_nonblocking};
use crate::upstream::{RESPONSE_HEAD_ROOM, UpstreamConn};
use crate::vars::with_edits;

use super::COALESCE_LIMIT;

/// Body bytes that came with the response head are copied behind it, for one
/// `send` instead of a `writev`, when there are at most this many. Measured
/// with perf on loopback (docs/benchmarks.md): at 100 B the copy saves about
/// 0.5 µs of kernel time per response; at 16 KiB it costs more user time than
/// it saves.
const COPY_BEHIND_HEAD: usize = 1024;

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
    let mut reads = BodyReads::new(conn.worker.buffer_size);
    loop {
        // A small run of body bytes is copied behind the head in `out`, so
        // that both leave in one `send`: the kernel's vectored-write path
        // costs more than copying up to `COPY_BEHIND_HEAD`. Over TLS, which
        // copies into its records anyway, runs up to 16 KiB are copied so
        // that head and body make one record. Other runs go out as slices of
        // the upstream buffer, never copied. De-chunked payload is always
        // copied.
        if !up.buf.is_empty() && !decoder.is_done() {
            let n = if dechunk {
                decoder.advance(&up.buf, |payload| out.extend_from_slice(payload))
            } else {
                decoder.advance(&up.buf, |_| {})
            }
            .map_err(|e| mid(e.reason().to_string(), sent))?;
            let run = up.buf.split_to(n);
            if dechunk {
                // The decoder has appended the payload to `out` already.
            } else if (n <= COPY_BEHIND_HEAD && !out.is_empty())
                || (n <= COALESCE_LIMIT && conn.stream.is_tls())
            {
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
                splice_body(conn, route, up, left, &mut sent)
                    .await
                    .map_err(|e| mid(e, sent))?;
                break;
            }
        }
        let read = read_more(&mut up.stream, &mut up.buf, reads.size());
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
            Ok(Ok(_)) => reads.read_into(&up.buf),
            Ok(Err(e)) => return Err(mid(e.to_string(), sent)),
            Err(_) => return Err(mid("upstream read timed out mid-body".into(), sent)),
        }
    }
    conn.bufs.out = out;
    reads.release(&mut up.buf, conn.worker.buffer_size + RESPONSE_HEAD_ROOM);
    conn.stream.release_write_buffer();
    let reusable = response.keep_alive() && framing != BodyFraming::UntilClose && up.buf.is_empty();
    Ok((sent, reusable, close))
}

/// Does a body remainder of `left` bytes (request or response) go by splice?
/// Only to a plain client (TLS needs the bytes), and only from
/// `--splice-threshold` up: below it, a read and a write cost less than the
/// pipe's two splices.
pub(super) fn splices(conn: &mut Connection<'_>, left: u64) -> bool {
    let threshold = conn.worker.splice_threshold;
    threshold > 0 && left >= threshold && conn.stream.tcp().is_some()
}

/// Move `left` body bytes from the upstream to the client with splice,
/// counting them in `sent` as they go. Each wait for the upstream has
/// `read_timeout`, each wait for the client `send_timeout`.
async fn splice_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    mut left: u64,
    sent: &mut u64,
) -> Result<(), String> {
    let Some(client) = conn.stream.tcp() else {
        return Err("splice needs a plain client socket".into());
    };
    set_nonblocking(client).map_err(|e| format!("client: {e}"))?;
    set_nonblocking(&up.stream).map_err(|e| format!("upstream: {e}"))?;
    let (source, destination) = (up.stream.as_raw_fd(), client.as_raw_fd());
    let pipes = &conn.worker.tunnels.pipes;
    let mut pipe = pipes.take().map_err(|e| format!("pipe: {e}"))?;
    let spliced = &conn.worker.metrics.spliced_bytes;
    loop {
        let step = pipe.transfer(source, destination, &mut left);
        if let Ok((_, given)) = step {
            spliced.add(given);
            *sent += given;
        }
        // Errors count as ready: the next splice reports them.
        let waited = match step {
            Ok((Step::Done, _)) => break,
            Ok((Step::End, _)) => {
                pipes.put(pipe);
                return Err("upstream closed before the end of the body".into());
            }
            Ok((Step::SourceEmpty, _)) => {
                let at = conn.worker.clock.deadline(route.read_timeout);
                let wait = up.stream.readable(false);
                conn.deadline
                    .run(at, wait)
                    .await
                    .map_err(|_| "upstream read timed out mid-body")
            }
            Ok((Step::DestinationFull, _)) => {
                let at = conn.worker.clock.deadline(route.send_timeout);
                let wait = client.writable(false);
                conn.deadline
                    .run(at, wait)
                    .await
                    .map_err(|_| "client write timed out")
            }
            // The pipe may hold bytes: `put` closes it.
            Err(failed) => {
                pipes.put(pipe);
                return Err(match failed {
                    Failed::Source(e) => format!("upstream: {e}"),
                    Failed::Destination(e) => format!("client: {e}"),
                });
            }
        };
        if let Err(e) = waited {
            pipes.put(pipe);
            return Err(e.into());
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
