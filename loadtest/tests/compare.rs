//! `compare` end to end, kept short: one repetition of every scenario (the
//! open-loop one included) with
//! a few connections through the floor relay, and through ringway and nginx
//! when they are there (ringway when built in the same target directory,
//! nginx when on PATH; each is skipped with a printed message otherwise).

#![expect(
    clippy::disallowed_types,
    reason = "one Mutex between this file's tests (`ONE_COMPARE`), on no data path"
)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ringway_load::compare::proxy::{ProxyKind, find_on_path};
use ringway_load::compare::{self, CompareConfig, SCENARIOS};

/// One `compare` at a time, as users run it: two at once pin their proxies
/// on the same CPU and starve each other's short runs (nginx then missed its
/// start-up deadline, or used too little CPU in 300 ms for the clock-tick
/// counters to see).
static ONE_COMPARE: Mutex<()> = Mutex::new(());

#[test]
fn every_scenario_through_the_floor_and_whatever_else_is_installed() {
    let _one = ONE_COMPARE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cpus = core_affinity::get_core_ids().unwrap_or_default().len();
    if cpus < 2 {
        println!("skipped: compare needs 2 CPUs, this machine has {cpus}");
        return;
    }
    if find_on_path("taskset").is_none() {
        println!("skipped: compare pins proxies with taskset (util-linux), not installed");
        return;
    }
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_ringway-load"));
    let ringway = harness.with_file_name("ringway");
    if !ringway.is_file() {
        println!(
            "ringway not built at {}: its rows are skipped",
            ringway.display()
        );
    }
    let nginx = find_on_path("nginx").is_some();
    if !nginx {
        println!("nginx not installed: its rows are skipped");
    }
    let out = std::env::temp_dir().join(format!("ringway-compare-test-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let config = CompareConfig {
        proxies: vec![
            ProxyKind::Ringway,
            ProxyKind::Floor,
            ProxyKind::Nginx,
            ProxyKind::HttpFloor,
        ],
        workers: 1,
        reps: 1,
        connections: 4,
        upstream_keepalive: 32,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        ringway: Some(ringway.clone()),
        harness: Some(harness),
        json: out.join("results.json"),
        svg: out.join("compare.svg"),
        scenarios: compare::select_scenarios(&compare::QUICK_SCENARIOS.map(str::to_owned)).unwrap(),
        ws_idle: 10,
        max_steal: 1.0,
        steal_retries: 0,
    };
    let results = compare::run(&config).unwrap();

    assert_eq!(results.layout.proxy, vec![0]);
    assert!(!results.layout.client.contains(&0));
    for scenario in &SCENARIOS[..5] {
        for kind in [ProxyKind::Floor, ProxyKind::HttpFloor] {
            let floor = results
                .cells
                .iter()
                .find(|cell| cell.scenario == scenario.name && cell.proxy == kind)
                .unwrap_or_else(|| panic!("no {kind:?} figures for {}", scenario.name));
            let m = floor.median;
            assert!(
                m.requests_per_sec > 0.0,
                "{kind:?} {}: {m:?}",
                scenario.name
            );
            assert_eq!(m.errors, 0.0, "{kind:?} {}: {m:?}", scenario.name);
            assert!(m.cpu_us_per_request > 0.0 && m.peak_rss_mib > 0.0, "{m:?}");
        }
    }
    // The open loop ran at 60 % of a measured closed-loop rate, and held it.
    let rate = results.open_loop_rate.expect("no open-loop rate");
    let open = results
        .cells
        .iter()
        .find(|cell| cell.scenario == SCENARIOS[4].name && cell.proxy == ProxyKind::Floor)
        .unwrap();
    assert!(
        open.median.requests_per_sec > rate * 0.5 && open.median.requests_per_sec < rate * 1.1,
        "asked for {rate} requests/s, got {:?}",
        open.median
    );
    let has = |kind| results.cells.iter().any(|cell| cell.proxy == kind);
    assert_eq!(has(ProxyKind::Nginx), nginx);
    assert_eq!(has(ProxyKind::Ringway), ringway.is_file());
    // ringway's ratios exist exactly when ringway ran.
    assert_eq!(!results.ratios.is_empty(), ringway.is_file());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config.json).unwrap()).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), results.cells.len());
    // Proxies are named in the JSON as on the command line.
    for name in ["floor", "http-floor"] {
        let cells = json["cells"].as_array().unwrap();
        assert!(
            cells.iter().any(|cell| cell["proxy"] == name),
            "no {name} cell"
        );
    }
    assert_eq!(json["scenarios"].as_array().unwrap().len(), 5);
    // One repetition: ratios without an interval (three give one).
    if let Some(ratio) = json["ratios"].as_array().unwrap().first() {
        assert!(ratio["interval"].is_null(), "{ratio}");
        assert!(ratio["ratio"].as_f64().is_some(), "{ratio}");
    }
    let svg = std::fs::read_to_string(&config.svg).unwrap();
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    let _ = std::fs::remove_dir_all(&out);
}

/// The generated configs are accepted by the proxies themselves
/// (`ringway check`, `nginx -t`), where they are installed.
#[test]
fn generated_configs_pass_the_proxies_own_checks() {
    use ringway_load::compare::proxy::{NginxSetup, RingwaySetup, nginx_config, ringway_config};
    use std::process::Command;

    let dir = std::env::temp_dir().join(format!("ringway-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = "127.0.0.1:18080".parse().unwrap();
    let upstream = "127.0.0.1:19000".parse().unwrap();
    let ringway = PathBuf::from(env!("CARGO_BIN_EXE_ringway-load")).with_file_name("ringway");
    if ringway.is_file() {
        let path = dir.join("ringway.toml");
        let setup = RingwaySetup {
            listen,
            upstream,
            workers: 1,
            keepalive: 32,
            tls: None,
        };
        std::fs::write(&path, ringway_config(&setup)).unwrap();
        let check = Command::new(&ringway)
            .arg("check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
    } else {
        println!(
            "ringway not built at {}: its check is skipped",
            ringway.display()
        );
    }
    match find_on_path("nginx") {
        Some(nginx) => {
            let path = dir.join("nginx.conf");
            let root = std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .any(|line| {
                    line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0")
                });
            let text = nginx_config(&NginxSetup {
                listen,
                upstream,
                workers: 1,
                keepalive: 32,
                cpus: &[0],
                dir: &dir,
                as_root: root,
                tls: None,
            });
            std::fs::write(&path, text).unwrap();
            let check = Command::new(nginx)
                .arg("-t")
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&path)
                .arg("-e")
                .arg(dir.join("error.log"))
                .output()
                .unwrap();
            assert!(check.status.success(), "{check:?}");
        }
        None => println!("nginx not installed: its config check is skipped"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The TLS and WebSocket scenarios, briefly: nginx (when installed) and
/// the floor (WebSockets only; it has a `—` row for TLS) give figures, the
/// HTTP floor a `—` row for each;
/// ringway gives figures or, until its TLS and WebSocket support is there,
/// a row with its error; compare itself never fails for it.
#[test]
fn tls_and_websocket_scenarios_give_figures_or_error_rows() {
    let _one = ONE_COMPARE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cpus = core_affinity::get_core_ids().unwrap_or_default().len();
    if cpus < 2 || find_on_path("taskset").is_none() || find_on_path("openssl").is_none() {
        println!("skipped: needs 2 CPUs, taskset and openssl");
        return;
    }
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_ringway-load"));
    let ringway = harness.with_file_name("ringway");
    let out = std::env::temp_dir().join(format!("ringway-compare-tls-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let keys: Vec<String> = ["tls-keepalive", "tls-handshake", "ws-echo", "ws-idle"]
        .map(str::to_owned)
        .to_vec();
    let config = CompareConfig {
        proxies: vec![
            ProxyKind::Ringway,
            ProxyKind::Floor,
            ProxyKind::Nginx,
            ProxyKind::HttpFloor,
        ],
        workers: 1,
        reps: 1,
        connections: 4,
        upstream_keepalive: 32,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        ringway: Some(ringway),
        harness: Some(harness),
        json: out.join("results.json"),
        svg: out.join("compare.svg"),
        scenarios: compare::select_scenarios(&keys).unwrap(),
        ws_idle: 20,
        max_steal: 1.0,
        steal_retries: 1,
    };
    let results = compare::run(&config).unwrap();
    let cell = |key: &str, kind| {
        let name = SCENARIOS.iter().find(|s| s.key == key).unwrap().name;
        results
            .cells
            .iter()
            .find(|cell| cell.scenario == name && cell.proxy == kind)
    };
    for key in ["tls-keepalive", "tls-handshake"] {
        let floor = cell(key, ProxyKind::Floor).expect("a floor row");
        assert!(floor.failure.as_deref().unwrap().starts_with('—'));
    }
    // The HTTP floor neither terminates TLS nor carries upgrades: a `—` row each.
    for key in ["tls-keepalive", "tls-handshake", "ws-echo", "ws-idle"] {
        let http = cell(key, ProxyKind::HttpFloor).expect("an HTTP floor row");
        assert!(
            http.failure.as_deref().unwrap().starts_with('—'),
            "{http:?}"
        );
    }
    let floor_echo = cell("ws-echo", ProxyKind::Floor).unwrap();
    assert!(floor_echo.median.per_cpu_second > 0.0, "{floor_echo:?}");
    let floor_idle = cell("ws-idle", ProxyKind::Floor).unwrap();
    assert!(floor_idle.median.rss_kib_per_conn >= 0.0 && floor_idle.failure.is_none());
    if find_on_path("nginx").is_some() {
        let tls = cell("tls-keepalive", ProxyKind::Nginx).unwrap();
        assert!(tls.failure.is_none() && tls.median.errors == 0.0, "{tls:?}");
        let handshakes = cell("tls-handshake", ProxyKind::Nginx).unwrap();
        assert!(handshakes.median.per_cpu_second > 0.0, "{handshakes:?}");
        let echo = cell("ws-echo", ProxyKind::Nginx).unwrap();
        assert!(
            echo.median.per_cpu_second > 0.0 && echo.median.errors == 0.0,
            "{echo:?}"
        );
        let idle = cell("ws-idle", ProxyKind::Nginx).unwrap();
        assert!(
            idle.failure.is_none() && idle.median.errors == 0.0,
            "{idle:?}"
        );
    }
    // Whatever ringway can do yet, each scenario has its row.
    for key in ["tls-keepalive", "tls-handshake", "ws-echo", "ws-idle"] {
        if PathBuf::from(env!("CARGO_BIN_EXE_ringway-load"))
            .with_file_name("ringway")
            .is_file()
        {
            assert!(
                cell(key, ProxyKind::Ringway).is_some(),
                "no ringway row for {key}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
