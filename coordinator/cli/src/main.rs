//! `taustar` — map the optimal sampling temperature of learned energy-based models.
//!
//! One binary, one subcommand per job. Each subcommand lives in its own module under
//! [`commands`] with a clap `Args` struct and a `run` function; `main` only parses, sets up
//! logging and maps errors to an exit code.

use clap::{Parser, Subcommand};
use taustar_proto::process::{init_logging, LogFormat};

mod commands;

/// Phase diagrams of the optimal sampling temperature τ* of energy-based models
/// (arXiv:2512.09152).
///
/// Quick start:  taustar cell --truth two-level --states 100 --low-states 20 --gap 6 --samples 200 --seed 1
///               taustar run studies/quick.toml
#[derive(Parser)]
#[command(name = "taustar", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log output format on stderr. Verbosity via RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute one cell: draw data, fit, evaluate τ, print τ* and the curve.
    Cell(commands::cell::Args),
    /// Evaluate a given learned Ising model against a truth over τ, without fitting.
    Eval(commands::eval::Args),
    /// Diagnose a Potts model you already have: S, ⟨E⟩, C against τ, and with held-out
    /// sequences the energy-match τ and the held-out log-likelihood (with error bars).
    Diagnose(commands::diagnose::Args),
    /// Print the energy of every sequence of an alignment under a Potts model, as adabmDCA's
    /// `energies` does: one `name<TAB>energy` row per sequence.
    ///
    /// E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j): low energy means the model finds the
    /// sequence likely (p(s) ∝ e^{−E(s)}). Rows follow the alignment's order under a header
    /// row `name<TAB>energy`, energies at full precision; --out also writes adabmDCA's layout.
    /// Every sequence is kept (adabmDCA drops duplicates); a symbol outside the alphabet is an
    /// error naming the file, line and column.
    Energies(commands::energies::Args),
    /// Split an alignment into training and held-out sequences by identity cluster, so no
    /// held-out sequence is a near-copy (identity above --identity) of a training one.
    ///
    /// Clusters are single-linkage: sequences above the threshold with each other are linked,
    /// and each connected group goes whole to one side, chosen by --seed. Writes
    /// OUT/train.fasta and OUT/heldout.fasta.
    Split(commands::split::Args),
    /// Fit a Potts model to an alignment (pseudo-likelihood or Boltzmann-machine learning)
    /// and write it in adabmDCA's format.
    ///
    /// Takes M sequences (--samples, or all), weights them at the identity threshold as DCA
    /// does (reporting M_eff), fits, and writes the zero-sum-gauge model that
    /// `taustar diagnose --model` and `taustar energies --model` read.
    Fit(commands::fit::Args),
    /// Run a study on this machine: coordinator + local workers in one process (resumes).
    Run(commands::run::Args),
    /// Serve a study to remote workers over gRPC.
    Serve(commands::serve::Args),
    /// Show progress of a study from its database.
    Status(commands::status::Args),
    /// Export summary, cell and curve tables of a study (CSV, Parquet, JSON).
    Export(commands::export::Args),
    /// Draw phase diagrams of a study (PNG and SVG).
    Plot(commands::plot::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Cell(a) => commands::cell::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Diagnose(a) => commands::diagnose::run(a),
        Command::Energies(a) => commands::energies::run(a),
        Command::Split(a) => commands::split::run(a),
        Command::Fit(a) => commands::fit::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Status(a) => commands::status::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Plot(a) => commands::plot::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
