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
    let out = taustar(&[
        "plot".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--out".as_ref(),
        plots.as_os_str(),
        "--point".as_ref(),
        "gap=7,samples=400".as_ref(),
    ]);
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
