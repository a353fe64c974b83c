//! The settings every cell of a study shares (not swept, so not in the key): the τ grid and
//! search bounds, the fit's limits and, for Monte Carlo cells, the sampler's (`[mcmc]`).

use serde::{Deserialize, Serialize};

use crate::error::SpecError;

/// Settings shared by every cell of a study (not swept, so not part of the cell key; the
/// coordinator refuses to change them for an existing study).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSettings {
    /// Reporting grid of τ: `count` points evenly from `from` to `to`; 1.0 is always added.
    pub tau_grid: TauGrid,
    /// Bounds [lo, hi] of the continuous τ* search.
    pub tau_bounds: (f64, f64),
    /// Iteration cap of the Ising fit: gradient steps in `paper` mode (the authors' Fig. 3
    /// sweep stops at 15 000), Newton steps in `mle` mode (which converges in tens).
    pub max_iter: u32,
    /// `paper` mode's stopping rule: the relative change of the NLL between two gradient
    /// steps below this ends the fit (the authors' Fig. 3 sweep: 1e-5). Absent in settings
    /// written before the key existed; those studies ran with [`LEGACY_REL_TOL`], and a
    /// store made then must resume with it, never silently with the new default.
    #[serde(default = "legacy_rel_tol")]
    pub rel_tol: f64,
    /// In `mle` mode with λ = 0: max|Ĵ| beyond which the MLE is declared non-existent.
    pub coupling_cap: f64,
    /// Whether results carry their τ curve (study key `tau.curves`). Absent in settings
    /// written before the key existed, which all kept their curves.
    #[serde(default)]
    pub curves: CurveOutput,
    /// `[eval] method = "mcmc"`: evaluate τ by Monte Carlo with these settings (docs/spec.md
    /// §10); `None` enumerates (`method = "exact"`, the default). Absent in settings written
    /// before Monte Carlo existed, which were all exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcmc: Option<McmcSettings>,
    /// `bml`: stop when the Pearson correlation of the model's and the data's connected
    /// correlations reaches this (study key `fit.pearson_target`; adabmDCA's 0.95).
    #[serde(default = "default_pearson_target")]
    pub pearson_target: f64,
    /// `bml`: the sweep budget of each persistent chain (study key `fit.max_sweeps`).
    #[serde(default = "default_max_sweeps")]
    pub max_sweeps: u64,
}

fn default_pearson_target() -> f64 {
    taustar_science::fit::bml::DEFAULT_BML.pearson_target
}

fn default_max_sweeps() -> u64 {
    taustar_science::fit::bml::DEFAULT_BML.max_sweeps
}

/// How a Monte Carlo cell samples (study table `[mcmc]`, docs/spec.md §10). Every count is
/// per cell; the cell's random stream (its key) seeds every chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct McmcSettings {
    /// Parallel-tempering steps recorded, all ladders together (each step sweeps every rung).
    pub steps: u32,
    /// Steps each ladder discards first.
    pub burn_in: u32,
    /// Sweeps per pilot run of the automatic ladder placement.
    pub pilot_sweeps: u32,
    /// Block-bootstrap resamples behind every standard error (at least 200).
    pub resamples: u32,
    /// Independent ladders; with two or more, R̂ compares them.
    pub ladders: u32,
    /// Run longer (doubling `steps`, or `production_sweeps` for the multicanonical sampler)
    /// until the standard errors of τ*_rev and τ*_fwd are at most this, or `max_steps` would
    /// be passed (the cell is then reported with `mcmc_ok = false`). `None`: one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_se: Option<f64>,
    /// The step budget of `target_se`.
    pub max_steps: u32,
    /// Smallest acceptable neighbour swap acceptance.
    pub min_swap_acceptance: f64,
    /// Fewest acceptable ladder round trips (all ladders together).
    pub min_round_trips: u32,
    /// Largest acceptable Gelman–Rubin R̂ across the ladders.
    pub max_r_hat: f64,
    /// Lattices past enumeration: steps of the truth chain that estimate ⟨Ê⟩ under the
    /// truth (its ln Z and ⟨E⟩ come from Kaufman's formula). Unused while the truth is
    /// enumerable.
    pub truth_steps: u32,
    /// How the fitted model is sampled: parallel tempering (the default) or multicanonical
    /// sampling, for models whose energy law turns bimodal below τ = 1 (docs/spec.md §10).
    /// Absent in settings written before the key existed, which all used tempering.
    #[serde(skip_serializing_if = "Sampler::is_tempering")]
    pub sampler: Sampler,
    /// Multicanonical: walkers, each on its own stream (ln g is compared across them).
    #[serde(skip_serializing_if = "is_default_walkers")]
    pub walkers: u32,
    /// Multicanonical: production sweeps per walker (with `target_se`, they double up to
    /// `max_steps` sweeps per walker). The weight iteration before them stops by itself.
    #[serde(skip_serializing_if = "is_default_production_sweeps")]
    pub production_sweeps: u32,
    /// Multicanonical: fewest round trips between the energy window's ends that every walker
    /// must make.
    #[serde(skip_serializing_if = "is_default_min_walker_round_trips")]
    pub min_walker_round_trips: u32,
}

/// The sampler of a Monte Carlo cell (`[mcmc] sampler`, `--sampler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Parallel tempering on a placed β ladder, MBAR between the rungs.
    #[default]
    Tempering,
    /// Multicanonical walkers with weights that flatten the energy histogram, reweighted to
    /// every β: crosses the barrier of an abrupt (first-order-like) ordering that a ladder
    /// cannot.
    Multicanonical,
}

impl Sampler {
    /// The default, left out of stored settings (so settings written before the key existed
    /// read back equal).
    pub fn is_tempering(&self) -> bool {
        *self == Sampler::Tempering
    }

    /// The name in study files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Tempering => "tempering",
            Sampler::Multicanonical => "multicanonical",
        }
    }
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> Result<Sampler, String> {
        match s {
            "tempering" => Ok(Sampler::Tempering),
            "multicanonical" => Ok(Sampler::Multicanonical),
            other => Err(format!(
                "unknown sampler {other:?}: expected \"tempering\" (parallel tempering, the default) or \
                 \"multicanonical\" (for models that order abruptly below τ = 1)"
            )),
        }
    }
}

fn muca_defaults() -> taustar_science::mc::multicanonical::MucaOptions {
    taustar_science::mc::multicanonical::MucaOptions::default()
}

fn is_default_walkers(v: &u32) -> bool {
    *v as usize == muca_defaults().walkers
}

fn is_default_production_sweeps(v: &u32) -> bool {
    *v as usize == muca_defaults().production_sweeps
}

fn is_default_min_walker_round_trips(v: &u32) -> bool {
    u64::from(*v) == muca_defaults().min_round_trips
}

/// The sampler's defaults are [`taustar_science::mc::estimate::McOptions::default`]'s, written once there; only what a
/// cell adds (the precision budget, the truth chain) is set here.
impl Default for McmcSettings {
    fn default() -> Self {
        let o = taustar_science::mc::estimate::McOptions::default();
        // The science defaults are small numbers; a cast that truncated would be a typo there.
        let u32_of = |v: usize| u32::try_from(v).expect("a default sampler setting fits in u32");
        McmcSettings {
            steps: u32_of(o.steps),
            burn_in: u32_of(o.burn_in),
            pilot_sweeps: u32_of(o.pilot_sweeps),
            resamples: u32_of(o.resamples),
            ladders: u32_of(o.ladders),
            target_se: None,
            max_steps: 64_000,
            min_swap_acceptance: o.min_swap_acceptance,
            min_round_trips: u32::try_from(o.min_round_trips).expect("a default sampler setting fits in u32"),
            max_r_hat: o.max_r_hat,
            truth_steps: 20_000,
            sampler: Sampler::Tempering,
            walkers: u32_of(muca_defaults().walkers),
            production_sweeps: u32_of(muca_defaults().production_sweeps),
            min_walker_round_trips: u32::try_from(muca_defaults().min_round_trips)
                .expect("a default sampler setting fits in u32"),
        }
    }
}

/// Fewest bootstrap resamples a Monte Carlo cell may report error bars from (docs/spec.md §10).
pub const MIN_RESAMPLES: u32 = 200;

/// The τ* search bounds of a Monte Carlo study that does not set `tau.bounds`: the ladder
/// runs to β = 1/lo and its length grows with ln(1/lo), so the exact default (0.01, 100)
/// would cost ~3× the rungs for temperatures nobody samples at.
pub const MCMC_DEFAULT_TAU_BOUNDS: (f64, f64) = (0.2, 5.0);

impl McmcSettings {
    /// Check every value; the error names the `mcmc.*` key.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.steps < 100 {
            return Err(SpecError::invalid("mcmc.steps", self.steps, "need at least 100 steps"));
        }
        if self.pilot_sweeps < 10 {
            return Err(SpecError::invalid("mcmc.pilot_sweeps", self.pilot_sweeps, "need at least 10"));
        }
        if self.resamples < MIN_RESAMPLES {
            return Err(SpecError::invalid(
                "mcmc.resamples",
                self.resamples,
                format!("need at least {MIN_RESAMPLES} bootstrap resamples for a reported error bar"),
            ));
        }
        if !(1..=16).contains(&self.ladders) {
            return Err(SpecError::invalid("mcmc.ladders", self.ladders, "need 1 <= ladders <= 16"));
        }
        if self.ladders > 1 && self.steps / self.ladders < 50 {
            return Err(SpecError::invalid(
                "mcmc.steps",
                self.steps,
                format!("need at least 50 steps per ladder ({} ladders)", self.ladders),
            ));
        }
        if let Some(t) = self.target_se {
            if !(t.is_finite() && t > 0.0) {
                return Err(SpecError::invalid("mcmc.target_se", t, "must be a finite number > 0"));
            }
        }
        if self.max_steps < self.steps && self.sampler == Sampler::Tempering {
            return Err(SpecError::invalid(
                "mcmc.max_steps",
                self.max_steps,
                format!("the budget must be at least mcmc.steps = {}", self.steps),
            ));
        }
        if !(0.0..1.0).contains(&self.min_swap_acceptance) {
            return Err(SpecError::invalid(
                "mcmc.min_swap_acceptance",
                self.min_swap_acceptance,
                "need 0 <= min_swap_acceptance < 1",
            ));
        }
        if self.truth_steps < 100 {
            return Err(SpecError::invalid("mcmc.truth_steps", self.truth_steps, "need at least 100 steps"));
        }
        if !(self.max_r_hat.is_finite() && self.max_r_hat >= 1.0) {
            return Err(SpecError::invalid("mcmc.max_r_hat", self.max_r_hat, "need a finite number >= 1"));
        }
        if self.sampler == Sampler::Multicanonical {
            if !(2..=64).contains(&self.walkers) {
                return Err(SpecError::invalid(
                    "mcmc.walkers",
                    self.walkers,
                    "need 2 <= walkers <= 64 (ln g is compared across walkers)",
                ));
            }
            let blocks = muca_defaults().blocks as u32;
            if self.production_sweeps < 50 * blocks {
                return Err(SpecError::invalid(
                    "mcmc.production_sweeps",
                    self.production_sweeps,
                    format!(
                        "need at least {} sweeps per walker ({blocks} bootstrap blocks of 50)",
                        50 * blocks
                    ),
                ));
            }
            if self.target_se.is_some() && self.max_steps < self.production_sweeps {
                return Err(SpecError::invalid(
                    "mcmc.max_steps",
                    self.max_steps,
                    format!(
                        "with the multicanonical sampler the budget is sweeps per walker, at least \
                         mcmc.production_sweeps = {}",
                        self.production_sweeps
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Which results keep their τ curve (the reporting grid's D_rev, D_fwd, S, ⟨E⟩, C, κ).
///
/// The curve is 56 bytes per τ — about 4 KB of a result's 4.3 KB at the default 71 points —
/// and the coordinator's cost per result follows those bytes (wire, WAL, checkpoint, file
/// size). τ*, the divergences at τ = 1 and at τ*, and the diagnostics are computed and kept
/// whatever the choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurveOutput {
    /// Every result keeps its curve (`curves.*` exports and `plot --point` read it).
    #[default]
    All,
    /// No result keeps a curve: phase diagrams and summaries only.
    None,
    /// Results are stored without their curve, and a reader that needs one computes the cell
    /// again: a cell is a pure function of its spec, so the curve comes back bit-identical,
    /// and the reader checks that every stored scalar does too. For cells that cost
    /// microseconds (the two-level truth), recomputing is cheaper than reading 4 KB.
    Recompute,
}

impl CurveOutput {
    /// Whether a worker sends the curve with its result.
    pub fn stored(self) -> bool {
        self == CurveOutput::All
    }
}

/// The reporting grid of τ (evenly spaced, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TauGrid {
    /// First τ.
    pub from: f64,
    /// Last τ.
    pub to: f64,
    /// Number of points (≥ 2, or 1 for `from` alone).
    pub count: u32,
}

impl TauGrid {
    /// The grid's τ values, ascending, with 1.0 inserted if absent.
    pub fn values(&self) -> Vec<f64> {
        let n = self.count.max(1) as usize;
        let mut v: Vec<f64> = if n == 1 {
            vec![self.from]
        } else {
            (0..n).map(|i| self.from + (self.to - self.from) * i as f64 / (n - 1) as f64).collect()
        };
        if !v.contains(&1.0) {
            v.push(1.0);
        }
        v.sort_by(f64::total_cmp);
        v
    }
}

/// `paper` mode's default relative-NLL tolerance: the authors' Fig. 3 sweep
/// (`run_full_sweeps_exact`), docs/spec.md §4.2.
pub const DEFAULT_REL_TOL: f64 = 1e-5;
/// The default iteration cap (the authors' Fig. 3 sweep takes at most 15 000 gradient steps).
pub const DEFAULT_MAX_ITER: u32 = 15_000;
/// The relative-NLL tolerance every study used before `fit.rel_tol` existed (it came from an
/// earlier, wrong reading of the paper's code; tighter than the authors' Fig. 3 sweep, it
/// over-fits sparse data). Kept only so stores made then resume unchanged.
pub const LEGACY_REL_TOL: f64 = 1e-7;
/// The iteration cap every study used before the default became [`DEFAULT_MAX_ITER`].
pub const LEGACY_MAX_ITER: u32 = 10_000;

fn legacy_rel_tol() -> f64 {
    LEGACY_REL_TOL
}

impl Default for CellSettings {
    fn default() -> Self {
        CellSettings {
            tau_grid: TauGrid { from: 0.2, to: 5.0, count: 70 },
            tau_bounds: (0.01, 100.0),
            max_iter: DEFAULT_MAX_ITER,
            rel_tol: DEFAULT_REL_TOL,
            coupling_cap: 20.0,
            curves: CurveOutput::All,
            mcmc: None,
            pearson_target: default_pearson_target(),
            max_sweeps: default_max_sweeps(),
        }
    }
}

/// Most points (`count`) of the reporting τ grid; a curve holds one more when τ = 1 is not on
/// the grid. Every point is stored with each result (48 bytes) and
/// travels in its upload; 10^4 points keep a result near 0.5 MB, far below the coordinator's
/// message limit, and are far more than a curve needs.
pub const MAX_TAU_GRID_POINTS: u32 = 10_000;

impl CellSettings {
    /// Check the τ grid, bounds and fit limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        let g = &self.tau_grid;
        if !(g.from.is_finite() && g.to.is_finite() && g.from > 0.0 && g.to >= g.from)
            || g.count == 0
            || g.count > MAX_TAU_GRID_POINTS
        {
            return Err(SpecError::invalid(
                "tau.grid",
                format!("{}:{}:{}", g.from, g.to, g.count),
                format!("need 0 < from <= to and 1 <= count <= {MAX_TAU_GRID_POINTS}"),
            ));
        }
        let (lo, hi) = self.tau_bounds;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
            return Err(SpecError::invalid("tau.bounds", format!("{lo}:{hi}"), "need 0 < lo < hi"));
        }
        if self.max_iter == 0 {
            return Err(SpecError::invalid("fit.max_iter", self.max_iter, "must be >= 1"));
        }
        if !(self.rel_tol.is_finite() && self.rel_tol > 0.0 && self.rel_tol < 1.0) {
            return Err(SpecError::invalid(
                "fit.rel_tol",
                self.rel_tol,
                "need a finite number 0 < rel_tol < 1 (the authors' Fig. 3 sweep uses 1e-5)",
            ));
        }
        if !(self.coupling_cap.is_finite() && self.coupling_cap > 0.0) {
            return Err(SpecError::invalid(
                "fit.coupling_cap",
                self.coupling_cap,
                "must be a finite number > 0",
            ));
        }
        if !(self.pearson_target.is_finite() && self.pearson_target > 0.0 && self.pearson_target <= 1.0) {
            return Err(SpecError::invalid(
                "fit.pearson_target",
                self.pearson_target,
                "need 0 < pearson_target <= 1",
            ));
        }
        if self.max_sweeps == 0 {
            return Err(SpecError::invalid("fit.max_sweeps", self.max_sweeps, "must be >= 1"));
        }
        if let Some(mcmc) = &self.mcmc {
            mcmc.validate()?;
            if !(lo < 1.0 && hi > 1.0) {
                return Err(SpecError::invalid(
                    "tau.bounds",
                    format!("{lo}:{hi}"),
                    "Monte Carlo evaluation needs lo < 1 < hi (the ladder is placed from β = 0 to 1/lo)",
                ));
            }
            if self.curves == CurveOutput::Recompute {
                return Err(SpecError::invalid(
                    "tau.curves",
                    "recompute",
                    "a Monte Carlo cell is too costly to compute again for its curve; use \"all\" or \"none\"",
                ));
            }
        }
        Ok(())
    }
}
