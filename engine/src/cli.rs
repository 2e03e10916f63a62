//! The command line (DESIGN.md §3): `run`, `check`, `reload`, `demo`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::admin::Admin;
use crate::config;
use crate::control::{self, ConfigSource, Event, PidFile, ReloadStats};
use crate::engine::{Engine, Overrides};
use crate::snapshot::{Driver, Snapshot};

#[derive(Debug, Parser)]
#[command(
    name = "ringway",
    version,
    about = "A thread-per-core reverse proxy on io_uring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve with a config file (default ./ringway.toml, else the embedded default).
    Run {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Where to write the pid (default: [runtime] pid_file, else /run/ringway.pid as root).
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Validate a config file, like `nginx -t`: exit 0 if valid, 1 with the errors on stderr.
    Check {
        #[arg(short = 'c', long = "config", default_value = "ringway.toml")]
        config: PathBuf,
    },
    /// Reload the running instance (found through its pid file), like `nginx -s reload`:
    /// prints the outcome, exit 1 if the new config was refused.
    Reload {
        /// The config whose [runtime] pid_file names the instance (default ./ringway.toml if present).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// An echo backend and ringway in front of it, to try ringway in one command.
    Demo {
        /// Where the proxy listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        tuning: Tuning,
    },
}

#[derive(Debug, clap::Args)]
pub struct Tuning {
    /// Worker threads (0 = one per CPU).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    /// Per-connection I/O buffer, e.g. 16KiB. A body copied through user space reads
    /// up to 64KiB at a time while it arrives faster than it is read.
    #[arg(long, value_parser = parse_buffer_size)]
    buffer_size: Option<usize>,
    /// Request and response bodies of known length with at least this much left move
    /// by splice, never through user space (plain HTTP); 0 = never. Default 64KiB.
    #[arg(long, value_parser = parse_size)]
    splice_threshold: Option<usize>,
    /// I/O driver.
    #[arg(long, value_enum)]
    driver: Option<DriverArg>,
    /// Do not pin worker i to CPU i.
    #[arg(long)]
    no_pin: bool,
    /// io_uring submission queue entries.
    #[arg(long, value_parser = parse_ring_entries)]
    ring_entries: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DriverArg {
    Auto,
    #[value(name = "io_uring", alias = "iouring", alias = "io-uring")]
    IoUring,
    #[value(alias = "legacy")]
    Epoll,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let bytes = config::parse_size(s)?;
    usize::try_from(bytes).map_err(|_| format!("{s} is too large"))
}

// The flags take the ranges of the `[runtime]` keys they override.

fn parse_buffer_size(s: &str) -> Result<usize, String> {
    let (min, max) = (config::BUFFER_SIZE_MIN, config::BUFFER_SIZE_MAX);
    match config::parse_size(s)? {
        bytes if (min..=max).contains(&bytes) => Ok(usize::try_from(bytes).unwrap_or(usize::MAX)),
        bytes => Err(format!(
            "{bytes} bytes is out of range {}..={}",
            config::human_size(min),
            config::human_size(max)
        )),
    }
}

fn parse_workers(s: &str) -> Result<usize, String> {
    let max = config::WORKERS_MAX;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "{s} is not a number of workers in 0..={max} (0 = one per CPU)"
        )),
    }
}

fn parse_ring_entries(s: &str) -> Result<u32, String> {
    let max = config::RING_ENTRIES_CEILING;
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s} is not in 1..={max} (the kernel's IORING_MAX_ENTRIES)"
        )),
    }
}

impl Tuning {
    fn overrides(&self) -> Overrides {
        Overrides {
            workers: self.workers,
            buffer_size: self.buffer_size,
            splice_threshold: self.splice_threshold.map(|t| t as u64),
            driver: self.driver.map(|d| match d {
                DriverArg::Auto => Driver::Auto,
                DriverArg::IoUring => Driver::IoUring,
                DriverArg::Epoll => Driver::Epoll,
            }),
            no_pin: self.no_pin,
            ring_entries: self.ring_entries,
        }
    }
}

/// Run the command; the result is the process exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            pid_file,
            tuning,
        } => {
            let source = config_source(config.as_deref());
            let snapshot = match source.load() {
                Ok(s) => s,
                Err(message) => {
                    eprintln!("{message}");
                    return 1;
                }
            };
            let pid_file = pid_file
                .or_else(|| snapshot.runtime.pid_file.clone())
                .unwrap_or_else(control::default_pid_file);
            serve(snapshot, &tuning.overrides(), None, source, Some(&pid_file))
        }
        Command::Reload { config, pid_file } => reload(config.as_deref(), pid_file),
        Command::Demo { listen, tuning } => crate::demo::run(listen, &tuning.overrides()),
    }
}

fn check(path: &Path) -> i32 {
    match config::load_file(path) {
        Ok(snapshot) => {
            for warning in &snapshot.warnings {
                eprintln!("warning: {warning}");
            }
            let routes: usize = snapshot
                .servers
                .iter()
                .map(|s| s.routes.routes().len())
                .sum();
            println!(
                "{}: configuration OK ({} servers, {} routes, {} upstreams)",
                path.display(),
                snapshot.servers.len(),
                routes,
                snapshot.upstreams.len()
            );
            0
        }
        Err(errors) => {
            eprintln!("{errors}");
            1
        }
    }
}

/// `-c FILE`, else `./ringway.toml` if it exists, else the embedded default.
/// A file is remembered by its absolute path, so a reload reads the same file
/// whatever the working directory is by then.
fn config_source(config: Option<&Path>) -> ConfigSource {
    let local = Path::new("ringway.toml");
    let path = match config {
        Some(path) => path,
        None if local.exists() => local,
        None => return ConfigSource::embedded(),
    };
    ConfigSource::File(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// `ringway reload`: the config (if any) is checked first, as `nginx -s
/// reload` does, and names the pid file unless `--pid-file` does.
fn reload(config: Option<&Path>, pid_file: Option<PathBuf>) -> i32 {
    let from_config = match config_source(config) {
        ConfigSource::File(path) => match config::load_file(&path) {
            Ok(snapshot) => snapshot.runtime.pid_file,
            Err(errors) => {
                eprintln!("{errors}");
                return 1;
            }
        },
        ConfigSource::Text { .. } => None,
    };
    let pid_file = pid_file
        .or(from_config)
        .unwrap_or_else(control::default_pid_file);
    control::request_reload(&pid_file, RELOAD_WAIT)
}

/// How long `ringway reload` waits for the instance's verdict.
const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// Start the engine on `snapshot` and serve until SIGTERM or SIGINT,
/// reloading from `source` on SIGHUP.
pub fn serve(
    mut snapshot: Snapshot,
    overrides: &Overrides,
    banner: Option<&str>,
    source: ConfigSource,
    pid_file: Option<&Path>,
) -> i32 {
    overrides.apply(&mut snapshot);
    init_tracing(snapshot.log.level);
    for warning in &snapshot.warnings {
        tracing::warn!("{warning}");
    }
    let origin = snapshot.source.as_ref().map_or_else(
        || "<embedded default>".to_string(),
        |p| p.display().to_string(),
    );
    let signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ringway: cannot install signal handlers: {e}");
            return 1;
        }
    };
    // The admin socket and the pid file exist before the proxy accepts: once
    // it answers, `/metrics` and `ringway reload` work too.
    let admin = match snapshot.admin.map(|addr| (addr, crate::admin::bind(addr))) {
        None => None,
        Some((_, Ok(listener))) => Some(listener),
        Some((addr, Err(e))) => {
            tracing::error!("cannot listen on the admin address {addr}: {e}");
            eprintln!("ringway: cannot listen on the admin address {addr}: {e}");
            return 1;
        }
    };
    let pid_file = pid_file.and_then(|path| match PidFile::create(path) {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(
                "cannot write pid file {}: {e}; `ringway reload` will not find this instance",
                path.display()
            );
            None
        }
    });
    let mut engine = match Engine::start(snapshot) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ringway: {e}");
            return 1;
        }
    };
    let addrs: Vec<String> = engine
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let driver = engine.drivers().first().map_or("none", |d| d.name());
    tracing::info!(
        config = %origin,
        workers = engine.drivers().len(),
        driver,
        "listening on {}",
        addrs.join(", ")
    );
    if let Some(banner) = banner {
        println!("{banner}");
    }
    let (events_tx, events) = mpsc::channel();
    let stats = Arc::new(ReloadStats::default());
    if let Some(listener) = admin {
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let admin = Admin {
            metrics: engine.metrics(),
            reloads: stats.clone(),
            events: events_tx.clone(),
        };
        match crate::admin::spawn(listener, admin) {
            Ok(()) => tracing::info!(
                "admin endpoint on http://{bound} (/metrics, /healthz, POST /reload)"
            ),
            Err(e) => {
                tracing::error!("cannot start the admin thread: {e}");
                eprintln!("ringway: cannot start the admin thread: {e}");
                engine.stop();
                return 1;
            }
        }
    }
    forward_signals(signals, events_tx);
    let signal = control::control_loop(
        &mut engine,
        &events,
        &source,
        overrides,
        pid_file.as_ref(),
        &stats,
    );
    tracing::info!("signal {signal}: draining; a second SIGINT stops at once");
    let _ = std::thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            for event in events {
                if matches!(event, Event::Signal(signal_hook::consts::SIGINT)) {
                    tracing::warn!("second SIGINT while draining: exiting now");
                    std::process::exit(1);
                }
            }
        });
    engine.stop();
    drop(pid_file);
    tracing::info!("stopped");
    0
}

/// Signals arrive on their own thread and are handed to the control loop.
fn forward_signals(mut signals: signal_hook::iterator::Signals, events: mpsc::Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("ringway-signal-relay".into())
        .spawn(move || {
            for signal in signals.forever() {
                if events.send(Event::Signal(signal)).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the signal thread: {e}");
    }
}

fn init_tracing(level: tracing::Level) {
    // rustls logs what clients do wrong (an IP address as SNI, say) once per
    // handshake at `warn`: any client could flood the log with it. ringway
    // reports failed handshakes itself, at `debug`; RUST_LOG can still ask.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},rustls=off",
            level.as_str().to_ascii_lowercase()
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
