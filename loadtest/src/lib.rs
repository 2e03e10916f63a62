//! ringway-load: the load harness of the ringway workspace. A closed- or
//! open-loop HTTP/1.1 load generator (`client`) with per-thread HdrHistogram latencies
//! (`histogram`) and a wrk-like or JSON report (`report`), and a fixed-body
//! benchmark backend (`backend`), the L4 relay that is every proxy's floor
//! (`floor`), both served thread-per-core (`server`), and `compare`, which
//! runs the same scenarios through ringway, the floor and nginx. Both sides run thread-per-core on monoio
//! (`runtime`), parse with httparse (`request`, `response`) and frame bodies
//! with one push decoder (`framing`). TLS (`tls`) and WebSockets (`ws`, the
//! client's `--ws` and `--ws-idle` and the backend's echo) ride on the same
//! connections. `cli` maps the command line onto them.

pub mod backend;
pub mod cli;
pub mod client;
pub mod compare;
pub mod floor;
pub mod framing;
pub mod headers;
pub mod histogram;
pub mod http_floor;
pub mod report;
pub mod request;
pub mod response;
pub mod runtime;
pub mod server;
pub mod socket;
pub mod target;
pub mod tls;
pub mod ws;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use backend::{Backend, BackendConfig};
use cli::{BackendArgs, Cli, Command, CompareArgs, FloorArgs, LoadArgs};
use client::{LoadConfig, Mode};
use floor::{Floor, FloorConfig};
use request::RequestSpec;
use server::StopSignals;
use target::Target;
use tls::{ClientTls, Trust};

/// Runs what the command line asks for. A load whose every request failed
/// exits 1 after printing its report, so that scripts notice.
pub fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Backend(args)) => run_backend(&args),
        Some(Command::Floor(args)) => run_floor(&args),
        Some(Command::Compare(args)) => run_compare(args),
        Some(Command::Config(args)) => {
            print!("{}", compare::proxy::config_text(&args));
            Ok(ExitCode::SUCCESS)
        }
        None => run_load(cli.load),
    }
}

fn run_load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let url = args.url.context("a URL is required")?;
    let target = Target::parse(&url)?;
    // A `-H "Connection: close"` asks for the same as --close; saying so
    // keeps the report's keep-alive flag true to what was measured.
    let close = args.close
        || args.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection")
                && headers::has_token(value.as_bytes(), b"close")
        });
    let tls = if target.tls {
        let trust = match (&args.cacert, args.insecure) {
            (_, true) => Trust::Insecure,
            (Some(path), false) => Trust::CaFile(path.clone()),
            (None, false) => anyhow::bail!(
                "{url} needs a way to trust the server: --cacert FILE (PEM CA certificates) or --insecure (accept any certificate). ringway-load has no system root store."
            ),
        };
        Some(ClientTls {
            trust,
            resume: !args.no_resume,
        })
    } else {
        None
    };
    let (mode, connections) = match (args.ws_idle, args.ws) {
        (Some(n), _) => (Mode::WsIdle, n),
        (None, true) => (
            Mode::WsEcho {
                msg_size: args.msg_size,
            },
            args.connections,
        ),
        (None, false) => (Mode::Http, args.connections),
    };
    if mode == Mode::WsIdle {
        // Each idle connection is a descriptor; with a backend in the same
        // process, twice that.
        socket::raise_nofile(2 * connections as u64 + 1024);
    }
    let config = LoadConfig {
        url,
        addr: target.addr,
        mode,
        tls,
        tls_name: target.host,
        request: RequestSpec {
            method: args.method,
            target: target.path,
            host: target.authority,
            headers: args.headers,
            body_size: args.body_size,
            close,
        },
        connections,
        threads: args.threads,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
        rate: args.rate,
        pin_cpus: args.pin_cpus.map(|cpus| cpus.0),
        driver: args.driver,
    };
    let report = client::run(&config)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn run_backend(args: &BackendArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    socket::raise_nofile(65_536);
    let signals = StopSignals::catch()?;
    let backend = Backend::start(&BackendConfig {
        tls,
        listen: args.listen,
        body_size: args.body_size,
        threads: args.threads,
        pin_cpus: args.pin_cpus.clone().map(|cpus| cpus.0),
        driver: args.driver,
    })?;
    eprintln!(
        "ringway-load backend listening on {}{} ({} threads, {}-byte body, WebSocket echo)",
        backend.addr(),
        if args.tls_cert.is_some() {
            " with TLS"
        } else {
            ""
        },
        args.threads,
        args.body_size
    );
    backend.wait(signals)?;
    Ok(ExitCode::SUCCESS)
}

fn run_floor(args: &FloorArgs) -> anyhow::Result<ExitCode> {
    let signals = StopSignals::catch()?;
    let floor = Floor::start(&FloorConfig {
        listen: args.listen,
        upstream: args.upstream,
        threads: args.threads,
        pin_cpus: args.pin_cpus.clone().map(|cpus| cpus.0),
        driver: args.driver,
        http: args.http,
    })?;
    eprintln!(
        "ringway-load floor relaying {} -> {} ({} threads)",
        floor.addr(),
        args.upstream,
        args.threads
    );
    floor.wait(signals)?;
    Ok(ExitCode::SUCCESS)
}

fn run_compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (duration, warmup) = if args.quick {
        (Duration::from_secs(1), Duration::from_millis(400))
    } else {
        (Duration::from_secs(5), Duration::from_secs(1))
    };
    let scenarios = match &args.scenarios {
        Some(keys) => compare::select_scenarios(keys).map_err(anyhow::Error::msg)?,
        None if args.quick => {
            let keys: Vec<String> = compare::QUICK_SCENARIOS.map(str::to_owned).to_vec();
            compare::select_scenarios(&keys).map_err(anyhow::Error::msg)?
        }
        None => (0..compare::SCENARIOS.len()).collect(),
    };
    compare::run(&compare::CompareConfig {
        scenarios,
        ws_idle: args.ws_idle,
        max_steal: args.max_steal,
        steal_retries: args.steal_retries,
        proxies: args.proxies,
        workers: args.workers,
        reps: args.reps,
        connections: args.connections,
        upstream_keepalive: args.upstream_keepalive,
        warmup: args.warmup.unwrap_or(warmup),
        duration: args.duration.unwrap_or(duration),
        ringway: args.ringway,
        harness: None,
        json: args.json,
        svg: args.svg,
    })?;
    Ok(ExitCode::SUCCESS)
}
