//! One protein-scale Potts cell, timed piece by piece (issue: Potts models): a `potts-random`
//! truth (N = 50 sites, q = 21, the protein-like defaults), M = 1000 training sequences from
//! its chain, a pseudo-likelihood fit, and τ* of the fit by tempering + MBAR. Prints one JSON
//! object with τ*_rev, τ*_fwd (± s.e.), the diagnostics and the wall seconds of sampling, fit
//! and evaluation (the steps studies run, one by one); with an output directory, also writes the truth and the fit in adabmDCA's
//! format and 500 held-out sequences of the truth as FASTA, so that
//! `taustar diagnose --model DIR/fit.dat --msa DIR/heldout.fasta` can be set beside the
//! fit's true τ*_fwd (README, "Diagnose a model you have").
//!
//!   cargo run --release -p taustar-common --example potts_cell_split -- [OUT_DIR] [M] [SEED]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use taustar_common::cell::{CellSettings, CellSpec, CurveOutput, FitSpec, GridPoint};
use taustar_common::compute::potts::Potts;
use taustar_common::compute::CellSteps;
use taustar_common::{DataSize, FitMode, McmcSettings, TruthSpec};
use taustar_science::mc::data::sample_sequences;
use taustar_science::potts::{random_family, write_params_file, Alphabet, PottsRandomSpec};

/// λ of the fit (on fields and couplings).
const L2: f64 = 0.01;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().map(std::path::PathBuf::from);
    let samples: u64 = args.next().map_or(Ok(1_000), |s| s.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    let spec = PottsRandomSpec::default();
    let truth = Arc::new(random_family(&spec)?);
    let cell = CellSpec {
        study_seed: seed,
        point: GridPoint {
            truth: TruthSpec::from_potts_random(&spec),
            data: DataSize::Samples(samples),
            fit: FitSpec { mode: FitMode::Plm, l2: L2 },
        },
        replicate: 0,
        settings: CellSettings {
            tau_bounds: taustar_common::cell::MCMC_DEFAULT_TAU_BOUNDS,
            curves: CurveOutput::None,
            mcmc: Some(McmcSettings::default()),
            ..CellSettings::default()
        },
    };
    cell.validate()?;
    // The steps of `run_steps`, one by one, timed.
    let kind = Potts::with_model(&cell, Arc::clone(&truth));
    let m = kind.samples(&cell)?;
    let mut rng = cell.rng();
    let t0 = Instant::now();
    let data = kind.draw(&cell, m, &mut rng)?;
    let t1 = Instant::now();
    let fit = kind.fit(&cell, &data, &mut rng)?;
    let t2 = Instant::now();
    let ev = kind.evaluate(&cell, &data, &fit.model, &mut rng)?;
    let t3 = Instant::now();
    let (t, mc) = (&ev.tau.summary, &ev.mcmc);
    let report = serde_json::json!({
        "truth": spec,
        "samples": samples,
        "seed": seed,
        "l2": L2,
        "data_tau_int": data.tau_int,
        "data_thinning": data.thinning,
        "fit_diverged": fit.report.fit_diverged,
        "tau_rev": t.tau_rev, "tau_rev_se": mc.tau_rev_se,
        "tau_fwd": t.tau_fwd, "tau_fwd_se": mc.tau_fwd_se,
        "dkl_rev_at_1": t.dkl_rev_at_1, "dkl_rev_at_1_se": mc.dkl_rev_at_1_se,
        "dkl_fwd_at_1": t.dkl_fwd_at_1, "dkl_fwd_at_1_se": mc.dkl_fwd_at_1_se,
        "log_z_truth": ev.side.log_z.value, "log_z_truth_se": ev.side.log_z.se,
        "diagnostics": mc.ladder,
        "seconds_sampling": (t1 - t0).as_secs_f64(),
        "seconds_fit": (t2 - t1).as_secs_f64(),
        "seconds_evaluation": (t3 - t2).as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        let alphabet = Alphabet::protein();
        write_params_file(&truth, &alphabet, &dir.join("truth.dat"))?;
        write_params_file(&fit.model, &alphabet, &dir.join("fit.dat"))?;
        let held = sample_sequences(&truth, 500, &mut ChaCha8Rng::seed_from_u64(seed ^ 0x4e1d))?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("heldout.fasta"))?);
        for (k, s) in held.states.chunks_exact(truth.n()).enumerate() {
            let seq: String = s.iter().map(|&a| alphabet.symbol(a)).collect();
            writeln!(f, ">heldout-{k}\n{seq}")?;
        }
        std::fs::write(dir.join("cell.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}
