//! The L-BFGS minimiser shared by the pseudo-likelihood fits ([`crate::fit::plm`] for Ising,
//! [`crate::fit::potts_plm`] for Potts): limited-memory BFGS directions (the two-loop
//! recursion) with a backtracking Armijo line search.
//!
//! Why this line search and not a Wolfe one: the objectives are smooth, convex and cheap
//! to differentiate, and backtracking from the unit step accepts the full quasi-Newton step
//! almost always, so the extra evaluations a Wolfe search spends on curvature buy nothing;
//! curvature pairs with s·y ≤ 0 (possible without Wolfe) are simply not stored.
//!
//! # Determinism and frozen arithmetic
//!
//! Everything is sequential and every sum runs in index order, so a minimisation is a pure
//! function of its inputs, bit for bit. The arithmetic is exactly that of the Ising `plm`
//! fit before this module was split out of it (a long study is resumed with that code):
//! the order of the checks, of the operations in the two-loop recursion, the γ = s·y/y·y
//! scaling, the step `x + t·d`, the Armijo constant 10⁻⁴, the halving and its 10⁻¹² floor.
//! `fit::plm`'s test `results_are_frozen_bit_for_bit` pins it; a change to the numbers here
//! is a change of published results.

use std::collections::VecDeque;

/// Settings of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub struct LbfgsOptions {
    /// Correction pairs kept; 0 is steepest descent with the same line search.
    pub memory: usize,
    /// Iteration cap (one iteration = one direction and its line search).
    pub max_iter: u32,
    /// Stop when the max-norm of the gradient is at most this.
    pub grad_tol: f64,
    /// Stop when the max-norm of x exceeds this: for the fits, parameters running off to
    /// infinity (an optimum that does not exist) rather than a slow convergence.
    pub x_cap: f64,
}

/// Why [`minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbfgsStop {
    /// The gradient max-norm reached `grad_tol`.
    GradTol,
    /// The line search found no decrease along a descent direction (steps down to 10⁻¹²):
    /// the minimum to round-off, in practice.
    NoDecrease,
    /// The max-norm of x passed `x_cap`.
    XCap,
    /// `max_iter` iterations were made.
    MaxIter,
}

/// The outcome of [`minimize`]; the minimiser itself is left in the `x` handed in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbfgsReport {
    /// Why it stopped.
    pub stop: LbfgsStop,
    /// Iterations made.
    pub iterations: u32,
    /// The objective at the final x.
    pub value: f64,
    /// The second number the objective returned at the final x (for the fits: the
    /// unpenalised loss).
    pub aux: f64,
    /// The max-norm of the gradient at the final x (pinned coordinates excluded).
    pub grad_max_norm: f64,
}

/// Minimise `objective` from the starting point `x` (overwritten with the result).
///
/// `objective(x, g)` returns (value, aux) and writes the gradient into `g` (`g.len() ==
/// x.len()`, contents on entry unspecified). Coordinates listed in `pinned` keep their
/// starting values: their gradient is ignored and every trial point resets them (the Ising
/// fit pins w_ii = 0, so one data layout serves every site).
pub fn minimize<F>(x: &mut Vec<f64>, pinned: &[usize], opts: LbfgsOptions, mut objective: F) -> LbfgsReport
where
    F: FnMut(&[f64], &mut [f64]) -> (f64, f64),
{
    let n = x.len();
    assert!(pinned.iter().all(|&k| k < n), "pinned coordinates out of 0..{n}");
    let fixed: Vec<(usize, f64)> = pinned.iter().map(|&k| (k, x[k])).collect();
    let mut g = vec![0.0; n];
    let (mut f, mut aux) = objective(x, &mut g);
    pin_gradient(&mut g, pinned);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    let mut iterations = 0;
    let stop = loop {
        if max_norm(&g) <= opts.grad_tol {
            break LbfgsStop::GradTol;
        }
        if max_norm(x) > opts.x_cap {
            break LbfgsStop::XCap;
        }
        if iterations >= opts.max_iter {
            break LbfgsStop::MaxIter;
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
                x_new[k] = x[k] + t * d[k];
            }
            for &(k, v) in &fixed {
                x_new[k] = v;
            }
            let (f_new, aux_new) = objective(&x_new, &mut g_new);
            pin_gradient(&mut g_new, pinned);
            if f_new <= f + 1e-4 * t * slope {
                f = f_new;
                aux = aux_new;
                break true;
            }
            t *= 0.5;
            if t < 1e-12 {
                break false;
            }
        };
        if !accepted {
            break LbfgsStop::NoDecrease;
        }
        let s: Vec<f64> = x_new.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 && opts.memory > 0 {
            if history.len() == opts.memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
    };
    LbfgsReport { stop, iterations, value: f, aux, grad_max_norm: max_norm(&g) }
}

/// A pinned coordinate does not move, so its gradient is not part of the problem.
fn pin_gradient(g: &mut [f64], pinned: &[usize]) {
    for &k in pinned {
        g[k] = 0.0;
    }
}

/// max_k |v_k| (0 for an empty slice).
pub fn max_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m: f64, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: LbfgsOptions = LbfgsOptions { memory: 5, max_iter: 200, grad_tol: 1e-10, x_cap: 1e6 };

    /// f(x) = Σ_k (k+1)(x_k − 1)² + (x_0 − x_1)⁴: a convex function with its minimum at 1.
    fn bowl(x: &[f64], g: &mut [f64]) -> (f64, f64) {
        let mut f = 0.0;
        for (k, (xk, gk)) in x.iter().zip(g.iter_mut()).enumerate() {
            let c = (k + 1) as f64;
            f += c * (xk - 1.0).powi(2);
            *gk = 2.0 * c * (xk - 1.0);
        }
        let d = x[0] - x[1];
        f += d.powi(4);
        g[0] += 4.0 * d.powi(3);
        g[1] -= 4.0 * d.powi(3);
        (f, -f)
    }

    #[test]
    fn finds_the_minimum_of_a_convex_function() {
        let mut x = vec![0.0; 6];
        let r = minimize(&mut x, &[], OPTS, bowl);
        assert_eq!(r.stop, LbfgsStop::GradTol, "{r:?}");
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-9), "{x:?}");
        assert!(r.value < 1e-18 && r.aux == -r.value && r.grad_max_norm <= 1e-10);
        // Steepest descent gets there too, more slowly.
        let mut y = vec![0.0; 6];
        let sd = minimize(&mut y, &[], LbfgsOptions { memory: 0, max_iter: 10_000, ..OPTS }, bowl);
        assert!(sd.stop == LbfgsStop::GradTol && sd.iterations > r.iterations, "{sd:?} vs {r:?}");
    }

    #[test]
    fn pinned_coordinates_keep_their_values() {
        let mut x = vec![0.0, 0.5, 0.0, 0.0];
        let r = minimize(&mut x, &[1], OPTS, bowl);
        assert_eq!(r.stop, LbfgsStop::GradTol, "{r:?}");
        assert_eq!(x[1], 0.5);
        assert!((x[2] - 1.0).abs() < 1e-9 && (x[3] - 1.0).abs() < 1e-9, "{x:?}");
    }

    #[test]
    fn a_runaway_is_stopped_by_the_cap_and_the_budget_by_max_iter() {
        // f(x) = e^{−x}: no minimum, x runs off.
        let runaway = |x: &[f64], g: &mut [f64]| {
            g[0] = -(-x[0]).exp();
            ((-x[0]).exp(), 0.0)
        };
        let mut x = vec![0.0];
        let r = minimize(&mut x, &[], LbfgsOptions { x_cap: 10.0, max_iter: 10_000, ..OPTS }, runaway);
        assert_eq!(r.stop, LbfgsStop::XCap, "{r:?}");
        let mut x = vec![0.0; 6];
        let r = minimize(&mut x, &[], LbfgsOptions { max_iter: 2, ..OPTS }, bowl);
        assert_eq!((r.stop, r.iterations), (LbfgsStop::MaxIter, 2));
    }
}
