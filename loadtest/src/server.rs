//! Thread-per-core serving, shared by the backend and the floor relay: each
//! thread has its own runtime and its own SO_REUSEPORT listener on the same
//! address, so the kernel spreads connections over threads and nothing is
//! shared while serving. Every accepted connection becomes a task on the
//! thread that accepted it.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use monoio::net::{TcpListener, TcpStream};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::{Domain, Socket, Type};

use crate::runtime::{self, DriverChoice};

/// Pending connections the kernel queues per listener.
const BACKLOG: i32 = 4096;
/// How often a serving thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Pause after a failed accept (e.g. EMFILE) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub threads: usize,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
    /// Thread names are `{name}-{index}`.
    pub name: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("at least one thread is needed")]
    NoThreads,
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start a serving thread: {0}")]
    Spawn(io::Error),
}

/// Serving threads; dropping this leaves them serving.
pub struct Servers {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

/// SIGTERM and SIGINT, caught from when this is made. A command makes it
/// before it binds its listeners: a signal sent as soon as the port answers
/// (compare's, or a test's) then stops the server through `Servers::wait`
/// instead of killing the process with the signal's default action.
pub struct StopSignals(Signals);

impl StopSignals {
    pub fn catch() -> io::Result<StopSignals> {
        Ok(StopSignals(Signals::new([SIGTERM, SIGINT])?))
    }
}

impl Servers {
    /// Binds every thread's listener, then starts serving: each thread calls
    /// `setup()` once on its runtime and `handle(state, stream)` for every
    /// accepted connection. Binding happens here, before any thread starts,
    /// so that errors reach the caller and port 0 resolves to one port
    /// shared by all threads.
    pub fn start<S, Setup, Handle, Fut>(
        config: &ServeConfig,
        setup: Setup,
        handle: Handle,
    ) -> Result<Servers, ServeError>
    where
        S: 'static,
        Setup: Fn() -> S + Send + Clone + 'static,
        Handle: Fn(Rc<S>, TcpStream) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if config.threads == 0 {
            return Err(ServeError::NoThreads);
        }
        let listen_error = |addr| move |source| ServeError::Listen { addr, source };
        let first = reuseport_listener(config.listen).map_err(listen_error(config.listen))?;
        let addr = first.local_addr().map_err(listen_error(config.listen))?;
        let mut listeners = vec![first];
        for _ in 1..config.threads {
            listeners.push(reuseport_listener(addr).map_err(listen_error(addr))?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(config.threads);
        for (index, listener) in listeners.into_iter().enumerate() {
            let cpu = config
                .pin_cpus
                .as_ref()
                .and_then(|cpus| cpus.get(index.checked_rem(cpus.len())?).copied());
            let stop = Arc::clone(&stop);
            let (setup, handle, choice) = (setup.clone(), handle.clone(), config.driver);
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", config.name))
                .spawn(move || {
                    if let Some(id) = cpu {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    runtime::block_on(choice, |_| async move {
                        let listener = TcpListener::from_std(listener)?;
                        let state = Rc::new(setup());
                        monoio::select! {
                            () = accept_loop(&listener, &state, &handle) => {}
                            () = wait_for_stop(&stop) => {}
                        }
                        // Leaving block_on drops the runtime and, with it,
                        // every connection task.
                        Ok(())
                    })?
                    .1
                })
                .map_err(ServeError::Spawn)?;
            threads.push(thread);
        }
        Ok(Servers {
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

    /// Serves until a thread fails or the process gets SIGTERM or SIGINT
    /// (caught since `signals` was made), which stop it as `stop` does: the
    /// process then exits normally, so that exit handlers run (a profiling
    /// runtime writes its profile then; `build_pgo.sh` trains the floor
    /// relay so).
    pub fn wait(mut self, signals: StopSignals) -> io::Result<()> {
        let StopSignals(mut signals) = signals;
        let signalled = signals.handle();
        let stop = Arc::clone(&self.stop);
        let watcher = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    stop.store(true, Ordering::Relaxed);
                }
            })?;
        let result = self.join();
        signalled.close();
        let _ = watcher.join();
        result
    }

    fn join(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for handle in self.threads.drain(..) {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a serving thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

/// A non-blocking listener with SO_REUSEPORT, so that every thread can bind
/// the same address.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // monoio's epoll driver needs non-blocking sockets; io_uring accepts both.
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

async fn accept_loop<S, Handle, Fut>(listener: &TcpListener, state: &Rc<S>, handle: &Handle)
where
    S: 'static,
    Handle: Fn(Rc<S>, TcpStream) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Nagle's algorithm would hold small responses back.
                let _ = stream.set_nodelay(true);
                monoio::spawn(handle(Rc::clone(state), stream));
            }
            Err(error) => {
                eprintln!("accept failed: {error}");
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
