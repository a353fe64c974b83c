//! What a cell yields: [`CellResult`] and its parts, one per concern (the τ analysis, the
//! two-level fit, a coupling model's fit, the Monte Carlo estimate's errors and
//! diagnostics), flattened into one record in JSON.

use serde::{Deserialize, Serialize};

use super::{CellKey, CurvePoint, FitMode, FitStop, LadderDiagnostics};

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
