//! The request variables of DESIGN.md §2.2 (`$host`, `$remote_addr`, ...) for
//! one request, and the expansion of header edits that use them.

use std::io::Write;
use std::net::SocketAddr;

use ringway_protocol::HeaderEdit;
use ringway_protocol::h1::RequestHead;

use crate::snapshot::HeaderEdits;
use crate::template::{Variable, Variables};

pub struct RequestVars<'a> {
    pub head: &'a RequestHead,
    pub peer: SocketAddr,
    pub scheme: &'a [u8],
    pub server_port: u16,
    /// The normalised path (`$uri`).
    pub uri: &'a [u8],
}

impl Variables for RequestVars<'_> {
    fn write_var(&self, var: &Variable, out: &mut Vec<u8>) {
        let head = self.head;
        match var {
            Variable::Host => {
                let host = head.host().unwrap_or_default();
                let host = strip_port(host);
                out.extend(host.iter().map(u8::to_ascii_lowercase));
            }
            Variable::HttpHost => out.extend_from_slice(head.host().unwrap_or_default()),
            Variable::Scheme => out.extend_from_slice(self.scheme),
            Variable::RemoteAddr => {
                let _ = write!(out, "{}", self.peer.ip().to_canonical());
            }
            Variable::RemotePort => {
                let _ = write!(out, "{}", self.peer.port());
            }
            Variable::ServerPort => {
                let _ = write!(out, "{}", self.server_port);
            }
            Variable::RequestUri => out.extend_from_slice(head.target()),
            Variable::Uri => out.extend_from_slice(self.uri),
            Variable::Args => out.extend_from_slice(head.query().unwrap_or_default()),
            Variable::RequestMethod => out.extend_from_slice(head.method_bytes()),
            Variable::Http(name) => {
                if let Some(v) = head.header(name) {
                    out.extend_from_slice(v);
                }
            }
        }
    }
}

/// `host[:port]` or `[v6]:port` without the port.
pub fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Up to this many edits per response are expanded without allocating; more
/// (a config with very long header lists) fall back to the heap.
const INLINE_EDITS: usize = 32;

/// Expand the edits of `lists` (later lists win over earlier ones for the same
/// header) into `arena` and call `f` with the resulting edit list. Literal
/// values are borrowed, not copied; nothing is allocated besides the growth of
/// `arena`, which the connection keeps from request to request.
pub fn with_edits<R>(
    lists: &[&HeaderEdits],
    vars: Option<&RequestVars<'_>>,
    arena: &mut Vec<u8>,
    f: impl FnOnce(&[HeaderEdit<'_>]) -> R,
) -> R {
    let total: usize = lists.iter().map(|l| l.edits.len()).sum();
    if total == 0 {
        return f(&[]);
    }
    arena.clear();
    // First pass: expand templated values into the arena, remembering byte
    // ranges (the arena may move while it grows, so no slices yet).
    let mut inline_ranges = [(0usize, 0usize); INLINE_EDITS];
    let mut heap_ranges;
    let ranges: &mut [(usize, usize)] = if total <= INLINE_EDITS {
        &mut inline_ranges[..total]
    } else {
        heap_ranges = vec![(0, 0); total];
        &mut heap_ranges
    };
    let all_edits = lists.iter().flat_map(|l| l.edits.iter());
    for (range, edit) in ranges.iter_mut().zip(all_edits) {
        if let Some(template) = &edit.value
            && template.literal().is_none()
        {
            let start = arena.len();
            if let Some(vars) = vars {
                template.expand(vars, arena);
            }
            *range = (start, arena.len());
        }
    }
    let arena = &*arena;
    let unset = HeaderEdit {
        name: &[],
        value: None,
    };
    let mut inline_edits = [unset; INLINE_EDITS];
    let mut heap_edits;
    let edits: &mut [HeaderEdit<'_>] = if total <= INLINE_EDITS {
        &mut inline_edits
    } else {
        heap_edits = vec![unset; total];
        &mut heap_edits
    };
    let mut n = 0;
    let mut k = 0;
    for (li, list) in lists.iter().enumerate() {
        for edit in &list.edits {
            let value = edit.value.as_ref().map(|t| match t.literal() {
                Some(lit) => &lit[..],
                None => &arena[ranges[k].0..ranges[k].1],
            });
            k += 1;
            let overridden = lists[li + 1..]
                .iter()
                .any(|later| later.edits.iter().any(|x| x.name == edit.name));
            if !overridden {
                edits[n] = HeaderEdit {
                    name: &edit.name,
                    value,
                };
                n += 1;
            }
        }
    }
    f(&edits[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::snapshot::Action;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port(b"example.com:8080"), b"example.com");
        assert_eq!(strip_port(b"example.com"), b"example.com");
        assert_eq!(strip_port(b"[::1]:8080"), b"[::1]");
        assert_eq!(strip_port(b"[::1]"), b"[::1]");
    }

    #[test]
    fn redirect_with_hsts_expands_without_allocating() {
        let snapshot = load_str(
            r#"
[[server]]
listen = ["127.0.0.1:80"]
hsts = "max-age=63072000"
response_headers = { "X-Frame-Options" = "DENY", "X-Host" = "$host" }
  [[server.route]]
  prefix = "/"
  redirect = "https://$host$request_uri"
  response_headers = { "X-Frame-Options" = "" }
"#,
            "vars.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let server = &snapshot.servers[0];
        let route = &server.routes.routes()[0];
        let Action::Redirect { location, .. } = &route.action else {
            panic!("not a redirect");
        };
        let limits = ringway_protocol::h1::HeadLimits {
            max_head_size: 4096,
            max_headers: 16,
        };
        let mut buf =
            bytes::BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: Example.COM:80\r\n\r\n"[..]);
        let head = ringway_protocol::parse_request(&mut buf, &limits, Vec::with_capacity(16))
            .unwrap()
            .unwrap();
        let vars = RequestVars {
            head: &head,
            peer: "192.0.2.1:5555".parse().unwrap(),
            scheme: b"https",
            server_port: 443,
            uri: b"/a",
        };
        let lists = [
            server.response_headers_for(true),
            &route.response_headers,
            location,
        ];
        let mut arena = Vec::with_capacity(256);
        let mut seen = Vec::with_capacity(8);
        let allocations = crate::route::alloc_counter::allocations_in(|| {
            with_edits(&lists, Some(&vars), &mut arena, |edits| {
                for e in edits {
                    seen.push((e.name.len(), e.value.map(<[u8]>::len)));
                }
            });
        });
        assert_eq!(allocations, 0);
        let mut expected = Vec::new();
        with_edits(&lists, Some(&vars), &mut arena, |edits| {
            for e in edits {
                expected.push((
                    String::from_utf8_lossy(e.name).into_owned(),
                    e.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                ));
            }
        });
        let pairs: Vec<(&str, Option<&str>)> = expected
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("x-host", Some("example.com")),
                ("strict-transport-security", Some("max-age=63072000")),
                ("x-frame-options", None),
                ("location", Some("https://example.com/a?b=1")),
            ]
        );
        assert_eq!(seen.len(), 4);
    }
}
