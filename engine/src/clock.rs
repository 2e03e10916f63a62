//! A worker's clock, read once per pass of its event loop, as nginx reads
//! its clock once per pass (`ngx_time_update` after the wait for events).
//!
//! Reading the clock costs 30–45 ns here (`clock_gettime`, vDSO, TSC). A
//! proxied request used to read it nine times: the head's arrival, a deadline
//! for each of four reads and writes, the pool's idle stamp, the upstream
//! timing and the request's duration. Deadlines then came to count from the
//! last reading (`recent`), leaving three exact readings per request (the
//! head's arrival, the response head's arrival, the end). Now the first
//! `now()` after the worker has waited for events reads the clock, and every
//! `now()` until it waits again gets the same reading: with 64 connections
//! busy, one reading serves the dozen requests whose events one wait brought.
//!
//! How is the pass's end seen? monoio offers no hook, but it polls the
//! future it runs the worker on (`block_on`'s, `worker::run`'s) whenever that
//! future has been woken, after the tasks woken before and always before it
//! waits for events again; waking it only sets a flag. So a reading wakes
//! it, and `Clock::expiring`, wrapped around it, marks the reading stale
//! each time it is polled. Until that future has first been polled, every
//! `now()` reads the clock.
//!
//! Readings are `Stamp`s, nanoseconds since the clock was made, so that the
//! durations and deadlines taken from them are integer sums; a deadline
//! becomes an `Instant` only when a timer is armed with it.
//!
//! How far from the truth is a reading? The events a pass handles all
//! happened before the wait ended; a reading taken while handling them is
//! later than each of them by the work the pass did before it: microseconds
//! in a busy worker, up to a TLS handshake's millisecond or so. Durations
//! are reported in milliseconds (access log, as nginx) and the histograms'
//! buckets start at 5 ms.
//!
//! How old can the last reading be (`recent`)? Every request reads the clock
//! on arrival and at its end, and the worker's tick (`worker::STOP_POLL`, 50
//! ms) reads it even when no request comes. A deadline is therefore early by
//! at most one tick: a 60 s timeout fires between 59.95 and 60 s after its
//! operation began. Timeouts are seconds to minutes; nothing is timed finer
//! than that.

use std::cell::Cell;
use std::future::Future;
use std::ops::{Add, Sub};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A reading of a worker's clock: nanoseconds since the clock was made.
/// Durations and deadlines between readings are then integer arithmetic,
/// where `Instant`'s goes through `timespec`s (seconds and nanoseconds
/// normalised, overflow checked): about 90 instructions per proxied request
/// (callgrind) for its two durations and four deadlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    /// `instant` as a stamp of the clock made at `base` (its start if it
    /// came before).
    pub fn of(instant: Instant, base: Instant) -> Stamp {
        Stamp(0) + instant.saturating_duration_since(base)
    }

    /// This stamp of the clock made at `base` as an `Instant`, for a timer.
    pub fn instant(self, base: Instant) -> Instant {
        base + Duration::from_nanos(self.0)
    }

    /// The time from `earlier` to this stamp, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Saturates: a stamp 584 years on is as good as never.
impl Add<Duration> for Stamp {
    type Output = Stamp;

    fn add(self, time: Duration) -> Stamp {
        let nanos = time
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(time.subsec_nanos()));
        Stamp(self.0.saturating_add(nanos))
    }
}

/// As `saturating_duration_since`.
impl Sub for Stamp {
    type Output = Duration;

    fn sub(self, earlier: Stamp) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

pub struct Clock {
    /// What stamps count from.
    base: Instant,
    last: Cell<Stamp>,
    /// `last` was read in this pass of the event loop.
    current: Cell<bool>,
    /// Wakes the future `expiring` wraps, so that the reading expires.
    expire: Cell<Option<Waker>>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            base: Instant::now(),
            last: Cell::new(Stamp::default()),
            current: Cell::new(false),
            expire: Cell::new(None),
        }
    }

    /// Now, as read once per pass of the event loop; also becomes `recent()`.
    pub fn now(&self) -> Stamp {
        if self.current.get() {
            return self.last.get();
        }
        let now = self.exact();
        self.last.set(now);
        if let Some(expire) = self.expire.take() {
            self.current.set(true);
            expire.wake();
        }
        now
    }

    /// The last reading of `now()`: at most one worker tick old.
    pub fn recent(&self) -> Stamp {
        self.last.get()
    }

    /// When an operation starting now and allowed `limit` must be done by.
    pub fn deadline(&self, limit: Duration) -> Stamp {
        self.recent() + limit
    }

    /// The clock read now, whatever the pass; not kept as `recent()`.
    pub fn exact(&self) -> Stamp {
        Stamp::of(Instant::now(), self.base)
    }

    /// What this clock's stamps count from.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// `future`, which the runtime polls after the tasks of each pass it has
    /// been woken in: the worker's main future, run by `block_on`. Each poll
    /// ends the current reading.
    pub fn expiring<F: Future>(&self, future: F) -> Expiring<'_, F> {
        Expiring {
            clock: self,
            future,
        }
    }
}

/// The future of `Clock::expiring`.
pub struct Expiring<'a, F> {
    clock: &'a Clock,
    future: F,
}

impl<F: Future> Future for Expiring<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is pinned with `self` and never moved out of it;
        // `clock` is a shared reference, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        this.clock.current.set(false);
        this.clock.expire.set(Some(cx.waker().clone()));
        // SAFETY: see above.
        unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use super::{Clock, Stamp};

    fn spin(time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {}
    }

    #[test]
    fn one_reading_serves_a_pass_of_the_event_loop() {
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let clock = Rc::new(Clock::new());
        // No future wrapped: every reading is exact.
        let exact = clock.now();
        spin(Duration::from_micros(50));
        assert!(clock.now() >= exact + Duration::from_micros(50));

        runtime.block_on(clock.expiring(async {
            let first = clock.now();
            spin(Duration::from_micros(50));
            assert_eq!(clock.now(), first, "one pass, one reading");
            assert_eq!(clock.recent(), first);

            // Waiting for events ends the pass: the next reading is new.
            monoio::time::sleep(Duration::from_millis(2)).await;
            let second = clock.now();
            assert!(second >= first + Duration::from_millis(2));
            spin(Duration::from_micros(50));
            assert_eq!(clock.now(), second);

            // A task's reading expires as well, and the main future, polled
            // in the same pass, gets it.
            monoio::time::sleep(Duration::from_millis(2)).await;
            let task = monoio::spawn({
                let clock = clock.clone();
                async move { clock.now() }
            });
            let third = task.await;
            assert!(third >= second + Duration::from_millis(2));
            monoio::time::sleep(Duration::from_millis(2)).await;
            assert!(clock.now() >= third + Duration::from_millis(2));
        }));
    }

    #[test]
    fn stamps_count_nanoseconds_and_saturate() {
        let clock = Clock::new();
        let base = clock.base();
        let at = Stamp::of(base + Duration::new(3, 250), base);
        assert_eq!(at - Stamp::default(), Duration::new(3, 250));
        assert_eq!(at.instant(base), base + Duration::new(3, 250));
        assert_eq!(
            at + Duration::new(1, 999_999_999),
            Stamp::of(base + Duration::new(5, 249), base)
        );
        // Earlier minus later is zero, not a panic; far beyond is the end of time.
        assert_eq!(Stamp::default() - at, Duration::ZERO);
        assert_eq!(at + Duration::MAX, at + Duration::from_secs(u64::MAX));
        assert!(at + Duration::MAX > at + Duration::from_secs(1 << 33));
        // An instant before the clock was made is its start.
        let before = base.checked_sub(Duration::from_secs(1));
        if let Some(before) = before {
            assert_eq!(Stamp::of(before, base), Stamp::default());
        }
    }

    #[test]
    fn recent_is_the_last_reading_and_never_goes_back() {
        let clock = Clock::new();
        let first = clock.now();
        assert_eq!(clock.recent(), first);
        // Time passes; the clock is not read meanwhile.
        while clock.exact() < first + Duration::from_micros(50) {}
        assert_eq!(clock.recent(), first);
        let second = clock.now();
        assert!(second >= first + Duration::from_micros(50));
        assert_eq!(clock.recent(), second);
        assert_eq!(
            clock.deadline(Duration::from_secs(1)),
            second + Duration::from_secs(1)
        );
    }
}
