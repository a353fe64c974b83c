//! τ*_rev, τ*_fwd, the divergences and the curves from one multicanonical run: the same
//! estimate as tempering's ([`crate::mc::estimate::estimate_ensemble`]), for fitted models
//! whose energy law turns bimodal on the way down in τ, where a ladder cannot tunnel.
//!
//! Both samplers hand their samples to the same code: the estimator's statistics ask a
//! [`Reweighter`](crate::mc::mbar::Reweighter) for ln Z_q, ⟨Ê⟩, Var(Ê) and Cov(Ê, E_p) at any
//! β, and finds the roots, values and curve from them. Only the error bars' resampling
//! differs: here whole production blocks of every walker are redrawn (stratified by walker,
//! [`super::reweight::bootstrap`]); with truth samples, their series is redrawn in blocks of
//! its own τ_int in the same resample, as tempering does.
//!
//! What tempering checks and this does not need: the swap acceptance (no ladder) and the
//! MBAR–TI cross-check of ln Z (one reweighting gives both). What it checks instead, in the
//! run's [`MucaDiagnostics`]: every walker's round trips between
//! the window's ends, the production histogram's flatness, ln g's agreement across walkers
//! and the blocks' length against τ_int.

use rand::{Rng, SeedableRng};

use super::{run_multicanonical, LocalEnsemble, MucaDiagnostics, MucaError, MucaOptions, MucaReweighting};
use crate::mc::diagnostics::LadderDiagnostics;
use crate::mc::estimate::{block_resampled_mean, from_statistics, statistics, McOptions, McTau, TruthSide};
use crate::mc::mbar::Resample;
use crate::mc::stats::autocorrelation;

/// What a multicanonical estimate adds to [`McTau`]: the run's own diagnostics in full.
#[derive(Debug, Clone, PartialEq)]
pub struct MucaTau {
    /// The estimate, its diagnostics in the shared names (`mcmc_ok`, `round_trips`, `r_hat`,
    /// …; `ladder_rungs` 0 and no swap acceptance).
    pub tau: McTau,
    /// Everything the run measured about itself (window, bins, round trips per walker, …).
    pub run: MucaDiagnostics,
}

/// The multicanonical counterpart of [`estimate_ensemble`](crate::mc::estimate::estimate_ensemble):
/// the same arguments, plus the sampler's own options (`muca.tau_lo` and `muca.resamples`
/// are taken from `opts`: τ bounds and resamples mean one thing for both samplers). Errors
/// only on options out of range or a model with nothing to sample.
pub fn estimate_multicanonical<E: LocalEnsemble + ?Sized, R: Rng>(
    q: &E,
    truth_energy: &(dyn Fn(&E::Config) -> f64 + Sync),
    truth: TruthSide,
    truth_samples: Option<&[f64]>,
    opts: &McOptions,
    muca: &MucaOptions,
    rng: &mut R,
) -> Result<MucaTau, MucaError> {
    let (lo, hi) = opts.tau_bounds;
    assert!(0.0 < lo && lo < 1.0 && 1.0 < hi, "the τ range must contain 1");
    let muca = MucaOptions { tau_lo: lo, resamples: opts.resamples, ..muca.clone() };
    let run = run_multicanonical(q, truth_energy, &muca, rng)?;
    let bounds = opts.tau_bounds;
    let curve: Vec<f64> = opts.curve.iter().copied().filter(|t| (lo..=hi).contains(t)).collect();
    let truth_block = truth_samples.map_or(1, |s| (4.0 * autocorrelation(s).tau_int).ceil() as usize);
    let stat = |r: &MucaReweighting, which: Resample| {
        let mut side = truth;
        if let (Some(series), Resample::Drawn(seed)) = (truth_samples, which) {
            let mut side_rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            side.mean_model_energy = block_resampled_mean(series, truth_block, &mut side_rng);
        }
        statistics(r, &side, bounds, &curve).0
    };
    let (est, se) = run.bootstrap(opts.resamples, rng, &stat);
    let (_, at_bound) = statistics(&run.reweighting, &truth, bounds, &[]);
    let diagnostics = muca_diagnostics(&run.diagnostics, &muca, run.reweighting.len(), lo);
    Ok(MucaTau {
        tau: McTau { diagnostics, ..from_statistics(&est, &se, &curve, at_bound) },
        run: run.diagnostics.clone(),
    })
}

/// A multicanonical run's diagnostics under tempering's published names, where they mean the
/// same thing ([`LadderDiagnostics`]' docs say how each reads for this sampler); `samples`
/// recorded in all, the range reaching down to `tau_lo`.
pub(crate) fn muca_diagnostics(
    d: &MucaDiagnostics,
    muca: &MucaOptions,
    samples: usize,
    tau_lo: f64,
) -> LadderDiagnostics {
    LadderDiagnostics {
        ok: d.ok,
        note: d.note.clone(),
        // Sweeps recorded, all walkers together.
        steps: (muca.production_sweeps * muca.walkers) as u64,
        rungs: 0,
        min_swap_acceptance: None,
        round_trips: d.round_trips.iter().sum(),
        r_hat: d.log_g_r_hat,
        tau_int: d.tau_int,
        ess: samples as f64 / (2.0 * d.tau_int),
        equilibrated_tau_lo: d.ok.then_some(tau_lo),
        walker_round_trips_min: Some(d.min_round_trips()),
        flatness: Some(d.flatness),
    }
}
