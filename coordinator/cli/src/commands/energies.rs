//! `taustar energies`: the energy of every sequence of an alignment under a Potts model, as
//! adabmDCA's `energies` command computes it.
//!
//! E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j)
//! ([`PottsModel::energy`](taustar_science::potts::PottsModel::energy)), the model read by the
//! adabmDCA-format reader and the sequences by the alignment reader that `diagnose` uses.
//!
//! Output: a table `name<TAB>energy` on stdout, one row per sequence in file order, under a
//! header row, energies as the shortest decimal that reads back to the same f64. With
//! `--out FILE`, also adabmDCA's layout (`adabmDCA/scripts/energies.py` of
//! github:spqb/adabmDCApy, which writes `<msa stem>_energies.fasta`): for each sequence
//! `>{name} | DCAenergy: {energy:.3f}` and then the sequence, in the alphabet's symbols, as
//! the model sees it (A2M/Stockholm insert columns dropped).
//!
//! Unlike adabmDCA, which drops duplicate sequences and sequences with symbols outside the
//! alphabet before computing, every sequence is kept in file order (so rows line up with the
//! input) and a symbol outside the alphabet is an error naming the file, line and column.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use taustar_science::potts::{read_params_file, Alphabet};

use super::diagnose::read_msa_for;
use super::table::emit;

/// Arguments of `taustar energies` (its `--help` text is the doc comment of the subcommand
/// in `main.rs`).
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The model, in adabmDCA's text format: `J i j a b value` / `h i a value` lines with a, b
    /// letters of the alphabet, or (adabmDCA's old format) integer states 0..q-1; `#`
    /// comments and blank lines are skipped; a coupling not listed is zero.
    #[arg(long)]
    pub model: PathBuf,
    /// The sequences (FASTA, A2M or Stockholm), aligned to the model's columns: as many match
    /// columns as the model has sites.
    #[arg(long)]
    pub msa: PathBuf,
    /// The model's alphabet: protein (-ACDEFGHIKLMNPQRSTVWY), rna (-ACGU), dna (-ACGT), or
    /// the symbols themselves in state order (`--alphabet -ACGU` works too). It reads both
    /// files, and gives q for a model written with integer states.
    #[arg(long, default_value = "protein", allow_hyphen_values = true)]
    pub alphabet: String,
    /// Format of --msa [default: from its extension (.sto/.stk Stockholm, .a2m A2M), else
    /// FASTA].
    #[arg(long, value_parser = ["fasta", "a2m", "stockholm"])]
    pub msa_format: Option<String>,
    /// Also write the energies in adabmDCA's layout to this file: `>name | DCAenergy: E`
    /// (3 decimals, as adabmDCA) followed by the sequence.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Shown after the options in `--help`.
const EXAMPLES: &str = "Examples:
  taustar energies --model params.dat --msa natural.fasta
  taustar energies --model params.dat --msa generated.fasta --out generated_energies.fasta
  taustar energies --model old_format.dat --alphabet protein --msa natural.a2m
  taustar energies --model rna.dat --alphabet rna --msa family.sto | sort -t$'\\t' -k2 -g";

/// Run `taustar energies`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let alphabet =
        Alphabet::named(&args.alphabet).with_context(|| format!("--alphabet {}", args.alphabet))?;
    let model = read_params_file(&args.model, &alphabet)?;
    let msa = read_msa_for(&model, &alphabet, &args.msa, args.msa_format.as_deref())?;
    let energies: Vec<f64> = msa.sequences().map(|s| model.energy(s)).collect();
    if let Some(out) = &args.out {
        let file = out.display();
        let f = std::fs::File::create(out).with_context(|| format!("cannot write --out {file}"))?;
        let mut w = std::io::BufWriter::new(f);
        for ((name, seq), e) in msa.names().iter().zip(msa.sequences()).zip(&energies) {
            let letters: String = seq.iter().map(|&s| alphabet.symbol(s)).collect();
            writeln!(w, ">{name} | DCAenergy: {e:.3}\n{letters}")
                .with_context(|| format!("cannot write --out {file}"))?;
        }
        w.flush().with_context(|| format!("cannot write --out {file}"))?;
    }
    let mut table = String::from("name\tenergy\n");
    for (name, e) in msa.names().iter().zip(&energies) {
        // Writing to a String cannot fail.
        let _ = writeln!(table, "{name}\t{e}");
    }
    emit(&table)
}
