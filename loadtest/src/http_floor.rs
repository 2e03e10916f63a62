//! The HTTP floor (`ringway-load floor --http`): the least an HTTP/1.1
//! reverse proxy built like ringway (monoio, httparse) does per request. Each
//! client connection gets one upstream connection; each request head is
//! parsed, its upstream head written (request line, the client's fields but
//! hop-by-hop and forwarding ones, then X-Forwarded-For, X-Real-IP,
//! X-Forwarded-Proto and X-Forwarded-Host), the response head parsed for its
//! length and relayed with its body as the upstream sent it.
//!
//! It validates nothing beyond what httparse does, routes nothing, keeps no
//! pool, timers or metrics: it is a reference for `compare`, between the byte
//! relay (the physical floor) and a full proxy, not a proxy to deploy. What it
//! cannot carry it refuses and closes, never guesses: a request body (501), a
//! response without a length or with an interim status, or followed by
//! bytes it did not announce (502), a head larger than `MAX_HEAD` (431 to
//! the client, 502 for the upstream's). A response that ends short after its
//! head went out closes the connection, as any proxy must.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::time::timeout;

/// Fields a proxy does not pass on: hop-by-hop (RFC 9110 §7.6.1) and the
/// forwarding fields it writes itself.
const DROPPED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
];
/// Fields per head, as ringway's default `max_headers`. httparse writes
/// only those it fills (uninitialised storage, as ringway's parser).
const MAX_FIELDS: usize = 100;
/// A head larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;
/// Bytes read per read from the upstream, as the byte floor's buffer.
const BODY_BUFFER: usize = 64 * 1024;
/// Room kept free for the next read of a head.
const READ_ROOM: usize = 4 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request head that goes upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the head in the client buffer.
    pub head_len: usize,
    /// The client may send another request after this one's response.
    pub keep_alive: bool,
    /// HEAD: the response has no body whatever its Content-Length says.
    pub head_only: bool,
}

/// What the floor answers instead of relaying, then closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    HeadTooLarge,
    BodyNotCarried,
}

impl Refusal {
    fn answer(self) -> &'static [u8] {
        match self {
            Refusal::BadRequest => {
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            Refusal::HeadTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            Refusal::BodyNotCarried => {
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
        }
    }
}

const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// `X-Forwarded-For`, `X-Real-IP` and `X-Forwarded-Proto` of one client,
/// written once per connection.
pub fn forwarding_lines(client: IpAddr) -> Vec<u8> {
    let ip = client.to_canonical();
    format!("X-Forwarded-For: {ip}\r\nX-Real-IP: {ip}\r\nX-Forwarded-Proto: http\r\n").into_bytes()
}

/// Parse the request head at the start of `buf` and write the head that goes
/// upstream into `out`. None while the head is incomplete.
pub fn upstream_head(
    buf: &[u8],
    forwarding: &[u8],
    out: &mut Vec<u8>,
) -> Result<Option<Request>, Refusal> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(Refusal::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(_) => return Err(Refusal::BadRequest),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Refusal::BadRequest);
    };
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut host: &[u8] = b"";
    let (mut close, mut keep_alive) = (false, false);
    for field in req.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("host") {
            host = field.value;
        } else if name.eq_ignore_ascii_case("content-length") {
            if field.value != b"0" {
                return Err(Refusal::BodyNotCarried);
            }
            continue;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::BodyNotCarried);
        } else if name.eq_ignore_ascii_case("connection") {
            for option in field.value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        if DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(forwarding);
    if !host.is_empty() {
        out.extend_from_slice(b"X-Forwarded-Host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Request {
        head_len,
        keep_alive: if minor == 1 {
            !close
        } else {
            keep_alive && !close
        },
        head_only: method == "HEAD",
    }))
}

/// A response the floor cannot frame: no length, chunked, interim, a bad
/// or conflicting Content-Length, a head over `MAX_HEAD` or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrelayable;

/// A response head as the floor relays it.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Head and body bytes: all the client gets of this response.
    pub total: usize,
    /// The upstream connection may carry the next request.
    pub keep_alive: bool,
}

/// Parse the response head at the start of `buf`. None while incomplete;
/// Err for what the floor does not relay.
pub fn response_head(buf: &[u8], head_only: bool) -> Result<Option<Response>, Unrelayable> {
    let mut fields = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let head_len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        _ => return Err(Unrelayable),
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(Unrelayable);
    };
    if status < 200 {
        return Err(Unrelayable);
    }
    let mut length = None;
    let mut close = minor == 0;
    for field in resp.headers.iter() {
        if field.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(field.value).map_err(|_| Unrelayable)?;
            let n: usize = value.parse().map_err(|_| Unrelayable)?;
            if length.is_some_and(|l| l != n) {
                return Err(Unrelayable);
            }
            length = Some(n);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Unrelayable);
        } else if field.name.eq_ignore_ascii_case("connection") {
            close |= field
                .value
                .split(|&b| b == b',')
                .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let body = if head_only || status == 204 || status == 304 {
        0
    } else {
        length.ok_or(Unrelayable)?
    };
    Ok(Some(Response {
        total: head_len + body,
        keep_alive: !close,
    }))
}

/// Relays `client`'s requests to `upstream` until either side closes or a
/// request or response is one the floor does not carry.
pub async fn relay(client: TcpStream, upstream: SocketAddr) {
    let Ok(Ok(server)) = timeout(CONNECT_TIMEOUT, TcpStream::connect_addr(upstream)).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let Ok(peer) = client.peer_addr() else {
        return;
    };
    let mut conn = Connection {
        forwarding: forwarding_lines(peer.ip()),
        client,
        server,
        from_client: Vec::with_capacity(READ_ROOM),
        from_server: Vec::with_capacity(BODY_BUFFER),
        head: Vec::with_capacity(1024),
    };
    while let Ok(true) = conn.exchange().await {}
}

struct Connection {
    forwarding: Vec<u8>,
    client: TcpStream,
    server: TcpStream,
    from_client: Vec<u8>,
    from_server: Vec<u8>,
    head: Vec<u8>,
}

impl Connection {
    /// One request and its response; Ok(true) if the connection goes on.
    async fn exchange(&mut self) -> io::Result<bool> {
        let request = loop {
            if !self.from_client.is_empty() {
                match upstream_head(&self.from_client, &self.forwarding, &mut self.head) {
                    Ok(Some(request)) => break request,
                    Ok(None) => {}
                    Err(refusal) => {
                        write(&mut self.client, refusal.answer()).await?;
                        return Ok(false);
                    }
                }
            }
            if read_into(&mut self.client, &mut self.from_client, READ_ROOM).await? == 0 {
                return Ok(false);
            }
        };
        // Pipelined requests stay for the next exchange.
        self.from_client.drain(..request.head_len);
        let head = std::mem::take(&mut self.head);
        let (written, head) = self.server.write_all(head).await;
        self.head = head;
        written?;

        let response = loop {
            if !self.from_server.is_empty() {
                match response_head(&self.from_server, request.head_only) {
                    Ok(Some(response)) => break response,
                    Ok(None) => {}
                    Err(Unrelayable) => {
                        write(&mut self.client, BAD_GATEWAY).await?;
                        return Ok(false);
                    }
                }
            }
            if read_into(&mut self.server, &mut self.from_server, BODY_BUFFER).await? == 0 {
                write(&mut self.client, BAD_GATEWAY).await?;
                return Ok(false);
            }
        };
        // An upstream that sends more than the response is out of step:
        // nothing of it reaches the client.
        if self.from_server.len() > response.total {
            write(&mut self.client, BAD_GATEWAY).await?;
            return Ok(false);
        }
        let mut left = response.total;
        loop {
            left -= self.from_server.len();
            let buf = std::mem::take(&mut self.from_server);
            let (written, mut buf) = self.client.write_all(buf).await;
            buf.clear();
            self.from_server = buf;
            written?;
            if left == 0 {
                break;
            }
            let n = read_into(&mut self.server, &mut self.from_server, BODY_BUFFER).await?;
            if n == 0 || n > left {
                return Ok(false);
            }
        }
        Ok(request.keep_alive && response.keep_alive)
    }
}

/// Reads into the spare capacity of `buf` (at least `room` bytes of it).
async fn read_into(stream: &mut TcpStream, buf: &mut Vec<u8>, room: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < room {
        buf.reserve(room);
    }
    let len = buf.len();
    let (read, slice) = stream.read(std::mem::take(buf).slice_mut(len..)).await;
    *buf = slice.into_inner();
    read
}

async fn write(stream: &mut TcpStream, bytes: &'static [u8]) -> io::Result<()> {
    stream.write_all(bytes).await.0.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(request: &[u8]) -> (Result<Option<Request>, Refusal>, String) {
        let mut out = Vec::new();
        let forwarding = forwarding_lines("10.0.0.7".parse().unwrap());
        let parsed = upstream_head(request, &forwarding, &mut out);
        (parsed, String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_upstream_head_drops_hop_by_hop_and_forwarding_fields() {
        let request: &[u8] = b"GET /a?b HTTP/1.1\r\nHost: example.org\r\n\
            Connection: keep-alive, TE\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n\
            Accept: */*\r\n\r\nGET /next";
        let (parsed, out) = head(request);
        assert_eq!(
            parsed,
            Ok(Some(Request {
                head_len: request.len() - b"GET /next".len(),
                keep_alive: true,
                head_only: false
            }))
        );
        assert_eq!(
            out,
            "GET /a?b HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\
             X-Forwarded-For: 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: example.org\r\n\r\n"
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let keep = |request: &[u8]| head(request).0.unwrap().unwrap().keep_alive;
        assert!(keep(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!keep(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
        // Without a Host there is no X-Forwarded-Host either.
        assert!(
            head(b"GET / HTTP/1.0\r\n\r\n")
                .1
                .ends_with("X-Forwarded-Proto: http\r\n\r\n")
        );
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(
            head(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
                .0
                .unwrap()
                .unwrap()
                .head_only
        );
    }

    #[test]
    fn what_the_floor_does_not_carry_is_refused() {
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: a\r\n").0, Ok(None));
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
                .0
                .map(|r| r.is_some()),
            Ok(true)
        );
        for refused in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(head(refused).0, Err(Refusal::BodyNotCarried));
        }
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").0,
            Err(Refusal::BadRequest)
        );
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD]].concat();
        assert_eq!(head(&huge).0, Err(Refusal::HeadTooLarge));
    }

    #[test]
    fn responses_are_relayed_by_their_length_or_refused() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            response_head(ok, false),
            Ok(Some(Response {
                total: ok.len(),
                keep_alive: true
            }))
        );
        assert_eq!(
            response_head(ok, true).unwrap().unwrap().total,
            ok.len() - 5
        );
        assert_eq!(response_head(&ok[..20], false), Ok(None));
        let close = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        assert_eq!(
            response_head(close, false),
            Ok(Some(Response {
                total: close.len(),
                keep_alive: false
            }))
        );
        for refused in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            assert_eq!(response_head(refused, false), Err(Unrelayable));
        }
    }
}
