//! Criterion micro-benchmarks for ringway; see `benches/`. This library only
//! holds the sample inputs the benches share.

use ringway_protocol::h1::RequestHead;
use ringway_protocol::{Forwarded, UpstreamRequest};

/// The upstream request the benches write for `head`: its own target, Host
/// "app" when it has none, no upgrade, no header edits.
pub fn upstream_request<'a>(
    head: &'a RequestHead,
    forwarded: &'a Forwarded<'a>,
) -> UpstreamRequest<'a> {
    UpstreamRequest {
        target: head.target(),
        forwarded,
        default_host: b"app",
        pass_upgrade: false,
        edits: &[],
    }
}

/// A small request head, as a load generator sends it.
pub const SMALL_HEAD: &[u8] =
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ringway-load\r\n\r\n";

/// A browser-sized request head (~700 bytes, 12 headers).
pub const BROWSER_HEAD: &[u8] = b"GET /jatos/api/v1/studies?limit=20&offset=40 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/jatos/\r\n\
Connection: keep-alive\r\n\
Cookie: JATOS_SESSION=abcdefghijklmnopqrstuvwxyz0123456789; theme=dark; lang=en\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\r\n";

/// A typical upstream response head (~200 bytes, 6 headers).
pub const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Mon, 23 Nov 2026 10:00:00 GMT\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache\r\n\r\n";

/// A ringway config with `n` prefix routes, `n / 10` regex routes and a catch-all.
pub fn config_with_routes(n: usize) -> String {
    let mut cfg = String::from(
        "[log]\naccess = \"off\"\n[upstreams.app]\nservers = [\"127.0.0.1:9000\"]\n[[server]]\nlisten = [\"127.0.0.1:8080\"]\n",
    );
    for i in 0..n {
        cfg.push_str(&format!(
            "[[server.route]]\nprefix = \"/section{i}/\"\nproxy = \"app\"\n"
        ));
        if i % 10 == 0 {
            cfg.push_str(&format!(
                "[[server.route]]\nregex = '^/api/v{i}/items/\\d+$'\nproxy = \"app\"\n"
            ));
        }
    }
    cfg.push_str("[[server.route]]\nprefix = \"/\"\nproxy = \"app\"\n");
    cfg
}
