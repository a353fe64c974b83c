//! The read side of the store: progress counts and the streaming results API used by
//! `taustar status`, export and plot.
//!
//! # The export/plot contract (stable)
//! ```text
//! StudyStore::open_read_only(path: impl AsRef<Path>) -> Result<StudyStore, StoreError>
//! StudyStore::study_toml(&self) -> Result<String, StoreError>
//! StudyStore::for_each_point_results<E, F>(&self, f: F) -> Result<(), E>
//!     where E: From<StoreError>, F: FnMut(&GridPoint, &[CellResult]) -> Result<(), E>
//! ```
//! `for_each_point_results` visits every grid point that has at least one committed result,
//! in ascending byte order of its canonical key ([`GridPoint::key`]), passing all of that
//! point's results in ascending replicate order. It holds one point's results at a time,
//! so a study of 10^6 cells is exported in constant memory. The first error returned by `f`
//! stops the walk and is returned; store errors are converted with `E::from`.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use taustar_common::{CellKey, CellResult, GridPoint};

use super::{codec, state, StoreError, StudyStore};

/// Window over which the recent throughput is measured.
const THROUGHPUT_WINDOW_MS: i64 = 60_000;
/// At most this many of the last settled cells measure the throughput (when they all
/// settled within the window): bounded work per status call at any rate. At 20 000 cells/s
/// that is the last 2.5 s.
const THROUGHPUT_CELLS: i64 = 50_000;
/// Fewest settled cells the throughput is measured over, however long ago they settled.
const MIN_RATE_CELLS: i64 = 20;
/// A worker seen within this window counts as active.
const ACTIVE_WORKER_MS: i64 = 60_000;

/// Progress of a study (the JSON of `taustar status --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StudyStatus {
    /// The study's name.
    pub study_name: String,
    /// Cells in the store.
    pub cells_total: u64,
    /// Waiting for a worker.
    pub cells_pending: u64,
    /// Leased to a worker.
    pub cells_leased: u64,
    /// With a committed result.
    pub cells_done: u64,
    /// Failed for good.
    pub cells_failed: u64,
    /// Outcomes ignored because their cell was already settled.
    pub duplicates_ignored: u64,
    /// Outcomes refused because the uploader did not hold the cell (unknown or never-leased
    /// cell id, cell leased to another worker); the cell's state was left alone.
    pub results_rejected: u64,
    /// Uploads stored in the `quarantine` table instead of being committed: the rejected ones
    /// above, plus results from the cell's holder with NaN, ±∞ as a temperature, a wrong key
    /// or an undecodable body (which also count as a failure of the cell).
    pub results_quarantined: u64,
    /// Cells settled per second over the last minute (0 if none).
    pub throughput_per_s: f64,
    /// Seconds until every cell is settled at that rate; `None` when unknown.
    pub eta_seconds: Option<f64>,
    /// Workers seen in the last minute.
    pub workers_active: u64,
    /// Every cell is done or failed.
    pub finished: bool,
    /// Bytes free (for unprivileged writers) on the filesystem holding the store; `None`
    /// when it cannot be read. A store that fills its filesystem stops committing (nothing
    /// is lost: workers keep their results and retry), so `status` shows this first.
    pub disk_free_bytes: Option<u64>,
}

/// Below this many free bytes on the store's filesystem, `status` warns that commits fail
/// or soon will (a result with curves is a few KB; a transaction of thousands is MBs).
pub const LOW_DISK_BYTES: u64 = 16 << 20;

/// One cell's bookkeeping (see [`StudyStore::cell_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRecord {
    /// The store's id of the cell.
    pub id: u64,
    /// One of [`state`]'s values.
    pub state: i64,
    /// Times leased (a release gives one back).
    pub attempts: u32,
    /// Failed computations: errors, NaN results, wrong keys.
    pub failures: u32,
    /// Leases that expired because the worker was lost.
    pub lost_leases: u32,
    /// The last failure's message.
    pub error: Option<String>,
    /// The current or last lease holder.
    pub worker_id: Option<u64>,
}

impl StudyStore {
    /// Settled cells per second, from the cells settled in the last minute — but at least
    /// the last [`MIN_RATE_CELLS`] (cells that take minutes leave a minute nearly empty) and
    /// at most `THROUGHPUT_CELLS` (bounded work at any rate). With n cells settled since
    /// t_first, the rate is (n − 1)/(now − t_first): the n − 1 intervals between them,
    /// measured up to now, so it neither counts the first cell's own run (which began before
    /// the span) nor freezes when the study stalls. 0 when nothing settled for
    /// max(a minute, 10 mean intervals): the study is not progressing.
    fn throughput(&self, now_ms: i64) -> Result<f64, StoreError> {
        let since = now_ms - THROUGHPUT_WINDOW_MS;
        let in_window: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM (SELECT 1 FROM cells WHERE finished_ms >= ?1 LIMIT ?2)",
                [since, THROUGHPUT_CELLS],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let want = in_window.clamp(MIN_RATE_CELLS, THROUGHPUT_CELLS);
        // The finish times of the latest settled cell and of the `want`-th latest (or the
        // earliest, when fewer settled): two walks of the finish-time index.
        let nth = |offset: i64| -> Result<Option<i64>, StoreError> {
            self.conn
                .query_row(
                    "SELECT finished_ms FROM cells WHERE finished_ms IS NOT NULL \
                     ORDER BY finished_ms DESC LIMIT 1 OFFSET ?1",
                    [offset],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))
        };
        let Some(last) = nth(0)? else { return Ok(0.0) };
        let first = match nth(want - 1)? {
            Some(t) => t,
            None => self
                .conn
                .query_row("SELECT min(finished_ms) FROM cells WHERE finished_ms IS NOT NULL", [], |r| {
                    r.get(0)
                })
                .map_err(|e| self.err(e))?,
        };
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM cells WHERE finished_ms >= ?1", [first], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if n < 2 {
            return Ok(0.0);
        }
        let mean_interval = (last - first) as f64 / (n - 1) as f64;
        if (now_ms - last) as f64 > (THROUGHPUT_WINDOW_MS as f64).max(10.0 * mean_interval) {
            return Ok(0.0);
        }
        Ok((n - 1) as f64 / (((now_ms - first).max(1000)) as f64 / 1000.0))
    }

    /// Counts by state, duplicates, throughput over the last minute (or the last
    /// `THROUGHPUT_CELLS` settled cells, if that is shorter) and ETA, as of `now_ms`.
    ///
    /// Constant work at any study size: the counts come from the trigger-kept `cell_counts`
    /// table (a file no writer of this version opened yet is counted row by row).
    pub fn status(&self, now_ms: i64) -> Result<StudyStatus, StoreError> {
        let name = self.cached()?.name.clone();
        let mut counts = [0u64; 4];
        {
            let sql = if super::schema::has_cell_counts(&self.conn).map_err(|e| self.err(e))? {
                "SELECT state, n FROM cell_counts"
            } else {
                "SELECT state, count(*) FROM cells GROUP BY state"
            };
            let mut q = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (st, n) = row.map_err(|e| self.err(e))?;
                let idx = usize::try_from(st)
                    .ok()
                    .filter(|&i| i < 4)
                    .ok_or_else(|| self.corrupt(format!("cells.state = {st}")))?;
                counts[idx] = n as u64;
            }
        }
        // A counter a read-only handle does not find belongs to a newer schema version than
        // the file's (a study still run by an older coordinator): it is zero there.
        let counter = |name: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
                .optional()
                .map(|v| v.unwrap_or(0).max(0) as u64)
                .map_err(|e| self.err(e))
        };
        let throughput = self.throughput(now_ms)?;
        let workers_active: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM workers WHERE last_seen_ms >= ?1",
                [now_ms - ACTIVE_WORKER_MS],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let [pending, leased, done, failed] = counts;
        let remaining = pending + leased;
        let eta = if remaining == 0 {
            Some(0.0)
        } else if throughput > 0.0 {
            Some(remaining as f64 / throughput)
        } else {
            None
        };
        Ok(StudyStatus {
            study_name: name,
            cells_total: counts.iter().sum(),
            cells_pending: pending,
            cells_leased: leased,
            cells_done: done,
            cells_failed: failed,
            duplicates_ignored: counter("duplicates_ignored")?,
            results_rejected: counter("results_rejected")?,
            results_quarantined: counter("results_quarantined")?,
            throughput_per_s: throughput,
            eta_seconds: eta,
            workers_active: workers_active as u64,
            finished: remaining == 0,
            disk_free_bytes: free_bytes(&self.path),
        })
    }

    /// Visit every grid point with committed results, in key order, with all its results
    /// (see the module docs for the full contract). Never holds more than one point.
    pub fn for_each_point_results<E, F>(&self, mut f: F) -> Result<(), E>
    where
        E: From<StoreError>,
        F: FnMut(&GridPoint, &[CellResult]) -> Result<(), E>,
    {
        let sql = format!(
            "SELECT p.id, p.key, p.spec, c.replicate, {} FROM points p \
             JOIN cells c ON c.point_id = p.id JOIN results r ON r.cell_id = c.id \
             WHERE c.state = {} ORDER BY p.key, c.replicate",
            codec::result_columns(self.version),
            state::DONE
        );
        let mut q = self.conn.prepare(&sql).map_err(|e| E::from(self.err(e)))?;
        let mut rows = q.query([]).map_err(|e| E::from(self.err(e)))?;
        let mut current: Option<(i64, GridPoint)> = None;
        let mut results: Vec<CellResult> = Vec::new();
        while let Some(row) = rows.next().map_err(|e| E::from(self.err(e)))? {
            let point_id: i64 = row.get(0).map_err(|e| E::from(self.err(e)))?;
            if current.as_ref().map(|(id, _)| *id) != Some(point_id) {
                if let Some((_, point)) = current.take() {
                    f(&point, &results)?;
                    results.clear();
                }
                let spec: String = row.get(2).map_err(|e| E::from(self.err(e)))?;
                current = Some((point_id, self.point_from_json(point_id, &spec)?));
            }
            let point_key: String = row.get(1).map_err(|e| E::from(self.err(e)))?;
            let replicate: u32 = row.get(3).map_err(|e| E::from(self.err(e)))?;
            let key = CellKey::new(&point_key, replicate).0;
            let result = codec::decode_row(row, 4, &key, self.tau_grid())
                .map_err(|e| E::from(self.err(e)))?
                .map_err(|reason| E::from(self.corrupt(reason)))?;
            results.push(result);
        }
        if let Some((_, point)) = current {
            f(&point, &results)?;
        }
        Ok(())
    }

    /// Everything the store records about one cell, by key (tests, the fault suite, debugging).
    pub fn cell_record(&self, key: &str) -> Result<Option<CellRecord>, StoreError> {
        let Some((point_key, replicate)) = CellKey::split(key) else { return Ok(None) };
        let sql = format!(
            "SELECT c.id, c.state, c.attempts, c.failures, {}, c.error, c.worker_id FROM cells c \
             JOIN points p ON p.id = c.point_id WHERE p.key = ?1 AND c.replicate = ?2",
            self.lost_leases_column()
        );
        self.conn
            .query_row(&sql, params![point_key, replicate], |r| {
                Ok(CellRecord {
                    id: r.get::<_, i64>(0)? as u64,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    failures: r.get(3)?,
                    lost_leases: r.get(4)?,
                    error: r.get(5)?,
                    worker_id: r.get::<_, Option<i64>>(6)?.map(|w| w as u64),
                })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// `c.lost_leases`, or `0` on a version-1 file (read-only handles only).
    fn lost_leases_column(&self) -> &'static str {
        if self.version >= 2 {
            "c.lost_leases"
        } else {
            "0"
        }
    }

    /// Visit every failed cell as `(key, bad outcomes, last error)`, in key order; bad
    /// outcomes are failed computations plus lost leases (the error says which ended it).
    pub fn for_each_failed_cell(&self, mut f: impl FnMut(&str, u32, &str)) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT p.key || ';r=' || c.replicate, c.failures + {}, coalesce(c.error, '') FROM cells c \
             JOIN points p ON p.id = c.point_id WHERE c.state = ?1 ORDER BY p.key, c.replicate",
            self.lost_leases_column()
        );
        let mut q = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = q.query([state::FAILED]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let key: String = r.get(0).map_err(|e| self.err(e))?;
            let failures: u32 = r.get(1).map_err(|e| self.err(e))?;
            let error: String = r.get(2).map_err(|e| self.err(e))?;
            f(&key, failures, &error);
        }
        Ok(())
    }
}

/// Bytes available to unprivileged writers on the filesystem holding `db` (statvfs of its
/// directory: the WAL and journal live beside the file).
pub fn free_bytes(db: &std::path::Path) -> Option<u64> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
