//! The backend's WebSocket echo (RFC 6455, server side). Data frames are
//! echoed as they stream in: each frame's header goes out as soon as it is
//! read (same FIN and opcode, no mask, as a server must send, §5.1), then
//! its payload, unmasked in place, in whatever pieces the reads deliver. A
//! fragmented message thus comes back fragmented alike, and a message of
//! any size needs no more memory than one read. Ping is answered with
//! pong, close with the same close, after which the connection ends
//! (§5.5.1: the server closes the TCP connection first).
//!
//! A frame the echo cannot accept (unmasked, reserved bits or opcodes, bad
//! control frame) ends the connection with close code 1002 (§7.4.1).

use bytes::{Buf, BytesMut};

use super::{Next, Outbox};
use crate::ws::{FrameHeader, MAX_HEADER_LEN, Opcode, apply_mask, write_header};

/// Close frame with status 1002, protocol error.
const CLOSE_PROTOCOL_ERROR: [u8; 4] = [0x88, 0x02, 0x03, 0xEA];

/// Where the echo is in the client's stream of frames.
#[derive(Debug, Default)]
pub(in crate::backend) struct Echo {
    /// The data frame whose payload is streaming through, if any.
    frame: Option<Payload>,
}

#[derive(Debug, Clone, Copy)]
struct Payload {
    remaining: u64,
    mask: [u8; 4],
    /// Position of the next byte in the frame's payload, for the mask.
    offset: u64,
}

impl Echo {
    /// Echoes everything `buf` holds into `outbox`.
    pub(super) fn process(&mut self, buf: &mut BytesMut, outbox: &mut Outbox) -> Next {
        loop {
            if let Some(payload) = &mut self.frame {
                if buf.is_empty() {
                    return Next::Read;
                }
                let n = usize::try_from(payload.remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                apply_mask(&mut buf[..n], payload.mask, payload.offset);
                outbox.extend(&buf[..n]);
                buf.advance(n);
                payload.offset += n as u64;
                payload.remaining -= n as u64;
                if payload.remaining == 0 {
                    self.frame = None;
                }
                continue;
            }
            let header = match FrameHeader::decode(buf) {
                Ok(Some(header)) => header,
                Ok(None) => return Next::Read,
                Err(_) => return protocol_error(outbox),
            };
            // Every client frame is masked (RFC 6455 §5.1).
            let Some(mask) = header.mask else {
                return protocol_error(outbox);
            };
            if header.opcode.is_control() {
                // At most 125 bytes, checked by the decoder: wait for all.
                let len = header.payload_len as usize;
                if buf.len() < header.header_len + len {
                    return Next::Read;
                }
                buf.advance(header.header_len);
                apply_mask(&mut buf[..len], mask, 0);
                let reply = match header.opcode {
                    Opcode::Ping => Some(Opcode::Pong),
                    Opcode::Close => Some(Opcode::Close),
                    _ => None,
                };
                if let Some(opcode) = reply {
                    queue_header(outbox, true, opcode, len as u64);
                    outbox.extend(&buf[..len]);
                }
                buf.advance(len);
                if header.opcode == Opcode::Close {
                    return Next::Close;
                }
                continue;
            }
            buf.advance(header.header_len);
            queue_header(outbox, header.fin, header.opcode, header.payload_len);
            if header.payload_len > 0 {
                self.frame = Some(Payload {
                    remaining: header.payload_len,
                    mask,
                    offset: 0,
                });
            }
        }
    }
}

fn queue_header(outbox: &mut Outbox, fin: bool, opcode: Opcode, len: u64) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = write_header(&mut header, fin, opcode, None, len);
    outbox.extend(&header[..n]);
}

fn protocol_error(outbox: &mut Outbox) -> Next {
    outbox.extend(&CLOSE_PROTOCOL_ERROR);
    Next::Close
}
