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
use crate::metrics::{Labels, MetricsSource, WorkerMetrics};
use crate::snapshot::{Driver, Published, Runtime, Snapshot};
use crate::worker::{self, Command, Worker, WorkerListener};

/// Command-line settings that override `[runtime]` of the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub workers: Option<usize>,
    pub buffer_size: Option<usize>,
    pub splice_threshold: Option<u64>,
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
        if let Some(threshold) = self.splice_threshold {
            runtime.splice_threshold = threshold;
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
    /// Each listen address as configured, and as bound (port 0 resolved).
    bound: Vec<(SocketAddr, SocketAddr)>,
    drivers: Vec<DriverInUse>,
    snapshots: Arc<Published>,
    inboxes: Vec<mpsc::Sender<Command>>,
    /// `[runtime]` as started; a reload cannot change it.
    runtime: Runtime,
    workers: usize,
    /// Metrics slots by label, for the life of the process.
    labels: Labels,
    metrics: MetricsSource,
}

/// How long a reload waits for every worker to take up new listeners.
const RELOAD_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Engine {
    /// Bind, start the workers and wait until each runs (or failed to start).
    pub fn start(mut snapshot: Snapshot) -> Result<Engine, StartError> {
        let mut labels = Labels::default();
        labels.assign(&mut snapshot);
        let runtime = snapshot.runtime.clone();
        let workers = match runtime.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut per_worker: Vec<Vec<WorkerListener>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(snapshot.listeners.len());
        for l in &snapshot.listeners {
            let sockets = bind(l.addr, workers)?;
            bound.push((l.addr, sockets.addr));
            for (w, socket) in sockets.sockets.into_iter().enumerate() {
                per_worker[w].push(WorkerListener {
                    addr: l.addr,
                    socket,
                });
            }
        }
        let access = (snapshot.log.access.clone(), snapshot.log.format);
        let snapshots = Arc::new(Published::new(snapshot));
        let stop = Arc::new(AtomicBool::new(false));
        let cores = if runtime.pin {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        let mut inboxes = Vec::with_capacity(workers);
        let worker_metrics: Vec<Arc<WorkerMetrics>> =
            (0..workers).map(|_| Arc::default()).collect();
        for (index, listeners) in per_worker.into_iter().enumerate() {
            let (inbox_tx, inbox) = mpsc::channel();
            inboxes.push(inbox_tx);
            let metrics = worker_metrics[index].clone();
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let snapshots = snapshots.clone();
            let stop = stop.clone();
            let ready = ready_tx.clone();
            let access = access.clone();
            let runtime: Runtime = runtime.clone();
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
                        // The generation first: a store in between makes the
                        // first request load again, never serve a stale one.
                        current_generation: std::cell::Cell::new(snapshots.generation()),
                        current: std::cell::RefCell::new(Rc::new(snapshots.load_full())),
                        snapshots,
                        buffer_size: runtime.buffer_size,
                        splice_threshold: runtime.splice_threshold,
                        max_connections: runtime.max_connections,
                        pool: Default::default(),
                        access_log,
                        stop,
                        shutdown: Default::default(),
                        shutdown_timeout: runtime.shutdown_timeout,
                        active: Default::default(),
                        metrics,
                        tunnels: Default::default(),
                        clock: Default::default(),
                        spare_buffers: Default::default(),
                        completion_io: Default::default(),
                    });
                    run_on_driver(
                        runtime.driver,
                        runtime.ring_entries,
                        index,
                        &ready,
                        worker,
                        listeners,
                        inbox,
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
        let metrics = MetricsSource {
            workers: worker_metrics,
            labels: Arc::new(ArcSwap::from_pointee(labels.clone())),
            drivers: drivers.iter().map(|d| d.name()).collect(),
        };
        Ok(Engine {
            stop,
            threads,
            bound,
            drivers,
            snapshots,
            inboxes,
            runtime,
            workers,
            labels,
            metrics,
        })
    }

    /// The bound address of each `Snapshot::listeners` entry (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.bound.iter().map(|&(_, bound)| bound).collect()
    }

    /// Publish `new` in place of the running snapshot. Listen addresses it
    /// adds are bound first (a failure changes nothing); then the snapshot is
    /// swapped in one store, so every request that starts afterwards uses it,
    /// while requests in flight finish on the one they started with. Workers
    /// then start accepting on the new addresses and stop on removed ones.
    /// `[runtime]` keeps its running values; what differs is returned as
    /// warnings (it needs a restart), as are changes to `[log]` and `[admin]`.
    pub fn reload(&mut self, mut new: Snapshot) -> Result<Vec<String>, StartError> {
        let old = self.snapshots.load_full();
        self.labels.assign(&mut new);
        self.metrics.labels.store(Arc::new(self.labels.clone()));
        let mut warnings = restart_needed(&self.runtime, &new.runtime);
        new.runtime = self.runtime.clone();
        if old.log != new.log {
            warnings.push("[log] changes take effect after a restart".to_string());
        }
        if old.admin != new.admin {
            warnings.push("[admin] listen changes take effect after a restart".to_string());
        }
        let mut added = Vec::new();
        for l in &new.listeners {
            if !self
                .bound
                .iter()
                .any(|&(configured, _)| configured == l.addr)
            {
                added.push((l.addr, bind(l.addr, self.workers)?));
            }
        }
        let removed: Vec<SocketAddr> = self
            .bound
            .iter()
            .map(|&(configured, _)| configured)
            .filter(|&addr| new.listener_index(addr).is_none())
            .collect();
        let order: Vec<SocketAddr> = new.listeners.iter().map(|l| l.addr).collect();
        self.snapshots.store(Arc::new(new));

        let mut bound = Vec::with_capacity(order.len());
        for addr in order {
            let actual = match self
                .bound
                .iter()
                .find(|&&(configured, _)| configured == addr)
            {
                Some(&(_, actual)) => actual,
                None => added
                    .iter()
                    .find(|(configured, _)| *configured == addr)
                    .map_or(addr, |(_, sockets)| sockets.addr),
            };
            bound.push((addr, actual));
        }
        self.bound = bound;
        for (addr, sockets) in added {
            for (inbox, socket) in self.inboxes.iter().zip(sockets.sockets) {
                let _ = inbox.send(Command::Listen(WorkerListener { addr, socket }));
            }
        }
        for addr in removed {
            for inbox in &self.inboxes {
                let _ = inbox.send(Command::Unlisten(addr));
            }
        }
        let (ack_tx, ack_rx) = mpsc::channel();
        for inbox in &self.inboxes {
            let _ = inbox.send(Command::Reloaded(ack_tx.clone()));
        }
        drop(ack_tx);
        let deadline = std::time::Instant::now() + RELOAD_ACK_TIMEOUT;
        for _ in 0..self.inboxes.len() {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            if ack_rx.recv_timeout(wait).is_err() {
                warnings.push("a worker did not acknowledge the reload in time".to_string());
                break;
            }
        }
        Ok(warnings)
    }

    pub fn drivers(&self) -> &[DriverInUse] {
        &self.drivers
    }

    /// What the admin endpoint reads for `/metrics`.
    pub fn metrics(&self) -> MetricsSource {
        self.metrics.clone()
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

fn bind(addr: SocketAddr, workers: usize) -> Result<listener::BoundAddress, StartError> {
    listener::bind(addr, workers).map_err(|source| StartError::Bind { addr, source })
}

/// The `[runtime]` settings that differ between the running engine and a
/// reloaded config: the workers, their runtimes and buffers are built once.
fn restart_needed(running: &Runtime, new: &Runtime) -> Vec<String> {
    let mut changed = Vec::new();
    if new.workers != running.workers {
        changed.push("workers");
    }
    if new.pin != running.pin {
        changed.push("pin");
    }
    if new.driver != running.driver {
        changed.push("driver");
    }
    if new.buffer_size != running.buffer_size {
        changed.push("buffer_size");
    }
    if new.splice_threshold != running.splice_threshold {
        changed.push("splice_threshold");
    }
    if new.ring_entries != running.ring_entries {
        changed.push("ring_entries");
    }
    if new.max_connections != running.max_connections {
        changed.push("max_connections");
    }
    if new.shutdown_timeout != running.shutdown_timeout {
        changed.push("shutdown_timeout");
    }
    if new.pid_file != running.pid_file {
        changed.push("pid_file");
    }
    changed
        .into_iter()
        .map(|key| format!("runtime.{key} changed: it takes effect after a restart"))
        .collect()
}

type Ready = mpsc::Sender<Result<DriverInUse, (usize, String)>>;

/// Build this worker's runtime on the requested driver and run it. `auto`
/// falls back to epoll when the real ring cannot be built, which covers
/// seccomp filters, `kernel.io_uring_disabled` and RLIMIT_MEMLOCK alike.
type UringRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

/// A worker's ring. Set up with `DEFER_TASKRUN` (and the `SINGLE_ISSUER` it
/// requires: only the worker's own thread ever submits): the kernel finishes
/// completions when the worker next asks for events, in one batch, instead of
/// interrupting the worker's CPU with task work each time a socket becomes
/// ready. That is 11 % less kernel time per proxied request here
/// (docs/benchmarks.md). Kernels before 6.1 refuse the flags; the ring is
/// then built without them. ringway-load sets up its rings the same way
/// (loadtest/src/runtime.rs), so the floor relay gets the same help.
fn uring_runtime(entries: u32) -> std::io::Result<UringRuntime> {
    let build = |ring: io_uring::Builder| {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(ring)
            .with_entries(entries)
            .enable_timer()
            .build()
    };
    let mut deferred = io_uring::IoUring::builder();
    deferred.setup_single_issuer().setup_defer_taskrun();
    build(deferred).or_else(|_| build(io_uring::IoUring::builder()))
}

fn run_on_driver(
    driver: Driver,
    ring_entries: u32,
    index: usize,
    ready: &Ready,
    worker: Rc<Worker>,
    listeners: Vec<WorkerListener>,
    inbox: mpsc::Receiver<Command>,
) {
    static FALLBACK_WARNING: Once = Once::new();
    if driver != Driver::Epoll {
        match uring_runtime(ring_entries) {
            Ok(mut rt) => {
                let _ = ready.send(Ok(DriverInUse::IoUring));
                rt.block_on(worker::run(worker, listeners, inbox));
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
            rt.block_on(worker::run(worker, listeners, inbox));
        }
        Err(e) => {
            let _ = ready.send(Err((index, format!("epoll driver: {e}"))));
        }
    }
}
