//! `taustar split`: a training / held-out split of an alignment by identity cluster
//! ([`split_by_identity`]), so that `taustar diagnose --msa heldout.fasta` judges a model on
//! sequences that are not near-copies of the ones it was trained on.
//!
//! Clusters are single-linkage components of "identity above θ" (the reweighting's rule),
//! the only clustering under which whole clusters on different sides guarantee that no
//! held-out sequence is above θ with any training sequence; greedy centroid clustering does
//! not (see the science module's docs).

use std::path::PathBuf;

use anyhow::Context;
use rand::SeedableRng;
use taustar_science::potts::{split_by_identity, write_fasta_file};

use super::diagnose::AlignmentArgs;
use super::table::emit;

/// Arguments of `taustar split`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The alignment.
    #[command(flatten)]
    pub input: AlignmentArgs,
    /// Identity threshold θ in [0, 1): sequences with identity above θ (equal columns over
    /// all match columns, gaps included) are linked, and linked sequences stay on one side.
    /// 0.8 matches the usual DCA reweighting; a lower θ makes the held-out set more distant.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub identity: f64,
    /// Fraction of the sequences to hold out, in (0, 1); reached as closely as whole
    /// clusters allow.
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    pub heldout: f64,
    /// The random seed choosing which clusters are held out (same seed, same split).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for train.fasta and heldout.fasta (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Shown after the options in `--help`.
const EXAMPLES: &str = "Examples:
  taustar split --msa families/rhomboid.fasta --out split/rhomboid
  taustar split --msa family.sto --identity 0.8 --heldout 0.2 --seed 3 --out split/
  taustar split --msa family.a2m --identity 0.6 --out distant/   # a more distant held-out set

Writes OUT/train.fasta and OUT/heldout.fasta (match columns, one line per sequence). No
held-out sequence has identity above --identity with any training sequence: clusters are the
connected components of that relation (single linkage) and go whole to one side.";

/// Run `taustar split`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.identity) {
        anyhow::bail!("invalid --identity {}: need 0 <= θ < 1 (0.8 is the usual threshold)", args.identity);
    }
    if !(args.heldout > 0.0 && args.heldout < 1.0) {
        anyhow::bail!("invalid --heldout {}: need a fraction strictly between 0 and 1", args.heldout);
    }
    let (alphabet, msa) = args.input.read()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let split = split_by_identity(&msa, args.identity, args.heldout, &mut rng)
        .with_context(|| format!("splitting --msa {}", args.input.msa.display()))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating --out {}", args.out.display()))?;
    let (train, heldout) = (args.out.join("train.fasta"), args.out.join("heldout.fasta"));
    write_fasta_file(&msa.subset(&split.train), &alphabet, &train)?;
    write_fasta_file(&msa.subset(&split.heldout), &alphabet, &heldout)?;
    let m = msa.num_sequences();
    let report = serde_json::json!({
        "msa": args.input.msa.display().to_string(),
        "sequences": m,
        "columns": msa.length(),
        "identity": args.identity,
        "heldout_fraction_asked": args.heldout,
        "seed": args.seed,
        "clusters": split.clusters,
        "largest_cluster": split.largest_cluster,
        "train_sequences": split.train.len(),
        "heldout_sequences": split.heldout.len(),
        "heldout_clusters": split.heldout_clusters,
        "train": train.display().to_string(),
        "heldout": heldout.display().to_string(),
    });
    if args.json {
        return emit(&(serde_json::to_string_pretty(&report)? + "\n"));
    }
    emit(&format!(
        "alignment   {m} sequences x {} columns\nclusters    {} at identity > {} (single linkage), the largest of {}\n\
         train       {} sequences  -> {}\nheld out    {} sequences in {} clusters ({:.1} %)  -> {}\n",
        msa.length(),
        split.clusters,
        args.identity,
        split.largest_cluster,
        split.train.len(),
        train.display(),
        split.heldout.len(),
        split.heldout_clusters,
        100.0 * split.heldout.len() as f64 / m as f64,
        heldout.display(),
    ))
}
