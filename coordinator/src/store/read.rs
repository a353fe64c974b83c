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

use common::{CellResult, GridPoint};
use rusqlite::params;
use serde::Serialize;

use super::{codec, state, StoreError, StudyStore};

/// Window over which the recent throughput is measured.
const THROUGHPUT_WINDOW_MS: i64 = 60_000;
/// A worker seen within this window counts as active.
const ACTIVE_WORKER_MS: i64 = 60_000;

/// Progress of a study (the JSON of `taustar status --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Outcomes refused (cell leased to another worker, unknown cell, key mismatch).
    pub results_rejected: u64,
    /// Cells settled per second over the last minute (0 if none).
    pub throughput_per_s: f64,
    /// Seconds until every cell is settled at that rate; `None` when unknown.
    pub eta_seconds: Option<f64>,
    /// Workers seen in the last minute.
    pub workers_active: u64,
    /// Every cell is done or failed.
    pub finished: bool,
}

impl StudyStore {
    /// Counts by state, duplicates, throughput over the last minute and ETA, as of `now_ms`.
    pub fn status(&self, now_ms: i64) -> Result<StudyStatus, StoreError> {
        let name = self.cached()?.name.clone();
        let mut counts = [0u64; 4];
        {
            let mut q = self
                .conn
                .prepare_cached("SELECT state, count(*) FROM cells GROUP BY state")
                .map_err(|e| self.err(e))?;
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
        let counter = |name: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
                .map(|v| v as u64)
                .map_err(|e| self.err(e))
        };
        let (recent, first_recent): (i64, Option<i64>) = self
            .conn
            .query_row(
                "SELECT count(*), min(finished_ms) FROM cells WHERE finished_ms >= ?1",
                [now_ms - THROUGHPUT_WINDOW_MS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let throughput = match first_recent {
            Some(first) if recent > 0 => recent as f64 / (((now_ms - first).max(1000)) as f64 / 1000.0),
            _ => 0.0,
        };
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
            throughput_per_s: throughput,
            eta_seconds: eta,
            workers_active: workers_active as u64,
            finished: remaining == 0,
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
            codec::RESULT_COLUMNS,
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
            let key = format!("{point_key};r={replicate}");
            let result = codec::decode_row(row, 4, &key)
                .map_err(|e| E::from(self.err(e)))?
                .map_err(|reason| E::from(self.corrupt(reason)))?;
            results.push(result);
        }
        if let Some((_, point)) = current {
            f(&point, &results)?;
        }
        Ok(())
    }

    /// Per-cell bookkeeping `(state, attempts, failures)` by key: for tests and debugging.
    pub fn cell_bookkeeping(&self, key: &str) -> Result<Option<(i64, u32, u32)>, StoreError> {
        let Some((point_key, replicate)) = super::split_cell_key(key) else { return Ok(None) };
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT c.state, c.attempts, c.failures FROM cells c JOIN points p ON p.id = c.point_id \
                 WHERE p.key = ?1 AND c.replicate = ?2",
                params![point_key, replicate],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Visit every failed cell as `(key, failures, last error)`, in key order.
    pub fn for_each_failed_cell(&self, mut f: impl FnMut(&str, u32, &str)) -> Result<(), StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT p.key || ';r=' || c.replicate, c.failures, coalesce(c.error, '') FROM cells c \
                 JOIN points p ON p.id = c.point_id WHERE c.state = ?1 ORDER BY p.key, c.replicate",
            )
            .map_err(|e| self.err(e))?;
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
