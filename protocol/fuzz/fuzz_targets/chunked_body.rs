//! The chunked body decoder against body smuggling and resource exhaustion.
//!
//! Attack: chunk framing that ringway and the upstream would cut at different
//! places (bare LF, sizes that overflow, extensions or trailers with embedded
//! CR/LF, data longer than its size), or endless size lines and trailers.
//! Properties checked for every input:
//! - no panic; consumed bytes never exceed the input, payload never exceeds them;
//! - the outcome is the same whether the input arrives at once, split at any
//!   offset, or byte by byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringway_protocol::{BodyDecoder, BodyFraming, ProtocolError};

type Outcome = Result<(usize, Vec<u8>, bool), ProtocolError>;

fn decode(input: &[u8], cuts: impl IntoIterator<Item = usize>) -> Outcome {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, Some(1 << 20));
    let mut payload = Vec::new();
    let mut pending = Vec::new();
    let mut consumed = 0;
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(input.len())) {
        pending.extend_from_slice(&input[from..cut]);
        from = cut;
        let n = decoder.advance(&pending, |run| payload.extend_from_slice(run))?;
        assert!(n <= pending.len());
        pending.drain(..n);
        consumed += n;
        if decoder.is_done() {
            break;
        }
    }
    assert!(payload.len() <= consumed);
    assert_eq!(decoder.payload_len(), payload.len() as u64);
    Ok((consumed, payload, decoder.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let whole = decode(data, []);
    if data.len() <= 2048 {
        for cut in 0..=data.len() {
            assert_eq!(decode(data, [cut]), whole, "split at {cut}");
        }
        assert_eq!(decode(data, 1..data.len()), whole, "byte by byte");
    }
});
