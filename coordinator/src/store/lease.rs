//! The writer side of the store: workers, leases, outcomes.
//!
//! Every method takes the current time as unix milliseconds (`now_ms`) instead of reading a
//! clock, so the lease logic is testable with tokio's paused time (the caller's
//! [`crate::clock::LeaseClock`] derives wall time from tokio's clock) and deadlines survive a
//! restart (they are wall-clock instants in the file).
//!
//! Acceptance rule for an outcome (DESIGN: never accept a result for a cell the worker did
//! not lease): the cell must be leased to, or have last been leased to, the uploading worker
//! and not be settled yet. So a late result after a lease expired is still accepted as long
//! as nobody else took the cell; once another worker leased it, the old holder's upload is
//! rejected (counted and quarantined), and a second result for a done cell is ignored
//! (counted).

use std::collections::{HashMap, HashSet};

use common::{CellResult, CellSpec, GridPoint};
use rusqlite::{params, params_from_iter, OptionalExtension};

use super::{codec, state, StoreError, StudyStore};

/// The outcome of one cell as reported by a worker.
// Nearly every outcome is `Done`, so boxing the result would add an allocation per result
// without saving memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `run_cell` succeeded.
    Done(CellResult),
    /// `run_cell` failed with this message.
    Failed(String),
    /// The worker sent a result that does not decode into a [`CellResult`] (an unknown enum
    /// value): quarantined as received, and a failure of the cell if the worker holds it.
    Malformed {
        /// Why it does not decode.
        reason: String,
        /// The result as received: prost-encoded `taustar.v1.CellResult`.
        payload: Vec<u8>,
    },
}

/// One uploaded outcome.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The store's id of the cell (from the lease).
    pub cell_id: u64,
    /// What happened.
    pub outcome: Outcome,
}

/// What a lease request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Cells were leased.
    Work,
    /// Nothing pending, but other workers hold leases that may come back.
    Wait,
    /// Every cell is done or failed.
    Done,
}

/// A batch of leased cells.
#[derive(Debug, Clone)]
pub struct LeaseBatch {
    /// Whether there was work.
    pub state: LeaseState,
    /// `(cell id, spec)` of every leased cell; empty unless `state == Work`.
    pub cells: Vec<(u64, CellSpec)>,
}

/// What committing one worker's uploads did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Cells whose outcome is settled for the uploader (it may forget them): everything
    /// uploaded, whether committed, ignored or rejected.
    pub settled: Vec<u64>,
    /// Results committed.
    pub committed: u32,
    /// Outcomes for cells already done or failed (ignored).
    pub duplicates: u32,
    /// Outcomes refused because the uploader does not hold the cell (unknown cell id, cell
    /// leased to another worker); quarantined, and the cell's state is not touched.
    pub rejected: u32,
    /// Uploads quarantined instead of committed: the rejected ones, and the holder's results
    /// with NaN (or ±∞ where a temperature belongs), a wrong key, or an undecodable body.
    pub quarantined: u32,
    /// `(cell id, reason)` of every refused upload, for the worker to log.
    pub rejections: Vec<(u64, String)>,
    /// Failures recorded that return the cell to pending for another try.
    pub retried: u32,
    /// Failures that exhausted the cell's attempts (now failed for good).
    pub failed: u32,
}

/// What a lease-expiry sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Cells returned to pending.
    pub returned: u64,
    /// Cells marked failed because their lease expired `max_lost_leases` times.
    pub failed: u64,
}

impl StudyStore {
    /// Register a worker, or re-register one that reconnects with its previous id (which
    /// keeps its leases). Returns the worker id.
    pub fn register_worker(
        &mut self,
        previous_id: u64,
        name: &str,
        cores: u32,
        version: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        if previous_id != 0 {
            let n = self
                .conn
                .execute(
                    "UPDATE workers SET name = ?2, cores = ?3, version = ?4, last_seen_ms = ?5 WHERE id = ?1",
                    params![previous_id as i64, name, cores, version, now_ms],
                )
                .map_err(|e| self.err(e))?;
            if n == 1 {
                return Ok(previous_id);
            }
        }
        self.conn
            .execute(
                "INSERT INTO workers(name, cores, version, registered_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![name, cores, version, now_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid() as u64)
    }

    fn touch_worker(&self, worker: u64, now_ms: i64) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1", params![worker as i64, now_ms])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::UnknownWorker(worker));
        }
        Ok(())
    }

    /// Lease up to `max_cells` pending cells (lowest ids first) to `worker` until
    /// `deadline_ms`. When nothing is pending, overdue leases are expired first, so a lost
    /// worker's cells come back as soon as anybody asks.
    pub fn lease(
        &mut self,
        worker: u64,
        max_cells: u32,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<LeaseBatch, StoreError> {
        self.touch_worker(worker, now_ms)?;
        let mut cells = self.lease_pending(worker, max_cells, deadline_ms)?;
        if cells.is_empty() && self.expire_leases(now_ms)?.returned > 0 {
            cells = self.lease_pending(worker, max_cells, deadline_ms)?;
        }
        if !cells.is_empty() {
            return Ok(LeaseBatch { state: LeaseState::Work, cells });
        }
        let leased: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM cells WHERE state = ?1)", [state::LEASED], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(LeaseBatch { state: if leased { LeaseState::Wait } else { LeaseState::Done }, cells })
    }

    fn lease_pending(
        &mut self,
        worker: u64,
        max_cells: u32,
        deadline_ms: i64,
    ) -> Result<Vec<(u64, CellSpec)>, StoreError> {
        let study = self.cached()?.clone();
        let path = self.path.clone();
        let e = |err| super::sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let rows: Vec<(i64, u32, i64, String)> = {
            let mut q = tx
                .prepare_cached(
                    "SELECT c.id, c.replicate, c.point_id, p.spec FROM cells c JOIN points p ON p.id = c.point_id \
                     WHERE c.state = ?1 ORDER BY c.id LIMIT ?2",
                )
                .map_err(e)?;
            let rows = q
                .query_map(params![state::PENDING, max_cells], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(e)?;
            rows.collect::<Result<_, _>>().map_err(e)?
        };
        if !rows.is_empty() {
            // One UPDATE for the batch (see `id_list`).
            tx.prepare_cached(
                "UPDATE cells SET state = ?2, worker_id = ?3, deadline_ms = ?4, attempts = attempts + 1 \
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(e)?
            .execute(params![
                id_list(rows.iter().map(|r| r.0 as u64)),
                state::LEASED,
                worker as i64,
                deadline_ms
            ])
            .map_err(e)?;
        }
        let mut out = Vec::with_capacity(rows.len());
        {
            let mut points: HashMap<i64, GridPoint> = HashMap::new();
            for (id, replicate, point_id, spec) in rows {
                let point = match points.get(&point_id) {
                    Some(p) => p.clone(),
                    None => {
                        let p: GridPoint =
                            serde_json::from_str(&spec).map_err(|err| StoreError::Corrupt {
                                path: path.clone(),
                                reason: format!("points.spec of point {point_id}: {err}"),
                            })?;
                        points.insert(point_id, p.clone());
                        p
                    }
                };
                out.push((
                    id as u64,
                    CellSpec { study_seed: study.seed, point, replicate, settings: study.settings.clone() },
                ));
            }
        }
        tx.commit().map_err(e)?;
        Ok(out)
    }

    /// Extend leases of `worker` to `deadline_ms`. Returns how many were extended.
    ///
    /// Only the cells in `held` (the worker's own list of what it holds) are extended, and only
    /// those still leased to it. A lease the worker does not list — its Lease reply was lost
    /// when the connection or the coordinator died after the lease was committed — is left to
    /// expire, so it returns to the queue instead of being kept alive by a worker that will
    /// never compute it.
    pub fn heartbeat(
        &mut self,
        worker: u64,
        held: &[u64],
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<u32, StoreError> {
        self.touch_worker(worker, now_ms)?;
        let path = self.path.clone();
        let e = |err| super::sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let mut n = 0;
        {
            let mut extend = tx
                .prepare_cached(
                    "UPDATE cells SET deadline_ms = max(deadline_ms, ?4) \
                     WHERE id = ?1 AND state = ?2 AND worker_id = ?3",
                )
                .map_err(e)?;
            for id in held {
                let Ok(id) = i64::try_from(*id) else { continue };
                n += extend.execute(params![id, state::LEASED, worker as i64, deadline_ms]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(n as u32)
    }

    /// Give cells leased to `worker` back to pending without counting a failure (a draining
    /// worker hands back what it did not start). Cells not leased to it are left alone.
    ///
    /// Fails with [`StoreError::UnknownWorker`] for a worker id the store does not know.
    pub fn release(&mut self, worker: u64, cell_ids: &[u64]) -> Result<u32, StoreError> {
        let known: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM workers WHERE id = ?1)", [worker as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !known {
            return Err(StoreError::UnknownWorker(worker));
        }
        let path = self.path.clone();
        let e = |err| super::sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        // One UPDATE for all (see `id_list`); ids beyond i64 name no cell.
        let ids = id_list(cell_ids.iter().copied().filter(|id| i64::try_from(*id).is_ok()));
        let n = tx
            .prepare_cached(
                "UPDATE cells SET state = ?2, deadline_ms = NULL, attempts = max(attempts - 1, 0) \
                 WHERE id IN (SELECT value FROM json_each(?1)) AND state = ?3 AND worker_id = ?4",
            )
            .map_err(e)?
            .execute(params![ids, state::PENDING, state::LEASED, worker as i64])
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n as u32)
    }

    /// Return every lease whose deadline passed to pending, counting a *lost lease* — not a
    /// failure: the worker was lost (killed, pre-empted, cut off, or the coordinator was
    /// down), which is not the cell's fault. A cell that reaches the much higher
    /// lost-lease limit is marked failed all the same, so a cell that kills every worker
    /// that tries it (out of memory) cannot stall the study; its error says so.
    pub fn expire_leases(&mut self, now_ms: i64) -> Result<ExpiryReport, StoreError> {
        let max = i64::from(self.config.max_lost_leases);
        let path = self.path.clone();
        let e = |err| super::sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let failed = tx
            .execute(
                "UPDATE cells SET state = ?1, lost_leases = lost_leases + 1, finished_ms = ?3, \
                 deadline_ms = NULL, error = 'lost its lease ' || (lost_leases + 1) || ' times (limit \
                 --max-lost-leases = ' || ?4 || '): every worker computing it was lost (killed, out of \
                 memory, pre-empted or cut off); the cell may exhaust the workers'' memory or time' \
                 WHERE state = ?2 AND deadline_ms < ?3 AND lost_leases + 1 >= ?4",
                params![state::FAILED, state::LEASED, now_ms, max],
            )
            .map_err(e)?;
        let returned = tx
            .execute(
                "UPDATE cells SET state = ?1, lost_leases = lost_leases + 1, deadline_ms = NULL \
                 WHERE state = ?2 AND deadline_ms < ?3",
                params![state::PENDING, state::LEASED, now_ms],
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        if failed > 0 {
            tracing::warn!(cells = failed, limit = max, "cells failed: their leases expired too often");
        }
        Ok(ExpiryReport { returned: returned as u64, failed: failed as u64 })
    }

    /// Push every lease deadline to at least `deadline_ms`. Called when a coordinator
    /// starts on an existing store: its workers could not heartbeat while it was down and
    /// deserve one lease period to reconnect before their cells are taken back.
    pub fn extend_all_leases(&mut self, deadline_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE cells SET deadline_ms = max(deadline_ms, ?2) WHERE state = ?1",
                params![state::LEASED, deadline_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    /// Commit the uploads of several workers in one transaction (one fsync-free WAL commit
    /// for many results is what makes the coordinator fast). Returns one report per
    /// `(worker, uploads)` entry, in order.
    ///
    /// What happens to each upload (DESIGN: never accept a result for a cell the worker did
    /// not lease, or with NaN where docs/spec.md §8 forbids it):
    /// - cell done or failed: ignored as a duplicate (at-least-once delivery);
    /// - unknown cell id, or a cell the uploader does not hold: *rejected* — quarantined with
    ///   the reason, the cell's state untouched (a stranger cannot fail someone else's cell);
    /// - the holder's result with NaN, ±∞ as a temperature, a key that is not the cell's, or
    ///   an undecodable body: quarantined *and* counted as a failure of the cell — it is the
    ///   cell's own (deterministic) computation, so retrying ends, with the cell failed;
    /// - the holder's error: a failure of the cell;
    /// - the holder's valid result: committed, and the cell is done.
    pub fn commit(
        &mut self,
        batch: &[(u64, Vec<Upload>)],
        now_ms: i64,
    ) -> Result<Vec<CommitReport>, StoreError> {
        let max = self.config.max_failures;
        let path = self.path.clone();
        let e = |err| super::sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let mut reports = Vec::with_capacity(batch.len());
        let (mut dup_total, mut rej_total, mut quarantined_total) = (0i64, 0i64, 0i64);
        {
            let mut look = tx
                .prepare_cached(
                    "SELECT c.state, c.worker_id, c.replicate, c.failures, p.key FROM cells c \
                     JOIN points p ON p.id = c.point_id WHERE c.id = ?1",
                )
                .map_err(e)?;
            let mut insert = tx.prepare_cached(codec::INSERT_RESULT).map_err(e)?;
            // Cells whose results this transaction inserted: marked done by one UPDATE at the
            // end (below), and a second upload for one of them in this batch is a duplicate.
            let mut done_ids: HashSet<u64> = HashSet::new();
            let mut fail = tx
                .prepare_cached(
                    "UPDATE cells SET state = ?2, failures = ?3, error = ?4, deadline_ms = NULL, \
                     finished_ms = CASE WHEN ?2 = 3 THEN ?5 ELSE NULL END WHERE id = ?1",
                )
                .map_err(e)?;
            let mut quarantine = Quarantine::new(&tx, now_ms, &mut self.quarantine_full_logged).map_err(e)?;
            for (worker, uploads) in batch {
                let worker = *worker;
                let mut rep = CommitReport::default();
                for up in uploads {
                    rep.settled.push(up.cell_id);
                    let row: Option<(i64, Option<i64>, u32, u32, String)> = i64::try_from(up.cell_id)
                        .ok()
                        .map(|id| {
                            look.query_row([id], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                            })
                            .optional()
                        })
                        .transpose()
                        .map_err(e)?
                        .flatten();
                    let reject = match &row {
                        None => Some(format!("unknown cell id {}", up.cell_id)),
                        Some((st, ..))
                            if *st == state::DONE
                                || *st == state::FAILED
                                || done_ids.contains(&up.cell_id) =>
                        {
                            rep.duplicates += 1;
                            continue;
                        }
                        Some((_, holder, ..)) if *holder != Some(worker as i64) => Some(match holder {
                            Some(h) => format!(
                                "cell {} is not held by worker {worker}: it was leased to worker {h}",
                                up.cell_id
                            ),
                            None => format!("cell {} was never leased", up.cell_id),
                        }),
                        Some(_) => None,
                    };
                    if let Some(reason) = reject {
                        // Logged per worker and batch below: a worker with a valid token must
                        // not be able to flood the log one upload at a time.
                        tracing::debug!(worker, cell_id = up.cell_id, %reason, "rejected and quarantined an upload");
                        quarantine.put(up, worker, &reason).map_err(e)?;
                        rep.rejected += 1;
                        rep.quarantined += 1;
                        rep.rejections.push((up.cell_id, reason));
                        continue;
                    }
                    let Some((_, _, replicate, failures, point_key)) = row else { continue };
                    // A failure of the cell: its error text, and the reason to quarantine the
                    // upload if it is a bad result rather than the worker's own error.
                    let (error, quarantine_reason) = match &up.outcome {
                        Outcome::Done(r) => {
                            let key = format!("{point_key};r={replicate}");
                            let checked = if r.key.0 == key {
                                codec::check_result(r)
                            } else {
                                // The worker computed what we sent but got another key: the
                                // cell cannot complete this way; count it as a failure so the
                                // study ends (with the cell failed) instead of stalling.
                                Err(format!(
                                    "result key {} does not match the cell key {key}",
                                    codec::clip(&r.key.0, codec::MAX_QUOTED_CHARS)
                                ))
                            };
                            match checked {
                                Ok(()) => {
                                    insert
                                        .execute(params_from_iter(codec::encode(up.cell_id as i64, r)))
                                        .map_err(e)?;
                                    done_ids.insert(up.cell_id);
                                    rep.committed += 1;
                                    continue;
                                }
                                Err(reason) => (format!("quarantined: {reason}"), Some(reason)),
                            }
                        }
                        Outcome::Malformed { reason, .. } => {
                            let reason = format!("malformed result: {reason}");
                            (format!("quarantined: {reason}"), Some(reason))
                        }
                        // The worker's own words, clipped: it controls their length.
                        Outcome::Failed(msg) => (codec::clip(msg, codec::MAX_ERROR_CHARS), None),
                    };
                    if let Some(reason) = quarantine_reason {
                        quarantine.put(up, worker, &reason).map_err(e)?;
                        rep.quarantined += 1;
                        rep.rejections.push((up.cell_id, reason));
                    }
                    let failures = failures + 1;
                    let st = if failures >= max { state::FAILED } else { state::PENDING };
                    fail.execute(params![up.cell_id as i64, st, failures, error, now_ms]).map_err(e)?;
                    count_failure(&mut rep, up.cell_id, failures, st, &error);
                }
                if let Some((cell_id, reason)) = rep.rejections.first() {
                    tracing::warn!(
                        worker,
                        rejected = rep.rejected,
                        quarantined = rep.quarantined,
                        first_cell_id = cell_id,
                        first_reason = %reason,
                        "quarantined uploads instead of committing them"
                    );
                }
                dup_total += i64::from(rep.duplicates);
                rej_total += i64::from(rep.rejected);
                quarantined_total += i64::from(rep.quarantined);
                reports.push(rep);
            }
            if !done_ids.is_empty() {
                tx.prepare_cached(
                    "UPDATE cells SET state = ?2, finished_ms = ?3, deadline_ms = NULL, error = NULL \
                     WHERE id IN (SELECT value FROM json_each(?1))",
                )
                .map_err(e)?
                .execute(params![id_list(done_ids.iter().copied()), state::DONE, now_ms])
                .map_err(e)?;
            }
        }
        if dup_total > 0 || rej_total > 0 || quarantined_total > 0 {
            let mut bump =
                tx.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1").map_err(e)?;
            bump.execute(params!["duplicates_ignored", dup_total]).map_err(e)?;
            bump.execute(params!["results_rejected", rej_total]).map_err(e)?;
            bump.execute(params!["results_quarantined", quarantined_total]).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(reports)
    }
}

/// Cell ids as a JSON array, for `id IN (SELECT value FROM json_each(?))`: one UPDATE for a
/// whole batch. A state change fires the `cell_counts` trigger, and a statement with a
/// trigger copies every page it touches into a statement journal first; per cell that copy
/// of ~5 pages of 16 KiB was the largest cost of a commit (perf, 64 workers).
fn id_list(ids: impl Iterator<Item = u64>) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(']');
    out
}

fn count_failure(rep: &mut CommitReport, cell_id: u64, failures: u32, st: i64, error: &str) {
    if st == state::FAILED {
        tracing::warn!(cell_id, failures, error, "cell failed for good");
        rep.failed += 1;
    } else {
        tracing::info!(cell_id, failures, error, "cell failed; will retry");
        rep.retried += 1;
    }
}

/// Most rows the `quarantine` table keeps. Past it, refused uploads are still refused and
/// counted (`results_quarantined`), but their payload is not stored: a runaway or hostile
/// worker must not fill the disk.
pub const MAX_QUARANTINE_ROWS: i64 = 100_000;

/// Writes refused uploads into the `quarantine` table within the commit's transaction.
struct Quarantine<'c> {
    insert: rusqlite::CachedStatement<'c>,
    rows: i64,
    now_ms: i64,
    /// The store's flag: the "table is full" warning is logged once, not once per commit.
    full_logged: &'c mut bool,
}

impl<'c> Quarantine<'c> {
    fn new(
        tx: &'c rusqlite::Transaction<'_>,
        now_ms: i64,
        full_logged: &'c mut bool,
    ) -> rusqlite::Result<Quarantine<'c>> {
        // Rows are never deleted, so the largest id is the row count (and O(log n) to find).
        let rows: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM quarantine", [], |r| r.get(0))?;
        let insert = tx.prepare_cached(
            "INSERT INTO quarantine(cell_id, worker_id, received_ms, reason, result, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        Ok(Quarantine { insert, rows, now_ms, full_logged })
    }

    fn put(&mut self, up: &Upload, worker: u64, reason: &str) -> rusqlite::Result<()> {
        if self.rows >= MAX_QUARANTINE_ROWS {
            if !*self.full_logged {
                tracing::warn!(
                    limit = MAX_QUARANTINE_ROWS,
                    "the quarantine table is full; refused uploads are only counted now"
                );
                *self.full_logged = true;
            }
            return Ok(());
        }
        let (result, error): (Option<Vec<u8>>, Option<String>) = match &up.outcome {
            Outcome::Done(r) => (Some(taustar_proto::convert::result_to_bytes(r)), None),
            Outcome::Malformed { payload, .. } => (Some(payload.clone()), None),
            Outcome::Failed(msg) => (None, Some(codec::clip(msg, codec::MAX_ERROR_CHARS))),
        };
        // SQLite integers are i64; a cell id beyond that is stored wrapped (it names no cell).
        self.insert.execute(params![
            up.cell_id as i64,
            worker as i64,
            self.now_ms,
            codec::clip(reason, codec::MAX_ERROR_CHARS),
            result,
            error
        ])?;
        self.rows += 1;
        Ok(())
    }
}
