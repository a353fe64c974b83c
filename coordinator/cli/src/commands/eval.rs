//! `taustar eval`: evaluate a given learned Ising model against a truth over τ, without
//! fitting — for models trained elsewhere, and for checking the τ machinery on known cases
//! (couplings c·J/T give τ*_rev = τ*_fwd = c exactly). `--eval exact` enumerates (up to 24
//! spins); `--eval mcmc` estimates by parallel tempering and MBAR, with error bars, on any
//! lattice with sides ≥ 3 (docs/spec.md §10).

use anyhow::Context;
use taustar_common::compute::eval_ising_model;

use super::cell::{flag_error, parse_lattice, parse_pair};
use super::table::{curve, emit, scalars};

/// Arguments of `taustar eval`.
///
/// Example:
///   taustar eval --truth ising2d --lattice 3x3 --temperature 2.3 --couplings J.json --tau 0.5,1,2
///   taustar eval --lattice 16x16 --temperature 2.5 --couplings J.json --eval mcmc --json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ground truth family (only ising2d can be evaluated against a coupling matrix).
    #[arg(long, value_parser = ["ising2d"], default_value = "ising2d")]
    pub truth: String,
    /// Lattice size MxN (periodic): at most 24 spins with --eval exact, sides >= 3 with mcmc.
    #[arg(long, value_parser = parse_lattice)]
    pub lattice: (u32, u32),
    /// Truth temperature T > 0.
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: f64,
    /// JSON file with an N×N symmetric coupling matrix, zero diagonal, spins in row-major
    /// lattice order; the model is q(σ) ∝ exp(Σ_{i<j} J_ij σ_iσ_j).
    #[arg(long)]
    pub couplings: std::path::PathBuf,
    /// Comma-separated τ values for the curve (default: 0.2..5 in 70 steps plus 1; with
    /// mcmc, those inside --tau-bounds, each with a standard error).
    #[arg(long, value_delimiter = ',')]
    pub tau: Vec<f64>,
    /// Bounds LO:HI of the continuous τ* search [default: 0.01:100 exact, 0.2:5 mcmc — the
    /// ladder runs to β = 1/LO, and its length grows with it].
    #[arg(long, value_parser = parse_pair)]
    pub tau_bounds: Option<(f64, f64)>,
    /// How to evaluate: enumerate every state, or Monte Carlo with error bars.
    #[arg(long, value_parser = ["exact", "mcmc"], default_value = "exact")]
    pub eval: String,
    /// mcmc: the random seed (the same seed gives the same numbers on any machine).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// mcmc: parallel-tempering steps recorded (each a sweep of every rung).
    #[arg(long, default_value_t = 4_000)]
    pub steps: usize,
    /// mcmc: steps of the truth chain that estimate ⟨Ê⟩ under the truth.
    #[arg(long, default_value_t = 20_000)]
    pub truth_steps: usize,
    /// mcmc: bootstrap resamples behind every standard error.
    #[arg(long, default_value_t = 200)]
    pub resamples: usize,
    /// mcmc: run longer (doubling --steps) until the standard errors of τ*_rev and τ*_fwd
    /// are at most this, or --max-steps would be passed (then mcmc_ok is false and
    /// mcmc_note says so).
    #[arg(long)]
    pub target_se: Option<f64>,
    /// mcmc: the step budget of --target-se (multicanonical: production sweeps per walker).
    #[arg(long, default_value_t = 64_000)]
    pub max_steps: usize,
    /// mcmc: how to sample the model: `tempering` (a placed β ladder, MBAR between the
    /// rungs) or `multicanonical` (walkers whose weights flatten the energy histogram, for a
    /// model that orders abruptly below τ = 1, where tempering's diagnostics fail).
    #[arg(long, default_value = "tempering", value_parser = parse_sampler)]
    pub sampler: taustar_common::Sampler,
    /// mcmc, multicanonical: production sweeps per walker (4 walkers).
    #[arg(long, default_value_t = taustar_common::McmcSettings::default().production_sweeps)]
    pub production_sweeps: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_sampler(s: &str) -> Result<taustar_common::Sampler, String> {
    s.parse()
}

/// Run `taustar eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.couplings)
        .with_context(|| format!("reading --couplings {}", args.couplings.display()))?;
    let matrix: Vec<Vec<f64>> = serde_json::from_str(&text).with_context(|| {
        format!("--couplings {}: expected a JSON array of arrays of numbers", args.couplings.display())
    })?;
    if args.eval == "mcmc" {
        return run_mcmc(&args, &matrix);
    }
    let settings = taustar_common::CellSettings {
        tau_bounds: args.tau_bounds.unwrap_or((0.01, 100.0)),
        ..Default::default()
    };
    let taus = if args.tau.is_empty() { settings.tau_grid.values() } else { args.tau.clone() };
    let (rows, cols) = args.lattice;
    let report =
        eval_ising_model(rows, cols, args.temperature, &matrix, &taus, &settings).map_err(flag_error)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
        emit(&(text + "\n"))
    } else {
        let v = serde_json::to_value(&report).context("serialising the report")?;
        emit(&(scalars(&v) + &curve(&report.curve, &[])))
    }
}

/// `taustar eval --eval mcmc`: estimates with standard errors and the sampler's diagnostics.
fn run_mcmc(args: &Args, matrix: &[Vec<f64>]) -> anyhow::Result<()> {
    use taustar_common::compute::{muca_options, SamplerOptions};
    use taustar_science::mc::estimate::McOptions;
    if args.steps < 100 || args.resamples < 2 || args.truth_steps < 100 {
        anyhow::bail!(
            "invalid --steps {} / --truth-steps {} / --resamples {}: need at least 100, 100 and 2",
            args.steps,
            args.truth_steps,
            args.resamples
        );
    }
    if let Some(t) = args.tau.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        anyhow::bail!("invalid --tau {t}: every τ must be a finite number > 0");
    }
    let opts = McOptions {
        tau_bounds: args.tau_bounds.unwrap_or((0.2, 5.0)),
        steps: args.steps,
        burn_in: args.steps / 10,
        resamples: args.resamples,
        curve: if args.tau.is_empty() {
            taustar_common::CellSettings::default().tau_grid.values()
        } else {
            args.tau.clone()
        },
        ..McOptions::default()
    };
    let (rows, cols) = args.lattice;
    let started = std::time::Instant::now();
    let precision = args.target_se.map(|t| (t, args.max_steps));
    let mcmc = taustar_common::McmcSettings {
        sampler: args.sampler,
        production_sweeps: args.production_sweeps,
        resamples: u32::try_from(args.resamples).unwrap_or(u32::MAX),
        ..taustar_common::McmcSettings::default()
    };
    let sampler = match args.sampler {
        taustar_common::Sampler::Tempering => SamplerOptions::Tempering,
        taustar_common::Sampler::Multicanonical => {
            mcmc.validate().map_err(flag_error)?;
            SamplerOptions::Multicanonical(muca_options(&mcmc))
        }
    };
    let (r, truth) = taustar_common::compute::eval_ising_model_mcmc(
        rows,
        cols,
        args.temperature,
        matrix,
        &opts,
        &sampler,
        args.truth_steps,
        precision,
        args.seed,
    )
    .map_err(flag_error)?;
    let v = serde_json::json!({
        "tau_rev": r.tau_rev.value, "tau_rev_se": r.tau_rev.se,
        "tau_fwd": r.tau_fwd.value, "tau_fwd_se": r.tau_fwd.se,
        "tau_rev_at_bound": r.at_bound.0, "tau_fwd_at_bound": r.at_bound.1,
        "dkl_rev_opt": r.dkl_rev_opt.value, "dkl_rev_opt_se": r.dkl_rev_opt.se,
        "dkl_fwd_opt": r.dkl_fwd_opt.value, "dkl_fwd_opt_se": r.dkl_fwd_opt.se,
        "dkl_rev_at_1": r.dkl_rev_at_1.value, "dkl_rev_at_1_se": r.dkl_rev_at_1.se,
        "dkl_fwd_at_1": r.dkl_fwd_at_1.value, "dkl_fwd_at_1_se": r.dkl_fwd_at_1.se,
        "heat_capacity_at_1": r.heat_capacity_at_1.value, "heat_capacity_at_1_se": r.heat_capacity_at_1.se,
        "tau_fwd_equilibrated": r.tau_fwd_equilibrated.map(|t| t.value),
        "tau_fwd_equilibrated_se": r.tau_fwd_equilibrated.map(|t| t.se),
        "log_z_ti_gap": r.log_z_ti_gap.map(|g| g.value), "log_z_ti_gap_se": r.log_z_ti_gap.map(|g| g.se),
        "log_z_ti_quadrature": r.log_z_ti_quadrature,
        "truth_mean_model_energy": truth.mean, "truth_mean_model_energy_se": truth.se,
        "truth_tau_int_steps": truth.autocorrelation.tau_int,
        "target_se": args.target_se,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let v = super::table::with_diagnostics(v, &r.diagnostics);
    let curve: Vec<serde_json::Value> = r
        .curve
        .iter()
        .map(|p| {
            serde_json::json!({
                "tau": p.tau,
                "dkl_rev": p.dkl_rev.value, "dkl_rev_se": p.dkl_rev.se,
                "dkl_fwd": p.dkl_fwd.value, "dkl_fwd_se": p.dkl_fwd.se,
                "entropy": p.entropy.value, "entropy_se": p.entropy.se,
                "mean_energy": p.mean_energy.value, "mean_energy_se": p.mean_energy.se,
                "heat_capacity": p.heat_capacity.value, "heat_capacity_se": p.heat_capacity.se,
                "kappa": p.kappa.value, "kappa_se": p.kappa.se,
            })
        })
        .collect();
    if args.json {
        let mut v = v;
        v["curve"] = serde_json::Value::Array(curve);
        emit(&(serde_json::to_string_pretty(&v).context("serialising the report")? + "\n"))
    } else {
        let mut text = scalars(&v);
        text.push_str("\n       tau      D_rev    ± s.e.      D_fwd    ± s.e.          C    ± s.e.\n");
        for p in &r.curve {
            text.push_str(&format!(
                "{:>10.4} {:>10.4} {:>9.4} {:>10.4} {:>9.4} {:>10.3} {:>9.3}\n",
                p.tau,
                p.dkl_rev.value,
                p.dkl_rev.se,
                p.dkl_fwd.value,
                p.dkl_fwd.se,
                p.heat_capacity.value,
                p.heat_capacity.se
            ));
        }
        emit(&text)
    }
}
