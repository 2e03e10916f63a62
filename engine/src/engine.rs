//! Starting and stopping the data path: bind every listen address once per
//! worker, start the worker threads (pinned, each with its own runtime on
//! io_uring or epoll), publish the snapshot, and stop them again.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once, mpsc};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;

use crate::access_log::AccessLog;
use crate::listener;
use crate::snapshot::{Driver, Snapshot};
use crate::worker::{self, Worker, WorkerListener};

/// Command-line settings that override `[runtime]` of the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub workers: Option<usize>,
    pub buffer_size: Option<usize>,
    pub driver: Option<Driver>,
    pub no_pin: bool,
    pub ring_entries: Option<u32>,
}

impl Overrides {
    pub fn apply(&self, snapshot: &mut Snapshot) {
        let runtime = &mut snapshot.runtime;
        if let Some(workers) = self.workers {
            runtime.workers = workers;
        }
        if let Some(size) = self.buffer_size {
            runtime.buffer_size = size;
        }
        if let Some(driver) = self.driver {
            runtime.driver = driver;
        }
        if self.no_pin {
            runtime.pin = false;
        }
        if let Some(entries) = self.ring_entries {
            runtime.ring_entries = entries;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("worker {worker}: {message}")]
    Worker { worker: usize, message: String },
    #[error("cannot start worker thread: {0}")]
    Spawn(std::io::Error),
}

/// The I/O driver a worker ended up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverInUse {
    IoUring,
    Epoll,
}

impl DriverInUse {
    pub fn name(self) -> &'static str {
        match self {
            DriverInUse::IoUring => "io_uring",
            DriverInUse::Epoll => "epoll",
        }
    }
}

/// A running data path.
pub struct Engine {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
    drivers: Vec<DriverInUse>,
    snapshots: Arc<ArcSwap<Snapshot>>,
}

impl Engine {
    /// Bind, start the workers and wait until each runs (or failed to start).
    pub fn start(snapshot: Snapshot) -> Result<Engine, StartError> {
        let runtime = snapshot.runtime.clone();
        let workers = match runtime.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
        let mut addrs = Vec::with_capacity(snapshot.listeners.len());
        for (index, l) in snapshot.listeners.iter().enumerate() {
            let bound = listener::bind(l.addr, workers).map_err(|source| StartError::Bind {
                addr: l.addr,
                source,
            })?;
            addrs.push(bound.addr);
            for (w, socket) in bound.sockets.into_iter().enumerate() {
                per_worker[w].push(WorkerListener {
                    listener: index,
                    socket,
                });
            }
        }
        let access = (snapshot.log.access.clone(), snapshot.log.format);
        let snapshots = Arc::new(ArcSwap::from_pointee(snapshot));
        let stop = Arc::new(AtomicBool::new(false));
        let cores = if runtime.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        for (index, listeners) in per_worker.into_iter().enumerate() {
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let snapshots = snapshots.clone();
            let stop = stop.clone();
            let ready = ready_tx.clone();
            let access = access.clone();
            let runtime = runtime.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringway-w{index}"))
                .spawn(move || {
                    if let Some(core) = core
                        && !core_affinity::set_for_current(core)
                    {
                        tracing::warn!(worker = index, "could not pin to CPU {}", core.id);
                    }
                    let access_log = match AccessLog::open(&access.0, access.1) {
                        Ok(log) => log,
                        Err(e) => {
                            let _ = ready.send(Err((index, format!("access log: {e}"))));
                            return;
                        }
                    };
                    let worker = Rc::new(Worker {
                        index,
                        snapshots,
                        buffer_size: runtime.buffer_size,
                        max_connections: runtime.max_connections,
                        pool: Default::default(),
                        access_log,
                        stop,
                        shutdown: Default::default(),
                        shutdown_timeout: runtime.shutdown_timeout,
                        active: Default::default(),
                        tunnels: Default::default(),
                    });
                    run_on_driver(
                        runtime.driver,
                        runtime.ring_entries,
                        index,
                        &ready,
                        worker,
                        listeners,
                    );
                })
                .map_err(StartError::Spawn)?;
            threads.push(thread);
        }
        drop(ready_tx);
        let mut drivers = Vec::with_capacity(workers);
        let engine_stop = stop.clone();
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(driver)) => drivers.push(driver),
                Ok(Err((worker, message))) => {
                    engine_stop.store(true, Ordering::Relaxed);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(StartError::Worker { worker, message });
                }
                Err(_) => break,
            }
        }
        Ok(Engine {
            stop,
            threads,
            addrs,
            drivers,
            snapshots,
        })
    }

    /// The bound address of each `Snapshot::listeners` entry (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn drivers(&self) -> &[DriverInUse] {
        &self.drivers
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.load_full()
    }

    /// Stop accepting, end every worker and wait for the threads.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

type Ready = mpsc::Sender<Result<DriverInUse, (usize, String)>>;

/// Build this worker's runtime on the requested driver and run it. `auto`
/// falls back to epoll when the real ring cannot be built, which covers
/// seccomp filters, `kernel.io_uring_disabled` and RLIMIT_MEMLOCK alike.
fn run_on_driver(
    driver: Driver,
    ring_entries: u32,
    index: usize,
    ready: &Ready,
    worker: Rc<Worker>,
    listeners: Vec<WorkerListener>,
) {
    static FALLBACK_WARNING: Once = Once::new();
    if driver != Driver::Epoll {
        let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(ring_entries)
            .enable_timer()
            .build();
        match built {
            Ok(mut rt) => {
                let _ = ready.send(Ok(DriverInUse::IoUring));
                worker.tunnels.splice.set(true);
                rt.block_on(worker::run(worker, listeners));
                return;
            }
            Err(e) if driver == Driver::IoUring => {
                let _ = ready.send(Err((index, format!("io_uring unavailable: {e}"))));
                return;
            }
            Err(e) => FALLBACK_WARNING.call_once(|| {
                tracing::warn!("io_uring unavailable ({e}); using the epoll driver");
            }),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => {
            let _ = ready.send(Ok(DriverInUse::Epoll));
            rt.block_on(worker::run(worker, listeners));
        }
        Err(e) => {
            let _ = ready.send(Err((index, format!("epoll driver: {e}"))));
        }
    }
}
