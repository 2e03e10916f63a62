//! The response on its way to the client: the rewritten head, then the body
//! coalesced, copied a buffer at a time, de-chunked for HTTP/1.0 clients, or
//! spliced socket to socket when large.

use std::future::Future;
use std::os::fd::AsRawFd;

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::IoBuf;
use ringway_protocol::h1::{BodyDecoder, BodyFraming, RequestHead, ResponseHead, Version};
use ringway_protocol::{ClientResponse, response_head_passes_unchanged, write_response_head};

use crate::buffer::{BodyReads, read_more, write_buf, write_head_body};
use crate::deadline::{Elapsed, Run};
use crate::downstream::Connection;
use crate::error::ProxyError;
use crate::snapshot::{Route, Server};
use crate::splice::{Failed, Step, set_nonblocking};
use crate::upstream::{RESPONSE_HEAD_ROOM, UpstreamConn};
use crate::vars::with_edits;

use super::COALESCE_LIMIT;

/// Body bytes that came with a response head that cannot be written in front
/// of them (`join_head`) are copied behind it, for one `send` instead of a
/// `writev`, when there are at most this many. Measured with perf on loopback
/// (docs/benchmarks.md): at 100 B the copy saves about 0.5 µs of kernel time
/// per response; at 16 KiB it costs more user time than it saves.
const COPY_BEHIND_HEAD: usize = 1024;

/// Write the response head and stream the body to the client. Returns the body
/// bytes sent, whether the upstream connection may be pooled, and whether the
/// client connection must close. The response's headers Vec goes back to
/// `conn.bufs` for the next parse.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // its arguments kept once, see `forward`
pub(super) fn relay_response(
    conn: &mut Connection<'_>,
    route: &Route,
    server: &Server,
    head: &RequestHead,
    path: &[u8],
    up: &mut UpstreamConn,
    slot: &mut Option<ResponseHead>,
    force_close: bool,
) -> impl Future<Output = Result<(u64, bool, bool), (ProxyError, u64)>> {
    async move {
        let response = slot.take().expect("the exchange filled the slot");
        let framing = response.framing();
        let keep_alive = response.keep_alive();
        // An HTTP/1.0 client cannot read chunked framing: de-chunk and close.
        let dechunk = head.version() == Version::Http10 && framing == BodyFraming::Chunked;
        let close = force_close
            || !head.keep_alive()
            || framing == BodyFraming::UntilClose
            || dechunk
            || conn.worker.shutdown.is_stopping();
        let mut out = std::mem::take(&mut conn.bufs.out);
        // The client gets the upstream's head byte for byte (`unchanged`), or
        // the head written into `out`.
        let unchanged = {
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
                    let unchanged = response_head_passes_unchanged(&response, &client);
                    if !unchanged {
                        write_response_head(&mut out, &response, &client);
                    }
                    unchanged
                },
            )
        };
        // The upstream's head is the client's, or no longer needed: either way
        // it sits in the read buffer right in front of the body bytes that came
        // with it, and may carry the head out with them (`join_head`). Until the
        // first body run has been looked at, `up.buf` starts with those
        // `upstream_head` bytes.
        let (buf, mut upstream_head, scratch) = response.into_parts();
        up.buf = buf;
        conn.bufs.response_scratch = scratch;
        let mut decoder = BodyDecoder::new(framing, None);
        // Body bytes written to the client so far, and how much of what is
        // written next is the head (not counted as body) until the head has been
        // flushed. While `out` is empty and a head is pending, the head is
        // the upstream's own.
        let mut sent: u64 = 0;
        let mut head_pending = if unchanged { upstream_head } else { out.len() };
        let mid = |e: String, sent: u64| (ProxyError::UpstreamMidResponse(e), sent);
        let mut reads = BodyReads::new(conn.worker.buffer_size);
        loop {
            // Body bytes go out as a slice of the upstream buffer, never
            // copied, with the head written in front of them when it fits
            // (`join_head`). When it does not (a head longer than the
            // upstream's), a small run is copied behind the head in `out`, so
            // that both leave in one `send`: the kernel's vectored-write path
            // costs more than copying up to `COPY_BEHIND_HEAD`; a larger run
            // goes with a `writev`. Over TLS, runs up to 16 KiB are copied
            // behind such a head so that head and body make one record.
            // De-chunked payload is always copied.
            if up.buf.len() > upstream_head && !decoder.is_done() {
                let body = &up.buf[upstream_head..];
                let n = if dechunk {
                    decoder.advance(body, |payload| out.extend_from_slice(payload))
                } else {
                    decoder.advance(body, |_| {})
                }
                .map_err(|e| mid(e.reason().to_string(), sent))?;
                if dechunk {
                    // The decoder has appended the payload to `out` already.
                    up.buf.advance(upstream_head + n);
                    upstream_head = 0;
                } else {
                    // The run to send starts at the client's head when it could
                    // be put in front of the body, else at the body.
                    let joined = upstream_head > 0
                        && join_head(&mut up.buf, upstream_head, head_pending, &mut out);
                    upstream_head = 0;
                    let len = if joined { head_pending + n } else { n };
                    // A run that is all of the buffer is taken whole, spare room
                    // and all, rather than split off (two atomic reference count
                    // updates): it is written and comes back, emptied, to be
                    // read into again.
                    let whole = len == up.buf.len();
                    if joined && whole {
                        let run = std::mem::take(&mut up.buf);
                        let body_len = run.len() - head_pending;
                        let write = write_to_client(conn, route, run).await;
                        let mut back = written(write, body_len, &mut head_pending, &mut sent)
                            .map_err(|e| mid(e, sent))?;
                        back.clear();
                        up.buf = back;
                    } else if !joined
                        && ((head_pending > 0 && n <= COPY_BEHIND_HEAD)
                            || (n <= COALESCE_LIMIT && conn.stream.is_tls()))
                    {
                        // Not joined: the head is in `out`, if one is pending.
                        out.extend_from_slice(&up.buf[..n]);
                        up.buf.advance(n);
                    } else {
                        let run = up.buf.split_to(len).freeze();
                        send(conn, route, &mut out, run, &mut head_pending, &mut sent)
                            .await
                            .map_err(|e| mid(e, sent))?
                    }
                }
            }
            if upstream_head > 0 {
                // No body run came with the head: an unchanged head goes alone.
                if head_pending > 0 && out.is_empty() {
                    out.extend_from_slice(&up.buf[..upstream_head]);
                }
                up.buf.advance(upstream_head);
                upstream_head = 0;
            }
            if !out.is_empty() {
                // What `out` holds: a written head, copied body bytes, or both.
                let body_len = out.len() - head_pending;
                let write = write_to_client(conn, route, std::mem::take(&mut out)).await;
                out = written(write, body_len, &mut head_pending, &mut sent)
                    .map_err(|e| mid(e, sent))?;
                out.clear();
            }
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
                    decoder.finish_on_eof().map_err(|_| {
                        mid("upstream closed before the end of the body".into(), sent)
                    })?;
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
        let reusable = keep_alive && framing != BodyFraming::UntilClose && up.buf.is_empty();
        Ok((sent, reusable, close))
    }
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

/// Put the pending head in front of the body bytes that follow the
/// upstream's head in `buf` (its first `upstream_head` bytes), so that head
/// and body leave in one `send` instead of a `writev`, which costs the
/// kernel more (about 0.25 µs per 16 KiB response on loopback,
/// docs/benchmarks.md), and the body is not copied. The head is the
/// upstream's own when `out` is empty (it passes unchanged), else all of
/// `out`, written over the tail of the upstream's. True when `buf` then
/// starts with the head (`head_pending` bytes) and the body behind it;
/// false when no head is pending or the written head is longer than the
/// upstream's: `buf` then starts at the body, and the head stays in `out`.
fn join_head(
    buf: &mut BytesMut,
    upstream_head: usize,
    head_pending: usize,
    out: &mut Vec<u8>,
) -> bool {
    if head_pending > 0 && out.is_empty() {
        return true;
    }
    if head_pending > 0 && out.len() == head_pending && out.len() <= upstream_head {
        let start = upstream_head - out.len();
        buf[start..upstream_head].copy_from_slice(out);
        buf.advance(start);
        out.clear();
        return true;
    }
    buf.advance(upstream_head);
    false
}

/// Write all of `buf` to the client within `send_timeout`. A plain function
/// returning the write's future, not an `async fn`: awaited where it is
/// called, it adds no level of futures to the response's wake-ups.
fn write_to_client<'c, 'w, T: IoBuf + 'static>(
    conn: &'c mut Connection<'w>,
    route: &Route,
    buf: T,
) -> Run<'c, 'w, impl Future<Output = (std::io::Result<()>, T)> + 'c> {
    let at = conn.worker.clock.deadline(route.send_timeout);
    conn.deadline.run(at, write_buf(&mut conn.stream, buf))
}

/// The buffer a finished `write_to_client` hands back, with its body bytes
/// (`body_len`) counted in `sent` and the head no longer pending.
fn written<T>(
    write: Result<(std::io::Result<()>, T), Elapsed>,
    body_len: usize,
    head_pending: &mut usize,
    sent: &mut u64,
) -> Result<T, String> {
    let (result, buf) = write.map_err(|_| "client write timed out".to_string())?;
    result.map_err(|e| format!("client: {e}"))?;
    *head_pending = 0;
    *sent += body_len as u64;
    Ok(buf)
}

/// Write what `out` holds followed by `body` to the client in one vectored
/// write (a plain write when `out` is empty, as after `join_head`), counting
/// body bytes (all but the `head_pending` first).
async fn send(
    conn: &mut Connection<'_>,
    route: &Route,
    out: &mut Vec<u8>,
    body: Bytes,
    head_pending: &mut usize,
    sent: &mut u64,
) -> Result<(), String> {
    let body_len = out.len() + body.len() - *head_pending;
    let iov = conn.bufs.iov.take().unwrap_or_default();
    let write = write_head_body(&mut conn.stream, std::mem::take(out), body, iov);
    let at = conn.worker.clock.deadline(route.send_timeout);
    let write = conn
        .deadline
        .run(at, write)
        .await
        .map(|(result, buf, iov)| {
            *out = buf;
            conn.bufs.iov = Some(iov);
            (result, ())
        });
    written(write, body_len, head_pending, sent)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::join_head;

    /// A read buffer as `parse_response_into` leaves it to the head: the
    /// upstream's head, then the body bytes behind it.
    fn read(head: &[u8], body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::with_capacity(head.len() + body.len() + 100);
        buf.extend_from_slice(head);
        buf.extend_from_slice(body);
        buf
    }

    #[test]
    fn a_shorter_or_equal_head_is_written_in_front_of_the_body_without_copying_it() {
        let upstream = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 4\r\n\r\n";
        let shorter = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        for client in [&shorter[..], &upstream[..]] {
            let mut buf = read(upstream, b"body");
            let body_at = buf[upstream.len()..].as_ptr();
            let mut out = client.to_vec();
            assert!(join_head(&mut buf, upstream.len(), client.len(), &mut out));
            assert_eq!(&buf[..client.len()], client);
            assert_eq!(&buf[client.len()..], b"body");
            assert_eq!(buf[client.len()..].as_ptr(), body_at);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn an_unchanged_head_carries_the_body_as_it_came() {
        let upstream = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        let mut buf = read(upstream, b"body");
        let head_at = buf.as_ptr();
        let mut out = Vec::new();
        assert!(join_head(
            &mut buf,
            upstream.len(),
            upstream.len(),
            &mut out
        ));
        assert_eq!(
            &buf[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
        );
        assert_eq!(buf.as_ptr(), head_at, "neither head nor body copied");
        assert!(out.is_empty());
    }

    #[test]
    fn a_longer_head_stays_in_out_and_the_buffer_starts_at_the_body() {
        let upstream = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        let longer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Added: 1\r\n\r\n";
        let mut buf = read(upstream, b"body");
        let mut out = longer.to_vec();
        assert!(!join_head(&mut buf, upstream.len(), longer.len(), &mut out));
        assert_eq!(&buf[..], b"body");
        assert_eq!(&out[..], longer);
    }
}
