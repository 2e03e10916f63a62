//! The server side of a TLS handshake on a freshly accepted socket, driven by
//! hand on rustls's `ServerConnection` so that the first byte can be looked at
//! and the SNI kept; the established session is then handed to
//! `monoio_rustls`'s stream for the requests.
//!
//! A client that speaks plain HTTP to the TLS port gets nginx's 400 "The plain
//! HTTP request was sent to HTTPS port" instead of a hang: every TLS connection
//! starts with a handshake record, content type 22 (RFC 8446 §5.1).

use std::io;
use std::sync::Arc;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::TlsStream;
use super::stream::OUTGOING_KEEP;

/// TLS record content type `handshake` (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;
/// One TLS record's worth: the plaintext a client sends after its Finished in
/// the same read then stays within rustls's 16 KiB received-plaintext limit.
const READ_SIZE: usize = 16 * 1024;

/// How a handshake ended.
pub enum Accepted {
    /// Established; `sni` is the name the client asked for, if any.
    Tls {
        stream: Box<TlsStream>,
        sni: Option<Box<str>>,
    },
    /// The first byte was not a TLS handshake record: plain HTTP, probably.
    Plain(TcpStream),
}

/// Handshake on `tcp` with `config`. The caller bounds it with a timeout.
pub async fn accept(mut tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Accepted> {
    let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut incoming = Vec::with_capacity(READ_SIZE);
    let mut outgoing = Vec::with_capacity(OUTGOING_KEEP);
    let mut first = true;
    loop {
        while conn.wants_write() {
            outgoing.clear();
            conn.write_tls(&mut outgoing)?;
            let (result, buf) = tcp.write_all(outgoing).await;
            outgoing = buf;
            result?;
        }
        if !conn.is_handshaking() {
            break;
        }
        incoming.clear();
        let (result, buf) = tcp.read(incoming).await;
        incoming = buf;
        if result? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if first {
            first = false;
            if incoming[0] != HANDSHAKE_RECORD {
                return Ok(Accepted::Plain(tcp));
            }
        }
        let mut rest = &incoming[..];
        while !rest.is_empty() {
            if conn.read_tls(&mut rest)? == 0 {
                break;
            }
            if let Err(error) = conn.process_new_packets() {
                // Tell the client why (the alert rustls queued), then give up.
                outgoing.clear();
                if conn.write_tls(&mut outgoing).is_ok() && !outgoing.is_empty() {
                    let _ = tcp.write_all(outgoing).await;
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }
    let sni = conn.server_name().map(Box::from);
    Ok(Accepted::Tls {
        stream: Box::new(TlsStream::new(tcp, conn, incoming, outgoing)),
        sni,
    })
}
