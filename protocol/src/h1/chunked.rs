//! The chunked transfer coding (RFC 9112 §7.1) as a byte-driven state
//! machine: it keeps its place between calls, so input may be split at any
//! offset. Framing bytes are validated one at a time; chunk data is passed on
//! in runs, never copied.

use super::fields::{is_field_vchar, is_tchar};
use crate::error::ProtocolError;

/// A chunk-size line (size plus extensions) longer than this is refused:
/// nothing legitimate needs it, and an endless extension would otherwise let
/// a client hold a connection busy without sending payload.
const MAX_CHUNK_LINE: usize = 4096;
/// Upper bound on the trailer section, like a second, small head.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk-size.
    SizeStart,
    Size,
    /// Whitespace after the size: only legal before a `;` (BWS, RFC 9112 §7.1.1).
    SizeBws,
    ExtBeforeName,
    ExtName,
    ExtAfterName,
    ExtBeforeValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// Just after a closing quote.
    ExtValueEnd,
    /// Whitespace after a value: only legal before the next `;`.
    ExtAfterValue,
    /// CR seen at the end of the chunk-size line.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read, then the data bytes left of this chunk.
    size: u64,
    line_len: usize,
    trailer_len: usize,
    /// Sum of the chunk sizes announced so far.
    declared: u64,
    limit: Option<u64>,
}

impl ChunkedDecoder {
    pub(crate) fn new(limit: Option<u64>) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            size: 0,
            line_len: 0,
            trailer_len: 0,
            declared: 0,
            limit,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume the bytes of `input` that belong to the body; stop after the
    /// final CRLF. Chunk data runs go to `payload`.
    pub(crate) fn advance(
        &mut self,
        input: &[u8],
        payload: &mut impl FnMut(&[u8]),
    ) -> Result<usize, ProtocolError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let rest = &input[i..];
                    let n = rest
                        .len()
                        .min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    payload(&rest[..n]);
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), ProtocolError> {
        use State::*;
        let hex = hex_digit(b);
        let ws = b == b' ' || b == b'\t';
        if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf
        ) {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILERS {
                return Err(ProtocolError::BadChunk);
            }
        } else if self.state != DataCr && self.state != DataLf {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ProtocolError::BadChunk);
            }
        }
        self.state = match (self.state, b) {
            (SizeStart | Size, _) if hex.is_some() => {
                let digit = u64::from(hex.unwrap_or_default());
                // chunk-size = 1*HEXDIG; a size past u64 is an attack, not a body.
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ProtocolError::BadChunk)?;
                Size
            }
            (Size, b';') => ExtBeforeName,
            (Size, _) if ws => SizeBws,
            (Size | ExtName | ExtToken | ExtValueEnd, b'\r') => SizeLf,
            (SizeBws, _) if ws => SizeBws,
            (SizeBws | ExtName | ExtAfterName | ExtToken | ExtValueEnd | ExtAfterValue, b';') => {
                ExtBeforeName
            }
            (ExtBeforeName, _) if ws => ExtBeforeName,
            (ExtBeforeName | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtAfterName, _) if ws => ExtAfterName,
            (ExtName | ExtAfterName, b'=') => ExtBeforeValue,
            (ExtBeforeValue, _) if ws => ExtBeforeValue,
            (ExtBeforeValue, b'"') => ExtQuoted,
            (ExtBeforeValue | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtToken | ExtValueEnd | ExtAfterValue, _) if ws => ExtAfterValue,
            // quoted-string (RFC 9110 §5.6.4): qdtext or quoted-pair.
            (ExtQuoted, b'"') => ExtValueEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, _) if ws || b == 0x21 || (b >= 0x23 && b != b'\\' && b != 0x7f) => {
                ExtQuoted
            }
            (ExtQuotedPair, _) if ws || is_field_vchar(b) => ExtQuoted,
            (SizeLf, b'\n') => self.end_of_size_line()?,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.size = 0;
                self.line_len = 0;
                SizeStart
            }
            // trailer-section = *( field-line CRLF ), validated like a head's
            // fields: no obs-fold, no space before the colon, no CTLs.
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart | TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, _) if ws || is_field_vchar(b) => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => Done,
            _ => return Err(ProtocolError::BadChunk),
        };
        Ok(())
    }

    /// A complete chunk-size line: the last chunk starts the trailers,
    /// any other is checked against the payload limit before its data arrives.
    fn end_of_size_line(&mut self) -> Result<State, ProtocolError> {
        if self.size == 0 {
            return Ok(State::TrailerStart);
        }
        self.declared = self
            .declared
            .checked_add(self.size)
            .ok_or(ProtocolError::BodyTooLarge)?;
        if self.limit.is_some_and(|limit| self.declared > limit) {
            return Err(ProtocolError::BodyTooLarge);
        }
        Ok(State::Data)
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
