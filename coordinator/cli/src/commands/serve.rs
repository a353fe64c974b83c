//! `taustar serve`: the coordinator of a distributed study (see `coordinator::server`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use coordinator::batch::BatchPolicy;
use coordinator::server::{self, ServeConfig};
use coordinator::service::ServiceConfig;
use coordinator::store::StoreConfig;
use coordinator::study_file;

/// Lease and failure tunables shared by `serve` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaseArgs {
    /// Seconds a lease lasts without a heartbeat; a lost worker's cells return after this.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub lease_secs: f64,
    /// Seconds between worker heartbeats (default: a sixth of the lease).
    #[arg(long, value_name = "SECS")]
    pub heartbeat_secs: Option<f64>,
    /// A cell whose computation fails (error, NaN, wrong key) this many times is marked failed.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_failures: u32,
    /// A cell whose lease expires (its worker was lost) this many times is marked failed; a
    /// lost worker is not the cell's fault, so this limit is much higher.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_lost_leases: u32,
    /// Seconds of work one lease should carry (batch size adapts to measured cell time).
    #[arg(long, value_name = "SECS", default_value_t = 4.0)]
    pub batch_secs: f64,
}

impl LeaseArgs {
    /// Validate and turn into the server's configuration.
    pub fn to_config(&self) -> anyhow::Result<(ServeConfig, StoreConfig)> {
        let secs = |name: &str, v: f64| -> anyhow::Result<Duration> {
            if !(v.is_finite() && v > 0.0 && v < 1e7) {
                anyhow::bail!("invalid {name} = {v}: need a number of seconds > 0");
            }
            Ok(Duration::from_secs_f64(v))
        };
        let lease = secs("--lease-secs", self.lease_secs)?;
        let heartbeat = match self.heartbeat_secs {
            Some(h) => secs("--heartbeat-secs", h)?,
            None => lease / 6,
        };
        if heartbeat >= lease {
            anyhow::bail!(
                "invalid --heartbeat-secs = {heartbeat:?}: must be shorter than --lease-secs = {lease:?}"
            );
        }
        if self.max_failures == 0 {
            anyhow::bail!("invalid --max-failures = 0: need at least 1");
        }
        if self.max_lost_leases == 0 {
            anyhow::bail!("invalid --max-lost-leases = 0: need at least 1");
        }
        let batch = BatchPolicy {
            target_seconds: secs("--batch-secs", self.batch_secs)?.as_secs_f64(),
            ..BatchPolicy::default()
        };
        let service = ServiceConfig { lease, heartbeat, batch, ..ServiceConfig::default() };
        let sweep_every = (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        Ok((
            ServeConfig { service, sweep_every, ..ServeConfig::default() },
            StoreConfig { max_failures: self.max_failures, max_lost_leases: self.max_lost_leases },
        ))
    }
}

/// Arguments of `taustar serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The study file (TOML). Re-serving an extended file adds only its new cells.
    pub study: PathBuf,
    /// Study database (SQLite, created if missing) (default: STUDY_NAME.db in the current directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Address to listen on. Loopback only by default; 0.0.0.0:50051 accepts remote workers.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Exit (code 0) once every cell is done or failed — for batch jobs (Slurm).
    #[arg(long)]
    pub exit_when_done: bool,
    /// Write the bound address (host:port) to this file once listening (useful with port 0).
    #[arg(long, value_name = "PATH")]
    pub addr_file: Option<PathBuf>,
    /// File holding the shared token workers must present (or set TAUSTAR_TOKEN to the token
    /// itself; never on the command line, where `ps` shows it). Required to listen on a
    /// non-loopback address. The gRPC health service stays open for probes.
    #[arg(long, value_name = "PATH", env = "TAUSTAR_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The coordinator's TLS certificate (PEM, chain leaf first): with --tls-key, turns on
    /// TLS. Workers then connect with --tls-ca (the CA that signed it).
    #[arg(long, value_name = "PATH", env = taustar_proto::tls::TLS_CERT_ENV)]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH", env = taustar_proto::tls::TLS_KEY_ENV)]
    pub tls_key: Option<PathBuf>,
    /// Require every client to present a certificate signed by this CA (PEM): mutual TLS.
    /// Needs --tls-cert/--tls-key. Counts as protection for a non-loopback --listen, like a
    /// token; the health service then needs a client certificate too.
    #[arg(long, value_name = "PATH", env = taustar_proto::tls::TLS_CA_ENV)]
    pub tls_ca: Option<PathBuf>,
    /// Largest gRPC message accepted or sent, in MiB (a result with a 10^4-point τ curve is
    /// ~0.6 MiB). Larger ones are refused (OUT_OF_RANGE) before they are buffered.
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub max_message_mib: usize,
    /// Seconds the stop (SIGTERM or --exit-when-done) waits for workers to commit running
    /// cells and hand back the rest before the server closes.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub grace_secs: f64,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics: cells by state,
    /// results committed, duplicates, quarantined uploads, lost leases, store write errors,
    /// commit latency, each worker's last call. Off by default; loopback only unless
    /// --metrics-allow-remote (the endpoint has no token or TLS).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Let --metrics-listen bind a non-loopback address (a Prometheus on the cluster network).
    #[arg(long, requires = "metrics_listen")]
    pub metrics_allow_remote: bool,
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// Run `taustar serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (mut config, store_config) = args.lease.to_config()?;
    config.exit_when_done = args.exit_when_done;
    if !(args.grace_secs.is_finite() && (0.0..1e6).contains(&args.grace_secs)) {
        anyhow::bail!("invalid --grace-secs = {}: need 0 <= seconds < 1000000", args.grace_secs);
    }
    config.service.grace = Duration::from_secs_f64(args.grace_secs);
    if !(1..=1024).contains(&args.max_message_mib) {
        anyhow::bail!("invalid --max-message-mib = {}: need 1 to 1024", args.max_message_mib);
    }
    config.transport.max_message_bytes = args.max_message_mib << 20;
    let auth = coordinator::auth::Authorizer::new(coordinator::auth::Token::from_file_or_env(
        args.token_file.as_deref(),
    )?);
    let tls =
        coordinator::tls::load(args.tls_cert.as_deref(), args.tls_key.as_deref(), args.tls_ca.as_deref())?;
    let mtls = tls.as_ref().is_some_and(|t| t.client_certs_required);
    // Refuse before touching the database when the address is literal; a host name is
    // checked once bound (below).
    if let Ok(addr) = args.listen.parse::<std::net::SocketAddr>() {
        coordinator::auth::check_bind(addr, &auth, mtls)?;
    }
    if let Some(Ok(addr)) = args.metrics_listen.as_deref().map(str::parse::<std::net::SocketAddr>) {
        coordinator::metrics::check_metrics_bind(addr, args.metrics_allow_remote)?;
    }
    let mut loaded = study_file::load(&args.study)?;
    let db = args.db.clone().unwrap_or_else(|| study_file::default_db_path(&loaded.definition.name));
    let (store, _) = study_file::open_store(&mut loaded, &db, store_config)?;
    drop(loaded);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on --listen {}", args.listen))?;
        let addr = listener.local_addr()?;
        coordinator::auth::check_bind(addr, &auth, mtls)?;
        let metrics_listener = match &args.metrics_listen {
            Some(m) => {
                let l = tokio::net::TcpListener::bind(m)
                    .await
                    .with_context(|| format!("cannot listen on --metrics-listen {m}"))?;
                coordinator::metrics::check_metrics_bind(l.local_addr()?, args.metrics_allow_remote)?;
                Some(l)
            }
            None => None,
        };
        if auth.requires_token() {
            tracing::info!("every coordinator call must carry the shared token");
        }
        match &tls {
            Some(t) if t.client_certs_required => {
                tracing::info!("TLS on; clients must present a certificate signed by --tls-ca (mutual TLS)")
            }
            Some(_) => tracing::info!("TLS on (workers connect with --tls-ca)"),
            None => {}
        }
        let security = server::Security { auth, tls: tls.map(|t| t.config) };
        let running =
            server::start_secured(store, listener, config, security, coordinator::shutdown::signal()).await?;
        let metrics_task = match metrics_listener {
            Some(l) => {
                let maddr = l.local_addr()?;
                tracing::info!(addr = %maddr, "metrics at http://{maddr}/metrics");
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(coordinator::metrics::serve(running.metrics.clone(), l, async {
                    let _ = stop_rx.await;
                }));
                Some((stop_tx, task))
            }
            None => None,
        };
        if let Some(path) = &args.addr_file {
            write_atomically(path, &addr.to_string())
                .with_context(|| format!("cannot write --addr-file {}", path.display()))?;
        }
        let mut status = running.status.clone();
        let logger = tokio::spawn(async move {
            let mut last = tokio::time::Instant::now() - Duration::from_secs(3600);
            while status.changed().await.is_ok() {
                if last.elapsed() < Duration::from_secs(10) {
                    continue;
                }
                last = tokio::time::Instant::now();
                if let Some(s) = status.borrow().clone() {
                    tracing::info!(
                        done = s.cells_done, failed = s.cells_failed, leased = s.cells_leased,
                        pending = s.cells_pending, total = s.cells_total, workers = s.workers_active,
                        rate_per_s = format!("{:.1}", s.throughput_per_s),
                        eta = %s.eta_seconds.map_or("?".into(), coordinator::progress::format_secs),
                        "progress"
                    );
                }
            }
        });
        let last = running.wait().await?;
        logger.abort();
        if let Some((stop, task)) = metrics_task {
            let _ = stop.send(());
            match task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics listener task failed"),
                Ok(Ok(())) => {}
            }
        }
        println!(
            "{}: {} of {} cells done, {} failed, {} pending, {} leased",
            last.study_name,
            last.cells_done,
            last.cells_total,
            last.cells_failed,
            last.cells_pending,
            last.cells_leased
        );
        Ok(())
    })
}

/// Write `text` to `path` via a temporary file and a rename, so readers never see half.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
