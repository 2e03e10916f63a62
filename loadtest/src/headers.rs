//! Header facts that request and response heads share: the framing headers
//! of RFC 9112 §6 and the connection options of RFC 9112 §9.

use crate::framing::BodyDecoder;

/// Why a head's framing headers cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("both Transfer-Encoding and Content-Length")]
    LengthWithTransferEncoding,
    #[error("Transfer-Encoding whose final coding is not chunked")]
    UnsupportedTransferEncoding,
}

/// The headers that decide framing and persistence, gathered in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FramingHeaders {
    pub content_length: Option<u64>,
    /// Some Transfer-Encoding header was present.
    pub transfer_encoding: bool,
    /// The final transfer coding is `chunked` (RFC 9112 §6.3, rules 3 and 4).
    pub chunked: bool,
    pub connection_close: bool,
    pub connection_keep_alive: bool,
    /// `Connection: upgrade` (RFC 9110 §7.8): the head may switch protocols.
    pub connection_upgrade: bool,
    pub expect_continue: bool,
}

impl FramingHeaders {
    pub fn collect(headers: &[httparse::Header<'_>]) -> Result<Self, HeaderError> {
        let mut facts = FramingHeaders::default();
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let length = parse_content_length(header.value)?;
                // RFC 9112 §6.3 rule 5: differing values are unrecoverable;
                // repeated identical values may be taken as one.
                match facts.content_length {
                    Some(previous) if previous != length => {
                        return Err(HeaderError::ConflictingContentLength);
                    }
                    _ => facts.content_length = Some(length),
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                facts.transfer_encoding = true;
                facts.chunked =
                    last_token(header.value).is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                facts.connection_close |= has_token(header.value, b"close");
                facts.connection_keep_alive |= has_token(header.value, b"keep-alive");
                facts.connection_upgrade |= has_token(header.value, b"upgrade");
            } else if name.eq_ignore_ascii_case("expect") {
                facts.expect_continue |= header
                    .value
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(facts)
    }

    /// Persistence per RFC 9112 §9.3: HTTP/1.1 stays open unless `close` is
    /// sent; HTTP/1.0 closes unless `keep-alive` is sent.
    pub fn keep_alive(&self, minor_version: u8) -> bool {
        if self.connection_close {
            false
        } else {
            minor_version >= 1 || self.connection_keep_alive
        }
    }

    /// Body framing of a request (RFC 9112 §6.3 rules 3–6): a request never
    /// reads until close, and a Transfer-Encoding other than final `chunked`
    /// or next to a Content-Length is refused rather than guessed at, since
    /// that ambiguity is what request smuggling exploits.
    pub fn request_body(&self) -> Result<BodyDecoder, HeaderError> {
        if self.transfer_encoding {
            if self.content_length.is_some() {
                return Err(HeaderError::LengthWithTransferEncoding);
            }
            if !self.chunked {
                return Err(HeaderError::UnsupportedTransferEncoding);
            }
            return Ok(BodyDecoder::chunked());
        }
        Ok(BodyDecoder::Length(self.content_length.unwrap_or(0)))
    }

    /// Body framing of a response that has a body (RFC 9112 §6.3 rules 3, 5,
    /// 6, 8): chunked if it is the final coding, else close-delimited when a
    /// Transfer-Encoding is present (it overrides Content-Length), else the
    /// length, else until close.
    pub fn response_body(&self) -> BodyDecoder {
        if self.transfer_encoding {
            if self.chunked {
                BodyDecoder::chunked()
            } else {
                BodyDecoder::UntilClose
            }
        } else {
            self.content_length
                .map_or(BodyDecoder::UntilClose, BodyDecoder::Length)
        }
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), with a list of identical
/// values accepted as one value, as the section allows.
fn parse_content_length(value: &[u8]) -> Result<u64, HeaderError> {
    let mut result = None;
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(HeaderError::InvalidContentLength);
        }
        let length = item.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        let length = length.ok_or(HeaderError::InvalidContentLength)?;
        match result {
            Some(previous) if previous != length => {
                return Err(HeaderError::ConflictingContentLength);
            }
            _ => result = Some(length),
        }
    }
    result.ok_or(HeaderError::InvalidContentLength)
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_token(value: &[u8]) -> Option<&[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .rfind(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn content_length_accepts_digits_and_identical_lists() {
        assert_eq!(parse_content_length(b"42"), Ok(42));
        assert_eq!(parse_content_length(b" 7 , 7"), Ok(7));
        assert_eq!(
            parse_content_length(b"7, 8"),
            Err(HeaderError::ConflictingContentLength)
        );
        assert_eq!(
            parse_content_length(b"+7"),
            Err(HeaderError::InvalidContentLength)
        );
        assert_eq!(
            parse_content_length(b""),
            Err(HeaderError::InvalidContentLength)
        );
        assert_eq!(
            parse_content_length(b"99999999999999999999999"),
            Err(HeaderError::InvalidContentLength)
        );
    }

    #[test]
    fn repeated_content_length_headers_must_agree() {
        let same = [
            header("Content-Length", b"3"),
            header("content-length", b"3"),
        ];
        assert_eq!(
            FramingHeaders::collect(&same).unwrap().content_length,
            Some(3)
        );
        let differ = [
            header("Content-Length", b"3"),
            header("content-length", b"4"),
        ];
        assert_eq!(
            FramingHeaders::collect(&differ),
            Err(HeaderError::ConflictingContentLength)
        );
    }

    #[test]
    fn connection_tokens_decide_persistence() {
        let close = FramingHeaders::collect(&[header("Connection", b"Upgrade, Close")]).unwrap();
        assert!(!close.keep_alive(1));
        let none = FramingHeaders::collect(&[]).unwrap();
        assert!(none.keep_alive(1));
        assert!(!none.keep_alive(0));
        let keep = FramingHeaders::collect(&[header("connection", b"keep-alive")]).unwrap();
        assert!(keep.keep_alive(0));
    }

    #[test]
    fn request_framing_refuses_ambiguity() {
        let both = FramingHeaders::collect(&[
            header("Transfer-Encoding", b"chunked"),
            header("Content-Length", b"5"),
        ])
        .unwrap();
        assert_eq!(
            both.request_body(),
            Err(HeaderError::LengthWithTransferEncoding)
        );
        let gzip =
            FramingHeaders::collect(&[header("Transfer-Encoding", b"chunked, gzip")]).unwrap();
        assert_eq!(
            gzip.request_body(),
            Err(HeaderError::UnsupportedTransferEncoding)
        );
        let chunked =
            FramingHeaders::collect(&[header("Transfer-Encoding", b"gzip, Chunked")]).unwrap();
        assert_eq!(chunked.request_body(), Ok(BodyDecoder::chunked()));
        assert_eq!(
            FramingHeaders::default().request_body(),
            Ok(BodyDecoder::Length(0))
        );
    }

    #[test]
    fn response_framing_follows_rfc_9112_order() {
        let te_wins = FramingHeaders::collect(&[
            header("Content-Length", b"5"),
            header("Transfer-Encoding", b"chunked"),
        ])
        .unwrap();
        assert_eq!(te_wins.response_body(), BodyDecoder::chunked());
        let not_chunked = FramingHeaders::collect(&[header("Transfer-Encoding", b"gzip")]).unwrap();
        assert_eq!(not_chunked.response_body(), BodyDecoder::UntilClose);
        let length = FramingHeaders::collect(&[header("Content-Length", b"12")]).unwrap();
        assert_eq!(length.response_body(), BodyDecoder::Length(12));
        assert_eq!(
            FramingHeaders::default().response_body(),
            BodyDecoder::UntilClose
        );
    }

    #[test]
    fn expect_continue_is_recognised() {
        let expect = FramingHeaders::collect(&[header("Expect", b" 100-Continue ")]).unwrap();
        assert!(expect.expect_continue);
    }
}
