//! One cell of the paper's experiment on a Potts truth too large to enumerate (docs/spec.md
//! §10): draw M sequences from the truth by an equilibrated, thinned chain; fit a model to
//! them by pseudo-likelihood; estimate τ*_rev and τ*_fwd of the fit against the truth by
//! parallel tempering + MBAR, with standard errors and diagnostics. Studies will run this
//! per cell (`[truth] kind = "potts-random"`); today it is what `examples/potts_cell_split.rs`
//! times, piece by piece.
//!
//! The truth's side of the divergences (p ∝ e^{−E_p}, the truth at β = 1):
//! - ⟨Ê⟩_p and ⟨E_p⟩_p from an independent chain of the truth (its series of Ê goes to the
//!   estimator, which resamples it in every bootstrap resample);
//! - ln Z_p by MBAR over a tempering ladder of the truth from β = 0 to 1. It shifts every
//!   D_rev and D_fwd by the same constant and so does not move τ*; its own standard error is
//!   reported beside them (`log_z_truth`), not folded into theirs.
//!
//! Everything comes from the generator it is handed, so a cell is a function of its seed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rand::Rng;

use taustar_science::fit::potts_plm::{fit_potts_plm, PottsPlmFit, PottsPlmOptions, DEFAULT_POTTS_PLM};
use taustar_science::mc::mbar::{bootstrap_se, Mbar};
use taustar_science::mc::stats::{autocorrelation, estimate as series_estimate, Estimate};
use taustar_science::mc::tau::{estimate_ensemble, run_ladders, McOptions, McTau, TruthSide, WithSe};
use taustar_science::potts::chain::PottsChain;
use taustar_science::potts::error::PottsError;
use taustar_science::potts::params::PottsModel;

/// Sweeps discarded before the pilot run of [`sample_sequences`].
const BURN_IN: usize = 500;
/// Pilot sweeps, first and most.
const PILOT: usize = 2_000;
const MAX_PILOT: usize = 32_000;

/// M sequences of a Potts model at β = 1 and how they were drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSamples {
    /// States, sequence by sequence: `seqs[m·n + i]` is s_i of sequence m.
    pub seqs: Vec<u8>,
    /// τ_int of the pilot run's energy, in sweeps.
    pub tau_int: f64,
    /// Sweeps between kept sequences (⌈2 τ_int⌉).
    pub thinning: u32,
    /// Whether the pilot's τ_int window converged (if not, `thinning` is a lower bound).
    pub converged: bool,
}

/// `m` sequences of `model` at β = 1 from one heat-bath chain: a burn-in, a pilot that
/// measures τ_int of the energy (lengthened until Sokal's window converges, up to 32 000
/// sweeps), then one kept sequence every ⌈2 τ_int⌉ sweeps — the spacing at which a series'
/// samples count as independent for its variance.
pub fn sample_sequences<R: Rng>(
    model: &PottsModel,
    m: usize,
    rng: &mut R,
) -> Result<SequenceSamples, PottsError> {
    let mut chain = PottsChain::random(model, 1.0, rng)?;
    for _ in 0..BURN_IN {
        chain.sweep(rng);
    }
    let mut pilot = PILOT;
    let (mut tau_int, mut converged);
    loop {
        let mut e = Vec::with_capacity(pilot);
        for _ in 0..pilot {
            chain.sweep(rng);
            e.push(chain.energy());
        }
        let a = autocorrelation(&e);
        (tau_int, converged) = (a.tau_int, a.converged);
        if converged || pilot >= MAX_PILOT {
            break;
        }
        pilot *= 2;
    }
    let thinning = (2.0 * tau_int).ceil().max(1.0) as u32;
    let mut seqs = Vec::with_capacity(m * model.n());
    for _ in 0..m {
        for _ in 0..thinning {
            chain.sweep(rng);
        }
        seqs.extend_from_slice(chain.state());
    }
    Ok(SequenceSamples { seqs, tau_int, thinning, converged })
}

/// What one Potts cell reports.
#[derive(Debug, Clone)]
pub struct PottsCell {
    /// The training data's τ_int and thinning.
    pub data: SequenceSamples,
    /// The fit.
    pub fit: PottsPlmFit,
    /// ⟨Ê⟩_p from the truth chain, with its standard error.
    pub truth_mean_model_energy: Estimate,
    /// ln Z_p by MBAR over the truth's ladder, with its bootstrap standard error.
    pub log_z_truth: WithSe,
    /// τ*, the divergences and the diagnostics of the fit against the truth.
    pub tau: McTau,
    /// Wall seconds of sampling the training data, fitting, and evaluating (truth side and
    /// the fit's tempering together).
    pub seconds: [f64; 3],
}

/// The settings of [`potts_cell`].
#[derive(Debug, Clone)]
pub struct PottsCellOptions {
    /// M, the number of training sequences.
    pub samples: usize,
    /// The pseudo-likelihood fit (λ_h, λ_J, iteration caps).
    pub fit: PottsPlmOptions,
    /// The tempering of the fitted model (and, up to β = 1, of the truth).
    pub mc: McOptions,
    /// Sweeps of the truth chain behind ⟨Ê⟩_p and ⟨E_p⟩_p.
    pub truth_steps: usize,
}

impl Default for PottsCellOptions {
    fn default() -> Self {
        PottsCellOptions {
            samples: 1_000,
            fit: DEFAULT_POTTS_PLM,
            mc: McOptions::default(),
            truth_steps: 20_000,
        }
    }
}

/// The truth's side of the divergences for a fitted model (module docs), and what it rests on.
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
    /// Failed diagnostics of the truth's ladder.
    pub notes: Vec<String>,
}

impl PottsTruthSide {
    /// Fold the truth ladder's failed diagnostics into an estimate's.
    pub fn mark(&self, tau: &mut McTau) {
        if self.notes.is_empty() {
            return;
        }
        let n = format!("the truth's ladder (ln Z_p): {}", self.notes.join("; "));
        tau.note = Some(match tau.note.take() {
            Some(t) => format!("{t}; {n}"),
            None => n,
        });
        tau.ok = false;
    }
}

/// ⟨Ê⟩_p and ⟨E_p⟩_p from an independent chain of the truth (`steps` sweeps after a tenth
/// as many discarded), and ln Z_p by MBAR over the truth's own ladder from β = 0 to 1 (the
/// ladder settings of `mc`).
pub fn truth_side<R: Rng>(
    truth: &PottsModel,
    fit: &PottsModel,
    steps: usize,
    mc: &McOptions,
    rng: &mut R,
) -> Result<PottsTruthSide, PottsError> {
    let mut chain = PottsChain::random(truth, 1.0, rng)?;
    let (mut model_e, mut truth_e) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for step in 0..steps + steps / 10 {
        chain.sweep(rng);
        if step >= steps / 10 {
            model_e.push(fit.energy(chain.state()));
            truth_e.push(chain.energy());
        }
    }
    let mean_model_energy = series_estimate(&model_e);
    let truth_opts = McOptions { tau_bounds: (1.0, mc.tau_bounds.1), ladder: None, ..mc.clone() };
    let run = run_ladders(truth, &|_| 0.0, &truth_opts, rng);
    let point = Mbar::solve(&run.betas, &run.energies, &run.observables, run.log_z0, None);
    let block = (4.0 * run.tau_int).ceil() as usize;
    let stat = |m: &Mbar, _: &[Vec<f64>], _| vec![m.at(1.0).log_z];
    let (lz, lz_se) =
        bootstrap_se(&point, &run.energies, &run.observables, run.log_z0, block, mc.resamples, rng, &stat);
    let log_z = WithSe { value: lz[0], se: lz_se[0] };
    let side = TruthSide {
        mean_model_energy: mean_model_energy.mean,
        mean_truth_energy: series_estimate(&truth_e).mean,
        log_z: log_z.value,
    };
    Ok(PottsTruthSide { side, series: model_e, mean_model_energy, log_z, notes: run.notes })
}

/// Run one cell against `truth` (module docs).
pub fn potts_cell<R: Rng>(
    truth: &PottsModel,
    opts: &PottsCellOptions,
    rng: &mut R,
) -> Result<PottsCell, PottsError> {
    let t0 = Instant::now();
    let data = sample_sequences(truth, opts.samples, rng)?;
    let t1 = Instant::now();
    let weights = vec![1.0; opts.samples];
    let fit = fit_potts_plm(&data.seqs, truth.n(), truth.q(), &weights, opts.fit)?;
    let t2 = Instant::now();
    let side = truth_side(truth, &fit.model, opts.truth_steps, &opts.mc, rng)?;
    let mut tau = estimate_ensemble(
        &fit.model,
        &|s: &[u8]| truth.energy(s),
        side.side,
        Some(&side.series),
        &opts.mc,
        rng,
    );
    side.mark(&mut tau);
    let t3 = Instant::now();
    Ok(PottsCell {
        data,
        fit,
        truth_mean_model_energy: side.mean_model_energy,
        log_z_truth: side.log_z,
        tau,
        seconds: [(t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64()],
    })
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
