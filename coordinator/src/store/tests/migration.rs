//! Schema migration: a store written by taustar's first schema (version 1) opens under the
//! current one with every cell, result and counter kept, and expiries re-booked as lost leases.

use rusqlite::{params, Connection};

use super::*;

/// The complete DDL of schema version 1, verbatim as the first release created it.
const V1_DDL: &str = "
PRAGMA page_size = 16384;
PRAGMA journal_mode = WAL;
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');

        CREATE TABLE IF NOT EXISTS points (
            id   INTEGER PRIMARY KEY,
            key  TEXT NOT NULL UNIQUE,   -- canonical grid-point key (taustar_common::GridPoint::key)
            spec TEXT NOT NULL           -- the GridPoint as JSON
        );

        -- The cell key is `<points.key>;r=<replicate>`; it is not stored again per cell.
        CREATE TABLE IF NOT EXISTS cells (
            id          INTEGER PRIMARY KEY,
            point_id    INTEGER NOT NULL REFERENCES points(id),
            replicate   INTEGER NOT NULL,
            state       INTEGER NOT NULL DEFAULT 0,  -- 0 pending, 1 leased, 2 done, 3 failed
            worker_id   INTEGER,                     -- current or last lease holder
            deadline_ms INTEGER,                     -- lease deadline, unix ms
            attempts    INTEGER NOT NULL DEFAULT 0,  -- times leased
            failures    INTEGER NOT NULL DEFAULT 0,  -- failed computations + expired leases
            error       TEXT,                        -- last failure
            finished_ms INTEGER,                     -- when done/failed, unix ms
            UNIQUE (point_id, replicate)
        );
        CREATE INDEX IF NOT EXISTS cells_by_state ON cells(state, id);
        CREATE INDEX IF NOT EXISTS cells_by_finish ON cells(finished_ms) WHERE finished_ms IS NOT NULL;

        CREATE TABLE IF NOT EXISTS results (
            cell_id          INTEGER PRIMARY KEY REFERENCES cells(id),
            samples          INTEGER NOT NULL,
            tau_rev          REAL NOT NULL,
            tau_fwd          REAL NOT NULL,
            tau_rev_at_bound INTEGER NOT NULL,
            tau_fwd_at_bound INTEGER NOT NULL,
            dkl_rev_at_1     REAL NOT NULL,
            dkl_rev_opt      REAL NOT NULL,
            dkl_fwd_at_1     REAL NOT NULL,
            dkl_fwd_opt      REAL NOT NULL,
            tau_heat_peak    REAL,
            tau_var          REAL,
            low_states_hat   INTEGER,
            gap_hat          REAL,
            overlap          INTEGER,
            tau_rev_closed   REAL,
            tau_fwd_closed   REAL,
            fit_mode         TEXT,
            fit_iterations   INTEGER,
            grad_max_norm    REAL,
            nll              REAL,
            coupling_max_abs REAL,
            fit_diverged     INTEGER,
            fit_note         TEXT,
            curve            BLOB NOT NULL           -- 6 little-endian f64 per τ point
        );

        CREATE TABLE IF NOT EXISTS workers (
            id            INTEGER PRIMARY KEY,
            name          TEXT NOT NULL,
            cores         INTEGER NOT NULL,
            version       TEXT NOT NULL,
            registered_ms INTEGER NOT NULL,
            last_seen_ms  INTEGER NOT NULL
        );

        CREATE TABLE IF NOT EXISTS counters (
            name  TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO counters(name, value) VALUES ('duplicates_ignored', 0), ('results_rejected', 0);
";

/// The settings JSON and fingerprint a store made before `fit.rel_tol` existed holds for
/// `def`: no `rel_tol` or `curves` key, `max_iter` 10 000, and the fingerprint without
/// `fit.rel_tol` (the exact strings of that release).
fn legacy_settings(def: &StudyDefinition) -> (String, String) {
    let mut json: serde_json::Value = serde_json::to_value(&def.settings).unwrap();
    let map = json.as_object_mut().unwrap();
    map.remove("rel_tol");
    map.remove("curves");
    map.insert("max_iter".into(), 10_000.into());
    let fingerprint = format!(
        "settings-v1;seed={};tau.grid=0.5..2/4;tau.bounds=0.01..100;fit.max_iter=10000;fit.coupling_cap=20",
        def.seed
    );
    (json.to_string(), fingerprint)
}

/// Insert `r` as schema 1 and 2 stored results: today's columns without those schema 3
/// added.
fn insert_v1_result(conn: &Connection, id: i64, r: &CellResult) {
    let mut cols = vec!["cell_id"];
    let mut vals = vec![];
    for (c, v) in std::iter::once("cell_id").chain(codec::column_names()).zip(codec::encode(id, r, &[])) {
        if !codec::missing_in(1, c) {
            if c != "cell_id" {
                cols.push(c);
            }
            vals.push(v);
        }
    }
    let params: Vec<String> = (1..=vals.len()).map(|i| format!("?{i}")).collect();
    let sql = format!("INSERT INTO results({}) VALUES ({})", cols.join(", "), params.join(", "));
    conn.execute(&sql, rusqlite::params_from_iter(vals)).unwrap();
}

/// Cell states and bookkeeping planted in the v1 file, by replicate of the first point.
struct Planted {
    key: String,
    id: i64,
}

/// Build a version-1 store of the test study with raw SQL, the way v1 wrote it: cell 0 done
/// (with a result), cell 1 pending after two expiries, cell 2 failed by three expiries, cell 3
/// failed by a real error, the rest pending. Returns the planted cells in that order.
fn build_v1(path: &std::path::Path) -> Vec<Planted> {
    let (s, def) = super::study(super::TOML);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(V1_DDL).unwrap();
    let (settings, fingerprint) = legacy_settings(&def);
    for (k, v) in [
        ("study_name", def.name.clone()),
        ("study_seed", def.seed.to_string()),
        ("study_toml", def.toml.clone()),
        ("fingerprint", fingerprint),
        ("settings_json", settings),
        ("study_uid", "00000000000000v1".to_string()),
    ] {
        conn.execute("INSERT INTO meta(key, value) VALUES (?1, ?2)", params![k, v]).unwrap();
    }
    let mut planted = vec![];
    for cell in s.cells() {
        let pkey = cell.point.key();
        let point_id: i64 = match conn
            .query_row("SELECT id FROM points WHERE key = ?1", [&pkey], |r| r.get(0))
        {
            Ok(id) => id,
            Err(_) => {
                let json = super::super::point_json(&cell.point, &pkey).unwrap();
                conn.execute("INSERT INTO points(key, spec) VALUES (?1, ?2)", params![pkey, json]).unwrap();
                conn.last_insert_rowid()
            }
        };
        conn.execute(
            "INSERT INTO cells(point_id, replicate) VALUES (?1, ?2)",
            params![point_id, cell.replicate],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        if planted.len() < 4 {
            planted.push(Planted { key: cell.key().0, id });
            if planted.len() == 1 {
                let r = super::fake_legacy_result(&cell);
                insert_v1_result(&conn, id, &r);
            }
        }
    }
    conn.execute(
        "INSERT INTO workers(name, cores, version, registered_ms, last_seen_ms) VALUES ('w', 1, 'v1', 0, 0)",
        [],
    )
    .unwrap();
    let set = "UPDATE cells SET state = ?2, attempts = ?3, failures = ?4, error = ?5, worker_id = 1, \
               finished_ms = ?6 WHERE id = ?1";
    // (state, attempts, failures, error, finished_ms)
    type V1Cell<'a> = (i64, u32, u32, Option<&'a str>, Option<i64>);
    let rows: [V1Cell<'_>; 4] = [
        (state::DONE, 1, 0, None, Some(5)),
        (state::PENDING, 2, 2, Some("lease expired"), None),
        (state::FAILED, 3, 3, Some("lease expired 3 times (the workers computing it were lost)"), Some(6)),
        (state::FAILED, 3, 3, Some("invalid gap = -1: boom"), Some(7)),
    ];
    for (p, (st, attempts, failures, error, finished)) in planted.iter().zip(rows) {
        conn.execute(set, params![p.id, st, attempts, failures, error, finished]).unwrap();
    }
    conn.execute("UPDATE counters SET value = 4 WHERE name = 'duplicates_ignored'", []).unwrap();
    planted
}

#[test]
fn a_version_1_store_is_readable_before_and_migrated_in_place_when_opened_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let planted = build_v1(&path);

    // A reader (taustar status beside an older coordinator) works on the v1 file as it is.
    let ro = StudyStore::open_read_only(&path).unwrap();
    let st = ro.status(10).unwrap();
    assert_eq!((st.cells_total, st.cells_done, st.cells_failed, st.results_quarantined), (8, 1, 2, 0));
    assert_eq!(ro.cell_record(&planted[1].key).unwrap().unwrap().lost_leases, 0);
    drop(ro);

    let store = StudyStore::open(&path, StoreConfig::default()).unwrap();
    let version: String = store
        .conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION.to_string());
    let rec = |store: &StudyStore, i: usize| store.cell_record(&planted[i].key).unwrap().unwrap();
    // Done stays done, with its result bit for bit.
    assert_eq!(rec(&store, 0).state, state::DONE);
    let (s, _) = super::study(super::TOML);
    let want = super::fake_legacy_result(&s.cells().next().unwrap());
    let got = store.result_by_key(&planted[0].key).unwrap().unwrap();
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    // Expiries that v1 counted as failures are lost leases now.
    let r1 = rec(&store, 1);
    assert_eq!((r1.state, r1.failures, r1.lost_leases), (state::PENDING, 0, 2));
    // A cell v1 failed only for lost workers is pending again (v2's lost-lease limit is 10).
    let r2 = rec(&store, 2);
    assert_eq!((r2.state, r2.failures, r2.lost_leases), (state::PENDING, 0, 3));
    // A real failure stays a failure.
    let r3 = rec(&store, 3);
    assert_eq!((r3.state, r3.failures, r3.lost_leases), (state::FAILED, 3, 0));
    let st = store.status(10).unwrap();
    assert_eq!((st.cells_done, st.cells_failed, st.cells_pending), (1, 1, 6));
    assert_eq!((st.duplicates_ignored, st.results_quarantined), (4, 0));
    let q: i64 = store.conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0)).unwrap();
    assert_eq!(q, 0);

    // The study resumes: the same file syncs without changes and its cells lease and commit,
    // computed with the settings the store was made with (the file sets neither
    // fit.max_iter nor fit.rel_tol, whose defaults have changed since).
    drop(store);
    let mut loaded = crate::study_file::from_parts(
        taustar_common::study::Study::from_toml_str(super::TOML).unwrap(),
        super::TOML.to_string(),
    );
    let (mut store, sync) =
        crate::study_file::open_store(&mut loaded, &path, StoreConfig::default()).unwrap();
    assert_eq!(sync.cells_added, 0);
    assert_eq!((loaded.study.settings.max_iter, loaded.study.settings.rel_tol), (10_000, 1e-7));
    // A two-level file that leaves `tau.curves` unset (today: recompute) keeps storing curves
    // in a store made when every study did.
    assert_eq!(loaded.study.settings.curves, taustar_common::CurveOutput::All);
    let w = store.register_worker(0, "new", 1, "v2", 20).unwrap();
    let batch = store.lease(w, 100, 20, 1000).unwrap();
    assert_eq!(batch.cells.len(), 6);
    for (_, spec) in &batch.cells {
        assert_eq!((spec.settings.max_iter, spec.settings.rel_tol), (10_000, 1e-7), "{spec:?}");
    }
    let rep = store.commit(&[(w, super::done(&batch.cells))], 30).unwrap();
    assert_eq!(rep[0].committed, 6);
    assert!(store.status(31).unwrap().finished);
    drop(store);

    // Opening again is a no-op: the migration ran once.
    let store = StudyStore::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(store.status(40).unwrap().cells_done, 7);
    let integrity: String = store.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn a_file_that_sets_the_new_constants_is_refused_on_an_old_store_naming_the_fingerprints() {
    // Never silently reinterpreted: the stored cells ran with rel_tol 1e-7, so a file that
    // asks for 1e-5 explicitly cannot extend the store.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    build_v1(&path);
    let toml = format!("{}[fit]\nrel_tol = 1e-5\n", super::TOML);
    let mut loaded = crate::study_file::from_parts(
        taustar_common::study::Study::from_toml_str(&toml).unwrap(),
        toml.clone(),
    );
    let err =
        crate::study_file::open_store(&mut loaded, &path, StoreConfig::default()).err().unwrap().to_string();
    assert!(err.contains("fit.rel_tol=0.00001") && err.contains("fit.max_iter=10000"), "{err}");
}

#[test]
fn a_store_of_an_unknown_newer_version_is_refused_naming_the_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.db");
    build_v1(&path);
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'", []).unwrap();
    drop(conn);
    let err = StudyStore::open(&path, StoreConfig::default()).err().unwrap().to_string();
    assert!(err.contains("schema version 9") && err.contains("v9.db"), "{err}");
    let err = StudyStore::open_read_only(&path).err().unwrap().to_string();
    assert!(err.contains("schema version 9"), "{err}");
}

/// A damaged file is one clear error naming it — for the writer, for readers, and through
/// the study's statistics — never a panic: garbage bytes, and a real store cut in half (what
/// a full disk or a bad copy leaves).
#[test]
fn a_truncated_or_garbage_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a taustar store, nor SQLite at all\n".repeat(100)).unwrap();
    let truncated = dir.path().join("truncated.db");
    {
        let mut store = super::synced(&dir, 3);
        let w = super::worker(&mut store, "a");
        let cells = store.lease(w, 100, 0, 1000).unwrap().cells;
        store.commit(&[(w, super::done(&cells))], 1).unwrap();
        let src = store.path().to_path_buf();
        drop(store);
        let bytes = std::fs::read(&src).unwrap();
        assert!(bytes.len() > 4096, "a real store to cut");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    }
    for path in [&garbage, &truncated] {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let outcomes = [
            StudyStore::open(path, StoreConfig::default()).err().map(|e| e.to_string()),
            StudyStore::open_read_only(path)
                .and_then(|s| s.status(0).map(|_| ()))
                .err()
                .map(|e| e.to_string()),
        ];
        for (what, err) in ["writer", "reader"].iter().zip(outcomes) {
            let err = err.unwrap_or_else(|| panic!("{what} opened the damaged {name}"));
            assert!(err.contains(&name), "{what} error names the file: {err}");
        }
    }
}

/// Schema 5 → current: a store made before `equilibrated_tau_lo` and `tau_fwd_equilibrated`
/// (the current layout with those columns and every later one dropped, the version set back)
/// reads them as absent and everything else bit for bit; opened for writing it gains the
/// columns, keeps its results, and stores the new fields of results committed from then on.
#[test]
fn a_version_5_store_reads_without_the_equilibrated_fields_and_gains_them_when_opened_for_writing() {
    migrates_from(5, &|r: &mut CellResult| {
        if let Some(l) = r.mcmc.ladder.as_mut() {
            l.equilibrated_tau_lo = None;
        }
        r.mcmc.tau_fwd_equilibrated = None;
        r.mcmc.tau_fwd_equilibrated_se = None;
    });
}

/// Schema 6 → 7: a store made before the multicanonical sampler's diagnostics reads them as
/// absent, and gains them when opened for writing.
#[test]
fn a_version_6_store_reads_without_the_multicanonical_fields_and_gains_them_when_opened_for_writing() {
    migrates_from(6, &|_| {});
}

/// A store of schema `from`: every column added after it dropped and the version set back.
/// What it reads must equal the fake result with `strip` applied (and with every field added
/// after schema 6 cleared), before and after a writer migrates it; results committed after
/// the migration keep every field.
fn migrates_from(from: u32, strip: &dyn Fn(&mut CellResult)) {
    use taustar_common::result_fields::{added_in_schema_6, added_in_schema_7, RESULT_FIELDS};
    let dir = tempfile::tempdir().unwrap();
    let mut store = synced(&dir, 3);
    let path = store.path().to_path_buf();
    let a = worker(&mut store, "a");
    let cells = store.lease(a, 2, 0, 1000).unwrap().cells;
    store.commit(&[(a, done(&cells))], 1).unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let dropped = RESULT_FIELDS
        .iter()
        .map(|f| f.name)
        .filter(|c| added_in_schema_7(c) || (from < 6 && added_in_schema_6(c)));
    for c in dropped {
        conn.execute_batch(&format!("ALTER TABLE results DROP COLUMN {c};")).unwrap();
    }
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [from.to_string()]).unwrap();
    drop(conn);
    let without = |r: &CellResult| {
        let mut r = r.clone();
        if let Some(l) = r.mcmc.ladder.as_mut() {
            l.walker_round_trips_min = None;
            l.flatness = None;
        }
        strip(&mut r);
        r
    };
    let ro = StudyStore::open_read_only(&path).unwrap();
    for (_, spec) in &cells {
        let got = ro.result_by_key(&spec.key().0).unwrap().unwrap();
        assert_eq!(format!("{got:?}"), format!("{:?}", without(&fake_result(spec))));
    }
    drop(ro);

    let mut store = StudyStore::open(&path, StoreConfig::default()).unwrap();
    let version: String = store
        .conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION.to_string());
    for (_, spec) in &cells {
        let got = store.result_by_key(&spec.key().0).unwrap().unwrap();
        assert_eq!(format!("{got:?}"), format!("{:?}", without(&fake_result(spec))));
    }
    let b = worker(&mut store, "b");
    let rest = store.lease(b, 100, 2, 1000).unwrap().cells;
    store.commit(&[(b, done(&rest))], 3).unwrap();
    let with_fields = rest
        .iter()
        .filter(|(_, s)| {
            let r = fake_result(s);
            r.mcmc.tau_fwd_equilibrated.is_some() && r.mcmc.ladder.is_some()
        })
        .count();
    let with_muca = rest
        .iter()
        .filter(|(_, s)| fake_result(s).mcmc.ladder.is_some_and(|l| l.walker_round_trips_min.is_some()))
        .count();
    assert!(with_fields > 0 && with_muca > 0, "the fake results exercise the new fields");
    for (_, spec) in &rest {
        let got = store.result_by_key(&spec.key().0).unwrap().unwrap();
        assert_eq!(format!("{got:?}"), format!("{:?}", fake_result(spec)));
    }
}
