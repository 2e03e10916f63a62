use super::BodyDecoder;
use crate::error::ProtocolError;
use crate::h1::BodyFraming;

/// Run `input` through a fresh decoder in one call: (consumed, payload).
fn decode(
    framing: BodyFraming,
    limit: Option<u64>,
    input: &[u8],
) -> Result<(usize, Vec<u8>, bool), ProtocolError> {
    let mut decoder = BodyDecoder::new(framing, limit);
    let mut payload = Vec::new();
    let n = decoder.advance(input, |run| payload.extend_from_slice(run))?;
    assert_eq!(decoder.payload_len(), payload.len() as u64);
    Ok((n, payload, decoder.is_done()))
}

fn chunked(input: &[u8]) -> Result<(usize, Vec<u8>, bool), ProtocolError> {
    decode(BodyFraming::Chunked, None, input)
}

fn chunk_error(input: &[u8]) -> ProtocolError {
    chunked(input).expect_err("the chunked body must be refused")
}

#[test]
fn empty_framing_is_done_at_once_rfc9112_6_3_p7() {
    let mut d = BodyDecoder::new(BodyFraming::Empty, Some(0));
    assert!(d.is_done());
    assert_eq!(
        d.advance(b"GET / HTTP/1.1\r\n", |_| panic!("no payload")),
        Ok(0)
    );
    assert!(BodyDecoder::new(BodyFraming::Length(0), None).is_done());
}

#[test]
fn length_stops_at_the_end_rfc9112_6_3_p6() {
    assert_eq!(
        decode(BodyFraming::Length(5), None, b"helloGET /"),
        Ok((5, b"hello".to_vec(), true))
    );
    let mut d = BodyDecoder::new(BodyFraming::Length(5), None);
    assert_eq!(d.advance(b"he", |_| {}), Ok(2));
    assert!(!d.is_done());
    assert_eq!(d.advance(b"llo!", |_| {}), Ok(3));
    assert!(d.is_done());
    assert_eq!(d.payload_len(), 5);
}

// RFC 9110 §15.5.14 / DESIGN.md §4: 413 as soon as the length is known.

#[test]
fn declared_length_over_limit_is_413_before_reading() {
    let d = BodyDecoder::new(BodyFraming::Length(11), Some(10));
    assert_eq!(d.check_declared(), Err(ProtocolError::BodyTooLarge));
    assert_eq!(ProtocolError::BodyTooLarge.status(), 413);
    let mut d = BodyDecoder::new(BodyFraming::Length(11), Some(10));
    assert_eq!(d.advance(b"x", |_| {}), Err(ProtocolError::BodyTooLarge));
    assert_eq!(
        BodyDecoder::new(BodyFraming::Length(10), Some(10)).check_declared(),
        Ok(())
    );
    assert_eq!(
        BodyDecoder::new(BodyFraming::Chunked, Some(1)).check_declared(),
        Ok(())
    );
}

#[test]
fn until_close_takes_everything_and_ends_on_eof_rfc9112_6_3_p8() {
    let mut d = BodyDecoder::new(BodyFraming::UntilClose, None);
    assert_eq!(d.advance(b"abc", |_| {}), Ok(3));
    assert_eq!(d.advance(b"de", |_| {}), Ok(2));
    assert!(!d.is_done());
    assert_eq!(d.finish_on_eof(), Ok(()));
    assert!(d.is_done());
    assert_eq!(d.payload_len(), 5);
}

// RFC 9112 §6.3 p8 with DESIGN.md §4: a close-delimited body is bounded too.

#[test]
fn until_close_respects_the_limit() {
    let mut d = BodyDecoder::new(BodyFraming::UntilClose, Some(4));
    assert_eq!(d.advance(b"abc", |_| {}), Ok(3));
    assert_eq!(d.advance(b"de", |_| {}), Err(ProtocolError::BodyTooLarge));
}

// RFC 9112 §8: a message closed before its declared end is incomplete.

#[test]
fn truncated_bodies_fail_on_eof() {
    let mut d = BodyDecoder::new(BodyFraming::Length(5), None);
    assert_eq!(d.advance(b"abc", |_| {}), Ok(3));
    assert_eq!(d.finish_on_eof(), Err(ProtocolError::Malformed));
    let mut d = BodyDecoder::new(BodyFraming::Chunked, None);
    assert_eq!(d.advance(b"5\r\nab", |_| {}), Ok(5));
    assert_eq!(d.finish_on_eof(), Err(ProtocolError::Malformed));
    let mut d = BodyDecoder::new(BodyFraming::Length(2), None);
    assert_eq!(d.advance(b"ab", |_| {}), Ok(2));
    assert_eq!(d.finish_on_eof(), Ok(()));
}

#[test]
fn chunked_body_stops_before_the_next_request_rfc9112_7_1() {
    let body = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    let mut input = body.to_vec();
    input.extend_from_slice(b"GET / HTTP/1.1\r\n");
    assert_eq!(
        chunked(&input),
        Ok((body.len(), b"Wikipedia in\r\n\r\nchunks.".to_vec(), true))
    );
}

#[test]
fn chunk_size_hex_is_case_insensitive_rfc9112_7_1() {
    let mut body = b"a\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 10]);
    body.extend_from_slice(b"\r\nA\r\n");
    body.extend_from_slice(&[b'y'; 10]);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let (n, payload, done) = chunked(&body).unwrap();
    assert_eq!((n, payload.len(), done), (body.len(), 20, true));
}

#[test]
fn chunk_extensions_rfc9112_7_1_1() {
    for body in [
        &b"3;name\r\nabc\r\n0\r\n\r\n"[..],
        b"3;name=value\r\nabc\r\n0\r\n\r\n",
        b"3 ; a = b ; c\r\nabc\r\n0\r\n\r\n",
        b"3;a=b;c=d\r\nabc\r\n0;last=1\r\n\r\n",
        b"3;a=\"\"\r\nabc\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            chunked(body),
            Ok((body.len(), b"abc".to_vec(), true)),
            "{body:?}"
        );
    }
}

#[test]
fn quoted_extension_may_hold_semicolon_and_escapes_rfc9110_5_6_4() {
    let body = b"3;a=\"x;y\\\"z\" ;b\r\nabc\r\n0\r\n\r\n";
    assert_eq!(chunked(body), Ok((body.len(), b"abc".to_vec(), true)));
}

#[test]
fn malformed_chunk_extensions_rfc9112_7_1_1() {
    for body in [
        &b"3;\r\nabc\r\n0\r\n\r\n"[..],
        b"3 \r\nabc\r\n0\r\n\r\n",
        b"3;a b\r\nabc\r\n0\r\n\r\n",
        b"3;a=\r\nabc\r\n0\r\n\r\n",
        b"3;a=\"unterminated\r\nabc\r\n0\r\n\r\n",
        b"3;a=\"x\"y\r\nabc\r\n0\r\n\r\n",
        b"3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n",
        b"3;a=b \r\nabc\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            chunked(body).unwrap_err(),
            ProtocolError::BadChunk,
            "{body:?}"
        );
    }
}

// RFC 9112 §7.1.1: extensions may be limited; an endless size line is a DoS.

#[test]
fn overlong_chunk_line_is_refused() {
    let mut body = vec![b'0'; 5000];
    body.extend_from_slice(b"1\r\na\r\n0\r\n\r\n");
    assert_eq!(chunk_error(&body), ProtocolError::BadChunk);
}

#[test]
fn trailers_are_validated_and_consumed_rfc9112_7_1_2() {
    let body = b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other:\tv w\r\n\r\nNEXT";
    assert_eq!(chunked(body), Ok((body.len() - 4, b"abc".to_vec(), true)));
}

#[test]
fn trailer_obs_fold_ctl_and_space_before_colon_rfc9112_7_1_2() {
    assert_eq!(
        chunk_error(b"0\r\nX: a\r\n b\r\n\r\n"),
        ProtocolError::BadChunk
    );
    assert_eq!(
        chunk_error(b"0\r\nX: a\0b\r\n\r\n"),
        ProtocolError::BadChunk
    );
    assert_eq!(chunk_error(b"0\r\nX : a\r\n\r\n"), ProtocolError::BadChunk);
    assert_eq!(chunk_error(b"0\r\n: a\r\n\r\n"), ProtocolError::BadChunk);
    assert_eq!(chunk_error(b"0\r\nX: a\n\r\n"), ProtocolError::BadChunk);
}

// RFC 9112 §7.1.2: trailers are bounded like a head.

#[test]
fn trailer_section_is_bounded() {
    let mut body = b"0\r\n".to_vec();
    for _ in 0..2000 {
        body.extend_from_slice(b"X-Pad: 0123456789\r\n");
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(chunk_error(&body), ProtocolError::BadChunk);
}

#[test]
fn bare_lf_after_size_rfc9112_7_1() {
    assert_eq!(chunk_error(b"3\nabc\r\n0\r\n\r\n"), ProtocolError::BadChunk);
    assert_eq!(
        chunk_error(b"3;a\nabc\r\n0\r\n\r\n"),
        ProtocolError::BadChunk
    );
}

#[test]
fn bare_lf_after_data_and_at_the_end_rfc9112_7_1() {
    assert_eq!(chunk_error(b"3\r\nabc\n0\r\n\r\n"), ProtocolError::BadChunk);
    assert_eq!(chunk_error(b"3\r\nabc\r\n0\r\n\n"), ProtocolError::BadChunk);
}

#[test]
fn missing_crlf_after_data_rfc9112_7_1() {
    // The size says 3, the sender sent 4: the extra byte must not start a chunk.
    assert_eq!(
        chunk_error(b"3\r\nabcd\r\n0\r\n\r\n"),
        ProtocolError::BadChunk
    );
    assert_eq!(chunk_error(b"3\r\nabc0\r\n\r\n"), ProtocolError::BadChunk);
}

#[test]
fn huge_hex_size_overflows_rfc9112_7_1() {
    // 17 significant hex digits cannot fit in 64 bits.
    assert_eq!(
        chunk_error(b"10000000000000000\r\n"),
        ProtocolError::BadChunk
    );
    // 16 digits fit; with a limit it is too large before any data arrives.
    let err = decode(
        BodyFraming::Chunked,
        Some(1 << 20),
        b"FFFFFFFFFFFFFFFF\r\nab",
    )
    .unwrap_err();
    assert_eq!(err, ProtocolError::BodyTooLarge);
    let (n, payload, done) = chunked(b"FFFFFFFFFFFFFFFF\r\nab").unwrap();
    assert_eq!((n, payload.as_slice(), done), (20, &b"ab"[..], false));
}

#[test]
fn hex_prefix_and_sign_are_not_hexdig_rfc9112_7_1() {
    assert_eq!(chunk_error(b"0x10\r\n"), ProtocolError::BadChunk);
    assert_eq!(
        chunk_error(b"-5\r\nabcde\r\n0\r\n\r\n"),
        ProtocolError::BadChunk
    );
    assert_eq!(
        chunk_error(b"+5\r\nabcde\r\n0\r\n\r\n"),
        ProtocolError::BadChunk
    );
    assert_eq!(chunk_error(b"\r\n"), ProtocolError::BadChunk);
    assert_eq!(
        chunk_error(b" 5\r\nabcde\r\n0\r\n\r\n"),
        ProtocolError::BadChunk
    );
}

// RFC 9112 §7.1 / DESIGN.md §4: a streamed body over the limit is 413.

#[test]
fn chunked_limit_counts_announced_sizes() {
    let body = b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
    assert!(decode(BodyFraming::Chunked, Some(8), body).is_ok());
    let mut d = BodyDecoder::new(BodyFraming::Chunked, Some(7));
    let mut payload = Vec::new();
    let err = d.advance(body, |run| payload.extend_from_slice(run));
    assert_eq!(err, Err(ProtocolError::BodyTooLarge));
    // The second chunk was refused from its size line, before its data.
    assert_eq!(payload, b"abcd");
}

// RFC 9112 §9.3.2: bytes after the body belong to the next message.

#[test]
fn advance_after_done_consumes_nothing() {
    let mut d = BodyDecoder::new(BodyFraming::Chunked, None);
    assert_eq!(d.advance(b"0\r\n\r\n", |_| {}), Ok(5));
    assert!(d.is_done());
    assert_eq!(d.advance(b"0\r\n\r\n", |_| {}), Ok(0));
    assert_eq!(d.finish_on_eof(), Ok(()));
}

/// RFC 9112 §6.2: bytes spliced past the decoder still count toward the
/// declared length, and never beyond it.
#[test]
fn skip_accounts_for_spliced_length_bytes() {
    let mut body = BodyDecoder::new(BodyFraming::Length(100), None);
    assert_eq!(body.remaining_length(), Some(100));
    assert_eq!(body.advance(b"0123456789", |_| {}), Ok(10));
    assert_eq!(body.remaining_length(), Some(90));
    assert_eq!(body.skip(91), Err(ProtocolError::Malformed));
    assert_eq!(
        body.remaining_length(),
        Some(90),
        "a refused skip changes nothing"
    );
    assert_eq!(body.skip(60), Ok(()));
    assert!(!body.is_done());
    assert_eq!(body.skip(30), Ok(()));
    assert!(body.is_done());
    assert_eq!(body.payload_len(), 100);
    assert_eq!(body.remaining_length(), Some(0));
    // A splice that took the last bytes may still be handing them on: the
    // rounds after it account for nothing, which is no error.
    assert_eq!(body.skip(0), Ok(()));
    assert!(body.is_done());
    assert_eq!(body.skip(1), Err(ProtocolError::Malformed));
    assert_eq!(body.advance(b"next request", |_| {}), Ok(0));

    let mut chunked = BodyDecoder::new(BodyFraming::Chunked, None);
    assert_eq!(chunked.remaining_length(), None);
    assert_eq!(chunked.skip(1), Err(ProtocolError::Malformed));
    let mut until_close = BodyDecoder::new(BodyFraming::UntilClose, None);
    assert_eq!(until_close.skip(1), Err(ProtocolError::Malformed));
}
