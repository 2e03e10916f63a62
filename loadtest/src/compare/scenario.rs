//! The scenarios `compare` runs, and their selection by `--scenarios`.

use serde::Serialize;

/// One load shape, run through every proxy.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    /// Its name for `--scenarios`.
    pub key: &'static str,
    pub name: &'static str,
    pub body_size: usize,
    /// A new connection per request.
    pub close: bool,
    /// Run at a fixed rate (60 % of nginx's keep-alive 100 B rate), with
    /// latency corrected for coordinated omission.
    pub open_loop: bool,
    /// HTTPS to the proxy (self-signed ECDSA P-256, the same for every
    /// proxy); the backend behind stays plain HTTP. With `close`, every
    /// request is a full handshake (no resumption).
    pub tls: bool,
    pub workload: Workload,
}

/// What the connections of a scenario do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    Http,
    /// WebSocket echoes of this many bytes, in a closed loop.
    WsEcho {
        msg_size: usize,
    },
    /// `CompareConfig::ws_idle` idle WebSockets.
    WsIdle,
}

const fn http(key: &'static str, name: &'static str, body_size: usize, close: bool) -> Scenario {
    Scenario {
        key,
        name,
        body_size,
        close,
        open_loop: false,
        tls: false,
        workload: Workload::Http,
    }
}

pub const SCENARIOS: [Scenario; 9] = [
    http("keepalive-100", "keep-alive 100 B", 100, false),
    http("keepalive-16k", "keep-alive 16 KiB", 16 * 1024, false),
    http("keepalive-1m", "keep-alive 1 MiB", 1024 * 1024, false),
    http("close", "new connection per request 100 B", 100, true),
    Scenario {
        open_loop: true,
        ..http("open-loop", "open loop 100 B at 60% of nginx", 100, false)
    },
    Scenario {
        tls: true,
        ..http("tls-keepalive", "TLS keep-alive 100 B", 100, false)
    },
    Scenario {
        tls: true,
        ..http(
            "tls-handshake",
            "TLS full handshake per request 100 B (handshakes per CPU-s)",
            100,
            true,
        )
    },
    Scenario {
        workload: Workload::WsEcho {
            msg_size: 64 * 1024,
        },
        ..http(
            "ws-echo",
            "WebSocket echo 64 KiB (MiB both ways per CPU-s)",
            100,
            false,
        )
    },
    Scenario {
        workload: Workload::WsIdle,
        ..http(
            "ws-idle",
            "idle WebSockets (RSS per connection)",
            100,
            false,
        )
    },
];

/// What `--quick` runs unless `--scenarios` says otherwise: the HTTP
/// scenarios, about one minute.
pub const QUICK_SCENARIOS: [&str; 5] = [
    "keepalive-100",
    "keepalive-16k",
    "keepalive-1m",
    "close",
    "open-loop",
];

/// Indices into `SCENARIOS` for a list of keys; `all` selects every one.
pub fn select_scenarios(keys: &[String]) -> Result<Vec<usize>, String> {
    if keys.iter().any(|key| key == "all") {
        return Ok((0..SCENARIOS.len()).collect());
    }
    let mut selected = Vec::new();
    for key in keys {
        let index = SCENARIOS.iter().position(|s| s.key == key).ok_or_else(|| {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.key).collect();
            format!("unknown scenario {key:?}; known: all, {}", known.join(", "))
        })?;
        if !selected.contains(&index) {
            selected.push(index);
        }
    }
    selected.sort_unstable();
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_selected_by_key_in_table_order() {
        let keys = |list: &[&str]| list.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            select_scenarios(&keys(&["ws-idle", "tls-keepalive", "ws-idle"])),
            Ok(vec![5, 8])
        );
        assert_eq!(
            select_scenarios(&keys(&["all"])).unwrap().len(),
            SCENARIOS.len()
        );
        assert_eq!(
            select_scenarios(&keys(&QUICK_SCENARIOS)),
            Ok(vec![0, 1, 2, 3, 4])
        );
        let unknown = select_scenarios(&keys(&["tls"])).unwrap_err();
        assert!(unknown.contains("tls-handshake"), "{unknown}");
        let mut unique: Vec<&str> = SCENARIOS.iter().map(|s| s.key).collect();
        unique.dedup();
        assert_eq!(unique.len(), SCENARIOS.len());
        assert!(
            SCENARIOS
                .iter()
                .filter(|s| s.tls)
                .all(|s| s.workload == Workload::Http)
        );
    }
}
