//! End-to-end: real `taustar serve` and `taustar-worker` processes on loopback.
//!
//! Cells are two-level cells (microseconds each). Tests that must interrupt a study
//! mid-way make the workers sleep before each cell (`TAUSTAR_WORKER_TEST_DELAY_MS`) and wait
//! for progress by polling, never for a fixed time. Computations are counted through the
//! workers' computed-cells logs (`TAUSTAR_WORKER_COMPUTED_LOG`) and the per-cell attempt
//! counter of the store.
//!
//! Run: `cargo test -p taustar-e2e --test e2e distributed::` (builds the binaries first).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use coordinator::StudyStore;
use taustar_e2e::*;

const T: Duration = Duration::from_secs(90);

fn assert_complete(db: &std::path::Path, cells: u64) -> std::collections::BTreeMap<String, String> {
    let st = status(db);
    assert_eq!(field(&st, "cells_total"), cells, "{st}");
    assert_eq!(field(&st, "cells_done"), cells, "{st}");
    assert_eq!(field(&st, "cells_failed"), 0, "{st}");
    assert_eq!(field(&st, "cells_pending") + field(&st, "cells_leased"), 0, "{st}");
    let res = results(db);
    assert_eq!(res.len() as u64, cells, "exactly one result per cell");
    res
}

fn total_attempts(db: &std::path::Path, keys: impl IntoIterator<Item = String>) -> u32 {
    let store = StudyStore::open_read_only(db).unwrap();
    keys.into_iter().map(|k| store.cell_record(&k).unwrap().expect("cell exists").attempts).sum()
}

#[test]
fn a_served_study_completes_with_exactly_one_result_per_cell() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-complete", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log) = (s.path("s.db"), s.path("computed.log"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &["--exit-when-done"]);
    let mut w1 = start_worker(&s, "w1", port, 1, &log, 0);
    let mut w2 = start_worker(&s, "w2", port, 2, &log, 0);
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w1.wait(T).success(), "w1 exit:\n{}", w1.log_text());
    assert!(w2.wait(T).success(), "w2 exit:\n{}", w2.log_text());
    let res = assert_complete(&db, 60);
    let comp = computed(&log);
    assert_eq!(comp.keys().collect::<Vec<_>>(), res.keys().collect::<Vec<_>>());
    assert!(comp.values().all(|&n| n == 1), "no cell computed twice without a failure: {comp:?}");
    assert_eq!(field(&status(&db), "duplicates_ignored"), 0);
}

#[test]
fn a_worker_killed_mid_study_loses_and_duplicates_nothing() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-kill-worker", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log1, log2) = (s.path("s.db"), s.path("w1.log.keys"), s.path("w2.log.keys"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &["--exit-when-done"]);
    let mut w1 = start_worker(&s, "w1", port, 1, &log1, 40);
    wait_until("w1 computed 3 cells", T, || computed(&log1).values().sum::<usize>() >= 3);
    let mut w2 = start_worker(&s, "w2", port, 1, &log2, 10);
    w1.signal("KILL");
    w1.kill();
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w2.wait(T).success(), "w2 exit:\n{}", w2.log_text());
    let res = assert_complete(&db, 60);
    let mut all: BTreeSet<String> = computed(&log1).into_keys().collect();
    all.extend(computed(&log2).into_keys());
    assert_eq!(all, res.keys().cloned().collect::<BTreeSet<_>>());
    // w1 died holding leases: those cells were leased a second time.
    assert!(
        total_attempts(&db, res.into_keys()) > 60,
        "some lease of the killed worker expired and was re-leased"
    );
}

#[test]
fn a_coordinator_killed_and_restarted_on_the_same_db_recomputes_no_finished_cell() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study =
        s.write("s.toml", &two_level_study("e2e-kill-coordinator", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log) = (s.path("s.db"), s.path("computed.log"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator-1", &study, &db, port, &[]);
    let mut w1 = start_worker(&s, "w1", port, 1, &log, 25);
    let mut w2 = start_worker(&s, "w2", port, 1, &log, 25);
    wait_until("15 cells are done", T, || field(&status(&db), "cells_done") >= 15);
    coord.signal("KILL");
    coord.kill();
    let before = results(&db);
    assert!(before.len() >= 15 && before.len() < 60, "killed mid-study: {} done", before.len());
    let mut coord = start_coordinator(&s, "coordinator-2", &study, &db, port, &["--exit-when-done"]);
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w1.wait(T).success(), "w1 exit:\n{}", w1.log_text());
    assert!(w2.wait(T).success(), "w2 exit:\n{}", w2.log_text());
    let after = assert_complete(&db, 60);
    let comp = computed(&log);
    for (key, result) in &before {
        assert_eq!(comp.get(key), Some(&1), "finished cell {key} was computed again");
        assert_eq!(after.get(key), Some(result), "finished cell {key} changed");
    }
    let n = before.len();
    assert_eq!(total_attempts(&db, before.into_keys()) as usize, n, "finished cells were leased once each");
}

#[test]
fn extending_a_finished_study_runs_only_the_new_cells() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let small = s.write("small.toml", &two_level_study("e2e-extend", 2, "[2.0, 4.0]", "[10, 30]"));
    let big = s.write("big.toml", &two_level_study("e2e-extend", 4, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log) = (s.path("s.db"), s.path("computed.log"));
    let run = |study: &std::path::Path, tag: &str| {
        let port = free_port();
        let mut coord =
            start_coordinator(&s, &format!("coordinator-{tag}"), study, &db, port, &["--exit-when-done"]);
        let mut w1 = start_worker(&s, &format!("w1-{tag}"), port, 1, &log, 0);
        let mut w2 = start_worker(&s, &format!("w2-{tag}"), port, 1, &log, 0);
        assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
        assert!(w1.wait(T).success() && w2.wait(T).success());
    };
    run(&small, "small");
    let first = assert_complete(&db, 8);
    assert_eq!(computed(&log).values().sum::<usize>(), 8);
    run(&big, "big");
    let second = assert_complete(&db, 24);
    let comp = computed(&log);
    assert_eq!(comp.values().sum::<usize>(), 24, "only the 16 new cells ran: {comp:?}");
    assert!(comp.values().all(|&n| n == 1));
    for (k, v) in &first {
        assert_eq!(second.get(k), Some(v), "old result {k} unchanged");
    }
}

#[test]
fn the_same_study_run_twice_gives_bit_identical_results() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-twice", 5, "[2.0, 3.5, 6.0]", "[8, 40, 200]"));
    let mut dbs = vec![];
    for (tag, threads) in [("a", 1), ("b", 3)] {
        let db = s.path(&format!("{tag}.db"));
        let log = s.path(&format!("{tag}.keys"));
        let port = free_port();
        let mut coord =
            start_coordinator(&s, &format!("coordinator-{tag}"), &study, &db, port, &["--exit-when-done"]);
        let mut w1 = start_worker(&s, &format!("w1-{tag}"), port, threads, &log, 0);
        let mut w2 = start_worker(&s, &format!("w2-{tag}"), port, 1, &log, 0);
        assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
        assert!(w1.wait(T).success() && w2.wait(T).success());
        dbs.push(assert_complete(&db, 45));
    }
    assert_eq!(dbs[0], dbs[1]);
}

#[test]
fn a_worker_sent_sigterm_drains_hands_back_its_cells_and_exits_zero() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-drain", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log) = (s.path("s.db"), s.path("computed.log"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &["--exit-when-done"]);
    let mut w1 = start_worker(&s, "w1", port, 2, &log, 150);
    wait_until("w1 computed 4 cells", T, || computed(&log).values().sum::<usize>() >= 4);
    w1.signal("TERM");
    let st = w1.wait(Duration::from_secs(20));
    assert!(st.success(), "drained worker exits 0: {st}\n{}", w1.log_text());
    // Everything it held was either committed or handed back: nothing waits for expiry.
    let now = status(&db);
    assert_eq!(field(&now, "cells_leased"), 0, "{now}");
    assert!(w1.log_text().contains("draining"), "{}", w1.log_text());
    let done_by_w1 = field(&now, "cells_done");
    assert!((4..60).contains(&done_by_w1), "{now}");
    let mut w2 = start_worker(&s, "w2", port, 2, &log, 0);
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w2.wait(T).success());
    let res = assert_complete(&db, 60);
    let store = StudyStore::open_read_only(&db).unwrap();
    for k in res.keys() {
        let failures = store.cell_record(k).unwrap().expect("cell exists").failures;
        assert_eq!(failures, 0, "a handed-back cell counts no failure: {k}");
    }
    assert!(computed(&log).values().all(|&n| n == 1), "no cell computed twice");
}

#[test]
fn a_hung_worker_loses_its_leases_and_its_late_results_are_ignored_as_duplicates() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-sigstop", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log1, log2) = (s.path("s.db"), s.path("w1.keys"), s.path("w2.keys"));
    let port = free_port();
    // No --exit-when-done: the coordinator must still be there when the hung worker wakes.
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &[]);
    let mut w1 = start_worker(&s, "w1", port, 1, &log1, 300);
    wait_until("w1 computed 2 cells", T, || computed(&log1).values().sum::<usize>() >= 2);
    // Hung, not dead: its connection stays open, it answers no heartbeat and sends nothing.
    w1.signal("STOP");
    let stopped_at = computed(&log1);
    let mut w2 = start_worker(&s, "w2", port, 1, &log2, 5);
    wait_until("every cell is done", T, || field(&status(&db), "cells_done") == 60);
    assert_eq!(computed(&log1), stopped_at, "a stopped process computes nothing");
    let res = assert_complete(&db, 60);
    let before_wake = status(&db);
    // w2 computed the cells whose leases w1 lost (it held at least its running cell).
    let w2_keys = computed(&log2);
    assert!(total_attempts(&db, res.keys().cloned()) > 60, "w1's leases expired and were re-leased");
    w1.signal("CONT");
    // w1 finishes its running cell and sends every result it had not had acknowledged; all
    // of them are for cells already done, so each one is counted as a duplicate and ignored.
    let both = |w1: &BTreeSet<String>| w1.iter().filter(|k| w2_keys.contains_key(*k)).count() as u64;
    wait_until("w1 exits after the study is done", T, || !w1.running());
    let st = w1.wait(T);
    assert!(st.success(), "the woken worker exits 0: {st}\n{}", w1.log_text());
    let w1_keys: BTreeSet<String> = computed(&log1).into_keys().collect();
    let late = both(&w1_keys);
    assert!(late >= 1, "w1 computed a cell that w2 also computed: {w1_keys:?}");
    let after = status(&db);
    let ignored = field(&after, "duplicates_ignored") - field(&before_wake, "duplicates_ignored");
    let rejected = field(&after, "results_rejected") - field(&before_wake, "results_rejected");
    assert_eq!((ignored, rejected), (late, 0), "every late result ignored as a duplicate: {after}");
    assert_eq!(results(&db), res, "late results changed no committed result");
    // w2 exits once a lease call hears DONE; the coordinator must still answer until then.
    assert!(w2.wait(T).success(), "w2 exit:\n{}", w2.log_text());
    coord.signal("TERM");
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
}

#[test]
fn taustar_run_completes_resumes_without_recomputing_and_status_reports_json() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-run", 3, "[2.0, 4.0]", "[10, 30]"));
    let (db, log) = (s.path("run.db"), s.path("computed.log"));
    for round in 0..2 {
        let out = Command::new(bin("taustar"))
            .arg("run")
            .arg(&study)
            .arg("--db")
            .arg(&db)
            .arg("--workers")
            .arg("2")
            .env("TAUSTAR_WORKER_COMPUTED_LOG", &log)
            .output()
            .expect("run taustar run");
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("12 of 12 cells done"));
        assert_eq!(computed(&log).values().sum::<usize>(), 12, "round {round}: resumed, nothing recomputed");
    }
    assert_complete(&db, 12);
    let st = status(&db);
    for key in
        ["cells_total", "cells_pending", "cells_leased", "cells_done", "cells_failed", "duplicates_ignored"]
    {
        assert!(st[key].is_u64(), "status JSON has {key}: {st}");
    }
    assert!(st["throughput_per_s"].is_f64() && st["finished"].as_bool() == Some(true), "{st}");
}

#[test]
fn serve_refuses_a_study_whose_settings_changed_naming_the_fingerprint() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let a = s.write("a.toml", &two_level_study("e2e-fp", 1, "2.0", "10"));
    let b = s.write("b.toml", &two_level_study("e2e-fp", 1, "2.0", "10").replace("count = 6", "count = 7"));
    let db = s.path("s.db");
    let run = |study: &std::path::Path| {
        Command::new(bin("taustar"))
            .arg("run")
            .arg(study)
            .arg("--db")
            .arg(&db)
            .arg("--workers")
            .arg("1")
            .output()
            .unwrap()
    };
    assert!(run(&a).status.success());
    let out = run(&b);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fingerprint") && err.contains("use a new --db"), "{err}");
}

#[test]
fn a_coordinator_sent_sigterm_closes_the_db_cleanly_and_resumes_without_recomputing() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study =
        s.write("s.toml", &two_level_study("e2e-term-coordinator", 10, "[2.0, 4.0]", "[10, 30, 100]"));
    let (db, log) = (s.path("s.db"), s.path("computed.log"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator-1", &study, &db, port, &[]);
    let mut w1 = start_worker(&s, "w1", port, 2, &log, 25);
    wait_until("10 cells are done", T, || field(&status(&db), "cells_done") >= 10);
    coord.signal("TERM");
    let st = coord.wait(Duration::from_secs(20));
    assert!(st.success(), "graceful stop exits 0: {st}\n{}", coord.log_text());
    assert!(coord.log_text().contains("database closed"), "{}", coord.log_text());
    assert!(!s.path("s.db-wal").exists(), "the WAL was checkpointed and removed on close");
    let before = results(&db);
    let mut coord = start_coordinator(&s, "coordinator-2", &study, &db, port, &["--exit-when-done"]);
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w1.wait(T).success(), "w1 exit:\n{}", w1.log_text());
    let after = assert_complete(&db, 60);
    let comp = computed(&log);
    for (key, result) in &before {
        assert_eq!(comp.get(key), Some(&1), "finished cell {key} was computed again");
        assert_eq!(after.get(key), Some(result));
    }
}

/// Cells past enumeration (6×6: data from truth chains, the pseudo-likelihood fit, Monte
/// Carlo evaluation; about a second each) through `serve` and two workers, one killed while
/// it holds leases: every cell done once, none lost, and every result bit-identical to an
/// undisturbed `taustar run` of the same study.
#[test]
fn a_monte_carlo_study_past_enumeration_survives_a_killed_worker_bit_identically() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write(
        "mc.toml",
        "name = \"e2e-mc-6x6\"\nseed = 5\nreplicates = 2\n[truth]\nkind = \"ising2d\"\nlattice = [6, 6]\n\
         temperature = [2.0, 3.0]\n[data]\nsamples = 300\n[fit]\nmode = \"plm\"\nl2 = 0.01\n\
         [tau]\ngrid = { from = 0.5, to = 2.0, count = 4 }\nbounds = [0.3, 4.0]\n[eval]\nmethod = \"mcmc\"\n\
         [mcmc]\nsteps = 400\ntruth_steps = 1000\n",
    );
    let (db, log1, log2) = (s.path("mc.db"), s.path("w1.keys"), s.path("w2.keys"));
    let port = free_port();
    let mut coord = start_coordinator(&s, "coordinator", &study, &db, port, &["--exit-when-done"]);
    let mut w1 = start_worker(&s, "w1", port, 1, &log1, 0);
    wait_until("w1 computed a cell", T, || computed(&log1).values().sum::<usize>() >= 1);
    let mut w2 = start_worker(&s, "w2", port, 1, &log2, 0);
    w1.signal("KILL");
    w1.kill();
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w2.wait(T).success(), "w2 exit:\n{}", w2.log_text());
    let res = assert_complete(&db, 4);
    assert!(res.values().all(|r| r.contains("tau_rev_se: Some(") && r.contains("data_thinning: Some(")));

    let undisturbed = s.path("run.db");
    let out = Command::new(bin("taustar"))
        .arg("run")
        .arg(&study)
        .arg("--db")
        .arg(&undisturbed)
        .arg("--no-report")
        .output()
        .expect("run taustar run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(res, results(&undisturbed), "the same bits with and without the kill");
}
