use bytes::BytesMut;

use super::{RequestHead, parse_request, parse_request_into};
use crate::error::ProtocolError;
use crate::h1::head::generated_heads;
use crate::h1::{BodyFraming, HeadLimits, Method, Version};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 8192,
    max_headers: 64,
};

fn parse(raw: &[u8]) -> Result<RequestHead, ProtocolError> {
    let mut buf = BytesMut::from(raw);
    parse_request(&mut buf, &LIMITS, Vec::new()).map(|h| h.expect("a complete head"))
}

fn refused(raw: &[u8]) -> ProtocolError {
    parse(raw).expect_err("the request must be refused")
}

fn framing(raw: &[u8]) -> Result<BodyFraming, ProtocolError> {
    parse(raw).map(|h| h.framing())
}

#[test]
fn parses_origin_form_request_rfc9112_3() {
    let raw =
        b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n";
    let head = parse(raw).unwrap();
    assert_eq!(head.method(), Method::Get);
    assert_eq!(head.method_bytes(), b"GET");
    assert_eq!(head.target(), b"/a/b?x=1");
    assert_eq!(head.path(), b"/a/b");
    assert_eq!(head.query(), Some(&b"x=1"[..]));
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.host(), Some(&b"example.com:8080"[..]));
    assert_eq!(head.header(b"accept"), Some(&b"*/*"[..]));
    assert_eq!(head.header(b"x-empty"), Some(&b""[..]));
    assert_eq!(head.header(b"missing"), None);
    let headers: Vec<_> = head.headers().collect();
    assert_eq!(
        headers,
        [
            (&b"Host"[..], &b"example.com:8080"[..]),
            (b"Accept", b"*/*"),
            (b"X-Empty", b""),
        ]
    );
    assert_eq!(head.framing(), BodyFraming::Empty);
    assert!(head.keep_alive());
    assert_eq!(head.bytes(), &raw[..]);
}

#[test]
fn values_are_trimmed_of_ows_rfc9110_5_5() {
    // Spaces and tabs on either side of a value, inside it kept.
    let raw = b"GET / HTTP/1.1\r\nHost:\t a \t\r\nX-A: \t\tb c\t\r\nX-B:\t \r\nX-C:d\r\n\r\n";
    let head = parse(raw).unwrap();
    let headers: Vec<_> = head.headers().collect();
    assert_eq!(
        headers,
        [
            (&b"Host"[..], &b"a"[..]),
            (b"X-A", b"b c"),
            (b"X-B", b""),
            (b"X-C", b"d"),
        ]
    );
    assert_eq!(head.host(), Some(&b"a"[..]));
}

#[test]
fn leading_empty_lines_are_skipped_rfc9112_2_2() {
    let mut buf = BytesMut::from(&b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..]);
    let head = parse_request(&mut buf, &LIMITS, Vec::new())
        .unwrap()
        .unwrap();
    assert!(head.bytes().starts_with(b"GET / HTTP/1.1\r\n"));
    assert!(buf.is_empty());
}

// RFC 9112 §2.2: a head ends at the empty line; until then nothing is consumed.

#[test]
fn incomplete_head_leaves_buffer_untouched() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\n";
    let mut buf = BytesMut::from(&raw[..]);
    assert!(
        parse_request(&mut buf, &LIMITS, Vec::new())
            .unwrap()
            .is_none()
    );
    assert_eq!(&buf[..], &raw[..]);
}

#[test]
fn pipelined_requests_leave_the_rest_in_buf_rfc9112_9_3_2() {
    let mut buf = BytesMut::from(
        &b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
    );
    let first = parse_request(&mut buf, &LIMITS, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(first.framing(), BodyFraming::Length(5));
    assert_eq!(&buf[..5], b"hello");
    let _ = buf.split_to(5);
    let second = parse_request(&mut buf, &LIMITS, first.into_scratch())
        .unwrap()
        .unwrap();
    assert_eq!(second.path(), b"/b");
    assert!(buf.is_empty());
}

// DESIGN.md §1: no per-request allocation in steady state.

#[test]
fn parse_into_a_slot_keeps_the_scratch_until_a_head_is_whole() {
    let mut scratch = Vec::with_capacity(8);
    let mut slot = None;
    // Incomplete, in both the fast and the exact path: nothing taken.
    let partial = b"GET /a HTTP/1.1\r\nHost: a\r\n";
    let mut buf = BytesMut::from(&partial[..]);
    assert_eq!(
        parse_request_into(&mut buf, &LIMITS, &mut scratch, &mut slot),
        Ok(false)
    );
    assert!(slot.is_none());
    assert!(scratch.capacity() >= 8, "the scratch is kept");
    assert_eq!(&buf[..], partial, "buf is untouched");
    // Refused: buf untouched, scratch kept, slot still empty.
    let refused = b"GET /a HTTP/1.1\r\n\r\n";
    let mut bad = BytesMut::from(&refused[..]);
    assert_eq!(
        parse_request_into(&mut bad, &LIMITS, &mut scratch, &mut slot),
        Err(ProtocolError::MissingHost)
    );
    assert!(slot.is_none() && scratch.capacity() >= 8);
    assert_eq!(&bad[..], refused);
    // Whole, with a pipelined request behind it: the head is in the slot
    // with the scratch as its field list, buf starts at the next request.
    buf.extend_from_slice(b"X: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n");
    assert_eq!(
        parse_request_into(&mut buf, &LIMITS, &mut scratch, &mut slot),
        Ok(true)
    );
    assert_eq!(scratch.capacity(), 0, "the head took the scratch");
    let head = slot.take().unwrap();
    assert_eq!(head.path(), b"/a");
    assert_eq!(head.header(b"x"), Some(&b"1"[..]));
    assert_eq!(head.bytes(), b"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n");
    // The next one, after leading empty lines (the exact path).
    scratch = head.into_scratch();
    let mut buf2 = BytesMut::from(&b"\r\n"[..]);
    buf2.extend_from_slice(&buf);
    assert_eq!(
        parse_request_into(&mut buf2, &LIMITS, &mut scratch, &mut slot),
        Ok(true)
    );
    assert_eq!(slot.as_ref().unwrap().path(), b"/b");
    assert!(buf2.is_empty());
}

#[test]
fn a_head_alone_in_its_buffer_without_a_body_takes_the_buffer_whole() {
    // A GET and nothing behind it: the head takes the buffer, spare room
    // and all, and `into_parts` gives back that same memory.
    let raw = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut buf = BytesMut::with_capacity(4096);
    buf.extend_from_slice(raw);
    let at = buf.as_ptr();
    let head = parse_request(&mut buf, &LIMITS, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(buf.capacity(), 0, "the buffer went with the head");
    assert_eq!(head.bytes(), raw);
    let (mut back, _) = head.into_parts();
    back.clear();
    assert_eq!(back.as_ptr(), at);
    assert_eq!(back.capacity(), 4096);
    // Read into again and parsed again: still the same memory.
    back.extend_from_slice(raw);
    let mut buf = back;
    let head = parse_request(&mut buf, &LIMITS, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(head.into_parts().0.as_ptr(), at);

    // A head with a body to come, or bytes behind it, is split off: the
    // buffer stays for what follows.
    for (raw, rest) in [
        (
            &b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"[..],
            &b""[..],
        ),
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /b"),
    ] {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(raw);
        buf.extend_from_slice(rest);
        let head = parse_request(&mut buf, &LIMITS, Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(head.bytes(), raw);
        assert_eq!(&buf[..], rest);
        assert!(buf.capacity() >= 4096 - raw.len(), "buf keeps its room");
    }
}

#[test]
fn into_scratch_returns_a_cleared_vec() {
    let head = parse(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n").unwrap();
    let scratch = head.into_scratch();
    assert!(scratch.is_empty());
    assert!(scratch.capacity() >= 3);
}

#[test]
fn content_length_with_transfer_encoding_rfc9112_6_3_p3() {
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::LengthAndChunked);
    let raw =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::LengthAndChunked);
}

#[test]
fn content_length_twice_different_rfc9112_6_3_p5() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_twice_identical_is_one_length_rfc9112_6_3_p5() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(5)));
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(5)));
}

#[test]
fn content_length_list_with_different_values_rfc9112_6_3_p5() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,2\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
    // A list that agrees with itself must agree with the other lines too,
    // whichever comes first.
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nContent-Length: 5,5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5,5\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(5)));
    // An empty element is not a number.
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_with_sign_rfc9110_8_6() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_with_inner_space_rfc9110_8_6() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_empty_or_overflowing_rfc9110_8_6() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_of_u64_max_is_a_length_rfc9110_8_6() {
    // The largest length there is, which the parser's summary cannot hold
    // (it marks lines to be read again), and the same written twice.
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(u64::MAX)));
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(u64::MAX)));
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadContentLength);
}

#[test]
fn content_length_zero_is_kept_as_a_length_rfc9112_6_3_p6() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Length(0)));
}

#[test]
fn transfer_encoding_chunked_is_accepted_case_insensitively_rfc9112_6_1() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n";
    assert_eq!(framing(raw), Ok(BodyFraming::Chunked));
}

#[test]
fn transfer_encoding_chunked_not_final_rfc9112_6_3_p4() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn transfer_encoding_other_coding_before_chunked_rfc9112_6_3_p4() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn transfer_encoding_unknown_coding_rfc9112_6_3_p4() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn transfer_encoding_chunked_twice_rfc9112_6_3_p4() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn transfer_encoding_empty_rfc9112_6_3_p4() {
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn transfer_encoding_in_http10_rfc9112_6_1() {
    let raw = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::BadTransferEncoding);
}

#[test]
fn obs_fold_rfc9112_5_2() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::ObsFold);
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::ObsFold);
}

#[test]
fn whitespace_before_first_field_rfc9112_2_2() {
    let raw = b"GET / HTTP/1.1\r\n Host: a\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::ObsFold);
}

#[test]
fn bare_lf_in_request_line_rfc9112_2_2() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\nHost: a\r\n\r\n"),
        ProtocolError::BareLf
    );
}

#[test]
fn bare_lf_in_headers_rfc9112_2_2() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"),
        ProtocolError::BareLf
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\n\n"),
        ProtocolError::BareLf
    );
}

#[test]
fn nul_in_value_rfc9110_5_5() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
        ProtocolError::InvalidHeaderValue
    );
}

#[test]
fn ctl_in_value_rfc9110_5_5() {
    for ctl in [0x01u8, 0x0b, 0x0c, 0x1f, 0x7f] {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
        raw.push(ctl);
        raw.extend_from_slice(b"b\r\n\r\n");
        assert_eq!(
            refused(&raw),
            ProtocolError::InvalidHeaderValue,
            "byte {ctl:#x}"
        );
    }
    // A lone CR inside a value.
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
        ProtocolError::InvalidHeaderValue
    );
}

#[test]
fn ctl_anywhere_in_a_long_value_rfc9110_5_5() {
    // Every CTL but HTAB, and DEL, at every offset of values long enough for
    // httparse's vectored paths (8-byte words, 16- and 32-byte blocks), in
    // requests and responses alike: the value rule is httparse's to enforce.
    let bad = (0u8..0x20).filter(|&b| !matches!(b, b'\t' | b'\r' | b'\n'));
    for ctl in bad.chain([0x7f]) {
        for len in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 80] {
            for at in 0..len {
                let mut value = vec![b'v'; len];
                value[at] = ctl;
                let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
                raw.extend_from_slice(&value);
                raw.extend_from_slice(b"\r\n\r\n");
                assert!(parse(&raw).is_err(), "byte {ctl:#x} at {at} of {len}");
                let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
                raw.extend_from_slice(&value);
                raw.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
                let mut buf = BytesMut::from(&raw[..]);
                let parsed = crate::h1::parse_response(&mut buf, &LIMITS, Method::Get, Vec::new());
                assert!(parsed.is_err(), "response: byte {ctl:#x} at {at} of {len}");
            }
        }
    }
}

#[test]
fn htab_and_obs_text_in_value_are_allowed_rfc9110_5_5() {
    let head = parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \xc3\xa9\r\n\r\n").unwrap();
    assert_eq!(head.header(b"x"), Some(&b"a\tb \xc3\xa9"[..]));
}

#[test]
fn space_before_colon_rfc9112_5_1() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n"),
        ProtocolError::Malformed
    );
}

#[test]
fn header_name_must_be_a_token_rfc9110_5_1() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"),
        ProtocolError::Malformed
    );
}

#[test]
fn malformed_request_line_rfc9112_3() {
    assert_eq!(
        refused(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET /\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
}

// RFC 6585 §5 / DESIGN.md §4: head over max_header_size -> 431.

#[test]
fn oversized_head_is_431() {
    let limits = HeadLimits {
        max_head_size: 64,
        max_headers: 64,
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    raw.resize(80, b'a');
    raw.extend_from_slice(b"\r\n\r\n");
    // Complete but too long.
    let mut buf = BytesMut::from(&raw[..]);
    let err = parse_request(&mut buf, &limits, Vec::new()).unwrap_err();
    assert_eq!(err, ProtocolError::HeadTooLarge);
    assert_eq!(err.status(), 431);
    // Incomplete, but already as long as the limit.
    let mut buf = BytesMut::from(&raw[..64]);
    assert_eq!(
        parse_request(&mut buf, &limits, Vec::new()).unwrap_err(),
        ProtocolError::HeadTooLarge
    );
    // One byte below the limit is still just incomplete.
    let mut buf = BytesMut::from(&raw[..63]);
    assert!(
        parse_request(&mut buf, &limits, Vec::new())
            .unwrap()
            .is_none()
    );
}

// RFC 6585 §5 / DESIGN.md §4: more than max_headers -> 431.

#[test]
fn too_many_headers_is_431() {
    let limits = HeadLimits {
        max_head_size: 8192,
        max_headers: 3,
    };
    let ok = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(parse_request(&mut BytesMut::from(&ok[..]), &limits, Vec::new()).is_ok());
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits, Vec::new()).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyHeaders);
    assert_eq!(err.status(), 431);
}

// RFC 6585 §5: the header array is bounded whatever the configuration.

#[test]
fn max_headers_above_256_is_capped() {
    let limits = HeadLimits {
        max_head_size: 1 << 20,
        max_headers: 10_000,
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..300 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits, Vec::new()).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyHeaders);
}

#[test]
fn missing_host_in_http11_rfc9112_3_2() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nA: b\r\n\r\n"),
        ProtocolError::MissingHost
    );
    // Also with an absolute-form target: the Host line is still required.
    assert_eq!(
        refused(b"GET http://a/ HTTP/1.1\r\n\r\n"),
        ProtocolError::MissingHost
    );
}

#[test]
fn double_host_rfc9112_3_2() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::MissingHost);
    let raw = b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::MissingHost);
}

#[test]
fn http10_may_omit_host_rfc9112_3_2() {
    let head = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(head.host(), None);
    assert_eq!(head.version(), Version::Http10);
}

#[test]
fn invalid_host_value_rfc9112_3_2() {
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        ProtocolError::Malformed
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        ProtocolError::Malformed
    );
    // An empty Host is valid (RFC 9112 §3.2).
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").unwrap().host(),
        Some(&b""[..])
    );
}

#[test]
fn absolute_form_authority_wins_over_host_rfc9112_3_2_2() {
    let head = parse(b"GET http://real.example:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n").unwrap();
    assert_eq!(head.host(), Some(&b"real.example:81"[..]));
    assert_eq!(head.path(), b"/p");
    assert_eq!(head.query(), Some(&b"q"[..]));
    assert_eq!(head.header(b"host"), Some(&b"other"[..]));
}

#[test]
fn asterisk_form_rfc9112_3_2_4() {
    let head = parse(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(head.path(), b"*");
    assert_eq!(
        refused(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
}

#[test]
fn authority_form_is_malformed_rfc9112_3_2_3() {
    let raw = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    assert_eq!(refused(raw), ProtocolError::Malformed);
}

#[test]
fn unsupported_versions_are_505_rfc9112_2_3() {
    let err = refused(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    assert_eq!(err, ProtocolError::UnsupportedVersion);
    assert_eq!(err.status(), 505);
    assert_eq!(
        refused(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
        ProtocolError::UnsupportedVersion
    );
    assert_eq!(
        refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ProtocolError::UnsupportedVersion
    );
    assert_eq!(
        refused(b"GET / HTTQ/1.1\r\nHost: a\r\n\r\n"),
        ProtocolError::Malformed
    );
}

#[test]
fn keep_alive_defaults_rfc9112_9_3() {
    let ka = |raw: &[u8]| parse(raw).unwrap().keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
}

#[test]
fn expect_continue_rfc9110_10_1_1() {
    let ec = |raw: &[u8]| parse(raw).unwrap().expect_continue();
    assert!(ec(
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"
    ));
    assert!(!ec(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n"
    ));
    // An HTTP/1.0 expectation is ignored.
    assert!(!ec(
        b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    ));
}

#[test]
fn upgrade_needs_connection_option_and_http11_rfc9110_7_8() {
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let head = parse(raw).unwrap();
    assert!(head.wants_upgrade());
    assert_eq!(head.upgrade(), Some(&b"websocket"[..]));
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    assert!(!parse(raw).unwrap().wants_upgrade());
    let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n";
    assert!(!parse(raw).unwrap().wants_upgrade());
    let raw = b"GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert!(!parse(raw).unwrap().wants_upgrade());
}

#[test]
fn unknown_and_lower_case_methods_are_other_rfc9110_9_1() {
    let head = parse(b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(head.method(), Method::Other);
    assert_eq!(head.method_bytes(), b"PURGE");
    assert_eq!(
        parse(b"get / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .method(),
        Method::Other
    );
}

// RFC 9112 §2.2: a refused head is not consumed; the engine answers and closes.

#[test]
fn errors_leave_the_buffer_untouched() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    let mut buf = BytesMut::from(&raw[..]);
    assert!(parse_request(&mut buf, &LIMITS, Vec::new()).is_err());
    assert_eq!(&buf[..], &raw[..]);
}

/// The head as `find_head` delimits it, parsed the exact (slow) way.
fn parse_exact(raw: &[u8]) -> Result<Option<(RequestHead, usize)>, ProtocolError> {
    use crate::h1::head::{Delimited, LeadingEmptyLines, find_head};
    let Some(extent) = find_head(raw, LIMITS.max_head_size, LeadingEmptyLines::Skip)? else {
        return Ok(None);
    };
    let head = &raw[extent.skip..extent.skip + extent.len];
    validated(head, Delimited::Exact)
        .map(|parsed| parsed.map(|(head, len)| (head, extent.skip + len)))
}

/// `parse_validated` of `input`, the head given the bytes it parsed.
fn validated(
    input: &[u8],
    delimited: crate::h1::head::Delimited,
) -> Result<Option<(RequestHead, usize)>, ProtocolError> {
    let (mut fields, mut slot) = (Vec::new(), None);
    let len = super::parse_validated(input, delimited, LIMITS.max_headers, &mut fields, &mut slot)?;
    Ok(len.map(|len| {
        let head = slot.expect("a length comes with a head");
        let bytes = bytes::BytesMut::from(&input[..len]);
        (RequestHead { bytes, ..head }, len)
    }))
}

#[test]
fn the_fast_path_agrees_with_find_head_and_the_exact_parse() {
    // Heads assembled from pieces that matter to either path, cut at every
    // length: whatever the fast path accepts, the exact path accepts alike;
    // whatever it leaves, `parse_request` answers as the exact path does.
    static PIECES: [&[u8]; 14] = [
        b"\r\n",
        b"\r\n",
        b"\r\n",
        b"\n",
        b" ",
        b"\t",
        b"\x7f",
        b"\x01",
        b"Host: a",
        b"Host: b",
        b"Connection: close",
        b"Content-Length: 5",
        b"Transfer-Encoding: chunked",
        b"X: y",
    ];
    let mut fast_hits = 0;
    for raw in generated_heads(
        b"GET /p HTTP/1.1",
        &PIECES,
        b"next",
        0x2545_f491_4f6c_dd1du64,
        4000,
    ) {
        for cut in 0..=raw.len() {
            let part = &raw[..cut];
            let fast = validated(part, crate::h1::head::Delimited::Window);
            let exact = parse_exact(part);
            let summary = |r: &Result<Option<(RequestHead, usize)>, ProtocolError>| match r {
                Ok(Some((h, len))) => Ok(Some((
                    *len,
                    h.method(),
                    h.target().to_vec(),
                    h.host().map(<[u8]>::to_vec),
                    h.framing(),
                    h.keep_alive(),
                    h.fields().list.len(),
                ))),
                Ok(None) => Ok(None),
                Err(e) => Err(*e),
            };
            // A head the fast path takes (complete and tidy) is parsed, or
            // refused, exactly as the exact path does; only heads without
            // leading empty lines go that way, so the lengths compare directly.
            if !matches!(fast, Ok(None)) {
                fast_hits += 1;
                assert_eq!(
                    summary(&fast),
                    summary(&exact),
                    "{:?}",
                    String::from_utf8_lossy(part)
                );
            }
            let mut buf = BytesMut::from(part);
            let through = parse_request(&mut buf, &LIMITS, Vec::new());
            let through = through.map(|h| h.map(|h| (h, cut - buf.len())));
            assert_eq!(
                summary(&through),
                summary(&exact),
                "{:?}",
                String::from_utf8_lossy(part)
            );
        }
    }
    assert!(
        fast_hits > 1000,
        "the generated heads exercise the fast path: {fast_hits}"
    );
}
