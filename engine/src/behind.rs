//! A write left to complete behind the read of its answer.
//!
//! On io_uring a write is an operation of its own: the kernel takes the
//! bytes, posts a completion, and monoio wakes the task for it, which then
//! submits the read of the answer and sleeps again. Each wake-up walks the
//! task's futures from the top and touches their cache lines (callgrind,
//! wrk -c64: about 400 instructions and 9 first-level data misses per
//! proxied request for the upstream request head's write alone, a twentieth
//! of the user-space work). nginx, readiness-based, writes a small head with
//! one `writev` and never waits for it.
//!
//! The price is in the kernel: the read now reaches it before the peer can
//! have answered, so it arms a poll instead of finding the answer there.
//! Measured against each other, the two orders cost about the same at
//! saturation, this one 1–1.5 % less (docs/benchmarks.md, twenty-first
//! pass; the ninth pass had found the opposite); below saturation, where
//! reads arm polls anyway, it saves the wake-up outright.
//!
//! Here the write and the read are both submitted in the same pass, and the
//! task waits for the read only: a completion nobody waits for wakes nobody
//! (monoio keeps it until the operation is next polled). When the read
//! completes, the write has long been done: the answer came from the peer
//! that took the bytes. What the write did is then looked at before the
//! read's result.
//!
//! A write can end short (a full send buffer) or fail; neither wakes the
//! task either. So the task also wakes within `WRITE_CHECK` of the write
//! (the connection's `Deadline` is armed no later than that) and from then on
//! every wake-up looks at the write first: one that ended short, failed or is
//! still in flight then gets the task's whole attention, as a write that is
//! not behind a read does (`ReadBehind` returns `None`). With the usual
//! answer in microseconds the check never fires; a busy connection's timer
//! fires about once per `WRITE_CHECK` instead of once per timeout.
//!
//! The epoll driver writes on the first poll with a direct `send`, which does
//! not wake the task either: there, the write is done (or waited for) before
//! the read, as before.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;

use crate::clock::Stamp;
use crate::deadline::{Deadline, Elapsed};

/// How long a write behind a read may go unlooked at.
pub const WRITE_CHECK: Duration = Duration::from_millis(100);

/// Split `stream` for one read and one write in flight at once: the
/// borrowed counterpart of monoio's `into_split`, without its `Rc`.
pub fn halves(stream: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    let stream = NonNull::from(stream);
    (
        ReadHalf {
            stream,
            _borrow: PhantomData,
        },
        WriteHalf {
            stream,
            _borrow: PhantomData,
        },
    )
}

/// The reading half of a `TcpStream` split by `halves`.
pub struct ReadHalf<'a> {
    stream: NonNull<TcpStream>,
    _borrow: PhantomData<&'a mut TcpStream>,
}

/// The writing half of a `TcpStream` split by `halves`.
pub struct WriteHalf<'a> {
    stream: NonNull<TcpStream>,
    _borrow: PhantomData<&'a mut TcpStream>,
}

impl AsyncReadRent for ReadHalf<'_> {
    fn read<T: IoBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        // SAFETY: the pointer is the `&'a mut TcpStream` that `halves` took,
        // so the stream outlives this half and nothing else touches it
        // meanwhile but the other half. monoio declares `TcpStream: Split`:
        // its reads and writes may run at the same time, each operation
        // owning its buffer and a handle on the socket, not the stream (its
        // own `OwnedReadHalf` reads through the same kind of pointer while
        // `OwnedWriteHalf` writes). This half only reads.
        unsafe { &mut *self.stream.as_ptr() }.read(buf)
    }

    fn readv<T: monoio::buf::IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl Future<Output = BufResult<usize, T>> {
        // SAFETY: as in `read`.
        unsafe { &mut *self.stream.as_ptr() }.readv(buf)
    }
}

impl<'a> WriteHalf<'a> {
    /// Submit one write of `buf` (on io_uring, at once: the future need not
    /// be polled for the bytes to go). Its result may be short.
    pub fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl Future<Output = BufResult<usize, T>> + use<'a, T> {
        // SAFETY: as in `ReadHalf::read`; this half only writes. The future
        // holds the operation (buffer and socket handle), not the stream,
        // so it may outlive this call's borrow of the half; it is tied to
        // the stream's borrow `'a` all the same.
        let stream: &'a mut TcpStream = unsafe { &mut *self.stream.as_ptr() };
        stream.write(buf)
    }
}

/// Write what is left of `buf` after a write that took its first `done`
/// bytes, each write waited for: a short write is rare enough (a send buffer
/// full of a head of hundreds of KiB) not to be left behind again.
pub async fn write_rest(
    writing: &mut WriteHalf<'_>,
    deadline: &mut Deadline<'_>,
    at: Stamp,
    buf: &mut Vec<u8>,
    mut done: usize,
) -> Result<io::Result<()>, Elapsed> {
    while done < buf.len() {
        let (result, rest) = deadline
            .run(at, writing.write(std::mem::take(buf).slice(done..)))
            .await?;
        *buf = rest.into_inner();
        match result {
            Ok(0) => return Ok(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(()))
}

/// The read of an answer with the write that asked for it behind it.
///
/// The read is polled first: once it has completed, its result is returned
/// and the caller looks at the write (done by then, or waited for). The
/// first poll leaves the write alone (on io_uring it is submitted and needs
/// no poll to proceed); every later one that finds the read pending looks at
/// it, and returns `None` unless it has written all of its bytes: the caller
/// then finishes (or fails) the write before it waits for the read again.
pub struct ReadBehind<'a, R, W> {
    read: Pin<&'a mut R>,
    write: Pin<&'a mut W>,
    wrote: &'a mut Option<BufResult<usize, Vec<u8>>>,
    polled: bool,
}

impl<'a, R, W> ReadBehind<'a, R, W> {
    /// `wrote` gets the write's result once it has been seen.
    pub fn new(
        read: Pin<&'a mut R>,
        write: Pin<&'a mut W>,
        wrote: &'a mut Option<BufResult<usize, Vec<u8>>>,
    ) -> ReadBehind<'a, R, W> {
        ReadBehind {
            read,
            write,
            wrote,
            polled: false,
        }
    }
}

impl<R, W> Future for ReadBehind<'_, R, W>
where
    R: Future<Output = io::Result<usize>>,
    W: Future<Output = BufResult<usize, Vec<u8>>>,
{
    type Output = Option<io::Result<usize>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is a pinned reference or plain data: `ReadBehind` is `Unpin`.
        let this = self.get_mut();
        if let Poll::Ready(read) = this.read.as_mut().poll(cx) {
            return Poll::Ready(Some(read));
        }
        if this.polled && this.wrote.is_none() {
            match this.write.as_mut().poll(cx) {
                Poll::Ready(wrote) => {
                    let whole = matches!(&wrote, (Ok(n), buf) if *n == buf.len());
                    *this.wrote = Some(wrote);
                    if !whole {
                        return Poll::Ready(None);
                    }
                }
                Poll::Pending => return Poll::Ready(None),
            }
        }
        this.polled = true;
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::{Future, poll_fn};
    use std::io;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use monoio::BufResult;

    use super::ReadBehind;

    /// A write whose polls are counted and which is ready with `result` from
    /// its `ready_from`th poll on.
    fn write<'a>(
        polls: &'a Cell<usize>,
        ready_from: usize,
        result: io::Result<usize>,
    ) -> impl Future<Output = BufResult<usize, Vec<u8>>> + 'a {
        let mut result = Some(result);
        poll_fn(move |_| {
            polls.set(polls.get() + 1);
            if polls.get() < ready_from {
                return Poll::Pending;
            }
            Poll::Ready((result.take().expect("polled once done"), vec![0; 10]))
        })
    }

    /// A read ready with 5 bytes once `ready` is set.
    fn read(ready: &Cell<bool>) -> impl Future<Output = io::Result<usize>> + '_ {
        poll_fn(move |_| {
            if ready.get() {
                Poll::Ready(Ok(5))
            } else {
                Poll::Pending
            }
        })
    }

    /// What a `ReadBehind` gave: each poll's answer while it was pending
    /// (`None`) up to the one that was ready, how often the write was
    /// polled, and the write's result as kept.
    struct Run {
        answers: Vec<Option<Option<io::Result<usize>>>>,
        write_polls: usize,
        wrote: Option<BufResult<usize, Vec<u8>>>,
    }

    /// Poll a `ReadBehind` over a write ready with `result` from its
    /// `ready_from`th poll on: `wake_ups` times with the read pending, then
    /// once with it ready, or until it answers.
    fn drive(ready_from: usize, result: io::Result<usize>, wake_ups: usize) -> Run {
        let (polls, ready) = (Cell::new(0), Cell::new(false));
        let mut w = pin!(write(&polls, ready_from, result));
        let mut r = pin!(read(&ready));
        let mut wrote = None;
        let mut answers = Vec::new();
        {
            let mut behind = pin!(ReadBehind::new(r.as_mut(), w.as_mut(), &mut wrote));
            for wake_up in 0..=wake_ups {
                ready.set(wake_up == wake_ups);
                let cx = &mut Context::from_waker(Waker::noop());
                match behind.as_mut().poll(cx) {
                    Poll::Pending => answers.push(None),
                    Poll::Ready(answer) => {
                        answers.push(Some(answer));
                        break;
                    }
                }
            }
        }
        Run {
            answers,
            write_polls: polls.get(),
            wrote,
        }
    }

    #[test]
    fn the_write_is_left_alone_until_the_task_wakes_for_something_else() {
        // Submitted, then woken for the read: its result, the write not
        // touched, left to the caller.
        let run = drive(1, Ok(10), 1);
        assert!(matches!(run.answers[..], [None, Some(Some(Ok(5)))]));
        assert_eq!(run.write_polls, 0);
        assert!(run.wrote.is_none());
    }

    #[test]
    fn a_whole_write_seen_on_a_later_wake_is_kept_and_the_read_awaited() {
        // Woken by the check twice before the read completes: the write is
        // looked at once and kept.
        let run = drive(1, Ok(10), 3);
        assert!(matches!(
            run.answers[..],
            [None, None, None, Some(Some(Ok(5)))]
        ));
        assert_eq!(run.write_polls, 1);
        assert!(matches!(run.wrote, Some((Ok(10), _))));
    }

    #[test]
    fn a_short_failed_or_unfinished_write_is_handed_back() {
        for (ready_from, result) in [
            (1, Ok(4)),
            (1, Err(io::ErrorKind::BrokenPipe.into())),
            (usize::MAX, Ok(10)),
        ] {
            let run = drive(ready_from, result, 3);
            assert!(matches!(run.answers[..], [None, Some(None)]));
            assert_eq!(run.write_polls, 1);
        }
    }
}
