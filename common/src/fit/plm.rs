//! Pseudo-likelihood fit of the fully connected Ising model (`plm`, docs/spec.md §10): the
//! fit that needs no partition function, so it runs on any lattice.
//!
//! Site i's conditional law given the others is P(σ_i | σ_∖i) = e^{σ_i H_i} / 2cosh H_i with
//! H_i = Σ_{j≠i} w_ij σ_j. Each site's penalised mean negative log-conditional
//! ℓ_i(w_i) = (1/M) Σ_m [ln 2cosh H_i^m − σ_i^m H_i^m] + λ‖w_i‖² is a strictly convex
//! logistic regression, minimised on its own (sites in parallel) by L-BFGS; the couplings are
//! then symmetrised, Ĵ_ij = (w_ij + w_ji)/2 (Aurell & Ekeberg 2012). Deterministic: every
//! site's solve is sequential and the sites are collected in order.
//!
//! Without a penalty the optimum is infinite when a site is predicted perfectly by the
//! others in the data (a separable logistic regression: e.g. two spins always equal); a
//! weight passing `coupling_cap` is reported as such a divergence, as `mle` does.

use rayon::prelude::*;

use crate::cell::FitStop;

/// Settings of a pseudo-likelihood fit.
#[derive(Debug, Clone, Copy)]
pub struct PlmOptions {
    /// λ of the per-site penalty λ‖w_i‖².
    pub l2: f64,
    /// L-BFGS iteration cap per site.
    pub max_iter: u32,
    /// Stop a site when the max-norm of its gradient is below this.
    pub grad_tol: f64,
    /// A weight beyond this (in absolute value) is a divergence.
    pub coupling_cap: f64,
    /// Correction pairs L-BFGS keeps ([`DEFAULT_MEMORY`]); 0 is steepest descent with the
    /// same line search, the straightforward method the benchmark compares against.
    pub memory: usize,
}

/// The L-BFGS memory cells use.
pub const DEFAULT_MEMORY: usize = 10;

/// The outcome of [`fit_plm`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlmFit {
    /// Ĵ in pair order ((i, j), i < j, lexicographic).
    pub couplings: Vec<f64>,
    /// The most L-BFGS iterations any site took.
    pub iterations: u32,
    /// The largest final gradient max-norm over the sites.
    pub grad_max_norm: f64,
    /// Σ_i of the unpenalised mean negative log-conditional at the fit (the pseudo-NLL).
    pub pseudo_nll: f64,
    /// max |Ĵ|.
    pub coupling_max_abs: f64,
    /// Some site's weights ran past the cap, or a site did not converge.
    pub diverged: bool,
    /// Why it stopped (the worst site's reason).
    pub stop: FitStop,
    /// What went wrong, if anything.
    pub note: Option<String>,
}

/// Fit from `m` configurations of `n` spins (`spins[m·n + i]` = σ_i of sample m, ±1), each
/// with a weight (a count; `weights.len() == m`).
pub fn fit_plm(n: usize, spins: &[i8], weights: &[f64], opts: PlmOptions) -> PlmFit {
    assert!(
        n >= 2 && spins.len() == weights.len() * n,
        "{} spins for {} samples of {n}",
        spins.len(),
        weights.len()
    );
    let total: f64 = weights.iter().sum();
    let x: Vec<f64> = spins.iter().map(|&s| f64::from(s)).collect();
    let sites: Vec<SiteFit> =
        (0..n).into_par_iter().map(|i| fit_site(i, n, &x, weights, total, opts)).collect();
    let mut couplings = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            couplings.push(0.5 * (sites[i].w[j] + sites[j].w[i]));
        }
    }
    let worst = sites.iter().enumerate().max_by_key(|(_, s)| match s.stop {
        FitStop::Diverged => 2,
        FitStop::MaxIter => 1,
        _ => 0,
    });
    let (stop, note) = match worst {
        Some((i, s)) if s.stop == FitStop::Diverged => (
            FitStop::Diverged,
            Some(if opts.l2 == 0.0 {
                format!(
                    "site {i} is predicted perfectly by the others in the data (its weights run off towards \
                     infinity, max|w| = {:.3}): the unregularised pseudo-likelihood has no finite optimum; \
                     use l2 > 0",
                    s.w.iter().fold(0.0, |m: f64, x| m.max(x.abs()))
                )
            } else {
                format!("site {i}'s weights passed |w| = {} (coupling_cap)", opts.coupling_cap)
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
    PlmFit {
        coupling_max_abs: couplings.iter().fold(0.0, |m: f64, c| m.max(c.abs())),
        couplings,
        iterations: sites.iter().map(|s| s.iterations).max().unwrap_or(0),
        grad_max_norm: sites.iter().map(|s| s.grad_max_norm).fold(0.0, f64::max),
        pseudo_nll: sites.iter().map(|s| s.nll).sum(),
        diverged: stop != FitStop::GradTol,
        stop,
        note,
    }
}

/// One site's solve.
struct SiteFit {
    /// w_i· over all n spins (w_ii = 0).
    w: Vec<f64>,
    iterations: u32,
    grad_max_norm: f64,
    /// Unpenalised mean negative log-conditional.
    nll: f64,
    stop: FitStop,
}

/// ln 2cosh h, without overflow.
fn ln_2cosh(h: f64) -> f64 {
    let a = h.abs();
    a + (-2.0 * a).exp().ln_1p()
}

/// Site i's regression problem: the data (±1 as f64, sample by sample) and its weights.
struct Problem<'a> {
    i: usize,
    n: usize,
    x: &'a [f64],
    weights: &'a [f64],
    total: f64,
    l2: f64,
}

impl Problem<'_> {
    /// Value (penalised), unpenalised value, and gradient (into `g`) at `w`.
    fn evaluate(&self, w: &[f64], g: &mut [f64]) -> (f64, f64) {
        let (i, n) = (self.i, self.n);
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut nll = 0.0;
        for (row, &c) in self.x.chunks_exact(n).zip(self.weights) {
            if c == 0.0 {
                continue;
            }
            let h: f64 = row.iter().zip(w).map(|(s, w)| s * w).sum();
            let si = row[i];
            nll += c * (ln_2cosh(h) - si * h);
            // d/dw_j = (tanh h − σ_i) σ_j.
            let r = c * (h.tanh() - si);
            for (gj, &sj) in g.iter_mut().zip(row) {
                *gj += r * sj;
            }
        }
        nll /= self.total;
        let mut penalty = 0.0;
        for j in 0..n {
            g[j] = g[j] / self.total + 2.0 * self.l2 * w[j];
            penalty += self.l2 * w[j] * w[j];
        }
        // w_ii is not a parameter.
        g[i] = 0.0;
        (nll + penalty, nll)
    }
}

/// Minimise site i's objective by L-BFGS with a backtracking (Armijo) line search.
fn fit_site(i: usize, n: usize, x: &[f64], weights: &[f64], total: f64, opts: PlmOptions) -> SiteFit {
    let problem = Problem { i, n, x, weights, total, l2: opts.l2 };
    let mut w = vec![0.0; n];
    let mut g = vec![0.0; n];
    let (mut f, mut nll) = problem.evaluate(&w, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let (mut w_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    let mut iterations = 0;
    let norm = |v: &[f64]| v.iter().fold(0.0, |m: f64, x| m.max(x.abs()));
    let stop = loop {
        if norm(&g) <= opts.grad_tol {
            break FitStop::GradTol;
        }
        if norm(&w) > opts.coupling_cap {
            break FitStop::Diverged;
        }
        if iterations >= opts.max_iter {
            break FitStop::MaxIter;
        }
        iterations += 1;
        // Two-loop recursion: d = −H·g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
            alphas.push(a);
        }
        let gamma = history.back().map_or(1.0, |(s, y, _)| dot(s, y) / dot(y, y));
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (round-off in a flat region): restart from the gradient.
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut t = 1.0;
        let accepted = loop {
            for k in 0..n {
                w_new[k] = w[k] + t * d[k];
            }
            w_new[i] = 0.0;
            let (f_new, nll_new) = problem.evaluate(&w_new, &mut g_new);
            if f_new <= f + 1e-4 * t * slope {
                f = f_new;
                nll = nll_new;
                break true;
            }
            t *= 0.5;
            if t < 1e-12 {
                break false;
            }
        };
        if !accepted {
            // No decrease along a descent direction: the minimum, to round-off.
            break FitStop::GradTol;
        }
        let s: Vec<f64> = w_new.iter().zip(&w).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 && opts.memory > 0 {
            if history.len() == opts.memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut w, &mut w_new);
        std::mem::swap(&mut g, &mut g_new);
    };
    // Without a penalty a site the data predict perfectly has its optimum at infinity: the
    // loss and its gradient decay together like e^{−margin}, so the gradient test stops
    // at some large finite w. A mean loss that small is not a finite optimum (data that
    // leave any doubt about σ_i keep it well above this).
    let stop = if opts.l2 == 0.0 && stop == FitStop::GradTol && nll < SEPARATED_NLL {
        FitStop::Diverged
    } else {
        stop
    };
    SiteFit { grad_max_norm: norm(&g), w, iterations, nll, stop }
}

/// A site whose unpenalised mean negative log-conditional falls below this is predicted
/// perfectly by the others in the data (a separable logistic regression).
const SEPARATED_NLL: f64 = 1e-5;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
