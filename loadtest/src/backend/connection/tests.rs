use super::*;
use crate::ws::{Opcode, apply_mask, encode_header};

/// Runs `process` over `input` delivered in the given pieces and returns the
/// queued bytes and the last decision.
fn serve_pieces(pieces: &[&[u8]], body_size: usize) -> (Vec<u8>, Next) {
    let responses = Responses::new(body_size);
    let mut buf = BytesMut::new();
    let mut state = State::Head;
    let mut outbox = Outbox::default();
    let mut written = Vec::new();
    let mut next = Next::Read;
    for piece in pieces {
        buf.extend_from_slice(piece);
        next = process(&mut buf, &mut state, &mut outbox, &responses);
        if let Some(one) = outbox.single.take() {
            written.extend_from_slice(&one);
        }
        written.extend_from_slice(&outbox.batch);
        outbox.batch.clear();
        if next == Next::Close {
            break;
        }
    }
    (written, next)
}

fn ok(body_size: usize) -> Vec<u8> {
    let mut expected = format!(
        "HTTP/1.1 200 OK\r\nServer: ringway-load\r\nContent-Type: text/plain\r\nContent-Length: {body_size}\r\n\r\n"
    )
    .into_bytes();
    expected.resize(expected.len() + body_size, b'x');
    expected
}

#[test]
fn answers_one_request_with_the_fixed_body() {
    let (written, next) = serve_pieces(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"], 4);
    assert_eq!(written, ok(4));
    assert_eq!(next, Next::Read);
}

#[test]
fn answers_pipelined_requests_in_order_with_bodies_skipped() {
    let input: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHEAD /d HTTP/1.1\r\n\r\n";
    let mut expected = ok(2).repeat(3);
    // The HEAD answer announces the same length but carries no body.
    expected.extend_from_slice(&ok(2)[..ok(2).len() - 2]);
    for split in 0..=input.len() {
        let (written, next) = serve_pieces(&[&input[..split], &input[split..]], 2);
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected),
            "split at {split}"
        );
        assert_eq!(next, Next::Read);
    }
}

#[test]
fn head_response_keeps_content_length_but_has_no_body() {
    let (written, _) = serve_pieces(&[b"HEAD / HTTP/1.1\r\n\r\n"], 100);
    assert!(written.ends_with(b"Content-Length: 100\r\n\r\n"));
}

#[test]
fn closes_after_connection_close_and_http_1_0() {
    for request in [
        &b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let (written, next) = serve_pieces(&[request], 1);
        let text = String::from_utf8_lossy(&written);
        assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
        assert!(text.contains("Connection: close\r\n"));
        assert_eq!(next, Next::Close);
    }
}

#[test]
fn sends_100_continue_only_before_the_body() {
    let head: &[u8] = b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    let (written, _) = serve_pieces(&[head, b"abc"], 0);
    let mut expected = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    expected.extend_from_slice(&ok(0));
    assert_eq!(written, expected);
    let together = [head, b"abc"].concat();
    let (written, _) = serve_pieces(&[&together], 0);
    assert_eq!(written, ok(0));
}

#[test]
fn refuses_smuggling_and_malformed_requests() {
    let cases: [&[u8]; 3] = [
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\x01 HTTP/1.1\r\n\r\n",
    ];
    for request in cases {
        let (written, next) = serve_pieces(&[request], 1);
        assert!(
            written.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
            "{}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(next, Next::Close);
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(crate::response::MAX_HEAD_SIZE, b'a');
    let (written, next) = serve_pieces(&[&huge], 1);
    assert!(written.starts_with(b"HTTP/1.1 431 "));
    assert_eq!(next, Next::Close);
}

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A client frame: masked with a fixed key.
fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = Vec::new();
    encode_header(&mut frame, fin, opcode, Some(key), payload.len() as u64);
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], key, 0);
    frame
}

fn server_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_header(&mut frame, fin, opcode, None, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn websocket_upgrade_then_echo_of_fragments_and_pings_split_anywhere() {
    let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let mut input = UPGRADE.to_vec();
    input.extend(client_frame(false, Opcode::Binary, &payload[..200]));
    input.extend(client_frame(true, Opcode::Ping, b"hi"));
    input.extend(client_frame(true, Opcode::Continuation, &payload[200..]));
    input.extend(client_frame(true, Opcode::Pong, b"ignored"));
    input.extend(client_frame(true, Opcode::Text, b""));
    let mut expected = SWITCHING.to_vec();
    expected.extend(server_frame(false, Opcode::Binary, &payload[..200]));
    expected.extend(server_frame(true, Opcode::Pong, b"hi"));
    expected.extend(server_frame(true, Opcode::Continuation, &payload[200..]));
    expected.extend(server_frame(true, Opcode::Text, b""));
    for split in (0..=input.len()).step_by(7) {
        let (written, next) = serve_pieces(&[&input[..split], &input[split..]], 2);
        assert_eq!(written, expected, "split at {split}");
        assert_eq!(next, Next::Read);
    }
}

#[test]
fn websocket_close_is_echoed_and_ends_the_connection() {
    let mut input = UPGRADE.to_vec();
    input.extend(client_frame(true, Opcode::Close, &[0x03, 0xE8, b'o', b'k']));
    input.extend(client_frame(true, Opcode::Binary, b"after close"));
    let mut expected = SWITCHING.to_vec();
    expected.extend(server_frame(true, Opcode::Close, &[0x03, 0xE8, b'o', b'k']));
    let (written, next) = serve_pieces(&[&input], 2);
    assert_eq!(written, expected);
    assert_eq!(next, Next::Close);
}

#[test]
fn websocket_protocol_errors_close_with_1002() {
    // An unmasked client frame (RFC 6455 §5.1), then a reserved opcode.
    for bad in [
        server_frame(true, Opcode::Binary, b"x"),
        vec![0x83, 0x80, 0, 0, 0, 0],
    ] {
        let mut input = UPGRADE.to_vec();
        input.extend(bad);
        let mut expected = SWITCHING.to_vec();
        expected.extend([0x88, 0x02, 0x03, 0xEA]);
        let (written, next) = serve_pieces(&[&input], 2);
        assert_eq!(written, expected);
        assert_eq!(next, Next::Close);
    }
}

#[test]
fn websocket_upgrade_without_a_valid_key_is_a_bad_request() {
    let input = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let (written, next) = serve_pieces(&[input], 2);
    assert!(written.starts_with(b"HTTP/1.1 400 "));
    assert_eq!(next, Next::Close);
    // Other upgrades are plain requests to this backend.
    let h2c = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    let (written, next) = serve_pieces(&[h2c], 2);
    assert_eq!(written, ok(2));
    assert_eq!(next, Next::Read);
}
