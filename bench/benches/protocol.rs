//! Head parsing (against bare httparse as the floor), upstream head writing and
//! chunked decoding.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringway_bench::{BROWSER_HEAD, RESPONSE_HEAD, SMALL_HEAD, upstream_request};
use ringway_protocol::h1::{BodyDecoder, BodyFraming, HeadLimits, Method, Version};
use ringway_protocol::{
    ClientResponse, Forwarded, parse_request, parse_response, parse_response_into,
    write_request_head, write_response_head,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 16 * 1024,
    max_headers: 100,
};

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_request");
    for (name, head) in [("small", SMALL_HEAD), ("browser", BROWSER_HEAD)] {
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(format!("httparse/{name}"), |b| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut req = httparse::Request::new(&mut headers);
                black_box(req.parse(black_box(head)).unwrap());
            })
        });
        let mut scratch = Vec::new();
        let mut buf = BytesMut::with_capacity(head.len());
        group.bench_function(format!("ringway/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(head);
                let parsed = parse_request(&mut buf, &LIMITS, std::mem::take(&mut scratch))
                    .unwrap()
                    .unwrap();
                // A head alone in its buffer takes it; back for the next
                // read, as the proxy does.
                let (bytes, fields) = black_box(parsed).into_parts();
                (buf, scratch) = (bytes, fields);
            })
        });
    }
    group.finish();
}

fn write_head(c: &mut Criterion) {
    let mut buf = BytesMut::from(BROWSER_HEAD);
    let head = parse_request(&mut buf, &LIMITS, Vec::new())
        .unwrap()
        .unwrap();
    let forwarded = Forwarded {
        client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        proto: b"http",
        trusted_peer: false,
        lines: b"",
    };
    let request = upstream_request(&head, &forwarded);
    let mut out = Vec::with_capacity(2048);
    c.bench_function("write_request_head/browser", |b| {
        b.iter(|| {
            out.clear();
            write_request_head(&mut out, black_box(&head), &request);
            black_box(&out);
        })
    });
}

fn response(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_response");
    group.throughput(Throughput::Bytes(RESPONSE_HEAD.len() as u64));
    group.bench_function("httparse/typical", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            black_box(resp.parse(black_box(RESPONSE_HEAD)).unwrap());
        })
    });
    let mut scratch = Vec::new();
    let mut buf = BytesMut::with_capacity(RESPONSE_HEAD.len());
    let mut slot = None;
    group.bench_function("ringway/typical", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(RESPONSE_HEAD);
            // As the proxy parses: the head takes the buffer, which comes
            // back with it.
            parse_response_into(&mut buf, &LIMITS, Method::Get, &mut scratch, &mut slot).unwrap();
            let parsed = slot.take().unwrap();
            let (bytes, _, fields) = black_box(parsed).into_parts();
            (buf, scratch) = (bytes, fields);
        })
    });
    group.finish();

    let mut buf = BytesMut::from(RESPONSE_HEAD);
    let head = parse_response(&mut buf, &LIMITS, Method::Get, Vec::new())
        .unwrap()
        .unwrap();
    let client = ClientResponse {
        client_version: Version::Http11,
        close: false,
        dechunk: false,
        edits: &[],
    };
    let mut out = Vec::with_capacity(2048);
    c.bench_function("write_response_head/typical", |b| {
        b.iter(|| {
            out.clear();
            write_response_head(&mut out, black_box(&head), &client);
            black_box(&out);
        })
    });
}

fn chunked(c: &mut Criterion) {
    // 64 chunks of 1 KiB with an extension on every 8th, then a trailer.
    let mut body = Vec::new();
    for i in 0..64 {
        if i % 8 == 0 {
            body.extend_from_slice(b"400;name=value\r\n");
        } else {
            body.extend_from_slice(b"400\r\n");
        }
        body.extend(std::iter::repeat_n(b'x', 1024));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\nX-Checksum: 1\r\n\r\n");
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("pass_through_64KiB", |b| {
        b.iter(|| {
            let mut decoder = BodyDecoder::new(BodyFraming::Chunked, None);
            let n = decoder.advance(black_box(&body), |_| {}).unwrap();
            assert!(decoder.is_done());
            black_box(n);
        })
    });
    group.bench_function("decode_64KiB", |b| {
        b.iter(|| {
            let mut decoder = BodyDecoder::new(BodyFraming::Chunked, None);
            let mut payload = 0usize;
            decoder
                .advance(black_box(&body), |p| payload += p.len())
                .unwrap();
            black_box(payload);
        })
    });
    group.finish();
}

criterion_group!(benches, parse, write_head, response, chunked);
criterion_main!(benches);
