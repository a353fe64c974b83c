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
//!    leased, or when the grace period is over (`drain`);
//! 3. result streams stop reading, tonic stops accepting and closes connections; the server
//!    waits for every stream task (the `task_done` channel closes when the last one ends);
//! 4. the last store handle is dropped, the writer drains its queue, and the database closes.
//!
//! Every coordinator request passes an [`Authorizer`] first (the shared token; the
//! health service is left open for probes). With [`Security::tls`] the listener speaks TLS
//! (and with a client CA, mutual TLS; see [`crate::tls`]).
//!
//! Transport limits ([`TransportLimits`]) bound what one peer can make the server hold:
//! message size (checked against the gRPC length prefix before anything is allocated),
//! concurrent HTTP/2 streams per connection, the time a handler may take to answer, and
//! HTTP/2 keepalive pings that notice a peer that vanished without closing its connection.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use taustar_proto::pb::coordinator_server::CoordinatorServer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::ServerTlsConfig;

use crate::auth::Authorizer;
use crate::clock::LeaseClock;
use crate::service::{CoordinatorService, ServiceConfig};
use crate::shutdown::Shutdown;
use crate::store::{StoreError, StudyStatus, StudyStore};
use crate::writer::StoreHandle;

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
    /// What one connection may send and hold.
    pub transport: TransportLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            service: ServiceConfig::default(),
            exit_when_done: false,
            linger: Duration::from_secs(2),
            sweep_every: Duration::from_secs(1),
            transport: TransportLimits::default(),
        }
    }
}

/// Limits of the gRPC transport.
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    /// Largest message received or sent, in bytes. A larger one is refused with
    /// `OUT_OF_RANGE` (tonic's code for it) as soon as its 5-byte gRPC header is read, so it
    /// is never buffered. The largest legitimate messages — a result with a 10^4-point τ
    /// curve (~0.5 MB), a lease of 2048 cells (~0.3 MB) — fit the default with room.
    pub max_message_bytes: usize,
    /// Concurrent HTTP/2 streams (calls) one connection may open. A worker uses two or
    /// three (its result stream, a lease or heartbeat, a release); the rest is headroom.
    pub max_streams_per_connection: u32,
    /// Longest a handler may take to produce its response (tonic's `timeout`, also bounded
    /// by a client's `grpc-timeout`). It ends when the response *starts*: `Results` and
    /// `Watch` answer with their stream at once, so long-lived streams are not cut; a
    /// unary call stuck (or a client trickling its request) is answered `CANCELLED`.
    pub request_timeout: Duration,
    /// Interval of HTTP/2 PING frames to every client: a peer that vanished without closing
    /// the connection (power loss, network cut) is noticed, and its streams end, after
    /// `keepalive_interval + keepalive_timeout` instead of never.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_message_bytes: 16 << 20,
            max_streams_per_connection: 64,
            request_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Who may call the coordinator: the token check, and TLS (optionally mutual).
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// The per-request token check.
    pub auth: Authorizer,
    /// TLS for the listener; `None`: plain HTTP/2 (loopback, or a token over a trusted network).
    pub tls: Option<ServerTlsConfig>,
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
    Writer(#[from] crate::writer::WriterError),
    /// The coordinator's task panicked or was cancelled.
    #[error("coordinator task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The reflection service rejected the embedded descriptors (a build defect).
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A coordinator serving in the background.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Progress, refreshed every sweep (`None` until the first sweep).
    pub status: watch::Receiver<Option<StudyStatus>>,
    /// The coordinator's metrics (serve them with [`crate::metrics::serve`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    join: JoinHandle<Result<StudyStatus, ServeError>>,
}

impl RunningServer {
    /// Wait for the graceful stop; returns the final progress.
    pub async fn wait(self) -> Result<StudyStatus, ServeError> {
        self.join.await?
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
    start_secured(store, listener, config, Security::default(), shutdown).await
}

/// [`start`] with the token check and TLS of `security`.
pub async fn start_secured(
    mut store: StudyStore,
    listener: TcpListener,
    config: ServeConfig,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServeError> {
    let addr = listener.local_addr()?;
    // Build the TLS acceptor before anything starts, so bad files fail `start`.
    let tls_server = match security.tls {
        Some(tls) => Some(tonic::transport::Server::builder().tls_config(tls)?),
        None => None,
    };
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
        config.transport.max_message_bytes,
        notify_shutdown.clone(),
        task_done_tx.clone(),
    );
    let (status_tx, status_rx) = watch::channel(None);
    let metrics = service.metrics().clone();
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
        security.auth,
        tls_server,
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
    Ok(RunningServer { addr, status: status_rx, metrics, join })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    service: CoordinatorService,
    listener: TcpListener,
    auth: Authorizer,
    tls_server: Option<tonic::transport::Server>,
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
    let limits = config.transport;
    let grpc = InterceptedService::new(
        CoordinatorServer::new(service.clone())
            .max_decoding_message_size(limits.max_message_bytes)
            .max_encoding_message_size(limits.max_message_bytes),
        auth.clone(),
    );
    // Reflection (v1 and v1alpha, for grpcurl and grpcio-reflection of any age) behind the
    // same token as the service: it describes the API, and an operator who may not call it
    // has no need to browse it. Health stays open for probes.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(taustar_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = InterceptedService::new(reflection().build_v1()?, auth.clone());
    let reflection_v1alpha = InterceptedService::new(reflection().build_v1alpha()?, auth);
    let server = tls_server
        .unwrap_or_else(tonic::transport::Server::builder)
        .max_concurrent_streams(limits.max_streams_per_connection)
        .initial_connection_window_size(Some(HTTP2_WINDOW_BYTES))
        .initial_stream_window_size(Some(HTTP2_WINDOW_BYTES))
        .timeout(limits.request_timeout)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(grpc)
        .serve_with_incoming_shutdown(
            // TCP keepalive too, for a peer that vanished while no stream was open.
            tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(limits.keepalive_interval)),
            signal,
        );
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

/// HTTP/2 flow-control windows (per connection and per stream) of the server. hyper's
/// default lets every worker's connection buffer about a megabyte of results in the server
/// when commits fall behind; with 64 workers that was most of the coordinator's memory
/// (peak RSS 160 MB at 10^6 cells with curves, 114 MB without). 256 KiB still holds ~60
/// results of 4 KB per stream, and measured at 10^6 cells it halves the peak RSS (88 / 56
/// MB) while committing more per second (22.4k / 80.0k, from 20.6k / 62.5k): workers are
/// paced by the store instead of by memory.
pub const HTTP2_WINDOW_BYTES: u32 = 256 * 1024;

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
            // A full disk was logged once by the writer; every sweep fails until space is freed.
            Err(e) if e.is_disk_full() => tracing::debug!(error = %e, "sweeping expired leases failed"),
            Err(e) => tracing::error!(error = %e, "sweeping expired leases failed"),
        }
        match service.status().await {
            Ok(s) => {
                service.set_finished(s.finished);
                service.metrics().observe_status(&s);
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

#[cfg(test)]
mod tests {
    //! The transport limits against a real server on loopback.

    use std::time::Instant;

    use taustar_common::study::Study;
    use taustar_proto::pb::{self, coordinator_client::CoordinatorClient};
    use taustar_proto::PROTOCOL_VERSION;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tonic::transport::Channel;
    use tonic::Code;

    use super::*;
    use crate::store::StoreConfig;

    const TOML: &str = "name = \"limits\"\nseed = 1\n[truth]\nkind = \"two-level\"\nstates = 10\n\
                        low_states = 2\ngap = 2.0\n[data]\nsamples = 5\n[tau]\ncurves = \"all\"\n";

    struct Fixture {
        running: RunningServer,
        stop: tokio::sync::oneshot::Sender<()>,
        _dir: tempfile::TempDir,
    }

    async fn serve(transport: TransportLimits) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let loaded = crate::study_file::from_parts(Study::from_toml_str(TOML).unwrap(), TOML.into());
        let mut store = StudyStore::open(&dir.path().join("l.db"), StoreConfig::default()).unwrap();
        store.sync_study(&loaded.definition, loaded.study.cells()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut config = ServeConfig { transport, ..ServeConfig::default() };
        config.service.grace = Duration::from_millis(100);
        let running = start(store, listener, config, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
        Fixture { running, stop, _dir: dir }
    }

    impl Fixture {
        async fn client(&self) -> CoordinatorClient<Channel> {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.running.addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
            CoordinatorClient::new(channel).max_decoding_message_size(usize::MAX)
        }

        async fn stop(self) {
            self.stop.send(()).unwrap();
            self.running.wait().await.unwrap();
        }
    }

    fn register_request(name: String) -> pb::RegisterRequest {
        pb::RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            name,
            cores: 1,
            version: "test".into(),
            previous_worker_id: 0,
        }
    }

    #[tokio::test]
    async fn a_100_mb_message_is_refused_while_a_result_with_a_10k_point_curve_fits() {
        let f = serve(TransportLimits::default()).await;
        let mut client = f.client().await;
        let worker_id = client.register(register_request("w".into())).await.unwrap().into_inner().worker_id;

        let garbage = "x".repeat(100 << 20);
        let started = Instant::now();
        let refused = client.register(register_request(garbage)).await.unwrap_err();
        // tonic's code for "message larger than the limit" (grpc-go uses RESOURCE_EXHAUSTED).
        assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
        assert!(refused.message().contains("too large"), "{}", refused.message());
        assert!(started.elapsed() < Duration::from_secs(20), "refused promptly: {:?}", started.elapsed());

        // The same connection still works.
        assert!(client.status(pb::StatusRequest {}).await.is_ok());

        // A result with a 10^4-point curve is decoded and answered (rejected: the cell is not
        // leased to this worker — but not refused by the transport).
        let column = |x: f64| vec![x; 10_000];
        let curve = pb::Curve {
            tau: column(1.0),
            dkl_rev: column(0.1),
            dkl_fwd: column(0.2),
            entropy: column(0.3),
            mean_energy: column(0.4),
            heat_capacity: column(0.5),
            kappa: column(0.6),
        };
        let result = pb::CellResult { key: "k".into(), curve: Some(curve), ..Default::default() };
        let upload = pb::ResultUpload {
            worker_id,
            cell_id: 1,
            outcome: Some(pb::result_upload::Outcome::Result(result)),
            compute_seconds: 0.0,
        };
        let size = prost::Message::encoded_len(&upload);
        assert!(size > 480_000, "a realistic size (six packed f64 per point): {size}");
        let (tx, rx) = mpsc::channel(1);
        tx.send(upload).await.unwrap();
        let mut acks =
            client.results(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
        let ack = tokio::time::timeout(Duration::from_secs(20), acks.message()).await.unwrap();
        assert!(matches!(ack, Ok(Some(_))), "{ack:?}");
        drop(tx);
        drop(acks);
        drop(client);
        f.stop().await;
    }

    /// A result over the message limit would end the result stream, and the worker would
    /// reconnect and re-send it forever. Announced at registration, the limit makes the real
    /// worker send an error instead: the cell fails (after the usual retries) with a message
    /// that names the sizes and the flag, and the worker ends with the study.
    #[tokio::test]
    async fn a_result_over_the_message_limit_fails_its_cell_instead_of_looping() {
        let limit = 64usize << 10;
        let f = serve(TransportLimits { max_message_bytes: limit, ..TransportLimits::default() }).await;
        let errors = every_cell_fails(&f, |spec| {
            let mut r = taustar_common::run_cell(spec).map_err(|e| e.to_string())?;
            r.curve = vec![r.curve[0]; 10_000];
            Ok(r)
        })
        .await;
        for error in errors {
            assert!(error.contains(&format!("over the coordinator's limit of {limit} bytes")), "{error}");
            assert!(error.contains("--max-message-mib"), "{error}");
        }
        f.stop().await;
    }

    /// Run one worker computing with `compute` until the study ends, check that every cell
    /// failed `max_failures` times and the worker computed each that often, and return the
    /// cells' last errors.
    async fn every_cell_fails(
        f: &Fixture,
        compute: impl Fn(&taustar_common::CellSpec) -> Result<taustar_common::CellResult, String>
            + Send
            + Sync
            + 'static,
    ) -> Vec<String> {
        let mut config = worker::WorkerConfig::new(format!("http://{}", f.running.addr), 1);
        config.compute = Arc::new(compute);
        let report =
            tokio::time::timeout(Duration::from_secs(60), worker::run(config, std::future::pending()))
                .await
                .expect("the worker ends instead of re-sending forever")
                .unwrap();
        let store = StudyStore::open_read_only(f._dir.path().join("l.db")).unwrap();
        let status = store.status(0).unwrap();
        assert_eq!((status.cells_done, status.cells_failed), (0, status.cells_total), "{status:?}");
        let max = StoreConfig::default().max_failures;
        let mut errors = Vec::new();
        store
            .for_each_failed_cell(|_, failures, error| {
                assert_eq!(failures, max);
                errors.push(error.to_string());
            })
            .unwrap();
        assert_eq!(errors.len() as u64, status.cells_total);
        assert_eq!(report.computed, u64::from(max) * status.cells_total);
        errors
    }

    #[tokio::test]
    async fn a_panicking_computation_fails_its_cells_and_the_worker_lives_on() {
        let f = serve(TransportLimits::default()).await;
        let errors = every_cell_fails(&f, |spec| panic!("boom in {}", spec.key().0)).await;
        for e in errors {
            assert!(e.contains("the computation panicked: boom in two-level;"), "{e}");
        }
        f.stop().await;
    }

    #[tokio::test]
    async fn the_request_timeout_does_not_cut_a_long_lived_stream() {
        let limits =
            TransportLimits { request_timeout: Duration::from_millis(200), ..TransportLimits::default() };
        let f = serve(limits).await;
        let mut client = f.client().await;
        let mut watch = client.watch(pb::WatchRequest { interval_ms: 100 }).await.unwrap().into_inner();
        let started = Instant::now();
        let mut snapshots = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            let next = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap();
            assert!(matches!(next, Ok(Some(_))), "the stream ended after {:?}: {next:?}", started.elapsed());
            snapshots += 1;
        }
        assert!(snapshots >= 5, "{snapshots} snapshots in 1.5 s");
        drop(watch);
        drop(client);
        f.stop().await;
    }

    /// A raw HTTP/2 peer that sends the connection preface and an empty SETTINGS frame, then
    /// never answers anything (a vanished host); returns how long until the server closed the
    /// connection, or `None` if it was still open after `patience`.
    async fn silent_peer_dropped_after(addr: SocketAddr, patience: Duration) -> Option<Duration> {
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        sock.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            let left = patience.checked_sub(started.elapsed())?;
            match tokio::time::timeout(left, sock.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {} // the server's SETTINGS and PINGs, left unanswered
            }
        }
    }

    #[tokio::test]
    async fn keepalive_closes_the_connection_of_a_peer_that_stopped_answering() {
        let quick = TransportLimits {
            keepalive_interval: Duration::from_millis(200),
            keepalive_timeout: Duration::from_millis(200),
            ..TransportLimits::default()
        };
        let f = serve(quick).await;
        let closed = silent_peer_dropped_after(f.running.addr, Duration::from_secs(5)).await;
        assert!(closed.is_some_and(|d| d >= Duration::from_millis(300)), "closed after {closed:?}");
        f.stop().await;
        // Control: with the default 20 s interval the same silent peer is kept for now.
        let f = serve(TransportLimits::default()).await;
        assert_eq!(silent_peer_dropped_after(f.running.addr, Duration::from_millis(1500)).await, None);
        f.stop().await;
    }
}
