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

mod result;
mod settings;
mod truth;

pub use result::{CellResult, CurveSe, FitReport, McmcReport, TauSummary, TwoLevelFitReport};
pub use settings::{
    CellSettings, CurveOutput, McmcSettings, Sampler, TauGrid, DEFAULT_MAX_ITER, DEFAULT_REL_TOL,
    LEGACY_MAX_ITER, LEGACY_REL_TOL, MAX_TAU_GRID_POINTS, MCMC_DEFAULT_TAU_BOUNDS, MIN_RESAMPLES,
};
pub use truth::{TruthColumns, TruthSpec};

/// Largest number of spins whose 2^N states are enumerated exactly. 2^24 states need
/// ~128 MiB per array; beyond that the data come from Markov chains, the fit is `plm` and
/// the evaluation Monte Carlo.
pub const MAX_ENUMERATED_SPINS: u32 = 24;

/// Largest lattice a cell fits and samples: a fully connected model of N spins has
/// N(N−1)/2 couplings (8·10^6 at 64×64) and its pseudo-likelihood fit reads every sample
/// once per site and iteration.
pub const MAX_SAMPLED_SPINS: u64 = 4_096;

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
