//! Request-target forms (RFC 9112 §3.2) and the Host syntax (RFC 9110 §7.2).

use super::Method;
use super::fields::Span;
use crate::error::ProtocolError;

/// Where the routing-relevant parts of a request-target are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// The path; `None` for an absolute-form target with an empty path, which
    /// means "/" (RFC 9112 §3.2.1).
    pub(crate) path: Option<Span>,
    pub(crate) query: Option<Span>,
    /// The authority of an absolute-form target.
    pub(crate) authority: Option<Span>,
}

/// Split the request-target at `span` of `head`.
///
/// Accepted: origin-form (`/path?query`), absolute-form with an `http` or
/// `https` scheme (RFC 9112 §3.2.2), and asterisk-form for OPTIONS only
/// (§3.2.4). Authority-form is for CONNECT (§3.2.3), which a reverse proxy
/// does not tunnel, so CONNECT is refused whatever its target. A fragment is
/// never part of a request-target (§3.2), and userinfo in an absolute target
/// is an error (RFC 9110 §4.2.4).
pub(crate) fn parse_target(
    head: &[u8],
    span: Span,
    method: Method,
) -> Result<Target, ProtocolError> {
    let target = span.get(head);
    if method == Method::Connect || target.contains(&b'#') {
        return Err(ProtocolError::Malformed);
    }
    if target == b"*" {
        if method != Method::Options {
            return Err(ProtocolError::Malformed);
        }
        return Ok(Target {
            path: Some(span),
            query: None,
            authority: None,
        });
    }
    if target.first() == Some(&b'/') {
        let (path, query) = split_query(head, target);
        return Ok(Target {
            path: Some(path),
            query,
            authority: None,
        });
    }
    let rest = strip_scheme(target).ok_or(ProtocolError::Malformed)?;
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_len);
    if authority.is_empty() || authority.contains(&b'@') || !is_valid_host(authority) {
        return Err(ProtocolError::Malformed);
    }
    let (path, query) = match after.first() {
        Some(b'/') => {
            let (path, query) = split_query(head, after);
            (Some(path), query)
        }
        Some(_) => (None, Some(Span::of(head, &after[1..]))),
        None => (None, None),
    };
    Ok(Target {
        path,
        query,
        authority: Some(Span::of(head, authority)),
    })
}

fn split_query(head: &[u8], path_and_query: &[u8]) -> (Span, Option<Span>) {
    match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => (
            Span::of(head, &path_and_query[..q]),
            Some(Span::of(head, &path_and_query[q + 1..])),
        ),
        None => (Span::of(head, path_and_query), None),
    }
}

/// The part after `http://` or `https://` (schemes are case-insensitive, RFC 3986 §3.1).
fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [b"http://" as &[u8], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// Host = uri-host [ ":" port ] (RFC 9110 §7.2), checked at the character
/// level: reg-name, IP-literal and IPv4 characters, `:` and digits. An empty
/// value is allowed (RFC 9112 §3.2). Anything else (space, `/`, `@`, `\`)
/// would let a client steer `$host`-based redirects or routing.
pub(crate) fn is_valid_host(host: &[u8]) -> bool {
    host.iter().all(|&b| HOST_CHARS[usize::from(b)])
}

/// The bytes `is_valid_host` accepts, one lookup per byte instead of a
/// chain of comparisons.
static HOST_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=%:[]";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::{is_valid_host, parse_target};
    use crate::error::ProtocolError;
    use crate::h1::Method;
    use crate::h1::fields::Span;

    /// (path, query, authority) as owned bytes.
    type Parts = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

    fn parts(target: &[u8], method: Method) -> Result<Parts, ProtocolError> {
        let t = parse_target(target, Span::new(0, target.len()), method)?;
        Ok((
            t.path.map_or(b"/".to_vec(), |s| s.get(target).to_vec()),
            t.query.map(|s| s.get(target).to_vec()),
            t.authority.map(|s| s.get(target).to_vec()),
        ))
    }

    #[test]
    fn origin_form_rfc9112_3_2_1() {
        assert_eq!(
            parts(b"/a/b?x=1&y", Method::Get),
            Ok((b"/a/b".to_vec(), Some(b"x=1&y".to_vec()), None))
        );
        assert_eq!(
            parts(b"/?", Method::Get),
            Ok((b"/".to_vec(), Some(vec![]), None))
        );
    }

    #[test]
    fn absolute_form_rfc9112_3_2_2() {
        assert_eq!(
            parts(b"http://Example.com:8080/p?q", Method::Get),
            Ok((
                b"/p".to_vec(),
                Some(b"q".to_vec()),
                Some(b"Example.com:8080".to_vec())
            ))
        );
        assert_eq!(
            parts(b"HTTPS://h?q", Method::Get),
            Ok((b"/".to_vec(), Some(b"q".to_vec()), Some(b"h".to_vec())))
        );
        assert_eq!(
            parts(b"http://h", Method::Get),
            Ok((b"/".to_vec(), None, Some(b"h".to_vec())))
        );
        assert_eq!(
            parts(b"http:///p", Method::Get),
            Err(ProtocolError::Malformed)
        );
        assert_eq!(
            parts(b"ftp://h/p", Method::Get),
            Err(ProtocolError::Malformed)
        );
    }

    #[test]
    fn userinfo_is_refused_rfc9110_4_2_4() {
        assert_eq!(
            parts(b"http://u:p@h/", Method::Get),
            Err(ProtocolError::Malformed)
        );
    }

    #[test]
    fn asterisk_form_only_for_options_rfc9112_3_2_4() {
        assert_eq!(
            parts(b"*", Method::Options),
            Ok((b"*".to_vec(), None, None))
        );
        assert_eq!(parts(b"*", Method::Get), Err(ProtocolError::Malformed));
    }

    #[test]
    fn authority_form_and_connect_are_refused_rfc9112_3_2_3() {
        assert_eq!(
            parts(b"example.com:443", Method::Connect),
            Err(ProtocolError::Malformed)
        );
        assert_eq!(
            parts(b"example.com:443", Method::Get),
            Err(ProtocolError::Malformed)
        );
        assert_eq!(parts(b"/", Method::Connect), Err(ProtocolError::Malformed));
    }

    #[test]
    fn fragment_is_refused_rfc9112_3_2() {
        assert_eq!(
            parts(b"/a#frag", Method::Get),
            Err(ProtocolError::Malformed)
        );
    }

    #[test]
    fn host_syntax_rfc9110_7_2() {
        assert!(is_valid_host(b"example.com:8080"));
        assert!(is_valid_host(b"[::1]:80"));
        assert!(is_valid_host(b""));
        assert!(!is_valid_host(b"a b"));
        assert!(!is_valid_host(b"evil.com/x"));
        assert!(!is_valid_host(b"user@host"));
    }

    #[test]
    fn host_bytes_are_unreserved_sub_delims_pct_colon_brackets() {
        // RFC 3986 §2.2-2.3: unreserved and sub-delims; '%' of pct-encoded;
        // ':' before the port; '[' ']' around an IP-literal.
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_valid_host(&[b]), allowed(b), "byte {b:#04x}");
        }
    }
}
