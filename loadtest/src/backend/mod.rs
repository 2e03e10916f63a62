//! The benchmark backend: an HTTP/1.1 keep-alive server that answers every
//! request with the same fixed body. Each thread has its own runtime and its
//! own SO_REUSEPORT listener on the same address, so the kernel spreads
//! connections over threads and nothing is shared while serving.

mod connection;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use monoio::net::TcpListener;
use socket2::{Domain, Socket, Type};

use crate::runtime::{self, DriverChoice};
use connection::Responses;

/// Pending connections the kernel queues per listener.
const BACKLOG: i32 = 4096;
/// How often a serving thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Pause after a failed accept (e.g. EMFILE) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub listen: SocketAddr,
    pub body_size: usize,
    pub threads: usize,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("at least one thread is needed")]
    NoThreads,
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start a backend thread: {0}")]
    Spawn(io::Error),
}

/// A running backend; dropping it leaves the threads serving.
pub struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Backend {
    /// Binds every thread's listener, then starts serving. Binding happens
    /// here, before any thread starts, so that errors are reported to the
    /// caller and port 0 resolves to one port shared by all threads.
    pub fn start(config: &BackendConfig) -> Result<Backend, BackendError> {
        if config.threads == 0 {
            return Err(BackendError::NoThreads);
        }
        let first = bind(config.listen)?;
        let addr = first.local_addr().map_err(|source| BackendError::Listen {
            addr: config.listen,
            source,
        })?;
        let mut listeners = vec![first];
        for _ in 1..config.threads {
            listeners.push(bind(addr)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(config.threads);
        for (index, listener) in listeners.into_iter().enumerate() {
            let cpu = config
                .pin_cpus
                .as_ref()
                .and_then(|cpus| cpus.get(index.checked_rem(cpus.len())?).copied());
            let stop = Arc::clone(&stop);
            let body_size = config.body_size;
            let choice = config.driver;
            let handle = thread::Builder::new()
                .name(format!("ringway-backend-{index}"))
                .spawn(move || {
                    if let Some(id) = cpu {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    runtime::block_on(choice, |_| serve_thread(listener, body_size, stop))?.1
                })
                .map_err(BackendError::Spawn)?;
            threads.push(handle);
        }
        Ok(Backend {
            addr,
            stop,
            threads,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops every connection and waits for the threads.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Serves until a thread fails (the CLI runs until it is killed).
    pub fn wait(mut self) -> io::Result<()> {
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for handle in self.threads.drain(..) {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a backend thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

fn bind(addr: SocketAddr) -> Result<StdListener, BackendError> {
    let listen_error = |source| BackendError::Listen { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(listen_error)?;
    socket.set_reuse_address(true).map_err(listen_error)?;
    socket.set_reuse_port(true).map_err(listen_error)?;
    // monoio's epoll driver needs non-blocking sockets; io_uring accepts both.
    socket.set_nonblocking(true).map_err(listen_error)?;
    socket.bind(&addr.into()).map_err(listen_error)?;
    socket.listen(BACKLOG).map_err(listen_error)?;
    Ok(socket.into())
}

async fn serve_thread(
    listener: StdListener,
    body_size: usize,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let responses = Rc::new(Responses::new(body_size));
    monoio::select! {
        () = accept_loop(&listener, &responses) => {}
        () = wait_for_stop(&stop) => {}
    }
    // Leaving block_on drops the runtime and, with it, every connection task.
    Ok(())
}

async fn accept_loop(listener: &TcpListener, responses: &Rc<Responses>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let responses = Rc::clone(responses);
                monoio::spawn(async move { connection::serve(stream, &responses).await });
            }
            Err(error) => {
                eprintln!("backend: accept failed: {error}");
                monoio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

async fn wait_for_stop(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        monoio::time::sleep(STOP_POLL).await;
    }
}
