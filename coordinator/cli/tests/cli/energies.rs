//! `taustar energies` as a user runs it: a small random model and alignment written to disk,
//! the printed energies compared with a direct sum over the fields and couplings kept in the
//! test (not the library's energy); the same model in adabmDCA's old integer-state format with
//! comments gives the same energies; `--out` writes adabmDCA's layout; bad inputs give one
//! error naming the file, line and value.

use std::fmt::Write as _;
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SYMBOLS: &str = "-ACGU";
const N: usize = 7;
const Q: usize = 5;

fn taustar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

/// Fields h[i][a] and couplings J[i][j][a][b] (i < j), drawn independently of the library.
struct Params {
    h: Vec<Vec<f64>>,
    j: Vec<Vec<Vec<Vec<f64>>>>,
}

fn params(rng: &mut ChaCha8Rng) -> Params {
    let h = (0..N).map(|_| (0..Q).map(|_| rng.random_range(-2.0..2.0)).collect()).collect();
    let j = (0..N)
        .map(|_| {
            (0..N)
                .map(|_| (0..Q).map(|_| (0..Q).map(|_| rng.random_range(-1.0..1.0)).collect()).collect())
                .collect()
        })
        .collect();
    Params { h, j }
}

/// E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j), summed here term by term.
fn direct_energy(p: &Params, s: &[usize]) -> f64 {
    let mut e = 0.0;
    for i in 0..N {
        e -= p.h[i][s[i]];
        for j in i + 1..N {
            e -= p.j[i][j][s[i]][s[j]];
        }
    }
    e
}

/// The file in adabmDCA's layout, states as letters or (the old format) as integers, with
/// `#` comments and blank lines sprinkled in.
fn params_text(p: &Params, integers: bool) -> String {
    let sym = |a: usize| if integers { a.to_string() } else { SYMBOLS[a..a + 1].to_string() };
    let mut t = String::from("# made by the energies test\n\n");
    for i in 0..N {
        for j in i + 1..N {
            for a in 0..Q {
                for b in 0..Q {
                    writeln!(t, "J {i} {j} {} {} {:?}", sym(a), sym(b), p.j[i][j][a][b]).unwrap();
                }
            }
            t += "   # next pair\n";
        }
    }
    t += "\n# fields\n";
    for i in 0..N {
        for a in 0..Q {
            writeln!(t, "h {i} {} {:?}", sym(a), p.h[i][a]).unwrap();
        }
    }
    t
}

/// Sequences, their names, and the FASTA text.
fn alignment(rng: &mut ChaCha8Rng, count: usize) -> (Vec<Vec<usize>>, Vec<String>, String) {
    let seqs: Vec<Vec<usize>> =
        (0..count).map(|_| (0..N).map(|_| rng.random_range(0..Q)).collect()).collect();
    let names: Vec<String> = (0..count).map(|k| format!("seq_{k}/1-{N}")).collect();
    let mut fasta = String::new();
    for (name, s) in names.iter().zip(&seqs) {
        let letters: String = s.iter().map(|&a| SYMBOLS.as_bytes()[a] as char).collect();
        writeln!(fasta, ">{name} some description\n{letters}").unwrap();
    }
    (seqs, names, fasta)
}

/// The printed table as (name, energy) rows, after checking its header.
fn rows(stdout: &[u8]) -> Vec<(String, f64)> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("name\tenergy"), "{text}");
    lines
        .map(|l| {
            let (name, e) = l.split_once('\t').unwrap_or_else(|| panic!("not `name<TAB>energy`: {l}"));
            (name.to_string(), e.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {l}")))
        })
        .collect()
}

#[test]
fn printed_energies_are_the_direct_sum_over_fields_and_couplings() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    let p = params(&mut rng);
    let (seqs, names, fasta) = alignment(&mut rng, 40);
    let letters = dir.path().join("params.dat");
    let integers = dir.path().join("params_old.dat");
    let msa = dir.path().join("seqs.fasta");
    std::fs::write(&letters, params_text(&p, false)).unwrap();
    std::fs::write(&integers, params_text(&p, true)).unwrap();
    std::fs::write(&msa, fasta).unwrap();
    let out_file = dir.path().join("seqs_energies.fasta");

    let out = taustar(&[
        "energies",
        "--model",
        letters.to_str().unwrap(),
        "--msa",
        msa.to_str().unwrap(),
        "--alphabet",
        "rna",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = rows(&out.stdout);
    assert_eq!(printed.len(), seqs.len());
    for ((name, e), (want_name, s)) in printed.iter().zip(names.iter().zip(&seqs)) {
        assert_eq!(name, want_name);
        let want = direct_energy(&p, s);
        assert!((e - want).abs() <= 1e-12 * (1.0 + want.abs()), "{name}: printed {e}, direct sum {want}");
    }

    // adabmDCA's layout: `>name | DCAenergy: E` with 3 decimals, then the sequence.
    let written = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 2 * seqs.len());
    for (k, s) in seqs.iter().enumerate() {
        let want = format!(">{} | DCAenergy: {:.3}", names[k], direct_energy(&p, s));
        assert_eq!(lines[2 * k], want);
        let letters: String = s.iter().map(|&a| SYMBOLS.as_bytes()[a] as char).collect();
        assert_eq!(lines[2 * k + 1], letters);
    }

    // The same model in the old integer-state format (q from --alphabet) gives the same energies.
    let out = taustar(&[
        "energies",
        "--model",
        integers.to_str().unwrap(),
        "--msa",
        msa.to_str().unwrap(),
        "--alphabet",
        SYMBOLS,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows(&out.stdout), printed);
}

#[test]
fn bad_inputs_to_energies_give_one_error_naming_the_file_line_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    let p = params(&mut rng);
    let (_, _, fasta) = alignment(&mut rng, 3);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let model = write("params.dat", &params_text(&p, false));
    let msa = write("seqs.fasta", &fasta);
    // A mixed-format model: line 3 is the first `J` line (after a comment and a blank line).
    let mixed = params_text(&p, false).replacen("J 0 1 - A", "J 0 1 0 A", 1);
    let mixed = write("mixed.dat", &mixed);
    let short = write("short.fasta", ">s1\nACG\n");
    let bad_symbol = write("symbol.fasta", ">s1\nACGUACG\n>s2\nACGTACG\n");
    let missing = dir.path().join("nothing.dat").to_str().unwrap().to_string();

    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--model", &mixed, "--msa", &msa, "--alphabet", "rna"],
            format!(
                "error: {mixed} line 4: letter a `0`: the file writes states as letters of the alphabet \
                 (adabmDCA's format) (from line 3), this one as integer states"
            ),
        ),
        (
            vec!["--model", &model, "--msa", &short, "--alphabet", "rna"],
            format!("error: --msa {short}: sequences of 3 columns, but the model --model has 7 sites"),
        ),
        (
            vec!["--model", &model, "--msa", &bad_symbol, "--alphabet", "rna"],
            format!("error: {bad_symbol} line 4: sequence `s2` column 4: `T`"),
        ),
        (
            vec!["--model", &model, "--msa", &msa, "--alphabet", "dna"],
            format!("error: {model} line 7: letter b `U`: expected a letter of the alphabet `-ACGT`"),
        ),
        (vec!["--model", &missing, "--msa", &msa], format!("error: cannot read {missing}:")),
        (vec!["--model", &model, "--msa", &msa, "--alphabet", "ab"], "error: --alphabet ab:".to_string()),
    ];
    for (args, want) in cases {
        let mut all = vec!["energies"];
        all.extend(&args);
        let out = taustar(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.starts_with(&want), "{args:?}:\n  got  {stderr}\n  want {want}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }

    // --help teaches the formula, the formats and an example.
    let out = taustar(&["energies", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in
        ["−Σ_i h_i(s_i)", "name<TAB>energy", "integer states", "taustar energies --model", "DCAenergy"]
    {
        assert!(help.contains(needle), "--help lacks `{needle}`:\n{help}");
    }
}
