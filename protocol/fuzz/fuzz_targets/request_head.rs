//! Request-head parsing against request smuggling and header injection.
//!
//! Attack: a head that ringway and the upstream read differently (bare LF,
//! obs-fold, duplicated or malformed framing fields, split reads), or one that
//! makes the parser panic or loop. Properties checked for every input:
//! - no panic, whatever the bytes;
//! - the result does not depend on where the input is split across reads;
//! - a head ringway accepts and forwards is itself accepted when re-parsed,
//!   with the same framing: the upstream cannot see a different message;
//! - an upgrade ringway passes on is still an upgrade in the forwarded head.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringway_protocol::{
    BodyFraming, Forwarded, HeadLimits, ProtocolError, RequestHead, UpstreamRequest,
    UpgradeRequest, classify_upgrade, normalize_path, parse_request, write_request_head,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 4096,
    max_headers: 32,
};

/// What must not change between one read and several.
type Outcome = Result<Option<(Vec<u8>, BodyFraming, bool, Vec<u8>)>, ProtocolError>;

fn outcome(buf: &mut BytesMut) -> Outcome {
    parse_request(buf, &LIMITS, Vec::new()).map(|head| {
        head.map(|h| {
            (
                h.bytes().to_vec(),
                h.framing(),
                h.keep_alive(),
                buf.to_vec(),
            )
        })
    })
}

fn split_outcome(data: &[u8], cut: usize) -> Outcome {
    let mut buf = BytesMut::from(&data[..cut]);
    match outcome(&mut buf) {
        Ok(None) => {
            buf.extend_from_slice(&data[cut..]);
            outcome(&mut buf)
        }
        Ok(Some((head, framing, keep_alive, mut rest))) => {
            rest.extend_from_slice(&data[cut..]);
            Ok(Some((head, framing, keep_alive, rest)))
        }
        // An error on a prefix must be the error of the whole input.
        Err(e) => Err(e),
    }
}

fn forward_and_reparse(head: &RequestHead) {
    let fwd = Forwarded {
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        proto: b"http",
        trusted_peer: true,
        lines: b"",
    };
    // Routing normalises; the target forwarded is the raw path and query.
    let _ = normalize_path(head.path());
    let mut target = head.path().to_vec();
    if let Some(query) = head.query() {
        target.push(b'?');
        target.extend_from_slice(query);
    }
    let req = UpstreamRequest {
        target: &target,
        forwarded: &fwd,
        default_host: b"upstream.internal",
        pass_upgrade: head.wants_upgrade(),
        edits: &[],
    };
    let mut out = Vec::new();
    write_request_head(&mut out, head, &req);
    let limits = HeadLimits {
        max_head_size: 1 << 20,
        max_headers: 256,
    };
    let mut buf = BytesMut::from(&out[..]);
    match parse_request(&mut buf, &limits, Vec::new()) {
        Ok(Some(again)) => {
            assert_eq!(
                again.framing(),
                head.framing(),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            assert!(buf.is_empty());
            if classify_upgrade(head) != Ok(UpgradeRequest::None) {
                assert!(again.wants_upgrade(), "{:?}", String::from_utf8_lossy(&out));
            }
        }
        // The client may have sent more fields than the re-parse array holds.
        Err(ProtocolError::TooManyHeaders) => {}
        other => panic!(
            "forwarded head refused: {other:?}: {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = outcome(&mut BytesMut::from(data));
    if let Ok(Some(_)) = &whole {
        let head = parse_request(&mut BytesMut::from(data), &LIMITS, Vec::new())
            .ok()
            .flatten()
            .expect("deterministic");
        forward_and_reparse(&head);
    }
    if data.len() <= 1024 {
        for cut in 0..=data.len() {
            assert_eq!(split_outcome(data, cut), whole, "split at {cut}");
        }
    }
});
