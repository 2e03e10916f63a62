//! The client side of a connection: a plain TCP stream, or (with TLS) a
//! rustls session over one. Everything above this reads and writes through
//! `ClientStream` and never needs to know which; code that can bypass user
//! space (splice) asks for the raw socket with [`ClientStream::tcp`].

use std::io;

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::net::TcpStream;

use crate::tls::TlsStream;

pub enum ClientStream {
    Plain(TcpStream),
    /// An established TLS session; `sni` is the server name the client sent.
    Tls {
        stream: Box<TlsStream>,
        sni: Option<Box<str>>,
    },
}

impl ClientStream {
    /// The raw socket when bytes on it are the application's bytes (not
    /// TLS records), so that they may be spliced.
    pub fn tcp(&mut self) -> Option<&mut TcpStream> {
        match self {
            ClientStream::Plain(stream) => Some(stream),
            ClientStream::Tls { .. } => None,
        }
    }

    /// The raw socket, owned, when bytes on it are the application's bytes;
    /// the stream itself otherwise.
    pub fn into_tcp(self) -> Result<TcpStream, ClientStream> {
        match self {
            ClientStream::Plain(stream) => Ok(stream),
            #[allow(unreachable_patterns)] // TLS streams stay what they are
            other => Err(other),
        }
    }

    /// `$scheme` of requests on this connection.
    pub fn scheme(&self) -> &'static [u8] {
        match self {
            ClientStream::Plain(_) => b"http",
            ClientStream::Tls { .. } => b"https",
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls { .. })
    }

    /// At the end of a response: a TLS session's outgoing buffer, grown for
    /// a large body, returns to its usual size (`TlsStream::release`).
    pub fn release_write_buffer(&mut self) {
        if let ClientStream::Tls { stream, .. } = self {
            stream.release();
        }
    }

    /// The SNI of a TLS connection, if the client sent one.
    pub fn sni(&self) -> Option<&[u8]> {
        match self {
            ClientStream::Plain(_) => None,
            ClientStream::Tls { sni, .. } => sni.as_deref().map(str::as_bytes),
        }
    }
}

// SAFETY: every variant wraps a stream that is itself `Split` (TcpStream;
// `TlsStream`, whose reads and writes use separate buffers), and
// these impls only forward each call to the variant, so a read and a write
// in flight at the same time touch independent state, as `Split` requires.
unsafe impl Split for ClientStream {}

impl AsyncReadRent for ClientStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(stream) => stream.read(buf).await,
            ClientStream::Tls { stream, .. } => stream.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(stream) => stream.readv(buf).await,
            ClientStream::Tls { stream, .. } => stream.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for ClientStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(stream) => stream.write(buf).await,
            ClientStream::Tls { stream, .. } => stream.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(stream) => stream.writev(buf).await,
            ClientStream::Tls { stream, .. } => stream.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(stream) => stream.flush().await,
            ClientStream::Tls { stream, .. } => stream.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(stream) => stream.shutdown().await,
            ClientStream::Tls { stream, .. } => stream.shutdown().await,
        }
    }
}
