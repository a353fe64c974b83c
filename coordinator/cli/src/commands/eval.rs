//! `taustar eval`: evaluate a given learned Ising model against a truth over τ, without
//! fitting — for models trained elsewhere, and for checking the τ machinery on known cases
//! (couplings c·J/T give τ*_rev = τ*_fwd = c exactly).

use anyhow::Context;
use common::compute::eval_ising_model;

use super::cell::{flag_error, parse_lattice, parse_pair};
use super::table::{curve, emit, scalars};

/// Arguments of `taustar eval`.
///
/// Example:
///   taustar eval --truth ising2d --lattice 3x3 --temperature 2.3 --couplings J.json --tau 0.5,1,2
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ground truth family (only ising2d can be evaluated against a coupling matrix).
    #[arg(long, value_parser = ["ising2d"], default_value = "ising2d")]
    pub truth: String,
    /// Lattice size MxN (periodic), at most 24 spins.
    #[arg(long, value_parser = parse_lattice)]
    pub lattice: (u32, u32),
    /// Truth temperature T > 0.
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: f64,
    /// JSON file with an N×N symmetric coupling matrix, zero diagonal, spins in row-major
    /// lattice order; the model is q(σ) ∝ exp(Σ_{i<j} J_ij σ_iσ_j).
    #[arg(long)]
    pub couplings: std::path::PathBuf,
    /// Comma-separated τ values for the curve (default: 0.2..5 in 70 steps plus 1).
    #[arg(long, value_delimiter = ',')]
    pub tau: Vec<f64>,
    /// Bounds LO:HI of the continuous τ* search.
    #[arg(long, value_parser = parse_pair, default_value = "0.01:100")]
    pub tau_bounds: (f64, f64),
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run `taustar eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.couplings)
        .with_context(|| format!("reading --couplings {}", args.couplings.display()))?;
    let matrix: Vec<Vec<f64>> = serde_json::from_str(&text).with_context(|| {
        format!("--couplings {}: expected a JSON array of arrays of numbers", args.couplings.display())
    })?;
    let settings = common::CellSettings { tau_bounds: args.tau_bounds, ..Default::default() };
    let taus = if args.tau.is_empty() { settings.tau_grid.values() } else { args.tau.clone() };
    let (rows, cols) = args.lattice;
    let report =
        eval_ising_model(rows, cols, args.temperature, &matrix, &taus, &settings).map_err(flag_error)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
        emit(&(text + "\n"))
    } else {
        let v = serde_json::to_value(&report).context("serialising the report")?;
        emit(&(scalars(&v) + &curve(&report.curve)))
    }
}
