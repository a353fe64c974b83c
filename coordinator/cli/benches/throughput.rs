//! Coordinator throughput and memory at scale, with trivial cells.
//!
//! `cargo bench -p taustar --bench throughput`; cells `TAUSTAR_BENCH_CELLS`
//! (default 100 000; the numbers are at 10^4 and 10^6), simulated workers
//! `TAUSTAR_BENCH_WORKERS` (default 64). A study of two-level grid points with 100
//! replicates each and the default 71-point τ reporting grid. It prints plain lines (no
//! criterion: one run is the measurement; repeated sampling would take minutes and measure
//! the same thing):
//!
//! 1. **study insertion**: the study file parsed and its N cells inserted into a new store
//!    in this process, timed on its own.
//! 2. **end to end**: `taustar serve --exit-when-done` on that store as a *separate process*
//!    (so its memory is measured alone: peak `VmHWM` from `/proc/<pid>/status`), and 64
//!    simulated workers in this process — the real worker library, one compute thread and
//!    one gRPC connection each — whose cell function returns a fixed, realistic result (a
//!    71-point curve) at once. So the numbers are the runtime's cost: leasing, streaming,
//!    acknowledging, committing. Reports wall time, committed results/s, the latency of
//!    every `Lease` call as the workers saw it (p50/p99/max), CPU seconds of both processes,
//!    the file size, and checks by SQL on the closed file that every cell is done exactly
//!    once.
//! 3. **store only**: lease + commit straight on [`coordinator::StudyStore`] — the ceiling
//!    the writer could reach without the network — first *naive* (one transaction per
//!    result) over a slice of the cells, then *batched* (1000 per transaction; the
//!    coordinator's writer takes whatever is queued, up to 4096) over the rest, and their
//!    ratio.
//!
//! `TAUSTAR_BENCH_PARTS=e2e` or `=store` runs one part only (default `e2e,store`).
//! `TAUSTAR_BENCH_CURVES=none` benchmarks a study with `[tau] curves = "none"` (results
//! without their 71-point curve: ~190 instead of ~4 200 bytes each).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coordinator::store::{state, Outcome, StoreConfig, Upload};
use coordinator::study_file;
use taustar_common::cell::{CurveOutput, CurvePoint};
use taustar_common::{CellResult, CellSpec, FitReport, TauSummary, TwoLevelFitReport};

const REPLICATES: u64 = 100;

/// A study file of `cells` cells (rounded up to whole grid points of 100 replicates);
/// `curves` is its `[tau] curves` ("all" or "none").
fn study_toml(cells: u64, curves: &str) -> String {
    let points = cells.div_ceil(REPLICATES).max(1);
    // `count` evenly spaced gaps: distinct at 12 significant digits for any realistic count.
    let gap = if points == 1 {
        "1.0".to_string()
    } else {
        format!("{{ from = 1.0, to = {}, count = {points} }}", 1.0 + points as f64 * 0.001)
    };
    format!(
        "name = \"bench\"\nseed = 1\nreplicates = {REPLICATES}\n\n[truth]\nkind = \"two-level\"\n\
         states = 100\nlow_states = 20\ngap = {gap}\n\n[data]\nsamples = 100\n\n[tau]\n\
         grid = {{ from = 0.2, to = 5.0, count = 70 }}\ncurves = \"{curves}\"\n"
    )
}

/// A trivial cell: a fixed result with the cell's key and a curve over the study's τ grid
/// (71 points), unless the study keeps none.
fn trivial(spec: &CellSpec) -> CellResult {
    let taus = match spec.settings.curves {
        CurveOutput::All => spec.settings.tau_grid.values(),
        CurveOutput::None | CurveOutput::Recompute => Vec::new(),
    };
    let curve = taus
        .into_iter()
        .map(|tau| CurvePoint {
            tau,
            dkl_rev: 0.1 * tau,
            dkl_fwd: 0.2 / tau,
            entropy: 3.0,
            mean_energy: -tau,
            heat_capacity: 0.5,
            kappa: Some(0.25),
        })
        .collect();
    CellResult {
        key: spec.key(),
        samples: 100,
        tau: TauSummary {
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
            kappa_at_1: Some(0.3),
            heat_capacity_at_1: Some(0.5),
        },
        two_level: TwoLevelFitReport {
            low_states_hat: Some(20),
            gap_hat: Some(2.0),
            overlap: Some(18),
            tau_rev_closed: Some(1.1),
            tau_fwd_closed: Some(0.9),
        },
        fit: FitReport::default(),
        mcmc: Default::default(),
        curve,
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Size of a SQLite file with its WAL.
fn db_size(db: &Path) -> u64 {
    file_size(db) + file_size(&wal_path(db))
}

/// Write the study file and insert its cells into a new store at `db`; returns the study
/// file path, the cell count and the insertion time.
fn insert_study(cells: u64, curves: &str, dir: &Path, db: &Path) -> (PathBuf, u64, f64) {
    let toml = dir.join("bench.toml");
    std::fs::write(&toml, study_toml(cells, curves)).expect("write the study file");
    let start = Instant::now();
    let mut loaded = study_file::load(&toml).expect("the bench study file parses");
    let (store, sync) =
        study_file::open_store(&mut loaded, db, StoreConfig::default()).expect("insert the study");
    drop(store);
    (toml, sync.cells_total, start.elapsed().as_secs_f64())
}

/// Memory and CPU of a process, sampled from `/proc` until it exits.
#[derive(Debug, Default, Clone, Copy)]
struct ProcStats {
    /// Peak resident set (`VmHWM`), KiB, as last seen.
    hwm_kib: u64,
    /// User + system CPU seconds, as last seen.
    cpu_s: f64,
    /// Largest size of the database's WAL file seen, bytes.
    wal_max: u64,
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// User + system CPU seconds from `/proc/<pid>/stat` (clock ticks of 1/100 s, the Linux
/// default of `sysconf(_SC_CLK_TCK)`).
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn sample(pid: &str) -> Option<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcStats { hwm_kib: status_field(&status, "VmHWM:")?, cpu_s: cpu_seconds(&stat)?, wal_max: 0 })
}

/// Sample `pid` (and the size of `wal`) every 20 ms until `stop` is set or the process is gone.
fn sampler(pid: u32, wal: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<ProcStats> {
    std::thread::spawn(move || {
        let pid = pid.to_string();
        let mut last = ProcStats::default();
        let mut wal_max = 0;
        while !stop.load(Ordering::SeqCst) {
            wal_max = wal_max.max(file_size(&wal));
            match sample(&pid) {
                // A zombie has no memory left: keep what was seen while it ran.
                Some(s) if s.hwm_kib > 0 => last = ProcStats { wal_max, ..s },
                Some(_) => {}
                None => break,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        last
    })
}

/// The coordinator process; killed if the bench panics while it runs.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(toml: &Path, db: &Path, dir: &Path) -> (Serve, String) {
        let addr_file = dir.join("addr");
        let log = dir.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_taustar"))
            .arg("serve")
            .arg(toml)
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0", "--exit-when-done", "--addr-file"])
            .arg(&addr_file)
            .env("RUST_LOG", std::env::var("TAUSTAR_BENCH_SERVE_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the serve log"))
            .spawn()
            .expect("start taustar serve");
        let mut serve = Serve { child, log };
        let start = Instant::now();
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                if !addr.is_empty() {
                    return (serve, addr.trim().to_string());
                }
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("taustar serve exited early ({status}):\n{}", serve.log_text());
            }
            assert!(start.elapsed() < Duration::from_secs(600), "taustar serve did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (at most `timeout`) for the process to exit by itself; panics if it fails.
    fn wait(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            match self.child.try_wait().expect("wait for taustar serve") {
                Some(status) => {
                    assert!(status.success(), "taustar serve failed ({status}):\n{}", self.log_text());
                    return;
                }
                None => {
                    assert!(start.elapsed() < timeout, "taustar serve did not exit:\n{}", self.log_text());
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Latency quantile of sorted `xs` (nearest rank).
fn quantile(xs: &[Duration], q: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let i = ((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the end-to-end run measured.
struct EndToEnd {
    wall_s: f64,
    serve_start_s: f64,
    computed: u64,
    leases: Vec<Duration>,
    coordinator: ProcStats,
    bench_cpu_s: f64,
}

fn end_to_end(toml: &Path, db: &Path, dir: &Path, workers: usize) -> EndToEnd {
    let start = Instant::now();
    let (mut serve, addr) = Serve::start(toml, db, dir);
    let serve_start_s = start.elapsed().as_secs_f64();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = sampler(serve.child.id(), wal_path(db), stop.clone());
    let leases: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let cpu_before = bench_cpu();
    let started = Instant::now();
    let reports = runtime.block_on(async {
        let url = format!("http://{addr}");
        let tasks: Vec<_> = (0..workers)
            .map(|i| {
                let mut c = worker::WorkerConfig::new(url.clone(), 1);
                c.name = format!("bench-{i}");
                c.compute = Arc::new(|spec| Ok(trivial(spec)));
                c.give_up_after = Some(Duration::from_secs(30));
                let leases = leases.clone();
                c.lease_latency = Some(Arc::new(move |d| {
                    leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(d)
                }));
                tokio::spawn(worker::run(c, std::future::pending()))
            })
            .collect();
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await.expect("worker task").expect("worker"));
        }
        reports
    });
    let wall_s = started.elapsed().as_secs_f64();
    let bench_cpu_s = bench_cpu() - cpu_before;
    drop(runtime);
    serve.wait(Duration::from_secs(120));
    stop.store(true, Ordering::SeqCst);
    let coordinator = stats.join().expect("sampler thread");
    let mut leases = std::mem::take(&mut *leases.lock().expect("lease latencies"));
    leases.sort_unstable();
    EndToEnd {
        wall_s,
        serve_start_s,
        computed: reports.iter().map(|r| r.computed).sum(),
        leases,
        coordinator,
        bench_cpu_s,
    }
}

fn bench_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(cpu_seconds).unwrap_or(0.0)
}

/// Check on the closed file that every cell is done exactly once; returns
/// `(results, cells not done, duplicates ignored, results rejected)`.
fn verify(db: &Path) -> (i64, i64, i64, i64) {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the bench db");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let results = one("SELECT count(*) FROM results");
    let not_done = one(&format!(
        "SELECT count(*) FROM cells c LEFT JOIN results r ON r.cell_id = c.id \
         WHERE c.state != {} OR r.cell_id IS NULL",
        state::DONE
    ));
    let orphans =
        one("SELECT count(*) FROM results r LEFT JOIN cells c ON c.id = r.cell_id WHERE c.id IS NULL");
    assert_eq!(orphans, 0, "results without a cell");
    let dup = one("SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'duplicates_ignored'");
    let rej = one("SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'results_rejected'");
    (results, not_done, dup, rej)
}

/// Lease and commit every cell straight on the store: the first `naive` cells one
/// transaction per result, the rest in batches of 1000. Returns `(naive rate, batched rate,
/// cells done batched)`.
fn store_only(toml: &Path, db: &Path, naive: u64) -> (f64, f64, u64) {
    let mut loaded = study_file::load(toml).expect("study");
    let (mut store, _) = study_file::open_store(&mut loaded, db, StoreConfig::default()).expect("store");
    let w = store.register_worker(0, "bench", 1, "bench", 0).expect("register");
    let lease = |store: &mut coordinator::StudyStore, n: u32| -> Vec<Upload> {
        let batch = store.lease(w, n, 1, i64::MAX / 2).expect("lease");
        batch
            .cells
            .iter()
            .map(|(id, spec)| Upload { cell_id: *id, outcome: Outcome::Done(trivial(spec)) })
            .collect()
    };
    let start = Instant::now();
    let mut done_naive = 0u64;
    while done_naive < naive {
        let uploads = lease(&mut store, (naive - done_naive).min(1000) as u32);
        if uploads.is_empty() {
            break;
        }
        done_naive += uploads.len() as u64;
        for up in uploads {
            store.commit(&[(w, vec![up])], 2).expect("commit");
        }
    }
    let naive_rate = done_naive as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut done = 0u64;
    loop {
        let uploads = lease(&mut store, 1000);
        if uploads.is_empty() {
            break;
        }
        done += uploads.len() as u64;
        store.commit(&[(w, uploads)], 2).expect("commit");
    }
    (naive_rate, done as f64 / start.elapsed().as_secs_f64(), done)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.parse().unwrap_or_else(|_| panic!("{name} = {v:?}: need a whole number")))
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run small.
    let quick = std::env::args().all(|a| a != "--bench");
    let cells = env_u64("TAUSTAR_BENCH_CELLS").unwrap_or(if quick { 2_000 } else { 100_000 });
    let workers = env_u64("TAUSTAR_BENCH_WORKERS").unwrap_or(if quick { 4 } else { 64 }) as usize;
    let parts = std::env::var("TAUSTAR_BENCH_PARTS").unwrap_or_else(|_| "e2e,store".into());
    let curves = std::env::var("TAUSTAR_BENCH_CURVES").unwrap_or_else(|_| "all".into());
    let dir = tempfile::tempdir().expect("tempdir");

    let db = dir.path().join("grpc.db");
    let (toml, n, t) = insert_study(cells, &curves, dir.path(), &db);
    println!("τ curves: {curves} ([tau] curves; TAUSTAR_BENCH_CURVES=all|none)");
    println!("study insertion: {n} cells in {t:.2} s = {:.0} cells/s", n as f64 / t);
    if parts.split(',').any(|p| p == "e2e") {
        e2e_part(&toml, &db, dir.path(), n, workers);
    }
    if parts.split(',').any(|p| p == "store") {
        store_part(&toml, &dir.path().join("store.db"), n);
    }
}

fn e2e_part(toml: &Path, db: &Path, dir: &Path, n: u64, workers: usize) {
    let e = end_to_end(toml, db, dir, workers);
    println!(
        "grpc end to end: {n} cells, {workers} workers on loopback: {:.2} s = {:.0} committed results/s \
         (coordinator start incl. re-sync: {:.2} s)",
        e.wall_s,
        n as f64 / e.wall_s,
        e.serve_start_s
    );
    println!(
        "lease latency ({} calls): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        e.leases.len(),
        ms(quantile(&e.leases, 0.5)),
        ms(quantile(&e.leases, 0.99)),
        ms(e.leases.last().copied().unwrap_or_default())
    );
    println!(
        "coordinator: peak RSS {:.1} MiB, CPU {:.1} s ({:.0} µs/result), largest WAL {:.1} MB; \
         bench process (workers) CPU {:.1} s",
        e.coordinator.hwm_kib as f64 / 1024.0,
        e.coordinator.cpu_s,
        e.coordinator.cpu_s * 1e6 / n as f64,
        e.coordinator.wal_max as f64 / 1e6,
        e.bench_cpu_s
    );
    let bytes = db_size(db);
    println!(
        "db size: {:.1} MB for {n} results = {:.0} bytes/result",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
    let (results, not_done, dup, rej) = verify(db);
    println!(
        "exactly once: {results} results for {n} cells, {not_done} cells not done, {} computed by workers, \
         {dup} duplicates ignored, {rej} rejected",
        e.computed
    );
    assert_eq!(results as u64, n, "one result per cell");
    assert_eq!(not_done, 0, "every cell done");
}

fn store_part(toml: &Path, db: &Path, n: u64) {
    let naive = (n / 10).clamp(1, 20_000);
    let (naive_rate, batched_rate, batched) = store_only(toml, db, naive);
    println!(
        "store only: naive (1 result/transaction, {naive} cells) {naive_rate:.0} results/s; batched (1000/transaction, \
         {batched} cells) {batched_rate:.0} results/s; batched/naive = {:.1}x",
        batched_rate / naive_rate
    );
}
