//! `taustar fit`: fit a Potts model to an alignment and write it in adabmDCA's format, so
//! that `taustar diagnose --model` and `taustar energies --model` (and adabmDCA) read it.
//!
//! The steps are those of the paper's experiment on a real family: take M sequences of the
//! training alignment (a seeded subsample, or all), weight them at the identity threshold
//! as DCA does (1/N_m; M_eff = Σ w), fit by pseudo-likelihood ([`fit_potts_plm`], plmDCA's
//! objective) or Boltzmann-machine learning ([`fit_potts_bml`], adabmDCA's algorithm with
//! L2 penalties), and write the model in the zero-sum gauge.
//!
//! Default penalties: λ_h = λ_J = 0.01 on the weight-normalised objective
//! −Σ_m w_m ln p(s^m) / Σ_m w_m + λ_h‖h‖² + λ_J‖J‖², the defaults of PlmDCA.jl's asymmetric
//! pseudo-likelihood (`plmdca_asym`, weights normalised to sum 1: the same objective and
//! scale as ours; its symmetric `plmdca` uses λ_J = 0.005 because each coupling appears
//! twice there) and of the plmDCA papers (Ekeberg et al. 2013, 2014).

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use taustar_science::fit::potts_bml::{fit_potts_bml, PottsBmlOptions, DEFAULT_POTTS_BML};
use taustar_science::fit::potts_plm::{fit_potts_plm, PottsPlmOptions, DEFAULT_POTTS_PLM};
use taustar_science::potts::{reweight, write_params_file, SequenceWeights};

use super::diagnose::AlignmentArgs;
use super::table::emit;

/// The fitting method.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Pseudo-likelihood (plmDCA): per-site penalised logistic regressions, no sampling;
    /// minutes at protein size.
    Plm,
    /// Boltzmann-machine learning (bmDCA/adabmDCA): the likelihood's gradient from
    /// persistent chains; slower, the model whose statistics match the data.
    Bml,
}

/// Arguments of `taustar fit`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The alignment.
    #[command(flatten)]
    pub input: AlignmentArgs,
    /// Where to write the model (adabmDCA's text format).
    #[arg(long)]
    pub out: PathBuf,
    /// The fitting method.
    #[arg(long, value_enum, default_value = "plm")]
    pub method: Method,
    /// Fit to M sequences drawn from --msa without replacement by --seed (the paper's data
    /// size M) [default: every sequence].
    #[arg(long)]
    pub samples: Option<usize>,
    /// The seed of the subsample (and of bml's chains): the same seed, the same model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Identity threshold of the sequence weights, in [0, 1): sequence m gets 1/N_m, N_m the
    /// sequences of the sample with identity above it (m included), as adabmDCA and plmDCA
    /// weight (0.8). `none` gives every sequence weight 1 (data drawn independently from a
    /// model, where near-copies are chance, not phylogeny).
    #[arg(long, default_value = "0.8", value_parser = parse_identity, allow_negative_numbers = true)]
    pub identity: Identity,
    /// λ_h of the field penalty λ_h‖h‖² (on the weight-normalised objective).
    #[arg(long, default_value_t = DEFAULT_POTTS_PLM.l2_fields, allow_negative_numbers = true)]
    pub l2_fields: f64,
    /// λ_J of the coupling penalty λ_J‖J‖² (on the weight-normalised objective).
    #[arg(long, default_value_t = DEFAULT_POTTS_PLM.l2_couplings, allow_negative_numbers = true)]
    pub l2_couplings: f64,
    /// plm: L-BFGS iterations per site at most.
    #[arg(long, default_value_t = DEFAULT_POTTS_PLM.max_iter)]
    pub max_iter: u32,
    /// plm: stop a site when the max-norm of its gradient is below this.
    #[arg(long, default_value_t = DEFAULT_POTTS_PLM.grad_tol, allow_negative_numbers = true)]
    pub grad_tol: f64,
    /// bml: persistent chains.
    #[arg(long, default_value_t = DEFAULT_POTTS_BML.chains)]
    pub chains: usize,
    /// bml: heat-bath sweeps per chain at most, over all gradient steps.
    #[arg(long, default_value_t = DEFAULT_POTTS_BML.max_sweeps)]
    pub max_sweeps: u64,
    /// bml: stop when the Pearson correlation of the model's and the data's connected
    /// correlations reaches this.
    #[arg(long, default_value_t = DEFAULT_POTTS_BML.pearson_target, allow_negative_numbers = true)]
    pub pearson_target: f64,
    /// bml: learning rate η.
    #[arg(long, default_value_t = DEFAULT_POTTS_BML.learning_rate, allow_negative_numbers = true)]
    pub learning_rate: f64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Shown after the options in `--help`.
const EXAMPLES: &str = "Examples:
  taustar fit --msa split/train.fasta --out params.dat
  taustar fit --msa split/train.fasta --samples 300 --seed 2 --out m300.dat --json
  taustar fit --msa train.sto --method bml --chains 500 --max-sweeps 5000 --out bml.dat
  taustar fit --msa draws.fasta --identity none --l2-couplings 0.001 --out p.dat

Then: taustar diagnose --model params.dat --msa split/heldout.fasta --heldout-identity 0.8
      taustar energies --model params.dat --msa split/heldout.fasta";

/// The sequence-weight threshold: a value in [0, 1), or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Identity {
    /// Weights 1/N_m at this threshold.
    Threshold(f64),
    /// Unit weights.
    None,
}

fn parse_identity(s: &str) -> Result<Identity, String> {
    if s == "none" {
        return Ok(Identity::None);
    }
    match s.parse::<f64>() {
        Ok(t) if (0.0..1.0).contains(&t) => Ok(Identity::Threshold(t)),
        _ => Err(format!("`{s}`: need a threshold 0 <= θ < 1 (0.8 is the usual one), or `none`")),
    }
}

/// Run `taustar fit`.
pub fn run(args: Args) -> anyhow::Result<()> {
    check(&args)?;
    let (alphabet, msa) = args.input.read()?;
    let total = msa.num_sequences();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let msa = match args.samples {
        Some(m) if m > total => {
            anyhow::bail!(
                "invalid --samples {m}: --msa {} has only {total} sequences",
                args.input.msa.display()
            )
        }
        Some(m) if m < total => {
            let mut picked = rand::seq::index::sample(&mut rng, total, m).into_vec();
            picked.sort_unstable();
            msa.subset(&picked)
        }
        _ => msa,
    };
    let weights = match args.identity {
        Identity::Threshold(t) => reweight(&msa, t)?,
        Identity::None => SequenceWeights::uniform(&msa),
    };
    let (n, q) = (msa.length(), msa.q());
    let started = Instant::now();
    let mut report = match args.method {
        Method::Plm => {
            let opts = PottsPlmOptions {
                l2_fields: args.l2_fields,
                l2_couplings: args.l2_couplings,
                max_iter: args.max_iter,
                grad_tol: args.grad_tol,
                ..DEFAULT_POTTS_PLM
            };
            let fit = fit_potts_plm(msa.data(), n, q, &weights.weights, opts)?;
            write_params_file(&fit.model, &alphabet, &args.out)?;
            let iterations: Vec<u32> = fit.sites.iter().map(|s| s.iterations).collect();
            serde_json::json!({
                "stop": fit.stop.as_str(),
                "diverged": fit.diverged,
                "note": fit.note,
                "pseudo_nll": fit.pseudo_nll,
                "max_site_iterations": iterations.iter().max(),
                "mean_site_iterations": iterations.iter().map(|&i| f64::from(i)).sum::<f64>() / n as f64,
            })
        }
        Method::Bml => {
            let opts = PottsBmlOptions {
                l2_fields: args.l2_fields,
                l2_couplings: args.l2_couplings,
                learning_rate: args.learning_rate,
                chains: args.chains,
                pearson_target: args.pearson_target,
                max_sweeps: args.max_sweeps,
                ..DEFAULT_POTTS_BML
            };
            let fit = fit_potts_bml(msa.data(), n, q, &weights.weights, opts, &mut rng)?;
            write_params_file(&fit.model, &alphabet, &args.out)?;
            serde_json::json!({
                "stop": fit.stop.as_str(),
                "diverged": fit.diverged,
                "note": fit.note,
                "pearson": fit.pearson,
                "epochs": fit.epochs,
                "sweeps": fit.sweeps,
            })
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let head = serde_json::json!({
        "msa": args.input.msa.display().to_string(),
        "out": args.out.display().to_string(),
        "method": format!("{:?}", args.method).to_lowercase(),
        "sites": n,
        "states": q,
        "msa_sequences": total,
        "samples": msa.num_sequences(),
        "seed": args.seed,
        "identity": match args.identity { Identity::Threshold(t) => Some(t), Identity::None => None },
        "meff": weights.neff,
        "l2_fields": args.l2_fields,
        "l2_couplings": args.l2_couplings,
        "seconds": seconds,
    });
    let mut merged = head.as_object().cloned().unwrap_or_default();
    if let Some(tail) = report.as_object_mut() {
        merged.append(tail);
    }
    let merged = serde_json::Value::Object(merged);
    if args.json {
        return emit(&(serde_json::to_string_pretty(&merged)? + "\n"));
    }
    let mut t = format!(
        "model       N = {n} sites, q = {q} states  -> {}\ndata        M = {} of {total} sequences, M_eff = {:.1}{}\n",
        args.out.display(),
        msa.num_sequences(),
        weights.neff,
        match args.identity {
            Identity::Threshold(th) => format!(" (weights at identity > {th})"),
            Identity::None => " (unit weights)".to_string(),
        }
    );
    t += &format!(
        "fit         {} with λ_h = {}, λ_J = {}: stop {}{} in {seconds:.1} s\n",
        merged["method"].as_str().unwrap_or(""),
        args.l2_fields,
        args.l2_couplings,
        merged["stop"].as_str().unwrap_or(""),
        merged["note"].as_str().map(|n| format!(" ({n})")).unwrap_or_default(),
    );
    emit(&t)
}

/// The flags' ranges, each error naming its flag and value.
fn check(args: &Args) -> anyhow::Result<()> {
    for (flag, v) in [("--l2-fields", args.l2_fields), ("--l2-couplings", args.l2_couplings)] {
        if !(v.is_finite() && v >= 0.0) {
            anyhow::bail!("invalid {flag} {v}: a penalty must be finite and >= 0");
        }
    }
    if args.samples.is_some_and(|m| m < 2) {
        anyhow::bail!("invalid --samples {}: need at least 2 sequences", args.samples.unwrap_or(0));
    }
    if !(args.grad_tol.is_finite() && args.grad_tol > 0.0) {
        anyhow::bail!("invalid --grad-tol {}: need a tolerance > 0", args.grad_tol);
    }
    if args.max_iter == 0 {
        anyhow::bail!("invalid --max-iter 0: need at least one iteration");
    }
    if args.method == Method::Bml {
        if args.chains < 2 {
            anyhow::bail!("invalid --chains {}: need at least 2", args.chains);
        }
        if !(args.learning_rate > 0.0 && args.learning_rate.is_finite()) {
            anyhow::bail!("invalid --learning-rate {}: need a finite rate > 0", args.learning_rate);
        }
        if !(-1.0..=1.0).contains(&args.pearson_target) {
            anyhow::bail!("invalid --pearson-target {}: need a correlation in [-1, 1]", args.pearson_target);
        }
        if args.max_sweeps == 0 {
            anyhow::bail!("invalid --max-sweeps 0: need at least one sweep");
        }
    }
    Ok(())
}
