//! One monoio runtime per harness thread, on io_uring when the kernel lets
//! us build a real ring, else on the epoll ("legacy") driver. As DESIGN.md §1
//! asks, probing is not trusted alone: a failure to build the actual ring
//! (RLIMIT_MEMLOCK, seccomp, `kernel.io_uring_disabled`) also falls back.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// io_uring submission queue entries per runtime.
const RING_ENTRIES: u32 = 1024;

/// Which driver the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    Auto,
    #[value(name = "io_uring")]
    IoUring,
    Epoll,
}

/// The driver a runtime actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    IoUring,
    Epoll,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        })
    }
}

/// A ring set up as ringway sets up its workers' rings (engine.rs,
/// `uring_runtime`): `DEFER_TASKRUN` with `SINGLE_ISSUER`, so that the floor
/// relay gets the same kernel help as the proxy it is the floor of. Without
/// the flags on kernels before 6.1.
fn uring_runtime() -> io::Result<monoio::Runtime<monoio::time::TimeDriver<IoUringDriver>>> {
    let build = |ring: io_uring::Builder| {
        RuntimeBuilder::<IoUringDriver>::new()
            .uring_builder(ring)
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build()
    };
    let mut deferred = io_uring::IoUring::builder();
    deferred.setup_single_issuer().setup_defer_taskrun();
    build(deferred).or_else(|_| build(io_uring::IoUring::builder()))
}

/// The fallback warning is printed once per process, not once per thread.
static FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// Builds a runtime on the current thread and runs `make()`'s future on it.
/// `make` is called only once the runtime exists, so its future may use
/// monoio's I/O and timers.
pub fn block_on<F, Fut>(choice: DriverChoice, make: F) -> io::Result<(Driver, Fut::Output)>
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future,
{
    if choice != DriverChoice::Epoll {
        let ring = if monoio::utils::detect_uring() {
            uring_runtime()
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel lacks io_uring operations monoio needs",
            ))
        };
        match ring {
            Ok(mut runtime) => {
                return Ok((Driver::IoUring, runtime.block_on(make(Driver::IoUring))));
            }
            Err(error) if choice == DriverChoice::IoUring => return Err(error),
            Err(error) => {
                if !FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
                    eprintln!("warning: io_uring unavailable ({error}); using the epoll driver");
                }
            }
        }
    }
    let mut runtime = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()?;
    Ok((Driver::Epoll, runtime.block_on(make(Driver::Epoll))))
}
