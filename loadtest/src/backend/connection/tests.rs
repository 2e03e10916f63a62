use super::*;

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
