//! How far a ratio of medians can be trusted: a bootstrap over the
//! repetitions. Each resample draws as many repetitions as were run, with
//! replacement, and takes the ratio of the two medians again; the central
//! 90 % of those ratios is the interval reported beside the ratio.
//!
//! The repetitions are paired when both proxies have figures from the same
//! repetitions: `compare` runs the proxies in turn within a repetition, so
//! repetition *i* of ringway and of the baseline ran seconds apart and saw
//! the same state of the machine. Drawing the same repetitions for both
//! keeps that: a machine that slowed down for a while moves both sides of a
//! resample alike instead of widening the interval. When a repetition failed
//! on one side only, the pairing is lost and each side is drawn on its own.
//! Each value carries the number of its repetition, so two sides that each
//! lost a different repetition are not paired one off.

/// The share of resampled ratios the interval holds.
pub const LEVEL: f64 = 0.90;

/// Fewer repetitions than this on either side give no interval: the
/// resamples of one or two values say nothing about spread.
pub const MIN_REPS: usize = 3;

/// Resamples per interval: enough for the 5th and 95th percentiles to move
/// by well under the two decimals printed.
const RESAMPLES: usize = 4000;

/// One side's values, each with the number of the repetition it came from.
pub type Values<'a> = &'a [(usize, f64)];

/// The interval of `median(numerator) / median(denominator)`, or `None`
/// with fewer than `MIN_REPS` values on a side or a denominator value that
/// is not positive. The same values always give the same interval (a fixed
/// seed): two runs of `compare` differ by their measurements only.
pub fn ratio_interval(numerator: Values<'_>, denominator: Values<'_>) -> Option<(f64, f64)> {
    if numerator.len() < MIN_REPS
        || denominator.len() < MIN_REPS
        || denominator.iter().any(|&(_, v)| v <= 0.0 || v.is_nan())
        || numerator.iter().any(|(_, v)| v.is_nan())
    {
        return None;
    }
    let paired = same_repetitions(numerator, denominator);
    let mut random = SplitMix64(0x5eed_0fc0_ffee);
    let mut top = Vec::with_capacity(numerator.len());
    let mut bottom = Vec::with_capacity(denominator.len());
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        top.clear();
        bottom.clear();
        for _ in 0..numerator.len() {
            let i = random.below(numerator.len());
            top.push(numerator[i].1);
            if paired {
                bottom.push(denominator[i].1);
            }
        }
        if !paired {
            for _ in 0..denominator.len() {
                bottom.push(denominator[random.below(denominator.len())].1);
            }
        }
        ratios.push(median(&mut top) / median(&mut bottom));
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let at = |share: f64| ratios[((share * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some((at(tail), at(1.0 - tail)))
}

/// Both sides hold values of the same repetitions, in the same order.
fn same_repetitions(a: Values<'_>, b: Values<'_>) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0)
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

    /// Values of repetitions 0, 1, 2, ... in turn.
    fn numbered(values: &[f64]) -> Vec<(usize, f64)> {
        values.iter().copied().enumerate().collect()
    }

    fn interval(numerator: &[f64], denominator: &[f64]) -> Option<(f64, f64)> {
        ratio_interval(&numbered(numerator), &numbered(denominator))
    }

    #[test]
    fn repetitions_that_agree_give_an_interval_of_no_width() {
        let (low, high) = interval(&[9.0, 9.0, 9.0], &[10.0, 10.0, 10.0]).unwrap();
        assert_eq!((low, high), (0.9, 0.9));
    }

    #[test]
    fn the_interval_holds_the_ratio_and_widens_with_the_spread() {
        let other = [10.0, 10.2, 9.8, 10.1, 9.9];
        let tight = [9.0, 9.1, 8.9, 9.05, 8.95];
        let loose = [9.0, 12.0, 6.0, 10.5, 7.5];
        let (tl, th) = interval(&tight, &other).unwrap();
        let (ll, lh) = interval(&loose, &other).unwrap();
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
        let (low, high) = interval(&ringway, &baseline).unwrap();
        assert!((low - 0.9).abs() < 1e-12 && (high - 0.9).abs() < 1e-12);
        // One of ringway's repetitions failed: the rest cannot be paired,
        // and the slowdown now shows as doubt about the ratio.
        let (low, high) = interval(&ringway[..4], &baseline).unwrap();
        assert!(low < 0.5 && high > 2.0, "{low} {high}");
    }

    #[test]
    fn values_pair_by_their_repetition_not_their_place() {
        // The machine ran at a third of its speed in repetitions 1 and 2.
        let baseline = [10.0, 30.0, 30.0, 10.0, 10.0, 10.0];
        let ringway: Vec<f64> = baseline.iter().map(|v| v * 0.9).collect();
        let without = |values: &[f64], lost: usize| -> Vec<(usize, f64)> {
            numbered(values)
                .into_iter()
                .filter(|&(rep, _)| rep != lost)
                .collect()
        };
        // Both lost repetition 4: the rest pair up and the slowdown cancels.
        let (low, high) = ratio_interval(&without(&ringway, 4), &without(&baseline, 4)).unwrap();
        assert!((low - 0.9).abs() < 1e-12 && (high - 0.9).abs() < 1e-12);
        // ringway lost repetition 1 and the baseline repetition 2. Paired by
        // place, ringway's repetitions 0, 2, 3 meet the baseline's 0, 1, 3
        // and the ratio would look certain; they are drawn on their own, as
        // if no repetition were shared, and the slowdown shows as doubt.
        let (ringway, baseline) = (without(&ringway, 1), without(&baseline, 2));
        let got = ratio_interval(&ringway, &baseline).unwrap();
        let apart: Vec<(usize, f64)> = baseline.iter().map(|&(r, v)| (r + 100, v)).collect();
        assert_eq!(Some(got), ratio_interval(&ringway, &apart));
        assert!(got.1 - got.0 > 0.5, "{got:?}");
    }

    #[test]
    fn too_few_repetitions_or_a_zero_divisor_give_none() {
        assert_eq!(interval(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(interval(&[1.0, 2.0, 3.0], &[1.0, 2.0]), None);
        assert_eq!(interval(&[1.0, 2.0, 3.0], &[1.0, 0.0, 3.0]), None);
    }

    #[test]
    fn the_same_repetitions_give_the_same_interval() {
        let a = [9.0, 11.0, 8.0, 12.0];
        let b = [10.0, 10.5, 9.5, 11.0];
        assert_eq!(interval(&a, &b), interval(&a, &b));
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
