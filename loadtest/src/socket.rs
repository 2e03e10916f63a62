//! Reading into owned, reused buffers, as monoio's completion-based I/O
//! requires: the buffer is lent to the kernel for the duration of a read.

use std::mem;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;
use monoio::net::TcpStream;

/// Capacity of a connection's read buffer.
pub const READ_CAPACITY: usize = 64 * 1024;
/// A read is never offered less spare room than this.
const MIN_READ: usize = 4 * 1024;

/// Appends what the socket has to `buf`; `Ok(0)` is end of stream. Room is
/// made by reclaiming consumed space at the front of the buffer first
/// (`BytesMut::reserve` moves the unread tail down when that is enough), so
/// a steady exchange never allocates.
pub async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(READ_CAPACITY.saturating_sub(buf.len()).max(MIN_READ));
    }
    let owned = mem::take(buf);
    let len = owned.len();
    let (result, slice) = stream.read(owned.slice_mut(len..)).await;
    *buf = slice.into_inner();
    result
}
