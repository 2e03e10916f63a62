//! ringway: a thread-per-core HTTP/1.1 reverse proxy on io_uring.
//!
//! `config` turns a file into an immutable `Snapshot`; `engine` binds the
//! listen addresses and starts one `worker` per CPU; each worker serves client
//! connections (`downstream`) and forwards requests (`proxy`) over its own
//! upstream pool (`upstream`); an upgrade (`upgrade`) turns the connection into
//! a `tunnel`. `docs/architecture.md` follows one request.

pub mod access_log;
pub mod acl;
pub mod admin;
pub mod behind;
pub mod buffer;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod deadline;
pub mod demo;
pub mod downstream;
pub mod engine;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod route;
pub mod shutdown;
pub mod snapshot;
pub mod splice;
pub mod stream;
pub mod template;
pub mod tls;
pub mod tunnel;
pub mod upgrade;
pub mod upstream;
pub mod vars;
pub mod worker;

pub use engine::{Engine, Overrides, StartError};
