//! Response-head parsing against response splitting and desynchronisation.
//!
//! Attack: an upstream (compromised, or echoing attacker input) that sends a
//! head ringway and the client would frame differently, so one client sees
//! bytes meant for another; or one that crashes the worker. The first input
//! byte picks the request method (HEAD changes framing). Properties:
//! - no panic; the result does not depend on read boundaries;
//! - the head ringway writes to the client re-parses with the same status and
//!   framing.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_protocol::{
    BodyFraming, ClientResponse, HeadLimits, Method, ProtocolError, Version, parse_response,
    response_head_passes_unchanged, write_response_head,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 4096,
    max_headers: 32,
};

type Outcome = Result<Option<(Vec<u8>, u16, BodyFraming, bool, Vec<u8>)>, ProtocolError>;

fn outcome(buf: &mut BytesMut, method: Method) -> Outcome {
    parse_response(buf, &LIMITS, method, Vec::new()).map(|head| {
        head.map(|h| {
            (
                h.bytes().to_vec(),
                h.status(),
                h.framing(),
                h.keep_alive(),
                buf.to_vec(),
            )
        })
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let method = match selector % 3 {
        0 => Method::Get,
        1 => Method::Head,
        _ => Method::Post,
    };
    let whole = outcome(&mut BytesMut::from(data), method);
    if data.len() <= 1024 {
        for cut in 0..=data.len() {
            let mut buf = BytesMut::from(&data[..cut]);
            let split = match outcome(&mut buf, method) {
                Ok(None) => {
                    buf.extend_from_slice(&data[cut..]);
                    outcome(&mut buf, method)
                }
                Ok(Some((head, status, framing, keep_alive, mut rest))) => {
                    rest.extend_from_slice(&data[cut..]);
                    Ok(Some((head, status, framing, keep_alive, rest)))
                }
                Err(e) => Err(e),
            };
            assert_eq!(split, whole, "split at {cut}");
        }
    }
    let Ok(Some(head)) = parse_response(&mut BytesMut::from(data), &LIMITS, method, Vec::new())
    else {
        return;
    };
    let resp = ClientResponse {
        client_version: Version::Http11,
        close: !head.keep_alive(),
        dechunk: false,
        edits: &[],
    };
    let mut out = Vec::new();
    write_response_head(&mut out, &head, &resp);
    // A head said to pass unchanged is exactly what would have been written.
    if response_head_passes_unchanged(&head, &resp) {
        assert_eq!(out, head.bytes(), "{:?}", String::from_utf8_lossy(&out));
    }
    let limits = HeadLimits {
        max_head_size: 1 << 20,
        max_headers: 256,
    };
    match parse_response(&mut BytesMut::from(&out[..]), &limits, method, Vec::new()) {
        Ok(Some(again)) => {
            assert_eq!(again.status(), head.status());
            assert_eq!(
                again.framing(),
                head.framing(),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
        Err(ProtocolError::TooManyHeaders) => {}
        other => panic!(
            "written head refused: {other:?}: {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
});
