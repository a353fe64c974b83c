//! End-to-end: the whole job cancelled at once (scancel, `kubectl delete`).
//!
//! The coordinator and every worker get SIGTERM at the same moment. The coordinator must
//! keep committing results and accepting `Release` while the workers drain, and close the
//! database only when no cell is leased (or its grace period is over). Afterwards no cell
//! may be left leased (a resumed job would wait a whole lease period for it) and every
//! result computed during the drain must be in the database (none lost and recomputed).
//!
//! Cells sleep `DELAY_MS` first (`TAUSTAR_WORKER_TEST_DELAY_MS`), longer than the old 3 s
//! grace, so results finished during the drain arrive after an early close would have cut
//! them off. Computations are counted through `TAUSTAR_WORKER_COMPUTED_LOG`, and cells in
//! flight (started, not computed) through `TAUSTAR_WORKER_STARTED_LOG` beside it, so the
//! signal is sent when cells are known to be mid-way rather than when a clock says so.
//!
//! Run: `cargo test -p taustar-e2e --test e2e drain::` (builds the binaries first).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use coordinator::StudyStore;
use taustar_e2e::*;

/// Wall time of one cell: long enough that cells are mid-way when the signal arrives.
const DELAY_MS: u64 = 4000;

#[test]
fn cancelling_the_whole_job_commits_every_drained_result_and_leaves_no_cell_leased() {
    let _machine = whole_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-cancel-job", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log1, log2) = (s.path("s.db"), s.path("w1.keys"), s.path("w2.keys"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &[]);
    let mut w1 = start_worker(&s, "w1", port, 2, &log1, DELAY_MS);
    let mut w2 = start_worker(&s, "w2", port, 2, &log2, DELAY_MS);
    let count = |f: &dyn Fn(&std::path::Path) -> usize| f(&log1) + f(&log2);
    let computed_now = || count(&|l| computed(l).values().sum::<usize>());
    // Computed first: a cell is logged as started before it can be logged as computed, so
    // reading the started logs second never counts fewer started than computed.
    let in_flight = || {
        let done = computed_now();
        count(&|l| computed(&started_log(l)).values().sum::<usize>()) - done
    };
    // Signal once a first cell is done and cells are mid-way: started, not yet computed.
    // Each takes DELAY_MS, far longer than the poll, so they are still running at the signal.
    wait_until("cells are mid-way", Duration::from_secs(60), || computed_now() >= 1 && in_flight() >= 2);
    let (before, running) = (computed_now(), in_flight());
    let pids: Vec<String> = [&coord, &w1, &w2].iter().map(|p| p.pid().to_string()).collect();
    let st = Command::new("kill").arg("-TERM").args(&pids).status().expect("run kill");
    assert!(st.success(), "kill -TERM {pids:?}");

    let limit = Duration::from_secs(40);
    let c = coord.wait(limit);
    assert!(c.success(), "coordinator exits 0: {c}\n{}", coord.log_text());
    for w in [&mut w1, &mut w2] {
        let st = w.wait(limit);
        assert!(st.success(), "{} exits 0 after the drain: {st}\n{}", w.label, w.log_text());
    }

    let now = status(&db);
    assert_eq!(field(&now, "cells_leased"), 0, "no cell is left leased after the cancel: {now}");
    assert_eq!(field(&now, "cells_failed"), 0, "a drain counts no failure: {now}");
    let done: BTreeSet<String> = results(&db).into_keys().collect();
    let mut comp: BTreeSet<String> = computed(&log1).into_keys().collect();
    comp.extend(computed(&log2).into_keys());
    assert!(
        comp.len() >= before + running,
        "every cell in flight at the signal finished during the drain ({before} done and {running} running \
         before, {} done after)",
        comp.len()
    );
    let lost: Vec<&String> = comp.difference(&done).collect();
    assert!(lost.is_empty(), "results computed during the drain were lost: {lost:?}");
    assert_eq!(field(&now, "cells_done") as usize, done.len(), "{now}");
    let released: Vec<String> =
        [&w1, &w2].iter().map(|w| w.log_text()).filter(|l| l.contains("draining")).collect();
    assert_eq!(released.len(), 2, "both workers drained");
    let clog = coord.log_text();
    assert!(
        clog.contains("drain complete"),
        "the coordinator ended the drain early, no cell leased:\n{clog}"
    );
    let releases = clog.matches("worker handed back leased cells").count();
    assert!(releases <= 2, "each worker hands back its unstarted cells in one Release: {releases}\n{clog}");
    // Handed-back cells count no failure and are pending again.
    let store = StudyStore::open_read_only(&db).expect("open the study database");
    let pending = field(&now, "cells_pending");
    assert_eq!(pending + done.len() as u64, field(&now, "cells_total"), "{now}");
    for k in &done {
        let failures = store.cell_record(k).expect("read the cell").expect("cell exists").failures;
        assert_eq!(failures, 0, "{k}");
    }
}
