//! One connection to the coordinator: register, stream results, lease, heartbeat.
//! See the crate docs for the life cycle; this module only returns how the session ended.

use std::time::Duration;

use common::CellSpec;
use taustar_proto::pb::coordinator_client::CoordinatorClient;
use taustar_proto::pb::{self, lease_reply::State};
use taustar_proto::PROTOCOL_VERSION;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::{Compute, Computed, WorkerConfig, WorkerState};

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

pub(crate) async fn run(
    url: &str,
    config: &WorkerConfig,
    compute: &Compute,
    state: &mut WorkerState,
    rx: &mut mpsc::UnboundedReceiver<Computed>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let channel = match connect(url, config.tls.as_ref()).await {
        Ok(c) => c,
        Err(e) => return lost(e, false),
    };
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
        Err(s) if s.code() == Code::FailedPrecondition => return End::Refused(s.message().to_string()),
        Err(s) if s.code() == Code::Unauthenticated => return End::Unauthenticated(s.message().to_string()),
        Err(s) => return lost(format!("register: {s}"), false),
    };
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

    let (up_tx, up_rx) = mpsc::channel::<pb::ResultUpload>(4096);
    let mut acks = match client.results(ReceiverStream::new(up_rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return lost(format!("results stream: {s}"), true),
    };
    let limit = reg.max_message_bytes;
    for up in state.unacked.values_mut() {
        up.worker_id = state.worker_id;
        fit(up, limit);
    }
    let resend: Vec<pb::ResultUpload> = state.unacked.values().cloned().collect();
    for up in resend {
        if up_tx.send(up).await.is_err() {
            return lost("result stream closed while re-sending", true);
        }
    }

    let mut heartbeat = tokio::time::interval(Duration::from_millis(u64::from(reg.heartbeat_ms).max(100)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut next_lease = Instant::now();
    let mut last_batch = 0usize;
    loop {
        let draining = *stop.borrow();
        if draining && !compute.draining.load(std::sync::atomic::Ordering::SeqCst) {
            let unstarted = state.start_drain(compute);
            tracing::info!(
                running = state.in_flight.len(),
                unstarted,
                "draining: finishing running cells, handing back the rest"
            );
        }
        if !state.to_release.is_empty() {
            let ids = std::mem::take(&mut state.to_release);
            match client
                .release(pb::ReleaseRequest { worker_id: state.worker_id, cell_ids: ids.clone() })
                .await
            {
                Ok(r) => state.report.released += u64::from(r.into_inner().released),
                Err(s) => {
                    state.to_release = ids;
                    return lost(format!("release: {s}"), true);
                }
            }
        }
        if state.finished(draining) {
            return End::Finished;
        }
        let fast = state.mean_cell_seconds > 0.0 && state.mean_cell_seconds < 0.5;
        let low_water = config.threads + if fast { last_batch / 2 } else { 0 };
        let want_lease = !draining && !state.study_done && state.in_flight.len() < low_water;
        tokio::select! {
            Some(c) = rx.recv() => {
                let id = match &c { Computed::Ran { upload, .. } => Some(upload.cell_id), Computed::NotStarted(_) => None };
                state.record(c);
                if let Some(up) = id.and_then(|id| state.unacked.get_mut(&id)) {
                    fit(up, limit);
                    if up_tx.send(up.clone()).await.is_err() {
                        return lost("result stream closed", true);
                    }
                }
            }
            ack = acks.message() => match ack {
                Ok(Some(a)) => {
                    for id in a.cell_ids {
                        if state.unacked.remove(&id).is_some() {
                            state.report.acknowledged += 1;
                        }
                    }
                    // Refused outcomes are settled too (listed in cell_ids): the coordinator
                    // quarantined them; the reason is all there is left to report.
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
                Ok(None) => return lost("the coordinator closed the result stream", true),
                Err(s) => return lost(format!("result stream: {s}"), true),
            },
            _ = heartbeat.tick() => {
                match client.heartbeat(pb::HeartbeatRequest { worker_id: state.worker_id, cell_ids: state.held() }).await {
                    Ok(r) => {
                        if r.into_inner().study_done && state.in_flight.is_empty() {
                            state.study_done = true;
                        }
                    }
                    Err(s) => return lost(format!("heartbeat: {s}"), true),
                }
            }
            () = tokio::time::sleep_until(next_lease), if want_lease => {
                let asked = Instant::now();
                let reply = match client
                    .lease(pb::LeaseRequest {
                        worker_id: state.worker_id,
                        threads: config.threads as u32,
                        mean_cell_seconds: state.mean_cell_seconds,
                    })
                    .await
                {
                    Ok(r) => r.into_inner(),
                    Err(s) => return lost(format!("lease: {s}"), true),
                };
                if let Some(hook) = &config.lease_latency {
                    hook(asked.elapsed());
                }
                let retry = Duration::from_millis(u64::from(reply.retry_after_ms).clamp(50, 5000));
                match State::try_from(reply.state) {
                    Ok(State::Work) => {
                        last_batch = reply.cells.len();
                        for cell in reply.cells {
                            submit(compute, state, cell);
                        }
                        next_lease = Instant::now();
                    }
                    Ok(State::Done) => {
                        tracing::info!("the coordinator reports the study done");
                        state.study_done = true;
                    }
                    Ok(State::Wait | State::Draining) | Ok(State::Unspecified) | Err(_) => {
                        next_lease = Instant::now() + retry;
                    }
                }
            }
            res = stop.changed(), if !draining => {
                if res.is_err() {
                    // The signal task ended without a signal: nothing to watch any more.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// [`crate::fit_to_limit`], logged: the replaced result is lost (the cell fails instead).
fn fit(up: &mut pb::ResultUpload, limit: u64) {
    if crate::fit_to_limit(up, limit) {
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
