//! # taustar-worker — lease cells, compute them on rayon, stream the results back
//!
//! The worker is glue between a coordinator (gRPC, `taustar_proto`) and one pure function,
//! `common::run_cell`. [`run`] loops over *sessions* (one connection each):
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

pub mod hook;
mod session;

pub use taustar_proto::process::signal;
pub use taustar_proto::{auth, tls};

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{CellResult, CellSpec};
use taustar_proto::pb;
use tokio::sync::{mpsc, watch};

/// The cell computation: `common::run_cell` in production, something trivial in benchmarks.
pub type ComputeFn = Arc<dyn Fn(&CellSpec) -> Result<CellResult, String> + Send + Sync>;

/// The science: [`common::run_cell`], errors as text.
pub fn science() -> ComputeFn {
    Arc::new(|spec| common::run_cell(spec).map_err(|e| e.to_string()))
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
    /// Test hook: append each computed cell key to this file (see [`hook`]).
    pub computed_log: Option<std::path::PathBuf>,
    /// Shared token sent as `authorization: Bearer …` on every call (see [`auth`]).
    pub token: Option<auth::Token>,
    /// TLS towards the coordinator (see [`tls`]); `None`: plain HTTP/2.
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
            computed_log: None,
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

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Cells computed (successfully or not).
    pub computed: u64,
    /// Outcomes acknowledged by a coordinator.
    pub acknowledged: u64,
    /// Cells handed back unstarted while draining.
    pub released: u64,
    /// Whether the worker stopped because it was told to (drain) rather than study done.
    pub drained: bool,
}

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
    /// The rayon pool could not start.
    #[error("cannot start {threads} compute threads: {reason}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Why.
        reason: String,
    },
}

/// A finished computation, from a rayon thread to the session loop.
enum Computed {
    /// The cell ran; the upload is ready to send (boxed: a result with its curve is large).
    Ran { upload: Box<pb::ResultUpload>, seconds: f64 },
    /// The cell was not started because the worker is draining.
    NotStarted(u64),
}

/// State that outlives a session (a connection).
struct WorkerState {
    /// Our id at the coordinator (0 before the first registration).
    worker_id: u64,
    /// The store uid of the coordinator we talk to; a change means another study store.
    study_uid: Option<String>,
    /// Outcomes sent or to send, not yet acknowledged, by cell id.
    unacked: BTreeMap<u64, pb::ResultUpload>,
    /// Cells handed to rayon and not finished.
    in_flight: HashSet<u64>,
    /// Cells of a previous store still computing; their outcomes are dropped.
    stale: HashSet<u64>,
    /// Unstarted cells to hand back.
    to_release: Vec<u64>,
    /// The compute side's set of started cells; a cell leaves it only when its outcome is
    /// recorded here, so a cell that finished but is not yet recorded still counts as
    /// started at the drain (handing it back would get its result rejected).
    started: Arc<Mutex<HashSet<u64>>>,
    /// EWMA of a cell's wall time in seconds (0 = unknown).
    mean_cell_seconds: f64,
    /// The coordinator said every cell is settled.
    study_done: bool,
    /// Counters.
    report: WorkerReport,
}

/// The error a worker that gives up reports: the last attempt's (`explained` by
/// [`tls::explain`]), and the last one with a hint if that was another attempt.
fn last_error(explained: String, hinted: Option<&str>) -> String {
    match hinted {
        Some(h) if h != explained => format!("{explained}; an earlier attempt: {h}"),
        _ => explained,
    }
}

/// Make `up` fit the coordinator's message limit (`limit` bytes; 0: not announced): a
/// result larger than that becomes an error outcome for its cell. The coordinator would
/// refuse the message and end the result stream; the worker would reconnect and re-send
/// it, forever. As an error the cell fails like any cell whose computation errs, and the
/// message says how to make it fit. Returns whether the upload was replaced.
pub(crate) fn fit_to_limit(up: &mut pb::ResultUpload, limit: u64) -> bool {
    let len = prost::Message::encoded_len(up) as u64;
    if limit == 0 || len <= limit {
        return false;
    }
    up.outcome = Some(pb::result_upload::Outcome::Error(format!(
        "the result of cell {} is {len} bytes on the wire, over the coordinator's limit of \
         {limit} bytes per message (taustar serve --max-message-mib); a coarser τ grid \
         ([tau] grid count) or [tau] curves = \"none\" makes it smaller",
        up.cell_id
    )));
    true
}

impl WorkerState {
    fn finished(&self, draining: bool) -> bool {
        let idle = self.in_flight.is_empty() && self.unacked.is_empty() && self.to_release.is_empty();
        idle && (self.study_done || draining)
    }

    /// The cells whose leases the heartbeat should extend: queued or running for the current
    /// store, or computed and not yet acknowledged. Sorted, for a stable message.
    fn held(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|id| !self.stale.contains(id))
            .chain(self.unacked.keys())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Begin the drain: no cell starts any more, and every unstarted cell of the current
    /// store moves from in flight to `to_release` (one `Release` for all). Returns how many.
    fn start_drain(&mut self, compute: &Compute) -> usize {
        let mut n = 0;
        for id in compute.begin_drain(&self.in_flight) {
            if !self.stale.contains(&id) {
                self.in_flight.remove(&id);
                self.to_release.push(id);
                n += 1;
            }
        }
        n
    }

    fn record(&mut self, computed: Computed) {
        match computed {
            Computed::Ran { upload, seconds } => {
                let id = upload.cell_id;
                self.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
                self.in_flight.remove(&id);
                if self.stale.remove(&id) {
                    return;
                }
                self.report.computed += 1;
                self.mean_cell_seconds = if self.mean_cell_seconds > 0.0 {
                    0.8 * self.mean_cell_seconds + 0.2 * seconds
                } else {
                    seconds
                };
                self.unacked.insert(id, *upload);
            }
            Computed::NotStarted(id) => {
                // Not in flight any more: handed back already when the drain began.
                let was_in_flight = self.in_flight.remove(&id);
                if !self.stale.remove(&id) && was_in_flight {
                    self.to_release.push(id);
                }
            }
        }
    }
}

/// The compute side: a rayon pool and the channel its threads report on.
struct Compute {
    pool: rayon::ThreadPool,
    f: ComputeFn,
    tx: mpsc::UnboundedSender<Computed>,
    draining: Arc<AtomicBool>,
    /// Cells a rayon thread has started. A thread checks `draining` and inserts its cell
    /// under this lock, and [`Compute::begin_drain`] sets `draining` under it, so at the
    /// drain every leased cell is either started (it will finish) or will never start (it
    /// can be handed back at once, all in one `Release`).
    started: Arc<Mutex<HashSet<u64>>>,
    log: Option<Arc<hook::ComputedLog>>,
}

impl Compute {
    /// Stop starting cells; returns the cells of `in_flight` no thread has started (they
    /// never will: their queued tasks report [`Computed::NotStarted`], which is ignored for
    /// cells no longer in flight).
    fn begin_drain(&self, in_flight: &HashSet<u64>) -> Vec<u64> {
        let started = self.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.draining.store(true, Ordering::SeqCst);
        let mut unstarted: Vec<u64> = in_flight.iter().filter(|id| !started.contains(id)).copied().collect();
        unstarted.sort_unstable();
        unstarted
    }

    fn submit(&self, worker_id: u64, cell_id: u64, spec: CellSpec) {
        let (f, tx, draining, started_set, log) =
            (self.f.clone(), self.tx.clone(), self.draining.clone(), self.started.clone(), self.log.clone());
        self.pool.spawn(move || {
            {
                let mut set = started_set.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if draining.load(Ordering::SeqCst) {
                    drop(set);
                    let _ = tx.send(Computed::NotStarted(cell_id));
                    return;
                }
                set.insert(cell_id);
            }
            let started = std::time::Instant::now();
            let outcome = match f(&spec) {
                Ok(r) => pb::result_upload::Outcome::Result((&r).into()),
                Err(e) => pb::result_upload::Outcome::Error(e),
            };
            let seconds = started.elapsed().as_secs_f64();
            if let Some(log) = &log {
                log.record(&spec.key().0);
            }
            let upload =
                pb::ResultUpload { worker_id, cell_id, outcome: Some(outcome), compute_seconds: seconds };
            let _ = tx.send(Computed::Ran { upload: Box::new(upload), seconds });
        });
    }
}

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
    let log = match &config.computed_log {
        Some(p) => Some(Arc::new(
            hook::ComputedLog::open(p)
                .map_err(|source| WorkerError::ComputedLog { path: p.clone(), source })?,
        )),
        None => None,
    };
    let compute = Compute {
        pool,
        f: config.compute.clone(),
        tx,
        draining: draining.clone(),
        started: Arc::new(Mutex::new(HashSet::new())),
        log,
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

/// The coordinator URL with its scheme: a bare `host:port` gets `https://` with TLS and
/// `http://` without; a scheme that contradicts the TLS settings is refused (an `https://` URL
/// without a CA to trust, or TLS settings with an `http://` URL that would ignore them).
fn normalise_url(url: &str, tls: bool) -> Result<String, WorkerError> {
    let bad = |reason: &str| WorkerError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    let full = match (url.split_once("://").map(|(scheme, _)| scheme), tls) {
        (None, false) => format!("http://{url}"),
        (None, true) => format!("https://{url}"),
        (Some("https"), false) => {
            return Err(bad(&format!(
                "https:// needs --tls-ca PATH ({}): the CA certificate that signed the coordinator's \
                 certificate",
                tls::TLS_CA_ENV
            )))
        }
        (Some("http"), true) => {
            return Err(bad(
                "TLS is configured (--tls-ca) but the URL says http://; use https:// or a bare host:port",
            ))
        }
        (Some("http" | "https"), _) => url.to_string(),
        (Some(other), _) => {
            return Err(bad(&format!(
            "unsupported scheme {other}://; the coordinator speaks gRPC over http:// (or https:// with TLS)"
        )))
        }
    };
    tonic::transport::Endpoint::from_shared(full.clone())
        .map_err(|e| WorkerError::BadUrl { url: url.to_string(), reason: e.to_string() })?;
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            log: None,
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
