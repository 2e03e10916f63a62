//! `[[server]]` blocks to `snapshot::Server`, and their `listen` addresses to
//! `snapshot::Listener`s.
//!
//! A listener exists once per distinct address however many servers share it;
//! its default server is the one marked `default = true`, else the first in the
//! file (nginx's rule). Names must be unique per address, or which server gets a
//! request would depend on file order. An address is TLS (`"ADDR tls"`) for all
//! its servers or for none, and every server on a TLS address has a certificate.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use toml::Spanned;

use super::document::Document;
use super::error::Diagnostics;
use super::headers::compile_header_edits;
use super::raw::{List, RawServer};
use super::route::compile_route;
use super::tls::load_certified_key;
use super::units::Size;
use super::upstream::Upstreams;
use crate::acl::{self, Acl};
use crate::route::RouteTable;
use crate::snapshot::{HeaderEdit, HeaderEdits, Limits, Listener, NameIndex, Server, ServerName};
use crate::template::Template;
use crate::tls::{SniResolver, TicketKey, provider, server_config};

/// One `listen` entry: the address, whether it is TLS, and where it is written.
struct ListenAddr {
    addr: SocketAddr,
    tls: bool,
    /// Position in the server's `listen` list, for key paths.
    index: usize,
    span: Range<usize>,
}

/// What a server contributes to listeners, kept until all servers are compiled.
struct ServerAddrs {
    addrs: Vec<ListenAddr>,
    /// The server's certificate, when `tls` is set and loaded.
    cert: Option<Arc<CertifiedKey>>,
    default: Option<Range<usize>>,
    /// Names with their spans, for duplicate reports.
    names: Vec<(ServerName, Range<usize>)>,
}

pub(crate) fn compile_servers(
    raw: &[Spanned<RawServer>],
    doc: &Document,
    limits: &Limits,
    base: Option<&Path>,
    upstreams: &mut Upstreams,
    diag: &mut Diagnostics<'_>,
) -> (Vec<Server>, Vec<Listener>) {
    let provider = provider();
    let mut servers = Vec::with_capacity(raw.len());
    let mut addrs = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.iter().enumerate() {
        let (server, server_addrs) =
            compile_server(i, spanned, doc, limits, base, &provider, upstreams, diag);
        servers.push(server);
        addrs.push(server_addrs);
    }
    let listeners = build_listeners(&addrs, &provider, diag);
    (servers, listeners)
}

#[allow(clippy::too_many_arguments)] // the context of one server block
fn compile_server(
    i: usize,
    spanned: &Spanned<RawServer>,
    doc: &Document,
    limits: &Limits,
    base: Option<&Path>,
    provider: &CryptoProvider,
    upstreams: &mut Upstreams,
    diag: &mut Diagnostics<'_>,
) -> (Server, ServerAddrs) {
    let raw = spanned.get_ref();
    let path = format!("server[{i}]");

    let addrs = compile_listen(&raw.listen, spanned, doc, &path, diag);
    let cert = raw
        .tls
        .as_ref()
        .and_then(|tls| load_certified_key(tls, base, provider, &format!("{path}.tls"), diag));
    check_tls_addresses(raw, &addrs, &path, diag);
    let names = compile_names(&raw.names, &path, diag);
    let max_body_size = server_body_limit(&raw.max_body_size, limits);
    let response_headers = compile_header_edits(
        &raw.response_headers,
        &format!("{path}.response_headers"),
        diag,
    );
    let tls_response_headers = with_hsts(&response_headers, raw.hsts.as_ref(), &path, diag);
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
        tls_response_headers,
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
            cert,
            default,
            names,
        },
    )
}

/// A TLS address needs this server's certificate, and a certificate needs a
/// TLS address to be presented on.
fn check_tls_addresses(
    raw: &RawServer,
    addrs: &[ListenAddr],
    path: &str,
    diag: &mut Diagnostics<'_>,
) {
    match &raw.tls {
        None => {
            for addr in addrs.iter().filter(|a| a.tls) {
                diag.error(
                    addr.span.clone(),
                    format!("{path}.listen[{}]", addr.index),
                    format!(
                        "no certificate for the TLS address {}: add tls = {{ cert = \"...\", key = \"...\" }} to this server",
                        addr.addr
                    ),
                );
            }
        }
        Some(tls) if !addrs.is_empty() && !addrs.iter().any(|a| a.tls) => diag.error(
            tls.span(),
            format!("{path}.tls"),
            "no listen address of this server is TLS: mark one with \" tls\", e.g. \"0.0.0.0:443 tls\"",
        ),
        Some(_) => {}
    }
}

/// `response_headers` with `Strict-Transport-Security: <hsts>` (RFC 6797 §6.1)
/// added, for responses over TLS; an explicit header of that name is replaced.
fn with_hsts(
    headers: &HeaderEdits,
    hsts: Option<&Spanned<String>>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> HeaderEdits {
    let mut edits = headers.clone();
    let Some(value) = hsts else {
        return edits;
    };
    let text = value.get_ref().trim();
    let key_path = format!("{path}.hsts");
    if text.contains(['\r', '\n', '\0']) || text.is_empty() {
        diag.error(
            value.span(),
            key_path,
            "`hsts` needs a header value without CR, LF or NUL, e.g. \"max-age=63072000\"",
        );
        return edits;
    }
    if !text.to_ascii_lowercase().contains("max-age=") {
        diag.error(
            value.span(),
            key_path,
            format!(
                "{text:?}: Strict-Transport-Security requires max-age (RFC 6797 §6.1.1), e.g. \"max-age=63072000\""
            ),
        );
        return edits;
    }
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(message) => {
            diag.error(value.span(), key_path, message);
            return edits;
        }
    };
    let name = Bytes::from_static(b"strict-transport-security");
    edits.edits.retain(|e| e.name != name);
    edits.edits.push(HeaderEdit {
        name,
        value: Some(template),
    });
    edits
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
) -> Vec<ListenAddr> {
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
    let mut addrs: Vec<ListenAddr> = Vec::new();
    for (k, entry) in list.get_ref().iter().enumerate() {
        let entry_path = format!("{path}.listen[{k}]");
        match parse_listen(entry.get_ref()) {
            Ok((addr, _)) if addrs.iter().any(|a| a.addr == addr) => {
                diag.error(entry.span(), entry_path, format!("{addr} is listed twice"));
            }
            Ok((addr, tls)) => addrs.push(ListenAddr {
                addr,
                tls,
                index: k,
                span: entry.span(),
            }),
            Err(message) => diag.error(entry.span(), entry_path, message),
        }
    }
    addrs
}

/// `"IP:PORT"` (`"[::]:443"` for IPv6), with `" tls"` (or nginx's `" ssl"`)
/// for a TLS address. Host names are refused: a listener binds an address,
/// and a name could resolve differently at each reload.
pub(crate) fn parse_listen(s: &str) -> Result<(SocketAddr, bool), String> {
    let t = s.trim();
    let (t, tls) = match t.strip_suffix(" tls").or_else(|| t.strip_suffix(" ssl")) {
        Some(addr) => (addr.trim_end(), true),
        None => (t, false),
    };
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok((addr, tls));
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

fn build_listeners(
    servers: &[ServerAddrs],
    provider: &Arc<CryptoProvider>,
    diag: &mut Diagnostics<'_>,
) -> Vec<Listener> {
    struct Building {
        addr: SocketAddr,
        tls: bool,
        servers: Vec<usize>,
        default: Option<usize>,
    }
    let mut building: Vec<Building> = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for listen in &server.addrs {
            let addr = listen.addr;
            let at = match building.iter().position(|l| l.addr == addr) {
                Some(at) => at,
                None => {
                    building.push(Building {
                        addr,
                        tls: listen.tls,
                        servers: Vec::new(),
                        default: None,
                    });
                    building.len() - 1
                }
            };
            let listener = &mut building[at];
            if listener.tls != listen.tls {
                let (this, other) = if listen.tls {
                    ("TLS", "plain HTTP")
                } else {
                    ("plain HTTP", "TLS")
                };
                diag.error(
                    listen.span.clone(),
                    format!("server[{i}].listen[{}]", listen.index),
                    format!(
                        "{addr} is {this} here but {other} in server[{}]: all servers on one address must agree (add or remove \" tls\")",
                        listener.servers[0]
                    ),
                );
            }
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
    // One ticket key for every TLS address of this snapshot, made only if
    // there is one (a config without TLS needs no randomness).
    let mut tickets: Option<Arc<TicketKey>> = None;
    building
        .into_iter()
        .map(|b| {
            let names = NameIndex::new(
                b.servers
                    .iter()
                    .flat_map(|&s| servers[s].names.iter().map(move |(name, _)| (name, s))),
            );
            let default_server = b.default.unwrap_or(b.servers[0]);
            let tls = if b.tls {
                tls_config(
                    &b.servers,
                    servers,
                    &names,
                    default_server,
                    provider,
                    &mut tickets,
                    diag,
                )
            } else {
                None
            };
            Listener {
                addr: b.addr,
                default_server,
                servers: b.servers,
                names,
                tls,
            }
        })
        .collect()
}

/// The rustls config of one TLS address; `None` (with an error recorded) if a
/// certificate is missing, so the snapshot is never built.
fn tls_config(
    on_addr: &[usize],
    servers: &[ServerAddrs],
    names: &NameIndex,
    default_server: usize,
    provider: &Arc<CryptoProvider>,
    tickets: &mut Option<Arc<TicketKey>>,
    diag: &mut Diagnostics<'_>,
) -> Option<Arc<rustls::ServerConfig>> {
    let mut certs = vec![None; servers.len()];
    for &s in on_addr {
        certs[s] = Some(servers[s].cert.clone()?);
    }
    let tickets = match tickets {
        Some(t) => t.clone(),
        None => match TicketKey::new() {
            Ok(key) => tickets.insert(Arc::new(key)).clone(),
            Err(_) => {
                diag.error(0..0, "", "no randomness for the TLS session ticket key");
                return None;
            }
        },
    };
    let resolver = SniResolver::new(names.clone(), default_server, certs);
    match server_config(provider.clone(), resolver, tickets) {
        Ok(config) => Some(config),
        Err(e) => {
            diag.error(0..0, "", format!("TLS configuration: {e}"));
            None
        }
    }
}

fn name_text(name: &ServerName) -> String {
    match name {
        ServerName::Exact(host) => format!("{host:?}"),
        ServerName::Wildcard(suffix) => format!("\"*{suffix}\""),
    }
}
