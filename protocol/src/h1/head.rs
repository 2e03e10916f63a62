//! Finding a complete head in a buffer, before any field is looked at.
//!
//! httparse accepts a bare LF as a line end and would, if asked, unfold
//! obs-fold lines; both are smuggling vectors between parsers that disagree
//! (RFC 9112 §2.2, §5.2). This scan refuses them for requests and responses
//! alike, and bounds the work on a buffer that never completes a head.

use std::mem::MaybeUninit;

use super::fields::HeaderField;
use crate::error::ProtocolError;

/// The largest header array handed to httparse; `HeadLimits::max_headers`
/// above this is capped.
pub(crate) const MAX_HEADERS: usize = 256;

/// Uninitialised storage for httparse's header array: nothing is written
/// before httparse fills it, so the per-request cost is zero.
pub(crate) type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

pub(crate) fn header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Where a complete head sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Bytes of leading empty lines before the start line.
    pub(crate) skip: usize,
    /// Length of the head from the start line through the final CRLFCRLF.
    pub(crate) len: usize,
}

/// What to do with empty lines before the start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeadingEmptyLines {
    /// RFC 9112 §2.2: a server SHOULD ignore at least one CRLF before a request-line.
    Skip,
    /// Nothing allows them before a status-line; they mean a framing mismatch.
    Reject,
}

/// What a parse is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimited {
    /// The start of the buffer, up to the head limit: httparse finds the end
    /// of the head, and a head that is incomplete, refused or not `is_tidy`
    /// is left to `find_head` and an `Exact` parse.
    Window,
    /// Exactly the head `find_head` found.
    Exact,
}

/// The head httparse found at the start of `input`, as `delimited` asks:
/// `Ok(None)` sends a `Window` the slow way (incomplete, or refused by
/// httparse: `find_head` may have a more precise error); an `Exact` head must
/// be all of `input`, and httparse's refusal is mapped by `refused`.
pub(crate) fn delimit(
    input: &[u8],
    delimited: Delimited,
    parsed: httparse::Result<usize>,
    refused: impl FnOnce(httparse::Error) -> ProtocolError,
) -> Result<Option<&[u8]>, ProtocolError> {
    match (delimited, parsed) {
        (Delimited::Window, Ok(httparse::Status::Complete(len))) => Ok(Some(&input[..len])),
        (Delimited::Window, _) => Ok(None),
        (Delimited::Exact, Ok(httparse::Status::Complete(len))) if len == input.len() => {
            Ok(Some(input))
        }
        (Delimited::Exact, Ok(_)) => Err(ProtocolError::Malformed),
        (Delimited::Exact, Err(e)) => Err(refused(e)),
    }
}

/// Heads for the tests that hold the fast way to the exact one: `start`,
/// then eight pieces drawn from `pieces` (xorshift from `seed`), then the
/// final CRLFs and `tail`; one in seven starts with an empty line.
#[cfg(test)]
pub(crate) fn generated_heads(
    start: &'static [u8],
    pieces: &'static [&'static [u8]],
    tail: &'static [u8],
    mut seed: u64,
    count: usize,
) -> impl Iterator<Item = Vec<u8>> {
    (0..count).map(move |_| {
        let mut raw = start.to_vec();
        if seed.is_multiple_of(7) {
            raw.splice(0..0, b"\r\n".iter().copied());
        }
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            raw.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
        }
        raw.extend_from_slice(b"\r\n\r\n");
        raw.extend_from_slice(tail);
        raw
    })
}

/// Is a head that httparse parsed whole laid out the way a writer writes
/// one: the start line at the very beginning, then every field line exactly
/// `name ": " value CRLF` (`HeaderField::plain`), back to back, then CRLF?
/// Such a head has every line end a CRLF and no line folded or starting with
/// whitespace, which is all `find_head` refuses that httparse accepts, so it
/// parses exactly as it would after `find_head`. It costs a comparison or two
/// per field instead of `find_head`'s walk over every byte; anything else
/// (leading empty lines, OWS around a value, an empty value) goes that way.
pub(crate) fn is_tidy(head: &[u8], fields: &[HeaderField]) -> bool {
    let len = head.len();
    if len < 4 || matches!(head[0], b'\r' | b'\n') {
        return false;
    }
    // httparse ended the start line with an LF just before the first field
    // (or the final empty line): it must have a CR before it.
    let mut at = fields.first().map_or(len - 2, |f| f.name.start as usize);
    if at < 2 || head[at - 2] != b'\r' {
        return false;
    }
    for field in fields {
        if !field.plain || field.name.start as usize != at {
            return false;
        }
        at = field.plain_end();
    }
    at == len - 2 && head[at] == b'\r'
}

/// Locate a complete head at the start of `buf`.
///
/// `Ok(None)` while the head is incomplete and `buf` is shorter than
/// `max_head_size`; `HeadTooLarge` once `buf` holds that much without a
/// complete head, or when the head (with its leading empty lines) is longer.
/// Every LF must follow a CR (RFC 9112 §2.2), and no field line may start
/// with whitespace (obs-fold, RFC 9112 §5.2; or whitespace before the first
/// field, RFC 9112 §2.2), checked line by line as bytes arrive.
pub(crate) fn find_head(
    buf: &[u8],
    max_head_size: usize,
    leading: LeadingEmptyLines,
) -> Result<Option<Extent>, ProtocolError> {
    let window = &buf[..buf.len().min(max_head_size)];
    let mut line_start = 0;
    let mut head_start = None;
    for lf in LineFeeds::new(window) {
        if lf == line_start || window[lf - 1] != b'\r' {
            return Err(ProtocolError::BareLf);
        }
        let line = &window[line_start..lf - 1];
        match head_start {
            None if line.is_empty() => {
                if leading == LeadingEmptyLines::Reject {
                    return Err(ProtocolError::BadStatus);
                }
            }
            None => head_start = Some(line_start),
            Some(start) if line.is_empty() => {
                return Ok(Some(Extent {
                    skip: start,
                    len: lf + 1 - start,
                }));
            }
            Some(_) => {
                if matches!(line[0], b' ' | b'\t') {
                    return Err(ProtocolError::ObsFold);
                }
            }
        }
        line_start = lf + 1;
    }
    if buf.len() >= max_head_size {
        Err(ProtocolError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// The positions of the LF bytes of a buffer, in order, found sixteen bytes
/// at a time: one block's LFs become the bits of a mask.
struct LineFeeds<'a> {
    bytes: &'a [u8],
    /// Where the next unscanned block starts.
    next: usize,
    /// Where the block of `mask` starts.
    base: usize,
    /// Bit i set: `bytes[base + i]` is an LF.
    mask: u32,
}

impl<'a> LineFeeds<'a> {
    fn new(bytes: &'a [u8]) -> LineFeeds<'a> {
        LineFeeds {
            bytes,
            next: 0,
            base: 0,
            mask: 0,
        }
    }
}

impl Iterator for LineFeeds<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let len = self.bytes.len();
            if let Some(block) = self.bytes.get(self.next..self.next + 16) {
                self.mask = lf_mask(block);
                self.base = self.next;
                self.next += 16;
            } else if self.next < len && len >= 16 {
                // The last partial block: the final sixteen bytes, minus
                // those already scanned.
                let seen = 16 - (len - self.next);
                self.mask = lf_mask(&self.bytes[len - 16..]) >> seen;
                self.base = self.next;
                self.next = len;
            } else if self.next < len {
                // A buffer shorter than one block.
                let at = self.next;
                let found = self.bytes[at..].iter().position(|&b| b == b'\n');
                self.next = found.map_or(len, |i| at + i + 1);
                return found.map(|i| at + i);
            } else {
                return None;
            }
        }
        let lf = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(lf)
    }
}

/// Bit i set for every LF at `block[i]`; `block` is 16 bytes long.
#[cfg(target_arch = "x86_64")]
fn lf_mask(block: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert_eq!(block.len(), 16);
    // SAFETY: SSE2 is part of every x86_64 target, so these intrinsics are
    // available; the unaligned 128-bit load reads the 16 bytes of `block`
    // (asserted) and nothing else.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let lfs = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\n' as i8));
        _mm_movemask_epi8(lfs) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
use lf_mask_portable as lf_mask;

/// Bit i set for every LF at `block[i]`; `block` is 16 bytes long.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn lf_mask_portable(block: &[u8]) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | (u32::from(b == b'\n') << i))
}

/// httparse reports every bad version as `Error::Version`. RFC 9112 §2.3
/// distinguishes a well-formed version we do not speak (505) from garbage
/// (400): HTTP-version = "HTTP/" DIGIT "." DIGIT. A version we do speak
/// means the error was elsewhere on the line.
pub(crate) fn classify_version(version: &[u8]) -> ProtocolError {
    match version {
        b"HTTP/1.0" | b"HTTP/1.1" => ProtocolError::Malformed,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ProtocolError::UnsupportedVersion
        }
        _ => ProtocolError::Malformed,
    }
}

/// The first line of a head, without its CRLF.
pub(crate) fn start_line(head: &[u8]) -> &[u8] {
    let end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    &head[..end]
}

#[cfg(test)]
mod tests {
    use super::{
        Extent, LeadingEmptyLines::*, LineFeeds, classify_version, find_head, lf_mask,
        lf_mask_portable,
    };
    use crate::error::ProtocolError;

    #[test]
    fn finds_head_after_leading_crlf_rfc9112_2_2() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
        assert_eq!(
            find_head(buf, 1024, Skip),
            Ok(Some(Extent { skip: 4, len: 27 }))
        );
        assert_eq!(find_head(buf, 1024, Reject), Err(ProtocolError::BadStatus));
    }

    // RFC 9112 §2.2 with DESIGN.md §4 head limit.

    #[test]
    fn incomplete_until_limit_then_too_large() {
        assert_eq!(
            find_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 64, Skip),
            Ok(None)
        );
        assert_eq!(
            find_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 26, Skip),
            Err(ProtocolError::HeadTooLarge)
        );
        // A head exactly at the limit is accepted.
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            find_head(head, head.len(), Skip),
            Ok(Some(Extent {
                skip: 0,
                len: head.len()
            }))
        );
        assert_eq!(
            find_head(head, head.len() - 1, Skip),
            Err(ProtocolError::HeadTooLarge)
        );
    }

    #[test]
    fn bare_lf_is_refused_as_soon_as_seen_rfc9112_2_2() {
        assert_eq!(
            find_head(b"GET / HTTP/1.1\nHo", 64, Skip),
            Err(ProtocolError::BareLf)
        );
        assert_eq!(find_head(b"\nGET /", 64, Skip), Err(ProtocolError::BareLf));
    }

    #[test]
    fn line_feeds_are_found_at_every_offset() {
        // Every length up to two and a half blocks, LFs at every pair of positions.
        for len in 0..40 {
            for a in 0..len {
                for b in a..len {
                    let mut buf = vec![b'x'; len];
                    buf[a] = b'\n';
                    buf[b] = b'\n';
                    let found: Vec<usize> = LineFeeds::new(&buf).collect();
                    let expected: Vec<usize> = (0..len).filter(|&i| buf[i] == b'\n').collect();
                    assert_eq!(found, expected, "{buf:?}");
                }
            }
        }
        // The portable mask agrees with the one in use on every byte value.
        for b in 0..=255u8 {
            for at in 0..16 {
                let mut block = [b'x'; 16];
                block[at] = b;
                assert_eq!(lf_mask(&block), lf_mask_portable(&block));
            }
        }
        // Bytes that differ from LF in one bit are not LFs.
        let near: Vec<u8> = (0..8).map(|bit| b'\n' ^ (1 << bit)).collect();
        assert_eq!(LineFeeds::new(&near).count(), 0);
    }

    #[test]
    fn line_feeds_agree_with_a_bytewise_scan_on_generated_heads() {
        // `find_head` is the line-by-line scan it always was; only finding
        // the LFs changed. Heads assembled from pieces that matter to the
        // scan, cut at every length.
        const PIECES: [&[u8]; 9] = [
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b"\t",
            b"GET / HTTP/1.1",
            b"Host: a",
            b"X-Long-Name: vvvvvvvvv",
            b"x",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut buf = Vec::new();
            for _ in 0..12 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.extend_from_slice(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            for cut in 0..=buf.len() {
                let part = &buf[..cut];
                let found: Vec<usize> = LineFeeds::new(part).collect();
                let expected: Vec<usize> = (0..cut).filter(|&i| part[i] == b'\n').collect();
                assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(part));
            }
        }
    }

    #[test]
    fn version_classes_rfc9112_2_3() {
        assert_eq!(
            classify_version(b"HTTP/2.0"),
            ProtocolError::UnsupportedVersion
        );
        assert_eq!(
            classify_version(b"HTTP/1.2"),
            ProtocolError::UnsupportedVersion
        );
        assert_eq!(classify_version(b"HTTP/1.10"), ProtocolError::Malformed);
        assert_eq!(classify_version(b"HTTX/1.1"), ProtocolError::Malformed);
        assert_eq!(classify_version(b"HTTP/1.1"), ProtocolError::Malformed);
    }
}
