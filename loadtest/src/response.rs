//! Response heads as the load generator reads them: status, where the head
//! ends, how the body is framed and whether the connection stays open.

use crate::framing::BodyDecoder;
use crate::headers::{FramingHeaders, HeaderError};

/// Header fields accepted in one head; more is a protocol error.
pub const MAX_HEADERS: usize = 64;
/// A head that has not ended after this many bytes is a protocol error.
pub const MAX_HEAD_SIZE: usize = 64 * 1024;

/// A response the load generator cannot make sense of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response head: {0}")]
    Malformed(httparse::Error),
    #[error(transparent)]
    Headers(#[from] HeaderError),
    #[error("response head larger than {MAX_HEAD_SIZE} bytes")]
    TooLarge,
    #[error("101 Switching Protocols to a request that asked for no upgrade")]
    UnexpectedUpgrade,
}

/// What the client needs from a parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the head, final CRLF included; the body starts here.
    pub head_len: usize,
    pub body: BodyDecoder,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// 1xx responses precede the final response to the same request
    /// (RFC 9110 §15.2).
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// 2xx and 3xx count as successes, as wrk counts them.
    pub fn is_success(&self) -> bool {
        (200..400).contains(&self.status)
    }
}

/// Parses a response head from the front of `buf`; `Ok(None)` means more
/// bytes are needed. `request_was_head` is needed because a response to HEAD
/// has no body whatever its headers say (RFC 9112 §6.3 rule 1).
pub fn parse_response_head(
    buf: &[u8],
    request_was_head: bool,
) -> Result<Option<ResponseHead>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_SIZE => {
            return Err(ResponseError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(ResponseError::Malformed(error)),
    };
    // httparse fills code and version whenever the head is complete.
    let status = response.code.unwrap_or_default();
    let minor_version = response.version.unwrap_or_default();
    if status == 101 {
        return Err(ResponseError::UnexpectedUpgrade);
    }
    let facts = FramingHeaders::collect(response.headers)?;
    let body = if request_was_head || (100..200).contains(&status) || status == 204 || status == 304
    {
        BodyDecoder::Empty
    } else {
        facts.response_body()
    };
    let keep_alive = facts.keep_alive(minor_version) && body != BodyDecoder::UntilClose;
    Ok(Some(ResponseHead {
        status,
        head_len,
        body,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<ResponseHead>, ResponseError> {
        parse_response_head(input, false)
    }

    #[test]
    fn content_length_response() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let head = parse(input).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.head_len, input.len() - 5);
        assert_eq!(head.body, BodyDecoder::Length(5));
        assert!(head.keep_alive);
        assert!(head.is_success());
    }

    #[test]
    fn partial_head_needs_more_bytes_at_every_split() {
        let input = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nServer: x\r\n\r\n";
        for end in 0..input.len() {
            assert_eq!(parse(&input[..end]), Ok(None), "prefix of {end} bytes");
        }
        let head = parse(input).unwrap().unwrap();
        assert!(!head.is_success());
        assert_eq!(head.body, BodyDecoder::Length(0));
    }

    #[test]
    fn chunked_response_and_close() {
        let head =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(head.body, BodyDecoder::chunked());
        assert!(!head.keep_alive);
    }

    #[test]
    fn unframed_response_reads_until_close_and_is_not_reused() {
        let head = parse(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body, BodyDecoder::UntilClose);
        assert!(!head.keep_alive);
    }

    #[test]
    fn http_1_0_closes_unless_keep_alive() {
        let head = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let head = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
    }

    #[test]
    fn bodiless_statuses_and_head_requests_have_no_body() {
        for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let input = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            let head = parse(input.as_bytes()).unwrap().unwrap();
            assert_eq!(head.body, BodyDecoder::Empty, "{status}");
        }
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(head.body, BodyDecoder::Empty);
        assert!(head.keep_alive);
        let interim = parse(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap().unwrap();
        assert!(interim.is_interim());
    }

    #[test]
    fn protocol_errors() {
        assert!(matches!(
            parse(b"HTTP/1.1 abc OK\r\n\r\n"),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"garbage\r\n\r\n"),
            Err(ResponseError::Malformed(_))
        ));
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ResponseError::Headers(
                HeaderError::ConflictingContentLength
            ))
        );
        assert_eq!(
            parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Err(ResponseError::UnexpectedUpgrade)
        );
        let mut huge = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        huge.resize(MAX_HEAD_SIZE, b'a');
        assert_eq!(parse(&huge), Err(ResponseError::TooLarge));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&many),
            Err(ResponseError::Malformed(httparse::Error::TooManyHeaders))
        );
    }
}
