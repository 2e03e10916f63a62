use std::net::{IpAddr, Ipv4Addr};

use bytes::BytesMut;

use super::{
    ClientResponse, HeaderEdit, UpstreamRequest, reason_phrase, response_head_passes_unchanged,
    write_request_head, write_response_head, write_simple_response,
};
use crate::forward::Forwarded;
use crate::h1::{
    HeadLimits, Method, RequestHead, ResponseHead, Version, parse_request, parse_response,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 8192,
    max_headers: 64,
};

const FWD: Forwarded<'static> = Forwarded {
    client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
    proto: b"http",
    trusted_peer: false,
    lines: b"",
};

fn request(raw: &[u8]) -> RequestHead {
    parse_request(&mut BytesMut::from(raw), &LIMITS, Vec::new())
        .unwrap()
        .unwrap()
}

fn response(raw: &[u8], method: Method) -> ResponseHead {
    parse_response(&mut BytesMut::from(raw), &LIMITS, method, Vec::new())
        .unwrap()
        .unwrap()
}

fn upstream(raw: &[u8], pass_upgrade: bool, edits: &[HeaderEdit<'_>]) -> String {
    let head = request(raw);
    let req = UpstreamRequest {
        target: head.target(),
        forwarded: &FWD,
        default_host: b"default.example",
        pass_upgrade,
        edits,
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &head, &req);
    String::from_utf8(out).unwrap()
}

fn client(raw: &[u8], method: Method, resp: &ClientResponse<'_>) -> String {
    let head = response(raw, method);
    let mut out = Vec::new();
    write_response_head(&mut out, &head, resp);
    String::from_utf8(out).unwrap()
}

const KEEP_11: ClientResponse<'static> = ClientResponse {
    client_version: Version::Http11,
    close: false,
    dechunk: false,
    edits: &[],
};

#[test]
fn request_head_strips_hop_by_hop_and_rewrites_forwarding_rfc9110_7_6_1() {
    let raw = b"GET /x?y HTTP/1.1\r\nUser-Agent: t\r\nHost: app.example\r\n\
Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n\
TE: trailers\r\nX-Secret: s\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\
Accept: */*\r\n\r\n";
    assert_eq!(
        upstream(raw, false, &[]),
        "GET /x?y HTTP/1.1\r\nHost: app.example\r\nUser-Agent: t\r\nAccept: */*\r\n\
X-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n\
X-Forwarded-Host: app.example\r\n\r\n"
    );
}

#[test]
fn request_head_passes_chunked_framing_and_drops_expect_rfc9112_6_1() {
    let raw = b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
Expect: 100-continue\r\n\r\n";
    assert_eq!(
        upstream(raw, false, &[]),
        "POST /u HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\n\
X-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

#[test]
fn request_head_normalises_content_length_rfc9112_6_3_p5() {
    let raw = b"PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n";
    let out = upstream(raw, false, &[]);
    assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    assert!(out.ends_with("Content-Length: 3\r\n\r\n"), "{out}");
}

// RFC 9110 §7.6.1: Connection options name hop-by-hop fields, never framing or Host.

#[test]
fn connection_cannot_strip_host_or_content_length() {
    let raw = b"PUT /u HTTP/1.1\r\nHost: a\r\nConnection: Host, Content-Length\r\n\
Content-Length: 3\r\n\r\n";
    let out = upstream(raw, false, &[]);
    assert!(out.contains("\r\nHost: a\r\n"), "{out}");
    assert!(out.contains("\r\nContent-Length: 3\r\n"), "{out}");
}

#[test]
fn request_head_upgrade_passed_or_stripped_rfc9110_7_8() {
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Key: k\r\n\r\n";
    let fwd = "X-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n\
X-Forwarded-Host: a\r\n";
    assert_eq!(
        upstream(raw, true, &[]),
        format!(
            "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n{fwd}\
Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        )
    );
    assert_eq!(
        upstream(raw, false, &[]),
        format!("GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n{fwd}\r\n")
    );
}

// DESIGN.md §2.1 request_headers; RFC 9112 §6.3: framing is ringway's.

#[test]
fn request_edits_set_remove_and_never_touch_framing() {
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\nX-Remove: 1\r\nX-Set: old\r\nContent-Length: 2\r\n\r\n";
    let edits = [
        HeaderEdit {
            name: b"x-remove",
            value: None,
        },
        HeaderEdit {
            name: b"x-set",
            value: Some(b"new"),
        },
        HeaderEdit {
            name: b"content-length",
            value: Some(b"999"),
        },
        HeaderEdit {
            name: b"host",
            value: Some(b"backend.internal"),
        },
    ];
    assert_eq!(
        upstream(raw, false, &edits),
        "POST / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\n\
X-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\nContent-Length: 2\r\nx-set: new\r\n\
host: backend.internal\r\n\r\n"
    );
}

// RFC 9110 §5.5: no CR, LF or NUL in a field value.

#[test]
fn edit_values_cannot_split_the_head() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let edits = [HeaderEdit {
        name: b"x-uri",
        value: Some(b"/a\r\nEvil: 1\0"),
    }];
    let out = upstream(raw, false, &edits);
    assert!(out.contains("\r\nx-uri: /a%0D%0AEvil: 1%00\r\n"), "{out}");
}

#[test]
fn http10_without_host_gets_the_default_host_rfc9112_3_2() {
    let out = upstream(b"GET / HTTP/1.0\r\n\r\n", false, &[]);
    assert!(
        out.starts_with("GET / HTTP/1.1\r\nHost: default.example\r\n"),
        "{out}"
    );
    assert!(!out.contains("X-Forwarded-Host"), "{out}");
}

#[test]
fn absolute_form_sends_the_authority_as_host_rfc9112_3_2_2() {
    let out = upstream(
        b"GET http://real.example/p HTTP/1.1\r\nHost: other\r\n\r\n",
        false,
        &[],
    );
    assert!(out.contains("\r\nHost: real.example\r\n"), "{out}");
    assert!(!out.contains("other"), "{out}");
}

#[test]
fn response_head_strips_hop_by_hop_rfc9110_7_6_1() {
    let raw = b"HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\n\
Keep-Alive: timeout=5\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        client(raw, Method::Get, &KEEP_11),
        "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
    );
}

#[test]
fn response_head_keeps_chunked_unless_dechunked_rfc9112_7() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";
    assert_eq!(
        client(raw, Method::Get, &KEEP_11),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n"
    );
    let resp = ClientResponse {
        client_version: Version::Http10,
        close: true,
        dechunk: true,
        edits: &[],
    };
    assert_eq!(
        client(raw, Method::Get, &resp),
        "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn response_head_connection_for_http10_client_rfc9112_9_3() {
    let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
    let resp = ClientResponse {
        client_version: Version::Http10,
        ..KEEP_11
    };
    assert_eq!(
        client(raw, Method::Get, &resp),
        "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
    );
    let resp = ClientResponse {
        close: true,
        ..KEEP_11
    };
    assert_eq!(
        client(raw, Method::Get, &resp),
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    );
}

// RFC 9110 §2.5: a sender sends its own highest version.

#[test]
fn response_head_status_line_is_always_http11() {
    let raw = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert!(client(raw, Method::Get, &KEEP_11).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn switching_protocols_keeps_upgrade_rfc9110_15_2_2() {
    let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: abc\r\n\r\n";
    assert_eq!(
        client(raw, Method::Get, &KEEP_11),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n\
Connection: upgrade\r\n\r\n"
    );
}

#[test]
fn response_to_head_keeps_its_content_length_rfc9110_9_3_2() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    assert_eq!(
        client(raw, Method::Head, &KEEP_11),
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    );
}

// DESIGN.md §2.1 response_headers.

#[test]
fn response_edits_replace_and_remove() {
    let raw =
        b"HTTP/1.1 200 OK\r\nServer: upstream\r\nX-Powered-By: php\r\nContent-Length: 0\r\n\r\n";
    let edits = [
        HeaderEdit {
            name: b"x-powered-by",
            value: None,
        },
        HeaderEdit {
            name: b"server",
            value: Some(b"ringway"),
        },
    ];
    let resp = ClientResponse {
        edits: &edits,
        ..KEEP_11
    };
    assert_eq!(
        client(raw, Method::Get, &resp),
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nserver: ringway\r\n\r\n"
    );
}

// RFC 9112 §4, RFC 6585 §4 (429).

#[test]
fn simple_response_with_body() {
    let mut out = Vec::new();
    let extra = [HeaderEdit {
        name: b"retry-after",
        value: Some(b"1"),
    }];
    write_simple_response(
        &mut out,
        429,
        Some(b"text/plain"),
        &extra,
        b"slow down\n",
        true,
        false,
    );
    assert_eq!(
        out,
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\
Connection: close\r\nretry-after: 1\r\n\r\nslow down\n"
    );
}

#[test]
fn simple_response_to_head_keeps_length_rfc9110_9_3_2() {
    let mut out = Vec::new();
    write_simple_response(&mut out, 404, None, &[], b"not found", false, true);
    assert_eq!(out, b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n");
}

#[test]
fn simple_bodiless_statuses_rfc9110_8_6() {
    let mut out = Vec::new();
    write_simple_response(&mut out, 100, None, &[], b"", false, false);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    out.clear();
    write_simple_response(&mut out, 204, None, &[], b"ignored", false, false);
    assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[test]
fn reason_phrases_rfc9110_15() {
    assert_eq!(reason_phrase(200), "OK");
    assert_eq!(reason_phrase(413), "Content Too Large");
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
    assert_eq!(reason_phrase(299), "");
}

// RFC 9112 §6.1: Transfer-Encoding stays with a chunked body.

#[test]
fn framing_fields_survive_connection_options_and_edits() {
    let raw =
        b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n";
    let edits = [HeaderEdit {
        name: b"transfer-encoding",
        value: None,
    }];
    let resp = ClientResponse {
        edits: &edits,
        ..KEEP_11
    };
    assert_eq!(
        client(raw, Method::Get, &resp),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

#[test]
fn content_length_is_rewritten_digit_for_digit_at_every_width() {
    for n in [0u64, 7, 100, 65_536, 9_999_999_999, u64::MAX] {
        let raw = format!("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n");
        let sent = upstream(raw.as_bytes(), false, &[]);
        assert!(
            sent.contains(&format!("\r\nContent-Length: {n}\r\n")),
            "{n}: {sent:?}"
        );
        let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
        let returned = client(raw.as_bytes(), Method::Get, &KEEP_11);
        assert_eq!(
            returned,
            format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")
        );
    }
}

/// Heads that `write_response_head` writes back unchanged to a keep-alive HTTP/1.1 client
/// without edits, and heads it changes: the predicate says "unchanged" only for the first.
#[test]
fn a_head_passes_unchanged_only_when_writing_it_would_not_change_it() {
    let unchanged: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nServer: ringway-load\r\nContent-Type: text/plain\r\nContent-Length: 16384\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404 \r\nX-A: 1\r\nContent-Length: 18446744073709551615\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n\r\n",
    ];
    let changed: &[&[u8]] = &[
        // Hop-by-hop fields are dropped.
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\n",
        // Content-Length is written last, in its canonical spelling.
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length:2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        // Not plain: the line is rewritten.
        b"HTTP/1.1 200 OK\r\nX-A:1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1 \r\nContent-Length: 2\r\n\r\n",
        // The status line is composed.
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n",
    ];
    let check = |raw: &[u8], resp: &ClientResponse<'_>| {
        let head = response(raw, Method::Get);
        let mut out = Vec::new();
        write_response_head(&mut out, &head, resp);
        (response_head_passes_unchanged(&head, resp), out == raw)
    };
    for raw in unchanged {
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(check(raw, &KEEP_11), (true, true), "{shown}");
        // What the client or the route asks for changes it.
        let close = ClientResponse {
            close: true,
            ..KEEP_11
        };
        assert_eq!(check(raw, &close), (false, false), "{shown}");
        let http10 = ClientResponse {
            client_version: Version::Http10,
            ..KEEP_11
        };
        assert_eq!(check(raw, &http10), (false, false), "{shown}");
        let edits = [HeaderEdit {
            name: b"x-added",
            value: Some(b"1"),
        }];
        let edited = ClientResponse {
            edits: &edits,
            ..KEEP_11
        };
        assert_eq!(check(raw, &edited), (false, false), "{shown}");
    }
    for raw in changed {
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(check(raw, &KEEP_11), (false, false), "{shown}");
    }
    // Not framed by a length: chunked, close-delimited, bodiless.
    for raw in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    ] {
        let head = response(raw, Method::Get);
        assert!(!response_head_passes_unchanged(&head, &KEEP_11));
    }
}

/// Every head of up to three field lines from a mixed set: whenever the predicate says
/// "unchanged", `write_response_head` writes exactly the raw head.
#[test]
fn passing_unchanged_implies_writing_the_raw_head() {
    const LINES: [&[u8]; 8] = [
        b"Server: a\r\n",
        b"Keep-Alive: 1\r\n",
        b"content-length: 2\r\n",
        b"Content-Length: 2\r\n",
        b"Content-Length: 02\r\n",
        b"X-A:1\r\n",
        b"Connection: close\r\n",
        b"Transfer-Encoding: chunked\r\n",
    ];
    let mut passed = 0;
    for count in 0..=3u32 {
        for mut pick in 0..LINES.len().pow(count) {
            let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
            for _ in 0..count {
                raw.extend_from_slice(LINES[pick % LINES.len()]);
                pick /= LINES.len();
            }
            raw.extend_from_slice(b"\r\n");
            let Ok(Some(head)) = parse_response(
                &mut BytesMut::from(&raw[..]),
                &LIMITS,
                Method::Get,
                Vec::new(),
            ) else {
                continue;
            };
            if response_head_passes_unchanged(&head, &KEEP_11) {
                let mut out = Vec::new();
                write_response_head(&mut out, &head, &KEEP_11);
                assert_eq!(out, raw, "{}", String::from_utf8_lossy(&raw));
                passed += 1;
            }
        }
    }
    // "Content-Length: 2" last, after nothing or "Server: a" once or twice.
    assert_eq!(passed, 3);
}

/// The request line and a leading Host line are passed as the client's own
/// bytes only when those read exactly as `write_request_head` would compose
/// them: for every head here, the head written from the client's target
/// (eligible) equals the one written from a copy of it (always composed).
#[test]
fn request_line_and_host_pass_verbatim_only_when_composing_would_match() {
    let heads: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET /x?y HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a.example\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.1\r\nHOST: a.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:a.example\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \t a.example \r\n\r\n",
        b"GET / HTTP/1.1\r\nAccept: */*\r\nHost: a.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\r\nHost: a.example\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a.example\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET http://b.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"POST /f HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    ];
    let host_edit = [HeaderEdit {
        name: b"host",
        value: Some(b"edited.example"),
    }];
    let other_edit = [HeaderEdit {
        name: b"x-added",
        value: Some(b"1"),
    }];
    for &raw in heads {
        let head = request(raw);
        let copy = head.target().to_vec();
        for edits in [&[][..], &host_edit[..], &other_edit[..]] {
            let write = |target: &[u8]| {
                let req = UpstreamRequest {
                    target,
                    forwarded: &FWD,
                    default_host: b"default.example",
                    pass_upgrade: false,
                    edits,
                };
                let mut out = Vec::new();
                write_request_head(&mut out, &head, &req);
                String::from_utf8(out).unwrap()
            };
            assert_eq!(
                write(head.target()),
                write(&copy),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

#[test]
fn request_line_and_host_pass_verbatim_when_already_canonical() {
    let run = |raw: &[u8], host_edited: bool| {
        let head = request(raw);
        super::verbatim_start(&head, head.fields(), head.target(), host_edited)
            .map(|r| (r.end, r.host))
    };
    let raw = b"GET /x HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n";
    let line = b"GET /x HTTP/1.1\r\n".len();
    let host = line + b"Host: a.example\r\n".len();
    assert_eq!(run(raw, false), Some((host, true)));
    assert_eq!(run(raw, true), Some((line, false)));
    // Host not first, not spelt "Host", or not "Host: value": the line alone.
    assert_eq!(
        run(b"GET /x HTTP/1.1\r\nAccept: */*\r\nHost: a\r\n\r\n", false),
        Some((line, false))
    );
    assert_eq!(
        run(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n", false),
        Some((line, false))
    );
    assert_eq!(
        run(b"GET /x HTTP/1.1\r\nHost:a\r\n\r\n", false),
        Some((line, false))
    );
    // HTTP/1.0 is sent as HTTP/1.1.
    assert_eq!(run(b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n", false), None);
    // The authority of an absolute-form target is the Host sent, not the
    // Host line (the engine sends such a target in origin-form, rewritten).
    let absolute = b"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(
        run(absolute, false),
        Some((b"GET http://b/x HTTP/1.1\r\n".len(), false))
    );
    // A target that is not the head's own bytes is never assumed equal.
    let head = request(raw);
    let copy = head.target().to_vec();
    assert!(super::verbatim_start(&head, head.fields(), &copy, false).is_none());
}
