//! A horizontal bar chart of ringway's ratios, written as plain SVG: one
//! row per scenario and figure, one bar per baseline (nginx, floor), and a
//! line at 1.0 where ringway equals the baseline. Below 1 ringway uses less
//! (CPU, p99, memory) or serves less (requests/s). A whisker across a
//! bar's end spans the ratio's 90 % interval where there is one.

use std::fmt::Write as _;

use super::proxy::ProxyKind;
use super::summary::{RATIO_FIGURES, Ratio};

const WIDTH: f64 = 920.0;
const LABEL_WIDTH: f64 = 300.0;
const PLOT_WIDTH: f64 = 540.0;
const TOP: f64 = 70.0;
const ROW: f64 = 30.0;
const BAR: f64 = 11.0;
const BASELINES: [(ProxyKind, &str); 2] =
    [(ProxyKind::Nginx, "#2b6cb0"), (ProxyKind::Floor, "#a0aec0")];

pub fn chart(title: &str, scenarios: &[&'static str], ratios: &[Ratio]) -> String {
    // The chart draws ringway against its two baselines; ratios to the HTTP
    // floor stay in the tables.
    let drawn: Vec<Ratio> = ratios
        .iter()
        .filter(|r| BASELINES.iter().any(|&(kind, _)| kind == r.versus))
        .cloned()
        .collect();
    let ratios = &drawn[..];
    let rows: Vec<(&str, &str, &str)> = scenarios
        .iter()
        .flat_map(|scenario| {
            RATIO_FIGURES
                .iter()
                .map(move |f| (*scenario, f.key, f.label))
        })
        .filter(|(scenario, key, _)| {
            ratios
                .iter()
                .any(|r| r.scenario == *scenario && r.figure == *key)
        })
        .collect();
    // The axis ends on a half step past the largest ratio, at least at 2;
    // an interval reaching past it is cut at its end (one stalled
    // repetition can put an interval's top at 40).
    let largest = ratios.iter().map(|r| r.ratio).fold(0.0, f64::max);
    let x_max = ((largest * 1.1) / 0.5).ceil().max(4.0) * 0.5;
    let x = |value: f64| LABEL_WIDTH + value / x_max * PLOT_WIDTH;
    let height = TOP + ROW * rows.len() as f64 + 40.0;

    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (index, (proxy, color)) in BASELINES.iter().enumerate() {
        let lx = LABEL_WIDTH + index as f64 * 170.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="34" width="12" height="12" fill="{color}"/><text x="{}" y="44">ringway ÷ {}</text>"#,
            lx + 18.0,
            proxy.name()
        );
    }
    if ratios.iter().any(|r| r.interval.is_some()) {
        let lx = LABEL_WIDTH + BASELINES.len() as f64 * 170.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx}" y1="40" x2="{}" y2="40" stroke="#1a202c"/><text x="{}" y="44">90 % interval</text>"##,
            lx + 12.0,
            lx + 18.0
        );
    }
    let mut tick = 0.0;
    while tick <= x_max + 1e-9 {
        let tx = x(tick);
        let stroke = if (tick - 1.0).abs() < 1e-9 {
            "#c53030"
        } else {
            "#e2e8f0"
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{:.1}" stroke="{stroke}"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{tick:.1}</text>"#,
            height - 35.0,
            height - 20.0
        );
        tick += 0.5;
    }
    for (row, (scenario, key, label)) in rows.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} · {}</text>"#,
            LABEL_WIDTH - 8.0,
            y + ROW / 2.0 + 4.0,
            escape(scenario),
            escape(label)
        );
        for (index, (proxy, color)) in BASELINES.iter().enumerate() {
            let Some(ratio) = ratios
                .iter()
                .find(|r| r.scenario == *scenario && r.figure == *key && r.versus == *proxy)
            else {
                continue;
            };
            let by = y + 4.0 + index as f64 * BAR;
            let end = x(ratio.ratio);
            let _ = write!(
                svg,
                r#"<rect x="{LABEL_WIDTH}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                end - LABEL_WIDTH,
                BAR - 1.0,
            );
            // The 90 % interval as a whisker across the bar's end; one cut
            // at the axis's end says where it really ends.
            let mut label_at = end;
            let mut cut = String::new();
            if let Some((low, high)) = ratio.interval {
                let wy = by + (BAR - 1.0) / 2.0;
                let _ = write!(
                    svg,
                    r##"<line class="interval" x1="{:.1}" y1="{wy:.1}" x2="{:.1}" y2="{wy:.1}" stroke="#1a202c"/>"##,
                    x(low.min(x_max)),
                    x(high.min(x_max))
                );
                label_at = label_at.max(x(high.min(x_max)));
                if high > x_max {
                    cut = format!(" →{high:.1}");
                }
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">{:.2}{cut}</text>"#,
                label_at + 4.0,
                by + BAR - 2.0,
                ratio.ratio
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(figure: &'static str, versus: ProxyKind, ratio: f64) -> Ratio {
        let label = RATIO_FIGURES
            .iter()
            .find(|f| f.key == figure)
            .unwrap()
            .label;
        Ratio {
            scenario: "keep-alive 100 B",
            figure,
            label,
            versus,
            ratio,
            interval: None,
        }
    }

    #[test]
    fn one_row_per_figure_and_one_bar_per_ratio() {
        let ratios = [
            ratio("cpu_us_per_request", ProxyKind::Nginx, 0.8),
            ratio("cpu_us_per_request", ProxyKind::Floor, 1.1),
            ratio("requests_per_sec", ProxyKind::Nginx, 1.3),
        ];
        let svg = chart("a < b", &["keep-alive 100 B"], &ratios);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b"));
        assert_eq!(svg.matches("keep-alive 100 B · ").count(), 2);
        // Two legend squares, then one bar per ratio.
        assert_eq!(svg.matches("<rect x=").count(), 2 + 3);
        assert!(svg.contains(">0.80</text>") && svg.contains(">1.30</text>"));
        // The axis runs 0 to 2 in half steps, 1.0 drawn in red.
        assert!(svg.contains(">2.0</text>") && !svg.contains(">2.5</text>"));
        assert_eq!(svg.matches("#c53030").count(), 1);
        assert!(!svg.contains("interval"));
    }

    #[test]
    fn ratios_to_the_http_floor_are_not_drawn() {
        let ratios = [
            ratio("cpu_us_per_request", ProxyKind::Floor, 1.1),
            ratio("cpu_us_per_request", ProxyKind::HttpFloor, 1.4),
            ratio("requests_per_sec", ProxyKind::HttpFloor, 9.0),
        ];
        let svg = chart("t", &["keep-alive 100 B"], &ratios);
        // One row (CPU), one bar (the floor's); the axis ignores 9.0.
        assert_eq!(svg.matches("keep-alive 100 B · ").count(), 1);
        assert_eq!(svg.matches("<rect x=").count(), 2 + 1);
        assert!(!svg.contains(">1.40</text>") && !svg.contains(">2.5</text>"));
    }

    #[test]
    fn intervals_are_drawn_as_whiskers_cut_at_the_axis() {
        let mut with = ratio("cpu_us_per_request", ProxyKind::Floor, 1.0);
        with.interval = Some((0.9, 1.5));
        let mut wide = ratio("p99_us", ProxyKind::Floor, 1.2);
        wide.interval = Some((0.4, 44.37));
        let without = ratio("cpu_us_per_request", ProxyKind::Nginx, 0.6);
        let svg = chart("t", &["keep-alive 100 B"], &[with, wide, without]);
        assert_eq!(svg.matches(r#"<line class="interval""#).count(), 2);
        assert!(svg.contains(">90 % interval</text>"));
        // The axis still runs to 2.0: x(0.9) and x(1.5) as they are...
        assert!(svg.contains(">2.0</text>") && !svg.contains(">2.5</text>"));
        assert!(
            svg.contains(r#"x1="543.0""#) && svg.contains(r#"x2="705.0""#),
            "{svg}"
        );
        // ...and the wide one cut at x(2.0), its end given in the label.
        assert!(
            svg.contains(r#"x2="840.0""#) && svg.contains(">1.20 →44.4</text>"),
            "{svg}"
        );
        assert!(svg.contains(">1.00</text>"), "{svg}");
    }

    #[test]
    fn the_axis_grows_with_the_largest_ratio() {
        let svg = chart(
            "t",
            &["keep-alive 100 B"],
            &[ratio("p99_us", ProxyKind::Nginx, 3.0)],
        );
        assert!(svg.contains(">3.5</text>") && !svg.contains(">4.0</text>"));
    }
}
