//! τ*_rev, τ*_fwd and the divergences by Monte Carlo, with error bars (docs/spec.md §10).
//!
//! The fitted model q is sampled by parallel tempering on a ladder from β = 0 to 1/τ_lo
//! (heat-bath sweeps, plus Wolff moves when q has no field and no negative coupling), and
//! MBAR turns the ladder into ln Z_q(β) and averages at every β in between. With the truth's
//! side known — ⟨Ê⟩_p, ⟨E_p⟩_p and ln Z_p, from enumeration, Kaufman's formula or samples —
//! (p ∝ e^{−E_p}, q_β ∝ e^{−βÊ}):
//! - D_rev(β) = ⟨E_p⟩_q − β⟨Ê⟩_q − ln Z_q(β) + ln Z_p, with dD_rev/dβ = β Var_q(Ê) − Cov_q(Ê, E_p);
//! - D_fwd(β) = β⟨Ê⟩_p + ln Z_q(β) − ⟨E_p⟩_p − ln Z_p, with dD_fwd/dβ = ⟨Ê⟩_p − ⟨Ê⟩_q;
//! - C(β) = β² Var_q(Ê).
//!
//! τ* is where the derivative changes sign from − to + (in β), found by Brent's method on
//! the reweighted curves — continuous, not a grid argmin; of several minima of D_rev the
//! lowest. Error bars: the block bootstrap of [`super::mbar::bootstrap_se`], the roots found
//! again in every resample.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::diagnostics::LadderDiagnostics;
use super::mbar::{bootstrap_se, Mbar, Resample, Reweighted, Reweighter};
use super::model::SpinModel;
use super::replica::{Ensemble, Replica, SpinEnsemble};
use super::stats::autocorrelation;
use super::tempering::{place_ladder, Tempering};
use crate::tau::brent_root;

/// The truth's side of the divergences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthSide {
    /// ⟨Ê⟩_p: the fitted model's energy averaged over the truth.
    pub mean_model_energy: f64,
    /// ⟨E_p⟩_p.
    pub mean_truth_energy: f64,
    /// ln Z_p.
    pub log_z: f64,
}

/// How long and how finely to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct McOptions {
    /// τ range [lo, hi] of the search (the ladder runs to β = 1/lo).
    pub tau_bounds: (f64, f64),
    /// PT steps recorded (after `burn_in`).
    pub steps: usize,
    /// PT steps discarded first.
    pub burn_in: usize,
    /// Sweeps per pilot run of the ladder placement.
    pub pilot_sweeps: usize,
    /// Bootstrap resamples (docs/spec.md §10: at least 200 for reported error bars).
    pub resamples: usize,
    /// Smallest acceptable neighbour swap acceptance.
    pub min_swap_acceptance: f64,
    /// Fewest acceptable round trips (all ladders together).
    pub min_round_trips: u64,
    /// Independent ladders (each runs `steps / ladders` steps after its own burn-in); with
    /// two or more, R̂ compares them.
    pub ladders: usize,
    /// Largest acceptable R̂.
    pub max_r_hat: f64,
    /// Use this ladder instead of placing one (tests of the diagnostics; expert use).
    pub ladder: Option<Vec<f64>>,
    /// τ values of the reported curve; those outside `tau_bounds` (where the ladder has no
    /// samples to reweight) are left out.
    pub curve: Vec<f64>,
    /// Run the ladders in parallel on rayon's threads, each on its own ChaCha8 stream seeded
    /// from the caller's generator (32 bytes per ladder, drawn in ladder order before any
    /// runs): bit-identical on any thread count, but not the numbers of the sequential
    /// order, where every ladder draws from the caller's generator in turn. `diagnose` sets
    /// it (one protein-size model, every core free); cells keep the sequential order, since
    /// a worker already runs one cell per core and a resumed study must reproduce its
    /// stored cells bit for bit.
    pub parallel_ladders: bool,
}

impl Default for McOptions {
    fn default() -> Self {
        McOptions {
            tau_bounds: (0.2, 5.0),
            steps: 4_000,
            burn_in: 400,
            pilot_sweeps: 100,
            resamples: 200,
            min_swap_acceptance: 0.1,
            min_round_trips: 4,
            ladders: 2,
            max_r_hat: 1.05,
            ladder: None,
            curve: Vec::new(),
            parallel_ladders: false,
        }
    }
}

/// A value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WithSe {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub se: f64,
}

/// The result of [`estimate`].
#[derive(Debug, Clone, PartialEq)]
pub struct McTau {
    /// τ*_rev.
    pub tau_rev: WithSe,
    /// τ*_fwd.
    pub tau_fwd: WithSe,
    /// D_rev at τ*_rev.
    pub dkl_rev_opt: WithSe,
    /// D_fwd at τ*_fwd.
    pub dkl_fwd_opt: WithSe,
    /// D_rev at τ = 1.
    pub dkl_rev_at_1: WithSe,
    /// D_fwd at τ = 1.
    pub dkl_fwd_at_1: WithSe,
    /// C at τ = 1.
    pub heat_capacity_at_1: WithSe,
    /// κ at τ = 1 (κ(1) > C(1): D_rev falls when the model is cooled).
    pub kappa_at_1: WithSe,
    /// ln Z_q at the top of the ladder by MBAR minus the same by thermodynamic integration
    /// ([`super::ti`]): the cross-check of the partition function every D rests on. A gap
    /// beyond its noise is a diagnostic failure. `None` for the multicanonical sampler (one
    /// reweighting gives both, so the check would compare a number with itself; its checks
    /// are the walkers' round trips and their agreement on ln g).
    pub log_z_ti_gap: Option<WithSe>,
    /// The quadrature error estimate of the thermodynamic integration (|quintic − cubic|
    /// Hermite rule, summed over the ladder's gaps); `None` with `log_z_ti_gap`.
    pub log_z_ti_quadrature: Option<f64>,
    /// The curve at [`McOptions::curve`]'s τ values inside the search range.
    pub curve: Vec<McCurvePoint>,
    /// Whether τ*_rev / τ*_fwd sit at a bound of the search (no sign change inside).
    pub at_bound: (bool, bool),
    /// The ladder (empty for the multicanonical sampler).
    pub betas: Vec<f64>,
    /// How the run went: swaps, round trips, R̂, τ_int, the equilibrated range, and whether
    /// every check (the sampling's, MBAR's, the TI cross-check, the precision target) held.
    pub diagnostics: LadderDiagnostics,
    /// When the diagnostics failed: τ*_fwd from the equilibrated rungs alone (MBAR on them,
    /// the search over [`LadderDiagnostics::equilibrated_tau_lo`], hi]), when it lies inside them.
    ///
    /// Why this can be trusted when the cell as a whole cannot: D_fwd(β) = β⟨Ê⟩_p +
    /// ln Z_q(β) + const is convex in β (ln Z is), so a minimum inside [0, β_eq] is the
    /// minimum over all β — and it needs only ln Z_q and ⟨Ê⟩_q up to β_eq, which the
    /// equilibrated rungs give. D_rev has no such property (its minimum over the warm part
    /// says nothing about the cold part), so τ*_rev gets no counterpart. `None` when the
    /// diagnostics held (use `tau_fwd`), when every rung passed on its own (the failure was
    /// the whole ladder's: round trips, the TI cross-check, the precision target), when the
    /// equilibrated rungs fail their own TI cross-check, or when the minimum is not inside
    /// the equilibrated range.
    pub tau_fwd_equilibrated: Option<WithSe>,
}

/// One τ of the curve, every value with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McCurvePoint {
    /// τ.
    pub tau: f64,
    /// D(q_τ ‖ p).
    pub dkl_rev: WithSe,
    /// D(p ‖ q_τ).
    pub dkl_fwd: WithSe,
    /// S(q_τ).
    pub entropy: WithSe,
    /// ⟨Ê⟩_{q_τ}.
    pub mean_energy: WithSe,
    /// C(τ).
    pub heat_capacity: WithSe,
    /// κ(τ).
    pub kappa: WithSe,
}

/// The curves at one β, from MBAR and the truth's side.
pub(super) struct At {
    pub(super) r: Reweighted,
    pub(super) beta: f64,
}

impl At {
    fn d_rev(&self, t: &TruthSide) -> f64 {
        self.r.mean_observable - self.beta * self.r.mean_energy - self.r.log_z + t.log_z
    }
    fn d_fwd(&self, t: &TruthSide) -> f64 {
        self.beta * t.mean_model_energy + self.r.log_z - t.mean_truth_energy - t.log_z
    }
    fn slope_rev(&self) -> f64 {
        self.beta * self.r.var_energy - self.r.cov_energy_observable
    }
    fn slope_fwd(&self, t: &TruthSide) -> f64 {
        t.mean_model_energy - self.r.mean_energy
    }
}

/// A TI cross-check fails when |MBAR − TI| exceeds this many standard errors, plus the
/// quadrature's own error estimate (which the bootstrap does not see), plus
/// [`TI_TOLERANCE_ABS`].
const TI_TOLERANCE_SE: f64 = 5.0;
/// See [`TI_TOLERANCE_SE`].
const TI_TOLERANCE_ABS: f64 = 0.01;

/// Points of the bracketing scan per decade of τ.
const SCAN_PER_DECADE: f64 = 12.0;

/// τ* (as β) of one divergence on the reweighted curves: (β*, at a bound).
pub(super) fn optimum<M: Reweighter + ?Sized>(
    m: &M,
    lo_beta: f64,
    hi_beta: f64,
    slope: &dyn Fn(&At) -> f64,
    value: &dyn Fn(&At) -> f64,
) -> (f64, bool) {
    let at = |b: f64| At { r: m.at(b), beta: b };
    let n = (((hi_beta / lo_beta).log10() * SCAN_PER_DECADE).ceil() as usize).max(8);
    let grid: Vec<f64> =
        (0..=n).map(|i| (lo_beta.ln() + (hi_beta / lo_beta).ln() * i as f64 / n as f64).exp()).collect();
    let slopes: Vec<f64> = grid.iter().map(|&b| slope(&at(b))).collect();
    let mut best: Option<(f64, f64)> = None;
    for i in 0..n {
        if slopes[i] < 0.0 && slopes[i + 1] >= 0.0 {
            let u = brent_root(
                |u| slope(&at(u.exp())),
                grid[i].ln(),
                grid[i + 1].ln(),
                slopes[i],
                slopes[i + 1],
                1e-10,
            );
            let b = u.exp();
            let v = value(&at(b));
            if best.is_none_or(|(_, bv)| v < bv) {
                best = Some((b, v));
            }
        }
    }
    match best {
        Some((b, _)) => (b, false),
        // No interior minimum: D is monotone in β over the range; the lower end wins.
        None => {
            let (vl, vh) = (value(&at(lo_beta)), value(&at(hi_beta)));
            (if vl <= vh { lo_beta } else { hi_beta }, true)
        }
    }
}

/// Gelman–Rubin R̂ of m ≥ 2 series of equal length: √(V̂/W) with W the mean within-series
/// variance and V̂ = (n−1)/n W + B/n, B = n·Var(series means). 1 for a single series, or
/// when every series is constant and they agree; ∞ when constant series disagree.
pub fn gelman_rubin(series: &[&[f64]]) -> f64 {
    let m = series.len();
    let n = series.iter().map(|s| s.len()).min().unwrap_or(0);
    if m < 2 || n < 2 {
        return 1.0;
    }
    let stats: Vec<(f64, f64)> = series.iter().map(|s| super::stats::mean_var(&s[..n])).collect();
    let nf = n as f64;
    // Unbiased within-series variances.
    let w = stats.iter().map(|&(_, v)| v * nf / (nf - 1.0)).sum::<f64>() / m as f64;
    let grand = stats.iter().map(|&(mu, _)| mu).sum::<f64>() / m as f64;
    let b = nf * stats.iter().map(|&(mu, _)| (mu - grand).powi(2)).sum::<f64>() / (m as f64 - 1.0);
    let scale = grand.abs().max(1.0);
    if w <= (super::stats::CONSTANT_RELATIVE_SPREAD * scale).powi(2) {
        return if b <= (super::stats::CONSTANT_RELATIVE_SPREAD * scale).powi(2) * nf {
            1.0
        } else {
            f64::INFINITY
        };
    }
    (((nf - 1.0) / nf * w + b / nf) / w).sqrt()
}

/// The mean of a block-bootstrap resample of `x` (blocks of `block` consecutive values).
pub(crate) fn block_resampled_mean<R: Rng>(x: &[f64], block: usize, rng: &mut R) -> f64 {
    let block = block.clamp(1, x.len());
    let (mut sum, mut n) = (0.0, 0usize);
    while n < x.len() {
        let start = rng.random_range(0..=x.len() - block);
        sum += x[start..start + block].iter().sum::<f64>();
        n += block;
    }
    sum / n as f64
}

/// The statistics every bootstrap resample recomputes.
pub(crate) fn statistics<M: Reweighter + ?Sized>(
    m: &M,
    truth: &TruthSide,
    bounds: (f64, f64),
    curve: &[f64],
) -> (Vec<f64>, (bool, bool)) {
    let (lo_beta, hi_beta) = (1.0 / bounds.1, 1.0 / bounds.0);
    let at = |b: f64| At { r: m.at(b), beta: b };
    let (b_rev, rev_bound) = optimum(m, lo_beta, hi_beta, &|a| a.slope_rev(), &|a| a.d_rev(truth));
    let (b_fwd, fwd_bound) = optimum(m, lo_beta, hi_beta, &|a| a.slope_fwd(truth), &|a| a.d_fwd(truth));
    let one = at(1.0);
    let mut out = vec![
        1.0 / b_rev,
        1.0 / b_fwd,
        at(b_rev).d_rev(truth),
        at(b_fwd).d_fwd(truth),
        one.d_rev(truth),
        one.d_fwd(truth),
        one.r.var_energy,
        one.r.cov_energy_observable,
    ];
    for &tau in curve {
        let a = at(1.0 / tau);
        out.extend([
            a.d_rev(truth),
            a.d_fwd(truth),
            a.beta * a.r.mean_energy + a.r.log_z,
            a.r.mean_energy,
            a.beta * a.beta * a.r.var_energy,
            // κ = Cov(Ê/τ, −log p) = β Cov(Ê, E_p).
            a.beta * a.r.cov_energy_observable,
        ]);
    }
    (out, (rev_bound, fwd_bound))
}

/// Numbers of [`statistics`] before the curve's.
const SCALARS: usize = 8;

/// [`estimate`] until the standard errors of τ*_rev and τ*_fwd are at most `target_se`:
/// the steps double from `opts.steps` until they are, or until the next run would pass
/// `max_steps`. Each run starts afresh from the generator's next state (deterministic; the
/// total cost is below twice that of the last run). Returns the last estimate (its
/// `diagnostics.steps` are the steps it took), whose note says when the target was missed. A τ* whose standard error is exactly 0 (an identity
/// such as the rescaled truth's κ = C) meets any target.
#[allow(clippy::too_many_arguments)]
pub fn estimate_to_precision<E: Ensemble + ?Sized, R: Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    truth: TruthSide,
    truth_samples: Option<&[f64]>,
    opts: &McOptions,
    target_se: f64,
    max_steps: usize,
    rng: &mut R,
) -> McTau {
    let mut opts = opts.clone();
    let run = to_precision(opts.steps, target_se, max_steps, "steps", &mut |steps| {
        opts.steps = steps;
        Ok::<_, std::convert::Infallible>(estimate_ensemble(
            q,
            truth_energy,
            truth,
            truth_samples,
            &opts,
            rng,
        ))
    });
    match run {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// The precision loop of either sampler: `run(steps)` from `steps` on, doubling, until the
/// standard errors of τ*_rev and τ*_fwd are at most `target_se` or the next run would pass
/// `max_steps` (then the last estimate's note says the target was missed, counting in
/// `unit`). The first error of a run ends the loop.
pub fn to_precision<Err>(
    mut steps: usize,
    target_se: f64,
    max_steps: usize,
    unit: &str,
    run: &mut dyn FnMut(usize) -> Result<McTau, Err>,
) -> Result<McTau, Err> {
    loop {
        let mut r = run(steps)?;
        let worst = r.tau_rev.se.max(r.tau_fwd.se);
        if worst <= target_se {
            return Ok(r);
        }
        if steps * 2 > max_steps {
            let missed = format!(
                "τ* standard error {worst:.3e} above the target {target_se:.3e} after {steps} {unit} (budget {max_steps})"
            );
            r.diagnostics.fail(missed);
            return Ok(r);
        }
        steps *= 2;
    }
}

/// τ*_fwd (with its bootstrap error) from the rungs of a ladder that passed their own
/// diagnostics ([`McTau::tau_fwd_equilibrated`]): `None` for fewer than two rungs, a warm
/// end that does not reach below `hi`, MBAR that does not converge, ln Z at the top of
/// these rungs by MBAR and by thermodynamic integration disagreeing (the whole ladder's
/// cross-check, on the part that is used), or a minimum at the edge of the equilibrated
/// range.
#[allow(clippy::too_many_arguments)]
fn fwd_on_equilibrated_rungs(
    betas: &[f64],
    energies: &[Vec<f64>],
    observables: &[Vec<f64>],
    log_z0: f64,
    rung_tau_int: &[f64],
    hi: f64,
    truth: &TruthSide,
    truth_samples: Option<(&[f64], usize)>,
    resamples: usize,
) -> Option<WithSe> {
    let (lo_beta, hi_beta) = (1.0 / hi, *betas.last()?);
    if betas.len() < 2 || hi_beta <= lo_beta {
        return None;
    }
    let point = Mbar::solve(betas, energies, observables, log_z0, None);
    if !point.converged {
        return None;
    }
    let fwd =
        |m: &Mbar, side: &TruthSide| optimum(m, lo_beta, hi_beta, &|a| a.slope_fwd(side), &|a| a.d_fwd(side));
    let (beta_star, at_bound) = fwd(&point, truth);
    if at_bound {
        return None;
    }
    let stat = |m: &Mbar, _: &[Vec<f64>], which: Resample| {
        let mut side = *truth;
        if let (Some((series, block)), Resample::Drawn(seed)) = (truth_samples, which) {
            let mut side_rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            side.mean_model_energy = block_resampled_mean(series, block, &mut side_rng);
        }
        let (ti, quadrature) = super::ti::log_z_ladder(m.betas(), energies, log_z0);
        vec![1.0 / fwd(m, &side).0, m.at(hi_beta).log_z - ti[ti.len() - 1], quadrature[quadrature.len() - 1]]
    };
    let block = (4.0 * rung_tau_int.iter().copied().fold(0.5, f64::max)).ceil() as usize;
    // Its own generator, seeded by the estimate: the caller's stream stays as it was.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(beta_star.to_bits());
    let (est, se) = bootstrap_se(&point, energies, observables, log_z0, block, resamples, &mut rng, &stat);
    if est[1].abs() > TI_TOLERANCE_SE * se[1] + est[2] + TI_TOLERANCE_ABS {
        return None;
    }
    Some(WithSe { value: est[0], se: se[0] })
}

/// The samples of [`run_ladders`]: per rung, the energies and the observable at every
/// recorded step (all ladders concatenated), what MBAR needs, and the convergence
/// diagnostics of docs/spec.md §10 with the notes of those that failed.
#[derive(Debug, Clone)]
pub struct LadderRun {
    /// The ladder (ascending from β = 0).
    pub betas: Vec<f64>,
    /// Per rung: E of the sampled model at every recorded step.
    pub energies: Vec<Vec<f64>>,
    /// Per rung: the observable at every recorded step.
    pub observables: Vec<Vec<f64>>,
    /// ln Z at β = 0 (ln of the number of configurations).
    pub log_z0: f64,
    /// The run's diagnostics; `ok` and `note` say how the sampling went (τ_int, swaps,
    /// round trips, R̂). What uses the samples adds its own checks with
    /// [`LadderDiagnostics::fail`].
    pub diagnostics: LadderDiagnostics,
    /// How many rungs from β = 0 up passed on their own: each one's τ_int converged in every
    /// ladder and its R̂ is within bounds, and each gap between them swapped at least
    /// `min_swap_acceptance`. All of them when every diagnostic held; fewer when the cold
    /// end did not equilibrate (what [`estimate_ensemble`] can still say then: see
    /// [`McTau::tau_fwd_equilibrated`]).
    pub equilibrated_rungs: usize,
    /// Per rung: the largest τ_int (PT steps) of its energy over the ladders.
    pub rung_tau_int: Vec<f64>,
}

/// Place a ladder for `model` up to β = 1/τ_lo (or take `opts.ladder`) and run
/// `opts.ladders` independent tempering runs on it, recording every rung's energy and
/// `observable` after each ladder's burn-in; then check τ_int, swap acceptance, round
/// trips and R̂ against `opts`.
pub fn run_ladders<E: Ensemble + ?Sized, R: Rng>(
    model: &E,
    observable: &(dyn Fn(&E::Config) -> f64 + Sync),
    opts: &McOptions,
    rng: &mut R,
) -> LadderRun {
    run_ladders_reporting(model, observable, opts, rng, &mut |_| {})
}

/// Where a long Monte Carlo run is, for a progress display (no effect on the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McProgress {
    /// The ladder is placed, with this many rungs.
    LadderPlaced {
        /// Rungs.
        rungs: usize,
    },
    /// Tempering steps done, all ladders together, of `total` (burn-in included).
    Steps {
        /// Steps done.
        done: usize,
        /// Steps in all.
        total: usize,
    },
    /// Sampling is over; the bootstrap of the error bars runs.
    Bootstrap,
}

/// Tempering steps between progress reports (and, with parallel ladders, between the
/// points where the ladders wait for each other).
const PROGRESS_STEPS: usize = 100;

/// One tempering run on the ladder with its random stream (the caller's, or its own) and
/// the series it records after the burn-in.
struct Ladder<C, G> {
    pt: Tempering<C>,
    rng: G,
    energies: Vec<Vec<f64>>,
    observables: Vec<Vec<f64>>,
}

/// What a finished ladder leaves: its series and its swap statistics.
struct LadderOutcome {
    energies: Vec<Vec<f64>>,
    observables: Vec<Vec<f64>>,
    swap_acceptance: Vec<f64>,
    round_trips: u64,
}

impl<C: Replica, G: Rng> Ladder<C, G> {
    /// Steps `steps` (numbered from the start of the run), recording every rung after
    /// `burn_in`.
    fn advance(
        &mut self,
        steps: std::ops::Range<usize>,
        burn_in: usize,
        observable: &dyn Fn(&C::Config) -> f64,
    ) {
        for step in steps {
            self.pt.step(&mut self.rng);
            if step >= burn_in {
                for (j, s) in self.pt.sample(observable).into_iter().enumerate() {
                    self.energies[j].push(s.energy);
                    self.observables[j].push(s.observable);
                }
            }
        }
    }

    fn finish(self) -> LadderOutcome {
        LadderOutcome {
            swap_acceptance: self.pt.swap_acceptance(),
            round_trips: self.pt.round_trips(),
            energies: self.energies,
            observables: self.observables,
        }
    }
}

/// [`run_ladders`], calling `progress` when the ladder is placed and every 100 steps.
pub fn run_ladders_reporting<E: Ensemble + ?Sized, R: Rng>(
    model: &E,
    observable: &(dyn Fn(&E::Config) -> f64 + Sync),
    opts: &McOptions,
    rng: &mut R,
    progress: &mut dyn FnMut(McProgress),
) -> LadderRun {
    let (lo, hi) = opts.tau_bounds;
    let mut notes = Vec::new();
    let placed = match &opts.ladder {
        Some(l) => Some(l.clone()),
        None => place_ladder(model, 1.0 / lo, opts.pilot_sweeps, rng),
    };
    let betas = match placed {
        Some(b) => b,
        None => {
            notes.push(format!("the ladder to β = {} needs more than the allowed rungs", 1.0 / lo));
            vec![0.0, 1.0 / hi, 1.0, 1.0 / lo]
        }
    };
    // `ladders` independent runs on the same ladder, each `steps / ladders` recorded steps;
    // their series are concatenated per rung for MBAR, and compared for R̂.
    let k = betas.len();
    let ladders = opts.ladders.max(1);
    let per_ladder = (opts.steps / ladders).max(2);
    let (mut es, mut obs) = (super::empty_series(k, opts.steps), super::empty_series(k, opts.steps));
    let (mut min_swap, mut round_trips, mut tau_int, mut unconverged) = (f64::INFINITY, 0, 0.5f64, false);
    // Per rung: converged in every ladder; per gap: the smallest swap acceptance of any ladder.
    let (mut rung_converged, mut rung_tau_int, mut gap_swap) =
        (vec![true; k], vec![0.5f64; k], vec![f64::INFINITY; k.saturating_sub(1)]);
    progress(McProgress::LadderPlaced { rungs: k });
    let len = opts.burn_in + per_ladder;
    let total = ladders * len;
    let series = || (super::empty_series(k, per_ladder), super::empty_series(k, per_ladder));
    let outcomes: Vec<LadderOutcome> = if opts.parallel_ladders {
        let seeds: Vec<[u8; 32]> = (0..ladders)
            .map(|_| {
                let mut s = [0u8; 32];
                rng.fill(&mut s);
                s
            })
            .collect();
        let mut running: Vec<_> = seeds
            .into_iter()
            .map(|s| {
                let mut r = ChaCha8Rng::from_seed(s);
                let pt = Tempering::new(model, betas.clone(), &mut r);
                let (energies, observables) = series();
                Ladder { pt, rng: r, energies, observables }
            })
            .collect();
        for from in (0..len).step_by(PROGRESS_STEPS) {
            let to = (from + PROGRESS_STEPS).min(len);
            running.par_iter_mut().for_each(|l| l.advance(from..to, opts.burn_in, observable));
            progress(McProgress::Steps { done: ladders * to, total });
        }
        running.into_iter().map(Ladder::finish).collect()
    } else {
        (0..ladders)
            .map(|ladder| {
                let pt = Tempering::new(model, betas.clone(), rng);
                let (energies, observables) = series();
                let mut l = Ladder { pt, rng: &mut *rng, energies, observables };
                for from in (0..len).step_by(PROGRESS_STEPS) {
                    let to = (from + PROGRESS_STEPS).min(len);
                    l.advance(from..to, opts.burn_in, observable);
                    progress(McProgress::Steps { done: ladder * len + to, total });
                }
                l.finish()
            })
            .collect()
    };
    let mut runs: Vec<&[Vec<f64>]> = Vec::with_capacity(ladders);
    for o in &outcomes {
        for j in 0..k {
            es[j].extend_from_slice(&o.energies[j]);
            obs[j].extend_from_slice(&o.observables[j]);
        }
        for (j, a) in o.energies.iter().map(|s| autocorrelation(s)).enumerate() {
            tau_int = tau_int.max(a.tau_int);
            unconverged |= !a.converged;
            rung_converged[j] &= a.converged;
            rung_tau_int[j] = rung_tau_int[j].max(a.tau_int);
        }
        for (g, &a) in gap_swap.iter_mut().zip(&o.swap_acceptance) {
            *g = g.min(a);
        }
        min_swap = o.swap_acceptance.iter().copied().fold(min_swap, f64::min);
        round_trips += o.round_trips;
        runs.push(&o.energies);
    }
    let ess = (per_ladder * ladders) as f64 / (2.0 * tau_int);
    if unconverged {
        notes.push(format!("τ_int did not converge within {per_ladder} steps per ladder (≥ {tau_int:.0})"));
    }
    if min_swap < opts.min_swap_acceptance {
        notes.push(format!("smallest swap acceptance {min_swap:.3} below {}", opts.min_swap_acceptance));
    }
    if round_trips < opts.min_round_trips {
        notes.push(format!("{round_trips} round trips, fewer than {}", opts.min_round_trips));
    }
    let rung_r_hat: Vec<f64> =
        (0..k).map(|j| gelman_rubin(&runs.iter().map(|r| r[j].as_slice()).collect::<Vec<_>>())).collect();
    let r_hat = rung_r_hat.iter().copied().fold(1.0, f64::max);
    let rung_passed: Vec<bool> =
        (0..k).map(|j| rung_converged[j] && (ladders < 2 || rung_r_hat[j] <= opts.max_r_hat)).collect();
    let equilibrated_rungs = equilibrated_prefix(&rung_passed, &gap_swap, opts.min_swap_acceptance);
    if ladders >= 2 && r_hat > opts.max_r_hat {
        notes.push(format!("R̂ {r_hat:.3} over {ladders} ladders above {}", opts.max_r_hat));
    }
    progress(McProgress::Bootstrap);
    let diagnostics = LadderDiagnostics {
        ok: notes.is_empty(),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        steps: opts.steps as u64,
        rungs: k as u32,
        min_swap_acceptance: Some(min_swap),
        round_trips,
        r_hat,
        tau_int,
        ess,
        equilibrated_tau_lo: (equilibrated_rungs >= 2).then(|| 1.0 / betas[equilibrated_rungs - 1]),
        walker_round_trips_min: None,
        flatness: None,
    };
    LadderRun {
        betas,
        energies: es,
        observables: obs,
        log_z0: model.log_configurations(),
        diagnostics,
        equilibrated_rungs,
        rung_tau_int,
    }
}

/// How many rungs from β = 0 up passed on their own (`rung_passed`: τ_int converged, R̂ within
/// bounds) with every gap between them swapping at least `min_swap` (`gap_swap[j]`: between
/// rungs j and j + 1) — the warm end of a ladder whose samples can be used as they are.
pub fn equilibrated_prefix(rung_passed: &[bool], gap_swap: &[f64], min_swap: f64) -> usize {
    (0..rung_passed.len()).take_while(|&j| rung_passed[j] && (j == 0 || gap_swap[j - 1] >= min_swap)).count()
}

/// Estimate τ* and the divergences of the fitted spin model `q` against a truth whose
/// energy of a configuration is `truth_energy` ([`estimate_ensemble`] with the spin
/// model's chains: heat-bath sweeps, plus Wolff moves wherever they are valid — near and
/// below a critical point single flips alone decorrelate too slowly).
pub fn estimate<R: Rng>(
    q: &SpinModel,
    truth_energy: &(dyn Fn(&[i8]) -> f64 + Sync),
    truth: TruthSide,
    truth_samples: Option<&[f64]>,
    opts: &McOptions,
    rng: &mut R,
) -> McTau {
    estimate_ensemble(&SpinEnsemble::new(q), truth_energy, truth, truth_samples, opts, rng)
}

/// Estimate τ* and the divergences of the fitted model `q` (spins or Potts) against a truth
/// whose energy of a configuration is `truth_energy` and whose side of the divergences is
/// `truth`. When ⟨Ê⟩_p comes from samples, pass their series as `truth_samples`: every
/// bootstrap resample then resamples it too (in blocks of its own τ_int), so its noise is
/// in the error bars.
pub fn estimate_ensemble<E: Ensemble + ?Sized, R: Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    truth: TruthSide,
    truth_samples: Option<&[f64]>,
    opts: &McOptions,
    rng: &mut R,
) -> McTau {
    let (lo, hi) = opts.tau_bounds;
    assert!(0.0 < lo && lo < 1.0 && 1.0 < hi, "the τ range must contain 1");
    let LadderRun {
        betas,
        energies: es,
        observables: obs,
        log_z0,
        mut diagnostics,
        equilibrated_rungs,
        rung_tau_int,
    } = run_ladders(q, truth_energy, opts, rng);
    let k = betas.len();
    let block = (4.0 * diagnostics.tau_int).ceil() as usize;
    let bounds = opts.tau_bounds;
    let curve: Vec<f64> = opts.curve.iter().copied().filter(|t| (lo..=hi).contains(t)).collect();
    let truth_block = truth_samples.map_or(1, |s| (4.0 * autocorrelation(s).tau_int).ceil() as usize);
    let beta_max = betas[k - 1];
    let stat = |m: &Mbar, energies: &[Vec<f64>], which: Resample| {
        let mut side = truth;
        if let (Some(series), Resample::Drawn(seed)) = (truth_samples, which) {
            let mut side_rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            side.mean_model_energy = block_resampled_mean(series, truth_block, &mut side_rng);
        }
        let mut v = statistics(m, &side, bounds, &curve).0;
        // The cross-check, last: ln Z_q(β_max) by MBAR minus by thermodynamic integration.
        let (ti, quadrature) = super::ti::log_z_ladder(m.betas(), energies, log_z0);
        v.push(m.at(beta_max).log_z - ti[k - 1]);
        v.push(quadrature[k - 1]);
        v
    };
    let point = Mbar::solve(&betas, &es, &obs, log_z0, None);
    if !point.converged {
        diagnostics.fail("MBAR did not converge");
    }
    let (est, se) = bootstrap_se(&point, &es, &obs, log_z0, block, opts.resamples, rng, &stat);
    let (_, at_bound) = statistics(&point, &truth, bounds, &[]);
    let w = |i: usize| WithSe { value: est[i], se: se[i] };
    let (ti_gap, quadrature) = (w(est.len() - 2), est[est.len() - 1]);
    if ti_gap.value.abs() > TI_TOLERANCE_SE * ti_gap.se + quadrature + TI_TOLERANCE_ABS {
        diagnostics.fail(format!(
            "ln Z_q(β = {beta_max:.4}) by MBAR and by thermodynamic integration differ by {:.3e} ± {:.1e} \
             (quadrature error ≤ {quadrature:.1e})",
            ti_gap.value, ti_gap.se
        ));
    }
    // Last, so every number above is what it was before this existed (its bootstrap draws
    // from its own generator, not `rng`).
    // Only when the cold end failed: a failure of the whole ladder (round trips, the TI
    // cross-check, the precision target) is not mended by leaving rungs out.
    let tau_fwd_equilibrated = if diagnostics.ok || equilibrated_rungs == k {
        None
    } else {
        fwd_on_equilibrated_rungs(
            &betas[..equilibrated_rungs],
            &es[..equilibrated_rungs],
            &obs[..equilibrated_rungs],
            log_z0,
            &rung_tau_int[..equilibrated_rungs],
            hi,
            &truth,
            truth_samples.map(|s| (s, truth_block)),
            opts.resamples,
        )
    };
    McTau {
        log_z_ti_gap: Some(ti_gap),
        log_z_ti_quadrature: Some(quadrature),
        betas,
        diagnostics,
        tau_fwd_equilibrated,
        ..from_statistics(&est, &se, &curve, at_bound)
    }
}

/// An estimate from the numbers of [`statistics`] (`est`, with standard errors `se`) for the
/// curve at `curve`: every τ quantity filled in, the sampler's own parts (ladder,
/// diagnostics, cross-checks) empty for the caller to set.
pub(crate) fn from_statistics(est: &[f64], se: &[f64], curve: &[f64], at_bound: (bool, bool)) -> McTau {
    let w = |i: usize| WithSe { value: est[i], se: se[i] };
    let curve: Vec<McCurvePoint> = curve
        .iter()
        .enumerate()
        .map(|(j, &tau)| {
            let at = SCALARS + 6 * j;
            McCurvePoint {
                tau,
                dkl_rev: w(at),
                dkl_fwd: w(at + 1),
                entropy: w(at + 2),
                mean_energy: w(at + 3),
                heat_capacity: w(at + 4),
                kappa: w(at + 5),
            }
        })
        .collect();
    McTau {
        tau_rev: w(0),
        tau_fwd: w(1),
        dkl_rev_opt: w(2),
        dkl_fwd_opt: w(3),
        dkl_rev_at_1: w(4),
        dkl_fwd_at_1: w(5),
        heat_capacity_at_1: w(6),
        kappa_at_1: w(7),
        log_z_ti_gap: None,
        log_z_ti_quadrature: None,
        curve,
        at_bound,
        betas: Vec::new(),
        diagnostics: LadderDiagnostics::default(),
        tau_fwd_equilibrated: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_equilibrated_prefix_stops_at_the_first_failed_rung_or_gap() {
        use super::equilibrated_prefix as prefix;
        assert_eq!(prefix(&[true; 4], &[0.3, 0.3, 0.3], 0.1), 4);
        assert_eq!(prefix(&[true, true, false, true], &[0.3, 0.3, 0.3], 0.1), 2);
        assert_eq!(prefix(&[true; 4], &[0.3, 0.05, 0.3], 0.1), 2, "a gap cuts the walk");
        assert_eq!(prefix(&[true; 4], &[0.3, 0.3, 0.1], 0.1), 4, "the threshold itself passes");
        assert_eq!(prefix(&[false, true], &[0.5], 0.1), 0);
        assert_eq!(prefix(&[], &[], 0.1), 0);
    }
}
