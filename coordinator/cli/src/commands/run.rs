//! `taustar run`: a whole study on this machine — the coordinator and a local worker in one
//! process, talking gRPC over loopback (127.0.0.1, an ephemeral port), so the embedded mode
//! runs exactly the code paths of a cluster run. Running it again on the same database
//! resumes: finished cells are kept, the rest is computed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use coordinator::progress::Progress;
use coordinator::server;
use coordinator::study_file;
use coordinator::{StudyStatus, StudyStore};

/// Arguments of `taustar run`.
#[derive(clap::Args)]
pub struct Args {
    /// The study file (TOML). Running an extended file adds and computes only its new cells.
    pub study: PathBuf,
    /// Study database (SQLite, created if missing) (default: STUDY_NAME.db in the current directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Local compute threads [default: all available cores].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Where to write tables (summary and cells, CSV + Parquet) and phase-diagram figures when
    /// the study is finished [default: <database path without .db>-out/]. Per-τ curves are
    /// large: get them with `taustar export --tables curves`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Don't write tables and figures at the end.
    #[arg(long)]
    pub no_report: bool,
    #[command(flatten)]
    pub lease: super::serve::LeaseArgs,
}

/// Run `taustar run`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads =
        args.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if threads == 0 {
        anyhow::bail!("invalid --workers = 0: need at least one compute thread");
    }
    let (config, store_config) = args.lease.to_config()?;
    let mut loaded = study_file::load(&args.study)?;
    let db = args.db.clone().unwrap_or_else(|| study_file::default_db_path(&loaded.definition.name));
    let (store, sync) = study_file::open_store(&mut loaded, &db, store_config)?;
    drop(loaded);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (final_status, drained) = runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let running = server::start(store, listener, config, async {
            let _ = stop_rx.await;
        })
        .await?;
        let mut worker_config = worker::WorkerConfig::new(format!("http://{}", running.addr), threads);
        worker_config.name = format!("local-{}", std::process::id());
        worker_config.give_up_after = Some(Duration::from_secs(30));
        worker_config.drain_timeout = Duration::from_secs(10);
        worker::hook::install_from_env(&mut worker_config)?;
        // Ctrl-C / SIGTERM drains the local worker (unstarted cells are handed back, running
        // ones finish and are committed); then the coordinator stops and closes the store.
        let mut work = tokio::spawn(worker::run(worker_config, taustar_proto::process::signal()));
        let mut progress = Progress::new(sync.cells_total);
        let mut status = running.status.clone();
        let report = loop {
            tokio::select! {
                r = &mut work => break r,
                changed = status.changed() => {
                    if changed.is_err() { break (&mut work).await; }
                    if let Some(s) = status.borrow().clone() { progress.update(&s); }
                }
            }
        };
        let _ = stop_tx.send(());
        let final_status = running.wait().await;
        progress.finish();
        let report = report.context("the local worker task failed")??;
        anyhow::Ok((final_status?, report.drained))
    })?;
    summarise(&db, &final_status)?;
    if drained && !final_status.finished {
        anyhow::bail!(
            "interrupted: {} of {} cells settled; run the same command again to resume",
            final_status.cells_done + final_status.cells_failed,
            final_status.cells_total
        );
    }
    if args.no_report {
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_else(|| report_dir(&db));
    post_run(&db, &out)
}

/// `paper-fig2.db` → `paper-fig2-out`, beside the database.
fn report_dir(db: &Path) -> PathBuf {
    let stem = db.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "taustar".into());
    db.with_file_name(format!("{stem}-out"))
}

fn summarise(db: &Path, s: &StudyStatus) -> anyhow::Result<()> {
    println!(
        "{}: {} of {} cells done, {} failed ({})",
        s.study_name,
        s.cells_done,
        s.cells_total,
        s.cells_failed,
        db.display()
    );
    if s.cells_failed > 0 {
        let store = StudyStore::open_read_only(db)?;
        let mut n = 0;
        store.for_each_failed_cell(|key, failures, error| {
            if n < 5 {
                eprintln!("failed cell {key} ({failures}x): {error}");
            }
            n += 1;
        })?;
        if n > 5 {
            eprintln!("… and {} more failed cells (taustar status --db {})", n - 5, db.display());
        }
    }
    Ok(())
}

/// After a finished run: the summary and cell tables (CSV + Parquet) and every phase diagram,
/// so one command goes from a study file to figures. Streams over the closed store like
/// `taustar export` and `taustar plot` do.
pub fn post_run(db: &Path, out: &Path) -> anyhow::Result<()> {
    use report::export::sink::Format;
    use report::export::Table;
    let source = report::export::source::StoreSource::open(db)?;
    let tables = report::export::export(
        &source,
        out,
        &[Format::Csv, Format::Parquet],
        &[Table::Summary, Table::Cells],
    )
    .context("writing the tables")?;
    let figures = report::plot::plot_study(&source, out, None).context("drawing the figures")?;
    println!("wrote {} tables and {} figures to {}", tables.files.len(), figures.files.len(), out.display());
    Ok(())
}
