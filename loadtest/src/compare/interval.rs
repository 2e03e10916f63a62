//! How far a ratio of medians can be trusted: a bootstrap over the
//! repetitions. Each resample draws as many repetitions as were run, with
//! replacement, and takes the ratio of the two medians again; the central
//! 90 % of those ratios is the interval reported beside the ratio.
//!
//! The repetitions are paired when both proxies have the same number of
//! them: `compare` runs the proxies in turn within a repetition, so
//! repetition *i* of ringway and of the baseline ran seconds apart and saw
//! the same state of the machine. Drawing the same repetitions for both
//! keeps that: a machine that slowed down for a while moves both sides of a
//! resample alike instead of widening the interval. When a repetition failed
//! on one side the pairing is lost and each side is drawn on its own. (Two
//! sides with one failed repetition each, in different repetitions, have
//! the same count and are paired one off; compare prints every failure.)

/// The share of resampled ratios the interval holds.
pub const LEVEL: f64 = 0.90;

/// Fewer repetitions than this on either side give no interval: the
/// resamples of one or two values say nothing about spread.
pub const MIN_REPS: usize = 3;

/// Resamples per interval: enough for the 5th and 95th percentiles to move
/// by well under the two decimals printed.
const RESAMPLES: usize = 4000;

/// The interval of `median(numerator) / median(denominator)`, or `None`
/// with fewer than `MIN_REPS` values on a side or a denominator value that
/// is not positive. The same values always give the same interval (a fixed
/// seed): two runs of `compare` differ by their measurements only.
pub fn ratio_interval(numerator: &[f64], denominator: &[f64]) -> Option<(f64, f64)> {
    if numerator.len() < MIN_REPS
        || denominator.len() < MIN_REPS
        || denominator.iter().any(|&v| v <= 0.0 || v.is_nan())
        || numerator.iter().any(|v| v.is_nan())
    {
        return None;
    }
    let paired = numerator.len() == denominator.len();
    let mut random = SplitMix64(0x5eed_0fc0_ffee);
    let mut top = Vec::with_capacity(numerator.len());
    let mut bottom = Vec::with_capacity(denominator.len());
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        top.clear();
        bottom.clear();
        for _ in 0..numerator.len() {
            let i = random.below(numerator.len());
            top.push(numerator[i]);
            if paired {
                bottom.push(denominator[i]);
            }
        }
        if !paired {
            for _ in 0..denominator.len() {
                bottom.push(denominator[random.below(denominator.len())]);
            }
        }
        ratios.push(median(&mut top) / median(&mut bottom));
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |share: f64| ratios[((share * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some((at(tail), at(1.0 - tail)))
}

/// The median of `values`, sorting them in place; 0 when empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Steele, Lea and Flood's SplitMix64: a few lines, statistically sound for
/// resampling, and seeded so that the intervals are reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias for the handful
    /// of repetitions drawn from is below 2^-58).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_that_agree_give_an_interval_of_no_width() {
        let (low, high) = ratio_interval(&[9.0, 9.0, 9.0], &[10.0, 10.0, 10.0]).unwrap();
        assert_eq!((low, high), (0.9, 0.9));
    }

    #[test]
    fn the_interval_holds_the_ratio_and_widens_with_the_spread() {
        let other = [10.0, 10.2, 9.8, 10.1, 9.9];
        let tight = [9.0, 9.1, 8.9, 9.05, 8.95];
        let loose = [9.0, 12.0, 6.0, 10.5, 7.5];
        let (tl, th) = ratio_interval(&tight, &other).unwrap();
        let (ll, lh) = ratio_interval(&loose, &other).unwrap();
        for (low, high) in [(tl, th), (ll, lh)] {
            assert!(low <= 0.9 && 0.9 <= high, "{low} {high}");
        }
        assert!(th - tl < 0.05, "{tl} {th}");
        assert!(lh - ll > 0.2, "{ll} {lh}");
    }

    #[test]
    fn pairing_cancels_a_slowdown_both_proxies_saw() {
        // The machine ran at a third of its speed in two repetitions, and
        // ringway cost 0.9 of the baseline in every one.
        let baseline = [10.0, 30.0, 10.0, 30.0, 10.0];
        let ringway: Vec<f64> = baseline.iter().map(|v| v * 0.9).collect();
        let (low, high) = ratio_interval(&ringway, &baseline).unwrap();
        assert!((low - 0.9).abs() < 1e-12 && (high - 0.9).abs() < 1e-12);
        // One of ringway's repetitions failed: the rest cannot be paired,
        // and the slowdown now shows as doubt about the ratio.
        let (low, high) = ratio_interval(&ringway[..4], &baseline).unwrap();
        assert!(low < 0.5 && high > 2.0, "{low} {high}");
    }

    #[test]
    fn too_few_repetitions_or_a_zero_divisor_give_none() {
        assert_eq!(ratio_interval(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(ratio_interval(&[1.0, 2.0, 3.0], &[1.0, 2.0]), None);
        assert_eq!(ratio_interval(&[1.0, 2.0, 3.0], &[1.0, 0.0, 3.0]), None);
    }

    #[test]
    fn the_same_repetitions_give_the_same_interval() {
        let a = [9.0, 11.0, 8.0, 12.0];
        let b = [10.0, 10.5, 9.5, 11.0];
        assert_eq!(ratio_interval(&a, &b), ratio_interval(&a, &b));
    }

    #[test]
    fn draws_cover_every_index_evenly() {
        let mut random = SplitMix64(1);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[random.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
