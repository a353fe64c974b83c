//! The commit decision ([`verdict`]), case by case, without a database.

use super::super::commit::{verdict, CellRow, Verdict};
use super::*;

fn cell() -> CellSpec {
    let (s, _) = study(TOML);
    let first = s.cells().next().expect("the test study has cells");
    first
}

/// The stored row of [`cell`] in `state`, last leased to `holder`, with one earlier failure.
fn row(state: i64, holder: Option<i64>) -> CellRow {
    let c = cell();
    CellRow { state, holder, replicate: c.replicate, failures: 1, point_key: c.point.key() }
}

fn upload(outcome: Outcome) -> Upload {
    Upload { cell_id: 7, outcome }
}

fn done() -> Upload {
    upload(Outcome::Done(fake_result(&cell())))
}

#[test]
fn the_holders_valid_result_is_committed() {
    let up = done();
    assert!(
        matches!(verdict(Some(&row(state::LEASED, Some(3))), &up, 3, false), Verdict::Commit(r) if r.key == cell().key())
    );
    // A late result after the lease expired, while nobody else took the cell, still counts.
    assert!(matches!(verdict(Some(&row(state::PENDING, Some(3))), &up, 3, false), Verdict::Commit(_)));
}

#[test]
fn settled_cells_and_cells_committed_earlier_in_the_batch_are_duplicates() {
    let up = done();
    for st in [state::DONE, state::FAILED] {
        assert_eq!(verdict(Some(&row(st, Some(3))), &up, 3, false), Verdict::Duplicate);
        // Even from a stranger: a settled cell never rejects, it ignores.
        assert_eq!(verdict(Some(&row(st, Some(9))), &up, 3, false), Verdict::Duplicate);
    }
    assert_eq!(verdict(Some(&row(state::LEASED, Some(3))), &up, 3, true), Verdict::Duplicate);
}

#[test]
fn uploads_for_cells_the_worker_does_not_hold_are_rejected_naming_why() {
    let up = done();
    assert_eq!(verdict(None, &up, 3, false), Verdict::Reject("unknown cell id 7".into()));
    assert_eq!(
        verdict(Some(&row(state::LEASED, Some(4))), &up, 3, false),
        Verdict::Reject("cell 7 is not held by worker 3: it was leased to worker 4".into())
    );
    assert_eq!(
        verdict(Some(&row(state::PENDING, None)), &up, 3, false),
        Verdict::Reject("cell 7 was never leased".into())
    );
    // Rejection does not depend on the outcome: a stranger's error is not the cell's failure.
    let err = upload(Outcome::Failed("boom".into()));
    assert!(matches!(verdict(Some(&row(state::LEASED, Some(4))), &err, 3, false), Verdict::Reject(_)));
}

#[test]
fn the_holders_error_is_a_failure_without_quarantine() {
    let up = upload(Outcome::Failed("x".repeat(10_000)));
    let Verdict::Fail { error, quarantine } = verdict(Some(&row(state::LEASED, Some(3))), &up, 3, false)
    else {
        panic!("expected a failure")
    };
    assert_eq!(quarantine, None);
    assert!(error.len() < 3_000 && error.contains("bytes in all"), "clipped: {} bytes", error.len());
}

#[test]
fn the_holders_bad_results_are_failures_and_quarantined() {
    let holder = row(state::LEASED, Some(3));
    let mut nan = fake_result(&cell());
    nan.tau.tau_rev = f64::NAN;
    let mut wrong_key = fake_result(&cell());
    wrong_key.key = CellKey("other;r=0".into());
    let malformed =
        Outcome::Malformed { reason: "unknown value 9 of enum field fit_mode".into(), payload: vec![1] };
    for (outcome, says) in [
        (Outcome::Done(nan), "tau_rev = NaN"),
        (Outcome::Done(wrong_key), "does not match the cell key"),
        (malformed, "malformed result: unknown value 9"),
    ] {
        let up = upload(outcome);
        let Verdict::Fail { error, quarantine: Some(reason) } = verdict(Some(&holder), &up, 3, false) else {
            panic!("expected a quarantined failure for {says}")
        };
        assert!(reason.contains(says), "{reason}");
        assert_eq!(error, format!("quarantined: {reason}"));
    }
}
