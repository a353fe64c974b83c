//! The writer side of the store: workers, leases, heartbeats, releases and expiry. Outcomes
//! are committed in [`super::commit`].
//!
//! Every method takes the current time as unix milliseconds (`now_ms`) instead of reading a
//! clock, so the lease logic is testable with tokio's paused time (the caller's
//! [`crate::clock::LeaseClock`] derives wall time from tokio's clock) and deadlines survive a
//! restart (they are wall-clock instants in the file).
//!
use std::collections::HashMap;

use rusqlite::params;
use taustar_common::{CellSpec, GridPoint};

use super::{id_list, state, StoreError, StudyStore};

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
    /// Overdue leases this call expired first (only when nothing was pending).
    pub expired: ExpiryReport,
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
        let mut expired = ExpiryReport::default();
        if cells.is_empty() {
            expired = self.expire_leases(now_ms)?;
            if expired.returned > 0 {
                cells = self.lease_pending(worker, max_cells, deadline_ms)?;
            }
        }
        if !cells.is_empty() {
            return Ok(LeaseBatch { state: LeaseState::Work, cells, expired });
        }
        let leased: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM cells WHERE state = ?1)", [state::LEASED], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(LeaseBatch { state: if leased { LeaseState::Wait } else { LeaseState::Done }, cells, expired })
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
}
