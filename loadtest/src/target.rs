//! The URL under test: where to connect and what to put in the request line
//! and Host header. `http://` and `ws://` are plain, `https://` and
//! `wss://` TLS; the WebSocket schemes only say which transport to use, the
//! mode is chosen by `--ws`.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed and resolved URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `https://` or `wss://`.
    pub tls: bool,
    /// The host as written (brackets of an IPv6 literal included), for SNI.
    pub host: String,
    /// `host[:port]` exactly as written in the URL, for the Host header
    /// (RFC 9112 §3.2: Host carries the authority minus userinfo).
    pub authority: String,
    /// Origin-form request target: path and query, `/` when the URL has none.
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("URL {0:?} must start with http://, https://, ws:// or wss://")]
    UnsupportedScheme(String),
    #[error("URL {0:?} has no host")]
    MissingHost(String),
    #[error("URL {0:?} has an invalid port")]
    InvalidPort(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let (tls, rest) = [
            ("http://", false),
            ("ws://", false),
            ("https://", true),
            ("wss://", true),
        ]
        .iter()
        .find_map(|&(scheme, tls)| Some((tls, url.strip_prefix(scheme)?)))
        .ok_or_else(|| TargetError::UnsupportedScheme(url.to_owned()))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        // The fragment is never sent (RFC 9110 §4.2.4 note on fragments).
        let path = path.split('#').next().unwrap_or_default();
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| TargetError::InvalidPort(url.to_owned()))?;
        if host.is_empty() {
            return Err(TargetError::MissingHost(url.to_owned()));
        }
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|source| TargetError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .next()
            .ok_or_else(|| TargetError::NoAddress(host.to_owned()))?;
        Ok(Target {
            addr,
            tls,
            host: host.to_owned(),
            authority: authority.to_owned(),
            path,
        })
    }
}

/// Splits `host[:port]` or `[v6]:port`; the port defaults to the scheme's.
fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']')?;
        let after = &v6[end + 1..];
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().ok()?,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_authority_and_path() {
        let target = Target::parse("http://127.0.0.1:9000/a/b?c=d#frag").unwrap();
        assert_eq!(target.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(target.authority, "127.0.0.1:9000");
        assert_eq!(target.path, "/a/b?c=d");
    }

    #[test]
    fn defaults_port_and_path() {
        let target = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(target.addr.port(), 80);
        assert_eq!(target.path, "/");
        let query = Target::parse("http://127.0.0.1:81?x=1").unwrap();
        assert_eq!(query.path, "/?x=1");
    }

    #[test]
    fn ipv6_literal_and_userinfo() {
        let target = Target::parse("http://user:pw@[::1]:8080/").unwrap();
        assert_eq!(target.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(target.authority, "[::1]:8080");
    }

    #[test]
    fn tls_schemes_default_to_443() {
        let https = Target::parse("https://localhost/x").unwrap();
        assert!(https.tls);
        assert_eq!(https.addr.port(), 443);
        assert_eq!(https.host, "localhost");
        let wss = Target::parse("wss://127.0.0.1:8443").unwrap();
        assert!(wss.tls && wss.addr.port() == 8443);
        let ws = Target::parse("ws://127.0.0.1").unwrap();
        assert!(!ws.tls && ws.addr.port() == 80);
        assert!(!Target::parse("http://127.0.0.1").unwrap().tls);
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(matches!(
            Target::parse("ftp://127.0.0.1/"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Target::parse("127.0.0.1:80"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Target::parse("http://:80/"),
            Err(TargetError::MissingHost(_))
        ));
        assert!(matches!(
            Target::parse("http://127.0.0.1:99999/"),
            Err(TargetError::InvalidPort(_))
        ));
        assert!(matches!(
            Target::parse("http://[::1/"),
            Err(TargetError::InvalidPort(_))
        ));
    }
}
