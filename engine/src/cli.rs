//! The command line (DESIGN.md §3): `run`, `check`, `demo`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config;
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
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Validate a config file, like `nginx -t`: exit 0 if valid, 1 with the errors on stderr.
    Check {
        #[arg(short = 'c', long = "config", default_value = "ringway.toml")]
        config: PathBuf,
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
    #[arg(long)]
    workers: Option<usize>,
    /// Per-connection I/O buffer, e.g. 16KiB.
    #[arg(long, value_parser = parse_size)]
    buffer_size: Option<usize>,
    /// I/O driver.
    #[arg(long, value_enum)]
    driver: Option<DriverArg>,
    /// Do not pin worker i to CPU i.
    #[arg(long)]
    no_pin: bool,
    /// io_uring submission queue entries.
    #[arg(long)]
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

impl Tuning {
    fn overrides(&self) -> Overrides {
        Overrides {
            workers: self.workers,
            buffer_size: self.buffer_size,
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
        Command::Run { config, tuning } => {
            let snapshot = match load_for_run(config.as_deref()) {
                Ok(s) => s,
                Err(message) => {
                    eprintln!("{message}");
                    return 1;
                }
            };
            serve(snapshot, &tuning.overrides(), None)
        }
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
fn load_for_run(config: Option<&Path>) -> Result<Snapshot, String> {
    let local = Path::new("ringway.toml");
    let result = match config {
        Some(path) => config::load_file(path),
        None if local.exists() => config::load_file(local),
        None => config::load_str(config::DEFAULT_CONFIG, "<embedded default>"),
    };
    result.map_err(|errors| errors.to_string())
}

/// Start the engine on `snapshot` and serve until SIGTERM or SIGINT.
pub fn serve(mut snapshot: Snapshot, overrides: &Overrides, banner: Option<&str>) -> i32 {
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
    let engine = match Engine::start(snapshot) {
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
    wait_for_stop(signals);
    engine.stop();
    tracing::info!("stopped");
    0
}

/// Block until SIGTERM or SIGINT. A second SIGINT while draining exits at
/// once (an operator pressing Ctrl-C twice); a repeated SIGTERM, which
/// service managers send, keeps draining.
fn wait_for_stop(mut signals: signal_hook::iterator::Signals) {
    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            tracing::warn!(
                "SIGHUP: reload is not supported yet; restart ringway to apply a new config"
            );
            continue;
        }
        tracing::info!("signal {signal}: draining; a second SIGINT stops at once");
        let _ = std::thread::Builder::new()
            .name("ringway-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if signal == signal_hook::consts::SIGINT {
                        tracing::warn!("second SIGINT while draining: exiting now");
                        std::process::exit(1);
                    }
                }
            });
        return;
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
