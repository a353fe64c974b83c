//! Conversions between wire messages ([`crate::pb`]) and `common`'s types.
//!
//! Going to the wire cannot fail. Coming from the wire can: proto3 makes every message field
//! optional and every enum open, so a missing sub-message or an unknown enum value is a
//! [`ConvertError`] naming the field. The conversions are exact (f64 travels as `double`),
//! so a result that crosses the wire is bit-identical to the one computed.

use taustar_common::cell::{CurveOutput, CurvePoint, CurveSe, LadderDiagnostics, TauGrid};
use taustar_common::{
    CellKey, CellResult, CellSettings, CellSpec, DataSize, FitMode, FitReport, FitSpec, FitStop, GridPoint,
    McmcReport, McmcSettings, Sampler, TauSummary, TruthSpec, TwoLevelFitReport,
};

use crate::pb;

/// A wire message that does not describe a valid `common` value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// A required field was absent.
    #[error("missing field {0} in a wire message")]
    Missing(&'static str),
    /// An enum field held a value this version does not know.
    #[error("unknown value {value} of enum field {field} in a wire message")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The raw value received.
        value: i32,
    },
    /// Bytes that are not a prost encoding of the expected message.
    #[error("undecodable {message}: {reason}")]
    Undecodable {
        /// The message type expected, e.g. `taustar.v1.CellResult`.
        message: &'static str,
        /// prost's reason.
        reason: String,
    },
    /// A curve column whose length differs from the number of τ values.
    #[error(
        "{field} has {len} entries but Curve.tau has {points}: every curve column needs one entry per τ"
    )]
    CurveColumnLength {
        /// The column, e.g. `Curve.dkl_rev`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length of `Curve.tau`.
        points: usize,
    },
    /// Both curve forms in one result: which one holds the curve is ambiguous.
    #[error("CellResult.curve and CellResult.curve_points are both set; send the curve once")]
    TwoCurves,
}

fn fit_mode_to_wire(m: FitMode) -> pb::FitMode {
    match m {
        FitMode::Mle => pb::FitMode::Mle,
        FitMode::Paper => pb::FitMode::Paper,
        FitMode::Plm => pb::FitMode::Plm,
        FitMode::Bml => pb::FitMode::Bml,
    }
}

fn fit_mode_from_wire(field: &'static str, raw: i32) -> Result<FitMode, ConvertError> {
    match pb::FitMode::try_from(raw) {
        Ok(pb::FitMode::Mle) => Ok(FitMode::Mle),
        Ok(pb::FitMode::Paper) => Ok(FitMode::Paper),
        Ok(pb::FitMode::Plm) => Ok(FitMode::Plm),
        Ok(pb::FitMode::Bml) => Ok(FitMode::Bml),
        _ => Err(ConvertError::UnknownEnum { field, value: raw }),
    }
}

fn fit_stop_to_wire(s: FitStop) -> pb::FitStop {
    match s {
        FitStop::RelTol => pb::FitStop::RelTol,
        FitStop::GradTol => pb::FitStop::GradTol,
        FitStop::MaxIter => pb::FitStop::MaxIter,
        FitStop::Diverged => pb::FitStop::Diverged,
        FitStop::Pearson => pb::FitStop::Pearson,
    }
}

fn fit_stop_from_wire(field: &'static str, raw: i32) -> Result<FitStop, ConvertError> {
    match pb::FitStop::try_from(raw) {
        Ok(pb::FitStop::RelTol) => Ok(FitStop::RelTol),
        Ok(pb::FitStop::GradTol) => Ok(FitStop::GradTol),
        Ok(pb::FitStop::MaxIter) => Ok(FitStop::MaxIter),
        Ok(pb::FitStop::Diverged) => Ok(FitStop::Diverged),
        Ok(pb::FitStop::Pearson) => Ok(FitStop::Pearson),
        _ => Err(ConvertError::UnknownEnum { field, value: raw }),
    }
}

impl From<&GridPoint> for pb::GridPoint {
    fn from(p: &GridPoint) -> Self {
        let truth = match p.truth {
            TruthSpec::TwoLevel { states, low_states, gap } => {
                pb::grid_point::Truth::TwoLevel(pb::TwoLevelTruth { states, low_states, gap })
            }
            TruthSpec::Ising2d { rows, cols, temperature } => {
                pb::grid_point::Truth::Ising2d(pb::Ising2dTruth { rows, cols, temperature })
            }
            TruthSpec::PottsFile { ref path, ref alphabet, sites, states, ref sha256 } => {
                pb::grid_point::Truth::PottsFile(pb::PottsFileTruth {
                    path: path.clone(),
                    alphabet: alphabet.clone(),
                    sites,
                    states,
                    sha256: sha256.clone(),
                })
            }
            TruthSpec::PottsRandom {
                sites,
                states,
                coupling_strength,
                field_strength,
                contact_fraction,
                family_seed,
            } => pb::grid_point::Truth::PottsRandom(pb::PottsRandomTruth {
                sites,
                states,
                coupling_strength,
                field_strength,
                contact_fraction,
                family_seed,
            }),
        };
        let data = match p.data {
            DataSize::Samples(m) => pb::grid_point::Data::Samples(m),
            DataSize::Mu(mu) => pb::grid_point::Data::Mu(mu),
        };
        pb::GridPoint {
            truth: Some(truth),
            data: Some(data),
            fit: Some(pb::FitSpec { mode: fit_mode_to_wire(p.fit.mode) as i32, l2: p.fit.l2 }),
        }
    }
}

impl TryFrom<pb::GridPoint> for GridPoint {
    type Error = ConvertError;
    fn try_from(p: pb::GridPoint) -> Result<Self, ConvertError> {
        let truth = match p.truth.ok_or(ConvertError::Missing("GridPoint.truth"))? {
            pb::grid_point::Truth::TwoLevel(t) => {
                TruthSpec::TwoLevel { states: t.states, low_states: t.low_states, gap: t.gap }
            }
            pb::grid_point::Truth::Ising2d(t) => {
                TruthSpec::Ising2d { rows: t.rows, cols: t.cols, temperature: t.temperature }
            }
            pb::grid_point::Truth::PottsFile(t) => TruthSpec::PottsFile {
                path: t.path,
                alphabet: t.alphabet,
                sites: t.sites,
                states: t.states,
                sha256: t.sha256,
            },
            pb::grid_point::Truth::PottsRandom(t) => TruthSpec::PottsRandom {
                sites: t.sites,
                states: t.states,
                coupling_strength: t.coupling_strength,
                field_strength: t.field_strength,
                contact_fraction: t.contact_fraction,
                family_seed: t.family_seed,
            },
        };
        let data = match p.data.ok_or(ConvertError::Missing("GridPoint.data"))? {
            pb::grid_point::Data::Samples(m) => DataSize::Samples(m),
            pb::grid_point::Data::Mu(mu) => DataSize::Mu(mu),
        };
        let fit = p.fit.ok_or(ConvertError::Missing("GridPoint.fit"))?;
        Ok(GridPoint {
            truth,
            data,
            fit: FitSpec { mode: fit_mode_from_wire("FitSpec.mode", fit.mode)?, l2: fit.l2 },
        })
    }
}

impl From<&CellSettings> for pb::CellSettings {
    fn from(s: &CellSettings) -> Self {
        pb::CellSettings {
            tau_grid_from: s.tau_grid.from,
            tau_grid_to: s.tau_grid.to,
            tau_grid_count: s.tau_grid.count,
            tau_lo: s.tau_bounds.0,
            tau_hi: s.tau_bounds.1,
            max_iter: s.max_iter,
            coupling_cap: s.coupling_cap,
            omit_curves: !s.curves.stored(),
            rel_tol: s.rel_tol,
            pearson_target: s.pearson_target,
            max_sweeps: s.max_sweeps,
            mcmc: s.mcmc.as_ref().map(|m| pb::McmcSettings {
                steps: m.steps,
                burn_in: m.burn_in,
                pilot_sweeps: m.pilot_sweeps,
                resamples: m.resamples,
                ladders: m.ladders,
                target_se: m.target_se,
                max_steps: m.max_steps,
                min_swap_acceptance: m.min_swap_acceptance,
                min_round_trips: m.min_round_trips,
                max_r_hat: m.max_r_hat,
                truth_steps: m.truth_steps,
                sampler: match m.sampler {
                    Sampler::Tempering => pb::Sampler::Tempering,
                    Sampler::Multicanonical => pb::Sampler::Multicanonical,
                } as i32,
                walkers: m.walkers,
                production_sweeps: m.production_sweeps,
                min_walker_round_trips: m.min_walker_round_trips,
            }),
        }
    }
}

impl From<pb::CellSettings> for CellSettings {
    fn from(s: pb::CellSettings) -> Self {
        CellSettings {
            tau_grid: TauGrid { from: s.tau_grid_from, to: s.tau_grid_to, count: s.tau_grid_count },
            tau_bounds: (s.tau_lo, s.tau_hi),
            max_iter: s.max_iter,
            rel_tol: s.rel_tol,
            coupling_cap: s.coupling_cap,
            curves: if s.omit_curves { CurveOutput::None } else { CurveOutput::All },
            pearson_target: s.pearson_target,
            max_sweeps: s.max_sweeps,
            mcmc: s.mcmc.map(|m| McmcSettings {
                steps: m.steps,
                burn_in: m.burn_in,
                pilot_sweeps: m.pilot_sweeps,
                resamples: m.resamples,
                ladders: m.ladders,
                target_se: m.target_se,
                max_steps: m.max_steps,
                min_swap_acceptance: m.min_swap_acceptance,
                min_round_trips: m.min_round_trips,
                max_r_hat: m.max_r_hat,
                truth_steps: m.truth_steps,
                // Only the two known values occur: peers of another protocol version, which
                // could know others, are refused at registration.
                sampler: match pb::Sampler::try_from(m.sampler) {
                    Ok(pb::Sampler::Multicanonical) => Sampler::Multicanonical,
                    _ => Sampler::Tempering,
                },
                walkers: m.walkers,
                production_sweeps: m.production_sweeps,
                min_walker_round_trips: m.min_walker_round_trips,
            }),
        }
    }
}

impl From<&CellSpec> for pb::CellSpec {
    fn from(c: &CellSpec) -> Self {
        pb::CellSpec {
            study_seed: c.study_seed,
            point: Some((&c.point).into()),
            replicate: c.replicate,
            settings: Some((&c.settings).into()),
        }
    }
}

impl TryFrom<pb::CellSpec> for CellSpec {
    type Error = ConvertError;
    fn try_from(c: pb::CellSpec) -> Result<Self, ConvertError> {
        Ok(CellSpec {
            study_seed: c.study_seed,
            point: c.point.ok_or(ConvertError::Missing("CellSpec.point"))?.try_into()?,
            replicate: c.replicate,
            settings: c.settings.ok_or(ConvertError::Missing("CellSpec.settings"))?.into(),
        })
    }
}

impl From<&pb::CurvePoint> for CurvePoint {
    fn from(p: &pb::CurvePoint) -> Self {
        CurvePoint {
            tau: p.tau,
            dkl_rev: p.dkl_rev,
            dkl_fwd: p.dkl_fwd,
            entropy: p.entropy,
            mean_energy: p.mean_energy,
            heat_capacity: p.heat_capacity,
            kappa: None,
        }
    }
}

impl From<&[CurvePoint]> for pb::Curve {
    fn from(curve: &[CurvePoint]) -> Self {
        let column = |f: fn(&CurvePoint) -> f64| curve.iter().map(f).collect();
        pb::Curve {
            tau: column(|p| p.tau),
            dkl_rev: column(|p| p.dkl_rev),
            dkl_fwd: column(|p| p.dkl_fwd),
            entropy: column(|p| p.entropy),
            mean_energy: column(|p| p.mean_energy),
            heat_capacity: column(|p| p.heat_capacity),
            // A curve is all-κ or κ-free (results stored before κ existed).
            kappa: curve.iter().map_while(|p| p.kappa).collect(),
        }
    }
}

/// The curve points of a wire curve; every column must have one entry per τ.
fn curve_from_wire(c: &pb::Curve) -> Result<Vec<CurvePoint>, ConvertError> {
    let n = c.tau.len();
    let columns = [
        ("Curve.dkl_rev", &c.dkl_rev),
        ("Curve.dkl_fwd", &c.dkl_fwd),
        ("Curve.entropy", &c.entropy),
        ("Curve.mean_energy", &c.mean_energy),
        ("Curve.heat_capacity", &c.heat_capacity),
    ];
    if let Some((field, column)) = columns.iter().find(|(_, column)| column.len() != n) {
        return Err(ConvertError::CurveColumnLength { field, len: column.len(), points: n });
    }
    if !c.kappa.is_empty() && c.kappa.len() != n {
        return Err(ConvertError::CurveColumnLength { field: "Curve.kappa", len: c.kappa.len(), points: n });
    }
    Ok((0..n)
        .map(|i| CurvePoint {
            tau: c.tau[i],
            dkl_rev: c.dkl_rev[i],
            dkl_fwd: c.dkl_fwd[i],
            entropy: c.entropy[i],
            mean_energy: c.mean_energy[i],
            heat_capacity: c.heat_capacity[i],
            kappa: c.kappa.get(i).copied(),
        })
        .collect())
}

impl From<&[CurveSe]> for pb::CurveErrors {
    fn from(se: &[CurveSe]) -> Self {
        let column = |f: fn(&CurveSe) -> f64| se.iter().map(f).collect();
        pb::CurveErrors {
            dkl_rev: column(|p| p.dkl_rev),
            dkl_fwd: column(|p| p.dkl_fwd),
            entropy: column(|p| p.entropy),
            mean_energy: column(|p| p.mean_energy),
            heat_capacity: column(|p| p.heat_capacity),
            kappa: column(|p| p.kappa),
        }
    }
}

/// The curve's standard errors from the wire: every column one entry per curve point
/// (`points`), or all empty (an exact cell).
fn curve_se_from_wire(c: Option<&pb::CurveErrors>, points: usize) -> Result<Vec<CurveSe>, ConvertError> {
    let Some(c) = c else { return Ok(Vec::new()) };
    let columns = [
        ("CurveErrors.dkl_rev", &c.dkl_rev),
        ("CurveErrors.dkl_fwd", &c.dkl_fwd),
        ("CurveErrors.entropy", &c.entropy),
        ("CurveErrors.mean_energy", &c.mean_energy),
        ("CurveErrors.heat_capacity", &c.heat_capacity),
        ("CurveErrors.kappa", &c.kappa),
    ];
    if columns.iter().all(|(_, column)| column.is_empty()) {
        return Ok(Vec::new());
    }
    if let Some((field, column)) = columns.iter().find(|(_, column)| column.len() != points) {
        return Err(ConvertError::CurveColumnLength { field, len: column.len(), points });
    }
    Ok((0..points)
        .map(|i| CurveSe {
            dkl_rev: c.dkl_rev[i],
            dkl_fwd: c.dkl_fwd[i],
            entropy: c.entropy[i],
            mean_energy: c.mean_energy[i],
            heat_capacity: c.heat_capacity[i],
            kappa: c.kappa[i],
        })
        .collect())
}

/// A wire result's curve in whichever form it came: columns (protocol ≥ 3) or points (older
/// payloads, e.g. quarantined ones). Both at once is ambiguous and refused.
fn result_curve_from_wire(r: &pb::CellResult) -> Result<Vec<CurvePoint>, ConvertError> {
    match (&r.curve, r.curve_points.is_empty()) {
        (Some(c), true) => curve_from_wire(c),
        (None, _) => Ok(r.curve_points.iter().map(Into::into).collect()),
        (Some(_), false) => Err(ConvertError::TwoCurves),
    }
}

impl From<&CellResult> for pb::CellResult {
    fn from(r: &CellResult) -> Self {
        let ladder = r.mcmc.ladder.as_ref();
        pb::CellResult {
            key: r.key.0.clone(),
            samples: r.samples,
            tau_rev: r.tau.tau_rev,
            tau_fwd: r.tau.tau_fwd,
            tau_rev_at_bound: r.tau.tau_rev_at_bound,
            tau_fwd_at_bound: r.tau.tau_fwd_at_bound,
            dkl_rev_at_1: r.tau.dkl_rev_at_1,
            dkl_rev_opt: r.tau.dkl_rev_opt,
            dkl_fwd_at_1: r.tau.dkl_fwd_at_1,
            dkl_fwd_opt: r.tau.dkl_fwd_opt,
            tau_heat_peak: r.tau.tau_heat_peak,
            tau_var: r.tau.tau_var,
            low_states_hat: r.two_level.low_states_hat,
            gap_hat: r.two_level.gap_hat,
            overlap: r.two_level.overlap,
            tau_rev_closed: r.two_level.tau_rev_closed,
            tau_fwd_closed: r.two_level.tau_fwd_closed,
            fit_mode: r.fit.fit_mode.map(|m| fit_mode_to_wire(m) as i32),
            fit_iterations: r.fit.fit_iterations,
            grad_max_norm: r.fit.grad_max_norm,
            nll: r.fit.nll,
            coupling_max_abs: r.fit.coupling_max_abs,
            fit_diverged: r.fit.fit_diverged,
            fit_note: r.fit.fit_note.clone(),
            curve_points: Vec::new(),
            curve: Some(r.curve.as_slice().into()),
            kappa_at_1: r.tau.kappa_at_1,
            heat_capacity_at_1: r.tau.heat_capacity_at_1,
            fit_stop: r.fit.fit_stop.map(|s| fit_stop_to_wire(s) as i32),
            tau_rev_se: r.mcmc.tau_rev_se,
            tau_fwd_se: r.mcmc.tau_fwd_se,
            dkl_rev_at_1_se: r.mcmc.dkl_rev_at_1_se,
            dkl_rev_opt_se: r.mcmc.dkl_rev_opt_se,
            dkl_fwd_at_1_se: r.mcmc.dkl_fwd_at_1_se,
            dkl_fwd_opt_se: r.mcmc.dkl_fwd_opt_se,
            kappa_at_1_se: r.mcmc.kappa_at_1_se,
            heat_capacity_at_1_se: r.mcmc.heat_capacity_at_1_se,
            mcmc_ok: ladder.map(|l| l.ok),
            mcmc_note: ladder.and_then(|l| l.note.clone()),
            mcmc_steps: ladder.map(|l| l.steps),
            ladder_rungs: ladder.map(|l| l.rungs),
            min_swap_acceptance: ladder.and_then(|l| l.min_swap_acceptance),
            round_trips: ladder.map(|l| l.round_trips),
            r_hat: ladder.map(|l| l.r_hat),
            tau_int: ladder.map(|l| l.tau_int),
            ess: ladder.map(|l| l.ess),
            log_z_ti_gap: r.mcmc.log_z_ti_gap,
            log_z_ti_gap_se: r.mcmc.log_z_ti_gap_se,
            data_tau_int: r.fit.data_tau_int,
            data_thinning: r.fit.data_thinning,
            fit_pearson: r.fit.fit_pearson,
            equilibrated_tau_lo: ladder.and_then(|l| l.equilibrated_tau_lo),
            walker_round_trips_min: ladder.and_then(|l| l.walker_round_trips_min),
            flatness: ladder.and_then(|l| l.flatness),
            tau_fwd_equilibrated: r.mcmc.tau_fwd_equilibrated,
            tau_fwd_equilibrated_se: r.mcmc.tau_fwd_equilibrated_se,
            curve_se: (!r.mcmc.curve_se.is_empty()).then(|| r.mcmc.curve_se.as_slice().into()),
        }
    }
}

/// By reference, so a result that does not convert is still at hand to be kept as received
/// (the coordinator quarantines it) without encoding every result up front.
impl TryFrom<&pb::CellResult> for CellResult {
    type Error = ConvertError;
    fn try_from(r: &pb::CellResult) -> Result<Self, ConvertError> {
        let curve = result_curve_from_wire(r)?;
        Ok(CellResult {
            key: CellKey(r.key.clone()),
            samples: r.samples,
            tau: TauSummary {
                tau_rev: r.tau_rev,
                tau_fwd: r.tau_fwd,
                tau_rev_at_bound: r.tau_rev_at_bound,
                tau_fwd_at_bound: r.tau_fwd_at_bound,
                dkl_rev_at_1: r.dkl_rev_at_1,
                dkl_rev_opt: r.dkl_rev_opt,
                dkl_fwd_at_1: r.dkl_fwd_at_1,
                dkl_fwd_opt: r.dkl_fwd_opt,
                tau_heat_peak: r.tau_heat_peak,
                tau_var: r.tau_var,
                kappa_at_1: r.kappa_at_1,
                heat_capacity_at_1: r.heat_capacity_at_1,
            },
            two_level: TwoLevelFitReport {
                low_states_hat: r.low_states_hat,
                gap_hat: r.gap_hat,
                overlap: r.overlap,
                tau_rev_closed: r.tau_rev_closed,
                tau_fwd_closed: r.tau_fwd_closed,
            },
            fit: FitReport {
                fit_mode: r.fit_mode.map(|m| fit_mode_from_wire("CellResult.fit_mode", m)).transpose()?,
                fit_iterations: r.fit_iterations,
                fit_stop: r.fit_stop.map(|s| fit_stop_from_wire("CellResult.fit_stop", s)).transpose()?,
                grad_max_norm: r.grad_max_norm,
                nll: r.nll,
                coupling_max_abs: r.coupling_max_abs,
                fit_diverged: r.fit_diverged,
                fit_note: r.fit_note.clone(),
                data_tau_int: r.data_tau_int,
                data_thinning: r.data_thinning,
                fit_pearson: r.fit_pearson,
            },
            mcmc: McmcReport {
                tau_rev_se: r.tau_rev_se,
                tau_fwd_se: r.tau_fwd_se,
                dkl_rev_at_1_se: r.dkl_rev_at_1_se,
                dkl_rev_opt_se: r.dkl_rev_opt_se,
                dkl_fwd_at_1_se: r.dkl_fwd_at_1_se,
                dkl_fwd_opt_se: r.dkl_fwd_opt_se,
                kappa_at_1_se: r.kappa_at_1_se,
                heat_capacity_at_1_se: r.heat_capacity_at_1_se,
                ladder: ladder_from_wire(r)?,
                log_z_ti_gap: r.log_z_ti_gap,
                log_z_ti_gap_se: r.log_z_ti_gap_se,
                tau_fwd_equilibrated: r.tau_fwd_equilibrated,
                tau_fwd_equilibrated_se: r.tau_fwd_equilibrated_se,
                curve_se: curve_se_from_wire(r.curve_se.as_ref(), curve.len())?,
            },
            curve,
        })
    }
}

/// The sampler's diagnostics of a wire result: present when `mcmc_ok` is (a Monte Carlo
/// cell), and then every field that is not optional in [`LadderDiagnostics`] must be too.
fn ladder_from_wire(r: &pb::CellResult) -> Result<Option<LadderDiagnostics>, ConvertError> {
    let Some(ok) = r.mcmc_ok else { return Ok(None) };
    let need = |v: Option<f64>, field| v.ok_or(ConvertError::Missing(field));
    Ok(Some(LadderDiagnostics {
        ok,
        note: r.mcmc_note.clone(),
        steps: r.mcmc_steps.ok_or(ConvertError::Missing("CellResult.mcmc_steps"))?,
        rungs: r.ladder_rungs.ok_or(ConvertError::Missing("CellResult.ladder_rungs"))?,
        min_swap_acceptance: r.min_swap_acceptance,
        round_trips: r.round_trips.ok_or(ConvertError::Missing("CellResult.round_trips"))?,
        r_hat: need(r.r_hat, "CellResult.r_hat")?,
        tau_int: need(r.tau_int, "CellResult.tau_int")?,
        ess: need(r.ess, "CellResult.ess")?,
        equilibrated_tau_lo: r.equilibrated_tau_lo,
        walker_round_trips_min: r.walker_round_trips_min,
        flatness: r.flatness,
    }))
}

impl TryFrom<pb::CellResult> for CellResult {
    type Error = ConvertError;
    fn try_from(r: pb::CellResult) -> Result<Self, ConvertError> {
        CellResult::try_from(&r)
    }
}

/// The prost encoding of a result as the wire carries it (`taustar.v1.CellResult`). The
/// coordinator keeps quarantined results in this form: bit-exact (NaN payloads included)
/// except the sign of a zero in a non-optional field (proto3 omits zero scalars, so -0.0
/// reads back as 0.0), and readable with `taustar.proto` alone.
pub fn result_to_bytes(r: &CellResult) -> Vec<u8> {
    prost::Message::encode_to_vec(&pb::CellResult::from(r))
}

/// [`result_to_bytes`] for a wire result that does not convert (kept as received).
pub fn wire_result_to_bytes(r: &pb::CellResult) -> Vec<u8> {
    prost::Message::encode_to_vec(r)
}

/// Decode bytes written by [`result_to_bytes`].
pub fn result_from_bytes(bytes: &[u8]) -> Result<CellResult, ConvertError> {
    let wire: pb::CellResult = prost::Message::decode(bytes)
        .map_err(|e| ConvertError::Undecodable { message: "taustar.v1.CellResult", reason: e.to_string() })?;
    CellResult::try_from(wire)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![any::<f64>(), Just(0.0), Just(-0.0), Just(f64::INFINITY), Just(f64::NAN)]
    }

    fn any_point() -> impl Strategy<Value = GridPoint> {
        let truth = prop_oneof![
            (any::<u32>(), any::<u32>(), any_f64())
                .prop_map(|(states, low_states, gap)| TruthSpec::TwoLevel { states, low_states, gap }),
            (any::<u32>(), any::<u32>(), any_f64())
                .prop_map(|(rows, cols, temperature)| TruthSpec::Ising2d { rows, cols, temperature }),
            (any::<u32>(), any::<u32>(), any_f64(), any_f64(), any_f64(), any::<u64>()).prop_map(
                |(sites, states, coupling_strength, field_strength, contact_fraction, family_seed)| {
                    TruthSpec::PottsRandom {
                        sites,
                        states,
                        coupling_strength,
                        field_strength,
                        contact_fraction,
                        family_seed,
                    }
                }
            ),
            (".*", ".*", any::<u32>(), any::<u32>(), "[0-9a-f]{64}").prop_map(
                |(path, alphabet, sites, states, sha256)| TruthSpec::PottsFile {
                    path,
                    alphabet,
                    sites,
                    states,
                    sha256
                }
            ),
        ];
        let data = prop_oneof![any::<u64>().prop_map(DataSize::Samples), any_f64().prop_map(DataSize::Mu)];
        let mode =
            prop_oneof![Just(FitMode::Mle), Just(FitMode::Paper), Just(FitMode::Plm), Just(FitMode::Bml)];
        (truth, data, mode, any_f64()).prop_map(|(truth, data, mode, l2)| GridPoint {
            truth,
            data,
            fit: FitSpec { mode, l2 },
        })
    }

    fn bits(x: f64) -> u64 {
        x.to_bits()
    }

    proptest! {
        /// Every CellSpec survives the wire bit for bit (NaN payloads included).
        #[test]
        fn cell_spec_round_trips_bit_exactly(point in any_point(), seed in any::<u64>(), r in any::<u32>(),
                                             from in any_f64(), count in any::<u32>(), omit in any::<bool>(),
                                             mc in proptest::option::of((any::<u32>(), any::<u32>(), proptest::option::of(any_f64()), any_f64()))) {
            let curves = if omit { CurveOutput::None } else { CurveOutput::All };
            let mcmc = mc.map(|(steps, ladders, target_se, max_r_hat)| McmcSettings {
                steps, ladders, target_se, max_r_hat, burn_in: steps / 3, ..McmcSettings::default()
            });
            let settings = CellSettings { tau_grid: TauGrid { from, to: 5.0, count }, curves, mcmc, ..CellSettings::default() };
            let spec = CellSpec { study_seed: seed, point, replicate: r, settings };
            let back = CellSpec::try_from(pb::CellSpec::from(&spec)).unwrap();
            prop_assert_eq!(format!("{:?}", &back), format!("{:?}", &spec));
            prop_assert_eq!(bits(back.settings.tau_grid.from), bits(spec.settings.tau_grid.from));
        }

        /// Every CellResult survives the wire bit for bit, optional fields included.
        #[test]
        fn cell_result_round_trips_bit_exactly(tau_rev in any_f64(), opt in proptest::option::of(any_f64()),
                                               n in proptest::option::of(any::<u32>()), curve_len in 0usize..5,
                                               note in proptest::option::of(".{0,10}"), mc in any::<bool>()) {
            let curve = (0..curve_len).map(|i| CurvePoint { tau: i as f64, dkl_rev: tau_rev, dkl_fwd: 1.0,
                entropy: -0.0, mean_energy: f64::MIN_POSITIVE, heat_capacity: 3.0, kappa: opt }).collect();
            let r = CellResult {
                key: CellKey("k;r=1".into()),
                samples: 7,
                tau: TauSummary {
                    tau_rev,
                    tau_fwd: 1.5,
                    tau_rev_at_bound: true,
                    tau_fwd_at_bound: false,
                    dkl_rev_at_1: 0.1,
                    dkl_rev_opt: 0.05,
                    dkl_fwd_at_1: 0.2,
                    dkl_fwd_opt: 0.1,
                    tau_heat_peak: opt,
                    tau_var: None,
                    kappa_at_1: opt,
                    heat_capacity_at_1: opt,
                },
                two_level: TwoLevelFitReport {
                    low_states_hat: n,
                    gap_hat: opt,
                    overlap: n,
                    tau_rev_closed: opt,
                    tau_fwd_closed: None,
                },
                fit: FitReport {
                    fit_mode: Some(FitMode::Paper),
                    fit_iterations: n,
                    fit_stop: Some(FitStop::RelTol),
                    grad_max_norm: opt,
                    nll: opt,
                    coupling_max_abs: None,
                    fit_diverged: Some(true),
                    fit_note: note.clone(),
                    data_tau_int: opt,
                    data_thinning: n,
                    fit_pearson: opt,
                },
                mcmc: if mc {
                    McmcReport {
                        tau_rev_se: Some(tau_rev),
                        tau_fwd_se: opt,
                        dkl_rev_at_1_se: Some(0.01),
                        dkl_rev_opt_se: Some(-0.0),
                        dkl_fwd_at_1_se: Some(f64::INFINITY),
                        dkl_fwd_opt_se: opt,
                        kappa_at_1_se: Some(0.3),
                        heat_capacity_at_1_se: Some(0.4),
                        ladder: Some(LadderDiagnostics {
                            ok: note.is_none(),
                            note: note.clone(),
                            steps: n.map_or(0, u64::from),
                            rungs: n.unwrap_or(0),
                            min_swap_acceptance: opt,
                            round_trips: u64::MAX,
                            r_hat: f64::INFINITY,
                            tau_int: 2.5,
                            ess: opt.unwrap_or(-0.0),
                            equilibrated_tau_lo: opt,
                            walker_round_trips_min: n.map(u64::from),
                            flatness: opt,
                        }),
                        log_z_ti_gap: Some(-0.0),
                        log_z_ti_gap_se: opt,
                        tau_fwd_equilibrated: opt,
                        tau_fwd_equilibrated_se: Some(-0.0),
                        curve_se: (0..curve_len).map(|i| CurveSe { dkl_rev: i as f64, dkl_fwd: tau_rev, entropy: -0.0,
                            mean_energy: 1.0, heat_capacity: f64::MIN_POSITIVE, kappa: 2.0 }).collect(),
                    }
                } else {
                    McmcReport::default()
                },
                curve,
            };
            let back = CellResult::try_from(pb::CellResult::from(&r)).unwrap();
            prop_assert_eq!(format!("{:?}", &back), format!("{:?}", &r));
            prop_assert_eq!(bits(back.tau.tau_rev), bits(r.tau.tau_rev));
        }
    }

    fn column_curve(n: usize) -> pb::Curve {
        let col = |k: f64| (0..n).map(|i| i as f64 + k).collect::<Vec<f64>>();
        pb::Curve {
            tau: col(0.0),
            dkl_rev: col(0.1),
            dkl_fwd: col(0.2),
            entropy: col(0.3),
            mean_energy: col(0.4),
            heat_capacity: col(0.5),
            kappa: col(0.6),
        }
    }

    #[test]
    fn a_short_curve_column_is_named_with_both_lengths() {
        let mut curve = column_curve(3);
        curve.entropy.pop();
        let r = pb::CellResult { curve: Some(curve), ..Default::default() };
        let e = CellResult::try_from(&r).unwrap_err();
        assert_eq!(e, ConvertError::CurveColumnLength { field: "Curve.entropy", len: 2, points: 3 });
        assert_eq!(
            e.to_string(),
            "Curve.entropy has 2 entries but Curve.tau has 3: every curve column needs one entry per τ"
        );
    }

    #[test]
    fn a_kappa_column_is_all_or_nothing() {
        let mut curve = column_curve(3);
        curve.kappa.pop();
        let r = pb::CellResult { curve: Some(curve), ..Default::default() };
        let e = CellResult::try_from(&r).unwrap_err();
        assert_eq!(e, ConvertError::CurveColumnLength { field: "Curve.kappa", len: 2, points: 3 });
        let mut curve = column_curve(3);
        curve.kappa.clear();
        let r = pb::CellResult { curve: Some(curve), ..Default::default() };
        assert!(CellResult::try_from(&r).unwrap().curve.iter().all(|p| p.kappa.is_none()));
    }

    #[test]
    fn a_short_curve_error_column_is_named() {
        let mut se = pb::CurveErrors::from(
            &[CurveSe {
                dkl_rev: 1.0,
                dkl_fwd: 1.0,
                entropy: 1.0,
                mean_energy: 1.0,
                heat_capacity: 1.0,
                kappa: 1.0,
            }; 3][..],
        );
        se.kappa.pop();
        let r = pb::CellResult { curve: Some(column_curve(3)), curve_se: Some(se), ..Default::default() };
        assert_eq!(
            CellResult::try_from(&r).unwrap_err(),
            ConvertError::CurveColumnLength { field: "CurveErrors.kappa", len: 2, points: 3 }
        );
    }

    #[test]
    fn a_curve_sent_in_both_forms_is_refused() {
        let point = pb::CurvePoint { tau: 1.0, ..Default::default() };
        let r =
            pb::CellResult { curve: Some(column_curve(1)), curve_points: vec![point], ..Default::default() };
        assert_eq!(CellResult::try_from(&r).unwrap_err(), ConvertError::TwoCurves);
    }

    /// Results quarantined by a protocol-2 coordinator hold the curve point by point; they
    /// still decode, point for point, and re-encode in the column form.
    #[test]
    fn a_protocol_2_point_curve_still_decodes() {
        let points: Vec<pb::CurvePoint> = (0..3)
            .map(|i| pb::CurvePoint {
                tau: i as f64,
                dkl_rev: i as f64 + 0.1,
                dkl_fwd: i as f64 + 0.2,
                entropy: i as f64 + 0.3,
                mean_energy: i as f64 + 0.4,
                heat_capacity: i as f64 + 0.5,
            })
            .collect();
        let old = pb::CellResult { key: "k".into(), curve_points: points, ..Default::default() };
        let from_points = result_from_bytes(&prost::Message::encode_to_vec(&old)).unwrap();
        // Protocol 2 had no κ: the column form of the same curve has an empty κ column.
        let mut columns = column_curve(3);
        columns.kappa.clear();
        let new = pb::CellResult { key: "k".into(), curve: Some(columns), ..Default::default() };
        let from_columns = CellResult::try_from(&new).unwrap();
        assert_eq!(format!("{from_points:?}"), format!("{from_columns:?}"));
        assert_eq!(pb::CellResult::from(&from_points), new);
    }

    #[test]
    fn missing_point_is_named() {
        let spec = pb::CellSpec { study_seed: 1, point: None, replicate: 0, settings: None };
        assert_eq!(CellSpec::try_from(spec).unwrap_err(), ConvertError::Missing("CellSpec.point"));
    }

    #[test]
    fn unknown_fit_mode_is_refused() {
        let p = pb::GridPoint {
            truth: Some(pb::grid_point::Truth::TwoLevel(pb::TwoLevelTruth {
                states: 3,
                low_states: 1,
                gap: 1.0,
            })),
            data: Some(pb::grid_point::Data::Samples(4)),
            fit: Some(pb::FitSpec { mode: 99, l2: 0.0 }),
        };
        assert_eq!(
            GridPoint::try_from(p).unwrap_err(),
            ConvertError::UnknownEnum { field: "FitSpec.mode", value: 99 }
        );
    }
}
