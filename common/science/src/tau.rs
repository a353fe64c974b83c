//! Evaluating a fitted model at sampling temperature τ against the truth, and the
//! continuous search for τ*_rev, τ*_fwd, the heat-capacity peak and τ_var (docs/spec.md §5).
//!
//! A [`Landscape`] is the list of states (or classes of equivalent states, with their
//! multiplicities) with the fitted energy Ê and the truth's log p of each. Every quantity
//! at τ is then one pass of exponentials and sums, in log space relative to the model's
//! ground state so nothing overflows for large gaps or τ down to 0.01:
//!
//! with β = 1/τ, d = Ê − Ê_min ≥ 0, w = m·e^{−βd}, Z_s = Σw,
//! - D_rev = Σ q (log q − log p) = −β⟨d⟩_q − ln Z_s − ⟨log p⟩_q
//! - D_fwd = Σ p (log p − log q) = −S(p) + β(⟨Ê⟩_p − Ê_min) + ln Z_s
//! - S(q_τ) = β⟨d⟩_q + ln Z_s,  C(τ) = β² Var_q(Ê)
//! - dD_fwd/dβ = ⟨Ê⟩_p − ⟨Ê⟩_q,  dD_rev/dβ = β Var_q(Ê) + Cov_q(Ê, log p)
//! - κ(τ) = Cov_q(Ê/τ, −log p) = −β Cov_q(Ê, log p), and since dβ/dτ = −β²,
//!   dD_rev/dτ = −β²(β Var_q(Ê) + Cov_q(Ê, log p)) = (κ − C)/τ: the paper's appendix reads
//!   the direction of the optimal change off the sign of κ(1) − C(1) (docs/spec.md §5).
//!
//! The exact derivatives let τ* be found as a root (to ~1e-12 in ln τ) rather than as a
//! flat minimum (only ~1e-8).

use crate::exact::exp_nonpos;
use serde::{Deserialize, Serialize};

/// One point of the τ curve of a cell (docs/spec.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Sampling temperature τ.
    pub tau: f64,
    /// D(q_τ ‖ p).
    pub dkl_rev: f64,
    /// D(p ‖ q_τ).
    pub dkl_fwd: f64,
    /// S(q_τ) in nats.
    pub entropy: f64,
    /// ⟨Ê⟩ under q_τ (Ê the fitted energy at τ = 1).
    pub mean_energy: f64,
    /// C(τ) = Var_{q_τ}(Ê)/τ².
    pub heat_capacity: f64,
    /// κ(τ) = Cov_{q_τ}(Ê/τ, −log p), so that dD_rev/dτ = (κ − C)/τ (docs/spec.md §5).
    /// `None` only in results stored before κ was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa: Option<f64>,
}

/// States or classes of states with multiplicity, fitted energy and truth log-probability.
#[derive(Debug, Clone)]
pub struct Landscape {
    mult: Vec<f64>,
    energy: Vec<f64>,
    log_p: Vec<f64>,
    e_min: f64,
    truth_entropy: f64,
    truth_mean_energy: f64,
    /// Entry N−1−x equals entry x bit for bit (multiplicity, Ê and log p), N a power of two:
    /// the global spin flip of a field-free Ising truth and fit. [`Landscape::eval`] then
    /// computes the exponentials of the first half only and reuses them for the second,
    /// adding everything in the same order as before — the same bits at half the cost.
    mirrored: bool,
    /// Every multiplicity is 1 (one entry per state): the weight is the exponential itself
    /// (1·w = w exactly), and the multiplicities need not be read.
    unit_mult: bool,
}

/// Add state weight `w` (with d = Ê − Ê_min and log p) to lane `k` of the five sums.
#[inline(always)]
fn add_lane(acc: &mut [[f64; 4]; 5], k: usize, w: f64, d: f64, lp: f64) {
    acc[0][k] += w;
    acc[1][k] += w * d;
    acc[2][k] += w * d * d;
    acc[3][k] += w * lp;
    acc[4][k] += w * d * lp;
}

/// Smallest landscape worth mirroring (the four-entry two-level classes are not).
const MIRROR_MIN_LEN: usize = 64;

thread_local! {
    /// Weights of the first half of a mirrored landscape, reused for the second half.
    static HALF_WEIGHTS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Everything computed at one τ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TauEval {
    /// τ.
    pub tau: f64,
    /// D(q_τ ‖ p).
    pub dkl_rev: f64,
    /// D(p ‖ q_τ).
    pub dkl_fwd: f64,
    /// S(q_τ).
    pub entropy: f64,
    /// ⟨Ê⟩_{q_τ}.
    pub mean_energy: f64,
    /// Var_{q_τ}(Ê).
    pub var_energy: f64,
    /// C(τ) = Var_{q_τ}(Ê)/τ².
    pub heat_capacity: f64,
    /// κ(τ) = Cov_{q_τ}(Ê/τ, −log p) = −β Cov_q(Ê, log p); dD_rev/dτ = (κ − C)/τ.
    pub kappa: f64,
    /// dD_rev/dβ.
    pub d_rev_dbeta: f64,
    /// dD_fwd/dβ.
    pub d_fwd_dbeta: f64,
}

impl TauEval {
    /// The reporting-curve view of this evaluation.
    pub fn curve_point(&self) -> CurvePoint {
        CurvePoint {
            tau: self.tau,
            dkl_rev: self.dkl_rev,
            dkl_fwd: self.dkl_fwd,
            entropy: self.entropy,
            mean_energy: self.mean_energy,
            heat_capacity: self.heat_capacity,
            kappa: Some(self.kappa),
        }
    }
}

/// Round-off can leave a KL a few ulps below zero; anything beyond that is a bug.
///
/// NaN passes through unchanged in every build (`f64::max` would turn it into 0 and hide
/// it): the store refuses a NaN result, so a broken evaluation is caught, never reported
/// as a perfect fit.
fn clamp_kl(d: f64) -> f64 {
    debug_assert!(d.is_nan() || d > -1e-9, "KL divergence {d} is negative beyond round-off");
    if d.is_nan() {
        d
    } else {
        d.max(0.0)
    }
}

impl Landscape {
    /// Build from parallel arrays (multiplicities may be 0; log p must be finite).
    pub fn new(mult: Vec<f64>, energy: Vec<f64>, log_p: Vec<f64>) -> Self {
        debug_assert!(mult.len() == energy.len() && energy.len() == log_p.len());
        let e_min =
            mult.iter().zip(&energy).filter(|(&m, _)| m > 0.0).map(|(_, &e)| e).fold(f64::INFINITY, f64::min);
        let (mut s, mut me) = (0.0, 0.0);
        for ((&m, &e), &lp) in mult.iter().zip(&energy).zip(&log_p) {
            if m > 0.0 {
                let p = m * lp.exp();
                s -= p * lp;
                me += p * e;
            }
        }
        let n = energy.len();
        let mirrored = n >= MIRROR_MIN_LEN
            && n.is_power_of_two()
            && (0..n / 2).all(|x| {
                let y = n - 1 - x;
                mult[x].to_bits() == mult[y].to_bits()
                    && energy[x].to_bits() == energy[y].to_bits()
                    && log_p[x].to_bits() == log_p[y].to_bits()
            });
        let unit_mult = mult.iter().all(|&m| m == 1.0);
        Landscape { mult, energy, log_p, e_min, truth_entropy: s, truth_mean_energy: me, mirrored, unit_mult }
    }

    /// Whether evaluations reuse the first half's exponentials for the second half.
    pub fn is_mirrored(&self) -> bool {
        self.mirrored
    }

    /// One state per entry (multiplicity 1).
    pub fn from_states(energy: Vec<f64>, log_p: Vec<f64>) -> Self {
        Self::new(vec![1.0; energy.len()], energy, log_p)
    }

    /// S(p), the truth's entropy.
    pub fn truth_entropy(&self) -> f64 {
        self.truth_entropy
    }

    /// True when the model's energy is the same on every state: q_τ does not depend on τ.
    pub fn is_flat(&self) -> bool {
        self.mult.iter().zip(&self.energy).all(|(&m, &e)| m == 0.0 || e == self.e_min)
    }

    /// Evaluate at τ > 0.
    ///
    /// One pass with four interleaved accumulator lanes per sum, so the loop vectorises
    /// and its summation order is fixed (bit-identical results on any machine).
    pub fn eval(&self, tau: f64) -> TauEval {
        let beta = 1.0 / tau;
        let acc = self.accumulate(beta);
        let total = |a: &[f64; 4]| (a[0] + a[1]) + (a[2] + a[3]);
        let (z, s1, s2, l1, dl) =
            (total(&acc[0]), total(&acc[1]), total(&acc[2]), total(&acc[3]), total(&acc[4]));
        let ln_z = z.ln();
        let e1 = s1 / z;
        let var = (s2 / z - e1 * e1).max(0.0);
        let lq = l1 / z;
        let cov_e_lp = dl / z - e1 * lq;
        let entropy = beta * e1 + ln_z;
        TauEval {
            tau,
            dkl_rev: clamp_kl(-entropy - lq),
            dkl_fwd: clamp_kl(-self.truth_entropy + beta * (self.truth_mean_energy - self.e_min) + ln_z),
            entropy,
            mean_energy: self.e_min + e1,
            var_energy: var,
            heat_capacity: beta * beta * var,
            kappa: -beta * cov_e_lp,
            d_rev_dbeta: beta * var + cov_e_lp,
            d_fwd_dbeta: (self.truth_mean_energy - self.e_min) - e1,
        }
    }

    /// Lanes of Σw, Σw·d, Σw·d², Σw·log p, Σw·d·log p at β (AVX2 when the CPU has it: the
    /// same operations in the same order, so the same bits).
    fn accumulate(&self, beta: f64) -> [[f64; 4]; 5] {
        if self.mirrored {
            // The buffer is borrowed here, outside the AVX2 function: a closure inside it
            // would be compiled without AVX2.
            return HALF_WEIGHTS.with(|buf| self.accumulate_dispatch(beta, Some(&mut buf.borrow_mut())));
        }
        self.accumulate_dispatch(beta, None)
    }

    #[inline(always)]
    fn accumulate_dispatch(&self, beta: f64, half: Option<&mut Vec<f64>>) -> [[f64; 4]; 5] {
        // Class landscapes (two-level: ≤ 4 entries) gain nothing from wide vectors.
        #[cfg(target_arch = "x86_64")]
        if self.energy.len() >= 64 && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.accumulate_avx2(beta, half) };
        }
        self.accumulate_lanes(beta, half)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn accumulate_avx2(&self, beta: f64, half: Option<&mut Vec<f64>>) -> [[f64; 4]; 5] {
        self.accumulate_lanes(beta, half)
    }

    /// The generic (non-AVX2) accumulation, full or mirrored as the landscape is.
    #[cfg(test)]
    fn accumulate_generic(&self, beta: f64) -> [[f64; 4]; 5] {
        if self.mirrored {
            return HALF_WEIGHTS.with(|buf| self.accumulate_lanes(beta, Some(&mut buf.borrow_mut())));
        }
        self.accumulate_lanes(beta, None)
    }

    /// The accumulation: states in ascending order, state i into lane i mod 4, so the sums'
    /// order (and bits) never depend on the vector width. With `half` (a mirrored
    /// landscape), see [`Landscape::accumulate_mirrored`].
    #[inline(always)]
    fn accumulate_lanes(&self, beta: f64, half: Option<&mut Vec<f64>>) -> [[f64; 4]; 5] {
        match half {
            Some(w) if self.unit_mult => self.accumulate_mirrored::<true>(beta, w),
            Some(w) => self.accumulate_mirrored::<false>(beta, w),
            None => self.accumulate_full(beta),
        }
    }

    #[inline(always)]
    fn accumulate_full(&self, beta: f64) -> [[f64; 4]; 5] {
        let mut acc = [[0.0f64; 4]; 5];
        let n = self.energy.len();
        let lanes = n / 4 * 4;
        let e_min = self.e_min;
        let lane = |acc: &mut [[f64; 4]; 5], k: usize, m: f64, e: f64, lp: f64| {
            let d = e - e_min;
            add_lane(acc, k, m * exp_nonpos(-beta * d), d, lp);
        };
        for i in (0..lanes).step_by(4) {
            for k in 0..4 {
                lane(&mut acc, k, self.mult[i + k], self.energy[i + k], self.log_p[i + k]);
            }
        }
        for i in lanes..n {
            lane(&mut acc, 0, self.mult[i], self.energy[i], self.log_p[i]);
        }
        acc
    }

    /// The first half's weights are kept in `w`, and the second half's state x takes the
    /// weight of state N−1−x, which is bit-identical because its energy and multiplicity
    /// are. `UNIT`: every multiplicity is 1, so the weight is the exponential (1·w = w).
    #[inline(always)]
    fn accumulate_mirrored<const UNIT: bool>(&self, beta: f64, w: &mut Vec<f64>) -> [[f64; 4]; 5] {
        let mut acc = [[0.0f64; 4]; 5];
        let e_min = self.e_min;
        let h = self.energy.len() / 2;
        w.resize(h, 0.0);
        let (mult, energy, log_p) = (&self.mult[..h], &self.energy[..h], &self.log_p[..h]);
        // Chunks of four (h is a multiple of 4): no bounds checks, so it vectorises.
        let first = w
            .chunks_exact_mut(4)
            .zip(mult.chunks_exact(4))
            .zip(energy.chunks_exact(4).zip(log_p.chunks_exact(4)));
        for ((wc, mc), (ec, lc)) in first {
            for k in 0..4 {
                let d = ec[k] - e_min;
                let x = exp_nonpos(-beta * d);
                wc[k] = if UNIT { x } else { mc[k] * x };
                add_lane(&mut acc, k, wc[k], d, lc[k]);
            }
        }
        // State h + i + k (lane k) mirrors state h − 1 − (i + k): element 3 − k of the
        // chunks taken from the end.
        let second = w.rchunks_exact(4).zip(energy.rchunks_exact(4)).zip(log_p.rchunks_exact(4));
        for ((wc, ec), lc) in second {
            for k in 0..4 {
                add_lane(&mut acc, k, wc[3 - k], ec[3 - k] - e_min, lc[3 - k]);
            }
        }
        acc
    }

    /// The reporting curve at the given τ values.
    pub fn curve(&self, taus: &[f64]) -> Vec<CurvePoint> {
        taus.iter().map(|&t| self.eval(t).curve_point()).collect()
    }
}

/// Which divergence to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// D(q_τ ‖ p).
    Reverse,
    /// D(p ‖ q_τ).
    Forward,
}

impl Divergence {
    fn value(self, e: &TauEval) -> f64 {
        match self {
            Divergence::Reverse => e.dkl_rev,
            Divergence::Forward => e.dkl_fwd,
        }
    }
    /// dD/d(ln τ) = −β dD/dβ.
    fn slope(self, e: &TauEval) -> f64 {
        let d = match self {
            Divergence::Reverse => e.d_rev_dbeta,
            Divergence::Forward => e.d_fwd_dbeta,
        };
        -d / e.tau
    }
}

/// A minimiser of D over the search bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimum {
    /// τ*.
    pub tau: f64,
    /// D(τ*).
    pub value: f64,
    /// τ* is a search bound: D still decreases towards (or beyond) it.
    pub at_bound: bool,
}

/// A log-spaced scan over the whole search bounds, shared by every search of one model.
#[derive(Debug, Clone)]
pub struct Scan {
    evals: Vec<TauEval>,
}

/// Points per decade of the bracketing scan: fine enough that the divergences (smooth,
/// at most a few local minima) are bracketed, coarse enough to stay cheap.
const SCAN_PER_DECADE: f64 = 12.0;
/// Tolerance in ln τ of the root and minimum searches.
const LN_TAU_TOL: f64 = 1e-12;
/// Tolerance in ln τ of the heat-capacity peak: a flat maximum located by function values
/// alone cannot be pinned below ~√ε anyway, and a diagnostic needs no more.
const PEAK_LN_TAU_TOL: f64 = 1e-7;

impl Scan {
    /// Evaluate the landscape on a log-spaced scan of [lo, hi] (both included).
    pub fn new(land: &Landscape, (lo, hi): (f64, f64)) -> Self {
        let (ulo, uhi) = (lo.ln(), hi.ln());
        let n = (((uhi - ulo) / std::f64::consts::LN_10) * SCAN_PER_DECADE).ceil().max(8.0) as usize;
        let evals = (0..=n)
            .map(|i| {
                let tau = if i == 0 {
                    lo
                } else if i == n {
                    hi
                } else {
                    (ulo + (uhi - ulo) * i as f64 / n as f64).exp()
                };
                land.eval(tau)
            })
            .collect();
        Scan { evals }
    }

    /// The scanned evaluations, ascending in τ.
    pub fn evals(&self) -> &[TauEval] {
        &self.evals
    }
}

/// τ* of the given divergence: the scan brackets the global minimum, then the root of the
/// exact derivative is found by Brent's method (falling back to Brent minimisation when the
/// derivative does not change sign across the bracket). A minimiser at a bound is
/// reported as such. A model whose energy is constant has D independent of τ: τ* = 1.
pub fn optimise(land: &Landscape, scan: &Scan, which: Divergence) -> Optimum {
    let ev = scan.evals();
    let last = ev.len() - 1;
    if land.is_flat() {
        let e = land.eval(1.0);
        return Optimum { tau: 1.0, value: which.value(&e), at_bound: false };
    }
    let mut i_best = 0;
    for (i, e) in ev.iter().enumerate() {
        if which.value(e) < which.value(&ev[i_best]) {
            i_best = i;
        }
    }
    let best = &ev[i_best];
    let at = |tau: f64| land.eval(tau);
    // At a bound with D still falling towards it: the bound is the answer, flagged.
    if (i_best == 0 && which.slope(best) >= 0.0) || (i_best == last && which.slope(best) <= 0.0) {
        return Optimum { tau: best.tau, value: which.value(best), at_bound: true };
    }
    let a = ev[i_best.saturating_sub(1)];
    let b = ev[(i_best + 1).min(last)];
    let (sa, sb) = (which.slope(&a), which.slope(&b));
    let u = if sa < 0.0 && sb > 0.0 {
        brent_root(|u| which.slope(&at(u.exp())), a.tau.ln(), b.tau.ln(), sa, sb, LN_TAU_TOL)
    } else {
        brent_min(|u| which.value(&at(u.exp())), a.tau.ln(), b.tau.ln(), LN_TAU_TOL)
    };
    let e = at(u.exp());
    // Never report something worse than the scan already found.
    let (tau, value) = if which.value(&e) <= which.value(best) {
        (e.tau, which.value(&e))
    } else {
        (best.tau, which.value(best))
    };
    let (lo, hi) = (ev[0].tau, ev[last].tau);
    let at_bound = (tau.ln() - lo.ln()).abs() < 1e-9 || (tau.ln() - hi.ln()).abs() < 1e-9;
    Optimum { tau, value, at_bound }
}

/// τ at the maximum of the heat capacity C(τ) inside the bounds; `None` for a flat model.
pub fn heat_capacity_peak(land: &Landscape, scan: &Scan) -> Option<f64> {
    if land.is_flat() {
        return None;
    }
    let ev = scan.evals();
    let last = ev.len() - 1;
    let mut i_best = 0;
    for (i, e) in ev.iter().enumerate() {
        if e.heat_capacity > ev[i_best].heat_capacity {
            i_best = i;
        }
    }
    let (a, b) = (ev[i_best.saturating_sub(1)].tau.ln(), ev[(i_best + 1).min(last)].tau.ln());
    let u = brent_min(|u| -land.eval(u.exp()).heat_capacity, a, b, PEAK_LN_TAU_TOL);
    let e = land.eval(u.exp());
    Some(if e.heat_capacity >= ev[i_best].heat_capacity { e.tau } else { ev[i_best].tau })
}

/// The variance-match temperature: E_{q_τ}[(Ê − μ_d)²] = s_d² (docs/spec.md §5), where μ_d and s_d²
/// are the mean and (population) variance of Ê over the training data. Of several roots
/// the one closest to τ = 1 (in ln τ) is returned; `None` when there is none in the bounds.
pub fn variance_match(land: &Landscape, scan: &Scan, mu_d: f64, s2_d: f64) -> Option<f64> {
    let g = |e: &TauEval| e.var_energy + (e.mean_energy - mu_d).powi(2) - s2_d;
    let ev = scan.evals();
    let mut best: Option<f64> = None;
    let mut consider = |tau: f64| {
        if best.is_none_or(|b: f64| tau.ln().abs() < b.ln().abs()) {
            best = Some(tau);
        }
    };
    for w in ev.windows(2) {
        let (ga, gb) = (g(&w[0]), g(&w[1]));
        if ga == 0.0 {
            consider(w[0].tau);
        } else if ga * gb < 0.0 {
            let u = brent_root(|u| g(&land.eval(u.exp())), w[0].tau.ln(), w[1].tau.ln(), ga, gb, LN_TAU_TOL);
            consider(u.exp());
        }
    }
    if let Some(e) = ev.last() {
        if g(e) == 0.0 {
            consider(e.tau);
        }
    }
    best
}

/// Brent's root finder (zeroin) on [a, b] with f(a)·f(b) ≤ 0; `fa`, `fb` given.
pub fn brent_root(mut f: impl FnMut(f64) -> f64, a: f64, b: f64, fa: f64, fb: f64, tol: f64) -> f64 {
    let (mut a, mut b, mut fa, mut fb) = (a, b, fa, fb);
    let (mut c, mut fc) = (a, fa);
    let (mut d, mut e) = (b - a, b - a);
    for _ in 0..200 {
        if (fb > 0.0) == (fc > 0.0) && fb != 0.0 && fc != 0.0 {
            c = a;
            fc = fa;
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol1 = 2.0 * f64::EPSILON * b.abs() + 0.5 * tol;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol1 || fb == 0.0 {
            return b;
        }
        if e.abs() >= tol1 && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * xm * s;
                q = 1.0 - s;
            } else {
                let qq = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * xm * qq * (qq - r) - (b - a) * (r - 1.0));
                q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            }
            p = p.abs();
            if 2.0 * p < (3.0 * xm * q - (tol1 * q).abs()) && p < (0.5 * e * q).abs() {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        a = b;
        fa = fb;
        b += if d.abs() > tol1 { d } else { tol1.copysign(xm) };
        fb = f(b);
    }
    b
}

/// Brent's derivative-free minimiser (localmin) on [a, b].
pub fn brent_min(mut f: impl FnMut(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
    const GOLD: f64 = 0.381_966_011_250_105_1; // (3 − √5)/2
    let eps = f64::EPSILON.sqrt();
    let (mut a, mut b) = (a.min(b), a.max(b));
    let mut x = a + GOLD * (b - a);
    let (mut w, mut v) = (x, x);
    let mut fx = f(x);
    let (mut fw, mut fv) = (fx, fx);
    let (mut d, mut e): (f64, f64) = (0.0, 0.0);
    for _ in 0..200 {
        let xm = 0.5 * (a + b);
        let tol1 = eps * x.abs() + tol / 3.0;
        let tol2 = 2.0 * tol1;
        if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol1 {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let etemp = e;
            if p.abs() < (0.5 * q * etemp).abs() && p > q * (a - x) && p < q * (b - x) {
                e = d;
                d = p / q;
                let u = x + d;
                if (u - a) < tol2 || (b - u) < tol2 {
                    d = tol1.copysign(xm - x);
                }
                golden = false;
            }
        }
        if golden {
            e = if x >= xm { a - x } else { b - x };
            d = GOLD * e;
        }
        let u = x + if d.abs() >= tol1 { d } else { tol1.copysign(d) };
        let fu = f(u);
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            v = w;
            fv = fw;
            w = x;
            fw = fx;
            x = u;
            fx = fu;
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                v = w;
                fv = fw;
                w = u;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A truth over a few states and its exact log-probabilities at temperature 1.
    fn truth(energies: &[f64]) -> Vec<f64> {
        let lz = crate::exact::log_sum_exp(&energies.iter().map(|e| -e).collect::<Vec<_>>());
        energies.iter().map(|e| -e - lz).collect()
    }

    #[test]
    fn both_divergences_vanish_when_the_model_is_the_truth_at_tau_one() {
        let e = vec![0.0, 0.3, 1.7, 2.0, 5.5];
        let land = Landscape::from_states(e.clone(), truth(&e));
        let r = land.eval(1.0);
        assert!(r.dkl_rev.abs() < 1e-14 && r.dkl_fwd.abs() < 1e-14, "{r:?}");
    }

    #[test]
    fn rescaled_truth_has_optimum_at_the_scale_factor() {
        // q_τ ∝ exp(−c·E/τ) equals p ∝ exp(−E) exactly at τ = c.
        let e = vec![0.0, 0.3, 1.7, 2.0, 5.5, 0.9];
        let lp = truth(&e);
        for c in [0.05, 0.8, 1.3, 7.0] {
            let land = Landscape::from_states(e.iter().map(|x| x * c).collect(), lp.clone());
            let scan = Scan::new(&land, (0.01, 100.0));
            for which in [Divergence::Reverse, Divergence::Forward] {
                let o = optimise(&land, &scan, which);
                assert!((o.tau - c).abs() < 1e-9 * c, "{which:?} c={c}: {o:?}");
                assert!(!o.at_bound);
                assert!(o.value < 1e-14);
            }
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let e = vec![0.0, 0.4, 1.1, 3.0];
        let lp = truth(&[0.0, 1.0, 0.5, 2.5]);
        let land = Landscape::from_states(e, lp);
        for tau in [0.1, 0.7, 1.0, 3.0] {
            let beta = 1.0 / tau;
            let h = 1e-6;
            let (p, m) = (land.eval(1.0 / (beta + h)), land.eval(1.0 / (beta - h)));
            let r = land.eval(tau);
            assert!(((p.dkl_rev - m.dkl_rev) / (2.0 * h) - r.d_rev_dbeta).abs() < 1e-6);
            assert!(((p.dkl_fwd - m.dkl_fwd) / (2.0 * h) - r.d_fwd_dbeta).abs() < 1e-6);
        }
    }

    #[test]
    fn clamp_kl_keeps_nan_visible_and_clips_round_off() {
        assert!(clamp_kl(f64::NAN).is_nan());
        assert_eq!(clamp_kl(-1e-15), 0.0);
        assert_eq!(clamp_kl(0.25), 0.25);
    }

    #[test]
    fn kappa_minus_c_is_the_tau_slope_of_d_rev() {
        // dD_rev/dτ = (κ − C)/τ at every τ, checked by central differences in τ.
        let e = vec![0.0, 0.4, 1.1, 3.0, 0.2];
        let lp = truth(&[0.0, 1.0, 0.5, 2.5, 4.0]);
        let land = Landscape::from_states(e, lp);
        for tau in [0.3, 1.0, 2.5] {
            let h = 1e-6 * tau;
            let slope = (land.eval(tau + h).dkl_rev - land.eval(tau - h).dkl_rev) / (2.0 * h);
            let r = land.eval(tau);
            assert!(((r.kappa - r.heat_capacity) / tau - slope).abs() < 1e-7, "τ={tau}: {r:?} vs {slope}");
        }
    }

    #[test]
    fn a_minimum_beyond_the_bounds_is_flagged_at_bound() {
        // The model is the truth's energy times 200: the optimum τ = 200 lies above the bound 100.
        let e = vec![0.0, 1.0, 2.0];
        let land = Landscape::from_states(e.iter().map(|x| x * 200.0).collect(), truth(&e));
        let scan = Scan::new(&land, (0.01, 100.0));
        let o = optimise(&land, &scan, Divergence::Forward);
        assert!(o.at_bound && o.tau == 100.0, "{o:?}");
    }

    #[test]
    fn vectorised_accumulation_is_bit_identical_to_the_generic_code() {
        let e: Vec<f64> = (0..1001).map(|i| ((i as f64) * 0.61).sin() * 4.0).collect();
        let lp = truth(&e.iter().map(|x| x * 0.7).collect::<Vec<_>>());
        let land = Landscape::from_states(e, lp);
        for beta in [0.01, 1.0, 37.0] {
            let (a, b) = (land.accumulate(beta), land.accumulate_generic(beta));
            assert!(a.iter().flatten().zip(b.iter().flatten()).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[test]
    fn a_mirrored_landscape_gives_the_bits_of_the_full_accumulation() {
        // A flip-symmetric landscape of 2^10 states, as a field-free Ising model gives.
        let n = 1usize << 10;
        let half: Vec<f64> = (0..n / 2).map(|i| ((i as f64) * 0.61).sin() * 4.0).collect();
        let e: Vec<f64> = (0..n).map(|x| half[x.min(n - 1 - x)]).collect();
        let lp = truth(&e.iter().map(|x| x * 0.7).collect::<Vec<_>>());
        let land = Landscape::from_states(e.clone(), lp.clone());
        assert!(land.is_mirrored());
        for beta in [0.01, 1.0, 37.0] {
            let full = land.accumulate_lanes(beta, None);
            let mut buf = Vec::new();
            let mirrored = land.accumulate_lanes(beta, Some(&mut buf));
            assert!(full
                .iter()
                .flatten()
                .zip(mirrored.iter().flatten())
                .all(|(x, y)| x.to_bits() == y.to_bits()));
            assert_eq!(land.eval(1.0 / beta), land.eval(1.0 / beta));
            let dispatched = land.accumulate(beta);
            assert!(full
                .iter()
                .flatten()
                .zip(dispatched.iter().flatten())
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        // One entry off by an ulp: not mirrored, so never approximated.
        let mut e2 = e;
        e2[n - 1] = f64::from_bits(e2[n - 1].to_bits() + 1);
        assert!(!Landscape::from_states(e2, lp).is_mirrored());
        // Too small, or not a power of two: not mirrored.
        assert!(!Landscape::from_states(vec![1.0; 32], vec![-(32f64).ln(); 32]).is_mirrored());
        assert!(!Landscape::from_states(vec![1.0; 96], vec![-(96f64).ln(); 96]).is_mirrored());
    }

    #[test]
    fn brent_root_and_min_are_accurate() {
        let r = brent_root(|x| x * x - 2.0, 0.0, 2.0, -2.0, 2.0, 1e-14);
        assert!((r - 2f64.sqrt()).abs() < 1e-13);
        let m = brent_min(|x| (x - 0.3).powi(2) + 1.0, -1.0, 2.0, 1e-12);
        assert!((m - 0.3).abs() < 1e-7);
    }
}
