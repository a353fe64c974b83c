//! A model's own temperature curves, with no truth: what `taustar diagnose` reports for a
//! model a user already has (docs/spec.md §10, "diagnose").
//!
//! The model is sampled by parallel tempering on a ladder to β = 1/τ_lo ([`run_ladders`](super::estimate::run_ladders)),
//! or by multicanonical walkers ([`model_curves_multicanonical`]: for a model that orders
//! abruptly inside the range, and whose error bars then hold at q = 21 where the ladder's
//! reweighting across wide gaps falls short), and the reweighting gives, at any τ in the
//! range (β = 1/τ, q_τ ∝ e^{−βE}):
//! - ln Z(β), ⟨E⟩_τ, the entropy S(τ) = β⟨E⟩_τ + ln Z(β) and the heat capacity
//!   C(τ) = β² Var_τ(E), whose peak marks where the model orders;
//! - with held-out sequences of mean energy Ē_h, the held-out log-likelihood per sequence
//!   ℓ(τ) = −βĒ_h − ln Z(β). Its derivative in β is ⟨E⟩_τ − Ē_h, so ℓ is concave in β and
//!   its maximum is where ⟨E⟩_τ = Ē_h: the *energy-match* temperature. It is τ*_fwd with the
//!   held-out sequences standing in for the truth — D(p‖q_τ) = −ℓ(τ) + const when the
//!   held-out sequences are samples of p — so a model whose truth is known must give its
//!   τ*_fwd back (tested).
//!
//! Every number carries a block-bootstrap standard error that resamples the ladder's series
//! (in blocks of [`BLOCK_TAUS`] τ_int of the slowest sum of neighbouring rungs, see
//! [`curve_block`]) and the held-out energies (independently: they are separate sequences),
//! and the ladder's convergence diagnostics come along.
//!
//! Held-out sequences may carry weights ([`HeldOut::weights`], e.g. 1/N_m at the 80 %
//! identity threshold, as the training sequences are weighted): Ē_h is then the weighted
//! mean Σ w_m E_m / Σ w_m, so a cluster of near-copies counts as one sequence rather than
//! pulling Ē_h towards its own energy. The bootstrap resamples sequences with their
//! weights (the ratio estimator's resample).

use rand::{Rng, SeedableRng};

use super::diagnostics::LadderDiagnostics;
use super::estimate::{
    block_resampled_mean, optimum, run_ladders_reporting, At, LadderRun, McOptions, McProgress, WithSe,
};
use super::local::LocalEnsemble;
use super::mbar::{bootstrap_se, Mbar, Resample, Reweighter};
use super::multicanonical::{
    run_multicanonical, tau::muca_diagnostics, MucaError, MucaOptions, MucaReweighting,
};
use super::replica::Ensemble;
use super::stats::{mean_var, window_tau_int};

/// One τ of [`ModelCurves`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelCurvePoint {
    /// τ.
    pub tau: f64,
    /// ln Z(1/τ).
    pub log_z: WithSe,
    /// ⟨E⟩_τ.
    pub mean_energy: WithSe,
    /// S(τ) = ⟨E⟩_τ/τ + ln Z.
    pub entropy: WithSe,
    /// C(τ) = Var_τ(E)/τ².
    pub heat_capacity: WithSe,
    /// ℓ(τ) = −Ē_h/τ − ln Z: the held-out log-likelihood per sequence (with held-out data).
    pub heldout_log_likelihood: Option<WithSe>,
}

/// What [`model_curves`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCurves {
    /// The curve at the requested τ values inside the range.
    pub points: Vec<ModelCurvePoint>,
    /// τ of the largest C(τ) in the range, and C there.
    pub heat_peak_tau: WithSe,
    /// C at its peak.
    pub heat_peak: WithSe,
    /// Whether the peak sits at an end of the range (C still rising there).
    pub heat_peak_at_bound: bool,
    /// The held-out mean energy Ē_h and its standard error (independent sequences).
    pub heldout_mean_energy: Option<WithSe>,
    /// The energy-match τ (ℓ's maximum), when held-out energies were given.
    pub energy_match_tau: Option<WithSe>,
    /// Whether the energy-match τ sits at an end of the range (⟨E⟩_τ never reaches Ē_h).
    pub energy_match_at_bound: bool,
    /// The ladder.
    pub betas: Vec<f64>,
    /// How the run went. When the cold end did not equilibrate, the curves below
    /// `equilibrated_tau_lo` are not to be trusted.
    pub diagnostics: LadderDiagnostics,
}

/// Held-out sequences as the curves use them: their energies under the model, and
/// optionally their weights (module docs).
#[derive(Debug, Clone, Copy)]
pub struct HeldOut<'a> {
    /// E of each held-out sequence under the model.
    pub energies: &'a [f64],
    /// A weight ≥ 0 per sequence (`None`: all equal).
    pub weights: Option<&'a [f64]>,
}

impl HeldOut<'_> {
    /// Σ w E / Σ w over `indices` (every sequence once for the point estimate).
    fn mean(&self, indices: impl Iterator<Item = usize>) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for k in indices {
            let w = self.weights.map_or(1.0, |w| w[k]);
            num += w * self.energies[k];
            den += w;
        }
        num / den
    }

    /// Ē_h of all the sequences (the plain mean without weights).
    fn point_mean(&self) -> f64 {
        match self.weights {
            None => mean_var(self.energies).0,
            Some(_) => self.mean(0..self.energies.len()),
        }
    }

    /// The weighted mean of a resample of the sequences with replacement.
    fn resampled_mean<R: Rng>(&self, rng: &mut R) -> f64 {
        let n = self.energies.len();
        let picks: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
        self.mean(picks.into_iter())
    }
}

/// Bootstrap block length in units of τ_int. A moving-block bootstrap of blocks b keeps the
/// autocovariance at lag k with weight 1 − k/b, so it underestimates the variance of a mean
/// by about Σ_k k ρ_k / (b τ_int): short blocks lose the tail. On a 3-site, q = 21 model
/// (τ_int of the rung sums ≈ 1.2, 40 seeds), ⟨E⟩ at τ = 0.5 had a spread over seeds of
/// 1.18× its mean error bar with blocks of 4 τ_int of single rungs (3–5 steps), 1.09× with
/// 14 steps, then 1.05×, 1.04× and 1.04× with 32, 60 and 100 steps: a plateau from about
/// 25 τ_int on. Longer blocks cost only noise in the error bar: with ~65 blocks there, its
/// own spread is ~7 %.
pub const BLOCK_TAUS: f64 = 25.0;

/// Fewest blocks per ladder: longer blocks would leave too few to resample (a slow chain is
/// flagged by its diagnostics anyway).
pub const MIN_BLOCKS_PER_LADDER: usize = 10;

/// The bootstrap block of the curves: [`BLOCK_TAUS`] times the largest τ_int of any sum of
/// neighbouring rungs ([`window_tau_int`]), at most a [`MIN_BLOCKS_PER_LADDER`]th of a
/// ladder's steps.
pub fn curve_block(energies: &[Vec<f64>], ladders: usize) -> usize {
    let per_ladder = energies.first().map_or(0, Vec::len) / ladders.max(1);
    let tau = window_tau_int(energies, ladders).tau_int;
    let most = (per_ladder / MIN_BLOCKS_PER_LADDER).max(1);
    ((BLOCK_TAUS * tau).ceil() as usize).clamp(1, most)
}

/// Points of the heat-capacity scan per decade of τ before the golden-section refinement.
const PEAK_SCAN_PER_DECADE: f64 = 20.0;

/// The curves of `model` at `taus` (those outside `opts.tau_bounds` are left out), and with
/// `heldout_energies` (E of each held-out sequence under the model) the held-out
/// log-likelihood and the energy-match τ. Deterministic in `rng`.
pub fn model_curves<E: Ensemble + ?Sized, R: Rng>(
    model: &E,
    taus: &[f64],
    heldout_energies: Option<&[f64]>,
    opts: &McOptions,
    rng: &mut R,
) -> ModelCurves {
    let heldout = heldout_energies.map(|energies| HeldOut { energies, weights: None });
    model_curves_reporting(model, taus, heldout, opts, rng, &mut |_| {})
}

/// [`model_curves`] with optionally weighted held-out sequences, telling `progress` where
/// it is (for a progress bar; the numbers are the same). Panics if the weights are not one
/// per energy, finite, ≥ 0 with a positive sum (callers compute them from the sequences).
pub fn model_curves_reporting<E: Ensemble + ?Sized, R: Rng>(
    model: &E,
    taus: &[f64],
    heldout: Option<HeldOut<'_>>,
    opts: &McOptions,
    rng: &mut R,
    progress: &mut dyn FnMut(McProgress),
) -> ModelCurves {
    let (lo, hi) = opts.tau_bounds;
    assert!(0.0 < lo && lo < hi, "a τ range lo < hi, not {lo}..{hi}");
    let LadderRun { betas, energies: es, observables: obs, log_z0, mut diagnostics, .. } =
        run_ladders_reporting(model, &|_| 0.0, opts, rng, progress);
    let taus: Vec<f64> = taus.iter().copied().filter(|t| (lo..=hi).contains(t)).collect();
    let heldout = checked_heldout(heldout);
    let heldout_point = heldout.map(|h| h.point_mean());
    let (lo_beta, hi_beta) = (1.0 / hi, 1.0 / lo);
    let stat = |m: &Mbar, _: &[Vec<f64>], which: Resample| {
        curve_numbers(m, heldout_estimate(heldout, heldout_point, which), &taus, lo_beta, hi_beta)
    };
    let point = Mbar::solve(&betas, &es, &obs, log_z0, None);
    if !point.converged {
        diagnostics.fail("MBAR did not converge");
    }
    let block = curve_block(&es, opts.ladders);
    let (est, se) = bootstrap_se(&point, &es, &obs, log_z0, block, opts.resamples, rng, &stat);
    let curves = assemble(&point, &est, &se, &taus, heldout.is_some(), heldout_point, (lo_beta, hi_beta));
    ModelCurves { betas, diagnostics, ..curves }
}

/// Ē_h of a resample: the point estimate, or for a bootstrap draw the held-out sequences
/// resampled one by one (they are independent draws), from the draw's seed.
fn heldout_estimate(heldout: Option<HeldOut<'_>>, point: Option<f64>, which: Resample) -> Option<f64> {
    match (heldout, which) {
        (Some(h), Resample::Drawn(seed)) => {
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            Some(match h.weights {
                None => block_resampled_mean(h.energies, 1, &mut r),
                Some(_) => h.resampled_mean(&mut r),
            })
        }
        _ => point,
    }
}

/// The numbers every resample recomputes, from samples that reweight to any β (either
/// sampler's): the C peak (τ, C), with held-out data Ē_h and the energy-match τ, then per τ
/// ln Z, ⟨E⟩, S, C and with held-out data ℓ.
fn curve_numbers<M: Reweighter + ?Sized>(
    m: &M,
    e_h: Option<f64>,
    taus: &[f64],
    lo_beta: f64,
    hi_beta: f64,
) -> Vec<f64> {
    let (peak_beta, peak, _) = heat_peak(m, lo_beta, hi_beta);
    let mut v = vec![1.0 / peak_beta, peak];
    if let Some(e_h) = e_h {
        // ℓ's maximum: where the slope ⟨E⟩ − Ē_h of −ℓ in β turns from − to +.
        let (b, _) =
            optimum(m, lo_beta, hi_beta, &|a: &At| e_h - a.r.mean_energy, &|a: &At| a.beta * e_h + a.r.log_z);
        v.extend([e_h, 1.0 / b]);
    }
    for &tau in taus {
        let beta = 1.0 / tau;
        let r = m.at(beta);
        v.extend([r.log_z, r.mean_energy, beta * r.mean_energy + r.log_z, beta * beta * r.var_energy]);
        if let Some(e_h) = e_h {
            v.push(-beta * e_h - r.log_z);
        }
    }
    v
}

/// [`ModelCurves`] from [`curve_numbers`]' estimates `est` and standard errors `se` (the
/// ladder and diagnostics left empty for the caller); `point` gives the at-bound flags.
fn assemble<M: Reweighter + ?Sized>(
    point: &M,
    est: &[f64],
    se: &[f64],
    taus: &[f64],
    has_heldout: bool,
    heldout_point: Option<f64>,
    (lo_beta, hi_beta): (f64, f64),
) -> ModelCurves {
    let w = |i: usize| WithSe { value: est[i], se: se[i] };
    let (_, _, heat_peak_at_bound) = heat_peak(point, lo_beta, hi_beta);
    let mut at = 2;
    let (heldout_mean_energy, energy_match_tau, energy_match_at_bound) = match heldout_point {
        Some(e_h) => {
            let (_, bound) = optimum(point, lo_beta, hi_beta, &|a: &At| e_h - a.r.mean_energy, &|a: &At| {
                a.beta * e_h + a.r.log_z
            });
            at += 2;
            (Some(w(2)), Some(w(3)), bound)
        }
        None => (None, None, false),
    };
    let per = if has_heldout { 5 } else { 4 };
    let points = taus
        .iter()
        .enumerate()
        .map(|(j, &tau)| {
            let i = at + per * j;
            ModelCurvePoint {
                tau,
                log_z: w(i),
                mean_energy: w(i + 1),
                entropy: w(i + 2),
                heat_capacity: w(i + 3),
                heldout_log_likelihood: has_heldout.then(|| w(i + 4)),
            }
        })
        .collect();
    ModelCurves {
        points,
        heat_peak_tau: w(0),
        heat_peak: w(1),
        heat_peak_at_bound,
        heldout_mean_energy,
        energy_match_tau,
        energy_match_at_bound,
        betas: Vec::new(),
        diagnostics: LadderDiagnostics::default(),
    }
}

/// [`model_curves_reporting`] with the multicanonical sampler ([`super::multicanonical`]):
/// for a model whose energy law turns bimodal inside the range, where a ladder's diagnostics
/// fail. The same curves and keys; the diagnostics are the walkers' (`ladder_rungs` 0, no
/// swap acceptance, `walker_round_trips_min` and `flatness` set). `muca.tau_lo` and
/// `muca.resamples` are taken from `opts`. Errors only on a model with nothing to sample.
pub fn model_curves_multicanonical<E: LocalEnsemble + ?Sized, R: Rng>(
    model: &E,
    taus: &[f64],
    heldout: Option<HeldOut<'_>>,
    opts: &McOptions,
    muca: &MucaOptions,
    rng: &mut R,
    progress: &mut dyn FnMut(McProgress),
) -> Result<ModelCurves, MucaError> {
    let (lo, hi) = opts.tau_bounds;
    assert!(0.0 < lo && lo < hi, "a τ range lo < hi, not {lo}..{hi}");
    let muca = MucaOptions { tau_lo: lo, resamples: opts.resamples, ..muca.clone() };
    let run = run_multicanonical(model, &|_| 0.0, &muca, rng)?;
    progress(McProgress::Bootstrap);
    let taus: Vec<f64> = taus.iter().copied().filter(|t| (lo..=hi).contains(t)).collect();
    let heldout = checked_heldout(heldout);
    let heldout_point = heldout.map(|h| h.point_mean());
    let (lo_beta, hi_beta) = (1.0 / hi, 1.0 / lo);
    let stat = |m: &MucaReweighting, which: Resample| {
        curve_numbers(m, heldout_estimate(heldout, heldout_point, which), &taus, lo_beta, hi_beta)
    };
    let (est, se) = run.bootstrap(opts.resamples, rng, &stat);
    let curves =
        assemble(&run.reweighting, &est, &se, &taus, heldout.is_some(), heldout_point, (lo_beta, hi_beta));
    let diagnostics = muca_diagnostics(&run.diagnostics, &muca, run.reweighting.len(), lo);
    Ok(ModelCurves { diagnostics, ..curves })
}

/// Held-out data with at least one sequence, its weights checked (see
/// [`model_curves_reporting`]).
fn checked_heldout(heldout: Option<HeldOut<'_>>) -> Option<HeldOut<'_>> {
    let heldout = heldout.filter(|h| !h.energies.is_empty());
    if let Some(w) = heldout.and_then(|h| h.weights) {
        assert!(
            heldout.is_some_and(|h| h.energies.len() == w.len())
                && w.iter().all(|w| w.is_finite() && *w >= 0.0)
                && w.iter().sum::<f64>() > 0.0,
            "one finite weight >= 0 per held-out energy, with a positive sum"
        );
    }
    heldout
}

/// The β in [lo_beta, hi_beta] of the largest C = β² Var(E) on the reweighted curve: a
/// log-spaced scan, then golden-section search between the scan's neighbours of its best
/// point. Returns (β, C there, whether the peak is at an end of the range).
fn heat_peak<M: Reweighter + ?Sized>(m: &M, lo_beta: f64, hi_beta: f64) -> (f64, f64, bool) {
    let c = |u: f64| {
        let b = u.exp();
        b * b * m.at(b).var_energy
    };
    let (ul, uh) = (lo_beta.ln(), hi_beta.ln());
    let n = (((hi_beta / lo_beta).log10() * PEAK_SCAN_PER_DECADE).ceil() as usize).max(16);
    let grid: Vec<f64> = (0..=n).map(|i| ul + (uh - ul) * i as f64 / n as f64).collect();
    let values: Vec<f64> = grid.iter().map(|&u| c(u)).collect();
    let best = values.iter().enumerate().fold(0, |b, (i, &v)| if v > values[b] { i } else { b });
    if best == 0 || best == n {
        return (grid[best].exp(), values[best], true);
    }
    let (mut a, mut b) = (grid[best - 1], grid[best + 1]);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (b - g * (b - a), a + g * (b - a));
    let (mut f1, mut f2) = (c(x1), c(x2));
    // 30 steps shrink the bracket (a tenth of a decade) by 0.618^30 ≈ 5e-7.
    for _ in 0..30 {
        if f1 > f2 {
            b = x2;
            (x2, f2) = (x1, f1);
            x1 = b - g * (b - a);
            f1 = c(x1);
        } else {
            a = x1;
            (x1, f1) = (x2, f2);
            x2 = a + g * (b - a);
            f2 = c(x2);
        }
    }
    let u = 0.5 * (a + b);
    (u.exp(), c(u), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_heldout_mean_counts_a_cluster_of_copies_once() {
        // Three copies of a sequence at E = 1 weighted 1/3 each, one at E = 5: as [1, 5].
        let energies = [1.0, 1.0, 1.0, 5.0];
        let weights = [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 1.0];
        let h = HeldOut { energies: &energies, weights: Some(&weights) };
        assert!((h.mean(0..4) - 3.0).abs() < 1e-12);
        let plain = HeldOut { energies: &energies, weights: None };
        assert!((plain.mean(0..4) - 2.0).abs() < 1e-12);
        // A resample is a weighted mean of some of the energies: inside their range.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let r = h.resampled_mean(&mut rng);
            assert!((1.0..=5.0).contains(&r), "{r}");
        }
    }
}
