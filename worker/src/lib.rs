//! # taustar-worker — lease cells, compute them on rayon, stream the results back
//!
//! The worker is glue between a coordinator (gRPC, `taustar_proto`) and one pure function,
//! `taustar_common::run_cell`. [`run`] loops over *sessions* (one connection each):
//!
//! 1. connect and `Register` (keeping the worker id of an earlier session, which keeps its
//!    leases); a coordinator of another protocol version refuses us — that is fatal;
//! 2. open the bidirectional `Results` stream and re-send every outcome not yet
//!    acknowledged (results computed while the coordinator was away are never lost);
//! 3. `Lease` cells whenever fewer than a low-water mark are in flight, hand each to the
//!    rayon pool, and stream each outcome as soon as its cell finishes; heartbeat
//!    periodically to extend the leases;
//! 4. when the coordinator answers `DONE` and everything is acknowledged, return.
//!
//! If the connection breaks, computation goes on, outcomes are buffered, and the worker
//! reconnects with exponential backoff. On the shutdown signal (SIGTERM/SIGINT in the
//! binary) it *drains*: no new leases, cells not yet started are handed back with
//! `Release`, running cells finish and their results are delivered, then it returns.
//!
//! Memory: in-flight cells are bounded by the lease size; buffered outcomes by what is
//! computed while disconnected.
#![deny(missing_docs)]

mod config;
mod error;
pub mod hook;
mod pool;
mod session;
mod state;
mod url;

pub use config::{default_name, science, ComputeFn, LatencyHook, WorkerConfig};
pub use error::WorkerError;
pub use state::WorkerReport;
pub use taustar_proto::process::signal;
pub use taustar_proto::{auth, tls};

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use error::last_error;
use pool::Compute;
use state::WorkerState;
use url::normalise_url;

/// Run a worker until the study is done (`Ok`, `drained = false`) or `shutdown` resolves
/// and the drain completes (`Ok`, `drained = true`).
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<WorkerReport, WorkerError> {
    let url = normalise_url(&config.coordinator, config.tls.is_some())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .thread_name(|i| format!("taustar-cell-{i}"))
        .build()
        .map_err(|e| WorkerError::Pool { threads: config.threads, reason: e.to_string() })?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let draining = Arc::new(AtomicBool::new(false));
    let compute = Compute {
        pool,
        f: config.compute.clone(),
        tx,
        draining: draining.clone(),
        started: Arc::new(Mutex::new(HashSet::new())),
    };
    let started = compute.started.clone();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut state = WorkerState {
        worker_id: 0,
        study_uid: None,
        unacked: BTreeMap::new(),
        in_flight: HashSet::new(),
        stale: HashSet::new(),
        to_release: Vec::new(),
        started,
        mean_cell_seconds: 0.0,
        study_done: false,
        report: WorkerReport::default(),
    };
    let mut backoff = Duration::from_millis(100);
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    // A TLS mismatch shows as different transport errors from one attempt to the next (an
    // HTTP/2 protocol error, then "connection closed"), and only some say what is wrong: the
    // last attempt's explained error that did, reported if the worker gives up.
    let mut hinted: Option<String> = None;
    let mut drain_started: Option<tokio::time::Instant> = None;
    loop {
        let mut stop = stop_rx.clone();
        match session::run(&url, &config, &compute, &mut state, &mut rx, &mut stop).await {
            session::End::Finished => {
                state.report.drained = draining.load(Ordering::SeqCst);
                tracing::info!(
                    computed = state.report.computed,
                    acknowledged = state.report.acknowledged,
                    released = state.report.released,
                    drained = state.report.drained,
                    "worker finished"
                );
                return Ok(state.report);
            }
            session::End::Refused(msg) => return Err(WorkerError::Refused(msg)),
            session::End::Unauthenticated(msg) => return Err(WorkerError::Unauthenticated(msg)),
            session::End::Lost { error, reached } => {
                if reached {
                    backoff = Duration::from_millis(100);
                    unreachable_since = None;
                    hinted = None;
                }
                let explained = tls::explain(&error, config.tls.is_some());
                if explained != error {
                    hinted = Some(explained.clone());
                }
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                let mut wait = backoff;
                if *stop_rx.borrow() {
                    if !draining.load(Ordering::SeqCst) {
                        state.start_drain(&compute);
                    }
                    let started = *drain_started.get_or_insert_with(tokio::time::Instant::now);
                    let left = config.drain_timeout.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        while let Ok(c) = rx.try_recv() {
                            state.record(c);
                        }
                        tracing::warn!(
                            lost_results = state.unacked.len(),
                            abandoned_running = state.in_flight.len(),
                            not_handed_back = state.to_release.len(),
                            "draining: coordinator unreachable for {:?}; exiting without delivering \
                             {} computed results (lost; their cells return to pending when the leases \
                             expire and are recomputed)",
                            config.drain_timeout,
                            state.unacked.len()
                        );
                        state.report.drained = true;
                        return Ok(state.report);
                    }
                    wait = wait.min(left);
                }
                if let Some(limit) = config.give_up_after {
                    if since.elapsed() >= limit {
                        return Err(WorkerError::GaveUp {
                            url: url.clone(),
                            after: limit,
                            last_error: last_error(explained, hinted.as_deref()),
                        });
                    }
                }
                tracing::warn!(error = %error, retry_in = ?backoff, buffered = state.unacked.len(),
                    "lost the coordinator; reconnecting");
                // Keep collecting finished cells while waiting.
                let deadline = tokio::time::sleep(wait);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        () = &mut deadline => break,
                        Some(c) = rx.recv() => state.record(c),
                    }
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::fit_to_limit;
    use crate::state::Computed;
    use taustar_proto::pb;

    #[test]
    fn a_result_exactly_at_the_limit_is_sent_and_one_byte_over_becomes_an_error() {
        let result = pb::CellResult { key: "k".into(), ..Default::default() };
        let up = pb::ResultUpload {
            worker_id: 1,
            cell_id: 7,
            outcome: Some(pb::result_upload::Outcome::Result(result)),
            compute_seconds: 0.5,
        };
        let len = prost::Message::encoded_len(&up) as u64;
        for limit in [0, len, len + 1] {
            let mut same = up.clone();
            assert!(!fit_to_limit(&mut same, limit), "limit {limit}");
            assert_eq!(same, up);
        }
        let mut over = up.clone();
        assert!(fit_to_limit(&mut over, len - 1));
        let Some(pb::result_upload::Outcome::Error(e)) = &over.outcome else { panic!("{over:?}") };
        assert!(
            e.starts_with(&format!(
                "the result of cell 7 is {len} bytes on the wire, over the coordinator's limit of {}",
                len - 1
            )),
            "{e}"
        );
        assert_eq!((over.cell_id, over.worker_id), (7, 1));
    }

    /// A plaintext worker at a TLS coordinator: the first attempts fail with an HTTP/2
    /// protocol error (explained with a hint), the last with "connection closed" (no hint).
    /// The give-up message keeps the hint.
    #[test]
    fn giving_up_keeps_the_tls_hint_of_an_earlier_attempt() {
        let first = tls::explain("register: h2 protocol error: FRAME_SIZE_ERROR", false);
        assert!(first.contains("connect with --tls-ca"), "{first}");
        let last = tls::explain("register: operation was canceled: connection closed", false);
        assert!(!last.contains("--tls-ca"), "{last}");
        let reported = last_error(last.clone(), Some(&first));
        assert_eq!(reported, format!("{last}; an earlier attempt: {first}"));
        assert_eq!(last_error(first.clone(), Some(&first)), first, "not twice");
        assert_eq!(last_error(last.clone(), None), last);
    }

    #[test]
    fn bare_host_port_gets_a_scheme() {
        assert_eq!(normalise_url("127.0.0.1:50051", false).unwrap(), "http://127.0.0.1:50051");
        assert_eq!(normalise_url("http://h:1", false).unwrap(), "http://h:1");
    }

    #[test]
    fn tls_picks_https_and_a_contradicting_scheme_is_refused() {
        assert_eq!(normalise_url("h:1", true).unwrap(), "https://h:1");
        assert_eq!(normalise_url("https://h:1", true).unwrap(), "https://h:1");
        let err = normalise_url("https://h:1", false).unwrap_err().to_string();
        assert!(err.contains("--tls-ca") && err.contains(tls::TLS_CA_ENV), "{err}");
        let err = normalise_url("http://h:1", true).unwrap_err().to_string();
        assert!(err.contains("http://") && err.contains("https://"), "{err}");
        for url in ["ftp://h:1", "grpc://h:1", "unix://sock"] {
            let err = normalise_url(url, false).unwrap_err().to_string();
            assert!(err.contains(url) && err.contains("unsupported scheme"), "{err}");
        }
    }

    #[test]
    fn the_drain_hands_back_only_cells_no_thread_started() {
        let started: Arc<Mutex<HashSet<u64>>> = Arc::new(Mutex::new([5].into_iter().collect()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let compute = Compute {
            pool: rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap(),
            f: Arc::new(|_| Err("unused".into())),
            tx,
            draining: Arc::new(AtomicBool::new(false)),
            started: started.clone(),
        };
        let mut s = WorkerState {
            worker_id: 1,
            study_uid: None,
            unacked: BTreeMap::new(),
            // 5 finished but is not recorded yet; 6 and 7 are queued; 7 belongs to an old store.
            in_flight: [5, 6, 7].into_iter().collect(),
            stale: [7].into_iter().collect(),
            to_release: vec![],
            started,
            mean_cell_seconds: 0.0,
            study_done: false,
            report: WorkerReport::default(),
        };
        s.unacked.insert(9, pb::ResultUpload { cell_id: 9, ..Default::default() });
        assert_eq!(s.held(), vec![5, 6, 9], "in flight and unacknowledged, not the old store's 7");
        assert_eq!(s.start_drain(&compute), 1);
        assert_eq!(s.to_release, vec![6]);
        assert_eq!(s.held(), vec![5, 9], "a handed-back cell is no longer held");
        assert!(compute.draining.load(Ordering::SeqCst));
        // The queued task of 6 reports NotStarted later: ignored, it was handed back already.
        s.record(Computed::NotStarted(6));
        s.record(Computed::NotStarted(7));
        assert_eq!(s.to_release, vec![6], "no second hand-back, none of the old store");
        assert_eq!(s.in_flight.iter().copied().collect::<Vec<_>>(), vec![5]);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn outcomes_of_a_previous_store_are_dropped() {
        let mut s = WorkerState {
            worker_id: 1,
            study_uid: None,
            unacked: BTreeMap::new(),
            in_flight: [5, 6].into_iter().collect(),
            stale: [5].into_iter().collect(),
            to_release: vec![],
            started: Arc::new(Mutex::new([5, 6].into_iter().collect())),
            mean_cell_seconds: 0.0,
            study_done: false,
            report: WorkerReport::default(),
        };
        let up = |id| pb::ResultUpload { worker_id: 1, cell_id: id, outcome: None, compute_seconds: 0.5 };
        s.record(Computed::Ran { upload: Box::new(up(5)), seconds: 0.5 });
        s.record(Computed::Ran { upload: Box::new(up(6)), seconds: 0.5 });
        assert_eq!(s.unacked.keys().copied().collect::<Vec<_>>(), vec![6]);
        assert!(s.in_flight.is_empty());
        assert!(s.started.lock().unwrap().is_empty(), "recorded cells leave the started set");
        assert_eq!(s.report.computed, 1);
        assert_eq!(s.mean_cell_seconds, 0.5);
    }
}
