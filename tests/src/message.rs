//! HTTP/1.1 messages as the tests see them, and the framing rules used to read them.
//!
//! These are an independent reading of RFC 9112 §6.3, deliberately strict: whatever ringway
//! sends must be unambiguous, so anything a lenient reader would have to guess at is an error.

use crate::http::ReadError;

/// Header fields in the order received; names keep their case, lookups ignore it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field named `name` (case-insensitive), in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(crate) fn from_httparse(fields: &[httparse::Header<'_>]) -> Headers {
        Headers(
            fields
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )
    }
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A request as a mock backend received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Headers,
    pub framing: Framing,
    /// The decoded payload, kept only when the backend asked for it.
    pub body: Vec<u8>,
    pub body_len: u64,
    /// FNV-1a of the payload; that of an empty body when the payload was only counted.
    pub body_hash: u64,
    /// Which accepted connection (0-based, per backend) carried the request.
    pub connection: usize,
}

/// A response head as a client received it.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

/// A complete response as a client received it.
#[derive(Debug, Clone)]
pub struct Response {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub framing: Framing,
    pub body: Vec<u8>,
    /// Status codes of the interim (1xx) responses that came before this one.
    pub interim: Vec<u16>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// FNV-1a, 64 bit: enough to tell two bodies apart in a test, cheap to compute incrementally.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }

    pub fn of(bytes: &[u8]) -> u64 {
        let mut h = Fnv::default();
        h.update(bytes);
        h.finish()
    }
}

fn parse_length(value: &str) -> Result<u64, ReadError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ReadError::Malformed(format!("Content-Length {value:?}")));
    }
    value
        .parse()
        .map_err(|_| ReadError::Malformed(format!("Content-Length {value:?}")))
}

/// The framing a backend applies to what the proxy sent it: TE chunked, else Content-Length,
/// else no body (RFC 9112 §6.3). Anything ambiguous is a failure of the proxy, reported as such.
pub(crate) fn request_framing(headers: &Headers) -> Result<Framing, ReadError> {
    let te = headers.get_all("transfer-encoding");
    let cl = headers.get_all("content-length");
    if !te.is_empty() && !cl.is_empty() {
        return Err(ReadError::Malformed(
            "proxy sent Transfer-Encoding with Content-Length".into(),
        ));
    }
    if !te.is_empty() {
        if te.len() == 1 && te[0].trim().eq_ignore_ascii_case("chunked") {
            return Ok(Framing::Chunked);
        }
        return Err(ReadError::Malformed(format!(
            "proxy sent Transfer-Encoding {te:?}"
        )));
    }
    match cl.as_slice() {
        [] => Ok(Framing::None),
        [one] => Ok(Framing::Length(parse_length(one.trim())?)),
        _ => Err(ReadError::Malformed(format!(
            "proxy sent several Content-Length {cl:?}"
        ))),
    }
}

/// RFC 9112 §6.3 for responses: HEAD, 1xx, 204 and 304 have no body; chunked; length; else
/// the body runs until the connection closes.
pub fn response_framing(method: &str, head: &ResponseHead) -> Result<Framing, ReadError> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
    {
        return Ok(Framing::None);
    }
    let te = head.headers.get_all("transfer-encoding");
    let cl = head.headers.get_all("content-length");
    if !te.is_empty() && !cl.is_empty() {
        return Err(ReadError::Malformed(
            "response with Transfer-Encoding and Content-Length".into(),
        ));
    }
    if let Some(last) = te.last() {
        let final_coding = last.rsplit(',').next().unwrap_or_default().trim();
        return Ok(if final_coding.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    match cl.as_slice() {
        [] => Ok(Framing::UntilClose),
        [one] => Ok(Framing::Length(parse_length(one.trim())?)),
        _ => Err(ReadError::Malformed(format!(
            "response with several Content-Length {cl:?}"
        ))),
    }
}
