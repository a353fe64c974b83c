//! Test hook: a log of every cell this worker computed.
//!
//! Set `TAUSTAR_WORKER_COMPUTED_LOG=/path/file` (binary) or
//! [`crate::WorkerConfig::computed_log`] (library) and each computed cell's key is appended
//! as one line. Several worker processes may share the file: each line is written with one
//! `write` call on a file opened with `O_APPEND`, which POSIX keeps whole. The end-to-end
//! tests count lines to prove that finished cells are not recomputed after a restart.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The environment variable the `taustar-worker` binary reads.
pub const ENV: &str = "TAUSTAR_WORKER_COMPUTED_LOG";

/// An append-only log of computed cell keys.
pub struct ComputedLog {
    file: Mutex<File>,
}

impl ComputedLog {
    /// Open (create) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<ComputedLog> {
        Ok(ComputedLog { file: Mutex::new(OpenOptions::new().create(true).append(true).open(path)?) })
    }

    /// Append `key` as one line. Errors are logged, never fatal: it is a test aid.
    pub fn record(&self, key: &str) {
        let line = format!("{key}\n");
        match self.file.lock() {
            Ok(mut f) => {
                if let Err(e) = f.write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "cannot append to the computed-cells log");
                }
            }
            Err(_) => tracing::warn!("computed-cells log lock poisoned"),
        }
    }
}

/// Test hook: the `taustar-worker` binary sleeps this many milliseconds before each cell,
/// so end-to-end tests can interrupt a study of microsecond cells mid-way.
pub const DELAY_ENV: &str = "TAUSTAR_WORKER_TEST_DELAY_MS";

/// `f`, preceded by a sleep of `delay` on the compute thread.
pub fn with_delay(f: crate::ComputeFn, delay: std::time::Duration) -> crate::ComputeFn {
    std::sync::Arc::new(move |spec| {
        std::thread::sleep(delay);
        f(spec)
    })
}
