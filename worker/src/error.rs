//! Why a worker stops with an error.

use std::time::Duration;

use crate::auth;

/// Why a worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The coordinator refused this worker (protocol version); retrying cannot help.
    #[error("the coordinator refused this worker: {0}")]
    Refused(String),
    /// The coordinator rejected our token (or its absence); retrying cannot help.
    #[error(
        "the coordinator rejected this worker's credentials ({0}); give it the coordinator's token \
         with --token-file PATH, {file_env} or {env}",
        file_env = auth::TOKEN_FILE_ENV,
        env = auth::TOKEN_ENV
    )]
    Unauthenticated(String),
    /// The coordinator could not be reached for too long.
    #[error("gave up after {after:?} without reaching the coordinator at {url}: {last_error}")]
    GaveUp {
        /// The URL.
        url: String,
        /// How long we tried.
        after: Duration,
        /// The last connection error.
        last_error: String,
    },
    /// The coordinator URL is malformed.
    #[error("invalid coordinator URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The computed-cells log (a test hook) could not be opened.
    #[error("cannot open the computed-cells log {path}: {source}")]
    ComputedLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A test hook's environment variable has a bad value (see [`crate::hook`]).
    #[error("invalid {var}: {reason}")]
    TestHook {
        /// The variable.
        var: &'static str,
        /// Why its value is refused.
        reason: String,
    },
    /// The rayon pool could not start.
    #[error("cannot start {threads} compute threads: {reason}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Why.
        reason: String,
    },
}

/// The error a worker that gives up reports: the last attempt's (`explained` by
/// [`tls::explain`]), and the last one with a hint if that was another attempt.
pub(crate) fn last_error(explained: String, hinted: Option<&str>) -> String {
    match hinted {
        Some(h) if h != explained => format!("{explained}; an earlier attempt: {h}"),
        _ => explained,
    }
}
