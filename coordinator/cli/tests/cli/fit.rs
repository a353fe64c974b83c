//! `taustar fit` as a user runs it. A fit from many exact draws of a known small model must
//! recover it (its couplings in the zero-sum gauge, and its distribution by enumeration);
//! the file it writes must round-trip through the adabmDCA reader and give `taustar
//! energies` the fitted model's energies; a subsample must be reproducible by seed and its
//! M and M_eff reported; bad flags are one clear error naming the flag.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use taustar_science::potts::gauge::zero_sum_gauge;
use taustar_science::potts::{
    decode_state, enumerate, read_alignment_file, read_params_file, write_params, AlignmentFormat, Alphabet,
    PottsModel,
};

const SYMBOLS: &str = "ABC";

fn taustar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

/// N = 5 sites, q = 3: fields and couplings uniform in ±0.6 (243 states).
fn truth() -> PottsModel {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (n, q) = (5, 3);
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, rng.random_range(-0.6..0.6));
        }
        for j in i + 1..n {
            for a in 0..q {
                for b in 0..q {
                    m.set_coupling(i, j, a, b, rng.random_range(-0.6..0.6));
                }
            }
        }
    }
    m
}

/// `count` exact draws from `m` as FASTA at `path`.
fn draws(path: &Path, m: &PottsModel, count: usize, seed: u64) {
    let alphabet = Alphabet::new(SYMBOLS).unwrap();
    let e = enumerate(m, 1.0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
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
        let seq: String = decode_state(x, m.n(), m.q()).iter().map(|&s| alphabet.symbol(s)).collect();
        writeln!(f, ">draw-{k}\n{seq}").unwrap();
    }
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_plm_fit_from_draws_of_a_known_model_recovers_it_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let m = truth();
    let msa = dir.path().join("draws.fasta");
    draws(&msa, &m, 20_000, 12);
    let params = dir.path().join("fit.dat");
    let v = json(&taustar(&[
        "fit",
        "--msa",
        msa.to_str().unwrap(),
        "--alphabet",
        SYMBOLS,
        "--identity",
        "none",
        "--l2-fields",
        "1e-5",
        "--l2-couplings",
        "1e-5",
        "--out",
        params.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        (v["samples"].as_u64(), v["meff"].as_f64(), v["stop"].as_str()),
        (Some(20_000), Some(20_000.0), Some("grad_tol"))
    );
    let alphabet = Alphabet::new(SYMBOLS).unwrap();
    let fit = read_params_file(&params, &alphabet).unwrap();
    // Couplings and fields against the truth's zero-sum representative.
    let want = zero_sum_gauge(&m);
    let worst = fit
        .couplings()
        .iter()
        .zip(want.couplings())
        .chain(fit.fields().iter().zip(want.fields()))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.15, "max |Δ parameter| = {worst}");
    // The distributions: KL(truth ‖ fit) by enumeration, ~ #parameters / 2M ≈ 0.001.
    let (p, f) = (enumerate(&m, 1.0).unwrap(), enumerate(&fit, 1.0).unwrap());
    let kl: f64 = p.probabilities.iter().zip(&f.probabilities).map(|(a, b)| a * (a / b).ln()).sum();
    assert!(kl < 0.01, "KL(truth ‖ fit) = {kl}");
    // The file round-trips: written again from what was read, byte for byte.
    let mut again = Vec::new();
    write_params(&fit, &alphabet, &mut again).unwrap();
    assert_eq!(again, std::fs::read(&params).unwrap());
    // `taustar energies` reads it and gives the fitted model's energies.
    let out = taustar(&[
        "energies",
        "--model",
        params.to_str().unwrap(),
        "--alphabet",
        SYMBOLS,
        "--msa",
        msa.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seqs = read_alignment_file(&msa, AlignmentFormat::Fasta, &alphabet).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for (line, s) in text.lines().skip(1).zip(seqs.sequences()).take(500) {
        let e: f64 = line.split('\t').nth(1).unwrap().parse().unwrap();
        assert_eq!(e, fit.energy(s), "{line}");
    }
}

#[test]
fn a_subsample_is_reproducible_by_seed_and_weighted_at_the_identity_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let msa = dir.path().join("draws.fasta");
    draws(&msa, &truth(), 2_000, 3);
    let run = |seed: &str, out: &str, method: &str| {
        let path = dir.path().join(out);
        let v = json(&taustar(&[
            "fit",
            "--msa",
            msa.to_str().unwrap(),
            "--alphabet",
            SYMBOLS,
            "--samples",
            "300",
            "--seed",
            seed,
            "--method",
            method,
            "--chains",
            "100",
            "--max-sweeps",
            "300",
            "--out",
            path.to_str().unwrap(),
            "--json",
        ]));
        (v, std::fs::read(path).unwrap())
    };
    let (v, a) = run("4", "a.dat", "plm");
    let (_, b) = run("4", "b.dat", "plm");
    let (_, c) = run("5", "c.dat", "plm");
    assert_eq!(a, b, "the same seed gives the same model");
    assert_ne!(a, c, "another seed draws another subsample");
    // 5 sites at identity > 0.8: only equal sequences are near-copies; 300 draws of 243
    // states repeat some, so 1 < M_eff < 300.
    let meff = v["meff"].as_f64().unwrap();
    assert_eq!(
        (v["samples"].as_u64(), v["msa_sequences"].as_u64(), v["identity"].as_f64()),
        (Some(300), Some(2_000), Some(0.8))
    );
    assert!(1.0 < meff && meff < 300.0, "M_eff {meff}");
    // bml runs too and writes a model the reader takes.
    let (v, bml) = run("4", "bml.dat", "bml");
    assert_eq!(v["method"], "bml");
    assert!(v["epochs"].as_u64().unwrap() > 0, "{v}");
    let model =
        taustar_science::potts::read_params(&bml[..], &Alphabet::new(SYMBOLS).unwrap(), "bml.dat").unwrap();
    assert_eq!((model.n(), model.q()), (5, 3));
}

#[test]
fn bad_fit_flags_are_one_clear_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let msa = dir.path().join("draws.fasta");
    draws(&msa, &truth(), 50, 1);
    let msa = msa.to_str().unwrap().to_string();
    let out = dir.path().join("p.dat");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--samples", "0"], vec!["--samples", "0"]),
        (vec!["--samples", "51"], vec!["--samples", "51", "50 sequences"]),
        (vec!["--identity", "1.5"], vec!["--identity", "1.5"]),
        (vec!["--identity", "high"], vec!["--identity", "high"]),
        (vec!["--l2-couplings", "-1"], vec!["--l2-couplings", "-1"]),
        (vec!["--grad-tol", "0"], vec!["--grad-tol", "0"]),
        (vec!["--method", "mle"], vec!["--method", "mle"]),
        (vec!["--method", "bml", "--chains", "1"], vec!["--chains", "1"]),
        (vec!["--alphabet", "rna"], vec!["draws.fasta", "alphabet"]),
    ];
    for (extra, want) in cases {
        let mut args = vec!["fit", "--msa", &msa, "--alphabet", SYMBOLS, "--out", out];
        // A later --alphabet replaces the first only if clap allows overrides; put it first.
        if extra.first() == Some(&"--alphabet") {
            args = vec!["fit", "--msa", &msa, "--out", out];
        }
        args.extend(&extra);
        let o = taustar(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && !err.contains("panicked"), "{extra:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{extra:?}: stderr lacks {w:?}: {err}");
        }
    }
}
