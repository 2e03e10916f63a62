//! Header fields as spans into the head buffer, and the RFC 9110 §5.6 list
//! syntax helpers every field-level decision is built on.

use crate::error::ProtocolError;

/// A half-open byte range into a head buffer. `u32` keeps `HeaderField` at 16
/// bytes; heads are bounded far below 4 GiB by `HeadLimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
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

/// One header field line: byte offsets of its name and its trimmed value.
/// No header byte is ever copied.
#[derive(Debug, Clone, Copy)]
pub struct HeaderField {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A borrowed view of a head's fields with the lookups the decisions need.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) list: &'a [HeaderField],
}

impl<'a> Fields<'a> {
    /// (name as sent, value trimmed), in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.list
            .iter()
            .map(move |f| (f.name.get(self.bytes), f.value.get(self.bytes)))
    }

    /// Values of every field named `lower_case_name`, in order.
    pub(crate) fn all(self, lower_case_name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(lower_case_name))
            .map(|(_, v)| v)
    }

    pub(crate) fn first(self, lower_case_name: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lower_case_name))
            .map(|(_, v)| v)
    }

    /// True if a list-valued field (RFC 9110 §5.6.1) named `lower_case_name`
    /// contains `token`, compared case-insensitively (e.g. Connection options).
    pub(crate) fn has_token(self, lower_case_name: &'a [u8], token: &[u8]) -> bool {
        self.all(lower_case_name)
            .flat_map(list_elements)
            .any(|e| e.eq_ignore_ascii_case(token))
    }
}

/// Record the spans of httparse's headers, checking each value.
///
/// httparse already rejects CR, LF and most CTLs, but its SIMD paths are more
/// lenient than its tables (DEL, for one), so the RFC 9110 §5.5 rule is
/// enforced here once more: field-value = *( VCHAR / obs-text / SP / HTAB ).
pub(crate) fn collect_fields(
    base: &[u8],
    headers: &[httparse::Header<'_>],
    out: &mut Vec<HeaderField>,
) -> Result<(), ProtocolError> {
    out.clear();
    out.reserve(headers.len());
    for h in headers {
        if !h
            .value
            .iter()
            .all(|&b| is_field_vchar(b) || b == b' ' || b == b'\t')
        {
            return Err(ProtocolError::InvalidHeaderValue);
        }
        let value = trim_ows(h.value);
        out.push(HeaderField {
            name: Span::of(base, h.name.as_bytes()),
            value: Span::of(base, value),
        });
    }
    Ok(())
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
pub(crate) fn content_length(fields: Fields<'_>) -> Result<Option<u64>, ProtocolError> {
    let mut found = None;
    for element in fields.all(b"content-length").flat_map(list_elements) {
        let n = parse_decimal(element).ok_or(ProtocolError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(ProtocolError::BadContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// 1*DIGIT as a u64; `None` on any other byte, on emptiness or on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
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
