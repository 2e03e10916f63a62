//! ringway-protocol: sans-IO HTTP/1.1 for the ringway reverse proxy.
//!
//! Bytes in, decisions and bytes out; no socket, no runtime, no clock.
//! `h1` parses and validates request and response heads (strictly: every
//! ambiguity a request-smuggling attack could use is an error with its status),
//! decides body framing once (RFC 9112 §6.3), walks bodies with a push decoder
//! that accepts input split at any byte, and writes heads into reused buffers.
//! `forward` owns the hop-by-hop and X-Forwarded-* rules, `path` the routing
//! path normalisation, `upgrade` the upgrade and WebSocket handshake checks. Parsed heads keep spans into their own `Bytes`; no
//! header byte is copied.

pub mod error;
pub mod forward;
pub mod h1;
pub mod path;
pub mod upgrade;

pub use error::ProtocolError;
pub use forward::{Forwarded, connection_lines, is_forwarding_header, is_hop_by_hop};
pub use h1::{
    BodyDecoder, BodyFraming, ClientResponse, HeadLimits, HeaderEdit, HeaderField, Method,
    RequestHead, ResponseHead, UpstreamRequest, Version, parse_request, parse_request_into,
    parse_response, parse_response_into, reason_phrase, response_head_passes_unchanged,
    write_request_head, write_response_head, write_simple_response,
};
pub use path::normalize_path;
pub use upgrade::{HandshakeError, UpgradeRequest, classify_upgrade};
