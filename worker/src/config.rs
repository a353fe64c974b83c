//! How a worker runs: [`WorkerConfig`] and the computation it runs.

use std::sync::Arc;
use std::time::Duration;

use taustar_common::{CellResult, CellSpec};

use crate::auth;

/// The cell computation: `taustar_common::run_cell` in production, something trivial in benchmarks.
pub type ComputeFn = Arc<dyn Fn(&CellSpec) -> Result<CellResult, String> + Send + Sync>;

/// The science: [`taustar_common::run_cell`], errors as text.
pub fn science() -> ComputeFn {
    Arc::new(|spec| taustar_common::run_cell(spec).map_err(|e| e.to_string()))
}

/// How a worker runs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Coordinator URL, e.g. `http://127.0.0.1:50051` (a bare `host:port` gets `http://`).
    pub coordinator: String,
    /// Compute threads.
    pub threads: usize,
    /// Name shown by the coordinator.
    pub name: String,
    /// What computes a cell.
    pub compute: ComputeFn,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Give up (error) after this long without reaching the coordinator; `None`: never.
    pub give_up_after: Option<Duration>,
    /// After the shutdown signal, give up reconnecting after this long in total (buffered
    /// outcomes are then lost to this worker; their leases expire and the cells are
    /// recomputed). Short, because a scheduler SIGKILLs soon after SIGTERM anyway.
    pub drain_timeout: Duration,
    /// Shared token sent as `authorization: Bearer …` on every call (see [`auth`]).
    pub token: Option<auth::Token>,
    /// TLS towards the coordinator (see [`taustar_proto::tls`]); `None`: plain HTTP/2.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Benchmark hook: called with the round-trip time of every successful `Lease` call
    /// (the coordinator's lease latency as a worker sees it).
    pub lease_latency: Option<LatencyHook>,
}

/// See [`WorkerConfig::lease_latency`].
pub type LatencyHook = Arc<dyn Fn(Duration) + Send + Sync>;

impl WorkerConfig {
    /// Defaults for `coordinator` with `threads` threads computing [`science`].
    pub fn new(coordinator: impl Into<String>, threads: usize) -> WorkerConfig {
        WorkerConfig {
            coordinator: coordinator.into(),
            threads: threads.max(1),
            name: default_name(),
            compute: science(),
            max_backoff: Duration::from_secs(10),
            give_up_after: None,
            drain_timeout: Duration::from_secs(10),
            token: None,
            tls: None,
            lease_latency: None,
        }
    }
}

/// `$HOSTNAME-<pid>`, or `worker-<pid>`.
pub fn default_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}
