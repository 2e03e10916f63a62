//! Moving bytes between two sockets with `splice(2)` through a pipe, so the
//! payload never enters user space (io_uring driver only: monoio submits the
//! splices as io_uring operations).
//!
//! A pipe holds data only while one transfer is in flight: it is taken from
//! the worker's [`PipePool`] when the source has bytes, emptied into the
//! destination, and given back. An idle tunnel therefore holds no pipe and no
//! buffer, only its two sockets. A pipe that could not be emptied (the
//! destination failed) still holds bytes and is closed instead of pooled.
//!
//! io_uring runs splice in its worker threads, where a splice on a socket
//! without data would block a thread for as long as the peer is silent. So a
//! transfer first waits for readability with a poll (no thread), and only
//! then splices what is already there.

use std::cell::RefCell;
use std::io;

use monoio::io::as_fd::{AsReadFd, AsWriteFd};
use monoio::io::splice::{SpliceDestination, SpliceSource};
use monoio::net::Pipe;
use monoio::net::unix::new_pipe;

/// Bytes moved per splice into the pipe: the default pipe capacity (16
/// pages), so a splice into an empty pipe never has to wait for room.
pub const PIPE_CHUNK: u32 = 64 * 1024;

/// Pipes kept per worker for reuse: enough for the transfers one worker has in
/// flight at once; more are created (and closed afterwards) when needed.
const POOL_LIMIT: usize = 64;

/// The two ends of one pipe.
pub struct PipePair {
    read: Pipe,
    write: Pipe,
}

impl PipePair {
    pub fn new() -> io::Result<PipePair> {
        let (read, write) = new_pipe()?;
        Ok(PipePair { read, write })
    }
}

/// Empty pipes of one worker.
#[derive(Default)]
pub struct PipePool {
    idle: RefCell<Vec<PipePair>>,
}

impl PipePool {
    pub fn take(&self) -> io::Result<PipePair> {
        match self.idle.borrow_mut().pop() {
            Some(pipe) => Ok(pipe),
            None => PipePair::new(),
        }
    }

    /// Return an empty pipe.
    pub fn put(&self, pipe: PipePair) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < POOL_LIMIT {
            idle.push(pipe);
        }
    }
}

/// Move what `from` has (up to `max` bytes, at most [`PIPE_CHUNK`]) through
/// `pipe` into `to`, all of it. Returns the bytes moved; 0 means `from` is at
/// end of stream. `pipe` is empty again on `Ok`, and on a `WouldBlock` from a
/// non-blocking source that had nothing after all; on other errors it may
/// still hold bytes.
pub async fn splice_once<R: AsReadFd, W: AsWriteFd>(
    from: &mut R,
    to: &mut W,
    pipe: &mut PipePair,
    max: u64,
) -> io::Result<usize> {
    let filled = fill(from, pipe, max).await?;
    drain(to, pipe, filled).await?;
    Ok(filled as usize)
}

/// Splice what `from` has, up to `max` bytes (at most [`PIPE_CHUNK`]), into
/// the empty `pipe`. Returns the bytes now in the pipe; 0 means end of stream.
pub async fn fill<R: AsReadFd>(from: &mut R, pipe: &mut PipePair, max: u64) -> io::Result<u32> {
    let len = max.min(u64::from(PIPE_CHUNK)) as u32;
    loop {
        match from.splice_to_pipe(&mut pipe.write, len).await {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Splice the `filled` bytes `pipe` holds into `to`, all of them.
pub async fn drain<W: AsWriteFd>(
    to: &mut W,
    pipe: &mut PipePair,
    mut filled: u32,
) -> io::Result<()> {
    while filled > 0 {
        match to.splice_from_pipe(&mut pipe.read, filled).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => filled -= n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Move exactly `len` bytes from `from` to `to` (a length-delimited body);
/// an early end of stream is an error. The caller waits for readability
/// first when the source may stay silent (see the module comment).
pub async fn splice_exact<R: AsReadFd, W: AsWriteFd>(
    from: &mut R,
    to: &mut W,
    mut len: u64,
    pipe: &mut PipePair,
) -> io::Result<()> {
    while len > 0 {
        match splice_once(from, to, pipe, len).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => len -= n as u64,
        }
    }
    Ok(())
}
