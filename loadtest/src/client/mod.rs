//! The load generator, closed loop by default or open loop at a fixed rate
//! (`pacer`). `run` starts one thread per client thread, each with its own
//! monoio runtime and its share of connections; nothing is shared between
//! threads while the load runs. The threads build their runtimes first, then
//! all start from one timeline set by the caller: warmup, then the measured
//! window, then every connection is dropped.

mod connection;
mod dial;
mod pacer;
mod ws;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use monoio_rustls::TlsConnector;

pub use crate::report::Mode;
use crate::report::{Report, RunShape, Totals};
use crate::request::{BuildError, RequestSpec};
use crate::runtime::{self, Driver, DriverChoice};
use crate::tls::{ClientTls, TlsSetupError, server_name};
pub use ws::{WsPlan, check_handshake};

/// A load run, checked and ready to start.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Shown in the report.
    pub url: String,
    pub addr: SocketAddr,
    pub request: RequestSpec,
    pub connections: usize,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// Open loop: requests per second over all connections, each connection
    /// sending on its own fixed schedule. `None` is a closed loop.
    pub rate: Option<f64>,
    /// Thread i is pinned to `pin_cpus[i % len]`.
    pub pin_cpus: Option<Vec<usize>>,
    pub driver: DriverChoice,
    pub mode: Mode,
    /// TLS to the target, SNI for `tls_name` (the URL's host).
    pub tls: Option<ClientTls>,
    pub tls_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("at least one thread is needed")]
    NoThreads,
    #[error(
        "{connections} connections cannot be spread over {threads} threads: need at least one each"
    )]
    TooFewConnections { connections: usize, threads: usize },
    #[error("the duration must be longer than zero")]
    ZeroDuration,
    #[error("the rate must be a positive number of requests per second, not {0}")]
    InvalidRate(f64),
    #[error(transparent)]
    Request(#[from] BuildError),
    #[error("CPU {0} is not available to this process")]
    NoSuchCpu(usize),
    #[error("cannot start a client runtime: {0}")]
    Runtime(io::Error),
    #[error("cannot start a client thread: {0}")]
    Spawn(io::Error),
    #[error("a client thread panicked")]
    ThreadPanicked,
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("an open loop (--rate) applies to HTTP requests, not to WebSockets")]
    RateWithWebSocket,
    #[error("the WebSocket message size must be at least 1 byte")]
    EmptyMessage,
}

/// When the load starts, when measuring starts, and when everything stops.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
}

/// What every connection of one thread shares.
struct ConnPlan {
    addr: SocketAddr,
    /// Built once; every exchange sends these same bytes.
    request: Bytes,
    is_head: bool,
    close: bool,
    timeout: Duration,
    /// Open loop: time between two requests of one connection.
    interval: Option<Duration>,
    mode: Mode,
    /// The WebSocket handshake and message, in the WebSocket modes.
    ws: Option<WsPlan>,
}

/// Runs the load and returns its report.
pub fn run(config: &LoadConfig) -> Result<Report, LoadError> {
    run_observed(config, |_, _| {})
}

/// Runs the load, telling `observe` the measured window (start, end) as
/// soon as it is fixed, before any request is sent; `compare` uses it to
/// sample the proxy's CPU time over exactly that window.
pub fn run_observed(
    config: &LoadConfig,
    observe: impl FnOnce(Instant, Instant),
) -> Result<Report, LoadError> {
    if config.threads == 0 {
        return Err(LoadError::NoThreads);
    }
    if config.connections < config.threads {
        return Err(LoadError::TooFewConnections {
            connections: config.connections,
            threads: config.threads,
        });
    }
    if config.duration.is_zero() {
        return Err(LoadError::ZeroDuration);
    }
    let interval = match config.rate {
        None => None,
        Some(rate) => {
            Some(pacer::interval(rate, config.connections).ok_or(LoadError::InvalidRate(rate))?)
        }
    };
    let request = config.request.build()?;
    if let Some(cpus) = &config.pin_cpus {
        check_cpus(cpus)?;
    }
    let ws = match config.mode {
        Mode::Http => None,
        _ if config.rate.is_some() => return Err(LoadError::RateWithWebSocket),
        Mode::WsEcho { msg_size: 0 } => return Err(LoadError::EmptyMessage),
        Mode::WsEcho { msg_size } => Some(WsPlan::new(&config.request, msg_size)),
        Mode::WsIdle => Some(WsPlan::new(&config.request, 0)),
    };
    let name = match &config.tls {
        Some(_) => Some(server_name(&config.tls_name)?),
        None => None,
    };

    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<Driver>>();
    let mut starts = Vec::with_capacity(config.threads);
    let mut handles = Vec::with_capacity(config.threads);
    for index in 0..config.threads {
        let (start_tx, start_rx) = mpsc::channel::<Timeline>();
        starts.push(start_tx);
        let connections = config.connections / config.threads
            + usize::from(index < config.connections % config.threads);
        let cpu = config
            .pin_cpus
            .as_ref()
            .and_then(|cpus| cpus.get(index.checked_rem(cpus.len())?).copied());
        let plan = ConnPlan {
            addr: config.addr,
            request: request.clone(),
            is_head: config.request.is_head(),
            close: config.request.close,
            timeout: config.timeout,
            interval,
            mode: config.mode,
            ws: ws.clone(),
        };
        // One TLS configuration per thread, so that the session cache is
        // never shared (or locked) across threads.
        let dial = match (&config.tls, &name) {
            (Some(tls), Some(name)) => Some(dial::Tls {
                connector: TlsConnector::from(tls.config()?),
                name: name.clone(),
            }),
            _ => None,
        };
        let ready_tx = ready_tx.clone();
        let choice = config.driver;
        let (threads, total_connections) = (config.threads, config.connections);
        let handle = thread::Builder::new()
            .name(format!("ringway-load-{index}"))
            .spawn(move || {
                if let Some(id) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                let outcome = runtime::block_on(choice, |driver| {
                    let _ = ready_tx.send(Ok(driver));
                    // Blocking here is fine: no task exists on this runtime yet.
                    let timeline = start_rx.recv();
                    async move {
                        let timeline = timeline.ok()?;
                        let slots = connection::Slots {
                            first: index,
                            step: threads,
                            count: connections,
                            total: total_connections,
                        };
                        let plan = Rc::new(plan);
                        Some(match dial {
                            Some(tls) => {
                                connection::run_thread(plan, Rc::new(tls), timeline, slots).await
                            }
                            None => {
                                connection::run_thread(plan, Rc::new(dial::Plain), timeline, slots)
                                    .await
                            }
                        })
                    }
                });
                match outcome {
                    Ok((_, totals)) => totals,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        None
                    }
                }
            })
            .map_err(LoadError::Spawn)?;
        handles.push(handle);
    }
    drop(ready_tx);

    let mut driver = None;
    let mut failure = None;
    for _ in 0..config.threads {
        match ready_rx.recv() {
            Ok(Ok(d)) => driver = Some(d),
            Ok(Err(error)) => failure = Some(LoadError::Runtime(error)),
            Err(_) => failure = Some(LoadError::ThreadPanicked),
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(error) = failure {
        // Dropping the senders releases the threads that are waiting to start.
        drop(starts);
        for handle in handles {
            let _ = handle.join();
        }
        return Err(error);
    }

    let now = Instant::now();
    let timeline = Timeline {
        start: now,
        measure_from: now + config.warmup,
        deadline: now + config.warmup + config.duration,
    };
    observe(timeline.measure_from, timeline.deadline);
    for start in &starts {
        let _ = start.send(timeline);
    }
    let mut totals = Totals::default();
    for handle in handles {
        let thread_totals = handle.join().map_err(|_| LoadError::ThreadPanicked)?;
        totals.merge(&thread_totals.ok_or(LoadError::ThreadPanicked)?);
    }
    let shape = RunShape {
        url: config.url.clone(),
        mode: config.mode,
        tls: config.tls.is_some(),
        threads: config.threads,
        connections: config.connections,
        driver: driver.unwrap_or(Driver::Epoll),
        keep_alive: !config.request.close,
        warmup: config.warmup,
        rate: config.rate,
    };
    Ok(Report::new(shape, &totals, config.duration))
}

fn check_cpus(cpus: &[usize]) -> Result<(), LoadError> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    match cpus.iter().find(|cpu| !available.contains(cpu)) {
        Some(&missing) => Err(LoadError::NoSuchCpu(missing)),
        None => Ok(()),
    }
}
