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

/// Expand the edits of `lists` (later lists win over earlier ones for the same
/// header) into `arena` and call `f` with the resulting edit list. Literal
/// values are borrowed, not copied; nothing is allocated when there are no edits.
pub fn with_edits<R>(
    lists: &[&HeaderEdits],
    vars: Option<&RequestVars<'_>>,
    arena: &mut Vec<u8>,
    f: impl FnOnce(&[HeaderEdit<'_>]) -> R,
) -> R {
    if lists.iter().all(|l| l.edits.is_empty()) {
        return f(&[]);
    }
    arena.clear();
    // First pass: expand templated values into the arena, remembering ranges.
    let mut ranges = Vec::new();
    for (li, list) in lists.iter().enumerate() {
        for edit in &list.edits {
            if let Some(template) = &edit.value
                && template.literal().is_none()
            {
                let start = arena.len();
                if let Some(vars) = vars {
                    template.expand(vars, arena);
                }
                ranges.push((li, start, arena.len()));
            }
        }
    }
    let mut edits = Vec::new();
    let mut expanded = ranges.iter();
    for (li, list) in lists.iter().enumerate() {
        for edit in &list.edits {
            let value = match &edit.value {
                None => None,
                Some(t) => match t.literal() {
                    Some(lit) => Some(&lit[..]),
                    None => {
                        let &(_, s, e) = expanded.next().expect("one range per templated edit");
                        Some(&arena[s..e])
                    }
                },
            };
            let overridden = lists[li + 1..]
                .iter()
                .any(|later| later.edits.iter().any(|x| x.name == edit.name));
            if !overridden {
                edits.push(HeaderEdit {
                    name: &edit.name,
                    value,
                });
            }
        }
    }
    f(&edits)
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port(b"example.com:8080"), b"example.com");
        assert_eq!(strip_port(b"example.com"), b"example.com");
        assert_eq!(strip_port(b"[::1]:8080"), b"[::1]");
        assert_eq!(strip_port(b"[::1]"), b"[::1]");
    }
}
