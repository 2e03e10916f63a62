//! WebSocket wire format (RFC 6455), sans-IO, shared by the load client and
//! the backend's echo: the opening handshake's accept key (§4.2.2), frame
//! headers in all three length encodings (§5.2), and masking (§5.3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The GUID every accept key is derived with (RFC 6455 §1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;
/// Control frames carry at most 125 bytes (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Frame opcodes (RFC 6455 §5.2); the reserved ones are protocol errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Why a frame header cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("64-bit length with the most significant bit set")]
    LengthTooLarge,
    #[error("length not in its shortest encoding")]
    NonMinimalLength,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: Opcode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header took on the wire.
    pub header_len: usize,
}

impl FrameHeader {
    /// Decodes a header from the front of `buf`; `Ok(None)` means more bytes
    /// are needed.
    pub fn decode(buf: &[u8]) -> Result<Option<FrameHeader>, FrameError> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        if first & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let fin = first & 0x80 != 0;
        let opcode =
            Opcode::from_bits(first & 0x0F).ok_or(FrameError::ReservedOpcode(first & 0x0F))?;
        let masked = second & 0x80 != 0;
        let (payload_len, mut header_len) = match second & 0x7F {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                if len < 126 {
                    return Err(FrameError::NonMinimalLength);
                }
                (len, 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthTooLarge);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(FrameError::NonMinimalLength);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        if opcode.is_control() && (!fin || payload_len > MAX_CONTROL_PAYLOAD) {
            return Err(FrameError::BadControlFrame);
        }
        let mask = if masked {
            let Some(bytes) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };
        Ok(Some(FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
            header_len,
        }))
    }
}

/// Appends a frame header to `out`, in the shortest length encoding
/// (RFC 6455 §5.2 requires it).
pub fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    len: u64,
) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = write_header(&mut header, fin, opcode, mask, len);
    out.extend_from_slice(&header[..n]);
}

/// Writes a frame header into `header`, returning its length.
pub fn write_header(
    header: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    len: u64,
) -> usize {
    header[0] = (u8::from(fin) << 7) | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = 2;
    if len < 126 {
        header[1] = mask_bit | len as u8;
    } else if let Ok(short) = u16::try_from(len) {
        header[1] = mask_bit | 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        n = 4;
    } else {
        header[1] = mask_bit | 127;
        header[2..10].copy_from_slice(&len.to_be_bytes());
        n = 10;
    }
    if let Some(key) = mask {
        header[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    n
}

/// XORs `data` with the masking key, `offset` being the position of
/// `data[0]` in the frame's payload (RFC 6455 §5.3); masking and unmasking
/// are the same operation.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: u64) {
    let mut word = key;
    word.rotate_left((offset % 4) as usize);
    let rotated = u32::from_ne_bytes(word);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ rotated;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= word[i];
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1 of
/// the key and the GUID (RFC 6455 §4.2.2 step 5.4).
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(ACCEPT_GUID);
    let digest = context.finish();
    let mut out = [0u8; 28];
    // 20 bytes always encode to 28 base64 characters.
    let written = STANDARD
        .encode_slice(digest.as_ref(), &mut out)
        .unwrap_or_default();
    debug_assert_eq!(written, 28);
    out
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1).
pub fn new_key() -> [u8; 24] {
    let mut nonce = [0u8; 16];
    fill_random(&mut nonce);
    let mut out = [0u8; 24];
    let written = STANDARD.encode_slice(nonce, &mut out).unwrap_or_default();
    debug_assert_eq!(written, 24);
    out
}

/// Random bytes from the system generator, for keys and masks.
pub fn fill_random(out: &mut [u8]) {
    use ring::rand::SecureRandom as _;
    // The system RNG failing means the OS cannot serve getrandom at all.
    ring::rand::SystemRandom::new()
        .fill(out)
        .unwrap_or_else(|_| panic!("the system random number generator failed"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let key = new_key();
        assert_ne!(key, new_key());
        assert_eq!(STANDARD.decode(key).unwrap().len(), 16);
    }

    #[test]
    fn headers_round_trip_in_every_length_encoding() {
        for len in [0u64, 1, 125, 126, 65535, 65536, 1 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                encode_header(&mut out, true, Opcode::Binary, mask, len);
                let expected =
                    2 + if len < 126 {
                        0
                    } else if len <= 65535 {
                        2
                    } else {
                        8
                    } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(out.len(), expected, "len {len}");
                let header = FrameHeader::decode(&out).unwrap().unwrap();
                assert_eq!(header.payload_len, len);
                assert_eq!(header.mask, mask);
                assert_eq!(header.header_len, out.len());
                assert!(
                    FrameHeader::decode(&out[..out.len() - 1])
                        .unwrap()
                        .is_none()
                );
            }
        }
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            FrameHeader::decode(&[0x82 | 0x40, 0]),
            Err(FrameError::ReservedBits)
        );
        assert_eq!(
            FrameHeader::decode(&[0x83, 0]),
            Err(FrameError::ReservedOpcode(3))
        );
        assert_eq!(
            FrameHeader::decode(&[0x09, 0]),
            Err(FrameError::BadControlFrame)
        );
        assert_eq!(
            FrameHeader::decode(&[0x89, 126, 0, 200]),
            Err(FrameError::BadControlFrame)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 126, 0, 5]),
            Err(FrameError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::LengthTooLarge)
        );
    }

    #[test]
    fn masking_at_any_offset_matches_bytewise_xor() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let data: Vec<u8> = (0..23u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for (i, byte) in whole.iter().enumerate() {
            assert_eq!(*byte, data[i] ^ key[i % 4]);
        }
        // Unmasking in pieces at odd offsets gives the data back.
        let (a, b) = whole.split_at_mut(7);
        apply_mask(a, key, 0);
        apply_mask(b, key, 7);
        assert_eq!(whole, data);
    }
}
