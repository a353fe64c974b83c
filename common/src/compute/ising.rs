//! The 2D Ising truth's cells: enumerated ([`EnumeratedIsing`], exact data and an exact
//! landscape, or Monte Carlo evaluation of the fit against the exact truth) and past
//! enumeration ([`SampledIsing`], docs/spec.md §10: chain-drawn data, a fit from samples,
//! and the Monte Carlo evaluation against Kaufman's closed form and a truth chain).

use rand_chacha::ChaCha12Rng;

use super::{
    analyse, mcmc_analysis, mcmc_settings, reported_taus, resolve_samples, CellSteps, Evaluated, Fitted,
    MAX_SAMPLED_BYTES,
};
use crate::cell::{CellSpec, FitMode, FitReport, FitStop, McmcReport, TwoLevelFitReport};
use crate::error::SpecError;
use taustar_science::exact::sample_counts;
use taustar_science::fit::ising::{fit_mle, fit_paper, Enumerator, FitOptions, IsingData, IsingFit};
use taustar_science::fit::plm::{fit_plm, PlmOptions};
use taustar_science::mc::data::{sample_chain, ChainSamples};
use taustar_science::mc::estimate::TruthSide;
use taustar_science::mc::model::SpinModel;
use taustar_science::mc::truth::torus_truth_side;
use taustar_science::model::ising::{IsingTruth, Pairs};
use taustar_science::model::kaufman;
use taustar_science::tau::Landscape;

/// An enumerable lattice's truth as a cell's steps.
pub struct EnumeratedIsing {
    pairs: Pairs,
    truth: IsingTruth,
}

impl EnumeratedIsing {
    /// The `rows`×`cols` torus at temperature `temperature` (at most
    /// [`crate::cell::MAX_ENUMERATED_SPINS`] spins).
    pub fn new(rows: u32, cols: u32, temperature: f64) -> EnumeratedIsing {
        let pairs = Pairs::new(rows * cols);
        let truth = IsingTruth::new(rows, cols, temperature, &pairs);
        EnumeratedIsing { pairs, truth }
    }
}

impl CellSteps for EnumeratedIsing {
    type Data = IsingData;
    type Fitted = IsingFit;
    type Side = ();

    fn samples(&self, spec: &CellSpec) -> Result<u64, SpecError> {
        resolve_samples(spec.point.data, self.truth.entropy(), 1)
    }

    fn draw(&self, _: &CellSpec, m: u64, rng: &mut ChaCha12Rng) -> Result<IsingData, SpecError> {
        Ok(IsingData::new(&self.pairs, sample_counts(&self.truth.probabilities(), m, rng)))
    }

    fn fit(
        &self,
        spec: &CellSpec,
        data: &IsingData,
        rng: &mut ChaCha12Rng,
    ) -> Result<Fitted<IsingFit>, SpecError> {
        let pairs = &self.pairs;
        let mut en = Enumerator::new(pairs.clone());
        let opts = FitOptions {
            l2: spec.point.fit.l2,
            max_iter: spec.settings.max_iter,
            rel_tol: spec.settings.rel_tol,
            coupling_cap: spec.settings.coupling_cap,
        };
        let mut pearson = None;
        let fit = match spec.point.fit.mode {
            FitMode::Mle => fit_mle(&mut en, &data.pair_moments, opts),
            FitMode::Paper => fit_paper(&mut en, data, opts, rng),
            FitMode::Plm | FitMode::Bml => {
                // The drawn states, each once with its count as weight.
                let n = pairs.n as usize;
                let mut spins = Vec::with_capacity(data.states.len() * n);
                for &(x, _) in &data.states {
                    spins.extend((0..n).map(|i| if (x >> i) & 1 == 0 { 1i8 } else { -1 }));
                }
                let weights: Vec<f64> = data.states.iter().map(|&(_, c)| c as f64).collect();
                let fit = fit_samples(spec, n, &spins, &weights, rng);
                pearson = fit.pearson;
                // Enumerable: the fit's true NLL can be reported (log Z − Ĵ·⟨σσ⟩_data).
                let nll = en.pass(&fit.couplings)
                    - fit.couplings.iter().zip(&data.pair_moments).map(|(j, m)| j * m).sum::<f64>();
                IsingFit {
                    mode: spec.point.fit.mode,
                    iterations: fit.iterations,
                    grad_max_norm: fit.grad_max_norm,
                    nll,
                    coupling_max_abs: fit.coupling_max_abs,
                    diverged: fit.diverged,
                    stop: fit.stop,
                    note: fit.note,
                    couplings: fit.couplings,
                }
            }
        };
        let report = FitReport {
            fit_mode: Some(fit.mode),
            fit_iterations: Some(fit.iterations),
            fit_stop: Some(fit.stop),
            grad_max_norm: Some(fit.grad_max_norm),
            nll: Some(fit.nll),
            coupling_max_abs: Some(fit.coupling_max_abs),
            fit_diverged: Some(fit.diverged),
            fit_note: fit.note.clone(),
            data_tau_int: None,
            data_thinning: None,
            fit_pearson: pearson,
        };
        Ok(Fitted { model: fit, report, two_level: TwoLevelFitReport::default() })
    }

    fn evaluate(
        &self,
        spec: &CellSpec,
        data: &IsingData,
        fit: &IsingFit,
        rng: &mut ChaCha12Rng,
    ) -> Result<Evaluated<()>, SpecError> {
        let (pairs, truth) = (&self.pairs, &self.truth);
        let mut energy = vec![0.0; 1usize << pairs.n];
        pairs.energies_into(&fit.couplings, &mut energy);
        let (tau, mcmc) = match &spec.settings.mcmc {
            None => {
                let data_energy = data.energy_stats(pairs, &fit.couplings);
                let land = Landscape::from_states(energy, truth.log_p.clone());
                let taus = reported_taus(&spec.settings);
                (analyse(&land, &taus, spec.settings.tau_bounds, Some(data_energy)), McmcReport::default())
            }
            Some(mcmc) => {
                // The truth side is exact (this path is for enumerable lattices), so the
                // error bars are those of sampling the fitted model alone.
                let mut truth_energy = vec![0.0; 1usize << pairs.n];
                pairs.energies_into(&truth.couplings_over_t, &mut truth_energy);
                let side = TruthSide {
                    mean_model_energy: expectation(&truth.log_p, &energy),
                    mean_truth_energy: expectation(&truth.log_p, &truth_energy),
                    log_z: -truth_energy[0] - truth.log_p[0],
                };
                let q = SpinModel::from_pairs(pairs, &fit.couplings);
                let truth_model = SpinModel::from_pairs(pairs, &truth.couplings_over_t);
                let e_p = |s: &[i8]| truth_model.energy(s);
                mcmc_analysis(&q, &e_p, side, None, mcmc, &spec.settings, rng)?
            }
        };
        Ok(Evaluated { tau, mcmc, side: () })
    }
}

/// A lattice past enumeration as a cell's steps (docs/spec.md §10): M samples from an
/// equilibrated, thinned chain of the truth, a fit from samples, and the Monte Carlo
/// evaluation against the truth's side from Kaufman's ln Z and ⟨E⟩ and a chain's ⟨Ê⟩_p.
/// Validation guarantees `plm` or `bml`, `[eval] method = "mcmc"` and sides ≥ 3.
pub struct SampledIsing {
    rows: u32,
    cols: u32,
    temperature: f64,
    truth: SpinModel,
}

impl SampledIsing {
    /// The `rows`×`cols` torus at temperature `temperature`.
    pub fn new(rows: u32, cols: u32, temperature: f64) -> SampledIsing {
        SampledIsing { rows, cols, temperature, truth: SpinModel::torus(rows, cols, 1.0 / temperature) }
    }

    fn lattice(&self) -> String {
        format!("{}x{}", self.rows, self.cols)
    }

    fn no_closed_form(&self) -> SpecError {
        SpecError::invalid("lattice", self.lattice(), "no closed-form ln Z for this lattice (sides >= 3)")
    }
}

/// A fit from samples of a lattice past enumeration: the couplings as a spin model, and the fit.
pub struct SampledFit {
    /// The fitted model, ready to sample.
    pub model: SpinModel,
    /// The fit's couplings and diagnostics.
    pub fit: SampleFit,
}

impl CellSteps for SampledIsing {
    type Data = ChainSamples<i8>;
    type Fitted = SampledFit;
    type Side = ();

    fn samples(&self, spec: &CellSpec) -> Result<u64, SpecError> {
        mcmc_settings(spec, &format!("a {} lattice", self.lattice()))?;
        let (rows, cols, t) = (self.rows, self.cols, self.temperature);
        let log_z = kaufman::log_partition(rows, cols, t).ok_or_else(|| self.no_closed_form())?;
        let entropy = log_z - kaufman::mean_log_weight(rows, cols, t).ok_or_else(|| self.no_closed_form())?;
        let m = resolve_samples(spec.point.data, entropy, 1)?;
        let n = u64::from(rows * cols);
        if m.saturating_mul(n) > MAX_SAMPLED_BYTES {
            return Err(SpecError::invalid(
                "samples",
                m,
                format!(
                    "{m} samples of {n} spins exceed the {MAX_SAMPLED_BYTES}-byte limit of one cell's data"
                ),
            ));
        }
        Ok(m)
    }

    fn draw(&self, _: &CellSpec, m: u64, rng: &mut ChaCha12Rng) -> Result<ChainSamples<i8>, SpecError> {
        Ok(sample_chain(&self.truth, m as usize, rng))
    }

    fn fit(
        &self,
        spec: &CellSpec,
        data: &ChainSamples<i8>,
        rng: &mut ChaCha12Rng,
    ) -> Result<Fitted<SampledFit>, SpecError> {
        let n = data.n;
        let m = data.states.len() / n.max(1);
        let fit = fit_samples(spec, n, &data.states, &vec![1.0; m], rng);
        let model = SpinModel::from_pairs(&Pairs::new_without_masks(n as u32), &fit.couplings);
        let report = FitReport {
            fit_mode: Some(spec.point.fit.mode),
            fit_iterations: Some(fit.iterations),
            fit_stop: Some(fit.stop),
            grad_max_norm: Some(fit.grad_max_norm),
            // The likelihood needs ln Z_q, which only the evaluation estimates.
            nll: None,
            coupling_max_abs: Some(fit.coupling_max_abs),
            fit_diverged: Some(fit.diverged),
            fit_note: fit.note.clone(),
            data_tau_int: Some(data.tau_int),
            data_thinning: Some(data.thinning),
            fit_pearson: fit.pearson,
        };
        Ok(Fitted { model: SampledFit { model, fit }, report, two_level: TwoLevelFitReport::default() })
    }

    fn evaluate(
        &self,
        spec: &CellSpec,
        _: &ChainSamples<i8>,
        fit: &SampledFit,
        rng: &mut ChaCha12Rng,
    ) -> Result<Evaluated<()>, SpecError> {
        let mcmc = mcmc_settings(spec, &format!("a {} lattice", self.lattice()))?;
        let q = &fit.model;
        let (side, series, _) =
            torus_truth_side(self.rows, self.cols, self.temperature, q, mcmc.truth_steps as usize, rng)
                .ok_or_else(|| self.no_closed_form())?;
        let e_p = |s: &[i8]| self.truth.energy(s);
        let (tau, mcmc) = mcmc_analysis(q, &e_p, side, Some(&series), mcmc, &spec.settings, rng)?;
        Ok(Evaluated { tau, mcmc, side: () })
    }
}

/// A fit from samples (`plm` or `bml`): what a report needs of either.
pub struct SampleFit {
    /// Ĵ_ij for i < j, in pair order.
    pub couplings: Vec<f64>,
    /// Iterations (plm) or epochs (bml).
    pub iterations: u32,
    /// Final max-norm of the gradient.
    pub grad_max_norm: f64,
    /// max|Ĵ|.
    pub coupling_max_abs: f64,
    /// Whether the fit diverged.
    pub diverged: bool,
    /// Why it stopped.
    pub stop: FitStop,
    /// Why it diverged or stopped early.
    pub note: Option<String>,
    /// `bml`: the Pearson correlation of connected correlations it ended at.
    pub pearson: Option<f64>,
}

/// Fit `spins` (with `weights`) by the cell's sample-based fit mode (`plm` or `bml`).
fn fit_samples<R: rand::Rng>(
    spec: &CellSpec,
    n: usize,
    spins: &[i8],
    weights: &[f64],
    rng: &mut R,
) -> SampleFit {
    if spec.point.fit.mode == FitMode::Bml {
        let (pair, mean) = taustar_science::fit::bml::moments(n, spins, weights);
        let opts = taustar_science::fit::bml::BmlOptions {
            l2: spec.point.fit.l2,
            pearson_target: spec.settings.pearson_target,
            max_sweeps: spec.settings.max_sweeps,
            coupling_cap: spec.settings.coupling_cap,
            ..taustar_science::fit::bml::DEFAULT_BML
        };
        let b = taustar_science::fit::bml::fit_bml(n, (&pair, &mean), opts, rng);
        return SampleFit {
            iterations: b.epochs,
            grad_max_norm: b.grad_max_norm,
            coupling_max_abs: b.coupling_max_abs,
            diverged: b.diverged,
            stop: b.stop,
            note: b.note,
            pearson: Some(b.pearson),
            couplings: b.couplings,
        };
    }
    let p = fit_plm(n, spins, weights, plm_options(spec));
    SampleFit {
        iterations: p.iterations,
        grad_max_norm: p.grad_max_norm,
        coupling_max_abs: p.coupling_max_abs,
        diverged: p.diverged,
        stop: p.stop,
        note: p.note,
        pearson: None,
        couplings: p.couplings,
    }
}

/// Gradient tolerance of each site's pseudo-likelihood solve.
const PLM_GRAD_TOL: f64 = 1e-7;

fn plm_options(spec: &CellSpec) -> PlmOptions {
    PlmOptions {
        l2: spec.point.fit.l2,
        max_iter: spec.settings.max_iter,
        grad_tol: PLM_GRAD_TOL,
        coupling_cap: spec.settings.coupling_cap,
        memory: taustar_science::fit::plm::DEFAULT_MEMORY,
    }
}

/// E_p[f] = Σ_x p(x) f(x) over every state, p given by its logarithm.
fn expectation(log_p: &[f64], f: &[f64]) -> f64 {
    log_p.iter().zip(f).map(|(lp, v)| lp.exp() * v).sum()
}
