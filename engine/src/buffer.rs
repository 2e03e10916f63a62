//! Owned-buffer I/O helpers on monoio's completion-style traits: read more into
//! the unfilled tail of a `BytesMut`, write a whole `Bytes` back.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use crate::clock::Stamp;
use crate::deadline::Deadline;

/// Free space below which a read first makes room for another `buffer_size` bytes.
const MIN_READ_SPACE: usize = 1024;

/// Read once from `stream`, appending to `buf` (growing it by `buffer_size` if
/// it is nearly full). Returns the bytes read; 0 means the peer closed.
///
/// If the future is dropped (a timeout), `buf` is left empty: every caller
/// closes the connection on a timeout, so the lost bytes cannot matter.
pub fn read_more<'a, S: AsyncReadRent>(
    stream: &'a mut S,
    buf: &'a mut BytesMut,
    buffer_size: usize,
) -> ReadMore<'a, impl Future<Output = BufResult<usize, SliceMut<BytesMut>>> + 'a> {
    if buf.capacity() - buf.len() < MIN_READ_SPACE {
        buf.reserve(buffer_size.max(MIN_READ_SPACE));
    }
    let owned = std::mem::take(buf);
    let (start, end) = (owned.len(), owned.capacity());
    ReadMore {
        read: stream.read(owned.slice_mut(start..end)),
        buf,
    }
}

/// The future of `read_more`: the stream's read, polled in place, and the
/// buffer put back when it is done. A future of its own rather than an
/// `async fn`, so that it adds no state machine to every read.
pub struct ReadMore<'a, F> {
    read: F,
    buf: &'a mut BytesMut,
}

impl<F: Future<Output = BufResult<usize, SliceMut<BytesMut>>>> Future for ReadMore<'_, F> {
    type Output = io::Result<usize>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // SAFETY: `read` is pinned with `self` and never moved out of it;
        // `buf` is a plain reference, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let read = unsafe { Pin::new_unchecked(&mut this.read) };
        let Poll::Ready((result, slice)) = read.poll(cx) else {
            return Poll::Pending;
        };
        *this.buf = slice.into_inner();
        Poll::Ready(result)
    }
}

/// Reads of a body grow, from `--buffer-size`, up to this.
pub const BODY_READ_MAX: usize = 64 * 1024;

/// The size of a body's next read: `--buffer-size` at first, doubling (up to
/// [`BODY_READ_MAX`]) each time a read fills all the space it was given. A
/// body that arrives faster than it is read then moves in a quarter of the
/// reads and writes; one that trickles in never grows its buffer. nginx
/// likewise reads a proxied body into several buffers at once
/// (`proxy_buffers`).
pub struct BodyReads {
    size: usize,
    grew: bool,
}

impl BodyReads {
    pub fn new(buffer_size: usize) -> BodyReads {
        BodyReads {
            size: buffer_size,
            grew: false,
        }
    }

    /// How much the next read may add to the buffer.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Note a read that left `buf` as it is now.
    pub fn read_into(&mut self, buf: &BytesMut) {
        if buf.len() == buf.capacity() && self.size < BODY_READ_MAX {
            self.size = (self.size * 2).min(BODY_READ_MAX);
            self.grew = true;
        }
    }

    /// After the body: if reads grew `buf` and it is empty, replace it with a
    /// buffer of `capacity`, so that a connection that once carried a large
    /// body does not keep the larger buffer while idle.
    pub fn release(&self, buf: &mut BytesMut, capacity: usize) {
        if self.grew && buf.is_empty() {
            *buf = BytesMut::with_capacity(capacity);
        }
    }
}

/// nginx's lingering close: after a final answer on a connection that is
/// closing, stop sending and discard what the peer still sends for up to
/// `until` (and at most `LINGER_MAX_BYTES`), timed by the connection's
/// `deadline`. Closing a socket with unread input makes the kernel send a
/// reset, which can destroy the answer before the peer has read it. `buf` is
/// used as scratch and left empty.
pub async fn linger(
    stream: &mut (impl AsyncReadRent + AsyncWriteRent),
    buf: &mut BytesMut,
    buffer_size: usize,
    deadline: &mut Deadline<'_>,
    until: Stamp,
) {
    let _ = stream.shutdown().await;
    let mut discarded = 0;
    while discarded < LINGER_MAX_BYTES {
        buf.clear();
        match deadline
            .run(until, read_more(stream, buf, buffer_size))
            .await
        {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
    buf.clear();
}

/// At most this much is read and discarded by `linger` (nginx: lingering_time
/// bounds it in time only; a bound in bytes stops a fast sender sooner).
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// Write all of `bytes`: one `write` when the stream takes them all, as a
/// socket nearly always does, and a loop over the rest when it does not.
pub async fn write_all(stream: &mut impl AsyncWriteRent, bytes: Bytes) -> io::Result<()> {
    write_buf(stream, bytes).await.0
}

/// `write_all` for any owned buffer, handed back afterwards.
pub async fn write_buf<T: IoBuf + 'static>(
    stream: &mut impl AsyncWriteRent,
    buf: T,
) -> (io::Result<()>, T) {
    let len = buf.bytes_init();
    if len == 0 {
        return (Ok(()), buf);
    }
    let (result, buf) = stream.write(buf).await;
    let written = match result {
        Ok(n) if n == len => return (Ok(()), buf),
        Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return (Err(e), buf),
    };
    let (result, rest) = stream.write_all(buf.slice(written..)).await;
    (result.map(drop), rest.into_inner())
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

/// The two-entry iovec array of `write_head_body`, kept by a connection and
/// reused write after write. It lives on the heap because the runtime reads it
/// after the future owning it has moved (the `IoVecBuf` contract).
pub struct IoVecPair(Box<[libc::iovec; 2]>);

impl Default for IoVecPair {
    fn default() -> IoVecPair {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        IoVecPair(Box::new([empty; 2]))
    }
}

/// A head and a body slice in one vectored write.
struct HeadBody {
    head: Vec<u8>,
    body: Bytes,
    iov: IoVecPair,
}

// SAFETY: the iovecs point into `head` and `body`, whose heap buffers neither
// move nor change while the runtime owns the value, and the array itself is
// boxed, so the pointer returned stays valid however the value moves.
unsafe impl IoVecBuf for HeadBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.0.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        2
    }
}

/// Write `head` and then `body` with one `writev`, so that a response head and
/// the body bytes that came with it leave in one system call and one segment
/// without being copied together; a short write is finished with plain
/// writes. Hands back `head` (cleared) and `iov` for reuse.
///
/// An empty `head` is not put in the vector: a stream that writes only the
/// first entry of a vector (monoio-rustls did) would write nothing and
/// report 0, which reads as a closed peer.
pub async fn write_head_body(
    stream: &mut impl AsyncWriteRent,
    head: Vec<u8>,
    body: Bytes,
    mut iov: IoVecPair,
) -> (io::Result<()>, Vec<u8>, IoVecPair) {
    if head.is_empty() {
        return (write_all(stream, body).await, head, iov);
    }
    iov.0[0] = libc::iovec {
        iov_base: head.as_ptr().cast_mut().cast(),
        iov_len: head.len(),
    };
    iov.0[1] = libc::iovec {
        iov_base: body.as_ptr().cast_mut().cast(),
        iov_len: body.len(),
    };
    let total = head.len() + body.len();
    let (
        result,
        HeadBody {
            mut head,
            body,
            iov,
        },
    ) = stream.writev(HeadBody { head, body, iov }).await;
    let result = match result {
        Ok(n) if n == total => Ok(()),
        Ok(0) => Err(io::ErrorKind::WriteZero.into()),
        Ok(n) if n < head.len() => {
            let (result, rest) = stream.write_all(head.slice(n..)).await;
            head = rest.into_inner();
            match result {
                Ok(_) => write_all(stream, body).await,
                Err(e) => Err(e),
            }
        }
        Ok(n) => write_all(stream, Bytes::slice(&body, n - head.len()..)).await,
        Err(e) => Err(e),
    };
    head.clear();
    (result, head, iov)
}

#[cfg(test)]
mod tests {
    use std::io;

    use bytes::{Bytes, BytesMut};
    use monoio::BufResult;
    use monoio::buf::{IoBuf, IoVecBuf};
    use monoio::io::AsyncWriteRent;

    use super::{BODY_READ_MAX, BodyReads, IoVecPair, write_head_body};

    /// A stream that takes at most `limit` bytes per call and, like
    /// monoio-rustls, only the first entry of a vector.
    struct FirstEntryOnly {
        written: Vec<u8>,
        limit: usize,
    }

    impl AsyncWriteRent for FirstEntryOnly {
        async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            // SAFETY: `read_ptr` is valid for `bytes_init` bytes while we hold `buf`.
            let bytes = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
            let n = bytes.len().min(self.limit);
            self.written.extend_from_slice(&bytes[..n]);
            (Ok(n), buf)
        }

        async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            // SAFETY: the vector has `read_iovec_len` valid entries while we hold `buf`.
            let first = unsafe { *buf.read_iovec_ptr() };
            // SAFETY: each entry points at `iov_len` readable bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts(first.iov_base.cast::<u8>(), first.iov_len) };
            let n = bytes.len().min(self.limit);
            self.written.extend_from_slice(&bytes[..n]);
            (Ok(n), buf)
        }

        async fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }

        async fn shutdown(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn written(head: &[u8], body: &[u8], limit: usize) -> io::Result<Vec<u8>> {
        let runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build();
        runtime.expect("a monoio runtime").block_on(async {
            let mut stream = FirstEntryOnly {
                written: Vec::new(),
                limit,
            };
            let body = Bytes::copy_from_slice(body);
            let (result, head, _) =
                write_head_body(&mut stream, head.to_vec(), body, IoVecPair::default()).await;
            assert!(head.is_empty(), "the head comes back cleared");
            result.map(|()| stream.written)
        })
    }

    #[test]
    fn body_reads_double_while_they_fill_the_buffer() {
        let mut reads = BodyReads::new(16 * 1024);
        let mut buf = BytesMut::with_capacity(16 * 1024);
        buf.resize(100, 0);
        reads.read_into(&buf);
        assert_eq!(reads.size(), 16 * 1024, "a partial read does not grow");
        for expected in [32 * 1024, 64 * 1024, BODY_READ_MAX] {
            buf.resize(buf.capacity(), 0);
            reads.read_into(&buf);
            assert_eq!(reads.size(), expected);
        }
    }

    #[test]
    fn a_grown_buffer_is_released_only_when_empty() {
        let mut reads = BodyReads::new(1024);
        let mut buf = BytesMut::with_capacity(1024);
        reads.release(&mut buf, 1024);
        buf.resize(buf.capacity(), 0);
        reads.read_into(&buf);
        buf.reserve(reads.size());
        let grown = buf.capacity();
        reads.release(&mut buf, 1024);
        assert_eq!(buf.capacity(), grown, "bytes still held keep their buffer");
        buf.clear();
        reads.release(&mut buf, 1024);
        assert_eq!(buf.capacity(), 1024);
    }

    #[test]
    fn an_empty_head_is_not_a_zero_write() {
        assert_eq!(written(b"", b"body", 64).unwrap(), b"body");
    }

    #[test]
    fn a_stream_writing_only_the_first_entry_gets_head_then_body() {
        assert_eq!(written(b"head ", b"body", 64).unwrap(), b"head body");
    }

    #[test]
    fn short_writes_are_finished() {
        assert_eq!(written(b"head ", b"body", 2).unwrap(), b"head body");
        assert_eq!(written(b"", b"body", 3).unwrap(), b"body");
    }

    #[test]
    fn a_stream_taking_nothing_is_an_error_and_nothing_needs_no_write() {
        let error = written(b"", b"body", 0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        assert_eq!(written(b"", b"", 0).unwrap(), b"");
    }
}
