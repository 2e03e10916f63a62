//! Protocol upgrades (RFC 9110 §7.8) and the WebSocket opening handshake as a
//! proxy sees it (RFC 6455 §4.2.1): decide whether a request asks to switch
//! protocols, and refuse a WebSocket handshake the upstream would have to
//! refuse anyway, before an upstream connection is spent on it.
//!
//! Only the client's side is checked: `Sec-WebSocket-Accept`, subprotocols and
//! extensions are between the client and the upstream and pass through.

use crate::h1::fields::list_elements;
use crate::h1::name::Name;
use crate::h1::{Method, RequestHead, Version};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// No upgrade (or an HTTP/1.0 one, which is ignored, RFC 9110 §7.8).
    None,
    /// A valid WebSocket opening handshake.
    WebSocket,
    /// Another protocol in `Upgrade`: the upstream decides.
    Other,
}

/// Why a WebSocket handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("WebSocket handshake with a method other than GET")]
    NotGet,
    #[error("WebSocket handshake with a request body")]
    HasBody,
    #[error("WebSocket handshake without a single Sec-WebSocket-Key")]
    MissingKey,
    #[error("Sec-WebSocket-Key is not the base64 form of 16 bytes")]
    BadKey,
    #[error("Sec-WebSocket-Version is not 13")]
    BadVersion,
}

impl HandshakeError {
    /// 426 for an unsupported version, which RFC 6455 §4.4 answers with the
    /// versions the server does speak; 400 for everything else (§4.2.1).
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::BadVersion => 426,
            _ => 400,
        }
    }
}

/// The header a 426 answer carries (RFC 6455 §4.4).
pub const SUPPORTED_VERSION: (&[u8], &[u8]) = (b"sec-websocket-version", b"13");

/// Classify `head`: an upgrade needs the `upgrade` option in Connection and an
/// Upgrade field in an HTTP/1.1 request (`RequestHead::wants_upgrade`). When
/// Upgrade lists `websocket`, the handshake must be valid (RFC 6455 §4.2.1):
/// GET, a `Sec-WebSocket-Key` that is base64 of 16 bytes, version 13.
pub fn classify_upgrade(head: &RequestHead) -> Result<UpgradeRequest, HandshakeError> {
    if !head.wants_upgrade() || head.version() != Version::Http11 {
        return Ok(UpgradeRequest::None);
    }
    let fields = head.fields();
    let websocket = fields
        .all(Name::Upgrade)
        .flat_map(list_elements)
        .any(|protocol| protocol.eq_ignore_ascii_case(b"websocket"));
    if !websocket {
        return Ok(UpgradeRequest::Other);
    }
    if head.method() != Method::Get {
        return Err(HandshakeError::NotGet);
    }
    // RFC 6455 §4.1: the handshake is a GET without content; a body would be
    // read as WebSocket frames by the upstream after the switch.
    if head.framing() != crate::h1::BodyFraming::Empty {
        return Err(HandshakeError::HasBody);
    }
    let mut keys = fields.all(Name::SecWebSocketKey);
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        _ => return Err(HandshakeError::MissingKey),
    };
    if !is_base64_of_16_bytes(key) {
        return Err(HandshakeError::BadKey);
    }
    let mut versions = fields.all(Name::SecWebSocketVersion);
    match (versions.next(), versions.next()) {
        (Some(b"13"), None) => Ok(UpgradeRequest::WebSocket),
        _ => Err(HandshakeError::BadVersion),
    }
}

/// 16 bytes in base64 (RFC 4648 §4) are 22 significant characters and "==";
/// the last significant character carries 2 bits, its low 4 bits are zero.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c);
    key.len() == 24
        && key[22..] == *b"=="
        && key[..21].iter().all(|&c| value(c).is_some())
        && value(key[21]).is_some_and(|v| v & 0x0f == 0)
}

#[cfg(test)]
mod tests;
