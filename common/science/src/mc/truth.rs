//! The truth's side of the divergences (docs/spec.md §10), p ∝ e^{−E_p} at β = 1, for the
//! truths past enumeration. One chain loop, [`truth_series`], serves both: an independent
//! chain of the truth ([`TruthChain`], the same chains the training data come from), the
//! first tenth of its steps discarded, records what the side needs at every kept step.
//! - The torus: ln Z_p and ⟨E_p⟩_p from Kaufman's formula; ⟨Ê⟩_p from the chain.
//! - A Potts model: ⟨Ê⟩_p and ⟨E_p⟩_p from the chain; ln Z_p by MBAR over a tempering ladder
//!   of the truth from β = 0 to 1. ln Z_p shifts every D_rev and D_fwd by the same constant
//!   and so does not move τ*; its standard error is reported beside them, not folded in.
//!
//! The series of Ê along the truth chain goes to the estimator, which resamples it in every
//! bootstrap resample.

use rand::Rng;

use super::data::{TorusChain, TruthChain};
use super::diagnostics::LadderDiagnostics;
use super::estimate::{run_ladders, McOptions, McTau, TruthSide, WithSe};
use super::mbar::{bootstrap_se, Mbar};
use super::model::SpinModel;
use super::stats::{estimate as series_estimate, Estimate};
use crate::model::kaufman;
use crate::potts::chain::PottsChain;
use crate::potts::error::PottsError;
use crate::potts::params::PottsModel;

/// Run `chain` for `steps` steps after a tenth as many discarded, calling `record` at every
/// kept step.
pub fn truth_series<C: TruthChain, R: Rng>(
    chain: &mut C,
    steps: usize,
    rng: &mut R,
    mut record: impl FnMut(&C),
) {
    for step in 0..steps + steps / 10 {
        chain.step(rng);
        if step >= steps / 10 {
            record(chain);
        }
    }
}

/// The truth's side for the nearest-neighbour `rows`×`cols` torus at temperature `t`
/// (sides ≥ 3): ln Z_p and ⟨E_p⟩_p from Kaufman's formula, ⟨Ê⟩_p of the fitted model `q`
/// from `steps` steps of a chain of the truth. Returns the side, the series of Ê over the
/// kept steps (for the estimator to resample) and its estimate with error bar; `None` for a
/// side below 3.
pub fn torus_truth_side<R: Rng>(
    rows: u32,
    cols: u32,
    t: f64,
    q: &SpinModel,
    steps: usize,
    rng: &mut R,
) -> Option<(TruthSide, Vec<f64>, Estimate)> {
    let log_z = kaufman::log_partition(rows, cols, t)?;
    let mean_truth_energy = -kaufman::mean_log_weight(rows, cols, t)?;
    let truth = SpinModel::torus(rows, cols, 1.0 / t);
    let mut chain = TorusChain::random(&truth, rng);
    let mut series = Vec::with_capacity(steps);
    truth_series(&mut chain, steps, rng, |c| series.push(q.energy(c.state())));
    let est = series_estimate(&series);
    Some((TruthSide { mean_model_energy: est.mean, mean_truth_energy, log_z }, series, est))
}

/// The truth's side for a fitted Potts model (module docs), and what it rests on.
#[derive(Debug, Clone)]
pub struct PottsTruthSide {
    /// What the τ estimator needs.
    pub side: TruthSide,
    /// Ê of the fit along the truth chain (the estimator resamples it).
    pub series: Vec<f64>,
    /// ⟨Ê⟩_p with its standard error.
    pub mean_model_energy: Estimate,
    /// ln Z_p with its bootstrap standard error.
    pub log_z: WithSe,
    /// The diagnostics of the truth's own ladder (behind ln Z_p).
    pub ladder: LadderDiagnostics,
}

impl PottsTruthSide {
    /// Fold the truth ladder's failed diagnostics into an estimate's.
    pub fn mark(&self, tau: &mut McTau) {
        if !self.ladder.ok {
            let why = self.ladder.note.as_deref().unwrap_or("failed");
            tau.diagnostics.fail(format!("the truth's ladder (ln Z_p): {why}"));
        }
    }
}

/// ⟨Ê⟩_p and ⟨E_p⟩_p from `steps` steps of an independent chain of the Potts `truth`, and
/// ln Z_p by MBAR over the truth's own ladder from β = 0 to 1 (the ladder settings of `mc`).
pub fn potts_truth_side<R: Rng>(
    truth: &PottsModel,
    fit: &PottsModel,
    steps: usize,
    mc: &McOptions,
    rng: &mut R,
) -> Result<PottsTruthSide, PottsError> {
    let mut chain = PottsChain::random(truth, 1.0, rng)?;
    let (mut model_e, mut truth_e) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    truth_series(&mut chain, steps, rng, |c| {
        model_e.push(fit.energy(c.state()));
        truth_e.push(c.energy());
    });
    let mean_model_energy = series_estimate(&model_e);
    let truth_opts = McOptions { tau_bounds: (1.0, mc.tau_bounds.1), ladder: None, ..mc.clone() };
    let run = run_ladders(truth, &|_| 0.0, &truth_opts, rng);
    let point = Mbar::solve(&run.betas, &run.energies, &run.observables, run.log_z0, None);
    let block = (4.0 * run.diagnostics.tau_int).ceil() as usize;
    let stat = |m: &Mbar, _: &[Vec<f64>], _| vec![m.at(1.0).log_z];
    let (lz, lz_se) =
        bootstrap_se(&point, &run.energies, &run.observables, run.log_z0, block, mc.resamples, rng, &stat);
    let log_z = WithSe { value: lz[0], se: lz_se[0] };
    let side = TruthSide {
        mean_model_energy: mean_model_energy.mean,
        mean_truth_energy: series_estimate(&truth_e).mean,
        log_z: log_z.value,
    };
    Ok(PottsTruthSide { side, series: model_e, mean_model_energy, log_z, ladder: run.diagnostics })
}
