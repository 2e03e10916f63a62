//! The run's results, printed like wrk's summary or as one JSON object with
//! the same figures. Latencies are in microseconds, sizes in bytes.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::histogram::LatencyHistogram;
use crate::runtime::Driver;

/// Why a request did not complete normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be established.
    Connect,
    /// The TLS handshake failed, certificate verification included.
    Tls,
    /// Reading or writing failed, or the server closed mid-exchange.
    Io,
    /// No complete response within the request timeout.
    Timeout,
    /// A complete response whose status is not 2xx or 3xx.
    Status,
    /// A response that breaks HTTP/1.1 syntax or framing.
    Protocol,
}

/// What a run does on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// HTTP/1.1 requests; `requests` counts responses.
    Http,
    /// WebSocket echoes of `msg_size`-byte messages; `requests` counts
    /// echoed messages.
    WsEcho { msg_size: usize },
    /// WebSockets held open and silent; `requests` counts handshakes, over
    /// the whole run, warmup included.
    WsIdle,
}

/// Errors by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub tls: u64,
    pub io: u64,
    pub timeout: u64,
    pub status: u64,
    pub protocol: u64,
}

impl ErrorCounts {
    pub fn count(&mut self, kind: ErrorKind) {
        let slot = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Tls => &mut self.tls,
            ErrorKind::Io => &mut self.io,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Status => &mut self.status,
            ErrorKind::Protocol => &mut self.protocol,
        };
        *slot += 1;
    }

    pub fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.tls += other.tls;
        self.io += other.io;
        self.timeout += other.timeout;
        self.status += other.status;
        self.protocol += other.protocol;
    }

    pub fn total(&self) -> u64 {
        self.connect + self.tls + self.io + self.timeout + self.status + self.protocol
    }
}

/// Latency distribution in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
}

impl LatencySummary {
    pub fn from_histogram(histogram: &LatencyHistogram) -> Self {
        // Whole nanoseconds, so three decimals of a microsecond are exact.
        let us = |d: Duration| (d.as_secs_f64() * 1e9).round() / 1e3;
        LatencySummary {
            p50: us(histogram.quantile(0.5)),
            p90: us(histogram.quantile(0.9)),
            p99: us(histogram.quantile(0.99)),
            p99_9: us(histogram.quantile(0.999)),
            max: us(histogram.max()),
            mean: us(histogram.mean()),
            stdev: us(histogram.stdev()),
        }
    }
}

/// Everything a run measured, after warmup, over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub mode: Mode,
    pub tls: bool,
    pub threads: usize,
    pub connections: usize,
    pub driver: Driver,
    pub keep_alive: bool,
    /// Open loop: the requests per second asked for; latencies then run
    /// from each request's scheduled send time. `null` for a closed loop.
    pub rate: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Complete responses, whatever their status.
    pub requests: u64,
    /// Response bytes read, heads and bodies (WebSocket: frames received).
    pub bytes_read: u64,
    /// Request bytes written (WebSocket: frames sent).
    pub bytes_written: u64,
    pub requests_per_sec: f64,
    pub bytes_per_sec: f64,
    pub bytes_written_per_sec: f64,
    /// `--ws-idle`: connections still open when the run ended.
    pub ws_open_at_end: Option<u64>,
    pub latency_us: LatencySummary,
    pub errors: ErrorCounts,
}

/// What the client threads measured, summed.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub histogram: LatencyHistogram,
    pub requests: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Idle WebSockets open now.
    pub ws_open: u64,
    pub errors: ErrorCounts,
}

impl Totals {
    pub fn merge(&mut self, other: &Totals) {
        self.histogram.merge(&other.histogram);
        self.requests += other.requests;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.ws_open += other.ws_open;
        self.errors.add(&other.errors);
    }
}

/// How the run was set up, for the report's header.
#[derive(Debug, Clone, PartialEq)]
pub struct RunShape {
    pub url: String,
    pub mode: Mode,
    pub tls: bool,
    pub threads: usize,
    pub connections: usize,
    pub driver: Driver,
    pub keep_alive: bool,
    pub warmup: Duration,
    pub rate: Option<f64>,
}

impl Report {
    pub fn new(shape: RunShape, totals: &Totals, window: Duration) -> Self {
        let seconds = window.as_secs_f64();
        let per_sec = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Report {
            url: shape.url,
            mode: shape.mode,
            tls: shape.tls,
            threads: shape.threads,
            connections: shape.connections,
            driver: shape.driver,
            keep_alive: shape.keep_alive,
            rate: shape.rate,
            warmup_s: shape.warmup.as_secs_f64(),
            duration_s: seconds,
            requests: totals.requests,
            bytes_read: totals.bytes_read,
            bytes_written: totals.bytes_written,
            requests_per_sec: per_sec(totals.requests),
            bytes_per_sec: per_sec(totals.bytes_read),
            bytes_written_per_sec: per_sec(totals.bytes_written),
            ws_open_at_end: (shape.mode == Mode::WsIdle).then_some(totals.ws_open),
            latency_us: LatencySummary::from_histogram(&totals.histogram),
            errors: totals.errors,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serialises.
        serde_json::to_string(self)
            .unwrap_or_else(|error| unreachable!("report serialisation failed: {error}"))
    }

    /// The wrk-like text summary.
    pub fn to_text(&self) -> String {
        let l = &self.latency_us;
        let mut out = String::new();
        let transport = if self.tls { "TLS, " } else { "" };
        let mode = match self.mode {
            Mode::Http if self.keep_alive => format!("{transport}keep-alive"),
            Mode::Http => format!("{transport}new connection per request"),
            Mode::WsEcho { msg_size } => {
                format!(
                    "{transport}WebSocket echo of {} messages",
                    format_bytes(msg_size as f64)
                )
            }
            Mode::WsIdle => format!("{transport}idle WebSockets"),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "Running {} test @ {}",
            format_seconds(self.duration_s),
            self.url
        );
        let _ = writeln!(
            out,
            "  {} threads and {} connections, {mode}, {} driver",
            self.threads, self.connections, self.driver
        );
        if let Some(rate) = self.rate {
            let _ = writeln!(
                out,
                "  open loop at {rate:.0} requests/s, latency from each request's scheduled send time"
            );
        }
        let _ = writeln!(
            out,
            "  Latency  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "p50", "p90", "p99", "p99.9", "max", "mean", "stdev"
        );
        let _ = writeln!(
            out,
            "           {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            format_micros(l.p50),
            format_micros(l.p90),
            format_micros(l.p99),
            format_micros(l.p99_9),
            format_micros(l.max),
            format_micros(l.mean),
            format_micros(l.stdev),
        );
        let unit = match self.mode {
            Mode::Http => "requests",
            Mode::WsEcho { .. } => "messages",
            Mode::WsIdle => "handshakes",
        };
        let _ = writeln!(
            out,
            "  {} {unit} in {}, {} read, {} written",
            self.requests,
            format_seconds(self.duration_s),
            format_bytes(self.bytes_read as f64),
            format_bytes(self.bytes_written as f64)
        );
        let e = &self.errors;
        let _ = writeln!(
            out,
            "  Errors: connect {}, tls {}, io {}, timeout {}, status {}, protocol {}",
            e.connect, e.tls, e.io, e.timeout, e.status, e.protocol
        );
        match self.mode {
            Mode::Http => {
                let _ = writeln!(out, "Requests/sec: {:.2}", self.requests_per_sec);
                let _ = writeln!(out, "Transfer/sec: {}", format_bytes(self.bytes_per_sec));
            }
            Mode::WsEcho { .. } => {
                let _ = writeln!(out, "Messages/sec: {:.2}", self.requests_per_sec);
                let _ = writeln!(
                    out,
                    "Sent/sec: {}  Received/sec: {}",
                    format_bytes(self.bytes_written_per_sec),
                    format_bytes(self.bytes_per_sec)
                );
            }
            Mode::WsIdle => {
                let _ = writeln!(
                    out,
                    "Open at end: {} of {} connections",
                    self.ws_open_at_end.unwrap_or(0),
                    self.connections
                );
            }
        }
        out
    }
}

/// `45.12us`, `1.23ms`, `2.00s`, as wrk prints latencies.
pub fn format_micros(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format_seconds(us / 1_000_000.0)
    }
}

pub fn format_seconds(s: f64) -> String {
    format!("{s:.2}s")
}

/// Binary units, labelled as such: `512.00B`, `1.50KiB`, `15.00MiB`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

#[cfg(test)]
mod tests;
