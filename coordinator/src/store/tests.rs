//! Invariants of the study store, one test each.

use proptest::prelude::*;
use taustar_common::cell::{CurvePoint, CurveSe, LadderDiagnostics};
use taustar_common::study::Study;
use taustar_common::{
    CellKey, CellResult, CellSpec, FitReport, FitStop, McmcReport, TauSummary, TwoLevelFitReport,
};

use super::codec::{decode_curve, decode_curve_columns, encode_curve, encode_curve_columns, GRID_CURVE_TAG};
use super::lease::ExpiryReport;
use super::*;

pub(crate) const TOML: &str = r#"
name = "store-test"
seed = 11
replicates = 2
[truth]
kind = "two-level"
states = 20
low_states = 4
gap = [2.0, 3.0]
[data]
samples = [10, 40]
[tau]
grid = { from = 0.5, to = 2.0, count = 4 }
"#;

pub(crate) fn study(toml: &str) -> (Study, StudyDefinition) {
    let s = Study::from_toml_str(toml).expect("test study parses");
    let loaded = crate::study_file::from_parts(s.clone(), toml.to_string());
    (s, loaded.definition)
}

mod commit;
mod migration;
mod quarantine;

fn open(dir: &tempfile::TempDir, max_failures: u32) -> StudyStore {
    open_with(dir, StoreConfig { max_failures, ..StoreConfig::default() })
}

fn open_with(dir: &tempfile::TempDir, config: StoreConfig) -> StudyStore {
    StudyStore::open(&dir.path().join("s.db"), config).expect("store opens")
}

fn synced(dir: &tempfile::TempDir, max_failures: u32) -> StudyStore {
    let mut store = open(dir, max_failures);
    let (s, def) = study(TOML);
    store.sync_study(&def, s.cells()).expect("sync");
    store
}

/// A made-up result for `spec` whose values depend on its key (distinct per cell); odd
/// replicates carry a Monte Carlo part (standard errors, diagnostics, curve errors).
pub(crate) fn fake_result(spec: &CellSpec) -> CellResult {
    let key = spec.key();
    let x = (key.0.len() as f64) * 0.01 + f64::from(spec.replicate);
    let multicanonical = key.0.bytes().map(u32::from).sum::<u32>() % 2 == 0;
    CellResult {
        key,
        samples: 10,
        tau: TauSummary {
            tau_rev: 1.0 + x,
            tau_fwd: 1.0 / (1.0 + x),
            tau_rev_at_bound: false,
            tau_fwd_at_bound: true,
            dkl_rev_at_1: 0.1 * x,
            dkl_rev_opt: 0.05 * x,
            dkl_fwd_at_1: 0.2,
            dkl_fwd_opt: f64::INFINITY,
            tau_heat_peak: Some(0.7),
            tau_var: None,
            kappa_at_1: Some(2.0 * x),
            heat_capacity_at_1: Some(0.5),
        },
        two_level: TwoLevelFitReport {
            low_states_hat: Some(4),
            gap_hat: Some(2.5),
            overlap: Some(3),
            tau_rev_closed: Some(1.0 + x),
            tau_fwd_closed: None,
        },
        fit: FitReport {
            fit_mode: None,
            fit_iterations: None,
            fit_stop: Some(FitStop::RelTol),
            grad_max_norm: None,
            nll: Some(-1.25),
            coupling_max_abs: None,
            fit_diverged: Some(false),
            fit_note: Some("note".into()),
            data_tau_int: None,
            data_thinning: None,
            fit_pearson: None,
        },
        mcmc: if spec.replicate % 2 == 1 {
            McmcReport {
                tau_rev_se: Some(0.01 * x),
                tau_fwd_se: Some(0.0),
                dkl_rev_at_1_se: Some(1e-3),
                dkl_rev_opt_se: Some(2e-3),
                dkl_fwd_at_1_se: Some(3e-3),
                dkl_fwd_opt_se: Some(f64::INFINITY),
                kappa_at_1_se: Some(0.1),
                heat_capacity_at_1_se: Some(0.2),
                ladder: Some(LadderDiagnostics {
                    ok: false,
                    note: Some(format!("R̂ {x} above 1.05")),
                    steps: 4_000,
                    rungs: 7,
                    // About half: a multicanonical cell (no ladder, its own diagnostics).
                    min_swap_acceptance: (!multicanonical).then_some(0.25),
                    round_trips: 12,
                    r_hat: f64::INFINITY,
                    tau_int: 1.5,
                    ess: 1_333.3,
                    equilibrated_tau_lo: Some(0.9 + 0.01 * x),
                    walker_round_trips_min: multicanonical.then_some(3),
                    flatness: multicanonical.then_some(0.37 * x),
                }),
                log_z_ti_gap: Some(0.004 * x),
                log_z_ti_gap_se: Some(0.003),
                tau_fwd_equilibrated: (spec.replicate % 4 == 1).then_some(1.2 + x),
                tau_fwd_equilibrated_se: (spec.replicate % 4 == 1).then_some(0.004),
                curve_se: (0..5)
                    .map(|i| CurveSe {
                        dkl_rev: f64::from(i) * x,
                        dkl_fwd: 1e-3,
                        entropy: -0.0,
                        mean_energy: 0.5,
                        heat_capacity: f64::MIN_POSITIVE,
                        kappa: 7.0,
                    })
                    .collect(),
            }
        } else {
            McmcReport::default()
        },
        curve: (0..5)
            .map(|i| CurvePoint {
                tau: 0.5 + f64::from(i) * 0.1,
                dkl_rev: x / 3.0,
                dkl_fwd: 1e-300,
                entropy: std::f64::consts::PI,
                mean_energy: -x,
                heat_capacity: f64::MIN_POSITIVE,
                kappa: Some(-0.0 - x),
            })
            .collect(),
    }
}

/// [`fake_result`] as a store of schema 1 or 2 held it: without κ, C(1) and the stop reason.
pub(crate) fn fake_legacy_result(spec: &CellSpec) -> CellResult {
    let mut r = fake_result(spec);
    r.tau.kappa_at_1 = None;
    r.tau.heat_capacity_at_1 = None;
    r.fit.fit_stop = None;
    r.curve.iter_mut().for_each(|p| p.kappa = None);
    r.mcmc = McmcReport::default();
    r
}

fn worker(store: &mut StudyStore, name: &str) -> u64 {
    store.register_worker(0, name, 2, "test", 0).expect("register")
}

fn done(cells: &[(u64, CellSpec)]) -> Vec<Upload> {
    cells
        .iter()
        .map(|(id, spec)| Upload { cell_id: *id, outcome: Outcome::Done(fake_result(spec)) })
        .collect()
}

#[test]
fn inserting_the_same_study_twice_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, 3);
    let (s, def) = study(TOML);
    let first = store.sync_study(&def, s.cells()).unwrap();
    assert_eq!(first, SyncReport { cells_added: 8, points_added: 4, cells_total: 8 });
    let again = store.sync_study(&def, s.cells()).unwrap();
    assert_eq!(again, SyncReport { cells_added: 0, points_added: 0, cells_total: 8 });
}

#[test]
fn extending_a_study_adds_only_new_cells_and_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let w = worker(&mut store, "a");
    let batch = store.lease(w, 100, 0, 1000).unwrap();
    store.commit(&[(w, done(&batch.cells))], 1).unwrap();
    let extended = TOML
        .replace("replicates = 2", "replicates = 3")
        .replace("samples = [10, 40]", "samples = [10, 40, 80]");
    let (s, def) = study(&extended);
    let rep = store.sync_study(&def, s.cells()).unwrap();
    // 2 gaps × 3 sizes × 3 replicates = 18 cells, 8 of which existed.
    assert_eq!(rep, SyncReport { cells_added: 10, points_added: 2, cells_total: 18 });
    let st = store.status(2).unwrap();
    assert_eq!((st.cells_done, st.cells_pending), (8, 10));
    assert_eq!(store.study_toml().unwrap(), extended);
}

#[test]
fn a_changed_name_seed_or_settings_fingerprint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let (s, def) = study(&TOML.replace("count = 4", "count = 5"));
    let err = store.sync_study(&def, s.cells()).unwrap_err().to_string();
    assert!(err.contains("fingerprint") && err.contains("new --db"), "{err}");
    let (s, def) = study(&TOML.replace("seed = 11", "seed = 12"));
    let err = store.sync_study(&def, s.cells()).unwrap_err().to_string();
    assert!(err.contains("seed = 11 in the database but 12"), "{err}");
    let (s, def) = study(&TOML.replace("store-test", "other-study"));
    let err = store.sync_study(&def, s.cells()).unwrap_err().to_string();
    assert!(err.contains("\"other-study\"") && err.contains("\"store-test\""), "{err}");
}

#[test]
fn a_result_is_committed_once_and_duplicates_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let w = worker(&mut store, "a");
    let batch = store.lease(w, 3, 0, 1000).unwrap();
    assert_eq!(batch.cells.len(), 3);
    let first = store.commit(&[(w, done(&batch.cells))], 5).unwrap();
    assert_eq!(first[0].committed, 3);
    let again = store.commit(&[(w, done(&batch.cells[..2]))], 6).unwrap();
    assert_eq!((again[0].committed, again[0].duplicates), (0, 2));
    assert_eq!(again[0].settled.len(), 2);
    let st = store.status(7).unwrap();
    assert_eq!((st.cells_done, st.duplicates_ignored), (3, 2));
    let count: i64 = store.conn.query_row("SELECT count(*) FROM results", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 3);
}

#[test]
fn duplicates_within_one_batch_are_committed_once_and_every_cell_leaves_leased() {
    // A commit marks its cells done in one UPDATE at the end, so a second upload of a cell
    // in the same batch (a re-send in the same stream, or the same worker's entry twice)
    // must be caught by the batch itself, not by the cell's state.
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let w = worker(&mut store, "a");
    let batch = store.lease(w, 5, 0, 1000).unwrap();
    assert_eq!(batch.cells.len(), 5);
    let mut twice = done(&batch.cells[..3]);
    twice.extend(done(&batch.cells[..3]));
    let reps = store.commit(&[(w, twice), (w, done(&batch.cells[2..]))], 5).unwrap();
    assert_eq!((reps[0].committed, reps[0].duplicates), (3, 3));
    assert_eq!((reps[1].committed, reps[1].duplicates), (2, 1));
    let st = store.status(7).unwrap();
    assert_eq!((st.cells_done, st.cells_leased, st.cells_pending, st.duplicates_ignored), (5, 0, 3, 4));
    let (results, done_rows): (i64, i64) = store
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM results), \
             (SELECT count(*) FROM cells WHERE state = 2 AND finished_ms = 5 AND deadline_ms IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((results, done_rows), (5, 5));
    // The counts kept by triggers agree with a full count after batched state changes.
    let counted: i64 =
        store.conn.query_row("SELECT count(*) FROM cells WHERE state = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(counted as u64, st.cells_done);
}

#[test]
fn a_commit_waits_for_another_writer_instead_of_failing() {
    // The checkpointer's RESTART holds the write lock for a moment. A deferred transaction
    // that had already read would get "database is locked" at once when it tries to write
    // (SQLite does not wait for a lock upgrade), failing every result stream.
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let w = worker(&mut store, "a");
    let batch = store.lease(w, 3, 0, 1000).unwrap();
    let other = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    other
        .execute_batch(
            "BEGIN IMMEDIATE; UPDATE counters SET value = value + 0 WHERE name = 'duplicates_ignored';",
        )
        .unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    let reps = store.commit(&[(w, done(&batch.cells))], 5).expect("the commit waits for the other writer");
    holder.join().unwrap();
    assert_eq!(reps[0].committed, 3);
    assert_eq!(store.status(6).unwrap().cells_done, 3);
}

#[test]
fn a_result_for_a_cell_leased_to_another_worker_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let (a, b) = (worker(&mut store, "a"), worker(&mut store, "b"));
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    // A's lease expires and B takes the cell over.
    assert_eq!(store.expire_leases(101).unwrap(), ExpiryReport { returned: 1, failed: 0 });
    let again = store.lease(b, 1, 102, 500).unwrap().cells;
    assert_eq!(again[0].0, cells[0].0);
    let rep = store.commit(&[(a, done(&cells))], 103).unwrap();
    assert_eq!((rep[0].rejected, rep[0].committed), (1, 0));
    let rep = store.commit(&[(b, done(&again))], 104).unwrap();
    assert_eq!(rep[0].committed, 1);
    assert_eq!(store.status(105).unwrap().results_rejected, 1);
}

#[test]
fn a_late_result_is_accepted_while_nobody_else_took_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    store.expire_leases(101).unwrap();
    let rep = store.commit(&[(a, done(&cells))], 102).unwrap();
    assert_eq!(rep[0].committed, 1);
}

#[test]
fn a_result_with_the_wrong_key_counts_as_a_failure_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    let mut r = fake_result(&cells[0].1);
    r.key = CellKey("two-level;other;r=0".into());
    let rep =
        store.commit(&[(a, vec![Upload { cell_id: cells[0].0, outcome: Outcome::Done(r) }])], 1).unwrap();
    assert_eq!(rep[0].failed, 1);
    let mut err = String::new();
    store.for_each_failed_cell(|_, _, e| err = e.to_string()).unwrap();
    assert!(err.contains("two-level;other;r=0") && err.contains(&cells[0].1.key().0), "{err}");
}

#[test]
fn leased_cells_are_bit_identical_to_the_study_cells() {
    // Values like 1.0 + 128 × 0.001 = 1.1280000000000001 come back 1 ulp off from a JSON
    // parser that does not round-trip floats; the leased spec (and so its key) would differ.
    let points: Vec<GridPoint> = (0..300)
        .map(|i| GridPoint {
            truth: taustar_common::TruthSpec::TwoLevel {
                states: 100,
                low_states: 20,
                gap: 1.0 + f64::from(i) * 0.001,
            },
            data: taustar_common::DataSize::Mu(0.1 * f64::from(i) - 7.3),
            fit: taustar_common::FitSpec::default(),
        })
        .collect();
    let s = Study::new("roundtrip", 5, 1, taustar_common::CellSettings::default(), points).unwrap();
    let def = crate::study_file::from_parts(s.clone(), String::new()).definition;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, 3);
    store.sync_study(&def, s.cells()).unwrap();
    let a = worker(&mut store, "a");
    let leased = store.lease(a, 1000, 0, 100).unwrap().cells;
    let from_study: Vec<CellSpec> = s.cells().collect();
    assert_eq!(leased.len(), 300);
    for (got, want) in leased.iter().map(|c| &c.1).zip(&from_study) {
        assert_eq!(got, want);
        assert_eq!(got.key(), want.key());
    }
}

#[test]
fn a_cell_failing_max_failures_times_is_failed_and_the_study_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 2);
    let a = worker(&mut store, "a");
    let mut failing = None;
    for round in 0..2 {
        let cells = store.lease(a, 100, round, 1000).unwrap().cells;
        let target = *failing.get_or_insert(cells[0].0);
        let uploads = cells
            .iter()
            .map(|(id, spec)| Upload {
                cell_id: *id,
                outcome: if *id == target {
                    Outcome::Failed("invalid gap = -1: boom".into())
                } else {
                    Outcome::Done(fake_result(spec))
                },
            })
            .collect();
        let rep = store.commit(&[(a, uploads)], round + 1).unwrap();
        assert_eq!(rep[0].failed, u32::from(round == 1));
    }
    let st = store.status(10).unwrap();
    assert_eq!((st.cells_done, st.cells_failed, st.finished), (7, 1, true));
    assert_eq!(store.lease(a, 10, 11, 1000).unwrap().state, LeaseState::Done);
    let mut seen = vec![];
    store.for_each_failed_cell(|k, n, e| seen.push((k.to_string(), n, e.to_string()))).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].1, seen[0].2.as_str()), (2, "invalid gap = -1: boom"));
}

#[test]
fn a_nan_result_counts_as_a_failure_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    let mut r = fake_result(&cells[0].1);
    r.tau.tau_rev = f64::NAN;
    let rep =
        store.commit(&[(a, vec![Upload { cell_id: cells[0].0, outcome: Outcome::Done(r) }])], 1).unwrap();
    assert_eq!(rep[0].failed, 1);
    let mut err = String::new();
    store.for_each_failed_cell(|_, _, e| err = e.to_string()).unwrap();
    assert!(err.contains("tau_rev = NaN"), "{err}");
}

#[test]
fn leases_expire_into_pending_and_count_a_lost_lease_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    let key = cells[0].1.key().0;
    assert_eq!(store.expire_leases(100).unwrap(), ExpiryReport::default(), "deadline is exclusive");
    assert_eq!(store.expire_leases(101).unwrap(), ExpiryReport { returned: 1, failed: 0 });
    let again = store.lease(a, 1, 102, 200).unwrap().cells;
    assert_eq!(again[0].0, cells[0].0, "the expired cell is leased first again");
    let rec = store.cell_record(&key).unwrap().unwrap();
    assert_eq!((rec.state, rec.failures, rec.lost_leases), (state::LEASED, 0, 1));
    // Even with max_failures = 1, losing the worker over and over does not fail the cell.
    for round in 0..5 {
        assert_eq!(store.expire_leases(201 + round * 100).unwrap().failed, 0);
        store.lease(a, 1, 202 + round * 100, 300 + round * 100).unwrap();
    }
    let rec = store.cell_record(&key).unwrap().unwrap();
    assert_eq!((rec.state, rec.failures, rec.lost_leases), (state::LEASED, 0, 6));
    assert_eq!(store.status(1000).unwrap().cells_failed, 0);
}

#[test]
fn a_cell_that_loses_max_lost_leases_workers_fails_with_an_error_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_with(&dir, StoreConfig { max_failures: 3, max_lost_leases: 3 });
    let (s, def) = study(TOML);
    store.sync_study(&def, s.cells()).unwrap();
    let a = worker(&mut store, "a");
    let (mut first, mut failed) = (None, 0);
    for round in 0..3i64 {
        let t = 1000 * round;
        let cells = store.lease(a, 1, t, t + 100).unwrap().cells;
        // The first cell keeps coming back first; the worker keeps dying on it.
        assert_eq!(cells[0].0, *first.get_or_insert(cells[0].0));
        failed += store.expire_leases(t + 101).unwrap().failed;
    }
    assert_eq!(failed, 1);
    let mut seen = vec![];
    store.for_each_failed_cell(|k, n, e| seen.push((k.to_string(), n, e.to_string()))).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, 3);
    assert!(
        seen[0].2.contains("lost its lease 3 times") && seen[0].2.contains("--max-lost-leases = 3"),
        "{}",
        seen[0].2
    );
    let rec = store.cell_record(&seen[0].0).unwrap().unwrap();
    assert_eq!((rec.state, rec.failures, rec.lost_leases), (state::FAILED, 0, 3));
}

#[test]
fn lost_leases_and_failures_are_limited_separately() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_with(&dir, StoreConfig { max_failures: 2, max_lost_leases: 2 });
    let (s, def) = study(TOML);
    store.sync_study(&def, s.cells()).unwrap();
    let a = worker(&mut store, "a");
    // One lost lease, then one failed computation: neither limit is reached.
    let cell = store.lease(a, 1, 0, 100).unwrap().cells[0].0;
    store.expire_leases(101).unwrap();
    assert_eq!(store.lease(a, 1, 102, 200).unwrap().cells[0].0, cell);
    let rep = store
        .commit(&[(a, vec![Upload { cell_id: cell, outcome: Outcome::Failed("boom".into()) }])], 150)
        .unwrap();
    assert_eq!((rep[0].retried, rep[0].failed), (1, 0));
    assert_eq!(store.status(151).unwrap().cells_failed, 0);
}

#[test]
fn heartbeats_extend_leases_and_release_returns_cells_without_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 2, 0, 100).unwrap().cells;
    let ids: Vec<u64> = cells.iter().map(|c| c.0).collect();
    // Ids the worker does not hold (unknown, or another's) are not extended.
    let b = worker(&mut store, "b");
    let b_cell = store.lease(b, 1, 0, 100).unwrap().cells[0].0;
    assert_eq!(store.heartbeat(a, &[ids[0], ids[1], b_cell, 10_000, u64::MAX], 50, 300).unwrap(), 2);
    assert_eq!(store.expire_leases(200).unwrap().returned, 1, "only b's unextended lease expires");
    assert_eq!(store.release(a, &ids).unwrap(), 2);
    let key = cells[0].1.key().0;
    let rec = store.cell_record(&key).unwrap().expect("cell exists");
    assert_eq!((rec.state, rec.attempts, rec.failures), (state::PENDING, 0, 0));
    assert!(matches!(store.heartbeat(999, &[], 1, 2), Err(StoreError::UnknownWorker(999))));
}

#[test]
fn results_round_trip_bit_exactly_and_are_visited_by_point_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 100, 0, 1000).unwrap().cells;
    // Commit in reverse order: the visit order must not depend on it.
    let mut uploads = done(&cells);
    uploads.reverse();
    store.commit(&[(a, uploads)], 1).unwrap();
    let ro = StudyStore::open_read_only(store.path()).unwrap();
    let mut keys = vec![];
    ro.for_each_point_results::<StoreError, _>(|point, results| {
        assert_eq!(results.len(), 2);
        for (r, res) in results.iter().enumerate() {
            assert_eq!(res.key.0, format!("{};r={r}", point.key()));
            let spec = &cells.iter().find(|(_, s)| s.key() == res.key).unwrap().1;
            let want = fake_result(spec);
            assert_eq!(format!("{res:?}"), format!("{want:?}"));
            assert_eq!(res.curve[0].dkl_rev.to_bits(), want.curve[0].dkl_rev.to_bits());
        }
        keys.push(point.key());
        Ok(())
    })
    .unwrap();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 4);
    assert_eq!(ro.study_toml().unwrap(), TOML);
}

#[test]
fn a_visitor_error_stops_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 100, 0, 1000).unwrap().cells;
    store.commit(&[(a, done(&cells))], 1).unwrap();
    let mut visits = 0;
    let r: Result<(), StoreError> = store.for_each_point_results(|_, _| {
        visits += 1;
        Err(StoreError::UnknownWorker(7))
    });
    assert!(matches!(r, Err(StoreError::UnknownWorker(7))));
    assert_eq!(visits, 1);
}

#[test]
fn opening_a_missing_file_read_only_names_it() {
    let err = StudyStore::open_read_only("/nonexistent/x.db").err().unwrap().to_string();
    assert!(err.contains("/nonexistent/x.db") && err.contains("no such file"), "{err}");
}

proptest! {
    #[test]
    fn curve_blobs_round_trip_bit_exactly(vals in proptest::collection::vec(any::<f64>(), 0..60)) {
        let curve: Vec<CurvePoint> = vals.chunks_exact(6).map(|c| CurvePoint {
            tau: c[0], dkl_rev: c[1], dkl_fwd: c[2], entropy: c[3], mean_energy: c[4], heat_capacity: c[5],
            kappa: None,
        }).collect();
        let back = decode_curve(&encode_curve(&curve)).unwrap();
        prop_assert_eq!(back.len(), curve.len());
        for (a, b) in back.iter().zip(&curve) {
            prop_assert_eq!(a.tau.to_bits(), b.tau.to_bits());
            prop_assert_eq!(a.heat_capacity.to_bits(), b.heat_capacity.to_bits());
        }
    }

    #[test]
    fn curves_on_the_grid_take_the_grid_layout_and_round_trip_bit_exactly(
        vals in proptest::collection::vec(any::<f64>(), 1..80), off_grid in any::<bool>(), at in any::<usize>(),
    ) {
        let n = vals.len();
        let grid: Vec<f64> = (0..n).map(|i| 0.2 + i as f64 * 0.07).collect();
        let mut curve: Vec<CurvePoint> = vals.iter().zip(&grid).map(|(&v, &tau)| CurvePoint {
            tau, dkl_rev: v, dkl_fwd: -v, entropy: v * 0.5, mean_energy: v + 1.0, heat_capacity: v.abs(),
            kappa: Some(v * 3.0),
        }).collect();
        if off_grid {
            let i = at % n;
            curve[i].tau = f64::from_bits(curve[i].tau.to_bits() + 1);
        }
        let (blob, kappa) = encode_curve_columns(&curve, &grid);
        let rusqlite::types::Value::Blob(blob) = blob else { panic!("curve is a BLOB") };
        let kappa = match kappa {
            rusqlite::types::Value::Blob(k) => Some(k),
            rusqlite::types::Value::Null => None,
            other => panic!("{other:?}"),
        };
        if off_grid {
            // One τ an ulp off the grid: the general layout, τ and κ kept apart.
            prop_assert_eq!(blob.len(), 48 * n);
            prop_assert!(kappa.is_some());
        } else {
            prop_assert_eq!(blob.len(), 1 + 48 * n);
            prop_assert_eq!(blob[0], GRID_CURVE_TAG);
            prop_assert!(kappa.is_none());
        }
        let back = decode_curve_columns(&blob, kappa.as_deref(), &grid).unwrap();
        prop_assert_eq!(back.len(), n);
        for (a, b) in back.iter().zip(&curve) {
            for (x, y) in [(a.tau, b.tau), (a.dkl_rev, b.dkl_rev), (a.dkl_fwd, b.dkl_fwd), (a.entropy, b.entropy),
                           (a.mean_energy, b.mean_energy), (a.heat_capacity, b.heat_capacity)] {
                prop_assert_eq!(x.to_bits(), y.to_bits());
            }
            prop_assert_eq!(a.kappa.map(f64::to_bits), b.kappa.map(f64::to_bits));
        }
        // Read against a grid of another length, a grid-layout BLOB is an error, never a
        // misaligned curve.
        if !off_grid {
            let e = decode_curve_columns(&blob, None, &grid[..n - 1]).unwrap_err();
            prop_assert!(e.contains(&format!("holds {n} points")), "{}", e);
        }
    }

    #[test]
    fn a_torn_curve_blob_is_an_error(len in 1usize..200) {
        prop_assume!(len % 48 != 0);
        prop_assert!(decode_curve(&vec![0u8; len]).is_err());
    }
}

/// Cells that take a minute each: the rate comes from the last settled cells however long
/// ago they settled (a one-minute window would hold one cell, and its rate and ETA be off by
/// 2×), and a study that stops settling cells reads 0 and no ETA.
#[test]
fn throughput_and_eta_follow_cells_of_minutes_and_a_stalled_study_reads_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, 3);
    let (s, def) = study(&TOML.replace("replicates = 2", "replicates = 10"));
    store.sync_study(&def, s.cells()).unwrap();
    let w = worker(&mut store, "slow");
    let cells = store.lease(w, 40, 0, 1_000_000_000).unwrap().cells;
    assert_eq!(cells.len(), 40);
    let minute = 60_000;
    for (k, cell) in cells.iter().take(25).enumerate() {
        store.commit(&[(w, done(std::slice::from_ref(cell)))], (k as i64 + 1) * minute).unwrap();
    }
    let last = 25 * minute;
    let st = store.status(last + minute / 2).unwrap();
    let rate = 1.0 / 60.0;
    assert!((st.throughput_per_s / rate - 1.0).abs() < 0.05, "{} cells/s, want {rate}", st.throughput_per_s);
    let eta = st.eta_seconds.expect("an ETA");
    assert!((eta / (15.0 * 60.0) - 1.0).abs() < 0.1, "ETA {eta} s for 15 cells of a minute");
    let stalled = store.status(last + 11 * minute).unwrap();
    assert_eq!((stalled.throughput_per_s, stalled.eta_seconds), (0.0, None));
}
