//! Crash integrity: SIGKILL the coordinator while results are being
//! committed, again and again, and check the SQLite file each time.
//!
//! Two workers stream results of microsecond cells (commits are always in flight). Each
//! round starts `taustar serve` on the same database, waits until it has committed a few
//! dozen results, lets it run a random few more milliseconds, and kills it with SIGKILL.
//! The crashed file (database and WAL, copied before anybody reopens it, so the next
//! coordinator still does its own recovery) must pass `PRAGMA integrity_check` and the
//! store invariants (a done cell has exactly one result, a result belongs to a done cell,
//! leased and pending cells have none), and every result seen after an earlier crash must
//! still be there, unchanged. At the end the study resumes to completion with exactly one
//! result per cell.
//!
//! Run: `cargo test -p taustar-e2e --test e2e crash::` (loopback only, no privileges).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};

use taustar_e2e::*;

const ROUNDS: usize = 20;
const T: Duration = Duration::from_secs(90);
/// Wall time of one cell: ~400 results/s from four threads, so a round commits hundreds
/// (not the whole study) and workers do not buffer thousands while the coordinator is down.
const DELAY_MS: u64 = 10;

/// Copy the database and its WAL (the crash image; the shared-memory index is rebuilt from
/// the WAL on open) to `to`.
fn snapshot(db: &Path, to: &Path) {
    std::fs::copy(db, to).expect("copy the database");
    let wal = db.with_extension("db-wal");
    let to_wal = to.with_extension("db-wal");
    let _ = std::fs::remove_file(&to_wal);
    let _ = std::fs::remove_file(to.with_extension("db-shm"));
    if wal.exists() {
        std::fs::copy(&wal, &to_wal).expect("copy the WAL");
    }
}

/// Key → digest of each result row (every column, bit-exact; see [`db::result_rows`]).
fn digests(conn: &rusqlite::Connection) -> BTreeMap<String, u64> {
    db::result_rows(conn)
        .into_iter()
        .map(|(k, cols)| {
            let mut h = DefaultHasher::new();
            cols.hash(&mut h);
            (k, h.finish())
        })
        .collect()
}

fn done(db: &Path) -> i64 {
    db::int(&db::open_read_only(db), "SELECT count(*) FROM cells WHERE state = 2")
}

#[test]
fn sigkill_during_commits_never_corrupts_the_store_or_loses_a_committed_result() {
    let _machine = whole_machine();
    let s = Scratch::new();
    // 4 gaps × 5 data sizes × 250 replicates = 5000 cells (20 rounds commit about 2000).
    let study = s.write(
        "crash.toml",
        &two_level_study("e2e-crash", 250, "[2.0, 3.0, 4.5, 6.0]", "[10, 20, 40, 80, 160]"),
    );
    let cells = 5000i64;
    let (db, snap, log) = (s.path("crash.db"), s.path("snapshot.db"), s.path("computed.keys"));
    let port = free_port();
    // Key → digest of every result seen in a crashed file so far.
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut w1 = start_worker(&s, "w1", port, 2, &log, DELAY_MS);
    let mut w2 = start_worker(&s, "w2", port, 2, &log, DELAY_MS);
    let mut seed = std::process::id() as u64 | 1;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let label = format!("coordinator-{round}");
        let mut coord = start_coordinator(&s, &label, &study, &db, port, &[]);
        let before = done(&db);
        wait_until(&format!("round {round}: 40 more results committed"), T, || {
            assert!(coord.running(), "{label} exited:\n{}", coord.log_text());
            done(&db) >= before + 40
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 60));
        coord.signal("KILL");
        coord.kill();

        snapshot(&db, &snap);
        let conn = db::open(&snap);
        assert_eq!(db::integrity_check(&conn), "ok", "round {round}: integrity_check of the crashed file");
        let violations = db::invariant_violations(&conn);
        assert!(
            violations.is_empty(),
            "round {round}: store invariants broken after SIGKILL: {violations:?}"
        );
        let rows = digests(&conn);
        let [_, _, n_done, failed] = db::state_counts(&conn);
        assert_eq!(failed, 0, "round {round}: no cell failed");
        assert_eq!(rows.len() as i64, n_done, "round {round}: one result per done cell");
        assert!(n_done < cells, "round {round}: the study must still be running (make it longer)");
        for (key, row) in &seen {
            assert_eq!(rows.get(key), Some(row), "round {round}: committed result of {key} lost or changed");
        }
        seen = rows;
        drop(conn);
    }
    let after_rounds = seen.len();
    eprintln!(
        "crash test: {ROUNDS} SIGKILLs in {:.1} s, {after_rounds} results",
        started.elapsed().as_secs_f64()
    );

    // Resume to completion.
    let mut coord = start_coordinator(&s, "coordinator-final", &study, &db, port, &["--exit-when-done"]);
    assert!(coord.wait(T).success(), "final coordinator:\n{}", coord.log_text());
    assert!(w1.wait(T).success(), "w1:\n{}", w1.log_text());
    assert!(w2.wait(T).success(), "w2:\n{}", w2.log_text());
    let conn = db::open_read_only(&db);
    assert_eq!(db::integrity_check(&conn), "ok");
    let violations = db::invariant_violations(&conn);
    assert!(violations.is_empty(), "store invariants broken at the end: {violations:?}");
    assert_eq!(db::state_counts(&conn), [0, 0, cells, 0], "every cell done");
    let rows = digests(&conn);
    assert_eq!(rows.len() as i64, cells, "exactly one result per cell");
    for (key, row) in &seen {
        assert_eq!(rows.get(key), Some(row), "committed result of {key} lost or changed");
    }
    // Every result in the file was computed by a worker (none invented by recovery).
    let comp = computed(&log);
    assert!(rows.keys().all(|k| comp.contains_key(k)), "a result nobody computed");
    eprintln!(
        "crash test: {cells} cells, {} computations, duplicates ignored {}, rejected {}",
        comp.values().sum::<usize>(),
        db::counter(&conn, "duplicates_ignored"),
        db::counter(&conn, "results_rejected")
    );
}
