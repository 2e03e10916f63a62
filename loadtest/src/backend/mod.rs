//! The benchmark backend: an HTTP/1.1 keep-alive server that answers every
//! request with the same fixed body, and every WebSocket handshake with an
//! echo, served thread-per-core (`server`), over TLS when given a
//! certificate.

mod connection;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use monoio_rustls::TlsAcceptor;
use rustls::ServerConfig;

use crate::runtime::DriverChoice;
use crate::server::{ServeConfig, ServeError, Servers, StopSignals};
use connection::Responses;

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub listen: SocketAddr,
    pub body_size: usize,
    pub threads: usize,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
    /// Serve TLS with this configuration.
    pub tls: Option<Arc<ServerConfig>>,
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
        let acceptor = config.tls.clone().map(TlsAcceptor::from);
        let servers = Servers::start(
            &serve,
            move || (Responses::new(body_size), acceptor.clone()),
            |state, stream| async move {
                let (responses, acceptor) = &*state;
                match acceptor {
                    None => connection::serve(stream, responses).await,
                    Some(acceptor) => {
                        // A failed handshake just ends the connection; the
                        // client counts it.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            connection::serve(stream, responses).await;
                        }
                    }
                }
            },
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

    /// Serves until a thread fails or the process gets SIGTERM or SIGINT.
    pub fn wait(self, signals: StopSignals) -> io::Result<()> {
        self.servers.wait(signals)
    }
}
