//! Response heads (RFC 9112 §4), parsed as strictly as requests: an upstream
//! that sends a bare LF, obs-fold or a CTL gets a 502, not a guess.

use bytes::{Buf, BytesMut};

use super::fields::{Fields, HeaderField, Span, Summary, collect_fields, is_field_vchar};
use super::framing::framing_for_response;
use super::head::{
    Delimited, LeadingEmptyLines, MAX_HEADERS, classify_version, delimit, find_head,
    header_storage, is_tidy, start_line,
};
use super::{BodyFraming, HeadLimits, Method, Version};
use crate::error::ProtocolError;

/// A parsed, validated response head. Owns the raw head; every accessor
/// returns a slice of it. The head keeps the whole read buffer it arrived
/// in, with whatever came behind it (most often the body, or all of a small
/// one): a proxy done with the head may write over it and send what it
/// writes and the body behind it as one run of memory (`into_parts`).
/// Splitting the head off the buffer instead would make the buffer's memory
/// shared, and each split and each drop of a part an atomic update of a
/// reference count on a line the connection last touched a request ago.
#[derive(Debug)]
pub struct ResponseHead {
    /// The read buffer: the head (`len` bytes), then what followed it.
    bytes: BytesMut,
    len: usize,
    version: Version,
    status: u16,
    reason: Span,
    fields: Vec<HeaderField>,
    summary: Summary,
    framing: BodyFraming,
    keep_alive: bool,
}

impl ResponseHead {
    /// Where the reason phrase starts: after "HTTP/1.x NNN " (RFC 9112 §4).
    pub(crate) const REASON_START: usize = 13;

    /// The raw head, from the status line through the final CRLFCRLF.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (possibly empty).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(self.bytes())
    }

    /// (name as sent, value trimmed), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields().iter()
    }

    /// The first field named `lower_case_name`, compared case-insensitively.
    pub fn header(&self, lower_case_name: &[u8]) -> Option<&[u8]> {
        self.fields().first_named(lower_case_name)
    }

    /// How the body ends (RFC 9112 §6.3); see `framing_for_response`.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// The upstream connection may be reused after this response: it is
    /// persistent (RFC 9112 §9.3), the body is self-delimited, and the
    /// connection does not become a tunnel (101, or 2xx to CONNECT).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Give back the headers Vec, cleared, for the next parse; the head and
    /// what followed it are dropped.
    pub fn into_scratch(self) -> Vec<HeaderField> {
        self.into_parts().2
    }

    /// Put what followed the head back into `buf` (left empty by the parse),
    /// as `parse_response` leaves it, and give back the headers Vec, cleared.
    pub fn into_rest(self, buf: &mut BytesMut) -> Vec<HeaderField> {
        let (mut bytes, len, fields) = self.into_parts();
        bytes.advance(len);
        *buf = bytes;
        fields
    }

    /// Split what followed the head off into a buffer of its own; the head
    /// keeps its bytes.
    pub fn split_rest(&mut self) -> BytesMut {
        self.bytes.split_off(self.len)
    }

    /// Give back the read buffer (the head first, then what followed it),
    /// the head's length, and the headers Vec, cleared, for the next parse.
    pub fn into_parts(self) -> (BytesMut, usize, Vec<HeaderField>) {
        let mut fields = self.fields;
        fields.clear();
        (self.bytes, self.len, fields)
    }

    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            bytes: self.bytes(),
            list: &self.fields,
            summary: self.summary,
        }
    }
}

/// Parse a response head at the start of `buf`; same contract as
/// `parse_request`. `request_method` decides the framing of a response to
/// HEAD (and CONNECT). Leading empty lines are an error for responses.
pub fn parse_response(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    request_method: Method,
    mut scratch: Vec<HeaderField>,
) -> Result<Option<ResponseHead>, ProtocolError> {
    let mut slot: Option<ResponseHead> = None;
    parse_response_into(buf, limits, request_method, &mut scratch, &mut slot)?;
    if let Some(head) = slot.as_mut() {
        *buf = head.split_rest();
    }
    Ok(slot)
}

/// `parse_response`, with the head written into `slot` (`Ok(true)`) instead
/// of returned, and one difference: the head takes all of `buf`, the bytes
/// behind it included, and leaves `buf` empty. `ResponseHead::into_rest`
/// puts those bytes back; `into_parts` gives the buffer with the head in
/// front. `buf` is untouched on `Ok(false)` and on errors.
pub fn parse_response_into(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    request_method: Method,
    scratch: &mut Vec<HeaderField>,
    slot: &mut Option<ResponseHead>,
) -> Result<bool, ProtocolError> {
    let max_head_size = limits.max_head_size.min(u32::MAX as usize);
    // The common case first: a complete, clean head, delimited by httparse.
    let window = &buf[..buf.len().min(max_head_size)];
    let fast = parse_validated(
        window,
        Delimited::Window,
        limits.max_headers,
        request_method,
        scratch,
        slot,
    )?;
    if let (Some(len), Some(head)) = (fast, slot.as_mut()) {
        head.bytes = std::mem::take(buf);
        head.len = len;
        return Ok(true);
    }
    let Some(extent) = find_head(buf, max_head_size, LeadingEmptyLines::Reject)? else {
        return Ok(false);
    };
    debug_assert_eq!(extent.skip, 0);
    let parsed = parse_validated(
        &buf[..extent.len],
        Delimited::Exact,
        limits.max_headers,
        request_method,
        scratch,
        slot,
    )?;
    let (Some(_), Some(head)) = (parsed, slot.as_mut()) else {
        unreachable!("an exact head is parsed or refused");
    };
    head.bytes = std::mem::take(buf);
    head.len = extent.len;
    Ok(true)
}

/// As `request::parse_validated`: the head (its `bytes` still empty) into
/// `slot` and its length, or `None` when a `Window` holds no complete tidy
/// head.
fn parse_validated(
    input: &[u8],
    delimited: Delimited,
    max_headers: usize,
    request_method: Method,
    fields: &mut Vec<HeaderField>,
    slot: &mut Option<ResponseHead>,
) -> Result<Option<usize>, ProtocolError> {
    let mut storage = header_storage();
    let mut resp = httparse::Response::new(&mut []);
    let n = max_headers.min(MAX_HEADERS);
    let config = httparse::ParserConfig::default();
    let parsed = config.parse_response_with_uninit_headers(&mut resp, input, &mut storage[..n]);
    let Some(head) = delimit(input, delimited, parsed, |e| map_error(e, input))? else {
        return Ok(None);
    };
    let head_len = head.len();
    // A head the fast way takes must be tidy before anything about it is
    // refused: an untidy one may have a different error, found by `find_head`.
    let summary = collect_fields(head, resp.headers, fields);
    if delimited == Delimited::Window && !is_tidy(head, fields) {
        return Ok(None);
    }
    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
        return Err(ProtocolError::BadStatus);
    };
    // RFC 9110 §15: status codes are 100..=599.
    if !(100..600).contains(&status) {
        return Err(ProtocolError::BadStatus);
    }
    // A tidy head's status line ends where its first field starts (or its
    // final empty line does): no need to look for its CR.
    let line = match (delimited, fields.first()) {
        (Delimited::Window, Some(first)) => &head[..first.name.start as usize - 2],
        (Delimited::Window, None) => &head[..head.len() - 4],
        (Delimited::Exact, _) => start_line(head),
    };
    let reason = reason_span(line)?;
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let view = Fields {
        bytes: head,
        list: fields,
        summary,
    };
    let framing = framing_for_response(version, status, request_method, view)?;
    let options = summary.connection;
    let persistent = match version {
        Version::Http11 => !options.close,
        Version::Http10 => !options.close && options.keep_alive,
    };
    let tunnel =
        status == 101 || (request_method == Method::Connect && (200..300).contains(&status));
    let keep_alive = persistent && framing != BodyFraming::UntilClose && !tunnel;
    *slot = Some(ResponseHead {
        bytes: BytesMut::new(),
        len: 0,
        version,
        status,
        reason,
        fields: std::mem::take(fields),
        summary,
        framing,
        keep_alive,
    });
    Ok(Some(head_len))
}

/// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ) after "HTTP/1.x NNN "
/// (RFC 9112 §4). httparse turns a non-UTF-8 reason into "", so the span is
/// taken from the raw line (`line`: the status line without its CRLF).
fn reason_span(line: &[u8]) -> Result<Span, ProtocolError> {
    let reason = line.get(ResponseHead::REASON_START..).unwrap_or_default();
    if !reason
        .iter()
        .all(|&b| is_field_vchar(b) || b == b' ' || b == b'\t')
    {
        return Err(ProtocolError::BadStatus);
    }
    let start = line.len().min(ResponseHead::REASON_START);
    Ok(Span::new(start, start + reason.len()))
}

fn map_error(e: httparse::Error, head: &[u8]) -> ProtocolError {
    match e {
        httparse::Error::HeaderValue => ProtocolError::InvalidHeaderValue,
        httparse::Error::TooManyHeaders => ProtocolError::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::NewLine => ProtocolError::Malformed,
        httparse::Error::Version => {
            let line = start_line(head);
            let version = line.split(|&b| b == b' ').next().unwrap_or(line);
            match classify_version(version) {
                ProtocolError::UnsupportedVersion => ProtocolError::UnsupportedVersion,
                _ => ProtocolError::BadStatus,
            }
        }
        _ => ProtocolError::BadStatus,
    }
}

#[cfg(test)]
mod tests;
