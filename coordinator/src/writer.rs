//! The store writer: one task owns the [`StudyStore`]; everyone else sends it jobs.
//!
//! SQLite allows one writer at a time, and a commit costs about the same whether it carries
//! one result or a thousand. So a single task owns the writing connection and, when it
//! finds several result commits queued, applies them in one transaction (up to
//! [`MAX_RESULTS_PER_TRANSACTION`]). Each job runs on tokio's blocking pool
//! (`spawn_blocking`) so the async runtime never waits on disk — and so tokio's paused test
//! clock does not auto-advance while a job is running.
//!
//! Two queues: calls (lease, heartbeat, register, release, sweep) go before queued result
//! commits, so a worker asking for work waits for at most the one transaction in progress,
//! not for every result queued before it (with 64 workers streaming, the commit queue is
//! rarely empty). The order matters in one case only: a sweep (or a lease once nothing is
//! pending) that runs ahead of a queued commit can expire and re-lease a cell whose late
//! result is in that commit; the result is then refused (quarantined) and the cell computed
//! again by its new holder. That costs one computation, never a wrong or double result.
//!
//! WAL checkpoints run beside the writer, not inside its commits (`Checkpointer`).
//!
//! Shutdown: when the last [`StoreHandle`] is dropped, the task finishes the queued jobs,
//! stops the checkpointer and returns the store; dropping it closes the connection (which
//! checkpoints the WAL).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::LeaseClock;
use crate::metrics::Metrics;
use crate::store::{CommitReport, StoreError, StudyStore, Upload};

/// Most results committed in one transaction.
pub const MAX_RESULTS_PER_TRANSACTION: usize = 4096;

/// Depth of each queue of the writer; senders wait when it is full (backpressure on uploads).
const QUEUE: usize = 1024;

type Call = Box<dyn FnOnce(&mut StudyStore) + Send>;

/// Where the outcome of a commit goes: per result stream, so acks keep their order.
pub type CommitReply = mpsc::UnboundedSender<Result<CommitReport, WriterError>>;

struct Commit {
    worker: u64,
    uploads: Vec<Upload>,
    reply: CommitReply,
}

/// A failure of the writer as seen by one caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    /// The store failed; shared by every caller of the failed transaction.
    #[error("{0}")]
    Store(Arc<StoreError>),
    /// The writer task is gone (shutdown, or it panicked).
    #[error("the study store writer has stopped")]
    Stopped,
}

impl WriterError {
    /// Whether the store refused a write for lack of space (see [`StoreError::is_disk_full`]).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WriterError::Store(e) if e.is_disk_full())
    }
}

impl From<StoreError> for WriterError {
    fn from(e: StoreError) -> Self {
        WriterError::Store(Arc::new(e))
    }
}

/// A cloneable handle to the store writer.
#[derive(Clone)]
pub struct StoreHandle {
    calls: mpsc::Sender<Call>,
    commits: mpsc::Sender<Commit>,
    clock: LeaseClock,
    metrics: Arc<Metrics>,
}

impl StoreHandle {
    /// Start the writer task owning `store`. The join handle yields the store back once
    /// every handle is dropped and the queue is drained.
    pub fn spawn(store: StudyStore, clock: LeaseClock) -> (StoreHandle, JoinHandle<Option<StudyStore>>) {
        let (calls, call_rx) = mpsc::channel(QUEUE);
        let (commits, commit_rx) = mpsc::channel(QUEUE);
        let checkpointer = Checkpointer::start(store.path());
        let metrics = Arc::new(Metrics::default());
        let task_metrics = metrics.clone();
        let task = tokio::spawn(async move {
            let store = run(store, call_rx, commit_rx, clock, &task_metrics).await;
            // Dropping joins the thread, which may be mid-checkpoint (or waiting out a busy
            // timeout): not on a runtime thread.
            let _ = tokio::task::spawn_blocking(move || drop(checkpointer)).await;
            store
        });
        (StoreHandle { calls, commits, clock, metrics }, task)
    }

    /// The clock the writer stamps commits with.
    pub fn clock(&self) -> LeaseClock {
        self.clock
    }

    /// The coordinator's metrics (the writer records commit times and write failures).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Run `f` on the store (on the blocking pool) and return its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, WriterError>
    where
        T: Send + 'static,
        F: FnOnce(&mut StudyStore) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Call = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.calls.send(job).await.map_err(|_| WriterError::Stopped)?;
        let result = rx.await.map_err(|_| WriterError::Stopped)?;
        // Every call writes (lease, heartbeat, register, release, sweep), so a SQLite failure
        // here is the store refusing writes (a full disk, an I/O error) and marks it failing.
        // A success does not mark it writable again: a small call can succeed on a full disk
        // (its pages fit in WAL space already allocated) while every commit of results fails;
        // only a commit of results does (in `run`).
        if let Err(e @ StoreError::Sqlite { .. }) = &result {
            log_store_state(self.metrics.observe_write(false), Some(e));
        }
        result.map_err(WriterError::from)
    }

    /// Queue `uploads` of `worker` for commit; the report arrives on `reply`. Returns once
    /// queued (waits only if the writer's queue is full).
    pub async fn commit(
        &self,
        worker: u64,
        uploads: Vec<Upload>,
        reply: CommitReply,
    ) -> Result<(), WriterError> {
        self.commits.send(Commit { worker, uploads, reply }).await.map_err(|_| WriterError::Stopped)
    }
}

async fn run(
    mut store: StudyStore,
    mut calls: mpsc::Receiver<Call>,
    mut commits: mpsc::Receiver<Commit>,
    clock: LeaseClock,
    metrics: &Metrics,
) -> Option<StudyStore> {
    let (mut calls_open, mut commits_open) = (true, true);
    while calls_open || commits_open {
        // `biased`: a queued call always goes before queued commits.
        let first = tokio::select! {
            biased;
            c = calls.recv(), if calls_open => match c {
                Some(f) => {
                    store = call(store, f).await?;
                    continue;
                }
                None => {
                    calls_open = false;
                    continue;
                }
            },
            c = commits.recv(), if commits_open => match c {
                Some(c) => c,
                None => {
                    commits_open = false;
                    continue;
                }
            },
        };
        let mut count = first.uploads.len();
        let mut batch = vec![(first.worker, first.uploads)];
        let mut replies = vec![first.reply];
        while count < MAX_RESULTS_PER_TRANSACTION {
            match commits.try_recv() {
                Ok(c) => {
                    count += c.uploads.len();
                    batch.push((c.worker, c.uploads));
                    replies.push(c.reply);
                }
                Err(_) => break,
            }
        }
        let now = clock.now_ms();
        let started = std::time::Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let r = store.commit(&batch, now);
            (store, r)
        })
        .await;
        let (s, result) = match joined {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "committing results panicked; the writer stops");
                return None;
            }
        };
        store = s;
        let changed = metrics.observe_transaction(started.elapsed(), result.is_ok());
        log_store_state(changed, result.as_ref().err());
        match result {
            Ok(reports) => {
                for (reply, rep) in replies.into_iter().zip(reports) {
                    let _ = reply.send(Ok(rep));
                }
            }
            Err(e) => {
                // Logged once per change of state (log_store_state), not per batch: with the
                // disk full every worker retries every few seconds.
                tracing::debug!(error = %e, "committing a batch of results failed");
                let e = WriterError::from(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    Some(store)
}

/// Log a change of the store's writability: the first failed write (with why and what
/// happens meanwhile) and the first success after failures.
fn log_store_state(changed: bool, error: Option<&StoreError>) {
    match (changed, error) {
        (true, Some(e)) if e.is_disk_full() => tracing::error!(
            error = %e,
            "the study store's filesystem is full: nothing more is committed until space is freed; \
             workers keep their computed results and retry, committed results are safe"
        ),
        (true, Some(e)) => tracing::error!(
            error = %e,
            "writing to the study store failed; workers keep their computed results and retry"
        ),
        (true, None) => tracing::info!("the study store is writable again; committing resumes"),
        (false, _) => {}
    }
}

/// Run one call on the blocking pool; `None` if it panicked (the writer stops).
async fn call(mut store: StudyStore, f: Call) -> Option<StudyStore> {
    match tokio::task::spawn_blocking(move || {
        f(&mut store);
        store
    })
    .await
    {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "a study store job panicked; the writer stops");
            None
        }
    }
}

/// How often the checkpointer copies the WAL into the database file. The WAL starts over
/// only after a checkpoint has copied every frame, and a pass here copies the frames present
/// when it starts: under sustained load the writer has appended more by then, so the WAL
/// reaches SQLite's automatic checkpoint threshold (1000 pages of 16 KiB) and the writer
/// copies the rest itself (perf at 12 000 results/s: 80 % of checkpoint time in the writer).
/// This thread takes the copying off the writer whenever the writer pauses. Keeping the
/// writer out of it entirely was tried: the WAL grew to 650 MB, a RESTART starving behind
/// the busy writer.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Failed checkpoints in a row per log line (one a minute at [`CHECKPOINT_EVERY`]).
const CHECKPOINT_FAILURES_PER_LOG: u64 = 600;

/// WAL frames (pages) above which the checkpointer makes the writer wait for a full
/// checkpoint: 16 384 pages of 16 KiB = 256 MiB of WAL at most.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// WAL checkpoints on a thread of their own.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the
/// writer stops to copy the WAL into the database file and fsync both while results queue.
/// Here a thread with its own connection does most of that in parallel: a PASSIVE
/// checkpoint never blocks the writer, and once it has copied every frame the writer's next
/// transaction writes the WAL from its beginning again. The writer keeps SQLite's automatic
/// checkpoint (under sustained load it does most of the copying: see [`CHECKPOINT_EVERY`]). Should the WAL still grow past
/// [`WAL_RESTART_FRAMES`] (a passive checkpoint that never catches up), the thread runs a
/// RESTART checkpoint, which waits for the transaction in progress and resets the WAL.
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Start checkpointing `db`; `None` (the writer checkpoints alone) if that fails.
    fn start(db: &Path) -> Option<Checkpointer> {
        let conn = match open_checkpoint_connection(db) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(db = %db.display(), error = %e, "no WAL checkpointer thread; the writer checkpoints inside commits");
                return None;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("taustar-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &flag));
        match thread {
            Ok(t) => Some(Checkpointer { stop, thread: Some(t) }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the WAL checkpointer thread; the writer checkpoints inside commits");
                None
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_checkpoint_connection(db: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

fn checkpoint_loop(conn: &rusqlite::Connection, stop: &AtomicBool) {
    // `PRAGMA wal_checkpoint` answers (busy, frames in the WAL, frames checkpointed).
    let checkpoint = |mode: &str| -> rusqlite::Result<i64> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
    };
    let mut failures: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(CHECKPOINT_EVERY);
        match checkpoint("PASSIVE") {
            Ok(frames) if frames > WAL_RESTART_FRAMES => {
                if let Err(e) = checkpoint("RESTART") {
                    tracing::warn!(error = %e, frames, "WAL restart checkpoint failed");
                }
            }
            Ok(_) => failures = 0,
            // Every CHECKPOINT_EVERY while the disk is full: the first failure and then one
            // line a minute, not ten a second.
            Err(e) => {
                if failures.is_multiple_of(CHECKPOINT_FAILURES_PER_LOG) {
                    tracing::warn!(error = %e, failures = failures + 1, "WAL checkpoint failed");
                }
                failures += 1;
            }
        }
    }
}
