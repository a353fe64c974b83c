//! `taustar run` from a study file to tables and figures in one command, as the README
//! promises: real process, shipped study file.

use std::process::Command;

#[test]
fn run_writes_summary_cells_and_phase_diagrams() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("quick.db");
    let study = concat!(env!("CARGO_MANIFEST_DIR"), "/../../studies/quick.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_taustar"))
        .args(["run", study, "--db"])
        .arg(&db)
        .output()
        .expect("run taustar");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = dir.path().join("quick-out");
    // quick.toml: 4 gaps × 5 data sizes = 20 grid points, 5 replicates each.
    let summary = std::fs::read_to_string(report.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 20, "header + one row per grid point");
    assert!(summary.lines().next().unwrap().starts_with("truth,states,low_states,gap,"));
    let cells = std::fs::read_to_string(report.join("cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 1 + 100);
    let png = std::fs::read(report.join("tau_rev_mean.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "tau_rev_mean.png is a PNG");
    assert!(report.join("tau_rev_mean.svg").exists());
    assert!(!report.join("curves.csv").exists(), "curves only on request (they are large)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("100 of 100 cells done"), "{stdout}");
}

fn taustar(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taustar")).args(args).output().expect("run taustar")
}

/// `taustar plot --db DB --out OUT --point SELECTOR`.
fn plot_point(db: &std::path::Path, out: &std::path::Path, selector: &str) -> std::process::Output {
    taustar(&[
        "plot".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--point".as_ref(),
        selector.as_ref(),
    ])
}

/// Run `study` (TOML text) into `dir/<name>.db` and export `tables` as CSV into
/// `dir/<name>-export`; returns the export directory.
fn run_and_export(dir: &std::path::Path, name: &str, study: &str, tables: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, study).unwrap();
    let db = dir.join(format!("{name}.db"));
    let out = taustar(&["run".as_ref(), file.as_os_str(), "--db".as_ref(), db.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let export = dir.join(format!("{name}-export"));
    let out = taustar(&[
        "export".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--out".as_ref(),
        export.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
        "--tables".as_ref(),
        tables.as_ref(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    export
}

/// `tau.curves = "recompute"` (the two-level default) stores no curve, and the curves an
/// export or `plot --point` computes again are byte for byte those a study that stored them
/// exports; a store whose numbers this build does not reproduce is refused, by field.
#[test]
fn recomputed_curves_are_the_stored_curves_and_a_tampered_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let study = |name: &str, curves: &str| {
        format!(
            "name = \"{name}\"\nseed = 7\nreplicates = 3\n[truth]\nkind = \"two-level\"\nstates = 100\n\
             low_states = 20\ngap = [3.0, 7.0]\n[data]\nsamples = [20, 400]\n{curves}"
        )
    };
    let stored =
        run_and_export(dir.path(), "stored", &study("s", "[tau]\ncurves = \"all\"\n"), "cells,curves");
    let recomputed = run_and_export(dir.path(), "recomputed", &study("s", ""), "cells,curves");
    for table in ["cells.csv", "curves.csv"] {
        let a = std::fs::read(stored.join(table)).unwrap();
        let b = std::fs::read(recomputed.join(table)).unwrap();
        assert!(a == b, "{table} differs between stored and recomputed curves");
    }
    let curves = std::fs::read_to_string(recomputed.join("curves.csv")).unwrap();
    assert_eq!(curves.lines().count(), 1 + 12 * 71, "12 cells × 71 τ");

    let db = dir.path().join("recomputed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored_curve_bytes: i64 =
        conn.query_row("SELECT sum(length(curve)) FROM results", [], |r| r.get(0)).unwrap();
    assert_eq!(stored_curve_bytes, 0, "a recompute study stores no curve");

    let plots = dir.path().join("plots");
    let out = plot_point(&db, &plots, "gap=7,samples=400");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let point_png = std::fs::read_dir(&plots).unwrap().filter_map(Result::ok).find(|e| {
        e.file_name().to_string_lossy().starts_with("point__") && e.path().extension().unwrap() == "png"
    });
    assert!(point_png.is_some(), "plot --point drew the recomputed curves");

    // One stored τ*_rev changed: computing that cell again no longer reproduces it.
    let n = conn
        .execute(
            "UPDATE results SET tau_rev = tau_rev * 1.5 WHERE cell_id = (SELECT min(cell_id) FROM results)",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let out = taustar(&[
        "export".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--out".as_ref(),
        dir.path().join("tampered").as_os_str(),
        "--tables".as_ref(),
        "curves".as_ref(),
    ]);
    assert!(!out.status.success(), "a tampered store must not export recomputed curves");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot recompute the curve of") && err.contains("tau_rev"), "{err}");
    // Tables that need no curve still export.
    let out = taustar(&[
        "export".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--out".as_ref(),
        dir.path().join("tampered-cells").as_os_str(),
        "--tables".as_ref(),
        "summary,cells".as_ref(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The column `name` of a CSV table, one string per row (empty for null).
fn csv_column(text: &str, name: &str) -> Vec<String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i =
        header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(i).unwrap_or("").to_string()).collect()
}

/// A study with `[eval] method = "mcmc"` runs through the coordinator and local workers, and
/// its tables carry the standard errors and diagnostics; each cell is the one `taustar cell
/// --eval mcmc` computes from the same flags, bit for bit.
#[test]
fn a_monte_carlo_study_exports_error_bars_and_matches_taustar_cell() {
    let dir = tempfile::tempdir().unwrap();
    let study = "name = \"mc\"\nseed = 11\nreplicates = 2\n[truth]\nkind = \"ising2d\"\nlattice = [3, 3]\n\
                 temperature = 2.5\n[data]\nsamples = [60, 200]\n[fit]\nl2 = 0.01\n\
                 [tau]\ngrid = { from = 0.5, to = 2.0, count = 4 }\n[eval]\nmethod = \"mcmc\"\n\
                 [mcmc]\nsteps = 400\n";
    let export = run_and_export(dir.path(), "mc", study, "summary,cells,curves");
    let summary = std::fs::read_to_string(export.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 2);
    let not_ok: Vec<u64> = csv_column(&summary, "mcmc_not_ok").iter().map(|x| x.parse().unwrap()).collect();
    let se_mean: Vec<f64> =
        csv_column(&summary, "tau_rev_se_mean").iter().map(|x| x.parse().unwrap()).collect();
    assert!(se_mean.iter().all(|&x| x > 0.0), "{se_mean:?}");
    let cells = std::fs::read_to_string(export.join("cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 1 + 4);
    for col in
        ["tau_rev_se", "tau_fwd_se", "dkl_rev_at_1_se", "mcmc_ok", "r_hat", "round_trips", "ladder_rungs"]
    {
        let v = csv_column(&cells, col);
        assert!(v.iter().all(|x| !x.is_empty()), "{col} is null in {v:?}");
    }
    assert!(csv_column(&cells, "tau_rev_se").iter().all(|x| x.parse::<f64>().unwrap() > 0.0));
    let cells_not_ok = csv_column(&cells, "mcmc_ok").iter().filter(|x| *x == "false" || *x == "0").count();
    assert_eq!(not_ok.iter().sum::<u64>() as usize, cells_not_ok, "the summary counts the flagged cells");
    // The trusted τ*_rev of a point is that of its passed replicates: 2 less the flagged.
    let trusted: Vec<u64> =
        csv_column(&summary, "tau_rev_trusted_count").iter().map(|x| x.parse().unwrap()).collect();
    assert_eq!(trusted.iter().zip(&not_ok).map(|(t, n)| t + n).collect::<Vec<_>>(), vec![2, 2]);
    let curves = std::fs::read_to_string(export.join("curves.csv")).unwrap();
    assert_eq!(curves.lines().count(), 1 + 4 * 4, "4 cells × 4 τ (1 is on the grid)");
    for col in ["dkl_rev_se", "dkl_fwd_se", "heat_capacity_se", "kappa_se"] {
        assert!(csv_column(&curves, col).iter().all(|x| x.parse::<f64>().is_ok_and(|v| v >= 0.0)), "{col}");
    }

    // The point figure draws the curves with their error bands.
    let plots = dir.path().join("mc-plots");
    let db = dir.path().join("mc.db");
    let out = plot_point(&db, &plots, "samples=200");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_dir(&plots).unwrap().filter_map(Result::ok).any(|e| {
        e.file_name().to_string_lossy().starts_with("point__") && e.path().extension().unwrap() == "svg"
    }));

    let keys = csv_column(&cells, "key");
    let i = keys.iter().position(|k| k.contains("samples=200") && k.ends_with(";r=1")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_taustar"))
        .args(["cell", "--truth", "ising2d", "--lattice", "3x3", "--temperature", "2.5", "--samples", "200"])
        .args(["--seed", "11", "--replicate", "1", "--l2", "0.01", "--tau-grid", "0.5:2:4"])
        .args(["--eval", "mcmc", "--mcmc-steps", "400", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for col in ["tau_rev", "tau_rev_se", "tau_fwd_se", "dkl_fwd_at_1_se", "r_hat"] {
        let stored: f64 = csv_column(&cells, col)[i].parse().unwrap();
        assert_eq!(stored.to_bits(), json[col].as_f64().unwrap().to_bits(), "{col}");
    }
}

/// A `potts-random` study (docs/spec.md §10) runs through the coordinator and local workers:
/// every cell done with standard errors and diagnostics, the truth's descriptors in the
/// tables, τ* finite; a fit other than plm, an exact evaluation and μ-specified data are
/// refused up front, naming the key.
#[test]
fn a_potts_random_study_runs_and_exports_its_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let truth = "[truth]\nkind = \"potts-random\"\nsites = 6\nstates = 3\ncoupling_strength = 0.6\n\
                 field_strength = 0.8\ncontact_fraction = 0.5\nfamily_seed = 4\n";
    let rest = "[data]\nsamples = [80, 400]\n[fit]\nmode = \"plm\"\nl2 = 0.01\n\
                [tau]\ngrid = { from = 0.5, to = 2.0, count = 4 }\n[eval]\nmethod = \"mcmc\"\n\
                [mcmc]\nsteps = 800\ntruth_steps = 2000\n";
    let study = format!("name = \"potts\"\nseed = 5\nreplicates = 2\n{truth}{rest}");
    let export = run_and_export(dir.path(), "potts", &study, "summary,cells");
    let cells = std::fs::read_to_string(export.join("cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 1 + 4);
    assert!(csv_column(&cells, "truth").iter().all(|t| t == "potts-random"));
    assert!(csv_column(&cells, "sites").iter().all(|t| t == "6"));
    assert!(csv_column(&cells, "states").iter().all(|t| t == "3"));
    assert!(csv_column(&cells, "coupling_strength").iter().all(|t| t == "0.6"));
    for col in ["tau_rev", "tau_fwd", "tau_rev_se", "tau_fwd_se", "data_tau_int", "data_thinning", "r_hat"] {
        let v = csv_column(&cells, col);
        assert!(v.iter().all(|x| x.parse::<f64>().is_ok_and(f64::is_finite)), "{col}: {v:?}");
    }
    assert!(csv_column(&cells, "tau_rev_se").iter().all(|x| x.parse::<f64>().unwrap() > 0.0));
    assert!(csv_column(&cells, "key")[0].starts_with("potts-random;sites=6;states=3;coupling_strength=0.6;"));
    let summary = std::fs::read_to_string(export.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 2);

    // The same study fitted by Boltzmann-machine learning: the Pearson stop is reported.
    let bml =
        study.replace("name = \"potts\"", "name = \"potts-bml\"").replace("mode = \"plm\"", "mode = \"bml\"");
    let export = run_and_export(dir.path(), "potts-bml", &bml, "cells");
    let cells = std::fs::read_to_string(export.join("cells.csv")).unwrap();
    assert!(csv_column(&cells, "fit_mode").iter().all(|t| t == "bml"));
    let pearson: Vec<f64> = csv_column(&cells, "fit_pearson").iter().map(|x| x.parse().unwrap()).collect();
    assert!(pearson.iter().all(|&p| p > 0.5 && p <= 1.0), "{pearson:?}");
    assert!(csv_column(&cells, "tau_rev").iter().all(|x| x.parse::<f64>().is_ok_and(f64::is_finite)));

    for (bad, want) in [
        ("mode = \"plm\"", "mode = \"mle\""),
        ("method = \"mcmc\"", "method = \"exact\""),
        ("samples = [80, 400]", "mu = 0"),
    ] {
        let study = study.replace(bad, want);
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, &study).unwrap();
        let db = dir.path().join("bad.db");
        let out = taustar(&["run".as_ref(), file.as_os_str(), "--db".as_ref(), db.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "{want}: {err}");
        let key = want.split(' ').next().unwrap();
        assert!(err.contains(key), "{want}: stderr does not name {key}: {err}");
        let _ = std::fs::remove_file(&db);
    }
}

/// A user's model as the truth (`kind = "potts-file"`): read relative to the study file,
/// named in every key by its content's SHA-256, every cell computed; a missing file or a
/// wrong alphabet is refused up front with the key and the line.
#[test]
fn a_potts_file_study_names_its_model_by_content() {
    use taustar_science::potts::{random_family, write_params_file, Alphabet, PottsRandomSpec};
    let dir = tempfile::tempdir().unwrap();
    let spec = PottsRandomSpec {
        sites: 5,
        states: 3,
        coupling_strength: 0.7,
        field_strength: 0.8,
        contact_fraction: 0.6,
        seed: 9,
    };
    let model = dir.path().join("family.dat");
    write_params_file(&random_family(&spec).unwrap(), &Alphabet::new("ABC").unwrap(), &model).unwrap();
    let sha = taustar_common::compute::potts::file_sha256(&std::fs::read(&model).unwrap());
    let study =
        "name = \"pf\"\nseed = 3\nreplicates = 2\n[truth]\nkind = \"potts-file\"\nmodel = \"family.dat\"\n\
                 alphabet = \"ABC\"\n[data]\nsamples = [80, 300]\n[fit]\nmode = \"plm\"\nl2 = 0.01\n\
                 [tau]\ngrid = { from = 0.5, to = 2.0, count = 4 }\n[eval]\nmethod = \"mcmc\"\n\
                 [mcmc]\nsteps = 800\ntruth_steps = 2000\n";
    // From another working directory: the model is found next to the study file.
    let export = run_and_export(dir.path(), "pf", study, "cells");
    let cells = std::fs::read_to_string(export.join("cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 1 + 4);
    let want = format!("potts-file;sha256={sha};alphabet=ABC;sites=5;states=3;samples=");
    assert!(csv_column(&cells, "key").iter().all(|k| k.starts_with(&want)), "{cells}");
    assert!(csv_column(&cells, "truth").iter().all(|t| t == "potts-file"));
    assert!(csv_column(&cells, "sites").iter().all(|t| t == "5"));
    assert!(csv_column(&cells, "tau_rev_se").iter().all(|x| x.parse::<f64>().is_ok_and(|v| v > 0.0)));
    // No swept parameter of the truth: τ* against M is drawn (one line, named by the kind),
    // and no heatmap, which would have a single meaningless row.
    let plots = dir.path().join("pf-plots");
    let out = taustar(&[
        "plot".as_ref(),
        "--db".as_ref(),
        dir.path().join("pf.db").as_os_str(),
        "--out".as_ref(),
        plots.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(plots.join("tau_vs_samples.svg")).expect("τ* against M is drawn");
    assert!(svg.lines().any(|l| l.trim() == "potts-file"), "the legend names the line by the truth's kind");
    assert!(plots.join("tau_vs_samples.png").exists());
    assert!(!plots.join("tau_rev_mean.png").exists(), "no map without a second axis");

    for (from, to, want) in [
        ("model = \"family.dat\"", "model = \"missing.dat\"", ["truth.model", "missing.dat", "line 6"]),
        ("alphabet = \"ABC\"", "alphabet = \"rna\"", ["truth.model", "family.dat", "line 6"]),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, study.replace(from, to)).unwrap();
        let db = dir.path().join("bad.db");
        let out = taustar(&["run".as_ref(), file.as_os_str(), "--db".as_ref(), db.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "{to}: {err}");
        for w in want {
            assert!(err.contains(w), "{to}: stderr lacks {w:?}: {err}");
        }
    }
}
