//! Message body framing (RFC 9112 §6): how many bytes after a head belong to
//! its body. The load harness only needs to find where a body ends so that the
//! next message on the connection can be parsed; it never keeps body bytes.
//!
//! `BodyDecoder` is pushed: the caller feeds whatever bytes it has read, the
//! decoder says how many of them belonged to the body and whether the body is
//! complete. Bytes past the end of the body are left to the caller, which is
//! what makes pipelining work. Every state survives a split at any offset.

/// A body's framing and the decoder's progress through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDecoder {
    /// No body at all (HEAD responses, 1xx/204/304, requests without framing).
    Empty,
    /// `Content-Length` framing: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1).
    Chunked(ChunkedDecoder),
    /// Response without length framing: the body ends when the server closes
    /// the connection (RFC 9112 §6.3, rule 8).
    UntilClose,
}

/// How far one call to [`BodyDecoder::decode`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that belonged to the body (framing included).
    pub consumed: usize,
    /// The body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// A body that breaks its framing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    #[error("chunk size does not fit in 64 bits")]
    ChunkSizeOverflow,
    #[error("chunk data not followed by CRLF")]
    MissingChunkCrlf,
    #[error("line ending is not CRLF")]
    BareLineFeed,
    #[error("connection closed before the end of the body")]
    Truncated,
}

impl BodyDecoder {
    /// A fresh chunked decoder.
    pub fn chunked() -> Self {
        BodyDecoder::Chunked(ChunkedDecoder::default())
    }

    /// Whether the body is already complete without reading anything.
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Empty | BodyDecoder::Length(0) => true,
            BodyDecoder::Chunked(chunked) => chunked.state == ChunkState::Done,
            BodyDecoder::Length(_) | BodyDecoder::UntilClose => false,
        }
    }

    /// Consumes body bytes from the front of `input`.
    pub fn decode(&mut self, input: &[u8]) -> Result<Progress, FramingError> {
        match self {
            BodyDecoder::Empty => Ok(Progress {
                consumed: 0,
                done: true,
            }),
            BodyDecoder::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            BodyDecoder::Chunked(chunked) => chunked.decode(input),
            BodyDecoder::UntilClose => Ok(Progress {
                consumed: input.len(),
                done: false,
            }),
        }
    }

    /// The peer closed the connection: fine only for close-delimited bodies
    /// and bodies already complete. RFC 9112 §8: a message cut short by a
    /// close is incomplete and must not be taken for a whole one.
    pub fn finish_on_eof(&self) -> Result<(), FramingError> {
        if self.is_done() || *self == BodyDecoder::UntilClose {
            Ok(())
        } else {
            Err(FramingError::Truncated)
        }
    }
}

/// Where the chunked decoder is within the grammar of RFC 9112 §7.1:
/// `*chunk last-chunk trailer-section CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// At the start of a chunk-size line, no digit read yet.
    #[default]
    SizeStart,
    /// Reading the hex digits of chunk-size.
    Size,
    /// Skipping BWS and chunk-ext up to the CR (§7.1.1: extensions that the
    /// recipient does not understand are ignored).
    Extension,
    /// CR of the size line seen, LF expected.
    SizeLf,
    /// Inside chunk-data.
    Data,
    /// chunk-data read, CR expected.
    DataCr,
    /// CR after chunk-data seen, LF expected.
    DataLf,
    /// At the start of a trailer field line or of the final CRLF (§7.1.2).
    TrailerStart,
    /// Skipping a trailer field line up to its CR.
    TrailerLine,
    /// CR of a trailer line seen, LF expected.
    TrailerLf,
    /// CR of the final empty line seen, LF expected.
    EndLf,
    /// The whole chunked body has been read.
    Done,
}

/// Incremental decoder for `Transfer-Encoding: chunked` bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// chunk-size being parsed, then the bytes of chunk-data still to come.
    remaining: u64,
}

impl ChunkedDecoder {
    fn decode(&mut self, input: &[u8]) -> Result<Progress, FramingError> {
        let mut pos = 0;
        while pos < input.len() && self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                let take = usize::try_from(self.remaining)
                    .map_or(input.len() - pos, |r| r.min(input.len() - pos));
                self.remaining -= take as u64;
                pos += take;
                if self.remaining == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            self.step(input[pos])?;
            pos += 1;
        }
        Ok(Progress {
            consumed: pos,
            done: self.state == ChunkState::Done,
        })
    }

    /// Advances over one byte outside chunk-data.
    fn step(&mut self, byte: u8) -> Result<(), FramingError> {
        self.state = match (self.state, byte) {
            (ChunkState::SizeStart | ChunkState::Size, _) if byte.is_ascii_hexdigit() => {
                let digit = u64::from(hex_value(byte));
                self.remaining = self
                    .remaining
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(FramingError::ChunkSizeOverflow)?;
                ChunkState::Size
            }
            (ChunkState::Size, b';' | b' ' | b'\t') => ChunkState::Extension,
            (ChunkState::Size | ChunkState::Extension, b'\r') => ChunkState::SizeLf,
            (ChunkState::Extension, b'\n') => return Err(FramingError::BareLineFeed),
            (ChunkState::Extension, _) => ChunkState::Extension,
            (ChunkState::SizeStart | ChunkState::Size, _) => {
                return Err(FramingError::InvalidChunkSize);
            }
            (ChunkState::SizeLf, b'\n') if self.remaining == 0 => ChunkState::TrailerStart,
            (ChunkState::SizeLf, b'\n') => ChunkState::Data,
            (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
            (ChunkState::DataCr, _) => return Err(FramingError::MissingChunkCrlf),
            (ChunkState::DataLf, b'\n') => ChunkState::SizeStart,
            (ChunkState::TrailerStart, b'\r') => ChunkState::EndLf,
            (ChunkState::TrailerStart | ChunkState::TrailerLine, b'\n') => {
                return Err(FramingError::BareLineFeed);
            }
            (ChunkState::TrailerLine, b'\r') => ChunkState::TrailerLf,
            (ChunkState::TrailerStart | ChunkState::TrailerLine, _) => ChunkState::TrailerLine,
            (ChunkState::TrailerLf, b'\n') => ChunkState::TrailerStart,
            (ChunkState::EndLf, b'\n') => ChunkState::Done,
            (
                ChunkState::SizeLf | ChunkState::DataLf | ChunkState::TrailerLf | ChunkState::EndLf,
                _,
            ) => {
                return Err(FramingError::BareLineFeed);
            }
            (ChunkState::Data | ChunkState::Done, _) => self.state,
        };
        Ok(())
    }
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

#[cfg(test)]
mod tests;
