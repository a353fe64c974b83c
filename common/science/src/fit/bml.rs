//! Boltzmann-machine learning (`bml`, docs/spec.md §10): maximum likelihood without the
//! partition function, the likelihood's gradient ⟨σ_iσ_j⟩_data − ⟨σ_iσ_j⟩_q estimated from
//! persistent Markov chains of the current model, as adabmDCA and bmDCA do.
//!
//! Each epoch runs every chain `wait` Metropolis sweeps under the current couplings, takes
//! the model's pair averages over the chains, and steps Ĵ ← Ĵ + η(⟨σσ⟩_data − ⟨σσ⟩_q − 2λĴ).
//! The chains are persistent (each epoch continues from the last), so they track the
//! slowly moving model instead of equilibrating from scratch.
//!
//! `wait` adapts as in adabmDCA: after an epoch, the overlap of each chain with itself
//! `wait` sweeps earlier is compared with the overlap between independent chains; if it is
//! larger by more than two standard errors the chains have not decorrelated and `wait`
//! doubles (up to [`MAX_WAIT`]), and if it is within one it halves (never below one sweep).
//!
//! Convergence, also as in adabmDCA: the Pearson correlation between the model's and the
//! data's connected correlations reaches a target (default 0.95), or the sweep budget is
//! spent; the fit reports which, and the correlation it reached. Each chain has its own
//! generator, seeded in order from the cell's, so the fit is the same on any number of
//! threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::fit::FitStop;
use crate::mc::chain::Chain;
use crate::mc::model::SpinModel;
use crate::model::ising::Pairs;

/// Most sweeps per epoch. Where local moves cannot decorrelate the chains at all (an
/// ordered model: each chain keeps its magnetisation) doubling would spend the budget on a
/// handful of gradient steps; persistent chains need no full decorrelation per step, only
/// to follow the model.
pub const MAX_WAIT: u64 = 32;

/// Settings of a Boltzmann-machine fit.
#[derive(Debug, Clone, Copy)]
pub struct BmlOptions {
    /// λ of the penalty λ‖Ĵ‖².
    pub l2: f64,
    /// Learning rate η.
    pub learning_rate: f64,
    /// Persistent chains.
    pub chains: usize,
    /// Stop when the Pearson correlation of connected correlations reaches this.
    pub pearson_target: f64,
    /// Sweep budget per chain (summed over epochs).
    pub max_sweeps: u64,
    /// A coupling beyond this (in absolute value) is a divergence.
    pub coupling_cap: f64,
}

/// Defaults of the cells' `bml` fit (adabmDCA's: η = 0.05, target 0.95).
pub const DEFAULT_BML: BmlOptions = BmlOptions {
    l2: 0.0,
    learning_rate: 0.05,
    chains: 1_000,
    pearson_target: 0.95,
    max_sweeps: 20_000,
    coupling_cap: 20.0,
};

/// The outcome of [`fit_bml`].
#[derive(Debug, Clone, PartialEq)]
pub struct BmlFit {
    /// Ĵ in pair order.
    pub couplings: Vec<f64>,
    /// Gradient steps taken.
    pub epochs: u32,
    /// Sweeps per chain, summed over the epochs.
    pub sweeps: u64,
    /// The Pearson correlation of connected correlations at the end.
    pub pearson: f64,
    /// Whether it reached the target.
    pub reached: bool,
    /// max-norm of the last gradient estimate (chain noise included).
    pub grad_max_norm: f64,
    /// max |Ĵ|.
    pub coupling_max_abs: f64,
    /// Couplings ran past the cap.
    pub diverged: bool,
    /// Why it stopped.
    pub stop: FitStop,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// ⟨σ_iσ_j⟩ in pair order and ⟨σ_i⟩ of `m` configurations of `n` spins with weights.
pub fn moments(n: usize, spins: &[i8], weights: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let total: f64 = weights.iter().sum();
    let mut pair = vec![0.0; n * (n - 1) / 2];
    let mut mean = vec![0.0; n];
    for (row, &c) in spins.chunks_exact(n).zip(weights) {
        let mut k = 0;
        for i in 0..n {
            let si = f64::from(row[i]);
            mean[i] += c * si;
            for &sj in &row[i + 1..] {
                pair[k] += c * si * f64::from(sj);
                k += 1;
            }
        }
    }
    pair.iter_mut().for_each(|v| *v /= total);
    mean.iter_mut().for_each(|v| *v /= total);
    (pair, mean)
}

/// Pearson correlation of the connected correlations ⟨σσ⟩ − ⟨σ⟩⟨σ⟩ of two sets of moments.
pub fn connected_pearson(n: usize, a: (&[f64], &[f64]), b: (&[f64], &[f64])) -> f64 {
    let connected = |(pair, mean): (&[f64], &[f64])| {
        let mut out = Vec::with_capacity(pair.len());
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                out.push(pair[k] - mean[i] * mean[j]);
                k += 1;
            }
        }
        out
    };
    let (x, y) = (connected(a), connected(b));
    pearson(&x, &y)
}

/// Pearson correlation of two equally long series (0 when either does not vary): the stop
/// criterion of both Boltzmann-machine fits, on their connected correlations.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / len, y.iter().sum::<f64>() / len);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(y) {
        sxy += (p - mx) * (q - my);
        sxx += (p - mx) * (p - mx);
        syy += (q - my) * (q - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// Fit to data whose pair moments and means are `data` (from [`moments`]).
pub fn fit_bml<R: Rng>(n: usize, data: (&[f64], &[f64]), opts: BmlOptions, rng: &mut R) -> BmlFit {
    let pairs = Pairs::new_without_masks(n as u32);
    let p = pairs.len();
    let mut j = vec![0.0; p];
    let mut chains: Vec<(Vec<i8>, ChaCha8Rng)> = (0..opts.chains)
        .map(|_| {
            let mut r = ChaCha8Rng::seed_from_u64(rng.random());
            let spins = (0..n).map(|_| if r.random::<bool>() { 1 } else { -1 }).collect();
            (spins, r)
        })
        .collect();
    let (mut wait, mut sweeps, mut epochs) = (1u64, 0u64, 0u32);
    let (mut pearson, mut grad_max_norm) = (0.0, f64::INFINITY);
    let max_abs = |v: &[f64]| v.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
    let stop = loop {
        if max_abs(&j) > opts.coupling_cap {
            break FitStop::Diverged;
        }
        if sweeps + wait > opts.max_sweeps {
            break FitStop::MaxIter;
        }
        epochs += 1;
        sweeps += wait;
        let model = SpinModel::from_pairs(&pairs, &j);
        // Every chain: `wait` sweeps; its overlap with where it started.
        let self_overlap: Vec<f64> = chains
            .par_iter_mut()
            .map(|(spins, r)| {
                let before = spins.clone();
                let mut chain = Chain::new(&model, 1.0, std::mem::take(spins));
                for _ in 0..wait {
                    chain.sweep(&model, r);
                }
                *spins = chain.spins().to_vec();
                before.iter().zip(spins.iter()).map(|(a, b)| f64::from(a * b)).sum::<f64>() / n as f64
            })
            .collect();
        let flat: Vec<i8> = chains.iter().flat_map(|(s, _)| s.iter().copied()).collect();
        let (m_pair, m_mean) = moments(n, &flat, &vec![1.0; opts.chains]);
        pearson = connected_pearson(n, data, (&m_pair, &m_mean));
        let mut g = vec![0.0; p];
        for k in 0..p {
            g[k] = data.0[k] - m_pair[k] - 2.0 * opts.l2 * j[k];
        }
        grad_max_norm = max_abs(&g);
        if pearson >= opts.pearson_target {
            break FitStop::Pearson;
        }
        for k in 0..p {
            j[k] += opts.learning_rate * g[k];
        }
        // Adapt the wait: the chains' self-overlap against the overlap of independent ones.
        let c = self_overlap.len() as f64;
        let (q_self, var_self) = crate::mc::stats::mean_var(&self_overlap);
        let se_self = (var_self / c).sqrt();
        let q_ext = (0..chains.len().saturating_sub(1))
            .map(|k| {
                let (a, b) = (&chains[k].0, &chains[k + 1].0);
                a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum::<f64>() / n as f64
            })
            .sum::<f64>()
            / (c - 1.0).max(1.0);
        if q_self - q_ext > 2.0 * se_self {
            wait = (wait * 2).min(MAX_WAIT);
        } else if q_self - q_ext < se_self && wait > 1 {
            wait /= 2;
        }
    };
    // Without a penalty, a pair always equal (or always opposite) in the data has its
    // optimum at J = ±∞: the gradient decays as the chains agree, so J grows only
    // logarithmically and no cap would catch it in a budget. The data say it directly.
    let always = (opts.l2 == 0.0)
        .then(|| data.0.iter().position(|m| m.abs() >= 1.0 - 1e-12))
        .flatten()
        .map(|k| pairs.ij[k]);
    let stop = if always.is_some() { FitStop::Diverged } else { stop };
    let (diverged, note) = match stop {
        FitStop::Diverged if always.is_some() => {
            let (a, b) = always.unwrap_or_default();
            (
                true,
                Some(format!(
                    "spins {a} and {b} are always {} in the data: the unregularised likelihood has no finite \
                     optimum (J_{a}{b} → {}∞); use l2 > 0",
                    if data.0[pairs.index(a, b)] > 0.0 { "equal" } else { "opposite" },
                    if data.0[pairs.index(a, b)] > 0.0 { "+" } else { "−" },
                )),
            )
        }
        FitStop::Diverged => (
            true,
            Some(if opts.l2 == 0.0 {
                format!(
                    "max|J| passed {} (coupling_cap): the unregularised likelihood has no finite optimum \
                     (e.g. a pair always equal in the data); use l2 > 0",
                    opts.coupling_cap
                )
            } else {
                format!("max|J| passed {} (coupling_cap)", opts.coupling_cap)
            }),
        ),
        FitStop::MaxIter => (
            false,
            Some(format!(
                "the Pearson correlation of connected correlations reached {pearson:.4}, short of the target {} \
                 within the budget of {} sweeps per chain",
                opts.pearson_target, opts.max_sweeps
            )),
        ),
        _ => (false, None),
    };
    BmlFit {
        coupling_max_abs: max_abs(&j),
        couplings: j,
        epochs,
        sweeps,
        pearson,
        reached: stop == FitStop::Pearson,
        grad_max_norm,
        diverged,
        stop,
        note,
    }
}
