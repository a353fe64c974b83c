//! The compute side: a rayon pool whose threads report finished cells on a channel, and the
//! drain's hand-over between the pool and the session.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use taustar_common::CellSpec;
use taustar_proto::pb;
use tokio::sync::mpsc;

use crate::config::ComputeFn;
use crate::state::Computed;

/// The compute side: a rayon pool and the channel its threads report on.
pub(crate) struct Compute {
    pub(crate) pool: rayon::ThreadPool,
    pub(crate) f: ComputeFn,
    pub(crate) tx: mpsc::UnboundedSender<Computed>,
    pub(crate) draining: Arc<AtomicBool>,
    /// Cells a rayon thread has started. A thread checks `draining` and inserts its cell
    /// under this lock, and [`Compute::begin_drain`] sets `draining` under it, so at the
    /// drain every leased cell is either started (it will finish) or will never start (it
    /// can be handed back at once, all in one `Release`).
    pub(crate) started: Arc<Mutex<HashSet<u64>>>,
}

impl Compute {
    /// Stop starting cells; returns the cells of `in_flight` no thread has started (they
    /// never will: their queued tasks report [`Computed::NotStarted`], which is ignored for
    /// cells no longer in flight).
    pub(crate) fn begin_drain(&self, in_flight: &HashSet<u64>) -> Vec<u64> {
        let started = self.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.draining.store(true, Ordering::SeqCst);
        let mut unstarted: Vec<u64> = in_flight.iter().filter(|id| !started.contains(id)).copied().collect();
        unstarted.sort_unstable();
        unstarted
    }

    pub(crate) fn submit(&self, worker_id: u64, cell_id: u64, spec: CellSpec) {
        let (f, tx, draining, started_set) =
            (self.f.clone(), self.tx.clone(), self.draining.clone(), self.started.clone());
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
            // A panic in the computation fails this cell (reported, counted against its
            // max_failures) instead of aborting the worker and every cell it holds.
            let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&spec)))
                .unwrap_or_else(|panic| Err(format!("the computation panicked: {}", panic_message(&*panic))));
            let outcome = match computed {
                Ok(r) => pb::result_upload::Outcome::Result((&r).into()),
                Err(e) => pb::result_upload::Outcome::Error(e),
            };
            let seconds = started.elapsed().as_secs_f64();
            let upload =
                pb::ResultUpload { worker_id, cell_id, outcome: Some(outcome), compute_seconds: seconds };
            let _ = tx.send(Computed::Ran { upload: Box::new(upload), seconds });
        });
    }
}

/// The message of a caught panic (`panic!` with a string or a formatted message).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}
