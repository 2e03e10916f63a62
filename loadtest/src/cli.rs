//! Command line: `ringway-load URL [options]` runs a load, `ringway-load
//! backend [options]` serves a fixed body. Values are checked here so that
//! the library receives only settings it can run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::compare::proxy::ProxyKind;
use crate::runtime::DriverChoice;

#[derive(Debug, Parser)]
#[command(
    name = "ringway-load",
    version,
    about = "HTTP/1.1 load generator and benchmark backend for ringway",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every request with a fixed body, for benchmarks.
    Backend(BackendArgs),
    /// L4 relay: one upstream connection per client connection, bytes
    /// copied both ways, nothing parsed (the floor any proxy is read against).
    Floor(FloorArgs),
    /// Run the same scenarios through ringway, the floor relay and nginx on
    /// the same CPUs; print medians and ratios, write JSON and an SVG chart.
    Compare(CompareArgs),
    /// Print the config `compare` gives ringway or nginx, to run either by
    /// hand (under wrk, say) exactly as compare measures it.
    Config(ConfigArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Whose config: ringway or nginx.
    #[arg(value_parser = ["ringway", "nginx"])]
    pub proxy: String,
    /// Address the proxy listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The backend every request goes to.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub upstream: SocketAddr,
    /// Idle upstream connections kept per worker.
    #[arg(long, default_value_t = 32)]
    pub keepalive: usize,
    /// nginx: the directory of its pid file, error log and temp paths.
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,
}

/// Closed-loop load against one URL.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// http://, https://, ws:// or wss://host[:port]/path to load.
    #[arg(required = true)]
    pub url: Option<String>,
    /// Open connections, spread over the threads.
    #[arg(short = 'c', long = "connections", default_value_t = 64)]
    pub connections: usize,
    /// Client threads, each with its own runtime.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    pub threads: usize,
    /// Measured duration, after warmup (e.g. 10s, 500ms, 2m).
    #[arg(short = 'd', long = "duration", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load applied before measuring; its requests are not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// A request without a complete response in this time is a timeout error.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra request header, repeatable: -H "Name: value".
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Request body of this many bytes, with Content-Length.
    #[arg(long, default_value_t = 0)]
    pub body_size: usize,
    /// Open loop: send this many requests per second in total, each
    /// connection on a fixed schedule, and time each request from its
    /// scheduled send time (coordinated-omission correction, as wrk2 -R).
    #[arg(short = 'R', long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Open a new connection for every request (sends Connection: close).
    #[arg(long)]
    pub close: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Pin client thread i to the i-th CPU of this list (e.g. 1,2 or 0-3).
    #[arg(long, value_parser = parse_cpu_list)]
    pub pin_cpus: Option<CpuList>,
    /// I/O driver; auto tries io_uring and falls back to epoll.
    #[arg(long, value_enum, default_value = "auto")]
    pub driver: DriverChoice,
    /// TLS: trust servers whose certificate chains to a CA in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// TLS: accept any server certificate (self-signed, other name); the
    /// handshake signatures are still verified.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// TLS: never resume sessions, so every new connection (--close) is a
    /// full handshake.
    #[arg(long)]
    pub no_resume: bool,
    /// WebSocket echo: each connection upgrades, then sends --msg-size
    /// messages and times each echo, in a closed loop.
    #[arg(long)]
    pub ws: bool,
    /// WebSocket message size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub msg_size: usize,
    /// Open this many WebSockets and hold them idle for the whole run (no
    /// messages, no pings); prints how many stayed open. Overrides -c.
    #[arg(long, value_name = "N", conflicts_with_all = ["ws", "rate", "close"])]
    pub ws_idle: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Bytes of the response body.
    #[arg(long, default_value_t = 100)]
    pub body_size: usize,
    /// Server threads, each with its own runtime and SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Pin server thread i to the i-th CPU of this list.
    #[arg(long, value_parser = parse_cpu_list)]
    pub pin_cpus: Option<CpuList>,
    /// I/O driver; auto tries io_uring and falls back to epoll.
    #[arg(long, value_enum, default_value = "auto")]
    pub driver: DriverChoice,
}

#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where every client connection is relayed to.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// Relay threads, each with its own runtime and SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Pin relay thread i to the i-th CPU of this list.
    #[arg(long, value_parser = parse_cpu_list)]
    pub pin_cpus: Option<CpuList>,
    /// I/O driver; auto tries io_uring and falls back to epoll.
    #[arg(long, value_enum, default_value = "auto")]
    pub driver: DriverChoice,
    /// The HTTP floor: parse each request and response head with httparse
    /// and write the upstream head as the least HTTP/1.1 proxy would,
    /// instead of relaying bytes. Bodyless requests and length-delimited
    /// responses only.
    #[arg(long)]
    pub http: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Proxies to compare, in turn.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ringway,floor,nginx"
    )]
    pub proxies: Vec<ProxyKind>,
    /// Proxy workers, pinned on CPUs 0..workers-1.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// About one minute: 0.4 s warmup and 1 s measured per run.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions; each figure is the median.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Keep-alive connections (or concurrent new connections).
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Measured time per run [default: 5s, 1s with --quick].
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Warmup per run [default: 1s, 400ms with --quick].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Idle upstream connections each proxy worker keeps (ringway
    /// `keepalive`, nginx `keepalive` in the upstream block).
    #[arg(long, default_value_t = 32)]
    pub upstream_keepalive: usize,
    /// ringway binary [default: `ringway` next to this executable].
    #[arg(long)]
    pub ringway: Option<PathBuf>,
    /// Where to write every figure as JSON.
    #[arg(long, default_value = "results.json")]
    pub json: PathBuf,
    /// Where to draw the ratio chart.
    #[arg(long, default_value = "compare.svg")]
    pub svg: PathBuf,
    /// Scenarios to run, comma-separated: keepalive-100, keepalive-16k,
    /// keepalive-1m, close, open-loop, tls-keepalive, tls-handshake,
    /// ws-echo, ws-idle, or all [default: all; with --quick the five HTTP
    /// ones].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,
    /// Connections of the ws-idle scenario.
    #[arg(long, default_value_t = 10_000)]
    pub ws_idle: usize,
    /// A run in which the hypervisor took more than this share of the
    /// measured window from one of the run's CPUs (steal time, /proc/stat),
    /// in percent, is run again: on a shared VM such a run measures the host.
    #[arg(long, default_value_t = 1.0)]
    pub max_steal: f64,
    /// How many times a run is repeated for steal; 0 keeps every run. When
    /// every try was robbed, the one robbed least is kept and marked.
    #[arg(long, default_value_t = 2)]
    pub steal_retries: usize,
}

/// CPU ids, in the order threads are pinned to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// `10s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds, as wrk.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 10s, 500ms, 2m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1_000.0,
        "us" => value / 1_000_000.0,
        "m" => value * 60.0,
        "h" => value * 3_600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {text:?}: use us, ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {text:?} out of range"))
}

/// A positive, finite number of requests per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "invalid rate {text:?}: expected a positive number of requests per second"
        )),
    }
}

/// `Name: value`; the value may be empty, surrounding whitespace is dropped
/// (RFC 9112 §5.1 allows optional whitespace around field values).
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header {text:?} must look like \"Name: value\""))?;
    if name.is_empty() || name.trim() != name {
        return Err(format!(
            "header name in {text:?} is empty or has whitespace"
        ));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `1,2`, `0-3`, `0,2-3`: comma-separated ids and inclusive ranges.
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let invalid = || format!("invalid CPU list {text:?}: expected e.g. 1,2 or 0-3");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.trim().parse().map_err(|_| invalid())?;
                let last: usize = last.trim().parse().map_err(|_| invalid())?;
                if first > last {
                    return Err(invalid());
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(part.trim().parse().map_err(|_| invalid())?),
        }
    }
    Ok(CpuList(cpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("X-A: b c "), Ok(("X-A".into(), "b c".into())));
        assert_eq!(
            parse_header("X-Empty:"),
            Ok(("X-Empty".into(), String::new()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(" X: y").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1,2"), Ok(CpuList(vec![1, 2])));
        assert_eq!(parse_cpu_list("0-2,5"), Ok(CpuList(vec![0, 1, 2, 5])));
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn load_command_line() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "http://127.0.0.1:9000/",
            "-c",
            "8",
            "-t",
            "2",
            "-d",
            "3s",
            "-H",
            "A: 1",
            "-H",
            "B: 2",
            "--close",
            "--json",
            "--pin-cpus",
            "1",
            "--rate",
            "2500",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let load = cli.load;
        assert_eq!(load.url.as_deref(), Some("http://127.0.0.1:9000/"));
        assert_eq!((load.connections, load.threads), (8, 2));
        assert_eq!(load.duration, Duration::from_secs(3));
        assert_eq!(load.warmup, Duration::from_secs(1));
        assert_eq!(load.headers.len(), 2);
        assert!(load.close && load.json);
        assert_eq!(load.pin_cpus, Some(CpuList(vec![1])));
        assert_eq!(load.rate, Some(2500.0));
        assert!(
            parse_rate("0").is_err() && parse_rate("-1").is_err() && parse_rate("inf").is_err()
        );
    }

    #[test]
    fn tls_and_websocket_options() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "wss://localhost:8443/ws",
            "--ws",
            "--msg-size",
            "65536",
            "--cacert",
            "ca.pem",
            "--no-resume",
        ])
        .unwrap();
        let load = cli.load;
        assert!(load.ws && load.no_resume && !load.insecure);
        assert_eq!(load.msg_size, 65536);
        assert_eq!(load.cacert, Some(PathBuf::from("ca.pem")));
        let idle = Cli::try_parse_from(["ringway-load", "ws://h/", "--ws-idle", "100", "-k"]);
        let idle = idle.unwrap().load;
        assert_eq!(idle.ws_idle, Some(100));
        assert!(idle.insecure);
        assert_eq!(
            Cli::try_parse_from(["ringway-load", "http://h/"])
                .unwrap()
                .load
                .msg_size,
            1024
        );
        assert!(
            Cli::try_parse_from(["ringway-load", "ws://h/", "--ws-idle", "1", "--ws"]).is_err()
        );
        let backend = Cli::try_parse_from([
            "ringway-load",
            "backend",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        let Some(Command::Backend(backend)) = backend.unwrap().command else {
            panic!("backend subcommand not parsed");
        };
        assert_eq!(backend.tls_key, Some(PathBuf::from("k.pem")));
        assert!(Cli::try_parse_from(["ringway-load", "backend", "--tls-cert", "c.pem"]).is_err());
    }

    #[test]
    fn backend_command_line() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "backend",
            "--listen",
            "127.0.0.1:0",
            "--body-size",
            "16",
        ])
        .unwrap();
        let Some(Command::Backend(backend)) = cli.command else {
            panic!("backend subcommand not parsed");
        };
        assert_eq!(backend.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!((backend.body_size, backend.threads), (16, 1));
        assert!(Cli::try_parse_from(["ringway-load"]).is_err());
    }

    #[test]
    fn compare_command_line() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "compare",
            "--proxies",
            "ringway,floor",
            "--quick",
            "--reps",
            "5",
        ])
        .unwrap();
        let Some(Command::Compare(compare)) = cli.command else {
            panic!("compare subcommand not parsed");
        };
        assert_eq!(compare.proxies, vec![ProxyKind::Ringway, ProxyKind::Floor]);
        assert!(compare.quick);
        assert_eq!((compare.reps, compare.workers), (5, 1));
        assert_eq!(compare.json, PathBuf::from("results.json"));
        let defaults = Cli::try_parse_from(["ringway-load", "compare"]).unwrap();
        let Some(Command::Compare(defaults)) = defaults.command else {
            panic!("compare subcommand not parsed");
        };
        assert_eq!(defaults.proxies.len(), 3);
        assert_eq!((defaults.max_steal, defaults.steal_retries), (1.0, 2));
        assert!(Cli::try_parse_from(["ringway-load", "compare", "--proxies", "apache"]).is_err());
    }

    #[test]
    fn floor_command_line() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "floor",
            "--listen",
            "127.0.0.1:8081",
            "--upstream",
            "127.0.0.1:9000",
            "--threads",
            "2",
            "--pin-cpus",
            "0-1",
        ])
        .unwrap();
        let Some(Command::Floor(floor)) = cli.command else {
            panic!("floor subcommand not parsed");
        };
        assert_eq!(floor.upstream, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(floor.threads, 2);
        assert_eq!(floor.pin_cpus, Some(CpuList(vec![0, 1])));
        assert!(Cli::try_parse_from(["ringway-load", "floor"]).is_err());
    }

    #[test]
    fn config_prints_what_compare_runs() {
        let cli = Cli::try_parse_from([
            "ringway-load",
            "config",
            "nginx",
            "--listen",
            "127.0.0.1:18480",
            "--upstream",
            "127.0.0.1:18490",
            "--dir",
            "/tmp/w",
        ])
        .unwrap();
        let Some(Command::Config(args)) = cli.command else {
            panic!("config subcommand not parsed");
        };
        let nginx = crate::compare::proxy::config_text(&args);
        for line in [
            "listen 127.0.0.1:18480;",
            "server 127.0.0.1:18490;",
            "keepalive 32;",
            "pid /tmp/w/nginx.pid;",
            "proxy_set_header X-Forwarded-For $remote_addr;",
        ] {
            assert!(nginx.contains(line), "{line} missing from:\n{nginx}");
        }
        let ringway = crate::compare::proxy::config_text(&ConfigArgs {
            proxy: "ringway".into(),
            ..args
        });
        assert!(
            ringway.contains("servers = [\"127.0.0.1:18490\"]"),
            "{ringway}"
        );
        assert!(
            ringway.contains("listen = [\"127.0.0.1:18480\"]"),
            "{ringway}"
        );
        assert!(Cli::try_parse_from(["ringway-load", "config", "haproxy"]).is_err());
    }
}
