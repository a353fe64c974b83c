//! DDL and connection settings of the study store.

use rusqlite::Connection;

/// Bumped on any incompatible change of the tables below.
pub const SCHEMA_VERSION: u32 = 1;

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
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Create the tables if they do not exist (idempotent).
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');

        CREATE TABLE IF NOT EXISTS points (
            id   INTEGER PRIMARY KEY,
            key  TEXT NOT NULL UNIQUE,   -- canonical grid-point key (common::GridPoint::key)
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
        "
    ))
}
