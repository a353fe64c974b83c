//! The gRPC `Coordinator` service: thin handlers over the store writer.
//!
//! Each handler converts wire messages (through `taustar_proto::convert`, the one
//! conversion module), asks the [`StoreHandle`] to do the work, and converts back. The
//! handlers hold no cell state of their own: everything a restart must keep is in SQLite.
//!
//! Result streams (`Results`) are bidirectional: a reader task forwards every upload to the
//! store writer as soon as it arrives (the writer batches uploads of all streams into one
//! transaction), and a forwarder task turns each commit report into an acknowledgement.
//!
//! Shutdown is a *drain*, not a cut: once it begins only `Lease` changes (it answers
//! `DRAINING`); `Results` keeps committing and `Release` keeps returning cells, because the
//! workers are usually stopped at the same moment (scancel, `kubectl delete`) and are
//! finishing their running cells and handing back the rest. The server ends the drain —
//! [`CoordinatorService::close_streams`] — when no cell is leased any more or the grace
//! period is over; the readers then end their streams, and a worker keeps anything
//! unacknowledged and re-sends it to the next coordinator.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taustar_proto::{pb, PROTOCOL_VERSION};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::batch::BatchPolicy;
use crate::shutdown::Shutdown;
use crate::store::lease::ExpiryReport;
use crate::store::{LeaseState, Outcome, StoreError, StudyStatus, StudyStore, Upload};
use crate::writer::{StoreHandle, WriterError};

/// Tunables of the service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often workers should heartbeat (told to them at registration).
    pub heartbeat: Duration,
    /// Cells per lease.
    pub batch: BatchPolicy,
    /// Longest drain after shutdown begins: result streams keep committing and `Release`
    /// keeps working until no cell is leased or this much time has passed. Long enough for
    /// a worker stopped at the same moment to finish a running cell; short enough to end
    /// before Slurm's and Kubernetes' default 30 s between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            batch: BatchPolicy::default(),
            grace: Duration::from_secs(15),
        }
    }
}

/// State shared by every handler and task of the service.
pub struct Shared {
    /// The store writer.
    pub store: StoreHandle,
    /// A read-only connection for status queries, so they never queue behind commits.
    reader: Arc<Mutex<StudyStore>>,
    /// Tunables.
    pub config: ServiceConfig,
    /// The study's name (for Register replies).
    study_name: String,
    /// The store's uid (workers detect a store swap through it).
    study_uid: String,
    /// The transport's message limit, announced at registration so that a worker turns a
    /// result too large to send into an error outcome instead of re-sending it forever.
    max_message_bytes: usize,
    /// Set when shutdown begins: no more leases are handed out.
    draining: AtomicBool,
    /// Set by the monitor once every cell is settled.
    finished: AtomicBool,
    /// Broadcasts the shutdown signal to stream tasks.
    notify_shutdown: broadcast::Sender<()>,
    /// Set to `true` when the drain ends: result streams stop reading.
    close_streams: watch::Sender<bool>,
    /// Upgraded into a token held by every stream task; the server keeps the only strong
    /// sender outside those tasks and, at shutdown, drops it and waits until the channel
    /// closes (every stream task has ended). Weak, so the service itself never keeps the
    /// channel open.
    task_done: mpsc::WeakSender<()>,
}

/// The tonic service (cheap to clone).
#[derive(Clone)]
pub struct CoordinatorService {
    shared: Arc<Shared>,
}

impl CoordinatorService {
    /// A service over `store`; `reader` is a read-only connection to the same file;
    /// `max_message_bytes` is the transport's limit (see [`crate::server::TransportLimits`]).
    /// `notify_shutdown` and `task_done` implement the shutdown pattern of [`crate::shutdown`].
    pub fn new(
        store: StoreHandle,
        reader: StudyStore,
        config: ServiceConfig,
        max_message_bytes: usize,
        notify_shutdown: broadcast::Sender<()>,
        task_done: mpsc::Sender<()>,
    ) -> CoordinatorService {
        let study_name = reader.study_name().unwrap_or_default().to_string();
        let study_uid = reader.study_uid().unwrap_or_default().to_string();
        CoordinatorService {
            shared: Arc::new(Shared {
                store,
                reader: Arc::new(Mutex::new(reader)),
                config,
                study_name,
                study_uid,
                max_message_bytes,
                draining: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                notify_shutdown,
                close_streams: watch::Sender::new(false),
                task_done: task_done.downgrade(),
            }),
        }
    }

    /// Stop handing out leases (shutdown has begun).
    pub fn begin_draining(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
    }

    /// End the drain: result streams stop reading (what was read is still committed and
    /// acknowledged). Called by the server once no cell is leased or the grace period passed.
    pub fn close_streams(&self) {
        self.shared.close_streams.send_replace(true);
    }

    /// Record whether every cell is settled (set by the server's monitor).
    pub fn set_finished(&self, finished: bool) {
        self.shared.finished.store(finished, Ordering::SeqCst);
    }

    /// Progress from the read-only connection.
    pub async fn status(&self) -> Result<StudyStatus, WriterError> {
        let reader = self.shared.reader.clone();
        let now = self.shared.store.clock().now_ms();
        tokio::task::spawn_blocking(move || {
            let guard = reader.lock().map_err(|_| WriterError::Stopped)?;
            guard.status(now).map_err(WriterError::from)
        })
        .await
        .map_err(|_| WriterError::Stopped)?
    }

    /// Return expired leases to pending (the server's monitor calls this every sweep).
    pub async fn sweep_expired_leases(&self) -> Result<ExpiryReport, WriterError> {
        let clock = self.shared.store.clock();
        let r = self.shared.store.call(move |s| s.expire_leases(clock.now_ms())).await?;
        self.metrics().observe_lost_leases(r.returned + r.failed);
        Ok(r)
    }

    /// The coordinator's metrics.
    pub fn metrics(&self) -> &std::sync::Arc<crate::metrics::Metrics> {
        self.shared.store.metrics()
    }

    /// The store writer.
    pub fn store(&self) -> &StoreHandle {
        &self.shared.store
    }
}

fn to_status(e: WriterError) -> Status {
    match &e {
        WriterError::Store(inner) if matches!(**inner, StoreError::UnknownWorker(_)) => {
            Status::not_found(e.to_string())
        }
        WriterError::Stopped => Status::unavailable(e.to_string()),
        // Retryable once space is freed: workers keep their results and back off.
        WriterError::Store(inner) if inner.is_disk_full() => Status::unavailable(format!(
            "{e}: the coordinator cannot write to its study store until space is freed; keep \
             computed results and retry"
        )),
        WriterError::Store(_) => Status::internal(e.to_string()),
    }
}

fn status_to_wire(s: &StudyStatus) -> pb::StudyStatus {
    pb::StudyStatus {
        study_name: s.study_name.clone(),
        cells_total: s.cells_total,
        cells_pending: s.cells_pending,
        cells_leased: s.cells_leased,
        cells_done: s.cells_done,
        cells_failed: s.cells_failed,
        duplicates_ignored: s.duplicates_ignored,
        results_rejected: s.results_rejected,
        results_quarantined: s.results_quarantined,
        throughput_per_s: s.throughput_per_s,
        eta_seconds: s.eta_seconds.unwrap_or(-1.0),
        workers_active: s.workers_active as u32,
        finished: s.finished,
        disk_free_bytes: s.disk_free_bytes,
    }
}

/// Most cell ids one `Release` or `Heartbeat` may carry: a worker holds at most a few leases of at most
/// [`BatchPolicy::max_cells`] cells, so far more is a bug or an attack, and each id costs
/// the store writer work.
pub const MAX_IDS_PER_CALL: usize = 65_536;

/// Refuse a request whose id list (`field`) is longer than [`MAX_IDS_PER_CALL`].
fn check_ids(field: &str, n: usize) -> Result<(), Status> {
    if n > MAX_IDS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "{field} holds {n} ids; at most {MAX_IDS_PER_CALL} per call"
        )));
    }
    Ok(())
}

/// Longest worker name or version string stored, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A wire upload as the store sees it: a result that does not convert is kept as received
/// ([`Outcome::Malformed`]) so it can be quarantined. Public so tests drive the exact path
/// of the `Results` stream without a network.
pub fn upload_from_wire(up: pb::ResultUpload) -> Upload {
    let outcome = match up.outcome {
        Some(pb::result_upload::Outcome::Result(r)) => match taustar_common::CellResult::try_from(&r) {
            Ok(c) => Outcome::Done(c),
            Err(e) => Outcome::Malformed {
                reason: e.to_string(),
                payload: taustar_proto::convert::wire_result_to_bytes(&r),
            },
        },
        Some(pb::result_upload::Outcome::Error(msg)) => Outcome::Failed(msg),
        None => Outcome::Failed(format!(
            "ResultUpload.outcome is missing for cell_id {}: neither a result nor an error",
            up.cell_id
        )),
    };
    Upload { cell_id: up.cell_id, outcome }
}

type BoxStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::coordinator_server::Coordinator for CoordinatorService {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        let r = req.into_inner();
        if r.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "worker {:?} speaks taustar protocol version {} but this coordinator speaks version \
                 {PROTOCOL_VERSION}; run the same taustar release on workers and coordinator",
                crate::store::codec::clip(&r.name, MAX_NAME_CHARS),
                r.protocol_version
            )));
        }
        let clock = self.shared.store.clock();
        // The worker chooses these strings; the store keeps them, clipped.
        let name = crate::store::codec::clip(&r.name, MAX_NAME_CHARS);
        let version = crate::store::codec::clip(&r.version, MAX_NAME_CHARS);
        let (cores, prev) = (r.cores, r.previous_worker_id);
        let (name_log, version_log) = (name.clone(), version.clone());
        let id = self
            .shared
            .store
            .call(move |s| s.register_worker(prev, &name, cores, &version, clock.now_ms()))
            .await
            .map_err(to_status)?;
        self.metrics().worker_seen(id, Some(&name_log));
        tracing::info!(worker = id, name = %name_log, cores, version = %version_log, "worker registered");
        Ok(Response::new(pb::RegisterReply {
            worker_id: id,
            study_name: self.shared.study_name.clone(),
            study_uid: self.shared.study_uid.clone(),
            lease_ms: self.shared.config.lease.as_millis() as u32,
            heartbeat_ms: self.shared.config.heartbeat.as_millis() as u32,
            protocol_version: PROTOCOL_VERSION,
            max_message_bytes: self.shared.max_message_bytes as u64,
        }))
    }

    async fn lease(&self, req: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseReply>, Status> {
        let r = req.into_inner();
        let lease_ms = self.shared.config.lease.as_millis() as u32;
        if self.shared.draining.load(Ordering::SeqCst) {
            return Ok(Response::new(pb::LeaseReply {
                state: pb::lease_reply::State::Draining as i32,
                cells: vec![],
                retry_after_ms: 1000,
                lease_ms,
            }));
        }
        // `cells_for` clamps whatever the worker claims (0, NaN, u32::MAX threads) into
        // 1..=max_cells: a worker cannot lease the whole study in one call.
        let n = self.shared.config.batch.cells_for(r.threads, r.mean_cell_seconds);
        let clock = self.shared.store.clock();
        let lease = self.shared.config.lease;
        let worker = r.worker_id;
        self.metrics().worker_seen(worker, None);
        let batch = self
            .shared
            .store
            .call(move |s| {
                let now = clock.now_ms();
                s.lease(worker, n, now, now + lease.as_millis() as i64)
            })
            .await
            .map_err(to_status)?;
        self.metrics().observe_lost_leases(batch.expired.returned + batch.expired.failed);
        let state = match batch.state {
            LeaseState::Work => pb::lease_reply::State::Work,
            LeaseState::Wait => pb::lease_reply::State::Wait,
            LeaseState::Done => pb::lease_reply::State::Done,
        };
        if !batch.cells.is_empty() {
            tracing::debug!(worker, cells = batch.cells.len(), "leased");
        }
        Ok(Response::new(pb::LeaseReply {
            state: state as i32,
            cells: batch
                .cells
                .iter()
                .map(|(id, spec)| pb::LeasedCell { cell_id: *id, spec: Some(spec.into()) })
                .collect(),
            retry_after_ms: 500,
            lease_ms,
        }))
    }

    type ResultsStream = BoxStream<pb::ResultAck>;

    async fn results(
        &self,
        req: Request<Streaming<pb::ResultUpload>>,
    ) -> Result<Response<Self::ResultsStream>, Status> {
        let mut inbound = req.into_inner();
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::ResultAck, Status>>(256);
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
        // Why the reader ended the stream, sent to the client after the acks of everything
        // read before (a protocol violation, not a disconnect).
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<Status>();
        let shared = self.shared.clone();
        let mut close = shared.close_streams.subscribe();
        let reader_token = shared.task_done.upgrade();
        let forwarder_token = shared.task_done.upgrade();
        let metrics = self.metrics().clone();
        tokio::spawn(async move {
            let _token = reader_token;
            // One stream carries one worker's results: the first upload names the worker.
            let mut stream_worker: Option<u64> = None;
            let mut end_tx = Some(end_tx);
            loop {
                let msg = tokio::select! {
                    m = inbound.message() => m,
                    _ = close.wait_for(|closed| *closed) => break,
                };
                match msg {
                    Ok(Some(up)) => {
                        let worker = up.worker_id;
                        let bound = *stream_worker.get_or_insert(worker);
                        if worker != bound {
                            tracing::warn!(worker, bound, "an upload for another worker on a result stream");
                            if let Some(tx) = end_tx.take() {
                                let _ = tx.send(Status::invalid_argument(format!(
                                    "ResultUpload.worker_id = {worker} on a result stream opened by worker \
                                     {bound}; one stream carries one worker's results"
                                )));
                            }
                            break;
                        }
                        if shared
                            .store
                            .commit(worker, vec![upload_from_wire(up)], rep_tx.clone())
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "result stream ended by the worker side");
                        break;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let _token = forwarder_token;
            while let Some(rep) = rep_rx.recv().await {
                if let Ok(r) = &rep {
                    metrics.observe_commit(r);
                }
                let msg = rep
                    .map(|r| pb::ResultAck {
                        cell_ids: r.settled,
                        committed: r.committed,
                        duplicates: r.duplicates,
                        rejected: r.rejected,
                        rejections: r
                            .rejections
                            .into_iter()
                            .map(|(cell_id, reason)| pb::Rejection { cell_id, reason })
                            .collect(),
                        quarantined: r.quarantined,
                    })
                    .map_err(|e| Status::unavailable(format!("committing results failed: {e}")));
                if out_tx.send(msg).await.is_err() {
                    return;
                }
            }
            if let Ok(status) = end_rx.await {
                let _ = out_tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let r = req.into_inner();
        check_ids("HeartbeatRequest.cell_ids", r.cell_ids.len())?;
        self.metrics().worker_seen(r.worker_id, None);
        let clock = self.shared.store.clock();
        let lease = self.shared.config.lease;
        let n = self
            .shared
            .store
            .call(move |s| {
                let now = clock.now_ms();
                s.heartbeat(r.worker_id, &r.cell_ids, now, now + lease.as_millis() as i64)
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::HeartbeatReply {
            leases_extended: n,
            study_done: self.shared.finished.load(Ordering::SeqCst),
        }))
    }

    async fn release(&self, req: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseReply>, Status> {
        let r = req.into_inner();
        check_ids("ReleaseRequest.cell_ids", r.cell_ids.len())?;
        let n =
            self.shared.store.call(move |s| s.release(r.worker_id, &r.cell_ids)).await.map_err(to_status)?;
        tracing::info!(worker = r.worker_id, released = n, "worker handed back leased cells");
        Ok(Response::new(pb::ReleaseReply { released: n }))
    }

    async fn status(&self, _req: Request<pb::StatusRequest>) -> Result<Response<pb::StudyStatus>, Status> {
        let s = CoordinatorService::status(self).await.map_err(to_status)?;
        Ok(Response::new(status_to_wire(&s)))
    }

    type WatchStream = BoxStream<pb::StudyStatus>;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let every = Duration::from_millis(u64::from(req.into_inner().interval_ms).max(200));
        let (tx, rx) = mpsc::channel(4);
        let me = self.clone();
        let mut shutdown = Shutdown::new(self.shared.notify_shutdown.subscribe());
        let token = self.shared.task_done.upgrade();
        tokio::spawn(async move {
            let _token = token;
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.recv() => break,
                }
                let msg = me.status().await.map(|s| status_to_wire(&s)).map_err(to_status);
                let finished = matches!(&msg, Ok(s) if s.finished);
                if tx.send(msg).await.is_err() || finished {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
