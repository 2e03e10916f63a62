//! The host a comparison runs on: which proxy binaries are there (ringway
//! next to this executable or given, nginx on PATH, the floor being this
//! harness), and what the machine is, for the record.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::CompareConfig;
use super::proxy::{ProxyKind, find_on_path};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// Version line of each proxy binary that ran (the floor is this build).
    pub versions: BTreeMap<&'static str, String>,
}

/// The binary of each proxy that can run; the others are reported and left
/// out.
pub fn find_binaries(config: &CompareConfig) -> anyhow::Result<BTreeMap<ProxyKind, PathBuf>> {
    let me = match &config.harness {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let mut found = BTreeMap::new();
    for &kind in &config.proxies {
        match kind {
            ProxyKind::Floor | ProxyKind::HttpFloor => {
                found.insert(kind, me.clone());
            }
            ProxyKind::Ringway => {
                let path = config
                    .ringway
                    .clone()
                    .unwrap_or_else(|| me.with_file_name("ringway"));
                if path.is_file() {
                    found.insert(kind, path);
                } else {
                    println!(
                        "ringway: no binary at {}; build it with `cargo build --release -p ringway` (same target dir) or pass --ringway PATH. Skipping ringway.",
                        path.display()
                    );
                }
            }
            ProxyKind::Nginx => match find_on_path("nginx") {
                Some(path) => {
                    found.insert(kind, path);
                }
                None => println!(
                    "nginx: not on PATH; install it (Debian/Ubuntu: `apt-get install nginx`) to compare against it. Skipping nginx."
                ),
            },
        }
    }
    if find_on_path("taskset").is_none() {
        bail!("taskset (util-linux) is needed to pin the proxies");
    }
    Ok(found)
}

pub fn machine(cpus: usize, binaries: &BTreeMap<ProxyKind, PathBuf>) -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let mut versions = BTreeMap::new();
    for (kind, path) in binaries {
        let version = match kind {
            ProxyKind::Nginx => command_line(Command::new(path).arg("-v")),
            ProxyKind::Ringway => command_line(Command::new(path).arg("--version")),
            ProxyKind::Floor | ProxyKind::HttpFloor => {
                format!("ringway-load {}", env!("CARGO_PKG_VERSION"))
            }
        };
        versions.insert(kind.name(), version);
    }
    Machine {
        cpus,
        cpu_model,
        kernel,
        versions,
    }
}

/// The first line a command prints on stdout or stderr (nginx -v uses
/// stderr).
pub fn command_line(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .and_then(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            Some(
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()?
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_default()
}
