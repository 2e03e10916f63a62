//! `[[server]]` blocks to `snapshot::Server`, and their `listen` addresses to
//! `snapshot::Listener`s.
//!
//! A listener exists once per distinct address however many servers share it;
//! its default server is the one marked `default = true`, else the first in the
//! file (nginx's rule). Names must be unique per address, or which server gets a
//! request would depend on file order.

use std::net::SocketAddr;
use std::ops::Range;

use toml::Spanned;

use super::document::Document;
use super::error::Diagnostics;
use super::headers::compile_header_edits;
use super::raw::{List, RawServer};
use super::route::compile_route;
use super::units::Size;
use super::upstream::Upstreams;
use crate::acl::{self, Acl};
use crate::route::RouteTable;
use crate::snapshot::{Limits, Listener, NameIndex, Server, ServerName};

/// What a server contributes to listeners, kept until all servers are compiled.
struct ServerAddrs {
    addrs: Vec<SocketAddr>,
    default: Option<Range<usize>>,
    /// Names with their spans, for duplicate reports.
    names: Vec<(ServerName, Range<usize>)>,
}

pub(crate) fn compile_servers(
    raw: &[Spanned<RawServer>],
    doc: &Document,
    limits: &Limits,
    upstreams: &mut Upstreams,
    diag: &mut Diagnostics<'_>,
) -> (Vec<Server>, Vec<Listener>) {
    let mut servers = Vec::with_capacity(raw.len());
    let mut addrs = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.iter().enumerate() {
        let (server, server_addrs) = compile_server(i, spanned, doc, limits, upstreams, diag);
        servers.push(server);
        addrs.push(server_addrs);
    }
    let listeners = build_listeners(&addrs, diag);
    (servers, listeners)
}

fn compile_server(
    i: usize,
    spanned: &Spanned<RawServer>,
    doc: &Document,
    limits: &Limits,
    upstreams: &mut Upstreams,
    diag: &mut Diagnostics<'_>,
) -> (Server, ServerAddrs) {
    let raw = spanned.get_ref();
    let path = format!("server[{i}]");
    super::compile::planned(diag, &raw.tls, &format!("{path}.tls"), "TLS termination");
    super::compile::planned(
        diag,
        &raw.hsts,
        &format!("{path}.hsts"),
        "HSTS, with TLS termination",
    );

    let addrs = compile_listen(&raw.listen, spanned, doc, &path, diag);
    let names = compile_names(&raw.names, &path, diag);
    let max_body_size = server_body_limit(&raw.max_body_size, limits);
    let response_headers = compile_header_edits(
        &raw.response_headers,
        &format!("{path}.response_headers"),
        diag,
    );
    let trusted_proxies = compile_acl(
        &raw.trusted_proxies,
        &format!("{path}.trusted_proxies"),
        diag,
    );

    let mut routes = RouteTable::new();
    for (j, route) in raw.route.iter().enumerate() {
        let route_path = format!("{path}.route[{j}]");
        compile_route(
            route,
            &mut routes,
            max_body_size,
            doc,
            upstreams,
            &route_path,
            diag,
        );
    }
    let server = Server {
        names: names.iter().map(|(name, _)| name.clone()).collect(),
        response_headers,
        trusted_proxies,
        max_body_size,
        routes,
        metric: 0,
    };
    let default = raw
        .default
        .as_ref()
        .filter(|d| *d.get_ref())
        .map(Spanned::span);
    (
        server,
        ServerAddrs {
            addrs,
            default,
            names,
        },
    )
}

fn server_body_limit(raw: &Option<Spanned<Size>>, limits: &Limits) -> Option<u64> {
    super::compile::body_limit(raw).unwrap_or(limits.max_body_size)
}

fn compile_listen(
    raw: &List<String>,
    server: &Spanned<RawServer>,
    doc: &Document,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Vec<SocketAddr> {
    let Some(list) = raw else {
        if !doc.is_damaged(&server.span()) {
            diag.error(
                server.span(),
                path,
                "a server needs `listen`, e.g. listen = [\"0.0.0.0:80\"]",
            );
        }
        return Vec::new();
    };
    if list.get_ref().is_empty() {
        diag.error(
            list.span(),
            format!("{path}.listen"),
            "`listen` needs at least one address",
        );
    }
    let mut addrs = Vec::new();
    for (k, entry) in list.get_ref().iter().enumerate() {
        let entry_path = format!("{path}.listen[{k}]");
        match parse_listen(entry.get_ref()) {
            Ok(addr) if addrs.contains(&addr) => {
                diag.error(entry.span(), entry_path, format!("{addr} is listed twice"));
            }
            Ok(addr) => addrs.push(addr),
            Err(message) => diag.error(entry.span(), entry_path, message),
        }
    }
    addrs
}

/// `"IP:PORT"` (`"[::]:443"` for IPv6). Host names are refused: a listener
/// binds an address, and a name could resolve differently at each reload.
pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Some(addr) = t.strip_suffix(" tls").or_else(|| t.strip_suffix(" ssl")) {
        return Err(format!(
            "{s:?}: \"tls\" is not supported yet (planned: TLS termination); listen on {:?} without TLS for now",
            addr.trim()
        ));
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port_only = t.trim_start_matches("*:").trim_start_matches(':');
    if port_only.parse::<u16>().is_ok() {
        return Err(format!(
            "invalid listen address {s:?}: give the IP too, e.g. \"0.0.0.0:{port_only}\" (all IPv4) or \"[::]:{port_only}\" (all IPv6)"
        ));
    }
    Err(format!(
        "invalid listen address {s:?} (expected \"IP:PORT\", e.g. \"0.0.0.0:80\" or \"[::]:80\")"
    ))
}

fn compile_names(
    raw: &List<String>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Vec<(ServerName, Range<usize>)> {
    let mut names: Vec<(ServerName, Range<usize>)> = Vec::new();
    let Some(list) = raw else {
        return names;
    };
    for (k, entry) in list.get_ref().iter().enumerate() {
        let entry_path = format!("{path}.names[{k}]");
        match parse_server_name(entry.get_ref()) {
            Ok(name) if names.iter().any(|(n, _)| *n == name) => {
                diag.error(
                    entry.span(),
                    entry_path,
                    format!("{:?} is listed twice", entry.get_ref()),
                );
            }
            Ok(name) => names.push((name, entry.span())),
            Err(message) => diag.error(entry.span(), entry_path, message),
        }
    }
    names
}

/// A host name, IP literal, or `*.suffix` wildcard; lower-cased, trailing dot dropped.
pub(crate) fn parse_server_name(s: &str) -> Result<ServerName, String> {
    let lower = s.trim().to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err("a server name cannot be empty".into());
    }
    let (wildcard, host) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    if host.contains('*') || host.is_empty() {
        return Err(format!(
            "invalid server name {s:?}: only a leading \"*.\" wildcard is supported"
        ));
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err(format!(
            "invalid server name {s:?}: names have no port (they match the Host header without it)"
        ));
    }
    let valid = host.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b"-._".contains(&b) || (bracketed && b"[]:".contains(&b))
    });
    if !valid {
        return Err(format!("invalid server name {s:?}"));
    }
    Ok(if wildcard {
        ServerName::Wildcard(format!(".{host}").into())
    } else {
        ServerName::Exact(host.into())
    })
}

pub(crate) fn compile_acl(raw: &List<String>, path: &str, diag: &mut Diagnostics<'_>) -> Acl {
    let Some(list) = raw else {
        return Acl::default();
    };
    let mut nets = Vec::new();
    for (k, entry) in list.get_ref().iter().enumerate() {
        match acl::parse_entry(entry.get_ref()) {
            Ok(parsed) => nets.extend(parsed),
            Err(message) => diag.error(entry.span(), format!("{path}[{k}]"), message),
        }
    }
    Acl::new(nets)
}

fn build_listeners(servers: &[ServerAddrs], diag: &mut Diagnostics<'_>) -> Vec<Listener> {
    struct Building {
        addr: SocketAddr,
        servers: Vec<usize>,
        default: Option<usize>,
    }
    let mut building: Vec<Building> = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for &addr in &server.addrs {
            let at = match building.iter().position(|l| l.addr == addr) {
                Some(at) => at,
                None => {
                    building.push(Building {
                        addr,
                        servers: Vec::new(),
                        default: None,
                    });
                    building.len() - 1
                }
            };
            let listener = &mut building[at];
            for (name, span) in &server.names {
                let taken = listener
                    .servers
                    .iter()
                    .find(|&&other| servers[other].names.iter().any(|(n, _)| n == name));
                if let Some(other) = taken {
                    diag.error(
                        span.clone(),
                        format!("server[{i}].names"),
                        format!(
                            "{} on {addr} is already a name of server[{other}]",
                            name_text(name)
                        ),
                    );
                }
            }
            if let Some(span) = &server.default {
                match listener.default {
                    Some(other) => diag.error(
                        span.clone(),
                        format!("server[{i}].default"),
                        format!("{addr} already has a default server: server[{other}]"),
                    ),
                    None => listener.default = Some(i),
                }
            }
            listener.servers.push(i);
        }
    }
    building
        .into_iter()
        .map(|b| {
            let names = NameIndex::new(
                b.servers
                    .iter()
                    .flat_map(|&s| servers[s].names.iter().map(move |(name, _)| (name, s))),
            );
            Listener {
                addr: b.addr,
                default_server: b.default.unwrap_or(b.servers[0]),
                servers: b.servers,
                names,
            }
        })
        .collect()
}

fn name_text(name: &ServerName) -> String {
    match name {
        ServerName::Exact(host) => format!("{host:?}"),
        ServerName::Wildcard(suffix) => format!("\"*{suffix}\""),
    }
}
