//! The field names ringway's decisions and writers ask about, recognised once
//! per field while a head is collected (as nginx's known-headers hash does),
//! so that no later lookup compares a name again.

/// A recognised field name; `Other` for every name ringway has no rule for.
/// Field names are case-insensitive (RFC 9110 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Name {
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    ProxyConnection,
    KeepAlive,
    Te,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRealIp,
    SecWebSocketKey,
    SecWebSocketVersion,
    Referer,
    UserAgent,
    /// Only as the name of a field a "Connection: close" would make hop-by-hop.
    Close,
}

impl Name {
    /// Classify a field name or a Connection option.
    ///
    /// The comparison folds case by setting bit 5 of every byte (0x20), which
    /// equals ASCII case-insensitive comparison against the lower-case names
    /// here (letters and '-') for every byte but CR, which would fold onto
    /// '-'. Names and list elements of a parsed head never hold a CR: httparse
    /// refuses it in both.
    pub(crate) fn classify(name: &[u8]) -> Name {
        let Some(&first) = name.first() else {
            return Name::Other;
        };
        let (lower, known): (&[u8], Name) = match (name.len(), first | 0x20) {
            (2, b't') => (b"te", Name::Te),
            (4, b'h') => (b"host", Name::Host),
            (5, b'c') => (b"close", Name::Close),
            (6, b'e') => (b"expect", Name::Expect),
            (7, b'u') => (b"upgrade", Name::Upgrade),
            (7, b'r') => (b"referer", Name::Referer),
            (9, b'x') => (b"x-real-ip", Name::XRealIp),
            (10, b'c') => (b"connection", Name::Connection),
            (10, b'k') => (b"keep-alive", Name::KeepAlive),
            (10, b'u') => (b"user-agent", Name::UserAgent),
            (14, b'c') => (b"content-length", Name::ContentLength),
            (15, b'x') => (b"x-forwarded-for", Name::XForwardedFor),
            (16, b'p') => (b"proxy-connection", Name::ProxyConnection),
            (16, b'x') => (b"x-forwarded-host", Name::XForwardedHost),
            (17, b't') => (b"transfer-encoding", Name::TransferEncoding),
            (17, b'x') => (b"x-forwarded-proto", Name::XForwardedProto),
            (17, b's') => (b"sec-websocket-key", Name::SecWebSocketKey),
            (21, b's') => (b"sec-websocket-version", Name::SecWebSocketVersion),
            _ => return Name::Other,
        };
        if folded_eq(name, lower) {
            known
        } else {
            Name::Other
        }
    }

    /// The recognised name that is exactly `lower_case_name`, for lookups by
    /// callers; `None` sends them to a scan by name.
    pub(crate) fn exactly(lower_case_name: &[u8]) -> Option<Name> {
        let name = Name::classify(lower_case_name);
        (name != Name::Other && name.as_lower() == lower_case_name).then_some(name)
    }

    pub(crate) fn as_lower(self) -> &'static [u8] {
        match self {
            Name::Other => b"",
            Name::Host => b"host",
            Name::ContentLength => b"content-length",
            Name::TransferEncoding => b"transfer-encoding",
            Name::Connection => b"connection",
            Name::ProxyConnection => b"proxy-connection",
            Name::KeepAlive => b"keep-alive",
            Name::Te => b"te",
            Name::Upgrade => b"upgrade",
            Name::Expect => b"expect",
            Name::XForwardedFor => b"x-forwarded-for",
            Name::XForwardedProto => b"x-forwarded-proto",
            Name::XForwardedHost => b"x-forwarded-host",
            Name::XRealIp => b"x-real-ip",
            Name::SecWebSocketKey => b"sec-websocket-key",
            Name::SecWebSocketVersion => b"sec-websocket-version",
            Name::Referer => b"referer",
            Name::UserAgent => b"user-agent",
            Name::Close => b"close",
        }
    }

    /// This name's bit in a head's set of present names.
    pub(crate) fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Fields that describe one connection, not the message (RFC 9110 §7.6.1),
    /// plus the non-standard Proxy-Connection and Keep-Alive.
    pub(crate) fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Name::Connection
                | Name::ProxyConnection
                | Name::KeepAlive
                | Name::Te
                | Name::TransferEncoding
                | Name::Upgrade
        )
    }

    /// The fields ringway rewrites on every proxied request.
    pub(crate) fn is_forwarding(self) -> bool {
        matches!(
            self,
            Name::XForwardedFor | Name::XForwardedProto | Name::XForwardedHost | Name::XRealIp
        )
    }

    /// The framing fields, which edits never touch.
    pub(crate) fn is_framing(self) -> bool {
        matches!(self, Name::ContentLength | Name::TransferEncoding)
    }
}

/// `name` equals `lower` (same length, lower-case letters and '-') with the
/// case of `name` folded; see `Name::classify`. Words of 4 or 8 bytes, the
/// last one overlapping, instead of a byte loop.
fn folded_eq(name: &[u8], lower: &[u8]) -> bool {
    fn word32(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
    }
    fn word64(s: &[u8], at: usize) -> u64 {
        let mut w = [0; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    }
    let n = name.len();
    if n != lower.len() {
        return false;
    }
    match n {
        0..4 => name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b),
        4..8 => {
            const FOLD: u32 = 0x2020_2020;
            word32(name, 0) | FOLD == word32(lower, 0)
                && word32(name, n - 4) | FOLD == word32(lower, n - 4)
        }
        _ => {
            const FOLD: u64 = 0x2020_2020_2020_2020;
            let mut at = 0;
            while at + 8 < n {
                if word64(name, at) | FOLD != word64(lower, at) {
                    return false;
                }
                at += 8;
            }
            word64(name, n - 8) | FOLD == word64(lower, n - 8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    const ALL: [Name; 19] = [
        Name::Other,
        Name::Host,
        Name::ContentLength,
        Name::TransferEncoding,
        Name::Connection,
        Name::ProxyConnection,
        Name::KeepAlive,
        Name::Te,
        Name::Upgrade,
        Name::Expect,
        Name::XForwardedFor,
        Name::XForwardedProto,
        Name::XForwardedHost,
        Name::XRealIp,
        Name::SecWebSocketKey,
        Name::SecWebSocketVersion,
        Name::Referer,
        Name::UserAgent,
        Name::Close,
    ];

    #[test]
    fn every_name_is_recognised_in_any_case_rfc9110_5_1() {
        for name in &ALL[1..] {
            let lower = name.as_lower();
            assert_eq!(Name::classify(lower), *name);
            assert_eq!(Name::classify(&lower.to_ascii_uppercase()), *name);
            assert_eq!(Name::exactly(lower), Some(*name));
            assert_eq!(Name::exactly(&lower.to_ascii_uppercase()), None);
        }
    }

    #[test]
    fn near_misses_are_other() {
        // Every recognised name with one byte changed, at every position.
        for name in &ALL[1..] {
            let lower = name.as_lower();
            for at in 0..lower.len() {
                for b in [b'_', b'-', b'0', b'a', b'z', b'~', 0x80, 0xe0] {
                    let mut near = lower.to_vec();
                    if near[at] == b || near[at] == b ^ 0x20 {
                        continue;
                    }
                    near[at] = b;
                    assert_eq!(Name::classify(&near), Name::Other, "{near:?}");
                }
            }
            assert_eq!(Name::classify(&lower[1..]), Name::Other);
            assert_eq!(Name::classify(&[lower, b"s"].concat()), Name::Other);
        }
        assert_eq!(Name::classify(b""), Name::Other);
        assert_eq!(Name::classify(b"accept"), Name::Other);
    }

    #[test]
    fn classification_agrees_with_ascii_case_folding_on_every_byte() {
        // Every byte but CR (which no name or list element holds) at every
        // position of every name: classify agrees with eq_ignore_ascii_case.
        for name in &ALL[1..] {
            let lower = name.as_lower();
            for at in 0..lower.len() {
                for b in (0..=255u8).filter(|&b| b != b'\r') {
                    let mut probe = lower.to_vec();
                    probe[at] = b;
                    let expected = if probe.eq_ignore_ascii_case(lower) {
                        *name
                    } else {
                        Name::Other
                    };
                    assert_eq!(Name::classify(&probe), expected, "{probe:?}");
                }
            }
        }
    }
}
