//! Opening a connection, plain or TLS. The connection loops are generic
//! over `Dial`, so the plain TCP path is compiled on its own and carries no
//! branch or indirection for TLS.

use std::net::SocketAddr;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::pki_types::ServerName;

use crate::report::ErrorKind;

/// Opens one connection to the target, ready for HTTP bytes.
pub(super) trait Dial {
    type Stream: AsyncReadRent + AsyncWriteRent + 'static;

    /// A refused or failed TCP connect is `Connect`, a failed TLS
    /// handshake (verification included) is `Tls`.
    async fn dial(&self, addr: SocketAddr) -> Result<Self::Stream, ErrorKind>;
}

/// Plain TCP.
pub(super) struct Plain;

impl Dial for Plain {
    type Stream = TcpStream;

    async fn dial(&self, addr: SocketAddr) -> Result<TcpStream, ErrorKind> {
        tcp(addr).await
    }
}

/// TLS over TCP, SNI and verification for `name`.
pub(super) struct Tls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl Dial for Tls {
    type Stream = ClientTlsStream<TcpStream>;

    async fn dial(&self, addr: SocketAddr) -> Result<Self::Stream, ErrorKind> {
        let stream = tcp(addr).await?;
        self.connector
            .connect(self.name.clone(), stream)
            .await
            .map_err(|_| ErrorKind::Tls)
    }
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, ErrorKind> {
    let stream = TcpStream::connect_addr(addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Nagle's algorithm would hold small requests back and add delays that
    // the server under test never caused.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
