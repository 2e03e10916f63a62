//! The compiled, immutable routing snapshot: everything the data path reads.
//!
//! A `Snapshot` is built by `config::load_file` (or `load_str`) off the data path and published
//! through an `ArcSwap`; workers load it once per request and never mutate it.
//! Every cross-reference is an index into one of the `Vec`s here, so a snapshot
//! is self-contained and can be dropped as a unit after a reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::acl::Acl;
use crate::config::ConfigError;
use crate::route::RouteTable;
use crate::template::Template;

#[derive(Debug)]
pub struct Snapshot {
    pub runtime: Runtime,
    /// `[admin] listen`: where /metrics, /healthz and /reload are served.
    pub admin: Option<SocketAddr>,
    pub limits: Limits,
    pub log: Log,
    /// Named upstreams in file order, then one anonymous upstream per distinct
    /// authority of inline `proxy = "http://..."` URLs. `ProxyTarget::upstream` indexes this.
    pub upstreams: Vec<Upstream>,
    /// One entry per distinct listen address, in file order.
    pub listeners: Vec<Listener>,
    pub servers: Vec<Server>,
    /// The file this snapshot was compiled from (`None` for the embedded default or a string).
    pub source: Option<PathBuf>,
    /// Problems that did not stop the config from loading (an expired certificate).
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    /// 0 = one per available CPU.
    pub workers: usize,
    pub pin: bool,
    pub driver: Driver,
    pub buffer_size: usize,
    /// Bodies of known length with at least this many bytes left are spliced
    /// (io_uring, plain clients); 0 turns splicing of bodies off.
    pub splice_threshold: u64,
    pub ring_entries: u32,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    /// `None`: the default (`crate::control::default_pid_file`).
    pub pid_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_header_size: usize,
    pub max_headers: usize,
    /// `None` = unlimited (`"0"` in the file).
    pub max_body_size: Option<u64>,
    /// A TLS handshake must complete within this, or the connection is dropped.
    pub handshake_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub level: tracing::Level,
    pub access: AccessTarget,
    pub format: AccessFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTarget {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    Combined,
    Json,
}

#[derive(Debug)]
pub struct Listener {
    pub addr: SocketAddr,
    /// Indexes into `Snapshot::servers`, in file order.
    pub servers: Vec<usize>,
    /// The server with `default = true` for this address, else the first.
    pub default_server: usize,
    /// Server names of `servers`, indexed for `Snapshot::server_for`.
    pub names: NameIndex,
    /// For a `" tls"` address: its rustls config, certificates chosen by SNI.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Host lookup for one listener: exact names in a hash map, wildcards by
/// descending suffix length so the first hit is the longest (nginx order).
#[derive(Debug, Default, Clone)]
pub struct NameIndex {
    exact: HashMap<Box<[u8]>, usize>,
    wildcards: Vec<(Box<[u8]>, usize)>,
}

/// DNS names are at most 253 bytes (RFC 1035 §2.3.4); a longer Host matches no
/// name, so lower-casing into a fixed stack buffer never needs to allocate.
const MAX_HOST_LEN: usize = 255;

impl NameIndex {
    /// No server on this address has a name.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty()
    }

    /// Indexes `(name, server)` pairs; the first server to claim a name keeps it
    /// (config validation refuses duplicates before this is built).
    pub fn new<'a>(names: impl IntoIterator<Item = (&'a ServerName, usize)>) -> NameIndex {
        let mut index = NameIndex::default();
        for (name, server) in names {
            match name {
                ServerName::Exact(host) => {
                    index.exact.entry(host.as_bytes().into()).or_insert(server);
                }
                ServerName::Wildcard(suffix) => {
                    if !index
                        .wildcards
                        .iter()
                        .any(|(s, _)| **s == *suffix.as_bytes())
                    {
                        index.wildcards.push((suffix.as_bytes().into(), server));
                    }
                }
            }
        }
        index
            .wildcards
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        index
    }

    /// The server for `host` (already without port and trailing dot), if a name matches.
    pub(crate) fn find(&self, host: &[u8]) -> Option<usize> {
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_HOST_LEN];
        let lower = &mut buf[..host.len()];
        lower.copy_from_slice(host);
        lower.make_ascii_lowercase();
        let lower = &*lower;
        if let Some(&server) = self.exact.get(lower) {
            return Some(server);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| lower.len() > suffix.len() && lower.ends_with(suffix))
            .map(|&(_, server)| server)
    }
}

impl Snapshot {
    /// The index in `listeners` of the configured address `addr`.
    pub fn listener_index(&self, addr: SocketAddr) -> Option<usize> {
        self.listeners.iter().position(|l| l.addr == addr)
    }

    /// Server for a request on listener `listener` with Host `host` (as sent,
    /// may carry ":port", may be absent): exact name (case-insensitive, trailing
    /// dot ignored), then the longest matching wildcard, then the listener's
    /// default server. Panics if `listener` is not an index into `listeners`.
    pub fn server_for(&self, listener: usize, host: Option<&[u8]>) -> usize {
        let listener = &self.listeners[listener];
        if listener.servers.len() <= 1 || listener.names.is_empty() {
            // One server on this address, or none with a name: every Host
            // ends at the default server, so nothing is looked up.
            return listener.default_server;
        }
        host.map(host_name)
            .and_then(|name| listener.names.find(name))
            .unwrap_or(listener.default_server)
    }
}

/// The host part of a Host header value (RFC 9110 §7.2: `uri-host [ ":" port ]`),
/// without the trailing dot of a fully qualified name. IPv6 literals keep their brackets.
fn host_name(host: &[u8]) -> &[u8] {
    let host = if host.first() == Some(&b'[') {
        match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(colon) => &host[..colon],
            None => host,
        }
    };
    host.strip_suffix(b".").unwrap_or(host)
}

#[derive(Debug)]
pub struct Server {
    /// `names` as written, for logs.
    pub names: Vec<ServerName>,
    pub response_headers: HeaderEdits,
    /// `response_headers` plus `Strict-Transport-Security` when `hsts` is set:
    /// what responses over TLS carry.
    pub tls_response_headers: HeaderEdits,
    pub trusted_proxies: Acl,
    /// Effective limit: the server's `max_body_size`, else `[limits]`.
    pub max_body_size: Option<u64>,
    pub routes: RouteTable,
    /// Metrics slot of its requests that match no route.
    pub metric: usize,
}

impl Server {
    /// The server's `response_headers` for a response over TLS or not: HSTS
    /// only ever goes out over TLS (RFC 6797 §7.2).
    pub fn response_headers_for(&self, tls: bool) -> &HeaderEdits {
        if tls {
            &self.tls_response_headers
        } else {
            &self.response_headers
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    /// Lower-case host name.
    Exact(Box<str>),
    /// `*.example.com` stored as the lower-case suffix `.example.com`.
    Wildcard(Box<str>),
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerName::Exact(host) => f.write_str(host),
            ServerName::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

#[derive(Debug)]
pub struct Upstream {
    /// The `[upstreams.NAME]` key, or the inline URL's authority.
    pub name: Box<str>,
    pub servers: Vec<UpstreamServer>,
    /// Idle connections kept per worker.
    pub keepalive: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
    /// Its timings' slot in `metrics::WorkerMetrics`.
    pub metric: usize,
}

#[derive(Debug, Clone)]
pub struct UpstreamServer {
    pub addr: SocketAddr,
    pub weight: u32,
}

#[derive(Debug)]
pub struct Route {
    /// How the route was written, for logs and errors: `prefix "/jatos"`.
    pub label: Box<str>,
    pub action: Action,
    /// `allow` / `deny` of the route; `Access::permits` decides (deny first).
    pub access: Access,
    /// Effective limit: route, else server, else `[limits]`.
    pub max_body_size: Option<u64>,
    pub request_headers: HeaderEdits,
    pub response_headers: HeaderEdits,
    /// Effective timeouts: route, else upstream, else defaults (5s/60s/60s).
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
    /// Its counters' slot in `metrics::WorkerMetrics`.
    pub metric: usize,
    /// An upgraded connection with no byte in either direction for this long
    /// is closed (default 1h).
    pub idle_timeout: Duration,
    /// Upgrades are allowed; `websocket = false` answers them with 403.
    pub websocket: bool,
}

#[derive(Debug, Default)]
pub struct Access {
    pub allow: Acl,
    pub deny: Acl,
}

impl Access {
    /// nginx semantics: deny is checked first; a non-empty allow list admits only its members.
    pub fn permits(&self, ip: std::net::IpAddr) -> bool {
        if self.deny.contains(ip) {
            return false;
        }
        self.allow.is_empty() || self.allow.contains(ip)
    }
}

#[derive(Debug)]
pub enum Action {
    Proxy(ProxyTarget),
    Respond {
        status: u16,
        body: Bytes,
    },
    /// `redirect = "URL"`: `location` is a one-entry header list holding the
    /// `Location` template, applied after the response headers so it wins.
    Redirect {
        status: u16,
        location: HeaderEdits,
        body: Bytes,
    },
}

#[derive(Debug)]
pub struct ProxyTarget {
    pub upstream: usize,
    /// nginx `proxy_pass` with a URI: replaces the part of the path the route
    /// matched (the whole path for `path =` routes). `None` forwards the request
    /// target unchanged.
    pub replace_uri: Option<Bytes>,
}

/// `request_headers` / `response_headers`: set a header, or remove it (`""`).
#[derive(Debug, Default, Clone)]
pub struct HeaderEdits {
    pub edits: Vec<HeaderEdit>,
}

#[derive(Debug, Clone)]
pub struct HeaderEdit {
    /// Lower-case header name.
    pub name: Bytes,
    /// `None` removes the header.
    pub value: Option<Template>,
}

/// The snapshot the control thread publishes and every worker reads: an
/// `ArcSwap`, and a generation number bumped after each store. A worker
/// reads the generation on every request (a plain load of a cache line that
/// nobody writes between reloads) and goes through the `ArcSwap`, whose load
/// takes a debt slot and costs some 60 instructions, only when it changed.
pub struct Published {
    snapshot: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

impl Published {
    pub fn new(snapshot: Snapshot) -> Published {
        Published {
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(0),
        }
    }

    /// The current snapshot, for a short look.
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Publish `snapshot`: a `generation` read after this returns differs
    /// from every one read before it.
    pub fn store(&self, snapshot: Arc<Snapshot>) {
        self.snapshot.store(snapshot);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Changes with every `store`. A reader that sees a new generation and
    /// then loads finds that store's snapshot (or a later one).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const SERVERS: &str = r#"
[[server]]
listen = ["127.0.0.1:80"]
names = ["first.test"]
[[server]]
listen = ["127.0.0.1:80", "127.0.0.1:81"]
names = ["www.Example.com", "*.example.com", "[::1]"]
[[server]]
listen = ["127.0.0.1:80"]
names = ["*.api.example.com", "example.com"]
[[server]]
listen = ["127.0.0.1:81"]
names = ["other.test"]
default = true
"#;

    fn snapshot() -> Snapshot {
        load_str(SERVERS, "servers.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_store_is_a_new_generation_and_its_snapshot() {
        let published = Published::new(snapshot());
        let before = published.generation();
        let next = Arc::new(snapshot());
        published.store(next.clone());
        let after = published.generation();
        assert_ne!(before, after);
        assert!(Arc::ptr_eq(&published.load_full(), &next));
        published.store(Arc::new(snapshot()));
        assert_ne!(published.generation(), after);
        assert!(!Arc::ptr_eq(&published.load_full(), &next));
    }

    #[test]
    fn exact_names_ignore_case_port_and_trailing_dot() {
        let s = snapshot();
        let on80 = |host: &str| s.server_for(0, Some(host.as_bytes()));
        assert_eq!(on80("first.test"), 0);
        assert_eq!(on80("www.example.com"), 1);
        assert_eq!(on80("WWW.EXAMPLE.COM"), 1);
        assert_eq!(on80("www.example.com:80"), 1);
        assert_eq!(on80("www.example.com."), 1);
        assert_eq!(on80("www.example.com.:8080"), 1);
        assert_eq!(on80("example.com"), 2);
        assert_eq!(on80("[::1]:80"), 1);
        assert_eq!(on80("[::1]"), 1);
    }

    #[test]
    fn a_listener_with_one_server_serves_every_host_on_it() {
        let s = load_str(
            "[[server]]\nlisten = [\"127.0.0.1:80\"]\nnames = [\"jatos.example.org\"]\n\
             [[server]]\nlisten = [\"127.0.0.1:81\"]\n",
            "single.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for host in [
            &b"jatos.example.org"[..],
            b"JATOS.example.org:80",
            b"elsewhere",
            b"",
        ] {
            assert_eq!(s.server_for(0, Some(host)), 0);
            assert_eq!(s.server_for(1, Some(host)), 1);
        }
        assert_eq!(s.server_for(0, None), 0);
    }

    #[test]
    fn longest_wildcard_wins() {
        let s = snapshot();
        let on80 = |host: &str| s.server_for(0, Some(host.as_bytes()));
        assert_eq!(on80("a.example.com"), 1);
        assert_eq!(on80("a.b.example.com:443"), 1);
        assert_eq!(on80("v1.api.example.com"), 2);
        assert_eq!(on80("V1.API.Example.COM"), 2);
        assert_eq!(
            on80("api.example.com"),
            1,
            "*.api.example.com needs a label before .api"
        );
    }

    #[test]
    fn unknown_or_absent_host_goes_to_the_default_server() {
        let s = snapshot();
        assert_eq!(
            s.listeners[0].default_server, 0,
            "first server of 127.0.0.1:80"
        );
        assert_eq!(s.server_for(0, None), 0);
        assert_eq!(s.server_for(0, Some(b"unknown.test")), 0);
        assert_eq!(s.server_for(0, Some(b"")), 0);
        assert_eq!(s.server_for(0, Some(b":80")), 0);
        assert_eq!(s.server_for(0, Some(&[b'a'; 300])), 0);
        assert_eq!(s.server_for(0, Some(b"\xff\xfe")), 0);
        assert_eq!(
            s.server_for(0, Some(b"other.test")),
            0,
            "other.test only listens on :81"
        );

        assert_eq!(s.listeners[1].default_server, 3, "default = true");
        assert_eq!(s.server_for(1, None), 3);
        assert_eq!(s.server_for(1, Some(b"www.example.com")), 1);
        assert_eq!(s.server_for(1, Some(b"other.test:81")), 3);
        assert_eq!(
            s.server_for(1, Some(b"first.test")),
            3,
            "first.test only listens on :80"
        );
    }

    #[test]
    fn server_for_does_not_allocate() {
        let s = snapshot();
        let hosts: [&[u8]; 4] = [
            b"WWW.example.com:80",
            b"v1.api.example.com",
            b"unknown",
            b"[::1]:80",
        ];
        let mut servers = [usize::MAX; 4];
        let allocations = crate::route::alloc_counter::allocations_in(|| {
            for (server, host) in servers.iter_mut().zip(hosts) {
                *server = s.server_for(0, Some(host));
            }
        });
        assert_eq!(servers, [1, 2, 0, 1]);
        assert_eq!(allocations, 0);
    }

    #[test]
    fn access_checks_deny_first() {
        let net = |s: &str| crate::acl::parse_entry(s).unwrap();
        let access = Access {
            allow: Acl::new(net("10.0.0.0/8")),
            deny: Acl::new(net("10.0.0.5")),
        };
        assert!(access.permits("10.1.1.1".parse().unwrap()));
        assert!(!access.permits("10.0.0.5".parse().unwrap()));
        assert!(!access.permits("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!access.permits("192.0.2.1".parse().unwrap()));
        let deny_only = Access {
            allow: Acl::default(),
            deny: Acl::new(net("192.0.2.0/24")),
        };
        assert!(deny_only.permits("198.51.100.1".parse().unwrap()));
        assert!(!deny_only.permits("192.0.2.7".parse().unwrap()));
        assert!(Access::default().permits("192.0.2.7".parse().unwrap()));
    }
}
