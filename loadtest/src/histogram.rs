//! Latency recording: one HdrHistogram per client thread, merged at the end.
//! Values are nanoseconds with three significant digits, so a 30 µs loopback
//! latency and a 2 s timeout are both kept to 0.1 %.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest latency kept exactly; longer ones are recorded as this value.
const MAX_NANOS: u64 = 3_600 * 1_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Request latencies of one thread, or of the whole run once merged.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // The bounds are constants that HdrHistogram accepts (low >= 1,
        // high >= 2 * low, sigfig <= 5), so creation cannot fail.
        let inner = Histogram::new_with_bounds(1, MAX_NANOS, SIGNIFICANT_DIGITS)
            .unwrap_or_else(|error| unreachable!("constant histogram bounds rejected: {error}"));
        LatencyHistogram { inner }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.inner.saturating_record(nanos.max(1));
    }

    /// Adds another thread's latencies; both have the same bounds, so the
    /// addition cannot fail.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.inner.add(&other.inner).unwrap_or_else(|error| {
            unreachable!("histograms with equal bounds failed to add: {error}")
        });
    }

    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// Latency at `quantile` (0.0..=1.0); zero when nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_nanos(self.inner.value_at_quantile(quantile))
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.inner.max())
    }

    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.inner.mean() / 1e9)
    }

    pub fn stdev(&self) -> Duration {
        Duration::from_secs_f64(self.inner.stdev() / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut histogram = LatencyHistogram::new();
        for us in 1..=1000 {
            histogram.record(micros(us));
        }
        assert_eq!(histogram.count(), 1000);
        let within = |actual: Duration, expected: Duration| {
            let diff = actual.abs_diff(expected).as_secs_f64();
            assert!(
                diff <= expected.as_secs_f64() * 0.001,
                "{actual:?} vs {expected:?}"
            );
        };
        within(histogram.quantile(0.5), micros(500));
        within(histogram.quantile(0.99), micros(990));
        within(histogram.max(), micros(1000));
        within(histogram.mean(), Duration::from_nanos(500_500));
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_max() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(micros(10));
        b.record(micros(20));
        b.record(micros(3_000_000));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.max() >= Duration::from_secs(3) && a.max() < Duration::from_millis(3_010));
    }

    #[test]
    fn empty_and_out_of_range_values() {
        let mut histogram = LatencyHistogram::new();
        assert_eq!(histogram.quantile(0.99), Duration::ZERO);
        histogram.record(Duration::ZERO);
        histogram.record(Duration::from_secs(10_000));
        assert_eq!(histogram.count(), 2);
        assert!(histogram.max() >= Duration::from_secs(3_599));
    }
}
