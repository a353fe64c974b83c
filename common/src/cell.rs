//! The unit of work: one cell = one grid point × one replicate (docs/spec.md §6).
//!
//! A cell draws its data, fits once and evaluates the whole τ range. Its random stream
//! depends only on (study seed, canonical cell key), so the same cell gives bit-identical
//! results on any worker, in any order, after any restart.

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SpecError;
pub use taustar_science::fit::{FitMode, FitStop};
pub use taustar_science::mc::diagnostics::LadderDiagnostics;
pub use taustar_science::tau::CurvePoint;

/// Largest number of spins whose 2^N states are enumerated exactly. 2^24 states need
/// ~128 MiB per array; beyond that the data come from Markov chains, the fit is `plm` and
/// the evaluation Monte Carlo.
pub const MAX_ENUMERATED_SPINS: u32 = 24;

/// Largest lattice a cell fits and samples: a fully connected model of N spins has
/// N(N−1)/2 couplings (8·10^6 at 64×64) and its pseudo-likelihood fit reads every sample
/// once per site and iteration.
pub const MAX_SAMPLED_SPINS: u64 = 4_096;

/// The ground truth p(x) of a cell (docs/spec.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TruthSpec {
    /// N_s states, n_g of them at energy 0 and the rest at energy Δ (docs/spec.md §2.1).
    TwoLevel {
        /// N_s, the number of states.
        states: u32,
        /// n_g, the number of low-energy states (1 ≤ n_g < N_s).
        low_states: u32,
        /// Δ > 0, the energy gap.
        gap: f64,
    },
    /// Periodic nearest-neighbour Ising model on a rows×cols torus at temperature T (docs/spec.md §2.2).
    Ising2d {
        /// Lattice rows m.
        rows: u32,
        /// Lattice columns n.
        cols: u32,
        /// Truth temperature T > 0.
        temperature: f64,
    },
    /// A seeded synthetic protein-like Potts family (docs/spec.md §10, "Potts truths";
    /// [`taustar_science::potts::random`]): N sites of q states, a backbone plus random long-range
    /// contacts, Gaussian couplings σ_J on them and fields σ_h, at temperature 1.
    PottsRandom {
        /// N, the number of sites.
        sites: u32,
        /// q, the states per site (21 for proteins).
        states: u32,
        /// σ_J of the couplings on contacts.
        coupling_strength: f64,
        /// σ_h of the fields.
        field_strength: f64,
        /// Fraction of pairs in contact.
        contact_fraction: f64,
        /// Which family (the study seed picks the data; this picks the truth).
        family_seed: u64,
    },
    /// A user's Potts model as the truth, in adabmDCA's text format (docs/spec.md §10): the
    /// file is named by its content (SHA-256) in the key, so a cell's result always belongs
    /// to the model it was computed from, wherever the file lives; workers read it from
    /// `path` and refuse a file whose content changed.
    PottsFile {
        /// Where workers read the model (absolute once a study file is parsed).
        path: String,
        /// Its alphabet: `protein`, `rna`, `dna` or the symbols in state order.
        alphabet: String,
        /// N, read from the file when the study was parsed.
        sites: u32,
        /// q, the alphabet's size.
        states: u32,
        /// SHA-256 of the file's bytes, lower-case hex.
        sha256: String,
    },
}

/// A truth's swept values as table columns (`None` where the kind has no such value): what
/// the `cells` and `summary` tables and the maps show of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthColumns {
    /// The kind as study files, keys and tables spell it: `two-level`, `ising2d`,
    /// `potts-random` or `potts-file`.
    pub kind: &'static str,
    /// N_s of a two-level truth, q of a Potts truth.
    pub states: Option<u64>,
    /// n_g.
    pub low_states: Option<u64>,
    /// Δ.
    pub gap: Option<f64>,
    /// `rows x cols`, e.g. `4x4`.
    pub lattice: Option<String>,
    /// T.
    pub temperature: Option<f64>,
    /// N of a Potts truth.
    pub sites: Option<u64>,
    /// σ_J of a `potts-random` truth.
    pub coupling_strength: Option<f64>,
}

impl TruthColumns {
    /// The truth's own axis of a phase diagram (the other is the data size): its value, its
    /// symbol and what it is — Δ of a two-level truth, T of an Ising truth, σ_J of a
    /// `potts-random` family; `None` for a `potts-file` truth, which has no such parameter.
    pub fn axis(&self) -> Option<(f64, &'static str, &'static str)> {
        if let Some(g) = self.gap {
            Some((g, "Δ", "energy gap of the truth"))
        } else if let Some(t) = self.temperature {
            Some((t, "T", "truth temperature"))
        } else {
            self.coupling_strength.map(|c| (c, "σ_J", "coupling strength of the truth"))
        }
    }
}

impl TruthSpec {
    /// The truth as table columns. With [`GridPoint::key`] and the validation of a point,
    /// one of the few places that look at the kind: the tables, summaries and maps ask this
    /// rather than match on it.
    pub fn columns(&self) -> TruthColumns {
        let mut c = TruthColumns {
            kind: "",
            states: None,
            low_states: None,
            gap: None,
            lattice: None,
            temperature: None,
            sites: None,
            coupling_strength: None,
        };
        match self {
            TruthSpec::TwoLevel { states, low_states, gap } => {
                c.kind = "two-level";
                c.states = Some(u64::from(*states));
                c.low_states = Some(u64::from(*low_states));
                c.gap = Some(*gap);
            }
            TruthSpec::Ising2d { rows, cols, temperature } => {
                c.kind = "ising2d";
                c.lattice = Some(format!("{rows}x{cols}"));
                c.temperature = Some(*temperature);
            }
            TruthSpec::PottsRandom { sites, states, coupling_strength, .. } => {
                c.kind = "potts-random";
                c.sites = Some(u64::from(*sites));
                c.states = Some(u64::from(*states));
                c.coupling_strength = Some(*coupling_strength);
            }
            TruthSpec::PottsFile { sites, states, .. } => {
                c.kind = "potts-file";
                c.sites = Some(u64::from(*sites));
                c.states = Some(u64::from(*states));
            }
        }
        c
    }

    /// (n_g, Δ) of a two-level truth, what its closed-form fit's n̂_g and Δ̂ are measured
    /// against; `None` for the kinds fitted by a coupling model (whose fit can diverge).
    pub fn two_level_truth(&self) -> Option<(u32, f64)> {
        match *self {
            TruthSpec::TwoLevel { low_states, gap, .. } => Some((low_states, gap)),
            TruthSpec::Ising2d { .. } | TruthSpec::PottsRandom { .. } | TruthSpec::PottsFile { .. } => None,
        }
    }

    /// The `potts-random` truth of a family (the inverse of [`TruthSpec::potts_random`]).
    pub fn from_potts_random(family: &taustar_science::potts::PottsRandomSpec) -> TruthSpec {
        TruthSpec::PottsRandom {
            sites: family.sites as u32,
            states: family.states as u32,
            coupling_strength: family.coupling_strength,
            field_strength: family.field_strength,
            contact_fraction: family.contact_fraction,
            family_seed: family.seed,
        }
    }

    /// The `potts-random` family's spec; `None` for the other kinds.
    pub fn potts_random(&self) -> Option<taustar_science::potts::PottsRandomSpec> {
        match *self {
            TruthSpec::PottsRandom {
                sites,
                states,
                coupling_strength,
                field_strength,
                contact_fraction,
                family_seed,
            } => Some(taustar_science::potts::PottsRandomSpec {
                sites: sites as usize,
                states: states as usize,
                coupling_strength,
                field_strength,
                contact_fraction,
                seed: family_seed,
            }),
            _ => None,
        }
    }
}

/// How the data size of a cell is given (docs/spec.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSize {
    /// M, the number of samples, directly.
    Samples(u64),
    /// Entropy-normalised μ: M = round(exp(μ + S(p))).
    Mu(f64),
}

/// The fit of a grid point: mode and L2 penalty λ (λ‖Ĵ‖² is subtracted from the mean
/// log-likelihood; only the Ising fit uses it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitSpec {
    /// Fitting procedure.
    pub mode: FitMode,
    /// L2 penalty λ ≥ 0.
    pub l2: f64,
}

impl Default for FitSpec {
    fn default() -> Self {
        FitSpec { mode: FitMode::Mle, l2: 0.0 }
    }
}

/// One value of every swept parameter (docs/spec.md §6). Replicates of a grid point share it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// The ground truth.
    pub truth: TruthSpec,
    /// The data size M (or μ).
    pub data: DataSize,
    /// The fit.
    pub fit: FitSpec,
}

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
    /// Run longer (doubling `steps`) until the standard errors of τ*_rev and τ*_fwd are at
    /// most this, or `max_steps` would be passed (the cell is then reported with
    /// `mcmc_ok = false`). `None`: one run of `steps`.
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
        if self.max_steps < self.steps {
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

/// Everything needed to compute one cell, and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSpec {
    /// The study seed; with the cell key it determines the cell's random stream.
    pub study_seed: u64,
    /// The grid point.
    pub point: GridPoint,
    /// Replicate index r (0-based).
    pub replicate: u32,
    /// Study-wide settings.
    pub settings: CellSettings,
}

/// A cell's canonical key: a stable, human-readable string naming the grid point's values
/// and the replicate, e.g. `two-level;states=100;low_states=20;gap=2.5;samples=40;fit=mle;l2=0;r=3`.
/// Floats are written in Rust's shortest round-trip form, so the key depends only on the
/// values, never on how a study file spelled them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellKey(pub String);

impl CellKey {
    /// The key of replicate `replicate` of the grid point with canonical key `point_key`
    /// ([`GridPoint::key`]): `<point_key>;r=<replicate>`. The one place the format is built.
    pub fn new(point_key: &str, replicate: u32) -> CellKey {
        CellKey(format!("{point_key};r={replicate}"))
    }

    /// The grid-point key and replicate of a cell key; `None` when `key` has no `;r=N`
    /// suffix. The one place the format is parsed.
    pub fn split(key: &str) -> Option<(&str, u32)> {
        let (point, r) = key.rsplit_once(";r=")?;
        Some((point, r.parse().ok()?))
    }

    /// The replicate index of this key.
    pub fn replicate(&self) -> Option<u32> {
        CellKey::split(&self.0).map(|(_, r)| r)
    }
}

impl fmt::Display for CellKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl GridPoint {
    /// The canonical key of this grid point (a cell key without its replicate).
    pub fn key(&self) -> String {
        let mut k = match &self.truth {
            TruthSpec::TwoLevel { states, low_states, gap } => {
                format!("two-level;states={states};low_states={low_states};gap={}", fmt_f64(*gap))
            }
            TruthSpec::Ising2d { rows, cols, temperature } => {
                format!("ising2d;lattice={rows}x{cols};temperature={}", fmt_f64(*temperature))
            }
            TruthSpec::PottsFile { alphabet, sites, states, sha256, .. } => {
                format!("potts-file;sha256={sha256};alphabet={alphabet};sites={sites};states={states}")
            }
            TruthSpec::PottsRandom {
                sites,
                states,
                coupling_strength,
                field_strength,
                contact_fraction,
                family_seed,
            } => format!(
                "potts-random;sites={sites};states={states};coupling_strength={};field_strength={};\
                 contact_fraction={};family_seed={family_seed}",
                fmt_f64(*coupling_strength),
                fmt_f64(*field_strength),
                fmt_f64(*contact_fraction)
            ),
        };
        match self.data {
            DataSize::Samples(m) => k.push_str(&format!(";samples={m}")),
            DataSize::Mu(mu) => k.push_str(&format!(";mu={}", fmt_f64(mu))),
        }
        k.push_str(&format!(";fit={};l2={}", self.fit.mode.as_str(), fmt_f64(self.fit.l2)));
        k
    }

    /// The rules every Potts truth (`kind`) shares: past enumeration, so a fit from samples;
    /// no closed-form entropy, so M rather than μ.
    fn check_potts_fit_and_data(&self, kind: &str) -> Result<(), SpecError> {
        if !self.fit.mode.samples() {
            return Err(SpecError::invalid(
                "fit.mode",
                self.fit.mode.as_str(),
                format!("a {kind} truth is past enumeration: fit it with fit.mode = \"plm\" or \"bml\""),
            ));
        }
        if let DataSize::Mu(mu) = self.data {
            return Err(SpecError::invalid(
                "mu",
                mu,
                format!("a {kind} truth's entropy has no closed form: give data.samples instead"),
            ));
        }
        Ok(())
    }

    /// Check every value against its allowed range; the error names the field and value.
    pub fn validate(&self) -> Result<(), SpecError> {
        match &self.truth {
            TruthSpec::TwoLevel { states, low_states, gap } => {
                if *states < 2 {
                    return Err(SpecError::invalid("states", states, "need at least 2 states"));
                }
                if *low_states == 0 || low_states >= states {
                    return Err(SpecError::invalid(
                        "low_states",
                        low_states,
                        format!("need 1 <= low_states < states = {states}"),
                    ));
                }
                if !(gap.is_finite() && *gap > 0.0) {
                    return Err(SpecError::invalid("gap", gap, "the gap must be a finite number > 0"));
                }
            }
            TruthSpec::Ising2d { rows, cols, temperature } => {
                if *rows == 0 || *cols == 0 {
                    return Err(SpecError::invalid(
                        "lattice",
                        format!("{rows}x{cols}"),
                        "both dimensions must be >= 1",
                    ));
                }
                let n = u64::from(*rows) * u64::from(*cols);
                if n < 2 {
                    return Err(SpecError::invalid(
                        "lattice",
                        format!("{rows}x{cols}"),
                        "need at least 2 spins",
                    ));
                }
                if n > u64::from(MAX_ENUMERATED_SPINS) && !self.fit.mode.samples() {
                    return Err(SpecError::invalid(
                        "lattice",
                        format!("{rows}x{cols}"),
                        format!(
                            "{n} spins exceed the exact-enumeration limit of {MAX_ENUMERATED_SPINS} spins \
                             (2^{MAX_ENUMERATED_SPINS} states), which the {} fit needs; fit larger lattices with \
                             fit.mode = \"plm\" or \"bml\" (and [eval] method = \"mcmc\")",
                            self.fit.mode.as_str()
                        ),
                    ));
                }
                if n > u64::from(MAX_ENUMERATED_SPINS) && (*rows < 3 || *cols < 3 || n > MAX_SAMPLED_SPINS) {
                    return Err(SpecError::invalid(
                        "lattice",
                        format!("{rows}x{cols}"),
                        format!(
                            "past enumeration the truth's ln Z comes from Kaufman's formula, which needs both \
                             sides >= 3, and the fully connected fit at most {MAX_SAMPLED_SPINS} spins"
                        ),
                    ));
                }
                if !(temperature.is_finite() && *temperature > 0.0) {
                    return Err(SpecError::invalid(
                        "temperature",
                        temperature,
                        "must be a finite number > 0",
                    ));
                }
            }
            TruthSpec::PottsFile { sites, states, sha256, alphabet, .. } => {
                if *sites < 2 || !(2..=255).contains(states) {
                    return Err(SpecError::invalid(
                        "truth",
                        format!("potts-file with {sites} sites of {states} states"),
                        "need at least 2 sites and 2 to 255 states",
                    ));
                }
                if sha256.len() != 64
                    || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(SpecError::invalid("sha256", sha256, "need 64 lower-case hex digits"));
                }
                if alphabet.is_empty() || alphabet.contains(';') {
                    return Err(SpecError::invalid(
                        "alphabet",
                        alphabet,
                        "need a name or the symbols, without `;`",
                    ));
                }
                self.check_potts_fit_and_data("potts-file")?;
            }
            TruthSpec::PottsRandom { .. } => {
                if let Some(spec) = self.truth.potts_random() {
                    // Named by the study key (`contact_fraction`, not `potts-random.contact_fraction`)
                    // so that a study file's error points at its line.
                    spec.validate().map_err(|e| match e {
                        taustar_science::potts::PottsError::Setting { field, value, reason } => {
                            SpecError::invalid(
                                field.strip_prefix("potts-random.").unwrap_or(field),
                                value,
                                reason,
                            )
                        }
                        other => SpecError::invalid("truth", "potts-random", other.to_string()),
                    })?;
                }
                self.check_potts_fit_and_data("potts-random")?;
            }
        }
        match self.data {
            DataSize::Samples(m) => {
                if m == 0 {
                    return Err(SpecError::invalid("samples", m, "need at least 1 sample"));
                }
                if matches!(self.truth, TruthSpec::TwoLevel { .. }) && m < 2 {
                    return Err(SpecError::invalid(
                        "samples",
                        m,
                        "the two-level fit needs M >= 2 (docs/spec.md §4.1: with M = 1 the 1 - 1/M constraint is degenerate)",
                    ));
                }
            }
            DataSize::Mu(mu) => {
                if !mu.is_finite() {
                    return Err(SpecError::invalid("mu", mu, "must be finite"));
                }
            }
        }
        if !(self.fit.l2.is_finite() && self.fit.l2 >= 0.0) {
            return Err(SpecError::invalid("l2", self.fit.l2, "the L2 penalty must be a finite number >= 0"));
        }
        Ok(())
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

impl CellSpec {
    /// The canonical key: grid-point key plus `;r=<replicate>`.
    pub fn key(&self) -> CellKey {
        CellKey::new(&self.point.key(), self.replicate)
    }

    /// The cell's random generator: ChaCha12 seeded with SHA-256(study seed ‖ key).
    /// Hashing (rather than adding the replicate to the seed) keeps streams of
    /// neighbouring cells unrelated.
    pub fn rng(&self) -> ChaCha12Rng {
        let mut h = Sha256::new();
        h.update(self.study_seed.to_le_bytes());
        h.update(self.key().0.as_bytes());
        ChaCha12Rng::from_seed(h.finalize().into())
    }

    /// Validate the grid point and the settings.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.point.validate()?;
        self.settings.validate()?;
        if let TruthSpec::Ising2d { rows, cols, .. } = self.point.truth {
            let n = u64::from(rows) * u64::from(cols);
            if n > u64::from(MAX_ENUMERATED_SPINS) && self.settings.mcmc.is_none() {
                return Err(SpecError::invalid(
                    "eval.method",
                    "exact",
                    format!(
                        "a {rows}x{cols} lattice ({n} spins) is past enumeration: evaluate it with \
                         [eval] method = \"mcmc\""
                    ),
                ));
            }
        }
        if self.settings.mcmc.is_none()
            && matches!(self.point.truth, TruthSpec::PottsRandom { .. } | TruthSpec::PottsFile { .. })
        {
            return Err(SpecError::invalid(
                "eval.method",
                "exact",
                "a Potts truth is past enumeration: evaluate it with [eval] method = \"mcmc\"",
            ));
        }
        if self.settings.mcmc.is_some() {
            if let TruthSpec::TwoLevel { .. } = self.point.truth {
                return Err(SpecError::invalid(
                    "eval.method",
                    "mcmc",
                    "Monte Carlo evaluation applies to ising2d truths; a two-level cell is exact in microseconds",
                ));
            }
        }
        Ok(())
    }
}

/// Format a float in Rust's shortest round-trip form, with `-0` normalised to `0`.
pub fn fmt_f64(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x}")
    }
}

/// The outcome of a cell: the τ analysis, the fit's diagnostics (per truth family) and the
/// per-τ curve. Deterministic: no timings.
///
/// The parts are flattened in JSON, so the keys stay those of a flat record
/// (`tau_rev`, `gap_hat`, `fit_mode`, …); a part whose family does not apply is all `None`
/// and writes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// The cell's canonical key.
    pub key: CellKey,
    /// The number of samples actually drawn (resolves μ).
    pub samples: u64,
    /// τ*, the divergences at τ = 1 and at τ*, and the truth-free diagnostics.
    #[serde(flatten)]
    pub tau: TauSummary,
    /// The two-level fit's estimates (two-level truths; all `None` otherwise).
    #[serde(flatten)]
    pub two_level: TwoLevelFitReport,
    /// How the fit ended (Ising and Potts truths; all `None` for the two-level fit).
    #[serde(flatten)]
    pub fit: FitReport,
    /// The Monte Carlo estimate's standard errors and diagnostics (cells evaluated with
    /// `[eval] method = "mcmc"`; all `None` and empty for exact cells).
    #[serde(flatten)]
    pub mcmc: McmcReport,
    /// The τ curve on the reporting grid.
    pub curve: Vec<CurvePoint>,
}

/// What a Monte Carlo cell adds to its result (docs/spec.md §10): a standard error for
/// every estimate, and the sampler's diagnostics. `mcmc_ok = false` says the numbers did
/// not pass the thresholds (the reason is in `mcmc_note`): they are kept, never passed
/// off as converged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McmcReport {
    /// Standard error of τ*_rev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_rev_se: Option<f64>,
    /// Standard error of τ*_fwd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_fwd_se: Option<f64>,
    /// Standard error of D_rev(1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkl_rev_at_1_se: Option<f64>,
    /// Standard error of D_rev(τ*_rev).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkl_rev_opt_se: Option<f64>,
    /// Standard error of D_fwd(1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkl_fwd_at_1_se: Option<f64>,
    /// Standard error of D_fwd(τ*_fwd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkl_fwd_opt_se: Option<f64>,
    /// Standard error of κ(1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa_at_1_se: Option<f64>,
    /// Standard error of C(1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heat_capacity_at_1_se: Option<f64>,
    /// The sampler's diagnostics (`mcmc_ok`, `mcmc_note`, `mcmc_steps`, `ladder_rungs`, …,
    /// flattened into the record under those names); `None` for exact cells.
    #[serde(flatten)]
    pub ladder: Option<LadderDiagnostics>,
    /// ln Z_q at the top of the ladder by MBAR minus the same by thermodynamic integration:
    /// the cross-check of the partition function (a gap beyond its noise fails `mcmc_ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_z_ti_gap: Option<f64>,
    /// Standard error of `log_z_ti_gap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_z_ti_gap_se: Option<f64>,
    /// When `mcmc_ok` is false: τ*_fwd from the equilibrated rungs alone, present when it
    /// lies inside them — then it is the minimum over all τ (D_fwd is convex in 1/τ), and
    /// can be used where `tau_fwd` cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_fwd_equilibrated: Option<f64>,
    /// Standard error of `tau_fwd_equilibrated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_fwd_equilibrated_se: Option<f64>,
    /// Standard errors of the curve, point for point with [`CellResult::curve`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve_se: Vec<CurveSe>,
}

/// Standard errors of one curve point (its τ is that of the point it belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurveSe {
    /// Of D(q_τ ‖ p).
    pub dkl_rev: f64,
    /// Of D(p ‖ q_τ).
    pub dkl_fwd: f64,
    /// Of S(q_τ).
    pub entropy: f64,
    /// Of ⟨Ê⟩ under q_τ.
    pub mean_energy: f64,
    /// Of C(τ).
    pub heat_capacity: f64,
    /// Of κ(τ).
    pub kappa: f64,
}

/// What the τ analysis of one fitted model yields (docs/spec.md §5). (`Default` is all
/// zeros: a blank to fill field by field, e.g. from a stored row.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TauSummary {
    /// τ*_rev = argmin D_rev (continuous search inside the bounds).
    pub tau_rev: f64,
    /// τ*_fwd = argmin D_fwd.
    pub tau_fwd: f64,
    /// τ*_rev sits at a search bound (the true minimiser may lie beyond it).
    pub tau_rev_at_bound: bool,
    /// τ*_fwd sits at a search bound.
    pub tau_fwd_at_bound: bool,
    /// D_rev(τ = 1).
    pub dkl_rev_at_1: f64,
    /// D_rev(τ*_rev).
    pub dkl_rev_opt: f64,
    /// D_fwd(τ = 1).
    pub dkl_fwd_at_1: f64,
    /// D_fwd(τ*_fwd).
    pub dkl_fwd_opt: f64,
    /// τ at the peak of the heat capacity C(τ) (truth-free diagnostic, docs/spec.md §5); `None` if
    /// the model has constant energy.
    pub tau_heat_peak: Option<f64>,
    /// Variance-match temperature τ_var (truth-free, docs/spec.md §5); `None` when no τ inside the
    /// bounds matches.
    pub tau_var: Option<f64>,
    /// κ(1) = Cov_{q}(Ê, −log p) at τ = 1 (docs/spec.md §5). κ(1) > C(1) says cool the model
    /// (dD_rev/dτ > 0 at τ = 1), κ(1) < C(1) says heat it. `None` only in results stored
    /// before κ was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa_at_1: Option<f64>,
    /// C(1) = Var_q(Ê), the model's heat capacity at τ = 1 (truth-free). `None` only in
    /// results stored before it was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heat_capacity_at_1: Option<f64>,
}

/// The two-level fit's estimates and closed forms (docs/spec.md §4.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TwoLevelFitReport {
    /// n̂_g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_states_hat: Option<u32>,
    /// Δ̂.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_hat: Option<f64>,
    /// overlap ℓ = Σ_x L(x) L̂(x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<u32>,
    /// Two-level closed-form τ*_rev (docs/spec.md §4.1); `None` when D_rev decreases to τ → ∞.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_rev_closed: Option<f64>,
    /// Two-level closed-form τ*_fwd (moment matching); `None` when no finite τ matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_fwd_closed: Option<f64>,
}

/// How the fit of a coupling model ended (docs/spec.md §4.2, §10), whatever the method
/// (`mle`, `paper`, `plm`, `bml`) and the truth (Ising or Potts): one type, so a new fit
/// fills the same fields. The closed-form two-level fit has its own estimates
/// ([`TwoLevelFitReport`]) and leaves this all `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// the mode used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_mode: Option<FitMode>,
    /// iterations taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_iterations: Option<u32>,
    /// why it stopped. `None` for the two-level fit and in results stored before
    /// the reason was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_stop: Option<FitStop>,
    /// final max-norm of the gradient of the (penalised) mean log-likelihood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_max_norm: Option<f64>,
    /// final mean negative log-likelihood of the data (without penalty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nll: Option<f64>,
    /// max|Ĵ|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupling_max_abs: Option<f64>,
    /// the unregularised MLE does not exist (or the fit did not converge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_diverged: Option<bool>,
    /// why it diverged, or why it stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_note: Option<String>,
    /// Lattices past enumeration: τ_int (in chain steps) of the truth chain that drew the
    /// training data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_tau_int: Option<f64>,
    /// Lattices past enumeration: steps between the kept training samples (⌈2 τ_int⌉).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_thinning: Option<u32>,
    /// `bml`: the Pearson correlation of the model's and the data's connected correlations
    /// at the end (`fit_stop = "pearson"` when it reached `fit.pearson_target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_pearson: Option<f64>,
}
