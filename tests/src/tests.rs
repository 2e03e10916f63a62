//! Self-tests of the harness: the mock backends and the reader, talking to each other
//! directly, so a failing integration test can be blamed on ringway and not on its judge.

use std::net::TcpStream;
use std::time::Duration;

use crate::backend::{self, Backend};
use crate::http::{Fnv, Framing, HttpStream, ReadError};
use crate::{pseudo_random_body, request};

fn connect(backend: &Backend) -> HttpStream {
    let stream = TcpStream::connect(backend.addr()).expect("connect to the backend");
    HttpStream::client(stream, Duration::from_secs(5)).expect("client stream")
}

#[test]
fn echo_backend_echoes_and_counts() {
    let backend = backend::echo_backend();
    let mut client = connect(&backend);
    let body = pseudo_random_body(100_000, 1);
    let resp = client.roundtrip(&request::with_body("POST", "/a?b", &[], &body));
    assert_eq!(resp.status, 200);
    assert!(resp.body == body);
    assert_eq!(resp.header("x-echo-target"), Some("/a?b"));
    let hash = format!("{:016x}", Fnv::of(&body));
    assert_eq!(resp.header("x-echo-body-hash"), Some(hash.as_str()));
    let pieces: Vec<&[u8]> = body.chunks(999).collect();
    let resp = client.roundtrip(&request::chunked("PUT", "/c", &[], &pieces));
    assert!(resp.body == body);
    let resp = client.roundtrip(&request::with_body("HEAD", "/h", &[], b""));
    assert_eq!(resp.framing, Framing::None);
    assert_eq!(client.roundtrip(&request::get("/after")).status, 200);
    assert_eq!(backend.connections(), 1);
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[1].framing, Framing::Chunked);
    assert_eq!(reqs[1].body_len, 100_000);
}

#[test]
fn pipelined_requests_are_read_one_by_one() {
    let backend = backend::echo_backend();
    let mut client = connect(&backend);
    let mut batch = request::get("/1");
    batch.extend(request::with_body("POST", "/2", &[], b"two"));
    batch.extend(request::get("/3"));
    client.send(&batch).expect("send");
    for (target, body) in [("/1", ""), ("/2", "two"), ("/3", "")] {
        let resp = client.read_response("GET").expect("response");
        assert_eq!(resp.header("x-echo-target"), Some(target));
        assert_eq!(resp.body_text(), body);
    }
}

#[test]
fn chunked_flush_backend_holds_the_rest_until_released() {
    let backend = backend::chunked_flush_backend(b"first".to_vec(), vec![b"-rest".to_vec()]);
    let mut client = connect(&backend);
    client.send(&request::get("/")).expect("send");
    let head = client.read_response_head().expect("head");
    assert_eq!(head.status, 200);
    let mut first = Vec::new();
    let len = client
        .read_chunk(&mut |part| first.extend_from_slice(part))
        .expect("first chunk");
    assert_eq!((len, first.as_slice()), (Some(5), &b"first"[..]));
    client.set_patience(Duration::from_millis(200));
    assert!(matches!(
        client.read_chunk(&mut |_| {}),
        Err(ReadError::TimedOut(_))
    ));
    backend.release();
    client.set_patience(Duration::from_secs(5));
    let mut rest = Vec::new();
    client
        .read_body(Framing::Chunked, &mut |part| rest.extend_from_slice(part))
        .expect("rest");
    assert_eq!(rest, b"-rest");
    assert!(!backend.gate_expired());
}

#[test]
fn close_delimited_body_is_read_to_the_end() {
    let backend = backend::close_delimited_backend(b"until close".to_vec());
    let resp = connect(&backend).roundtrip(&request::get("/"));
    assert_eq!(resp.framing, Framing::UntilClose);
    assert_eq!(resp.body_text(), "until close");
}

#[test]
fn truncated_bodies_are_errors() {
    for chunked in [false, true] {
        let backend = backend::dying_mid_response_backend(chunked);
        let mut client = connect(&backend);
        client.send(&request::get("/")).expect("send");
        let outcome = client.read_response("GET");
        assert!(
            matches!(outcome, Err(ReadError::Truncated | ReadError::Reset)),
            "chunked={chunked}: {outcome:?}"
        );
    }
}

#[test]
fn malformed_chunk_framing_is_rejected() {
    let backend = backend::malformed_response_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n".to_vec(),
    );
    let mut client = connect(&backend);
    client.send(&request::get("/")).expect("send");
    assert!(matches!(
        client.read_response("GET"),
        Err(ReadError::Malformed(_))
    ));
}

#[test]
fn bare_lf_heads_are_rejected() {
    let backend =
        backend::malformed_response_backend(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n".to_vec());
    let mut client = connect(&backend);
    client.send(&request::get("/")).expect("send");
    let outcome = client.read_response("GET");
    assert!(
        matches!(
            outcome,
            Err(ReadError::Malformed(_)) | Err(ReadError::Truncated)
        ),
        "{outcome:?}"
    );
}

#[test]
fn closing_backend_closes_after_one_response() {
    let backend = backend::closing_after_response_backend();
    let mut client = connect(&backend);
    let resp = client.roundtrip(&request::get("/once"));
    assert_eq!(resp.body_text(), "/once");
    client.expect_close(Duration::from_secs(2)).expect("closed");
}

#[test]
fn slow_backend_answers_after_its_delay() {
    let backend = backend::slow_head_backend(Duration::from_millis(300));
    let mut client = connect(&backend);
    let began = std::time::Instant::now();
    assert_eq!(
        client.roundtrip(&request::get("/late")).body_text(),
        "/late"
    );
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[test]
fn pseudo_random_body_is_deterministic() {
    assert_eq!(pseudo_random_body(1000, 5), pseudo_random_body(1000, 5));
    assert_ne!(pseudo_random_body(1000, 5), pseudo_random_body(1000, 6));
    assert_eq!(pseudo_random_body(1001, 5).len(), 1001);
}
