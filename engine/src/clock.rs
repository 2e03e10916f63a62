//! A worker's clock: exact readings where a duration is reported, and the
//! last reading, free, where only a deadline or an idle stamp is needed.
//!
//! Reading the clock costs 30 ns here (`clock_gettime`, vDSO, TSC). A
//! proxied request used to read it nine times: the head's arrival, a deadline
//! for each of four reads and writes, the pool's idle stamp, the upstream
//! timing and the request's duration. Now it reads it three times (the head's
//! arrival, the response head's arrival, the end), and deadlines count from
//! the last reading, as nginx's timers count from its cached time.
//!
//! How old can the last reading be? Every request reads the clock on arrival
//! and at its end, and the worker's tick (`worker::STOP_POLL`, 50 ms) reads
//! it even when no request comes. A deadline is therefore early by at most
//! one tick: a 60 s timeout fires between 59.95 and 60 s after its operation
//! began. Timeouts are seconds to minutes; nothing is timed finer than that.

use std::cell::Cell;
use std::time::{Duration, Instant};

pub struct Clock {
    last: Cell<Instant>,
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
        }
    }

    /// Now, exactly; also becomes `recent()`.
    pub fn now(&self) -> Instant {
        let now = Instant::now();
        self.last.set(now);
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
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Clock;

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
