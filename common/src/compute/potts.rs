//! Potts truths' cells (`potts-random`, `potts-file`; docs/spec.md §10): M sequences from an
//! equilibrated, thinned chain of the truth, the `plm` or `bml` fit with λ on fields and
//! couplings, and the Monte Carlo evaluation against the truth's side from its own chain and
//! ladder ([`potts_truth_side`]). Validation guarantees a fit from samples, `data.samples`
//! and `[eval] method = "mcmc"`.
//!
//! A `potts-file` truth is a user's model file, named in cell keys by its content digest
//! ([`file_sha256`]) and read once per process ([`load_truth_file`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rand_chacha::ChaCha12Rng;

use super::{
    mc_options, mcmc_estimate, mcmc_reports, mcmc_settings, reported_taus, CellSteps, Evaluated, Fitted,
};
use super::{MAX_SAMPLED_BYTES, MAX_SAMPLES};
use crate::cell::{CellSpec, DataSize, FitMode, FitReport, TruthSpec, TwoLevelFitReport};
use crate::error::SpecError;
use taustar_science::mc::data::{sample_sequences, ChainSamples};
use taustar_science::mc::truth::{potts_truth_side, PottsTruthSide};
use taustar_science::potts::{PottsError, PottsModel};

/// A Potts truth as a cell's steps.
pub struct Potts {
    truth: Arc<PottsModel>,
    /// The grid point's key, which names the truth in errors.
    key: String,
}

impl Potts {
    /// The truth of a Potts cell: its family generated, or its file read (and checked
    /// against the digest the study recorded).
    pub fn load(spec: &CellSpec) -> Result<Potts, SpecError> {
        let key = spec.point.key();
        let err = |e: PottsError| SpecError::invalid("truth", &key, e.to_string());
        let truth = match &spec.point.truth {
            TruthSpec::PottsFile { path, alphabet, sha256, .. } => {
                load_truth_file(path, alphabet, sha256).map_err(err)?
            }
            t => {
                let family =
                    t.potts_random().ok_or_else(|| SpecError::invalid("truth", &key, "not a Potts truth"))?;
                Arc::new(taustar_science::potts::random_family(&family).map_err(err)?)
            }
        };
        Ok(Potts { truth, key })
    }

    /// A given model as the truth of `spec`'s cell (the cell's truth spec then only names it).
    pub fn with_model(spec: &CellSpec, truth: Arc<PottsModel>) -> Potts {
        Potts { truth, key: spec.point.key() }
    }

    /// The truth.
    pub fn truth(&self) -> &PottsModel {
        &self.truth
    }

    fn err(&self, e: PottsError) -> SpecError {
        SpecError::invalid("truth", &self.key, e.to_string())
    }
}

impl CellSteps for Potts {
    type Data = ChainSamples<u8>;
    type Fitted = PottsModel;
    type Side = PottsTruthSide;

    fn samples(&self, spec: &CellSpec) -> Result<u64, SpecError> {
        mcmc_settings(spec, "a Potts truth")?;
        let m = match spec.point.data {
            DataSize::Samples(m) => m,
            DataSize::Mu(mu) => {
                return Err(SpecError::invalid(
                    "mu",
                    mu,
                    "a Potts truth's entropy is not known in closed form: give data.samples instead",
                ))
            }
        };
        let n = self.truth.n();
        if m.saturating_mul(n as u64) > MAX_SAMPLED_BYTES || m > MAX_SAMPLES {
            return Err(SpecError::invalid(
                "samples",
                m,
                format!("{m} sequences of {n} sites exceed one cell's data limits"),
            ));
        }
        Ok(m)
    }

    fn draw(&self, _: &CellSpec, m: u64, rng: &mut ChaCha12Rng) -> Result<ChainSamples<u8>, SpecError> {
        sample_sequences(&self.truth, m as usize, rng).map_err(|e| self.err(e))
    }

    fn fit(
        &self,
        spec: &CellSpec,
        data: &ChainSamples<u8>,
        rng: &mut ChaCha12Rng,
    ) -> Result<Fitted<PottsModel>, SpecError> {
        let fit =
            potts_fit(spec, &data.states, self.truth.n(), self.truth.q(), rng).map_err(|e| self.err(e))?;
        let report =
            FitReport { data_tau_int: Some(data.tau_int), data_thinning: Some(data.thinning), ..fit.report };
        Ok(Fitted { model: fit.model, report, two_level: TwoLevelFitReport::default() })
    }

    fn evaluate(
        &self,
        spec: &CellSpec,
        _: &ChainSamples<u8>,
        fit: &PottsModel,
        rng: &mut ChaCha12Rng,
    ) -> Result<Evaluated<PottsTruthSide>, SpecError> {
        let mcmc = mcmc_settings(spec, "a Potts truth")?;
        let truth = &self.truth;
        let mc = mc_options(mcmc, spec.settings.tau_bounds, reported_taus(&spec.settings));
        let side =
            potts_truth_side(truth, fit, mcmc.truth_steps as usize, &mc, rng).map_err(|e| self.err(e))?;
        let mut r = mcmc_estimate(
            fit,
            &|s: &[u8]| truth.energy(s),
            side.side,
            Some(&side.series),
            mcmc,
            &spec.settings,
            rng,
        )?;
        side.mark(&mut r);
        let (tau, mcmc) = mcmc_reports(&r);
        Ok(Evaluated { tau, mcmc, side })
    }
}

/// A Potts fit of a cell and its report (the fields a fit fills; the data's are the caller's).
struct PottsCellFit {
    model: PottsModel,
    report: FitReport,
}

/// The cell's Potts fit, by its mode: `plm` (λ on fields and couplings) or `bml` (the same
/// penalty; `fit.pearson_target` and `fit.max_sweeps` as for Ising).
fn potts_fit<R: rand::Rng>(
    spec: &CellSpec,
    seqs: &[u8],
    n: usize,
    q: usize,
    rng: &mut R,
) -> Result<PottsCellFit, PottsError> {
    let l2 = spec.point.fit.l2;
    let weights = vec![1.0; seqs.len() / n];
    let base = FitReport {
        fit_mode: Some(spec.point.fit.mode),
        // The likelihood needs ln Z_q, which only the evaluation estimates.
        nll: None,
        ..FitReport::default()
    };
    let max_abs = |m: &PottsModel| m.couplings().iter().map(|c| c.abs()).reduce(f64::max);
    if spec.point.fit.mode == FitMode::Bml {
        let opts = taustar_science::fit::potts_bml::PottsBmlOptions {
            l2_fields: l2,
            l2_couplings: l2,
            pearson_target: spec.settings.pearson_target,
            max_sweeps: spec.settings.max_sweeps,
            ..taustar_science::fit::potts_bml::DEFAULT_POTTS_BML
        };
        let fit = taustar_science::fit::potts_bml::fit_potts_bml(seqs, n, q, &weights, opts, rng)?;
        let report = FitReport {
            fit_iterations: Some(fit.epochs),
            fit_stop: Some(fit.stop),
            grad_max_norm: Some(fit.grad_max_norm),
            coupling_max_abs: max_abs(&fit.model),
            fit_diverged: Some(fit.diverged),
            fit_note: fit.note.clone(),
            fit_pearson: Some(fit.pearson),
            ..base
        };
        return Ok(PottsCellFit { model: fit.model, report });
    }
    let opts = taustar_science::fit::potts_plm::PottsPlmOptions {
        l2_fields: l2,
        l2_couplings: l2,
        ..taustar_science::fit::potts_plm::DEFAULT_POTTS_PLM
    };
    let fit = taustar_science::fit::potts_plm::fit_potts_plm(seqs, n, q, &weights, opts)?;
    let report = FitReport {
        fit_iterations: fit.sites.iter().map(|s| s.iterations).max(),
        fit_stop: Some(fit.stop),
        grad_max_norm: fit.sites.iter().map(|s| s.grad_max_norm).reduce(f64::max),
        coupling_max_abs: max_abs(&fit.model),
        fit_diverged: Some(fit.diverged),
        fit_note: fit.note.clone(),
        ..base
    };
    Ok(PottsCellFit { model: fit.model, report })
}

/// SHA-256 of a model file's bytes, lower-case hex: the name a `potts-file` truth has in cell
/// keys, so results follow the model's content rather than its path.
pub fn file_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The model of a `potts-file` truth: read from `path` with `alphabet`, its content checked
/// against `sha256` (a file that changed since the study was made is refused, naming both
/// digests), parsed once per process and shared — a protein model's file is tens of MB and
/// every cell of a study needs it.
pub fn load_truth_file(path: &str, alphabet: &str, sha256: &str) -> Result<Arc<PottsModel>, PottsError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<PottsModel>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = format!("{sha256};{alphabet}");
    if let Some(m) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Arc::clone(m));
    }
    let bytes = std::fs::read(path).map_err(|error| PottsError::Io { file: path.to_string(), error })?;
    let actual = file_sha256(&bytes);
    if actual != sha256 {
        return Err(PottsError::setting(
            "potts-file.sha256",
            &actual,
            format!("the model file {path} is not the one the study was made with (sha256 {sha256})"),
        ));
    }
    let alphabet = taustar_science::potts::Alphabet::named(alphabet)?;
    let model = Arc::new(taustar_science::potts::read_params(std::io::Cursor::new(bytes), &alphabet, path)?);
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::clone(&model));
    Ok(model)
}
