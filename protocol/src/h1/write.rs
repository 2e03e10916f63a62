//! Head serialisation. Writers append to a caller-owned, reused `Vec<u8>` and
//! allocate nothing else. Field bytes come straight from the parsed head; the
//! only fields ringway composes are framing, forwarding, Connection and edits.

use super::fields::{Fields, HeaderField, is_tchar, list_elements};
use super::name::Name;
use super::{BodyFraming, RequestHead, ResponseHead, Version};
use crate::forward::{Forwarded, write_forwarding_headers};

/// One edit from `request_headers` / `response_headers`: set `name`
/// (lower-case) to `value`, or remove it when `value` is `None`.
///
/// An edit replaces every field of that name, including one ringway would
/// write itself (Host, X-Forwarded-*, Connection), except the framing fields
/// Content-Length and Transfer-Encoding, which edits never touch: the body is
/// forwarded as framed, and a changed length would be request smuggling.
/// CTL bytes in a value (e.g. from a decoded `$uri`) are written %-encoded, so
/// an edit can never split a head.
#[derive(Debug, Clone, Copy)]
pub struct HeaderEdit<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// What the engine decided about a request it forwards upstream.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamRequest<'a> {
    /// Origin-form target to send (URI replacement already done).
    pub target: &'a [u8],
    pub forwarded: &'a Forwarded<'a>,
    /// Used as Host only when the client sent none (HTTP/1.0).
    pub default_host: &'a [u8],
    /// Keep Upgrade and send "Connection: upgrade"; false strips both.
    pub pass_upgrade: bool,
    pub edits: &'a [HeaderEdit<'a>],
}

/// What the engine decided about a response it returns to the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientResponse<'a> {
    pub client_version: Version,
    /// Close the client connection after this response: "Connection: close".
    /// An HTTP/1.0 client that is kept gets "Connection: keep-alive".
    pub close: bool,
    /// The body is chunked upstream but the client is HTTP/1.0: drop
    /// Transfer-Encoding (the engine de-chunks).
    pub dechunk: bool,
    pub edits: &'a [HeaderEdit<'a>],
}

/// Write the head sent upstream: `METHOD target HTTP/1.1`, Host first
/// (RFC 9112 §3.2: the Host as sent, the authority of an absolute-form
/// target, or `default_host`), then the client's fields in order minus
/// hop-by-hop ones and those the Connection field names (RFC 9110 §7.6.1),
/// Expect (ringway answers 100-continue itself), X-Forwarded-*/X-Real-IP,
/// Content-Length and edited names; then the forwarding fields, the framing
/// (`Content-Length: n` or `Transfer-Encoding: chunked`, the body is passed
/// through as framed), Upgrade/Connection when `pass_upgrade`, the edits, CRLF.
/// Keep-alive is HTTP/1.1's default, so no Connection field otherwise.
pub fn write_request_head(out: &mut Vec<u8>, head: &RequestHead, req: &UpstreamRequest<'_>) {
    let fields = head.fields();
    out.reserve(head.bytes().len() + 256);
    let host_edited = is_edited(req.edits, b"host");
    let mut lines = Lines::new(fields.bytes);
    // The client's own request line and Host line, when they read as they
    // would be written, start the first run of lines passed whole.
    let start = verbatim_start(head, fields, req.target, host_edited);
    match start {
        Some(run) => lines.end = run.end,
        None => {
            out.extend_from_slice(head.method_bytes());
            out.push(b' ');
            out.extend_from_slice(req.target);
            out.extend_from_slice(b" HTTP/1.1\r\n");
        }
    }
    if !host_edited && !start.is_some_and(|run| run.host) {
        lines.flush(out);
        write_field(out, b"Host", head.host().unwrap_or(req.default_host));
    }
    let names_fields = connection_names_fields(fields);
    for field in fields.list {
        let dropped = matches!(field.known, Name::Host | Name::Expect | Name::ContentLength)
            || field.known.is_hop_by_hop()
            || field.known.is_forwarding()
            || (names_fields && named_in_connection(fields, field))
            || is_edited_field(req.edits, fields, field);
        if !dropped {
            lines.pass(out, field);
        }
    }
    lines.flush(out);
    write_forwarding_headers(out, head, req.forwarded, req.edits);
    write_framing(out, head.framing());
    if req.pass_upgrade
        && let Some(upgrade) = head.upgrade()
    {
        if !is_edited(req.edits, b"upgrade") {
            write_field(out, b"Upgrade", upgrade);
        }
        if !is_edited(req.edits, b"connection") {
            write_field(out, b"Connection", b"upgrade");
        }
    }
    write_edits(out, req.edits);
    out.extend_from_slice(b"\r\n");
}

/// The start of a request head that goes upstream as the client sent it.
#[derive(Debug, Clone, Copy)]
struct StartRun {
    /// Where the run ends: after the request line, or after the Host line.
    end: usize,
    /// The Host line is in the run.
    host: bool,
}

/// The request line as the client sent it, when it is already exactly
/// `METHOD target HTTP/1.1` CRLF with `target` (the head's own bytes, not a
/// rewritten target) in it; with the Host line after it when that is the
/// first field, reads `Host: value` CRLF and is not edited. Those bytes are
/// then the ones `write_request_head` would compose, and are copied as one
/// run with the plain fields that follow.
fn verbatim_start(
    head: &RequestHead,
    fields: Fields<'_>,
    target: &[u8],
    host_edited: bool,
) -> Option<StartRun> {
    let raw = head.bytes();
    let sent = head.target();
    if target.as_ptr() != sent.as_ptr() || target.len() != sent.len() {
        return None;
    }
    let method = head.method_bytes();
    let target_start = sent.as_ptr() as usize - raw.as_ptr() as usize;
    let line_end = target_start + sent.len() + b" HTTP/1.1\r\n".len();
    let verbatim = method.as_ptr() == raw.as_ptr()
        && target_start == method.len() + 1
        && raw.get(target_start + sent.len()..line_end) == Some(b" HTTP/1.1\r\n");
    if !verbatim {
        return None;
    }
    let host = fields.list.first().filter(|f| {
        !host_edited
            && f.known == Name::Host
            && f.plain
            && f.name.start as usize == line_end
            && f.name.get(raw) == b"Host"
            && head.host().map(|h| h.as_ptr()) == Some(f.value.get(raw).as_ptr())
    });
    Some(match host {
        Some(f) => StartRun {
            end: f.plain_end(),
            host: true,
        },
        None => StartRun {
            end: line_end,
            host: false,
        },
    })
}

/// Write the head sent to the client: `HTTP/1.1 <status> <reason>` (always
/// 1.1, as nginx), the upstream's fields minus hop-by-hop ones, those the
/// Connection field names and edited names; Transfer-Encoding is kept as sent
/// for a chunked body (unless `dechunk`) and for a close-delimited one, and a
/// 101's Upgrade is kept. Then Content-Length for a length-framed body, the
/// edits, and Connection: "upgrade" for 101, else "close" if `close`, else
/// "keep-alive" for an HTTP/1.0 client; CRLF.
pub fn write_response_head(out: &mut Vec<u8>, head: &ResponseHead, resp: &ClientResponse<'_>) {
    let fields = head.fields();
    let framing = head.framing();
    let switching = head.status() == 101;
    let keep_te = match framing {
        BodyFraming::Chunked => !resp.dechunk,
        BodyFraming::UntilClose => true,
        BodyFraming::Empty | BodyFraming::Length(_) => false,
    };
    let length_framed = matches!(framing, BodyFraming::Length(_));
    out.reserve(head.bytes().len() + 64);
    write_status_line(out, head);
    let names_fields = connection_names_fields(fields);
    let mut lines = Lines::new(fields.bytes);
    for field in fields.list {
        let kept_hop = (keep_te && field.known == Name::TransferEncoding)
            || (switching && field.known == Name::Upgrade);
        let dropped = if kept_hop {
            is_edited_field(resp.edits, fields, field)
        } else {
            field.known.is_hop_by_hop()
                || (length_framed && field.known == Name::ContentLength)
                || (names_fields && named_in_connection(fields, field))
                || is_edited_field(resp.edits, fields, field)
        };
        if !dropped {
            lines.pass(out, field);
        }
    }
    lines.flush(out);
    if length_framed {
        write_framing(out, framing);
    }
    write_edits(out, resp.edits);
    if !is_edited(resp.edits, b"connection") {
        if switching {
            write_field(out, b"Connection", b"upgrade");
        } else if resp.close {
            write_field(out, b"Connection", b"close");
        } else if resp.client_version == Version::Http10 {
            write_field(out, b"Connection", b"keep-alive");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether `write_response_head` would write the upstream's head unchanged
/// for `resp`, so that a proxy may send the raw head as it came and skip the
/// writing: a keep-alive HTTP/1.1 client, no edits, not a 101, and a head
/// whose status line is already `HTTP/1.1 <status> <reason>`, whose fields
/// are all plain (`name ": " value` CRLF) and none hop-by-hop, and whose
/// only Content-Length is its last field, written as ringway writes it. The
/// common case for an application server's keep-alive answer; anything else
/// is false, never a guess.
pub fn response_head_passes_unchanged(head: &ResponseHead, resp: &ClientResponse<'_>) -> bool {
    if resp.close
        || resp.dechunk
        || resp.client_version != Version::Http11
        || !resp.edits.is_empty()
        || head.status() == 101
    {
        return false;
    }
    let BodyFraming::Length(n) = head.framing() else {
        return false;
    };
    let fields = head.fields();
    let Some((last, rest)) = fields.list.split_last() else {
        return false;
    };
    let passed =
        |f: &HeaderField| f.plain && !f.known.is_hop_by_hop() && f.known != Name::ContentLength;
    if status_line_end(head).is_none()
        || !rest.iter().all(passed)
        || !(last.plain && last.known == Name::ContentLength)
    {
        return false;
    }
    // The last line reads as `write_framing` writes it (the value is the
    // length's decimal digits, so it is `n` written without leading zeros),
    // and only the head's final CRLF follows it.
    let raw = head.bytes();
    let value = last.value.get(raw);
    let canonical = match value {
        [b'0'] => n == 0,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical && last.name.get(raw) == b"Content-Length" && last.plain_end() + 2 == raw.len()
}

/// Where the upstream's status line ends (its CR), when it is already
/// exactly `HTTP/1.1 <status> <reason>` CRLF.
fn status_line_end(head: &ResponseHead) -> Option<usize> {
    let raw = head.bytes();
    // The reason span starts after "HTTP/1.x NNN " when the line has one.
    let line_end = ResponseHead::REASON_START + head.reason().len();
    let canonical = raw.starts_with(b"HTTP/1.1 ")
        && raw.get(ResponseHead::REASON_START - 1) == Some(&b' ')
        && raw.get(line_end) == Some(&b'\r');
    canonical.then_some(line_end)
}

/// `HTTP/1.1 <status> <reason>` CRLF: the upstream's own line when it is
/// already exactly that, else composed.
fn write_status_line(out: &mut Vec<u8>, head: &ResponseHead) {
    let raw = head.bytes();
    let reason = head.reason();
    if let Some(line_end) = status_line_end(head) {
        out.extend_from_slice(&raw[..line_end + 2]);
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, u64::from(head.status()));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Passed-through field lines, copied a run at a time: consecutive `plain`
/// lines sit back to back in the head and are already written the way
/// `write_field` would write them.
struct Lines<'a> {
    head: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> Lines<'a> {
    fn new(head: &'a [u8]) -> Lines<'a> {
        Lines {
            head,
            start: 0,
            end: 0,
        }
    }

    #[inline]
    fn pass(&mut self, out: &mut Vec<u8>, field: &HeaderField) {
        let start = field.name.start as usize;
        if field.plain && start == self.end && self.start < self.end {
            self.end = field.plain_end();
            return;
        }
        self.flush(out);
        if field.plain {
            (self.start, self.end) = (start, field.plain_end());
        } else {
            write_field(out, field.name.get(self.head), field.value.get(self.head));
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.start < self.end {
            out.extend_from_slice(&self.head[self.start..self.end]);
        }
        (self.start, self.end) = (0, 0);
    }
}

/// ringway's own answers (error pages, `respond` routes, "100 Continue").
/// Content-Length is the body's length, also for HEAD (`head_only`), and is
/// left out for 1xx, 204 (RFC 9110 §8.6) and 304; the body is not written for
/// those statuses nor when `head_only`.
pub fn write_simple_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&[u8]>,
    extra: &[HeaderEdit<'_>],
    body: &[u8],
    close: bool,
    head_only: bool,
) {
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if !bodiless {
        out.extend_from_slice(b"Content-Length: ");
        write_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(content_type) = content_type {
        write_field(out, b"Content-Type", content_type);
    }
    if close {
        write_field(out, b"Connection", b"close");
    }
    write_edits(out, extra);
    out.extend_from_slice(b"\r\n");
    if !bodiless && !head_only {
        out.extend_from_slice(body);
    }
}

/// The standard reason phrase (RFC 9110 §15, plus 103 and 429/431 from
/// RFC 8297 and RFC 6585); "" for codes without one (an empty reason is valid,
/// RFC 9112 §4).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// An edit names this field (edit names are lower-case). Framing fields are
/// never edited.
#[inline]
pub(crate) fn is_edited(edits: &[HeaderEdit<'_>], name: &[u8]) -> bool {
    !edits.is_empty()
        && !is_framing_field(name)
        && edits.iter().any(|e| name.eq_ignore_ascii_case(e.name))
}

/// `is_edited` for a parsed field, whose name is already recognised.
#[inline]
fn is_edited_field(edits: &[HeaderEdit<'_>], fields: Fields<'_>, field: &HeaderField) -> bool {
    !edits.is_empty()
        && !field.known.is_framing()
        && edits
            .iter()
            .any(|e| field.name.get(fields.bytes).eq_ignore_ascii_case(e.name))
}

fn is_framing_field(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// Can `named_in_connection` be true for any field of this head? Most heads
/// have no Connection option but keep-alive or upgrade: no field to ask about.
fn connection_names_fields(fields: Fields<'_>) -> bool {
    let options = fields.summary.connection;
    options.close || options.names_others
}

/// RFC 9110 §7.6.1: the Connection field lists further hop-by-hop fields.
/// Host and Content-Length can never be removed this way: a client naming
/// them would make the upstream read a different request than ringway did.
/// Options naming hop-by-hop fields change nothing (those are dropped, or
/// kept on purpose, anyway), so the list is only read when it names others.
fn named_in_connection(fields: Fields<'_>, field: &HeaderField) -> bool {
    let options = fields.summary.connection;
    if field.known == Name::Close && options.close {
        return true;
    }
    if !options.names_others || matches!(field.known, Name::Host | Name::ContentLength) {
        return false;
    }
    let name = field.name.get(fields.bytes);
    fields
        .all(Name::Connection)
        .flat_map(list_elements)
        .any(|option| option.eq_ignore_ascii_case(name))
}

fn write_framing(out: &mut Vec<u8>, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => {
            let mut line = [0u8; CONTENT_LENGTH_LINE_MAX];
            out.extend_from_slice(content_length_line(&mut line, n));
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Empty | BodyFraming::UntilClose => {}
    }
}

const CONTENT_LENGTH: &[u8] = b"Content-Length: ";
/// "Content-Length: ", 20 digits, CRLF.
const CONTENT_LENGTH_LINE_MAX: usize = CONTENT_LENGTH.len() + 20 + 2;

/// `Content-Length: n` CRLF, composed on the stack back to front in `line`
/// (so that it is appended with one copy); returns the part written.
fn content_length_line(line: &mut [u8; CONTENT_LENGTH_LINE_MAX], n: u64) -> &[u8] {
    let end = line.len() - 2;
    line[end..].copy_from_slice(b"\r\n");
    let at = digits_ending_at(line, end, n) - CONTENT_LENGTH.len();
    line[at..at + CONTENT_LENGTH.len()].copy_from_slice(CONTENT_LENGTH);
    &line[at..]
}

fn write_edits(out: &mut Vec<u8>, edits: &[HeaderEdit<'_>]) {
    for edit in edits {
        let framing = is_framing_field(edit.name);
        let valid_name = !edit.name.is_empty() && edit.name.iter().all(|&b| is_tchar(b));
        if let Some(value) = edit.value
            && valid_name
            && !framing
        {
            out.extend_from_slice(edit.name);
            out.extend_from_slice(b": ");
            write_escaped(out, value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A field line from bytes already known to be valid (parsed or ours).
fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A value with every CTL except HTAB %-encoded (RFC 9110 §5.5 allows none).
fn write_escaped(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
    }
}

fn write_decimal(out: &mut Vec<u8>, n: u64) {
    const MAX_DIGITS: usize = 20;
    let mut digits = [0u8; MAX_DIGITS];
    let start = digits_ending_at(&mut digits, MAX_DIGITS, n);
    out.extend_from_slice(&digits[start..]);
}

/// Write the decimal digits of `n` into `buf` so that they end at `end`;
/// returns where they start. `buf` needs room for 20 digits before `end`.
fn digits_ending_at(buf: &mut [u8], end: usize, mut n: u64) -> usize {
    let mut at = end;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

#[cfg(test)]
mod tests;
