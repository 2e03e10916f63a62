//! Body framing as a push state machine: the engine hands over raw wire bytes
//! after each read and learns how many belong to the body, which it forwards
//! verbatim. Bytes after the end (a pipelined message) are never consumed.

use super::BodyFraming;
use super::chunked::ChunkedDecoder;
use crate::error::ProtocolError;

#[derive(Debug, Clone)]
enum BodyState {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// Finds the end of one message body (RFC 9112 §6.3) and enforces a payload limit.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: BodyState,
    /// The Content-Length, kept for `check_declared`.
    declared: Option<u64>,
    limit: Option<u64>,
    payload_len: u64,
}

impl BodyDecoder {
    /// `limit`: the most payload bytes accepted (`None`: unlimited).
    pub fn new(framing: BodyFraming, limit: Option<u64>) -> Self {
        let (state, declared) = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => (BodyState::Done, None),
            BodyFraming::Length(n) => (BodyState::Length { remaining: n }, Some(n)),
            BodyFraming::Chunked => (BodyState::Chunked(ChunkedDecoder::new(limit)), None),
            BodyFraming::UntilClose => (BodyState::UntilClose, None),
        };
        BodyDecoder {
            state,
            declared,
            limit,
            payload_len: 0,
        }
    }

    /// `Err(BodyTooLarge)` when a Content-Length already exceeds the limit,
    /// so the engine can answer 413 before reading the body.
    pub fn check_declared(&self) -> Result<(), ProtocolError> {
        match (self.declared, self.limit) {
            (Some(n), Some(limit)) if n > limit => Err(ProtocolError::BodyTooLarge),
            _ => Ok(()),
        }
    }

    /// Advance over raw wire bytes; returns how many bytes of `input` belong
    /// to this body, framing included. `payload` receives every run of decoded
    /// payload (chunk data without its framing). Stops at the end of the body.
    ///
    /// Chunked input is validated strictly (RFC 9112 §7.1) and may be split at
    /// any offset. On error the body is unusable and the connection must close;
    /// `payload` may already have seen data from this call.
    pub fn advance(
        &mut self,
        input: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<usize, ProtocolError> {
        match &mut self.state {
            BodyState::Done => Ok(0),
            BodyState::Length { remaining } => {
                if let (Some(n), Some(limit)) = (self.declared, self.limit)
                    && n > limit
                {
                    return Err(ProtocolError::BodyTooLarge);
                }
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                payload(&input[..n]);
                *remaining -= n as u64;
                self.payload_len += n as u64;
                if *remaining == 0 {
                    self.state = BodyState::Done;
                }
                Ok(n)
            }
            BodyState::UntilClose => {
                let total = self.payload_len.saturating_add(input.len() as u64);
                if self.limit.is_some_and(|limit| total > limit) {
                    return Err(ProtocolError::BodyTooLarge);
                }
                payload(input);
                self.payload_len = total;
                Ok(input.len())
            }
            BodyState::Chunked(chunked) => {
                let seen = &mut self.payload_len;
                let n = chunked.advance(input, &mut |run: &[u8]| {
                    *seen += run.len() as u64;
                    payload(run);
                })?;
                if chunked.is_done() {
                    self.state = BodyState::Done;
                }
                Ok(n)
            }
        }
    }

    /// Bytes still to come of a length-delimited body; `None` for other framings.
    pub fn remaining_length(&self) -> Option<u64> {
        match self.state {
            BodyState::Length { remaining } => Some(remaining),
            BodyState::Done => Some(0),
            BodyState::Chunked(_) | BodyState::UntilClose => None,
        }
    }

    /// Account for `n` bytes of a length-delimited body that moved without
    /// passing through `advance` (spliced socket to socket: nothing in them
    /// needs looking at). More than what remains, or another framing, is an
    /// error and leaves the decoder unchanged; nothing (`n == 0`) is always
    /// fine, also once the body is done.
    pub fn skip(&mut self, n: u64) -> Result<(), ProtocolError> {
        if n == 0 {
            return Ok(());
        }
        let BodyState::Length { remaining } = &mut self.state else {
            return Err(ProtocolError::Malformed);
        };
        if n > *remaining {
            return Err(ProtocolError::Malformed);
        }
        *remaining -= n;
        self.payload_len += n;
        if *remaining == 0 {
            self.state = BodyState::Done;
        }
        Ok(())
    }

    /// The whole body has been seen.
    pub fn is_done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Decoded payload bytes seen so far.
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    /// The peer closed its side. That ends a close-delimited body (RFC 9112
    /// §6.3 p8); any other unfinished body is truncated (`Malformed`), and
    /// must never be passed on as if complete.
    pub fn finish_on_eof(&mut self) -> Result<(), ProtocolError> {
        match self.state {
            BodyState::UntilClose | BodyState::Done => {
                self.state = BodyState::Done;
                Ok(())
            }
            BodyState::Length { .. } | BodyState::Chunked(_) => Err(ProtocolError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests;
