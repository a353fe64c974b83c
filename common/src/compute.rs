//! The steps of one cell (docs/spec.md §6): resolve M, draw exact data, fit once, evaluate every τ,
//! find τ*. Also the fit-free evaluation of a given Ising model (`taustar eval`).

use serde::{Deserialize, Serialize};

use crate::cell::{
    CellResult, CellSettings, CellSpec, CurveOutput, CurvePoint, CurveSe, DataSize, FitMode, IsingFitReport,
    McmcReport, McmcSettings, TauSummary, TruthSpec, TwoLevelFitReport,
};
use crate::error::SpecError;
use taustar_science::exact::sample_counts;
use taustar_science::fit::ising::{fit_mle, fit_paper, Enumerator, FitOptions, IsingData};
use taustar_science::fit::plm::{fit_plm, PlmOptions};
use taustar_science::fit::two_level::fit_two_level;
use taustar_science::mc::data::sample_chain;
use taustar_science::mc::model::SpinModel;
use taustar_science::mc::replica::Ensemble;
use taustar_science::mc::tau::{McOptions, McTau, TruthSide};
use taustar_science::model::ising::{IsingTruth, Pairs};
use taustar_science::model::kaufman;
use taustar_science::model::two_level::TwoLevelTruth;
use taustar_science::tau::{heat_capacity_peak, optimise, variance_match, Divergence, Landscape, Scan};

/// Largest M a cell may draw (a guard against μ values that explode).
pub const MAX_SAMPLES: u64 = 1_000_000_000;

/// Everything the τ analysis of one fitted model yields: the summary a cell keeps and the
/// curve at the requested τ values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TauReport {
    /// τ*, the divergences at τ = 1 and at τ*, the diagnostics.
    #[serde(flatten)]
    pub summary: TauSummary,
    /// The curve at the requested τ values.
    pub curve: Vec<CurvePoint>,
}

/// Analyse a landscape: curve at `taus`, τ* of both divergences, diagnostics.
/// `data_energy` = (mean, population variance) of Ê over the training data, if any.
pub fn analyse(
    land: &Landscape,
    taus: &[f64],
    bounds: (f64, f64),
    data_energy: Option<(f64, f64)>,
) -> TauReport {
    let scan = Scan::new(land, bounds);
    let rev = optimise(land, &scan, Divergence::Reverse);
    let fwd = optimise(land, &scan, Divergence::Forward);
    let at1 = land.eval(1.0);
    TauReport {
        summary: TauSummary {
            tau_rev: rev.tau,
            tau_fwd: fwd.tau,
            tau_rev_at_bound: rev.at_bound,
            tau_fwd_at_bound: fwd.at_bound,
            dkl_rev_at_1: at1.dkl_rev,
            dkl_rev_opt: rev.value,
            dkl_fwd_at_1: at1.dkl_fwd,
            dkl_fwd_opt: fwd.value,
            tau_heat_peak: heat_capacity_peak(land, &scan),
            tau_var: data_energy.and_then(|(mu, s2)| variance_match(land, &scan, mu, s2)),
            kappa_at_1: Some(at1.kappa),
            heat_capacity_at_1: Some(at1.heat_capacity),
        },
        curve: land.curve(taus),
    }
}

/// M of a cell: given directly, or round(exp(μ + S(p))) (docs/spec.md §3).
pub fn resolve_samples(data: DataSize, truth_entropy: f64, min: u64) -> Result<u64, SpecError> {
    let m = match data {
        DataSize::Samples(m) => m,
        DataSize::Mu(mu) => {
            let m = (mu + truth_entropy).exp().round();
            // NaN-safe: a NaN or infinite M fails this test too.
            if m.is_nan() || m > MAX_SAMPLES as f64 {
                return Err(SpecError::invalid(
                    "mu",
                    mu,
                    format!("gives M = exp(mu + S) = {m:e} samples, above the limit {MAX_SAMPLES}"),
                ));
            }
            m as u64
        }
    };
    if m < min {
        return Err(SpecError::invalid(
            match data {
                DataSize::Samples(_) => "samples",
                DataSize::Mu(_) => "mu",
            },
            match data {
                DataSize::Samples(m) => m.to_string(),
                DataSize::Mu(mu) => format!("{mu} (M = {m})"),
            },
            format!("this truth needs M >= {min}"),
        ));
    }
    if m > MAX_SAMPLES {
        return Err(SpecError::invalid("samples", m, format!("above the limit {MAX_SAMPLES}")));
    }
    Ok(m)
}

/// Compute one cell (docs/spec.md §6): draw data, fit once, evaluate the τ grid, find τ*.
///
/// Pure and deterministic: the same `spec` gives a bit-identical result whatever thread
/// runs it. Errors only on an invalid spec.
pub fn run_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    spec.validate()?;
    compute_cell(spec)
}

/// Compute a validated cell.
pub fn compute_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    match spec.point.truth {
        TruthSpec::TwoLevel { states, low_states, gap } => {
            two_level_cell(spec, TwoLevelTruth::new(states, low_states, gap))
        }
        TruthSpec::Ising2d { rows, cols, temperature } => ising_cell(spec, rows, cols, temperature),
        TruthSpec::PottsRandom { .. } | TruthSpec::PottsFile { .. } => potts_cell(spec),
    }
}

/// The two-level closed forms of docs/spec.md §4.1, with c[L][L̂] the class sizes.
///
/// Under q_τ states of one fitted label are equally likely, so with π = q(L̂ = 1):
/// Var_q(L̂) = π(1−π) and Cov_q(L, L̂) = π(1−π)(ℓ/n̂_e − (n_e−ℓ)/n̂_g). The stationarity
/// condition β̂ Var_q(L̂) = Δ Cov_q(L, L̂) of dD_rev/dβ̂ = 0 loses π entirely:
/// β̂* = Δ(ℓN_s − n_e n̂_e)/(n̂_g n̂_e), so τ*_rev = Δ̂/β̂* = (Δ̂/Δ)·n̂_g n̂_e/(ℓN_s − n_e n̂_e)
/// when the denominator is positive (else D_rev falls all the way to τ → ∞).
/// Forward: E_{q_τ}[L̂] = E_p[L̂] gives e^{−β̂} = (P/(1−P))·n̂_g/n̂_e with P = E_p[L̂], i.e.
/// β̂ = ln(((1−P)/P)·n̂_e/n̂_g), τ*_fwd = Δ̂/β̂ when β̂ > 0.
fn two_level_closed_forms(c: [[u32; 2]; 2], gap: f64, gap_hat: f64) -> (Option<f64>, Option<f64>) {
    let f = |x: u32| f64::from(x);
    let (ng_hat, ne_hat) = (f(c[0][0] + c[1][0]), f(c[0][1] + c[1][1]));
    let ne = f(c[1][0] + c[1][1]);
    let ns = ng_hat + ne_hat;
    let overlap = f(c[1][1]);
    if gap_hat <= 0.0 {
        return (None, None);
    }
    let denom = overlap * ns - ne * ne_hat;
    let rev = (denom > 0.0).then(|| gap_hat / gap * ng_hat * ne_hat / denom);
    let eg = (-gap).exp();
    // (1 − P)/P without forming P: both over the same Z_p.
    let odds = (f(c[0][0]) + f(c[1][0]) * eg) / (f(c[0][1]) + f(c[1][1]) * eg);
    let beta_hat = (odds * ne_hat / ng_hat).ln();
    let fwd = (beta_hat > 0.0).then(|| gap_hat / beta_hat);
    (rev, fwd)
}

fn two_level_cell(spec: &CellSpec, truth: TwoLevelTruth) -> Result<CellResult, SpecError> {
    let m = resolve_samples(spec.point.data, truth.entropy(), 2)?;
    let mut rng = spec.rng();
    let counts = truth.sample_counts(m, &mut rng);
    let fit = fit_two_level(&counts, &mut rng);
    let mut classes = [[0u32; 2]; 2];
    for (s, &lh) in fit.labels.iter().enumerate() {
        let l = usize::from(s as u32 >= truth.low_states);
        classes[l][usize::from(lh)] += 1;
    }
    let log_z = truth.log_partition();
    let (mut mult, mut energy, mut log_p) = (Vec::new(), Vec::new(), Vec::new());
    for (l, row) in classes.iter().enumerate() {
        for (lh, &count) in row.iter().enumerate() {
            if count > 0 {
                mult.push(f64::from(count));
                energy.push(fit.gap_hat * lh as f64);
                log_p.push(-truth.gap * l as f64 - log_z);
            }
        }
    }
    let land = Landscape::new(mult, energy, log_p);
    // Ê over the data is Δ̂ on fitted-high states, 0 elsewhere.
    let high: u64 = counts.iter().zip(&fit.labels).filter(|(_, &l)| l == 1).map(|(&c, _)| c).sum();
    let f1 = high as f64 / m as f64;
    let data_energy = (fit.gap_hat * f1, fit.gap_hat * fit.gap_hat * f1 * (1.0 - f1));
    let report = analyse(&land, &reported_taus(&spec.settings), spec.settings.tau_bounds, Some(data_energy));
    let (rev_closed, fwd_closed) = two_level_closed_forms(classes, truth.gap, fit.gap_hat);
    let two_level = TwoLevelFitReport {
        low_states_hat: Some(fit.low_states_hat),
        gap_hat: Some(fit.gap_hat),
        overlap: Some(classes[1][1]),
        tau_rev_closed: rev_closed,
        tau_fwd_closed: fwd_closed,
    };
    Ok(cell_result(spec, m, report, two_level, IsingFitReport::default(), McmcReport::default()))
}

fn ising_cell(spec: &CellSpec, rows: u32, cols: u32, temperature: f64) -> Result<CellResult, SpecError> {
    if rows * cols > crate::cell::MAX_ENUMERATED_SPINS {
        return sampled_ising_cell(spec, rows, cols, temperature);
    }
    let pairs = Pairs::new(rows * cols);
    let truth = IsingTruth::new(rows, cols, temperature, &pairs);
    let m = resolve_samples(spec.point.data, truth.entropy(), 1)?;
    let mut rng = spec.rng();
    let data = IsingData::new(&pairs, sample_counts(&truth.probabilities(), m, &mut rng));
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
        FitMode::Paper => fit_paper(&mut en, &data, opts, &mut rng),
        FitMode::Plm | FitMode::Bml => {
            // The drawn states, each once with its count as weight.
            let n = pairs.n as usize;
            let mut spins = Vec::with_capacity(data.states.len() * n);
            for &(x, _) in &data.states {
                spins.extend((0..n).map(|i| if (x >> i) & 1 == 0 { 1i8 } else { -1 }));
            }
            let weights: Vec<f64> = data.states.iter().map(|&(_, c)| c as f64).collect();
            let fit = fit_samples(spec, n, &spins, &weights, &mut rng);
            pearson = fit.pearson;
            // Enumerable: the fit's true NLL can be reported (log Z − Ĵ·⟨σσ⟩_data).
            let nll = en.pass(&fit.couplings)
                - fit.couplings.iter().zip(&data.pair_moments).map(|(j, m)| j * m).sum::<f64>();
            taustar_science::fit::ising::IsingFit {
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
    let mut energy = vec![0.0; 1usize << pairs.n];
    pairs.energies_into(&fit.couplings, &mut energy);
    let (report, mcmc) = match &spec.settings.mcmc {
        None => {
            let data_energy = data.energy_stats(&pairs, &fit.couplings);
            let land = Landscape::from_states(energy, truth.log_p);
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
            let q = SpinModel::from_pairs(&pairs, &fit.couplings);
            let truth_model = SpinModel::from_pairs(&pairs, &truth.couplings_over_t);
            let e_p = |s: &[i8]| truth_model.energy(s);
            mcmc_analysis(&q, &e_p, side, None, mcmc, &spec.settings, &mut rng)
        }
    };
    let ising = IsingFitReport {
        fit_mode: Some(fit.mode),
        fit_iterations: Some(fit.iterations),
        fit_stop: Some(fit.stop),
        grad_max_norm: Some(fit.grad_max_norm),
        nll: Some(fit.nll),
        coupling_max_abs: Some(fit.coupling_max_abs),
        fit_diverged: Some(fit.diverged),
        fit_note: fit.note,
        data_tau_int: None,
        data_thinning: None,
        fit_pearson: pearson,
    };
    Ok(cell_result(spec, m, report, TwoLevelFitReport::default(), ising, mcmc))
}

/// A fit from samples (`plm` or `bml`): what a report needs of either.
struct SampleFit {
    couplings: Vec<f64>,
    iterations: u32,
    grad_max_norm: f64,
    coupling_max_abs: f64,
    diverged: bool,
    stop: crate::cell::FitStop,
    note: Option<String>,
    /// `bml`: the Pearson correlation of connected correlations it ended at.
    pearson: Option<f64>,
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

/// Most spins × samples a sampled cell holds in memory (one byte each).
pub const MAX_SAMPLED_BYTES: u64 = 1 << 30;

/// A cell past enumeration (docs/spec.md §10): M samples from an equilibrated, thinned
/// chain of the truth, a pseudo-likelihood fit, and the Monte Carlo evaluation against the
/// truth's side from Kaufman's ln Z and ⟨E⟩ and a chain's ⟨Ê⟩_p. Validation guarantees
/// `plm`, `[eval] method = "mcmc"` and sides ≥ 3.
fn sampled_ising_cell(
    spec: &CellSpec,
    rows: u32,
    cols: u32,
    temperature: f64,
) -> Result<CellResult, SpecError> {
    let lattice = || format!("{rows}x{cols}");
    let mcmc = spec.settings.mcmc.as_ref().ok_or_else(|| {
        SpecError::invalid(
            "eval.method",
            "exact",
            format!("a {} lattice needs [eval] method = \"mcmc\"", lattice()),
        )
    })?;
    let closed = |v: Option<f64>| {
        v.ok_or_else(|| {
            SpecError::invalid("lattice", lattice(), "no closed-form ln Z for this lattice (sides >= 3)")
        })
    };
    let log_z = closed(kaufman::log_partition(rows, cols, temperature))?;
    let entropy = log_z - closed(kaufman::mean_log_weight(rows, cols, temperature))?;
    let m = resolve_samples(spec.point.data, entropy, 1)?;
    let n = (rows * cols) as usize;
    if m.saturating_mul(n as u64) > MAX_SAMPLED_BYTES {
        return Err(SpecError::invalid(
            "samples",
            m,
            format!("{m} samples of {n} spins exceed the {MAX_SAMPLED_BYTES}-byte limit of one cell's data"),
        ));
    }
    let mut rng = spec.rng();
    let truth = SpinModel::torus(rows, cols, 1.0 / temperature);
    let data = sample_chain(&truth, m as usize, &mut rng);
    let fit = fit_samples(spec, n, &data.spins, &vec![1.0; m as usize], &mut rng);
    let q = SpinModel::from_pairs(&Pairs::new_without_masks(n as u32), &fit.couplings);
    let (side, series, _) = taustar_science::mc::tau::torus_truth_side(
        rows,
        cols,
        temperature,
        &q,
        mcmc.truth_steps as usize,
        &mut rng,
    )
    .ok_or_else(|| {
        SpecError::invalid("lattice", lattice(), "no closed-form ln Z for this lattice (sides >= 3)")
    })?;
    let e_p = |s: &[i8]| truth.energy(s);
    let (report, mc) = mcmc_analysis(&q, &e_p, side, Some(&series), mcmc, &spec.settings, &mut rng);
    let ising = IsingFitReport {
        fit_mode: Some(spec.point.fit.mode),
        fit_iterations: Some(fit.iterations),
        fit_stop: Some(fit.stop),
        grad_max_norm: Some(fit.grad_max_norm),
        // The likelihood needs ln Z_q, which only the evaluation estimates.
        nll: None,
        coupling_max_abs: Some(fit.coupling_max_abs),
        fit_diverged: Some(fit.diverged),
        fit_note: fit.note,
        data_tau_int: Some(data.tau_int),
        data_thinning: Some(data.thinning),
        fit_pearson: fit.pearson,
    };
    Ok(cell_result(spec, m, report, TwoLevelFitReport::default(), ising, mc))
}

/// A cell on a Potts truth, `potts-random` or `potts-file` (docs/spec.md §10): M sequences
/// from an equilibrated, thinned chain of the truth, the `plm` or `bml` fit with λ on fields
/// and couplings, and the Monte Carlo evaluation against the truth's side from its own chain
/// and ladder ([`crate::potts_cell::truth_side`]). Validation guarantees a fit from samples,
/// `data.samples` and `[eval] method = "mcmc"`.
fn potts_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    let potts_err =
        |e: taustar_science::potts::PottsError| SpecError::invalid("truth", spec.point.key(), e.to_string());
    let truth: std::sync::Arc<taustar_science::potts::PottsModel> = match &spec.point.truth {
        TruthSpec::PottsFile { path, alphabet, sha256, .. } => {
            crate::potts_cell::load_truth_file(path, alphabet, sha256).map_err(potts_err)?
        }
        t => {
            let family = t
                .potts_random()
                .ok_or_else(|| SpecError::invalid("truth", spec.point.key(), "not a Potts truth"))?;
            std::sync::Arc::new(taustar_science::potts::random_family(&family).map_err(potts_err)?)
        }
    };
    let mcmc = spec.settings.mcmc.as_ref().ok_or_else(|| {
        SpecError::invalid("eval.method", "exact", "a Potts truth needs [eval] method = \"mcmc\"")
    })?;
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
    let (n, q) = (truth.n(), truth.q());
    if m.saturating_mul(n as u64) > MAX_SAMPLED_BYTES || m > MAX_SAMPLES {
        return Err(SpecError::invalid(
            "samples",
            m,
            format!("{m} sequences of {n} sites exceed one cell's data limits"),
        ));
    }
    let mut rng = spec.rng();
    let data = crate::potts_cell::sample_sequences(&truth, m as usize, &mut rng).map_err(potts_err)?;
    let fit = potts_fit(spec, &data.seqs, n, q, &mut rng).map_err(potts_err)?;
    let mc = mc_options(mcmc, spec.settings.tau_bounds, reported_taus(&spec.settings));
    let side = crate::potts_cell::truth_side(&truth, &fit.model, mcmc.truth_steps as usize, &mc, &mut rng)
        .map_err(potts_err)?;
    let (mut r, steps) = mcmc_estimate(
        &fit.model,
        &|s: &[u8]| truth.energy(s),
        side.side,
        Some(&side.series),
        mcmc,
        &spec.settings,
        &mut rng,
    );
    side.mark(&mut r);
    let (report, mc_report) = mcmc_reports(&r, steps);
    let fit_report =
        IsingFitReport { data_tau_int: Some(data.tau_int), data_thinning: Some(data.thinning), ..fit.report };
    Ok(cell_result(spec, m, report, TwoLevelFitReport::default(), fit_report, mc_report))
}

/// A Potts fit of a cell and its report (the fields a fit fills; the data's are the caller's).
struct PottsCellFit {
    model: taustar_science::potts::PottsModel,
    report: IsingFitReport,
}

/// The cell's Potts fit, by its mode: `plm` (λ on fields and couplings) or `bml` (the same
/// penalty; `fit.pearson_target` and `fit.max_sweeps` as for Ising).
fn potts_fit<R: rand::Rng>(
    spec: &CellSpec,
    seqs: &[u8],
    n: usize,
    q: usize,
    rng: &mut R,
) -> Result<PottsCellFit, taustar_science::potts::PottsError> {
    let l2 = spec.point.fit.l2;
    let weights = vec![1.0; seqs.len() / n];
    let base = IsingFitReport {
        fit_mode: Some(spec.point.fit.mode),
        // The likelihood needs ln Z_q, which only the evaluation estimates.
        nll: None,
        ..IsingFitReport::default()
    };
    let max_abs =
        |m: &taustar_science::potts::PottsModel| m.couplings().iter().map(|c| c.abs()).reduce(f64::max);
    if spec.point.fit.mode == FitMode::Bml {
        let opts = taustar_science::fit::potts_bml::PottsBmlOptions {
            l2_fields: l2,
            l2_couplings: l2,
            pearson_target: spec.settings.pearson_target,
            max_sweeps: spec.settings.max_sweeps,
            ..taustar_science::fit::potts_bml::DEFAULT_POTTS_BML
        };
        let fit = taustar_science::fit::potts_bml::fit_potts_bml(seqs, n, q, &weights, opts, rng)?;
        let report = IsingFitReport {
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
    let report = IsingFitReport {
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

/// E_p[f] = Σ_x p(x) f(x) over every state, p given by its logarithm.
fn expectation(log_p: &[f64], f: &[f64]) -> f64 {
    log_p.iter().zip(f).map(|(lp, v)| lp.exp() * v).sum()
}

/// The sampler options of a Monte Carlo cell: its `[mcmc]` settings, the τ* search bounds,
/// and the τ of the curve it reports.
pub fn mc_options(m: &McmcSettings, tau_bounds: (f64, f64), curve: Vec<f64>) -> McOptions {
    McOptions {
        tau_bounds,
        steps: m.steps as usize,
        burn_in: m.burn_in as usize,
        pilot_sweeps: m.pilot_sweeps as usize,
        resamples: m.resamples as usize,
        min_swap_acceptance: m.min_swap_acceptance,
        min_round_trips: u64::from(m.min_round_trips),
        ladders: m.ladders as usize,
        max_r_hat: m.max_r_hat,
        ladder: None,
        curve,
    }
}

/// The τ analysis of a fitted model by Monte Carlo (docs/spec.md §10): the estimate (run
/// to `target_se` when one is set) as a [`TauReport`] of point values, and its standard
/// errors and diagnostics as a [`McmcReport`].
pub fn mcmc_analysis<E: Ensemble + ?Sized, R: rand::Rng>(
    q: &E,
    truth_energy: &dyn Fn(&E::Config) -> f64,
    side: TruthSide,
    truth_samples: Option<&[f64]>,
    mcmc: &McmcSettings,
    settings: &CellSettings,
    rng: &mut R,
) -> (TauReport, McmcReport) {
    let (r, steps) = mcmc_estimate(q, truth_energy, side, truth_samples, mcmc, settings, rng);
    mcmc_reports(&r, steps)
}

/// The Monte Carlo estimate of a cell (run to `target_se` when one is set) and the steps
/// it took.
fn mcmc_estimate<E: Ensemble + ?Sized, R: rand::Rng>(
    q: &E,
    truth_energy: &dyn Fn(&E::Config) -> f64,
    side: TruthSide,
    truth_samples: Option<&[f64]>,
    mcmc: &McmcSettings,
    settings: &CellSettings,
    rng: &mut R,
) -> (McTau, usize) {
    let opts = mc_options(mcmc, settings.tau_bounds, reported_taus(settings));
    match mcmc.target_se {
        Some(target) => taustar_science::mc::tau::estimate_to_precision(
            q,
            truth_energy,
            side,
            truth_samples,
            &opts,
            target,
            mcmc.max_steps as usize,
            rng,
        ),
        None => (
            taustar_science::mc::tau::estimate_ensemble(q, truth_energy, side, truth_samples, &opts, rng),
            opts.steps,
        ),
    }
}

/// Split a Monte Carlo estimate into the values a result shares with exact cells and the
/// standard errors and diagnostics only Monte Carlo cells have.
fn mcmc_reports(r: &McTau, steps: usize) -> (TauReport, McmcReport) {
    let summary = TauSummary {
        tau_rev: r.tau_rev.value,
        tau_fwd: r.tau_fwd.value,
        tau_rev_at_bound: r.at_bound.0,
        tau_fwd_at_bound: r.at_bound.1,
        dkl_rev_at_1: r.dkl_rev_at_1.value,
        dkl_rev_opt: r.dkl_rev_opt.value,
        dkl_fwd_at_1: r.dkl_fwd_at_1.value,
        dkl_fwd_opt: r.dkl_fwd_opt.value,
        // Truth-free diagnostics that need the whole exact landscape (or the data): not
        // estimated by Monte Carlo.
        tau_heat_peak: None,
        tau_var: None,
        kappa_at_1: Some(r.kappa_at_1.value),
        heat_capacity_at_1: Some(r.heat_capacity_at_1.value),
    };
    let curve = r
        .curve
        .iter()
        .map(|p| CurvePoint {
            tau: p.tau,
            dkl_rev: p.dkl_rev.value,
            dkl_fwd: p.dkl_fwd.value,
            entropy: p.entropy.value,
            mean_energy: p.mean_energy.value,
            heat_capacity: p.heat_capacity.value,
            kappa: Some(p.kappa.value),
        })
        .collect();
    let curve_se = r
        .curve
        .iter()
        .map(|p| CurveSe {
            dkl_rev: p.dkl_rev.se,
            dkl_fwd: p.dkl_fwd.se,
            entropy: p.entropy.se,
            mean_energy: p.mean_energy.se,
            heat_capacity: p.heat_capacity.se,
            kappa: p.kappa.se,
        })
        .collect();
    let report = McmcReport {
        tau_rev_se: Some(r.tau_rev.se),
        tau_fwd_se: Some(r.tau_fwd.se),
        dkl_rev_at_1_se: Some(r.dkl_rev_at_1.se),
        dkl_rev_opt_se: Some(r.dkl_rev_opt.se),
        dkl_fwd_at_1_se: Some(r.dkl_fwd_at_1.se),
        dkl_fwd_opt_se: Some(r.dkl_fwd_opt.se),
        kappa_at_1_se: Some(r.kappa_at_1.se),
        heat_capacity_at_1_se: Some(r.heat_capacity_at_1.se),
        mcmc_ok: Some(r.ok),
        mcmc_note: r.note.clone(),
        mcmc_steps: Some(steps as u64),
        ladder_rungs: Some(r.betas.len() as u32),
        min_swap_acceptance: Some(r.min_swap_acceptance),
        round_trips: Some(r.round_trips),
        r_hat: Some(r.r_hat),
        tau_int: Some(r.tau_int),
        ess: Some(r.ess),
        log_z_ti_gap: Some(r.log_z_ti_gap.value),
        log_z_ti_gap_se: Some(r.log_z_ti_gap.se),
        equilibrated_tau_lo: r.equilibrated_tau_lo,
        tau_fwd_equilibrated: r.tau_fwd_equilibrated.map(|t| t.value),
        tau_fwd_equilibrated_se: r.tau_fwd_equilibrated.map(|t| t.se),
        curve_se,
    };
    (TauReport { summary, curve }, report)
}

/// The τ values of the curve a result carries: the reporting grid, or none when the study
/// keeps no curve with its results (the curve is then not computed at all; nothing else
/// reads it).
fn reported_taus(settings: &CellSettings) -> Vec<f64> {
    if settings.curves.stored() {
        settings.tau_grid.values()
    } else {
        Vec::new()
    }
}

fn cell_result(
    spec: &CellSpec,
    samples: u64,
    report: TauReport,
    two_level: TwoLevelFitReport,
    ising: IsingFitReport,
    mut mcmc: McmcReport,
) -> CellResult {
    let curve = match spec.settings.curves {
        CurveOutput::All => report.curve,
        CurveOutput::None | CurveOutput::Recompute => {
            mcmc.curve_se.clear();
            Vec::new()
        }
    };
    CellResult { key: spec.key(), samples, tau: report.summary, two_level, ising, mcmc, curve }
}

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
/// Kaufman's formula and `truth_steps` steps of a truth chain; everything carries a
/// bootstrap standard error and the diagnostics say whether to trust it. Sides ≥ 3.
/// `precision`: (target standard error of τ*, step budget) to run longer until it is met
/// (see [`taustar_science::mc::tau::estimate_to_precision`]). Returns the estimate, the truth side's
/// ⟨Ê⟩_p with its error bar, and the PT steps of the last run.
#[allow(clippy::too_many_arguments)]
pub fn eval_ising_model_mcmc(
    rows: u32,
    cols: u32,
    temperature: f64,
    couplings: &[Vec<f64>],
    opts: &taustar_science::mc::tau::McOptions,
    truth_steps: usize,
    precision: Option<(f64, usize)>,
    seed: u64,
) -> Result<(taustar_science::mc::tau::McTau, taustar_science::mc::stats::Estimate, usize), SpecError> {
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
        taustar_science::mc::tau::torus_truth_side(rows, cols, temperature, &q, truth_steps, &mut rng)
            .ok_or_else(|| {
                SpecError::invalid(
                    "lattice",
                    format!("{rows}x{cols}"),
                    "no closed-form ln Z for this lattice",
                )
            })?;
    if let Some((target, budget)) = precision {
        if !(target.is_finite() && target > 0.0) {
            return Err(SpecError::invalid("target_se", target, "must be a finite number > 0"));
        }
        let energy = |s: &[i8]| truth.energy(s);
        let (r, steps) = taustar_science::mc::tau::estimate_to_precision(
            &q,
            &energy,
            side,
            Some(&series),
            opts,
            target,
            budget,
            &mut rng,
        );
        return Ok((r, truth_estimate, steps));
    }
    let r = taustar_science::mc::tau::estimate(
        &q,
        &|s: &[i8]| truth.energy(s),
        side,
        Some(&series),
        opts,
        &mut rng,
    );
    Ok((r, truth_estimate, opts.steps))
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
