//! Every valid input, split at every offset (and fed byte by byte), must parse
//! exactly as it does in one piece: a reader never sees message boundaries,
//! and a parser that depends on them is a smuggling vector.

use bytes::BytesMut;
use ringway_protocol::{
    BodyDecoder, BodyFraming, HeadLimits, Method, ProtocolError, parse_request, parse_response,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 8192,
    max_headers: 64,
};

const REQUESTS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\nGET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nX-Empty:\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET http://h.example/p HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\t!\r\n\r\n",
];

const RESPONSES: &[(&[u8], Method)] = &[
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        Method::Get,
    ),
    (b"HTTP/1.1 204 No Content\r\n\r\n", Method::Get),
    (
        b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
        Method::Get,
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        Method::Get,
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
        Method::Head,
    ),
];

const CHUNKED_BODIES: &[&[u8]] = &[
    b"0\r\n\r\n",
    b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
    b"3;name=value\r\nabc\r\n0\r\n\r\n",
    b"3 ; a = \"x;y\\\"z\" ; b\r\nabc\r\n0;last\r\n\r\n",
    b"a\r\n0123456789\r\n0\r\nX-Checksum: 42\r\nX-Other:\tv\r\n\r\n",
    b"00000003\r\nabc\r\n000\r\n\r\n",
];

/// What a parsed request head looks like from the outside.
#[derive(Debug, PartialEq)]
struct RequestView {
    head: Vec<u8>,
    method: Method,
    target: Vec<u8>,
    path: Vec<u8>,
    query: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    framing: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
    wants_upgrade: bool,
    rest: Vec<u8>,
}

fn request_view(buf: &mut BytesMut) -> Result<Option<RequestView>, ProtocolError> {
    let Some(h) = parse_request(buf, &LIMITS, Vec::new())? else {
        return Ok(None);
    };
    Ok(Some(RequestView {
        head: h.bytes().to_vec(),
        method: h.method(),
        target: h.target().to_vec(),
        path: h.path().to_vec(),
        query: h.query().map(<[u8]>::to_vec),
        host: h.host().map(<[u8]>::to_vec),
        headers: h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
        framing: h.framing(),
        keep_alive: h.keep_alive(),
        expect_continue: h.expect_continue(),
        wants_upgrade: h.wants_upgrade(),
        rest: buf.to_vec(),
    }))
}

/// Feed `raw` as reads ending at each of `cuts`, parsing after each, as the
/// engine does. Returns the parse result and every byte left after the head.
fn parse_in_pieces<T>(
    raw: &[u8],
    cuts: &[usize],
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, ProtocolError>,
) -> Result<Option<(T, Vec<u8>)>, ProtocolError> {
    let mut buf = BytesMut::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&raw.len())) {
        buf.extend_from_slice(&raw[from..cut]);
        from = cut;
        if let Some(parsed) = parse(&mut buf)? {
            let mut rest = buf.to_vec();
            rest.extend_from_slice(&raw[from..]);
            return Ok(Some((parsed, rest)));
        }
    }
    Ok(None)
}

// RFC 9112 §2.2: message boundaries do not depend on reads.

#[test]
fn request_heads_split_at_every_offset_parse_the_same() {
    for raw in REQUESTS {
        let whole = request_view(&mut BytesMut::from(*raw)).unwrap().unwrap();
        for cut in 0..=raw.len() {
            let (view, rest) = parse_in_pieces(raw, &[cut], request_view).unwrap().unwrap();
            assert_eq!(
                RequestView { rest, ..view },
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

// RFC 9112 §2.2: message boundaries do not depend on reads.

#[test]
fn request_heads_fed_byte_by_byte_parse_the_same() {
    for raw in REQUESTS {
        let whole = request_view(&mut BytesMut::from(*raw)).unwrap().unwrap();
        let cuts: Vec<usize> = (1..raw.len()).collect();
        let (view, rest) = parse_in_pieces(raw, &cuts, request_view).unwrap().unwrap();
        assert_eq!(RequestView { rest, ..view }, whole);
    }
}

// RFC 9112 §2.2: message boundaries do not depend on reads.

#[test]
fn response_heads_split_at_every_offset_parse_the_same() {
    for &(raw, method) in RESPONSES {
        let parse = |buf: &mut BytesMut| {
            parse_response(buf, &LIMITS, method, Vec::new()).map(|h| {
                h.map(|h| {
                    let headers: Vec<(Vec<u8>, Vec<u8>)> =
                        h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
                    (
                        h.bytes().to_vec(),
                        h.status(),
                        headers,
                        h.framing(),
                        h.keep_alive(),
                    )
                })
            })
        };
        let mut buf = BytesMut::from(raw);
        let whole = parse(&mut buf).unwrap().unwrap();
        let whole_rest = buf.to_vec();
        for cut in 0..=raw.len() {
            let (view, rest) = parse_in_pieces(raw, &[cut], parse).unwrap().unwrap();
            assert_eq!(rest, whole_rest);
            assert_eq!(
                view,
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

/// Decode `input` delivered as reads ending at each of `cuts`, keeping
/// unconsumed bytes for the next call as the engine does:
/// (consumed, payload, done).
fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(usize, Vec<u8>, bool), ProtocolError> {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, None);
    let mut payload = Vec::new();
    let mut pending = Vec::new();
    let mut consumed = 0;
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        pending.extend_from_slice(&input[from..cut]);
        from = cut;
        let n = decoder.advance(&pending, |run| payload.extend_from_slice(run))?;
        pending.drain(..n);
        consumed += n;
        if decoder.is_done() {
            break;
        }
    }
    assert_eq!(decoder.payload_len(), payload.len() as u64);
    Ok((consumed, payload, decoder.is_done()))
}

// RFC 9112 §7.1: chunk boundaries do not depend on reads.

#[test]
fn chunked_bodies_split_at_every_offset_decode_the_same() {
    for body in CHUNKED_BODIES {
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let whole = decode_in_pieces(&input, &[]).unwrap();
        assert_eq!(whole.0, body.len());
        assert!(whole.2);
        for cut in 0..=input.len() {
            assert_eq!(
                decode_in_pieces(&input, &[cut]).unwrap(),
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(body)
            );
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_in_pieces(&input, &every).unwrap(), whole);
    }
}

// RFC 9112 §7.1: chunk boundaries do not depend on reads.

#[test]
fn chunked_bodies_split_at_every_pair_of_offsets_decode_the_same() {
    let body = CHUNKED_BODIES[3];
    let whole = decode_in_pieces(body, &[]).unwrap();
    for a in 0..=body.len() {
        for b in a..=body.len() {
            assert_eq!(
                decode_in_pieces(body, &[a, b]).unwrap(),
                whole,
                "splits {a}, {b}"
            );
        }
    }
}
