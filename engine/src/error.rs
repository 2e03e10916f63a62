//! `ProxyError`: what went wrong while serving one request, which side failed,
//! and the one place that maps a failure to the status the client sees.

use ringway_protocol::ProtocolError;

/// Which peer a failure came from. Decides the status and whether the
/// connection to the client can continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client sent something DESIGN.md §4 rejects.
    #[error("client: {0}")]
    ClientProtocol(ProtocolError),
    /// The client went away or its socket failed; nothing can be answered.
    #[error("client I/O: {0}")]
    ClientIo(std::io::Error),
    /// The client was too slow sending its body.
    #[error("client timed out sending the body")]
    ClientTimeout,
    /// Connecting to every candidate server failed.
    #[error("upstream connect: {0}")]
    Connect(std::io::Error),
    #[error("upstream connect timed out")]
    ConnectTimeout,
    /// The upstream closed or reset before a complete response head.
    /// `retryable`: no byte of a response arrived, so the request may be sent
    /// again if it can be replayed (no body consumed, or idempotent without body).
    #[error("upstream closed before responding: {source}")]
    UpstreamClosed {
        source: std::io::Error,
        retryable: bool,
    },
    #[error("upstream timed out")]
    UpstreamTimeout,
    #[error("upstream sent a malformed response: {0}")]
    UpstreamProtocol(ProtocolError),
    /// The upstream failed after the response head was sent to the client:
    /// the only honest signal left is closing the client connection.
    #[error("upstream failed mid-response: {0}")]
    UpstreamMidResponse(String),
}

impl ProxyError {
    pub fn side(&self) -> Side {
        match self {
            ProxyError::ClientProtocol(_) | ProxyError::ClientIo(_) | ProxyError::ClientTimeout => {
                Side::Client
            }
            _ => Side::Upstream,
        }
    }

    /// The status answered to the client, if an answer is still possible
    /// (DESIGN.md §4). `None`: close without answering.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProxyError::ClientProtocol(e) => Some(e.status()),
            ProxyError::ClientIo(_) | ProxyError::UpstreamMidResponse(_) => None,
            ProxyError::ClientTimeout => Some(408),
            ProxyError::Connect(_) | ProxyError::UpstreamClosed { .. } => Some(502),
            ProxyError::ConnectTimeout | ProxyError::UpstreamTimeout => Some(504),
            ProxyError::UpstreamProtocol(_) => Some(502),
        }
    }
}
