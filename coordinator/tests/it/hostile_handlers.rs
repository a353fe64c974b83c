//! Hostile input to every Coordinator handler, in-process on a real
//! store in a tempdir: clear Status codes instead of panics or unbounded work, and — over
//! arbitrary sequences of calls and uploads (proptest) — the store's invariants hold:
//! every done cell has exactly one results row, every results row's cell is done, nothing
//! quarantined is committed, and nothing is committed for a cell the uploader did not hold.

use std::time::{Duration, Instant};

use coordinator::batch::BatchPolicy;
use coordinator::clock::LeaseClock;
use coordinator::service::{upload_from_wire, CoordinatorService, ServiceConfig, MAX_IDS_PER_CALL};
use coordinator::store::{StoreConfig, StudyStore};
use coordinator::writer::StoreHandle;
use proptest::prelude::*;
use rusqlite::Connection;
use taustar_common::cell::CurvePoint;
use taustar_common::study::Study;
use taustar_common::{CellKey, CellResult, CellSpec, FitReport, TauSummary, TwoLevelFitReport};
use taustar_proto::pb::coordinator_server::Coordinator;
use taustar_proto::pb::{self, lease_reply::State};
use taustar_proto::PROTOCOL_VERSION;
use tonic::{Code, Request};

const TOML: &str = r#"
name = "hostile"
seed = 5
replicates = 3
[truth]
kind = "two-level"
states = 10
low_states = 2
gap = [1.5, 2.5]
[data]
samples = [5, 50]
"#;

/// Cells of [`TOML`]; their store ids are 1..=CELLS in study order.
const CELLS: u64 = 12;
const MAX_CELLS: u32 = 5;

struct Fixture {
    svc: CoordinatorService,
    study: Study,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn fixture(store_config: StoreConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.db");
    let study = Study::from_toml_str(TOML).unwrap();
    let loaded = coordinator::study_file::from_parts(study.clone(), TOML.into());
    let mut store = StudyStore::open(&path, store_config).unwrap();
    store.sync_study(&loaded.definition, loaded.study.cells()).unwrap();
    let reader = StudyStore::open_read_only(&path).unwrap();
    let (handle, _writer) = StoreHandle::spawn(store, LeaseClock::new());
    let (notify, _) = tokio::sync::broadcast::channel(1);
    let (done_tx, _done_rx) = tokio::sync::mpsc::channel(1);
    let config = ServiceConfig {
        batch: BatchPolicy { target_seconds: 4.0, max_cells: MAX_CELLS },
        ..ServiceConfig::default()
    };
    let limit = coordinator::server::TransportLimits::default().max_message_bytes;
    let svc = CoordinatorService::new(handle, reader, config, limit, notify, done_tx);
    Fixture { svc, study, db: path, _dir: dir }
}

async fn register(svc: &CoordinatorService, name: String, previous: u64) -> Result<u64, tonic::Status> {
    let req = pb::RegisterRequest {
        protocol_version: PROTOCOL_VERSION,
        name,
        cores: 1,
        version: "test".into(),
        previous_worker_id: previous,
    };
    svc.register(Request::new(req)).await.map(|r| r.into_inner().worker_id)
}

/// A made-up but valid result for `spec` (the store never recomputes it).
fn fake_result(spec: &CellSpec) -> CellResult {
    let x = f64::from(spec.replicate) + 0.5;
    CellResult {
        key: spec.key(),
        samples: 5,
        tau: TauSummary {
            tau_rev: 1.0 + x,
            tau_fwd: 1.0 / x,
            tau_rev_at_bound: false,
            tau_fwd_at_bound: false,
            dkl_rev_at_1: 0.1,
            dkl_rev_opt: 0.05,
            dkl_fwd_at_1: 0.2,
            dkl_fwd_opt: 0.1,
            tau_heat_peak: Some(0.7),
            tau_var: None,
            kappa_at_1: None,
            heat_capacity_at_1: None,
        },
        two_level: TwoLevelFitReport {
            low_states_hat: Some(2),
            gap_hat: Some(2.0),
            overlap: Some(2),
            tau_rev_closed: None,
            tau_fwd_closed: None,
        },
        fit: FitReport::default(),
        mcmc: Default::default(),
        curve: vec![CurvePoint {
            tau: 1.0,
            dkl_rev: 0.1,
            dkl_fwd: 0.2,
            entropy: 1.0,
            mean_energy: -1.0,
            heat_capacity: 0.5,
            kappa: None,
        }],
    }
}

fn open_db(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The study store's invariants, checked by SQL.
fn check_invariants(conn: &Connection) -> Result<(), String> {
    let checks = [
        ("a done cell without a result", "SELECT count(*) FROM cells WHERE state = 2 AND id NOT IN (SELECT cell_id FROM results)"),
        ("a result whose cell is not done", "SELECT count(*) FROM results r LEFT JOIN cells c ON c.id = r.cell_id WHERE c.state IS NOT 2"),
        ("a leased cell without a holder or deadline", "SELECT count(*) FROM cells WHERE state = 1 AND (worker_id IS NULL OR deadline_ms IS NULL)"),
        ("quarantine rows and the counter disagree", "SELECT (SELECT count(*) FROM quarantine) - (SELECT value FROM counters WHERE name = 'results_quarantined')"),
    ];
    for (what, sql) in checks {
        let n = count(conn, sql);
        if n != 0 {
            return Err(format!("{what}: {n} ({sql})"));
        }
    }
    Ok(())
}

/// A cell's row as the store keeps it: (state, worker, failures, lost leases, attempts).
fn cell_row(conn: &Connection, id: u64) -> Option<(i64, Option<i64>, i64, i64, i64)> {
    let id = i64::try_from(id).ok()?;
    conn.query_row(
        "SELECT state, worker_id, failures, lost_leases, attempts FROM cells WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .ok()
}

/// Codes a handler may answer hostile input with; anything else (INTERNAL, UNAVAILABLE:
/// a store error or a dead writer) is a bug.
fn acceptable(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::NotFound | Code::InvalidArgument | Code::FailedPrecondition)
}

#[tokio::test]
async fn a_lease_is_clamped_whatever_the_worker_claims() {
    let f = fixture(StoreConfig::default()).await;
    let w = register(&f.svc, "w".into(), 0).await.unwrap();
    for (threads, mean) in [
        (u32::MAX, f64::NAN),
        (u32::MAX, 1e-300),
        (0, 0.0),
        (7, f64::INFINITY),
        (3, -1.0),
        (u32::MAX, f64::MIN_POSITIVE),
        (1, 5e-324),
    ] {
        let req = pb::LeaseRequest { worker_id: w, threads, mean_cell_seconds: mean };
        let reply = f.svc.lease(Request::new(req)).await.unwrap().into_inner();
        assert!(
            (1..=MAX_CELLS as usize).contains(&reply.cells.len()) || reply.state != State::Work as i32,
            "threads {threads}, mean {mean}: {} cells",
            reply.cells.len()
        );
        let ids: Vec<u64> = reply.cells.iter().map(|c| c.cell_id).collect();
        f.svc.release(Request::new(pb::ReleaseRequest { worker_id: w, cell_ids: ids })).await.unwrap();
    }
}

#[tokio::test]
async fn oversized_and_unknown_requests_get_a_clear_status() {
    let f = fixture(StoreConfig::default()).await;
    let w = register(&f.svc, "w".into(), 0).await.unwrap();
    // A release of a million ids is refused at once, naming the field and the limit.
    let started = Instant::now();
    let err = f
        .svc
        .release(Request::new(pb::ReleaseRequest { worker_id: w, cell_ids: (0..1_000_000).collect() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cell_ids") && err.message().contains(&MAX_IDS_PER_CALL.to_string()));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // Unknown worker ids: NOT_FOUND from every handler that names a worker.
    let unknown = 987_654;
    let hb = f
        .svc
        .heartbeat(Request::new(pb::HeartbeatRequest { worker_id: unknown, cell_ids: vec![1] }))
        .await
        .unwrap_err();
    let lease = f
        .svc
        .lease(Request::new(pb::LeaseRequest { worker_id: unknown, threads: 1, mean_cell_seconds: 0.0 }))
        .await
        .unwrap_err();
    let release = f
        .svc
        .release(Request::new(pb::ReleaseRequest { worker_id: unknown, cell_ids: vec![1] }))
        .await
        .unwrap_err();
    for s in [hb, lease, release] {
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        assert!(s.message().contains("987654"), "{}", s.message());
    }
    // A 10 MB name registers, but the store keeps a clipped one.
    let big = register(&f.svc, "n".repeat(10 << 20), 0).await.unwrap();
    let conn = open_db(&f.db);
    let stored: i64 =
        conn.query_row("SELECT length(name) FROM workers WHERE id = ?1", [big as i64], |r| r.get(0)).unwrap();
    assert!(stored < 400, "stored a name of {stored} characters");
}

/// One step of a hostile session.
#[derive(Debug, Clone)]
enum Op {
    Register {
        name_len: usize,
        previous: u64,
    },
    Lease {
        worker: u64,
        threads: u32,
        mean: f64,
    },
    Heartbeat {
        worker: u64,
        cells: Vec<u64>,
    },
    Release {
        worker: u64,
        cells: Vec<u64>,
    },
    Upload {
        worker: u64,
        cell: u64,
        kind: Kind,
    },
    /// An upload for the `nth` cell the worker holds (most uploads in real life).
    UploadHeld {
        worker: u64,
        nth: usize,
        kind: Kind,
    },
    /// Every lease expires (the sweeper runs far in the future).
    Expire,
    Status,
}

/// What an upload carries.
#[derive(Debug, Clone)]
enum Kind {
    Good,
    Nan,
    InfiniteTau,
    WrongKey(String),
    Error(String),
    UnknownFitMode(i32),
    NoOutcome,
}

/// Worker and cell ids are small indexes most of the time (so they hit registered workers
/// and real cells) and arbitrary u64s sometimes.
fn id(small: u64) -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..=small, 1 => any::<u64>()]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Good),
        1 => Just(Kind::Nan),
        1 => Just(Kind::InfiniteTau),
        1 => ".{0,20}".prop_map(Kind::WrongKey),
        1 => ".{0,50}".prop_map(Kind::Error),
        1 => any::<i32>().prop_map(Kind::UnknownFitMode),
        1 => Just(Kind::NoOutcome),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let mean =
        prop_oneof![Just(0.0), Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), any::<f64>(), 1e-6..10.0];
    prop_oneof![
        1 => (prop_oneof![0..20usize, Just(100_000usize)], id(4))
            .prop_map(|(name_len, previous)| Op::Register { name_len, previous }),
        3 => (id(2), any::<u32>(), mean).prop_map(|(worker, threads, mean)| Op::Lease { worker, threads, mean }),
        1 => (id(4), proptest::collection::vec(id(CELLS + 1), 0..6))
            .prop_map(|(worker, cells)| Op::Heartbeat { worker, cells }),
        1 => (id(4), proptest::collection::vec(id(CELLS + 1), 0..6))
            .prop_map(|(worker, cells)| Op::Release { worker, cells }),
        3 => (id(4), id(CELLS + 1), kind()).prop_map(|(worker, cell, kind)| Op::Upload { worker, cell, kind }),
        6 => (0..3u64, 0..8usize, kind()).prop_map(|(worker, nth, kind)| Op::UploadHeld { worker, nth, kind }),
        1 => Just(Op::Expire),
        1 => Just(Op::Status),
    ]
}

fn upload(study: &Study, worker: u64, cell: u64, kind: &Kind) -> pb::ResultUpload {
    // Cell ids are 1-based in study order; for an id that names no cell, use cell 1's spec.
    let spec = study.cell(cell.saturating_sub(1)).unwrap_or_else(|| study.cell(0).unwrap());
    let mut r = fake_result(&spec);
    let outcome = match kind {
        Kind::Good => Some(pb::result_upload::Outcome::Result((&r).into())),
        Kind::Nan => {
            r.tau.dkl_rev_opt = f64::NAN;
            Some(pb::result_upload::Outcome::Result((&r).into()))
        }
        Kind::InfiniteTau => {
            r.tau.tau_fwd = f64::NEG_INFINITY;
            Some(pb::result_upload::Outcome::Result((&r).into()))
        }
        Kind::WrongKey(k) => {
            r.key = CellKey(k.clone());
            Some(pb::result_upload::Outcome::Result((&r).into()))
        }
        Kind::Error(msg) => Some(pb::result_upload::Outcome::Error(msg.clone())),
        Kind::UnknownFitMode(m) => {
            let mut wire = pb::CellResult::from(&r);
            wire.fit_mode = Some(*m);
            Some(pb::result_upload::Outcome::Result(wire))
        }
        Kind::NoOutcome => None,
    };
    pb::ResultUpload { worker_id: worker, cell_id: cell, outcome, compute_seconds: 0.0 }
}

async fn run_session(ops: Vec<Op>) -> Result<(), String> {
    let f = fixture(StoreConfig { max_failures: 2, max_lost_leases: 3 }).await;
    let conn = open_db(&f.db);
    // Two honest workers exist from the start, so most steps name a registered worker.
    let mut workers: Vec<u64> = vec![];
    for name in ["a", "b"] {
        workers.push(register(&f.svc, name.into(), 0).await.map_err(|e| e.to_string())?);
    }
    let (mut committed, mut quarantined) = (0i64, 0i64);
    let pick = |workers: &Vec<u64>, w: u64| -> u64 {
        // Small values name a registered worker (if any); large ones are arbitrary ids.
        if w <= 4 {
            workers.get(w as usize).copied().unwrap_or(w)
        } else {
            w
        }
    };
    let check = |r: Result<(), tonic::Status>, what: &str| -> Result<(), String> {
        match r {
            Err(s) if !acceptable(&s) => Err(format!("{what}: unexpected status {s:?}")),
            _ => Ok(()),
        }
    };
    for op in ops {
        let op = match op {
            Op::UploadHeld { worker, nth, kind } => {
                // `worker` stays an index: the Upload arm resolves it.
                let resolved = pick(&workers, worker);
                let held: Vec<u64> = {
                    let mut q = conn
                        .prepare("SELECT id FROM cells WHERE state = 1 AND worker_id = ?1 ORDER BY id")
                        .unwrap();
                    let ids = q.query_map([resolved as i64], |r| r.get::<_, i64>(0)).unwrap();
                    ids.map(|id| id.unwrap() as u64).collect()
                };
                let cell = if held.is_empty() { 1 } else { held[nth % held.len()] };
                Op::Upload { worker, cell, kind }
            }
            op => op,
        };
        match op {
            Op::Register { name_len, previous } => {
                let previous = pick(&workers, previous);
                let r = register(&f.svc, "x".repeat(name_len), previous).await;
                if let Ok(id) = &r {
                    if !workers.contains(id) {
                        workers.push(*id);
                    }
                }
                check(r.map(|_| ()), "register")?;
            }
            Op::Lease { worker, threads, mean } => {
                let req =
                    pb::LeaseRequest { worker_id: pick(&workers, worker), threads, mean_cell_seconds: mean };
                let r = f.svc.lease(Request::new(req)).await;
                if let Ok(reply) = &r {
                    let n = reply.get_ref().cells.len();
                    if n > MAX_CELLS as usize {
                        return Err(format!("leased {n} cells, more than max_cells = {MAX_CELLS}"));
                    }
                }
                check(r.map(|_| ()), "lease")?;
            }
            Op::Heartbeat { worker, cells } => {
                let req = pb::HeartbeatRequest { worker_id: pick(&workers, worker), cell_ids: cells };
                check(f.svc.heartbeat(Request::new(req)).await.map(|_| ()), "heartbeat")?;
            }
            Op::Release { worker, cells } => {
                let req = pb::ReleaseRequest { worker_id: pick(&workers, worker), cell_ids: cells };
                check(f.svc.release(Request::new(req)).await.map(|_| ()), "release")?;
            }
            Op::UploadHeld { .. } => unreachable!("resolved above"),
            Op::Upload { worker, cell, kind } => {
                let worker = pick(&workers, worker);
                let before = cell_row(&conn, cell);
                let up = upload(&f.study, worker, cell, &kind);
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                f.svc
                    .store()
                    .commit(worker, vec![upload_from_wire(up)], tx)
                    .await
                    .map_err(|e| e.to_string())?;
                let rep = rx.recv().await.ok_or("no commit report")?.map_err(|e| e.to_string())?;
                let after = cell_row(&conn, cell);
                let held = matches!(before, Some((0 | 1, Some(h), ..)) if h as u64 == worker);
                if rep.committed > 0 && !held {
                    return Err(format!(
                        "committed {kind:?} for cell {cell} that worker {worker} did not hold: {before:?}"
                    ));
                }
                if rep.committed > 0 && !matches!(kind, Kind::Good) {
                    return Err(format!("committed a bad upload {kind:?}"));
                }
                if rep.rejected > 0 && before != after {
                    return Err(format!("a rejected upload changed cell {cell}: {before:?} -> {after:?}"));
                }
                if !held && before.is_some_and(|b| b.0 <= 1) && before != after {
                    return Err(format!("a stranger's upload changed cell {cell}: {before:?} -> {after:?}"));
                }
                committed += i64::from(rep.committed);
                quarantined += i64::from(rep.quarantined);
                if rep.rejections.len() as u32 != rep.quarantined {
                    return Err(format!(
                        "{} rejections for {} quarantined",
                        rep.rejections.len(),
                        rep.quarantined
                    ));
                }
            }
            Op::Expire => {
                let far = i64::MAX / 2;
                f.svc.store().call(move |s| s.expire_leases(far)).await.map_err(|e| e.to_string())?;
            }
            Op::Status => {
                let s = Coordinator::status(&f.svc, Request::new(pb::StatusRequest {}))
                    .await
                    .map_err(|e| e.to_string())?;
                let s = s.into_inner();
                let settled = s.cells_done + s.cells_failed + s.cells_pending + s.cells_leased;
                if settled != CELLS {
                    return Err(format!("status counts {settled} cells, not {CELLS}"));
                }
            }
        }
        check_invariants(&conn)?;
    }
    if count(&conn, "SELECT count(*) FROM results") != committed {
        return Err(format!("{committed} commits acknowledged but the results table disagrees"));
    }
    if count(&conn, "SELECT count(*) FROM quarantine") != quarantined {
        return Err(format!("{quarantined} uploads quarantined but the quarantine table disagrees"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Arbitrary sessions of calls and uploads never break the store's invariants.
    #[test]
    fn arbitrary_sessions_keep_the_store_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = rt.block_on(run_session(ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

#[tokio::test]
async fn a_result_stream_carries_one_workers_results() {
    use tokio_stream::StreamExt;
    let f = fixture(StoreConfig::default()).await;
    let (a, b) =
        (register(&f.svc, "a".into(), 0).await.unwrap(), register(&f.svc, "b".into(), 0).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(pb::coordinator_server::CoordinatorServer::new(f.svc.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let server = tokio::spawn(server);
    let mut client =
        pb::coordinator_client::CoordinatorClient::connect(format!("http://{addr}")).await.unwrap();
    let reply = client
        .lease(pb::LeaseRequest { worker_id: a, threads: 1, mean_cell_seconds: 0.0 })
        .await
        .unwrap()
        .into_inner();
    let cell = reply.cells[0].cell_id;
    let uploads =
        vec![upload(&f.study, a, cell, &Kind::Error("first".into())), upload(&f.study, b, cell, &Kind::Good)];
    let mut acks = client.results(tokio_stream::iter(uploads)).await.unwrap().into_inner();
    let first = acks.next().await.expect("an ack").unwrap();
    assert_eq!(first.cell_ids, vec![cell]);
    let err = acks.next().await.expect("the end of the stream").unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains(&format!("worker_id = {b}")), "{}", err.message());
    assert_eq!(count(&open_db(&f.db), "SELECT count(*) FROM results"), 0);
    server.abort();
}
