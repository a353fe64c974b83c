//! From multicanonical samples to any β, and the block bootstrap of what is computed there.
//!
//! Samples n drawn from π ∝ e^{ω(E)} with frozen ω carry the importance weight
//! e^{−βE_n − ω(E_n)} at β, so ⟨A⟩_β = Σ_n w_n A_n / Σ_n w_n and
//! ln Z(β) − ln Z(0) = ln Σ_n e^{−βE_n − ω_n} − ln Σ_n e^{−ω_n}: absolute once anchored at
//! ln Z(0) = ln(number of configurations) (N ln 2, N ln q). One pool of samples, however
//! many walkers drew them, because they all sampled the same π.
//!
//! Error bars: each walker's production is cut into consecutive blocks; a bootstrap
//! resample draws, for every walker, as many of its own blocks with replacement (stratified
//! by walker, so every resample has every walker's share) and recomputes the statistic. The
//! blocks must be long against the autocorrelation of E, which the run's diagnostics check.

use rand::Rng;
use rayon::prelude::*;

use crate::exact::exp_nonpos;
use crate::mc::mbar::{Resample, Reweighted, Reweighter, WeightedMoments};

/// Log-weights below this (relative to the heaviest sample) are left out of
/// [`MucaReweighting::at`] (as MBAR does: they add less than half an ulp).
const NEGLIGIBLE_LOG_WEIGHT: f64 = -50.0;

/// Pooled production samples with their multicanonical weights.
#[derive(Debug, Clone, PartialEq)]
pub struct MucaReweighting {
    energies: Vec<f64>,
    observables: Vec<f64>,
    /// ω(E_n).
    omega: Vec<f64>,
    /// ln Σ_n e^{−ω_n} − ln Z(0): subtracting it anchors ln Z.
    log_norm: f64,
    log_z0: f64,
}

/// ln Σ_i e^{x_i}, exponentials of non-positive arguments only (bit-identical everywhere).
fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = x.clone().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + x.map(|v| exp_nonpos(v - top)).sum::<f64>().ln()
}

impl MucaReweighting {
    /// From samples (E_n, A_n, ω(E_n)) and ln Z(0). Panics unless the three series have one
    /// entry per sample and there is at least one (the run that calls this guarantees both).
    pub fn new(energies: Vec<f64>, observables: Vec<f64>, omega: Vec<f64>, log_z0: f64) -> MucaReweighting {
        assert!(
            !energies.is_empty() && energies.len() == observables.len() && energies.len() == omega.len(),
            "one energy, observable and ω per sample"
        );
        let log_norm = log_sum_exp(omega.iter().map(|w| -w)) - log_z0;
        MucaReweighting { energies, observables, omega, log_norm, log_z0 }
    }

    /// Samples pooled.
    pub fn len(&self) -> usize {
        self.energies.len()
    }

    /// No samples (never: [`MucaReweighting::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.energies.is_empty()
    }

    /// ln Z(0), the anchor.
    pub fn log_z0(&self) -> f64 {
        self.log_z0
    }

    /// The sampled energies.
    pub fn energies(&self) -> &[f64] {
        &self.energies
    }

    /// ln of each sample's weight at β, up to a constant common to all samples.
    #[inline]
    fn log_weight(&self, n: usize, beta: f64) -> f64 {
        -beta * self.energies[n] - self.omega[n]
    }

    /// ln Z and averages at `beta` (meaningful in [0, β_max] of the run), as
    /// [`Mbar::at`](crate::mc::mbar::Mbar::at) gives them for a ladder: one exponential per
    /// sample, moments normalised at the end. The moments are taken about the heaviest
    /// sample's E and A: raw moments lose digits when |⟨E⟩| ≫ σ_E (hundreds of sites at a
    /// cold β), moments about a point inside the law do not.
    pub fn at(&self, beta: f64) -> Reweighted {
        let (mut top, mut heaviest) = (f64::NEG_INFINITY, 0);
        for n in 0..self.len() {
            let x = self.log_weight(n, beta);
            if x > top {
                (top, heaviest) = (x, n);
            }
        }
        let (e0, a0) = (self.energies[heaviest], self.observables[heaviest]);
        let mut m = WeightedMoments::default();
        for (n, (&e, &a)) in self.energies.iter().zip(&self.observables).enumerate() {
            let x = self.log_weight(n, beta) - top;
            if x < NEGLIGIBLE_LOG_WEIGHT {
                continue;
            }
            m.add(exp_nonpos(x), e - e0, a - a0);
        }
        let r = m.finish(top, e0, a0);
        Reweighted { log_z: r.log_z - self.log_norm, ..r }
    }

    /// The law of E at β on bins of `width` starting at `start`: the probability of each bin
    /// (samples below `start` are left out; the vector is as long as the highest bin hit).
    /// With integer energies and width 1 starting at a half integer this is P_β(E) itself.
    pub fn energy_distribution(&self, beta: f64, start: f64, width: f64) -> Vec<f64> {
        let top = (0..self.len()).fold(f64::NEG_INFINITY, |m, n| m.max(self.log_weight(n, beta)));
        let mut p: Vec<f64> = Vec::new();
        let mut total = 0.0;
        for n in 0..self.len() {
            let w = exp_nonpos((self.log_weight(n, beta) - top).min(0.0));
            total += w;
            let x = (self.energies[n] - start) / width;
            if x < 0.0 {
                continue;
            }
            let k = x as usize;
            if p.len() <= k {
                p.resize(k + 1, 0.0);
            }
            p[k] += w;
        }
        for v in &mut p {
            *v /= total;
        }
        p
    }

    /// ln(P_β(E < cut) / P_β(E ≥ cut)): the log ratio of the two phases' weights when `cut`
    /// lies between the peaks of a bimodal law (the equal-weight criterion of a first-order
    /// transition sets it to ln q).
    pub fn phase_log_ratio(&self, beta: f64, cut: f64) -> f64 {
        let below = log_sum_exp(
            (0..self.len()).filter(|&n| self.energies[n] < cut).map(|n| self.log_weight(n, beta)),
        );
        let above = log_sum_exp(
            (0..self.len()).filter(|&n| self.energies[n] >= cut).map(|n| self.log_weight(n, beta)),
        );
        below - above
    }

    /// The samples at the given index ranges, in order (a bootstrap resample).
    fn subset(&self, ranges: &[(usize, usize)]) -> MucaReweighting {
        let pick =
            |v: &[f64]| ranges.iter().flat_map(|&(a, b)| v[a..b].iter().copied()).collect::<Vec<f64>>();
        MucaReweighting::new(pick(&self.energies), pick(&self.observables), pick(&self.omega), self.log_z0)
    }
}

impl Reweighter for MucaReweighting {
    fn at(&self, beta: f64) -> Reweighted {
        MucaReweighting::at(self, beta)
    }
}

/// A statistic of reweighted samples, for [`bootstrap`]: the samples, and which estimate is
/// asked for (a resample carries a seed for whatever else the statistic resamples, such as
/// the truth's own samples).
pub type MucaStatistic<'a> = dyn Fn(&MucaReweighting, Resample) -> Vec<f64> + Sync + 'a;

/// Point estimate and block-bootstrap standard errors of `stat` (module docs): `blocks[w]`
/// are walker w's production blocks as index ranges into `point`'s samples; each of
/// `resamples` resamples draws as many blocks of every walker with replacement. The draws
/// come from `rng` in order and the resamples are evaluated in parallel and summed in order:
/// the same numbers on any number of threads. Standard errors are NaN with fewer than two
/// resamples.
pub fn bootstrap<R: Rng + ?Sized>(
    point: &MucaReweighting,
    blocks: &[Vec<(usize, usize)>],
    resamples: usize,
    rng: &mut R,
    stat: &MucaStatistic<'_>,
) -> (Vec<f64>, Vec<f64>) {
    let estimate = stat(point, Resample::Point);
    let draws: Vec<(Vec<(usize, usize)>, u64)> = (0..resamples)
        .map(|_| {
            let ranges = blocks
                .iter()
                .flat_map(|b| (0..b.len()).map(|_| b[rng.random_range(0..b.len())]).collect::<Vec<_>>())
                .collect();
            (ranges, rng.random())
        })
        .collect();
    let stats: Vec<Vec<f64>> =
        draws.par_iter().map(|(ranges, seed)| stat(&point.subset(ranges), Resample::Drawn(*seed))).collect();
    let se = crate::mc::stats::column_sd(stats, estimate.len());
    (estimate, se)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples drawn from the β = 0 law (ω = 0) of a two-level system reweight to its exact
    /// ln Z and moments at any β.
    #[test]
    fn uniform_samples_of_two_levels_reweight_exactly() {
        // Two configurations, E = 0 and E = 1, each sampled once (their exact β = 0 law).
        let r = MucaReweighting::new(vec![0.0, 1.0], vec![5.0, 7.0], vec![0.0, 0.0], 2f64.ln());
        let beta = 0.7f64;
        let z = 1.0 + (-beta).exp();
        let at = r.at(beta);
        assert!((at.log_z - z.ln()).abs() < 1e-14);
        let p1 = (-beta).exp() / z;
        assert!((at.mean_energy - p1).abs() < 1e-14);
        assert!((at.var_energy - p1 * (1.0 - p1)).abs() < 1e-14);
        assert!((at.mean_observable - (5.0 + 2.0 * p1)).abs() < 1e-14);
        assert!((at.cov_energy_observable - 2.0 * p1 * (1.0 - p1)).abs() < 1e-14);
        assert!((r.phase_log_ratio(beta, 0.5) - beta).abs() < 1e-14);
        let p = r.energy_distribution(beta, -0.5, 1.0);
        assert!((p[0] - 1.0 / z).abs() < 1e-14 && (p[1] - p1).abs() < 1e-14);
    }
}
