//! The benchmark backend: an HTTP/1.1 keep-alive server that answers every
//! request with the same fixed body, served thread-per-core (`server`).

mod connection;

use std::io;
use std::net::SocketAddr;

use crate::runtime::DriverChoice;
use crate::server::{ServeConfig, ServeError, Servers};
use connection::Responses;

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub listen: SocketAddr,
    pub body_size: usize,
    pub threads: usize,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
}

/// A running backend; dropping it leaves the threads serving.
pub struct Backend {
    servers: Servers,
}

impl Backend {
    /// Binds every thread's listener, then starts serving.
    pub fn start(config: &BackendConfig) -> Result<Backend, ServeError> {
        let serve = ServeConfig {
            listen: config.listen,
            threads: config.threads,
            pin_cpus: config.pin_cpus.clone(),
            driver: config.driver,
            name: "ringway-backend",
        };
        let body_size = config.body_size;
        let servers = Servers::start(
            &serve,
            move || Responses::new(body_size),
            |responses, stream| async move { connection::serve(stream, &responses).await },
        )?;
        Ok(Backend { servers })
    }

    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.servers.addr()
    }

    /// Stops accepting, drops every connection and waits for the threads.
    pub fn stop(self) -> io::Result<()> {
        self.servers.stop()
    }

    /// Serves until a thread fails (the CLI runs until it is killed).
    pub fn wait(self) -> io::Result<()> {
        self.servers.wait()
    }
}
