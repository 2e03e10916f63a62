//! Requests on both sides of the harness: the client builds its one request
//! once, as bytes sent unchanged for every exchange; the backend parses the
//! heads it receives to find where each request, body included, ends.

use bytes::{BufMut, Bytes, BytesMut};

use crate::framing::BodyDecoder;
use crate::headers::{FramingHeaders, HeaderError};
use crate::response::{MAX_HEAD_SIZE, MAX_HEADERS};

/// What the client sends, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: String,
    /// Origin-form target: path and query (RFC 9112 §3.2.1).
    pub target: String,
    /// Host header value, unless `headers` has one.
    pub host: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of request body, sent with Content-Length.
    pub body_size: usize,
    /// Ask the server to close after each response.
    pub close: bool,
}

/// A request that cannot be written as valid HTTP/1.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("method {0:?} is not an HTTP token")]
    InvalidMethod(String),
    #[error("header name {0:?} is not an HTTP token")]
    InvalidHeaderName(String),
    #[error("value of header {0:?} contains CR, LF or NUL")]
    InvalidHeaderValue(String),
    #[error("header {0:?} is set from --body-size and cannot be given with -H")]
    FramingHeader(String),
}

impl RequestSpec {
    /// The request bytes, head and body. Content-Length is written whenever a
    /// body is sent, and for methods whose requests are expected to carry
    /// content even when it is empty (RFC 9110 §8.6).
    pub fn build(&self) -> Result<Bytes, BuildError> {
        if !is_token(&self.method) {
            return Err(BuildError::InvalidMethod(self.method.clone()));
        }
        let mut user_host = false;
        let mut user_connection = false;
        for (name, value) in &self.headers {
            if !is_token(name) {
                return Err(BuildError::InvalidHeaderName(name.clone()));
            }
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
                return Err(BuildError::InvalidHeaderValue(name.clone()));
            }
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(BuildError::FramingHeader(name.clone()));
            }
            user_host |= name.eq_ignore_ascii_case("host");
            user_connection |= name.eq_ignore_ascii_case("connection");
        }
        let mut out = BytesMut::with_capacity(256 + self.body_size);
        put_all(
            &mut out,
            &[&self.method, " ", &self.target, " HTTP/1.1\r\n"],
        );
        if !user_host {
            put_all(&mut out, &["Host: ", &self.host, "\r\n"]);
        }
        for (name, value) in &self.headers {
            put_all(&mut out, &[name, ": ", value, "\r\n"]);
        }
        if self.close && !user_connection {
            out.put_slice(b"Connection: close\r\n");
        }
        let expects_content = matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if self.body_size > 0 || expects_content {
            put_all(
                &mut out,
                &["Content-Length: ", &self.body_size.to_string(), "\r\n"],
            );
        }
        out.put_slice(b"\r\n");
        out.put_bytes(b'x', self.body_size);
        Ok(out.freeze())
    }

    /// A response to HEAD has no body (RFC 9110 §9.3.2).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

fn put_all(out: &mut BytesMut, parts: &[&str]) {
    for part in parts {
        out.put_slice(part.as_bytes());
    }
}

/// `token = 1*tchar` (RFC 9110 §5.6.2).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A request the backend refuses; the status says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    #[error(transparent)]
    Headers(#[from] HeaderError),
    #[error("request head larger than {MAX_HEAD_SIZE} bytes")]
    TooLarge,
    #[error("WebSocket upgrade without a valid Sec-WebSocket-Key or version 13")]
    BadWebSocketHandshake,
}

impl RequestError {
    /// 431 for oversized heads (RFC 6585 §5), else 400.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge | RequestError::Malformed(httparse::Error::TooManyHeaders) => {
                431
            }
            RequestError::Malformed(_)
            | RequestError::Headers(_)
            | RequestError::BadWebSocketHandshake => 400,
        }
    }
}

/// What the backend needs from a parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head, final CRLF included; the body starts here.
    pub head_len: usize,
    pub body: BodyDecoder,
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body
    /// (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    pub is_head: bool,
    /// A WebSocket opening handshake (RFC 6455 §4.2.1) and its key.
    pub websocket_key: Option<[u8; WS_KEY_LEN]>,
}

/// A `Sec-WebSocket-Key` is 16 bytes in base64 (RFC 6455 §4.1 item 7).
pub const WS_KEY_LEN: usize = 24;

/// Parses a request head from the front of `buf`; `Ok(None)` means more
/// bytes are needed.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_SIZE => {
            return Err(RequestError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(RequestError::Malformed(error)),
    };
    let facts = FramingHeaders::collect(request.headers)?;
    let body = facts.request_body()?;
    let websocket_key = if facts.connection_upgrade {
        websocket_key(request.headers)?
    } else {
        None
    };
    Ok(Some(RequestHead {
        head_len,
        body,
        keep_alive: facts.keep_alive(request.version.unwrap_or_default()),
        expect_continue: facts.expect_continue && minor_at_least_1(request.version),
        is_head: request.method == Some("HEAD"),
        websocket_key,
    }))
}

/// The key of a WebSocket opening handshake: `Upgrade: websocket`, and
/// then a 24-character key and version 13 are required (RFC 6455 §4.2.1).
/// Other upgrades are not taken (`Ok(None)`).
fn websocket_key(
    headers: &[httparse::Header<'_>],
) -> Result<Option<[u8; WS_KEY_LEN]>, RequestError> {
    let (mut upgrade, mut key, mut version) = (false, None, false);
    for header in headers {
        let value = header.value.trim_ascii();
        if header.name.eq_ignore_ascii_case("upgrade") {
            upgrade |= crate::headers::has_token(value, b"websocket");
        } else if header.name.eq_ignore_ascii_case("sec-websocket-key") {
            key = <[u8; WS_KEY_LEN]>::try_from(value).ok();
        } else if header.name.eq_ignore_ascii_case("sec-websocket-version") {
            version = value == b"13";
        }
    }
    match (upgrade, key, version) {
        (false, _, _) => Ok(None),
        (true, Some(key), true) => Ok(Some(key)),
        (true, _, _) => Err(RequestError::BadWebSocketHandshake),
    }
}

/// RFC 9110 §10.1.1: a server ignores 100-continue from HTTP/1.0 clients.
fn minor_at_least_1(version: Option<u8>) -> bool {
    version.is_some_and(|v| v >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RequestSpec {
        RequestSpec {
            method: "GET".into(),
            target: "/x?y=1".into(),
            host: "127.0.0.1:9000".into(),
            headers: Vec::new(),
            body_size: 0,
            close: false,
        }
    }

    #[test]
    fn builds_a_minimal_get() {
        assert_eq!(
            &spec().build().unwrap()[..],
            b"GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n"
        );
    }

    #[test]
    fn builds_body_headers_and_close() {
        let spec = RequestSpec {
            method: "POST".into(),
            headers: vec![
                ("X-A".into(), "1".into()),
                ("host".into(), "example".into()),
            ],
            body_size: 3,
            close: true,
            ..spec()
        };
        assert_eq!(
            &spec.build().unwrap()[..],
            b"POST /x?y=1 HTTP/1.1\r\nX-A: 1\r\nhost: example\r\nConnection: close\r\nContent-Length: 3\r\n\r\nxxx"
        );
        let empty_post = RequestSpec {
            body_size: 0,
            close: false,
            headers: Vec::new(),
            ..spec
        };
        assert!(
            empty_post
                .build()
                .unwrap()
                .ends_with(b"Content-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn built_request_parses_back_with_its_body() {
        let spec = RequestSpec {
            method: "PUT".into(),
            body_size: 10,
            ..spec()
        };
        let bytes = spec.build().unwrap();
        let head = parse_request_head(&bytes).unwrap().unwrap();
        assert_eq!(head.body, BodyDecoder::Length(10));
        assert_eq!(head.head_len + 10, bytes.len());
        assert!(head.keep_alive);
    }

    #[test]
    fn refuses_invalid_requests() {
        let bad_method = RequestSpec {
            method: "G ET".into(),
            ..spec()
        };
        assert!(matches!(
            bad_method.build(),
            Err(BuildError::InvalidMethod(_))
        ));
        let bad_name = RequestSpec {
            headers: vec![("X:Y".into(), "v".into())],
            ..spec()
        };
        assert!(matches!(
            bad_name.build(),
            Err(BuildError::InvalidHeaderName(_))
        ));
        let bad_value = RequestSpec {
            headers: vec![("X".into(), "a\r\nB: c".into())],
            ..spec()
        };
        assert!(matches!(
            bad_value.build(),
            Err(BuildError::InvalidHeaderValue(_))
        ));
        let framing = RequestSpec {
            headers: vec![("Content-Length".into(), "4".into())],
            ..spec()
        };
        assert!(matches!(framing.build(), Err(BuildError::FramingHeader(_))));
    }

    #[test]
    fn parses_request_heads_for_the_backend() {
        assert_eq!(
            parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Ok(None)
        );
        let head = parse_request_head(b"HEAD / HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.is_head);
        assert!(!head.keep_alive);
        assert_eq!(head.body, BodyDecoder::Length(0));
        let head = parse_request_head(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.body, BodyDecoder::chunked());
        assert!(head.expect_continue);
    }

    #[test]
    fn request_errors_map_to_statuses() {
        let smuggle = parse_request_head(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(
            smuggle,
            Err(RequestError::Headers(
                HeaderError::LengthWithTransferEncoding
            ))
        );
        assert_eq!(smuggle.unwrap_err().status(), 400);
        let bad = parse_request_head(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap_err();
        assert_eq!(bad.status(), 400);
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD_SIZE, b'a');
        assert_eq!(parse_request_head(&huge).unwrap_err().status(), 431);
    }
}
