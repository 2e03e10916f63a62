//! The access log (DESIGN.md §2 `[log]`): one line per request, combined format on stdout
//! or JSON in a file, whatever bytes the client put in its fields.

use ringway_tests::{Driver, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, request};

both_drivers!(
    access_log_has_a_line_per_request,
    access_log_in_json_to_a_file,
);

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
    let log_dir = ringway_tests::proxy::TempDir::new();
    let log_file = log_dir.path().join("access.json");
    let config = proxy_config(backend.addr(), TEST_LIMITS).replace(
        "access = \"stdout\"",
        &format!(
            "access = \"{}\"\naccess_format = \"json\"",
            log_file.display()
        ),
    );
    let proxy = Ringway::start(&config, driver);
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
