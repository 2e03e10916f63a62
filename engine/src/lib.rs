//! ringway: a thread-per-core HTTP/1.1 reverse proxy on io_uring.

pub mod acl;
pub mod config;
pub mod route;
pub mod snapshot;
pub mod template;
