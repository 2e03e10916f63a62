//! ringway's black-box integration tests: the real binary, real sockets, mock backends.
//!
//! One module per concern. Every test that runs the proxy runs once per monoio driver
//! (`both_drivers!`), so `cargo test -p ringway-tests epoll` selects the epoll half.

#[path = "integration/access_log.rs"]
mod access_log;
#[path = "integration/admin.rs"]
mod admin;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/connections.rs"]
mod connections;
#[path = "integration/headers.rs"]
mod headers;
#[path = "integration/limits.rs"]
mod limits;
#[path = "integration/proxying.rs"]
mod proxying;
#[path = "integration/reload.rs"]
mod reload;
#[path = "integration/routing.rs"]
mod routing;
#[path = "integration/smuggling.rs"]
mod smuggling;
#[path = "integration/splice.rs"]
mod splice;
#[path = "integration/tls.rs"]
mod tls;
#[path = "integration/tls_more.rs"]
mod tls_more;
#[path = "integration/upstream_faults.rs"]
mod upstream_faults;
#[path = "integration/websocket.rs"]
mod websocket;
