//! The access log: one line per request, in nginx's "combined" format or JSON,
//! written by the worker that served the request to its own file handle.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::snapshot::{AccessFormat, AccessTarget};

/// What one request leaves in the log.
#[derive(Debug)]
pub struct Entry<'a> {
    pub peer: SocketAddr,
    /// `None` when the request line itself could not be parsed.
    pub request: Option<RequestLine<'a>>,
    pub status: u16,
    pub body_bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub duration: Duration,
    pub upstream: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub version: &'a str,
}

pub struct AccessLog {
    sink: Option<File>,
    format: AccessFormat,
    line: RefCell<Vec<u8>>,
    clock: RefCell<Clock>,
}

impl AccessLog {
    pub fn open(target: &AccessTarget, format: AccessFormat) -> io::Result<AccessLog> {
        let sink = match target {
            AccessTarget::Off => None,
            AccessTarget::Stdout => {
                let fd: OwnedFd = io::stdout().as_fd().try_clone_to_owned()?;
                Some(File::from(fd))
            }
            AccessTarget::File(path) => {
                Some(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        Ok(AccessLog {
            sink,
            format,
            line: RefCell::new(Vec::with_capacity(512)),
            clock: RefCell::new(Clock::default()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    pub fn log(&self, entry: &Entry<'_>) {
        let Some(mut sink) = self.sink.as_ref() else {
            return;
        };
        let mut line = self.line.borrow_mut();
        line.clear();
        let mut clock = self.clock.borrow_mut();
        match self.format {
            AccessFormat::Combined => write_combined(&mut line, entry, clock.local_time()),
            AccessFormat::Json => write_json(&mut line, entry, clock.iso_time()),
        }
        line.push(b'\n');
        // One write(2) per line with O_APPEND keeps lines of several workers
        // whole, as nginx's access log does.
        if let Err(e) = sink.write_all(&line) {
            tracing::warn!("access log write failed: {e}");
        }
    }
}

fn write_combined(out: &mut Vec<u8>, e: &Entry<'_>, time: &[u8]) {
    // $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
    let _ = write!(out, "{} - - [", e.peer.ip().to_canonical());
    out.extend_from_slice(time);
    out.extend_from_slice(b"] \"");
    match e.request {
        Some(r) => {
            escape_combined(out, r.method);
            out.push(b' ');
            escape_combined(out, r.target);
            out.push(b' ');
            out.extend_from_slice(r.version.as_bytes());
        }
        None => out.push(b'-'),
    }
    let _ = write!(out, "\" {} {} \"", e.status, e.body_bytes);
    escape_combined(out, e.referer.unwrap_or(b"-"));
    out.extend_from_slice(b"\" \"");
    escape_combined(out, e.user_agent.unwrap_or(b"-"));
    out.push(b'"');
}

/// nginx escapes `"`, `\` and bytes outside printable ASCII as `\xXX`.
fn escape_combined(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

fn write_json(out: &mut Vec<u8>, e: &Entry<'_>, time: &[u8]) {
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(time);
    let _ = write!(
        out,
        "\",\"remote_addr\":\"{}\",\"remote_port\":{}",
        e.peer.ip().to_canonical(),
        e.peer.port()
    );
    if let Some(r) = e.request {
        out.extend_from_slice(b",\"method\":");
        json_string(out, r.method);
        out.extend_from_slice(b",\"uri\":");
        json_string(out, r.target);
        out.extend_from_slice(b",\"protocol\":");
        json_string(out, r.version.as_bytes());
    }
    let _ = write!(
        out,
        ",\"status\":{},\"body_bytes_sent\":{},\"request_time\":{:.3}",
        e.status,
        e.body_bytes,
        e.duration.as_secs_f64()
    );
    if let Some(upstream) = e.upstream {
        let _ = write!(out, ",\"upstream_addr\":\"{upstream}\"");
    }
    out.extend_from_slice(b",\"http_referer\":");
    json_string(out, e.referer.unwrap_or(b""));
    out.extend_from_slice(b",\"http_user_agent\":");
    json_string(out, e.user_agent.unwrap_or(b""));
    out.push(b'}');
}

/// A JSON string of arbitrary bytes: invalid UTF-8 is replaced, controls escaped.
fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Formats the current time once per second, not once per request.
#[derive(Default)]
struct Clock {
    second: u64,
    local: Vec<u8>,
    iso: Vec<u8>,
}

impl Clock {
    fn refresh(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now == self.second && !self.local.is_empty() {
            return;
        }
        self.second = now;
        let (year, month, day) = civil_from_days((now / 86_400) as i64);
        let secs = now % 86_400;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        self.local.clear();
        let _ = write!(
            self.local,
            "{day:02}/{}/{year}:{h:02}:{m:02}:{s:02} +0000",
            MONTHS[(month - 1) as usize]
        );
        self.iso.clear();
        let _ = write!(
            self.iso,
            "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}+00:00"
        );
    }

    fn local_time(&mut self) -> &[u8] {
        self.refresh();
        &self.local
    }

    fn iso_time(&mut self) -> &[u8] {
        self.refresh();
        &self.iso
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(request: Option<RequestLine<'static>>) -> Entry<'static> {
        Entry {
            peer: "192.0.2.7:5555".parse().unwrap(),
            request,
            status: 200,
            body_bytes: 1234,
            referer: None,
            user_agent: Some(b"curl/8.0 \"x\""),
            duration: Duration::from_millis(5),
            upstream: None,
        }
    }

    #[test]
    fn combined_format_matches_nginx() {
        let mut out = Vec::new();
        let line = RequestLine {
            method: b"GET",
            target: b"/a?b=1",
            version: "HTTP/1.1",
        };
        write_combined(&mut out, &entry(Some(line)), b"10/Oct/2000:13:55:36 +0000");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 \"-\" \"curl/8.0 \\x22x\\x22\""
        );
    }

    #[test]
    fn combined_logs_dash_for_unparsable_request() {
        let mut out = Vec::new();
        write_combined(&mut out, &entry(None), b"t");
        assert!(String::from_utf8(out).unwrap().contains("[t] \"-\" 200"));
    }

    #[test]
    fn json_format_escapes_and_parses() {
        let mut out = Vec::new();
        let line = RequestLine {
            method: b"POST",
            target: b"/\"q\"\x01",
            version: "HTTP/1.0",
        };
        write_json(&mut out, &entry(Some(line)), b"2000-10-10T13:55:36+00:00");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["uri"], "/\"q\"\u{1}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["remote_addr"], "192.0.2.7");
        assert_eq!(v["http_user_agent"], "curl/8.0 \"x\"");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
