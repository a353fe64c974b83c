//! Prometheus metrics of a running coordinator, and the HTTP listener that serves them.
//!
//! What an operator watching a cluster through Prometheus and Grafana wants from a study:
//!
//! | metric | type | from |
//! |---|---|---|
//! | `taustar_cells{state}` | gauge | the store, refreshed by the lease sweeper (every ≤ 1 s) |
//! | `taustar_results_committed_total` | counter | commits of this process |
//! | `taustar_failures_recorded_total` | counter | failed computations recorded (retried or final) |
//! | `taustar_duplicates_ignored_total` | counter | outcomes for cells already settled |
//! | `taustar_results_rejected_total` | counter | outcomes from a worker not holding the cell |
//! | `taustar_results_quarantined_total` | counter | uploads kept in the quarantine table |
//! | `taustar_leases_lost_total` | counter | leases that expired (their worker was lost or hung) |
//! | `taustar_store_write_errors_total` | counter | store transactions that failed (disk full, I/O) |
//! | `taustar_store_writable` | gauge | 0 after a failed store write, 1 again after a commit of results succeeds |
//! | `taustar_store_disk_free_bytes` | gauge | free space of the store's filesystem, each sweep |
//! | `taustar_commit_duration_seconds` | histogram | one store transaction of queued results |
//! | `taustar_worker_last_seen_timestamp_seconds{worker_id,name}` | gauge | last call of each worker |
//!
//! Cells by state are gauges, not counters: a cell moves between states (a lost lease
//! returns it to pending), and Prometheus' counter semantics (only up, reset on restart) do
//! not fit a level. Everything that *happens* is a counter of this process, so a restarted
//! coordinator starts them at 0 as Prometheus' `rate()` expects; the store's own lifetime
//! counters stay in `taustar status`.
//!
//! The per-worker series are bounded ([`MAX_WORKER_SERIES`]): a study with thousands of
//! short-lived workers (Kubernetes pods, Slurm array tasks) would otherwise grow the scrape
//! without limit. Past the bound the least recently seen worker's series is dropped and
//! `taustar_worker_series_dropped_total` counts it.
//!
//! The listener is off unless `serve --metrics-listen` is given, and loopback-only unless
//! `--metrics-allow-remote` says otherwise ([`check_metrics_bind`]): the text names workers
//! and hosts, and a Prometheus scrape carries no token.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::{CommitReport, StudyStatus};

/// Most workers with a last-seen series at once.
pub const MAX_WORKER_SERIES: usize = 512;

/// The content type of the OpenMetrics text format (what Prometheus negotiates first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker_id: String,
    name: String,
}

/// The per-worker series kept, for bounding.
#[derive(Default)]
struct Workers {
    /// worker id → (name, last seen in ms since the epoch).
    seen: HashMap<u64, (String, u64)>,
}

/// Every metric of one coordinator process (cheap to share; all updates are atomic).
pub struct Metrics {
    registry: Registry,
    cells: Family<StateLabel, Gauge>,
    committed: Counter,
    failures: Counter,
    duplicates: Counter,
    rejected: Counter,
    quarantined: Counter,
    leases_lost: Counter,
    write_errors: Counter,
    writable: Gauge,
    disk_free: Gauge,
    commit_seconds: Histogram,
    last_seen: Family<WorkerLabel, Gauge<f64, AtomicU64>>,
    worker_series_dropped: Counter,
    workers: Mutex<Workers>,
    max_workers: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(MAX_WORKER_SERIES)
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("max_workers", &self.max_workers).finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics keeping at most `max_workers` per-worker series.
    pub fn new(max_workers: usize) -> Metrics {
        let mut registry = Registry::with_prefix("taustar");
        let cells = Family::<StateLabel, Gauge>::default();
        registry.register(
            "cells",
            "Cells of the study by state (pending, leased, done, failed)",
            cells.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let committed = counter(&mut registry, "results_committed", "Results committed by this process");
        let failures = counter(
            &mut registry,
            "failures_recorded",
            "Failed computations recorded (the cell retried, or failed for good)",
        );
        let duplicates = counter(
            &mut registry,
            "duplicates_ignored",
            "Outcomes ignored because their cell was already settled",
        );
        let rejected = counter(
            &mut registry,
            "results_rejected",
            "Outcomes refused because the uploading worker did not hold the cell",
        );
        let quarantined = counter(
            &mut registry,
            "results_quarantined",
            "Uploads stored in the quarantine table instead of committed",
        );
        let leases_lost = counter(
            &mut registry,
            "leases_lost",
            "Leases that expired without a result (the worker was lost or hung); the cell was returned or failed",
        );
        let write_errors = counter(
            &mut registry,
            "store_write_errors",
            "Store transactions that failed (disk full, I/O error); nothing of them was committed",
        );
        let writable = Gauge::default();
        writable.set(1);
        registry.register(
            "store_writable",
            "0 after a failed write to the study store (disk full, I/O error), 1 again once results commit",
            writable.clone(),
        );
        let disk_free = Gauge::default();
        registry.register(
            "store_disk_free_bytes",
            "Bytes free on the filesystem holding the study store (commits stop when it is full)",
            disk_free.clone(),
        );
        // 100 µs to ~26 s: a lone result commits in well under a millisecond on a local
        // disk; a batch of thousands on network storage takes seconds.
        let commit_seconds = Histogram::new(exponential_buckets(1e-4, 2.0, 19));
        registry.register(
            "commit_duration_seconds",
            "Time of one store transaction committing queued results",
            commit_seconds.clone(),
        );
        let last_seen = Family::<WorkerLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "worker_last_seen_timestamp_seconds",
            "When each worker last called the coordinator (Unix time); the least recently seen are dropped past the bound",
            last_seen.clone(),
        );
        let worker_series_dropped = counter(
            &mut registry,
            "worker_series_dropped",
            "Worker last-seen series dropped to keep the number of series bounded",
        );
        Metrics {
            registry,
            cells,
            committed,
            failures,
            duplicates,
            rejected,
            quarantined,
            leases_lost,
            write_errors,
            writable,
            disk_free,
            commit_seconds,
            last_seen,
            worker_series_dropped,
            workers: Mutex::new(Workers::default()),
            max_workers: max_workers.max(1),
        }
    }

    /// Record the cell counts of a progress reading.
    pub fn observe_status(&self, s: &StudyStatus) {
        for (state, n) in [
            ("pending", s.cells_pending),
            ("leased", s.cells_leased),
            ("done", s.cells_done),
            ("failed", s.cells_failed),
        ] {
            self.cells.get_or_create(&StateLabel { state: state.into() }).set(n as i64);
        }
        if let Some(free) = s.disk_free_bytes {
            self.disk_free.set(i64::try_from(free).unwrap_or(i64::MAX));
        }
    }

    /// Record one worker's commit report.
    pub fn observe_commit(&self, r: &CommitReport) {
        self.committed.inc_by(u64::from(r.committed));
        self.failures.inc_by(u64::from(r.retried) + u64::from(r.failed));
        self.duplicates.inc_by(u64::from(r.duplicates));
        self.rejected.inc_by(u64::from(r.rejected));
        self.quarantined.inc_by(u64::from(r.quarantined));
    }

    /// Record one store transaction of results: its duration, and whether it succeeded.
    pub fn observe_transaction(&self, took: Duration, ok: bool) -> bool {
        self.commit_seconds.observe(took.as_secs_f64());
        self.observe_write(ok)
    }

    /// Record whether a write to the store (any transaction) succeeded. Returns whether
    /// the store's state changed (writable to failing or back), for a log line per change
    /// instead of one per failed write.
    pub fn observe_write(&self, ok: bool) -> bool {
        if !ok {
            self.write_errors.inc();
        }
        self.writable.set(i64::from(ok)) != i64::from(ok)
    }

    /// Record leases that expired.
    pub fn observe_lost_leases(&self, n: u64) {
        self.leases_lost.inc_by(n);
    }

    /// Record that worker `id` called now; `name` when known (registration).
    pub fn worker_seen(&self, id: u64, name: Option<&str>) {
        self.worker_seen_at(id, name, SystemTime::now());
    }

    fn worker_seen_at(&self, id: u64, name: Option<&str>, at: SystemTime) {
        let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let Ok(mut w) = self.workers.lock() else { return };
        let label_of =
            |id: u64, name: &str| WorkerLabel { worker_id: id.to_string(), name: name.to_string() };
        match w.seen.get_mut(&id) {
            Some((known, last)) => {
                if let Some(n) = name.filter(|n| *n != known.as_str()) {
                    self.last_seen.remove(&label_of(id, known));
                    *known = n.to_string();
                }
                *last = ms;
            }
            None => {
                if w.seen.len() >= self.max_workers {
                    // Drop the least recently seen (a scan: the bound is small).
                    if let Some((&old, _)) = w.seen.iter().min_by_key(|(&i, (_, t))| (*t, i)) {
                        if let Some((old_name, _)) = w.seen.remove(&old) {
                            self.last_seen.remove(&label_of(old, &old_name));
                            self.worker_series_dropped.inc();
                        }
                    }
                }
                w.seen.insert(id, (name.unwrap_or_default().to_string(), ms));
            }
        }
        let name = w.seen.get(&id).map(|(n, _)| n.clone()).unwrap_or_default();
        self.last_seen.get_or_create(&label_of(id, &name)).set(ms as f64 / 1000.0);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoder's only errors are the writer's.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Why a metrics address is refused.
#[derive(Debug, thiserror::Error)]
pub enum MetricsBindError {
    /// A non-loopback address without the flag that allows it.
    #[error(
        "--metrics-listen {0} is not a loopback address: the metrics endpoint has no token or TLS, so \
         it listens on loopback unless --metrics-allow-remote is given (e.g. for a Prometheus on \
         the cluster network)"
    )]
    NotLoopback(SocketAddr),
}

/// Refuse a non-loopback metrics address unless `allow_remote`.
pub fn check_metrics_bind(addr: SocketAddr, allow_remote: bool) -> Result<(), MetricsBindError> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(MetricsBindError::NotLoopback(addr))
    }
}

/// Serve `GET /metrics` (and `/` for people with a browser) from `listener` until
/// `shutdown` resolves.
pub async fn serve(
    metrics: Arc<Metrics>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::header::CONTENT_TYPE as CT;
    let scrape = move || {
        let metrics = metrics.clone();
        async move { ([(CT, CONTENT_TYPE)], metrics.render()) }
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape.clone()))
        .route("/", axum::routing::get(|| async { "taustar coordinator: metrics at /metrics\n" }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_cell_gauges_render_what_was_observed() {
        let m = Metrics::default();
        m.observe_commit(&CommitReport {
            committed: 3,
            duplicates: 2,
            rejected: 1,
            quarantined: 1,
            retried: 1,
            failed: 1,
            ..CommitReport::default()
        });
        m.observe_commit(&CommitReport { committed: 4, ..CommitReport::default() });
        m.observe_lost_leases(5);
        m.observe_status(&StudyStatus {
            cells_total: 10,
            cells_pending: 1,
            cells_leased: 2,
            cells_done: 6,
            cells_failed: 1,
            ..StudyStatus::default()
        });
        m.observe_transaction(Duration::from_millis(3), true);
        let t = m.render();
        assert_eq!(sample(&t, "taustar_results_committed_total"), Some(7.0), "{t}");
        assert_eq!(sample(&t, "taustar_duplicates_ignored_total"), Some(2.0));
        assert_eq!(sample(&t, "taustar_results_rejected_total"), Some(1.0));
        assert_eq!(sample(&t, "taustar_results_quarantined_total"), Some(1.0));
        assert_eq!(sample(&t, "taustar_failures_recorded_total"), Some(2.0));
        assert_eq!(sample(&t, "taustar_leases_lost_total"), Some(5.0));
        assert_eq!(sample(&t, "taustar_cells{state=\"done\"}"), Some(6.0));
        assert_eq!(sample(&t, "taustar_cells{state=\"leased\"}"), Some(2.0));
        assert_eq!(sample(&t, "taustar_commit_duration_seconds_count"), Some(1.0));
        assert_eq!(sample(&t, "taustar_store_writable"), Some(1.0));
        assert!(t.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF: {t}");
    }

    #[test]
    fn a_failed_write_clears_writable_until_the_next_success() {
        let m = Metrics::default();
        assert!(!m.observe_write(true), "writable from the start: no change");
        assert!(m.observe_transaction(Duration::from_millis(1), false), "a change");
        assert!(!m.observe_write(false), "still failing: no change");
        let t = m.render();
        assert_eq!(sample(&t, "taustar_store_writable"), Some(0.0));
        assert_eq!(sample(&t, "taustar_store_write_errors_total"), Some(2.0));
        assert!(m.observe_write(true), "recovered: a change");
        assert_eq!(sample(&m.render(), "taustar_store_writable"), Some(1.0));
    }

    #[test]
    fn worker_series_are_bounded_dropping_the_least_recently_seen() {
        let m = Metrics::new(3);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for id in 1..=3 {
            m.worker_seen_at(id, Some(&format!("w{id}")), t0 + Duration::from_secs(id));
        }
        // Worker 1 is seen again (by id only): now worker 2 is the oldest.
        m.worker_seen_at(1, None, t0 + Duration::from_secs(10));
        m.worker_seen_at(4, Some("w4"), t0 + Duration::from_secs(11));
        let t = m.render();
        let series = |id: u64, name: &str| {
            sample(
                &t,
                &format!("taustar_worker_last_seen_timestamp_seconds{{worker_id=\"{id}\",name=\"{name}\"}}"),
            )
        };
        assert_eq!(series(1, "w1"), Some(1_000_010.0), "{t}");
        assert_eq!(series(2, "w2"), None, "the least recently seen was dropped: {t}");
        assert_eq!(series(3, "w3"), Some(1_000_003.0));
        assert_eq!(series(4, "w4"), Some(1_000_011.0));
        assert_eq!(sample(&t, "taustar_worker_series_dropped_total"), Some(1.0));
        assert_eq!(t.matches("taustar_worker_last_seen_timestamp_seconds{").count(), 3);
    }

    #[test]
    fn a_renamed_worker_keeps_one_series() {
        let m = Metrics::default();
        m.worker_seen(7, Some("old"));
        m.worker_seen(7, Some("new"));
        let t = m.render();
        assert!(!t.contains("name=\"old\""), "{t}");
        assert_eq!(t.matches("worker_id=\"7\"").count(), 1, "{t}");
    }

    #[test]
    fn remote_metrics_addresses_need_the_flag() {
        let lo: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert!(check_metrics_bind(lo, false).is_ok());
        let e = check_metrics_bind(any, false).unwrap_err().to_string();
        assert!(e.contains("0.0.0.0:9090") && e.contains("--metrics-allow-remote"), "{e}");
        assert!(check_metrics_bind(any, true).is_ok());
    }
}
