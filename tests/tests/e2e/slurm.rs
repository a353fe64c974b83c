//! The Slurm launchers of `deploy/slurm/`, exercised on a real Slurm cluster on this machine.
//!
//! The test itself is the shell script `deploy/ci/slurm-test.sh` (it installs and starts Slurm,
//! submits `taustar.sbatch`, cancels, requeues, resubmits and signals workers, and asserts the
//! study store after each step). It needs root, apt and the release binaries, so it is
//! `#[ignore]`d: a plain `cargo test` lists it as ignored (never as passed). CI runs it:
//!
//! ```text
//! cargo build --release -p taustar -p taustar-worker
//! cargo test -p taustar-e2e --test e2e slurm:: -- --ignored
//! ```

use std::path::PathBuf;
use std::process::Command;
use taustar_e2e::whole_machine;

#[test]
#[ignore = "needs root, apt and release binaries: cargo test -p taustar-e2e --test e2e slurm:: -- --ignored"]
fn slurm_study_completes_resumes_after_cancel_and_requeue_and_loses_nothing_on_worker_sigterm() {
    let _machine = whole_machine();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("deploy/ci/slurm-test.sh");
    // The child inherits stdout/stderr: its per-assertion lines show up live.
    let status = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} failed with {status}; its output above names the failed assertions",
        script.display()
    );
}
