use bytes::BytesMut;

use super::*;
use crate::h1::{HeadLimits, parse_request};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn classify(raw: &str) -> Result<UpgradeRequest, HandshakeError> {
    let mut buf = BytesMut::from(raw.as_bytes());
    let limits = HeadLimits {
        max_head_size: 8192,
        max_headers: 100,
    };
    let head = parse_request(&mut buf, &limits, Vec::new())
        .expect("valid head")
        .expect("complete head");
    classify_upgrade(&head)
}

fn handshake(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
    )
}

#[test]
fn rfc6455_sample_handshake_is_a_websocket() {
    let raw = handshake(&format!(
        "Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    ));
    assert_eq!(classify(&raw), Ok(UpgradeRequest::WebSocket));
}

#[test]
fn connection_token_is_case_insensitive_in_a_list() {
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert_eq!(classify(&raw), Ok(UpgradeRequest::WebSocket));
}

#[test]
fn no_upgrade_without_both_fields_or_in_http10() {
    assert_eq!(
        classify("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
        Ok(UpgradeRequest::None)
    );
    assert_eq!(
        classify("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"),
        Ok(UpgradeRequest::None)
    );
    assert_eq!(
        classify("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
        Ok(UpgradeRequest::None)
    );
}

#[test]
fn other_protocols_are_left_to_the_upstream() {
    let raw = "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\
               Content-Length: 3\r\n\r\n";
    assert_eq!(classify(raw), Ok(UpgradeRequest::Other));
}

#[test]
fn bad_handshakes_are_refused_with_their_status() {
    let version = "Sec-WebSocket-Version: 13\r\n";
    let cases = [
        (
            "Sec-WebSocket-Version: 13\r\n".to_string(),
            HandshakeError::MissingKey,
        ),
        (
            format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Key: {KEY}\r\n{version}"),
            HandshakeError::MissingKey,
        ),
        (
            format!("Sec-WebSocket-Key: c2hvcnQ=\r\n{version}"),
            HandshakeError::BadKey,
        ),
        (
            // 17 bytes' worth of characters.
            format!("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZX==\r\n{version}"),
            HandshakeError::BadKey,
        ),
        (
            format!("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n{version}"),
            HandshakeError::BadKey,
        ),
        (
            format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n"),
            HandshakeError::BadVersion,
        ),
        (
            format!("Sec-WebSocket-Key: {KEY}\r\n"),
            HandshakeError::BadVersion,
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(classify(&handshake(&extra)), Err(expected), "{extra}");
    }
    assert_eq!(HandshakeError::BadVersion.status(), 426);
    assert_eq!(HandshakeError::BadKey.status(), 400);
}

#[test]
fn a_websocket_handshake_must_be_a_bodyless_get() {
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    assert_eq!(classify(&raw), Err(HandshakeError::NotGet));
    let raw = handshake(&format!(
        "Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 2\r\n"
    ));
    assert_eq!(classify(&raw), Err(HandshakeError::HasBody));
}

#[test]
fn every_16_byte_key_is_accepted() {
    // All four possible final characters before "==".
    for last in ['A', 'Q', 'g', 'w'] {
        let key = format!("AAAAAAAAAAAAAAAAAAAAA{last}==");
        assert!(is_base64_of_16_bytes(key.as_bytes()), "{key}");
    }
    assert!(!is_base64_of_16_bytes(b"AAAAAAAAAAAAAAAAAAAAAB=="));
    assert!(!is_base64_of_16_bytes(b"AAAAAAAAAAAAAAAAAAAAAAA="));
}
