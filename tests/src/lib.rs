//! Helpers for ringway's black-box integration tests (`tests/integration.rs`).
//!
//! The tests see ringway only as users do: its command line, its config file, and its sockets.
//! `proxy` runs the binary, `backend` provides mock upstreams named by behaviour, `http` is an
//! independent strict HTTP/1.1 reader used by both sides (its types in `message`), and
//! `request` builds raw requests.
//! Nothing here needs a network beyond 127.0.0.1 or a server the tests do not start themselves.

pub mod backend;
pub mod binary;
pub mod http;
pub mod message;
pub mod proxy;
pub mod request;
pub mod tls;
pub mod ws;

pub use backend::Backend;
pub use http::{Framing, HttpStream, ReadError, Request, Response};
pub use proxy::{Driver, LISTEN, Ringway};

/// Generates one `#[test]` per monoio driver for `fn NAME(driver: Driver)`: a module `NAME`
/// holding the tests `io_uring` and `epoll`, so `cargo test epoll` selects one driver. (Rust's
/// `macro_rules!` cannot build the identifier `NAME_io_uring` without a proc-macro crate.)
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn io_uring() {
                    if $crate::io_uring_usable() {
                        super::$name($crate::Driver::IoUring)
                    }
                }

                #[test]
                fn epoll() {
                    super::$name($crate::Driver::Epoll)
                }
            }
        )+
    };
}

/// Can this machine run the io_uring driver? Containers with a seccomp filter
/// or `kernel.io_uring_disabled` refuse `io_uring_setup`; there the io_uring
/// variant of each test reports itself skipped (the epoll variant still runs),
/// unless `RINGWAY_REQUIRE_IO_URING=1` makes that a failure.
pub fn io_uring_usable() -> bool {
    static USABLE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let probe = USABLE.get_or_init(probe_io_uring);
    match probe {
        Ok(()) => true,
        Err(why) if std::env::var_os("RINGWAY_REQUIRE_IO_URING").is_some_and(|v| v == "1") => {
            panic!("io_uring required by RINGWAY_REQUIRE_IO_URING=1 but unusable: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED on io_uring: {why} (the epoll variant runs)");
            false
        }
    }
}

fn probe_io_uring() -> Result<(), String> {
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) reads and writes only the 120-byte params
    // buffer passed to it, which lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(format!(
            "io_uring_setup failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` was just returned by io_uring_setup and is owned here.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// `[limits]` for tests that do not test limits: a header timeout short enough that a stuck
/// test fails fast, long enough to tell a 400 from a 408.
pub const TEST_LIMITS: &str = r#"header_timeout = "3s""#;

/// A config with the access log off, one named upstream `app` at `upstream` and
/// one server on `@LISTEN@` whose routes are `routes` (`[[server.route]]` tables).
pub fn app_config(upstream: std::net::SocketAddr, routes: &str) -> String {
    format!(
        "[log]\naccess = \"off\"\n[upstreams.app]\nservers = [\"{upstream}\"]\n[[server]]\nlisten = [\"{LISTEN}\"]\n{routes}"
    )
}

/// The usual config: one named upstream `app` at `upstream`, one server on `@LISTEN@` with a
/// catch-all proxy route, the access log on stdout, and short timeouts so the failure tests
/// finish quickly. `limits` is the body of `[limits]` (e.g. `TEST_LIMITS`).
pub fn proxy_config(upstream: std::net::SocketAddr, limits: &str) -> String {
    format!(
        r#"[runtime]
shutdown_timeout = "1s"

[log]
access = "stdout"

[limits]
{limits}

[upstreams.app]
servers = ["{upstream}"]
keepalive = 8
read_timeout = "2s"

[[server]]
listen = ["{LISTEN}"]

  [[server.route]]
  prefix = "/"
  proxy = "app"
"#
    )
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failing body can be regenerated.
pub fn pseudo_random_body(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests;
