//! DDL, migrations and connection settings of the study store.
//!
//! # Versions
//! - 1: the first release.
//! - 2: `cells.lost_leases` (expired leases are counted apart from failed computations,
//!   because a lost worker is not the cell's fault), the `quarantine` table (uploads that
//!   were refused are kept with the reason, never committed), counter `results_quarantined`.
//! - 3: results gain `kappa_at_1`, `heat_capacity_at_1`, `fit_stop` and `curve_kappa` (the
//!   κ − C diagnostic and why a fit stopped); rows of older versions keep them NULL.
//! - 4: `results.curve` may hold the grid layout (τ taken from the study's grid, κ inline;
//!   see `codec`), which older readers would misread; no table changes, so migrating from 3
//!   only records the version.
//! - 5: results gain the Monte Carlo standard errors and diagnostics (`tau_rev_se`, …,
//!   `mcmc_ok`, `mcmc_note`, …, the `taustar_common::result_fields` after `fit_note`) and
//!   `curve_se`, the curve's standard errors (6 little-endian f64 per point), and for cells
//!   past enumeration `data_tau_int`, `data_thinning` and `fit_pearson`; exact results keep
//!   them NULL.
//! - 6: results gain `equilibrated_tau_lo`, `tau_fwd_equilibrated` and
//!   `tau_fwd_equilibrated_se` (how far down the ladder the chains equilibrated, and τ*_fwd
//!   from that part when the whole did not); older rows keep them NULL.
//! - 7: results gain `walker_round_trips_min` and `flatness`, the multicanonical sampler's
//!   own diagnostics; tempering and older rows keep them NULL (and a multicanonical row keeps
//!   `min_swap_acceptance` NULL: it has no ladder).
//!
//! A writer opening an older file migrates it in place, in one transaction ([`migrate`]),
//! so a study started by an older taustar resumes under a newer one.

use rusqlite::{Connection, OptionalExtension};

/// Bumped on any change of the tables below; [`migrate`] brings older files forward.
pub const SCHEMA_VERSION: u32 = 7;

/// Oldest version [`migrate`] can bring forward (and read-only handles can read).
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// Pragmas of the writing connection: WAL (readers run beside the writer), NORMAL sync
/// (see the module docs of [`crate::store`] for why that is durable enough), a busy timeout
/// so a concurrent reader's checkpoint never fails a commit.
pub fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // 16 KiB pages (effective only when the file is created): a result row with its curve
    // BLOB is ~3.6 KB, so 4 KiB pages would hold one row each and waste ~12 %.
    conn.execute_batch("PRAGMA page_size = 16384;")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode: SQLite answered {mode:?} instead of \"wal\" (is the database on a filesystem \
             without shared memory?)"
        )));
    }
    // temp_store = MEMORY: a statement that fires a trigger (every state change does, for
    // `cell_counts`) keeps a statement journal of the pages it touches. In a temp file that
    // was a pwrite of a whole page per page per statement: half of the coordinator's CPU at
    // 64 workers (perf). In memory it is a copy; the journal lives only while one statement
    // runs, so memory stays bounded.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    Ok(())
}

/// The `schema_version` stored in `meta`, or `None` for a new (empty) file or a file that is
/// not a taustar store. A non-numeric value reads as `Some(0)` (refused by the caller).
pub fn stored_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
    Ok(v.map(|v| v.parse().unwrap_or(0)))
}

/// Bring a store of an older schema version to [`SCHEMA_VERSION`], in one transaction (a
/// crash mid-migration leaves the old version intact). Returns the version found, or `None`
/// when there was nothing to migrate (new file, current version, or a version this taustar
/// does not know — the caller refuses those).
///
/// 1 → 2: v1 counted an expired lease as a failure of the cell. Where the last error says
/// the lease expired, the cell's `failures` are re-booked as `lost_leases` (v1 kept no finer
/// record; this errs towards giving the cell more tries, which the lost-lease limit still
/// bounds), and a cell that v1 marked failed only for that reason is pending again.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Option<u32>> {
    let Some(found) = stored_version(conn)? else { return Ok(None) };
    if found == SCHEMA_VERSION || !(OLDEST_READABLE_VERSION..SCHEMA_VERSION).contains(&found) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if found == 1 {
        tx.execute_batch(&format!(
            "
            ALTER TABLE cells ADD COLUMN lost_leases INTEGER NOT NULL DEFAULT 0;
            UPDATE cells SET lost_leases = failures, failures = 0
                WHERE state IN (0, 1) AND error LIKE 'lease expired%';
            UPDATE cells SET state = 0, lost_leases = failures, failures = 0, finished_ms = NULL,
                deadline_ms = NULL
                WHERE state = 3 AND error LIKE 'lease expired%';
            {QUARANTINE_DDL}
            INSERT OR IGNORE INTO counters(name, value) VALUES ('results_quarantined', 0);
            "
        ))?;
    }
    if found <= 2 {
        tx.execute_batch(
            "
            ALTER TABLE results ADD COLUMN kappa_at_1 REAL;
            ALTER TABLE results ADD COLUMN heat_capacity_at_1 REAL;
            ALTER TABLE results ADD COLUMN fit_stop TEXT;
            ALTER TABLE results ADD COLUMN curve_kappa BLOB;
            ",
        )?;
    }
    if found <= 4 {
        tx.execute_batch(&monte_carlo_columns("ALTER TABLE results ADD COLUMN ", ";"))?;
    }
    if found <= 5 {
        tx.execute_batch(&equilibrated_columns("ALTER TABLE results ADD COLUMN ", ";"))?;
    }
    if found <= 6 {
        tx.execute_batch(&sampler_columns("ALTER TABLE results ADD COLUMN ", ";"))?;
    }
    tx.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [SCHEMA_VERSION.to_string()])?;
    tx.commit()?;
    Ok(Some(found))
}

/// The quarantine table (schema version 2): uploads refused by the commit path, kept for
/// inspection and never joined into `results`.
const QUARANTINE_DDL: &str = "
        CREATE TABLE IF NOT EXISTS quarantine (
            id          INTEGER PRIMARY KEY,
            cell_id     INTEGER NOT NULL,     -- as uploaded; may name no cell at all
            worker_id   INTEGER NOT NULL,     -- the uploader
            received_ms INTEGER NOT NULL,     -- unix ms
            reason      TEXT NOT NULL,        -- why it was refused
            result      BLOB,                 -- prost-encoded taustar.v1.CellResult, if a result
            error       TEXT                  -- the worker's error text, if an error
        );
        CREATE INDEX IF NOT EXISTS quarantine_by_cell ON quarantine(cell_id);
";

/// Cells per state, kept exact by triggers on `cells`: progress (`taustar status`, the
/// coordinator's monitor every second, its drain every 100 ms) reads four rows instead of
/// counting 10^6 cells (~0.2 s a time). The cost moves to the writer: two one-row updates
/// per state change (plain UPDATEs of pre-filled rows for the four states). Inserts have no
/// trigger: even a one-row UPDATE per inserted cell made inserting a study 6x slower
/// (213 150 cells: 0.7 s → 4.5 s), so the one code path that inserts cells,
/// `StudyStore::sync_study`, adds its count with [`count_inserted`] in the same transaction. A state outside the four
/// can only come from outside taustar; it is counted by the fill and reported by `status`
/// as corruption. Created and filled from `cells` in one transaction the first time a
/// writer opens a file without it (of any version: readers fall back to counting, see
/// [`has_cell_counts`]).
const CELL_COUNTS_DDL: &str = "
    CREATE TABLE cell_counts (
        state INTEGER PRIMARY KEY,
        n     INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO cell_counts(state, n) SELECT state, count(*) FROM cells GROUP BY state;
    INSERT OR IGNORE INTO cell_counts(state, n) VALUES (0, 0), (1, 0), (2, 0), (3, 0);
    CREATE TRIGGER cell_counts_delete AFTER DELETE ON cells BEGIN
        UPDATE cell_counts SET n = n - 1 WHERE state = old.state;
    END;
    CREATE TRIGGER cell_counts_update AFTER UPDATE OF state ON cells WHEN old.state IS NOT new.state BEGIN
        UPDATE cell_counts SET n = n - 1 WHERE state = old.state;
        UPDATE cell_counts SET n = n + 1 WHERE state = new.state;
    END;
";

/// Whether the file has the trigger-kept `cell_counts` table.
pub fn has_cell_counts(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cell_counts')",
        [],
        |r| r.get(0),
    )
}

/// Create the tables if they do not exist (idempotent). On an older file, call [`migrate`]
/// first: `CREATE TABLE IF NOT EXISTS` does not add columns to existing tables.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    create_tables(conn)?;
    if !has_cell_counts(conn)? {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {CELL_COUNTS_DDL} COMMIT;"))?;
    }
    // Files of a development version counted inserts by trigger; with `count_inserted` as
    // well they would count every new cell twice.
    conn.execute_batch("DROP TRIGGER IF EXISTS cell_counts_insert;")?;
    Ok(())
}

/// Book `n` newly inserted (pending) cells in `cell_counts`; call in the inserting transaction.
pub fn count_inserted(conn: &Connection, n: u64) -> rusqlite::Result<()> {
    conn.execute("UPDATE cell_counts SET n = n + ?1 WHERE state = 0", [n as i64])?;
    Ok(())
}

fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');

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
            failures    INTEGER NOT NULL DEFAULT 0,  -- failed computations (errors, NaN, bad key)
            error       TEXT,                        -- last failure
            finished_ms INTEGER,                     -- when done/failed, unix ms
            lost_leases INTEGER NOT NULL DEFAULT 0,  -- leases that expired (worker lost), v2
            UNIQUE (point_id, replicate)
        );
        -- Indexes only, so files of any version get them on open. Every index on `cells` costs
        -- each state change a B-tree delete and insert, so they are partial: pending cells
        -- (the lease takes the lowest ids) and leased cells by deadline (lease expiry, every
        -- sweep and every lease request once nothing is pending, touches the overdue leases
        -- only). Heartbeats name their cells and go by primary key; progress reads
        -- `cell_counts`. A full index of every state (cells_by_state, up to v2) made a done
        -- cell move within it on every commit: dropped.
        DROP INDEX IF EXISTS cells_by_state;
        CREATE INDEX IF NOT EXISTS cells_pending ON cells(state, id) WHERE state = 0;
        CREATE INDEX IF NOT EXISTS cells_by_finish ON cells(finished_ms) WHERE finished_ms IS NOT NULL;
        CREATE INDEX IF NOT EXISTS cells_leased_by_deadline ON cells(state, deadline_ms) WHERE state = 1;

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
            curve            BLOB NOT NULL,          -- 6 little-endian f64 per τ point
            kappa_at_1       REAL,                   -- schema 3
            heat_capacity_at_1 REAL,                 -- schema 3
            fit_stop         TEXT,                   -- schema 3
            curve_kappa      BLOB,                   -- schema 3: 1 little-endian f64 per τ point
            {mc}
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
        INSERT OR IGNORE INTO counters(name, value) VALUES ('duplicates_ignored', 0), ('results_rejected', 0),
            ('results_quarantined', 0);
        {QUARANTINE_DDL}
        ",
        mc = (monte_carlo_columns("", ",") + &equilibrated_columns("", ",") + &sampler_columns("", ","))
            .trim_end()
            .trim_end_matches(',')
    ))
}

/// The column definitions schema 5 added (Monte Carlo results), each as
/// `<prefix><name> <type><suffix>`: the fields of `taustar_common::result_fields` from the first
/// Monte Carlo one to the last before schema 6, and `curve_se` (6 little-endian f64 per τ
/// point).
fn monte_carlo_columns(prefix: &str, suffix: &str) -> String {
    use taustar_common::result_fields::{FIRST_SCHEMA_5_FIELD, FIRST_SCHEMA_6_FIELD};
    field_columns(FIRST_SCHEMA_5_FIELD..FIRST_SCHEMA_6_FIELD, prefix, suffix)
        + &format!("{prefix}curve_se BLOB{suffix}\n")
}

/// The column definitions schema 6 added: the fields of `taustar_common::result_fields` from the
/// first schema-6 one on.
fn equilibrated_columns(prefix: &str, suffix: &str) -> String {
    use taustar_common::result_fields::{FIRST_SCHEMA_6_FIELD, FIRST_SCHEMA_7_FIELD};
    field_columns(FIRST_SCHEMA_6_FIELD..FIRST_SCHEMA_7_FIELD, prefix, suffix)
}

/// The column definitions schema 7 added: the multicanonical sampler's diagnostics, the
/// fields of `taustar_common::result_fields` from the first schema-7 one on.
fn sampler_columns(prefix: &str, suffix: &str) -> String {
    use taustar_common::result_fields::{FIRST_SCHEMA_7_FIELD, RESULT_FIELDS};
    field_columns(FIRST_SCHEMA_7_FIELD..RESULT_FIELDS.len(), prefix, suffix)
}

/// `<prefix><name> <type><suffix>` for the fields of `taustar_common::result_fields` in `range`.
fn field_columns(range: std::ops::Range<usize>, prefix: &str, suffix: &str) -> String {
    use taustar_common::result_fields::{FieldKind, RESULT_FIELDS};
    let mut out = String::new();
    for f in &RESULT_FIELDS[range] {
        let ty = match f.kind {
            FieldKind::Float => "REAL",
            FieldKind::Int | FieldKind::Bool => "INTEGER",
            FieldKind::Str => "TEXT",
        };
        out.push_str(&format!("{prefix}{} {ty}{suffix}\n", f.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The query plan of `sql` with `params` bound, as SQLite's EXPLAIN QUERY PLAN lines.
    fn plan(conn: &Connection, sql: &str, params: &[i64]) -> String {
        let mut q = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = q
            .query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    fn counts(conn: &Connection, sql: &str) -> Vec<(i64, i64)> {
        let mut q = conn.prepare(sql).unwrap();
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap()
    }

    /// `cell_counts` equals counting `cells` after inserts, state changes, no-op updates and
    /// deletes, and is filled from the cells already there when a file gets it late.
    #[test]
    fn cell_counts_follow_every_state_change() {
        let conn = Connection::open_in_memory().unwrap();
        super::create_tables(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO points(id, key, spec) VALUES (1, 'p', '{}');
             INSERT INTO cells(point_id, replicate, state) VALUES (1, 0, 2), (1, 1, 0), (1, 2, 1);",
        )
        .unwrap();
        // A file without the table (older taustar): create() adds it, filled from `cells`.
        assert!(!super::has_cell_counts(&conn).unwrap());
        super::create(&conn).unwrap();
        super::create(&conn).unwrap(); // idempotent: no second fill
        let kept = "SELECT state, n FROM cell_counts WHERE n != 0 ORDER BY state";
        let counted = "SELECT state, count(*) FROM cells GROUP BY state ORDER BY state";
        assert_eq!(counts(&conn, kept), vec![(0, 1), (1, 1), (2, 1)]);
        // Two inserts and one ignored duplicate, booked as sync_study does.
        let added =
            conn.execute("INSERT INTO cells(point_id, replicate) VALUES (1, 3), (1, 4), (1, 5)", []).unwrap()
                + conn.execute("INSERT OR IGNORE INTO cells(point_id, replicate) VALUES (1, 3)", []).unwrap();
        super::count_inserted(&conn, added as u64).unwrap();
        conn.execute_batch(
            "UPDATE cells SET state = 1 WHERE replicate IN (3, 4);
             UPDATE cells SET state = 1 WHERE replicate = 4;
             UPDATE cells SET state = 2, deadline_ms = NULL WHERE replicate = 3;
             UPDATE cells SET state = 3 WHERE replicate = 2;
             UPDATE cells SET deadline_ms = 5 WHERE replicate = 4;
             DELETE FROM cells WHERE replicate = 5;",
        )
        .unwrap();
        assert_eq!(counts(&conn, kept), counts(&conn, counted));
        assert_eq!(counts(&conn, kept), vec![(0, 1), (1, 1), (2, 2), (3, 1)]);
    }

    /// The WHERE shapes of `StudyStore::heartbeat` and `StudyStore::expire_leases` (state as a
    /// bound parameter, as there): a heartbeat goes by primary key, expiry uses the partial
    /// index of leased cells — at 10^6 cells with 10^5 leased, neither
    /// may read every leased row.
    #[test]
    fn heartbeats_and_expiry_use_the_leased_cell_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        super::create(&conn).unwrap();
        let hb = plan(
            &conn,
            "UPDATE cells SET deadline_ms = max(deadline_ms, ?4) WHERE id = ?1 AND state = ?2 AND worker_id = ?3",
            &[5, 1, 7, 100],
        );
        assert!(hb.contains("INTEGER PRIMARY KEY"), "heartbeat plan: {hb}");
        let expire = plan(
            &conn,
            "UPDATE cells SET state = ?1, lost_leases = lost_leases + 1, deadline_ms = NULL \
             WHERE state = ?2 AND deadline_ms < ?3",
            &[0, 1, 100],
        );
        assert!(expire.contains("cells_leased_by_deadline"), "expiry plan: {expire}");
        let failed = plan(
            &conn,
            "UPDATE cells SET state = ?1, lost_leases = lost_leases + 1, finished_ms = ?3 \
             WHERE state = ?2 AND deadline_ms < ?3 AND lost_leases + 1 >= ?4",
            &[3, 1, 100, 5],
        );
        assert!(failed.contains("cells_leased_by_deadline"), "expiry-to-failed plan: {failed}");
        let pending = plan(
            &conn,
            "SELECT c.id, c.replicate, c.point_id, p.spec FROM cells c JOIN points p ON p.id = c.point_id \
             WHERE c.state = ?1 ORDER BY c.id LIMIT ?2",
            &[0, 100],
        );
        assert!(pending.contains("cells_pending"), "lease plan: {pending}");
        let leased = plan(&conn, "SELECT EXISTS (SELECT 1 FROM cells WHERE state = ?1)", &[1]);
        assert!(leased.contains("cells_leased_by_deadline"), "any-leased plan: {leased}");
    }
}
