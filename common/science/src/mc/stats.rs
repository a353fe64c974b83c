//! Error bars of correlated Monte Carlo series.
//!
//! The integrated autocorrelation time τ_int = ½ + Σ_{t≥1} ρ(t) is estimated with Sokal's
//! automatic window: the sum runs to the smallest W with W ≥ c·τ_int(W) (c = 5), which
//! balances the bias of cutting the tail against the noise of summing it. Then the series
//! is worth n / (2τ_int) independent samples, and the standard error of its mean is
//! √(Var · 2τ_int / n).

/// Sokal's window constant.
pub const WINDOW_C: f64 = 5.0;

/// τ_int of a series and how it was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Autocorrelation {
    /// The integrated autocorrelation time, in steps of the series (½ for independent
    /// samples).
    pub tau_int: f64,
    /// The window W the sum ran to.
    pub window: usize,
    /// Whether the window condition W ≥ c·τ_int was met before W reached n/4; if not, the
    /// series is too short for its correlations and τ_int is a lower bound.
    pub converged: bool,
}

/// Mean and (population) variance.
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Relative spread below which a series counts as constant: a chain frozen in its ground
/// states still shows the round-off of its incrementally kept energy (~1e-15 relative, a
/// slow random walk), whose "autocorrelation" says nothing about the sampling.
pub const CONSTANT_RELATIVE_SPREAD: f64 = 1e-10;

/// τ_int of `x` by the automatic window (see the module docs). A constant series (spread
/// below [`CONSTANT_RELATIVE_SPREAD`] of its magnitude) has τ_int = ½: it is exactly known.
pub fn autocorrelation(x: &[f64]) -> Autocorrelation {
    let n = x.len();
    let (mean, var) = mean_var(x);
    if n < 2 || var.sqrt() <= CONSTANT_RELATIVE_SPREAD * mean.abs() || var == 0.0 {
        return Autocorrelation { tau_int: 0.5, window: 0, converged: true };
    }
    let d: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut tau = 0.5;
    let max_window = n / 4;
    for w in 1..=max_window {
        let c: f64 = d[..n - w].iter().zip(&d[w..]).map(|(a, b)| a * b).sum::<f64>() / n as f64;
        tau += c / var;
        if w as f64 >= WINDOW_C * tau {
            return Autocorrelation { tau_int: tau.max(0.5), window: w, converged: true };
        }
    }
    Autocorrelation { tau_int: tau.max(0.5), window: max_window, converged: false }
}

/// The largest τ_int of any window of consecutive rungs, summed step by step, in any of
/// `segments` equal consecutive parts of the series (the independent ladders, concatenated).
///
/// Why not the rungs' own τ_int: in parallel tempering a configuration that swaps to a
/// neighbouring rung carries its energy there, so a rung's series decorrelates as fast as
/// walkers rotate through it, while a sum over neighbouring rungs (what MBAR's reweighting
/// to a β between them is, to first order) still sees the configuration for a few more
/// steps. Measured on a 3-site, q = 21 model at β = 2–2.5: each rung has τ_int ≈ 0.6–0.76
/// and lag-1 autocorrelation 0.07–0.2, the sum of the coldest 2–6 rungs τ_int ≈ 1.0 with
/// lag-1 autocorrelation 0.27. A bootstrap block sized on the rungs alone missed that tail
/// and gave ⟨E⟩ at τ = 0.5 error bars 1.2–1.4× too small.
///
/// Cost: O(K² n W) for K rungs of n steps and windows W of a few τ_int, negligible next to
/// the sampling.
pub fn window_tau_int(series: &[Vec<f64>], segments: usize) -> Autocorrelation {
    let mut worst = Autocorrelation { tau_int: 0.5, window: 0, converged: true };
    let (k, steps) = (series.len(), series.first().map_or(0, Vec::len));
    let segments = segments.max(1);
    let per = steps / segments;
    if k == 0 || per < 2 {
        return worst;
    }
    let mut sum = vec![0.0; per];
    for part in 0..segments {
        let range = part * per..(part + 1) * per;
        for start in 0..k {
            sum.iter_mut().for_each(|v| *v = 0.0);
            for rung in &series[start..] {
                for (s, e) in sum.iter_mut().zip(&rung[range.clone()]) {
                    *s += e;
                }
                let a = autocorrelation(&sum);
                worst.converged &= a.converged;
                if a.tau_int > worst.tau_int {
                    worst.tau_int = a.tau_int;
                    worst.window = a.window;
                }
            }
        }
    }
    worst
}

/// The standard deviation of each of the `width` columns of `rows` (one row per bootstrap
/// resample, n − 1 in the denominator): a bootstrap's standard errors. Sums run in row
/// order, so the result does not depend on how the rows were computed in parallel. NaN with
/// fewer than two rows (no spread to measure).
pub fn column_sd(rows: impl IntoIterator<Item = Vec<f64>>, width: usize) -> Vec<f64> {
    let mut sums = vec![0.0; width];
    let mut squares = vec![0.0; width];
    let mut count = 0usize;
    for row in rows {
        for (i, v) in row.into_iter().enumerate() {
            sums[i] += v;
            squares[i] += v * v;
        }
        count += 1;
    }
    if count < 2 {
        return vec![f64::NAN; width];
    }
    let r = count as f64;
    sums.iter()
        .zip(&squares)
        .map(|(s, q)| ((q / r - (s / r) * (s / r)) * r / (r - 1.0)).max(0.0).sqrt())
        .collect()
}

/// The mean of a correlated series with its standard error and τ_int.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The sample mean.
    pub mean: f64,
    /// √(Var · 2τ_int / n).
    pub se: f64,
    /// The series' autocorrelation.
    pub autocorrelation: Autocorrelation,
    /// Effective sample size n / (2τ_int).
    pub ess: f64,
}

/// The mean of `x` with an error bar that accounts for its autocorrelation.
pub fn estimate(x: &[f64]) -> Estimate {
    let (mean, var) = mean_var(x);
    let autocorrelation = autocorrelation(x);
    let n = x.len() as f64;
    let ess = n / (2.0 * autocorrelation.tau_int);
    Estimate { mean, se: (var / ess).sqrt(), autocorrelation, ess }
}

/// The upper `p` quantile of the F distribution with (`d1`, `d2`) degrees of freedom, by
/// Paulson's normal approximation (Paulson 1942; within a few per cent for d1 ≥ 2, d2 ≥ 10
/// at the tails used here). `z` is the standard normal quantile of p (3.09 for 0.999).
///
/// Why: a between/within variance ratio of k groups of n blocks is F(k − 1, k(n − 1))
/// when the groups agree, so "above its 0.999 quantile" is a disagreement that chance
/// explains once in a thousand runs, whatever the number of blocks.
pub fn f_quantile(d1: f64, d2: f64, z: f64) -> f64 {
    let (c1, c2) = (2.0 / (9.0 * d1), 2.0 / (9.0 * d2));
    let (a, b) = (1.0 - c2, 1.0 - c1);
    // (a u − b)² = z² (c2 u² + c1), u = F^{1/3}: the larger root.
    let qa = a * a - z * z * c2;
    let disc = (a * b).powi(2) - qa * (b * b - z * z * c1);
    let u = (a * b + disc.max(0.0).sqrt()) / qa;
    u.powi(3)
}

#[cfg(test)]
mod tests {
    /// Against tabulated 0.999 quantiles of F.
    #[test]
    fn the_f_quantile_matches_tables() {
        for (d1, d2, want) in [(3.0, 60.0, 6.17), (1.0, 60.0, 11.97), (5.0, 120.0, 4.42), (3.0, 1e9, 5.42)] {
            let got = super::f_quantile(d1, d2, 3.0902);
            assert!((got / want - 1.0).abs() < 0.06, "F.999({d1}, {d2}) = {got}, table {want}");
        }
    }
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// x_t = ρ x_{t−1} + √(1 − ρ²) ε_t: unit variance, τ_int = (1 + ρ) / (2(1 − ρ)).
    fn ar1(rho: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut x: f64 = StandardNormal.sample(&mut rng);
        (0..n)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                x = rho * x + (1.0 - rho * rho).sqrt() * e;
                x
            })
            .collect()
    }

    #[test]
    fn tau_int_of_an_ar1_process_is_its_closed_form() {
        for rho in [0.0, 0.5, 0.9, 0.97] {
            let exact = (1.0 + rho) / (2.0 * (1.0 - rho));
            let a = autocorrelation(&ar1(rho, 400_000, 1));
            assert!(a.converged, "ρ = {rho}: {a:?}");
            assert!((a.tau_int - exact).abs() < 0.08 * exact, "ρ = {rho}: τ_int {} vs {exact}", a.tau_int);
        }
        let short = autocorrelation(&ar1(0.999, 2_000, 2));
        assert!(!short.converged, "2 000 steps of a τ_int ≈ 1000 series cannot converge: {short:?}");
        assert_eq!(autocorrelation(&[3.0; 10]).tau_int, 0.5);
        // Round-off around a constant (a frozen chain's kept energy) is a constant.
        let frozen: Vec<f64> = (0..1000).map(|i| -10.6 + 1e-15 * ((i / 50) as f64)).collect();
        assert_eq!(autocorrelation(&frozen), Autocorrelation { tau_int: 0.5, window: 0, converged: true });
    }

    /// Rung 1 holds at step t what rung 0 held at t − 1 (a configuration carried by a swap):
    /// each rung alone is white noise, their sum is correlated at lag 1 (ρ = ½, τ_int = 1).
    #[test]
    fn window_tau_int_sees_correlation_that_lives_across_rungs() {
        let noise = ar1(0.0, 200_001, 3);
        let rungs = vec![noise[1..].to_vec(), noise[..200_000].to_vec()];
        for r in &rungs {
            assert!((autocorrelation(r).tau_int - 0.5).abs() < 0.02, "{:?}", autocorrelation(r));
        }
        let w = window_tau_int(&rungs, 1);
        assert!(w.converged && (w.tau_int - 1.0).abs() < 0.05, "{w:?}");
        // Cut into two "ladders", each half is judged on its own and gives the same.
        assert!((window_tau_int(&rungs, 2).tau_int - 1.0).abs() < 0.07);
        // Independent rungs: nothing beyond the rungs' own.
        let apart = vec![ar1(0.5, 100_000, 4), ar1(0.0, 100_000, 5)];
        let own = autocorrelation(&apart[0]).tau_int;
        assert!((window_tau_int(&apart, 1).tau_int - own).abs() < 0.1 * own);
    }

    #[test]
    fn column_sd_is_the_sample_standard_deviation_of_each_column() {
        let rows = vec![vec![1.0, 10.0], vec![2.0, 10.0], vec![3.0, 10.0], vec![6.0, 10.0]];
        let sd = column_sd(rows, 2);
        // Column 0: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, over n − 1 = 3.
        assert!((sd[0] - (14.0f64 / 3.0).sqrt()).abs() < 1e-12, "{sd:?}");
        assert_eq!(sd[1], 0.0);
        assert!(column_sd(vec![vec![1.0]], 1)[0].is_nan());
        assert!(column_sd(Vec::<Vec<f64>>::new(), 1)[0].is_nan());
    }

    #[test]
    fn error_bars_of_correlated_means_have_standard_normal_z_scores() {
        let z: Vec<f64> = (0..200)
            .map(|seed| {
                let e = estimate(&ar1(0.9, 20_000, 100 + seed));
                e.mean / e.se
            })
            .collect();
        let (m, v) = mean_var(&z);
        assert!(m.abs() < 0.2 && (0.8..1.25).contains(&v.sqrt()), "z mean {m}, sd {}", v.sqrt());
    }
}
