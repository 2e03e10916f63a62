//! The admin endpoint (issue 7): `/metrics` in Prometheus text format whose
//! counters match the traffic sent, `/healthz`, `POST /reload`; never
//! reachable through a proxy listener.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use ringway_tests::backend::{self, Backend};
use ringway_tests::http::HttpStream;
use ringway_tests::message::Response;
use ringway_tests::proxy::free_addr;
use ringway_tests::{Driver, Ringway, both_drivers, request};

fn config(backend: &Backend, admin: SocketAddr, app_prefix: &str) -> String {
    format!(
        "[log]\naccess = \"off\"\n\
         [admin]\nlisten = \"{admin}\"\n\
         [upstreams.app]\nservers = [\"{}\"]\n\
         [[server]]\nlisten = [\"@LISTEN@\"]\nnames = [\"shop.test\"]\n\
         [[server.route]]\nprefix = \"{app_prefix}\"\nproxy = \"app\"\n\
         [[server.route]]\nprefix = \"/private\"\ndeny = [\"0.0.0.0/0\", \"::/0\"]\nrespond = 200\n",
        backend.addr()
    )
}

fn admin_request(admin: SocketAddr, raw: &[u8]) -> Response {
    let stream = TcpStream::connect(admin).expect("connect to the admin endpoint");
    let mut client = HttpStream::client(stream, Duration::from_secs(10)).expect("client");
    client.roundtrip(raw)
}

fn scrape(admin: SocketAddr) -> Scrape {
    let resp = admin_request(admin, &request::get("/metrics"));
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        resp.header("content-type")
    );
    let text = resp.body_text();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// Scrape until `settled` holds (at most 2 s), then return that scrape for
/// the exact checks.
fn scrape_until(admin: SocketAddr, settled: impl Fn(&Scrape) -> bool) -> Scrape {
    let mut s = scrape(admin);
    for _ in 0..100 {
        if settled(&s) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        s = scrape(admin);
    }
    s
}

/// The value of the sample `metric` whose labels include all of `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match sample.map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(buckets)) => buckets.last().map_or(0.0, |b| b.count),
        Some(other) => panic!("{metric}: unexpected {other:?}"),
        None => 0.0,
    }
}

both_drivers!(metrics_count_the_requests_sent);

fn metrics_count_the_requests_sent(driver: Driver) {
    let app = backend::echo_backend();
    let admin = free_addr();
    let proxy = Ringway::start(&config(&app, admin, "/app"), driver);
    let mut client = proxy.connect();
    for i in 0..6 {
        let resp = client.roundtrip(&request::get(&format!("/app/{i}")));
        assert_eq!(resp.status, 200);
    }
    let upload = client.roundtrip(&request::with_body("POST", "/app/up", &[], &[b'u'; 1000]));
    assert_eq!(upload.status, 200);
    for _ in 0..3 {
        assert_eq!(client.roundtrip(&request::get("/nowhere")).status, 404);
    }
    for _ in 0..2 {
        assert_eq!(client.roundtrip(&request::get("/private/x")).status, 403);
    }
    // The proxy listener routes /metrics like any path: no admin there.
    assert_eq!(client.roundtrip(&request::get("/metrics")).status, 404);
    let mut raw = proxy.connect();
    raw.send(b"NOT A REQUEST\r\n\r\n").expect("send");
    assert_eq!(raw.read_response("GET").expect("400").status, 400);

    drop(raw);
    // A request is counted once its answer is written, which the client may
    // see first; and the refused connection closes once the proxy sees the
    // client go. Scrape until all of it has settled: the refused request is
    // counted last (after its lingering close), and a scrape may catch the
    // worker between its counter and its duration, so both must show it.
    let unparsed = |s: &Scrape| {
        value(
            s,
            "ringway_requests_total",
            &[("route", "(unparsed request)"), ("class", "4xx")],
        )
    };
    let s = scrape_until(admin, |s| {
        value(s, "ringway_request_duration_seconds", &[]) == 14.0
            && unparsed(s) == 1.0
            && value(s, "ringway_connections_active", &[]) == 1.0
    });
    let requests = |route: &str, class: &str| {
        value(
            &s,
            "ringway_requests_total",
            &[("server", "shop.test"), ("route", route), ("class", class)],
        )
    };
    assert_eq!(requests("prefix /app", "2xx"), 7.0);
    assert_eq!(requests("(no route)", "4xx"), 4.0);
    assert_eq!(requests("prefix /private", "4xx"), 2.0);
    assert_eq!(unparsed(&s), 1.0);
    assert_eq!(value(&s, "ringway_request_duration_seconds", &[]), 14.0);
    assert_eq!(
        value(
            &s,
            "ringway_upstream_response_seconds",
            &[("upstream", "app")]
        ),
        7.0
    );
    assert_eq!(
        value(
            &s,
            "ringway_upstream_connect_seconds",
            &[("upstream", "app")]
        ),
        1.0,
        "one connection to the backend, reused"
    );
    // The two clients, and the harness's probe that waited for the listener.
    assert_eq!(value(&s, "ringway_connections_total", &[]), 3.0);
    assert_eq!(value(&s, "ringway_connections_active", &[]), 1.0);
    assert_eq!(
        value(&s, "ringway_upstream_pool_idle_connections", &[]),
        1.0
    );
    let driver_name = match driver {
        Driver::IoUring => "io_uring",
        Driver::Epoll => "epoll",
    };
    assert_eq!(
        value(&s, "ringway_workers", &[("driver", driver_name)]),
        1.0
    );
    assert_eq!(value(&s, "ringway_request_body_bytes_total", &[]), 1000.0);
    // The echoed upload, and ringway's own error pages.
    assert!(value(&s, "ringway_response_body_bytes_total", &[]) > 1000.0);

    let health = admin_request(admin, &request::get("/healthz"));
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok\n"));
    assert_eq!(admin_request(admin, &request::get("/reload")).status, 405);
    assert_eq!(admin_request(admin, &request::get("/other")).status, 404);
}

both_drivers!(post_reload_applies_or_refuses_the_config);

fn post_reload_applies_or_refuses_the_config(driver: Driver) {
    let app = backend::echo_backend();
    let admin = free_addr();
    let proxy = Ringway::start(&config(&app, admin, "/app"), driver);
    let post = b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n";

    proxy.rewrite_config(&config(&app, admin, "/shop"));
    let resp = admin_request(admin, post);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(resp.body_text().contains("configuration reloaded"));
    assert_eq!(
        proxy.connect().roundtrip(&request::get("/shop/1")).status,
        200
    );
    assert_eq!(
        proxy.connect().roundtrip(&request::get("/app/1")).status,
        404
    );

    proxy
        .rewrite_config(&config(&app, admin, "/shop").replace("proxy = \"app\"", "proxy = \"ap\""));
    let resp = admin_request(admin, post);
    assert_eq!(resp.status, 400);
    assert!(
        resp.body_text()
            .contains("unknown upstream \"ap\" (did you mean \"app\"?)"),
        "{}",
        resp.body_text()
    );
    assert_eq!(
        proxy.connect().roundtrip(&request::get("/shop/2")).status,
        200
    );

    let s = scrape_until(admin, |s| {
        value(
            s,
            "ringway_requests_total",
            &[("route", "prefix /shop"), ("class", "2xx")],
        ) == 2.0
    });
    assert_eq!(value(&s, "ringway_reloads_total", &[("result", "ok")]), 1.0);
    assert_eq!(
        value(&s, "ringway_reloads_total", &[("result", "failed")]),
        1.0
    );
    // Counters survive a reload, by label.
    assert_eq!(
        value(
            &s,
            "ringway_requests_total",
            &[("route", "prefix /shop"), ("class", "2xx")]
        ),
        2.0
    );
}
