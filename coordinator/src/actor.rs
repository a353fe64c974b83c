//! The store writer: one task owns the [`StudyStore`]; everyone else sends it jobs.
//!
//! SQLite allows one writer at a time, and a commit costs the same whether it carries one
//! result or a thousand. So a single task owns the writing connection and, when it finds
//! several result commits queued, applies them in one transaction (up to
//! [`MAX_RESULTS_PER_TRANSACTION`]). Each job runs on tokio's blocking pool
//! (`spawn_blocking`) so the async runtime never waits on disk — and so tokio's paused test
//! clock does not auto-advance while a job is running.
//!
//! Shutdown: when the last [`StoreHandle`] is dropped, the task finishes the queued jobs and
//! returns the store; dropping it closes the connection (which checkpoints the WAL).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::LeaseClock;
use crate::store::{CommitReport, StoreError, StudyStore, Upload};

/// Most results committed in one transaction.
pub const MAX_RESULTS_PER_TRANSACTION: usize = 4096;

/// Queue depth of the writer; senders wait when it is full (backpressure on uploads).
const QUEUE: usize = 1024;

type Call = Box<dyn FnOnce(&mut StudyStore) + Send>;

/// Where the outcome of a commit goes: per result stream, so acks keep their order.
pub type CommitReply = mpsc::UnboundedSender<Result<CommitReport, WriterError>>;

enum Job {
    Commit { worker: u64, uploads: Vec<Upload>, reply: CommitReply },
    Call(Call),
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

impl From<StoreError> for WriterError {
    fn from(e: StoreError) -> Self {
        WriterError::Store(Arc::new(e))
    }
}

/// A cloneable handle to the store writer.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Job>,
    clock: LeaseClock,
}

impl StoreHandle {
    /// Start the writer task owning `store`. The join handle yields the store back once
    /// every handle is dropped and the queue is drained.
    pub fn spawn(store: StudyStore, clock: LeaseClock) -> (StoreHandle, JoinHandle<Option<StudyStore>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, rx, clock));
        (StoreHandle { tx, clock }, task)
    }

    /// The clock the writer stamps commits with.
    pub fn clock(&self) -> LeaseClock {
        self.clock
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
        self.tx.send(Job::Call(job)).await.map_err(|_| WriterError::Stopped)?;
        rx.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::from)
    }

    /// Queue `uploads` of `worker` for commit; the report arrives on `reply`. Returns once
    /// queued (waits only if the writer's queue is full).
    pub async fn commit(
        &self,
        worker: u64,
        uploads: Vec<Upload>,
        reply: CommitReply,
    ) -> Result<(), WriterError> {
        self.tx.send(Job::Commit { worker, uploads, reply }).await.map_err(|_| WriterError::Stopped)
    }
}

async fn run(mut store: StudyStore, mut rx: mpsc::Receiver<Job>, clock: LeaseClock) -> Option<StudyStore> {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => break,
            },
        };
        match job {
            Job::Call(f) => {
                store = match tokio::task::spawn_blocking(move || {
                    f(&mut store);
                    store
                })
                .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "a study store job panicked; the writer stops");
                        return None;
                    }
                };
            }
            Job::Commit { worker, uploads, reply } => {
                let mut count = uploads.len();
                let mut batch = vec![(worker, uploads)];
                let mut replies = vec![reply];
                while count < MAX_RESULTS_PER_TRANSACTION {
                    match rx.try_recv() {
                        Ok(Job::Commit { worker, uploads, reply }) => {
                            count += uploads.len();
                            batch.push((worker, uploads));
                            replies.push(reply);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let now = clock.now_ms();
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
                match result {
                    Ok(reports) => {
                        for (reply, rep) in replies.into_iter().zip(reports) {
                            let _ = reply.send(Ok(rep));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "committing a batch of results failed");
                        let e = WriterError::from(e);
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
    }
    Some(store)
}
