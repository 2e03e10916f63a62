//! Listening sockets: one SO_REUSEPORT socket per worker per address, so the
//! kernel spreads connections over workers and no worker ever touches another's
//! accept queue.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of every listening socket; the kernel caps it at somaxconn.
const BACKLOG: i32 = 4096;

/// TCP_DEFER_ACCEPT: a connection is handed to a worker once its first bytes
/// (a request head, a TLS ClientHello, a PROXY header) have arrived, or after
/// about this many seconds of silence. Every protocol ringway speaks has the
/// client speak first, so a worker's first read finds data instead of arming
/// a poll and waiting for it (nginx's `listen ... deferred`, HAProxy's
/// `defer-accept`): 3 to 9 % less CPU per new connection in interleaved runs
/// (docs/benchmarks.md). A client that stays silent is accepted after the
/// deferral and then gets `header_timeout` as before; TCP health checks that
/// connect and close never reach a worker.
const DEFER_ACCEPT_SECS: libc::c_int = 1;

/// The sockets for one listen address, one per worker.
#[derive(Debug)]
pub struct BoundAddress {
    /// The address as bound: a configured port 0 is replaced by the port the
    /// kernel chose for the first socket, shared by all the others.
    pub addr: SocketAddr,
    pub sockets: Vec<std::net::TcpListener>,
}

/// Bind `workers` sockets on `addr` with SO_REUSEPORT.
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<BoundAddress> {
    let mut sockets = Vec::with_capacity(workers);
    let mut bound = addr;
    for _ in 0..workers {
        let socket = reuseport_socket(bound)?;
        if bound.port() == 0 {
            bound = socket.local_addr()?;
        }
        sockets.push(socket);
    }
    Ok(BoundAddress {
        addr: bound,
        sockets,
    })
}

fn reuseport_socket(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // `[::]:80` and `0.0.0.0:80` are separate entries in the config, as in nginx.
        socket.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux clones
    // the listening socket's options), so no connection needs a setsockopt
    // of its own.
    socket.set_nodelay(true)?;
    if let Err(e) = defer_accept(&socket) {
        tracing::debug!(%addr, "TCP_DEFER_ACCEPT: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn defer_accept(socket: &Socket) -> io::Result<()> {
    let secs = DEFER_ACCEPT_SECS;
    // SAFETY: `socket` owns an open TCP socket fd; the option value is a
    // c_int, passed with its size, and only read during the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const secs).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Write};
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    use super::bind;

    #[test]
    fn accepted_connections_have_tcp_nodelay_from_their_listener() {
        let bound = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let listener = &bound.sockets[0];
        let mut client = TcpStream::connect(bound.addr).unwrap();
        // Deferred accept: the connection is queued once it has sent something.
        client.write_all(b"GET").unwrap();
        // The listener is non-blocking: wait for the connection to arrive.
        let accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn listeners_defer_accept_until_the_client_speaks() {
        let bound = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let mut secs: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an open listening socket; `secs` and `len` are valid for
        // writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                bound.sockets[0].as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&raw mut secs).cast(),
                &raw mut len,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        assert!(secs > 0, "TCP_DEFER_ACCEPT is {secs}");
        // A connection that has sent nothing is not handed out yet.
        let _silent = TcpStream::connect(bound.addr).unwrap();
        // Time for the handshake to complete (a spin: tests share the rule
        // that no thread sleeps).
        let until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        let early = bound.sockets[0].accept();
        assert!(
            matches!(&early, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "a silent connection was accepted: {early:?}"
        );
    }
}
