//! Committing uploaded outcomes: a pure decision per upload (`verdict`) and the loop that
//! applies the decisions of a batch in one transaction ([`StudyStore::commit`]).
//!
//! Acceptance rule (DESIGN: never accept a result for a cell the worker did not lease): the
//! cell must be leased to, or have last been leased to, the uploading worker and not be
//! settled yet. So a late result after a lease expired is still accepted as long as nobody
//! else took the cell; once another worker leased it, the old holder's upload is rejected
//! (counted and quarantined), and a second result for a done cell is ignored (counted).

use std::collections::HashSet;

use rusqlite::{params, params_from_iter, OptionalExtension};
use taustar_common::{CellKey, CellResult};

use super::{codec, id_list, state, StoreError, StudyStore};

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

/// The stored bookkeeping of the cell an upload names, as [`verdict`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CellRow {
    /// `cells.state`.
    pub state: i64,
    /// `cells.worker_id`: the current or last lease holder.
    pub holder: Option<i64>,
    /// The replicate (with `point_key`, the cell key a result must carry).
    pub replicate: u32,
    /// Failed computations so far.
    pub failures: u32,
    /// The grid point's canonical key.
    pub point_key: String,
}

/// What to do with one upload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict<'u> {
    /// The cell is settled (done, failed, or committed earlier in this batch): ignore it and
    /// count a duplicate (at-least-once delivery).
    Duplicate,
    /// The uploader does not hold the cell (or there is no such cell): quarantine the upload
    /// with this reason and leave the cell alone — a stranger cannot fail someone else's cell.
    Reject(String),
    /// The holder's valid result: insert it, and the cell is done.
    Commit(&'u CellResult),
    /// A failure of the cell, with the error to record; `quarantine` is the reason to keep the
    /// upload too (a bad result rather than the worker's own error message).
    Fail {
        /// The text stored in `cells.error`.
        error: String,
        /// Why the upload is quarantined, if it is.
        quarantine: Option<String>,
    },
}

/// The decision for one upload by `worker`, from the cell's stored row (`None`: no such cell)
/// and whether a result for the cell was already committed in this batch. Pure: every case
/// is unit-tested in `store::tests::commit`.
///
/// - cell done or failed: a duplicate;
/// - unknown cell id, or a cell the uploader does not hold: rejected;
/// - the holder's result with NaN, ±∞ as a temperature, a key that is not the cell's, or an
///   undecodable body: quarantined *and* a failure of the cell — it is the cell's own
///   (deterministic) computation, so retrying ends, with the cell failed;
/// - the holder's error: a failure of the cell;
/// - the holder's valid result: committed.
pub(crate) fn verdict<'u>(
    row: Option<&CellRow>,
    up: &'u Upload,
    worker: u64,
    committed_in_batch: bool,
) -> Verdict<'u> {
    let Some(row) = row else { return Verdict::Reject(format!("unknown cell id {}", up.cell_id)) };
    if row.state == state::DONE || row.state == state::FAILED || committed_in_batch {
        return Verdict::Duplicate;
    }
    if row.holder != Some(worker as i64) {
        return Verdict::Reject(match row.holder {
            Some(h) => {
                format!("cell {} is not held by worker {worker}: it was leased to worker {h}", up.cell_id)
            }
            None => format!("cell {} was never leased", up.cell_id),
        });
    }
    let bad =
        |reason: String| Verdict::Fail { error: format!("quarantined: {reason}"), quarantine: Some(reason) };
    match &up.outcome {
        Outcome::Done(r) => {
            let key = CellKey::new(&row.point_key, row.replicate);
            if r.key != key {
                // The worker computed what we sent but got another key: the cell cannot
                // complete this way; a failure, so the study ends (with the cell failed)
                // instead of stalling.
                return bad(format!(
                    "result key {} does not match the cell key {key}",
                    codec::clip(&r.key.0, codec::MAX_QUOTED_CHARS)
                ));
            }
            match codec::check_result(r) {
                Ok(()) => Verdict::Commit(r),
                Err(reason) => bad(reason),
            }
        }
        Outcome::Malformed { reason, .. } => bad(format!("malformed result: {reason}")),
        // The worker's own words, clipped: it controls their length.
        Outcome::Failed(msg) => {
            Verdict::Fail { error: codec::clip(msg, codec::MAX_ERROR_CHARS), quarantine: None }
        }
    }
}

impl StudyStore {
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
        // The study's τ grid decides the curve layout (codec); copied out of `self`, which the
        // transaction borrows.
        let grid = self.tau_grid().to_vec();
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
            let mut insert = tx.prepare_cached(codec::insert_result()).map_err(e)?;
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
                    // SQLite ids are i64; a larger id names no cell.
                    let row: Option<CellRow> = i64::try_from(up.cell_id)
                        .ok()
                        .map(|id| {
                            look.query_row([id], |r| {
                                Ok(CellRow {
                                    state: r.get(0)?,
                                    holder: r.get(1)?,
                                    replicate: r.get(2)?,
                                    failures: r.get(3)?,
                                    point_key: r.get(4)?,
                                })
                            })
                            .optional()
                        })
                        .transpose()
                        .map_err(e)?
                        .flatten();
                    match verdict(row.as_ref(), up, worker, done_ids.contains(&up.cell_id)) {
                        Verdict::Duplicate => rep.duplicates += 1,
                        Verdict::Reject(reason) => {
                            // Logged per worker and batch below: a worker with a valid token
                            // must not be able to flood the log one upload at a time.
                            tracing::debug!(worker, cell_id = up.cell_id, %reason, "rejected and quarantined an upload");
                            quarantine.put(up, worker, &reason).map_err(e)?;
                            rep.rejected += 1;
                            rep.quarantined += 1;
                            rep.rejections.push((up.cell_id, reason));
                        }
                        Verdict::Commit(r) => {
                            insert
                                .execute(params_from_iter(codec::encode(up.cell_id as i64, r, &grid)))
                                .map_err(e)?;
                            done_ids.insert(up.cell_id);
                            rep.committed += 1;
                        }
                        Verdict::Fail { error, quarantine: reason } => {
                            if let Some(reason) = reason {
                                quarantine.put(up, worker, &reason).map_err(e)?;
                                rep.quarantined += 1;
                                rep.rejections.push((up.cell_id, reason));
                            }
                            // A failure implies a row (the verdict rejects unknown cells).
                            let failures = row.as_ref().map_or(0, |r| r.failures) + 1;
                            let st = if failures >= max { state::FAILED } else { state::PENDING };
                            fail.execute(params![up.cell_id as i64, st, failures, error, now_ms])
                                .map_err(e)?;
                            count_failure(&mut rep, up.cell_id, failures, st, &error);
                        }
                    }
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
