//! A small, strict HTTP/1.1 reader shared by the mock backends and the test clients.
//!
//! It is written here rather than borrowed from the engine so that the tests judge ringway's
//! output with an independent reading of RFC 9112: heads must end in CRLF CRLF, chunked bodies
//! must follow the chunk grammar exactly, and a body cut short is an error, never a short body.
//! Every read is bounded: a client gives up after its patience, a backend as soon as it is told
//! to stop, so no test can hang on a silent peer.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::message::request_framing;
pub use crate::message::{
    Fnv, Framing, Headers, Request, Response, ResponseHead, response_framing,
};

/// How long one socket read or write blocks before the stop flag and the deadline are looked at again.
const POLL: Duration = Duration::from_millis(20);
/// Heads larger than this are a test failure, not something to wait for.
const MAX_HEAD: usize = 1 << 20;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed before any byte of the message")]
    Closed,
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error("connection reset by peer")]
    Reset,
    #[error("no data within {0:?}")]
    TimedOut(Duration),
    #[error("stopped")]
    Stopped,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A buffered TCP stream whose reads are bounded either by a patience (clients) or by a stop
/// flag (backends, which may wait for a proxy as long as the test runs).
#[derive(Debug)]
pub struct HttpStream {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    patience: Duration,
    stop: Option<Arc<AtomicBool>>,
}

impl HttpStream {
    /// A client side stream: each read waits at most `patience` for data.
    pub fn client(stream: TcpStream, patience: Duration) -> io::Result<HttpStream> {
        HttpStream::new(stream, patience, None)
    }

    /// A server side stream: reads wait until data arrives or `stop` is set.
    pub fn server(stream: TcpStream, stop: Arc<AtomicBool>) -> io::Result<HttpStream> {
        HttpStream::new(stream, Duration::MAX, Some(stop))
    }

    fn new(
        stream: TcpStream,
        patience: Duration,
        stop: Option<Arc<AtomicBool>>,
    ) -> io::Result<HttpStream> {
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(POLL))?;
        stream.set_nodelay(true)?;
        Ok(HttpStream {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            patience,
            stop,
        })
    }

    pub fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// Write all of `bytes`. Like reads, a write blocked by a peer that does not read gives up
    /// after the patience (clients) or when the stop flag is set (backends).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        let mut progress = Instant::now();
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    rest = &rest[n..];
                    progress = Instant::now();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                    {
                        return Err(io::Error::other("stopped"));
                    }
                    if progress.elapsed() >= self.patience {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Send `raw` and read the response to it; panics, naming the request, on any error.
    pub fn roundtrip(&mut self, raw: &[u8]) -> Response {
        let line = first_line(raw);
        let method = line.split(' ').next().unwrap_or_default().to_owned();
        if let Err(e) = self.send(raw) {
            panic!("cannot send {line:?}: {e}");
        }
        match self.read_response(&method) {
            Ok(resp) => resp,
            Err(e) => panic!("no complete response to {line:?}: {e}"),
        }
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Read once more from the socket; Ok(0) only at end of stream.
    fn fill(&mut self) -> Result<usize, ReadError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let began = Instant::now();
        loop {
            match self.stream.read(&mut self.buf[start..]) {
                Ok(n) => {
                    self.buf.truncate(start + n);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self
                        .stop
                        .as_ref()
                        .is_some_and(|s| s.load(Ordering::Relaxed))
                    {
                        self.buf.truncate(start);
                        return Err(ReadError::Stopped);
                    }
                    if began.elapsed() >= self.patience {
                        self.buf.truncate(start);
                        return Err(ReadError::TimedOut(self.patience));
                    }
                }
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(match e.kind() {
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                            ReadError::Reset
                        }
                        _ => ReadError::Io(e),
                    });
                }
            }
        }
    }

    /// Like `fill`, but the end of stream in the middle of a message is an error.
    fn fill_more(&mut self) -> Result<(), ReadError> {
        match self.fill()? {
            0 => Err(ReadError::Truncated),
            _ => Ok(()),
        }
    }

    /// Wait for a complete head (through CRLF CRLF) and return its length in the buffer.
    fn head_len(&mut self) -> Result<usize, ReadError> {
        let mut searched = 0;
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(i) = find(&unread[searched..], b"\r\n\r\n") {
                return Ok(searched + i + 4);
            }
            searched = unread.len().saturating_sub(3);
            if unread.len() > MAX_HEAD {
                return Err(ReadError::Malformed("head larger than 1 MiB".into()));
            }
            let empty = unread.is_empty();
            if self.fill()? == 0 {
                return Err(if empty {
                    ReadError::Closed
                } else {
                    ReadError::Truncated
                });
            }
        }
    }

    /// Wait until a complete head is buffered, without consuming it; returns its length.
    pub fn wait_for_head(&mut self) -> Result<usize, ReadError> {
        self.head_len()
    }

    /// Read a request head and body. `keep_body` = false only counts the payload (no copy, no
    /// hash: a backend counting a 1 GiB upload must not be the bottleneck it measures).
    pub fn read_request(&mut self, keep_body: bool) -> Result<Request, ReadError> {
        let len = self.head_len()?;
        let head = &self.buf[self.pos..self.pos + len];
        reject_bare_lf(head)?;
        let mut fields = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == len => {}
            other => return Err(ReadError::Malformed(format!("request head: {other:?}"))),
        }
        let headers = Headers::from_httparse(req.headers);
        let method = req.method.unwrap_or_default().to_owned();
        let target = req.path.unwrap_or_default().to_owned();
        let version = req.version.unwrap_or(1);
        self.pos += len;
        let framing = request_framing(&headers)?;
        let mut body = Vec::new();
        let mut hash = Fnv::default();
        let body_len = self.read_body(framing, &mut |chunk| {
            if keep_body {
                hash.update(chunk);
                body.extend_from_slice(chunk);
            }
        })?;
        Ok(Request {
            method,
            target,
            version,
            headers,
            framing,
            body,
            body_len,
            body_hash: hash.finish(),
            connection: 0,
        })
    }

    /// Read one response head, interim (1xx) ones included.
    pub fn read_response_head(&mut self) -> Result<ResponseHead, ReadError> {
        let len = self.head_len()?;
        let head = &self.buf[self.pos..self.pos + len];
        reject_bare_lf(head)?;
        let mut fields = [httparse::EMPTY_HEADER; 256];
        let mut resp = httparse::Response::new(&mut fields);
        match resp.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == len => {}
            other => return Err(ReadError::Malformed(format!("response head: {other:?}"))),
        }
        let parsed = ResponseHead {
            version: resp.version.unwrap_or(1),
            status: resp.code.unwrap_or_default(),
            reason: resp.reason.unwrap_or_default().to_owned(),
            headers: Headers::from_httparse(resp.headers),
        };
        self.pos += len;
        Ok(parsed)
    }

    /// Read a complete response to a request with method `method`, skipping interim responses.
    pub fn read_response(&mut self, method: &str) -> Result<Response, ReadError> {
        let mut interim = Vec::new();
        let head = loop {
            let head = self.read_response_head()?;
            if (100..200).contains(&head.status) && head.status != 101 {
                interim.push(head.status);
                continue;
            }
            break head;
        };
        let framing = response_framing(method, &head)?;
        let mut body = Vec::new();
        self.read_body(framing, &mut |chunk| body.extend_from_slice(chunk))?;
        Ok(Response {
            version: head.version,
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            framing,
            body,
            interim,
        })
    }

    /// Read a body with `framing`, handing every decoded run of payload to `sink`.
    /// Returns the payload length.
    pub fn read_body(
        &mut self,
        framing: Framing,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, ReadError> {
        match framing {
            Framing::None => Ok(0),
            Framing::Length(n) => {
                self.read_exact_into(n, sink)?;
                Ok(n)
            }
            Framing::Chunked => {
                let mut total = 0;
                while let Some(len) = self.read_chunk(sink)? {
                    total += len;
                }
                Ok(total)
            }
            Framing::UntilClose => {
                let mut total = 0;
                loop {
                    let unread = &self.buf[self.pos..];
                    sink(unread);
                    total += unread.len() as u64;
                    self.pos = self.buf.len();
                    if self.fill()? == 0 {
                        return Ok(total);
                    }
                }
            }
        }
    }

    fn read_exact_into(
        &mut self,
        mut n: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ReadError> {
        while n > 0 {
            if self.pos == self.buf.len() {
                self.fill_more()?;
            }
            let avail = &self.buf[self.pos..];
            let take = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&avail[..take]);
            self.pos += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// Read one line ending in CRLF (RFC 9112 §7.1: chunk framing uses CRLF only).
    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(i) = unread.iter().position(|&b| b == b'\n') {
                if i == 0 || unread[i - 1] != b'\r' {
                    return Err(ReadError::Malformed("bare LF in chunk framing".into()));
                }
                let line = unread[..i - 1].to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if unread.len() > MAX_HEAD {
                return Err(ReadError::Malformed("chunk line longer than 1 MiB".into()));
            }
            self.fill_more()?;
        }
    }

    /// Read one chunk: Some(payload length), or None after the last chunk and its trailer.
    pub fn read_chunk(&mut self, sink: &mut dyn FnMut(&[u8])) -> Result<Option<u64>, ReadError> {
        let line = self.read_line()?;
        let size_part = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_chunk_size(size_part)?;
        if size == 0 {
            // Trailer section: header lines until an empty line (RFC 9112 §7.1.2).
            while !self.read_line()?.is_empty() {}
            return Ok(None);
        }
        self.read_exact_into(size, sink)?;
        if !self.read_line()?.is_empty() {
            return Err(ReadError::Malformed(
                "chunk data not followed by CRLF".into(),
            ));
        }
        Ok(Some(size))
    }

    /// Expect the peer to close the connection within `within` without sending anything more.
    pub fn expect_close(&mut self, within: Duration) -> Result<(), String> {
        if !self.buffered().is_empty() {
            return Err(format!(
                "unexpected bytes after the response: {:?}",
                String::from_utf8_lossy(self.buffered())
            ));
        }
        let saved = self.patience;
        self.patience = within;
        let outcome = match self.fill() {
            Ok(0) | Err(ReadError::Reset) => Ok(()),
            Ok(_) => Err(format!(
                "connection still open, it sent: {:?}",
                String::from_utf8_lossy(self.buffered())
            )),
            Err(e) => Err(format!("connection not closed: {e}")),
        };
        self.patience = saved;
        outcome
    }
}

/// The request line of a raw request, for messages.
pub fn first_line(raw: &[u8]) -> String {
    let end = raw
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// httparse accepts a bare LF as a line end; RFC 9112 §2.2 lets a recipient do so, but ringway
/// must only ever send CRLF, so the tests refuse it.
fn reject_bare_lf(head: &[u8]) -> Result<(), ReadError> {
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' && (i == 0 || head[i - 1] != b'\r') {
            return Err(ReadError::Malformed(format!(
                "bare LF at offset {i} of head {:?}",
                String::from_utf8_lossy(head)
            )));
        }
    }
    Ok(())
}

fn parse_chunk_size(digits: &[u8]) -> Result<u64, ReadError> {
    let text = std::str::from_utf8(digits).unwrap_or_default();
    let valid = !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ReadError::Malformed(format!(
            "invalid chunk size {:?}",
            String::from_utf8_lossy(digits)
        )));
    }
    u64::from_str_radix(text, 16).map_err(|e| ReadError::Malformed(e.to_string()))
}
