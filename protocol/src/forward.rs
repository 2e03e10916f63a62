//! Hop-by-hop fields (RFC 9110 §7.6.1) and the forwarding headers every
//! proxied request carries (DESIGN.md §2.2). A client can only contribute to
//! X-Forwarded-* when its peer address is a trusted proxy; otherwise the
//! values are replaced, so they cannot be spoofed.

use std::io::Write;
use std::net::IpAddr;

use crate::h1::RequestHead;
use crate::h1::fields::Fields;
use crate::h1::name::Name;
use crate::h1::write::{HeaderEdit, is_edited};

/// What ringway knows about the client connection of a request.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// Peer address of the client connection.
    pub client: IpAddr,
    /// `b"http"` or `b"https"`.
    pub proto: &'a [u8],
    /// The peer is in `trusted_proxies`: its X-Forwarded-* are kept.
    pub trusted_peer: bool,
    /// `connection_lines(client, proto)`, rendered once for the connection,
    /// or empty. Written whole, in place of composing the same three lines
    /// again, for a peer that is not trusted when no edit names them.
    pub lines: &'a [u8],
}

/// X-Forwarded-For, X-Real-IP and X-Forwarded-Proto as a peer that is not a
/// trusted proxy gets them: from the connection alone, whatever the request
/// says. A connection renders them once (`Forwarded::lines`) and every
/// request it forwards copies them as one run.
pub fn connection_lines(out: &mut Vec<u8>, client: IpAddr, proto: &[u8]) {
    let client = IpText::new(client.to_canonical());
    // One allocation for the three lines, not one per doubling.
    const NAMES: usize = "X-Forwarded-For: \r\nX-Real-IP: \r\nX-Forwarded-Proto: \r\n".len();
    out.reserve(NAMES + 2 * client.as_bytes().len() + proto.len());
    for name in [b"X-Forwarded-For: " as &[u8], b"X-Real-IP: "] {
        out.extend_from_slice(name);
        out.extend_from_slice(client.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-Proto: ");
    out.extend_from_slice(proto);
    out.extend_from_slice(b"\r\n");
}

/// Fields that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus the non-standard Proxy-Connection and Keep-Alive that clients still send.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    [
        b"connection" as &[u8],
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// The fields ringway rewrites on every proxied request.
pub fn is_forwarding_header(name: &[u8]) -> bool {
    [
        b"x-forwarded-for" as &[u8],
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Append X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host
/// lines for `head`, except those an edit names (the edit wins).
///
/// Untrusted peer: each is set from the connection, whatever the client sent.
/// Trusted peer: the client's X-Forwarded-For values are kept, joined in order,
/// with the peer appended; its X-Real-IP, X-Forwarded-Proto and
/// X-Forwarded-Host are kept when present. X-Forwarded-Host is the Host as
/// sent, port included, and is left out when the request had none.
pub(crate) fn write_forwarding_headers(
    out: &mut Vec<u8>,
    head: &RequestHead,
    fwd: &Forwarded<'_>,
    edits: &[HeaderEdit<'_>],
) {
    let fields = head.fields();
    if !fwd.trusted_peer
        && !fwd.lines.is_empty()
        && !is_edited(edits, b"x-forwarded-for")
        && !is_edited(edits, b"x-real-ip")
        && !is_edited(edits, b"x-forwarded-proto")
    {
        out.extend_from_slice(fwd.lines);
        write_line(out, edits, b"X-Forwarded-Host", head.host());
        return;
    }
    let client = IpText::new(fwd.client.to_canonical());
    if !is_edited(edits, b"x-forwarded-for") {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if fwd.trusted_peer {
            for value in fields.all(Name::XForwardedFor).filter(|v| !v.is_empty()) {
                out.extend_from_slice(value);
                out.extend_from_slice(b", ");
            }
        }
        out.extend_from_slice(client.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !is_edited(edits, b"x-real-ip") {
        out.extend_from_slice(b"X-Real-IP: ");
        match kept(fwd, fields, Name::XRealIp) {
            Some(kept) => out.extend_from_slice(kept),
            None => out.extend_from_slice(client.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let proto = kept(fwd, fields, Name::XForwardedProto).or(Some(fwd.proto));
    write_line(out, edits, b"X-Forwarded-Proto", proto);
    let host = kept(fwd, fields, Name::XForwardedHost).or(head.host());
    write_line(out, edits, b"X-Forwarded-Host", host);
}

/// The client's own value of a forwarding field, kept for a trusted peer.
fn kept<'a>(fwd: &Forwarded<'_>, fields: Fields<'a>, name: Name) -> Option<&'a [u8]> {
    if fwd.trusted_peer {
        fields.first(name)
    } else {
        None
    }
}

fn write_line(out: &mut Vec<u8>, edits: &[HeaderEdit<'_>], name: &[u8], value: Option<&[u8]>) {
    if let Some(value) = value
        && !is_edited(edits, name)
    {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// An address as text, formatted once per request and written twice.
struct IpText {
    /// The longest IPv6 text is 45 bytes (IPv4-embedded, RFC 4291 §2.2).
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> IpText {
        let mut text = IpText {
            buf: [0; 48],
            len: 0,
        };
        text.len = write_ip(&mut text.buf, ip);
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The address as nginx's `$remote_addr` prints it: IPv6 without brackets;
/// IPv4-mapped IPv6 already canonicalised to IPv4 by the caller. Returns the
/// length written.
fn write_ip(buf: &mut [u8; 48], ip: IpAddr) -> usize {
    match ip {
        // Written for every forwarded request: digits by hand, not through
        // the formatting machinery.
        IpAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    buf[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    buf[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                buf[len] = b'0' + octet % 10;
                len += 1;
            }
            len
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            // 48 bytes hold any IPv6 text, so this write cannot fail.
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    }
}

#[cfg(test)]
mod tests;
