//! Boltzmann-machine learning of a Potts model (`bml` for Potts, docs/spec.md §10): the
//! generalisation of [`crate::fit::bml`] from ±1 spins to q letters, the algorithm of
//! bmDCA and adabmDCA (github:spqb/adabmDCApy, adabmDCAc).
//!
//! # Objective and step
//!
//! Maximum likelihood with an L2 penalty: maximise
//!
//! ℓ(h, J) = Σ_m w_m ln p(s^m) / Σ_m w_m − λ_h Σ_i ‖h_i‖² − λ_J Σ_{i<j} ‖J_ij‖²,
//!
//! whose gradient is f_i(a) − p_i(a) − 2λ_h h_i(a) for the fields and
//! f_ij(a, b) − p_ij(a, b) − 2λ_J J_ij(a, b) for the couplings, f the data's weighted one- and
//! two-site frequencies and p the model's marginals. The penalty is λ‖·‖², as in
//! [`crate::fit::bml`] (λ‖Ĵ‖², step −2λĴ) and [`crate::fit::potts_plm`] (same option names,
//! same penalty), so one λ means one penalty across the fits; the step is plain gradient
//! ascent, h ← h + η ∂ℓ/∂h, J ← J + η ∂ℓ/∂J, every parameter with the same η.
//!
//! No partition function is needed: p_i and p_ij are estimated from persistent Markov
//! chains of the current model, each epoch continuing where the last left off, so the
//! chains track the slowly moving model instead of equilibrating from scratch.
//!
//! # What follows adabmDCA, and what differs
//!
//! - Like adabmDCA: persistent chains; heat-bath (Gibbs) sweeps, adabmDCA's default sampler
//!   ([`PottsChain`]; the Ising [`crate::fit::bml`] uses Metropolis, which at q letters would
//!   refuse most uniform proposals at conserved sites); η = 0.05; the Pearson correlation of
//!   connected correlations C_ij(a, b) = f_ij(a, b) − f_i(a) f_j(b) over all i < j and all
//!   letters a, b as the stop, default target 0.95.
//! - The sweeps per epoch adapt as adabmDCA 2.0 (the C++ code) and [`crate::fit::bml`] do:
//!   after an epoch, the overlap of each chain with itself `wait` sweeps earlier,
//!   (1/n) Σ_i δ(s_i, s'_i), is compared with the overlap between different chains; larger
//!   by more than two standard errors and `wait` doubles (up to [`MAX_WAIT`]), within one and
//!   it halves (never below one sweep). adabmDCApy instead runs a fixed 10 sweeps per epoch.
//! - 1 000 chains by default, as [`crate::fit::bml`] (adabmDCApy uses 10 000 on a GPU): on a
//!   CPU the chains are the cost, and 1 000 resolve frequencies to ~0.015.
//! - Regularisation by L2 penalties rather than adabmDCA's pseudocount (which mixes the
//!   frequencies with the uniform law, (1 − α) f + α/q): the penalties are the ones the
//!   pseudo-likelihood fit has, so the two fits are compared on the same objective's terms.
//! - Fields start at zero, as the couplings and as in [`crate::fit::bml`]; adabmDCA starts
//!   them at the independent-site model ln f_i(a), which needs the pseudocount to exist
//!   where a letter is never seen (here, with λ_h = 0, exactly the divergence below).
//! - The sweep budget is per chain (as in [`crate::fit::bml`]), not adabmDCA's epoch count,
//!   so that adapting `wait` does not change the cost of a fit.
//!
//! # Determinism
//!
//! Each chain has its own generator, ChaCha8 seeded in chain order from the caller's, and
//! draws from nothing else; the chains are swept in parallel (rayon) and every statistic is
//! then summed over the chains in chain order. So the fit is bit-identical on any number of
//! threads (and machine: the heat bath uses taustar's IEEE-pure exponentials).
//!
//! # Divergence
//!
//! A parameter that becomes non-finite or passes `param_cap` stops the fit (`Diverged`,
//! the parameter named). Some missing optima the data show directly, and a cap would not
//! catch: the gradient decays as the model's probability of the missing event does, so the
//! parameter runs off only logarithmically (and stalls once the chains stop showing it).
//! So, as the Ising fit's "pair always equal", these are read off the data and flagged
//! whatever the chains did:
//! - a letter a never seen at site i (f_i(a) = 0) with λ_h = 0 or λ_J = 0: p_i(a) → 0 needs
//!   h_i(a) → −∞ (or, unpenalised, J_ij(a, ·) → −∞, which is the same in the zero-sum gauge);
//! - with λ_J = 0, a pair of seen letters never seen together (f_ij(a, b) = 0):
//!   J_ij(a, b) → −∞.
//!
//! The model is returned in the zero-sum gauge ([`zero_sum_gauge`]), like
//! [`crate::fit::potts_plm`]'s: the trained parameters are in no particular gauge (the
//! gradient keeps Σ_a h_i(a) = 0 but not the couplings' zero sums), and gauge fixing
//! changes no probability.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::fit::bml::MAX_WAIT;
use crate::fit::FitStop;
use crate::potts::chain::PottsChain;
use crate::potts::error::PottsError;
use crate::potts::gauge::zero_sum_gauge;
use crate::potts::params::PottsModel;

/// Settings of a Potts Boltzmann-machine fit.
#[derive(Debug, Clone, Copy)]
pub struct PottsBmlOptions {
    /// λ_h of the penalty λ_h‖h‖² (module docs).
    pub l2_fields: f64,
    /// λ_J of the penalty λ_J Σ_{i<j} ‖J_ij‖².
    pub l2_couplings: f64,
    /// Learning rate η.
    pub learning_rate: f64,
    /// Persistent chains (at least 2: the adaptive wait compares different chains).
    pub chains: usize,
    /// Stop when the Pearson correlation of connected correlations reaches this, in [−1, 1]
    /// (1 in effect runs to the budget: chain noise keeps the correlation below it).
    pub pearson_target: f64,
    /// Sweep budget per chain (summed over epochs).
    pub max_sweeps: u64,
    /// A field or coupling beyond this (in absolute value, as trained) is a divergence.
    pub param_cap: f64,
}

/// Defaults: adabmDCA's η = 0.05 and target 0.95, [`crate::fit::bml::DEFAULT_BML`]'s chains
/// and budget, [`crate::fit::potts_plm::DEFAULT_POTTS_PLM`]'s penalties and cap.
pub const DEFAULT_POTTS_BML: PottsBmlOptions = PottsBmlOptions {
    l2_fields: 0.01,
    l2_couplings: 0.01,
    learning_rate: 0.05,
    chains: 1_000,
    pearson_target: 0.95,
    max_sweeps: 20_000,
    param_cap: 50.0,
};

/// The outcome of [`fit_potts_bml`].
#[derive(Debug, Clone, PartialEq)]
pub struct PottsBmlFit {
    /// The fit in the zero-sum gauge.
    pub model: PottsModel,
    /// Gradient steps taken (epochs).
    pub epochs: u32,
    /// Sweeps per chain, summed over the epochs.
    pub sweeps: u64,
    /// Sweeps per epoch at the end (the adaptive wait).
    pub wait: u64,
    /// The Pearson correlation of connected correlations at the last epoch.
    pub pearson: f64,
    /// Whether it reached the target.
    pub reached: bool,
    /// max-norm of the last gradient estimate (chain noise included).
    pub grad_max_norm: f64,
    /// max |h|, |J| of the parameters as trained (the gauge `param_cap` judges).
    pub param_max_abs: f64,
    /// The fit ran away, or the data admit no finite optimum (module docs).
    pub diverged: bool,
    /// Why it stopped: `Pearson`, `MaxIter` or `Diverged`.
    pub stop: FitStop,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// Weighted one- and two-site frequencies of an alignment (or of chains, unweighted).
#[derive(Debug, Clone, PartialEq)]
pub struct PottsFrequencies {
    /// Sites n.
    pub n: usize,
    /// Letters q.
    pub q: usize,
    /// f_i(a) at `i·q + a`.
    pub single: Vec<f64>,
    /// f_ij(a, b) for i < j at `k·q² + a·q + b`, k the pair's index in the order
    /// (0, 1), (0, 2), …, (0, n−1), (1, 2), … ([`pair_index`]).
    pub pair: Vec<f64>,
}

/// The index of pair (i, j), i < j < n, in the order (0, 1), (0, 2), …, (1, 2), ….
pub fn pair_index(n: usize, i: usize, j: usize) -> usize {
    assert!(i < j && j < n, "pair ({i}, {j}) of {n} sites: need i < j < n");
    i * (2 * n - i - 1) / 2 + (j - i - 1)
}

impl PottsFrequencies {
    /// f_i(a).
    pub fn single(&self, i: usize, a: usize) -> f64 {
        self.single[i * self.q + a]
    }

    /// f_ij(a, b) for any i ≠ j (f_ji(b, a) = f_ij(a, b)).
    pub fn pair(&self, i: usize, j: usize, a: usize, b: usize) -> f64 {
        let qq = self.q * self.q;
        if i < j {
            self.pair[pair_index(self.n, i, j) * qq + a * self.q + b]
        } else {
            self.pair[pair_index(self.n, j, i) * qq + b * self.q + a]
        }
    }

    /// The connected correlations C_ij(a, b) = f_ij(a, b) − f_i(a) f_j(b), in the layout of
    /// [`PottsFrequencies::pair`].
    pub fn connected(&self) -> Vec<f64> {
        let (n, q) = (self.n, self.q);
        let mut out = Vec::with_capacity(self.pair.len());
        for i in 0..n {
            for j in i + 1..n {
                let k = pair_index(n, i, j) * q * q;
                for a in 0..q {
                    for b in 0..q {
                        out.push(self.pair[k + a * q + b] - self.single[i * q + a] * self.single[j * q + b]);
                    }
                }
            }
        }
        out
    }

    /// Sums of `weights` over `rows` of n states (each below q), divided by their total.
    fn accumulate<'a>(
        rows: impl Iterator<Item = &'a [u8]>,
        n: usize,
        q: usize,
        weights: &[f64],
    ) -> PottsFrequencies {
        let qq = q * q;
        let mut single = vec![0.0; n * q];
        let mut pair = vec![0.0; n * (n - 1) / 2 * qq];
        let mut total = 0.0;
        for (row, &w) in rows.zip(weights) {
            if w == 0.0 {
                continue;
            }
            total += w;
            let mut k = 0;
            for (i, &a) in row.iter().enumerate() {
                let a = a as usize;
                single[i * q + a] += w;
                for &b in &row[i + 1..] {
                    pair[k + a * q + b as usize] += w;
                    k += qq;
                }
            }
        }
        single.iter_mut().chain(pair.iter_mut()).for_each(|v| *v /= total);
        PottsFrequencies { n, q, single, pair }
    }
}

/// The weighted frequencies of `m` sequences of `n` sites with states below `q`
/// (`seqs[m·n + i]` = s_i of sequence m, one weight per sequence), with the input checks of
/// [`fit_potts_bml`].
pub fn frequencies(seqs: &[u8], n: usize, q: usize, weights: &[f64]) -> Result<PottsFrequencies, PottsError> {
    check_data(seqs, n, q, weights)?;
    Ok(PottsFrequencies::accumulate(seqs.chunks_exact(n), n, q, weights))
}

/// Pearson correlation of the connected correlations of two sets of frequencies (0 when
/// either has none that vary). Panics when their n or q differ.
pub fn connected_pearson(a: &PottsFrequencies, b: &PottsFrequencies) -> f64 {
    assert!(a.n == b.n && a.q == b.q, "frequencies of different shapes");
    let (x, y) = (a.connected(), b.connected());
    crate::fit::bml::pearson(&x, &y)
}

/// Fit from `m` sequences of `n` sites with states below `q` (`seqs[m·n + i]` = s_i of
/// sequence m), each with a weight (`weights.len() == m`: counts, or
/// [`crate::potts::SequenceWeights`]), drawing the chains' seeds from `rng`.
///
/// Errors (nothing is fitted) when n < 2, q is out of 2..=256 or too large for a
/// [`PottsModel`], the data are not m×n states below q, a weight is negative or not finite,
/// the weights sum to zero, or an option is out of range (the error names it).
pub fn fit_potts_bml<R: Rng>(
    seqs: &[u8],
    n: usize,
    q: usize,
    weights: &[f64],
    opts: PottsBmlOptions,
    rng: &mut R,
) -> Result<PottsBmlFit, PottsError> {
    check_data(seqs, n, q, weights)?;
    check_options(&opts)?;
    // Allocate the model before the frequencies: its size checks run before any work.
    let mut model = PottsModel::zeros(n, q)?;
    let data = PottsFrequencies::accumulate(seqs.chunks_exact(n), n, q, weights);
    let qq = q * q;
    let mut chains: Vec<(Vec<u8>, ChaCha8Rng)> = (0..opts.chains)
        .map(|_| {
            let mut r = ChaCha8Rng::seed_from_u64(rng.random());
            let state = (0..n).map(|_| r.random_range(0..q) as u8).collect();
            (state, r)
        })
        .collect();
    let ones = vec![1.0; opts.chains];
    let (mut wait, mut sweeps, mut epochs) = (1u64, 0u64, 0u32);
    let (mut pearson, mut grad_max_norm) = (0.0, f64::INFINITY);
    let mut runaway = None;
    let stop = loop {
        if let Some(what) = first_runaway(&model, opts.param_cap) {
            runaway = Some(what);
            break FitStop::Diverged;
        }
        if sweeps + wait > opts.max_sweeps {
            break FitStop::MaxIter;
        }
        epochs += 1;
        sweeps += wait;
        // Every chain: `wait` heat-bath sweeps of the current model, from where it was; its
        // overlap with where it started.
        let self_overlap: Vec<f64> = chains
            .par_iter_mut()
            .map(|(state, r)| {
                let before = state.clone();
                let mut chain = PottsChain::new(&model, 1.0, std::mem::take(state))
                    .expect("a chain's state is one of the model's");
                for _ in 0..wait {
                    chain.sweep(r);
                }
                *state = chain.state().to_vec();
                overlap(&before, state)
            })
            .collect();
        let sample = PottsFrequencies::accumulate(chains.iter().map(|(s, _)| s.as_slice()), n, q, &ones);
        pearson = connected_pearson(&data, &sample);
        // The penalised gradient, fields then couplings (i < j), in the frequencies' layout.
        let mut g_h = vec![0.0; n * q];
        for i in 0..n {
            for a in 0..q {
                let k = i * q + a;
                g_h[k] = data.single[k] - sample.single[k] - 2.0 * opts.l2_fields * model.field(i, a);
            }
        }
        let mut g_j = vec![0.0; data.pair.len()];
        for i in 0..n {
            for j in i + 1..n {
                let k = pair_index(n, i, j) * qq;
                let block = model.coupling_block(i, j);
                for ab in 0..qq {
                    g_j[k + ab] =
                        data.pair[k + ab] - sample.pair[k + ab] - 2.0 * opts.l2_couplings * block[ab];
                }
            }
        }
        grad_max_norm = g_h.iter().chain(&g_j).fold(0.0, |m: f64, g| m.max(g.abs()));
        if pearson >= opts.pearson_target {
            break FitStop::Pearson;
        }
        let eta = opts.learning_rate;
        for i in 0..n {
            for a in 0..q {
                model.set_field(i, a, model.field(i, a) + eta * g_h[i * q + a]);
            }
            for j in i + 1..n {
                let k = pair_index(n, i, j) * qq;
                for a in 0..q {
                    for b in 0..q {
                        let v = model.coupling(i, j, a, b) + eta * g_j[k + a * q + b];
                        model.set_coupling(i, j, a, b, v);
                    }
                }
            }
        }
        // Adapt the wait: the chains' self-overlap against the overlap of different ones
        // (neighbours in chain order, each pair once).
        let c = self_overlap.len() as f64;
        let (q_self, var_self) = crate::mc::stats::mean_var(&self_overlap);
        let se_self = (var_self / c).sqrt();
        let q_ext = chains.windows(2).map(|w| overlap(&w[0].0, &w[1].0)).sum::<f64>() / (c - 1.0);
        if q_self - q_ext > 2.0 * se_self {
            wait = (wait * 2).min(MAX_WAIT);
        } else if q_self - q_ext < se_self && wait > 1 {
            wait /= 2;
        }
    };
    let param_max_abs = model.fields().iter().chain(model.couplings()).fold(0.0, |m: f64, x| m.max(x.abs()));
    // Missing optima the data show directly (module docs) take precedence: they are why a
    // cap was passed, when one was.
    let missing = missing_optimum(&data, &opts);
    let stop = if missing.is_some() { FitStop::Diverged } else { stop };
    let note = match stop {
        FitStop::Diverged => Some(match (missing, runaway) {
            (Some(m), _) => m,
            (None, Some(what)) => {
                let mut s = format!("{what} passed |x| = {} (param_cap)", opts.param_cap);
                if opts.l2_fields == 0.0 || opts.l2_couplings == 0.0 {
                    s.push_str(
                        ": without both penalties the likelihood may have no finite optimum; use l2_fields > 0 \
                         and l2_couplings > 0",
                    );
                }
                s
            }
            (None, None) => unreachable!("a divergence has a reason"),
        }),
        FitStop::MaxIter => Some(format!(
            "the Pearson correlation of connected correlations reached {pearson:.4}, short of the target {} \
             within the budget of {} sweeps per chain",
            opts.pearson_target, opts.max_sweeps
        )),
        _ => None,
    };
    Ok(PottsBmlFit {
        model: zero_sum_gauge(&model),
        epochs,
        sweeps,
        wait,
        pearson,
        reached: stop == FitStop::Pearson,
        grad_max_norm,
        param_max_abs,
        diverged: stop == FitStop::Diverged,
        stop,
        note,
    })
}

/// (1/n) Σ_i δ(s_i, s'_i).
fn overlap(s: &[u8], t: &[u8]) -> f64 {
    s.iter().zip(t).filter(|(a, b)| a == b).count() as f64 / s.len() as f64
}

/// The first field or coupling (i < j) that is not finite or beyond `cap`, described.
fn first_runaway(model: &PottsModel, cap: f64) -> Option<String> {
    let bad = |x: f64| x.is_nan() || x.abs() > cap;
    let (n, q) = (model.n(), model.q());
    for i in 0..n {
        for a in 0..q {
            let h = model.field(i, a);
            if bad(h) {
                return Some(format!("field h_{i}({a}) = {h}"));
            }
        }
        for j in i + 1..n {
            for (ab, &v) in model.coupling_block(i, j).iter().enumerate() {
                if bad(v) {
                    return Some(format!("coupling J_{i},{j}({}, {}) = {v}", ab / q, ab % q));
                }
            }
        }
    }
    None
}

/// A missing optimum the data show (module docs), described, with how many more there are.
fn missing_optimum(data: &PottsFrequencies, opts: &PottsBmlOptions) -> Option<String> {
    let (n, q) = (data.n, data.q);
    let penalties = format!("l2_fields = {}, l2_couplings = {}", opts.l2_fields, opts.l2_couplings);
    if opts.l2_fields == 0.0 || opts.l2_couplings == 0.0 {
        let unseen: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..q).map(move |a| (i, a)))
            .filter(|&(i, a)| data.single(i, a) == 0.0)
            .collect();
        if let Some(&(i, a)) = unseen.first() {
            return Some(format!(
                "letter {a} never occurs at site {i} in the data{}: with {penalties} the likelihood has no finite \
                 optimum (p_{i}({a}) → 0 needs h_{i}({a}) → −∞); use l2_fields > 0 and l2_couplings > 0",
                more(unseen.len() - 1, "unseen letter", "unseen letters")
            ));
        }
    }
    if opts.l2_couplings == 0.0 {
        let mut unseen = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                for a in 0..q {
                    for b in 0..q {
                        if data.pair(i, j, a, b) == 0.0 {
                            unseen.push((i, j, a, b));
                        }
                    }
                }
            }
        }
        if let Some(&(i, j, a, b)) = unseen.first() {
            return Some(format!(
                "letters ({a}, {b}) never occur together at sites ({i}, {j}) in the data{}: with {penalties} the \
                 likelihood has no finite optimum (J_{i},{j}({a}, {b}) → −∞); use l2_couplings > 0",
                more(unseen.len() - 1, "unseen pair of letters", "unseen pairs of letters")
            ));
        }
    }
    None
}

fn more(k: usize, one: &str, many: &str) -> String {
    match k {
        0 => String::new(),
        1 => format!(" (and 1 more {one})"),
        k => format!(" (and {k} more {many})"),
    }
}

fn check_data(seqs: &[u8], n: usize, q: usize, weights: &[f64]) -> Result<(), PottsError> {
    if n < 2 {
        return Err(PottsError::setting("n", n, "a Boltzmann-machine fit needs at least 2 sites"));
    }
    if !(2..=256).contains(&q) {
        return Err(PottsError::setting("q", q, "need 2 <= q <= 256 states"));
    }
    if seqs.len() / n * n != seqs.len() {
        return Err(PottsError::setting(
            "alignment",
            format!("{} states", seqs.len()),
            format!("not a whole number of sequences of {n} sites"),
        ));
    }
    if seqs.len() / n != weights.len() {
        return Err(PottsError::setting(
            "weights",
            format!("{} weights", weights.len()),
            format!(
                "need one weight per sequence, {} for {} states of {n} sites",
                seqs.len() / n,
                seqs.len()
            ),
        ));
    }
    crate::fit::potts_plm::check_states_and_weights(seqs, n, q, weights)?;
    Ok(())
}

fn check_options(opts: &PottsBmlOptions) -> Result<(), PottsError> {
    for (field, v) in [("l2_fields", opts.l2_fields), ("l2_couplings", opts.l2_couplings)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(PottsError::setting(field, v, "a penalty must be finite and >= 0"));
        }
    }
    if !(opts.learning_rate.is_finite() && opts.learning_rate > 0.0) {
        return Err(PottsError::setting(
            "learning_rate",
            opts.learning_rate,
            "need a finite learning rate > 0",
        ));
    }
    if opts.chains < 2 {
        return Err(PottsError::setting(
            "chains",
            opts.chains,
            "need at least 2 chains (the adaptive wait compares different chains)",
        ));
    }
    if !(-1.0..=1.0).contains(&opts.pearson_target) {
        return Err(PottsError::setting(
            "pearson_target",
            opts.pearson_target,
            "need -1 <= pearson_target <= 1 (1 runs to the sweep budget)",
        ));
    }
    if opts.max_sweeps == 0 {
        return Err(PottsError::setting("max_sweeps", opts.max_sweeps, "need a budget of at least 1 sweep"));
    }
    if opts.param_cap.is_nan() || opts.param_cap <= 0.0 {
        return Err(PottsError::setting("param_cap", opts.param_cap, "need param_cap > 0"));
    }
    Ok(())
}
