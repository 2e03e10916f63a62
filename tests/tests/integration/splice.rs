//! Issue 4: response bodies of known length from `splice_threshold` up move
//! socket to socket by splice on io_uring (never through user space), and
//! arrive byte-exact; the epoll driver, and `splice_threshold = "0"`, copy.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ringway_tests::http::HttpStream;
use ringway_tests::proxy::free_addr;
use ringway_tests::{
    Driver, Ringway, app_config, backend, both_drivers, pseudo_random_body, request,
};

fn spliced_bytes(admin: SocketAddr) -> u64 {
    let stream = TcpStream::connect(admin).expect("admin");
    let mut client = HttpStream::client(stream, Duration::from_secs(10)).expect("client");
    let text = client.roundtrip(&request::get("/metrics")).body_text();
    text.lines()
        .find_map(|l| l.strip_prefix("ringway_spliced_body_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("ringway_spliced_body_bytes_total in /metrics")
}

fn config(upstream: SocketAddr, admin: SocketAddr, runtime: &str) -> String {
    format!(
        "[runtime]\n{runtime}\n[admin]\nlisten = \"{admin}\"\n{}",
        app_config(
            upstream,
            "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n"
        )
    )
}

both_drivers!(large_bodies_are_spliced_byte_exact);

fn large_bodies_are_spliced_byte_exact(driver: Driver) {
    let body = pseudo_random_body(3 * 1024 * 1024 + 123, 4);
    let app = backend::fixed_body_backend(body.clone());
    let admin = free_addr();
    let proxy = Ringway::start(&config(app.addr(), admin, ""), driver);
    let mut client = proxy.connect();
    // Twice on one connection: the connection is still usable after a splice.
    for n in 0..2 {
        let resp = client.roundtrip(&request::get(&format!("/big/{n}")));
        assert_eq!(resp.status, 200);
        assert!(
            resp.body == body,
            "body {n} differs ({} bytes)",
            resp.body.len()
        );
    }
    let small = client.roundtrip(&request::get("/after"));
    assert_eq!(small.status, 200);
    let spliced = spliced_bytes(admin);
    match driver {
        // All but what arrived with the head (a read's worth) went by splice.
        Driver::IoUring => assert!(
            spliced > 2 * (body.len() as u64 - 256 * 1024),
            "only {spliced} bytes spliced of 2 x {}",
            body.len()
        ),
        Driver::Epoll => assert_eq!(spliced, 0, "the epoll driver copies"),
    }
}

both_drivers!(large_uploads_are_spliced_byte_exact);

fn large_uploads_are_spliced_byte_exact(driver: Driver) {
    let body = pseudo_random_body(3 * 1024 * 1024 + 7, 6);
    let app = backend::echo_backend();
    let admin = free_addr();
    let config = config(app.addr(), admin, "").replace(
        "[[server]]",
        "[limits]\nmax_body_size = \"16M\"\n[[server]]",
    );
    let proxy = Ringway::start(&config, driver);
    let mut client = proxy.connect();
    for n in 0..2 {
        let raw = request::with_body("POST", &format!("/up/{n}"), &[], &body);
        let resp = client.roundtrip(&raw);
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-echo-body-len"),
            Some(body.len().to_string().as_str())
        );
        assert!(resp.body == body, "echo {n} differs");
    }
    // Counters move after an answer is written; one more request on the
    // connection makes sure the uploads' are in.
    assert_eq!(client.roundtrip(&request::get("/after")).status, 200);
    let spliced = spliced_bytes(admin);
    match driver {
        // Request and response bodies: all but a read's worth of each.
        Driver::IoUring => assert!(
            spliced > 4 * (body.len() as u64 - 256 * 1024),
            "only {spliced} bytes spliced"
        ),
        Driver::Epoll => assert_eq!(spliced, 0),
    }
}

both_drivers!(splice_threshold_zero_copies);

fn splice_threshold_zero_copies(driver: Driver) {
    let body = pseudo_random_body(1024 * 1024, 5);
    let app = backend::fixed_body_backend(body.clone());
    let admin = free_addr();
    let proxy = Ringway::start(
        &config(app.addr(), admin, "splice_threshold = \"0\""),
        driver,
    );
    let resp = proxy.connect().roundtrip(&request::get("/big"));
    assert!(resp.body == body);
    assert_eq!(spliced_bytes(admin), 0);
}
