//! Reading into owned, reused buffers, as monoio's completion-based I/O
//! requires: the buffer is lent to the kernel for the duration of a read.

use std::mem;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

/// Capacity of a connection's read buffer.
pub const READ_CAPACITY: usize = 64 * 1024;
/// A read is never offered less spare room than this.
const MIN_READ: usize = 4 * 1024;

/// Appends what the socket has to `buf`; `Ok(0)` is end of stream. Room is
/// made by reclaiming consumed space at the front of the buffer first
/// (`BytesMut::reserve` moves the unread tail down when that is enough), so
/// a steady exchange never allocates. Generic over the stream, so that the
/// plain TCP path is compiled on its own and pays nothing for TLS.
pub async fn read_more<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(READ_CAPACITY.saturating_sub(buf.len()).max(MIN_READ));
    }
    let owned = mem::take(buf);
    let len = owned.len();
    let (result, slice) = stream.read(owned.slice_mut(len..)).await;
    *buf = slice.into_inner();
    result
}

/// Raises this process's limit of open descriptors to at least `want`
/// (children inherit it): the soft limit up to the hard one, and the hard
/// one too when the process may (root, CAP_SYS_RESOURCE). Returns the soft
/// limit now in force; failing to raise it is not fatal, a run with many
/// connections then reports the connect errors it meets.
pub fn raise_nofile(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given,
    // which lives on this stack frame for the whole call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur >= want {
        return limit.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: limit.rlim_max.max(want),
    };
    // SAFETY: setrlimit only reads the struct, valid for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return want;
    }
    let soft = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        limit.rlim_max
    } else {
        limit.rlim_cur
    }
}
