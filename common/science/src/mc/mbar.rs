//! MBAR (multistate Bennett acceptance ratio): ln Z and averages at any β inside a ladder,
//! from the samples of every rung at once (docs/spec.md §10).
//!
//! With N_k samples at β_k and all samples pooled (energies E_n), the free energies
//! f_k = −ln Z(β_k) solve f_i = −ln Σ_n e^{−β_i E_n} / Σ_k N_k e^{f_k − β_k E_n}; they are
//! found by Newton's method on the convex function whose stationary point that is
//! (Shirts & Chodera 2008), with backtracking. Then at
//! any β, sample n carries the weight w_n(β) = e^{−β E_n} / Σ_k N_k e^{f_k − β_k E_n}:
//! ln Z(β) = ln Σ_n w_n(β) and ⟨A⟩_β = Σ_n w_n A_n / Σ_n w_n. The ladder starts at β = 0,
//! where ln Z = N ln 2 exactly, which fixes the additive constant: ln Z comes out absolute.
//!
//! Error bars: a block bootstrap over the PT steps ([`bootstrap_se`]), resampling whole
//! steps (all rungs together, so the correlations that swaps create are kept) in blocks
//! longer than the autocorrelation, and re-solving from the point estimate.

use rand::Rng;
use rayon::prelude::*;

use crate::exact::exp_nonpos;

/// ln Σ exp(x) over an iterator that can be walked twice, with every exponential's
/// argument ≤ 0 (taustar's IEEE-pure exponential: the same bits on every machine).
fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = x.clone().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + x.map(|v| exp_nonpos(v - top)).sum::<f64>().ln()
}

/// The solved estimator.
#[derive(Debug, Clone)]
pub struct Mbar {
    betas: Vec<f64>,
    energies: Vec<f64>,
    observables: Vec<f64>,
    /// ln Σ_k N_k e^{f_k − β_k E_n} per sample.
    log_denom: Vec<f64>,
    /// f_k = −ln Z(β_k).
    f: Vec<f64>,
    /// N_k, the samples of each rung.
    samples_per_rung: Vec<f64>,
    /// Iterations the solve took.
    pub iterations: usize,
    /// Whether the solve reached its tolerance (a Newton step below 1e-10 in every f_k, or
    /// the minimum to round-off).
    pub converged: bool,
}

/// Samples that reweight to any β of their range: a tempering ladder solved by MBAR, or the
/// pooled samples of a multicanonical run. The τ* search and every curve quantity are
/// written once against this, so both samplers answer the same questions the same way.
pub trait Reweighter: Sync {
    /// ln Z and averages at `beta`.
    fn at(&self, beta: f64) -> Reweighted;
}

impl Reweighter for Mbar {
    fn at(&self, beta: f64) -> Reweighted {
        Mbar::at(self, beta)
    }
}

/// Averages at one β.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reweighted {
    /// ln Z(β).
    pub log_z: f64,
    /// ⟨E⟩_β.
    pub mean_energy: f64,
    /// Var_β(E).
    pub var_energy: f64,
    /// ⟨A⟩_β of the observable.
    pub mean_observable: f64,
    /// Cov_β(E, A).
    pub cov_energy_observable: f64,
}

/// The Hessian of MBAR's objective in f_1..f_{K−1} (f_0 pinned) and the column sums
/// Σ_n W_ni, with W_ni = e^{f_i − β_i E_n − ln denom_n}:
/// H_ij = δ_ij N_i Σ_n W_ni − N_i N_j Σ_n W_ni W_nj. The Newton step and the analytic
/// variance both need it.
fn hessian(
    betas: &[f64],
    f: &[f64],
    energies: &[f64],
    log_denom: &[f64],
    n_k: &[f64],
) -> (ndarray::Array2<f64>, Vec<f64>) {
    let k = betas.len();
    let mut colsum = vec![0.0; k];
    let mut h = ndarray::Array2::<f64>::zeros((k - 1, k - 1));
    let mut w = vec![0.0; k];
    for (&e, &d) in energies.iter().zip(log_denom) {
        for i in 0..k {
            w[i] = exp_nonpos((f[i] - betas[i] * e - d).min(0.0));
            colsum[i] += w[i];
        }
        for i in 1..k {
            for j in 1..=i {
                h[[i - 1, j - 1]] -= n_k[i] * n_k[j] * w[i] * w[j];
            }
        }
    }
    for i in 1..k {
        h[[i - 1, i - 1]] += n_k[i] * colsum[i];
        for j in 1..i {
            h[[j - 1, i - 1]] = h[[i - 1, j - 1]];
        }
    }
    (h, colsum)
}

/// Log-weights below this (relative to the heaviest sample) are left out of [`Mbar::at`].
const NEGLIGIBLE_LOG_WEIGHT: f64 = -50.0;

/// Tolerance of the solve: the last Newton step, in each f_k.
const TOL: f64 = 1e-10;
/// Newton iteration cap (it converges in about ten from thermodynamic integration).
const MAX_ITER: usize = 200;

impl Mbar {
    /// Solve for the ladder `betas` (ascending, `betas[0] = 0`) from per-rung series of
    /// energies and of an observable, with ln Z(0) = `log_z0`. `init`: a starting f (a
    /// previous solution); otherwise thermodynamic integration between neighbours.
    pub fn solve(
        betas: &[f64],
        energies: &[Vec<f64>],
        observables: &[Vec<f64>],
        log_z0: f64,
        init: Option<&[f64]>,
    ) -> Mbar {
        assert!(betas.len() == energies.len() && betas.len() == observables.len() && betas[0] == 0.0);
        let log_n: Vec<f64> = energies.iter().map(|e| (e.len() as f64).ln()).collect();
        let pooled_e: Vec<f64> = energies.iter().flatten().copied().collect();
        let pooled_a: Vec<f64> = observables.iter().flatten().copied().collect();
        let mut f: Vec<f64> = match init {
            Some(f) => f.to_vec(),
            None => {
                // ln Z(β_{k+1}) − ln Z(β_k) ≈ −Δβ (⟨E⟩_k + ⟨E⟩_{k+1})/2.
                let means: Vec<f64> =
                    energies.iter().map(|e| e.iter().sum::<f64>() / e.len() as f64).collect();
                let mut f = vec![-log_z0];
                for k in 1..betas.len() {
                    let step = (betas[k] - betas[k - 1]) * 0.5 * (means[k] + means[k - 1]);
                    f.push(f[k - 1] + step);
                }
                f
            }
        };
        let k = betas.len();
        let n_k: Vec<f64> = energies.iter().map(|e| e.len() as f64).collect();
        let mut log_denom = vec![0.0; pooled_e.len()];
        let fill_denom = |f: &[f64], log_denom: &mut [f64]| {
            for (d, &e) in log_denom.iter_mut().zip(&pooled_e) {
                *d = log_sum_exp((0..k).map(|j| log_n[j] + f[j] - betas[j] * e));
            }
        };
        // The convex objective A(f) = Σ_n ln Σ_k N_k e^{f_k − β_k E_n} − Σ_k N_k f_k, whose
        // minimum is the MBAR solution; f_0 stays fixed (the β = 0 anchor).
        let objective = |f: &[f64], log_denom: &[f64]| -> f64 {
            log_denom.iter().sum::<f64>() - f.iter().zip(&n_k).map(|(f, n)| f * n).sum::<f64>()
        };
        let mut iterations = 0;
        let mut converged = false;
        fill_denom(&f, &mut log_denom);
        let mut a = objective(&f, &log_denom);
        while iterations < MAX_ITER {
            iterations += 1;
            // Gradient N_i (Σ_n W_ni − 1) and Hessian; Newton on rungs 1..K.
            let (h, colsum) = hessian(betas, &f, &pooled_e, &log_denom, &n_k);
            let g: Vec<f64> = (1..k).map(|i| n_k[i] * (colsum[i] - 1.0)).collect();
            let (step, _) = crate::fit::linalg::solve_spd_with_ridge(&h, &g);
            // Newton with backtracking: never accept a step that raises A.
            let mut t = 1.0;
            let mut next = f.clone();
            let mut next_denom = log_denom.clone();
            let accepted = loop {
                for i in 1..k {
                    next[i] = f[i] - t * step[i - 1];
                }
                fill_denom(&next, &mut next_denom);
                let a_next = objective(&next, &next_denom);
                if a_next <= a + 1e-12 * a.abs() {
                    a = a_next;
                    break true;
                }
                t *= 0.5;
                if t < 1e-6 {
                    break false;
                }
            };
            let change = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
            if accepted {
                f = next;
                log_denom = next_denom;
            }
            if !accepted || change < TOL {
                converged = accepted || change < TOL;
                break;
            }
        }
        Mbar {
            betas: betas.to_vec(),
            energies: pooled_e,
            observables: pooled_a,
            log_denom,
            f,
            samples_per_rung: n_k,
            iterations,
            converged,
        }
    }

    /// The asymptotic (analytic) variance of ln Z(β_k) − ln Z(0) at every rung k, for
    /// samples that are `inefficiency` times as correlated as independent ones (2 τ_int):
    /// the second opinion on the bootstrap (docs/spec.md §10).
    ///
    /// MBAR is the maximum-likelihood estimator of a reverse logistic regression (Geyer
    /// 1994; Kong et al. 2003), whose objective's Hessian with f_0 pinned is
    /// H_ij = δ_ij N_i Σ_n W_ni − N_i N_j Σ_n W_ni W_nj (i, j ≥ 1). The inverse Fisher
    /// information overstates the variance because the N_k are fixed by design, not drawn;
    /// the correction (equivalent to Shirts & Chodera's Θ = (WᵀW)⁺ − N formula) gives
    /// Var(f_k − f_0) = (H⁻¹)_kk − 1/N_k − 1/N_0. Costs one pass over the samples (N·K²).
    pub fn log_z_variance(&self, inefficiency: f64) -> Vec<f64> {
        let k = self.betas.len();
        let counts = &self.samples_per_rung;
        let (h, _) = hessian(&self.betas, &self.f, &self.energies, &self.log_denom, counts);
        let mut out = vec![0.0; k];
        for i in 1..k {
            let mut unit = vec![0.0; k - 1];
            unit[i - 1] = 1.0;
            let (x, _) = crate::fit::linalg::solve_spd_with_ridge(&h, &unit);
            let v = x[i - 1] - 1.0 / counts[i] - 1.0 / counts[0];
            out[i] = inefficiency * v.max(0.0);
        }
        out
    }

    /// f_k = −ln Z(β_k) of the ladder.
    pub fn free_energies(&self) -> &[f64] {
        &self.f
    }

    /// ln Z and averages at `beta` (meaningful inside the ladder's range).
    ///
    /// One exponential per sample: a pass for the largest log-weight, then one that sums the
    /// weights and the weighted moments together and normalises at the end. This is the
    /// estimator's hot loop (every bootstrap resample evaluates ~150 β for the roots, the
    /// scan and the curve); taking the normaliser first and the weights second cost two.
    pub fn at(&self, beta: f64) -> Reweighted {
        let top = self
            .energies
            .iter()
            .zip(&self.log_denom)
            .fold(f64::NEG_INFINITY, |m, (&e, &d)| m.max(-beta * e - d));
        let mut m = WeightedMoments::default();
        for ((&e, &d), &a) in self.energies.iter().zip(&self.log_denom).zip(&self.observables) {
            let x = -beta * e - d - top;
            // Samples of far rungs weigh < e^−50 ≈ 2·10^−22 of the heaviest: even 10^5 of
            // them add less than half an ulp to z ≥ 1, so skipping their exponential changes
            // nothing but the time (most samples, on a ladder of ten rungs).
            if x < NEGLIGIBLE_LOG_WEIGHT {
                continue;
            }
            m.add(exp_nonpos(x.min(0.0)), e, a);
        }
        m.finish(top, 0.0, 0.0)
    }

    /// The ladder.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }
}

/// Weighted sums of 1, E, E², A and E·A, what every reweighting estimator accumulates in its
/// hot loop (MBAR here, the multicanonical reweighting too), in one pass and one order.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WeightedMoments {
    z: f64,
    e1: f64,
    e2: f64,
    a1: f64,
    ea: f64,
}

impl WeightedMoments {
    /// Add a sample of weight `w` (E and A taken about the caller's shift).
    #[inline]
    pub(crate) fn add(&mut self, w: f64, e: f64, a: f64) {
        self.z += w;
        self.e1 += w * e;
        self.e2 += w * e * e;
        self.a1 += w * a;
        self.ea += w * e * a;
    }

    /// The averages, with ln Z = `log_top` + ln Σw (the weights having been divided by
    /// e^{log_top}) and the means shifted back by (`e0`, `a0`).
    pub(crate) fn finish(self, log_top: f64, e0: f64, a0: f64) -> Reweighted {
        let z = self.z;
        let (e1, e2, a1, ea) = (self.e1 / z, self.e2 / z, self.a1 / z, self.ea / z);
        Reweighted {
            log_z: log_top + z.ln(),
            mean_energy: e0 + e1,
            var_energy: (e2 - e1 * e1).max(0.0),
            mean_observable: a0 + a1,
            cov_energy_observable: ea - e1 * a1,
        }
    }
}

/// Which estimate a bootstrap statistic is asked for: the point estimate from all samples,
/// or one resample (a statistic with inputs of its own, such as samples of the truth,
/// resamples those too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// All samples as they are.
    Point,
    /// A bootstrap resample, with a seed for whatever else the statistic resamples.
    Drawn(u64),
}

/// A bootstrap statistic: numbers computed from a solved [`Mbar`], the per-rung energies it
/// was solved from, and which estimate is being asked for.
pub type Statistic<'a> = dyn Fn(&Mbar, &[Vec<f64>], Resample) -> Vec<f64> + Sync + 'a;

/// Standard errors of `stat` (a vector of numbers computed from a solved [`Mbar`] and the
/// per-rung energies it was solved from) by a
/// block bootstrap over PT steps. `point` is the estimator solved from all of `energies` and
/// `observables` (the caller keeps it: its convergence and its own statistics are needed
/// anyway, so it is solved once); `energies[k][t]` is rung k at step t (every rung has the
/// same steps); blocks of `block` consecutive steps are drawn with replacement, the same
/// blocks for every rung, `resamples` times. Returns (point estimate, standard errors).
#[allow(clippy::too_many_arguments)]
pub fn bootstrap_se<R: Rng>(
    point: &Mbar,
    energies: &[Vec<f64>],
    observables: &[Vec<f64>],
    log_z0: f64,
    block: usize,
    resamples: usize,
    rng: &mut R,
    stat: &Statistic<'_>,
) -> (Vec<f64>, Vec<f64>) {
    let steps = energies[0].len();
    assert!(energies.iter().chain(observables).all(|s| s.len() == steps), "every rung has every step");
    let block = block.clamp(1, steps);
    let betas = point.betas();
    let estimate = stat(point, energies, Resample::Point);
    let blocks = steps.div_ceil(block);
    // The draws come from `rng` in order, the resamples run in parallel, and their
    // statistics are summed in order: the same numbers on any number of threads.
    let draws: Vec<(Vec<usize>, u64)> = (0..resamples)
        .map(|_| ((0..blocks).map(|_| rng.random_range(0..=steps - block)).collect(), rng.random()))
        .collect();
    let stats: Vec<Vec<f64>> = draws
        .par_iter()
        .map(|(starts, seed)| {
            let (mut e_b, mut a_b) =
                (super::empty_series(betas.len(), steps), super::empty_series(betas.len(), steps));
            for &start in starts {
                for k in 0..betas.len() {
                    e_b[k].extend_from_slice(&energies[k][start..start + block]);
                    a_b[k].extend_from_slice(&observables[k][start..start + block]);
                }
            }
            let m = Mbar::solve(betas, &e_b, &a_b, log_z0, Some(point.free_energies()));
            stat(&m, &e_b, Resample::Drawn(*seed))
        })
        .collect();
    let se = super::stats::column_sd(stats, estimate.len());
    (estimate, se)
}
