//! Lease expiry and heartbeats through the gRPC service, with tokio's paused clock: time
//! only moves when the test advances it, so these tests take milliseconds and cannot flake.

use std::time::Duration;

use coordinator::clock::LeaseClock;
use coordinator::service::{CoordinatorService, ServiceConfig};
use coordinator::store::{StoreConfig, StudyStore};
use coordinator::writer::StoreHandle;
use taustar_common::study::Study;
use taustar_proto::pb::coordinator_server::Coordinator;
use taustar_proto::pb::{self, lease_reply::State};
use taustar_proto::PROTOCOL_VERSION;
use tonic::Request;

const LEASE: Duration = Duration::from_secs(30);

const TOML: &str = r#"
name = "lease-test"
seed = 3
replicates = 4
[truth]
kind = "two-level"
states = 10
low_states = 2
gap = 2.0
[data]
samples = [5, 50]
"#;

struct Fixture {
    svc: CoordinatorService,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lease.db");
    let study = Study::from_toml_str(TOML).unwrap();
    let loaded = coordinator::study_file::from_parts(study, TOML.into());
    // One failed computation fails a cell here; lost workers must not count as one.
    let config = StoreConfig { max_failures: 1, max_lost_leases: 5 };
    let mut store = StudyStore::open(&path, config).unwrap();
    store.sync_study(&loaded.definition, loaded.study.cells()).unwrap();
    let reader = StudyStore::open_read_only(&path).unwrap();
    let (handle, _writer) = StoreHandle::spawn(store, LeaseClock::new());
    let (notify, _) = tokio::sync::broadcast::channel(1);
    let (done_tx, _done_rx) = tokio::sync::mpsc::channel(1);
    let config = ServiceConfig { lease: LEASE, heartbeat: LEASE / 6, ..ServiceConfig::default() };
    let limit = coordinator::server::TransportLimits::default().max_message_bytes;
    let svc = CoordinatorService::new(handle, reader, config, limit, notify, done_tx);
    Fixture { svc, _dir: dir }
}

async fn register(svc: &CoordinatorService, name: &str) -> u64 {
    let req = pb::RegisterRequest {
        protocol_version: PROTOCOL_VERSION,
        name: name.into(),
        cores: 2,
        version: "test".into(),
        previous_worker_id: 0,
    };
    svc.register(Request::new(req)).await.unwrap().into_inner().worker_id
}

/// Lease with `threads` threads and no duration measurement: one cell per thread.
async fn lease(svc: &CoordinatorService, worker: u64, threads: u32) -> (State, Vec<u64>) {
    let req = pb::LeaseRequest { worker_id: worker, threads, mean_cell_seconds: 0.0 };
    let reply = svc.lease(Request::new(req)).await.unwrap().into_inner();
    (State::try_from(reply.state).unwrap(), reply.cells.iter().map(|c| c.cell_id).collect())
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_returns_its_cells_to_another_worker() {
    let f = fixture().await;
    let (a, b) = (register(&f.svc, "a").await, register(&f.svc, "b").await);
    let (_, a_cells) = lease(&f.svc, a, 3).await;
    assert_eq!(a_cells.len(), 3);
    tokio::time::advance(LEASE - Duration::from_secs(1)).await;
    assert_eq!(f.svc.sweep_expired_leases().await.unwrap().returned, 0, "not yet expired");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(f.svc.sweep_expired_leases().await.unwrap().returned, 3);
    let (_, b_cells) = lease(&f.svc, b, 3).await;
    assert_eq!(b_cells, a_cells, "the returned cells are leased again first");
}

#[tokio::test(start_paused = true)]
async fn losing_workers_is_not_the_cells_failure_until_the_lost_lease_limit() {
    let f = fixture().await;
    let mut first: Option<Vec<u64>> = None;
    // Four workers in a row take the same cells and vanish (kill -9, pre-emption): with
    // max_failures = 1 every one of these expiries would have failed the cells before.
    for round in 0..4 {
        let w = register(&f.svc, &format!("doomed-{round}")).await;
        let (_, cells) = lease(&f.svc, w, 2).await;
        assert_eq!(&cells, first.get_or_insert_with(|| cells.clone()), "round {round}");
        tokio::time::advance(LEASE + Duration::from_secs(1)).await;
        let swept = f.svc.sweep_expired_leases().await.unwrap();
        assert_eq!((swept.returned, swept.failed), (2, 0), "round {round}");
    }
    assert_eq!(f.svc.status().await.unwrap().cells_failed, 0);
    // The fifth loss reaches max_lost_leases = 5: those cells end failed, the study goes on.
    let w = register(&f.svc, "doomed-4").await;
    lease(&f.svc, w, 2).await;
    tokio::time::advance(LEASE + Duration::from_secs(1)).await;
    let swept = f.svc.sweep_expired_leases().await.unwrap();
    assert_eq!((swept.returned, swept.failed), (0, 2));
    let status = f.svc.status().await.unwrap();
    assert_eq!((status.cells_failed, status.cells_pending), (2, 6));
}

/// The lease was committed but its reply never reached the worker (the connection or the
/// coordinator died in between): the worker reconnects with its old id and heartbeats what it
/// knows it holds — not these cells — so they expire and go to another worker instead of
/// being kept alive forever by a worker that will never compute them.
#[tokio::test(start_paused = true)]
async fn a_lease_whose_reply_was_lost_expires_despite_heartbeats() {
    let f = fixture().await;
    let a = register(&f.svc, "a").await;
    let (_, kept) = lease(&f.svc, a, 1).await;
    let (_, lost) = lease(&f.svc, a, 2).await;
    assert_eq!((kept.len(), lost.len()), (1, 2));
    for _ in 0..4 {
        tokio::time::advance(LEASE / 2).await;
        let hb = f
            .svc
            .heartbeat(Request::new(pb::HeartbeatRequest { worker_id: a, cell_ids: kept.clone() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(hb.leases_extended, 1);
        f.svc.sweep_expired_leases().await.unwrap();
    }
    let status = f.svc.status().await.unwrap();
    assert_eq!(status.cells_leased, 1, "only the cell the worker knows of is still leased");
    let b = register(&f.svc, "b").await;
    let (_, b_cells) = lease(&f.svc, b, 8).await;
    assert!(lost.iter().all(|id| b_cells.contains(id)), "the lost lease's cells went to b: {b_cells:?}");
    assert!(!b_cells.contains(&kept[0]));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_lease_alive_past_its_first_deadline() {
    let f = fixture().await;
    let a = register(&f.svc, "a").await;
    let (_, a_cells) = lease(&f.svc, a, 2).await;
    for _ in 0..4 {
        tokio::time::advance(LEASE / 2).await;
        let hb = f
            .svc
            .heartbeat(Request::new(pb::HeartbeatRequest { worker_id: a, cell_ids: a_cells.clone() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(hb.leases_extended, 2);
        assert_eq!(f.svc.sweep_expired_leases().await.unwrap().returned, 0);
    }
    // Two lease periods have passed in total; the cells are still A's.
    let status = f.svc.status().await.unwrap();
    assert_eq!(status.cells_leased, a_cells.len() as u64);
    // Without heartbeats they expire one lease period after the last one.
    tokio::time::advance(LEASE + Duration::from_millis(1)).await;
    assert_eq!(f.svc.sweep_expired_leases().await.unwrap().returned, 2);
}

#[tokio::test(start_paused = true)]
async fn a_worker_waits_while_others_hold_the_last_leases_and_gets_them_once_expired() {
    let f = fixture().await;
    let (a, b) = (register(&f.svc, "a").await, register(&f.svc, "b").await);
    let (state, cells) = lease(&f.svc, a, 100).await;
    assert_eq!((state, cells.len()), (State::Work, 8));
    assert_eq!(lease(&f.svc, b, 4).await.0, State::Wait);
    // A vanishes; after the lease period B gets everything (lease() sweeps by itself).
    tokio::time::advance(LEASE + Duration::from_secs(1)).await;
    let (state, cells) = lease(&f.svc, b, 100).await;
    assert_eq!((state, cells.len()), (State::Work, 8));
}

#[tokio::test(start_paused = true)]
async fn a_worker_of_another_protocol_version_is_refused_with_a_clear_message() {
    let f = fixture().await;
    let req = pb::RegisterRequest {
        protocol_version: PROTOCOL_VERSION + 1,
        name: "future".into(),
        cores: 1,
        version: "9.9".into(),
        previous_worker_id: 0,
    };
    let err = f.svc.register(Request::new(req)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains(&format!("protocol version {}", PROTOCOL_VERSION + 1)),
        "{}",
        err.message()
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_worker_is_told_to_register_again() {
    let f = fixture().await;
    let err = f
        .svc
        .heartbeat(Request::new(pb::HeartbeatRequest { worker_id: 42, cell_ids: vec![] }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test(start_paused = true)]
async fn watch_streams_progress_snapshots() {
    use tokio_stream::StreamExt;
    let f = fixture().await;
    let reply = f.svc.watch(Request::new(pb::WatchRequest { interval_ms: 500 })).await.unwrap();
    let mut stream = reply.into_inner();
    let first = stream.next().await.expect("a snapshot").unwrap();
    assert_eq!((first.cells_total, first.cells_pending, first.finished), (8, 8, false));
    let a = register(&f.svc, "a").await;
    lease(&f.svc, a, 3).await;
    let second = stream.next().await.expect("another snapshot").unwrap();
    assert_eq!((second.cells_leased, second.cells_pending), (3, 5));
}
