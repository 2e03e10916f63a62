//! Moving bytes between two sockets with `splice(2)` through a pipe, so the
//! payload never enters user space.
//!
//! The splices are plain system calls on non-blocking descriptors, made when
//! the worker knows (or guesses) that they will not wait, and readiness is
//! awaited through the runtime when they would. Not io_uring operations:
//! io_uring runs every splice in a worker thread of its own, and those thread
//! hops cost more than the copies splice saves (1 MiB bodies, one worker:
//! 588 µs of proxy CPU per request through io_uring's splice, 226 µs by
//! direct calls, 646 µs for the copying floor relay; docs/benchmarks.md).
//! So both drivers splice.
//!
//! A pipe holds data only while a transfer is in flight: it is taken from the
//! worker's [`PipePool`] when the source has bytes and given back once empty.
//! An idle tunnel therefore holds no pipe and no buffer, only its two
//! sockets. A pipe that could not be emptied (the destination failed or the
//! transfer was abandoned) still holds bytes and is closed instead of pooled.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The capacity asked of each pipe: large enough that a loopback socket's
/// usual backlog moves in one splice each way, small enough that a worker's
/// pooled pipes stay well inside the per-user pipe allowance
/// (`/proc/sys/fs/pipe-user-pages-soft`). If the kernel refuses (an
/// unprivileged user over `pipe-max-size`), the pipe keeps what it has.
const PIPE_SIZE: usize = 256 * 1024;

/// Pipes kept per worker for reuse: enough for the transfers one worker has in
/// flight at once; more are created (and closed afterwards) when needed.
const POOL_LIMIT: usize = 64;

/// A pipe and the bytes it holds.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    held: usize,
}

/// A failed splice, and at which end.
#[derive(Debug)]
pub enum Failed {
    Source(io::Error),
    Destination(io::Error),
}

/// Why [`Pipe::transfer`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// All the bytes asked for were moved; the pipe is empty.
    Done,
    /// The source ended its stream and the pipe is empty.
    End,
    /// The source has nothing now (or most likely nothing: it gave less than
    /// asked) and the pipe is empty: wait until it is readable.
    SourceEmpty,
    /// The destination takes nothing now and the pipe holds bytes: wait until
    /// it is writable.
    DestinationFull,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is the array of two descriptors pipe2 fills.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // The size asked for, or the default if the kernel refuses it.
        let fd = write.as_raw_fd();
        let capacity = match pipe_fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) {
            sized if sized > 0 => sized,
            _ => pipe_fcntl(fd, libc::F_GETPIPE_SZ, 0),
        };
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(0).max(4096),
            held: 0,
        })
    }

    /// Bytes in the pipe, taken from the source but not yet given to the
    /// destination.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Move up to `*left` bytes from `source` to `destination` without
    /// waiting, as far as both sockets allow; `*left` counts down what was
    /// taken from the source. Returns why it stopped and the bytes given to
    /// the destination. Both sockets must be non-blocking (see
    /// [`set_nonblocking`]), or a call could stall the worker.
    pub fn transfer(
        &mut self,
        source: RawFd,
        destination: RawFd,
        left: &mut u64,
    ) -> Result<(Step, u64), Failed> {
        let mut given = 0;
        // The last splice from the source took less than asked: the source
        // has most likely nothing more, and asking again would cost a call
        // that fails. (If it has, the readiness wait returns at once.)
        let mut short = false;
        loop {
            if *left > 0 && self.held < self.capacity && !short {
                let ask =
                    (self.capacity - self.held).min(usize::try_from(*left).unwrap_or(usize::MAX));
                match splice(source, self.write.as_raw_fd(), ask) {
                    // Only into an empty pipe does nothing mean the end: a
                    // pipe whose pages are all taken (by small segments,
                    // before its bytes run out) also takes nothing.
                    Ok(0) if self.held == 0 => return Ok((Step::End, given)),
                    Ok(0) => {}
                    Ok(n) => {
                        self.held += n;
                        *left -= n as u64;
                        short = n < ask;
                    }
                    // The source is empty, or the pipe full after all: drain
                    // what it holds first.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.held == 0 {
                            return Ok((Step::SourceEmpty, given));
                        }
                    }
                    Err(e) => return Err(Failed::Source(e)),
                }
            }
            if self.held > 0 {
                match splice(self.read.as_raw_fd(), destination, self.held) {
                    Ok(0) => return Err(Failed::Destination(io::ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        self.held -= n;
                        given += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok((Step::DestinationFull, given));
                    }
                    Err(e) => return Err(Failed::Destination(e)),
                }
            }
            if self.held == 0 {
                if *left == 0 {
                    return Ok((Step::Done, given));
                }
                if short {
                    return Ok((Step::SourceEmpty, given));
                }
            }
        }
    }
}

/// fcntl(2) with an integer argument, for the pipe size commands.
fn pipe_fcntl(fd: RawFd, command: libc::c_int, arg: libc::c_int) -> libc::c_int {
    // SAFETY: the size commands take an integer, not a pointer; an invalid
    // descriptor or command is reported as -1.
    unsafe { libc::fcntl(fd, command, arg) }
}

/// One splice(2) that does not wait on the pipe (the sockets are
/// non-blocking themselves). Never with SPLICE_F_MORE: the kernel already
/// marks all but the last page of a call as more to come, and a hint past
/// the call would hold a socket's last partial segment back until the
/// source sends again (measured: WebSocket echo p99 11.8 -> 46.8 ms).
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    loop {
        // SAFETY: both descriptors are open for the call (the caller holds
        // the sockets, the pipe its ends); null offsets, as sockets and pipes
        // require.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Make a socket's own operations non-blocking (`O_NONBLOCK`), as
/// [`Pipe::transfer`] needs. The epoll driver's sockets already are; on
/// io_uring the flag changes nothing for the ring's operations, which decide
/// for themselves whether to wait.
pub fn set_nonblocking(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int through the pointer, which is valid.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONBIO, &on) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Empty pipes of one worker.
#[derive(Default)]
pub struct PipePool {
    idle: RefCell<Vec<Pipe>>,
}

impl PipePool {
    pub fn take(&self) -> io::Result<Pipe> {
        match self.idle.borrow_mut().pop() {
            Some(pipe) => Ok(pipe),
            None => Pipe::new(),
        }
    }

    /// Return a pipe: kept if it is empty and the pool has room, else closed.
    pub fn put(&self, pipe: Pipe) {
        let mut idle = self.idle.borrow_mut();
        if pipe.held == 0 && idle.len() < POOL_LIMIT {
            idle.push(pipe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    /// source writer -> [source] -> pipe -> [destination] -> reader
    fn sockets() -> (TcpStream, TcpStream, TcpStream, TcpStream) {
        let (writer, source) = pair();
        let (destination, reader) = pair();
        source.set_nonblocking(true).unwrap();
        destination.set_nonblocking(true).unwrap();
        (writer, source, destination, reader)
    }

    #[test]
    fn moves_exactly_what_is_asked_and_leaves_the_rest() {
        let (mut writer, source, destination, mut reader) = sockets();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        writer.write_all(&data).unwrap();
        let mut pipe = Pipe::new().unwrap();
        let mut left = 60_000;
        let mut given = 0;
        while left > 0 {
            let (step, n) = pipe
                .transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left)
                .unwrap();
            given += n;
            assert!(step == Step::Done || step == Step::SourceEmpty, "{step:?}");
        }
        assert_eq!((given, pipe.held()), (60_000, 0));
        let mut got = vec![0; 60_000];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(got, data[..60_000]);
        // The rest is still in the source socket.
        let mut rest = vec![0; 40_000];
        let mut source = source;
        source.set_nonblocking(false).unwrap();
        source.read_exact(&mut rest).unwrap();
        assert_eq!(rest, data[60_000..]);
    }

    #[test]
    fn an_empty_source_and_a_closed_one_are_told_apart() {
        let (mut writer, source, destination, mut reader) = sockets();
        let mut pipe = Pipe::new().unwrap();
        let mut left = u64::MAX;
        let step = pipe.transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left);
        assert_eq!(step.unwrap(), (Step::SourceEmpty, 0));
        writer.write_all(b"last words").unwrap();
        drop(writer);
        let mut given = 0;
        loop {
            let (step, n) = pipe
                .transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left)
                .unwrap();
            given += n;
            if step == Step::End {
                break;
            }
            assert_eq!(step, Step::SourceEmpty);
        }
        assert_eq!(given, 10);
        let mut got = [0; 10];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"last words");
    }

    #[test]
    fn a_full_destination_keeps_the_bytes_in_the_pipe() {
        let (mut writer, source, destination, mut reader) = sockets();
        let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
        let feeder = std::thread::spawn(move || writer.write_all(&data).map(|()| data));
        let mut pipe = Pipe::new().unwrap();
        let mut left = 8_000_000;
        // Nobody reads: the destination fills up and the pipe holds the rest.
        let full = loop {
            match pipe.transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left) {
                Ok((Step::DestinationFull, _)) => break true,
                Ok((Step::SourceEmpty, _)) => {}
                other => panic!("{other:?}"),
            }
        };
        assert!(full && pipe.held() > 0);
        // Then the reader drains everything, byte-exact.
        let drained = std::thread::spawn(move || {
            let mut got = vec![0; 8_000_000];
            reader.read_exact(&mut got).map(|()| got)
        });
        while left > 0 || pipe.held() > 0 {
            pipe.transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left)
                .unwrap();
        }
        let data = feeder.join().unwrap().unwrap();
        assert_eq!(drained.join().unwrap().unwrap(), data);
    }

    #[test]
    fn a_pipe_full_of_small_segments_is_not_the_end() {
        let (mut writer, source, destination, mut reader) = sockets();
        writer.set_nodelay(true).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
        for piece in data.chunks(100) {
            writer.write_all(piece).unwrap();
        }
        let drained = std::thread::spawn(move || {
            let mut got = vec![0; 300_000];
            reader.read_exact(&mut got).map(|()| got)
        });
        let mut pipe = Pipe::new().unwrap();
        let mut left = 300_000;
        while left > 0 || pipe.held() > 0 {
            let step = pipe.transfer(source.as_raw_fd(), destination.as_raw_fd(), &mut left);
            assert!(!matches!(step, Ok((Step::End, _)) | Err(_)), "{step:?}");
        }
        assert_eq!(drained.join().unwrap().unwrap(), data);
    }

    #[test]
    fn only_empty_pipes_are_pooled() {
        let pool = PipePool::default();
        let mut pipe = pool.take().unwrap();
        pool.put(pool.take().unwrap());
        assert_eq!(pool.idle.borrow().len(), 1);
        pipe.held = 1;
        pool.put(pipe);
        assert_eq!(pool.idle.borrow().len(), 1);
    }
}
