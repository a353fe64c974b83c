//! The fit-free evaluation of a given fully connected Ising model against the 2D Ising
//! truth (`taustar eval`): exact on enumerable lattices ([`eval_ising_model`]), by Monte Carlo
//! past them ([`eval_ising_model_mcmc`]).

use super::{analyse, TauReport};
use crate::cell::{CellSettings, DataSize, TruthSpec};
use crate::error::SpecError;
use taustar_science::model::ising::{IsingTruth, Pairs};
use taustar_science::tau::Landscape;

/// Check that `couplings` is an N×N symmetric matrix of finite numbers with zero diagonal;
/// the error names the offending entry.
fn check_coupling_matrix(couplings: &[Vec<f64>], n: usize, rows: u32, cols: u32) -> Result<(), SpecError> {
    if couplings.len() != n || couplings.iter().any(|r| r.len() != n) {
        let shape = format!("{}x{}", couplings.len(), couplings.first().map_or(0, Vec::len));
        return Err(SpecError::invalid(
            "couplings",
            shape,
            format!("need an N x N matrix with N = {n} spins for a {rows}x{cols} lattice"),
        ));
    }
    for (i, row) in couplings.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if !v.is_finite() {
                return Err(SpecError::invalid(format!("couplings[{i}][{j}]"), v, "must be finite"));
            }
            if i == j && v != 0.0 {
                return Err(SpecError::invalid(format!("couplings[{i}][{i}]"), v, "the diagonal must be 0"));
            }
            let w = couplings[j][i];
            if (v - w).abs() > 1e-12 * v.abs().max(w.abs()).max(1.0) {
                return Err(SpecError::invalid(
                    format!("couplings[{i}][{j}]"),
                    v,
                    format!("the matrix must be symmetric, but couplings[{j}][{i}] = {w}"),
                ));
            }
        }
    }
    Ok(())
}

/// Sides of the largest lattice [`eval_ising_model_mcmc`] accepts (a sanity cap: 2^20 spins).
pub const MAX_MCMC_SPINS: u64 = 1 << 20;

/// [`eval_ising_model`] by Monte Carlo (docs/spec.md §10), for lattices past enumeration:
/// the model is sampled by parallel tempering and MBAR, the truth side comes from
/// Kaufman's formula and `truth_steps` steps of a truth chain (`sampler`: tempering or
/// multicanonical walkers); everything carries a bootstrap standard error and the diagnostics say whether to trust it. Sides ≥ 3.
/// `precision`: (target standard error of τ*, step budget) to run longer until it is met
/// (see [`taustar_science::mc::estimate::estimate_to_precision`]). Returns the estimate, the truth side's
/// ⟨Ê⟩_p with its error bar (the steps of the last run are in the estimate's diagnostics).
#[allow(clippy::too_many_arguments)]
pub fn eval_ising_model_mcmc(
    rows: u32,
    cols: u32,
    temperature: f64,
    couplings: &[Vec<f64>],
    opts: &taustar_science::mc::estimate::McOptions,
    sampler: &super::SamplerOptions,
    truth_steps: usize,
    precision: Option<(f64, usize)>,
    seed: u64,
) -> Result<(taustar_science::mc::estimate::McTau, taustar_science::mc::stats::Estimate), SpecError> {
    use rand::SeedableRng;
    if rows < 3 || cols < 3 || u64::from(rows) * u64::from(cols) > MAX_MCMC_SPINS {
        return Err(SpecError::invalid(
            "lattice",
            format!("{rows}x{cols}"),
            format!("Monte Carlo evaluation needs both sides >= 3 (Kaufman's ln Z) and at most {MAX_MCMC_SPINS} spins"),
        ));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(SpecError::invalid("temperature", temperature, "must be a finite number > 0"));
    }
    let (lo, hi) = opts.tau_bounds;
    if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < 1.0 && hi > 1.0) {
        return Err(SpecError::invalid("tau_bounds", format!("{lo}:{hi}"), "need 0 < lo < 1 < hi, finite"));
    }
    let n = (rows * cols) as usize;
    check_coupling_matrix(couplings, n, rows, cols)?;
    let mut bonds = Vec::new();
    for (i, row) in couplings.iter().enumerate() {
        for (j, &v) in row.iter().enumerate().skip(i + 1) {
            if v != 0.0 {
                bonds.push((i as u32, j as u32, v));
            }
        }
    }
    let q = taustar_science::mc::model::SpinModel::from_bonds(n, vec![0.0; n], &bonds);
    let truth = taustar_science::mc::model::SpinModel::torus(rows, cols, 1.0 / temperature);
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(seed);
    let (side, series, truth_estimate) =
        taustar_science::mc::truth::torus_truth_side(rows, cols, temperature, &q, truth_steps, &mut rng)
            .ok_or_else(|| {
                SpecError::invalid(
                    "lattice",
                    format!("{rows}x{cols}"),
                    "no closed-form ln Z for this lattice",
                )
            })?;
    if let Some((target, _)) = precision {
        if !(target.is_finite() && target > 0.0) {
            return Err(SpecError::invalid("target_se", target, "must be a finite number > 0"));
        }
    }
    let energy = |s: &[i8]| truth.energy(s);
    let r = super::estimate_with(&q, &energy, side, Some(&series), opts, sampler, precision, &mut rng)?;
    Ok((r, truth_estimate))
}

/// Evaluate a given fully connected Ising model (an N×N symmetric coupling matrix with zero
/// diagonal, spins in row-major lattice order, q ∝ exp(Σ_{i<j} J_ij σ_iσ_j)) against the
/// rows×cols Ising truth at temperature T, without fitting (`taustar eval`).
pub fn eval_ising_model(
    rows: u32,
    cols: u32,
    temperature: f64,
    couplings: &[Vec<f64>],
    taus: &[f64],
    settings: &CellSettings,
) -> Result<TauReport, SpecError> {
    let point = crate::cell::GridPoint {
        truth: TruthSpec::Ising2d { rows, cols, temperature },
        data: DataSize::Samples(1),
        fit: Default::default(),
    };
    point.validate()?;
    settings.validate()?;
    let n = (rows * cols) as usize;
    check_coupling_matrix(couplings, n, rows, cols)?;
    if let Some(t) = taus.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        return Err(SpecError::invalid("tau", t, "every τ must be a finite number > 0"));
    }
    let pairs = Pairs::new(n as u32);
    let truth = IsingTruth::new(rows, cols, temperature, &pairs);
    let j: Vec<f64> = pairs.ij.iter().map(|&(a, b)| couplings[a as usize][b as usize]).collect();
    let mut energy = vec![0.0; 1usize << n];
    pairs.energies_into(&j, &mut energy);
    let land = Landscape::from_states(energy, truth.log_p);
    Ok(analyse(&land, taus, settings.tau_bounds, None))
}
