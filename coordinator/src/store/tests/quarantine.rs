//! Quarantine: uploads the store must not commit are kept with the reason, never
//! joined into `results`; a stranger's upload leaves the cell alone, the holder's bad result
//! counts a failure of the cell.

use taustar_common::CellKey;

use super::super::commit::MAX_QUARANTINE_ROWS;
use super::*;

/// `(cell_id, worker_id, reason, result bytes, error)` of every quarantine row, by id.
type Row = (i64, i64, String, Option<Vec<u8>>, Option<String>);

fn quarantine_rows(store: &StudyStore) -> Vec<Row> {
    let mut q = store
        .conn
        .prepare("SELECT cell_id, worker_id, reason, result, error FROM quarantine ORDER BY id")
        .unwrap();
    let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn results_count(store: &StudyStore) -> i64 {
    store.conn.query_row("SELECT count(*) FROM results", [], |r| r.get(0)).unwrap()
}

fn one(cell_id: u64, outcome: Outcome) -> Vec<Upload> {
    vec![Upload { cell_id, outcome }]
}

#[test]
fn a_result_for_a_cell_held_by_another_worker_is_quarantined_and_leaves_the_cell_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let (a, b) = (worker(&mut store, "a"), worker(&mut store, "b"));
    let cells = store.lease(b, 1, 0, 100).unwrap().cells;
    let (id, spec) = &cells[0];
    // A never held the cell: neither its result nor its error may touch B's lease.
    let rep = store.commit(&[(a, done(&cells)), (a, one(*id, Outcome::Failed("x".into())))], 1).unwrap();
    for r in &rep {
        assert_eq!((r.rejected, r.quarantined, r.committed, r.failed, r.retried), (1, 1, 0, 0, 0));
        assert_eq!(r.settled, vec![*id]);
        assert!(r.rejections[0].1.contains(&format!("leased to worker {b}")), "{:?}", r.rejections);
    }
    let rec = store.cell_record(&spec.key().0).unwrap().unwrap();
    assert_eq!((rec.state, rec.failures, rec.worker_id), (state::LEASED, 0, Some(b)));
    let rows = quarantine_rows(&store);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].1), (*id as i64, a as i64));
    let kept = taustar_proto::convert::result_from_bytes(rows[0].3.as_deref().unwrap()).unwrap();
    assert_eq!(format!("{kept:?}"), format!("{:?}", fake_result(spec)));
    assert_eq!((rows[1].3.as_ref(), rows[1].4.as_deref()), (None, Some("x")));
    assert_eq!(results_count(&store), 0);
    // B's own result still commits.
    assert_eq!(store.commit(&[(b, done(&cells))], 2).unwrap()[0].committed, 1);
    let st = store.status(3).unwrap();
    assert_eq!((st.cells_done, st.results_rejected, st.results_quarantined), (1, 2, 2));
}

#[test]
fn a_result_for_an_unknown_cell_or_a_never_leased_one_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    let (s, _) = study(TOML);
    let spec = s.cells().next().unwrap();
    let uploads = vec![
        Upload { cell_id: 9999, outcome: Outcome::Done(fake_result(&spec)) },
        Upload { cell_id: u64::MAX, outcome: Outcome::Done(fake_result(&spec)) },
        Upload { cell_id: 1, outcome: Outcome::Done(fake_result(&spec)) },
    ];
    let rep = store.commit(&[(a, uploads)], 1).unwrap();
    assert_eq!((rep[0].rejected, rep[0].quarantined, rep[0].committed), (3, 3, 0));
    assert!(rep[0].rejections[0].1.contains("unknown cell id 9999"), "{:?}", rep[0].rejections);
    assert!(rep[0].rejections[2].1.contains("never leased"), "{:?}", rep[0].rejections);
    let st = store.status(2).unwrap();
    assert_eq!((st.cells_pending, st.results_quarantined), (8, 3));
    let untouched = store.cell_record(&spec.key().0).unwrap().unwrap();
    assert_eq!((untouched.failures, untouched.attempts), (0, 0));
}

#[test]
fn a_nan_result_from_the_holder_is_quarantined_and_fails_the_cell_instead_of_looping() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 2);
    let a = worker(&mut store, "a");
    let (mut first, mut reports) = (None, vec![]);
    // A deterministic NaN comes back on every try: max_failures = 2 tries, then failed.
    for round in 0..2i64 {
        let cells = store.lease(a, 1, round * 10, round * 10 + 100).unwrap().cells;
        let (id, spec) = &cells[0];
        assert_eq!(*id, *first.get_or_insert(*id));
        let mut r = fake_result(spec);
        r.curve[2].heat_capacity = f64::NAN;
        reports.push(store.commit(&[(a, one(*id, Outcome::Done(r)))], round * 10 + 1).unwrap().remove(0));
    }
    assert_eq!((reports[0].retried, reports[0].quarantined, reports[0].rejected), (1, 1, 0));
    assert_eq!((reports[1].failed, reports[1].quarantined), (1, 1));
    assert!(reports[1].rejections[0].1.contains("heat_capacity = NaN in curve point 2"), "{:?}", reports[1]);
    let mut failed = vec![];
    store.for_each_failed_cell(|k, n, e| failed.push((k.to_string(), n, e.to_string()))).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].2.starts_with("quarantined: ") && failed[0].2.contains("NaN"), "{}", failed[0].2);
    assert_eq!(results_count(&store), 0);
    let rows = quarantine_rows(&store);
    assert_eq!(rows.len(), 2);
    let kept = taustar_proto::convert::result_from_bytes(rows[1].3.as_deref().unwrap()).unwrap();
    assert!(kept.curve[2].heat_capacity.is_nan(), "the quarantined payload keeps the NaN");
}

#[test]
fn an_infinite_temperature_is_quarantined_but_an_infinite_divergence_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 2, 0, 100).unwrap().cells;
    let mut bad = fake_result(&cells[0].1);
    bad.tau.tau_var = Some(f64::INFINITY);
    let good = fake_result(&cells[1].1);
    assert!(good.tau.dkl_fwd_opt.is_infinite());
    let uploads = vec![
        Upload { cell_id: cells[0].0, outcome: Outcome::Done(bad) },
        Upload { cell_id: cells[1].0, outcome: Outcome::Done(good) },
    ];
    let rep = store.commit(&[(a, uploads)], 1).unwrap();
    assert_eq!((rep[0].committed, rep[0].quarantined, rep[0].retried), (1, 1, 1));
    assert!(rep[0].rejections[0].1.contains("tau_var = inf"), "{:?}", rep[0].rejections);
}

#[test]
fn a_result_with_another_key_or_an_undecodable_body_is_quarantined_and_counts_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 2, 0, 100).unwrap().cells;
    let mut wrong = fake_result(&cells[0].1);
    wrong.key = CellKey("x".repeat(100_000));
    let uploads = vec![
        Upload { cell_id: cells[0].0, outcome: Outcome::Done(wrong) },
        Upload {
            cell_id: cells[1].0,
            outcome: Outcome::Malformed {
                reason: "unknown value 9 of CellResult.fit_mode".into(),
                payload: vec![1],
            },
        },
    ];
    let rep = store.commit(&[(a, uploads)], 1).unwrap();
    assert_eq!((rep[0].quarantined, rep[0].retried, rep[0].rejected), (2, 2, 0));
    let reason = &rep[0].rejections[0].1;
    assert!(reason.contains("does not match the cell key") && reason.len() < 1000, "{}", reason.len());
    assert!(rep[0].rejections[1].1.contains("fit_mode"), "{:?}", rep[0].rejections);
    let rec = store.cell_record(&cells[1].1.key().0).unwrap().unwrap();
    assert_eq!((rec.state, rec.failures), (state::PENDING, 1));
    assert_eq!(quarantine_rows(&store)[1].3.as_deref(), Some(&[1u8][..]));
}

#[test]
fn a_workers_error_text_is_clipped_before_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 1, 0, 100).unwrap().cells;
    let huge = "é".repeat(1 << 20);
    store.commit(&[(a, one(cells[0].0, Outcome::Failed(huge)))], 1).unwrap();
    let rec = store.cell_record(&cells[0].1.key().0).unwrap().unwrap();
    let error = rec.error.unwrap();
    assert!(error.chars().count() < codec::MAX_ERROR_CHARS + 40, "{}", error.len());
    assert!(error.ends_with(&format!("({} bytes in all)", 2 << 20)), "{}", &error[error.len() - 40..]);
}

#[test]
fn the_quarantine_table_stops_growing_at_its_cap_but_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 1);
    let a = worker(&mut store, "a");
    // Pretend the table is full: ids count rows, so one row at the cap's id stands for all.
    store
        .conn
        .execute(
            "INSERT INTO quarantine(id, cell_id, worker_id, received_ms, reason) VALUES (?1, 0, 0, 0, 'old')",
            [MAX_QUARANTINE_ROWS],
        )
        .unwrap();
    let uploads =
        (0..3).map(|i| Upload { cell_id: 5000 + i, outcome: Outcome::Failed("x".into()) }).collect();
    let rep = store.commit(&[(a, uploads)], 1).unwrap();
    assert_eq!(rep[0].quarantined, 3);
    assert_eq!(quarantine_rows(&store).len(), 1);
    assert_eq!(store.status(2).unwrap().results_quarantined, 3);
}
