//! Owned-buffer I/O helpers on monoio's completion-style traits: read more into
//! the unfilled tail of a `BytesMut`, write a whole `Bytes` back.

use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// Free space below which a read first makes room for another `buffer_size` bytes.
const MIN_READ_SPACE: usize = 1024;

/// Read once from `stream`, appending to `buf` (growing it by `buffer_size` if
/// it is nearly full). Returns the bytes read; 0 means the peer closed.
///
/// If the future is dropped (a timeout), `buf` is left empty: every caller
/// closes the connection on a timeout, so the lost bytes cannot matter.
pub async fn read_more(
    stream: &mut impl AsyncReadRent,
    buf: &mut BytesMut,
    buffer_size: usize,
) -> io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ_SPACE {
        buf.reserve(buffer_size.max(MIN_READ_SPACE));
    }
    let owned = std::mem::take(buf);
    let (start, end) = (owned.len(), owned.capacity());
    let (result, slice) = stream.read(owned.slice_mut(start..end)).await;
    *buf = slice.into_inner();
    result
}

/// nginx's lingering close: after a final answer on a connection that is
/// closing, stop sending and discard what the peer still sends for up to
/// `time` (and at most `LINGER_MAX_BYTES`). Closing a socket with unread
/// input makes the kernel send a reset, which can destroy the answer before
/// the peer has read it. `buf` is used as scratch and left empty.
pub async fn linger(
    stream: &mut (impl AsyncReadRent + AsyncWriteRent),
    buf: &mut BytesMut,
    buffer_size: usize,
    time: Duration,
) {
    let _ = stream.shutdown().await;
    let until = Instant::now() + time;
    let mut discarded = 0;
    while discarded < LINGER_MAX_BYTES {
        buf.clear();
        let wait = until.saturating_duration_since(Instant::now());
        match monoio::time::timeout(wait, read_more(stream, buf, buffer_size)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
    buf.clear();
}

/// At most this much is read and discarded by `linger` (nginx: lingering_time
/// bounds it in time only; a bound in bytes stops a fast sender sooner).
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// Write all of `bytes`.
pub async fn write_all(stream: &mut impl AsyncWriteRent, bytes: Bytes) -> io::Result<()> {
    let (result, _) = stream.write_all(bytes).await;
    result.map(drop)
}

/// Write all of `vec` and hand the (cleared) allocation back for reuse.
pub async fn write_vec(
    stream: &mut impl AsyncWriteRent,
    vec: Vec<u8>,
) -> (io::Result<()>, Vec<u8>) {
    let (result, mut vec) = stream.write_all(vec).await;
    vec.clear();
    (result.map(drop), vec)
}

/// Write all of `vec`, leaving its contents in place (to resend them on a
/// retry). If the future is dropped, `vec` is left empty.
pub async fn write_keep(stream: &mut impl AsyncWriteRent, vec: &mut Vec<u8>) -> io::Result<()> {
    let (result, owned) = stream.write_all(std::mem::take(vec)).await;
    *vec = owned;
    result.map(drop)
}
