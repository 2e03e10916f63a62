//! One backend connection: parse every complete request in the buffer
//! (pipelined requests included), skip its body by its framing, queue the
//! fixed response, then write all queued responses at once and read again.
//! Malformed framing is answered with 400 (431 for oversized heads) and the
//! connection is closed, as a strict server would (RFC 9112 §6.3).
//!
//! A WebSocket opening handshake is answered with 101, and from then on
//! the connection is an echo (`echo`): every frame comes back unmasked.

mod echo;

use std::mem;

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use crate::framing::BodyDecoder;
use crate::request::parse_request_head;
use crate::socket::{READ_CAPACITY, read_more};
use crate::ws::accept_key;
use echo::Echo;

/// The responses a backend sends, built once per thread. Responses to HEAD
/// are prefixes of the full ones, so every answer is a cheap `Bytes` slice.
pub(super) struct Responses {
    keep_alive: Bytes,
    keep_alive_head: usize,
    close: Bytes,
    close_head: usize,
    bad_request: Bytes,
    too_large: Bytes,
    continue_: Bytes,
}

impl Responses {
    pub(super) fn new(body_size: usize) -> Self {
        let build = |connection: &str| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nServer: ringway-load\r\nContent-Type: text/plain\r\nContent-Length: {body_size}\r\n{connection}\r\n"
            );
            let mut full = Vec::with_capacity(head.len() + body_size);
            full.extend_from_slice(head.as_bytes());
            full.resize(head.len() + body_size, b'x');
            (Bytes::from(full), head.len())
        };
        let (keep_alive, keep_alive_head) = build("");
        let (close, close_head) = build("Connection: close\r\n");
        let error = |status: &str| {
            Bytes::from(format!(
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ))
        };
        Responses {
            keep_alive,
            keep_alive_head,
            close,
            close_head,
            bad_request: error("400 Bad Request"),
            too_large: error("431 Request Header Fields Too Large"),
            continue_: Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n"),
        }
    }

    fn answer(&self, keep_alive: bool, is_head: bool) -> Bytes {
        let (full, head) = if keep_alive {
            (&self.keep_alive, self.keep_alive_head)
        } else {
            (&self.close, self.close_head)
        };
        if is_head {
            full.slice(..head)
        } else {
            full.clone()
        }
    }

    fn error(&self, status: u16) -> Bytes {
        if status == 431 {
            self.too_large.clone()
        } else {
            self.bad_request.clone()
        }
    }
}

/// Where the connection is in the current request.
enum State {
    Head,
    Body {
        decoder: BodyDecoder,
        keep_alive: bool,
        is_head: bool,
        /// `100 Continue` is still owed (RFC 9110 §10.1.1).
        expect_continue: bool,
    },
    /// After a 101: a WebSocket echo.
    WebSocket(Echo),
}

/// Whether to keep reading after the queued responses are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Read,
    Close,
}

pub(super) async fn serve<S: AsyncReadRent + AsyncWriteRent>(mut stream: S, responses: &Responses) {
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    let mut outbox = Outbox::default();
    let mut state = State::Head;
    loop {
        let next = process(&mut buf, &mut state, &mut outbox, responses);
        if !outbox.flush(&mut stream).await || next == Next::Close {
            return;
        }
        match read_more(&mut stream, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Consumes every complete request (and body bytes) in `buf`, queueing the
/// answers in order.
fn process(
    buf: &mut BytesMut,
    state: &mut State,
    outbox: &mut Outbox,
    responses: &Responses,
) -> Next {
    loop {
        match state {
            State::Head => match parse_request_head(buf) {
                Ok(Some(head)) if head.websocket_key.is_some() => {
                    buf.advance(head.head_len);
                    let key = head.websocket_key.unwrap_or_default();
                    // RFC 6455 §4.2.2 step 5.
                    outbox.extend(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
                    outbox.extend(&accept_key(&key));
                    outbox.extend(b"\r\n\r\n");
                    *state = State::WebSocket(Echo::default());
                }
                Ok(Some(head)) => {
                    buf.advance(head.head_len);
                    *state = State::Body {
                        decoder: head.body,
                        keep_alive: head.keep_alive,
                        is_head: head.is_head,
                        expect_continue: head.expect_continue,
                    };
                }
                Ok(None) => return Next::Read,
                Err(error) => {
                    outbox.push(responses.error(error.status()));
                    return Next::Close;
                }
            },
            State::Body {
                decoder,
                keep_alive,
                is_head,
                expect_continue,
            } => {
                let Ok(progress) = decoder.decode(buf) else {
                    outbox.push(responses.bad_request.clone());
                    return Next::Close;
                };
                buf.advance(progress.consumed);
                if progress.done {
                    outbox.push(responses.answer(*keep_alive, *is_head));
                    if !*keep_alive {
                        return Next::Close;
                    }
                    *state = State::Head;
                    continue;
                }
                // A client that already sent body bytes needs no 100.
                if mem::take(expect_continue) && progress.consumed == 0 {
                    outbox.push(responses.continue_.clone());
                }
                return Next::Read;
            }
            State::WebSocket(echo) => return echo.process(buf, outbox),
        }
    }
}

/// Responses waiting to be written. The common case, one response, is sent
/// from the shared bytes without copying; pipelined answers are gathered in
/// one buffer so that they leave in one write.
#[derive(Default)]
struct Outbox {
    single: Option<Bytes>,
    batch: BytesMut,
}

impl Outbox {
    /// Queues bytes by copying them into the batch buffer, which is kept
    /// and reused from write to write.
    fn extend(&mut self, bytes: &[u8]) {
        if let Some(first) = self.single.take() {
            self.batch.extend_from_slice(&first);
        }
        self.batch.extend_from_slice(bytes);
    }

    fn push(&mut self, response: Bytes) {
        if self.single.is_none() && self.batch.is_empty() {
            self.single = Some(response);
            return;
        }
        if let Some(first) = self.single.take() {
            self.batch.extend_from_slice(&first);
        }
        self.batch.extend_from_slice(&response);
    }

    /// Writes everything queued; false when the peer is gone.
    async fn flush<S: AsyncWriteRent>(&mut self, stream: &mut S) -> bool {
        if let Some(one) = self.single.take() {
            return stream.write_all(one).await.0.is_ok();
        }
        if self.batch.is_empty() {
            return true;
        }
        let (written, mut batch) = stream.write_all(mem::take(&mut self.batch)).await;
        batch.clear();
        self.batch = batch;
        written.is_ok()
    }
}

#[cfg(test)]
mod tests;
