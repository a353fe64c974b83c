//! Running the coordinator: gRPC server, health service, lease sweeper, shutdown.
//!
//! [`start`] takes an opened [`StudyStore`] (study already synced) and a bound listener, and
//! returns a [`RunningServer`] whose [`RunningServer::wait`] resolves after a graceful stop:
//!
//! 1. the shutdown future resolves (SIGINT/SIGTERM from the CLI), or — with
//!    `exit_when_done` — every cell is settled and the linger period (in which workers learn
//!    `DONE`) has passed;
//! 2. the service stops leasing (`DRAINING`) and health turns NOT_SERVING, but everything
//!    else keeps working: workers stopped at the same moment commit the results they finish
//!    and `Release` the cells they will not start. The drain ends as soon as no cell is
//!    leased, or when the grace period is over ([`drain`]);
//! 3. result streams stop reading, tonic stops accepting and closes connections; the server
//!    waits for every stream task (the `task_done` channel closes when the last one ends);
//! 4. the last store handle is dropped, the writer drains its queue, and the database closes.
//!
//! Every coordinator request passes an [`Authorizer`] first (issue 6's shared token; the
//! health service is left open for probes).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use taustar_proto::pb::coordinator_server::CoordinatorServer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::actor::StoreHandle;
use crate::auth::Authorizer;
use crate::clock::LeaseClock;
use crate::service::{CoordinatorService, ServiceConfig};
use crate::shutdown::Shutdown;
use crate::store::{StoreError, StudyStatus, StudyStore};

/// Tunables of a coordinator run.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// Service tunables (lease, heartbeat, batch, grace).
    pub service: ServiceConfig,
    /// Stop once every cell is done or failed.
    pub exit_when_done: bool,
    /// With `exit_when_done`: keep answering `DONE` this long so workers exit cleanly.
    pub linger: Duration,
    /// How often expired leases are swept and progress is refreshed.
    pub sweep_every: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            service: ServiceConfig::default(),
            exit_when_done: false,
            linger: Duration::from_secs(2),
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// Errors of running the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reading the listener's address failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The store writer stopped unexpectedly.
    #[error("{0}")]
    Writer(#[from] crate::actor::WriterError),
}

/// A coordinator serving in the background.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Progress, refreshed every sweep (`None` until the first sweep).
    pub status: watch::Receiver<Option<StudyStatus>>,
    join: JoinHandle<Result<StudyStatus, ServeError>>,
}

impl RunningServer {
    /// Wait for the graceful stop; returns the final progress.
    pub async fn wait(self) -> Result<StudyStatus, ServeError> {
        match self.join.await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Io(std::io::Error::other(format!("coordinator task failed: {e}")))),
        }
    }
}

/// Start serving `store` on `listener` until `shutdown` resolves (or the study is done, with
/// `exit_when_done`).
pub async fn start(
    store: StudyStore,
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServeError> {
    start_with_auth(store, listener, config, Authorizer::open(), shutdown).await
}

/// [`start`] with every coordinator call checked by `auth` (the health service stays open
/// for probes; see [`crate::auth`]).
pub async fn start_with_auth(
    mut store: StudyStore,
    listener: TcpListener,
    config: ServeConfig,
    auth: Authorizer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServeError> {
    let addr = listener.local_addr()?;
    let clock = LeaseClock::new();
    let extended = store.extend_all_leases(clock.now_ms() + config.service.lease.as_millis() as i64)?;
    if extended > 0 {
        tracing::info!(extended, "leases from a previous coordinator run get one lease period to reconnect");
    }
    let reader = StudyStore::open_read_only(store.path())?;
    let (handle, writer_task) = StoreHandle::spawn(store, clock);
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (task_done_tx, task_done_rx) = mpsc::channel::<()>(1);
    let service = CoordinatorService::new(
        handle,
        reader,
        config.service,
        notify_shutdown.clone(),
        task_done_tx.clone(),
    );
    let (status_tx, status_rx) = watch::channel(None);
    let stop = Arc::new(Notify::new());
    let monitor = tokio::spawn(monitor(
        service.clone(),
        config,
        status_tx,
        stop.clone(),
        Shutdown::new(notify_shutdown.subscribe()),
        task_done_tx.clone(),
    ));
    let join = tokio::spawn(run(
        service,
        listener,
        auth,
        config,
        shutdown,
        stop,
        notify_shutdown,
        task_done_tx,
        task_done_rx,
        writer_task,
        monitor,
    ));
    tracing::info!(%addr, "coordinator listening");
    Ok(RunningServer { addr, status: status_rx, join })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    service: CoordinatorService,
    listener: TcpListener,
    auth: Authorizer,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: Arc<Notify>,
    notify_shutdown: broadcast::Sender<()>,
    task_done_tx: mpsc::Sender<()>,
    mut task_done_rx: mpsc::Receiver<()>,
    writer_task: JoinHandle<Option<StudyStore>>,
    monitor: JoinHandle<()>,
) -> Result<StudyStatus, ServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<CoordinatorServer<CoordinatorService>>().await;
    let fired = Arc::new(Notify::new());
    let grace = config.service.grace;
    let signal = {
        let service = service.clone();
        let fired = fired.clone();
        let notify_shutdown = notify_shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.notified() => tracing::info!("study finished: stopping (--exit-when-done)"),
            }
            service.begin_draining();
            health_reporter.set_not_serving::<CoordinatorServer<CoordinatorService>>().await;
            let _ = notify_shutdown.send(());
            fired.notify_one();
            drain(&service, grace).await;
            service.close_streams();
        }
    };
    let grpc = CoordinatorServer::with_interceptor(service.clone(), auth);
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(grpc)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);
    tokio::pin!(server);
    let hard_stop = config.service.grace + Duration::from_secs(5);
    let served = tokio::select! {
        r = &mut server => r,
        () = async { fired.notified().await; tokio::time::sleep(hard_stop).await } => {
            tracing::warn!("connections still open {hard_stop:?} after shutdown began; closing them");
            Ok(())
        }
    };
    // Make sure every task saw the signal even if the server ended on its own.
    let _ = notify_shutdown.send(());
    service.begin_draining();
    service.close_streams();
    drop(task_done_tx);
    if tokio::time::timeout(hard_stop, task_done_rx.recv()).await.is_err() {
        tracing::warn!("some result streams did not finish within {hard_stop:?}");
    }
    let _ = monitor.await;
    let final_status = service.status().await;
    drop(service);
    // The writer ends once the last handle (held by the service, now dropped) is gone.
    match writer_task.await {
        Ok(Some(store)) => drop(store),
        Ok(None) => tracing::error!("the store writer stopped after an error"),
        Err(e) => tracing::error!(error = %e, "the store writer task failed"),
    }
    served?;
    let status = final_status?;
    tracing::info!(
        done = status.cells_done,
        failed = status.cells_failed,
        pending = status.cells_pending,
        leased = status.cells_leased,
        "coordinator stopped; database closed"
    );
    Ok(status)
}

/// Wait until no cell is leased (every worker committed or released what it held) or
/// `grace` has passed, whichever comes first. Polls the read-only connection, so it never
/// queues behind commits.
async fn drain(service: &CoordinatorService, grace: Duration) {
    let started = tokio::time::Instant::now();
    let deadline = started + grace;
    loop {
        match service.status().await {
            Ok(s) if s.cells_leased == 0 => {
                tracing::info!(took = ?started.elapsed(), "drain complete: no cell is leased");
                return;
            }
            Ok(s) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(
                    leased = s.cells_leased,
                    "grace period of {grace:?} over with cells still leased; they return to pending \
                     when their leases expire"
                );
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading progress during the drain failed; ending the drain");
                return;
            }
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + DRAIN_POLL)).await;
    }
}

/// How often the drain checks whether any cell is still leased.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Sweep expired leases, refresh progress, and trigger the stop when the study is done.
async fn monitor(
    service: CoordinatorService,
    config: ServeConfig,
    status_tx: watch::Sender<Option<StudyStatus>>,
    stop: Arc<Notify>,
    mut shutdown: Shutdown,
    _token: mpsc::Sender<()>,
) {
    let mut tick = tokio::time::interval(config.sweep_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut done_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.recv() => return,
        }
        match service.sweep_expired_leases().await {
            Ok(r) if r.returned > 0 || r.failed > 0 => {
                tracing::warn!(returned = r.returned, failed = r.failed, "expired leases swept");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "sweeping expired leases failed"),
        }
        match service.status().await {
            Ok(s) => {
                service.set_finished(s.finished);
                if s.finished && config.exit_when_done {
                    let since = *done_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= config.linger {
                        stop.notify_one();
                    }
                }
                let _ = status_tx.send(Some(s));
            }
            Err(e) => tracing::error!(error = %e, "reading progress failed"),
        }
    }
}
