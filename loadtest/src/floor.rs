//! The floor: an L4 relay that maps each client connection to one upstream
//! connection and copies bytes both ways, parsing nothing. Every HTTP/1.1
//! proxy does at least this work per request (two sockets, a read and a
//! write per direction), so its CPU per request is the physical limit that
//! `compare` reads every proxy's figure against. Thread-per-core on monoio
//! like the engine (`server`), io_uring when the kernel has it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use monoio::time::timeout;

use crate::runtime::DriverChoice;
use crate::server::{ServeConfig, ServeError, Servers, StopSignals};

/// Bytes moved per read; as large as a proxy's body buffer, so that large
/// bodies cross in few operations.
const COPY_BUFFER: usize = 64 * 1024;
/// An upstream that does not accept in this time fails the client connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct FloorConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub threads: usize,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
    /// Parse each request and response as the least HTTP/1.1 proxy would
    /// (`http_floor`) instead of relaying bytes.
    pub http: bool,
}

/// A running relay; dropping it leaves the threads relaying.
pub struct Floor {
    servers: Servers,
}

impl Floor {
    /// Binds every thread's listener, then starts relaying.
    pub fn start(config: &FloorConfig) -> Result<Floor, ServeError> {
        let serve = ServeConfig {
            listen: config.listen,
            threads: config.threads,
            pin_cpus: config.pin_cpus.clone(),
            driver: config.driver,
            name: "ringway-floor",
        };
        let upstream = config.upstream;
        let http = config.http;
        let servers = Servers::start(
            &serve,
            move || upstream,
            move |upstream, client| async move {
                if http {
                    crate::http_floor::relay(client, *upstream).await
                } else {
                    relay(client, *upstream).await
                }
            },
        )?;
        Ok(Floor { servers })
    }

    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.servers.addr()
    }

    /// Stops accepting, drops every connection and waits for the threads.
    pub fn stop(self) -> io::Result<()> {
        self.servers.stop()
    }

    /// Relays until a thread fails or the process gets SIGTERM or SIGINT.
    pub fn wait(self, signals: StopSignals) -> io::Result<()> {
        self.servers.wait(signals)
    }
}

/// Connects to the upstream and copies both ways until both sides are done.
/// A side that ends its stream gets the other side's write half shut down,
/// so half-closes pass through as they would through a proxy.
async fn relay(client: TcpStream, upstream: SocketAddr) {
    let Ok(Ok(server)) = timeout(CONNECT_TIMEOUT, TcpStream::connect_addr(upstream)).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    monoio::join!(
        copy(&mut client_read, &mut server_write),
        copy(&mut server_read, &mut client_write)
    );
}

/// Copies until end of stream or an error, then shuts the writer down.
async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(reader: &mut R, writer: &mut W) {
    let mut buf = Vec::with_capacity(COPY_BUFFER);
    loop {
        buf.clear();
        let (read, back) = reader.read(buf).await;
        buf = back;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let (written, back) = writer.write_all(buf).await;
        buf = back;
        if written.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}
