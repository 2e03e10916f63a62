//! Listening sockets: one SO_REUSEPORT socket per worker per address, so the
//! kernel spreads connections over workers and no worker ever touches another's
//! accept queue.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of every listening socket; the kernel caps it at somaxconn.
const BACKLOG: i32 = 4096;

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
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::TcpStream;

    use super::bind;

    #[test]
    fn accepted_connections_have_tcp_nodelay_from_their_listener() {
        let bound = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let listener = &bound.sockets[0];
        let _client = TcpStream::connect(bound.addr).unwrap();
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
}
