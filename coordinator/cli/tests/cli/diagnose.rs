//! `taustar diagnose` as a user runs it, on a model whose truth is known: the truth is the
//! model itself at τ_true = 0.8 (p ∝ e^{−E/0.8}), so the truth's τ*_fwd for the model is
//! exactly 0.8, and the held-out sequences are exact draws from it. The energy-match τ must
//! come back within 3 standard errors, the heat-capacity peak must match enumeration, and
//! the files must be written; bad inputs are one clear error naming the flag.

use std::io::Write;
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use taustar_science::potts::{enumerate, write_params_file, Alphabet, PottsModel};

const TAU_TRUE: f64 = 0.8;
const SYMBOLS: &str = "ABC";

fn taustar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

/// N = 6 sites, q = 3: fields and couplings uniform in ±0.8 (729 states, enumerable).
fn model() -> PottsModel {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (n, q) = (6, 3);
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, rng.random_range(-0.8..0.8));
        }
        for j in i + 1..n {
            for a in 0..q {
                for b in 0..q {
                    m.set_coupling(i, j, a, b, rng.random_range(-0.8..0.8));
                }
            }
        }
    }
    m
}

/// Writes the model and `count` exact draws from it at τ_true as FASTA; returns the paths.
fn inputs(dir: &std::path::Path, m: &PottsModel, count: usize) -> (String, String) {
    let alphabet = Alphabet::new(SYMBOLS).unwrap();
    let params = dir.join("params.dat");
    write_params_file(m, &alphabet, &params).unwrap();
    let e = enumerate(m, 1.0 / TAU_TRUE).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut fasta = std::fs::File::create(dir.join("heldout.fasta")).unwrap();
    for k in 0..count {
        let u: f64 = rng.random();
        let (mut acc, mut x) = (0.0, e.probabilities.len() - 1);
        for (i, p) in e.probabilities.iter().enumerate() {
            acc += p;
            if u < acc {
                x = i;
                break;
            }
        }
        let seq: String = taustar_science::potts::decode_state(x, m.n(), m.q())
            .iter()
            .map(|&s| alphabet.symbol(s))
            .collect();
        writeln!(fasta, ">held-out-{k}\n{seq}").unwrap();
    }
    (params.display().to_string(), dir.join("heldout.fasta").display().to_string())
}

#[test]
fn the_energy_match_tau_of_a_model_with_a_known_truth_is_its_tau_fwd() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let (params, fasta) = inputs(dir.path(), &m, 400);
    let out_dir = dir.path().join("out");
    let out = taustar(&[
        "diagnose",
        "--model",
        &params,
        "--alphabet",
        SYMBOLS,
        "--msa",
        &fasta,
        "--out",
        out_dir.to_str().unwrap(),
        "--tau-bounds",
        "0.3:4",
        "--steps",
        "3000",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mcmc_ok"], true, "{v}");
    // Every rung passed, so the equilibrated range is the whole range.
    assert!((v["equilibrated_tau_lo"].as_f64().unwrap() - 0.3).abs() < 1e-9, "{v}");
    assert_eq!(
        (v["sites"].as_u64(), v["states"].as_u64(), v["heldout_sequences"].as_u64()),
        (Some(6), Some(3), Some(400))
    );
    let (tau, se) =
        (v["energy_match_tau"]["value"].as_f64().unwrap(), v["energy_match_tau"]["se"].as_f64().unwrap());
    assert!(se > 0.0 && se < 0.1, "s.e. {se}");
    assert!((tau - TAU_TRUE).abs() < 3.0 * se, "energy-match τ {tau} ± {se}, τ*_fwd = {TAU_TRUE}");
    // The heat-capacity peak against enumeration on a fine grid.
    let exact_peak = (0..=3000)
        .map(|i| 0.3 * (4.0f64 / 0.3).powf(i as f64 / 3000.0))
        .map(|t| {
            let e = enumerate(&m, 1.0 / t).unwrap();
            let mean: f64 = e.energies.iter().zip(&e.probabilities).map(|(x, p)| x * p).sum();
            let var: f64 = e.energies.iter().zip(&e.probabilities).map(|(x, p)| (x - mean).powi(2) * p).sum();
            (t, var / (t * t))
        })
        .fold((0.0, f64::NEG_INFINITY), |b, (t, c)| if c > b.1 { (t, c) } else { b })
        .0;
    let (peak, peak_se) =
        (v["heat_peak_tau"]["value"].as_f64().unwrap(), v["heat_peak_tau"]["se"].as_f64().unwrap());
    assert!(
        (peak - exact_peak).abs() < 3.0 * peak_se,
        "C peak at τ = {peak} ± {peak_se}, exact {exact_peak}"
    );
    // The held-out log-likelihood is largest near the energy match.
    let curve = v["curve"].as_array().unwrap();
    let best = curve
        .iter()
        .max_by(|a, b| {
            a["heldout_log_likelihood"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["heldout_log_likelihood"].as_f64().unwrap())
        })
        .unwrap();
    assert!((best["tau"].as_f64().unwrap() / tau).ln().abs() < 0.15, "ℓ peaks at τ = {}", best["tau"]);
    // The files, and the JSON file says what stdout says.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("diagnose.json")).unwrap()).unwrap();
    assert_eq!(written["energy_match_tau"], v["energy_match_tau"]);
    let png = std::fs::read(out_dir.join("diagnose.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    let svg = std::fs::read_to_string(out_dir.join("diagnose.svg")).unwrap();
    assert!(svg.contains("<svg"));
}

#[test]
fn without_heldout_sequences_it_reports_the_model_curves_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (params, _) = inputs(dir.path(), &model(), 1);
    let out = taustar(&[
        "diagnose",
        "--model",
        &params,
        "--alphabet",
        SYMBOLS,
        "--steps",
        "1000",
        "--tau",
        "0.5,1,2",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heat peak") && !text.contains("energy-match"), "{text}");
    assert_eq!(text.lines().filter(|l| l.trim_start().starts_with(['0', '1', '2'])).count(), 3, "{text}");
}

#[test]
fn heldout_weights_at_the_identity_threshold_give_the_weighted_mean_energy() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let (params, fasta) = inputs(dir.path(), &m, 200);
    // Every held-out sequence four times more: unweighted they count 5×, weighted once.
    let text = std::fs::read_to_string(&fasta).unwrap();
    let mut copies = text.clone();
    for k in 0..4 {
        copies += &text.replace(">held-out-", &format!(">copy{k}-"));
    }
    let copied = dir.path().join("copies.fasta");
    std::fs::write(&copied, copies).unwrap();
    let alphabet = Alphabet::new(SYMBOLS).unwrap();
    let msa = taustar_science::potts::read_alignment_file(
        &copied,
        taustar_science::potts::AlignmentFormat::Fasta,
        &alphabet,
    )
    .unwrap();
    let w = taustar_science::potts::reweight(&msa, 0.8).unwrap();
    let energies: Vec<f64> = msa.sequences().map(|s| m.energy(s)).collect();
    let want = energies.iter().zip(&w.weights).map(|(e, w)| e * w).sum::<f64>() / w.neff;
    let run = |extra: &[&str]| {
        let mut args = vec![
            "diagnose",
            "--model",
            &params,
            "--alphabet",
            SYMBOLS,
            "--msa",
            copied.to_str().unwrap(),
            "--steps",
            "400",
            "--ladders",
            "1",
            "--json",
        ];
        args.extend(extra);
        let out = taustar(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = run(&["--heldout-identity", "0.8"]);
    assert_eq!(v["heldout_sequences"].as_u64(), Some(1000));
    assert!((v["heldout_meff"].as_f64().unwrap() - w.neff).abs() < 1e-9, "{v}");
    assert!(w.neff <= 200.0, "copies share a cluster: M_eff {}", w.neff);
    assert!((v["heldout_mean_energy"]["value"].as_f64().unwrap() - want).abs() < 1e-9, "{v}");
    // Unweighted: the plain mean and M_eff = M.
    let u = run(&[]);
    let plain = energies.iter().sum::<f64>() / energies.len() as f64;
    assert!((u["heldout_mean_energy"]["value"].as_f64().unwrap() - plain).abs() < 1e-9, "{u}");
    assert_eq!(u["heldout_meff"].as_f64(), Some(1000.0));
    // A threshold outside [0, 1) names the flag.
    let mut args = vec!["diagnose", "--model", &params, "--alphabet", SYMBOLS, "--msa", &fasta];
    args.extend(["--heldout-identity", "1"]);
    let out = taustar(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--heldout-identity 1"), "{err}");
}

#[test]
fn bad_inputs_are_one_clear_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (params, _) = inputs(dir.path(), &model(), 1);
    let short = dir.path().join("short.fasta");
    std::fs::write(&short, ">s\nABCAB\n").unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--msa", short.to_str().unwrap()], vec!["--msa", "5 columns", "6 sites"]),
        (vec!["--tau-bounds", "2:1"], vec!["--tau-bounds", "2:1"]),
        (vec!["--steps", "10"], vec!["--steps", "10"]),
        (vec!["--resamples", "5"], vec!["--resamples", "5"]),
        (vec!["--tau", "0.5,-1"], vec!["--tau", "-1"]),
    ];
    for (extra, want) in cases {
        let mut args = vec!["diagnose", "--model", &params, "--alphabet", SYMBOLS];
        args.extend(&extra);
        let out = taustar(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "{extra:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{extra:?}: stderr lacks {w:?}: {err}");
        }
    }
    // A model file that is not one, and a model read with the wrong alphabet.
    let garbage = dir.path().join("garbage.dat");
    std::fs::write(&garbage, "J 0 1 A B not-a-number\n").unwrap();
    let out = taustar(&["diagnose", "--model", garbage.to_str().unwrap(), "--alphabet", SYMBOLS]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked") && err.contains("garbage.dat"), "{err}");
    let out = taustar(&["diagnose", "--model", &params, "--alphabet", "rna"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked") && err.contains("params.dat"), "{err}");
}
