//! Message body length (RFC 9112 §6.3), one function per direction.
//!
//! These are the request-smuggling defences: wherever two implementations
//! could disagree on where a body ends, the message is refused.

use super::fields::{Fields, content_length, list_elements};
use super::name::Name;
use super::{BodyFraming, Method, Version};
use crate::error::ProtocolError;

/// Framing of a request body (RFC 9112 §6.3).
///
/// - Transfer-Encoding with Content-Length: refused (§6.3 p3 allows "TE wins",
///   but a recipient that sees both is looking at a smuggling attempt).
/// - Transfer-Encoding in HTTP/1.0: refused (§6.1, last paragraph: the framing
///   is faulty).
/// - Transfer-Encoding: the single coding `chunked`, nothing else (§6.3 p4
///   requires chunked to be final; like nginx we also refuse `gzip, chunked`,
///   repeated `chunked` and empty elements, which upstreams read differently).
/// - Content-Length: `content_length` (§6.3 p5).
/// - Neither: no body (§6.3 p7; a request is never close-delimited).
pub(crate) fn framing_for_request(
    version: Version,
    fields: Fields<'_>,
) -> Result<BodyFraming, ProtocolError> {
    let length = content_length(fields)?;
    if !fields.has(Name::TransferEncoding) {
        return Ok(length.map_or(BodyFraming::Empty, BodyFraming::Length));
    }
    let te_lines = fields.all(Name::TransferEncoding);
    if length.is_some() {
        return Err(ProtocolError::LengthAndChunked);
    }
    if version == Version::Http10 {
        return Err(ProtocolError::BadTransferEncoding);
    }
    let mut codings = te_lines.flat_map(list_elements);
    match (codings.next(), codings.next()) {
        (Some(only), None) if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
        _ => Err(ProtocolError::BadTransferEncoding),
    }
}

/// Framing of a response body (RFC 9112 §6.3), in the RFC's order:
///
/// 1. a response to HEAD, and every 1xx, 204 and 304, has no body whatever its
///    fields say;
/// 2. a 2xx to CONNECT turns the connection into a tunnel: no body;
/// 3. Transfer-Encoding with Content-Length is refused (the RFC calls it a
///    likely smuggling or splitting attempt that "ought to be handled as an
///    error"), as is Transfer-Encoding in HTTP/1.0 (§6.1);
/// 4. Transfer-Encoding whose final coding is chunked: chunked; any other
///    Transfer-Encoding: close-delimited;
/// 5. a valid Content-Length: that length; an invalid one is refused;
/// 6. otherwise: close-delimited.
pub(crate) fn framing_for_response(
    version: Version,
    status: u16,
    request_method: Method,
    fields: Fields<'_>,
) -> Result<BodyFraming, ProtocolError> {
    if request_method == Method::Head || (100..200).contains(&status) || matches!(status, 204 | 304)
    {
        return Ok(BodyFraming::Empty);
    }
    if request_method == Method::Connect && (200..300).contains(&status) {
        return Ok(BodyFraming::Empty);
    }
    let length = content_length(fields)?;
    if !fields.has(Name::TransferEncoding) {
        return Ok(length.map_or(BodyFraming::UntilClose, BodyFraming::Length));
    }
    let te_lines = fields.all(Name::TransferEncoding);
    if length.is_some() {
        return Err(ProtocolError::LengthAndChunked);
    }
    if version == Version::Http10 {
        return Err(ProtocolError::BadTransferEncoding);
    }
    // Empty list elements are ignored when finding the final coding (RFC 9110 §5.6.1).
    let last = te_lines
        .flat_map(list_elements)
        .filter(|e| !e.is_empty())
        .last();
    match last {
        Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
        _ => Ok(BodyFraming::UntilClose),
    }
}
