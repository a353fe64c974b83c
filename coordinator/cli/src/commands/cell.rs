//! `taustar cell`: compute one cell from flags and print its result.
//!
//! The quickest way to ask "what τ* does this regime give?" without writing a study file,
//! and the reference the distributed runtime must reproduce bit for bit.

use anyhow::{bail, Context};
use clap::ValueEnum;
use taustar_common::cell::{CellSettings, McmcSettings, Sampler, TauGrid, MCMC_DEFAULT_TAU_BOUNDS};
use taustar_common::{
    run_cell, CellResult, CellSpec, DataSize, FitMode, FitSpec, GridPoint, SpecError, TruthSpec,
};

use super::table::{curve, emit, scalars};

/// Which ground truth to draw data from.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TruthKind {
    /// N_s states, n_g of them at energy 0, the rest at the gap Δ (docs/spec.md §2.1).
    TwoLevel,
    /// Periodic nearest-neighbour Ising model on an m×n torus at temperature T (docs/spec.md §2.2).
    Ising2d,
}

/// Fit procedure (Ising truths).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FitArg {
    /// Converged (penalised) maximum likelihood; flags a non-existent MLE.
    Mle,
    /// The paper's gradient ascent with early stopping (step 0.01; --rel-tol, --max-iter).
    Paper,
    /// Pseudo-likelihood (per-site L-BFGS, symmetrised): any lattice size; past 24 spins
    /// with --eval mcmc.
    Plm,
    /// Boltzmann-machine learning (persistent chains; --pearson-target, --max-sweeps): any
    /// lattice size; past 24 spins with --eval mcmc.
    Bml,
}

/// Arguments of `taustar cell`.
///
/// Examples:
///   taustar cell --truth two-level --states 100 --low-states 20 --gap 6 --samples 200 --seed 1
///   taustar cell --truth ising2d --lattice 4x4 --temperature 2.3 --samples 100 --seed 1 --json
///   taustar cell --truth ising2d --lattice 4x4 --temperature 2.5 --samples 60 --seed 1 --eval mcmc
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ground truth family.
    #[arg(long, value_enum)]
    pub truth: TruthKind,
    /// Two-level: number of states N_s.
    #[arg(long, help_heading = "Two-level truth")]
    pub states: Option<u32>,
    /// Two-level: number of low-energy states n_g (1 ≤ n_g < N_s).
    #[arg(long, help_heading = "Two-level truth")]
    pub low_states: Option<u32>,
    /// Two-level: energy gap Δ > 0.
    #[arg(long, allow_hyphen_values = true, help_heading = "Two-level truth")]
    pub gap: Option<f64>,
    /// Ising: lattice size MxN (periodic): at most 24 spins with --fit mle/paper (exact
    /// enumeration); larger with --fit plm --eval mcmc (sides >= 3).
    #[arg(long, value_parser = parse_lattice, help_heading = "Ising truth")]
    pub lattice: Option<(u32, u32)>,
    /// Ising: truth temperature T > 0 (T_c ≈ 2.269 for the infinite lattice).
    #[arg(long, allow_hyphen_values = true, help_heading = "Ising truth")]
    pub temperature: Option<f64>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Data, fit and τ flags shared by every truth.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Number of training samples M.
    #[arg(long, conflicts_with = "mu", required_unless_present = "mu")]
    pub samples: Option<u64>,
    /// Entropy-normalised data size μ instead of M: M = round(exp(μ + S(p))).
    #[arg(long, allow_hyphen_values = true)]
    pub mu: Option<f64>,
    /// Study seed; with the cell's key it determines all randomness.
    #[arg(long)]
    pub seed: u64,
    /// Replicate index r.
    #[arg(long, default_value_t = 0)]
    pub replicate: u32,
    /// Fit procedure (Ising truths; the two-level fit is closed-form).
    #[arg(long, value_enum, default_value = "mle")]
    pub fit: FitArg,
    /// L2 penalty λ on the couplings (objective: mean log-likelihood − λ‖J‖²).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub l2: f64,
    /// Reporting grid of τ as FROM:TO:COUNT (evenly spaced; 1.0 is always added).
    #[arg(long, value_parser = parse_tau_grid, default_value = "0.2:5:70")]
    pub tau_grid: TauGrid,
    /// Bounds LO:HI of the continuous τ* search [default: 0.01:100 exact, 0.2:5 mcmc — the
    /// ladder runs to β = 1/LO, and its length grows with it].
    #[arg(long, value_parser = parse_pair)]
    pub tau_bounds: Option<(f64, f64)>,
    /// Iteration cap of the Ising fit: gradient steps in `paper` mode (the authors' Fig. 3
    /// sweep: 15 000), Newton steps in `mle` mode.
    #[arg(long, default_value_t = taustar_common::cell::DEFAULT_MAX_ITER)]
    pub max_iter: u32,
    /// `paper` mode: stop when the relative change of the NLL between two gradient steps
    /// falls below this (the authors' Fig. 3 sweep: 1e-5; tighter over-fits sparse data).
    #[arg(long, default_value_t = taustar_common::cell::DEFAULT_REL_TOL)]
    pub rel_tol: f64,
    /// `mle` with λ = 0: max|J| beyond which the MLE is declared non-existent.
    #[arg(long, default_value_t = 20.0)]
    pub coupling_cap: f64,
    /// `bml`: stop when the Pearson correlation of the model's and the data's connected
    /// correlations reaches this.
    #[arg(long, default_value_t = CellSettings::default().pearson_target)]
    pub pearson_target: f64,
    /// `bml`: sweep budget of each persistent chain.
    #[arg(long, default_value_t = CellSettings::default().max_sweeps)]
    pub max_sweeps: u64,
    /// How to evaluate the fitted model over τ: enumerate every state, or Monte Carlo
    /// (parallel tempering + MBAR) with a standard error on every number (Ising truths).
    #[arg(long, value_enum, default_value = "exact")]
    pub eval: EvalArg,
    /// mcmc: parallel-tempering steps recorded (all ladders together).
    #[arg(long, default_value_t = McmcSettings::default().steps, help_heading = "Monte Carlo (--eval mcmc)")]
    pub mcmc_steps: u32,
    /// mcmc: independent ladders (R̂ compares them when there are two or more).
    #[arg(long, default_value_t = McmcSettings::default().ladders, help_heading = "Monte Carlo (--eval mcmc)")]
    pub ladders: u32,
    /// mcmc: bootstrap resamples behind every standard error (at least 200).
    #[arg(long, default_value_t = McmcSettings::default().resamples, help_heading = "Monte Carlo (--eval mcmc)")]
    pub resamples: u32,
    /// mcmc: run longer (doubling the steps) until the standard errors of τ*_rev and τ*_fwd
    /// are at most this, or --max-steps would be passed (then mcmc_ok is false).
    #[arg(long, help_heading = "Monte Carlo (--eval mcmc)")]
    pub target_se: Option<f64>,
    /// mcmc, lattices past 24 spins: steps of the truth chain behind ⟨Ê⟩ under the truth.
    #[arg(long, default_value_t = McmcSettings::default().truth_steps, help_heading = "Monte Carlo (--eval mcmc)")]
    pub truth_steps: u32,
    /// mcmc: the step budget of --target-se (multicanonical: production sweeps per walker).
    #[arg(long, default_value_t = McmcSettings::default().max_steps, help_heading = "Monte Carlo (--eval mcmc)")]
    pub max_steps: u32,
    /// mcmc: how to sample the fitted model. `tempering`: parallel tempering on a placed β
    /// ladder with MBAR between the rungs. `multicanonical`: walkers whose weights flatten
    /// the energy histogram, reweighted to every β; use it when a fit orders abruptly below
    /// τ = 1 (tempering's cells then fail on R̂ or τ_int at the cold rungs).
    #[arg(long, default_value = "tempering", value_parser = parse_sampler, help_heading = "Monte Carlo (--eval mcmc)")]
    pub sampler: Sampler,
    /// mcmc, multicanonical: walkers (each on its own stream; R̂ of ln g compares them).
    #[arg(long, default_value_t = McmcSettings::default().walkers, help_heading = "Monte Carlo (--eval mcmc)")]
    pub walkers: u32,
    /// mcmc, multicanonical: production sweeps per walker, after the weights are frozen
    /// (doubled by --target-se up to --max-steps).
    #[arg(long, default_value_t = McmcSettings::default().production_sweeps, help_heading = "Monte Carlo (--eval mcmc)")]
    pub production_sweeps: u32,
}

fn parse_sampler(s: &str) -> Result<Sampler, String> {
    s.parse()
}

/// How a cell evaluates τ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EvalArg {
    /// Enumerate every state: exact numbers (up to 24 spins).
    Exact,
    /// Monte Carlo estimates with standard errors and convergence diagnostics.
    Mcmc,
}

/// Parse `MxN`.
pub fn parse_lattice(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s.split_once(['x', 'X']).ok_or_else(|| format!("expected MxN (e.g. 4x4), got {s:?}"))?;
    let p = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("expected MxN with integers, got {s:?}"));
    Ok((p(a)?, p(b)?))
}

/// Parse `FROM:TO:COUNT`.
fn parse_tau_grid(s: &str) -> Result<TauGrid, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let err = || format!("expected FROM:TO:COUNT (e.g. 0.2:5:70), got {s:?}");
    if parts.len() != 3 {
        return Err(err());
    }
    let from = parts[0].parse().map_err(|_| err())?;
    let to = parts[1].parse().map_err(|_| err())?;
    let count = parts[2].parse().map_err(|_| err())?;
    Ok(TauGrid { from, to, count })
}

/// Parse `LO:HI`.
pub fn parse_pair(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s.split_once(':').ok_or_else(|| format!("expected LO:HI (e.g. 0.01:100), got {s:?}"))?;
    let p = |v: &str| v.parse::<f64>().map_err(|_| format!("expected LO:HI with numbers, got {s:?}"));
    Ok((p(a)?, p(b)?))
}

/// Rewrite a library error so it names the command-line flag the user typed.
pub fn flag_error(e: SpecError) -> anyhow::Error {
    let SpecError::Invalid { field, value, reason } = e;
    let flag = match field.as_str() {
        "tau.grid" => "--tau-grid".to_string(),
        "tau.bounds" => "--tau-bounds".to_string(),
        "fit.max_iter" => "--max-iter".to_string(),
        "fit.rel_tol" => "--rel-tol".to_string(),
        "fit.coupling_cap" => "--coupling-cap".to_string(),
        "fit.mode" => "--fit".to_string(),
        "eval.method" => "--eval".to_string(),
        "mcmc.steps" => "--mcmc-steps".to_string(),
        other if other.starts_with("mcmc.") => format!("--{}", other["mcmc.".len()..].replace('_', "-")),
        other if other.starts_with("couplings") => format!("--couplings: entry {other}"),
        other => format!("--{}", other.replace('_', "-")),
    };
    anyhow::anyhow!("invalid {flag} {value}: {reason}")
}

fn require<T>(v: Option<T>, flag: &str, truth: &str) -> anyhow::Result<T> {
    match v {
        Some(v) => Ok(v),
        None => bail!("{flag} is required with --truth {truth}"),
    }
}

impl CommonArgs {
    /// Study-wide settings from the flags.
    pub fn settings(&self) -> CellSettings {
        let mcmc = (self.eval == EvalArg::Mcmc).then(|| McmcSettings {
            steps: self.mcmc_steps,
            burn_in: self.mcmc_steps / 10,
            ladders: self.ladders,
            resamples: self.resamples,
            target_se: self.target_se,
            max_steps: self.max_steps,
            truth_steps: self.truth_steps,
            sampler: self.sampler,
            walkers: self.walkers,
            production_sweeps: self.production_sweeps,
            ..McmcSettings::default()
        });
        let default_bounds = if mcmc.is_some() { MCMC_DEFAULT_TAU_BOUNDS } else { (0.01, 100.0) };
        CellSettings {
            tau_grid: self.tau_grid,
            tau_bounds: self.tau_bounds.unwrap_or(default_bounds),
            max_iter: self.max_iter,
            rel_tol: self.rel_tol,
            coupling_cap: self.coupling_cap,
            // One cell prints its curve; `tau.curves` is for studies of many.
            curves: taustar_common::CurveOutput::All,
            mcmc,
            pearson_target: self.pearson_target,
            max_sweeps: self.max_sweeps,
        }
    }
}

impl Args {
    fn spec(&self) -> anyhow::Result<CellSpec> {
        let truth = match self.truth {
            TruthKind::TwoLevel => TruthSpec::TwoLevel {
                states: require(self.states, "--states", "two-level")?,
                low_states: require(self.low_states, "--low-states", "two-level")?,
                gap: require(self.gap, "--gap", "two-level")?,
            },
            TruthKind::Ising2d => {
                let (rows, cols) = require(self.lattice, "--lattice", "ising2d")?;
                TruthSpec::Ising2d {
                    rows,
                    cols,
                    temperature: require(self.temperature, "--temperature", "ising2d")?,
                }
            }
        };
        let c = &self.common;
        let data = match (c.samples, c.mu) {
            (Some(m), _) => DataSize::Samples(m),
            (None, Some(mu)) => DataSize::Mu(mu),
            (None, None) => bail!("--samples or --mu is required"),
        };
        let mode = match c.fit {
            FitArg::Mle => FitMode::Mle,
            FitArg::Paper => FitMode::Paper,
            FitArg::Plm => FitMode::Plm,
            FitArg::Bml => FitMode::Bml,
        };
        Ok(CellSpec {
            study_seed: c.seed,
            point: GridPoint { truth, data, fit: FitSpec { mode, l2: c.l2 } },
            replicate: c.replicate,
            settings: c.settings(),
        })
    }
}

/// Run `taustar cell`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let result: CellResult = run_cell(&spec).map_err(flag_error)?;
    if args.json {
        let text = serde_json::to_string_pretty(&result).context("serialising the result")?;
        return emit(&(text + "\n"));
    }
    let v = serde_json::to_value(&result).context("serialising the result")?;
    emit(&(scalars(&v) + &curve(&result.curve, &result.mcmc.curve_se)))
}
