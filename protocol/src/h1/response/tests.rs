use bytes::BytesMut;

use super::{ResponseHead, parse_response};
use crate::error::ProtocolError;
use crate::h1::head::generated_heads;
use crate::h1::{BodyFraming, HeadLimits, Method, Version};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 8192,
    max_headers: 64,
};

fn parse_for(raw: &[u8], method: Method) -> Result<ResponseHead, ProtocolError> {
    let mut buf = BytesMut::from(raw);
    parse_response(&mut buf, &LIMITS, method, Vec::new()).map(|h| h.expect("a complete head"))
}

fn parse(raw: &[u8]) -> Result<ResponseHead, ProtocolError> {
    parse_for(raw, Method::Get)
}

fn framing(raw: &[u8]) -> Result<BodyFraming, ProtocolError> {
    parse(raw).map(|h| h.framing())
}

#[test]
fn parses_status_line_and_fields_rfc9112_4() {
    let raw = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n";
    let head = parse(raw).unwrap();
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.status(), 404);
    assert_eq!(head.reason(), b"Not Found");
    assert_eq!(head.header(b"content-type"), Some(&b"text/plain"[..]));
    assert_eq!(head.headers().count(), 2);
    assert_eq!(head.framing(), BodyFraming::Length(3));
    assert!(head.keep_alive());
    assert_eq!(head.bytes(), &raw[..]);
}

#[test]
fn values_are_trimmed_of_ows_rfc9110_5_5() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length:\t 3 \t\r\nX-A: \tb c\t\r\n\r\nabc";
    let head = parse(raw).unwrap();
    let headers: Vec<_> = head.headers().collect();
    assert_eq!(
        headers,
        [(&b"Content-Length"[..], &b"3"[..]), (b"X-A", b"b c")]
    );
    assert_eq!(head.framing(), BodyFraming::Length(3));
}

#[test]
fn reason_may_be_empty_or_obs_text_rfc9112_4() {
    assert_eq!(
        parse(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .reason(),
        b""
    );
    assert_eq!(
        parse(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .reason(),
        b""
    );
    let head = parse(b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(head.reason(), b"Tr\xe8s bien");
}

// RFC 9112 §6: the body starts right after the empty line.

#[test]
fn body_follows_the_head_in_buf() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
    let head = parse_response(&mut buf, &LIMITS, Method::Get, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(head.framing(), BodyFraming::Length(2));
    assert_eq!(&buf[..], b"hi");
}

// RFC 9112 §2.2: a head ends at the empty line.

#[test]
fn incomplete_head_is_none() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(
        parse_response(&mut buf, &LIMITS, Method::Get, Vec::new())
            .unwrap()
            .is_none()
    );
    assert_eq!(buf.len(), 27);
}

#[test]
fn response_to_head_has_no_body_rfc9112_6_3_p1() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    assert_eq!(
        parse_for(raw, Method::Head).unwrap().framing(),
        BodyFraming::Empty
    );
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let head = parse_for(raw, Method::Head).unwrap();
    assert_eq!(head.framing(), BodyFraming::Empty);
    assert!(head.keep_alive());
}

#[test]
fn status_204_and_304_have_no_body_rfc9112_6_3_p1() {
    assert_eq!(
        framing(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Ok(BodyFraming::Empty)
    );
    assert_eq!(
        framing(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 512\r\n\r\n"),
        Ok(BodyFraming::Empty)
    );
}

#[test]
fn informational_responses_have_no_body_rfc9112_6_3_p1() {
    let head = parse(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
    assert_eq!(head.framing(), BodyFraming::Empty);
    assert!(head.keep_alive());
    let raw =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let head = parse(raw).unwrap();
    assert_eq!(head.framing(), BodyFraming::Empty);
    // The connection becomes a tunnel; it never goes back to a pool.
    assert!(!head.keep_alive());
}

#[test]
fn success_to_connect_is_a_tunnel_rfc9112_6_3_p2() {
    let head = parse_for(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        Method::Connect,
    )
    .unwrap();
    assert_eq!(head.framing(), BodyFraming::Empty);
    assert!(!head.keep_alive());
}

#[test]
fn chunked_final_coding_rfc9112_6_3_p4() {
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Ok(BodyFraming::Chunked)
    );
    assert_eq!(
        framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        Ok(BodyFraming::Chunked)
    );
    assert_eq!(
        framing(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"
        ),
        Ok(BodyFraming::Chunked)
    );
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_close_delimited_rfc9112_6_3_p4() {
    let head = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap();
    assert_eq!(head.framing(), BodyFraming::UntilClose);
    assert!(!head.keep_alive());
}

#[test]
fn no_length_is_close_delimited_rfc9112_6_3_p8() {
    let head = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n").unwrap();
    assert_eq!(head.framing(), BodyFraming::UntilClose);
    assert!(!head.keep_alive());
}

#[test]
fn content_length_with_transfer_encoding_rfc9112_6_3_p3() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(raw).unwrap_err(), ProtocolError::LengthAndChunked);
}

#[test]
fn bad_content_length_rfc9112_6_3_p5() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n";
    assert_eq!(parse(raw).unwrap_err(), ProtocolError::BadContentLength);
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n";
    assert_eq!(parse(raw).unwrap_err(), ProtocolError::BadContentLength);
}

#[test]
fn transfer_encoding_in_http10_response_rfc9112_6_1() {
    let raw = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(parse(raw).unwrap_err(), ProtocolError::BadTransferEncoding);
}

#[test]
fn keep_alive_rules_rfc9112_9_3() {
    let ka = |raw: &[u8]| parse(raw).unwrap().keep_alive();
    assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!ka(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(ka(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(ka(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

// RFC 9112 §2.2, §5.1, §5.2 and RFC 9110 §5.5 apply to responses too.

#[test]
fn strict_like_requests_bare_lf_obs_fold_ctl() {
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n").unwrap_err(),
        ProtocolError::BareLf
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n").unwrap_err(),
        ProtocolError::ObsFold
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n").unwrap_err(),
        ProtocolError::InvalidHeaderValue
    );
    assert_eq!(
        parse(b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n").unwrap_err(),
        ProtocolError::Malformed
    );
}

// RFC 9112 §2.2 allows skipping empty lines only before a request-line.

#[test]
fn leading_empty_lines_are_refused_for_responses() {
    assert_eq!(
        parse(b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap_err(),
        ProtocolError::BadStatus
    );
}

#[test]
fn malformed_status_lines_are_bad_status_rfc9112_4() {
    for raw in [
        &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 600 High\r\n\r\n",
        b"HTTP/1.1 200 O\x01K\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(parse(raw).unwrap_err(), ProtocolError::BadStatus, "{raw:?}");
    }
    assert_eq!(
        parse(b"HTTP/2.0 200 OK\r\n\r\n").unwrap_err(),
        ProtocolError::UnsupportedVersion
    );
}

// DESIGN.md §4: an oversized upstream head is a malformed response (502).

#[test]
fn oversized_response_head() {
    let limits = HeadLimits {
        max_head_size: 32,
        max_headers: 8,
    };
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaa"[..]);
    assert_eq!(
        parse_response(&mut buf, &limits, Method::Get, Vec::new()).unwrap_err(),
        ProtocolError::HeadTooLarge
    );
}

#[test]
fn parse_into_a_slot_keeps_the_scratch_until_a_head_is_whole() {
    let mut scratch = Vec::with_capacity(8);
    let mut slot = None;
    let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n";
    let mut buf = BytesMut::from(&partial[..]);
    let into = super::parse_response_into;
    assert_eq!(
        into(&mut buf, &LIMITS, Method::Get, &mut scratch, &mut slot),
        Ok(false)
    );
    assert!(slot.is_none() && scratch.capacity() >= 8);
    assert_eq!(&buf[..], partial);
    buf.extend_from_slice(b"\r\nabc");
    assert_eq!(
        into(&mut buf, &LIMITS, Method::Get, &mut scratch, &mut slot),
        Ok(true)
    );
    assert_eq!(scratch.capacity(), 0, "the head took the scratch");
    // The head took the buffer, the body bytes behind it included.
    assert_eq!(buf.capacity(), 0);
    let head = slot.take().unwrap();
    assert_eq!(head.framing(), BodyFraming::Length(3));
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(head.bytes(), raw);
    // `into_rest` puts them back, as `parse_response` leaves them.
    let scratch = head.into_rest(&mut buf);
    assert!(scratch.is_empty() && scratch.capacity() > 0);
    assert_eq!(&buf[..], b"abc");
}

#[test]
fn into_parts_gives_the_buffer_with_the_head_in_front_of_the_body() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    let mut buf = BytesMut::with_capacity(4096);
    buf.extend_from_slice(raw);
    buf.extend_from_slice(b"body");
    let at = buf.as_ptr();
    let mut slot = None;
    let into = super::parse_response_into;
    assert_eq!(
        into(&mut buf, &LIMITS, Method::Get, &mut Vec::new(), &mut slot),
        Ok(true)
    );
    let (whole, len, _) = slot.take().unwrap().into_parts();
    assert_eq!(len, raw.len());
    assert_eq!(&whole[..len], raw);
    assert_eq!(&whole[len..], b"body");
    // The same memory, spare room and all: nothing was split or copied.
    assert_eq!(whole.as_ptr(), at);
    assert_eq!(whole.capacity(), 4096);
    // `parse_response` keeps the contract of `parse_request`: `buf` starts
    // after the head.
    let mut buf = BytesMut::from(&whole[..]);
    let head = parse_response(&mut buf, &LIMITS, Method::Get, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(head.bytes(), raw);
    assert_eq!(&buf[..], b"body");
}

type Parsed = Result<Option<(ResponseHead, usize)>, ProtocolError>;

/// The head as `find_head` delimits it, parsed the exact (slow) way.
fn parse_exact(raw: &[u8]) -> Parsed {
    use crate::h1::head::{Delimited, LeadingEmptyLines, find_head};
    let Some(extent) = find_head(raw, LIMITS.max_head_size, LeadingEmptyLines::Reject)? else {
        return Ok(None);
    };
    validated(&raw[..extent.len], Delimited::Exact)
}

/// `parse_validated` of `input`, the head given the bytes it parsed.
fn validated(input: &[u8], delimited: crate::h1::head::Delimited) -> Parsed {
    let (mut fields, mut slot) = (Vec::new(), None);
    let len = super::parse_validated(
        input,
        delimited,
        LIMITS.max_headers,
        Method::Get,
        &mut fields,
        &mut slot,
    )?;
    Ok(len.map(|len| {
        let head = slot.expect("a length comes with a head");
        let bytes = bytes::BytesMut::from(&input[..len]);
        (ResponseHead { bytes, len, ..head }, len)
    }))
}

#[test]
fn the_fast_path_agrees_with_find_head_and_the_exact_parse() {
    // As for requests: generated heads cut at every length; whatever the
    // fast path takes is parsed or refused exactly as the exact path does,
    // and `parse_response` answers everything as the exact path does.
    static PIECES: [&[u8]; 13] = [
        b"\r\n",
        b"\r\n",
        b"\r\n",
        b"\n",
        b" ",
        b"\t",
        b"\x7f",
        b"Server: a",
        b"Connection: close",
        b"Content-Length: 5",
        b"Content-Length: 6",
        b"Transfer-Encoding: chunked",
        b"X: y",
    ];
    let summary = |r: &Parsed| match r {
        Ok(Some((h, len))) => Ok(Some((
            *len,
            h.status(),
            h.reason().to_vec(),
            h.framing(),
            h.keep_alive(),
            h.headers()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect::<Vec<_>>(),
        ))),
        Ok(None) => Ok(None),
        Err(e) => Err(*e),
    };
    let mut fast_hits = 0;
    for raw in generated_heads(
        b"HTTP/1.1 200 OK",
        &PIECES,
        b"body",
        0x9e37_79b9_7f4a_7c15u64,
        4000,
    ) {
        for cut in 0..=raw.len() {
            let part = &raw[..cut];
            let fast = validated(part, crate::h1::head::Delimited::Window);
            let exact = parse_exact(part);
            if !matches!(fast, Ok(None)) {
                fast_hits += 1;
                let text = String::from_utf8_lossy(part);
                assert_eq!(summary(&fast), summary(&exact), "{text:?}");
            }
            let mut buf = BytesMut::from(part);
            let through = parse_response(&mut buf, &LIMITS, Method::Get, Vec::new());
            let through = through.map(|h| h.map(|h| (h, cut - buf.len())));
            let text = String::from_utf8_lossy(part);
            assert_eq!(summary(&through), summary(&exact), "{text:?}");
        }
    }
    assert!(
        fast_hits > 1000,
        "the generated heads exercise the fast path: {fast_hits}"
    );
}
