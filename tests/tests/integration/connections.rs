//! Connections under load and abuse: many clients at once on one worker, clients that
//! vanish mid-upload, and the bound on idle upstream connections (DESIGN.md §2 `keepalive`,
//! §4: nothing may corrupt another connection).

use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::{
    Driver, LISTEN, Ringway, TEST_LIMITS, backend, both_drivers, proxy_config, pseudo_random_body,
    request,
};

both_drivers!(
    concurrent_clients_never_see_each_others_bodies,
    client_abort_mid_upload_leaves_the_proxy_serving,
    upstream_pool_keeps_at_most_keepalive_idle_connections,
);

fn concurrent_clients_never_see_each_others_bodies(driver: Driver) {
    let backend = backend::echo_backend();
    let limits = r#"header_timeout = "3s"
max_body_size = "1MiB""#;
    let proxy = Ringway::start(&proxy_config(backend.addr(), limits), driver);
    thread::scope(|scope| {
        for client_id in 0..8u64 {
            let proxy = &proxy;
            scope.spawn(move || {
                let mut client = proxy.connect();
                for i in 0..20u64 {
                    let len =
                        usize::try_from((client_id * 7919 + i * 104_729) % 200_000).unwrap_or(0);
                    let body = pseudo_random_body(len, client_id << 32 | i);
                    let target = format!("/client/{client_id}/{i}");
                    let raw = if i % 3 == 0 {
                        let pieces: Vec<&[u8]> = body.chunks(10_000).collect();
                        request::chunked("POST", &target, &[], &pieces)
                    } else {
                        request::with_body("POST", &target, &[], &body)
                    };
                    let resp = client.roundtrip(&raw);
                    assert_eq!(resp.status, 200, "{target}");
                    assert_eq!(resp.header("x-echo-target"), Some(target.as_str()));
                    assert!(
                        resp.body == body,
                        "{target}: got another body ({} bytes)",
                        resp.body.len()
                    );
                }
            });
        }
    });
    assert_eq!(backend.request_count(), 160);
}

fn client_abort_mid_upload_leaves_the_proxy_serving(driver: Driver) {
    let backend = backend::echo_backend();
    let proxy = Ringway::start(&proxy_config(backend.addr(), TEST_LIMITS), driver);
    for round in 0..3 {
        let mut client = proxy.connect();
        let mut partial =
            b"POST /aborted HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100000\r\n\r\n"
                .to_vec();
        partial.extend(pseudo_random_body(30_000, round));
        client.send(&partial).expect("send part of the body");
        thread::sleep(Duration::from_millis(100));
        drop(client);
        let resp = proxy.connect().roundtrip(&request::get("/next"));
        assert_eq!(resp.status, 200, "round {round}");
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        ["/next", "/next", "/next"],
        "an aborted upload reached the upstream whole"
    );
}

fn upstream_pool_keeps_at_most_keepalive_idle_connections(driver: Driver) {
    let backend = backend::slow_head_backend(Duration::from_millis(300));
    let config = format!(
        r#"[log]
access = "off"
[upstreams.app]
servers = ["{}"]
keepalive = 2
[[server]]
listen = ["{LISTEN}"]
  [[server.route]]
  prefix = "/"
  proxy = "app"
"#,
        backend.addr()
    );
    let proxy = Ringway::start(&config, driver);
    let burst = |name: &str| {
        // Six requests at once need six upstream connections.
        thread::scope(|scope| {
            for i in 0..6 {
                let proxy = &proxy;
                scope.spawn(move || {
                    let target = format!("/{name}/{i}");
                    let resp = proxy.connect().roundtrip(&request::get(&target));
                    assert_eq!(resp.body_text(), target);
                });
            }
        });
    };
    burst("burst");
    assert_eq!(backend.connections(), 6);
    // The surplus over keepalive stays while it is reused (SURPLUS_IDLE, 1 s):
    // a second burst right after the first opens no connection.
    burst("again");
    assert_eq!(
        backend.connections(),
        6,
        "a burst right after another reconnected instead of reusing the idle connections"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while backend.open_connections() > 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        backend.open_connections() <= 2,
        "{} upstream connections still open with keepalive = 2",
        backend.open_connections()
    );
    let resp = proxy.connect().roundtrip(&request::get("/after-burst"));
    assert_eq!(resp.body_text(), "/after-burst");
    assert_eq!(
        backend.connections(),
        6,
        "an idle pooled connection is reused"
    );
}
