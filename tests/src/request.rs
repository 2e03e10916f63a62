//! Raw request bytes for test clients. Requests are built as bytes, not through a client
//! library, so a test states exactly what goes on the wire, malformed input included.

use crate::backend::chunk;

/// Host header used when a test does not care about it.
pub const HOST: &str = "test.local";

/// `GET target` with only a Host header.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").into_bytes()
}

/// A request with `headers` (a Host is added unless given) and, when `body` is not empty or
/// the method usually has one, a Content-Length body.
pub fn with_body(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = head(method, target, headers);
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A request whose body is sent with `Transfer-Encoding: chunked`, one chunk per element of
/// `chunks`, then the last chunk.
pub fn chunked(method: &str, target: &str, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = head(method, target, headers);
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    for part in chunks {
        out.extend_from_slice(&chunk(part));
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        out.extend_from_slice(format!("Host: {HOST}\r\n").as_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out
}
