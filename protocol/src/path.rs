//! Request path normalisation for routing, with nginx's semantics: decode
//! %-escapes (`%2F` becomes `/`, as nginx does), merge repeated slashes, and
//! resolve "." and ".." segments (RFC 3986 §5.2.4). A path that climbs above
//! the root is refused rather than clamped, so `static` can never leave ROOT.

use std::borrow::Cow;

use crate::error::ProtocolError;

/// Normalise a request path (without its query).
///
/// Returns `Cow::Borrowed` when nothing changes, the common case, without
/// allocating. `"*"` (asterisk-form) is returned unchanged. Errors: a path
/// not starting with '/', an invalid %-escape or a decoded NUL (as nginx)
/// -> `Malformed`; ".." above the root -> `BadPath`.
pub fn normalize_path(raw: &[u8]) -> Result<Cow<'_, [u8]>, ProtocolError> {
    if raw == b"*" {
        return Ok(Cow::Borrowed(raw));
    }
    if raw.first() != Some(&b'/') {
        return Err(ProtocolError::Malformed);
    }
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw)?;
    let mut out = Vec::with_capacity(decoded.len());
    out.push(b'/');
    let mut segments = decoded[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            // "//" merges; a final empty segment is the trailing slash, and
            // `out` already ends with '/'.
            b"" | b"." => {}
            b".." => {
                if out.len() == 1 {
                    return Err(ProtocolError::BadPath);
                }
                // `out` is "/a/b/": drop "b/".
                out.pop();
                let parent = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(parent + 1);
            }
            name => {
                out.extend_from_slice(name);
                if !last {
                    out.push(b'/');
                }
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// No escapes, no empty, "." or ".." segment (a trailing slash is fine).
fn is_normal(raw: &[u8]) -> bool {
    if raw.contains(&b'%') {
        return false;
    }
    let mut segments = raw[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if matches!(segment, b"." | b"..") || (segment.is_empty() && !last) {
            return false;
        }
    }
    true
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex_value);
            let lo = raw.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(ProtocolError::Malformed);
            };
            let byte = hi << 4 | lo;
            if byte == 0 {
                return Err(ProtocolError::Malformed);
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests;
