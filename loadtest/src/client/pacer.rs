//! Open-loop pacing, as wrk2 does it: each connection sends on a fixed
//! schedule (one request every `interval`, connections phase-shifted so that
//! the total rate is smooth) whatever the server does. A request's latency
//! runs from its scheduled send time, so a server that stalls is charged for
//! every request the schedule wanted to send during the stall, not only for
//! the one it held: this is the correction for coordinated omission.
//!
//! The one exception is the timer's own lateness: when the connection was
//! idle at the scheduled time, the request leaves as soon as the timer fires
//! (monoio's timer has millisecond ticks) and its clock starts then, since
//! nothing the server did delayed it.

use std::time::{Duration, Instant};

use monoio::time::sleep_until;

/// Time between two requests of one connection for `rate` requests per
/// second over `connections`; `None` when the rate is not a positive,
/// finite number or so high that the interval rounds to zero.
pub(super) fn interval(rate: f64, connections: usize) -> Option<Duration> {
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let interval = Duration::try_from_secs_f64(connections as f64 / rate).ok()?;
    (!interval.is_zero()).then_some(interval)
}

/// The schedule of one connection.
#[derive(Debug, Clone)]
pub(super) struct Pacer {
    next: Instant,
    interval: Duration,
}

impl Pacer {
    /// Connection `slot` of `total` starts `slot / total` of an interval
    /// after `start`, so that the connections' requests interleave evenly.
    pub(super) fn new(start: Instant, interval: Duration, slot: usize, total: usize) -> Self {
        let phase = interval.mul_f64(slot as f64 / total.max(1) as f64);
        Pacer {
            next: start + phase,
            interval,
        }
    }

    /// Waits for the next scheduled send and returns the instant from which
    /// that request's latency counts: its scheduled time when the schedule
    /// is behind (the previous response came late), else the moment the
    /// timer woke us.
    pub(super) async fn wait(&mut self) -> Instant {
        let due = self.take();
        if Instant::now() < due {
            sleep_until(monoio::time::Instant::from_std(due)).await;
            return Instant::now();
        }
        due
    }

    /// The next scheduled time, moving the schedule on by one interval.
    fn take(&mut self) -> Instant {
        let due = self.next;
        self.next += self.interval;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_spread_the_rate_over_connections() {
        assert_eq!(interval(1_000.0, 1), Some(Duration::from_millis(1)));
        assert_eq!(interval(1_000.0, 10), Some(Duration::from_millis(10)));
        assert_eq!(interval(0.0, 1), None);
        assert_eq!(interval(-5.0, 1), None);
        assert_eq!(interval(f64::NAN, 1), None);
        assert_eq!(interval(f64::INFINITY, 1), None);
    }

    #[test]
    fn schedule_is_fixed_and_phase_shifted() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut first = Pacer::new(start, ms(4), 0, 4);
        let mut third = Pacer::new(start, ms(4), 2, 4);
        assert_eq!(first.take(), start);
        assert_eq!(first.take(), start + ms(4));
        assert_eq!(third.take(), start + ms(2));
        assert_eq!(third.take(), start + ms(6));
    }

    #[test]
    fn a_late_connection_is_charged_from_the_scheduled_time() {
        let start = Instant::now() - Duration::from_millis(45);
        let mut pacer = Pacer::new(start, Duration::from_millis(10), 0, 1);
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Five sends are overdue: none waits, each counts from its slot.
            for k in 0..5 {
                assert_eq!(pacer.wait().await, start + Duration::from_millis(10 * k));
            }
            // The sixth slot is 5 ms ahead: the pacer sleeps until it.
            let woke = pacer.wait().await;
            assert!(woke >= start + Duration::from_millis(50));
        });
    }
}
