//! What outlives a session (a connection): outcomes not yet acknowledged, cells in flight,
//! the drain's bookkeeping, and the counters the worker reports.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use taustar_proto::pb;

use crate::pool::Compute;

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

/// A finished computation, from a rayon thread to the session loop.
pub(crate) enum Computed {
    /// The cell ran; the upload is ready to send (boxed: a result with its curve is large).
    Ran { upload: Box<pb::ResultUpload>, seconds: f64 },
    /// The cell was not started because the worker is draining.
    NotStarted(u64),
}

/// State that outlives a session (a connection).
pub(crate) struct WorkerState {
    /// Our id at the coordinator (0 before the first registration).
    pub(crate) worker_id: u64,
    /// The store uid of the coordinator we talk to; a change means another study store.
    pub(crate) study_uid: Option<String>,
    /// Outcomes sent or to send, not yet acknowledged, by cell id.
    pub(crate) unacked: BTreeMap<u64, pb::ResultUpload>,
    /// Cells handed to rayon and not finished.
    pub(crate) in_flight: HashSet<u64>,
    /// Cells of a previous store still computing; their outcomes are dropped.
    pub(crate) stale: HashSet<u64>,
    /// Unstarted cells to hand back.
    pub(crate) to_release: Vec<u64>,
    /// The compute side's set of started cells; a cell leaves it only when its outcome is
    /// recorded here, so a cell that finished but is not yet recorded still counts as
    /// started at the drain (handing it back would get its result rejected).
    pub(crate) started: Arc<Mutex<HashSet<u64>>>,
    /// EWMA of a cell's wall time in seconds (0 = unknown).
    pub(crate) mean_cell_seconds: f64,
    /// The coordinator said every cell is settled.
    pub(crate) study_done: bool,
    /// Counters.
    pub(crate) report: WorkerReport,
}

impl WorkerState {
    pub(crate) fn finished(&self, draining: bool) -> bool {
        let idle = self.in_flight.is_empty() && self.unacked.is_empty() && self.to_release.is_empty();
        idle && (self.study_done || draining)
    }

    /// The cells whose leases the heartbeat should extend: queued or running for the current
    /// store, or computed and not yet acknowledged. Sorted, for a stable message.
    pub(crate) fn held(&self) -> Vec<u64> {
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
    pub(crate) fn start_drain(&mut self, compute: &Compute) -> usize {
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

    pub(crate) fn record(&mut self, computed: Computed) {
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
