//! Counters for `GET /metrics`. Each worker owns one `WorkerMetrics` and is
//! its only writer; the admin endpoint reads every worker's and sums them. A
//! single writer needs no atomic read-modify-write: `Counter::add` is a plain
//! load and store (no `lock` prefix, no shared cache line), and the atomics
//! only make the concurrent reads well defined.
//!
//! Requests are counted per route in fixed slots. Slots are assigned by
//! label (server and route as written) and keep their number across reloads,
//! so a counter never jumps because routes were reordered.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::snapshot::Snapshot;

/// Routes (with one "no route" slot per server) counted separately; more
/// share the last slot, labelled as such.
pub const ROUTE_SLOTS: usize = 1024;
/// Upstreams timed separately; more share the last slot.
pub const UPSTREAM_SLOTS: usize = 256;
/// Requests that never reached a server: heads refused with 400, 408 or 431.
pub const UNPARSED_SLOT: usize = 0;

/// Upper bounds of the latency histogram buckets (Prometheus's defaults).
const BOUNDS: [Duration; 11] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// A counter or gauge written by one thread only.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [Counter; BOUNDS.len() + 1],
    sum_micros: Counter,
}

/// `BOUNDS` in nanoseconds: `observe` compares one integer per bucket
/// instead of a (seconds, nanoseconds) pair, and needs no 128-bit division
/// for the sum.
const BOUND_NANOS: [u64; BOUNDS.len()] = {
    let mut nanos = [0; BOUNDS.len()];
    let mut i = 0;
    while i < BOUNDS.len() {
        nanos[i] = BOUNDS[i].as_nanos() as u64;
        i += 1;
    }
    nanos
};

impl Histogram {
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let nanos = elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()));
        let bucket = BOUND_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[bucket].add(1);
        self.sum_micros.add(nanos / 1000);
    }
}

/// One worker's counters.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// Per route slot, per status class (1xx..5xx).
    requests: Box<[[Counter; 5]]>,
    pub request_duration: Histogram,
    pub upstream_connect: Box<[Histogram]>,
    /// From the request head sent to the response head received.
    pub upstream_response: Box<[Histogram]>,
    pub connections_active: Counter,
    pub connections_total: Counter,
    pub upgraded_active: Counter,
    pub upgrades_total: Counter,
    /// Request body bytes received from clients and sent upstream.
    pub request_bytes: Counter,
    /// Response body bytes sent to clients.
    pub response_bytes: Counter,
    /// Request and response body bytes moved by splice (never in user space).
    pub spliced_bytes: Counter,
    /// Tunnelled bytes (upgraded connections), each way.
    pub tunnel_bytes_from_client: Counter,
    pub tunnel_bytes_to_client: Counter,
    pub pool_idle: Counter,
}

impl Default for WorkerMetrics {
    fn default() -> WorkerMetrics {
        WorkerMetrics {
            requests: (0..ROUTE_SLOTS).map(|_| Default::default()).collect(),
            request_duration: Histogram::default(),
            upstream_connect: (0..UPSTREAM_SLOTS).map(|_| Histogram::default()).collect(),
            upstream_response: (0..UPSTREAM_SLOTS).map(|_| Histogram::default()).collect(),
            connections_active: Counter::default(),
            connections_total: Counter::default(),
            upgraded_active: Counter::default(),
            upgrades_total: Counter::default(),
            request_bytes: Counter::default(),
            response_bytes: Counter::default(),
            spliced_bytes: Counter::default(),
            tunnel_bytes_from_client: Counter::default(),
            tunnel_bytes_to_client: Counter::default(),
            pool_idle: Counter::default(),
        }
    }
}

impl WorkerMetrics {
    /// Count one answered request of route slot `slot`.
    #[inline]
    pub fn request(&self, slot: usize, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[slot.min(ROUTE_SLOTS - 1)][class].add(1);
        self.request_duration.observe(elapsed);
    }
}

/// Slot numbers by label, kept by the control thread for the life of the
/// process. `Snapshot` routes, servers and upstreams carry their slot.
#[derive(Debug, Clone)]
pub struct Labels {
    /// (server, route) per route slot.
    routes: Vec<(String, String)>,
    upstreams: Vec<String>,
    route_index: HashMap<(String, String), usize>,
    upstream_index: HashMap<String, usize>,
}

impl Default for Labels {
    fn default() -> Labels {
        let mut labels = Labels {
            routes: Vec::new(),
            upstreams: Vec::new(),
            route_index: HashMap::new(),
            upstream_index: HashMap::new(),
        };
        let unparsed = labels.route_slot("", "(unparsed request)");
        debug_assert_eq!(unparsed, UNPARSED_SLOT);
        labels
    }
}

impl Labels {
    fn route_slot(&mut self, server: &str, route: &str) -> usize {
        let key = (server.to_string(), route.to_string());
        if let Some(&slot) = self.route_index.get(&key) {
            return slot;
        }
        if self.routes.len() == ROUTE_SLOTS - 1 {
            self.routes
                .push(("*".into(), "(routes beyond the metrics limit)".into()));
        }
        if self.routes.len() >= ROUTE_SLOTS {
            return ROUTE_SLOTS - 1;
        }
        self.routes.push(key.clone());
        self.route_index.insert(key, self.routes.len() - 1);
        self.routes.len() - 1
    }

    fn upstream_slot(&mut self, name: &str) -> usize {
        if let Some(&slot) = self.upstream_index.get(name) {
            return slot;
        }
        if self.upstreams.len() >= UPSTREAM_SLOTS {
            return UPSTREAM_SLOTS - 1;
        }
        self.upstreams.push(name.to_string());
        self.upstream_index
            .insert(name.to_string(), self.upstreams.len() - 1);
        self.upstreams.len() - 1
    }

    /// Give every server, route and upstream of `snapshot` its slot.
    pub fn assign(&mut self, snapshot: &mut Snapshot) {
        for upstream in &mut snapshot.upstreams {
            upstream.metric = self.upstream_slot(&upstream.name);
        }
        for (index, server) in snapshot.servers.iter_mut().enumerate() {
            let name = server
                .names
                .first()
                .map_or_else(|| format!("server[{index}]"), ToString::to_string);
            server.metric = self.route_slot(&name, "(no route)");
            for route in server.routes.routes_mut() {
                route.metric = self.route_slot(&name, &metric_label(&route.label));
            }
        }
    }
}

/// A route's label without the quoting of its log form: `prefix "/a"`
/// becomes `prefix /a`, easier to read (and to match) in a dashboard.
fn metric_label(label: &str) -> String {
    match label.split_once(' ') {
        Some((kind, quoted)) => {
            let text: String = serde_json::from_str(quoted).unwrap_or_else(|_| quoted.to_string());
            format!("{kind} {text}")
        }
        None => label.to_string(),
    }
}

/// Every worker's counters and the current labels: what `/metrics` reads.
#[derive(Debug, Clone)]
pub struct MetricsSource {
    pub workers: Vec<Arc<WorkerMetrics>>,
    pub labels: Arc<ArcSwap<Labels>>,
    pub drivers: Vec<&'static str>,
}

impl MetricsSource {
    pub fn render(&self, reloads_ok: u64, reloads_failed: u64) -> String {
        let workers: Vec<&WorkerMetrics> = self.workers.iter().map(AsRef::as_ref).collect();
        render(
            &self.labels.load(),
            &workers,
            &Extra {
                drivers: &self.drivers,
                reloads_ok,
                reloads_failed,
            },
        )
    }
}

/// Everything `/metrics` reports besides the workers' counters.
pub struct Extra<'a> {
    pub drivers: &'a [&'static str],
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// The Prometheus text exposition (format 0.0.4) of all workers' counters.
pub fn render(labels: &Labels, workers: &[&WorkerMetrics], extra: &Extra<'_>) -> String {
    let mut out = String::with_capacity(16 << 10);
    let sum = |f: &dyn Fn(&WorkerMetrics) -> u64| workers.iter().map(|w| f(w)).sum::<u64>();

    family(
        &mut out,
        "ringway_requests_total",
        "counter",
        "Requests answered, by server, route and status class.",
    );
    for (slot, (server, route)) in labels.routes.iter().enumerate() {
        for (class, name) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let n = sum(&|w| w.requests[slot][class].get());
            if n > 0 {
                let _ = writeln!(
                    out,
                    "ringway_requests_total{{server=\"{}\",route=\"{}\",class=\"{name}\"}} {n}",
                    escape(server),
                    escape(route)
                );
            }
        }
    }
    family(
        &mut out,
        "ringway_request_duration_seconds",
        "histogram",
        "Time from the first byte of a request head to the end of its answer.",
    );
    histogram(
        &mut out,
        "ringway_request_duration_seconds",
        "",
        workers,
        &|w| &w.request_duration,
    );
    for (metric, help, pick) in [
        (
            "ringway_upstream_connect_seconds",
            "Time to open a new upstream connection.",
            (|w: &WorkerMetrics, i: usize| &w.upstream_connect[i])
                as fn(&WorkerMetrics, usize) -> &Histogram,
        ),
        (
            "ringway_upstream_response_seconds",
            "Time from sending the request head upstream to receiving the response head.",
            |w: &WorkerMetrics, i: usize| &w.upstream_response[i],
        ),
    ] {
        family(&mut out, metric, "histogram", help);
        for (slot, name) in labels.upstreams.iter().enumerate() {
            let label = format!("upstream=\"{}\"", escape(name));
            histogram(&mut out, metric, &label, workers, &|w| pick(w, slot));
        }
    }
    let gauges: [Family; 10] = [
        (
            "ringway_connections_active",
            "gauge",
            "Open client connections.",
            |w| w.connections_active.get(),
        ),
        (
            "ringway_connections_total",
            "counter",
            "Client connections accepted.",
            |w| w.connections_total.get(),
        ),
        (
            "ringway_upgraded_connections_active",
            "gauge",
            "Upgraded (WebSocket) connections open.",
            |w| w.upgraded_active.get(),
        ),
        (
            "ringway_upgrades_total",
            "counter",
            "Connections upgraded (101 from the upstream).",
            |w| w.upgrades_total.get(),
        ),
        (
            "ringway_request_body_bytes_total",
            "counter",
            "Request body bytes received from clients and sent upstream.",
            |w| w.request_bytes.get(),
        ),
        (
            "ringway_response_body_bytes_total",
            "counter",
            "Response body bytes sent to clients.",
            |w| w.response_bytes.get(),
        ),
        (
            "ringway_spliced_body_bytes_total",
            "counter",
            "Request and response body bytes moved socket to socket by splice, never through user space.",
            |w| w.spliced_bytes.get(),
        ),
        (
            "ringway_tunnel_bytes_from_client_total",
            "counter",
            "Bytes relayed from clients to upstreams on upgraded connections.",
            |w| w.tunnel_bytes_from_client.get(),
        ),
        (
            "ringway_tunnel_bytes_to_client_total",
            "counter",
            "Bytes relayed from upstreams to clients on upgraded connections.",
            |w| w.tunnel_bytes_to_client.get(),
        ),
        (
            "ringway_upstream_pool_idle_connections",
            "gauge",
            "Idle keep-alive upstream connections pooled.",
            |w| w.pool_idle.get(),
        ),
    ];
    for (name, kind, help, value) in gauges {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", sum(&|w| value(w)));
    }
    family(
        &mut out,
        "ringway_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    let _ = writeln!(
        out,
        "ringway_reloads_total{{result=\"ok\"}} {}",
        extra.reloads_ok
    );
    let _ = writeln!(
        out,
        "ringway_reloads_total{{result=\"failed\"}} {}",
        extra.reloads_failed
    );
    family(
        &mut out,
        "ringway_workers",
        "gauge",
        "Worker threads, by the I/O driver they run on.",
    );
    for driver in ["io_uring", "epoll"] {
        let n = extra.drivers.iter().filter(|d| **d == driver).count();
        let _ = writeln!(out, "ringway_workers{{driver=\"{driver}\"}} {n}");
    }
    out
}

/// Name, type, help, and the value of one worker.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&WorkerMetrics) -> u64,
);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    label: &str,
    workers: &[&WorkerMetrics],
    pick: &dyn Fn(&WorkerMetrics) -> &Histogram,
) {
    let sep = if label.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, bound) in BOUNDS.iter().map(Some).chain([None]).enumerate() {
        cumulative += workers
            .iter()
            .map(|w| pick(w).buckets[i].get())
            .sum::<u64>();
        let le = bound.map_or_else(|| "+Inf".to_string(), |b| b.as_secs_f64().to_string());
        let _ = writeln!(out, "{name}_bucket{{{label}{sep}le=\"{le}\"}} {cumulative}");
    }
    let micros: u64 = workers.iter().map(|w| pick(w).sum_micros.get()).sum();
    let braces = if label.is_empty() {
        String::new()
    } else {
        format!("{{{label}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", micros as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

/// Label values escape backslash, double quote and newline (exposition format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_belongs_to_its_bucket_and_a_nanosecond_more_to_the_next() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(5) + Duration::from_nanos(1));
        h.observe(Duration::from_secs(10));
        h.observe(Duration::from_secs(10) + Duration::from_nanos(1));
        h.observe(Duration::MAX);
        let counts: Vec<u64> = h.buckets.iter().map(Counter::get).collect();
        assert_eq!(counts, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        // 5 ms twice (the nanosecond is below a microsecond), 10 s twice,
        // and the longest duration saturates (at 584 years).
        let saturated = u64::MAX / 1000;
        assert_eq!(h.sum_micros.get(), 2 * 5_000 + 2 * 10_000_000 + saturated);
        let h = Histogram::default();
        h.observe(Duration::from_micros(1_500));
        h.observe(Duration::from_secs(3) + Duration::from_nanos(2_999));
        assert_eq!(h.sum_micros.get(), 1_500 + 3_000_002);
    }

    #[test]
    fn counter_adds_and_histogram_buckets_are_cumulative() {
        let w = WorkerMetrics::default();
        w.request(1, 200, Duration::from_millis(3));
        w.request(1, 204, Duration::from_millis(30));
        w.request(1, 502, Duration::from_secs(60));
        let mut labels = Labels::default();
        assert_eq!(
            labels.route_slot("a.example", &metric_label("prefix \"/\"")),
            1
        );
        let text = render(
            &labels,
            &[&w, &WorkerMetrics::default()],
            &Extra {
                drivers: &["epoll"],
                reloads_ok: 2,
                reloads_failed: 1,
            },
        );
        assert!(
            text.contains(
                "ringway_requests_total{server=\"a.example\",route=\"prefix /\",class=\"2xx\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("class=\"5xx\"} 1"), "{text}");
        assert!(
            text.contains("ringway_request_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringway_request_duration_seconds_bucket{le=\"0.05\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ringway_request_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ringway_request_duration_seconds_count 3"),
            "{text}"
        );
        assert!(
            text.contains("ringway_reloads_total{result=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringway_workers{driver=\"epoll\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn slots_are_stable_by_label_and_bounded() {
        let mut labels = Labels::default();
        let a = labels.route_slot("s", "prefix \"/a\"");
        let b = labels.route_slot("s", "prefix \"/b\"");
        assert_eq!(labels.route_slot("s", "prefix \"/a\""), a);
        assert_ne!(a, b);
        for i in 0..2 * ROUTE_SLOTS {
            assert!(labels.route_slot("s", &format!("path \"/{i}\"")) < ROUTE_SLOTS);
        }
        assert_eq!(labels.routes.len(), ROUTE_SLOTS);
    }
}
