//! `[upstreams.NAME]` and inline `proxy = "http://…"` URLs to `snapshot::Upstream`.
//!
//! Host names are resolved once, at load time, with the system resolver; a name
//! with several addresses becomes several servers, as nginx's `server` line does.
//! Inline URLs become anonymous upstreams with default settings, one per distinct
//! authority, so routes proxying to the same backend share its connection pool.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use toml::Spanned;

use super::compile::{planned, positive_period};
use super::document::Document;
use super::error::Diagnostics;
use super::raw::{RawBalance, RawUpstream, RawUpstreamServer};
use super::suggest::nearest;
use crate::snapshot::{ProxyTarget, Upstream, UpstreamServer};

pub(crate) const DEFAULT_KEEPALIVE: usize = 32;
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Upstreams compiled so far: named ones first, anonymous ones appended as
/// routes reference inline URLs.
pub(crate) struct Upstreams {
    list: Vec<Upstream>,
    by_name: HashMap<String, usize>,
    by_authority: HashMap<String, usize>,
}

impl Upstreams {
    pub(crate) fn into_list(self) -> Vec<Upstream> {
        self.list
    }

    pub(crate) fn get(&self, index: usize) -> &Upstream {
        &self.list[index]
    }

    /// Resolves a route's `proxy` value: an upstream name or an inline URL.
    /// `regex_route` forbids a URI part, which nginx refuses too: with a regex
    /// there is no matched prefix to replace.
    pub(crate) fn target(
        &mut self,
        proxy: &Spanned<String>,
        regex_route: bool,
        path: &str,
        diag: &mut Diagnostics<'_>,
    ) -> Option<ProxyTarget> {
        let value = proxy.get_ref().as_str();
        if !value.contains("://") {
            if let Some(&upstream) = self.by_name.get(value) {
                return Some(ProxyTarget {
                    upstream,
                    replace_uri: None,
                });
            }
            diag.error(proxy.span(), path, self.unknown_upstream(value));
            return None;
        }
        let url = match parse_url(value) {
            Ok(url) => url,
            Err(message) => {
                diag.error(proxy.span(), path, message);
                return None;
            }
        };
        if url.uri.is_some() && regex_route {
            diag.error(
                proxy.span(),
                path,
                format!(
                    "{value:?} has a URI part, which a regex route cannot have (nothing to replace); \
                     drop the path after the port, as nginx requires"
                ),
            );
            return None;
        }
        let upstream = match self.by_authority.get(url.authority) {
            Some(&index) => index,
            None => {
                let servers = match resolve(&with_default_port(url.authority)) {
                    Ok(addrs) => addrs
                        .into_iter()
                        .map(|addr| UpstreamServer { addr, weight: 1 })
                        .collect(),
                    Err(message) => {
                        diag.error(proxy.span(), path, message);
                        return None;
                    }
                };
                let index = self.list.len();
                self.list.push(Upstream {
                    name: url.authority.into(),
                    servers,
                    keepalive: DEFAULT_KEEPALIVE,
                    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                    read_timeout: DEFAULT_READ_TIMEOUT,
                    send_timeout: DEFAULT_SEND_TIMEOUT,
                    metric: 0,
                });
                self.by_authority.insert(url.authority.to_owned(), index);
                index
            }
        };
        Some(ProxyTarget {
            upstream,
            replace_uri: url.uri.map(|uri| Bytes::copy_from_slice(uri.as_bytes())),
        })
    }

    fn unknown_upstream(&self, name: &str) -> String {
        if self.by_name.is_empty() {
            return format!(
                "unknown upstream {name:?}: no [upstreams] are defined (an inline address needs \"http://\", e.g. \"http://127.0.0.1:8000\")"
            );
        }
        match nearest(name, self.by_name.keys().map(String::as_str)) {
            Some(hint) => format!("unknown upstream {name:?} (did you mean {hint:?}?)"),
            None => {
                let mut known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
                known.sort_unstable();
                format!("unknown upstream {name:?} (defined: {})", known.join(", "))
            }
        }
    }
}

pub(crate) fn compile_upstreams(
    raw: &BTreeMap<Spanned<String>, Spanned<RawUpstream>>,
    doc: &Document,
    diag: &mut Diagnostics<'_>,
) -> Upstreams {
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    let mut upstreams = Upstreams {
        list: Vec::with_capacity(entries.len()),
        by_name: HashMap::new(),
        by_authority: HashMap::new(),
    };
    for (name, upstream) in entries {
        let path = format!("upstreams.{}", name.get_ref());
        if name.get_ref().is_empty() || name.get_ref().contains([':', '/']) {
            diag.error(
                name.span(),
                path.as_str(),
                "an upstream name must be non-empty and contain no ':' or '/' (it would read as a URL)",
            );
        }
        let compiled = compile_upstream(name.get_ref(), upstream, doc, &path, diag);
        upstreams
            .by_name
            .insert(name.get_ref().clone(), upstreams.list.len());
        upstreams.list.push(compiled);
    }
    upstreams
}

fn compile_upstream(
    name: &str,
    spanned: &Spanned<RawUpstream>,
    doc: &Document,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Upstream {
    let raw = spanned.get_ref();
    planned(
        diag,
        &raw.max_fails,
        &format!("{path}.max_fails"),
        "passive health checks",
    );
    planned(
        diag,
        &raw.fail_timeout,
        &format!("{path}.fail_timeout"),
        "passive health checks",
    );
    if let Some(balance) = &raw.balance
        && *balance.get_ref() != RawBalance::RoundRobin
    {
        let value = if *balance.get_ref() == RawBalance::LeastConn {
            "least_conn"
        } else {
            "ip_hash"
        };
        diag.error(
            balance.span(),
            format!("{path}.balance"),
            format!("{value:?} is not supported yet (planned: least_conn and ip_hash balancing); use \"round_robin\""),
        );
    }
    let mut servers = Vec::new();
    match &raw.servers {
        Some(list) if !list.get_ref().is_empty() => {
            for (i, entry) in list.get_ref().iter().enumerate() {
                let entry_path = format!("{path}.servers[{i}]");
                servers.extend(compile_server_entry(entry, doc, &entry_path, diag));
            }
        }
        Some(list) => diag.error(
            list.span(),
            format!("{path}.servers"),
            "an upstream needs at least one server",
        ),
        None if doc.is_damaged(&spanned.span()) => {}
        None => diag.error(
            spanned.span(),
            path,
            format!("upstream {name:?} needs `servers`, e.g. servers = [\"127.0.0.1:9000\"]"),
        ),
    }
    Upstream {
        name: name.into(),
        servers,
        keepalive: raw
            .keepalive
            .as_ref()
            .map_or(DEFAULT_KEEPALIVE, |k| *k.get_ref()),
        connect_timeout: positive_period(
            diag,
            &raw.connect_timeout,
            &format!("{path}.connect_timeout"),
            DEFAULT_CONNECT_TIMEOUT,
        ),
        read_timeout: positive_period(
            diag,
            &raw.read_timeout,
            &format!("{path}.read_timeout"),
            DEFAULT_READ_TIMEOUT,
        ),
        send_timeout: positive_period(
            diag,
            &raw.send_timeout,
            &format!("{path}.send_timeout"),
            DEFAULT_SEND_TIMEOUT,
        ),
        metric: 0,
    }
}

fn compile_server_entry(
    entry: &Spanned<RawUpstreamServer>,
    doc: &Document,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Vec<UpstreamServer> {
    let (addr, addr_span, weight): (&str, Range<usize>, u32) = match entry.get_ref() {
        RawUpstreamServer::Addr(addr) => (addr, entry.span(), 1),
        RawUpstreamServer::Table(table) => {
            let weight = match &table.weight {
                Some(w) if *w.get_ref() == 0 => {
                    diag.error(
                        w.span(),
                        format!("{path}.weight"),
                        "weight must be at least 1",
                    );
                    1
                }
                Some(w) => *w.get_ref(),
                None => 1,
            };
            match &table.addr {
                Some(addr) => (addr.get_ref().as_str(), addr.span(), weight),
                None => {
                    if !doc.is_damaged(&entry.span()) {
                        diag.error(
                            entry.span(),
                            path,
                            "a server table needs `addr = \"host:port\"`",
                        );
                    }
                    return Vec::new();
                }
            }
        }
    };
    match resolve(addr) {
        Ok(addrs) => addrs
            .into_iter()
            .map(|addr| UpstreamServer { addr, weight })
            .collect(),
        Err(message) => {
            diag.error(addr_span, path, message);
            Vec::new()
        }
    }
}

/// `"127.0.0.1:9000"`, `"[::1]:9000"` or `"localhost:9000"` to socket addresses,
/// deduplicated in resolver order.
pub(crate) fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Ok(vec![socket]);
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!(
            "missing port in {addr:?} (expected \"host:port\", e.g. \"127.0.0.1:9000\")"
        ));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!(
            "an IPv6 address needs brackets: \"[{host}]:{port}\""
        ));
    }
    if host.is_empty() {
        return Err(format!("missing host in {addr:?} (expected \"host:port\")"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port {port:?} in {addr:?}"))?;
    let resolved = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in resolved {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(format!("{host:?} resolves to no address"));
    }
    Ok(addrs)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ProxyUrl<'a> {
    /// `host[:port]` as written; the port defaults to 80 when resolving.
    pub authority: &'a str,
    /// The path after the authority, `"/"` included (nginx treats
    /// `proxy_pass http://h/` as having a URI).
    pub uri: Option<&'a str>,
}

pub(crate) fn parse_url(url: &str) -> Result<ProxyUrl<'_>, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(format!(
                "{url:?}: \"https://\" upstreams are not supported yet (planned: TLS to upstreams)"
            ));
        }
        _ => {
            return Err(format!(
                "{url:?}: only \"http://host:port[/uri]\" URLs are supported"
            ));
        }
    };
    let (authority, uri) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(&rest[slash..])),
        None => (rest, None),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: expected \"http://host:port[/uri]\""));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "{url:?}: a query or fragment in a proxy URL is not supported"
        ));
    }
    Ok(ProxyUrl { authority, uri })
}

/// The `host:port` to resolve for an inline URL's authority (port 80 if absent).
fn with_default_port(authority: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    }
}
