//! The one error type of the protocol layer. Every variant knows the status a
//! proxy answers a client with, so the engine maps errors in a single `match`.

/// Why a request or response could not be accepted.
///
/// Most variants are request-smuggling defences: a message whose framing two
/// implementations could read differently is refused rather than repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Malformed request line, header syntax or request target.
    #[error("{}", self.reason())]
    Malformed,
    /// LF not preceded by CR in the head (RFC 9112 §2.2).
    #[error("{}", self.reason())]
    BareLf,
    /// obs-fold line folding (RFC 9112 §5.2).
    #[error("{}", self.reason())]
    ObsFold,
    /// NUL or another CTL except HTAB in a field value (RFC 9110 §5.5).
    #[error("{}", self.reason())]
    InvalidHeaderValue,
    /// Content-Length together with Transfer-Encoding (RFC 9112 §6.3 p3).
    #[error("{}", self.reason())]
    LengthAndChunked,
    /// Invalid or differing Content-Length values (RFC 9112 §6.3 p5).
    #[error("{}", self.reason())]
    BadContentLength,
    /// Request Transfer-Encoding other than a final, single "chunked" (RFC 9112 §6.3 p4).
    #[error("{}", self.reason())]
    BadTransferEncoding,
    /// Invalid chunk size line, chunk CRLF, extension or trailer (RFC 9112 §7.1).
    #[error("{}", self.reason())]
    BadChunk,
    /// HTTP/1.1 request without Host, or any request with several (RFC 9112 §3.2).
    #[error("{}", self.reason())]
    MissingHost,
    /// A path that escapes the root once dot-segments are resolved.
    #[error("{}", self.reason())]
    BadPath,
    /// Anything but HTTP/1.0 and HTTP/1.1.
    #[error("{}", self.reason())]
    UnsupportedVersion,
    /// The head is larger than the limit.
    #[error("{}", self.reason())]
    HeadTooLarge,
    /// More header fields than the limit.
    #[error("{}", self.reason())]
    TooManyHeaders,
    /// The payload is larger than the limit given to the body decoder.
    #[error("{}", self.reason())]
    BodyTooLarge,
    /// Malformed response status line.
    #[error("{}", self.reason())]
    BadStatus,
}

impl ProtocolError {
    /// The status a proxy answers a *client* with for this error in a request.
    ///
    /// Errors that only responses produce (`BadStatus`) map to 502; for the
    /// others the engine answers 502 itself when the upstream caused them.
    pub fn status(self) -> u16 {
        match self {
            ProtocolError::Malformed
            | ProtocolError::BareLf
            | ProtocolError::ObsFold
            | ProtocolError::InvalidHeaderValue
            | ProtocolError::LengthAndChunked
            | ProtocolError::BadContentLength
            | ProtocolError::BadTransferEncoding
            | ProtocolError::BadChunk
            | ProtocolError::MissingHost
            | ProtocolError::BadPath => 400,
            ProtocolError::UnsupportedVersion => 505,
            ProtocolError::HeadTooLarge | ProtocolError::TooManyHeaders => 431,
            ProtocolError::BodyTooLarge => 413,
            ProtocolError::BadStatus => 502,
        }
    }

    /// Short reason for logs.
    pub fn reason(self) -> &'static str {
        match self {
            ProtocolError::Malformed => "malformed request line, header or target",
            ProtocolError::BareLf => "bare LF in the head",
            ProtocolError::ObsFold => "obsolete line folding",
            ProtocolError::InvalidHeaderValue => "control character in a field value",
            ProtocolError::LengthAndChunked => "Content-Length with Transfer-Encoding",
            ProtocolError::BadContentLength => "invalid or differing Content-Length",
            ProtocolError::BadTransferEncoding => "unsupported Transfer-Encoding",
            ProtocolError::BadChunk => "invalid chunked framing",
            ProtocolError::MissingHost => "missing or repeated Host",
            ProtocolError::BadPath => "path escapes the root",
            ProtocolError::UnsupportedVersion => "unsupported HTTP version",
            ProtocolError::HeadTooLarge => "head too large",
            ProtocolError::TooManyHeaders => "too many header fields",
            ProtocolError::BodyTooLarge => "body too large",
            ProtocolError::BadStatus => "malformed status line",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolError;

    #[test]
    fn statuses_follow_design_section_4() {
        assert_eq!(ProtocolError::LengthAndChunked.status(), 400);
        assert_eq!(ProtocolError::HeadTooLarge.status(), 431);
        assert_eq!(ProtocolError::TooManyHeaders.status(), 431);
        assert_eq!(ProtocolError::BodyTooLarge.status(), 413);
        assert_eq!(ProtocolError::UnsupportedVersion.status(), 505);
        assert_eq!(ProtocolError::BadStatus.status(), 502);
    }

    // DESIGN.md §4: the access log shows the reason.

    #[test]
    fn display_reuses_reason() {
        assert_eq!(
            ProtocolError::LengthAndChunked.to_string(),
            "Content-Length with Transfer-Encoding"
        );
    }
}
