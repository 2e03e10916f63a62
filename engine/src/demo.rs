//! `ringway demo`: an in-process echo backend that answers every request with
//! the request it received, as JSON, and ringway in front of it. It shows in
//! one command what ringway adds (X-Forwarded-*, the preserved Host) and takes
//! away (hop-by-hop headers).

use std::net::SocketAddr;

use bytes::BytesMut;
use monoio::io::AsyncWriteRentExt;
use monoio::net::{TcpListener, TcpStream};
use ringway_protocol::h1::{BodyDecoder, HeadLimits, Version};
use ringway_protocol::{parse_request, write_simple_response};

use crate::buffer::read_more;
use crate::config;
use crate::engine::Overrides;

/// Request bodies are echoed up to this size; longer ones are counted only.
const ECHO_BODY_LIMIT: usize = 64 * 1024;

pub fn run(listen: SocketAddr, overrides: &Overrides) -> i32 {
    let backend = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ringway demo: cannot start the echo backend: {e}");
            return 1;
        }
    };
    let backend_addr = match backend.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ringway demo: {e}");
            return 1;
        }
    };
    if let Err(e) = backend.set_nonblocking(true) {
        eprintln!("ringway demo: {e}");
        return 1;
    }
    let spawned = std::thread::Builder::new()
        .name("ringway-demo-echo".into())
        .spawn(move || {
            let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            match rt {
                Ok(mut rt) => rt.block_on(echo_backend(backend)),
                Err(e) => eprintln!("ringway demo: echo backend runtime: {e}"),
            }
        });
    if let Err(e) = spawned {
        eprintln!("ringway demo: {e}");
        return 1;
    }
    let text = format!(
        "[log]\naccess = \"stdout\"\n\n[upstreams.echo]\nservers = [\"{backend_addr}\"]\n\n\
         [[server]]\nlisten = [\"{listen}\"]\n  [[server.route]]\n  prefix = \"/\"\n  proxy = \"echo\"\n"
    );
    let snapshot = match config::load_str(&text, "<demo>") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringway demo: {e}");
            return 1;
        }
    };
    let banner = format!(
        "ringway demo: proxy on http://{listen} -> echo backend on {backend_addr}\n\
         try:  curl -v http://{listen}/anything\n      \
         curl -v -d 'hello' -H 'X-Forwarded-For: 6.6.6.6' http://{listen}/post\n\
         Ctrl-C stops."
    );
    let source = crate::control::ConfigSource::Text {
        text,
        origin: "<demo>",
    };
    crate::cli::serve(snapshot, overrides, Some(&banner), source, None)
}

async fn echo_backend(listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ringway demo: echo backend: {e}");
            return;
        }
    };
    loop {
        if let Ok((stream, peer)) = listener.accept().await {
            monoio::spawn(echo_connection(stream, peer));
        }
    }
}

async fn echo_connection(mut stream: TcpStream, peer: SocketAddr) {
    let limits = HeadLimits {
        max_head_size: 64 * 1024,
        max_headers: 256,
    };
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let head = loop {
            match parse_request(&mut buf, &limits, Vec::new()) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(_) => return,
            }
            if !matches!(read_more(&mut stream, &mut buf, 16 * 1024).await, Ok(n) if n > 0) {
                return;
            }
        };
        let mut decoder = BodyDecoder::new(head.framing(), None);
        let mut body = Vec::new();
        loop {
            let consumed = decoder.advance(&buf, |payload| {
                let room = ECHO_BODY_LIMIT.saturating_sub(body.len());
                body.extend_from_slice(&payload[..payload.len().min(room)]);
            });
            match consumed {
                Ok(n) => {
                    let _ = buf.split_to(n);
                }
                Err(_) => return,
            }
            if decoder.is_done() {
                break;
            }
            if !matches!(read_more(&mut stream, &mut buf, 16 * 1024).await, Ok(n) if n > 0) {
                return;
            }
        }
        let mut headers = serde_json::Map::new();
        for (name, value) in head.headers() {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let value = String::from_utf8_lossy(value).into_owned();
            match headers.get_mut(&name) {
                Some(serde_json::Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&value);
                }
                _ => {
                    headers.insert(name, serde_json::Value::String(value));
                }
            }
        }
        let echo = serde_json::json!({
            "method": String::from_utf8_lossy(head.method_bytes()),
            "uri": String::from_utf8_lossy(head.target()),
            "version": match head.version() { Version::Http10 => "HTTP/1.0", Version::Http11 => "HTTP/1.1" },
            "peer": peer.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "body_length": decoder.payload_len(),
        });
        let mut json = serde_json::to_vec_pretty(&echo).unwrap_or_default();
        json.push(b'\n');
        let mut out = Vec::with_capacity(json.len() + 128);
        let close = !head.keep_alive();
        write_simple_response(
            &mut out,
            200,
            Some(b"application/json"),
            &[],
            &json,
            close,
            false,
        );
        let (result, _) = stream.write_all(out).await;
        if result.is_err() || close {
            return;
        }
    }
}
