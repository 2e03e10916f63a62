use super::*;

fn sample_totals() -> Totals {
    let mut totals = Totals::default();
    for us in [40, 50, 60, 1_500] {
        totals.histogram.record(Duration::from_micros(us));
    }
    totals.requests = 4_000;
    totals.bytes_read = 3 * 1024 * 1024;
    totals.errors.count(ErrorKind::Status);
    totals.errors.count(ErrorKind::Status);
    totals.errors.count(ErrorKind::Timeout);
    totals
}

fn sample_report() -> Report {
    let shape = RunShape {
        url: "http://127.0.0.1:9000/".into(),
        mode: Mode::Http,
        tls: false,
        threads: 1,
        connections: 64,
        driver: Driver::IoUring,
        keep_alive: true,
        warmup: Duration::from_secs(1),
        rate: None,
    };
    Report::new(shape, &sample_totals(), Duration::from_secs(2))
}

#[test]
fn formats_latencies_like_wrk() {
    assert_eq!(format_micros(45.123), "45.12us");
    assert_eq!(format_micros(999.994), "999.99us");
    assert_eq!(format_micros(1_234.0), "1.23ms");
    assert_eq!(format_micros(2_000_000.0), "2.00s");
}

#[test]
fn formats_sizes_in_binary_units() {
    assert_eq!(format_bytes(512.0), "512.00B");
    assert_eq!(format_bytes(1536.0), "1.50KiB");
    assert_eq!(format_bytes(15.0 * 1024.0 * 1024.0), "15.00MiB");
    assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.00GiB");
}

#[test]
fn rates_are_per_second_of_the_measured_window() {
    let report = sample_report();
    assert_eq!(report.requests_per_sec, 2_000.0);
    assert_eq!(report.bytes_per_sec, 1.5 * 1024.0 * 1024.0);
    assert_eq!(report.errors.total(), 3);
    let empty = Report::new(
        RunShape {
            warmup: Duration::ZERO,
            ..shape_of(&report)
        },
        &Totals::default(),
        Duration::ZERO,
    );
    assert_eq!(empty.requests_per_sec, 0.0);
}

fn shape_of(report: &Report) -> RunShape {
    RunShape {
        url: report.url.clone(),
        mode: report.mode,
        tls: report.tls,
        threads: report.threads,
        connections: report.connections,
        driver: report.driver,
        keep_alive: report.keep_alive,
        warmup: Duration::from_secs_f64(report.warmup_s),
        rate: report.rate,
    }
}

#[test]
fn text_summary_has_every_figure() {
    let text = sample_report().to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Running 2.00s test @ http://127.0.0.1:9000/");
    assert_eq!(
        lines[1],
        "  1 threads and 64 connections, keep-alive, io_uring driver"
    );
    assert!(lines[2].starts_with("  Latency"), "{}", lines[2]);
    for (label, value) in ["p50", "p90", "p99", "p99.9", "max"]
        .iter()
        .zip(["50.02us", "1.50ms"])
    {
        assert!(lines[2].contains(label));
        assert!(lines[3].contains(value), "{} lacks {value}", lines[3]);
    }
    assert_eq!(
        lines[4],
        "  4000 requests in 2.00s, 3.00MiB read, 0.00B written"
    );
    assert_eq!(
        lines[5],
        "  Errors: connect 0, tls 0, io 0, timeout 1, status 2, protocol 0"
    );
    assert_eq!(lines[6], "Requests/sec: 2000.00");
    assert_eq!(lines[7], "Transfer/sec: 1.50MiB");
    assert_eq!(lines.len(), 8);
}

#[test]
fn json_carries_the_same_figures() {
    let report = sample_report();
    let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(value["url"], "http://127.0.0.1:9000/");
    assert_eq!(value["driver"], "io_uring");
    assert_eq!(value["requests"], 4_000);
    assert_eq!(value["requests_per_sec"], 2_000.0);
    assert_eq!(value["bytes_read"], 3 * 1024 * 1024);
    assert_eq!(value["errors"]["status"], 2);
    assert_eq!(value["errors"]["timeout"], 1);
    assert_eq!(
        value["latency_us"]["p50"].as_f64(),
        Some(report.latency_us.p50)
    );
    assert!(value["latency_us"]["max"].as_f64().unwrap() >= 1_499.0);
}

#[test]
fn totals_merge_sums_threads() {
    let mut all = sample_totals();
    all.merge(&sample_totals());
    assert_eq!(all.requests, 8_000);
    assert_eq!(all.histogram.count(), 8);
    assert_eq!(
        all.errors,
        ErrorCounts {
            status: 4,
            timeout: 2,
            ..ErrorCounts::default()
        }
    );
}

#[test]
fn open_loop_runs_say_so() {
    let report = Report::new(
        RunShape {
            rate: Some(5_000.0),
            ..shape_of(&sample_report())
        },
        &sample_totals(),
        Duration::from_secs(2),
    );
    assert!(
        report.to_text().contains(
            "open loop at 5000 requests/s, latency from each request's scheduled send time"
        )
    );
    assert!(report.to_json().contains("\"rate\":5000.0"));
    assert!(sample_report().to_json().contains("\"rate\":null"));
}

#[test]
fn websocket_runs_report_messages_both_ways_and_open_connections() {
    let mut totals = sample_totals();
    totals.bytes_written = 2 * 1024 * 1024;
    totals.ws_open = 7;
    let echo = Report::new(
        RunShape {
            mode: Mode::WsEcho { msg_size: 1024 },
            tls: true,
            ..shape_of(&sample_report())
        },
        &totals,
        Duration::from_secs(2),
    );
    let text = echo.to_text();
    assert!(
        text.contains("TLS, WebSocket echo of 1.00KiB messages"),
        "{text}"
    );
    assert!(text.contains("Messages/sec: 2000.00"), "{text}");
    assert!(
        text.contains("Sent/sec: 1.00MiB  Received/sec: 1.50MiB"),
        "{text}"
    );
    assert_eq!(echo.ws_open_at_end, None);
    let idle = Report::new(
        RunShape {
            mode: Mode::WsIdle,
            ..shape_of(&sample_report())
        },
        &totals,
        Duration::from_secs(2),
    );
    assert_eq!(idle.ws_open_at_end, Some(7));
    assert!(idle.to_text().contains("Open at end: 7 of 64 connections"));
    assert!(idle.to_json().contains("\"ws_open_at_end\":7"));
}
