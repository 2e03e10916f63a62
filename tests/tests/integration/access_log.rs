//! The access log (DESIGN.md §2 `[log]`): one line per request, combined format on stdout
//! or JSON in a file, whatever bytes the client put in its fields.

use std::time::{Duration, Instant};

use ringway_tests::proxy::TempDir;
use ringway_tests::{Driver, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request};

both_drivers!(
    access_log_has_a_line_per_request,
    access_log_in_json_to_a_file,
    request_time_covers_a_slow_upstream,
);

/// ringway in front of `backend`, its access log in JSON in `access.json` of
/// the directory returned.
fn with_json_log(backend: &backend::Backend, driver: Driver) -> (Ringway, TempDir) {
    let log_dir = TempDir::new();
    let log_file = log_dir.path().join("access.json");
    let config = proxy_config(backend.addr(), TEST_LIMITS).replace(
        "access = \"stdout\"",
        &format!(
            "access = \"{}\"\naccess_format = \"json\"",
            log_file.display()
        ),
    );
    (Ringway::start(&config, driver), log_dir)
}

fn access_log_has_a_line_per_request(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    let mut client = proxy.connect();
    assert_eq!(client.roundtrip(&request::get("/logged-get")).status, 200);
    let post = request::with_body("POST", "/logged-post", &[], b"12345");
    assert_eq!(client.roundtrip(&post).status, 200);
    drop(client);
    let exited = proxy.stop();
    assert!(
        exited.status.success(),
        "SIGTERM must drain and exit 0, got {}",
        exited.status
    );
    for line in [
        "\"GET /logged-get HTTP/1.1\" 200 ",
        "\"POST /logged-post HTTP/1.1\" 200 5 ",
    ] {
        assert_eq!(
            exited.stdout.matches(line).count(),
            1,
            "access log must have exactly one line with {line:?}; log:\n{}",
            exited.stdout
        );
    }
}

fn access_log_in_json_to_a_file(driver: Driver) {
    let backend = backend::echo_backend();
    let (proxy, log_dir) = with_json_log(&backend, driver);
    let log_file = log_dir.path().join("access.json");
    let mut client = proxy.connect();
    // A User-Agent with quotes, a backslash and obs-text (bytes >= 0x80, legal in field
    // values, RFC 9110 §5.5) must not break the JSON line.
    let mut raw =
        b"GET /json?a=\"b\" HTTP/1.1\r\nHost: test.local\r\nUser-Agent: say \"hi\" \\ ".to_vec();
    raw.extend_from_slice(&[0xe9, 0xff]);
    raw.extend_from_slice(b"\r\nReferer: http://ref.test/\r\n\r\n");
    let resp = client.roundtrip(&raw);
    assert_eq!(resp.status, 200);
    drop(client);
    let exited = proxy.stop();
    assert!(
        exited.stdout.is_empty(),
        "access log went to stdout: {}",
        exited.stdout
    );
    let text = std::fs::read(&log_file).expect("the access log file exists");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line per request:\n{}",
        String::from_utf8_lossy(&text)
    );
    let entry: serde_json::Value = serde_json::from_slice(lines[0])
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(lines[0])));
    let values = entry.to_string();
    assert!(values.contains("200"), "no status in {entry}");
    assert!(values.contains("/json?a=\\\"b\\\""), "no target in {entry}");
    assert!(values.contains("http://ref.test/"), "no referer in {entry}");
    assert!(
        values.contains("say \\\"hi\\\" \\\\"),
        "no user agent in {entry}"
    );
}

/// The worker reads its clock once per pass of its event loop: a request that
/// spans passes (the upstream answers 300 ms later) is timed from the pass
/// its head arrived in to the pass its response went out in.
fn request_time_covers_a_slow_upstream(driver: Driver) {
    let delay = Duration::from_millis(300);
    let backend = backend::slow_head_backend(delay);
    let (proxy, log_dir) = with_json_log(&backend, driver);
    let log_file = log_dir.path().join("access.json");
    let mut client = proxy.connect();
    let mut took = Vec::new();
    for path in ["/first", "/second"] {
        let sent = Instant::now();
        assert_eq!(client.roundtrip(&request::get(path)).status, 200);
        took.push(sent.elapsed());
        // Idle between requests: the next one is timed from its own arrival.
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(client);
    assert!(proxy.stop().status.success());
    let text = std::fs::read_to_string(&log_file).expect("the access log file exists");
    let times: Vec<f64> = text
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            entry["request_time"]
                .as_f64()
                .expect("request_time is a number")
        })
        .collect();
    assert_eq!(times.len(), 2, "one line per request:\n{text}");
    for (time, took) in times.iter().zip(&took) {
        assert!(
            *time >= delay.as_secs_f64() - 0.001 && *time <= took.as_secs_f64() + 0.001,
            "request_time {time} must cover the upstream's {delay:?} and not exceed the \
             {took:?} the client waited; log:\n{text}"
        );
    }
}
