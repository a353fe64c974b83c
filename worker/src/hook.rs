//! Test hooks, read from the environment by [`install_from_env`].
//!
//! They exist so end-to-end tests can drive real `taustar-worker` and `taustar run`
//! processes, and they are compiled in only with the `testing` feature (the workspace's
//! test build turns it on; `cargo build --release` leaves it off):
//! - `TAUSTAR_WORKER_COMPUTED_LOG=/path/file`: each computed cell's key is appended as one
//!   line. Several worker processes may share the file: each line is written with one
//!   `write` call on a file opened with `O_APPEND`, which POSIX keeps whole. The tests count
//!   lines to prove that finished cells are not recomputed after a restart.
//! - `TAUSTAR_WORKER_TEST_DELAY_MS=N`: sleep N ms before each cell, so a test can interrupt
//!   a study of microsecond cells mid-way.
//! - `TAUSTAR_WORKER_STARTED_LOG=/path/file`: each cell's key is appended when the worker
//!   starts it (before the delay), as the computed log does when it ends. A test that
//!   interrupts cells mid-way reads "started but not computed" from the two logs instead of
//!   guessing it from the clock.
//!
//! All wrap [`WorkerConfig::compute`], so the session and the pool know nothing of them.

use crate::{WorkerConfig, WorkerError};

/// The variable naming the computed-cells log.
pub const COMPUTED_LOG_ENV: &str = "TAUSTAR_WORKER_COMPUTED_LOG";
/// The variable giving the delay before each cell, in milliseconds.
pub const DELAY_ENV: &str = "TAUSTAR_WORKER_TEST_DELAY_MS";
/// The variable naming the started-cells log.
pub const STARTED_LOG_ENV: &str = "TAUSTAR_WORKER_STARTED_LOG";

/// Wrap `config.compute` with the hooks the environment asks for.
#[cfg(feature = "testing")]
pub fn install_from_env(config: &mut WorkerConfig) -> Result<(), WorkerError> {
    use std::sync::Arc;

    if let Some(ms) = std::env::var_os(DELAY_ENV) {
        let text = ms.to_string_lossy().into_owned();
        let ms: u64 = text.parse().map_err(|_| WorkerError::TestHook {
            var: DELAY_ENV,
            reason: format!("{text:?} is not a whole number of milliseconds"),
        })?;
        tracing::warn!(ms, "test hook: sleeping before every cell");
        let (f, delay) = (config.compute.clone(), std::time::Duration::from_millis(ms));
        config.compute = Arc::new(move |spec| {
            std::thread::sleep(delay);
            f(spec)
        });
    }
    if let Some(path) = std::env::var_os(COMPUTED_LOG_ENV) {
        config.compute = key_log(config.compute.clone(), &path, KeyLogged::After)?;
    }
    // Outermost, so a key is logged before the delay.
    if let Some(path) = std::env::var_os(STARTED_LOG_ENV) {
        config.compute = key_log(config.compute.clone(), &path, KeyLogged::Before)?;
    }
    Ok(())
}

/// When [`key_log`] appends a cell's key: as the cell starts, or once it is computed.
#[cfg(feature = "testing")]
#[derive(Clone, Copy, PartialEq)]
enum KeyLogged {
    Before,
    After,
}

/// `compute`, appending each cell's key to the file at `path` (one `write` per line on a
/// file opened with `O_APPEND`, so processes sharing the file never interleave lines).
#[cfg(feature = "testing")]
fn key_log(
    compute: crate::ComputeFn,
    path: &std::ffi::OsStr,
    when: KeyLogged,
) -> Result<crate::ComputeFn, WorkerError> {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| WorkerError::ComputedLog { path: path.into(), source })?;
    let file = std::sync::Mutex::new(file);
    let append = move |key: &str| {
        let line = format!("{key}\n");
        let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot append to a test hook's cell log");
        }
    };
    Ok(std::sync::Arc::new(move |spec| {
        if when == KeyLogged::Before {
            append(&spec.key().0);
        }
        let outcome = compute(spec);
        if when == KeyLogged::After {
            append(&spec.key().0);
        }
        outcome
    }))
}

/// Without the `testing` feature the hooks are compiled out; a set variable is only
/// reported, so a test run against a release binary fails loudly in its own checks
/// instead of silently here.
#[cfg(not(feature = "testing"))]
pub fn install_from_env(_config: &mut WorkerConfig) -> Result<(), WorkerError> {
    for var in [COMPUTED_LOG_ENV, DELAY_ENV, STARTED_LOG_ENV] {
        if std::env::var_os(var).is_some() {
            tracing::warn!(var, "test hook ignored: this binary was built without the `testing` feature");
        }
    }
    Ok(())
}
