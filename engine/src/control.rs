//! The control thread of `ringway run`: it owns the engine and carries out
//! reloads (SIGHUP, `ringway reload`, `POST /reload` on the admin endpoint)
//! and the graceful stop (SIGTERM, SIGINT). Everything here runs off the data
//! path; workers only ever see the snapshot swap and their command inbox.
//!
//! `ringway reload` finds the running instance through its pid file and
//! learns the outcome through a status file beside it (`<pid file>.status`):
//! the instance writes `<generation> ok|failed` and the message after every
//! reload, and the command waits for the generation to move.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config;
use crate::engine::{Engine, Overrides};
use crate::snapshot::Snapshot;

/// Where the running instance's config comes from, to read it again on reload.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// A config held in memory (the embedded default, `demo`'s): a reload
    /// compiles the same text again.
    Text {
        text: String,
        origin: &'static str,
    },
}

impl ConfigSource {
    pub fn embedded() -> ConfigSource {
        ConfigSource::Text {
            text: config::DEFAULT_CONFIG.to_string(),
            origin: "<embedded default>",
        }
    }

    pub fn load(&self) -> Result<Snapshot, String> {
        let result = match self {
            ConfigSource::File(path) => config::load_file(path),
            ConfigSource::Text { text, origin } => config::load_str(text, origin),
        };
        result.map_err(|errors| errors.to_string())
    }
}

/// Something the control thread must act on.
pub enum Event {
    Signal(i32),
    /// A reload asked for by the admin endpoint, which waits for the answer.
    Reload(mpsc::Sender<Result<String, String>>),
}

/// Process-wide reload counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// The default pid file (DESIGN §2): `/run/ringway.pid` as root, else in
/// `$XDG_RUNTIME_DIR`, else in `/tmp`.
pub fn default_pid_file() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/run/ringway.pid");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("ringway.pid"),
        _ => PathBuf::from("/tmp/ringway.pid"),
    }
}

fn status_path(pid_file: &Path) -> PathBuf {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".status");
    PathBuf::from(name)
}

/// The pid file of a running instance, removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> io::Result<PidFile> {
        let _ = fs::remove_file(status_path(path));
        fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record the outcome of reload number `generation` for `ringway reload`.
    fn write_status(&self, generation: u64, result: &Result<String, String>) {
        let (word, message) = match result {
            Ok(message) => ("ok", message),
            Err(message) => ("failed", message),
        };
        let status = status_path(&self.path);
        let temporary = status.with_extension("status.tmp");
        let written = fs::write(&temporary, format!("{generation} {word}\n{message}"))
            .and_then(|()| fs::rename(&temporary, &status));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", status.display());
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: a second instance may have taken the file over.
        let ours = fs::read_to_string(&self.path)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = fs::remove_file(&self.path);
            let _ = fs::remove_file(status_path(&self.path));
        }
    }
}

/// The control loop: reload on SIGHUP and admin requests, return on the first
/// SIGTERM or SIGINT (the caller then drains the engine).
pub fn control_loop(
    engine: &mut Engine,
    events: &mpsc::Receiver<Event>,
    source: &ConfigSource,
    overrides: &Overrides,
    pid_file: Option<&PidFile>,
    stats: &ReloadStats,
) -> i32 {
    let mut generation = 0;
    loop {
        let Ok(event) = events.recv() else {
            return 0;
        };
        let reply = match event {
            Event::Signal(signal) if signal == signal_hook::consts::SIGHUP => None,
            Event::Signal(signal) => return signal,
            Event::Reload(reply) => Some(reply),
        };
        generation += 1;
        let result = reload(engine, source, overrides);
        match &result {
            Ok(message) => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!("reload {generation}: {message}");
            }
            Err(message) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "reload {generation} failed, the old config keeps serving: {message}"
                );
            }
        }
        if let Some(pid_file) = pid_file {
            pid_file.write_status(generation, &result);
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

/// Read, validate and compile the config again and publish it. An invalid
/// config changes nothing.
fn reload(
    engine: &mut Engine,
    source: &ConfigSource,
    overrides: &Overrides,
) -> Result<String, String> {
    let started = Instant::now();
    let mut snapshot = source.load()?;
    overrides.apply(&mut snapshot);
    let warnings = engine.reload(snapshot).map_err(|e| e.to_string())?;
    for warning in &warnings {
        tracing::warn!("reload: {warning}");
    }
    let mut message = format!(
        "configuration reloaded in {} ms",
        started.elapsed().as_millis()
    );
    for warning in warnings {
        message.push_str("\nwarning: ");
        message.push_str(&warning);
    }
    Ok(message)
}

/// `ringway reload`: signal the instance whose pid is in `pid_file` and wait
/// for its verdict. Returns the exit code.
#[allow(clippy::disallowed_methods)] // a command-line client polling a file, not a worker
pub fn request_reload(pid_file: &Path, timeout: Duration) -> i32 {
    let pid = match fs::read_to_string(pid_file) {
        Ok(text) => match text.trim().parse::<libc::pid_t>() {
            Ok(pid) if pid > 0 => pid,
            _ => {
                eprintln!(
                    "ringway: {}: not a pid: {:?}",
                    pid_file.display(),
                    text.trim()
                );
                return 1;
            }
        },
        Err(e) => {
            eprintln!(
                "ringway: cannot read pid file {}: {e} (is ringway running? --pid-file names another)",
                pid_file.display()
            );
            return 1;
        }
    };
    let status = status_path(pid_file);
    let before = read_generation(&status).unwrap_or(0);
    // SAFETY: kill has no memory-safety preconditions; a stale pid gives ESRCH.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        eprintln!(
            "ringway: cannot signal pid {pid} from {}: {}",
            pid_file.display(),
            io::Error::last_os_error()
        );
        return 1;
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(text) = fs::read_to_string(&status)
            && let Some((head, message)) = text.split_once('\n')
            && let Some((generation, word)) = head.split_once(' ')
            && generation.parse::<u64>().is_ok_and(|g| g > before)
        {
            return if word == "ok" {
                println!("{message}");
                0
            } else {
                eprintln!("{message}");
                1
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "ringway: pid {pid} did not report a reload within {} s",
        timeout.as_secs()
    );
    1
}

fn read_generation(status: &Path) -> Option<u64> {
    let text = fs::read_to_string(status).ok()?;
    text.split(' ').next()?.parse().ok()
}
