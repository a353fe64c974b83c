//! The steps of one cell (docs/spec.md §6): resolve M, draw the training data, fit once,
//! evaluate the fit against the truth at every τ and find τ*. Every truth kind goes through
//! the same steps in the same order ([`CellSteps`], run by one function, [`run_steps`]); each
//! kind's steps live in its own module, and [`compute_cell`] is the one place that picks
//! them by the truth kind:
//! - [`two_level`]: the two-level truth, exact (closed forms beside the landscape);
//! - [`ising`]: the 2D Ising truth, enumerated or, past enumeration, by Monte Carlo;
//! - [`potts`]: Potts truths (`potts-random`, `potts-file`), by Monte Carlo.
//!
//! The Monte Carlo evaluation every truth kind shares is here ([`mcmc_analysis`]); the
//! fit-free evaluation of a given Ising model (`taustar eval`) is in [`eval`].

use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::cell::{
    CellResult, CellSettings, CellSpec, CurveOutput, CurvePoint, CurveSe, DataSize, FitReport, McmcReport,
    McmcSettings, Sampler, TauSummary, TruthSpec, TwoLevelFitReport,
};
use crate::error::SpecError;
use taustar_science::mc::estimate::{to_precision, McOptions, McTau, TruthSide};
use taustar_science::mc::local::LocalEnsemble;
use taustar_science::mc::multicanonical::{estimate_multicanonical, MucaError, MucaOptions};
use taustar_science::tau::{heat_capacity_peak, optimise, variance_match, Divergence, Landscape, Scan};

pub mod eval;
pub mod ising;
pub mod potts;
pub mod two_level;

pub use eval::{eval_ising_model, eval_ising_model_mcmc, MAX_MCMC_SPINS};

/// Largest M a cell may draw (a guard against μ values that explode).
pub const MAX_SAMPLES: u64 = 1_000_000_000;

/// Everything the τ analysis of one fitted model yields: the summary a cell keeps and the
/// curve at the requested τ values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TauReport {
    /// τ*, the divergences at τ = 1 and at τ*, the diagnostics.
    #[serde(flatten)]
    pub summary: TauSummary,
    /// The curve at the requested τ values.
    pub curve: Vec<CurvePoint>,
}

/// Analyse a landscape: curve at `taus`, τ* of both divergences, diagnostics.
/// `data_energy` = (mean, population variance) of Ê over the training data, if any.
pub fn analyse(
    land: &Landscape,
    taus: &[f64],
    bounds: (f64, f64),
    data_energy: Option<(f64, f64)>,
) -> TauReport {
    let scan = Scan::new(land, bounds);
    let rev = optimise(land, &scan, Divergence::Reverse);
    let fwd = optimise(land, &scan, Divergence::Forward);
    let at1 = land.eval(1.0);
    TauReport {
        summary: TauSummary {
            tau_rev: rev.tau,
            tau_fwd: fwd.tau,
            tau_rev_at_bound: rev.at_bound,
            tau_fwd_at_bound: fwd.at_bound,
            dkl_rev_at_1: at1.dkl_rev,
            dkl_rev_opt: rev.value,
            dkl_fwd_at_1: at1.dkl_fwd,
            dkl_fwd_opt: fwd.value,
            tau_heat_peak: heat_capacity_peak(land, &scan),
            tau_var: data_energy.and_then(|(mu, s2)| variance_match(land, &scan, mu, s2)),
            kappa_at_1: Some(at1.kappa),
            heat_capacity_at_1: Some(at1.heat_capacity),
        },
        curve: land.curve(taus),
    }
}

/// M of a cell: given directly, or round(exp(μ + S(p))) (docs/spec.md §3).
pub fn resolve_samples(data: DataSize, truth_entropy: f64, min: u64) -> Result<u64, SpecError> {
    let m = match data {
        DataSize::Samples(m) => m,
        DataSize::Mu(mu) => {
            let m = (mu + truth_entropy).exp().round();
            // NaN-safe: a NaN or infinite M fails this test too.
            if m.is_nan() || m > MAX_SAMPLES as f64 {
                return Err(SpecError::invalid(
                    "mu",
                    mu,
                    format!("gives M = exp(mu + S) = {m:e} samples, above the limit {MAX_SAMPLES}"),
                ));
            }
            m as u64
        }
    };
    if m < min {
        return Err(SpecError::invalid(
            match data {
                DataSize::Samples(_) => "samples",
                DataSize::Mu(_) => "mu",
            },
            match data {
                DataSize::Samples(m) => m.to_string(),
                DataSize::Mu(mu) => format!("{mu} (M = {m})"),
            },
            format!("this truth needs M >= {min}"),
        ));
    }
    if m > MAX_SAMPLES {
        return Err(SpecError::invalid("samples", m, format!("above the limit {MAX_SAMPLES}")));
    }
    Ok(m)
}

/// Most sites × samples a sampled cell holds in memory (one byte each).
pub const MAX_SAMPLED_BYTES: u64 = 1 << 30;

/// Compute one cell (docs/spec.md §6): draw data, fit once, evaluate the τ grid, find τ*.
///
/// Pure and deterministic: the same `spec` gives a bit-identical result whatever thread
/// runs it. Errors only on an invalid spec.
pub fn run_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    spec.validate()?;
    compute_cell(spec)
}

/// Compute a validated cell.
pub fn compute_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    // The one match on the truth kind of the cell pipeline.
    match &spec.point.truth {
        TruthSpec::TwoLevel { states, low_states, gap } => {
            Ok(run_steps(&two_level::TwoLevel::new(*states, *low_states, *gap), spec)?.result)
        }
        &TruthSpec::Ising2d { rows, cols, temperature } => {
            if rows * cols > crate::cell::MAX_ENUMERATED_SPINS {
                Ok(run_steps(&ising::SampledIsing::new(rows, cols, temperature), spec)?.result)
            } else {
                Ok(run_steps(&ising::EnumeratedIsing::new(rows, cols, temperature), spec)?.result)
            }
        }
        TruthSpec::PottsRandom { .. } | TruthSpec::PottsFile { .. } => {
            Ok(run_steps(&potts::Potts::load(spec)?, spec)?.result)
        }
    }
}

/// One truth kind's steps of a cell. [`run_steps`] calls them in the order every cell
/// follows, on the cell's one random stream: [`CellSteps::samples`] (before the stream is
/// opened), then [`CellSteps::draw`], [`CellSteps::fit`] and [`CellSteps::evaluate`].
pub trait CellSteps {
    /// The training data.
    type Data;
    /// The fitted model.
    type Fitted;
    /// What the evaluation learnt of the truth beyond the result (its side of the
    /// divergences, where that is estimated).
    type Side;
    /// M of the cell, checked against what this truth can draw.
    fn samples(&self, spec: &CellSpec) -> Result<u64, SpecError>;
    /// M samples of the truth.
    fn draw(&self, spec: &CellSpec, m: u64, rng: &mut ChaCha12Rng) -> Result<Self::Data, SpecError>;
    /// The cell's fit to the data and its report.
    fn fit(
        &self,
        spec: &CellSpec,
        data: &Self::Data,
        rng: &mut ChaCha12Rng,
    ) -> Result<Fitted<Self::Fitted>, SpecError>;
    /// The τ analysis of the fit against the truth.
    fn evaluate(
        &self,
        spec: &CellSpec,
        data: &Self::Data,
        fit: &Self::Fitted,
        rng: &mut ChaCha12Rng,
    ) -> Result<Evaluated<Self::Side>, SpecError>;
}

/// A fit and what the result reports of it.
pub struct Fitted<F> {
    /// The fitted model.
    pub model: F,
    /// The fit's diagnostics.
    pub report: FitReport,
    /// The two-level fit's own parts (empty for other truths).
    pub two_level: TwoLevelFitReport,
}

/// What an evaluation yields.
pub struct Evaluated<S> {
    /// τ*, the divergences and the curve.
    pub tau: TauReport,
    /// Standard errors and diagnostics (Monte Carlo evaluations only).
    pub mcmc: McmcReport,
    /// The truth's side, where it was estimated.
    pub side: S,
}

/// A computed cell and the pieces behind it (for tests that check a cell against an exact
/// answer, and for tools that time or export the pieces).
pub struct Ran<K: CellSteps + ?Sized> {
    /// The result as a study stores it.
    pub result: CellResult,
    /// The training data.
    pub data: K::Data,
    /// The fitted model.
    pub fit: K::Fitted,
    /// The truth's side, where it was estimated.
    pub side: K::Side,
}

/// Run a cell's steps (the trait's order) and assemble its result.
pub fn run_steps<K: CellSteps + ?Sized>(kind: &K, spec: &CellSpec) -> Result<Ran<K>, SpecError> {
    let m = kind.samples(spec)?;
    let mut rng = spec.rng();
    let data = kind.draw(spec, m, &mut rng)?;
    let fit = kind.fit(spec, &data, &mut rng)?;
    let ev = kind.evaluate(spec, &data, &fit.model, &mut rng)?;
    let result = cell_result(spec, m, ev.tau, fit.two_level, fit.report, ev.mcmc);
    Ok(Ran { result, data, fit: fit.model, side: ev.side })
}

/// The `[mcmc]` settings of a Monte Carlo cell, or the error naming what is missing.
pub(crate) fn mcmc_settings<'s>(spec: &'s CellSpec, what: &str) -> Result<&'s McmcSettings, SpecError> {
    spec.settings.mcmc.as_ref().ok_or_else(|| {
        SpecError::invalid("eval.method", "exact", format!("{what} needs [eval] method = \"mcmc\""))
    })
}

/// The sampler options of a Monte Carlo cell: its `[mcmc]` settings, the τ* search bounds,
/// and the τ of the curve it reports.
pub fn mc_options(m: &McmcSettings, tau_bounds: (f64, f64), curve: Vec<f64>) -> McOptions {
    McOptions {
        tau_bounds,
        steps: m.steps as usize,
        burn_in: m.burn_in as usize,
        pilot_sweeps: m.pilot_sweeps as usize,
        resamples: m.resamples as usize,
        min_swap_acceptance: m.min_swap_acceptance,
        min_round_trips: u64::from(m.min_round_trips),
        ladders: m.ladders as usize,
        max_r_hat: m.max_r_hat,
        ladder: None,
        curve,
        // A worker runs one cell per core, and a resumed study reproduces its cells bit for
        // bit: the ladders of a cell run one after the other on the cell's stream.
        parallel_ladders: false,
    }
}

/// The τ analysis of a fitted model by Monte Carlo (docs/spec.md §10): the estimate (run
/// to `target_se` when one is set) as a [`TauReport`] of point values, and its standard
/// errors and diagnostics as a [`McmcReport`].
pub fn mcmc_analysis<E: LocalEnsemble + ?Sized, R: rand::Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    side: TruthSide,
    truth_samples: Option<&[f64]>,
    mcmc: &McmcSettings,
    settings: &CellSettings,
    rng: &mut R,
) -> Result<(TauReport, McmcReport), SpecError> {
    Ok(mcmc_reports(&mcmc_estimate(q, truth_energy, side, truth_samples, mcmc, settings, rng)?))
}

/// The multicanonical sampler's options of a cell: its `[mcmc]` settings on the science
/// defaults (the window, bins and weight iteration set themselves).
pub fn muca_options(m: &McmcSettings) -> MucaOptions {
    MucaOptions {
        walkers: m.walkers as usize,
        pilot_sweeps: m.pilot_sweeps as usize,
        production_sweeps: m.production_sweeps as usize,
        resamples: m.resamples as usize,
        min_round_trips: u64::from(m.min_walker_round_trips),
        max_r_hat: m.max_r_hat,
        ..MucaOptions::default()
    }
}

/// The Monte Carlo estimate of a cell with its `[mcmc] sampler` (run to `target_se` when one
/// is set; the steps or sweeps it took are in its diagnostics). Errors only where the
/// multicanonical sampler refuses the model (nothing to sample: no couplings, no fields).
pub(crate) fn mcmc_estimate<E: LocalEnsemble + ?Sized, R: rand::Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    side: TruthSide,
    truth_samples: Option<&[f64]>,
    mcmc: &McmcSettings,
    settings: &CellSettings,
    rng: &mut R,
) -> Result<McTau, SpecError> {
    let opts = mc_options(mcmc, settings.tau_bounds, reported_taus(settings));
    let sampler = match mcmc.sampler {
        Sampler::Tempering => SamplerOptions::Tempering,
        Sampler::Multicanonical => SamplerOptions::Multicanonical(muca_options(mcmc)),
    };
    estimate_with(
        q,
        truth_energy,
        side,
        truth_samples,
        &opts,
        &sampler,
        mcmc.target_se.map(|t| (t, mcmc.max_steps as usize)),
        rng,
    )
}

/// Which sampler an estimate runs, with the multicanonical sampler's own options.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerOptions {
    /// Parallel tempering (its options are [`McOptions`]'s).
    Tempering,
    /// Multicanonical walkers.
    Multicanonical(MucaOptions),
}

/// The estimate of either sampler, once or to a precision: `precision` = (target standard
/// error of τ*, budget), the budget in tempering steps or in production sweeps per walker.
/// Every Monte Carlo evaluation (cells, `taustar eval`) goes through here.
#[allow(clippy::too_many_arguments)]
pub fn estimate_with<E: LocalEnsemble + ?Sized, R: rand::Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    side: TruthSide,
    truth_samples: Option<&[f64]>,
    opts: &McOptions,
    sampler: &SamplerOptions,
    precision: Option<(f64, usize)>,
    rng: &mut R,
) -> Result<McTau, SpecError> {
    use taustar_science::mc::estimate::{estimate_ensemble, estimate_to_precision};
    match (sampler, precision) {
        (SamplerOptions::Tempering, Some((target, budget))) => {
            Ok(estimate_to_precision(q, truth_energy, side, truth_samples, opts, target, budget, rng))
        }
        (SamplerOptions::Tempering, None) => {
            Ok(estimate_ensemble(q, truth_energy, side, truth_samples, opts, rng))
        }
        (SamplerOptions::Multicanonical(muca), precision) => {
            let mut muca = muca.clone();
            let refused = |e: MucaError| SpecError::invalid("mcmc.sampler", "multicanonical", e.to_string());
            let first = muca.production_sweeps;
            let mut run = |sweeps: usize| {
                muca.production_sweeps = sweeps;
                estimate_multicanonical(q, truth_energy, side, truth_samples, opts, &muca, rng).map(|r| r.tau)
            };
            match precision {
                Some((target, budget)) => to_precision(first, target, budget, "sweeps per walker", &mut run),
                None => run(first),
            }
            .map_err(refused)
        }
    }
}

/// Split a Monte Carlo estimate into the values a result shares with exact cells and the
/// standard errors and diagnostics only Monte Carlo cells have.
pub(crate) fn mcmc_reports(r: &McTau) -> (TauReport, McmcReport) {
    let summary = TauSummary {
        tau_rev: r.tau_rev.value,
        tau_fwd: r.tau_fwd.value,
        tau_rev_at_bound: r.at_bound.0,
        tau_fwd_at_bound: r.at_bound.1,
        dkl_rev_at_1: r.dkl_rev_at_1.value,
        dkl_rev_opt: r.dkl_rev_opt.value,
        dkl_fwd_at_1: r.dkl_fwd_at_1.value,
        dkl_fwd_opt: r.dkl_fwd_opt.value,
        // Truth-free diagnostics that need the whole exact landscape (or the data): not
        // estimated by Monte Carlo.
        tau_heat_peak: None,
        tau_var: None,
        kappa_at_1: Some(r.kappa_at_1.value),
        heat_capacity_at_1: Some(r.heat_capacity_at_1.value),
    };
    let curve = r
        .curve
        .iter()
        .map(|p| CurvePoint {
            tau: p.tau,
            dkl_rev: p.dkl_rev.value,
            dkl_fwd: p.dkl_fwd.value,
            entropy: p.entropy.value,
            mean_energy: p.mean_energy.value,
            heat_capacity: p.heat_capacity.value,
            kappa: Some(p.kappa.value),
        })
        .collect();
    let curve_se = r
        .curve
        .iter()
        .map(|p| CurveSe {
            dkl_rev: p.dkl_rev.se,
            dkl_fwd: p.dkl_fwd.se,
            entropy: p.entropy.se,
            mean_energy: p.mean_energy.se,
            heat_capacity: p.heat_capacity.se,
            kappa: p.kappa.se,
        })
        .collect();
    let report = McmcReport {
        tau_rev_se: Some(r.tau_rev.se),
        tau_fwd_se: Some(r.tau_fwd.se),
        dkl_rev_at_1_se: Some(r.dkl_rev_at_1.se),
        dkl_rev_opt_se: Some(r.dkl_rev_opt.se),
        dkl_fwd_at_1_se: Some(r.dkl_fwd_at_1.se),
        dkl_fwd_opt_se: Some(r.dkl_fwd_opt.se),
        kappa_at_1_se: Some(r.kappa_at_1.se),
        heat_capacity_at_1_se: Some(r.heat_capacity_at_1.se),
        ladder: Some(r.diagnostics.clone()),
        log_z_ti_gap: r.log_z_ti_gap.map(|g| g.value),
        log_z_ti_gap_se: r.log_z_ti_gap.map(|g| g.se),
        tau_fwd_equilibrated: r.tau_fwd_equilibrated.map(|t| t.value),
        tau_fwd_equilibrated_se: r.tau_fwd_equilibrated.map(|t| t.se),
        curve_se,
    };
    (TauReport { summary, curve }, report)
}

/// The τ values of the curve a result carries: the reporting grid, or none when the study
/// keeps no curve with its results (the curve is then not computed at all; nothing else
/// reads it).
pub(crate) fn reported_taus(settings: &CellSettings) -> Vec<f64> {
    if settings.curves.stored() {
        settings.tau_grid.values()
    } else {
        Vec::new()
    }
}

fn cell_result(
    spec: &CellSpec,
    samples: u64,
    report: TauReport,
    two_level: TwoLevelFitReport,
    fit: FitReport,
    mut mcmc: McmcReport,
) -> CellResult {
    let curve = match spec.settings.curves {
        CurveOutput::All => report.curve,
        CurveOutput::None | CurveOutput::Recompute => {
            mcmc.curve_se.clear();
            Vec::new()
        }
    };
    CellResult { key: spec.key(), samples, tau: report.summary, two_level, fit, mcmc, curve }
}
