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
