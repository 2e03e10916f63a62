//! The request body on its way upstream: streamed and validated a buffer at
//! a time, or spliced when large, while watching for an early answer.

use std::os::fd::AsRawFd;

use ringway_protocol::h1::BodyDecoder;

use crate::buffer::{BodyReads, read_more, write_all};
use crate::clock::Stamp;
use crate::deadline::Deadline;
use crate::downstream::Connection;
use crate::error::ProxyError;
use crate::snapshot::Route;
use crate::splice::{Failed, Step, set_nonblocking};
use crate::upstream::UpstreamConn;

use super::response_body::splices;

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
pub(super) async fn send_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    body: &mut BodyDecoder,
) -> Result<(), ProxyError> {
    // The whole body already arrived with the head (the common case for small
    // bodies): one write, no watching needed.
    if !body.is_done() && !conn.bufs.buf.is_empty() {
        let n = body
            .advance(&conn.bufs.buf, |_| {})
            .map_err(ProxyError::ClientProtocol)?;
        if body.is_done() {
            let chunk = conn.bufs.buf.split_to(n).freeze();
            let at = conn.worker.clock.deadline(route.send_timeout);
            return match conn
                .deadline
                .run(at, write_all(&mut up.stream, chunk))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(upstream_failed(source)),
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
    ready: usize,
) -> Result<(), ProxyError> {
    let mut reads = BodyReads::new(conn.worker.buffer_size);
    let sent = stream_body(conn, route, up, body, ready, &mut reads).await;
    reads.release(&mut conn.bufs.buf, conn.worker.buffer_size);
    sent
}

async fn stream_body(
    conn: &mut Connection<'_>,
    route: &Route,
    up: &mut UpstreamConn,
    body: &mut BodyDecoder,
    mut ready: usize,
    reads: &mut BodyReads,
) -> Result<(), ProxyError> {
    let watch = ReadWatch::new(&up.stream).map_err(|source| ProxyError::UpstreamClosed {
        source,
        retryable: false,
    })?;
    loop {
        if ready == 0 && !conn.bufs.buf.is_empty() && !body.is_done() {
            ready = body
                .advance(&conn.bufs.buf, |_| {})
                .map_err(ProxyError::ClientProtocol)?;
        }
        if ready > 0 {
            let chunk = conn.bufs.buf.split_to(ready).freeze();
            ready = 0;
            let write = write_all(&mut up.stream, chunk);
            let at = conn.worker.clock.deadline(route.send_timeout);
            if !written_unless_answered(&mut conn.deadline, at, &watch, write).await? {
                return Ok(());
            }
        }
        if body.is_done() {
            return Ok(());
        }
        if conn.bufs.buf.is_empty()
            && let Some(left) = body.remaining_length()
            && splices(conn, left)
        {
            return splice_request_body(conn, route, up, body, &watch).await;
        }
        let read = read_more(&mut conn.stream, &mut conn.bufs.buf, reads.size());
        let at = conn.worker.clock.deadline(route.read_timeout);
        let read = conn.deadline.run(at, read);
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
            Ok(Ok(_)) => reads.read_into(&conn.bufs.buf),
            Ok(Err(e)) => return Err(ProxyError::ClientIo(e)),
            Err(_) => return Err(ProxyError::ClientTimeout),
        }
    }
}

/// A write of request body bytes upstream, bounded by `at` (from
/// `send_timeout`), that gives way when the upstream answers meanwhile:
/// `Ok(false)` then (the caller stops sending and reads the answer).
async fn written_unless_answered(
    deadline: &mut Deadline<'_>,
    at: Stamp,
    watch: &ReadWatch,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<bool, ProxyError> {
    let write = deadline.run(at, write);
    let written = monoio::select! {
        written = write => written,
        () = watch.readable() => return Ok(false),
    };
    match written {
        Ok(Ok(())) => Ok(true),
        Ok(Err(source)) => Err(upstream_failed(source)),
        Err(_) => Err(ProxyError::UpstreamTimeout),
    }
}

/// The rest of a large length-delimited request body, client to upstream by
/// splice. Like `send_body_watched`, every wait races the upstream answering
/// early; then sending stops (a pipe that may still hold bytes is closed,
/// not pooled).
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
    let Some(mut left) = body.remaining_length() else {
        return Ok(());
    };
    set_nonblocking(client).map_err(ProxyError::ClientIo)?;
    set_nonblocking(&up.stream).map_err(upstream_failed)?;
    let (source, destination) = (client.as_raw_fd(), up.stream.as_raw_fd());
    let pipes = &conn.worker.tunnels.pipes;
    let mut pipe = pipes.take().map_err(ProxyError::ClientIo)?;
    // Every way out hands the pipe back: `put` keeps it only if empty.
    let sent = loop {
        let before = left;
        let step = pipe.transfer(source, destination, &mut left);
        // Bytes taken from the client. Once all are, the decoder is done
        // while the pipe may still hold some for the upstream.
        if let Err(e) = body.skip(before - left) {
            break Err(ProxyError::ClientProtocol(e));
        }
        conn.worker.metrics.spliced_bytes.add(before - left);
        let answered = match step {
            Ok((Step::Done, _)) => break Ok(()),
            Ok((Step::End, _)) => {
                break Err(ProxyError::ClientIo(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok((Step::SourceEmpty, _)) => {
                let at = conn.worker.clock.deadline(route.read_timeout);
                let wait = conn.deadline.run(at, client.readable(false));
                // `None`: the upstream answered meanwhile.
                let waited = monoio::select! {
                    waited = wait => Some(waited.is_ok()),
                    () = watch.readable() => None,
                };
                match waited {
                    Some(true) => false,
                    Some(false) => break Err(ProxyError::ClientTimeout),
                    None => true,
                }
            }
            Ok((Step::DestinationFull, _)) => {
                let wait = async {
                    // Errors count as writable: the next splice reports them.
                    let _ = up.stream.writable(false).await;
                    Ok(())
                };
                let at = conn.worker.clock.deadline(route.send_timeout);
                match written_unless_answered(&mut conn.deadline, at, watch, wait).await {
                    Ok(written) => !written,
                    Err(e) => break Err(e),
                }
            }
            Err(Failed::Source(e)) => break Err(ProxyError::ClientIo(e)),
            Err(Failed::Destination(e)) => break Err(upstream_failed(e)),
        };
        if answered {
            break Ok(());
        }
    };
    pipes.put(pipe);
    sent
}

/// The upstream failed while taking the request: no byte of an answer
/// arrived, so another upstream may be tried if the request can be replayed.
fn upstream_failed(source: std::io::Error) -> ProxyError {
    ProxyError::UpstreamClosed {
        source,
        retryable: true,
    }
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
