//! Owned-buffer I/O helpers on monoio's completion-style traits: read more into
//! the unfilled tail of a `BytesMut`, write a whole `Bytes` back.

use std::io;

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
