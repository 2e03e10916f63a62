//! From repetitions to what `compare` reports: the median of each figure
//! per proxy and scenario, ringway's ratios to nginx and to the floor, and
//! the markdown table.

use std::fmt::Write as _;

use serde::Serialize;

use super::interval::{self, ratio_interval};
use super::proxy::ProxyKind;

/// What one run through one proxy measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Proxy CPU time (utime + stime, all its processes) over the measured
    /// window, divided by the requests completed in it.
    pub cpu_us_per_request: f64,
    /// The part of `cpu_us_per_request` spent in user space (utime): what
    /// the proxy's own code costs, apart from the kernel's TCP work.
    pub user_us_per_request: f64,
    /// VmHWM summed over the proxy's processes.
    pub peak_rss_mib: f64,
    pub errors: f64,
    /// Work per second of proxy CPU time, where a scenario names its unit:
    /// full TLS handshakes, or MiB of WebSocket payload (both directions);
    /// 0 elsewhere.
    pub per_cpu_second: f64,
    /// Idle WebSockets: growth of the proxy's resident memory (VmRSS, all
    /// its processes) per open connection, in KiB; 0 elsewhere.
    pub rss_kib_per_conn: f64,
    /// Idle WebSockets open at the end of the run; 0 elsewhere.
    pub ws_open: f64,
    /// Time the hypervisor ran something else in the measured window, on
    /// the CPU of the run (proxy, load generator or backend) it took most
    /// from, in ms (/proc/stat's steal, in 10 ms ticks); 0 on bare metal.
    pub steal_ms: f64,
}

/// The figures a ratio is taken of, with how they are named and whether
/// lower is better.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
    pub get: fn(&Figures) -> f64,
}

pub const RATIO_FIGURES: [Figure; 6] = [
    Figure {
        key: "cpu_us_per_request",
        label: "CPU µs/req",
        get: |f| f.cpu_us_per_request,
    },
    Figure {
        key: "requests_per_sec",
        label: "requests/s",
        get: |f| f.requests_per_sec,
    },
    Figure {
        key: "p99_us",
        label: "p99",
        get: |f| f.p99_us,
    },
    Figure {
        key: "peak_rss_mib",
        label: "peak RSS",
        get: |f| f.peak_rss_mib,
    },
    Figure {
        key: "per_cpu_second",
        label: "work/CPU-s",
        get: |f| f.per_cpu_second,
    },
    Figure {
        key: "rss_kib_per_conn",
        label: "RSS/conn",
        get: |f| f.rss_kib_per_conn,
    },
];

/// All repetitions of one proxy in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub scenario: &'static str,
    pub proxy: ProxyKind,
    pub median: Figures,
    pub samples: Vec<Figures>,
    /// The repetition each of `samples` came from, counted from 0: a
    /// repetition that failed has none, and ratios pair the samples of two
    /// proxies by it (`interval`).
    pub reps: Vec<usize>,
    /// Why there are no figures: every repetition failed (the last error),
    /// or the proxy does not apply to the scenario.
    pub failure: Option<String>,
}

impl Cell {
    /// A row of the runs that succeeded, each with its repetition.
    pub fn new(scenario: &'static str, proxy: ProxyKind, runs: Vec<(usize, Figures)>) -> Self {
        let (reps, samples): (Vec<usize>, Vec<Figures>) = runs.into_iter().unzip();
        Cell {
            scenario,
            proxy,
            median: median(&samples),
            samples,
            reps,
            failure: None,
        }
    }

    /// A row without figures, saying why.
    pub fn failed(scenario: &'static str, proxy: ProxyKind, failure: String) -> Self {
        Cell {
            scenario,
            proxy,
            median: Figures::default(),
            samples: Vec::new(),
            reps: Vec::new(),
            failure: Some(failure),
        }
    }
}

/// ringway's figure divided by another proxy's, in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub scenario: &'static str,
    pub figure: &'static str,
    pub label: &'static str,
    pub versus: ProxyKind,
    pub ratio: f64,
    /// Where the ratio lies with 90 % confidence, by a bootstrap over the
    /// repetitions (`interval`); `None` with fewer than three of them.
    pub interval: Option<(f64, f64)>,
}

/// Each figure's median on its own (the run with the median rate need not
/// have the median CPU time).
pub fn median(samples: &[Figures]) -> Figures {
    let of = |get: fn(&Figures) -> f64| {
        let mut values: Vec<f64> = samples.iter().map(get).collect();
        interval::median(&mut values)
    };
    Figures {
        requests_per_sec: of(|f| f.requests_per_sec),
        p50_us: of(|f| f.p50_us),
        p99_us: of(|f| f.p99_us),
        cpu_us_per_request: of(|f| f.cpu_us_per_request),
        user_us_per_request: of(|f| f.user_us_per_request),
        peak_rss_mib: of(|f| f.peak_rss_mib),
        errors: of(|f| f.errors),
        per_cpu_second: of(|f| f.per_cpu_second),
        rss_kib_per_conn: of(|f| f.rss_kib_per_conn),
        ws_open: of(|f| f.ws_open),
        steal_ms: of(|f| f.steal_ms),
    }
}

/// ringway ÷ nginx, ringway ÷ floor and ringway ÷ HTTP floor for every
/// scenario and ratio figure where both sides were measured and the divisor
/// is not zero.
pub fn ratios(cells: &[Cell]) -> Vec<Ratio> {
    let find = |scenario: &str, proxy| {
        cells
            .iter()
            .find(|cell| cell.scenario == scenario && cell.proxy == proxy)
    };
    let mut out = Vec::new();
    for cell in cells
        .iter()
        .filter(|cell| cell.proxy == ProxyKind::Ringway && cell.failure.is_none())
    {
        for versus in [ProxyKind::Nginx, ProxyKind::Floor, ProxyKind::HttpFloor] {
            let Some(other) = find(cell.scenario, versus).filter(|c| c.failure.is_none()) else {
                continue;
            };
            for figure in RATIO_FIGURES {
                let divisor = (figure.get)(&other.median);
                if divisor > 0.0 {
                    let values = |c: &Cell| {
                        let figures = c.samples.iter().map(figure.get);
                        c.reps.iter().copied().zip(figures).collect::<Vec<_>>()
                    };
                    out.push(Ratio {
                        scenario: cell.scenario,
                        figure: figure.key,
                        label: figure.label,
                        versus,
                        ratio: (figure.get)(&cell.median) / divisor,
                        interval: ratio_interval(&values(cell), &values(other)),
                    });
                }
            }
        }
    }
    out
}

/// The figures table, then the ratio table.
pub fn markdown(scenarios: &[&'static str], cells: &[Cell], ratios: &[Ratio]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "| scenario | proxy | requests/s | p50 | p99 | proxy CPU µs/req | of it user | per proxy CPU-s | RSS/conn | peak RSS | errors | host steal |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let optional = |value: f64, unit: &str| {
        if value > 0.0 {
            format!("{value:.1}{unit}")
        } else {
            "—".to_owned()
        }
    };
    for scenario in scenarios {
        for cell in cells.iter().filter(|cell| cell.scenario == *scenario) {
            if let Some(failure) = &cell.failure {
                let _ = writeln!(
                    out,
                    "| {scenario} | {} | {} | — | — | — | — | — | — | — | — | — |",
                    cell.proxy.name(),
                    failure.replace('|', "/").replace('\n', " ")
                );
                continue;
            }
            let m = &cell.median;
            let _ = writeln!(
                out,
                "| {scenario} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {} | {} | {:.1} MiB | {:.0} | {:.0} ms |",
                cell.proxy.name(),
                m.requests_per_sec,
                crate::report::format_micros(m.p50_us),
                crate::report::format_micros(m.p99_us),
                m.cpu_us_per_request,
                m.user_us_per_request,
                optional(m.per_cpu_second, ""),
                optional(m.rss_kib_per_conn, " KiB"),
                m.peak_rss_mib,
                m.errors,
                m.steal_ms,
            );
        }
    }
    if ratios.is_empty() {
        return out;
    }
    // The HTTP floor's column only when it ran.
    let http_floor = ratios.iter().any(|r| r.versus == ProxyKind::HttpFloor);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| scenario | figure | ringway ÷ nginx | ringway ÷ floor |{}",
        if http_floor {
            " ringway ÷ HTTP floor |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|{}",
        if http_floor { "---:|" } else { "" }
    );
    let show = |scenario: &str, figure: &str, versus| {
        ratios
            .iter()
            .find(|r| r.scenario == scenario && r.figure == figure && r.versus == versus)
            .map_or_else(|| "—".to_owned(), format_ratio)
    };
    for scenario in scenarios {
        for figure in RATIO_FIGURES {
            let nginx = show(scenario, figure.key, ProxyKind::Nginx);
            let floor = show(scenario, figure.key, ProxyKind::Floor);
            let http = show(scenario, figure.key, ProxyKind::HttpFloor);
            if nginx != "—" || floor != "—" || http != "—" {
                let _ = write!(out, "| {scenario} | {} | {nginx} | {floor} |", figure.label);
                if http_floor {
                    let _ = write!(out, " {http} |");
                }
                let _ = writeln!(out);
            }
        }
    }
    if ratios.iter().any(|r| r.interval.is_some()) {
        let _ = writeln!(
            out,
            "\nRatios of the medians; in brackets where the ratio lies with {:.0} % confidence (a bootstrap over the repetitions, paired by repetition).",
            interval::LEVEL * 100.0
        );
    }
    out
}

/// "0.94", or "0.94 (0.89–1.01)" with the 90 % interval when there is one.
pub fn format_ratio(ratio: &Ratio) -> String {
    match ratio.interval {
        Some((low, high)) => format!("{:.2} ({low:.2}–{high:.2})", ratio.ratio),
        None => format!("{:.2}", ratio.ratio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of repetitions 0, 1, 2, ..., none failed.
    fn cell(scenario: &'static str, proxy: ProxyKind, samples: Vec<Figures>) -> Cell {
        Cell::new(scenario, proxy, samples.into_iter().enumerate().collect())
    }
    fn figures(rate: f64, cpu: f64) -> Figures {
        Figures {
            requests_per_sec: rate,
            p50_us: 100.0,
            p99_us: 400.0,
            cpu_us_per_request: cpu,
            user_us_per_request: cpu / 4.0,
            peak_rss_mib: 10.0,
            errors: 0.0,
            per_cpu_second: 0.0,
            rss_kib_per_conn: 0.0,
            ws_open: 0.0,
            steal_ms: 0.0,
        }
    }

    #[test]
    fn medians_are_taken_per_figure() {
        let m = median(&[figures(1.0, 30.0), figures(3.0, 10.0), figures(2.0, 20.0)]);
        assert_eq!((m.requests_per_sec, m.cpu_us_per_request), (2.0, 20.0));
        let even = median(&[figures(1.0, 10.0), figures(4.0, 20.0)]);
        assert_eq!(even.requests_per_sec, 2.5);
        assert_eq!(median(&[]), Figures::default());
    }

    #[test]
    fn ratios_divide_ringway_by_each_other_proxy() {
        let cells = vec![
            cell("ka", ProxyKind::Ringway, vec![figures(100.0, 9.0)]),
            cell("ka", ProxyKind::Nginx, vec![figures(80.0, 12.0)]),
            cell("ka", ProxyKind::Floor, vec![figures(125.0, 7.5)]),
        ];
        let ratios = ratios(&cells);
        let find = |figure: &str, versus| {
            ratios
                .iter()
                .find(|r| r.figure == figure && r.versus == versus)
                .unwrap()
                .ratio
        };
        assert_eq!(find("cpu_us_per_request", ProxyKind::Nginx), 0.75);
        assert_eq!(find("cpu_us_per_request", ProxyKind::Floor), 1.2);
        assert_eq!(find("requests_per_sec", ProxyKind::Nginx), 1.25);
        assert_eq!(ratios.len(), 8);
        let table = markdown(&["ka"], &cells, &ratios);
        assert!(
            table.contains(
                "| ka | ringway | 100 | 100.00us | 400.00us | 9.00 | 2.25 | — | — | 10.0 MiB | 0 | 0 ms |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| ka | CPU µs/req | 0.75 | 1.20 |"),
            "{table}"
        );
    }

    #[test]
    fn the_http_floor_gets_a_column_only_when_it_ran() {
        let mut cells = vec![
            cell("ka", ProxyKind::Ringway, vec![figures(100.0, 9.0)]),
            cell("ka", ProxyKind::Floor, vec![figures(125.0, 7.5)]),
        ];
        let table = markdown(&["ka"], &cells, &ratios(&cells));
        assert!(
            table.contains("| ka | CPU µs/req | — | 1.20 |\n"),
            "{table}"
        );
        cells.push(cell("ka", ProxyKind::HttpFloor, vec![figures(110.0, 8.0)]));
        let table = markdown(&["ka"], &cells, &ratios(&cells));
        assert!(
            table.contains("| ringway ÷ floor | ringway ÷ HTTP floor |\n"),
            "{table}"
        );
        assert!(
            table.contains("| ka | CPU µs/req | — | 1.20 | 1.12 |\n"),
            "{table}"
        );
        assert!(table.contains("| ka | http-floor | 110 |"), "{table}");
    }

    #[test]
    fn ratios_of_three_or_more_repetitions_carry_their_interval() {
        let cells = vec![
            cell(
                "ka",
                ProxyKind::Ringway,
                vec![
                    figures(100.0, 9.0),
                    figures(100.0, 9.0),
                    figures(100.0, 9.0),
                ],
            ),
            cell(
                "ka",
                ProxyKind::Floor,
                vec![
                    figures(125.0, 7.5),
                    figures(125.0, 7.5),
                    figures(125.0, 7.5),
                ],
            ),
        ];
        let ratios = ratios(&cells);
        let cpu = ratios
            .iter()
            .find(|r| r.figure == "cpu_us_per_request")
            .unwrap();
        assert_eq!(cpu.interval, Some((1.2, 1.2)));
        let table = markdown(&["ka"], &cells, &ratios);
        assert!(
            table.contains("| ka | CPU µs/req | — | 1.20 (1.20–1.20) |\n"),
            "{table}"
        );
        assert!(table.contains("90 % confidence"), "{table}");
        // One repetition: the ratio alone, and no footnote.
        let single = vec![
            cell("ka", ProxyKind::Ringway, vec![figures(100.0, 9.0)]),
            cell("ka", ProxyKind::Floor, vec![figures(125.0, 7.5)]),
        ];
        let table = markdown(&["ka"], &single, &super::ratios(&single));
        assert!(
            table.contains("| ka | CPU µs/req | — | 1.20 |\n"),
            "{table}"
        );
        assert!(!table.contains("confidence"), "{table}");
    }

    #[test]
    fn missing_proxies_leave_no_ratio() {
        let cells = vec![cell("ka", ProxyKind::Ringway, vec![figures(100.0, 9.0)])];
        assert!(ratios(&cells).is_empty());
        assert!(!markdown(&["ka"], &cells, &[]).contains("ringway ÷"));
        let failed = vec![
            Cell::failed("tls", ProxyKind::Ringway, "exited at start".into()),
            cell("tls", ProxyKind::Nginx, vec![figures(80.0, 12.0)]),
        ];
        assert!(ratios(&failed).is_empty());
        let table = markdown(&["tls"], &failed, &[]);
        assert!(
            table.contains("| tls | ringway | exited at start | — |"),
            "{table}"
        );
    }
}
