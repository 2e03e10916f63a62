//! HTTP/1.1 (RFC 9112): head parsing and validation, body framing, head writing.
//!
//! Parsed heads own their raw bytes and keep only spans into them; nothing of a
//! header is copied. Framing is decided once, at parse time, by the smuggling
//! rules in `framing`, so every later consumer sees one answer.

pub mod body;
mod chunked;
pub(crate) mod fields;
mod framing;
mod head;
pub(crate) mod name;
pub mod request;
pub mod response;
mod target;
pub mod write;

pub use body::BodyDecoder;
pub use fields::HeaderField;
pub use request::{RequestHead, parse_request, parse_request_into};
pub use response::{ResponseHead, parse_response, parse_response_into};
pub use write::{
    ClientResponse, HeaderEdit, UpstreamRequest, reason_phrase, response_head_passes_unchanged,
    write_request_head, write_response_head, write_simple_response,
};

/// The protocol version of a message. Only these two are accepted (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as written on the wire.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// Request method (RFC 9110 §9). Methods are case-sensitive: "get" is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Connect,
    Patch,
    Other,
}

impl Method {
    /// Classify a method token (RFC 9110 §9.1: method names are case-sensitive).
    pub fn from_bytes(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// RFC 9110 §9.2.2: a request that may be repeated without a different
    /// effect, so a proxy may retry it on another server.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

/// How the end of a message body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// Limits applied while parsing a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// The head, from the start line through the final CRLFCRLF, must not be larger.
    pub max_head_size: usize,
    /// At most this many header fields (capped at 256).
    pub max_headers: usize,
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn idempotent_methods_rfc9110_9_2_2() {
        for m in [
            b"GET" as &[u8],
            b"HEAD",
            b"PUT",
            b"DELETE",
            b"OPTIONS",
            b"TRACE",
        ] {
            assert!(Method::from_bytes(m).is_idempotent(), "{m:?}");
        }
        for m in [b"POST" as &[u8], b"PATCH", b"CONNECT", b"PURGE"] {
            assert!(!Method::from_bytes(m).is_idempotent(), "{m:?}");
        }
    }

    #[test]
    fn methods_are_case_sensitive_rfc9110_9_1() {
        assert_eq!(Method::from_bytes(b"get"), Method::Other);
        assert_eq!(Method::from_bytes(b"GET"), Method::Get);
    }
}
