//! Header fields as spans into the head buffer, and the RFC 9110 §5.6 list
//! syntax helpers every field-level decision is built on.

use super::name::Name;
use crate::error::ProtocolError;

/// A half-open byte range into a head buffer. `u32` keeps `HeaderField` at 16
/// bytes; heads are bounded far below 4 GiB by `HeadLimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The span of `part`, which must be a sub-slice of `base`.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        debug_assert!(start + part.len() <= base.len());
        Span::new(start, start + part.len())
    }

    pub(crate) fn get(self, base: &[u8]) -> &[u8] {
        &base[self.start as usize..self.end as usize]
    }
}

/// One header field line: byte offsets of its name and its trimmed value, and
/// what the name is. No header byte is ever copied.
#[derive(Debug, Clone, Copy)]
pub struct HeaderField {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) known: Name,
    /// The line is exactly `name ": " value CRLF`, as a writer would write
    /// it, so it can be copied whole.
    pub(crate) plain: bool,
}

impl HeaderField {
    /// The end of the line, CRLF included, when `plain`.
    pub(crate) fn plain_end(&self) -> usize {
        self.value.end as usize + 2
    }
}

/// What a head's Connection field says (RFC 9112 §9.6, RFC 9110 §7.6.1),
/// found in one pass over its options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
    /// An option naming a field that is not hop-by-hop anyway (other than
    /// "close"): the writers must look for fields it names.
    pub(crate) names_others: bool,
}

/// What collecting a head's fields learned beyond the spans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    /// `Name::bit` of every recognised name present.
    pub(crate) present: u32,
    pub(crate) connection: ConnectionOptions,
    /// The Content-Length when every line of it is one and the same number,
    /// else `SCAN_LENGTH`: `content_length` then reads the lines again
    /// (a list, a bad value, lines that disagree, or `u64::MAX` itself).
    pub(crate) length: u64,
}

/// `Summary::length` when the lines must be read again.
const SCAN_LENGTH: u64 = u64::MAX;

impl Default for Summary {
    fn default() -> Summary {
        Summary {
            present: 0,
            connection: ConnectionOptions::default(),
            length: SCAN_LENGTH,
        }
    }
}

/// A borrowed view of a head's fields with the lookups the decisions need.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) list: &'a [HeaderField],
    pub(crate) summary: Summary,
}

impl<'a> Fields<'a> {
    /// (name as sent, value trimmed), in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.list
            .iter()
            .map(move |f| (f.name.get(self.bytes), f.value.get(self.bytes)))
    }

    /// A field of this name is present.
    pub(crate) fn has(self, name: Name) -> bool {
        self.summary.present & name.bit() != 0
    }

    /// Values of every field with this recognised name, in order.
    pub(crate) fn all(self, name: Name) -> impl Iterator<Item = &'a [u8]> {
        let list = if self.has(name) { self.list } else { &[] };
        list.iter()
            .filter(move |f| f.known == name)
            .map(move |f| f.value.get(self.bytes))
    }

    pub(crate) fn first(self, name: Name) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    /// The first field named `lower_case_name`, compared case-insensitively.
    pub(crate) fn first_named(self, lower_case_name: &[u8]) -> Option<&'a [u8]> {
        match Name::exactly(lower_case_name) {
            Some(name) => self.first(name),
            None => self
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(lower_case_name))
                .map(|(_, v)| v),
        }
    }
}

/// Record the spans of httparse's headers and summarise the recognised names
/// and the Connection options.
///
/// The values are not checked again: httparse (1.10 and later) refuses every
/// byte outside field-value = *( VCHAR / obs-text / SP / HTAB ) (RFC 9110
/// §5.5), DEL included, on its table path and on each of its vectored paths,
/// which `ctl_anywhere_in_a_long_value_rfc9110_5_5` holds it to. (Checking
/// them here too cost 50 instructions a field, 2.5 % of a proxied request.)
pub(crate) fn collect_fields(
    base: &[u8],
    headers: &[httparse::Header<'_>],
    out: &mut Vec<HeaderField>,
) -> Summary {
    out.clear();
    out.reserve(headers.len());
    let mut present = 0;
    // The Content-Length while every line so far is one and the same
    // number; `SCAN_LENGTH` from the first that is not.
    let mut length = None;
    for h in headers {
        // httparse trims the value (RFC 9110 §5.5: OWS around it is not
        // part of it) and refuses obs-fold, so no whitespace is left at
        // either end; `values_are_trimmed_of_ows_rfc9110_5_5` holds it to that.
        let trimmed = h.value;
        debug_assert_eq!(trim_ows(trimmed), trimmed);
        let name = Span::of(base, h.name.as_bytes());
        let value = Span::of(base, trimmed);
        let known = Name::classify(h.name.as_bytes());
        present |= known.bit();
        if known == Name::ContentLength {
            length = match (length, parse_decimal(trimmed)) {
                (None, Some(n)) => Some(n),
                (Some(first), Some(n)) if first == n => Some(n),
                _ => Some(SCAN_LENGTH),
            };
        }
        let (colon, end) = (name.end as usize, value.end as usize);
        let plain = value.start as usize == colon + 2
            && base.get(colon + 1) == Some(&b' ')
            && base.get(end) == Some(&b'\r');
        out.push(HeaderField {
            name,
            value,
            known,
            plain,
        });
    }
    let mut summary = Summary {
        present,
        connection: ConnectionOptions::default(),
        length: length.unwrap_or(SCAN_LENGTH),
    };
    let fields = Fields {
        bytes: base,
        list: out,
        summary,
    };
    if !fields.has(Name::Connection) {
        return summary;
    }
    for option in fields.all(Name::Connection).flat_map(list_elements) {
        let c = &mut summary.connection;
        match Name::classify(option) {
            Name::Close => c.close = true,
            Name::KeepAlive => c.keep_alive = true,
            Name::Upgrade => c.upgrade = true,
            name if name.is_hop_by_hop() => {}
            _ => c.names_others |= !option.is_empty(),
        }
    }
    summary
}

/// VCHAR or obs-text (RFC 9110 §5.5).
pub(crate) fn is_field_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Strip optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The elements of a comma-separated list (RFC 9110 §5.6.1), trimmed; empty
/// elements are yielded too so that strict callers can refuse them.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// Content-Length (RFC 9112 §6.3 p5, RFC 9110 §8.6): every value of every
/// Content-Length line must be 1*DIGIT without sign, inner space or overflow,
/// and all must be the same number. `None` when the field is absent.
///
/// The common cases cost a bit test: no field (most requests), or lines that
/// `collect_fields` found to be one number (most responses). Only the others
/// read the lines again.
#[inline]
pub(crate) fn content_length(fields: Fields<'_>) -> Result<Option<u64>, ProtocolError> {
    if !fields.has(Name::ContentLength) {
        return Ok(None);
    }
    match fields.summary.length {
        SCAN_LENGTH => present_length(fields).map(Some),
        n => Ok(Some(n)),
    }
}

/// `content_length` of a head whose lines `collect_fields` could not settle.
fn present_length(fields: Fields<'_>) -> Result<u64, ProtocolError> {
    let mut found = None;
    for field in fields.list {
        if field.known != Name::ContentLength {
            continue;
        }
        let value = field.value.get(fields.bytes);
        // Nearly always one number; a list is taken apart out of line.
        let n = match parse_decimal(value) {
            Some(n) => n,
            None => list_length(value)?,
        };
        found = Some(agree(found, n)?);
    }
    found.ok_or(ProtocolError::BadContentLength)
}

/// The one number of a Content-Length value that is a list of the same
/// number ("42, 42"). A list has a comma, which no number has, so any other
/// value that is not a number is refused.
#[cold]
fn list_length(value: &[u8]) -> Result<u64, ProtocolError> {
    if !value.contains(&b',') {
        return Err(ProtocolError::BadContentLength);
    }
    let mut found = None;
    for element in list_elements(value) {
        let n = parse_decimal(element).ok_or(ProtocolError::BadContentLength)?;
        found = Some(agree(found, n)?);
    }
    found.ok_or(ProtocolError::BadContentLength)
}

/// `n`, when it is the first length or the same as the one found before.
fn agree(found: Option<u64>, n: u64) -> Result<u64, ProtocolError> {
    match found {
        Some(prev) if prev != n => Err(ProtocolError::BadContentLength),
        _ => Ok(n),
    }
}

/// 1*DIGIT as a u64; `None` on any other byte, on emptiness or on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    // Nineteen digits cannot overflow (u64::MAX has twenty): no checks.
    if digits.len() < 20 {
        let mut n = 0u64;
        for &b in digits {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            n = n * 10 + u64::from(digit);
        }
        return Some(n);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::{list_elements, parse_decimal, trim_ows};

    #[test]
    fn decimal_rejects_sign_space_and_overflow_rfc9110_8_6() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(
            parse_decimal(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal(b"00000000000000000042"), Some(42));
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
        assert_eq!(parse_decimal(b"12/4"), None);
        assert_eq!(parse_decimal(b"12:4"), None);
        assert_eq!(parse_decimal(b"+5"), None);
        assert_eq!(parse_decimal(b"-5"), None);
        assert_eq!(parse_decimal(b"5 5"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"0x10"), None);
    }

    #[test]
    fn list_elements_are_trimmed_rfc9110_5_6_1() {
        let v: Vec<&[u8]> = list_elements(b" a ,\tb,,c ").collect();
        assert_eq!(v, [b"a" as &[u8], b"b", b"", b"c"]);
        assert_eq!(trim_ows(b" \t x \t"), b"x");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
