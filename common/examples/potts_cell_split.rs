//! One protein-scale Potts cell, timed piece by piece (issue: Potts models): a `potts-random`
//! truth (N = 50 sites, q = 21, the protein-like defaults), M = 1000 training sequences from
//! its chain, a pseudo-likelihood fit, and τ* of the fit by tempering + MBAR. Prints one JSON
//! object with τ*_rev, τ*_fwd (± s.e.), the diagnostics and the wall seconds of sampling, fit
//! and evaluation; with an output directory, also writes the truth and the fit in adabmDCA's
//! format and 500 held-out sequences of the truth as FASTA, so that
//! `taustar diagnose --model DIR/fit.dat --msa DIR/heldout.fasta` can be set beside the
//! fit's true τ*_fwd (README, "Diagnose a model you have").
//!
//!   cargo run --release -p taustar-common --example potts_cell_split -- [OUT_DIR] [M] [SEED]

use std::io::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use taustar_common::potts_cell::{potts_cell, sample_sequences, PottsCellOptions};
use taustar_science::potts::{random_family, write_params_file, Alphabet, PottsRandomSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().map(std::path::PathBuf::from);
    let samples: usize = args.next().map_or(Ok(1_000), |s| s.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    let spec = PottsRandomSpec::default();
    let truth = random_family(&spec)?;
    let opts = PottsCellOptions { samples, ..PottsCellOptions::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cell = potts_cell(&truth, &opts, &mut rng)?;
    let t = &cell.tau;
    let report = serde_json::json!({
        "truth": spec,
        "samples": samples,
        "seed": seed,
        "l2": opts.fit.l2_couplings,
        "data_tau_int": cell.data.tau_int,
        "data_thinning": cell.data.thinning,
        "fit_diverged": cell.fit.diverged,
        "tau_rev": t.tau_rev.value, "tau_rev_se": t.tau_rev.se,
        "tau_fwd": t.tau_fwd.value, "tau_fwd_se": t.tau_fwd.se,
        "dkl_rev_at_1": t.dkl_rev_at_1.value, "dkl_rev_at_1_se": t.dkl_rev_at_1.se,
        "dkl_fwd_at_1": t.dkl_fwd_at_1.value, "dkl_fwd_at_1_se": t.dkl_fwd_at_1.se,
        "log_z_truth": cell.log_z_truth.value, "log_z_truth_se": cell.log_z_truth.se,
        "mcmc_ok": t.ok, "mcmc_note": t.note,
        "ladder_rungs": t.betas.len(), "min_swap_acceptance": t.min_swap_acceptance,
        "round_trips": t.round_trips, "r_hat": t.r_hat, "tau_int_steps": t.tau_int,
        "seconds_sampling": cell.seconds[0],
        "seconds_fit": cell.seconds[1],
        "seconds_evaluation": cell.seconds[2],
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        let alphabet = Alphabet::protein();
        write_params_file(&truth, &alphabet, &dir.join("truth.dat"))?;
        write_params_file(&cell.fit.model, &alphabet, &dir.join("fit.dat"))?;
        let held = sample_sequences(&truth, 500, &mut ChaCha8Rng::seed_from_u64(seed ^ 0x4e1d))?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("heldout.fasta"))?);
        for (k, s) in held.seqs.chunks_exact(truth.n()).enumerate() {
            let seq: String = s.iter().map(|&a| alphabet.symbol(a)).collect();
            writeln!(f, ">heldout-{k}\n{seq}")?;
        }
        std::fs::write(dir.join("cell.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}
