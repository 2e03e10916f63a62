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
//! How is the pass's end seen? monoio offers no hook, so the reading wakes a
//! task of the worker's (`expire_readings`), which runs once the tasks woken
//! before it have run and, monoio running every woken task before it waits
//! again, always before that wait: it marks the reading stale. Until that
//! task has been spawned, every `now()` reads the clock.
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
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

pub struct Clock {
    last: Cell<Instant>,
    /// `last` was read in this pass of the event loop.
    current: Cell<bool>,
    /// Wakes `expire_readings`, which is waiting for the next reading.
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
            last: Cell::new(Instant::now()),
            current: Cell::new(false),
            expire: Cell::new(None),
        }
    }

    /// Now, as read once per pass of the event loop; also becomes `recent()`.
    pub fn now(&self) -> Instant {
        if self.current.get() {
            return self.last.get();
        }
        let now = Instant::now();
        self.last.set(now);
        if let Some(expire) = self.expire.take() {
            self.current.set(true);
            expire.wake();
        }
        now
    }

    /// The last reading of `now()`: at most one worker tick old.
    pub fn recent(&self) -> Instant {
        self.last.get()
    }

    /// When an operation starting now and allowed `limit` must be done by.
    pub fn deadline(&self, limit: Duration) -> Instant {
        self.recent() + limit
    }

    /// The task that ends each reading's pass; the worker spawns it once.
    /// It never completes.
    pub fn expire_readings(&self) -> ExpireReadings<'_> {
        ExpireReadings { clock: self }
    }
}

/// See `Clock::expire_readings`: each time it is polled (woken by a reading
/// and run before the worker waits for events again), the reading becomes
/// stale and the next `now()` reads the clock.
pub struct ExpireReadings<'a> {
    clock: &'a Clock,
}

impl Future for ExpireReadings<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock;
        clock.current.set(false);
        clock.expire.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use super::Clock;

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
        runtime.block_on(async {
            let clock = Rc::new(Clock::new());
            // No expiring task yet: every reading is exact.
            let exact = clock.now();
            spin(Duration::from_micros(50));
            assert!(clock.now() >= exact + Duration::from_micros(50));

            let expiring = clock.clone();
            monoio::spawn(async move { expiring.expire_readings().await });
            // The loop waits for the sleep; the task has run by then.
            monoio::time::sleep(Duration::from_millis(1)).await;
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
        });
    }

    #[test]
    fn recent_is_the_last_reading_and_never_goes_back() {
        let clock = Clock::new();
        let first = clock.now();
        assert_eq!(clock.recent(), first);
        // Time passes; the clock is not read meanwhile.
        while Instant::now() < first + Duration::from_micros(50) {}
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
