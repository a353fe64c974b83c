//! Multicanonical sampling (Berg & Neuhaus 1992) of any model with single-site moves
//! ([`LocalEnsemble`]): where parallel tempering cannot tunnel.
//!
//! # Why
//! A model that orders abruptly has a bimodal energy law near its transition, and a
//! canonical chain (or a tempering ladder, whose rungs are canonical) crosses between the
//! peaks in a time that grows like e^{2σL}: the configurations in between are exponentially
//! rare. A multicanonical walker samples π(σ) ∝ e^{ω(E(σ))} with ω ≈ −ln g(E), g the density
//! of states, so every energy of the window is equally likely and the walker diffuses across
//! the barrier in power-law time. One frozen-weight run then gives ln Z(β), ⟨E⟩, Var(E) and
//! Cov(E, A) at *every* β of the window by reweighting ([`reweight`]).
//!
//! # How
//! 1. **Window** ([`MucaOptions::window`] or pilots): from ⟨E⟩ at β_max = 1/τ_lo (a walker
//!    annealed by Metropolis from β = 0 to 3 β_max and warmed back, so a first-order model is
//!    found in its ordered phase, not supercooled) up to ⟨E⟩ at β = 0 plus
//!    [`MucaOptions::window_margin_sd`] standard deviations. Bins of about the mean |ΔE| of a
//!    single proposal (averaged over both ends): narrower bins only add noise, wider ones
//!    would let ω vary by much more than one update can see. While a walker of the weight
//!    iteration finds energies below the window and the β_max law implied by the weights
//!    still peaks at the first bin, the window extends down to them.
//! 2. **Wang–Landau** with the 1/t schedule (Belardinelli & Pereyra 2007): every update
//!    lowers ω in the current bin by f; f halves each time every bin seen so far has been
//!    visited again and every walker has reached both end zones of the window again (its
//!    lowest and highest [`MucaOptions::end_zone`]), until f falls below 1/t
//!    (t = updates / bins), from when f = 1/t. Walkers run in rounds, each on its own copy of
//!    ω, and their lowerings are summed at the end of every round in walker order (the
//!    parallel Wang–Landau of Zierenberg, Marenz & Janke 2013, made deterministic).
//! 3. **Multicanonical recursion**: walkers run with frozen ω, their histograms are merged,
//!    and ω_k ← ω_k − ln(H_k / H̄) (each change clamped to ±3), the runs doubling in length,
//!    until the merged histogram is flat: min_k H_k / H̄ ≥ [`MucaOptions::flatness`] over
//!    every bin ever visited. Those weights are frozen.
//! 4. **Production**: every walker runs [`MucaOptions::production_sweeps`] with the frozen
//!    ω, recording E and the caller's observable every [`MucaOptions::measure_every`]
//!    updates, its histogram and its round trips between the window's ends.
//!
//! # Determinism
//! Each walker has its own ChaCha8 stream seeded from 32 bytes of the caller's generator
//! (drawn in walker order before anything runs); walkers run in parallel with rayon and their
//! results are combined in walker order. A run is bit-identical on any number of threads.
//!
//! # Diagnostics ([`MucaDiagnostics`])
//! Round trips between the window's end zones per walker (each must make [`MucaOptions::min_round_trips`]), the
//! production histogram's flatness, and the agreement of ln g across walkers (a Gelman–Rubin
//! R̂ over each walker's blocks, averaged over bins). A run that fails a threshold says why in
//! its note and is not `ok`.

pub mod reweight;
pub mod tau;
pub mod weights;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::estimate::WithSe;
use super::local::{LocalEnsemble, LocalMoves};
use super::stats::{autocorrelation, f_quantile, mean_var};
use crate::exact::exp_nonpos;
pub use reweight::{bootstrap, MucaReweighting, MucaStatistic};
pub use tau::{estimate_multicanonical, MucaTau};
pub use weights::MucaWeights;

/// Samples each walker records at most when [`MucaOptions::measure_every`] is 0: a walker
/// that needs 10⁵ sweeps to cross its window has a τ_int of hundreds of sweeps, so a sample
/// every sweep adds no information, only cost to every reweighting of every resample.
pub const MAX_SAMPLES_PER_WALKER: usize = 10_000;

/// Relative round-off below which two energies are the same level (incremental updates
/// of E over a thousand sweeps drift by ~1e-13 relative before a resync).
const ENERGY_RESOLUTION: f64 = 1e-9;

/// How the sampler runs and what it demands of itself. Sweeps are N single-site updates.
#[derive(Debug, Clone, PartialEq)]
pub struct MucaOptions {
    /// The coldest τ any answer will be asked at: β_max = 1/τ_lo sets the window's low end.
    pub tau_lo: f64,
    /// Walkers, each on its own stream (run in parallel).
    pub walkers: usize,
    /// Sweeps of each pilot (β = 0, the anneal to β_max, β_max).
    pub pilot_sweeps: usize,
    /// The energy window, instead of the pilots' (expert use; tests).
    pub window: Option<(f64, f64)>,
    /// Standard deviations of E at β = 0 added above its mean for the window's high end.
    pub window_margin_sd: f64,
    /// Bin width, instead of the pilots' mean |ΔE| per proposal.
    pub bin_width: Option<f64>,
    /// Most bins (the width grows to respect it).
    pub max_bins: usize,
    /// Sweeps per walker in each Wang–Landau round between merges.
    pub wl_round_sweeps: usize,
    /// Wang–Landau stops when f falls to this.
    pub wl_final_f: f64,
    /// Budget of the weight iteration (Wang–Landau and recursion), sweeps per walker.
    pub max_weight_sweeps: usize,
    /// Sweeps per walker of the first recursion run (each next one doubles).
    pub recursion_sweeps: usize,
    /// Most recursion runs.
    pub max_recursions: usize,
    /// The flatness the recursion stops at, min_k H_k / mean_k H_k.
    pub flatness: f64,
    /// Production sweeps per walker.
    pub production_sweeps: usize,
    /// Updates between recorded samples (0: whole sweeps, as few as keep at most
    /// [`MAX_SAMPLES_PER_WALKER`] samples per walker; one sweep up to that many sweeps).
    pub measure_every: usize,
    /// Production blocks per walker (the bootstrap's units).
    pub blocks: usize,
    /// Bootstrap resamples for the standard errors.
    pub resamples: usize,
    /// Fewest round trips E_min ↔ E_max each walker must make in production.
    pub min_round_trips: u64,
    /// The fraction of the window each end zone spans (at least one bin): a walker is at
    /// E_min (E_max) when its energy is in the lowest (highest) such part. Why not the end
    /// bin alone: the cold end of a fitted model's window is its ground state, often a single
    /// configuration whose basin is entropically tiny; walkers then cross the barrier and
    /// reach the ordered phase many times without finding that one state, and a Wang–Landau
    /// run that waits for every walker to touch it never lowers f (16×16, T = 2, M = 316:
    /// f stayed at 0.5 for 7·10⁸ updates while ω ran away by 10⁶).
    pub end_zone: f64,
    /// Largest acceptable R̂ of ln g across walkers. A run fails on it only when the
    /// disagreement is also beyond chance for its blocks (the variance ratio above the 0.999
    /// quantile of its F law): with 16 blocks per walker, agreeing walkers pass 1.05 often.
    pub max_r_hat: f64,
    /// Smallest acceptable flatness of the production histogram.
    pub min_production_flatness: f64,
}

impl Default for MucaOptions {
    fn default() -> Self {
        MucaOptions {
            tau_lo: 0.2,
            walkers: 4,
            pilot_sweeps: 200,
            window: None,
            window_margin_sd: 1.0,
            bin_width: None,
            max_bins: 4000,
            wl_round_sweeps: 20,
            wl_final_f: 1e-3,
            max_weight_sweeps: 2_000_000,
            recursion_sweeps: 500,
            max_recursions: 12,
            flatness: 0.5,
            production_sweeps: 100_000,
            measure_every: 0,
            blocks: 16,
            resamples: 200,
            min_round_trips: 10,
            end_zone: 0.05,
            max_r_hat: 1.05,
            min_production_flatness: 0.3,
        }
    }
}

/// Options a run cannot start with.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MucaError {
    /// An option outside its range.
    #[error("multicanonical option {name} = {value}: {why}")]
    Setting {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
    /// The window is empty or not finite: the model's energy does not vary between β = 0
    /// and β_max (no couplings, no fields), or the given window is reversed.
    #[error("the energy window [{lo}, {hi}] is empty: nothing to sample between β = 0 and β_max")]
    EmptyWindow {
        /// Low end.
        lo: f64,
        /// High end.
        hi: f64,
    },
    /// The model has no sites.
    #[error("the model has no sites")]
    NoSites,
}

fn check(opts: &MucaOptions) -> Result<(), MucaError> {
    let bad = |name, value: String, why| Err(MucaError::Setting { name, value, why });
    if !(opts.tau_lo.is_finite() && opts.tau_lo > 0.0) {
        return bad("tau_lo", opts.tau_lo.to_string(), "a positive finite τ");
    }
    if opts.walkers < 2 {
        return bad("walkers", opts.walkers.to_string(), "at least 2 (ln g is compared across walkers)");
    }
    if opts.blocks < 2 {
        return bad("blocks", opts.blocks.to_string(), "at least 2 per walker");
    }
    if opts.pilot_sweeps < 10 {
        return bad("pilot_sweeps", opts.pilot_sweeps.to_string(), "at least 10");
    }
    if opts.production_sweeps < opts.blocks {
        return bad("production_sweeps", opts.production_sweeps.to_string(), "at least one sweep per block");
    }
    if !(opts.wl_final_f > 0.0 && opts.wl_final_f < 1.0) {
        return bad("wl_final_f", opts.wl_final_f.to_string(), "in (0, 1)");
    }
    if !(opts.flatness > 0.0 && opts.flatness < 1.0) {
        return bad("flatness", opts.flatness.to_string(), "in (0, 1)");
    }
    if !(opts.end_zone > 0.0 && opts.end_zone < 0.5) {
        return bad("end_zone", opts.end_zone.to_string(), "a fraction of the window in (0, 0.5)");
    }
    if opts.max_bins < 2 || opts.wl_round_sweeps == 0 || opts.recursion_sweeps == 0 {
        return bad("max_bins / wl_round_sweeps / recursion_sweeps", String::new(), "positive (≥ 2 bins)");
    }
    if let Some(w) = opts.bin_width {
        if !(w.is_finite() && w > 0.0) {
            return bad("bin_width", w.to_string(), "positive and finite");
        }
    }
    Ok(())
}

/// How a multicanonical run went, and whether its numbers can be trusted. `ok` and `note`
/// carry the published names of [`LadderDiagnostics`](super::diagnostics::LadderDiagnostics)
/// (`mcmc_ok`, `mcmc_note`), so a report can show either sampler's verdict in one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MucaDiagnostics {
    /// Every diagnostic within its threshold.
    #[serde(rename = "mcmc_ok")]
    pub ok: bool,
    /// Why not, when not: the failed diagnostics in words, `; `-separated.
    #[serde(rename = "mcmc_note", default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Walkers.
    pub walkers: u32,
    /// The energy window [low, high].
    pub energy_window: (f64, f64),
    /// Bins of the window.
    pub bins: u32,
    /// Their width.
    pub bin_width: f64,
    /// Single-site updates of the weight iteration, all walkers (Wang–Landau + recursion).
    pub weight_updates: u64,
    /// The Wang–Landau modification factor reached.
    pub wl_final_f: f64,
    /// Recursion runs made.
    pub recursions: u32,
    /// Whether the recursion reached its flatness target.
    pub weights_flat: bool,
    /// Production updates, all walkers.
    pub production_updates: u64,
    /// min_k H_k / mean_k H_k of the merged production histogram over the bins ever visited.
    pub flatness: f64,
    /// Round trips E_min ↔ E_max of each walker in production.
    pub round_trips: Vec<u64>,
    /// R̂ of ln g across walkers (block means per walker), averaged over bins: ≈ 1 when the
    /// walkers agree.
    pub log_g_r_hat: f64,
    /// The largest R̂ of any single bin (for information: with hundreds of bins a few are
    /// large by chance).
    pub log_g_r_hat_max: f64,
    /// Largest τ_int of E over walkers, in recorded samples.
    pub tau_int: f64,
    /// Recorded samples per production block.
    pub block_len: u64,
}

impl MucaDiagnostics {
    /// Record a failed check: `ok` turns false and `why` joins the note.
    pub fn fail(&mut self, why: impl Into<String>) {
        super::diagnostics::append_note(&mut self.note, why.into());
        self.ok = false;
    }

    /// Fewest round trips of any walker.
    pub fn min_round_trips(&self) -> u64 {
        self.round_trips.iter().copied().min().unwrap_or(0)
    }
}

/// The result of [`run_multicanonical`]: frozen weights, the pooled production samples ready
/// to reweight, the blocks the bootstrap draws, and the diagnostics.
#[derive(Debug, Clone)]
pub struct MucaRun {
    /// The frozen weights of production.
    pub weights: MucaWeights,
    /// All walkers' production samples.
    pub reweighting: MucaReweighting,
    /// Per walker: its production blocks as index ranges into the pooled samples.
    pub blocks: Vec<Vec<(usize, usize)>>,
    /// The merged production histogram over the window's bins (energies outside the window
    /// counted in the end bins).
    pub histogram: Vec<f64>,
    /// How the run went.
    pub diagnostics: MucaDiagnostics,
}

/// Reweighted quantities at one β with their standard errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MucaPoint {
    /// β.
    pub beta: f64,
    /// ln Z(β).
    pub log_z: WithSe,
    /// ⟨E⟩_β.
    pub mean_energy: WithSe,
    /// Var_β(E).
    pub var_energy: WithSe,
    /// ⟨A⟩_β of the observable.
    pub mean_observable: WithSe,
    /// Cov_β(E, A).
    pub cov_energy_observable: WithSe,
}

impl MucaRun {
    /// [`bootstrap`] over this run's blocks.
    pub fn bootstrap<R: Rng + ?Sized>(
        &self,
        resamples: usize,
        rng: &mut R,
        stat: &MucaStatistic<'_>,
    ) -> (Vec<f64>, Vec<f64>) {
        bootstrap(&self.reweighting, &self.blocks, resamples, rng, stat)
    }

    /// ln Z, ⟨E⟩, Var(E), ⟨A⟩ and Cov(E, A) at every β of `betas`, each with its block
    /// bootstrap standard error (`resamples` resamples drawn from `rng`).
    pub fn points<R: Rng + ?Sized>(&self, betas: &[f64], resamples: usize, rng: &mut R) -> Vec<MucaPoint> {
        let stat = |r: &MucaReweighting, _: crate::mc::mbar::Resample| -> Vec<f64> {
            betas
                .iter()
                .flat_map(|&b| {
                    let a = r.at(b);
                    [a.log_z, a.mean_energy, a.var_energy, a.mean_observable, a.cov_energy_observable]
                })
                .collect()
        };
        let (est, se) = self.bootstrap(resamples, rng, &stat);
        let w = |i: usize| WithSe { value: est[i], se: se[i] };
        betas
            .iter()
            .enumerate()
            .map(|(j, &beta)| MucaPoint {
                beta,
                log_z: w(5 * j),
                mean_energy: w(5 * j + 1),
                var_energy: w(5 * j + 2),
                mean_observable: w(5 * j + 3),
                cov_energy_observable: w(5 * j + 4),
            })
            .collect()
    }
}

/// A walker with its stream and its position between the window's ends.
struct Walker<W> {
    chain: W,
    rng: ChaCha8Rng,
    /// −1: the low end was reached last, +1: the high end, 0: neither yet.
    last_end: i8,
    /// Passages from one end to the other.
    half_trips: u64,
}

impl<W: LocalMoves> Walker<W> {
    #[inline]
    fn track(&mut self, w: &MucaWeights, zone: f64, e: f64) {
        let end = end_of_window(w, zone, e);
        if end != 0 && end != self.last_end {
            if self.last_end != 0 {
                self.half_trips += 1;
            }
            self.last_end = end;
        }
    }

    /// One multicanonical update with weights `w`, the current ω being `*om`.
    #[inline]
    fn update(&mut self, w: &MucaWeights, om: &mut f64) {
        update(&mut self.chain, w, om, &mut self.rng);
    }

    /// A Wang–Landau round on its own copy of ω (lowered by f at every visit); returns the
    /// visits per bin, which ends were reached and the lowest energy seen.
    fn wang_landau(
        &mut self,
        w: &mut MucaWeights,
        zone: f64,
        f: f64,
        updates: usize,
    ) -> (Vec<f64>, [bool; 2], f64) {
        self.chain.resync();
        let mut visits = vec![0.0; w.bins()];
        let mut ends = [false; 2];
        let mut om = w.omega(self.chain.energy());
        let mut lowest = f64::INFINITY;
        for _ in 0..updates {
            self.update(w, &mut om);
            let e = self.chain.energy();
            lowest = lowest.min(e);
            match end_of_window(w, zone, e) {
                -1 => ends[0] = true,
                1 => ends[1] = true,
                _ => {}
            }
            let k = w.bin_clamped(e);
            w.omega[k] -= f;
            visits[k] += 1.0;
            om = w.omega(e);
        }
        (visits, ends, lowest)
    }

    /// `updates` updates with frozen weights. Returns, per bin (energies outside the window
    /// counted in the end bins), the visits and Σ e^{−(ω(E) − ω_k)} over them: the bin's
    /// number of configurations, g_k, up to the factor e^{−ω_k} Z_π common to the run.
    fn frozen(&mut self, w: &MucaWeights, updates: usize) -> (Vec<f64>, Vec<f64>) {
        self.chain.resync();
        let mut hist = vec![0.0; w.bins()];
        let mut sums = vec![0.0; w.bins()];
        let mut om = w.omega(self.chain.energy());
        for _ in 0..updates {
            self.update(w, &mut om);
            let k = w.bin_clamped(self.chain.energy());
            hist[k] += 1.0;
            sums[k] += inverse_weight(w.omega[k] - om);
        }
        (hist, sums)
    }

    /// Production: frozen weights, a sample every `every` updates, round trips tracked.
    #[allow(clippy::too_many_arguments)]
    fn production(
        &mut self,
        w: &MucaWeights,
        zone: f64,
        updates: usize,
        every: usize,
        resync_every: usize,
        blocks: usize,
        observable: &(dyn Fn(&W::Config) -> f64 + Sync),
    ) -> Production {
        self.chain.resync();
        self.last_end = 0;
        self.half_trips = 0;
        let mut out = Production {
            energies: Vec::with_capacity(updates / every + 1),
            observables: Vec::with_capacity(updates / every + 1),
            hist: vec![0.0; w.bins()],
            block_hist: vec![vec![0.0; w.bins()]; blocks],
        };
        let mut om = w.omega(self.chain.energy());
        let per_block = updates.div_ceil(blocks).max(1);
        for u in 1..=updates {
            self.update(w, &mut om);
            let e = self.chain.energy();
            self.track(w, zone, e);
            let k = w.bin_clamped(e);
            out.hist[k] += 1.0;
            out.block_hist[(u - 1) / per_block][k] += 1.0;
            if u % every == 0 {
                out.energies.push(e);
                out.observables.push(observable(self.chain.config()));
            }
            if u % resync_every == 0 {
                self.chain.resync();
                om = w.omega(self.chain.energy());
            }
        }
        out
    }
}

/// The width of each end zone of `w`'s window: `fraction` of it, at least one bin.
fn end_zone_width(w: &MucaWeights, fraction: f64) -> f64 {
    (fraction * (w.e_hi() - w.e_lo)).max(w.width)
}

/// Which end of the window E is at: within `zone` of its low edge (−1), of its high edge
/// (+1), or neither (0).
#[inline]
fn end_of_window(w: &MucaWeights, zone: f64, e: f64) -> i8 {
    if e < w.e_lo + zone {
        -1
    } else if e >= w.e_hi() - zone {
        1
    } else {
        0
    }
}

struct Production {
    energies: Vec<f64>,
    observables: Vec<f64>,
    hist: Vec<f64>,
    /// Per production block: the visits of every update to each bin (what ln g's agreement
    /// across walkers is judged on: every update, not only the recorded samples).
    block_hist: Vec<Vec<f64>>,
}

/// One multicanonical update of `chain` with weights `w` (`*om` = ω of its current energy,
/// kept up to date): a symmetric single-site proposal accepted with min(1, e^{ω(E') − ω(E)}).
/// Public for the benchmarks that compare a walker's update rate with tempering's.
#[inline]
pub fn update<W: LocalMoves, R: Rng + ?Sized>(chain: &mut W, w: &MucaWeights, om: &mut f64, rng: &mut R) {
    let m = chain.propose(rng);
    let e_new = chain.energy() + m.delta;
    let om_new = w.omega(e_new);
    let x = om_new - *om;
    if x >= 0.0 || rng.random::<f64>() < exp_nonpos(x) {
        chain.apply(&m);
        *om = om_new;
    }
}

/// e^{x} for any finite x, from taustar's IEEE-pure e^{≤0} (a run is bit-identical on every
/// machine).
#[inline]
fn inverse_weight(x: f64) -> f64 {
    if x <= 0.0 {
        exp_nonpos(x)
    } else {
        1.0 / exp_nonpos(-x)
    }
}

/// min_k H_k / mean_k H_k over the bins with `mask` set (0 when no bin is).
pub fn flatness(hist: &[f64], mask: &[bool]) -> f64 {
    let seen: Vec<f64> = hist.iter().zip(mask).filter(|(_, &m)| m).map(|(&h, _)| h).collect();
    if seen.is_empty() {
        return 0.0;
    }
    let mean = seen.iter().sum::<f64>() / seen.len() as f64;
    if mean == 0.0 {
        return 0.0;
    }
    seen.iter().copied().fold(f64::INFINITY, f64::min) / mean
}

/// What the pilots measure.
struct Pilot {
    mean_cold: f64,
    mean_hot: f64,
    sd_hot: f64,
    mean_abs_delta: f64,
}

/// The pilots: Metropolis with the walker's own proposals at β = 0, then annealed linearly
/// to 3 β_max, then at β_max (settling, then measured).
fn pilot<W: LocalMoves>(walker: &mut Walker<W>, n: usize, sweeps: usize, beta_max: f64) -> Pilot {
    let metropolis =
        |walker: &mut Walker<W>, beta: f64, record: bool, es: &mut Vec<f64>, deltas: &mut Vec<f64>| {
            for _ in 0..n {
                let m = walker.chain.propose(&mut walker.rng);
                if record {
                    deltas.push(m.delta.abs());
                }
                let x = -beta * m.delta;
                if x >= 0.0 || walker.rng.random::<f64>() < exp_nonpos(x) {
                    walker.chain.apply(&m);
                }
            }
            if record {
                es.push(walker.chain.energy());
            }
        };
    let (mut hot, mut hot_d, mut cold, mut cold_d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sweeps {
        metropolis(walker, 0.0, true, &mut hot, &mut hot_d);
    }
    // Cool past β_max to 3 β_max, then warm back to β_max: a first-order model cooled only
    // to β_max stays in its supercooled disordered phase (nucleating the ordered one takes
    // exponentially long), and ⟨E⟩ there would leave the barrier below the window. From the
    // cold side the ordered phase is reached by relaxation, not nucleation. (A model
    // without a transition just relaxes back.)
    for s in 0..sweeps {
        metropolis(walker, 3.0 * beta_max * (s + 1) as f64 / sweeps as f64, false, &mut cold, &mut cold_d);
    }
    for _ in 0..sweeps {
        metropolis(walker, beta_max, false, &mut cold, &mut cold_d);
    }
    for _ in 0..sweeps {
        metropolis(walker, beta_max, true, &mut cold, &mut cold_d);
    }
    let (mean_hot, var_hot) = mean_var(&hot);
    let mean_abs_delta = 0.5 * (mean_var(&hot_d).0 + mean_var(&cold_d).0);
    Pilot { mean_cold: mean_var(&cold).0, mean_hot, sd_hot: var_hot.sqrt(), mean_abs_delta }
}

/// Sample `model` multicanonically (module docs) and return the reweightable production
/// samples with their diagnostics; `observable` is recorded with every sample (e.g. the
/// truth's energy E_p). Errors on options outside their ranges, an empty model, and a model
/// whose energy does not vary (nothing to flatten).
pub fn run_multicanonical<E: LocalEnsemble + ?Sized, R: Rng + ?Sized>(
    model: &E,
    observable: &(dyn Fn(&E::Config) -> f64 + Sync),
    opts: &MucaOptions,
    rng: &mut R,
) -> Result<MucaRun, MucaError> {
    check(opts)?;
    let beta_max = 1.0 / opts.tau_lo;
    // Every stream is drawn before anything runs: walker k's is the same on any thread count.
    let mut seed = || {
        let mut s = [0u8; 32];
        rng.fill(&mut s);
        ChaCha8Rng::from_seed(s)
    };
    let mut pilot_rng = seed();
    let mut walkers: Vec<Walker<E::Walker<'_>>> = (0..opts.walkers)
        .map(|_| {
            let mut r = seed();
            Walker { chain: model.random_walker(&mut r), rng: r, last_end: 0, half_trips: 0 }
        })
        .collect();
    let n = walkers[0].chain.sites();
    if n == 0 {
        return Err(MucaError::NoSites);
    }

    // 1. The window and the bins.
    let pilot_walker = model.random_walker(&mut pilot_rng);
    let mut pw = Walker { chain: pilot_walker, rng: pilot_rng, last_end: 0, half_trips: 0 };
    let p = pilot(&mut pw, n, opts.pilot_sweeps, beta_max);
    let (lo, hi) = opts.window.unwrap_or((p.mean_cold, p.mean_hot + opts.window_margin_sd * p.sd_hot));
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(MucaError::EmptyWindow { lo, hi });
    }
    let mut width = opts.bin_width.unwrap_or(p.mean_abs_delta);
    if !(width.is_finite() && width > 0.0) || (hi - lo) / width > opts.max_bins as f64 {
        width = (hi - lo) / opts.max_bins as f64;
    }
    let bins = (((hi - lo) / width).ceil() as usize).max(2);
    let mut weights = MucaWeights::flat(lo, width, bins, beta_max);

    // 2. Wang–Landau, 1/t.
    let round = (opts.wl_round_sweeps * n).max(4096);
    let budget = (opts.max_weight_sweeps as u64) * (n as u64) * (opts.walkers as u64);
    let mut visited_ever = vec![false; bins];
    let mut visited = vec![false; bins];
    let mut ends_seen = [false; 2];
    let mut walker_ends = vec![[false; 2]; opts.walkers];
    let (mut f, mut one_over_t, mut updates) = (1.0f64, false, 0u64);
    let mut notes = Vec::new();
    loop {
        let base = weights.clone();
        let zone = end_zone_width(&weights, opts.end_zone);
        let rounds: Vec<(MucaWeights, Vec<f64>, [bool; 2], f64)> = walkers
            .par_iter_mut()
            .map(|w| {
                let mut own = base.clone();
                let (visits, ends, lowest) = w.wang_landau(&mut own, zone, f, round);
                (own, visits, ends, lowest)
            })
            .collect();
        let mut lowest = f64::INFINITY;
        for (j, (own, visits, ends, low)) in rounds.into_iter().enumerate() {
            lowest = lowest.min(low);
            walker_ends[j][0] |= ends[0];
            walker_ends[j][1] |= ends[1];
            for k in 0..weights.bins() {
                weights.omega[k] += own.omega[k] - base.omega[k];
                if visits[k] > 0.0 {
                    visited[k] = true;
                    visited_ever[k] = true;
                }
            }
            ends_seen[0] |= ends[0];
            ends_seen[1] |= ends[1];
        }
        // The pilot's ⟨E⟩ at β_max may be a metastable state's (domains that an anneal froze
        // in), leaving the cold phase below the window, where the walkers move canonically at
        // β_max and its barrier is not flattened. So a walker that finds lower energies
        // extends the window down to them, but only while the law at β_max implied by the
        // current weights, ln g_k − β_max c_k ≈ −ω_k − β_max c_k, is still within e^{−½} of its
        // peak at the first bin: once its peak is inside, lower energies are its tail (and
        // chasing them would flatten the way down to the ground states, which no β up to
        // β_max weighs).
        let implied = |w: &MucaWeights, k: usize| -w.omega[k] - beta_max * w.center(k);
        let peak = (0..weights.bins()).map(|k| implied(&weights, k)).fold(f64::NEG_INFINITY, f64::max);
        // Below by more than round-off: a walker's incrementally kept energy of the very
        // state the pilot ended in (a fitted model's ground state, at a cold β_max) can come
        // out an ulp or two lower, and extending the window for it adds a bin that holds no
        // state — one that Wang–Landau then waits forever to see again.
        let below = weights.e_lo - ENERGY_RESOLUTION * (1.0 + weights.e_lo.abs());
        if lowest < below && implied(&weights, 0) >= peak - 0.5 {
            let extra = ((weights.e_lo - lowest) / weights.width).floor() as usize + 1;
            if weights.bins() + extra <= opts.max_bins {
                weights.extend_down(extra);
                // The old first bin counted the visits below it (clamped): whether it holds
                // any level of its own is not known yet.
                let mut pad = vec![false; extra + 1];
                pad.extend_from_slice(&visited[1..]);
                visited = pad;
                let mut pad = vec![false; extra + 1];
                pad.extend_from_slice(&visited_ever[1..]);
                visited_ever = pad;
            }
        }
        weights.fill_unvisited(&visited_ever);
        weights.normalise();
        updates += (round * opts.walkers) as u64;
        let t = updates as f64 / weights.bins() as f64;
        // A halving needs a real traversal since the last one: both ends reached again by
        // every walker.
        // Every walker, not just their union: walkers trapped on either side of a barrier
        // together cover every bin and both ends without any of them crossing, and f would
        // fall round after round while the weights stay wrong.
        if !one_over_t
            && walker_ends.iter().all(|e| e[0] && e[1])
            && visited.iter().zip(&visited_ever).all(|(&v, &e)| v || !e)
        {
            f /= 2.0;
            visited.iter_mut().for_each(|v| *v = false);
            ends_seen = [false, false];
            walker_ends.iter_mut().for_each(|e| *e = [false, false]);
        }
        if !one_over_t && f <= 1.0 / t {
            one_over_t = true;
        }
        if one_over_t {
            f = 1.0 / t;
        }
        if f <= opts.wl_final_f {
            break;
        }
        if updates >= budget {
            notes.push(format!(
                "Wang–Landau stopped at f = {f:.2e} (target {:.0e}): budget spent",
                opts.wl_final_f
            ));
            break;
        }
    }

    let bins = weights.bins();
    let lo = weights.e_lo;

    // 3. Multicanonical recursion until flat.
    let mut sweeps = opts.recursion_sweeps;
    let (mut recursions, mut flat) = (0u32, false);
    while (recursions as usize) < opts.max_recursions && updates < budget {
        let len = sweeps * n;
        let runs: Vec<(Vec<f64>, Vec<f64>)> =
            walkers.par_iter_mut().map(|w| w.frozen(&weights, len)).collect();
        updates += (len * opts.walkers) as u64;
        recursions += 1;
        let (mut h, mut g) = (vec![0.0; bins], vec![0.0; bins]);
        for (hw, gw) in &runs {
            for k in 0..bins {
                h[k] += hw[k];
                g[k] += gw[k];
            }
        }
        for (v, &c) in visited_ever.iter_mut().zip(&h) {
            *v |= c > 0.0;
        }
        if flatness(&h, &visited_ever) >= opts.flatness {
            flat = true;
            break;
        }
        // The recursion: ω_k ← ω_k − ln(H_k / H̄), each change clamped to ±3 (a bin this run
        // missed is raised by at most that much).
        let seen: Vec<f64> = h.iter().zip(&visited_ever).filter(|(_, &m)| m).map(|(&c, _)| c).collect();
        let mean = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
        for k in 0..bins {
            if visited_ever[k] {
                weights.omega[k] -= (h[k].max(0.5) / mean).ln().clamp(-3.0, 3.0);
            }
        }
        weights.fill_unvisited(&visited_ever);
        weights.normalise();
        sweeps *= 2;
    }
    if !flat {
        notes.push(format!(
            "the weight recursion did not reach flatness {} in {recursions} runs",
            opts.flatness
        ));
    }

    // 4. Production.
    let every = if opts.measure_every == 0 {
        n * opts.production_sweeps.div_ceil(MAX_SAMPLES_PER_WALKER).max(1)
    } else {
        opts.measure_every
    };
    let prod_updates = opts.production_sweeps * n;
    let zone = end_zone_width(&weights, opts.end_zone);
    let resync_every = 1000 * n;
    let prods: Vec<(Production, u64)> = walkers
        .par_iter_mut()
        .map(|w| {
            let p = w.production(&weights, zone, prod_updates, every, resync_every, opts.blocks, observable);
            (p, w.half_trips / 2)
        })
        .collect();
    let mut hist = vec![0.0; bins];
    let (mut es, mut obs, mut om) = (Vec::new(), Vec::new(), Vec::new());
    let mut blocks = Vec::with_capacity(opts.walkers);
    let mut round_trips = Vec::with_capacity(opts.walkers);
    let mut tau_int = 0.5f64;
    let mut tau_converged = true;
    for (p, trips) in &prods {
        for (a, b) in hist.iter_mut().zip(&p.hist) {
            *a += b;
        }
        let start = es.len();
        let len = p.energies.len();
        let block = len / opts.blocks;
        blocks
            .push((0..opts.blocks).map(|b| (start + b * block, start + (b + 1) * block)).collect::<Vec<_>>());
        es.extend_from_slice(&p.energies);
        obs.extend_from_slice(&p.observables);
        om.extend(p.energies.iter().map(|&e| weights.omega(e)));
        round_trips.push(*trips);
        let a = autocorrelation(&p.energies);
        tau_int = tau_int.max(a.tau_int);
        tau_converged &= a.converged;
    }
    let block_len = prods[0].0.energies.len() / opts.blocks;
    let reweighting = MucaReweighting::new(es, obs, om, model.log_configurations());
    let prod_flatness = flatness(&hist, &visited_ever);
    let block_hists: Vec<&[Vec<f64>]> = prods.iter().map(|(p, _)| p.block_hist.as_slice()).collect();
    let (r_hat, r_hat_max) = log_g_r_hat(&block_hists, &weights);

    let min_trips = round_trips.iter().copied().min().unwrap_or(0);
    if min_trips < opts.min_round_trips {
        notes.push(format!(
            "a walker made {min_trips} round trips between the window's ends, fewer than {}",
            opts.min_round_trips
        ));
    }
    if prod_flatness < opts.min_production_flatness {
        notes.push(format!(
            "production histogram flatness {prod_flatness:.3} below {}",
            opts.min_production_flatness
        ));
    }
    // R̂ from a few blocks per walker is noisy: with 16 blocks, walkers that agree exceed
    // 1.05 in several per cent of runs. So a disagreement must also be beyond chance: the
    // bin-averaged between/within ratio above the 0.999 quantile of the F law it follows when
    // the walkers agree (trapped walkers give ratios in the hundreds).
    let (m, nb) = (opts.walkers as f64, opts.blocks as f64);
    let chance = (r_hat * r_hat - (nb - 1.0) / nb) * nb;
    if r_hat.is_infinite() {
        notes.push(
            "ln g cannot be compared across walkers: no bin was visited in every production block \
             (the run is too short for its window)"
                .to_string(),
        );
    } else if r_hat.is_nan()
        || (r_hat > opts.max_r_hat && chance > f_quantile(m - 1.0, m * (nb - 1.0), 3.0902))
    {
        notes.push(format!(
            "ln g disagrees across walkers: R̂ {r_hat:.3} above {}, beyond chance for {} blocks per walker",
            opts.max_r_hat, opts.blocks
        ));
    }
    if !tau_converged || (block_len as f64) < 2.0 * tau_int {
        notes.push(format!(
            "production blocks of {block_len} samples against τ_int ≥ {tau_int:.0}: the error bars would be too small"
        ));
    }
    let diagnostics = MucaDiagnostics {
        ok: notes.is_empty(),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        walkers: opts.walkers as u32,
        energy_window: (lo, weights.e_hi()),
        bins: bins as u32,
        bin_width: width,
        weight_updates: updates,
        wl_final_f: f,
        recursions,
        weights_flat: flat,
        production_updates: (prod_updates * opts.walkers) as u64,
        flatness: prod_flatness,
        round_trips,
        log_g_r_hat: r_hat,
        log_g_r_hat_max: r_hat_max,
        tau_int,
        block_len: block_len as u64,
    };
    Ok(MucaRun { weights, reweighting, blocks, histogram: hist, diagnostics })
}

/// R̂ of ln g across walkers: for every window bin, each production block's estimate
/// ln ĝ_k = ln H_k − ω(c_k) from the visits of all its updates (normalised over the block's
/// bins) is a series per walker, and Gelman–Rubin compares the walkers' series. Returns the R̂ of the
/// bin-averaged variance ratio, and the largest single bin's; bins missing from any block
/// are left out (a walker that never reaches a bin shows in its round trips instead).
fn log_g_r_hat(block_hists: &[&[Vec<f64>]], w: &MucaWeights) -> (f64, f64) {
    let bins = w.bins();
    // est[walker][block][bin]: ln ĝ_k = ln H_k − ω(c_k), normalised over the block's bins.
    // Taking ω at the bin's centre is off by a factor per bin, but the same one for every
    // block of every walker, so it cancels from the comparison.
    let est: Vec<Vec<Vec<f64>>> = block_hists
        .iter()
        .map(|bw| {
            bw.iter()
                .map(|h| {
                    let logs: Vec<f64> = (0..bins)
                        .map(
                            |k| if h[k] > 0.0 { h[k].ln() - w.omega(w.center(k)) } else { f64::NEG_INFINITY },
                        )
                        .collect();
                    let finite: Vec<f64> = logs.iter().copied().filter(|x| x.is_finite()).collect();
                    let norm = if finite.is_empty() {
                        0.0
                    } else {
                        let top = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        top + finite.iter().map(|x| exp_nonpos(x - top)).sum::<f64>().ln()
                    };
                    logs.into_iter().map(|x| x - norm).collect()
                })
                .collect()
        })
        .collect();
    let (mut ratio_sum, mut counted, mut worst) = (0.0, 0usize, 1.0f64);
    let m = est.len() as f64;
    let nb = est[0].len() as f64;
    for k in 0..bins {
        if est.iter().any(|wb| wb.iter().any(|b| !b[k].is_finite())) {
            continue;
        }
        let stats: Vec<(f64, f64)> =
            est.iter().map(|wb| mean_var(&wb.iter().map(|b| b[k]).collect::<Vec<_>>())).collect();
        let within = stats.iter().map(|&(_, v)| v * nb / (nb - 1.0)).sum::<f64>() / m;
        let grand = stats.iter().map(|&(mu, _)| mu).sum::<f64>() / m;
        let between = nb * stats.iter().map(|&(mu, _)| (mu - grand).powi(2)).sum::<f64>() / (m - 1.0);
        if within <= 0.0 {
            continue;
        }
        let ratio = between / within;
        ratio_sum += ratio;
        counted += 1;
        worst = worst.max(((nb - 1.0) / nb + ratio / nb).sqrt());
    }
    if counted == 0 {
        return (f64::INFINITY, f64::INFINITY);
    }
    (((nb - 1.0) / nb + ratio_sum / counted as f64 / nb).sqrt(), worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_zones_span_their_fraction_of_the_window_and_at_least_a_bin() {
        let w = MucaWeights::flat(-100.0, 2.0, 50, 1.0);
        let zone = end_zone_width(&w, 0.05);
        assert_eq!(zone, 5.0);
        assert_eq!(end_of_window(&w, zone, -100.0), -1);
        assert_eq!(end_of_window(&w, zone, -95.01), -1);
        assert_eq!(end_of_window(&w, zone, -95.0), 0);
        assert_eq!(end_of_window(&w, zone, -5.01), 0);
        assert_eq!(end_of_window(&w, zone, -5.0), 1);
        assert_eq!(end_of_window(&w, zone, -120.0), -1, "below the window: its low end");
        assert_eq!(end_of_window(&w, zone, 10.0), 1, "above it: its high end");
        assert_eq!(end_zone_width(&w, 0.001), 2.0, "never narrower than a bin");
    }

    #[test]
    fn an_end_zone_outside_0_to_a_half_is_refused_by_name() {
        for bad in [0.0, 0.5, -0.1, f64::NAN] {
            let err = check(&MucaOptions { end_zone: bad, ..MucaOptions::default() }).unwrap_err();
            assert!(err.to_string().contains("end_zone"), "{err}");
        }
    }
}
