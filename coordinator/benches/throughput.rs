//! Coordinator throughput with trivial cells.
//!
//! `cargo bench -p taustar-coordinator --bench throughput` (cells: `TAUSTAR_BENCH_CELLS`,
//! default 100 000). Measures, with a study of two-level grid points:
//!
//! 1. **gRPC end to end**: a real coordinator ([`coordinator::server::start`]) on loopback
//!    and 8 simulated workers (the real worker library, 1 thread each, over 8 separate
//!    gRPC connections) whose cell function returns a fixed result at once — so the
//!    numbers are the runtime's cost: leasing, streaming, acknowledging, committing.
//! 2. **store only**: lease + commit straight on [`coordinator::StudyStore`] in batches of
//!    1000, the ceiling the writer could reach without the network.
//! 3. **DB size** per 10^5 results, with a realistic 71-point τ curve per result (the
//!    default reporting grid), after the coordinator closed the file.
//!
//! It prints plain lines (no criterion: one run of 10^5 cells is the measurement; repeated
//! sampling would take minutes and measure the same thing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cell::{CurvePoint, TauGrid};
use common::study::Study;
use common::{CellResult, CellSettings, CellSpec, DataSize, FitMode, FitSpec, GridPoint, TruthSpec};
use coordinator::server::{self, ServeConfig};
use coordinator::store::{Outcome, StoreConfig, Upload};
use coordinator::study_file;

const WORKERS: usize = 8;
const REPLICATES: u32 = 100;

fn study(cells: u64) -> Study {
    let points = (cells / u64::from(REPLICATES)).max(1);
    let grid: Vec<GridPoint> = (0..points)
        .map(|i| GridPoint {
            truth: TruthSpec::TwoLevel { states: 100, low_states: 20, gap: 1.0 + i as f64 * 0.001 },
            data: DataSize::Samples(100),
            fit: FitSpec { mode: FitMode::Mle, l2: 0.0 },
        })
        .collect();
    let settings =
        CellSettings { tau_grid: TauGrid { from: 0.2, to: 5.0, count: 70 }, ..CellSettings::default() };
    Study::new("bench", 1, REPLICATES, settings, grid).expect("bench study is valid")
}

/// A trivial cell: a fixed result with the cell's key and a 71-point curve.
fn trivial(spec: &CellSpec) -> CellResult {
    let curve = spec
        .settings
        .tau_grid
        .values()
        .into_iter()
        .map(|tau| CurvePoint {
            tau,
            dkl_rev: 0.1 * tau,
            dkl_fwd: 0.2 / tau,
            entropy: 3.0,
            mean_energy: -tau,
            heat_capacity: 0.5,
        })
        .collect();
    CellResult {
        key: spec.key(),
        samples: 100,
        tau_rev: 1.1,
        tau_fwd: 0.9,
        tau_rev_at_bound: false,
        tau_fwd_at_bound: false,
        dkl_rev_at_1: 0.1,
        dkl_rev_opt: 0.05,
        dkl_fwd_at_1: 0.2,
        dkl_fwd_opt: 0.1,
        tau_heat_peak: Some(1.2),
        tau_var: Some(1.0),
        low_states_hat: Some(20),
        gap_hat: Some(2.0),
        overlap: Some(18),
        tau_rev_closed: Some(1.1),
        tau_fwd_closed: Some(0.9),
        fit_mode: None,
        fit_iterations: None,
        grad_max_norm: None,
        nll: None,
        coupling_max_abs: None,
        fit_diverged: None,
        fit_note: None,
        curve,
    }
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn grpc_end_to_end(cells: u64, dir: &std::path::Path) -> (f64, u64, u64) {
    let loaded = study_file::from_parts(study(cells), String::new());
    let db = dir.join("grpc.db");
    let (store, sync) = study_file::open_store(&loaded, &db, StoreConfig::default()).expect("store");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let elapsed = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let config = ServeConfig {
            exit_when_done: true,
            linger: Duration::from_millis(300),
            ..ServeConfig::default()
        };
        let running = server::start(store, listener, config, std::future::pending()).await.expect("start");
        let url = format!("http://{}", running.addr);
        let start = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|i| {
                let mut c = worker::WorkerConfig::new(url.clone(), 1);
                c.name = format!("bench-{i}");
                c.compute = Arc::new(|spec| Ok(trivial(spec)));
                tokio::spawn(worker::run(c, std::future::pending()))
            })
            .collect();
        for w in workers {
            w.await.expect("worker task").expect("worker");
        }
        let elapsed = start.elapsed().as_secs_f64();
        let last = running.wait().await.expect("coordinator");
        assert_eq!(last.cells_done, sync.cells_total, "every cell committed");
        elapsed
    });
    (elapsed, sync.cells_total, file_size(&db) + file_size(&db.with_extension("db-wal")))
}

fn store_only(cells: u64, dir: &std::path::Path) -> (f64, u64) {
    let loaded = study_file::from_parts(study(cells), String::new());
    let db = dir.join("store.db");
    let (mut store, sync) = study_file::open_store(&loaded, &db, StoreConfig::default()).expect("store");
    let w = store.register_worker(0, "bench", 1, "bench", 0).expect("register");
    let start = Instant::now();
    loop {
        let batch = store.lease(w, 1000, 1, i64::MAX / 2).expect("lease");
        if batch.cells.is_empty() {
            break;
        }
        let uploads: Vec<Upload> = batch
            .cells
            .iter()
            .map(|(id, spec)| Upload { cell_id: *id, outcome: Outcome::Done(trivial(spec)) })
            .collect();
        store.commit(&[(w, uploads)], 2).expect("commit");
    }
    (start.elapsed().as_secs_f64(), sync.cells_total)
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run small.
    let quick = std::env::args().all(|a| a != "--bench");
    let cells: u64 = std::env::var("TAUSTAR_BENCH_CELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, n, bytes) = grpc_end_to_end(cells, dir.path());
    println!(
        "grpc end to end: {n} cells, {WORKERS} workers on loopback: {t:.2} s = {:.0} committed results/s",
        n as f64 / t
    );
    println!(
        "db size: {:.1} MB for {n} results = {:.1} MB per 10^5 results ({:.0} bytes/result, 71-point curves)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 * 1e5 / n as f64,
        bytes as f64 / n as f64
    );
    let (t, n) = store_only(cells, dir.path());
    println!(
        "store only: {n} cells leased+committed in batches of 1000: {t:.2} s = {:.0} results/s",
        n as f64 / t
    );
}
