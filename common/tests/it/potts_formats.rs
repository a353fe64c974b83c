//! Potts formats: adabmDCA's parameter files (exact round trip, adabmDCA's layout, refusal of
//! both triangles and of every malformed line) and alignments (FASTA, A2M, Stockholm) with
//! sequence reweighting, on hand-made files with answers worked out by hand and on the Pfam
//! seed alignments of Debian's `hmmer-examples` package.

use std::path::{Path, PathBuf};
use std::time::Instant;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use taustar_science::potts::{
    read_alignment, read_alignment_file, read_params, read_params_file, reweight, write_params,
    write_params_file, Alignment, AlignmentFormat, Alphabet, PottsError, PottsModel, SequenceWeights,
};

fn parse(text: &str, alphabet: &Alphabet) -> Result<PottsModel, PottsError> {
    read_params(text.as_bytes(), alphabet, "params.dat")
}

fn written(model: &PottsModel, alphabet: &Alphabet) -> String {
    let mut out = Vec::new();
    write_params(model, alphabet, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A model with every field and coupling set from `rng`, as a fitted model has.
fn random_model(n: usize, q: usize, rng: &mut ChaCha8Rng) -> PottsModel {
    let mut m = PottsModel::zeros(n, q).unwrap();
    for i in 0..n {
        for a in 0..q {
            m.set_field(i, a, rng.random_range(-3.0..3.0));
        }
        for j in i + 1..n {
            for a in 0..q {
                for b in 0..q {
                    m.set_coupling(i, j, a, b, rng.random_range(-0.5..0.5));
                }
            }
        }
    }
    m
}

/// `model` in adabmDCA's layout with float32 values printed as pandas prints them (9
/// significant digits), the way `save_params` of github:spqb/adabmDCApy writes a bmDCA model.
fn adabmdca_text(model: &PottsModel, alphabet: &Alphabet) -> String {
    let (n, q) = (model.n(), model.q());
    let sym = |a: usize| alphabet.symbol(a as u8);
    let mut out = String::new();
    for i in 0..n {
        for j in i + 1..n {
            for a in 0..q {
                for b in 0..q {
                    let v = model.coupling(i, j, a, b) as f32;
                    out += &format!("J {i} {j} {} {} {v:?}\n", sym(a), sym(b));
                }
            }
        }
    }
    for i in 0..n {
        for a in 0..q {
            out += &format!("h {i} {} {:?}\n", sym(a), model.field(i, a) as f32);
        }
    }
    out
}

fn alphabets() -> impl Strategy<Value = Alphabet> {
    prop_oneof![Just(Alphabet::protein()), Just(Alphabet::rna()), Just(Alphabet::dna())]
}

/// Finite values of every kind: zeros of both signs, tiny, huge, ordinary.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        -5.0..5.0f64,
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        (-300..300i32).prop_map(|e| 1.5f64.powi(e)),
    ]
}

/// A model of 1–4 sites with some pairs entirely zero (left out of the file).
fn models() -> impl Strategy<Value = (Alphabet, PottsModel)> {
    (alphabets(), 1usize..=4).prop_flat_map(|(alphabet, n)| {
        let q = alphabet.q();
        let pairs = n * (n - 1) / 2;
        (
            Just(alphabet),
            prop::collection::vec(value(), n * q),
            prop::collection::vec((any::<bool>(), prop::collection::vec(value(), q * q)), pairs),
        )
            .prop_map(move |(alphabet, fields, blocks)| {
                let mut m = PottsModel::zeros(n, q).unwrap();
                for (k, &h) in fields.iter().enumerate() {
                    m.set_field(k / q, k % q, h);
                }
                let mut blocks = blocks.into_iter();
                for i in 0..n {
                    for j in i + 1..n {
                        let (coupled, block) = blocks.next().unwrap();
                        for (k, &v) in block.iter().enumerate() {
                            m.set_coupling(i, j, k / q, k % q, if coupled { v } else { 0.0 });
                        }
                    }
                }
                (alphabet, m)
            })
    })
}

/// Sites, letters and the order of the lines of a written file are adabmDCA's: all `J i j a b`
/// lines with i < j in the order (i, j, a, b), then every `h i a` in the order (i, a).
fn assert_adabmdca_layout(text: &str, model: &PottsModel, alphabet: &Alphabet) {
    let (n, q) = (model.n(), model.q());
    let mut expected = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if !model.pair_is_zero(i, j) {
                for a in 0..q {
                    for b in 0..q {
                        expected.push(format!(
                            "J {i} {j} {} {}",
                            alphabet.symbol(a as u8),
                            alphabet.symbol(b as u8)
                        ));
                    }
                }
            }
        }
    }
    for i in 0..n {
        for a in 0..q {
            expected.push(format!("h {i} {}", alphabet.symbol(a as u8)));
        }
    }
    let keys: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f[..f.len() - 1].join(" ")
        })
        .collect();
    assert_eq!(keys, expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Written then read, every field and coupling comes back bit for bit (zero pairs as
    /// zeros), and the file has adabmDCA's layout.
    #[test]
    fn adabmdca_format_round_trips_exactly((alphabet, model) in models()) {
        let text = written(&model, &alphabet);
        assert_adabmdca_layout(&text, &model, &alphabet);
        let back = parse(&text, &alphabet).unwrap();
        prop_assert_eq!(back.n(), model.n());
        prop_assert_eq!(back.q(), model.q());
        let bits = |m: &PottsModel| m.fields().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&model));
        prop_assert!(back.couplings() == model.couplings());
        prop_assert_eq!(written(&back, &alphabet), text);
    }

    /// adabmDCA's older files write states as 0-based integers; they mean the same letters.
    #[test]
    fn integer_states_read_as_the_alphabet_letters((alphabet, model) in models()) {
        let text = written(&model, &alphabet);
        prop_assert_eq!(parse(&integer_states(&text, &alphabet), &alphabet).unwrap(), model);
    }

    /// `#` comment lines and whitespace-only lines inserted anywhere change nothing, in
    /// either state format.
    #[test]
    fn comments_and_blank_lines_anywhere_round_trip(
        (alphabet, model) in models(),
        inserts in prop::collection::vec((any::<prop::sample::Index>(), comment_or_blank()), 0..12),
        integers in any::<bool>(),
    ) {
        let text = written(&model, &alphabet);
        let text = if integers { integer_states(&text, &alphabet) } else { text };
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        for (at, extra) in inserts {
            let k = at.index(lines.len() + 1);
            lines.insert(k, extra);
        }
        let with_comments = lines.join("\n") + "\n";
        let back = parse(&with_comments, &alphabet).unwrap();
        let bits = |m: &PottsModel| m.fields().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&model));
        prop_assert!(back.couplings() == model.couplings());
        prop_assert_eq!(written(&back, &alphabet), written(&model, &alphabet));
    }

    /// No byte string makes the parameter reader panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_parameter_reader(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = read_params(&bytes[..], &Alphabet::rna(), "fuzz.dat");
    }

    /// Nor does any one token of a valid file replaced by a hostile one; and the error, if
    /// any, names a line of the file or the file as a whole.
    #[test]
    fn hostile_tokens_in_a_valid_file_give_errors_not_panics(
        line in 0usize..40, field in 0usize..6, token in hostile_token(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let text = written(&random_model(3, 5, &mut rng), &Alphabet::rna());
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let k = line % lines.len();
        let mut f: Vec<String> = lines[k].split(' ').map(String::from).collect();
        let at = field % f.len();
        f[at] = token;
        lines[k] = f.join(" ");
        if let Err(e) = parse(&(lines.join("\n") + "\n"), &Alphabet::rna()) {
            prop_assert!(e.line().is_none_or(|l| l as usize <= lines.len()), "{e}");
            prop_assert!(e.to_string().starts_with("params.dat"), "{e}");
        }
    }

    /// No byte string makes the alignment readers panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_alignment_readers(
        bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'>'), Just(b'\n'), Just(b'A'), Just(b'.')], 0..300),
        stockholm_header in any::<bool>(),
    ) {
        let mut text = if stockholm_header { b"# STOCKHOLM 1.0\n".to_vec() } else { Vec::new() };
        text.extend(&bytes);
        for format in [AlignmentFormat::Fasta, AlignmentFormat::A2m, AlignmentFormat::Stockholm] {
            let _ = read_alignment(&text[..], format, &Alphabet::protein(), "fuzz");
        }
    }
}

/// A written file with every state as its 0-based integer (adabmDCA's old format).
fn integer_states(text: &str, alphabet: &Alphabet) -> String {
    text.lines()
        .map(|l| {
            let f: Vec<String> = l
                .split(' ')
                .enumerate()
                .map(|(k, t)| match alphabet.state(t.as_bytes()[0]) {
                    Some(s) if is_state_field(l, k) => s.to_string(),
                    _ => t.to_string(),
                })
                .collect();
            f.join(" ") + "\n"
        })
        .collect()
}

/// A `#` comment (possibly indented, possibly looking like a parameter line) or a line of
/// whitespace only.
fn comment_or_blank() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ \t\r]{1,4}",
        "[ \t]{0,3}#[ -~]{0,30}",
        Just("# J 0 1 A A 1".to_string()),
        Just("#h 0 - 5".to_string()),
    ]
}

/// Whether field k of a written line is a state (a or b of `J`, a of `h`).
fn is_state_field(line: &str, k: usize) -> bool {
    if line.starts_with('J') {
        k == 3 || k == 4
    } else {
        k == 2
    }
}

fn hostile_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-1".to_string()),
        Just("".to_string()),
        Just("J".to_string()),
        Just("h".to_string()),
        Just("a".to_string()),
        Just("5".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967295".to_string()),
        Just("779".to_string()),
        Just("1e400".to_string()),
        Just("0 0".to_string()),
        Just("\u{e9}".to_string()),
        any::<u32>().prop_map(|x| x.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
    ]
}

#[test]
fn adabmdca_layout_file_with_both_triangles_is_refused() {
    let alphabet = Alphabet::protein();
    let model = random_model(4, 21, &mut ChaCha8Rng::seed_from_u64(1));
    let upper = adabmdca_text(&model, &alphabet);
    // The file as adabmDCA writes it reads (values are float32, as adabmDCA's).
    let read = parse(&upper, &alphabet).unwrap();
    assert_eq!((read.n(), read.q()), (4, 21));
    let as_written = format!("{:?}", model.coupling(1, 2, 7, 5) as f32).parse::<f64>().unwrap();
    assert_eq!(read.coupling(2, 1, 5, 7), as_written);

    // A dump of the full symmetric matrix: every `J i j a b v` also as `J j i b a v`, the
    // lower triangle after the upper one. adabmDCA's readers would add the two (doubling J).
    let (j_lines, h_lines): (Vec<&str>, Vec<&str>) = upper.lines().partition(|l| l.starts_with('J'));
    let mirrored: Vec<String> = j_lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            format!("J {} {} {} {} {}", f[2], f[1], f[4], f[3], f[5])
        })
        .collect();
    let both = [j_lines.join("\n"), mirrored.join("\n"), h_lines.join("\n")].join("\n") + "\n";
    let e = parse(&both, &alphabet).unwrap_err();
    let first_mirror_line = j_lines.len() as u64 + 1;
    match &e {
        PottsError::DuplicateCoupling { line, first, i, j, a, b, transposed, .. } => {
            assert_eq!((*line, *first), (first_mirror_line, 1));
            assert_eq!((*i, *j, *a, *b, *transposed), (0, 1, '-', '-', true));
        }
        other => panic!("expected a duplicate coupling, got {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "params.dat line {first_mirror_line}: pair (0, 1) letters (-, -) listed twice (first at line 1)"
        )),
        "{msg}"
    );
    assert!(msg.contains("`J 1 0 - -` is the same coupling as `J 0 1 - -`"), "{msg}");

    // Interleaved (each lower-triangle line right after its upper one): refused at line 2.
    let interleaved: String = j_lines
        .iter()
        .zip(&mirrored)
        .flat_map(|(u, l)| [*u, l.as_str()])
        .chain(h_lines.iter().copied())
        .map(|l| format!("{l}\n"))
        .collect();
    let e = parse(&interleaved, &alphabet).unwrap_err();
    assert!(matches!(e, PottsError::DuplicateCoupling { line: 2, first: 1, transposed: true, .. }), "{e}");

    // The lower triangle alone is the same model, read transposed.
    let lower = [mirrored.join("\n"), h_lines.join("\n")].join("\n") + "\n";
    assert_eq!(parse(&lower, &alphabet).unwrap(), read);
}

#[test]
fn a_coupling_listed_twice_names_both_lines() {
    let alphabet = Alphabet::protein();
    let mut text = String::from("J 3 7 A C 0.5\nJ 1 2 - - 1\nJ 3 7 A D 0.5\nJ 2 3 Y Y 1\n");
    text += "J 3 7 A C -0.5\n";
    let e = parse(&text, &alphabet).unwrap_err();
    assert_eq!(e.to_string(), "params.dat line 5: pair (3, 7) letters (A, C) listed twice (first at line 1)");
    assert_eq!(e.line(), Some(5));
    // In an integer-state file, `J 3 7 1 2` is `J 3 7 A C`; twice is refused the same way,
    // also across comments and blank lines (the line numbers count them).
    let e = parse("J 3 7 1 2 0.5\n# note\n\nJ 3 7 1 2 0.5\n", &alphabet).unwrap_err();
    assert_eq!(e.to_string(), "params.dat line 4: pair (3, 7) letters (A, C) listed twice (first at line 1)");
    let e = parse("J 7 3 2 1 0.5\nJ 3 7 1 2 0.5\n", &alphabet).unwrap_err();
    assert!(matches!(e, PottsError::DuplicateCoupling { line: 2, first: 1, transposed: false, .. }), "{e}");
    let e = parse("J 3 7 1 2 0.5\nJ 7 3 2 1 0.5\n", &alphabet).unwrap_err();
    assert!(matches!(e, PottsError::DuplicateCoupling { line: 2, first: 1, transposed: true, .. }), "{e}");
    let e = parse("h 0 1 1\nh 0 0 1\nh 0 1 2\n", &alphabet).unwrap_err();
    assert_eq!(e.to_string(), "params.dat line 3: field of site 0 letter A listed twice (first at line 1)");
    let e = parse("h 0 A 1\nh 0 - 1\n  # comment\nh 0 A 2\n", &alphabet).unwrap_err();
    assert_eq!(e.to_string(), "params.dat line 4: field of site 0 letter A listed twice (first at line 1)");
}

/// A file writes its states as letters or as integers, never both: the second kind is an
/// error naming the line, the token and the line that set the file's kind.
#[test]
fn letters_and_integer_states_in_one_file_are_refused() {
    let alphabet = Alphabet::protein();
    let e = parse("J 3 7 A C 0.5\nJ 3 7 1 2 0.5\n", &alphabet).unwrap_err();
    assert_eq!(
        e.to_string(),
        "params.dat line 2: letter a `1`: the file writes states as letters of the alphabet (adabmDCA's \
         format) (from line 1), this one as integer states 0..q-1 (adabmDCA's old format): one or the \
         other for the whole file"
    );
    assert_eq!(e.line(), Some(2));
    let e = parse("# integers\nh 0 0 1\nh 0 A 1\n", &alphabet).unwrap_err();
    assert!(
        e.to_string().starts_with("params.dat line 3: state a `A`: the file writes states as integer states"),
        "{e}"
    );
    assert!(e.to_string().contains("(from line 2)"), "{e}");
    // Within one line.
    let e = parse("J 0 1 A 3 1\n", &alphabet).unwrap_err();
    assert!(
        e.to_string().starts_with("params.dat line 1: letter b `3`: the file writes states as letters"),
        "{e}"
    );
    let e = parse("J 0 1 3 A 1\n", &alphabet).unwrap_err();
    assert!(
        e.to_string().starts_with("params.dat line 1: state b `A`: the file writes states as integer"),
        "{e}"
    );
}

/// An integer-state file takes q from the alphabet given: a state ≥ q is refused, and so is a
/// complete file with fewer states than the alphabet (adabmDCA would infer that smaller q).
#[test]
fn integer_states_take_q_from_the_alphabet() {
    let rna = Alphabet::rna();
    let fields = |n: usize, q: usize| -> String {
        (0..n).flat_map(|i| (0..q).map(move |a| format!("h {i} {a} 0.{a}\n"))).collect()
    };
    // q = 5 of the RNA alphabet: states 0..4 are -ACGU.
    let m = parse(&format!("J 0 1 4 1 0.25\n{}", fields(2, 5)), &rna).unwrap();
    assert_eq!((m.n(), m.q()), (2, 5));
    assert_eq!(m.coupling(0, 1, 4, 1), 0.25);
    assert_eq!(m.field(1, 3), 0.3);
    let e = parse(&format!("J 0 1 5 1 0.25\n{}", fields(2, 5)), &rna).unwrap_err();
    assert_eq!(
        e.to_string(),
        "params.dat line 1: state a `5`: expected an integer state 0..4 of the alphabet `-ACGU` (q = 5); \
         an integer-state file needs the alphabet the model was trained with (--alphabet)"
    );
    // A model of 21 states read with the 5-letter alphabet.
    let e = parse(&fields(2, 21), &rna).unwrap_err();
    assert!(e.to_string().starts_with("params.dat line 6: state a `5`"), "{e}");
    // A whole model of 4 states (0..3) read with the 5-letter alphabet.
    let e = parse(&fields(3, 4), &rna).unwrap_err();
    assert_eq!(
        e.to_string(),
        "params.dat: integer states go up to 3 only (q = 4, as adabmDCA's load_params_oldformat would \
         infer from the `h` lines), but the alphabet `-ACGU` has q = 5: pass the alphabet the model \
         was trained with (--alphabet)"
    );
    // A truncated file is reported as truncated, not as another alphabet.
    let truncated: String = fields(3, 5).lines().take(12).map(|l| format!("{l}\n")).collect();
    let e = parse(&truncated, &rna).unwrap_err();
    assert!(e.to_string().starts_with("params.dat: no line `h 2 C value` (site 2 of 0..3)"), "{e}");
}

/// `#` comments and whitespace-only lines are skipped wherever they stand (adabmDCA's
/// `load_params` skips them too), and line numbers in errors still count them.
#[test]
fn comments_and_blank_lines_are_skipped_anywhere() {
    let dna = Alphabet::dna();
    let text = "# adabmDCA 1.0.0\n#\n\n   \t\nJ 0 1 A C 0.5\n  # between\n\r\nh 0 - 0\n#h 0 A 99\nh 0 A 1\n\
                h 0 C 0\nh 0 G 0\nh 0 T 0\n\n# end\n";
    let mut full = text.to_string();
    for a in "-ACGT".chars() {
        full += &format!("h 1 {a} 0.5\n");
    }
    full += "# trailing comment without newline";
    let m = parse(&full, &dna).unwrap();
    assert_eq!((m.n(), m.q()), (2, 5));
    assert_eq!(m.coupling(0, 1, 1, 2), 0.5);
    assert_eq!(m.field(0, 1), 1.0, "the commented-out `#h 0 A 99` is not read");
    let e = parse(&(full.clone() + "\nJ 0 1 A C 1\n"), &dna).unwrap_err();
    assert_eq!(e.line(), Some(full.lines().count() as u64 + 1), "{e}");
    // A comment must start the line: a trailing `#` is refused.
    let e = parse("h 0 A 1 # one\n", &dna).unwrap_err();
    assert!(e.to_string().starts_with("params.dat line 1: 5 fields after the tag, expected 3"), "{e}");
}

#[test]
fn missing_couplings_are_zero_and_sites_come_from_the_fields() {
    let alphabet = Alphabet::rna();
    let mut text = String::from("J 0 2 A U 0.25\r\n\n  J 2 1 G - -1.5e-3 \n");
    for i in 0..3 {
        for a in alphabet.symbols().chars() {
            text += &format!("h\t{i}\t{a}\t{}\n", i as f64 + 0.5);
        }
    }
    let m = parse(&text, &alphabet).unwrap();
    assert_eq!((m.n(), m.q()), (3, 5));
    assert_eq!(m.coupling(0, 2, 1, 4), 0.25);
    assert_eq!(m.coupling(2, 0, 4, 1), 0.25);
    assert_eq!(m.coupling(1, 2, 0, 3), -1.5e-3);
    let nonzero = m.couplings().iter().filter(|&&x| x != 0.0).count();
    assert_eq!(nonzero, 4, "two couplings, each in both triangles");
    assert!(m.pair_is_zero(0, 1));
    assert_eq!(m.field(2, 4), 2.5);
    // E(s) = −Σ_i h_i(s_i) − Σ_{i<j} J_ij(s_i, s_j), the fields summing to 0.5 + 1.5 + 2.5:
    // s = (A, -, U) has J_02(A, U) = 0.25, s = (-, -, G) has J_12(-, G) = −0.0015.
    assert_eq!(m.energy(&[1, 0, 4]), -4.5 - 0.25);
    assert!((m.energy(&[0, 0, 3]) - (-4.5 + 1.5e-3)).abs() < 1e-15);
    // Written back: the zero pair (0, 1) is left out, the other two written whole.
    let out = written(&m, &alphabet);
    assert_eq!(out.lines().filter(|l| l.starts_with('J')).count(), 2 * 25);
    assert!(out.contains("J 0 2 A U 0.25\n") && out.contains("J 1 2 - G -0.0015\n"), "{out}");
}

/// Every malformed file gives one error that names the file, the line and what is wrong.
#[test]
fn bad_parameter_files_give_one_clear_error() {
    let dna = Alphabet::dna();
    let fields = |n: usize| -> String {
        (0..n).flat_map(|i| "-ACGT".chars().map(move |a| format!("h {i} {a} 0.1\n"))).collect()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            "j 0 1 A A 1\n".into(),
            "params.dat line 1: line tag `j`: expected `J i j a b value` or `h i a value`",
        ),
        ("# comment\n".into(), "params.dat: no field lines"),
        (
            "% comment\n".into(),
            "params.dat line 1: line tag `%`: expected `J i j a b value` or `h i a value`",
        ),
        ("H 0 A 1\n".into(), "params.dat line 1: line tag `H`"),
        ("J 0 1 A 1\n".into(), "params.dat line 1: 4 fields after the tag, expected 5: `J i j a b value`"),
        ("h 0 A 1 2\n".into(), "params.dat line 1: 4 fields after the tag, expected 3"),
        (
            "J 0 1 A U 1\n".into(),
            "params.dat line 1: letter b `U`: expected a letter of the alphabet `-ACGT`",
        ),
        ("J 0 1 a A 1\n".into(), "params.dat line 1: letter a `a`"),
        ("J 0 1 5 A 1\n".into(), "params.dat line 1: state a `5`: expected an integer state 0..4"),
        ("J 0 1 A AA 1\n".into(), "params.dat line 1: letter b `AA`: expected a letter of the alphabet"),
        ("J 0 1 -1 A 1\n".into(), "params.dat line 1: letter a `-1`"),
        ("J -1 1 A A 1\n".into(), "params.dat line 1: site i `-1`: expected a 0-based site index below 3276"),
        ("J 0 3276 A A 1\n".into(), "params.dat line 1: site j `3276`"),
        ("h 99999999999999999999 A 1\n".into(), "params.dat line 1: site i `99999999999999999999`"),
        ("J 2 2 A A 1\n".into(), "params.dat line 1: site j `2`: equals site i"),
        ("h 0 A nan\n".into(), "params.dat line 1: value `nan`: expected a finite number"),
        ("h 0 A -inf\n".into(), "params.dat line 1: value `-inf`: expected a finite number"),
        ("h 0 A 1e999\n".into(), "params.dat line 1: value `1e999`: expected a finite number"),
        ("h 0 A 0,5\n".into(), "params.dat line 1: value `0,5`: expected a number"),
        ("h 0 A \u{e9}\n".into(), "params.dat line 1: value `\u{e9}`: expected a number"),
        ("".into(), "params.dat: no field lines `h i a value`"),
        ("\n \n".into(), "params.dat: no field lines"),
        ("J 0 1 A A 1\n".into(), "params.dat: no field lines"),
        (
            format!("J 0 3 A A 1\n{}", fields(3)),
            "params.dat line 1: site `3`: beyond the 3 sites that have fields (`h` lines for sites 0..2)",
        ),
        (fields(3).replace("h 1 G 0.1\n", ""), "params.dat: no line `h 1 G value` (site 1 of 0..3)"),
        (
            fields(3).lines().take(12).map(|l| format!("{l}\n")).collect(),
            "params.dat: no line `h 2 C value` (site 2 of 0..3)",
        ),
    ];
    for (text, expected) in cases {
        let e = parse(&text, &dna).expect_err(&text);
        assert!(e.to_string().starts_with(expected), "{text:?}:\n  got  {e}\n  want {expected}");
    }
    // Not UTF-8 at all.
    let e = read_params(&b"h 0 A \xff\xfe\n"[..], &dna, "bin.dat").unwrap_err();
    assert!(e.to_string().starts_with("bin.dat line 1: value `\u{fffd}\u{fffd}`"), "{e}");
    // A file that does not exist names its path.
    let e = read_params_file(Path::new("/nonexistent/params.dat"), &dna).unwrap_err();
    assert!(e.to_string().starts_with("cannot read /nonexistent/params.dat:"), "{e}");
    // Writing with an alphabet of another size.
    let m = PottsModel::zeros(2, 21).unwrap();
    assert!(write_params(&m, &dna, &mut Vec::new()).unwrap_err().to_string().contains("q = 21"));
}

#[test]
fn parameter_files_round_trip_on_disk() {
    let alphabet = Alphabet::protein();
    let model = random_model(5, 21, &mut ChaCha8Rng::seed_from_u64(3));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("potts-{}.dat", std::process::id()));
    write_params_file(&model, &alphabet, &path).unwrap();
    let back = read_params_file(&path, &alphabet);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.unwrap(), model);
}

// ---------------------------------------------------------------------------------------
// Alignments.

fn msa(text: &str, format: AlignmentFormat) -> Result<Alignment, PottsError> {
    read_alignment(text.as_bytes(), format, &Alphabet::protein(), "aln")
}

fn letters(a: &Alignment, m: usize) -> String {
    let p = Alphabet::protein();
    a.sequence(m).iter().map(|&s| p.symbol(s)).collect()
}

#[test]
fn fasta_drops_insert_columns_and_names_unknown_symbols() {
    // HMMER's aligned FASTA: columns 3 and 6 hold only lower case and `.` (inserts).
    let afa = ">s1 first sequence\nAC.DE\nkF\n\n>s2\nAGkD-.Y\n>s3\nA-.DEaW\n";
    let a = msa(afa, AlignmentFormat::Fasta).unwrap();
    assert_eq!((a.num_sequences(), a.length(), a.q()), (3, 5, 21));
    assert_eq!(a.names(), ["s1", "s2", "s3"]);
    assert_eq!([letters(&a, 0), letters(&a, 1), letters(&a, 2)], ["ACDEF", "AGD-Y", "A-DEW"]);

    let cases = [
        (">s1\nACD\n>s2\nAXD\n", "aln line 4: sequence `s2` column 2: `X` is not in the alphabet `-ACDEFGHIKLMNPQRSTVWY`"),
        (">s1\nAC\nD\n>s2\nAC\nD*\n", "aln line 4: sequence `s2` has 4 columns, but `s1` has 3 (if lower case"),
        (">s1\nACD\n>s2\nAcD\n", "aln line 4: sequence `s2` column 2: `c` is lower case (an insert) in a match column"),
        (">s1\nA.D\n>s2\nACD\n", "aln line 2: sequence `s1` column 2: `.` is not in the alphabet `-ACDEFGHIKLMNPQRSTVWY`: `.` is a gap of insert columns in A2M and Stockholm"),
        ("ACD\n>s1\nACD\n", "aln line 1: `ACD` before the first `>` header"),
        ("", "aln: no sequences (read as fasta)"),
        (">s1\nacd\n>s2\n..d\n", "aln: no match columns"),
        (">s1\n\u{e9}\n", "aln line 2: sequence `s1` column 1: `\u{fffd}` is not in the alphabet"),
    ];
    for (text, expected) in cases {
        let e = msa(text, AlignmentFormat::Fasta).unwrap_err();
        assert!(e.to_string().starts_with(expected), "{text:?}:\n  got  {e}\n  want {expected}");
    }
}

#[test]
fn a2m_inserts_are_per_sequence() {
    let a2m = ">a\nAC-D\n>b\nAkkC.-D\n>c\n.A\nCyDD\n";
    let a = msa(a2m, AlignmentFormat::A2m).unwrap();
    assert_eq!(a.length(), 4);
    assert_eq!([letters(&a, 0), letters(&a, 1), letters(&a, 2)], ["AC-D", "AC-D", "ACDD"]);
    let e = msa(">a\nACD\n>b\nAC\n", AlignmentFormat::A2m).unwrap_err();
    assert_eq!(
        e.to_string(),
        "aln line 3: sequence `b` has 2 match positions (upper case and `-`), but `a` has 3"
    );
    let e = msa(">a\nACD\n>b\nACB\n", AlignmentFormat::A2m).unwrap_err();
    assert!(
        e.to_string().starts_with("aln line 4: sequence `b` column 3: `B` is not in the alphabet"),
        "{e}"
    );
}

#[test]
fn stockholm_joins_blocks_and_reads_dots_as_gaps() {
    // Pfam style: upper case, `.` for every gap, two interleaved blocks, markup to skip.
    let sto = "# STOCKHOLM 1.0\n#=GF ID  test\n#=GS x/1-5 AC P1\n\nx/1-5  AC.D\ny/2-6  A.ED\n#=GR x/1-5 SS ...\n#=GC SS_cons ....\n\nx/1-5  EF\ny/2-6  .F\n//\n";
    let a = msa(sto, AlignmentFormat::Stockholm).unwrap();
    assert_eq!(a.names(), ["x/1-5", "y/2-6"]);
    assert_eq!([letters(&a, 0), letters(&a, 1)], ["AC-DEF", "A-ED-F"]);

    // HMMER style with an RF line: RF gaps are inserts whatever the case; `.` elsewhere a gap.
    let rf = "# STOCKHOLM 1.0\ns1 ACkD.\ns2 A.-DE\n#=GC RF xx.xx\n//\n";
    let a = msa(rf, AlignmentFormat::Stockholm).unwrap();
    assert_eq!([letters(&a, 0), letters(&a, 1)], ["ACD-", "A-DE"]);
    // Without the RF line the third column holds `k` and `-`: a match column.
    let e = msa(&rf.replace("#=GC RF xx.xx\n", ""), AlignmentFormat::Stockholm).unwrap_err();
    assert!(e.to_string().starts_with("aln line 2: sequence `s1` column 3: `k` is lower case (an insert) in a match column: other sequences"), "{e}");

    let cases = [
        ("s1 ACD\n//\n", "aln line 1: `s1 ACD`: expected `# STOCKHOLM 1.0` first"),
        ("# STOCKHOLM 1.0\ns1 ACD\n", "aln: no `//` line ending the alignment (truncated file?)"),
        (
            "# STOCKHOLM 1.0\ns1 ACD\n//\n# STOCKHOLM 1.0\n",
            "aln line 4: `# STOCKHOLM 1.0` after the `//` that ends the alignment at line 3",
        ),
        ("# STOCKHOLM 1.0\ns1 AC D\n//\n", "aln line 2: `s1 AC D`: expected `name aligned-sequence`"),
        ("# STOCKHOLM 1.0\ns1 ACD\ns2 AC\n//\n", "aln line 3: sequence `s2` has 2 columns, but `s1` has 3\n"),
        (
            "# STOCKHOLM 1.0\ns1 ACD\n#=GC RF xx\n//\n",
            "aln line 3: the `#=GC RF` line has 2 columns, the sequences 3",
        ),
        (
            "# STOCKHOLM 1.0\ns1 ACD\n\ns1 AZ\n//\n",
            "aln line 4: sequence `s1` column 5: `Z` is not in the alphabet",
        ),
        ("# STOCKHOLM 1.0\n//\n", "aln: no sequences (read as stockholm)"),
        ("", "aln: empty: no `# STOCKHOLM 1.0` line"),
    ];
    for (text, expected) in cases {
        let e = msa(text, AlignmentFormat::Stockholm).unwrap_err();
        assert!((e.to_string() + "\n").starts_with(expected), "{text:?}:\n  got  {e}\n  want {expected}");
    }
    // `.` as a gap needs a gap symbol in the alphabet.
    let no_gap = Alphabet::new("ACGT").unwrap();
    let e =
        read_alignment(&b"# STOCKHOLM 1.0\ns A.\nt AC\n//\n"[..], AlignmentFormat::Stockholm, &no_gap, "x")
            .unwrap_err();
    assert!(e.to_string().contains("`.` (a gap) but the alphabet `ACGT` has no gap `-`"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Reweighting.

#[test]
fn reweighting_counts_identity_strictly_above_the_threshold() {
    // L = 10, θ = 0.8: a pair is close with 9 or 10 equal columns (identity > 0.8).
    let fasta = "\
>s0\nAAAAAAAAAA\n>s1\nAAAAAAAAAC\n>s2\nAAAAAAAACC\n>s3\nCCCCCCCCCC\n>s4\nCCCCCCCCCC\n\
>g5\n------AAAA\n>g6\n------AAAC\n";
    let a = msa(fasta, AlignmentFormat::Fasta).unwrap();
    let w = reweight(&a, 0.8).unwrap();
    // s0~s1 (9), s1~s2 (9), s0,s2 not (8: identity exactly 0.8), s3=s4, g5~g6 (9, gaps match).
    assert_eq!(w.cluster_sizes, [2, 3, 2, 2, 2, 2, 2]);
    let expected = [0.5, 1.0 / 3.0, 0.5, 0.5, 0.5, 0.5, 0.5];
    assert_eq!(w.weights, expected);
    assert!((w.neff - (3.0 + 1.0 / 3.0)).abs() < 1e-15, "{}", w.neff);
    assert_eq!(w.threshold, Some(0.8));
    // θ = 0.7: s0~s2 too (8 > 7).
    assert_eq!(reweight(&a, 0.7).unwrap().cluster_sizes, [3, 3, 3, 2, 2, 2, 2]);
    // θ = 0: any shared column (s0 and g5 share none with s3, s4).
    assert_eq!(reweight(&a, 0.0).unwrap().cluster_sizes, [5, 7, 7, 5, 5, 5, 7]);
    let u = SequenceWeights::uniform(&a);
    assert_eq!((u.neff, u.threshold), (7.0, None));
    assert!(reweight(&a, 1.0).is_err());
}

#[test]
fn reweighting_does_not_depend_on_the_number_of_threads() {
    let a = random_alignment(300, 40, 5, 0.7, 11);
    let w = reweight(&a, 0.8).unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let w1 = one.install(|| reweight(&a, 0.8).unwrap());
    assert_eq!(w, w1);
    // Brute force over all pairs.
    let brute: Vec<u32> = a
        .sequences()
        .map(|x| {
            a.sequences().filter(|y| x.iter().zip(*y).filter(|(p, q)| p == q).count() * 10 > 8 * 40).count()
                as u32
        })
        .collect();
    assert_eq!(w.cluster_sizes, brute);
}

/// `m` sequences of length `l`: mutants (each column redrawn with probability `1 − keep`) of
/// a few ancestors, so that clusters form at DCA thresholds.
fn random_alignment(m: usize, l: usize, ancestors: usize, keep: f64, seed: u64) -> Alignment {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let roots: Vec<Vec<u8>> =
        (0..ancestors).map(|_| (0..l).map(|_| rng.random_range(0..21)).collect()).collect();
    let mut data = Vec::with_capacity(m * l);
    for _ in 0..m {
        let root = &roots[rng.random_range(0..ancestors)];
        data.extend(root.iter().map(|&s| if rng.random_bool(keep) { s } else { rng.random_range(0..21) }));
    }
    Alignment::new((0..m).map(|k| format!("r{k}")).collect(), data, l, 21).unwrap()
}

// ---------------------------------------------------------------------------------------
// Pfam seed alignments from Debian's hmmer-examples.

const HMMER_EXAMPLES: &str = "/usr/share/doc/hmmer/examples";

/// A Stockholm file of hmmer-examples with its shape and M_eff at some thresholds, computed
/// independently (a few lines of Python with exact fractions, adabmDCA's rule).
struct Seed {
    path: &'static str,
    alphabet: fn() -> Alphabet,
    m: usize,
    l: usize,
    first: (&'static str, &'static str),
    neff: &'static [(f64, f64)],
}

const SEEDS: &[Seed] = &[
    // Pfam PF00041 seed: upper case, `.` gaps, no RF line.
    Seed {
        path: "tutorial/fn3.sto",
        alphabet: Alphabet::protein,
        m: 98,
        l: 117,
        first: ("LAR_DROME/418-503", "SAP-RNVQVRTL---SSSTMVITWEPPE--"),
        neff: &[(0.8, 98.0), (0.5, 61.29589664721244), (0.4, 10.71297309539922), (0.3, 1.207869284475854)],
    },
    // Pfam PF00069 seed.
    Seed {
        path: "tutorial/Pkinase.sto",
        alphabet: Alphabet::protein,
        m: 38,
        l: 419,
        first: ("CDC15_YEAST/25-272", "YHLKQVIGRGSYGVV--YKAINKHTDQVVA"),
        neff: &[(0.8, 38.0), (0.4, 1.237254318196464), (0.3, 1.0)],
    },
    // Pfam PF02162 seed (7 sequences of 5 columns).
    Seed {
        path: "testsuite/XYPPX.sto",
        alphabet: Alphabet::protein,
        m: 7,
        l: 5,
        first: ("OPSD_SEPOF/451-455", "AAPPQ"),
        neff: &[(0.8, 7.0), (0.6, 61.0 / 30.0), (0.4, 1.152380952380952)],
    },
    // Dfam DF0000629 seed: DNA, with an RF line.
    Seed {
        path: "tutorial/MADE1.sto",
        alphabet: Alphabet::dna,
        m: 100,
        l: 80,
        first: ("H.sapiens_6.1/113836283-113836209", "TTAGATTGATGCAAAAGTAATTGCTGTTTT"),
        neff: &[(0.8, 19.608173072229864)],
    },
    // Easel's tRNA test alignment: RNA, RF line, lower-case inserts and `.` in match columns.
    Seed {
        path: "easel/testsuite/trna-5.stk",
        alphabet: Alphabet::rna,
        m: 5,
        l: 71,
        first: ("tRNA1", "GCGGAUUUAGCUCAGU"),
        neff: &[(0.8, 5.0)],
    },
];

#[test]
fn pfam_seed_alignments_from_hmmer_examples() {
    let root = Path::new(HMMER_EXAMPLES);
    if !root.join("tutorial/fn3.sto").is_file() {
        eprintln!(
            "SKIPPED pfam_seed_alignments_from_hmmer_examples: {HMMER_EXAMPLES} not found; \
             install Debian's hmmer-examples (apt-get install -y hmmer-examples) to run it"
        );
        return;
    }
    for seed in SEEDS {
        let path = root.join(seed.path);
        let alphabet = (seed.alphabet)();
        assert_eq!(AlignmentFormat::from_path(&path), Some(AlignmentFormat::Stockholm));
        let a = read_alignment_file(&path, AlignmentFormat::Stockholm, &alphabet)
            .unwrap_or_else(|e| panic!("{}: {e}", seed.path));
        assert_eq!((a.num_sequences(), a.length()), (seed.m, seed.l), "{}", seed.path);
        assert_eq!(a.names()[0], seed.first.0, "{}", seed.path);
        let prefix: String =
            a.sequence(0).iter().take(seed.first.1.len()).map(|&s| alphabet.symbol(s)).collect();
        assert_eq!(prefix, seed.first.1, "{}", seed.path);
        for &(theta, neff) in seed.neff {
            let w = reweight(&a, theta).unwrap();
            assert!((w.neff - neff).abs() < 1e-9, "{} at {theta}: M_eff {} vs {neff}", seed.path, w.neff);
        }
        eprintln!(
            "{}: M = {}, L = {}, M_eff(0.8) = {:.3}",
            seed.path,
            a.num_sequences(),
            a.length(),
            reweight(&a, 0.8).unwrap().neff
        );
    }
    // A seed read with the wrong alphabet names the first residue outside it.
    let e = read_alignment_file(&root.join("tutorial/fn3.sto"), AlignmentFormat::Stockholm, &Alphabet::dna())
        .unwrap_err();
    assert!(matches!(e, PottsError::Symbol { .. }), "{e}");
    assert!(e.to_string().contains("fn3.sto line "), "{e}");
}

// ---------------------------------------------------------------------------------------
// Throughput (run with --ignored; numbers for the record, not assertions).

#[test]
#[ignore = "timing, run by hand: cargo test -p taustar-common --test it potts -- --ignored --nocapture"]
fn potts_formats_throughput() {
    // Mutants of 50 ancestors keeping 85% of columns: related pairs are ~86% identical, so
    // both early exits (close, and far) are taken.
    for (m, l) in [(5000, 100), (5000, 300)] {
        let a = random_alignment(m, l, 50, 0.85, 5);
        let t = Instant::now();
        let w = reweight(&a, 0.8).unwrap();
        let s = t.elapsed().as_secs_f64();
        let pairs = (m * (m - 1) / 2) as f64;
        eprintln!(
            "reweight M = {m}, L = {l}: {s:.3} s, {:.1} M pairs/s ({:.2} G nominal column comparisons/s), \
             M_eff = {:.1}, {} threads",
            pairs / s / 1e6,
            pairs * l as f64 / s / 1e9,
            w.neff,
            rayon::current_num_threads()
        );
    }
    // The largest protein truth of docs/spec.md: 300 sites, 19.7 million `J` lines.
    let alphabet = Alphabet::protein();
    let model = random_model(300, 21, &mut ChaCha8Rng::seed_from_u64(9));
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("potts-300-{}.dat", std::process::id()));
    let t = Instant::now();
    write_params_file(&model, &alphabet, &path).unwrap();
    let wrote = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let t = Instant::now();
    let back = read_params_file(&path, &alphabet);
    let s = t.elapsed().as_secs_f64();
    std::fs::remove_file(&path).unwrap();
    assert!(back.unwrap() == model);
    let lines = 300 * 299 / 2 * 441 + 300 * 21;
    eprintln!(
        "params n = 300, q = 21: {lines} lines, {:.0} MB; write {wrote:.1} s, read {s:.1} s ({:.1} M lines/s)",
        bytes as f64 / 1e6,
        lines as f64 / s / 1e6
    );
}
