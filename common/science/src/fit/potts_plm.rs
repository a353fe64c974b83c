//! Pseudo-likelihood fit of a Potts model (`plm` for Potts, docs/spec.md §10): the
//! generalisation of [`crate::fit::plm`] from ±1 spins to q letters, as in plmDCA
//! (Ekeberg et al. 2013, 2014).
//!
//! # Objective
//!
//! Site i's conditional law given the others is the softmax
//! p(a | s_∖i) = e^{f_i(a)} / Σ_c e^{f_i(c)}, f_i(a) = h_i(a) + Σ_{j≠i} J_ij(a, s_j).
//! Each site's parameters (h_i, J_i·) minimise, on their own,
//!
//! ℓ_i = −Σ_m w_m ln p(s_i^m | s_∖i^m) / Σ_m w_m + λ_h ‖h_i‖² + λ_J Σ_{j≠i} ‖J_ij‖²,
//!
//! a strictly convex multinomial logistic regression (for λ_h, λ_J > 0), solved by the
//! shared L-BFGS ([`crate::fit::lbfgs`]) from zero. Each site has its own estimate of every
//! coupling it touches. Each site's solution is first put in the zero-sum gauge in a way
//! that keeps its own conditional law (the letter-a parts of J_ij^{(i)}(a, ·) move into
//! h_i(a), the letter-b parts, to which site i's conditional is blind, are dropped: see
//! `gauge_site`), then the two estimates of a pair are averaged,
//! J_ij(a, b) = (J_ij^{(i)}(a, b) + J_ji^{(j)}(b, a)) / 2, the fields are site i's own, and
//! the model goes through [`crate::potts::gauge::zero_sum_gauge`] (which moves letter-only
//! parts of the couplings into the fields, keeping every probability): mathematically a
//! no-op after the per-site step, it makes the zero sums exact to round-off.
//!
//! # The penalties, and their scale against the Ising `plm`
//!
//! Two penalties because fields and couplings differ in number (q against (n−1)q² per site)
//! and in how well the data pin them: plmDCA's λ_h = 0.01 and λ_J = 0.01 (their λ_J is often
//! scaled with n and q) are a common start. The mean over samples is the same normalisation
//! as the Ising fit, so the penalties compare directly: an Ising coupling w σ_iσ_j written as
//! a q = 2 Potts block in the zero-sum gauge is w·[[1, −1], [−1, 1]], of squared norm 4w²,
//! so λ_J = λ/4 penalises it as the Ising fit's λ‖w_i‖² does (the Ising fit has no fields).
//!
//! # The gauge of the optimum
//!
//! Site i's conditional does not change when a function of s_j alone is added to
//! J_ij(·, s_j), nor when a constant is added to h_i; the penalty picks the smallest such
//! representative, so each site's solution already has Σ_a h_i(a) = 0 and
//! Σ_a J_ij(a, b) = 0 (to the solver's tolerance): zero-sum in its own letter. Not in the
//! neighbour's letter: moving a function of a between J_ij(a, ·) and h_i(a) changes the
//! conditional not at all but the penalty by different weights (λ_J·q per neighbour against
//! λ_h), so the optimum keeps a part of the field in the couplings, more of it the smaller
//! λ_J/λ_h. Only the explicit per-site gauge step makes the model zero-sum (exactly, to
//! round-off) and puts that part back in the field, where it belongs in the joint law.
//!
//! # Determinism
//!
//! Sites are solved in parallel (rayon), each sequentially, and collected in site order;
//! every sum runs in sample order and the exponentials are taustar's IEEE-pure
//! [`exp_nonpos`]. So the fit is bit-identical on any number of threads and any machine.
//!
//! # Divergence
//!
//! Without a coupling penalty (λ_J = 0) the optimum is infinite when a site is predicted
//! perfectly by the others in the data (e.g. s_1 a function of s_0); the fit reports it as
//! in the Ising plm: a site whose mean loss falls below [`SEPARATED_NLL`], or whose
//! parameters pass `param_cap`. With λ_h = 0, a letter never seen at a site also sends its
//! field to −∞: the parameters pass the cap, or the site stops at `max_iter`.

use rayon::prelude::*;

use crate::exact::exp_nonpos;
use crate::fit::lbfgs::{minimize, LbfgsOptions, LbfgsStop};
use crate::fit::FitStop;
use crate::potts::error::PottsError;
use crate::potts::gauge::zero_sum_gauge;
use crate::potts::params::PottsModel;

/// Settings of a Potts pseudo-likelihood fit.
#[derive(Debug, Clone, Copy)]
pub struct PottsPlmOptions {
    /// λ_h of the penalty λ_h‖h_i‖².
    pub l2_fields: f64,
    /// λ_J of the penalty λ_J Σ_j ‖J_ij‖² (module docs for its scale against Ising's λ).
    pub l2_couplings: f64,
    /// L-BFGS iteration cap per site.
    pub max_iter: u32,
    /// Stop a site when the max-norm of its gradient is below this.
    pub grad_tol: f64,
    /// A parameter beyond this (in absolute value) is a divergence.
    pub param_cap: f64,
    /// Correction pairs L-BFGS keeps.
    pub memory: usize,
}

/// plmDCA's penalties and the Ising fit's solver settings.
pub const DEFAULT_POTTS_PLM: PottsPlmOptions = PottsPlmOptions {
    l2_fields: 0.01,
    l2_couplings: 0.01,
    max_iter: 1_000,
    grad_tol: 1e-7,
    param_cap: 50.0,
    memory: crate::fit::plm::DEFAULT_MEMORY,
};

/// A site whose unpenalised mean negative log-conditional falls below this is predicted
/// perfectly by the others in the data (as in the Ising fit).
pub const SEPARATED_NLL: f64 = 1e-5;

/// How one site's regression ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PottsPlmSite {
    /// L-BFGS iterations.
    pub iterations: u32,
    /// Why it stopped: `GradTol` (converged), `MaxIter` or `Diverged`.
    pub stop: FitStop,
    /// The unpenalised weighted mean negative log-conditional at the fit.
    pub nll: f64,
    /// The max-norm of the (penalised) gradient at the fit.
    pub grad_max_norm: f64,
}

/// The outcome of [`fit_potts_plm`].
#[derive(Debug, Clone, PartialEq)]
pub struct PottsPlmFit {
    /// The symmetrised fit in the zero-sum gauge.
    pub model: PottsModel,
    /// Per-site diagnostics, in site order.
    pub sites: Vec<PottsPlmSite>,
    /// Σ_i of the sites' unpenalised mean negative log-conditionals (the pseudo-NLL).
    pub pseudo_nll: f64,
    /// Some site diverged or did not converge.
    pub diverged: bool,
    /// The worst site's reason (`Diverged` over `MaxIter` over `GradTol`).
    pub stop: FitStop,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// Fit from `m` sequences of `n` sites with states below `q` (`seqs[m·n + i]` = s_i of
/// sequence m), each with a weight (`weights.len() == m`: counts, or
/// [`crate::potts::SequenceWeights`]).
///
/// Errors (nothing is fitted) when n < 2, q is out of 2..=256 or too large for a
/// [`PottsModel`], the data are not m×n states below q, a weight is negative or not finite,
/// the weights sum to zero, or an option is out of range.
pub fn fit_potts_plm(
    seqs: &[u8],
    n: usize,
    q: usize,
    weights: &[f64],
    opts: PottsPlmOptions,
) -> Result<PottsPlmFit, PottsError> {
    check_input(seqs, n, q, weights, &opts)?;
    // Allocate the model first: its size checks run before any work.
    let mut model = PottsModel::zeros(n, q)?;
    let total: f64 = weights.iter().sum();
    let mut solved: Vec<(Vec<f64>, PottsPlmSite)> =
        (0..n).into_par_iter().map(|i| fit_site(i, seqs, n, q, weights, total, &opts)).collect();
    for (x, _) in &mut solved {
        gauge_site(x, n, q);
    }
    let qq = q * q;
    for (i, (x, _)) in solved.iter().enumerate() {
        for (a, &h) in x[..q].iter().enumerate() {
            model.set_field(i, a, h);
        }
        for j in i + 1..n {
            // Site i's block of neighbour j holds J_ij(a, b) at b·q + a; site j's block of
            // neighbour i holds J_ji(b, a) at a·q + b.
            let from_i = &x[q + (j - 1) * qq..][..qq];
            let from_j = &solved[j].0[q + i * qq..][..qq];
            for a in 0..q {
                for b in 0..q {
                    model.set_coupling(i, j, a, b, 0.5 * (from_i[b * q + a] + from_j[a * q + b]));
                }
            }
        }
    }
    let sites: Vec<PottsPlmSite> = solved.into_iter().map(|(_, s)| s).collect();
    let rank = |s: FitStop| match s {
        FitStop::Diverged => 2,
        FitStop::MaxIter => 1,
        _ => 0,
    };
    let worst = sites.iter().enumerate().max_by_key(|(_, s)| rank(s.stop));
    let (stop, note) = match worst {
        Some((i, s)) if s.stop == FitStop::Diverged => (
            FitStop::Diverged,
            Some(if s.nll < SEPARATED_NLL {
                format!(
                    "site {i} is predicted perfectly by the others in the data (mean loss {:.1e}): the \
                     pseudo-likelihood without a coupling penalty has no finite optimum; use l2_couplings > 0",
                    s.nll
                )
            } else {
                format!("site {i}'s parameters passed |x| = {} (param_cap)", opts.param_cap)
            }),
        ),
        Some((i, s)) if s.stop == FitStop::MaxIter => (
            FitStop::MaxIter,
            Some(format!(
                "site {i} did not converge in {} L-BFGS iterations (gradient {:.2e})",
                opts.max_iter, s.grad_max_norm
            )),
        ),
        _ => (FitStop::GradTol, None),
    };
    Ok(PottsPlmFit {
        model: zero_sum_gauge(&model),
        pseudo_nll: sites.iter().map(|s| s.nll).sum(),
        sites,
        diverged: stop != FitStop::GradTol,
        stop,
        note,
    })
}

/// Every state below q and every weight finite and ≥ 0 with a positive sum: the checks of an
/// alignment both Potts fits share (the error names the sequence and site, or the weight).
pub(crate) fn check_states_and_weights(
    seqs: &[u8],
    n: usize,
    q: usize,
    weights: &[f64],
) -> Result<(), PottsError> {
    if let Some(k) = seqs.iter().position(|&a| a as usize >= q) {
        return Err(PottsError::setting(
            "alignment",
            format!("state {} at sequence {}, site {}", seqs[k], k / n, k % n),
            format!("states are 0..{q}"),
        ));
    }
    if let Some(k) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(PottsError::setting(
            "weights",
            weights[k],
            format!("weight {k} must be finite and >= 0"),
        ));
    }
    let total: f64 = weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(PottsError::setting("weights", total, "the weights must have a positive, finite sum"));
    }
    Ok(())
}

fn check_input(
    seqs: &[u8],
    n: usize,
    q: usize,
    weights: &[f64],
    opts: &PottsPlmOptions,
) -> Result<(), PottsError> {
    if n < 2 {
        return Err(PottsError::setting("n", n, "a pseudo-likelihood fit needs at least 2 sites"));
    }
    if !(2..=256).contains(&q) {
        return Err(PottsError::setting("q", q, "need 2 <= q <= 256 states"));
    }
    if Some(seqs.len()) != weights.len().checked_mul(n) {
        return Err(PottsError::setting(
            "alignment",
            format!("{} states", seqs.len()),
            format!("need {} sequences × {n} sites (one weight per sequence)", weights.len()),
        ));
    }
    check_states_and_weights(seqs, n, q, weights)?;
    for (field, v) in [("l2_fields", opts.l2_fields), ("l2_couplings", opts.l2_couplings)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(PottsError::setting(field, v, "a penalty must be finite and >= 0"));
        }
    }
    let positive = |v: f64| v > 0.0; // false for NaN
    if !positive(opts.grad_tol) || !positive(opts.param_cap) {
        return Err(PottsError::setting(
            "grad_tol / param_cap",
            format!("{} / {}", opts.grad_tol, opts.param_cap),
            "need grad_tol > 0 and param_cap > 0",
        ));
    }
    Ok(())
}

/// Put one site's solution in the zero-sum gauge without changing its conditional law:
/// J_ij(a, b) → J_ij(a, b) − J_ij(a, ·) − J_ij(·, b) + J_ij(·, ·) and
/// h_i(a) → h_i(a) − h_i(·) + Σ_j [J_ij(a, ·) − J_ij(·, ·)] (x̄ = mean over the dotted letter).
///
/// Why before averaging: a site's regression identifies J_ij(a, b) only up to a function
/// of b (it shifts every letter a of the conditional alike), and its h_i goes with its own
/// J_ij(a, ·). The two estimates of a pair are thus in different gauges; averaging them
/// raw would leave the J_ij(a, ·) that site i's field was fitted against, biasing the
/// fields. Gauge-fixed first, both are the same representative and the average is one too
/// (as in plmDCA).
fn gauge_site(x: &mut [f64], n: usize, q: usize) {
    let (qf, qq) = (q as f64, q * q);
    let (h, blocks) = x.split_at_mut(q);
    let mut shift = vec![0.0; q];
    for block in blocks.chunks_exact_mut(qq).take(n - 1) {
        // The block holds J(a, b) at b·q + a: row means over b for each a are column sums here.
        let row_means: Vec<f64> =
            (0..q).map(|a| (0..q).map(|b| block[b * q + a]).sum::<f64>() / qf).collect();
        let col_means: Vec<f64> = block.chunks_exact(q).map(|c| c.iter().sum::<f64>() / qf).collect();
        let mean = block.iter().sum::<f64>() / (qf * qf);
        for (b, col) in block.chunks_exact_mut(q).enumerate() {
            for (a, v) in col.iter_mut().enumerate() {
                *v += mean - row_means[a] - col_means[b];
            }
        }
        for (s, r) in shift.iter_mut().zip(&row_means) {
            *s += r - mean;
        }
    }
    let h_mean = h.iter().sum::<f64>() / qf;
    for (h, s) in h.iter_mut().zip(&shift) {
        *h += s - h_mean;
    }
}

/// Site i's regression: data, weights and penalties, with scratch for one evaluation.
///
/// Parameters x = (h_i(0..q), then for each neighbour j ≠ i in increasing order a q×q block
/// with J_ij(a, b) at b·q + a). Transposed against [`PottsModel`] on purpose: a sample
/// reads the row for its letter s_j = b, q contiguous numbers, both to build f_i(·) and
/// to add its gradient.
struct Site<'a> {
    i: usize,
    n: usize,
    q: usize,
    seqs: &'a [u8],
    weights: &'a [f64],
    total: f64,
    l2_fields: f64,
    l2_couplings: f64,
}

impl Site<'_> {
    /// Offset of neighbour j's block in x.
    fn block(&self, j: usize) -> usize {
        let k = if j < self.i { j } else { j - 1 };
        self.q + k * self.q * self.q
    }

    /// Penalised value, unpenalised mean NLL, gradient (into `g`) at `x`; `f` and `e` are
    /// q-long scratch. O(M·n·q).
    fn evaluate(&self, x: &[f64], g: &mut [f64], f: &mut [f64], e: &mut [f64]) -> (f64, f64) {
        let (i, n, q) = (self.i, self.n, self.q);
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut nll = 0.0;
        for (row, &c) in self.seqs.chunks_exact(n).zip(self.weights) {
            if c == 0.0 {
                continue;
            }
            // f(a) = h_i(a) + Σ_j J_ij(a, s_j).
            f.copy_from_slice(&x[..q]);
            for (j, &b) in row.iter().enumerate() {
                if j == i {
                    continue;
                }
                let at = self.block(j) + b as usize * q;
                f.iter_mut().zip(&x[at..at + q]).for_each(|(f, x)| *f += x);
            }
            // −ln p(s_i) = ln Σ_a e^{f(a)} − f(s_i), shifted by max f: every exponent ≤ 0.
            let top = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for (e, &fa) in e.iter_mut().zip(f.iter()) {
                *e = exp_nonpos(fa - top);
                z += *e;
            }
            let si = row[i] as usize;
            nll += c * (top + z.ln() - f[si]);
            // ∂/∂f(a) = p(a) − δ_{a, s_i}, weighted; the same vector for h_i and each J_ij(·, s_j).
            let scale = c / z;
            e.iter_mut().for_each(|e| *e *= scale);
            e[si] -= c;
            g[..q].iter_mut().zip(e.iter()).for_each(|(g, r)| *g += r);
            for (j, &b) in row.iter().enumerate() {
                if j == i {
                    continue;
                }
                let at = self.block(j) + b as usize * q;
                g[at..at + q].iter_mut().zip(e.iter()).for_each(|(g, r)| *g += r);
            }
        }
        nll /= self.total;
        let mut penalty = 0.0;
        for (k, (gk, &xk)) in g.iter_mut().zip(x).enumerate() {
            let l2 = if k < q { self.l2_fields } else { self.l2_couplings };
            *gk = *gk / self.total + 2.0 * l2 * xk;
            penalty += l2 * xk * xk;
        }
        (nll + penalty, nll)
    }
}

/// Solve site i: its parameters (layout of [`Site`]) and diagnostics.
fn fit_site(
    i: usize,
    seqs: &[u8],
    n: usize,
    q: usize,
    weights: &[f64],
    total: f64,
    opts: &PottsPlmOptions,
) -> (Vec<f64>, PottsPlmSite) {
    let site =
        Site { i, n, q, seqs, weights, total, l2_fields: opts.l2_fields, l2_couplings: opts.l2_couplings };
    let mut x = vec![0.0; q + (n - 1) * q * q];
    let (mut f, mut e) = (vec![0.0; q], vec![0.0; q]);
    let lbfgs = LbfgsOptions {
        memory: opts.memory,
        max_iter: opts.max_iter,
        grad_tol: opts.grad_tol,
        x_cap: opts.param_cap,
    };
    let report = minimize(&mut x, &[], lbfgs, |x, g| site.evaluate(x, g, &mut f, &mut e));
    let stop = match report.stop {
        // No decrease along a descent direction: the minimum, to round-off.
        LbfgsStop::GradTol | LbfgsStop::NoDecrease => FitStop::GradTol,
        LbfgsStop::XCap => FitStop::Diverged,
        LbfgsStop::MaxIter => FitStop::MaxIter,
    };
    // Without a coupling penalty a perfectly predicted site stops at some large finite x
    // (loss and gradient decay together); a loss this small is no finite optimum.
    let stop = if opts.l2_couplings == 0.0 && stop != FitStop::Diverged && report.aux < SEPARATED_NLL {
        FitStop::Diverged
    } else {
        stop
    };
    let diag = PottsPlmSite {
        iterations: report.iterations,
        stop,
        nll: report.aux,
        grad_max_norm: report.grad_max_norm,
    };
    (x, diag)
}
