//! WebSocket load: `--ws`, a closed loop of echoes per connection, and
//! `--ws-idle`, connections that open and then say nothing. Both begin
//! with the opening handshake of RFC 6455 §4.1 and check its answer: status
//! 101 and the `Sec-WebSocket-Accept` derived from this connection's key.
//!
//! An echo sends one masked binary frame of `--msg-size` bytes and waits
//! for the whole message to come back, in one frame or fragmented, and
//! compares it with what was sent as it arrives. The frame is built once
//! per thread with one random masking key: re-masking every message would
//! make the client, not the server, the bottleneck, and masking only
//! protects intermediaries' caches from crafted plaintext (RFC 6455
//! §10.3), which a benchmark does not need.

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::time::{sleep, sleep_until, timeout};

use super::ConnPlan;
use super::connection::{CONNECT_RETRY_DELAY, ThreadStats};
use super::dial::Dial;
use crate::report::ErrorKind;
use crate::request::RequestSpec;
use crate::socket::{READ_CAPACITY, read_more};
use crate::ws::{FrameHeader, Opcode, accept_key, apply_mask, encode_header, fill_random, new_key};

/// Read buffer of an idle connection.
const IDLE_READ: usize = 128;
/// Longest handshake response head the client reads.
const MAX_HANDSHAKE_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// What every WebSocket connection of one thread shares.
#[derive(Debug, Clone)]
pub struct WsPlan {
    /// The handshake request up to the key line (request line, Host,
    /// Upgrade, Connection, version and the user's headers).
    head_prefix: String,
    /// Header and masked payload of the one message each echo sends.
    frame: Bytes,
    /// The payload unmasked: what the echo must bring back.
    payload: Bytes,
}

impl WsPlan {
    /// The handshake goes to the request's target and Host with its extra
    /// headers; its method and body do not apply.
    pub fn new(request: &RequestSpec, msg_size: usize) -> Self {
        let mut head_prefix = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
            request.target, request.host
        );
        for (name, value) in &request.headers {
            head_prefix.push_str(&format!("{name}: {value}\r\n"));
        }
        // A pattern that changes every byte and never repeats within 251
        // bytes, so that a proxy that reorders or drops a block shows.
        let payload: Vec<u8> = (0..msg_size).map(|i| (i % 251) as u8).collect();
        let mut mask = [0u8; 4];
        fill_random(&mut mask);
        let mut frame = Vec::with_capacity(payload.len() + 14);
        encode_header(
            &mut frame,
            true,
            Opcode::Binary,
            Some(mask),
            msg_size as u64,
        );
        let start = frame.len();
        frame.extend_from_slice(&payload);
        apply_mask(&mut frame[start..], mask, 0);
        WsPlan {
            head_prefix,
            frame: Bytes::from(frame),
            payload: Bytes::from(payload),
        }
    }
}

/// One connection's echo loop; it only ends by being dropped.
pub(super) async fn echo<D: Dial>(plan: &ConnPlan, dial: &D, stats: &ThreadStats) {
    let Some(ws) = &plan.ws else { return };
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    let mut frame = ws.frame.clone();
    loop {
        let mut stream = match timeout(plan.timeout, open(plan, ws, dial, &mut buf)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(kind)) => {
                stats.error(kind);
                sleep(CONNECT_RETRY_DELAY).await;
                continue;
            }
            Err(_) => {
                stats.error(ErrorKind::Timeout);
                continue;
            }
        };
        loop {
            let started = Instant::now();
            let outcome = timeout(
                plan.timeout,
                echo_once(&mut stream, &mut frame, &mut buf, &ws.payload),
            )
            .await;
            let ended = Instant::now();
            match outcome {
                Ok(Ok((sent, received))) => stats.message(started, ended, sent, received),
                Ok(Err(kind)) => {
                    stats.error(kind);
                    break;
                }
                Err(_) => {
                    stats.error(ErrorKind::Timeout);
                    break;
                }
            }
        }
        // A timeout that dropped the write leaves the frame with the kernel.
        if frame.is_empty() {
            frame = ws.frame.clone();
        }
        if buf.capacity() == 0 {
            buf = BytesMut::with_capacity(READ_CAPACITY);
        }
    }
}

/// One idle connection: opened at `at` (retried until it opens), then held
/// without a word until the run ends. A connection the server closes is
/// counted as an `io` error and not reopened, so that the report's count of
/// open connections at the end says how many the server kept.
pub(super) async fn idle<D: Dial>(plan: &ConnPlan, dial: &D, stats: &ThreadStats, at: Instant) {
    let Some(ws) = &plan.ws else { return };
    sleep_until(monoio::time::Instant::from_std(at)).await;
    let mut buf = BytesMut::with_capacity(1024);
    let mut stream = loop {
        let started = Instant::now();
        match timeout(plan.timeout, open(plan, ws, dial, &mut buf)).await {
            Ok(Ok(stream)) => {
                stats.handshake(started, Instant::now());
                break stream;
            }
            Ok(Err(kind)) => {
                stats.count_error(kind);
                sleep(CONNECT_RETRY_DELAY).await;
            }
            // Thousands of connections timing out together must not all
            // retry at once.
            Err(_) => {
                stats.count_error(ErrorKind::Timeout);
                sleep(CONNECT_RETRY_DELAY).await;
            }
        }
    };
    stats.totals.borrow_mut().ws_open += 1;
    // The handshake's read buffer goes; thousands of idle connections wait
    // on a few bytes each. Whatever arrives (a ping, say) is read and
    // ignored; only the end of the stream ends the wait.
    drop(buf);
    let mut small = Vec::with_capacity(IDLE_READ);
    loop {
        let (read, back) = stream.read(small).await;
        small = back;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => small.clear(),
        }
    }
    let mut totals = stats.totals.borrow_mut();
    totals.ws_open -= 1;
    totals.errors.count(ErrorKind::Io);
}

/// Connects and performs the opening handshake; bytes after the 101 head
/// stay in `buf`.
async fn open<D: Dial>(
    plan: &ConnPlan,
    ws: &WsPlan,
    dial: &D,
    buf: &mut BytesMut,
) -> Result<D::Stream, ErrorKind> {
    let mut stream = dial.dial(plan.addr).await?;
    let key = new_key();
    let mut head = String::with_capacity(ws.head_prefix.len() + 64);
    head.push_str(&ws.head_prefix);
    head.push_str("Sec-WebSocket-Key: ");
    // base64 is ASCII.
    head.push_str(std::str::from_utf8(&key).unwrap_or_default());
    head.push_str("\r\n\r\n");
    let (written, _) = stream.write_all(head.into_bytes()).await;
    written.map_err(|_| ErrorKind::Io)?;
    buf.clear();
    loop {
        if let Some(head_len) = check_handshake(buf, &key)? {
            buf.advance(head_len);
            return Ok(stream);
        }
        if buf.len() > MAX_HANDSHAKE_HEAD {
            return Err(ErrorKind::Protocol);
        }
        fill(&mut stream, buf).await?;
    }
}

/// Checks a handshake response at the front of `buf`: `Ok(None)` means
/// more bytes are needed, `Ok(Some(len))` a valid 101 whose head is `len`
/// bytes. Anything else is a protocol error (RFC 6455 §4.1, the client's
/// checks 1–4 of the server's response).
pub fn check_handshake(buf: &[u8], key: &[u8]) -> Result<Option<usize>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::Protocol),
    };
    if response.code != Some(101) {
        return Err(ErrorKind::Protocol);
    }
    let expected = accept_key(key);
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    for header in response.headers.iter() {
        let value = header.value.trim_ascii();
        if header.name.eq_ignore_ascii_case("upgrade") {
            upgrade |= value.eq_ignore_ascii_case(b"websocket");
        } else if header.name.eq_ignore_ascii_case("connection") {
            connection |= crate::headers::has_token(value, b"upgrade");
        } else if header.name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = value == &expected[..];
        }
    }
    if upgrade && connection && accept {
        Ok(Some(head_len))
    } else {
        Err(ErrorKind::Protocol)
    }
}

/// Sends the message and reads its echo; returns the bytes sent and
/// received, frame headers included.
async fn echo_once<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    frame: &mut Bytes,
    buf: &mut BytesMut,
    payload: &[u8],
) -> Result<(u64, u64), ErrorKind> {
    let (written, sent) = stream.write_all(std::mem::take(frame)).await;
    *frame = sent;
    let sent = written.map_err(|_| ErrorKind::Io)? as u64;

    let mut received = 0u64;
    let mut got = 0usize;
    let mut in_message = false;
    // Payload bytes left in the current data frame, and whether it is the
    // message's last.
    let mut remaining = 0usize;
    let mut fin = false;
    loop {
        if remaining > 0 {
            if buf.is_empty() {
                fill(stream, buf).await?;
            }
            let n = remaining.min(buf.len());
            if buf[..n] != payload[got..got + n] {
                return Err(ErrorKind::Protocol);
            }
            buf.advance(n);
            got += n;
            remaining -= n;
            received += n as u64;
        } else if in_message && fin {
            return if got == payload.len() {
                Ok((sent, received))
            } else {
                Err(ErrorKind::Protocol)
            };
        } else {
            let header = match FrameHeader::decode(buf) {
                Ok(Some(header)) => header,
                Ok(None) => {
                    fill(stream, buf).await?;
                    continue;
                }
                Err(_) => return Err(ErrorKind::Protocol),
            };
            // A server never masks (RFC 6455 §5.1).
            if header.mask.is_some() {
                return Err(ErrorKind::Protocol);
            }
            let len = usize::try_from(header.payload_len).map_err(|_| ErrorKind::Protocol)?;
            match header.opcode {
                Opcode::Ping | Opcode::Pong => {
                    // Whole control frames are skipped; a ping from the
                    // server goes unanswered (the timeout would show it).
                    if buf.len() < header.header_len + len {
                        fill(stream, buf).await?;
                        continue;
                    }
                    buf.advance(header.header_len + len);
                    received += (header.header_len + len) as u64;
                    continue;
                }
                Opcode::Close => return Err(ErrorKind::Io),
                Opcode::Text => return Err(ErrorKind::Protocol),
                Opcode::Binary if in_message => return Err(ErrorKind::Protocol),
                Opcode::Continuation if !in_message => return Err(ErrorKind::Protocol),
                Opcode::Binary | Opcode::Continuation => {}
            }
            if got + len > payload.len() {
                return Err(ErrorKind::Protocol);
            }
            buf.advance(header.header_len);
            received += header.header_len as u64;
            in_message = true;
            remaining = len;
            fin = header.fin;
        }
    }
}

/// Reads more; the server closing first is an I/O error.
async fn fill<S: AsyncReadRent>(stream: &mut S, buf: &mut BytesMut) -> Result<(), ErrorKind> {
    match read_more(stream, buf).await {
        Ok(0) | Err(_) => Err(ErrorKind::Io),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    }

    #[test]
    fn handshake_checks() {
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        let good = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(check_handshake(good.as_bytes(), key), Ok(Some(good.len())));
        assert_eq!(check_handshake(&good.as_bytes()[..20], key), Ok(None));
        let wrong = response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            check_handshake(wrong.as_bytes(), key),
            Err(ErrorKind::Protocol)
        );
        let ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            check_handshake(ok200.as_bytes(), key),
            Err(ErrorKind::Protocol)
        );
    }

    #[test]
    fn plan_frame_unmasks_to_the_payload() {
        let request = RequestSpec {
            method: "GET".into(),
            target: "/".into(),
            host: "h".into(),
            headers: Vec::new(),
            body_size: 0,
            close: false,
        };
        let plan = WsPlan::new(&request, 300);
        let header = FrameHeader::decode(&plan.frame).unwrap().unwrap();
        assert_eq!(header.payload_len, 300);
        let mut body = plan.frame[header.header_len..].to_vec();
        apply_mask(&mut body, header.mask.unwrap(), 0);
        assert_eq!(body, plan.payload);
        assert!(
            plan.head_prefix
                .starts_with("GET / HTTP/1.1\r\nHost: h\r\n")
        );
    }
}
