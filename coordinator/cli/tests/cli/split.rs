//! `taustar split` as a user runs it: on a generated family whose identities straddle the
//! threshold, no held-out sequence may be above it with any training sequence (checked by
//! brute force over every pair), the two files must hold every sequence once, and the same
//! seed must give the same files; bad flags are one clear error naming the flag.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use taustar_science::potts::{read_alignment_file, Alignment, AlignmentFormat, Alphabet};

const AMINO: &[u8] = b"-ACDEFGHIKLMNPQRSTVWY";

fn taustar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

/// `m` protein sequences of length `len`: copies of 6 ancestors with 0..len/3 mutations
/// each, so identities above and below 0.8 both occur, within and between sub-families.
fn family(path: &Path, m: usize, len: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ancestors: Vec<Vec<u8>> =
        (0..6).map(|_| (0..len).map(|_| AMINO[rng.random_range(0..AMINO.len())]).collect()).collect();
    let mut f = std::fs::File::create(path).unwrap();
    for k in 0..m {
        let mut s = ancestors[rng.random_range(0..ancestors.len())].clone();
        for _ in 0..rng.random_range(0..len / 3) {
            let i = rng.random_range(0..len);
            s[i] = AMINO[rng.random_range(0..AMINO.len())];
        }
        writeln!(f, ">seq{k} some description\n{}", String::from_utf8(s).unwrap()).unwrap();
    }
}

fn read(path: &Path) -> Alignment {
    read_alignment_file(path, AlignmentFormat::Fasta, &Alphabet::protein()).unwrap()
}

fn identity(x: &[u8], y: &[u8]) -> f64 {
    x.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / x.len() as f64
}

#[test]
fn no_heldout_sequence_is_above_the_threshold_with_a_training_one() {
    let dir = tempfile::tempdir().unwrap();
    let msa = dir.path().join("family.fasta");
    family(&msa, 300, 40, 5);
    let all = read(&msa);
    for (identity_flag, seed) in [("0.8", "1"), ("0.7", "2"), ("0.9", "3")] {
        let out_dir = dir.path().join(format!("split-{seed}"));
        let out = taustar(&[
            "split",
            "--msa",
            msa.to_str().unwrap(),
            "--identity",
            identity_flag,
            "--heldout",
            "0.2",
            "--seed",
            seed,
            "--out",
            out_dir.to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (train, heldout) = (read(&out_dir.join("train.fasta")), read(&out_dir.join("heldout.fasta")));
        let theta: f64 = identity_flag.parse().unwrap();
        for h in heldout.sequences() {
            for t in train.sequences() {
                assert!(
                    identity(h, t) <= theta,
                    "a held-out sequence at identity {} > {theta}",
                    identity(h, t)
                );
            }
        }
        // Every sequence once, with its name and states.
        let mut names: Vec<&String> = train.names().iter().chain(heldout.names()).collect();
        names.sort();
        let mut want: Vec<&String> = all.names().iter().collect();
        want.sort();
        assert_eq!(names, want);
        for (name, seq) in heldout.names().iter().zip(heldout.sequences()) {
            let k = all.names().iter().position(|n| n == name).unwrap();
            assert_eq!(seq, all.sequence(k));
        }
        // Near the asked fraction, and the report says what the files hold.
        let frac = heldout.num_sequences() as f64 / all.num_sequences() as f64;
        assert!((0.1..0.3).contains(&frac), "held-out fraction {frac}: {v}");
        assert_eq!(v["heldout_sequences"].as_u64(), Some(heldout.num_sequences() as u64));
        assert_eq!(v["train_sequences"].as_u64(), Some(train.num_sequences() as u64));
        assert!(v["clusters"].as_u64().unwrap() > 6, "{v}");
        // The same seed, the same files.
        let again = dir.path().join(format!("again-{seed}"));
        let out = taustar(&[
            "split",
            "--msa",
            msa.to_str().unwrap(),
            "--identity",
            identity_flag,
            "--seed",
            seed,
            "--out",
            again.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for f in ["train.fasta", "heldout.fasta"] {
            assert_eq!(std::fs::read(out_dir.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
        }
    }
}

#[test]
fn bad_split_flags_are_one_clear_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let msa = dir.path().join("family.fasta");
    family(&msa, 50, 20, 1);
    let msa = msa.to_str().unwrap().to_string();
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let same = dir.path().join("same.fasta");
    std::fs::write(&same, ">a\nACDE\n>b\nACDE\n>c\nACDE\n").unwrap();
    let missing = dir.path().join("missing.fasta");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--msa", &msa, "--identity", "1.2"], vec!["--identity", "1.2"]),
        (vec!["--msa", &msa, "--identity", "-0.1"], vec!["--identity", "-0.1"]),
        (vec!["--msa", &msa, "--heldout", "0"], vec!["--heldout", "0"]),
        (vec!["--msa", &msa, "--heldout", "1.5"], vec!["--heldout", "1.5"]),
        (vec!["--msa", missing.to_str().unwrap()], vec!["missing.fasta"]),
        (vec!["--msa", same.to_str().unwrap()], vec!["same.fasta", "largest holds 3", "higher identity"]),
    ];
    for (extra, want) in cases {
        let mut args = vec!["split", "--out", out_dir];
        args.extend(&extra);
        let out = taustar(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "{extra:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{extra:?}: stderr lacks {w:?}: {err}");
        }
    }
}
