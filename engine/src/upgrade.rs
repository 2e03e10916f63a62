//! Upgrade requests on proxy routes (RFC 9110 §7.8): refuse what must not
//! reach the upstream, and when the upstream switches protocols, answer the
//! client with its 101 and hand both connections to `tunnel`.

use bytes::{Bytes, BytesMut};
use ringway_protocol::h1::{HeadLimits, RequestHead, ResponseHead};
use ringway_protocol::{
    ClientResponse, HeaderEdit, UpgradeRequest, classify_upgrade, parse_request,
    write_response_head, write_simple_response,
};

use crate::buffer::write_vec;
use crate::clock::Stamp;
use crate::downstream::{Connection, Outcome, error_page};
use crate::snapshot::{Route, Server};
use crate::tunnel::Pending;
use crate::upstream::UpstreamConn;
use crate::vars::with_edits;

/// Does `head` ask for an upgrade this route lets through? `Err` is the
/// answer already sent: 400 or 426 (with the version ringway speaks, RFC 6455
/// §4.4) for a broken WebSocket handshake, which the upstream never sees;
/// 403 when the route says `websocket = false`. Refusing, rather than
/// stripping the upgrade and forwarding a plain request, gives the client a
/// clear error instead of an HTTP page where it expects a 101.
pub async fn admit(
    conn: &mut Connection<'_>,
    head: &RequestHead,
    server: &Server,
    route: &Route,
) -> Result<bool, Outcome> {
    let error = match classify_upgrade(head) {
        Ok(UpgradeRequest::None) => return Ok(false),
        Ok(_) if route.websocket => return Ok(true),
        Ok(_) => 403,
        Err(e) => {
            tracing::debug!(peer = %conn.peer, "refused upgrade: {e}");
            e.status()
        }
    };
    if error != 426 {
        return Err(conn
            .respond_error(head, server, Some(route), error, false)
            .await);
    }
    let close = !head.keep_alive();
    let page = error_page(426);
    let mut out = std::mem::take(&mut conn.bufs.out);
    let vars = conn.vars(head, head.path());
    with_edits(
        &[&server.response_headers, &route.response_headers],
        Some(&vars),
        &mut conn.bufs.arena,
        |edits| {
            let mut all = edits.to_vec();
            all.push(HeaderEdit {
                name: b"sec-websocket-version",
                value: Some(b"13"),
            });
            write_simple_response(
                &mut out,
                426,
                Some(b"text/html"),
                &all,
                page.as_bytes(),
                close,
                false,
            );
        },
    );
    Err(conn.send_out(out, 426, page.len() as u64, close).await)
}

/// The upstream answered 101: send its head to the client (hop-by-hop
/// fields dropped, Upgrade kept, response_headers applied) and leave the
/// upstream connection in `conn.upgrade` for `downstream::serve` to tunnel.
#[allow(clippy::too_many_arguments)] // the parts of one exchange
pub async fn switch(
    conn: &mut Connection<'_>,
    server: &Server,
    route: &Route,
    head: &RequestHead,
    path: &[u8],
    up: Box<UpstreamConn>,
    response: &ResponseHead,
) -> Outcome {
    let mut out = std::mem::take(&mut conn.bufs.out);
    {
        let vars = conn.vars(head, path);
        with_edits(
            &[&server.response_headers, &route.response_headers],
            Some(&vars),
            &mut conn.bufs.arena,
            |edits| {
                let client = ClientResponse {
                    client_version: head.version(),
                    close: false,
                    dechunk: false,
                    edits,
                };
                write_response_head(&mut out, response, &client);
            },
        );
    }
    let (result, out) = write_vec(&mut conn.stream, out).await;
    conn.bufs.out = out;
    let addr = up.addr;
    let outcome = Outcome {
        status: 101,
        body_bytes: 0,
        keep_alive: false,
        upstream: Some(addr),
    };
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, "client gone before the 101: {e}");
        return Outcome {
            status: 499,
            ..outcome
        };
    }
    conn.upgrade = Some(Pending {
        // Copied out so that the upstream's read buffer is freed now.
        early: Bytes::copy_from_slice(&up.buf),
        upstream: up.stream,
        addr,
        idle_timeout: route.idle_timeout,
        started: Stamp::default(),
        log_head: None,
    });
    outcome
}

/// A copy of `head` in an allocation of its own size: the original shares
/// the connection's read buffer, which an idle tunnel should not keep.
pub fn compact(head: &RequestHead) -> Option<RequestHead> {
    let mut bytes = BytesMut::from(head.bytes());
    let limits = HeadLimits {
        max_head_size: bytes.len() + 1,
        max_headers: head.headers().count() + 1,
    };
    parse_request(&mut bytes, &limits, Vec::new())
        .ok()
        .flatten()
}
