//! The per-request protocol work of the keep-alive benchmark, in a loop, for
//! instruction counts: parse wrk's request and the load backend's response,
//! and write both heads, `N` times (first argument, default 100,000).
//!
//!   valgrind --tool=callgrind target/release/examples/heads 100000
//!
//! Run it twice with different counts and divide the difference, as
//! `loadtest/scripts/callgrind_per_request.sh` does for the whole proxy.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::BytesMut;
use ringway_bench::upstream_request;
use ringway_protocol::h1::{HeadLimits, Method, Version};
use ringway_protocol::{
    ClientResponse, Forwarded, parse_request, parse_response_into, write_request_head,
    write_response_head,
};

const LIMITS: HeadLimits = HeadLimits {
    max_head_size: 16 * 1024,
    max_headers: 100,
};

/// What `wrk` sends and what `ringway-load backend --body-size 100` answers.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8181\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: ringway-load\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("a count"));
    let forwarded = Forwarded {
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        proto: b"http",
        trusted_peer: false,
        lines: b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n",
    };
    let client = ClientResponse {
        client_version: Version::Http11,
        close: false,
        dechunk: false,
        edits: &[],
    };
    let (mut req_scratch, mut resp_scratch) = (Vec::new(), Vec::new());
    let (mut req_buf, mut resp_buf) =
        (BytesMut::with_capacity(4096), BytesMut::with_capacity(4096));
    let mut out = Vec::with_capacity(2048);
    let mut slot = None;
    for _ in 0..n {
        req_buf.extend_from_slice(black_box(REQUEST));
        let head = parse_request(&mut req_buf, &LIMITS, std::mem::take(&mut req_scratch))
            .unwrap()
            .unwrap();
        let request = upstream_request(&head, &forwarded);
        out.clear();
        write_request_head(&mut out, black_box(&head), &request);
        black_box(&out);
        // The head took the buffer (nothing followed it): back, as the
        // proxy takes it back.
        let (mut bytes, fields) = head.into_parts();
        bytes.clear();
        (req_buf, req_scratch) = (bytes, fields);

        resp_buf.extend_from_slice(black_box(RESPONSE));
        parse_response_into(
            &mut resp_buf,
            &LIMITS,
            Method::Get,
            &mut resp_scratch,
            &mut slot,
        )
        .unwrap();
        let response = slot.take().unwrap();
        out.clear();
        write_response_head(&mut out, black_box(&response), &client);
        black_box(&out);
        let (mut bytes, _, fields) = response.into_parts();
        bytes.clear();
        (resp_buf, resp_scratch) = (bytes, fields);
    }
}
