//! Exact maximum-likelihood fit of the fully connected pairwise Ising model (docs/spec.md §4.2):
//! q(σ) ∝ exp(Σ_{i<j} Ĵ_ij σ_iσ_j), by enumeration of all 2^N states.
//!
//! The mean log-likelihood is concave in Ĵ with gradient ⟨σ_iσ_j⟩_data − ⟨σ_iσ_j⟩_q and
//! Hessian −Cov_q(σ_iσ_j, σ_kσ_l). One *exact pass* — energies by a Walsh–Hadamard transform
//! of the couplings, Boltzmann weights, then all parity moments by a second transform —
//! yields log Z, the gradient and (from the |S| ≤ 4 moments, since σ_iσ_jσ_kσ_l = χ of the
//! symmetric difference) the full Hessian.
//!
//! Two modes: `mle` (damped Newton to a gradient max-norm ≤ 1e-8, detecting when the
//! unregularised MLE does not exist) and `paper` (the paper's plain gradient ascent).

use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::linalg::solve_spd_with_ridge;
use crate::exact::{boltzmann_weights, boltzmann_weights_flip_even, wht};
use crate::fit::{FitMode, FitStop};
use crate::model::ising::Pairs;

/// Convergence threshold on the gradient max-norm in `mle` mode.
pub const GRAD_TOL: f64 = 1e-8;
/// The paper's gradient-ascent step.
pub const PAPER_STEP: f64 = 0.01;
/// Largest max-norm of one Newton step: keeps the first steps from a flat start sane and
/// makes a run-away (non-existent MLE) climb to the cap at a steady pace.
const NEWTON_STEP_CAP: f64 = 2.0;

/// Distinct data states with their counts, and the sample moments the fit needs.
#[derive(Debug, Clone)]
pub struct IsingData {
    /// (state, count), states distinct.
    pub states: Vec<(u32, u64)>,
    /// M.
    pub m: u64,
    /// ⟨σ_iσ_j⟩_data in pair order.
    pub pair_moments: Vec<f64>,
    /// ⟨σ_i⟩_data.
    pub means: Vec<f64>,
}

impl IsingData {
    /// Summarise drawn states.
    pub fn new(pairs: &Pairs, states: Vec<(u32, u64)>) -> Self {
        let m: u64 = states.iter().map(|&(_, c)| c).sum();
        let mf = m as f64;
        let mut pair_moments = vec![0.0; pairs.len()];
        let mut means = vec![0.0; pairs.n as usize];
        for &(x, c) in &states {
            let c = c as f64;
            for (pm, &mask) in pair_moments.iter_mut().zip(&pairs.mask) {
                *pm += if (x & mask).count_ones() == 1 { -c } else { c };
            }
            for (i, mu) in means.iter_mut().enumerate() {
                *mu += if (x >> i) & 1 == 0 { c } else { -c };
            }
        }
        pair_moments.iter_mut().for_each(|v| *v /= mf);
        means.iter_mut().for_each(|v| *v /= mf);
        IsingData { states, m, pair_moments, means }
    }

    /// Mean and population variance of the model energy Ê over the data (for τ_var).
    pub fn energy_stats(&self, pairs: &Pairs, couplings: &[f64]) -> (f64, f64) {
        let mf = self.m as f64;
        let energies: Vec<(f64, f64)> =
            self.states.iter().map(|&(x, c)| (-pairs.neg_energy_of(couplings, x), c as f64)).collect();
        let mean = energies.iter().map(|(e, c)| e * c).sum::<f64>() / mf;
        let var = energies.iter().map(|(e, c)| c * (e - mean).powi(2)).sum::<f64>() / mf;
        (mean, var)
    }
}

/// Reusable buffers for exact passes over 2^N states.
pub struct Enumerator {
    pairs: Pairs,
    energy: Vec<f64>,
    /// Transform of the *unnormalised* weights; divide by `z` for moments.
    moments: Vec<f64>,
    z: f64,
}

impl Enumerator {
    /// Buffers for N spins.
    pub fn new(pairs: Pairs) -> Self {
        let size = 1usize << pairs.n;
        Enumerator { pairs, energy: vec![0.0; size], moments: vec![0.0; size], z: 1.0 }
    }

    /// The pair structure.
    pub fn pairs(&self) -> &Pairs {
        &self.pairs
    }

    /// Energies Ê of the last pass (for every state).
    pub fn energies(&self) -> &[f64] {
        &self.energy
    }

    /// One exact pass at `couplings`: energies, all parity moments ⟨χ_S⟩_q; returns log Z.
    pub fn pass(&mut self, couplings: &[f64]) -> f64 {
        self.pairs.energies_into(couplings, &mut self.energy);
        let e_min = self.energy.iter().copied().fold(f64::INFINITY, f64::min);
        // Pair energies are even under the global flip: half the exponentials, same bits.
        self.z = if self.energy.len() >= 8 {
            boltzmann_weights_flip_even(&self.energy, e_min, &mut self.moments)
        } else {
            boltzmann_weights(&self.energy, e_min, &mut self.moments)
        };
        // Normalisation is deferred to the few moments actually read.
        wht(&mut self.moments);
        -e_min + self.z.ln()
    }

    /// The parity moment ⟨χ_S⟩_q of the last pass, for subset mask S.
    pub fn moment(&self, s: u32) -> f64 {
        self.moments[s as usize] / self.z
    }

    /// ⟨σ_iσ_j⟩_q of the last pass, pair `a`.
    fn pair_moment(&self, a: usize) -> f64 {
        self.moment(self.pairs.mask[a])
    }
}

/// The outcome of an Ising fit.
#[derive(Debug, Clone, PartialEq)]
pub struct IsingFit {
    /// Ĵ in pair order.
    pub couplings: Vec<f64>,
    /// The mode used.
    pub mode: FitMode,
    /// Iterations (Newton steps, or gradient steps).
    pub iterations: u32,
    /// max-norm of the gradient of the penalised mean log-likelihood at Ĵ.
    pub grad_max_norm: f64,
    /// Mean negative log-likelihood of the data at Ĵ (without the penalty).
    pub nll: f64,
    /// max |Ĵ|.
    pub coupling_max_abs: f64,
    /// The MLE does not exist (couplings ran off) or the fit failed to converge.
    pub diverged: bool,
    /// Why it stopped.
    pub stop: FitStop,
    /// Why it diverged or stopped early.
    pub note: Option<String>,
}

/// Settings of one fit.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// L2 penalty λ: the objective is mean log-likelihood − λ‖Ĵ‖².
    pub l2: f64,
    /// Iteration cap.
    pub max_iter: u32,
    /// `paper`: stop when the relative change of the NLL falls below this.
    pub rel_tol: f64,
    /// `mle`, λ = 0: max|Ĵ| beyond which the MLE is declared non-existent.
    pub coupling_cap: f64,
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Penalised objective to *minimise*: log Z − Ĵ·m_d + λ‖Ĵ‖² (= NLL + penalty).
fn objective(log_z: f64, j: &[f64], target: &[f64], l2: f64) -> (f64, f64) {
    let nll = log_z - dot(j, target);
    (nll + l2 * dot(j, j), nll)
}

/// Gradient of the objective: ⟨σσ⟩_q − m_d + 2λĴ.
fn gradient(en: &Enumerator, j: &[f64], target: &[f64], l2: f64, g: &mut [f64]) {
    for (a, ga) in g.iter_mut().enumerate() {
        *ga = en.pair_moment(a) - target[a] + 2.0 * l2 * j[a];
    }
}

/// Iterations of vanishing gradient with large Newton steps tolerated before a run-away is
/// declared.
const STALL_LIMIT: u32 = 3;

fn runaway_note(j: &[f64], l2: f64) -> String {
    if l2 == 0.0 {
        format!(
            "the likelihood is flat to machine precision while Newton steps stay large (max|J| = {:.3} and \
             growing): the unregularised MLE does not exist; use l2 > 0 for a finite fit",
            max_abs(j)
        )
    } else {
        format!(
            "no convergence: Newton steps stay large at a vanishing gradient (max|J| = {:.3})",
            max_abs(j)
        )
    }
}

/// Converged penalised MLE by damped Newton with the exact Hessian (`mle` mode).
///
/// With λ = 0 the MLE may not exist (data moments on the boundary of the marginal
/// polytope). Then Newton keeps taking steps of O(1) along a direction in which the
/// likelihood still improves while its gradient and curvature vanish together, so a small
/// gradient alone proves nothing. Convergence therefore needs a small gradient *and* a small
/// Newton step; a run-away is reported as `diverged` once max|Ĵ| passes the cap, or when the
/// likelihood has become flat to machine precision while the step is still large.
pub fn fit_mle(en: &mut Enumerator, target: &[f64], opts: FitOptions) -> IsingFit {
    let p = en.pairs.len();
    let mut j = vec![0.0; p];
    let mut g = vec![0.0; p];
    let mut h = Array2::<f64>::zeros((p, p));
    let (mut f, mut nll) = objective(en.pass(&j), &j, target, opts.l2);
    let mut note = None;
    let mut diverged = false;
    let mut stop = FitStop::GradTol;
    let mut iterations = 0;
    let mut trial = vec![0.0; p];
    // Consecutive iterations with a vanishing gradient but a large Newton step. At a real
    // optimum Newton converges quadratically, so this cannot last more than a step or two.
    let mut stalled = 0;
    loop {
        gradient(en, &j, target, opts.l2, &mut g);
        let gmax = max_abs(&g);
        // Hessian Cov_q(σ_iσ_j, σ_kσ_l) + 2λI from the parity moments.
        for a in 0..p {
            let (ma, mask_a) = (en.pair_moment(a), en.pairs.mask[a]);
            for b in 0..=a {
                let v = en.moment(mask_a ^ en.pairs.mask[b]) - ma * en.pair_moment(b);
                h[[a, b]] = v;
                h[[b, a]] = v;
            }
            h[[a, a]] += 2.0 * opts.l2;
        }
        let neg_g: Vec<f64> = g.iter().map(|x| -x).collect();
        let (mut d, _ridge) = solve_spd_with_ridge(&h, &neg_g);
        let dmax = max_abs(&d);
        if gmax <= GRAD_TOL && dmax <= 1e-6 {
            break;
        }
        stalled = if gmax <= GRAD_TOL { stalled + 1 } else { 0 };
        if stalled > STALL_LIMIT {
            diverged = true;
            stop = FitStop::Diverged;
            note = Some(runaway_note(&j, opts.l2));
            break;
        }
        if iterations >= opts.max_iter {
            diverged = true;
            stop = FitStop::MaxIter;
            note = Some(format!(
                "no convergence within max_iter = {} Newton steps (gradient max-norm {gmax:.3e})",
                opts.max_iter
            ));
            break;
        }
        if dmax > NEWTON_STEP_CAP {
            d.iter_mut().for_each(|x| *x *= NEWTON_STEP_CAP / dmax);
        }
        let slope = dot(&g, &d);
        let mut t = 1.0;
        let accepted = loop {
            for ((tr, &ja), &da) in trial.iter_mut().zip(&j).zip(&d) {
                *tr = ja + t * da;
            }
            let (f_new, nll_new) = objective(en.pass(&trial), &trial, target, opts.l2);
            // Armijo, with room for round-off in f (its changes can fall below one ulp).
            if f_new <= f + 1e-4 * t * slope + 4.0 * f64::EPSILON * f.abs() {
                f = f_new;
                nll = nll_new;
                break true;
            }
            t *= 0.5;
            if t < 1e-10 {
                break false;
            }
        };
        iterations += 1;
        if !accepted {
            // The moments of the last trial are in the buffers: recompute them at Ĵ.
            en.pass(&j);
            if gmax <= GRAD_TOL && opts.l2 > 0.0 {
                break;
            }
            diverged = true;
            stop = FitStop::Diverged;
            note = Some(runaway_note(&j, opts.l2));
            break;
        }
        std::mem::swap(&mut j, &mut trial);
        if opts.l2 == 0.0 && max_abs(&j) > opts.coupling_cap {
            diverged = true;
            stop = FitStop::Diverged;
            note = Some(format!(
                "max|J| passed the cap {} while the likelihood kept improving: the unregularised MLE \
                 does not exist (data moments on the boundary); use l2 > 0 for a finite fit",
                opts.coupling_cap
            ));
            break;
        }
    }
    // The buffers hold the pass at Ĵ: report its gradient.
    gradient(en, &j, target, opts.l2, &mut g);
    IsingFit {
        coupling_max_abs: max_abs(&j),
        grad_max_norm: max_abs(&g),
        couplings: j,
        mode: FitMode::Mle,
        iterations,
        nll,
        diverged,
        stop,
        note,
    }
}

/// The paper's procedure (`paper` mode): Ĵ_ij = (a_ij + a_ji)/2 with a ~ N(0, 1) i.i.d.,
/// then Ĵ += 0.01 · (target − ⟨σσ⟩_q) − 0.01 · 2λĴ until the relative change of the NLL
/// between iterations is < `rel_tol`, or `max_iter` steps (docs/spec.md §4.2; the authors'
/// Fig. 3 sweep uses 1e-5 and 15 000). In sparse data the unregularised optimum often does
/// not exist, and where this loop stops *is* the result: early stopping is the implicit
/// regularisation the paper's sparse-data findings rest on.
///
/// As in the paper's code, the target second moments are the *unbiased* sample covariance
/// plus the product of means, i.e. (M/(M−1))(⟨σ_iσ_j⟩ − μ_iμ_j) + μ_iμ_j; the NLL is that of
/// the data itself.
pub fn fit_paper<R: Rng>(en: &mut Enumerator, data: &IsingData, opts: FitOptions, rng: &mut R) -> IsingFit {
    let pairs = en.pairs.clone();
    let n = pairs.n as usize;
    let a: Vec<f64> = (0..n * n).map(|_| StandardNormal.sample(rng)).collect();
    let mut j: Vec<f64> = pairs
        .ij
        .iter()
        .map(|&(i, k)| 0.5 * (a[i as usize * n + k as usize] + a[k as usize * n + i as usize]))
        .collect();
    let mf = data.m as f64;
    let target: Vec<f64> = pairs
        .ij
        .iter()
        .zip(&data.pair_moments)
        .map(|(&(i, k), &m2)| {
            let mm = data.means[i as usize] * data.means[k as usize];
            if data.m >= 2 {
                mf / (mf - 1.0) * (m2 - mm) + mm
            } else {
                m2
            }
        })
        .collect();
    let mut prev_nll = f64::NAN;
    let mut k = 0u32;
    let mut note = None;
    let mut stop = FitStop::RelTol;
    let nll = loop {
        let nll = en.pass(&j) - dot(&j, &data.pair_moments);
        if k > 0 {
            let rel = ((nll - prev_nll) / prev_nll).abs();
            if rel < opts.rel_tol {
                break nll;
            }
            if k >= opts.max_iter || !rel.is_finite() {
                stop = FitStop::MaxIter;
                note = Some(format!(
                    "stopped at max_iter = {} (relative NLL change {rel:.2e} >= rel_tol = {:e})",
                    opts.max_iter, opts.rel_tol
                ));
                break nll;
            }
        }
        prev_nll = nll;
        for (ja, (t, a)) in j.iter_mut().zip(target.iter().zip(0..pairs.len())) {
            *ja += PAPER_STEP * (t - en.pair_moment(a) - 2.0 * opts.l2 * *ja);
        }
        k += 1;
    };
    let mut g = vec![0.0; pairs.len()];
    gradient(en, &j, &data.pair_moments, opts.l2, &mut g);
    let diverged = !j.iter().all(|x| x.is_finite()) || !nll.is_finite();
    if diverged {
        stop = FitStop::Diverged;
        note = Some("gradient ascent produced non-finite couplings".to_string());
    }
    IsingFit {
        coupling_max_abs: max_abs(&j),
        grad_max_norm: max_abs(&g),
        couplings: j,
        mode: FitMode::Paper,
        iterations: k,
        nll,
        diverged,
        stop,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ising::IsingTruth;
    use rand::SeedableRng;

    fn exact_moments(truth: &IsingTruth, pairs: &Pairs) -> Vec<f64> {
        let mut q = truth.probabilities();
        wht(&mut q);
        pairs.mask.iter().map(|&m| q[m as usize]).collect()
    }

    #[test]
    fn fitting_exact_truth_moments_recovers_j_over_t() {
        for (rows, cols, t) in [(3, 3, 2.3), (2, 4, 1.7), (4, 4, 3.0)] {
            let pairs = Pairs::new(rows * cols);
            let truth = IsingTruth::new(rows, cols, t, &pairs);
            let target = exact_moments(&truth, &pairs);
            let mut en = Enumerator::new(pairs.clone());
            let fit = fit_mle(
                &mut en,
                &target,
                FitOptions { l2: 0.0, max_iter: 200, rel_tol: 1e-5, coupling_cap: 20.0 },
            );
            assert!(!fit.diverged, "{fit:?}");
            assert!(fit.grad_max_norm <= GRAD_TOL);
            for (a, b) in fit.couplings.iter().zip(&truth.couplings_over_t) {
                assert!((a - b).abs() < 1e-6, "{rows}x{cols} T={t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn data_with_a_pair_always_equal_has_no_mle_and_is_flagged() {
        // Three spins, data only on states where spins 0 and 1 agree: ⟨σ0σ1⟩ = 1.
        let pairs = Pairs::new(3);
        let data = IsingData::new(&pairs, vec![(0b000, 3), (0b100, 2), (0b011, 1)]);
        assert_eq!(data.pair_moments[0], 1.0);
        let mut en = Enumerator::new(pairs);
        let fit = fit_mle(
            &mut en,
            &data.pair_moments,
            FitOptions { l2: 0.0, max_iter: 500, rel_tol: 1e-5, coupling_cap: 20.0 },
        );
        assert!(fit.diverged, "{fit:?}");
        assert!(fit.note.as_deref().unwrap_or("").contains("does not exist"), "{fit:?}");
    }

    #[test]
    fn the_same_data_with_l2_penalty_converges() {
        let pairs = Pairs::new(3);
        let data = IsingData::new(&pairs, vec![(0b000, 3), (0b100, 2), (0b011, 1)]);
        let mut en = Enumerator::new(pairs);
        let fit = fit_mle(
            &mut en,
            &data.pair_moments,
            FitOptions { l2: 0.01, max_iter: 500, rel_tol: 1e-5, coupling_cap: 20.0 },
        );
        assert!(!fit.diverged, "{fit:?}");
        assert!(fit.grad_max_norm <= GRAD_TOL, "{fit:?}");
        assert!(fit.coupling_max_abs < 20.0);
    }

    #[test]
    fn paper_gradient_ascent_moves_toward_the_mle() {
        let pairs = Pairs::new(4);
        let truth = IsingTruth::new(2, 2, 2.0, &pairs);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(11);
        let states = crate::exact::sample_counts(&truth.probabilities(), 2000, &mut rng);
        let data = IsingData::new(&pairs, states);
        let mut en = Enumerator::new(pairs);
        let opts = FitOptions { l2: 0.0, max_iter: 20_000, rel_tol: 1e-7, coupling_cap: 20.0 };
        let mle = fit_mle(&mut en, &data.pair_moments, opts);
        let paper = fit_paper(&mut en, &data, opts, &mut rng);
        assert!(!mle.diverged);
        assert!(paper.nll >= mle.nll - 1e-12, "the MLE minimises the NLL");
        assert!(paper.nll - mle.nll < 1e-3, "paper {} vs mle {}", paper.nll, mle.nll);
    }
}
