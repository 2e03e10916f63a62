//! What a proxy costs, read from /proc: CPU time and peak resident memory
//! (VmHWM, from /proc/PID/status), summed over the proxy's process and its
//! descendants, so that nginx's master and workers count together; and how
//! much time a hypervisor took from the CPUs of a run (/proc/stat).
//!
//! CPU time comes from each thread's run time in nanoseconds
//! (/proc/PID/task/TID/schedstat), split into user and kernel time in the
//! proportion of utime to stime (/proc/PID/stat). Those two alone count in
//! clock ticks (10 ms): a short run of a light proxy would read as no CPU
//! at all.

use std::fs;
use std::path::Path;
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

/// CPU time in user space and in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

/// The CPU counters of some processes at one moment; `since` turns two
/// readings into the CPU time between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuReading {
    user_ticks: u64,
    system_ticks: u64,
    /// Run time of every live thread, in ns; `None` without schedstat
    /// (a kernel built without it), and then the ticks are all there is.
    run_ns: Option<u64>,
}

impl CpuReading {
    pub fn take(pids: &[u32]) -> CpuReading {
        let (user_ticks, system_ticks) = pids
            .iter()
            .filter_map(|&pid| stat_fields(pid))
            .fold((0, 0), |(user, system), stat| {
                (user + stat.utime, system + stat.stime)
            });
        CpuReading {
            user_ticks,
            system_ticks,
            run_ns: Path::new("/proc/self/schedstat")
                .exists()
                .then(|| pids.iter().map(|&pid| run_time_ns(pid)).sum()),
        }
    }

    /// CPU time from `earlier` to this reading. The total is the threads'
    /// run time; the user share is that of the ticks in between, or of all
    /// ticks so far when none fell in between. (A thread that ended in
    /// between takes its run time with it: the proxies' threads live as
    /// long as they do.)
    pub fn since(self, earlier: CpuReading, ticks_per_second: u64) -> CpuTimes {
        let user = self.user_ticks.saturating_sub(earlier.user_ticks);
        let system = self.system_ticks.saturating_sub(earlier.system_ticks);
        let seconds =
            |ticks: u64| Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64);
        let (Some(now), Some(then)) = (self.run_ns, earlier.run_ns) else {
            return CpuTimes {
                user: seconds(user),
                system: seconds(system),
            };
        };
        let total = Duration::from_nanos(now.saturating_sub(then));
        let share = match (user + system, self.user_ticks + self.system_ticks) {
            (0, 0) => 0.0,
            (0, all) => self.user_ticks as f64 / all as f64,
            (between, _) => user as f64 / between as f64,
        };
        let user = total.mul_f64(share);
        CpuTimes {
            user,
            system: total - user,
        }
    }
}

/// The run time of all threads of `pid` so far, in ns: the first field of
/// each /proc/PID/task/TID/schedstat (0 for a process or thread that is
/// gone).
fn run_time_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let text = fs::read_to_string(task.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
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

/// Time the hypervisor ran something else while each of `cpus` had work
/// (the steal column of /proc/stat), in clock ticks; 0 for a CPU the file
/// does not list, and on bare metal.
pub fn steal_ticks(cpus: &[usize]) -> Vec<u64> {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    cpus.iter()
        .map(|&cpu| parse_steal(&text, cpu).unwrap_or(0))
        .collect()
}

/// The steal field of `cpuN` in /proc/stat: the eighth number after the
/// name (user, nice, system, idle, iowait, irq, softirq, steal; proc(5)).
fn parse_steal(text: &str, cpu: usize) -> Option<u64> {
    let name = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))?;
    line.split_whitespace().nth(8)?.parse().ok()
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
    fn steal_is_the_eighth_number_of_a_cpu_line() {
        let text = "cpu  100 0 50 900 3 0 7 12 0 0\n\
                    cpu0 60 0 30 450 1 0 4 5 0 0\n\
                    cpu1 40 0 20 450 2 0 3 7 0 0\n\
                    cpu10 1 0 1 1 0 0 0 99 0 0\n\
                    intr 12345\n";
        assert_eq!(parse_steal(text, 0), Some(5));
        assert_eq!(parse_steal(text, 1), Some(7));
        // cpu1 is not cpu10's prefix.
        assert_eq!(parse_steal(text, 10), Some(99));
        assert_eq!(parse_steal(text, 2), None);
        assert_eq!(parse_steal("cpu0 1 2 3\n", 0), None);
        // This machine lists its first CPU.
        assert!(fs::read_to_string("/proc/stat").is_ok_and(|t| parse_steal(&t, 0).is_some()));
        assert_eq!(steal_ticks(&[0, 100_000]).len(), 2);
    }

    #[test]
    fn peak_rss_line() {
        let status = "Name:\tnginx\nVmPeak:\t  10000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(5120));
        assert_eq!(status_kib(status, "VmRSS:"), Some(4000));
        assert_eq!(status_kib("Name:\tkthread\n", "VmHWM:"), None);
    }

    #[test]
    fn readings_split_the_run_time_as_the_ticks_do() {
        let reading = |user_ticks, system_ticks, run_ns| CpuReading {
            user_ticks,
            system_ticks,
            run_ns,
        };
        let ms = Duration::from_millis;
        // 30 ms of run time, of which the ticks in between say a quarter was user time.
        let times = reading(11, 23, Some(50_000_000)).since(reading(10, 20, Some(20_000_000)), 100);
        assert_eq!((times.user, times.system), (ms(30) / 4, ms(30) * 3 / 4));
        // 4 ms, no tick in between: the proportion of all ticks so far (1 to 3).
        let times = reading(5, 15, Some(24_000_000)).since(reading(5, 15, Some(20_000_000)), 100);
        assert_eq!((times.user, times.system), (ms(1), ms(3)));
        // Without schedstat: ticks alone.
        let times = reading(12, 21, None).since(reading(10, 20, None), 100);
        assert_eq!((times.user, times.system), (ms(20), ms(10)));
    }

    /// CPU time of `pids` so far, each process's threads included.
    fn cpu_time(pids: &[u32], ticks_per_second: u64) -> Duration {
        let time = CpuReading::take(pids).since(CpuReading::default(), ticks_per_second);
        time.user + time.system
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        // Spend CPU until some is charged: on a busy machine a short busy
        // loop may not have run yet, so only the bound is in wall time.
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
