//! The request body on its way upstream: streamed and validated a buffer at
//! a time, or spliced when large, while watching for an early answer.

use ringway_protocol::h1::BodyDecoder;

use crate::buffer::{read_more, write_all};
use crate::downstream::Connection;
use crate::error::ProxyError;
use crate::snapshot::Route;
use crate::splice::{drain, fill};
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
        if ready == 0 && !conn.bufs.buf.is_empty() && !body.is_done() {
            ready = body
                .advance(&conn.bufs.buf, |_| {})
                .map_err(ProxyError::ClientProtocol)?;
        }
        if ready > 0 {
            let chunk = conn.bufs.buf.split_to(ready).freeze();
            ready = 0;
            let write = write_all(&mut up.stream, chunk);
            if !written_unless_answered(route, &watch, write).await? {
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
        let read = read_more(
            &mut conn.stream,
            &mut conn.bufs.buf,
            conn.worker.buffer_size,
        );
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

/// A write of request body bytes upstream, bounded by `send_timeout`, that
/// gives way when the upstream answers meanwhile: `Ok(false)` then (the
/// caller stops sending and reads the answer).
async fn written_unless_answered(
    route: &Route,
    watch: &ReadWatch,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<bool, ProxyError> {
    let write = monoio::time::timeout(route.send_timeout, write);
    let written = monoio::select! {
        written = write => written,
        () = watch.readable() => return Ok(false),
    };
    match written {
        Ok(Ok(())) => Ok(true),
        Ok(Err(source)) => Err(ProxyError::UpstreamClosed {
            source,
            retryable: true,
        }),
        Err(_) => Err(ProxyError::UpstreamTimeout),
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
        let write = drain(&mut up.stream, &mut pipe, filled);
        if !written_unless_answered(route, watch, write).await? {
            return Ok(());
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
