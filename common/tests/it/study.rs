//! Study files → grid points → cells (docs/spec.md §6): every accepted form,
//! every rejected one (with key, value and line), key stability across spellings, orders
//! and extensions, and the shipped study files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use taustar_common::study::{Study, StudyError, MAX_CELLS};
use taustar_common::{CellSettings, CurveOutput, DataSize, FitMode, FitSpec, TruthSpec};

fn parse(src: &str) -> Study {
    match Study::from_toml_str(src) {
        Ok(s) => s,
        Err(e) => panic!("study should parse, got: {e}\n---\n{src}"),
    }
}

fn two_level(gap: &str, samples: &str) -> String {
    format!(
        "name = \"t\"\nseed = 3\nreplicates = 2\n[truth]\nkind = \"two-level\"\nstates = 100\n\
         low_states = 20\ngap = {gap}\n[data]\nsamples = {samples}\n"
    )
}

fn gaps(study: &Study) -> Vec<f64> {
    let mut v: Vec<f64> = study
        .grid_points()
        .iter()
        .map(|p| match p.truth {
            TruthSpec::TwoLevel { gap, .. } => gap,
            TruthSpec::Ising2d { temperature, .. } => temperature,
            TruthSpec::PottsRandom { coupling_strength, .. } => coupling_strength,
            TruthSpec::PottsFile { .. } => 0.0,
        })
        .collect();
    v.dedup();
    v
}

fn samples(study: &Study) -> BTreeSet<u64> {
    study
        .grid_points()
        .iter()
        .map(|p| match p.data {
            DataSize::Samples(m) => m,
            DataSize::Mu(_) => panic!("expected samples"),
        })
        .collect()
}

fn keys(study: &Study) -> BTreeSet<String> {
    study.cells().map(|c| c.key().0).collect()
}

fn studies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../studies")
}

// ---------------------------------------------------------------- accepted forms

#[test]
fn a_number_sweeps_one_value() {
    let s = parse(&two_level("2.5", "40"));
    assert_eq!(gaps(&s), vec![2.5]);
    assert_eq!(samples(&s), BTreeSet::from([40]));
    assert_eq!(s.grid_points().len(), 1);
    assert_eq!(s.cell_count(), 2);
}

#[test]
fn a_list_is_sorted_and_deduplicated() {
    let s = parse(&two_level("[5.0, 2.5, 5, 3.25]", "[100, 10, 100]"));
    assert_eq!(gaps(&s), vec![2.5, 3.25, 5.0]);
    assert_eq!(samples(&s), BTreeSet::from([10, 100]));
}

#[test]
fn a_step_range_includes_its_end_and_gives_exact_decimals() {
    let s = parse(&two_level("{ from = 2.5, to = 9.5, step = 0.25 }", "40"));
    let g = gaps(&s);
    assert_eq!(g.len(), 29);
    assert_eq!(g[1], 2.75);
    assert_eq!(g[28], 9.5);
    // 0.1-steps are the classic floating-point trap: 0.1 + 2·0.1 = 0.30000000000000004.
    let s = parse(&two_level("{ from = 0.1, to = 0.3, step = 0.1 }", "40"));
    assert_eq!(gaps(&s), vec![0.1, 0.2, 0.3]);
}

#[test]
fn a_linear_count_range_spaces_evenly() {
    let s = parse(&two_level("{ from = 1, to = 2, count = 5 }", "40"));
    assert_eq!(gaps(&s), vec![1.0, 1.25, 1.5, 1.75, 2.0]);
    let s = parse(&two_level("{ from = 1, to = 2, count = 3, scale = \"linear\" }", "40"));
    assert_eq!(gaps(&s), vec![1.0, 1.5, 2.0]);
}

#[test]
fn a_log_count_range_on_samples_gives_rounded_distinct_integers() {
    let s = parse(&two_level("3", "{ from = 10, to = 10000, count = 4, scale = \"log\" }"));
    assert_eq!(samples(&s), BTreeSet::from([10, 100, 1000, 10000]));
    // 2..10 in 20 log steps: many values round to the same integer.
    let s = parse(&two_level("3", "{ from = 2, to = 10, count = 20, scale = \"log\" }"));
    assert_eq!(samples(&s), (2..=10).collect());
}

#[test]
fn a_list_may_mix_numbers_and_ranges_as_a_union() {
    let s = parse(&two_level(
        "[{ from = 2, to = 3, step = 0.5 }, 2.5, 7, { from = 4, to = 4, count = 1 }]",
        "40",
    ));
    assert_eq!(gaps(&s), vec![2.0, 2.5, 3.0, 4.0, 7.0]);
}

#[test]
fn integral_floats_are_accepted_on_integer_axes() {
    let s = parse(&two_level("3", "[1e3, 2.0e1]"));
    assert_eq!(samples(&s), BTreeSet::from([20, 1000]));
}

#[test]
fn mu_is_an_alternative_data_axis() {
    let src = "name = \"m\"\nseed = 1\n[truth]\nkind = \"two-level\"\nstates = 10\nlow_states = 2\ngap = 3\n\
               [data]\nmu = { from = -1, to = 1, step = 0.5 }\n";
    let s = parse(src);
    let mus: Vec<f64> = s
        .grid_points()
        .iter()
        .map(|p| match p.data {
            DataSize::Mu(mu) => mu,
            DataSize::Samples(_) => panic!("expected mu"),
        })
        .collect();
    assert_eq!(mus, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    assert!(s.grid_points()[2].key().contains(";mu=0;"));
}

#[test]
fn ising_lattices_temperatures_modes_and_penalties_sweep() {
    let src = r#"
name = "ising"
seed = 9
[truth]
kind = "ising2d"
lattice = [[4, 4], [3, 3], [4, 4]]
temperature = [2.0, { from = 3.0, to = 3.1, step = 0.05 }]
[data]
samples = 50
[fit]
mode = ["paper", "mle", "paper"]
l2 = [0.01, 0]
max_iter = 500
coupling_cap = 15.5
"#;
    let s = parse(src);
    // 2 lattices × 4 temperatures × 1 M × 2 modes × 2 penalties.
    assert_eq!(s.grid_points().len(), 32);
    assert_eq!(s.cell_count(), 32);
    let first = &s.grid_points()[0];
    assert_eq!(first.truth, TruthSpec::Ising2d { rows: 3, cols: 3, temperature: 2.0 });
    assert_eq!(first.fit.mode, FitMode::Mle);
    assert_eq!(first.fit.l2, 0.0);
    // Fit axes are innermost: mle/l2=0, mle/l2=0.01, paper/l2=0, paper/l2=0.01.
    assert_eq!(s.grid_points()[1].fit.l2, 0.01);
    assert_eq!(s.grid_points()[2].fit.mode, FitMode::Paper);
    let temps: Vec<f64> = s.grid_points()[..16]
        .iter()
        .step_by(4)
        .map(|p| match p.truth {
            TruthSpec::Ising2d { temperature, .. } => temperature,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(temps, vec![2.0, 3.0, 3.05, 3.1]);
    assert_eq!(s.settings.max_iter, 500);
    assert_eq!(s.settings.coupling_cap, 15.5);
    assert_eq!(s.grid_points()[0].key(), "ising2d;lattice=3x3;temperature=2;samples=50;fit=mle;l2=0");
}

#[test]
fn a_single_lattice_may_be_written_as_a_pair() {
    let src = "name = \"i\"\nseed = 1\n[truth]\nkind = \"ising2d\"\nlattice = [2, 3]\ntemperature = 2.5\n\
               [data]\nsamples = 10\n";
    let s = parse(src);
    assert_eq!(s.grid_points()[0].truth, TruthSpec::Ising2d { rows: 2, cols: 3, temperature: 2.5 });
}

#[test]
fn defaults_are_the_contract_defaults() {
    let s = parse(
        "name = \"d\"\nseed = 0\n[truth]\nkind = \"two-level\"\nstates = 10\nlow_states = 2\ngap = 1\n[data]\nsamples = 5\n",
    );
    assert_eq!(s.replicates, 1);
    // Two-level studies recompute curves on demand by default; everything else is the
    // settings' default.
    assert_eq!(s.settings, CellSettings { curves: CurveOutput::Recompute, ..CellSettings::default() });
    assert_eq!(s.grid_points()[0].fit, taustar_common::FitSpec::default());
}

#[test]
fn tau_settings_are_read() {
    let src = two_level("3", "40") + "[tau]\ngrid = { from = 0.5, to = 2, count = 4 }\nbounds = [0.1, 10]\n";
    let s = parse(&src);
    assert_eq!(s.settings.tau_grid.from, 0.5);
    assert_eq!(s.settings.tau_grid.to, 2.0);
    assert_eq!(s.settings.tau_grid.count, 4);
    assert_eq!(s.settings.tau_bounds, (0.1, 10.0));
}

// ---------------------------------------------------------------- errors

/// Every error names the key path, the value and the 1-based line.
#[track_caller]
fn assert_error(src: &str, key: &str, value: &str, line: Option<usize>) -> StudyError {
    let err = match Study::from_toml_str(src) {
        Ok(_) => panic!("expected an error about {key}, the study parsed:\n{src}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert_eq!(err.key(), Some(key), "wrong key in: {msg}");
    assert_eq!(err.line(), line, "wrong line in: {msg}");
    assert!(msg.contains(key), "message lacks the key {key}: {msg}");
    assert!(msg.contains(value), "message lacks the value {value}: {msg}");
    if let Some(l) = line {
        assert!(msg.starts_with(&format!("line {l}: ")), "message lacks the line {l}: {msg}");
    }
    err
}

#[test]
fn an_out_of_range_value_names_key_value_and_line() {
    // gap is on line 8 of two_level().
    let e = assert_error(&two_level("-1.5", "40"), "truth.gap", "-1.5", Some(8));
    assert!(e.to_string().contains("> 0"));
    assert_error(&two_level("[3, 0]", "40"), "truth.gap", "0", Some(8));
    assert_error(&two_level("nan", "40"), "truth.gap", "NaN", Some(8));
}

#[test]
fn low_states_must_be_below_states() {
    let src = two_level("3", "40").replace("low_states = 20", "low_states = [10, 100]");
    let e = assert_error(&src, "truth.low_states", "100", Some(7));
    assert!(e.to_string().contains("states = 100"), "{e}");
}

#[test]
fn two_level_samples_need_at_least_two() {
    assert_error(&two_level("3", "[1, 10]"), "data.samples", "1", Some(10));
    // A value a range produced is shown with the range it came from.
    let e = assert_error(&two_level("3", "{ from = 1, to = 8, count = 4 }"), "data.samples", "1", Some(10));
    assert!(e.to_string().contains("from = 1, to = 8"), "{e}");
}

#[test]
fn integer_axes_refuse_fractions_and_negatives() {
    assert_error(&two_level("3", "2.5"), "data.samples", "2.5", Some(10));
    assert_error(&two_level("3", "-5"), "data.samples", "-5", Some(10));
    let src = two_level("3", "40").replace("states = 100", "states = 1e12");
    assert_error(&src, "truth.states", "1000000000000", Some(6));
    assert_error(&two_level("3", "{ from = 2, to = 10, step = 0.5 }"), "data.samples.step", "0.5", Some(10));
}

#[test]
fn bad_ranges_are_refused_with_a_reason() {
    assert_error(&two_level("{ from = 2, to = 3, step = 0 }", "40"), "truth.gap.step", "0", Some(8));
    assert_error(&two_level("{ from = 2, to = 3, step = -0.25 }", "40"), "truth.gap.step", "-0.25", Some(8));
    let e =
        assert_error(&two_level("{ from = 3, to = 2, step = 0.25 }", "40"), "truth.gap", "from = 3", Some(8));
    assert!(e.to_string().contains("no values"), "{e}");
    assert_error(&two_level("{ from = 2, to = 3, count = 0 }", "40"), "truth.gap.count", "0", Some(8));
    assert_error(&two_level("{ from = 2, to = 3, count = 1 }", "40"), "truth.gap.count", "1", Some(8));
    assert_error(&two_level("{ from = 2, to = 3, count = 2.5 }", "40"), "truth.gap.count", "2.5", Some(8));
    assert_error(
        &two_level("3", "{ from = 0, to = 100, count = 5, scale = \"log\" }"),
        "data.samples.from",
        "0",
        Some(10),
    );
    assert_error(
        &two_level("{ from = 2, to = 3, step = 0.5, scale = \"log\" }", "40"),
        "truth.gap.scale",
        "\"log\"",
        Some(8),
    );
    assert_error(
        &two_level("{ from = 2, to = 3, count = 2, scale = \"ln\" }", "40"),
        "truth.gap.scale",
        "ln",
        Some(8),
    );
    assert_error(
        &two_level("{ from = 2, to = 3, step = 1, count = 2 }", "40"),
        "truth.gap",
        "step = 1",
        Some(8),
    );
    assert_error(&two_level("{ from = 2, to = 3, stp = 1 }", "40"), "truth.gap.stp", "1", Some(8));
    assert_error(&two_level("{ from = 2, to = inf, step = 1 }", "40"), "truth.gap.to", "inf", Some(8));
    assert_error(&two_level("{ from = 2, to = 3 }", "40"), "truth.gap.step", "", Some(8));
    assert_error(&two_level("[]", "40"), "truth.gap", "[]", Some(8));
    assert_error(&two_level("[[2, 3]]", "40"), "truth.gap", "[2, 3]", Some(8));
    assert_error(&two_level("\"big\"", "40"), "truth.gap", "\"big\"", Some(8));
    let e = assert_error(
        &two_level("{ from = 1, to = 1e9, step = 1e-3 }", "40"),
        "truth.gap",
        "from = 1",
        Some(8),
    );
    assert!(e.to_string().contains("per axis"), "{e}");
}

#[test]
fn unknown_keys_are_refused_where_they_are() {
    let e = assert_error(&format!("{}nmae = \"x\"\n", two_level("3", "40")), "data.nmae", "\"x\"", Some(11));
    assert!(e.to_string().contains("samples, mu"), "{e}");
    assert_error(&format!("nmae = \"x\"\n{}", two_level("3", "40")), "nmae", "\"x\"", Some(1));
    let src = two_level("3", "40").replace("gap = 3", "gap = 3\ntemperature = 2.0");
    let e = assert_error(&src, "truth.temperature", "2.0", Some(9));
    assert!(e.to_string().contains("states, low_states, gap"), "{e}");
    assert_error(&format!("{}[tau]\ngird = 1\n", two_level("3", "40")), "tau.gird", "1", Some(12));
    assert_error(
        &format!("{}[tau]\ngrid = {{ from = 0.2, to = 5, num = 3 }}\n", two_level("3", "40")),
        "tau.grid.num",
        "3",
        Some(12),
    );
}

#[test]
fn the_data_axis_is_samples_or_mu_exactly() {
    let both = two_level("3", "40") + "mu = 1.0\n";
    assert_error(&both, "data.mu", "1.0", Some(11));
    let neither = two_level("3", "40").replace("samples = 40\n", "");
    let e = assert_error(&neither, "data.samples", "", Some(9));
    assert!(matches!(e, StudyError::Missing { .. }));
}

#[test]
fn name_and_seed_are_required() {
    let src = two_level("3", "40");
    let e = assert_error(&src.replace("seed = 3\n", ""), "seed", "", None);
    assert!(e.to_string().contains("reproducible"), "{e}");
    assert_error(&src.replace("name = \"t\"\n", ""), "name", "", None);
    assert_error(&src.replace("name = \"t\"", "name = \"a b\""), "name", "\"a b\"", Some(1));
    assert_error(&src.replace("seed = 3", "seed = -3"), "seed", "-3", Some(2));
    assert_error(&src.replace("seed = 3", "seed = 1.5"), "seed", "1.5", Some(2));
    assert_error(&src.replace("replicates = 2", "replicates = 0"), "replicates", "0", Some(3));
    assert_error(
        &src.replace("[truth]\nkind = \"two-level\"", "[truth]\nkind = \"potts\""),
        "truth.kind",
        "potts",
        Some(5),
    );
    assert_error(&src.replace("[truth]\nkind = \"two-level\"\n", "[truth]\n"), "truth.kind", "", Some(4));
}

#[test]
fn a_seed_may_use_the_full_u64_range() {
    let s = parse(&two_level("3", "40").replace("seed = 3", "seed = 0xffff_ffff_ffff_ffff"));
    assert_eq!(s.seed, u64::MAX);
}

#[test]
fn fit_options_are_checked() {
    let ising = |fit: &str| {
        format!(
            "name = \"i\"\nseed = 1\n[truth]\nkind = \"ising2d\"\nlattice = [3, 3]\ntemperature = 2\n\
             [data]\nsamples = 10\n[fit]\n{fit}\n"
        )
    };
    assert_error(&ising("mode = \"fast\""), "fit.mode", "fast", Some(10));
    assert_error(&ising("mode = [\"mle\", 3]"), "fit.mode", "3", Some(10));
    assert_error(&ising("l2 = -0.1"), "fit.l2", "-0.1", Some(10));
    assert_error(&ising("l2 = [0, 0.1, -1]"), "fit.l2", "-1", Some(10));
    assert_error(&ising("max_iter = 0"), "fit.max_iter", "0", Some(10));
    assert_error(&ising("max_iter = -1"), "fit.max_iter", "-1", Some(10));
    assert_error(&ising("coupling_cap = 0"), "fit.coupling_cap", "0", Some(10));
    assert_error(&ising("speed = 1"), "fit.speed", "1", Some(10));
    // Fit modes and penalties do not exist for the two-level fit; sweeping them would
    // compute identical cells under different keys.
    let tl = two_level("3", "40");
    assert_error(&format!("{tl}[fit]\nmode = \"paper\"\n"), "fit.mode", "paper", Some(12));
    assert_error(&format!("{tl}[fit]\nl2 = [0, 0.5]\n"), "fit.l2", "0.5", Some(12));
    // ...but the default spelled out is fine.
    parse(&format!("{tl}[fit]\nmode = \"mle\"\nl2 = 0\n"));
}

#[test]
fn lattice_errors_name_the_lattice() {
    let ising = |lattice: &str| {
        format!(
            "name = \"i\"\nseed = 1\n[truth]\nkind = \"ising2d\"\nlattice = {lattice}\ntemperature = 2\n\
             [data]\nsamples = 10\n"
        )
    };
    let e = assert_error(&ising("[5, 5]"), "truth.lattice", "5x5", Some(5));
    assert!(e.to_string().contains("exact-enumeration limit"), "{e}");
    assert_error(&ising("[4]"), "truth.lattice", "[4]", Some(5));
    assert_error(&ising("[[3, 3], [0, 4]]"), "truth.lattice", "0x4", Some(5));
    assert_error(&ising("[-1, 4]"), "truth.lattice", "-1", Some(5));
    assert_error(&ising("\"4x4\""), "truth.lattice", "\"4x4\"", Some(5));
}

#[test]
fn tau_settings_are_checked() {
    let tl = two_level("3", "40");
    assert_error(
        &format!("{tl}[tau]\ngrid = {{ from = 0.2, to = 5, count = 0 }}\n"),
        "tau.grid",
        "0.2:5:0",
        Some(12),
    );
    assert_error(
        &format!("{tl}[tau]\ngrid = {{ from = 0.2, to = 5, count = 10001 }}\n"),
        "tau.grid",
        "0.2:5:10001",
        Some(12),
    );
    assert_error(&format!("{tl}[tau]\ngrid = {{ from = 0.2, to = 5 }}\n"), "tau.grid.count", "", Some(12));
    assert_error(&format!("{tl}[tau]\nbounds = [1, 0.5]\n"), "tau.bounds", "1:0.5", Some(12));
    assert_error(&format!("{tl}[tau]\nbounds = [1, 2, 3]\n"), "tau.bounds", "[1, 2, 3]", Some(12));
    assert_error(&format!("{tl}[tau]\ncurves = \"some\"\n"), "tau.curves", "\"some\"", Some(12));
    assert_error(&format!("{tl}[tau]\ncurves = false\n"), "tau.curves", "false", Some(12));
}

#[test]
fn tau_curves_default_to_recompute_for_two_level_and_all_for_ising_and_none_keeps_no_curve() {
    let tl = two_level("3", "40");
    assert_eq!(parse(&tl).settings.curves, CurveOutput::Recompute);
    assert!(parse(&tl).defaulted.curves);
    let ising = "name = \"i\"\nseed = 1\n[truth]\nkind = \"ising2d\"\nlattice = [2, 2]\ntemperature = 2.5\n\
                 [data]\nsamples = 10\n";
    assert_eq!(parse(ising).settings.curves, CurveOutput::All);
    assert_eq!(
        parse(&format!("{ising}[tau]\ncurves = \"recompute\"\n")).settings.curves,
        CurveOutput::Recompute
    );
    let spelled = parse(&format!("{tl}[tau]\ncurves = \"recompute\"\n"));
    assert_eq!(spelled.settings.curves, CurveOutput::Recompute);
    assert!(!spelled.defaulted.curves);
    assert_eq!(parse(&format!("{tl}[tau]\ncurves = \"all\"\n")).settings.curves, CurveOutput::All);
    let none = parse(&format!("{tl}[tau]\ncurves = \"none\"\n"));
    assert_eq!(none.settings.curves, CurveOutput::None);
    // The same cell with and without its curve: every other field bit for bit.
    let cell = none.cells().next().unwrap();
    let without = taustar_common::run_cell(&cell).unwrap();
    let mut with_spec = cell.clone();
    with_spec.settings.curves = CurveOutput::All;
    let mut with = taustar_common::run_cell(&with_spec).unwrap();
    assert!(without.curve.is_empty());
    assert_eq!(with.curve.len(), 71);
    with.curve.clear();
    assert_eq!(format!("{with:?}"), format!("{without:?}"));
}

#[test]
fn too_many_cells_is_refused_and_says_why() {
    let src = two_level("{ from = 1, to = 1000, step = 1 }", "{ from = 2, to = 1001, step = 1 }")
        .replace("replicates = 2", "replicates = 1001");
    let e = assert_error(&src, "replicates", "1001", Some(3));
    assert!(e.to_string().contains(&MAX_CELLS.to_string()), "{e}");
    let src = two_level("{ from = 1, to = 2000, step = 1 }", "{ from = 2, to = 2001, step = 1 }");
    let e = assert_error(&src, "grid", "2000 gaps × 2000 data sizes", None);
    assert!(e.to_string().contains("grid points"), "{e}");
}

#[test]
fn toml_syntax_errors_carry_the_line() {
    let err = Study::from_toml_str("name = \"x\"\nseed = 1\n[truth\n").unwrap_err();
    assert!(matches!(err, StudyError::Syntax { .. }), "{err}");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.to_string().starts_with("line 3: not valid TOML"), "{err}");
    let err = Study::from_toml_str("name = \"x\"\nname = \"y\"\n").unwrap_err();
    assert_eq!(err.line(), Some(2), "{err}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("taustar-study-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, two_level("-1", "40")).unwrap();
    let err = Study::from_path(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 8: truth.gap = -1"), "{msg}");
    assert_eq!(err.line(), Some(8));
    let missing = Study::from_path(&dir.join("absent.toml")).unwrap_err();
    assert!(missing.to_string().contains("absent.toml"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- keys, order, cells

#[test]
fn spelling_does_not_change_keys() {
    let spellings = [
        "[2.5, 2.75, 3.0]",
        "[3, 2.750, 2.5, 2.5]",
        "{ from = 2.5, to = 3.0, step = 0.25 }",
        "{ from = 2.5, to = 3, count = 3 }",
        "[{ from = 2.5, to = 2.75, step = 0.25 }, 3e0]",
        "[250e-2, 0.275e1, 3]",
    ];
    let reference = keys(&parse(&two_level(spellings[0], "[10, 40]")));
    assert_eq!(reference.len(), 3 * 2 * 2);
    assert!(reference.contains("two-level;states=100;low_states=20;gap=2.75;samples=40;fit=mle;l2=0;r=1"));
    for s in &spellings[1..] {
        assert_eq!(keys(&parse(&two_level(s, "[40, 10]"))), reference, "spelling {s}");
    }
}

#[test]
fn cells_follow_grid_points_with_replicates_consecutive() {
    let s = parse(&two_level("[3, 4]", "[10, 20]").replace("replicates = 2", "replicates = 3"));
    let cells: Vec<_> = s.cells().collect();
    assert_eq!(cells.len() as u64, s.cell_count());
    assert_eq!(cells.len(), 12);
    for (i, c) in cells.iter().enumerate() {
        assert_eq!(c.point, s.grid_points()[i / 3]);
        assert_eq!(c.replicate, (i % 3) as u32);
        assert_eq!(c.study_seed, 3);
        assert_eq!(Some(c), s.cell(i as u64).as_ref());
    }
    assert_eq!(s.cell(12), None);
    // Truth axes outermost, data inside.
    assert_eq!(s.grid_points()[1].data, DataSize::Samples(20));
    assert!(matches!(s.grid_points()[2].truth, TruthSpec::TwoLevel { gap, .. } if gap == 4.0));
}

#[test]
fn parsing_is_deterministic() {
    let src = std::fs::read_to_string(studies_dir().join("paper-fig3.toml")).unwrap();
    let a = parse(&src);
    let b = parse(&src);
    assert_eq!(a, b);
    assert!(a.cells().zip(b.cells()).all(|(x, y)| x == y && x.key() == y.key()));
    let distinct: BTreeSet<String> = a.cells().map(|c| c.key().0).collect();
    assert_eq!(distinct.len() as u64, a.cell_count());
}

#[test]
fn the_fingerprint_covers_seed_and_settings_only() {
    let base = parse(&two_level("3", "40"));
    let extended = parse(
        &two_level("[3, 4]", "[40, 80]")
            .replace("name = \"t\"", "name = \"other\"")
            .replace("replicates = 2", "replicates = 9"),
    );
    assert_eq!(base.settings_fingerprint(), extended.settings_fingerprint());
    let reseeded = parse(&two_level("3", "40").replace("seed = 3", "seed = 4"));
    assert_ne!(base.settings_fingerprint(), reseeded.settings_fingerprint());
    let retau = parse(&format!("{}[tau]\nbounds = [0.01, 50]\n", two_level("3", "40")));
    assert_ne!(base.settings_fingerprint(), retau.settings_fingerprint());
    let reiter = parse(&format!("{}[fit]\nmax_iter = 9\n", two_level("3", "40")));
    assert_ne!(base.settings_fingerprint(), reiter.settings_fingerprint());
    // Defaults spelled out are the same settings.
    let spelled = parse(&format!(
        "{}[fit]\nmax_iter = 15000\nrel_tol = 1e-5\ncoupling_cap = 20\n[tau]\ngrid = {{ from = 0.2, to = 5, count = 70 }}\nbounds = [0.01, 100]\n",
        two_level("3", "40")
    ));
    assert_eq!(base.settings_fingerprint(), spelled.settings_fingerprint());
    let all = parse(&format!("{}[tau]\ncurves = \"all\"\n", two_level("3", "40")));
    assert_ne!(base.settings_fingerprint(), all.settings_fingerprint());
    assert!(!all.settings_fingerprint().contains("tau.curves"), "all: as before the key existed");
    let recompute = parse(&format!("{}[tau]\ncurves = \"recompute\"\n", two_level("3", "40")));
    assert_eq!(base.settings_fingerprint(), recompute.settings_fingerprint());
    let retol = parse(&format!("{}[fit]\nrel_tol = 1e-6\n", two_level("3", "40")));
    assert_ne!(base.settings_fingerprint(), retol.settings_fingerprint());
    assert_eq!(
        base.settings_fingerprint(),
        "settings-v1;seed=3;tau.grid=0.2..5/70;tau.bounds=0.01..100;fit.max_iter=15000;fit.coupling_cap=20;\
         fit.rel_tol=0.00001;tau.curves=recompute"
    );
    // Stores made before `tau.curves` and `fit.rel_tol` existed hold this exact string for
    // the settings they ran with (max_iter 10 000, rel_tol 1e-7, every curve kept); it must
    // not change.
    let legacy = parse(&format!(
        "{}[fit]\nmax_iter = 10000\nrel_tol = 1e-7\n[tau]\ncurves = \"all\"\n",
        two_level("3", "40")
    ));
    assert_eq!(
        legacy.settings_fingerprint(),
        "settings-v1;seed=3;tau.grid=0.2..5/70;tau.bounds=0.01..100;fit.max_iter=10000;fit.coupling_cap=20"
    );
    // A file that leaves them unset adopts a stored study's values, and only those.
    let mut adopting = parse(&two_level("3", "40"));
    let adopted = adopting.adopt_stored(&legacy.settings);
    assert_eq!(adopted, ["fit.max_iter = 10000", "fit.rel_tol = 1e-7", "tau.curves = \"all\""]);
    assert_eq!(adopting.settings_fingerprint(), legacy.settings_fingerprint());
    let mut explicit = parse(&format!("{}[fit]\nrel_tol = 1e-5\n", two_level("3", "40")));
    assert_eq!(explicit.adopt_stored(&legacy.settings), ["fit.max_iter = 10000", "tau.curves = \"all\""]);
    assert_eq!(explicit.settings.rel_tol, 1e-5);
    let none = parse(&format!("{}[tau]\ncurves = \"none\"\n", two_level("3", "40")));
    assert_ne!(base.settings_fingerprint(), none.settings_fingerprint());
}

#[test]
fn programmatic_studies_validate_and_deduplicate() {
    let file = parse(&two_level("[3, 4]", "40"));
    let mut points = file.grid_points().to_vec();
    points.push(points[0].clone());
    let s = Study::new("code", 3, 2, CellSettings::default(), points).unwrap();
    assert_eq!(s.grid_points(), file.grid_points());
    assert_eq!(keys(&s), keys(&file));
    let mut bad = file.grid_points().to_vec();
    bad[0].data = DataSize::Samples(1);
    let err = Study::new("code", 3, 2, CellSettings::default(), bad).unwrap_err();
    assert_eq!(err.key(), Some("samples"), "{err}");
    assert!(Study::new("code", 3, 0, CellSettings::default(), file.grid_points().to_vec()).is_err());
}

// ---------------------------------------------------------------- shipped study files

#[test]
fn every_study_file_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(studies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let study = Study::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(study.cells().count() as u64, study.cell_count(), "{}", path.display());
            assert_eq!(study.name, path.file_stem().unwrap().to_string_lossy(), "name matches the file");
            n += 1;
        }
    }
    assert!(n >= 4, "expected the shipped studies, found {n}");
}

#[test]
fn paper_fig2_matches_spec_section_7() {
    let s = Study::from_path(&studies_dir().join("paper-fig2.toml")).unwrap();
    let g: BTreeSet<u64> = gaps(&s).iter().map(|g| (g * 100.0).round() as u64).collect();
    assert_eq!(g, (0..29).map(|i| 250 + 25 * i).collect());
    let m = samples(&s);
    // 160 log-spaced values from 10^0.6 to 10^4.45, rounded: 147 are distinct (the comment in
    // the file says so).
    assert_eq!(m.len(), 147);
    assert_eq!(m.first(), Some(&4));
    assert_eq!(m.last(), Some(&28184));
    assert_eq!(s.replicates, 50);
    assert_eq!(s.seed, 2025);
    assert_eq!(s.cell_count(), 29 * 147 * 50);
    assert!(s
        .grid_points()
        .iter()
        .all(|p| matches!(p.truth, TruthSpec::TwoLevel { states: 100, low_states: 20, .. })));
}

#[test]
fn paper_fig3_matches_spec_section_7() {
    let s = Study::from_path(&studies_dir().join("paper-fig3.toml")).unwrap();
    let temps = gaps(&s);
    // {2.00, 2.05, …, 3.00} ∪ {3.05, 3.10, 3.15} ∪ {3.2, 3.4, …, 5.0}.
    let mut expected: Vec<f64> =
        (0..=23).map(|i| format!("{:.2}", 2.0 + 0.05 * i as f64).parse().unwrap()).collect();
    expected.extend((0..10).map(|i| format!("{:.1}", 3.2 + 0.2 * i as f64).parse::<f64>().unwrap()));
    assert_eq!(expected.len(), 34);
    let unique: Vec<f64> = {
        let mut t = temps.clone();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    };
    assert_eq!(unique, expected, "temperatures are the exact decimals of docs/spec.md §7");
    assert_eq!(
        samples(&s),
        BTreeSet::from([
            54, 71, 93, 123, 163, 215, 284, 374, 494, 652, 861, 1136, 1500, 2000, 4667, 7333, 10000
        ])
    );
    assert_eq!(s.cell_count(), 34 * 17 * 10);
    assert!(s.grid_points().iter().all(|p| p.fit.mode == FitMode::Paper));
    // The stopping constants of the authors' Fig. 3 sweep.
    assert_eq!((s.settings.rel_tol, s.settings.max_iter), (1e-5, 15_000));
    assert!(s.grid_points().iter().all(|p| matches!(p.truth, TruthSpec::Ising2d { rows: 4, cols: 4, .. })));
}

/// The appendix's κ/C panel as the authors ran it: N_s = 100, n_g = 20, M = 80, 200
/// replicates, Δ = 2:0.125:9 (57 values); the smaller toy of the single examples apart.
#[test]
fn paper_appendix_toys_match_spec_section_7() {
    let s = Study::from_path(&studies_dir().join("paper-appendix-toy.toml")).unwrap();
    let g: Vec<u64> = {
        let mut g: Vec<u64> = gaps(&s).iter().map(|g| (g * 1000.0).round() as u64).collect();
        g.sort_unstable();
        g.dedup();
        g
    };
    assert_eq!(g, (0..57).map(|i| 2000 + 125 * i).collect::<Vec<u64>>());
    assert_eq!(samples(&s), BTreeSet::from([80]));
    assert_eq!((s.replicates, s.seed), (200, 2025));
    assert_eq!(s.cell_count(), 57 * 200);
    assert!(s
        .grid_points()
        .iter()
        .all(|p| matches!(p.truth, TruthSpec::TwoLevel { states: 100, low_states: 20, .. })));

    let single = Study::from_path(&studies_dir().join("paper-appendix-toy-single-examples.toml")).unwrap();
    assert_eq!(single.name, "paper-appendix-toy-single-examples");
    let g: BTreeSet<u64> = gaps(&single).iter().map(|g| (g * 100.0).round() as u64).collect();
    assert_eq!(g, (0..29).map(|i| 200 + 25 * i).collect());
    assert!(g.contains(&200) && g.contains(&700), "the single examples' Δ = 2 and 7");
    assert_eq!(samples(&single), BTreeSet::from([10]));
    assert_eq!(single.cell_count(), 29 * 200);
    assert!(single
        .grid_points()
        .iter()
        .all(|p| matches!(p.truth, TruthSpec::TwoLevel { states: 15, low_states: 5, .. })));
}

#[test]
fn paper_fig3_mle_is_the_same_grid_with_the_converged_penalised_fit() {
    let paper = Study::from_path(&studies_dir().join("paper-fig3.toml")).unwrap();
    let mle = Study::from_path(&studies_dir().join("paper-fig3-mle.toml")).unwrap();
    assert_eq!((gaps(&mle), samples(&mle)), (gaps(&paper), samples(&paper)));
    assert_eq!((mle.cell_count(), mle.seed), (paper.cell_count(), paper.seed));
    assert!(mle.grid_points().iter().all(|p| p.fit == FitSpec { mode: FitMode::Mle, l2: 0.001 }));
}

#[test]
fn the_quick_studies_are_small() {
    let q = Study::from_path(&studies_dir().join("quick.toml")).unwrap();
    assert_eq!(q.cell_count(), 100);
    assert_eq!(samples(&q), BTreeSet::from([10, 56, 316, 1778, 10000]));
    let qi = Study::from_path(&studies_dir().join("quick-ising.toml")).unwrap();
    assert_eq!(qi.cell_count(), 16);
    assert!(qi.grid_points().iter().all(|p| matches!(p.truth, TruthSpec::Ising2d { rows: 3, cols: 3, .. })));
    // The Monte Carlo twin: the same grid points, hence the same keys, data and fits.
    let mc = Study::from_path(&studies_dir().join("quick-ising-mcmc.toml")).unwrap();
    assert_eq!(mc.grid_points(), qi.grid_points());
    assert_eq!(mc.seed, qi.seed);
    let m = mc.settings.mcmc.expect("evaluated by Monte Carlo");
    assert_eq!((m.steps, m.target_se, m.max_steps), (2000, Some(0.02), 16000));
}

// ---------------------------------------------------------------- properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A gap of k/4 written in one of several equivalent decimal spellings.
    fn spell(k: u32, style: u8) -> String {
        let x = f64::from(k) / 4.0;
        match style % 4 {
            0 => format!("{x}"),
            1 => format!("{x:.3}"),
            2 => format!("{}e-2", k * 25),
            _ => format!("{x:e}"),
        }
    }

    fn expected_keys(values: &BTreeSet<u32>, replicates: u32) -> BTreeSet<String> {
        values
            .iter()
            .flat_map(|&k| {
                (0..replicates).map(move |r| {
                    format!(
                        "two-level;states=100;low_states=20;gap={};samples=40;fit=mle;l2=0;r={r}",
                        f64::from(k) / 4.0
                    )
                })
            })
            .collect()
    }

    fn study_of(values: &[(u32, u8)], replicates: u32) -> Study {
        let list: Vec<String> = values.iter().map(|&(k, style)| spell(k, style)).collect();
        parse(
            &two_level(&format!("[{}]", list.join(", ")), "40")
                .replace("replicates = 2", &format!("replicates = {replicates}")),
        )
    }

    proptest! {
        /// Lists with any order, duplicates and spellings give the key set of their value set.
        #[test]
        fn keys_depend_only_on_the_value_set(values in prop::collection::vec((1u32..200, any::<u8>()), 1..20),
                                             replicates in 1u32..4) {
            let set: BTreeSet<u32> = values.iter().map(|v| v.0).collect();
            let study = study_of(&values, replicates);
            prop_assert_eq!(keys(&study), expected_keys(&set, replicates));
            prop_assert_eq!(study.cell_count(), set.len() as u64 * u64::from(replicates));
            prop_assert_eq!(study.cells().count() as u64, study.cell_count());
        }

        /// A step range gives the same keys as the list of its decimal values.
        #[test]
        fn a_step_range_equals_its_literal_list(from in 1u32..1000, step in 1u32..100, n in 1u32..40) {
            let value = |i: u32| f64::from(from + step * i) / 100.0;
            let range = format!(
                "{{ from = {}, to = {}, step = {} }}",
                value(0),
                value(n - 1),
                f64::from(step) / 100.0
            );
            let list: Vec<String> = (0..n).rev().map(|i| format!("{}", value(i))).collect();
            let a = parse(&two_level(&range, "40"));
            let b = parse(&two_level(&format!("[{}]", list.join(", ")), "40"));
            prop_assert_eq!(a.grid_points().len(), n as usize);
            prop_assert_eq!(keys(&a), keys(&b));
        }

        /// Extending a study (more values, more replicates) only adds cells: every old cell
        /// keeps its key, its spec and so its random stream.
        #[test]
        fn extension_only_adds_cells(old in prop::collection::vec((1u32..100, any::<u8>()), 1..10),
                                     added in prop::collection::vec((1u32..100, any::<u8>()), 0..10),
                                     r_old in 1u32..4, r_added in 0u32..3) {
            let before = study_of(&old, r_old);
            let mut all = added.clone();
            all.extend(&old);
            let after = study_of(&all, r_old + r_added);
            let after_cells: std::collections::BTreeMap<String, taustar_common::CellSpec> =
                after.cells().map(|c| (c.key().0, c)).collect();
            for cell in before.cells() {
                let same = after_cells.get(&cell.key().0);
                prop_assert_eq!(same, Some(&cell));
            }
            prop_assert_eq!(before.settings_fingerprint(), after.settings_fingerprint());
        }

        /// The parser returns (never panics) on arbitrary text.
        #[test]
        fn arbitrary_text_never_panics(src in "\\PC{0,400}") {
            let _ = Study::from_toml_str(&src);
        }

        /// ... and on arbitrary edits of valid study files, which reach deep into the format:
        /// splicing tokens anywhere (mostly syntax errors) and replacing whole values
        /// (mostly semantic errors, or other valid studies).
        #[test]
        fn mutated_study_files_never_panic(file in 0usize..4, edits in prop::collection::vec(
            (any::<bool>(), any::<prop::sample::Index>(), 0usize..12, 0usize..TOKENS.len()), 1..5)) {
            let name = ["quick.toml", "quick-ising.toml", "paper-fig2.toml", "paper-fig3.toml"][file];
            let mut src = std::fs::read_to_string(studies_dir().join(name)).unwrap();
            for (splice, at, delete, token) in edits {
                if splice {
                    let mut chars: Vec<char> = src.chars().collect();
                    let pos = at.index(chars.len() + 1);
                    let end = (pos + delete).min(chars.len());
                    chars.splice(pos..end, TOKENS[token].chars());
                    src = chars.into_iter().collect();
                } else {
                    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
                    let assignments: Vec<usize> =
                        (0..lines.len()).filter(|&i| lines[i].contains(" = ") && !lines[i].starts_with('#')).collect();
                    if let Some(&i) = assignments.get(at.index(assignments.len().max(1))) {
                        let key = lines[i].split(" = ").next().unwrap_or("").to_string();
                        lines[i] = format!("{key} = {}", TOKENS[token]);
                    }
                    src = lines.join("\n");
                }
            }
            if let Err(e) = Study::from_toml_str(&src) {
                // Errors are messages for people: never empty.
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    const TOKENS: &[&str] = &[
        "",
        "[",
        "]",
        "{",
        "}",
        "=",
        ",",
        "\"",
        "\n",
        "-",
        "0",
        "1",
        "1e400",
        "-1e-320",
        "nan",
        "inf",
        "-inf",
        "from",
        "to",
        "step",
        "count",
        "scale",
        "\"log\"",
        "1e9",
        "0.0",
        "99999999999999999999",
        "[truth]",
        "[[x]]",
        "kind",
        "\"ising2d\"",
        "\"two-level\"",
        "#",
        "'",
        ".",
        "x",
        "samples",
        "mu",
        "lattice",
        "[4, 4]",
        "[[3,3],[4,4]]",
        "replicates = 4294967295",
        "{ from = 1, to = 2, count = 1000000000 }",
        "{ from = 1e-300, to = 1e300, count = 100, scale = \"log\" }",
        "0x7fffffffffffffff",
        "{ from = 0, to = 1e15, step = 1 }",
        "1_000",
        "true",
        "1979-05-27",
        "é",
        "\u{0}",
    ];
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    for depth in [100, 10_000, 100_000] {
        let arrays = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        assert!(Study::from_toml_str(&arrays).is_err());
        let tables = format!("x = {}{}\n", "{ a = ".repeat(depth), "}".repeat(depth));
        assert!(Study::from_toml_str(&tables).is_err());
        let gap = two_level(&format!("{}3{}", "[".repeat(depth), "]".repeat(depth)), "40");
        assert!(Study::from_toml_str(&gap).is_err());
    }
}

/// The study-file example the format was first defined by is its contract: it must keep parsing.
#[test]
fn the_contract_example_parses() {
    let src = r#"
name = "paper-fig2"
seed = 2025
replicates = 50
[truth]
kind = "two-level"            # or "ising2d"
states = 100
low_states = 20
gap = { from = 2.5, to = 9.5, step = 0.25 }
# ising2d instead: lattice = [4, 4]; temperature = [2.0, 2.3, 3.0] or { from, to, step }
[data]
samples = { from = 4, to = 28000, count = 160, scale = "log" }   # integers, deduplicated
# or: mu = [ ... ]  (M = round(exp(mu + S_truth)), docs/spec.md §3)
[fit]
mode = "mle"                  # or "paper" (docs/spec.md §4.2); l2 = 0.0 (or a list to sweep)
[tau]
grid = { from = 0.2, to = 5.0, count = 70 }   # 1.0 is always added
bounds = [0.01, 100.0]
"#;
    let s = parse(src);
    assert_eq!(gaps(&s).len(), 29);
    let m = samples(&s);
    assert_eq!((m.first(), m.last()), (Some(&4), Some(&28000)));
    assert!(m.len() < 160, "log-spaced integers are deduplicated");
    assert_eq!(s.settings, CellSettings { curves: CurveOutput::Recompute, ..CellSettings::default() });
}

// ---------------------------------------------------------------- Monte Carlo evaluation

fn ising_mc(extra: &str) -> String {
    format!(
        "name = \"mc\"\nseed = 3\n[truth]\nkind = \"ising2d\"\nlattice = [3, 3]\ntemperature = 2.5\n\
         [data]\nsamples = 60\n{extra}"
    )
}

#[test]
fn eval_mcmc_takes_its_defaults_and_the_mcmc_table() {
    let exact = parse(&ising_mc(""));
    assert_eq!(exact.settings.mcmc, None);
    assert_eq!(parse(&ising_mc("[eval]\nmethod = \"exact\"\n")).settings, exact.settings);
    let mc = parse(&ising_mc("[eval]\nmethod = \"mcmc\"\n"));
    assert_eq!(mc.settings.mcmc, Some(taustar_common::McmcSettings::default()));
    assert_eq!(
        mc.settings.tau_bounds,
        taustar_common::cell::MCMC_DEFAULT_TAU_BOUNDS,
        "the ladder's default range"
    );
    assert_eq!(mc.settings.curves, CurveOutput::All);
    assert_ne!(mc.settings_fingerprint(), exact.settings_fingerprint());
    assert!(mc.settings_fingerprint().contains(";eval=mcmc;mcmc.steps=4000;"));
    let tuned = parse(&ising_mc(
        "[tau]\nbounds = [0.25, 4.0]\n[eval]\nmethod = \"mcmc\"\n[mcmc]\nsteps = 1000\nladders = 3\n\
         target_se = 0.01\nmax_steps = 16000\nmax_r_hat = 1.1\n",
    ));
    let m = tuned.settings.mcmc.clone().unwrap();
    assert_eq!(
        (m.steps, m.burn_in, m.ladders, m.max_steps),
        (1000, 100, 3, 16000),
        "burn-in defaults to a tenth"
    );
    assert_eq!((m.target_se, m.max_r_hat), (Some(0.01), 1.1));
    assert_eq!(tuned.settings.tau_bounds, (0.25, 4.0));
    assert!(tuned.settings_fingerprint().contains("mcmc.target_se=0.01"));
    assert!(!tuned.settings_fingerprint().contains("sampler"), "tempering leaves the fingerprint as it was");
    let muca = parse(&ising_mc(
        "[eval]\nmethod = \"mcmc\"\n[mcmc]\nsampler = \"multicanonical\"\nwalkers = 6\nproduction_sweeps = 5000\n",
    ));
    let m = muca.settings.mcmc.clone().unwrap();
    assert_eq!(
        (m.sampler, m.walkers, m.production_sweeps),
        (taustar_common::Sampler::Multicanonical, 6, 5000)
    );
    assert!(muca
        .settings_fingerprint()
        .ends_with(";mcmc.sampler=multicanonical;mcmc.walkers=6;mcmc.production_sweeps=5000;mcmc.min_walker_round_trips=10"));
    // Stored settings of a tempering study carry no sampler key, and read back as tempering.
    let json = serde_json::to_string(&tuned.settings).unwrap();
    assert!(!json.contains("sampler") && !json.contains("walkers"), "{json}");
    let back: taustar_common::CellSettings = serde_json::from_str(&json).unwrap();
    assert_eq!(back, tuned.settings);
    let json = serde_json::to_string(&muca.settings).unwrap();
    assert_eq!(serde_json::from_str::<taustar_common::CellSettings>(&json).unwrap(), muca.settings);
}

#[test]
fn eval_and_mcmc_errors_name_key_value_and_line() {
    assert_error(&ising_mc("[eval]\nmethod = \"gibbs\"\n"), "eval.method", "gibbs", Some(10));
    assert_error(&ising_mc("[mcmc]\nsteps = 100\n"), "mcmc", "[mcmc]", Some(9));
    assert_error(
        &ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nresamples = 50\n"),
        "mcmc.resamples",
        "50",
        Some(12),
    );
    assert_error(&ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nsteps = -5\n"), "mcmc.steps", "-5", Some(12));
    assert_error(&ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nsweeps = 5\n"), "mcmc.sweeps", "5", Some(12));
    assert_error(
        &ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nsampler = \"wang-landau\"\n"),
        "mcmc.sampler",
        "wang-landau",
        Some(12),
    );
    assert_error(
        &ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nsampler = \"multicanonical\"\nwalkers = 1\n"),
        "mcmc.walkers",
        "1",
        Some(13),
    );
    assert_error(
        &ising_mc(
            "[eval]\nmethod = \"mcmc\"\n[mcmc]\nsampler = \"multicanonical\"\nproduction_sweeps = 100\n",
        ),
        "mcmc.production_sweeps",
        "100",
        Some(13),
    );
    assert_error(
        &ising_mc("[eval]\nmethod = \"mcmc\"\n[mcmc]\nsteps = 1000\nmax_steps = 500\n"),
        "mcmc.max_steps",
        "500",
        Some(13),
    );
    assert_error(
        &ising_mc("[tau]\nbounds = [1.5, 4.0]\n[eval]\nmethod = \"mcmc\"\n"),
        "tau.bounds",
        "1.5:4",
        Some(10),
    );
    assert_error(
        &ising_mc("[tau]\ncurves = \"recompute\"\n[eval]\nmethod = \"mcmc\"\n"),
        "tau.curves",
        "recompute",
        Some(10),
    );
    let e = assert_error(
        &format!("{}[eval]\nmethod = \"mcmc\"\n", two_level("3", "40")),
        "eval.method",
        "mcmc",
        Some(12),
    );
    assert!(e.to_string().contains("ising2d"), "{e}");
}

#[test]
fn lattices_past_enumeration_need_plm_and_monte_carlo() {
    let big = |fit: &str, eval: &str| {
        format!(
            "name = \"big\"\nseed = 3\n[truth]\nkind = \"ising2d\"\nlattice = [[4, 4], [16, 16]]\n\
             temperature = 2.5\n[data]\nsamples = 1000\n[fit]\n{fit}l2 = 0.01\n{eval}"
        )
    };
    let s = parse(&big("mode = \"plm\"\n", "[eval]\nmethod = \"mcmc\"\n"));
    assert_eq!(s.grid_points().len(), 2);
    assert!(s.grid_points().iter().all(|p| p.fit.mode == FitMode::Plm));
    // The default mle fit enumerates: the 16x16 lattice is refused at its line.
    assert_error(&big("", "[eval]\nmethod = \"mcmc\"\n"), "truth.lattice", "16x16", Some(5));
    // plm without Monte Carlo evaluation.
    let e = Study::from_toml_str(&big("mode = \"plm\"\n", "")).unwrap_err();
    assert_eq!(e.key(), Some("eval.method"), "{e}");
    assert!(e.to_string().contains("16x16"), "{e}");
    // A side of 2 has no Kaufman ln Z.
    let thin =
        big("mode = \"plm\"\n", "[eval]\nmethod = \"mcmc\"\n").replace("[[4, 4], [16, 16]]", "[2, 13]");
    assert_error(&thin, "truth.lattice", "2x13", Some(5));
    let mc = parse(&big("mode = \"plm\"\n", "[eval]\nmethod = \"mcmc\"\n[mcmc]\ntruth_steps = 5000\n"));
    assert!(mc.settings_fingerprint().ends_with(";mcmc.truth_steps=5000"));
    assert!(!s.settings_fingerprint().contains("truth_steps"), "the default leaves the fingerprint alone");
}

#[test]
fn the_potts_synthetic_study_sweeps_samples_of_one_family_and_refuses_bad_values_by_line() {
    let s = Study::from_path(&studies_dir().join("potts-synthetic.toml")).unwrap();
    assert_eq!(s.cell_count(), 5 * 5);
    assert_eq!(samples(&s), [100, 316, 1000, 3162, 10000].into_iter().collect());
    let k = keys(&s);
    assert!(k.contains(
        "potts-random;sites=50;states=21;coupling_strength=0.5;field_strength=1;contact_fraction=0.1;\
         family_seed=1;samples=1000;fit=plm;l2=0.01;r=4"
    ));
    // Coupling strengths may be swept; every family value is a list or a number.
    let src = "name = \"p\"\nseed = 1\n[truth]\nkind = \"potts-random\"\nsites = 8\nstates = 4\n\
               coupling_strength = [0.5, 1.0]\nfield_strength = 1\ncontact_fraction = 0.3\nfamily_seed = [1, 2]\n\
               [data]\nsamples = 100\n[fit]\nmode = \"plm\"\n[eval]\nmethod = \"mcmc\"\n";
    assert_eq!(parse(src).grid_points().len(), 4);
    for (from, to, line, key) in [
        ("contact_fraction = 0.3", "contact_fraction = 0", 9, "truth.contact_fraction"),
        ("states = 4", "states = 40", 6, "truth.states"),
        ("sites = 8", "sites = 1", 5, "truth.sites"),
        ("field_strength = 1", "field_strength = -1", 8, "truth.field_strength"),
        ("family_seed = [1, 2]", "famly_seed = 1", 10, "famly_seed"),
    ] {
        let err = Study::from_toml_str(&src.replace(from, to)).unwrap_err().to_string();
        assert!(err.contains(&format!("line {line}")) && err.contains(key), "{to}: {err}");
    }
}
