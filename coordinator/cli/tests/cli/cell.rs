//! `taustar cell` and `taustar eval` as a user runs them: real processes, real flags.

use std::process::{Command, Output};

fn taustar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = taustar(args);
    assert!(out.status.success(), "taustar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

/// Exit non-zero with one clear line on stderr naming the flag and the value, never a panic.
fn assert_rejected(args: &[&str], must_contain: &[&str]) {
    let out = taustar(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "taustar {args:?} should fail");
    assert!(!err.contains("panicked"), "taustar {args:?} panicked: {err}");
    for s in must_contain {
        assert!(err.contains(s), "taustar {args:?}: stderr lacks {s:?}: {err}");
    }
}

const TWO_LEVEL: &[&str] = &[
    "cell",
    "--truth",
    "two-level",
    "--states",
    "100",
    "--low-states",
    "20",
    "--gap",
    "8",
    "--samples",
    "60",
];

#[test]
fn cell_json_has_the_contract_keys_and_is_deterministic() {
    let args: Vec<&str> = TWO_LEVEL.iter().copied().chain(["--seed", "5", "--json"]).collect();
    let a = taustar(&args);
    let b = taustar(&args);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout, "same seed must give identical JSON");
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    for k in [
        "tau_rev",
        "tau_fwd",
        "tau_rev_at_bound",
        "tau_fwd_at_bound",
        "dkl_rev_at_1",
        "dkl_rev_opt",
        "dkl_fwd_at_1",
        "dkl_fwd_opt",
        "tau_heat_peak",
        "tau_var",
        "low_states_hat",
        "gap_hat",
        "overlap",
        "tau_rev_closed",
        "tau_fwd_closed",
        "kappa_at_1",
        "heat_capacity_at_1",
    ] {
        assert!(v.get(k).is_some(), "missing key {k}");
    }
    let curve = v["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 71);
    for k in ["tau", "dkl_rev", "dkl_fwd", "entropy", "mean_energy", "heat_capacity", "kappa"] {
        assert!(curve[0].get(k).is_some(), "curve lacks {k}");
    }
    let other: Vec<&str> = TWO_LEVEL.iter().copied().chain(["--seed", "6", "--json"]).collect();
    assert_ne!(taustar(&other).stdout, a.stdout, "another seed draws other data");
}

/// A 3×3 Ising cell with a short τ grid, as JSON, plus the arguments given.
fn ising_3x3(extra: &str) -> Vec<String> {
    "cell --truth ising2d --lattice 3x3 --temperature 2.3 --seed 1 --tau-grid 0.5:2:3 --json"
        .split_whitespace()
        .chain(extra.split_whitespace())
        .map(String::from)
        .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn paper_mode_takes_the_authors_constants_and_the_flags_change_them() {
    let base = ising_3x3("--samples 54 --fit paper");
    let v = json(&args(&base));
    assert_eq!(v["fit_stop"], "rel_tol", "{v}");
    let default_steps = v["fit_iterations"].as_u64().unwrap();
    let tight = ising_3x3("--samples 54 --fit paper --rel-tol 1e-7");
    assert!(json(&args(&tight))["fit_iterations"].as_u64().unwrap() > default_steps);
    let c = json(&args(&ising_3x3("--samples 54 --fit paper --max-iter 7")));
    assert_eq!((c["fit_iterations"].as_u64(), c["fit_stop"].as_str()), (Some(7), Some("max_iter")));
    let out = taustar(&args(&ising_3x3("--samples 54 --fit paper --rel-tol 2")));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rel-tol") && err.contains('2'), "{err}");
}

#[test]
fn ising_cell_reports_fit_keys() {
    let v = json(&args(&ising_3x3("--samples 200 --l2 0.01")));
    for k in
        ["fit_mode", "fit_iterations", "fit_stop", "grad_max_norm", "nll", "coupling_max_abs", "fit_diverged"]
    {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["fit_diverged"], false);
    assert_eq!(v["fit_stop"], "grad_tol");
    assert!(v["grad_max_norm"].as_f64().unwrap() <= 1e-8);
    assert_eq!(v["curve"].as_array().unwrap().len(), 4, "3 grid points plus τ = 1");
}

/// `taustar cell` flags for a two-level cell, as strings the user would type.
fn two_level_cell(states: &str, low: &str, gap: &str, samples: &str) -> Vec<String> {
    ["cell", "--truth", "two-level", "--states", states, "--low-states", low, "--gap", gap]
        .into_iter()
        .chain(["--samples", samples, "--seed", "1"])
        .map(String::from)
        .collect()
}

/// The same for an Ising cell.
fn ising_cell(lattice: &str, temperature: &str) -> Vec<String> {
    ["cell", "--truth", "ising2d", "--lattice", lattice, "--temperature", temperature]
        .into_iter()
        .chain(["--samples", "5", "--seed", "1"])
        .map(String::from)
        .collect()
}

#[test]
fn bad_input_names_the_flag_and_value() {
    let check = |args: Vec<String>, want: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_rejected(&args, want);
    };
    check(two_level_cell("10", "10", "1", "5"), &["--low-states", "10"]);
    check(two_level_cell("10", "2", "-1", "5"), &["--gap", "-1"]);
    check(two_level_cell("10", "2", "1", "0"), &["--samples", "0"]);
    check(ising_cell("3x3", "0"), &["--temperature", "0"]);
    check(ising_cell("6x6", "2"), &["--lattice", "6x6", "24 spins", "plm"]);
    let mut plm = ising_cell("6x6", "2");
    plm.extend(["--fit".to_string(), "plm".to_string()]);
    check(plm, &["--eval", "exact", "mcmc"]);
    check(ising_cell("4by4", "2"), &["--lattice", "4by4"]);
    assert_rejected(
        &["cell", "--truth", "two-level", "--states", "10", "--gap", "1", "--samples", "5", "--seed", "1"],
        &["--low-states"],
    );
}

fn write_matrix(dir: &std::path::Path, m: &[Vec<f64>]) -> String {
    let p = dir.join("J.json");
    std::fs::write(&p, serde_json::to_string(m).unwrap()).unwrap();
    p.display().to_string()
}

/// c·J/T on the 3×3 torus (each site has 4 neighbours, all distinct).
fn scaled_truth(c: f64, t: f64) -> Vec<Vec<f64>> {
    scaled_torus(3, c, t)
}

/// c·J/T on the nearest-neighbour bonds of the l×l torus (l ≥ 3), as a dense matrix.
fn scaled_torus(l: usize, c: f64, t: f64) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; l * l]; l * l];
    for r in 0..l {
        for col in 0..l {
            let s = r * l + col;
            for t_site in [r * l + (col + 1) % l, ((r + 1) % l) * l + col] {
                m[s][t_site] = c / t;
                m[t_site][s] = c / t;
            }
        }
    }
    m
}

/// `taustar eval --eval mcmc` past enumeration (a 6×6 torus, 36 spins): the rescaled truth's
/// τ*_fwd = c within its error bar, every estimate with a standard error, the diagnostics
/// printed; a lattice without Kaufman's closed form is refused by name.
#[test]
fn eval_mcmc_gives_error_bars_and_diagnostics_past_enumeration() {
    let dir = tempfile::tempdir().unwrap();
    let c = 1.2;
    let path = write_matrix(dir.path(), &scaled_torus(6, c, 3.0));
    let args = |lattice: &'static str| {
        vec![
            "eval",
            "--lattice",
            lattice,
            "--temperature",
            "3",
            "--couplings",
            &path,
            "--eval",
            "mcmc",
            "--steps",
            "1500",
            "--truth-steps",
            "4000",
            "--resamples",
            "40",
            "--seed",
            "3",
            "--json",
        ]
    };
    let v = json(&args("6x6"));
    let (tau, se) = (v["tau_fwd"].as_f64().unwrap(), v["tau_fwd_se"].as_f64().unwrap());
    assert!(se > 0.0 && (tau - c).abs() < 4.0 * se, "τ*_fwd = {tau} ± {se}, want {c}");
    assert!((v["tau_rev"].as_f64().unwrap() - c).abs() < 1e-6, "{v}");
    for k in ["dkl_rev_at_1_se", "dkl_fwd_at_1_se", "heat_capacity_at_1_se", "truth_mean_model_energy_se"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k} in {v}");
    }
    assert_eq!(v["mcmc_ok"], true, "{v}");
    // Passed as a whole: equilibrated down to the lower bound, and no partial τ*_fwd.
    assert!((v["equilibrated_tau_lo"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{v}");
    assert!(v.get("tau_fwd_equilibrated").is_none_or(|t| t.is_null()), "{v}");
    assert!(v["min_swap_acceptance"].as_f64().unwrap() > 0.1 && v["round_trips"].as_u64().unwrap() > 0);
    assert!(v["r_hat"].as_f64().unwrap() < 1.05, "{v}");
    // The default curve: the reporting grid inside the default bounds 0.2..5, with errors.
    let curve = v["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 71, "{v}");
    assert!(curve.iter().all(|p| p["dkl_rev_se"].as_f64().unwrap() > 0.0 && p["kappa_se"].is_number()));
    // The same seed gives the same numbers on one thread as on several.
    let out = Command::new(env!("CARGO_BIN_EXE_taustar"))
        .args(args("6x6"))
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run taustar");
    let mut single: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut v = v;
    for x in [&mut single, &mut v] {
        x.as_object_mut().unwrap().remove("seconds");
    }
    assert_eq!(single, v);
    // A precision target: met by running longer, or reported as missed within the budget.
    let target = format!("{}", 0.75 * se);
    let mut longer = args("6x6");
    longer.extend(["--target-se", &target, "--max-steps", "6000"]);
    let met = json(&longer);
    let met_se = met["tau_fwd_se"].as_f64().unwrap().max(met["tau_rev_se"].as_f64().unwrap());
    assert!(met["mcmc_steps"].as_u64().unwrap() > 1500 && met_se <= 0.75 * se, "{met}");
    assert_eq!(met["mcmc_ok"], true, "{met}");
    let mut hopeless = args("6x6");
    hopeless.extend(["--target-se", "1e-7", "--max-steps", "3000"]);
    let missed = json(&hopeless);
    assert_eq!(missed["mcmc_ok"], false);
    assert_eq!(missed["mcmc_steps"], 3000);
    assert!(missed["mcmc_note"].as_str().unwrap().contains("above the target"), "{missed}");
    let out = taustar(&args("2x18"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lattice") && err.contains("2x18") && err.contains(">= 3"), "{err}");
}

#[test]
fn eval_of_a_rescaled_truth_finds_the_scale() {
    let dir = tempfile::tempdir().unwrap();
    for c in [0.8, 1.3] {
        let path = write_matrix(dir.path(), &scaled_truth(c, 2.3));
        let v = json(&[
            "eval",
            "--lattice",
            "3x3",
            "--temperature",
            "2.3",
            "--couplings",
            &path,
            "--tau",
            "0.5,1,2",
            "--json",
        ]);
        for k in ["tau_rev", "tau_fwd"] {
            let got = v[k].as_f64().unwrap();
            assert!((got - c).abs() < 1e-6, "{k} = {got}, want {c}");
        }
        assert_eq!(v["curve"].as_array().unwrap().len(), 3);
        assert!(v.get("fit_mode").is_none(), "eval prints no fit keys");
    }
}

#[test]
fn eval_rejects_bad_coupling_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = scaled_truth(1.0, 2.3);
    m[0][1] = 0.9;
    let path = write_matrix(dir.path(), &m);
    let args = ["eval", "--lattice", "3x3", "--temperature", "2.3", "--couplings", path.as_str()];
    assert_rejected(&args, &["couplings[0][1]", "symmetric"]);
    let path = write_matrix(dir.path(), &vec![vec![0.0; 4]; 4]);
    let args = ["eval", "--lattice", "3x3", "--temperature", "2.3", "--couplings", path.as_str()];
    assert_rejected(&args, &["--couplings", "4x4", "N = 9"]);
    std::fs::write(dir.path().join("J.json"), "not json").unwrap();
    assert_rejected(&args, &["--couplings", "JSON"]);
}
