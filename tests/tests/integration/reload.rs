//! Live reload (issue 7): SIGHUP and `ringway reload` swap the routing snapshot
//! without failing a request; an invalid config changes nothing; listen
//! addresses come and go with the config.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringway_tests::backend::{self, Backend};
use ringway_tests::proxy::free_addr;
use ringway_tests::{Driver, Ringway, both_drivers, request};

/// One server on `@LISTEN@` whose catch-all route proxies to `to`; both
/// backends stay defined so that only the route flips.
fn flip_config(a: &Backend, b: &Backend, to: &str) -> String {
    format!(
        "[log]\naccess = \"off\"\n\
         [upstreams.a]\nservers = [\"{}\"]\n\
         [upstreams.b]\nservers = [\"{}\"]\n\
         [[server]]\nlisten = [\"@LISTEN@\"]\n\
         [[server.route]]\nprefix = \"/\"\nproxy = \"{to}\"\n",
        a.addr(),
        b.addr()
    )
}

fn assert_reloaded(proxy: &Ringway) {
    let out = proxy.reload();
    assert!(
        out.status.success(),
        "ringway reload: {}\nstdout: {}\nstderr: {}\nproxy stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        proxy.stderr()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration reloaded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Which backend a fresh request lands on (told by its unique target, since
/// load may be running meanwhile).
fn served_by(proxy: &Ringway, a: &Backend, b: &Backend) -> &'static str {
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let target = format!("/which-{}", PROBES.fetch_add(1, Ordering::Relaxed));
    let resp = proxy.connect().roundtrip(&request::get(&target));
    assert_eq!(resp.status, 200);
    let saw = |backend: &Backend| backend.requests().iter().any(|r| r.target == target);
    match (saw(a), saw(b)) {
        (true, false) => "a",
        (false, true) => "b",
        other => panic!("{target} reached (a, b) = {other:?}"),
    }
}

both_drivers!(reload_under_load_loses_nothing);

/// The issue's check: bounded load on several keep-alive connections while the
/// route flips between two backends ten times; no request fails or comes back
/// short, and each reload moves new requests to the other backend.
fn reload_under_load_loses_nothing(driver: Driver) {
    let a = backend::echo_backend();
    let b = backend::echo_backend();
    let proxy = Ringway::start(&flip_config(&a, &b, "a"), driver);
    assert_eq!(served_by(&proxy, &a, &b), "a");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let mut client = proxy.connect();
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            thread::spawn(move || {
                let body = vec![b'x' + i as u8; 3000 + i * 1000];
                let raw = request::with_body("POST", "/load", &[], &body);
                let mut failures = Vec::new();
                // Bounded in count and in time.
                let began = Instant::now();
                for n in 0..20_000 {
                    if stop.load(Ordering::Relaxed) || began.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    let sent = client.send(&raw);
                    match sent
                        .map_err(|e| e.to_string())
                        .and_then(|()| client.read_response("POST").map_err(|e| format!("{e:?}")))
                    {
                        Ok(resp) if resp.status == 200 && resp.body == body => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(resp) => failures.push(format!(
                            "request {n}: status {} with {} body bytes",
                            resp.status,
                            resp.body.len()
                        )),
                        Err(e) => {
                            failures.push(format!("request {n}: {e}"));
                            break;
                        }
                    }
                }
                failures
            })
        })
        .collect();

    for round in 0..10 {
        thread::sleep(Duration::from_millis(400));
        let to = if round % 2 == 0 { "b" } else { "a" };
        proxy.rewrite_config(&flip_config(&a, &b, to));
        assert_reloaded(&proxy);
        assert_eq!(served_by(&proxy, &a, &b), to, "after reload {round}");
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let done = done.load(Ordering::Relaxed);
    assert!(done > 100, "only {done} requests completed under load");
    // The keep-alive connections followed the flips too: both backends saw load traffic.
    assert!(a.request_count() > 20 && b.request_count() > 20);
    let exited = proxy.stop();
    assert!(exited.status.success(), "{}", exited.stderr);
}

both_drivers!(invalid_config_on_reload_changes_nothing);

fn invalid_config_on_reload_changes_nothing(driver: Driver) {
    let a = backend::echo_backend();
    let b = backend::echo_backend();
    let proxy = Ringway::start(&flip_config(&a, &b, "a"), driver);
    // Line 10, column 1: an unknown key in the route.
    let broken = flip_config(&a, &b, "b").replace("prefix = \"/\"", "prefx = \"/\"");
    proxy.rewrite_config(&broken);
    let out = proxy.reload();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("ringway.toml:10:1: server[0].route[0].prefx: unknown key"),
        "ringway reload must print the error with its position: {stderr}"
    );
    assert_eq!(
        served_by(&proxy, &a, &b),
        "a",
        "the old routes keep serving"
    );
    // SIGHUP reaches the instance, which refuses the file itself and says so.
    hup(&proxy);
    wait_until("the refused reload is logged", || {
        proxy
            .stderr()
            .contains("reload 1 failed, the old config keeps serving")
    });
    assert!(proxy.stderr().contains("prefx"), "{}", proxy.stderr());
    assert_eq!(
        served_by(&proxy, &a, &b),
        "a",
        "the old routes keep serving"
    );
    // A config that is valid on paper but cannot be applied (its new listen
    // address is taken) is refused by the instance: `ringway reload` reports it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let clash = format!(
        "{}[[server]]\nlisten = [\"{}\"]\n[[server.route]]\nprefix = \"/\"\nproxy = \"b\"\n",
        flip_config(&a, &b, "b"),
        taken.local_addr().expect("addr")
    );
    proxy.rewrite_config(&clash);
    let out = proxy.reload();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert_eq!(served_by(&proxy, &a, &b), "a", "nothing changed");
    // A later valid config is taken.
    proxy.rewrite_config(&flip_config(&a, &b, "b"));
    assert_reloaded(&proxy);
    assert_eq!(served_by(&proxy, &a, &b), "b");
}

both_drivers!(sighup_reloads_and_listen_addresses_follow_the_config);

/// SIGHUP alone reloads (as `kill -HUP`); a listen address added by the reload
/// accepts, and one removed stops accepting.
fn sighup_reloads_and_listen_addresses_follow_the_config(driver: Driver) {
    let a = backend::echo_backend();
    let b = backend::echo_backend();
    let proxy = Ringway::start(&flip_config(&a, &b, "a"), driver);
    let extra = free_addr();
    let two = format!(
        "{}[[server]]\nlisten = [\"{extra}\"]\n[[server.route]]\nprefix = \"/\"\nproxy = \"b\"\n",
        flip_config(&a, &b, "a")
    );
    proxy.rewrite_config(&two);
    hup(&proxy);
    wait_until("the added address accepts", || {
        TcpStream::connect(extra).is_ok()
    });
    let before = b.request_count();
    let mut client = ringway_tests::http::HttpStream::client(
        TcpStream::connect(extra).expect("connect the added address"),
        Duration::from_secs(5),
    )
    .expect("client");
    assert_eq!(client.roundtrip(&request::get("/x")).status, 200);
    assert_eq!(b.request_count(), before + 1);

    // Back to one address: the extra one stops accepting, the first keeps serving.
    proxy.rewrite_config(&flip_config(&a, &b, "a"));
    hup(&proxy);
    wait_until("the removed address refuses", || {
        TcpStream::connect(extra).is_err()
    });
    assert_eq!(served_by(&proxy, &a, &b), "a");
    // The connection opened on the removed address gets its next request
    // answered on the config it came in with, then is closed.
    let resp = client.roundtrip(&request::get("/y"));
    assert_eq!(resp.status, 200);
    assert_eq!(b.request_count(), before + 2);
    client
        .expect_close(Duration::from_secs(3))
        .expect("the connection of a removed address closes after its request");
}

fn hup(proxy: &Ringway) {
    let pid = libc::pid_t::try_from(proxy.pid()).expect("pid");
    // SAFETY: kill(2) takes no pointers; the pid is our running child.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let began = Instant::now();
    while !condition() {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reload_without_a_running_instance_fails_clearly() {
    let dir = ringway_tests::proxy::TempDir::new();
    let out = std::process::Command::new(ringway_tests::binary::ringway_binary())
        .args(["reload", "--pid-file"])
        .arg(dir.path().join("none.pid"))
        .output()
        .expect("run ringway reload");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read pid file"), "{stderr}");
}

both_drivers!(sigterm_finishes_a_slow_request_and_refuses_new_connections);

/// Issue 7: SIGTERM during a slow (3 s) request: the request completes, new
/// connections are refused meanwhile, and the process exits 0.
fn sigterm_finishes_a_slow_request_and_refuses_new_connections(driver: Driver) {
    let slow = backend::slow_head_backend(Duration::from_secs(3));
    let config = ringway_tests::proxy_config(slow.addr(), ringway_tests::TEST_LIMITS)
        .replace(r#"shutdown_timeout = "1s""#, r#"shutdown_timeout = "10s""#)
        .replace(r#"read_timeout = "2s""#, r#"read_timeout = "10s""#);
    let proxy = Ringway::start(&config, driver);
    let in_flight = {
        let mut client = proxy.connect();
        thread::spawn(move || client.roundtrip(&request::get("/slow")))
    };
    thread::sleep(Duration::from_millis(300));
    proxy.sigterm();
    wait_until("new connections are refused", || {
        TcpStream::connect(proxy.addr()).is_err()
    });
    let resp = in_flight.join().expect("in-flight client");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_text(), "/slow");
    let exited = proxy.stop();
    assert!(exited.status.success(), "exit status {}", exited.status);
}

both_drivers!(binary_upgrade_loses_no_request);

/// The zero-downtime upgrade of docs/operations.md: a second ringway starts on
/// the same addresses (SO_REUSEPORT), the old one gets SIGTERM; a client
/// opening a new connection per request all along sees no failure.
/// docs/operations.md: a connection that reaches the old listener between its last accept and
/// its close is reset by Linux unless `net.ipv4.tcp_migrate_req=1` hands it to the new
/// listener, which the upgrade procedure tells operators to set under connection churn. The
/// test follows the procedure: the first user sets it, the last puts the old value back. Where
/// the sysctl cannot be written (no root), the test runs without it.
struct MigrateReq;

static MIGRATE_REQ: std::sync::Mutex<(usize, Option<String>)> = std::sync::Mutex::new((0, None));
const MIGRATE_REQ_PATH: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

impl MigrateReq {
    fn enable() -> MigrateReq {
        let mut state = MIGRATE_REQ
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 == 0 {
            let previous = std::fs::read_to_string(MIGRATE_REQ_PATH).ok();
            if previous.is_some() && std::fs::write(MIGRATE_REQ_PATH, "1").is_ok() {
                state.1 = previous;
            }
        }
        state.0 += 1;
        MigrateReq
    }
}

impl Drop for MigrateReq {
    fn drop(&mut self) {
        let mut state = MIGRATE_REQ
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 -= 1;
        if state.0 == 0
            && let Some(previous) = state.1.take()
        {
            let _ = std::fs::write(MIGRATE_REQ_PATH, previous.trim());
        }
    }
}

fn binary_upgrade_loses_no_request(driver: Driver) {
    let _migrate = MigrateReq::enable();
    let app = backend::echo_backend();
    let config = ringway_tests::app_config(
        app.addr(),
        "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n",
    );
    let old = Ringway::start(&config, driver);
    let addr = old.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let (mut ok, mut failures) = (0, Vec::new());
            let began = Instant::now();
            for n in 0..20_000 {
                if stop.load(Ordering::Relaxed) || began.elapsed() > Duration::from_secs(30) {
                    break;
                }
                let result = TcpStream::connect(addr)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        ringway_tests::http::HttpStream::client(s, Duration::from_secs(5))
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|mut c| {
                        c.send(&request::get(&format!("/u{n}")))
                            .map_err(|e| e.to_string())?;
                        c.read_response("GET").map_err(|e| format!("{e:?}"))
                    });
                match result {
                    Ok(resp) if resp.status == 200 => ok += 1,
                    Ok(resp) => failures.push(format!("request {n}: status {}", resp.status)),
                    Err(e) => failures.push(format!("request {n}: {e}")),
                }
            }
            (ok, failures)
        })
    };
    thread::sleep(Duration::from_millis(500));
    // The new binary: same config, same address, its own pid file.
    let dir = ringway_tests::proxy::TempDir::new();
    let file = dir.path().join("ringway.toml");
    std::fs::write(
        &file,
        config.replace(ringway_tests::LISTEN, &addr.to_string()),
    )
    .expect("write config");
    let args: Vec<String> = [
        "run",
        "-c",
        &file.display().to_string(),
        "--workers",
        "1",
        "--driver",
        driver.as_arg(),
        "--no-pin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let new = Ringway::spawn(&args, addr, dir).expect("start the new ringway");
    thread::sleep(Duration::from_millis(300));
    let exited = old.stop();
    assert!(exited.status.success(), "old instance: {}", exited.stderr);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = load.join().expect("load thread");
    assert!(failures.is_empty(), "{} ok, failures: {failures:?}", ok);
    assert!(ok > 50, "only {ok} requests");
    let served_new = app.request_count();
    assert!(served_new >= ok, "backend saw {served_new} of {ok}");
    assert_eq!(new.connect().roundtrip(&request::get("/after")).status, 200);
}

both_drivers!(websocket_opened_before_a_reload_keeps_echoing);

/// Issue 7: an upgraded stream keeps the connection it has; ten reloads that
/// move the route elsewhere do not touch it.
fn websocket_opened_before_a_reload_keeps_echoing(driver: Driver) {
    let upstream = ringway_tests::ws::echo_upstream();
    let other = backend::echo_backend();
    let config = |to: SocketAddr| {
        ringway_tests::app_config(to, "[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n")
    };
    let proxy = Ringway::start(&config(upstream.addr()), driver);
    let mut ws = ringway_tests::ws::connect(proxy.addr(), "/live");
    for round in 0..10 {
        let to = if round % 2 == 0 {
            other.addr()
        } else {
            upstream.addr()
        };
        proxy.rewrite_config(&config(to));
        assert_reloaded(&proxy);
        ringway_tests::ws::echo(
            &mut ws,
            tungstenite::Message::text(format!("after reload {round}")),
        );
    }
    assert_eq!(upstream.accepted(), 1, "the stream was never reconnected");
}
