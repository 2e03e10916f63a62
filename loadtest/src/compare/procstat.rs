//! What a proxy costs, read from /proc: CPU time (utime + stime, in clock
//! ticks, from /proc/PID/stat) and peak resident memory (VmHWM, from
//! /proc/PID/status), summed over the proxy's process and its descendants,
//! so that nginx's master and workers count together.

use std::fs;
use std::process::Command;
use std::time::Duration;

/// Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`);
/// 100 on every Linux platform we know of, which is the fallback.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// `root` and every process descended from it, found through the parent
/// field of each /proc/PID/stat.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid)?.parent)))
        .collect();
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        index += 1;
    }
    tree
}

/// CPU time of `pids` so far, each process's threads included.
pub fn cpu_time(pids: &[u32], ticks_per_second: u64) -> Duration {
    let time = cpu_times(pids, ticks_per_second);
    time.user + time.system
}

/// CPU time in user space and in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn saturating_sub(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// `cpu_time` split into user space (utime) and kernel (stime).
pub fn cpu_times(pids: &[u32], ticks_per_second: u64) -> CpuTimes {
    let (user, system) = pids
        .iter()
        .filter_map(|&pid| stat_fields(pid))
        .fold((0, 0), |(user, system), stat| {
            (user + stat.utime, system + stat.stime)
        });
    let seconds =
        |ticks: u64| Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64);
    CpuTimes {
        user: seconds(user),
        system: seconds(system),
    }
}

/// Peak resident set size of `pids`, summed, in KiB.
pub fn peak_rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| status_kib(&status, "VmHWM:"))
        .sum()
}

/// Resident set size of `pids` now, summed, in KiB.
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| status_kib(&status, "VmRSS:"))
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    parent: u32,
    utime: u64,
    stime: u64,
}

fn stat_fields(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields of /proc/PID/stat (proc(5)). The command name in parentheses may
/// hold spaces and parentheses itself, so fields are counted from the last
/// `)`: state is field 3, the parent 4, utime 14 and stime 15.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(Stat {
        parent: fields.get(1)?.parse().ok()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
    })
}

/// `VmHWM:     1234 kB` from /proc/PID/status.
fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (nginx: worker (x) y) S 4241 4241 4241 0 -1 4194624 120 0 0 0 \
                    37 15 0 0 20 0 1 0 12345 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                parent: 4241,
                utime: 37,
                stime: 15
            })
        );
        assert_eq!(parse_stat("12 (short) S 1"), None);
    }

    #[test]
    fn peak_rss_line() {
        let status = "Name:\tnginx\nVmPeak:\t  10000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(5120));
        assert_eq!(status_kib(status, "VmRSS:"), Some(4000));
        assert_eq!(status_kib("Name:\tkthread\n", "VmHWM:"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        // Spend CPU until a tick is charged: on a busy machine a short busy
        // loop may get no tick at all, so only the bound is in wall time.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        let ticks = clock_ticks_per_second();
        while cpu_time(&[me], ticks) == Duration::ZERO
            && started.elapsed() < Duration::from_secs(10)
        {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        assert_ne!(x, 1);
        assert!(cpu_time(&[me], ticks) > Duration::ZERO);
        assert!(peak_rss_kib(&[me]) > 0);
        assert_eq!(process_tree(me).first(), Some(&me));
    }
}
