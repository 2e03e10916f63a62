//! Request heads (RFC 9112 §3): parse once, validate everything that decides
//! routing and framing, then answer questions from spans into the raw head.

use bytes::{Buf, BytesMut};

use super::fields::{Fields, HeaderField, Span, Summary, collect_fields};
use super::framing::framing_for_request;
use super::head::{
    Delimited, LeadingEmptyLines, MAX_HEADERS, classify_version, delimit, find_head,
    header_storage, is_tidy, start_line,
};
use super::name::Name;
use super::target::{is_valid_host, parse_target};
use super::{BodyFraming, HeadLimits, Method, Version};
use crate::error::ProtocolError;

/// A parsed, validated request head. Owns the raw head; every accessor
/// returns a slice of it.
#[derive(Debug)]
pub struct RequestHead {
    /// The raw head. A head with no body and nothing behind it took its
    /// whole read buffer, spare room and all (see `parse_request_into`);
    /// `into_parts` gives it back.
    bytes: BytesMut,
    method: Method,
    method_span: Span,
    target: Span,
    path: Option<Span>,
    query: Option<Span>,
    version: Version,
    host: Option<Span>,
    upgrade: Option<Span>,
    fields: Vec<HeaderField>,
    summary: Summary,
    framing: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
    wants_upgrade: bool,
}

impl RequestHead {
    /// The raw head, from the request line through the final CRLFCRLF.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn method_bytes(&self) -> &[u8] {
        self.method_span.get(&self.bytes)
    }

    /// The request-target as sent.
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.bytes)
    }

    /// The path of the target without the query; for absolute-form the part
    /// after the authority ("/" when empty); "*" for asterisk-form.
    pub fn path(&self) -> &[u8] {
        match self.path {
            Some(span) => span.get(&self.bytes),
            None => b"/",
        }
    }

    /// The query after '?', without it.
    pub fn query(&self) -> Option<&[u8]> {
        self.query.map(|s| s.get(&self.bytes))
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The Host header as sent, or the authority of an absolute-form target,
    /// which wins (RFC 9112 §3.2.2).
    pub fn host(&self) -> Option<&[u8]> {
        self.host.map(|s| s.get(&self.bytes))
    }

    /// (name as sent, value trimmed), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields().iter()
    }

    /// The first field named `lower_case_name`, compared case-insensitively.
    pub fn header(&self, lower_case_name: &[u8]) -> Option<&[u8]> {
        self.fields().first_named(lower_case_name)
    }

    /// Empty, Length(n) or Chunked; never UntilClose (RFC 9112 §6.3 p7).
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// HTTP/1.1: unless "Connection: close"; HTTP/1.0: only with
    /// "Connection: keep-alive" (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// "Expect: 100-continue" in an HTTP/1.1 request; HTTP/1.0 expectations
    /// are ignored (RFC 9110 §10.1.1).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// Connection has the "upgrade" option and Upgrade is present, in HTTP/1.1
    /// (an HTTP/1.0 Upgrade is ignored, RFC 9110 §7.8).
    pub fn wants_upgrade(&self) -> bool {
        self.wants_upgrade
    }

    /// The Upgrade header value.
    pub fn upgrade(&self) -> Option<&[u8]> {
        self.upgrade.map(|s| s.get(&self.bytes))
    }

    /// Give back the headers Vec, cleared, for the next parse.
    pub fn into_scratch(self) -> Vec<HeaderField> {
        self.into_parts().1
    }

    /// The raw head's buffer and the headers Vec, cleared. When the head
    /// took its whole read buffer, the buffer is that one (`clear` it to
    /// read the next request into all of it).
    pub fn into_parts(self) -> (BytesMut, Vec<HeaderField>) {
        let mut fields = self.fields;
        fields.clear();
        (self.bytes, fields)
    }

    pub(crate) fn fields(&self) -> Fields<'_> {
        Fields {
            bytes: &self.bytes,
            list: &self.fields,
            summary: self.summary,
        }
    }
}

/// Parse a request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more; once `buf` holds `max_head_size` bytes
/// without a complete head this is `Err(HeadTooLarge)` instead.
/// `Ok(Some(head))`: `buf` now starts after the head, at the body or the next
/// pipelined request; when nothing follows a head that has no body, the head
/// takes the buffer itself and leaves `buf` empty and without room
/// (`RequestHead::into_parts` gives it back). `buf` is untouched on
/// `Ok(None)` and on errors.
/// Leading empty lines are skipped (RFC 9112 §2.2). `scratch` is reused for
/// the field spans.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    mut scratch: Vec<HeaderField>,
) -> Result<Option<RequestHead>, ProtocolError> {
    let mut slot = None;
    parse_request_into(buf, limits, &mut scratch, &mut slot)?;
    Ok(slot)
}

/// `parse_request`, with the head written into `slot` (`Ok(true)`) instead of
/// returned: a head is a few hundred bytes, and returned through two
/// functions and then moved into its place it was copied four times
/// (callgrind: about 140 instructions per request). `scratch` gives the
/// head its field list and is left empty when one is parsed; it is kept
/// while heads are incomplete.
pub fn parse_request_into(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    scratch: &mut Vec<HeaderField>,
    slot: &mut Option<RequestHead>,
) -> Result<bool, ProtocolError> {
    let max_head_size = limits.max_head_size.min(u32::MAX as usize);
    // The common case first: a complete, clean head, delimited by httparse.
    let window = &buf[..buf.len().min(max_head_size)];
    let fast = parse_validated(window, Delimited::Window, limits.max_headers, scratch, slot)?;
    if let (Some(len), Some(head)) = (fast, slot.as_mut()) {
        // Nearly every GET: the head is all the buffer holds and no body
        // will be read into it, so it takes the buffer whole rather than
        // make it shared by a split (why that costs: `ResponseHead`).
        head.bytes = if len == buf.len() && head.framing == BodyFraming::Empty {
            std::mem::take(buf)
        } else {
            buf.split_to(len)
        };
        return Ok(true);
    }
    let Some(extent) = find_head(buf, max_head_size, LeadingEmptyLines::Skip)? else {
        return Ok(false);
    };
    let head = &buf[extent.skip..extent.skip + extent.len];
    let parsed = parse_validated(head, Delimited::Exact, limits.max_headers, scratch, slot)?;
    let (Some(_), Some(head)) = (parsed, slot.as_mut()) else {
        unreachable!("an exact head is parsed or refused");
    };
    buf.advance(extent.skip);
    head.bytes = buf.split_to(extent.len);
    Ok(true)
}

/// Everything but taking the bytes out of the buffer, so that an error leaves
/// `buf` as it was. Puts the head (its `bytes` still empty) into `slot` and
/// returns its length, or `None` when a `Window` holds no complete tidy head.
fn parse_validated(
    input: &[u8],
    delimited: Delimited,
    max_headers: usize,
    fields: &mut Vec<HeaderField>,
    slot: &mut Option<RequestHead>,
) -> Result<Option<usize>, ProtocolError> {
    let mut storage = header_storage();
    let mut req = httparse::Request::new(&mut []);
    let n = max_headers.min(MAX_HEADERS);
    let parsed = req.parse_with_uninit_headers(input, &mut storage[..n]);
    let Some(head) = delimit(input, delimited, parsed, |e| map_error(e, input))? else {
        return Ok(None);
    };
    let head_len = head.len();
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ProtocolError::Malformed);
    };
    // A head the fast way takes must be tidy before anything about it is
    // refused: an untidy one may have a different error, found by `find_head`.
    let summary = collect_fields(head, req.headers, fields);
    if delimited == Delimited::Window && !is_tidy(head, fields) {
        return Ok(None);
    }
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let method_span = Span::of(head, method.as_bytes());
    let method = Method::from_bytes(method.as_bytes());
    let target_span = Span::of(head, path.as_bytes());
    let target = parse_target(head, target_span, method)?;
    let view = Fields {
        bytes: head,
        list: fields,
        summary,
    };

    let host = host_field(version, view)?;
    let host = target.authority.or(host.map(|h| Span::of(head, h)));
    let framing = framing_for_request(version, view)?;
    let options = summary.connection;
    let keep_alive = match version {
        Version::Http11 => !options.close,
        Version::Http10 => !options.close && options.keep_alive,
    };
    // Most requests have neither field: one test of the summary skips both
    // lookups.
    let (expect_continue, upgrade) = if view.has(Name::Expect) || view.has(Name::Upgrade) {
        let expect_continue = version == Version::Http11
            && view
                .first(Name::Expect)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        let upgrade = view.first(Name::Upgrade).map(|v| Span::of(head, v));
        (expect_continue, upgrade)
    } else {
        (false, None)
    };
    let wants_upgrade = version == Version::Http11 && upgrade.is_some() && options.upgrade;

    *slot = Some(RequestHead {
        bytes: BytesMut::new(),
        method,
        method_span,
        target: target_span,
        path: target.path,
        query: target.query,
        version,
        host,
        upgrade,
        fields: std::mem::take(fields),
        summary,
        framing,
        keep_alive,
        expect_continue,
        wants_upgrade,
    });
    Ok(Some(head_len))
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; no request may
/// have several, and its value must be a valid uri-host [":" port].
/// The Host line is required even with an absolute-form target.
fn host_field(version: Version, fields: Fields<'_>) -> Result<Option<&[u8]>, ProtocolError> {
    let mut hosts = fields.all(Name::Host);
    let host = hosts.next();
    if hosts.next().is_some() || (host.is_none() && version == Version::Http11) {
        return Err(ProtocolError::MissingHost);
    }
    match host {
        Some(h) if !is_valid_host(h) => Err(ProtocolError::Malformed),
        _ => Ok(host),
    }
}

fn map_error(e: httparse::Error, head: &[u8]) -> ProtocolError {
    match e {
        httparse::Error::HeaderValue => ProtocolError::InvalidHeaderValue,
        httparse::Error::TooManyHeaders => ProtocolError::TooManyHeaders,
        // request-line = method SP request-target SP HTTP-version (RFC 9112 §3):
        // only a line of exactly three parts has a version worth classifying.
        httparse::Error::Version => {
            let mut parts = start_line(head).split(|&b| b == b' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(_), Some(_), Some(version), None) => classify_version(version),
                _ => ProtocolError::Malformed,
            }
        }
        _ => ProtocolError::Malformed,
    }
}

#[cfg(test)]
mod tests;
