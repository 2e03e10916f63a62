use super::*;

/// Feeds `input` in two pieces split at `split`, as two reads would deliver
/// it, and returns the total consumed and whether the body completed.
fn feed_split(
    mut decoder: BodyDecoder,
    input: &[u8],
    split: usize,
) -> Result<Progress, FramingError> {
    let first = decoder.decode(&input[..split])?;
    if first.done || first.consumed < split {
        return Ok(first);
    }
    let second = decoder.decode(&input[split..])?;
    Ok(Progress {
        consumed: first.consumed + second.consumed,
        done: second.done,
    })
}

/// Decoding must give the same answer however the input is split.
fn assert_split_invariant(decoder: BodyDecoder, input: &[u8]) -> Result<Progress, FramingError> {
    let whole = feed_split(decoder, input, input.len());
    for split in 0..=input.len() {
        assert_eq!(feed_split(decoder, input, split), whole, "split at {split}");
    }
    whole
}

#[test]
fn length_body_stops_at_its_end_and_leaves_the_next_message() {
    let input = b"helloGET / HTTP/1.1\r\n";
    let progress = assert_split_invariant(BodyDecoder::Length(5), input).unwrap();
    assert_eq!(
        progress,
        Progress {
            consumed: 5,
            done: true
        }
    );
}

#[test]
fn length_body_waits_for_more_bytes() {
    let mut decoder = BodyDecoder::Length(10);
    assert_eq!(
        decoder.decode(b"1234").unwrap(),
        Progress {
            consumed: 4,
            done: false
        }
    );
    assert_eq!(decoder, BodyDecoder::Length(6));
    assert_eq!(decoder.finish_on_eof(), Err(FramingError::Truncated));
}

#[test]
fn empty_and_zero_length_bodies_are_done_at_once() {
    assert!(BodyDecoder::Empty.is_done());
    assert!(BodyDecoder::Length(0).is_done());
    assert!(!BodyDecoder::chunked().is_done());
    assert_eq!(
        BodyDecoder::Empty.decode(b"x").unwrap(),
        Progress {
            consumed: 0,
            done: true
        }
    );
}

#[test]
fn chunked_body_ends_after_last_chunk_and_final_crlf() {
    let body = b"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    let mut input = body.to_vec();
    input.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    let progress = assert_split_invariant(BodyDecoder::chunked(), &input).unwrap();
    assert_eq!(
        progress,
        Progress {
            consumed: body.len(),
            done: true
        }
    );
}

#[test]
fn chunked_extensions_and_trailers_are_skipped() {
    let body = b"4;name=\"va;lue\"\r\nwiki\r\n5 ; x\r\npedia\r\n0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
    let progress = assert_split_invariant(BodyDecoder::chunked(), body).unwrap();
    assert_eq!(
        progress,
        Progress {
            consumed: body.len(),
            done: true
        }
    );
}

#[test]
fn chunked_upper_case_hex_and_leading_zeros() {
    let body = b"00A\r\n0123456789\r\n000\r\n\r\n";
    let progress = assert_split_invariant(BodyDecoder::chunked(), body).unwrap();
    assert_eq!(
        progress,
        Progress {
            consumed: body.len(),
            done: true
        }
    );
}

#[test]
fn chunked_incomplete_body_is_truncated_at_eof() {
    let mut decoder = BodyDecoder::chunked();
    let progress = decoder.decode(b"5\r\nhel").unwrap();
    assert_eq!(
        progress,
        Progress {
            consumed: 6,
            done: false
        }
    );
    assert_eq!(decoder.finish_on_eof(), Err(FramingError::Truncated));
}

#[test]
fn chunked_rejects_malformed_framing() {
    let cases: [(&[u8], FramingError); 7] = [
        (b"zz\r\n", FramingError::InvalidChunkSize),
        (b"\r\n", FramingError::InvalidChunkSize),
        (b"-1\r\n", FramingError::InvalidChunkSize),
        (b"5\nhello\r\n", FramingError::InvalidChunkSize),
        (b"10000000000000000\r\n", FramingError::ChunkSizeOverflow),
        (b"5\r\nhelloXX", FramingError::MissingChunkCrlf),
        (b"0\r\nTrailer: x\n\r\n", FramingError::BareLineFeed),
    ];
    for (input, expected) in cases {
        for split in 0..=input.len() {
            let result = feed_split(BodyDecoder::chunked(), input, split);
            assert_eq!(
                result,
                Err(expected),
                "{:?} split at {split}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn chunked_rejects_bare_lf_after_data_and_at_the_end() {
    assert_eq!(
        BodyDecoder::chunked().decode(b"1\r\na\r\r"),
        Err(FramingError::BareLineFeed)
    );
    assert_eq!(
        BodyDecoder::chunked().decode(b"0\r\n\n"),
        Err(FramingError::BareLineFeed)
    );
    assert_eq!(
        BodyDecoder::chunked().decode(b"1;ext\n"),
        Err(FramingError::BareLineFeed)
    );
}

#[test]
fn until_close_takes_everything_and_ends_at_eof() {
    let mut decoder = BodyDecoder::UntilClose;
    assert_eq!(
        decoder.decode(b"abc").unwrap(),
        Progress {
            consumed: 3,
            done: false
        }
    );
    assert_eq!(decoder.finish_on_eof(), Ok(()));
}
