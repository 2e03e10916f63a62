use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use super::{
    Forwarded, connection_lines, is_forwarding_header, is_hop_by_hop, write_forwarding_headers,
};
use crate::h1::write::HeaderEdit;
use crate::h1::{HeadLimits, RequestHead, parse_request};

fn head(raw: &[u8]) -> RequestHead {
    let limits = HeadLimits {
        max_head_size: 8192,
        max_headers: 64,
    };
    parse_request(&mut BytesMut::from(raw), &limits, Vec::new())
        .unwrap()
        .unwrap()
}

fn forwarding(raw: &[u8], fwd: &Forwarded<'_>, edits: &[HeaderEdit<'_>]) -> String {
    let mut out = Vec::new();
    write_forwarding_headers(&mut out, &head(raw), fwd, edits);
    String::from_utf8(out).unwrap()
}

const SPOOFING: &[u8] = b"GET / HTTP/1.1\r\nHost: app.example:8443\r\n\
X-Forwarded-For: 1.1.1.1\r\nX-Real-IP: 1.1.1.1\r\nX-Forwarded-Proto: https\r\n\
X-Forwarded-Host: spoofed.example\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n";

fn peer(trusted_peer: bool) -> Forwarded<'static> {
    Forwarded {
        client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        proto: b"http",
        trusted_peer,
        lines: b"",
    }
}

#[test]
fn untrusted_peer_replaces_everything_design_2_2() {
    assert_eq!(
        forwarding(SPOOFING, &peer(false), &[]),
        "X-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: app.example:8443\r\n"
    );
}

#[test]
fn trusted_peer_appends_and_keeps_design_2_2() {
    assert_eq!(
        forwarding(SPOOFING, &peer(true), &[]),
        "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7\r\nX-Real-IP: 1.1.1.1\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed.example\r\n"
    );
}

// DESIGN.md §2.2.

#[test]
fn trusted_peer_without_client_values_uses_ours() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        forwarding(raw, &peer(true), &[]),
        "X-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\n"
    );
}

// DESIGN.md §2.2; RFC 4291 §2.5.5.2 IPv4-mapped addresses.

#[test]
fn ipv4_mapped_ipv6_prints_as_ipv4() {
    let fwd = Forwarded {
        client: IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
        proto: b"https",
        trusted_peer: false,
        lines: b"",
    };
    let out = forwarding(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &fwd, &[]);
    assert!(
        out.starts_with("X-Forwarded-For: 192.0.2.1\r\nX-Real-IP: 192.0.2.1\r\n"),
        "{out}"
    );
}

// DESIGN.md §2.2, as nginx $remote_addr (RFC 5952 text form).

#[test]
fn ipv6_prints_without_brackets() {
    let fwd = Forwarded {
        client: IpAddr::V6(Ipv6Addr::LOCALHOST),
        proto: b"http",
        trusted_peer: false,
        lines: b"",
    };
    let out = forwarding(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &fwd, &[]);
    assert!(out.starts_with("X-Forwarded-For: ::1\r\n"), "{out}");
}

// RFC 9112 §3.2: HTTP/1.0 may omit Host; nothing to forward then.

#[test]
fn no_host_means_no_forwarded_host() {
    let out = forwarding(b"GET / HTTP/1.0\r\n\r\n", &peer(false), &[]);
    assert!(!out.contains("X-Forwarded-Host"), "{out}");
}

// DESIGN.md §2.1: request_headers win over ringway's own fields.

#[test]
fn edits_suppress_generated_fields() {
    let edits = [
        HeaderEdit {
            name: b"x-real-ip",
            value: None,
        },
        HeaderEdit {
            name: b"x-forwarded-proto",
            value: Some(b"https"),
        },
    ];
    assert_eq!(
        forwarding(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &peer(false), &edits),
        "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Host: a\r\n"
    );
}

#[test]
fn hop_by_hop_names_rfc9110_7_6_1() {
    for name in [
        &b"Connection"[..],
        b"proxy-connection",
        b"Keep-Alive",
        b"TE",
        b"transfer-encoding",
        b"Upgrade",
    ] {
        assert!(is_hop_by_hop(name), "{name:?}");
    }
    assert!(!is_hop_by_hop(b"content-length"));
    assert!(!is_hop_by_hop(b"trailer"));
    assert!(is_forwarding_header(b"X-Forwarded-For"));
    assert!(is_forwarding_header(b"x-real-ip"));
    assert!(!is_forwarding_header(b"forwarded"));
}

// The lines a connection renders once are the lines composed per request.

#[test]
fn connection_lines_write_what_each_request_would() {
    let clients = [
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 255)),
        IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let heads: [&[u8]; 3] = [
        SPOOFING,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ];
    let edit = |name: &'static [u8], value: Option<&'static [u8]>| HeaderEdit { name, value };
    let edit_sets: [&[HeaderEdit<'_>]; 4] = [
        &[],
        &[edit(b"x-real-ip", None)],
        &[edit(b"x-forwarded-proto", Some(b"https"))],
        &[edit(b"x-custom", Some(b"1"))],
    ];
    for client in clients {
        for proto in [&b"http"[..], b"https"] {
            let mut lines = Vec::new();
            connection_lines(&mut lines, client, proto);
            for trusted_peer in [false, true] {
                for raw in heads {
                    for edits in edit_sets {
                        let composed = Forwarded {
                            client,
                            proto,
                            trusted_peer,
                            lines: b"",
                        };
                        let rendered = Forwarded {
                            lines: &lines,
                            ..composed
                        };
                        assert_eq!(
                            forwarding(raw, &rendered, edits),
                            forwarding(raw, &composed, edits),
                            "{client} {trusted_peer} {edits:?}"
                        );
                    }
                }
            }
        }
    }
}
