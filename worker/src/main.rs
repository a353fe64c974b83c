//! `taustar-worker` — computes cells for a `taustar serve` coordinator.
//!
//! Exit codes: 0 when the study is done or after a drain on SIGTERM/SIGINT; 1 on a fatal
//! error (refused by the coordinator — protocol version or token —, unreachable beyond
//! `--give-up-after` (which includes a TLS handshake that keeps failing), bad argument values
//! or TLS files); 2 on a usage error found by the argument parser (unknown flag, missing
//! `--coordinator`).

use std::time::Duration;

use clap::Parser;
use taustar_proto::process::{init_logging, LogFormat};

const AFTER_HELP: &str = "\
Lifecycle:
  The worker leases batches of cells, computes them on --threads cores and streams each result
  back. If the coordinator goes away it keeps computed results, reconnects with backoff and
  re-sends them; nothing is computed twice unless a lease expired meanwhile.
  On SIGTERM or SIGINT it drains: running cells finish and are uploaded, unstarted cells are
  handed back, then it exits 0 (Slurm and Kubernetes send SIGTERM before killing).

Exit codes:
  0  the study is done, or the drain after SIGTERM/SIGINT completed
  1  bad values or files, refused by the coordinator (token, protocol version), or no
     coordinator within --give-up-after
  2  usage error (unknown flag, missing --coordinator)

Example:
  TAUSTAR_TOKEN_FILE=/run/secrets/taustar taustar-worker --coordinator 10.0.0.5:50051 --threads 32";

/// Lease cells from a taustar coordinator, compute them on local threads, stream results back.
///
/// Reconnects with backoff if the coordinator goes away (computed results are kept and
/// re-sent). On SIGTERM: finishes running cells, hands back unstarted ones, exits 0.
#[derive(Parser)]
#[command(name = "taustar-worker", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// Coordinator address, e.g. http://10.0.0.5:50051 or 10.0.0.5:50051 (https:// when
    /// --tls-ca is given).
    #[arg(long, env = "TAUSTAR_COORDINATOR")]
    coordinator: String,
    /// Compute threads (default: all available cores).
    #[arg(long, env = "TAUSTAR_THREADS")]
    threads: Option<usize>,
    /// Name shown by the coordinator (default: $HOSTNAME-PID).
    #[arg(long)]
    name: Option<String>,
    /// Give up after this many seconds without reaching the coordinator (default: never).
    #[arg(long, value_name = "SECS")]
    give_up_after: Option<u64>,
    /// Longest wait between reconnection attempts, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    max_backoff: u64,
    /// File holding the shared token the coordinator expects (or set TAUSTAR_TOKEN to the
    /// token itself). Never pass the token on the command line: `ps` shows it.
    #[arg(long, value_name = "PATH", env = "TAUSTAR_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    tls: taustar_proto::tls::ClientTlsArgs,
    /// Log output format on stderr. Verbosity via RUST_LOG (default: info).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let threads =
        cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if threads == 0 {
        anyhow::bail!("invalid --threads = 0: need at least one compute thread");
    }
    let mut config = worker::WorkerConfig::new(cli.coordinator, threads);
    if let Some(name) = cli.name {
        config.name = name;
    }
    config.give_up_after = cli.give_up_after.map(Duration::from_secs);
    config.max_backoff = Duration::from_secs(cli.max_backoff.max(1));
    config.token = taustar_proto::auth::Token::from_file_or_env(cli.token_file.as_deref())?;
    config.tls = cli.tls.load()?;
    worker::hook::install_from_env(&mut config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = runtime.block_on(worker::run(config, worker::signal()))?;
    tracing::info!(?report, "worker exiting");
    Ok(())
}
