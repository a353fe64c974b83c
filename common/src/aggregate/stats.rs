//! Descriptive statistics of one quantity over the replicates of a grid point.

use serde::{Deserialize, Serialize};

/// Count, location and spread of a set of values. Every field but `count` is `None` when
/// there are too few values to define it (no values; `std`/`sem` also for a single value).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Number of (finite) values aggregated.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Sample standard deviation (denominator n − 1).
    pub std: Option<f64>,
    /// Standard error of the mean, std / √n.
    pub sem: Option<f64>,
    /// Median (type-7 quantile at p = 0.5).
    pub median: Option<f64>,
    /// Lower quartile (type-7 quantile at p = 0.25).
    pub q25: Option<f64>,
    /// Upper quartile (type-7 quantile at p = 0.75).
    pub q75: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

impl Stats {
    /// Statistics of the finite values in `values` (non-finite ones are skipped).
    pub fn of(values: &[f64]) -> Stats {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        Self::of_finite_vec(&mut v)
    }

    /// Statistics of `v`, all finite; sorts `v` in place (avoids a copy for callers that
    /// own a scratch buffer).
    fn of_finite_vec(v: &mut [f64]) -> Stats {
        let n = v.len();
        if n == 0 {
            return Stats::default();
        }
        v.sort_by(f64::total_cmp);
        let (min, max) = (v[0], v[n - 1]);
        // Two passes: the mean first, then squared deviations from it — numerically
        // stable for the tightly clustered values replicates usually give.
        let mean = (v.iter().sum::<f64>() / n as f64).clamp(min, max);
        let (std, sem) = if n >= 2 {
            let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
            let std = (ss / (n - 1) as f64).sqrt();
            (Some(std), Some(std / (n as f64).sqrt()))
        } else {
            (None, None)
        };
        Stats {
            count: n as u64,
            mean: Some(mean),
            std,
            sem,
            median: Some(quantile_sorted(v, 0.5)),
            q25: Some(quantile_sorted(v, 0.25)),
            q75: Some(quantile_sorted(v, 0.75)),
            min: Some(min),
            max: Some(max),
        }
    }
}

/// The type-7 quantile (linear interpolation between order statistics, numpy's default) of
/// an ascending, non-empty slice at probability `p` ∈ [0, 1] (clamped).
///
/// # Panics
/// If `sorted` is empty.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of an empty sample");
    let n = sorted.len();
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // a + frac·(b − a) can leave [a, b] by one ulp; clamping keeps quartiles ordered.
    (a + frac * (b - a)).clamp(a.min(b), a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn hand_computed_statistics_of_five_values() {
        // x = 1, 2, 4, 7, 11: mean 5, deviations −4 −3 −1 2 6, Σd² = 16+9+1+4+36 = 66,
        // var = 66/4 = 16.5. Type 7: q25 at h = 1 → 2; median at h = 2 → 4; q75 at h = 3 → 7.
        let s = Stats::of(&[7.0, 1.0, 11.0, 2.0, 4.0]);
        assert_eq!(s.count, 5);
        assert_eq!(s.mean, Some(5.0));
        assert!(close(s.std.unwrap(), 16.5f64.sqrt()));
        assert!(close(s.sem.unwrap(), (16.5f64 / 5.0).sqrt()));
        assert_eq!((s.q25, s.median, s.q75), (Some(2.0), Some(4.0), Some(7.0)));
        assert_eq!((s.min, s.max), (Some(1.0), Some(11.0)));
    }

    #[test]
    fn type7_quantiles_interpolate_between_order_statistics() {
        // x = 1, 2, 3, 4: q25 at h = 0.75 → 1.75; median at h = 1.5 → 2.5; q75 at h = 2.25 → 3.25
        // (numpy.quantile gives the same).
        let s = Stats::of(&[4.0, 3.0, 2.0, 1.0]);
        assert_eq!((s.q25, s.median, s.q75), (Some(1.75), Some(2.5), Some(3.25)));
        assert!(close(s.std.unwrap(), (5.0f64 / 3.0).sqrt()));
        assert_eq!(quantile_sorted(&[10.0, 20.0], 0.1), 11.0);
    }

    #[test]
    fn one_value_has_no_spread_and_no_values_have_no_statistics() {
        let s = Stats::of(&[3.5]);
        assert_eq!(s.count, 1);
        assert_eq!((s.mean, s.median, s.q25, s.q75), (Some(3.5), Some(3.5), Some(3.5), Some(3.5)));
        assert_eq!((s.std, s.sem), (None, None));
        assert_eq!(Stats::of(&[]), Stats::default());
        assert_eq!(Stats::of(&[]).mean, None);
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let s = Stats::of(&[1.0, f64::NAN, 3.0, f64::INFINITY]);
        assert_eq!(s.count, 2);
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(Stats::of(&[f64::NAN]).count, 0);
    }

    proptest! {
        #[test]
        fn mean_lies_in_range_quartiles_ordered_sem_is_std_over_root_n(
            v in proptest::collection::vec(-1e6f64..1e6, 1..60)
        ) {
            let s = Stats::of(&v);
            let (min, max) = (s.min.unwrap(), s.max.unwrap());
            let mean = s.mean.unwrap();
            prop_assert!(min <= mean && mean <= max);
            let (q25, med, q75) = (s.q25.unwrap(), s.median.unwrap(), s.q75.unwrap());
            prop_assert!(min <= q25 && q25 <= med && med <= q75 && q75 <= max);
            prop_assert_eq!(s.count, v.len() as u64);
            if v.len() >= 2 {
                let (std, sem) = (s.std.unwrap(), s.sem.unwrap());
                prop_assert!(std >= 0.0);
                prop_assert!(close(sem, std / (v.len() as f64).sqrt()));
            } else {
                prop_assert!(s.std.is_none() && s.sem.is_none());
            }
        }

        #[test]
        fn statistics_do_not_depend_on_order(mut v in proptest::collection::vec(-1e3f64..1e3, 1..40)) {
            let a = Stats::of(&v);
            v.reverse();
            let b = Stats::of(&v);
            prop_assert_eq!(a.median, b.median);
            prop_assert_eq!(a.q25, b.q25);
            prop_assert_eq!(a.q75, b.q75);
            prop_assert!(close(a.mean.unwrap(), b.mean.unwrap()));
        }
    }
}
