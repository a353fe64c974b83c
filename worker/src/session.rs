//! One connection to the coordinator: register, stream results, lease, heartbeat.
//! See the crate docs for the life cycle; this module only returns how the session ended.

use std::time::Duration;

use taustar_common::CellSpec;
use taustar_proto::pb::coordinator_client::CoordinatorClient;
use taustar_proto::pb::{self, lease_reply::State};
use taustar_proto::PROTOCOL_VERSION;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::pool::Compute;
use crate::state::{Computed, WorkerState};
use crate::WorkerConfig;

/// How a session ended.
pub(crate) enum End {
    /// Study done (or drain complete) and everything delivered.
    Finished,
    /// The coordinator refused us for good (protocol version).
    Refused(String),
    /// The coordinator rejected our token (or its absence).
    Unauthenticated(String),
    /// The connection broke; reconnect. `reached`: we had registered in this session.
    Lost { error: String, reached: bool },
}

fn lost(error: impl std::fmt::Display, reached: bool) -> End {
    End::Lost { error: error.to_string(), reached }
}

async fn connect(url: &str, tls: Option<&tonic::transport::ClientTlsConfig>) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| e.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.clone()).map_err(|e| crate::tls::error_chain(&e))?;
    }
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .connect()
        .await
        // The whole chain: a TLS failure ("invalid peer certificate: UnknownIssuer") is
        // several sources below tonic's "transport error".
        .map_err(|e| crate::tls::error_chain(&e))
}

/// A live connection: the client, the result stream's sender and what the lease pacing
/// remembers. Its handlers are the session's state machine; each returns `Err(End)` when the
/// session is over.
struct Session<'a> {
    config: &'a WorkerConfig,
    compute: &'a Compute,
    client: Client,
    /// Uploads into the `Results` stream.
    up_tx: mpsc::Sender<pb::ResultUpload>,
    /// The coordinator's message limit (bytes; 0: not announced).
    limit: u64,
    /// When to ask for work next.
    next_lease: Instant,
    /// Cells in the last lease (the low-water mark of fast cells follows it).
    last_batch: usize,
}

type Client = CoordinatorClient<
    tonic::service::interceptor::InterceptedService<Channel, crate::auth::BearerInterceptor>,
>;

/// One session: connect and register ([`Session::open`]), then react to whatever happens
/// first — a computed cell ([`Session::on_computed`]), an acknowledgement
/// ([`Session::on_ack`]), the heartbeat tick ([`Session::on_heartbeat`]), the time to lease
/// ([`Session::on_lease`]) or the shutdown signal — until the study is done, the drain is
/// complete, or the connection breaks.
pub(crate) async fn run(
    url: &str,
    config: &WorkerConfig,
    compute: &Compute,
    state: &mut WorkerState,
    rx: &mut mpsc::UnboundedReceiver<Computed>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let (mut session, mut acks, heartbeat_ms) = match Session::open(url, config, compute, state).await {
        Ok(s) => s,
        Err(end) => return end,
    };
    let mut heartbeat = tokio::time::interval(Duration::from_millis(u64::from(heartbeat_ms).max(100)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        let draining = *stop.borrow();
        if let Err(end) = session.before_waiting(state, draining).await {
            return end;
        }
        let want_lease = session.wants_lease(state, draining);
        let step = tokio::select! {
            Some(c) = rx.recv() => session.on_computed(state, c).await,
            ack = acks.message() => match ack {
                Ok(Some(a)) => {
                    on_ack(state, a);
                    Ok(())
                }
                Ok(None) => Err(lost("the coordinator closed the result stream", true)),
                Err(s) => Err(lost(format!("result stream: {s}"), true)),
            },
            _ = heartbeat.tick() => session.on_heartbeat(state).await,
            () = tokio::time::sleep_until(session.next_lease), if want_lease => session.on_lease(state).await,
            res = stop.changed(), if !draining => {
                if res.is_err() {
                    // The signal task ended without a signal: nothing to watch any more.
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        };
        if let Err(end) = step {
            return end;
        }
    }
}

impl<'a> Session<'a> {
    /// Connect, register (keeping an earlier worker id), open the `Results` stream and
    /// re-send every outcome not yet acknowledged. Returns the session, the stream of
    /// acknowledgements and the heartbeat period (ms).
    async fn open(
        url: &str,
        config: &'a WorkerConfig,
        compute: &'a Compute,
        state: &mut WorkerState,
    ) -> Result<(Session<'a>, tonic::Streaming<pb::ResultAck>, u32), End> {
        let channel = connect(url, config.tls.as_ref()).await.map_err(|e| lost(e, false))?;
        let bearer = crate::auth::BearerInterceptor::new(config.token.as_ref());
        let mut client =
            CoordinatorClient::with_interceptor(channel, bearer).max_decoding_message_size(256 << 20);
        let reg = match client
            .register(pb::RegisterRequest {
                protocol_version: PROTOCOL_VERSION,
                name: config.name.clone(),
                cores: config.threads as u32,
                version: env!("CARGO_PKG_VERSION").to_string(),
                previous_worker_id: state.worker_id,
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::FailedPrecondition => {
                return Err(End::Refused(s.message().to_string()))
            }
            Err(s) if s.code() == Code::Unauthenticated => {
                return Err(End::Unauthenticated(s.message().to_string()))
            }
            Err(s) => return Err(lost(format!("register: {s}"), false)),
        };
        on_register(state, &reg);
        let (up_tx, up_rx) = mpsc::channel::<pb::ResultUpload>(4096);
        let acks = match client.results(ReceiverStream::new(up_rx)).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(lost(format!("results stream: {s}"), true)),
        };
        let limit = reg.max_message_bytes;
        for up in state.unacked.values_mut() {
            up.worker_id = state.worker_id;
            fit(up, limit);
        }
        let resend: Vec<pb::ResultUpload> = state.unacked.values().cloned().collect();
        for up in resend {
            if up_tx.send(up).await.is_err() {
                return Err(lost("result stream closed while re-sending", true));
            }
        }
        let session =
            Session { config, compute, client, up_tx, limit, next_lease: Instant::now(), last_batch: 0 };
        Ok((session, acks, reg.heartbeat_ms))
    }

    /// Work between two events: start the drain once signalled, hand back unstarted cells,
    /// and end the session when everything is delivered.
    async fn before_waiting(&mut self, state: &mut WorkerState, draining: bool) -> Result<(), End> {
        if draining && !self.compute.draining.load(std::sync::atomic::Ordering::SeqCst) {
            let unstarted = state.start_drain(self.compute);
            tracing::info!(
                running = state.in_flight.len(),
                unstarted,
                "draining: finishing running cells, handing back the rest"
            );
        }
        if !state.to_release.is_empty() {
            let ids = std::mem::take(&mut state.to_release);
            match self
                .client
                .release(pb::ReleaseRequest { worker_id: state.worker_id, cell_ids: ids.clone() })
                .await
            {
                Ok(r) => state.report.released += u64::from(r.into_inner().released),
                Err(s) => {
                    state.to_release = ids;
                    return Err(lost(format!("release: {s}"), true));
                }
            }
        }
        if state.finished(draining) {
            return Err(End::Finished);
        }
        Ok(())
    }

    /// Whether to ask for work: not draining, the study not done, and fewer cells in flight
    /// than the low-water mark (the threads, plus half the last batch when cells are fast).
    fn wants_lease(&self, state: &WorkerState, draining: bool) -> bool {
        let fast = state.mean_cell_seconds > 0.0 && state.mean_cell_seconds < 0.5;
        let low_water = self.config.threads + if fast { self.last_batch / 2 } else { 0 };
        !draining && !state.study_done && state.in_flight.len() < low_water
    }

    /// A cell finished (or was not started): record it and stream its outcome.
    async fn on_computed(&mut self, state: &mut WorkerState, c: Computed) -> Result<(), End> {
        let id = match &c {
            Computed::Ran { upload, .. } => Some(upload.cell_id),
            Computed::NotStarted(_) => None,
        };
        state.record(c);
        if let Some(up) = id.and_then(|id| state.unacked.get_mut(&id)) {
            fit(up, self.limit);
            if self.up_tx.send(up.clone()).await.is_err() {
                return Err(lost("result stream closed", true));
            }
        }
        Ok(())
    }

    /// Extend the leases of the cells we hold; learn whether the study is done.
    async fn on_heartbeat(&mut self, state: &mut WorkerState) -> Result<(), End> {
        let req = pb::HeartbeatRequest { worker_id: state.worker_id, cell_ids: state.held() };
        match self.client.heartbeat(req).await {
            Ok(r) => {
                if r.into_inner().study_done && state.in_flight.is_empty() {
                    state.study_done = true;
                }
                Ok(())
            }
            Err(s) => Err(lost(format!("heartbeat: {s}"), true)),
        }
    }

    /// Ask for work and hand the cells to the pool; on `WAIT`, ask again later.
    async fn on_lease(&mut self, state: &mut WorkerState) -> Result<(), End> {
        let asked = Instant::now();
        let reply = match self
            .client
            .lease(pb::LeaseRequest {
                worker_id: state.worker_id,
                threads: self.config.threads as u32,
                mean_cell_seconds: state.mean_cell_seconds,
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(lost(format!("lease: {s}"), true)),
        };
        if let Some(hook) = &self.config.lease_latency {
            hook(asked.elapsed());
        }
        let retry = Duration::from_millis(u64::from(reply.retry_after_ms).clamp(50, 5000));
        match State::try_from(reply.state) {
            Ok(State::Work) => {
                self.last_batch = reply.cells.len();
                for cell in reply.cells {
                    submit(self.compute, state, cell);
                }
                self.next_lease = Instant::now();
            }
            Ok(State::Done) => {
                tracing::info!("the coordinator reports the study done");
                state.study_done = true;
            }
            Ok(State::Wait | State::Draining) | Ok(State::Unspecified) | Err(_) => {
                self.next_lease = Instant::now() + retry;
            }
        }
        Ok(())
    }
}

/// Registered: a coordinator serving another study store means the outcomes we hold belong
/// to the old one and are dropped.
fn on_register(state: &mut WorkerState, reg: &pb::RegisterReply) {
    if state.study_uid.as_deref().is_some_and(|u| u != reg.study_uid) {
        tracing::warn!(
            dropped = state.unacked.len(),
            "the coordinator now serves another study store; dropping outcomes of the old one"
        );
        state.unacked.clear();
        state.to_release.clear();
        state.stale.extend(state.in_flight.iter().copied());
        state.study_done = false;
    }
    state.study_uid = Some(reg.study_uid.clone());
    state.worker_id = reg.worker_id;
    tracing::info!(worker_id = reg.worker_id, study = %reg.study_name, resend = state.unacked.len(), "connected");
}

/// The coordinator settled these outcomes: forget them. Refused outcomes are settled too
/// (listed in `cell_ids`): the coordinator quarantined them; the reason is all there is left
/// to report.
fn on_ack(state: &mut WorkerState, a: pb::ResultAck) {
    for id in a.cell_ids {
        if state.unacked.remove(&id).is_some() {
            state.report.acknowledged += 1;
        }
    }
    for r in &a.rejections {
        tracing::warn!(cell_id = r.cell_id, reason = %r.reason, "the coordinator refused an outcome");
    }
    if a.rejected > 0 || a.quarantined > 0 {
        tracing::warn!(
            rejected = a.rejected,
            quarantined = a.quarantined,
            "the coordinator quarantined outcomes instead of committing them"
        );
    }
}

/// Make `up` fit the coordinator's message limit (`limit` bytes; 0: not announced): a
/// result larger than that becomes an error outcome for its cell. The coordinator would
/// refuse the message and end the result stream; the worker would reconnect and re-send
/// it, forever. As an error the cell fails like any cell whose computation errs, and the
/// message says how to make it fit. Returns whether the upload was replaced.
pub(crate) fn fit_to_limit(up: &mut pb::ResultUpload, limit: u64) -> bool {
    let len = prost::Message::encoded_len(up) as u64;
    if limit == 0 || len <= limit {
        return false;
    }
    up.outcome = Some(pb::result_upload::Outcome::Error(format!(
        "the result of cell {} is {len} bytes on the wire, over the coordinator's limit of \
         {limit} bytes per message (taustar serve --max-message-mib); a coarser τ grid \
         ([tau] grid count) or [tau] curves = \"none\" makes it smaller",
        up.cell_id
    )));
    true
}

/// [`fit_to_limit`], logged: the replaced result is lost (the cell fails instead).
fn fit(up: &mut pb::ResultUpload, limit: u64) {
    if fit_to_limit(up, limit) {
        if let Some(pb::result_upload::Outcome::Error(e)) = &up.outcome {
            tracing::error!(cell_id = up.cell_id, "{e}");
        }
    }
}

/// Hand a leased cell to rayon; a spec that does not convert becomes a failure outcome.
fn submit(compute: &Compute, state: &mut WorkerState, cell: pb::LeasedCell) {
    let spec =
        cell.spec.ok_or(taustar_proto::ConvertError::Missing("LeasedCell.spec")).and_then(CellSpec::try_from);
    match spec {
        Ok(spec) => {
            state.in_flight.insert(cell.cell_id);
            compute.submit(state.worker_id, cell.cell_id, spec);
        }
        Err(e) => {
            let upload = pb::ResultUpload {
                worker_id: state.worker_id,
                cell_id: cell.cell_id,
                outcome: Some(pb::result_upload::Outcome::Error(format!(
                    "malformed cell from the coordinator: {e}"
                ))),
                compute_seconds: 0.0,
            };
            state.in_flight.insert(cell.cell_id);
            let _ = compute.tx.send(Computed::Ran { upload: Box::new(upload), seconds: 0.0 });
        }
    }
}
