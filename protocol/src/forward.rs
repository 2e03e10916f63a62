//! Hop-by-hop fields (RFC 9110 §7.6.1) and the forwarding headers every
//! proxied request carries (DESIGN.md §2.2). A client can only contribute to
//! X-Forwarded-* when its peer address is a trusted proxy; otherwise the
//! values are replaced, so they cannot be spoofed.

use std::io::Write;
use std::net::IpAddr;

use crate::h1::RequestHead;
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
    let client = fwd.client.to_canonical();
    if !is_edited(edits, b"x-forwarded-for") {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if fwd.trusted_peer {
            for value in fields.all(b"x-forwarded-for").filter(|v| !v.is_empty()) {
                out.extend_from_slice(value);
                out.extend_from_slice(b", ");
            }
        }
        write_ip(out, client);
        out.extend_from_slice(b"\r\n");
    }
    if !is_edited(edits, b"x-real-ip") {
        out.extend_from_slice(b"X-Real-IP: ");
        match fields.first(b"x-real-ip").filter(|_| fwd.trusted_peer) {
            Some(kept) => out.extend_from_slice(kept),
            None => write_ip(out, client),
        }
        out.extend_from_slice(b"\r\n");
    }
    let proto = kept_or(fwd, fields.first(b"x-forwarded-proto"), Some(fwd.proto));
    write_line(out, edits, b"X-Forwarded-Proto", proto);
    let host = kept_or(fwd, fields.first(b"x-forwarded-host"), head.host());
    write_line(out, edits, b"X-Forwarded-Host", host);
}

fn kept_or<'a>(
    fwd: &Forwarded<'_>,
    sent: Option<&'a [u8]>,
    ours: Option<&'a [u8]>,
) -> Option<&'a [u8]> {
    match sent {
        Some(v) if fwd.trusted_peer => Some(v),
        _ => ours,
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

/// The address as nginx's `$remote_addr` prints it: IPv6 without brackets;
/// IPv4-mapped IPv6 already canonicalised to IPv4 by the caller.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        // Written once or twice per forwarded request: digits by hand, not
        // through the formatting machinery.
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests;
