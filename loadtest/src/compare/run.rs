//! One proxy through one scenario, once: start the proxy, load it through
//! a warmup and the measured window while sampling its CPU time at both
//! ends (and its memory halfway), stop it, and turn the client's report
//! into the figures `compare` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::procstat;
use super::proxy::{ProxyKind, ProxyProcess, ProxySetup, TlsFiles, free_port};
use super::scenario::{Scenario, Workload};
use super::summary::Figures;
use super::{CompareConfig, Layout};
use crate::client::{self, LoadConfig, Mode};
use crate::report::Report;
use crate::request::RequestSpec;
use crate::runtime::DriverChoice;
use crate::tls::{ClientTls, Trust};

/// One proxy through one scenario, once.
pub(super) struct Run<'a> {
    pub(super) tls: Option<TlsFiles<'a>>,
    pub(super) kind: ProxyKind,
    pub(super) binary: &'a PathBuf,
    pub(super) scenario: &'a Scenario,
    /// Open loop: requests per second over all connections.
    pub(super) rate: Option<f64>,
    pub(super) upstream: SocketAddr,
    pub(super) layout: &'a Layout,
    pub(super) config: &'a CompareConfig,
    pub(super) dir: PathBuf,
    pub(super) ticks: u64,
}

/// Idle WebSockets per second of warmup at the most: they open over its
/// first half (at twice this rate), gently for the accept queues of a busy
/// machine; 10,000 get 12.5 s.
const WS_IDLE_OPEN_RATE: f64 = 800.0;

/// What the proxy's processes did over the measured window.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: procstat::CpuTimes,
    /// VmRSS halfway through the window.
    rss_mid_kib: u64,
    /// Steal time on the run's CPU robbed most, in ms.
    steal_ms: f64,
}

impl Run<'_> {
    pub(super) fn measure(&self) -> anyhow::Result<Figures> {
        let listen = free_port()?;
        let proxy = ProxyProcess::start(&ProxySetup {
            kind: self.kind,
            binary: self.binary,
            listen,
            upstream: self.upstream,
            workers: self.config.workers,
            keepalive: self.config.upstream_keepalive,
            cpus: &self.layout.proxy,
            dir: &self.dir,
            tls: self.tls,
        })?;
        let rss_before_kib = procstat::rss_kib(&proxy.pids());
        let outcome = self.load(&proxy, listen);
        let peak_rss_kib = procstat::peak_rss_kib(&proxy.pids());
        proxy.stop();
        let (report, usage) = outcome?;
        if report.requests == 0 {
            bail!(
                "no request completed in the measured window; errors: {:?}",
                report.errors
            );
        }
        let requests = report.requests as f64;
        let cpu_s = (usage.cpu.user + usage.cpu.system).as_secs_f64();
        let per_cpu = |work: f64| if cpu_s > 0.0 { work / cpu_s } else { 0.0 };
        let mut figures = Figures {
            requests_per_sec: report.requests_per_sec,
            p50_us: report.latency_us.p50,
            p99_us: report.latency_us.p99,
            cpu_us_per_request: cpu_s * 1e6 / requests,
            user_us_per_request: usage.cpu.user.as_secs_f64() * 1e6 / requests,
            peak_rss_mib: peak_rss_kib as f64 / 1024.0,
            errors: report.errors.total() as f64,
            per_cpu_second: 0.0,
            rss_kib_per_conn: 0.0,
            ws_open: 0.0,
            steal_ms: usage.steal_ms,
        };
        match self.scenario.workload {
            Workload::Http if self.scenario.tls && self.scenario.close => {
                figures.per_cpu_second = per_cpu(requests);
            }
            Workload::Http => {}
            Workload::WsEcho { .. } => {
                let bytes = (report.bytes_read + report.bytes_written) as f64;
                figures.per_cpu_second = per_cpu(bytes / (1024.0 * 1024.0));
            }
            Workload::WsIdle => {
                let open = report.ws_open_at_end.unwrap_or(0);
                if open == 0 {
                    bail!("no idle WebSocket stayed open; errors: {:?}", report.errors);
                }
                let grown = usage.rss_mid_kib.saturating_sub(rss_before_kib);
                figures.rss_kib_per_conn = grown as f64 / open as f64;
                // Handshakes happen in the warmup; the window only holds.
                figures.requests_per_sec = 0.0;
                figures.cpu_us_per_request = 0.0;
                figures.user_us_per_request = 0.0;
                figures.ws_open = open as f64;
            }
        }
        Ok(figures)
    }

    fn load(&self, proxy: &ProxyProcess, listen: SocketAddr) -> anyhow::Result<(Report, Usage)> {
        let scenario = self.scenario;
        // TLS by name, as browsers connect: SNI and Host say localhost,
        // which the certificate covers.
        let (scheme, host) = if scenario.tls {
            ("https", format!("localhost:{}", listen.port()))
        } else {
            ("http", listen.to_string())
        };
        let (mode, connections, warmup) = match scenario.workload {
            Workload::Http => (Mode::Http, self.config.connections, self.config.warmup),
            Workload::WsEcho { msg_size } => (
                Mode::WsEcho { msg_size },
                self.config.connections,
                self.config.warmup,
            ),
            Workload::WsIdle => (
                Mode::WsIdle,
                self.config.ws_idle,
                self.config.warmup.max(Duration::from_secs_f64(
                    self.config.ws_idle as f64 / WS_IDLE_OPEN_RATE,
                )),
            ),
        };
        let load = LoadConfig {
            url: format!("{scheme}://{host}/"),
            addr: listen,
            request: RequestSpec {
                method: "GET".into(),
                target: "/".into(),
                host: host.clone(),
                headers: Vec::new(),
                body_size: 0,
                close: scenario.close,
            },
            connections: connections.max(self.layout.client.len()),
            threads: self.layout.client.len(),
            warmup,
            duration: self.config.duration,
            timeout: Duration::from_secs(5),
            rate: self.rate,
            pin_cpus: Some(self.layout.client.clone()),
            driver: DriverChoice::Auto,
            mode,
            // The same self-signed certificate for every proxy; a new
            // connection per request is a full handshake each time.
            tls: scenario.tls.then_some(ClientTls {
                trust: Trust::Insecure,
                resume: !scenario.close,
            }),
            tls_name: "localhost".into(),
        };
        let root = proxy.root_pid();
        let ticks = self.ticks;
        let layout = self.layout;
        let mut cpus: Vec<usize> = [&layout.proxy, &layout.client, &layout.backend]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        cpus.sort_unstable();
        cpus.dedup();
        let (usage_tx, usage_rx) = mpsc::channel();
        let report = client::run_observed(&load, |from, until| {
            thread::spawn(move || {
                let _ = usage_tx.send(usage_over(root, &cpus, ticks, from, until));
            });
        })?;
        let usage = usage_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the CPU sampler did not report")?;
        Ok((report, usage))
    }
}

/// CPU time the proxy's processes spent between `from` and `until`, their
/// resident memory halfway, and the most steal time one of `cpus` saw.
#[expect(
    clippy::disallowed_methods,
    reason = "a sampling thread of the harness, not a worker: it sleeps to the window's ends"
)]
fn usage_over(root: u32, cpus: &[usize], ticks: u64, from: Instant, until: Instant) -> Usage {
    thread::sleep(from.saturating_duration_since(Instant::now()));
    let steal_before = procstat::steal_ticks(cpus);
    let before = procstat::CpuReading::take(&procstat::process_tree(root));
    thread::sleep((from + (until - from) / 2).saturating_duration_since(Instant::now()));
    let rss_mid_kib = procstat::rss_kib(&procstat::process_tree(root));
    thread::sleep(until.saturating_duration_since(Instant::now()));
    let after = procstat::CpuReading::take(&procstat::process_tree(root));
    let stolen = procstat::steal_ticks(cpus)
        .into_iter()
        .zip(steal_before)
        .map(|(after, before)| after.saturating_sub(before))
        .max()
        .unwrap_or(0);
    Usage {
        cpu: after.since(before, ticks),
        rss_mid_kib,
        steal_ms: stolen as f64 * 1000.0 / ticks.max(1) as f64,
    }
}

/// A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost,
/// made with openssl in `dir`, given to every proxy alike.
pub(super) fn tls_files(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("cannot run openssl to make the TLS scenarios' certificate")?;
    if !output.status.success() {
        bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok((cert, key))
}
