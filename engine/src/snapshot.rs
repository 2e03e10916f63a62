//! The compiled, immutable routing snapshot: everything the data path reads.
//!
//! A `Snapshot` is built by `config::compile` off the data path and published
//! through an `ArcSwap`; workers load it once per request and never mutate it.
//! Every cross-reference is an index into one of the `Vec`s here, so a snapshot
//! is self-contained and can be dropped as a unit after a reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::acl::Acl;
use crate::route::RouteTable;
use crate::template::Template;

#[derive(Debug)]
pub struct Snapshot {
    pub runtime: Runtime,
    pub limits: Limits,
    pub log: Log,
    /// Named upstreams in file order, then one anonymous upstream per inline
    /// `proxy = "http://..."` URL. `ProxyTarget::upstream` indexes this.
    pub upstreams: Vec<Upstream>,
    /// One entry per distinct listen address, in file order.
    pub listeners: Vec<Listener>,
    pub servers: Vec<Server>,
    /// The file this snapshot was compiled from (`None` for the embedded default or a string).
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Runtime {
    /// 0 = one per available CPU.
    pub workers: usize,
    pub pin: bool,
    pub driver: Driver,
    pub buffer_size: usize,
    pub ring_entries: u32,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
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
}

#[derive(Debug, Clone)]
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
}

#[derive(Debug)]
pub struct Server {
    /// `names` as written, for logs.
    pub names: Vec<ServerName>,
    pub response_headers: HeaderEdits,
    pub trusted_proxies: Acl,
    /// Effective limit: the server's `max_body_size`, else `[limits]`.
    pub max_body_size: Option<u64>,
    pub routes: RouteTable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    /// Lower-case host name.
    Exact(Box<str>),
    /// `*.example.com` stored as the lower-case suffix `.example.com`.
    Wildcard(Box<str>),
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
    /// `allow` / `deny` of the route; `Acl::permits` decides (deny first).
    pub access: Access,
    /// Effective limit: route, else server, else `[limits]`.
    pub max_body_size: Option<u64>,
    pub request_headers: HeaderEdits,
    pub response_headers: HeaderEdits,
    /// Effective timeouts: route, else upstream, else defaults (5s/60s/60s).
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
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
    Respond { status: u16, body: Bytes },
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
#[derive(Debug, Default)]
pub struct HeaderEdits {
    pub edits: Vec<HeaderEdit>,
}

#[derive(Debug)]
pub struct HeaderEdit {
    /// Lower-case header name.
    pub name: Bytes,
    /// `None` removes the header.
    pub value: Option<Template>,
}
