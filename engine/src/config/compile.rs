//! Validation and compilation: `RawConfig` to `Snapshot`.
//!
//! Every check records its error and carries on with a sensible stand-in, so one
//! run reports every problem in the file; a `Snapshot` is returned only when no
//! error was found. Global sections are compiled here; upstreams, servers and
//! routes have their own files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::document::Document;
use super::error::Diagnostics;
use super::raw::{
    Field, Planned, RawAccessFormat, RawAdmin, RawConfig, RawDriver, RawLevel, RawLimits, RawLog,
    RawRuntime,
};
use super::server::{compile_servers, parse_listen};
use super::units::{Period, Size};
use super::upstream::{Upstreams, compile_upstreams};
use crate::snapshot::{AccessFormat, AccessTarget, Driver, Limits, Log, Runtime, Snapshot};

/// Bodies from this size up are spliced (issue 4: measured in docs/benchmarks.md).
const DEFAULT_SPLICE_THRESHOLD: u64 = 64 << 10;
/// nginx's default `client_max_body_size`, ringway's too.
const DEFAULT_MAX_BODY_SIZE: u64 = 1 << 20;
/// httparse fills a fixed array of header slots per request; ringway sizes it
/// at 256, so a higher limit could never be honoured, and 0 would refuse every request.
const MAX_HEADERS_CEILING: usize = 256;
/// The kernel's `IORING_MAX_ENTRIES`: `io_uring_setup` refuses larger rings.
pub const RING_ENTRIES_CEILING: u32 = 32768;
/// `runtime.buffer_size` and `--buffer-size`: at least room for a request
/// line, at most what a connection could sensibly hold.
pub const BUFFER_SIZE_MIN: u64 = 1 << 10;
pub const BUFFER_SIZE_MAX: u64 = 64 << 20;
/// `runtime.workers` and `--workers` (0 = one per CPU).
pub const WORKERS_MAX: usize = 4096;

pub(crate) fn compile(
    doc: &Document,
    diag: &mut Diagnostics<'_>,
    source: Option<PathBuf>,
) -> Option<Snapshot> {
    let raw = &doc.raw;
    let runtime = compile_runtime(raw.runtime.as_ref(), diag);
    let limits = compile_limits(raw.limits.as_ref(), diag);
    let log = compile_log(raw.log.as_ref(), diag);
    let admin = compile_admin(raw.admin.as_ref(), diag);
    planned(diag, &raw.rate_limits, "rate_limits", "rate limiting");
    planned(
        diag,
        &raw.compression,
        "compression",
        "gzip and brotli compression",
    );

    let mut upstreams: Upstreams = compile_upstreams(&raw.upstreams, doc, diag);
    let base = source.as_deref().and_then(std::path::Path::parent);
    let (servers, listeners) =
        compile_servers(&raw.server, doc, &limits, base, &mut upstreams, diag);
    if raw.server.is_empty() && !doc.lost("server") {
        diag.error(
            0..0,
            "",
            "no [[server]] defined: add one with a `listen` address and at least one [[server.route]]",
        );
    }
    if let (Some(admin), Some(span)) = (admin, admin_span(raw))
        && listeners.iter().any(|l| l.addr == admin)
    {
        diag.error(
            span,
            "admin.listen",
            format!("{admin} is also a server's listen address; the admin endpoint needs its own"),
        );
    }
    if diag.has_errors() {
        return None;
    }
    Some(Snapshot {
        runtime,
        admin,
        limits,
        log,
        upstreams: upstreams.into_list(),
        listeners,
        servers,
        source,
        warnings: Vec::new(),
    })
}

fn admin_span(raw: &RawConfig) -> Option<std::ops::Range<usize>> {
    Some(raw.admin.as_ref()?.get_ref().listen.as_ref()?.span())
}

/// Reports a key DESIGN §2 documents but this build does not implement yet.
pub(crate) fn planned(diag: &mut Diagnostics<'_>, field: &Planned, path: &str, plan: &str) {
    if let Some(value) = field {
        let key = path.rsplit('.').next().unwrap_or(path);
        diag.error(
            value.span(),
            path,
            format!("{key:?} is not supported yet (planned: {plan})"),
        );
    }
}

fn compile_runtime(raw: Option<&Spanned<RawRuntime>>, diag: &mut Diagnostics<'_>) -> Runtime {
    let default = RawRuntime::default();
    let raw = raw.map_or(&default, Spanned::get_ref);
    let pid_file = match &raw.pid_file {
        Some(value) if value.get_ref().is_empty() => {
            diag.error(
                value.span(),
                "runtime.pid_file",
                "empty pid_file: give a path, or leave the key out for the default",
            );
            None
        }
        Some(value) => Some(PathBuf::from(value.get_ref())),
        None => None,
    };
    let workers = in_range(diag, &raw.workers, "runtime.workers", 0, 0, WORKERS_MAX, "");
    let buffer_size = size_in_range(
        diag,
        &raw.buffer_size,
        "runtime.buffer_size",
        16 << 10,
        BUFFER_SIZE_MIN,
        BUFFER_SIZE_MAX,
    );
    let ring_entries = in_range(
        diag,
        &raw.ring_entries,
        "runtime.ring_entries",
        1024,
        1,
        RING_ENTRIES_CEILING,
        " (the kernel's IORING_MAX_ENTRIES)",
    );
    let max_connections = in_range(
        diag,
        &raw.max_connections,
        "runtime.max_connections",
        100_000,
        1,
        usize::MAX,
        "",
    );
    Runtime {
        workers,
        pin: value_or(&raw.pin, true),
        driver: match value_or(&raw.driver, RawDriver::Auto) {
            RawDriver::Auto => Driver::Auto,
            RawDriver::IoUring => Driver::IoUring,
            RawDriver::Epoll => Driver::Epoll,
        },
        buffer_size: usize::try_from(buffer_size).unwrap_or(usize::MAX),
        splice_threshold: raw
            .splice_threshold
            .as_ref()
            .map_or(DEFAULT_SPLICE_THRESHOLD, |s| s.get_ref().0),
        ring_entries,
        max_connections,
        shutdown_timeout: period_or(&raw.shutdown_timeout, Duration::from_secs(30)),
        pid_file,
    }
}

/// `[admin]`: off unless `listen` is set. Its address may not also be a
/// server's listen address (checked with the servers), so the admin endpoint
/// is never reachable through a proxy listener.
fn compile_admin(
    raw: Option<&Spanned<RawAdmin>>,
    diag: &mut Diagnostics<'_>,
) -> Option<SocketAddr> {
    let value = raw?.get_ref().listen.as_ref()?;
    match parse_listen(value.get_ref()) {
        Ok((_, true)) => {
            diag.error(
                value.span(),
                "admin.listen",
                "the admin endpoint serves plain HTTP: drop \" tls\" (keep it on loopback or a management network)",
            );
            None
        }
        Ok((addr, false)) => Some(addr),
        Err(message) => {
            diag.error(value.span(), "admin.listen", message);
            None
        }
    }
}

fn compile_limits(raw: Option<&Spanned<RawLimits>>, diag: &mut Diagnostics<'_>) -> Limits {
    let default = RawLimits::default();
    let raw = raw.map_or(&default, Spanned::get_ref);
    let max_header_size = size_in_range(
        diag,
        &raw.max_header_size,
        "limits.max_header_size",
        16 << 10,
        1 << 10,
        1 << 20,
    );
    let max_headers = in_range(
        diag,
        &raw.max_headers,
        "limits.max_headers",
        100,
        1,
        MAX_HEADERS_CEILING,
        " (ringway parses headers into a fixed array of 256 slots, and 0 would refuse every request)",
    );
    Limits {
        header_timeout: positive_period(
            diag,
            &raw.header_timeout,
            "limits.header_timeout",
            Duration::from_secs(10),
        ),
        keepalive_timeout: period_or(&raw.keepalive_timeout, Duration::from_secs(75)),
        max_header_size: usize::try_from(max_header_size).unwrap_or(usize::MAX),
        max_headers,
        max_body_size: body_limit(&raw.max_body_size).unwrap_or(Some(DEFAULT_MAX_BODY_SIZE)),
        handshake_timeout: positive_period(
            diag,
            &raw.handshake_timeout,
            "limits.handshake_timeout",
            Duration::from_secs(10),
        ),
    }
}

fn compile_log(raw: Option<&Spanned<RawLog>>, diag: &mut Diagnostics<'_>) -> Log {
    let default = RawLog::default();
    let raw = raw.map_or(&default, Spanned::get_ref);
    let access = match &raw.access {
        None => AccessTarget::Stdout,
        Some(value) => match value.get_ref().as_str() {
            "stdout" => AccessTarget::Stdout,
            "off" => AccessTarget::Off,
            "" | "stderr" => {
                diag.error(
                    value.span(),
                    "log.access",
                    format!(
                        "invalid access log {:?}: use a file path, \"stdout\" or \"off\"",
                        value.get_ref()
                    ),
                );
                AccessTarget::Stdout
            }
            path => AccessTarget::File(PathBuf::from(path)),
        },
    };
    Log {
        level: match value_or(&raw.level, RawLevel::Info) {
            RawLevel::Error => tracing::Level::ERROR,
            RawLevel::Warn => tracing::Level::WARN,
            RawLevel::Info => tracing::Level::INFO,
            RawLevel::Debug => tracing::Level::DEBUG,
        },
        access,
        format: match value_or(&raw.access_format, RawAccessFormat::Combined) {
            RawAccessFormat::Combined => AccessFormat::Combined,
            RawAccessFormat::Json => AccessFormat::Json,
        },
    }
}

pub(crate) fn value_or<T: Copy>(field: &Field<T>, default: T) -> T {
    field.as_ref().map_or(default, |v| *v.get_ref())
}

pub(crate) fn period_or(field: &Field<Period>, default: Duration) -> Duration {
    field.as_ref().map_or(default, |v| v.get_ref().0)
}

/// A timeout that must be positive: zero would fail every request at once.
pub(crate) fn positive_period(
    diag: &mut Diagnostics<'_>,
    field: &Field<Period>,
    path: &str,
    default: Duration,
) -> Duration {
    match field {
        Some(v) if v.get_ref().0.is_zero() => {
            diag.error(v.span(), path, "must be greater than 0");
            default
        }
        _ => period_or(field, default),
    }
}

/// `max_body_size`: `None` when not set, `Some(None)` for "0" (unlimited).
pub(crate) fn body_limit(field: &Field<Size>) -> Option<Option<u64>> {
    field
        .as_ref()
        .map(|v| Some(v.get_ref().0).filter(|&n| n > 0))
}

fn in_range<T>(
    diag: &mut Diagnostics<'_>,
    field: &Field<T>,
    path: &str,
    default: T,
    min: T,
    max: T,
    why: &str,
) -> T
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    let Some(value) = field else {
        return default;
    };
    let v = *value.get_ref();
    if v < min || v > max {
        diag.error(
            value.span(),
            path,
            format!("{v} is out of range {min}..={max}{why}"),
        );
        return default;
    }
    v
}

fn size_in_range(
    diag: &mut Diagnostics<'_>,
    field: &Field<Size>,
    path: &str,
    default: u64,
    min: u64,
    max: u64,
) -> u64 {
    let Some(value) = field else {
        return default;
    };
    let v = value.get_ref().0;
    if v < min || v > max {
        diag.error(
            value.span(),
            path,
            format!(
                "{v} bytes is out of range {}..={}",
                human_size(min),
                human_size(max)
            ),
        );
        return default;
    }
    v
}

pub fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}
