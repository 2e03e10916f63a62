//! The proxies `compare` runs, each as a child process pinned to the proxy
//! CPUs with `taskset`: ringway, the floor relay (this same binary), and
//! nginx. ringway and nginx get equivalent configurations: the headers
//! ringway adds by default (DESIGN §2.2: Host kept, X-Forwarded-For replaced
//! by the client address, X-Forwarded-Proto, X-Forwarded-Host, X-Real-IP),
//! HTTP/1.1 keep-alive to the upstream with 32 idle connections, WebSocket
//! upgrades passed through (nginx needs the Upgrade/Connection lines that
//! ringway does by itself), no access log, one worker per proxy CPU, each
//! pinned; with TLS, both terminate it with the same certificate.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::procstat;

/// Time a proxy gets to start listening, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    Ringway,
    Floor,
    Nginx,
    /// `ringway-load floor --http`: the least an HTTP/1.1 proxy does. Not
    /// run unless asked for.
    #[serde(rename = "http-floor")]
    HttpFloor,
}

impl ProxyKind {
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Ringway => "ringway",
            ProxyKind::Floor => "floor",
            ProxyKind::Nginx => "nginx",
            ProxyKind::HttpFloor => "http-floor",
        }
    }
}

/// One proxy to start: what, where, and on which CPUs.
#[derive(Debug, Clone)]
pub struct ProxySetup<'a> {
    pub kind: ProxyKind,
    pub binary: &'a Path,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub workers: usize,
    /// Idle upstream connections each worker keeps.
    pub keepalive: usize,
    pub cpus: &'a [usize],
    /// Configs, logs, pid and temp files go here.
    pub dir: &'a Path,
    /// Terminate TLS on `listen` with this certificate.
    pub tls: Option<TlsFiles<'a>>,
}

/// A PEM certificate and its key.
#[derive(Debug, Clone, Copy)]
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// A running proxy.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    kind: ProxyKind,
    log: PathBuf,
}

impl ProxyProcess {
    /// Writes the proxy's config, starts it under `taskset` and waits until
    /// it accepts connections.
    pub fn start(setup: &ProxySetup<'_>) -> anyhow::Result<ProxyProcess> {
        fs::create_dir_all(setup.dir)
            .with_context(|| format!("cannot create {}", setup.dir.display()))?;
        let cpus = cpu_list(setup.cpus);
        let mut command = Command::new("taskset");
        command.arg("-c").arg(&cpus).arg(setup.binary);
        match setup.kind {
            ProxyKind::Ringway => {
                let config = setup.dir.join("ringway.toml");
                fs::write(
                    &config,
                    ringway_config(&RingwaySetup {
                        listen: setup.listen,
                        upstream: setup.upstream,
                        workers: setup.workers,
                        keepalive: setup.keepalive,
                        tls: setup.tls,
                    }),
                )?;
                command
                    .arg("run")
                    .arg("-c")
                    .arg(&config)
                    .arg("--workers")
                    .arg(setup.workers.to_string());
            }
            ProxyKind::Floor | ProxyKind::HttpFloor => {
                if setup.tls.is_some() {
                    bail!("the floor relays bytes; with TLS end to end it would not be comparable");
                }
                command.arg("floor");
                if setup.kind == ProxyKind::HttpFloor {
                    command.arg("--http");
                }
                command
                    .arg("--listen")
                    .arg(setup.listen.to_string())
                    .arg("--upstream")
                    .arg(setup.upstream.to_string())
                    .arg("--threads")
                    .arg(setup.workers.to_string())
                    .arg("--pin-cpus")
                    .arg(&cpus);
            }
            ProxyKind::Nginx => {
                let config = setup.dir.join("nginx.conf");
                let text = nginx_config(&NginxSetup {
                    listen: setup.listen,
                    upstream: setup.upstream,
                    workers: setup.workers,
                    keepalive: setup.keepalive,
                    cpus: setup.cpus,
                    dir: setup.dir,
                    as_root: running_as_root(),
                    tls: setup.tls,
                });
                fs::write(&config, text)?;
                command
                    .arg("-p")
                    .arg(setup.dir)
                    .arg("-c")
                    .arg(&config)
                    .arg("-e")
                    .arg(setup.dir.join("error.log"));
            }
        }
        let log = setup.dir.join(format!("{}.log", setup.kind.name()));
        let out = File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", setup.binary.display()))?;
        let mut proxy = ProxyProcess {
            child,
            kind: setup.kind,
            log,
        };
        if let Err(error) = proxy.wait_ready(setup.listen) {
            let log = fs::read_to_string(&proxy.log).unwrap_or_default();
            proxy.stop();
            return Err(error.context(format!("{} output:\n{log}", setup.kind.name())));
        }
        Ok(proxy)
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the harness's control thread, not a worker, polls for the proxy to come up"
    )]
    fn wait_ready(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited at start ({status})", self.kind.name());
            }
            if TcpStream::connect_timeout(&addr, POLL).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "{} did not listen on {addr} within {START_TIMEOUT:?}",
                    self.kind.name()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The process started: ringway, the floor or nginx's master (`taskset`
    /// execs, keeping the pid).
    pub fn root_pid(&self) -> u32 {
        self.child.id()
    }

    /// The proxy's processes now: nginx's master and workers, or the one
    /// process of ringway and the floor (`taskset` execs, keeping the pid).
    pub fn pids(&self) -> Vec<u32> {
        procstat::process_tree(self.child.id())
    }

    /// SIGTERM, then SIGKILL if it has not exited in time. nginx's master
    /// stops its workers on SIGTERM; a SIGKILL would orphan them.
    #[expect(
        clippy::disallowed_methods,
        reason = "the harness's control thread, not a worker, waits for the proxy to exit"
    )]
    pub fn stop(mut self) {
        // A proxy that already exited has nothing to be told.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `0,1,2` for taskset, --pin-cpus and the printed layout.
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A loopback port free at the time of asking.
pub fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The first executable called `name` in $PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(1)? == "0")
        })
        .unwrap_or(false)
}

/// What the ringway config needs.
#[derive(Debug, Clone, Copy)]
pub struct RingwaySetup<'a> {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub workers: usize,
    pub keepalive: usize,
    pub tls: Option<TlsFiles<'a>>,
}

/// ringway: one route to one upstream, everything else default
/// (WebSocket upgrades need no configuration, DESIGN §2).
pub fn ringway_config(setup: &RingwaySetup<'_>) -> String {
    let RingwaySetup {
        listen,
        upstream,
        workers,
        keepalive,
        tls,
    } = *setup;
    let (listen_suffix, tls_line) = match tls {
        Some(files) => (
            " tls",
            format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}\n",
                files.cert.display(),
                files.key.display()
            ),
        ),
        None => ("", String::new()),
    };
    format!(
        r#"# Generated by ringway-load compare.
[runtime]
workers = {workers}
pin = true
shutdown_timeout = "1s"

[log]
level = "warn"
access = "off"

[upstreams.backend]
servers = ["{upstream}"]
keepalive = {keepalive}

[[server]]
listen = ["{listen}{listen_suffix}"]
{tls_line}
  [[server.route]]
  prefix = "/"
  proxy = "backend"
"#
    )
}

/// The config of `ringway-load config`: what compare writes for one worker
/// on CPU 0, plain HTTP.
pub fn config_text(args: &crate::cli::ConfigArgs) -> String {
    match args.proxy.as_str() {
        "nginx" => nginx_config(&NginxSetup {
            listen: args.listen,
            upstream: args.upstream,
            workers: 1,
            keepalive: args.keepalive,
            cpus: &[0],
            dir: &args.dir,
            as_root: running_as_root(),
            tls: None,
        }),
        _ => ringway_config(&RingwaySetup {
            listen: args.listen,
            upstream: args.upstream,
            workers: 1,
            keepalive: args.keepalive,
            tls: None,
        }),
    }
}

/// What the nginx config needs.
#[derive(Debug, Clone)]
pub struct NginxSetup<'a> {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub workers: usize,
    pub keepalive: usize,
    pub cpus: &'a [usize],
    pub dir: &'a Path,
    /// nginx started as root switches its workers to `nobody` unless told
    /// `user root;`, and `nobody` could not use the temp paths made here.
    pub as_root: bool,
    pub tls: Option<TlsFiles<'a>>,
}

/// Descriptors each nginx worker may open, and connections it may hold:
/// enough for the idle-WebSocket scenario (each client connection also
/// holds one upstream connection).
const NGINX_RLIMIT_NOFILE: usize = 70_000;
const NGINX_WORKER_CONNECTIONS: usize = 32_768;

/// nginx doing what ringway does by default. Beyond the header lines:
/// `keepalive_requests` is raised on both sides because ringway does not
/// close a keep-alive connection after a number of requests (nginx's
/// default closes after 1000); `proxy_max_temp_file_size 0` keeps large
/// responses in memory buffers, as ringway streams them, instead of
/// writing them to disk. WebSockets: the `map` sends `Connection: upgrade`
/// only with an Upgrade, keeping upstream keep-alive for the rest, and
/// `proxy_read_timeout` lets idle WebSockets live an hour (as ringway's
/// upgraded connections are not cut by a read timeout). TLS: `ssl` on the
/// listen line with nginx's defaults otherwise (session tickets on, TLS
/// 1.2 and 1.3).
pub fn nginx_config(setup: &NginxSetup<'_>) -> String {
    let dir = setup.dir.display();
    let width = setup.cpus.iter().max().map_or(1, |max| max + 1);
    let masks: Vec<String> = setup
        .cpus
        .iter()
        .take(setup.workers)
        .map(|&cpu| {
            (0..width)
                .rev()
                .map(|bit| if bit == cpu { '1' } else { '0' })
                .collect()
        })
        .collect();
    let (ssl, tls_lines) = match setup.tls {
        Some(files) => (
            " ssl",
            format!(
                "\n        ssl_certificate {};\n        ssl_certificate_key {};\n",
                files.cert.display(),
                files.key.display()
            ),
        ),
        None => ("", String::new()),
    };
    let mut out = String::from("# Generated by ringway-load compare.\n");
    if setup.as_root {
        out.push_str("user root;\n");
    }
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"worker_processes {workers};
worker_cpu_affinity {masks};
worker_rlimit_nofile {NGINX_RLIMIT_NOFILE};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections {NGINX_WORKER_CONNECTIONS};
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    tcp_nodelay on;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' '';
    }}

    upstream backend {{
        server {upstream};
        keepalive {keepalive};
        keepalive_requests 1000000;
    }}

    server {{
        listen {listen}{ssl};{tls_lines}

        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
"#,
        workers = setup.workers,
        keepalive = setup.keepalive,
        masks = masks.join(" "),
        upstream = setup.upstream,
        listen = setup.listen,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_matches_ringway_defaults() {
        let config = nginx_config(&NginxSetup {
            listen: "127.0.0.1:8080".parse().unwrap(),
            upstream: "127.0.0.1:9000".parse().unwrap(),
            workers: 2,
            keepalive: 32,
            cpus: &[0, 1],
            dir: Path::new("/tmp/x"),
            as_root: true,
            tls: None,
        });
        for line in [
            "user root;",
            "worker_processes 2;",
            "worker_cpu_affinity 01 10;",
            "daemon off;",
            "pid /tmp/x/nginx.pid;",
            "access_log off;",
            "server 127.0.0.1:9000;",
            "keepalive 32;",
            "listen 127.0.0.1:8080;",
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $connection_upgrade;",
            "proxy_read_timeout 3600s;",
            "worker_connections 32768;",
            "worker_rlimit_nofile 70000;",
            "proxy_set_header X-Forwarded-For $remote_addr;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header X-Forwarded-Host $http_host;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_temp_path /tmp/x/proxy;",
        ] {
            assert!(config.contains(line), "missing {line:?} in\n{config}");
        }
        let single = nginx_config(&NginxSetup {
            workers: 1,
            cpus: &[0],
            as_root: false,
            ..NginxSetup {
                listen: "127.0.0.1:8080".parse().unwrap(),
                upstream: "127.0.0.1:9000".parse().unwrap(),
                workers: 0,
                keepalive: 8,
                cpus: &[],
                dir: Path::new("/tmp/x"),
                as_root: false,
                tls: None,
            }
        });
        assert!(single.contains("worker_cpu_affinity 1;"));
        assert!(single.contains("keepalive 8;"));
        assert!(!single.contains("user root;"));
        assert!(!single.contains("ssl"));
        let files = TlsFiles {
            cert: Path::new("/c/cert.pem"),
            key: Path::new("/c/key.pem"),
        };
        let tls = nginx_config(&NginxSetup {
            listen: "127.0.0.1:8443".parse().unwrap(),
            upstream: "127.0.0.1:9000".parse().unwrap(),
            workers: 1,
            keepalive: 8,
            cpus: &[0],
            dir: Path::new("/tmp/x"),
            as_root: false,
            tls: Some(files),
        });
        for line in [
            "listen 127.0.0.1:8443 ssl;",
            "ssl_certificate /c/cert.pem;",
            "ssl_certificate_key /c/key.pem;",
        ] {
            assert!(tls.contains(line), "missing {line:?} in\n{tls}");
        }
    }

    #[test]
    fn ringway_config_has_one_upstream_and_no_access_log() {
        let mut setup = RingwaySetup {
            listen: "127.0.0.1:8080".parse().unwrap(),
            upstream: "127.0.0.1:9000".parse().unwrap(),
            workers: 3,
            keepalive: 32,
            tls: None,
        };
        let config = ringway_config(&setup);
        assert!(config.contains("workers = 3"));
        assert!(config.contains("access = \"off\""));
        assert!(config.contains("servers = [\"127.0.0.1:9000\"]"));
        assert!(config.contains("keepalive = 32"));
        assert!(config.contains("listen = [\"127.0.0.1:8080\"]"));
        assert!(!config.contains("tls"));
        setup.tls = Some(TlsFiles {
            cert: Path::new("/c/cert.pem"),
            key: Path::new("/c/key.pem"),
        });
        let tls = ringway_config(&setup);
        assert!(tls.contains("listen = [\"127.0.0.1:8080 tls\"]"), "{tls}");
        assert!(
            tls.contains("tls = { cert = \"/c/cert.pem\", key = \"/c/key.pem\" }"),
            "{tls}"
        );
    }

    #[test]
    fn cpu_lists_and_path_lookup() {
        assert_eq!(cpu_list(&[0, 1, 3]), "0,1,3");
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-binary-ringway").is_none());
    }
}
