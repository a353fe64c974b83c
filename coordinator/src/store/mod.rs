//! The durable study store: one SQLite file per study.
//!
//! # Why SQLite, and how it is configured
//! One embedded file is easy to copy, inspect (`sqlite3 study.db`) and resume from. The store
//! runs in WAL mode so `taustar status`, export and plot can read while the coordinator
//! writes. `synchronous = NORMAL`: in WAL mode a committed transaction survives any crash of
//! the *process* (SIGKILL, OOM, panic) — which is what the tests exercise — and only an OS
//! crash or power loss can roll back the last few commits. That rollback is always
//! consistent, because a result and its cell's `done` state are written in one transaction:
//! the cell simply becomes leased/pending again and is recomputed (deterministically, so
//! bit-identically). `FULL` would fsync on every commit and cap throughput at the disk's
//! fsync rate for no gain in correctness.
//!
//! # Schema (see [`schema`])
//! - `meta`: study name, seed, file text, settings fingerprint, settings (JSON), store uid.
//! - `points`: one row per grid point, keyed by its canonical key; `spec` is the point as JSON.
//! - `cells`: one row per (point, replicate) with its state machine
//!   `pending → leased(worker, deadline) → done | failed(failures | lost_leases, error)`, and
//!   back to `pending` when a lease expires or a failure is retried. Failed computations
//!   (`failures`) and expired leases (`lost_leases`) are counted apart, with their own limits
//!   ([`StoreConfig`]): a lost worker is not the cell's fault.
//! - `results`: one row per done cell; scalar columns plus the τ curve as a BLOB of
//!   little-endian f64 (6 per curve point: τ, D_rev, D_fwd, S, ⟨E⟩, C), so 10^6 results take
//!   one row each rather than 10^8 curve rows.
//! - `quarantine`: uploads refused by the commit path (unknown or never-leased cell, cell
//!   held by another worker, wrong key, NaN, ±∞ as a temperature, undecodable), with the
//!   uploader, the reason and the payload; never committed.
//! - `workers`, `counters` (duplicates ignored, results rejected, results quarantined).
//!
//! Nothing here holds all cells or results in memory: leasing is a `LIMIT` query on the
//! partial index of pending cells, study insertion streams the cell iterator, and the read API
//! ([`StudyStore::for_each_point_results`]) holds one grid point at a time.
//!
//! # Modules
//! - [`schema`]: DDL and connection pragmas.
//! - [`codec`]: result rows ↔ [`CellResult`] (the curve BLOB format).
//! - [`lease`]: the writer side — register, lease, commit, heartbeat, release, expire.
//! - [`read`]: the read-only side — status counts, the study file text, results by point.

pub mod codec;
pub mod commit;
pub mod lease;
pub mod read;
pub mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use taustar_common::{CellKey, CellResult, CellSettings, CellSpec, GridPoint};

pub use commit::{CommitReport, Outcome, Upload};
pub use lease::{LeaseBatch, LeaseState};
pub use read::{free_bytes, CellRecord, StudyStatus, LOW_DISK_BYTES};

/// Cell states as stored in `cells.state`.
pub mod state {
    /// Waiting for a worker.
    pub const PENDING: i64 = 0;
    /// Leased to `cells.worker_id` until `cells.deadline_ms`.
    pub const LEASED: i64 = 1;
    /// Has exactly one row in `results`.
    pub const DONE: i64 = 2;
    /// Failed for good: `cells.failures` reached `max_failures` or `cells.lost_leases`
    /// reached `max_lost_leases`; `cells.error` holds the last error.
    pub const FAILED: i64 = 3;
}

/// Errors of the study store. Messages name the file, the field and the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, corruption, locked beyond the busy timeout).
    #[error("study database {path}: {error}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error (in the message, not a `source`: `{:#}` would print it twice).
        error: rusqlite::Error,
    },
    /// The file is not a taustar store, or one of another schema version.
    #[error("study database {path}: {reason}")]
    Incompatible {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The study file does not match the study already in the database.
    #[error("study database {path} holds study {stored_name:?}: {reason}")]
    StudyMismatch {
        /// The database file.
        path: PathBuf,
        /// The stored study's name.
        stored_name: String,
        /// Which setting differs, with both values.
        reason: String,
    },
    /// A stored row cannot be decoded (the file was edited or is corrupt).
    #[error("study database {path}: corrupt row: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The row and field at fault.
        reason: String,
    },
    /// A worker id the store does not know (the worker should register again).
    #[error("unknown worker id {0}; register again")]
    UnknownWorker(u64),
}

impl StoreError {
    /// Whether SQLite refused a write for lack of space (`SQLITE_FULL`): freeing space on
    /// the store's filesystem resolves it; retrying sooner does not.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite { error: rusqlite::Error::SqliteFailure(e, _), .. }
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// Everything the store needs to know about a study file besides its cells.
#[derive(Debug, Clone)]
pub struct StudyDefinition {
    /// The study's name.
    pub name: String,
    /// The study seed.
    pub seed: u64,
    /// The study file text, stored verbatim (export shows it; a later run compares it).
    pub toml: String,
    /// Fingerprint of everything that changes results besides the grid (settings, seed);
    /// a study whose fingerprint changed cannot be extended in the same store.
    pub fingerprint: String,
    /// Study-wide cell settings.
    pub settings: CellSettings,
}

/// What inserting a study did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Cells added by this call (0 when re-running the same file).
    pub cells_added: u64,
    /// Grid points added by this call.
    pub points_added: u64,
    /// Cells in the store after the call.
    pub cells_total: u64,
}

/// Tunables of leasing and failure handling.
///
/// Two limits, because two different things go wrong: a computation that *fails* (an error,
/// a NaN, a wrong key) is the cell's own fault and deterministic, so a few tries suffice;
/// a lease that *expires* means the worker was lost (killed, pre-empted, cut off, the
/// coordinator restarted), which is almost never the cell's fault — unless the cell kills
/// every worker that tries it (out of memory), which the much higher lost-lease limit still
/// ends.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// A cell whose computation failed this many times is marked failed and no longer leased.
    pub max_failures: u32,
    /// A cell whose lease expired this many times is marked failed and no longer leased.
    pub max_lost_leases: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { max_failures: 3, max_lost_leases: 10 }
    }
}

/// An open study store.
///
/// The writer methods (in [`lease`]) are used by one owner at a time — the coordinator's
/// store writer task ([`crate::writer`]); the read methods (in [`read`]) work on a handle from
/// [`StudyStore::open_read_only`] concurrently with a writer.
pub struct StudyStore {
    conn: Connection,
    path: PathBuf,
    config: StoreConfig,
    /// Cached from `meta` once the study is known (leases build [`CellSpec`]s from them).
    study: Option<CachedStudy>,
    /// The file's schema version: always [`schema::SCHEMA_VERSION`] for a writer; a
    /// read-only handle may see an older file that no newer writer has migrated yet.
    version: u32,
    /// Whether "the quarantine table is full" was logged (once per open store).
    quarantine_full_logged: bool,
}

#[derive(Debug, Clone)]
struct CachedStudy {
    name: String,
    seed: u64,
    uid: String,
    settings: CellSettings,
    /// `settings.tau_grid.values()`: the τ of every stored curve in the grid layout.
    grid: Vec<f64>,
}

impl StudyStore {
    /// Open (creating if needed) a store for writing.
    /// A file of an older schema version is migrated in place first (see [`schema::migrate`]).
    pub fn open(path: &Path, config: StoreConfig) -> Result<StudyStore, StoreError> {
        let mut conn = Connection::open(path).map_err(|e| sql_err(path, e))?;
        schema::configure_writer(&conn).map_err(|e| sql_err(path, e))?;
        // Every transaction of the writer writes, so take the write lock at BEGIN. A deferred
        // transaction reads first and upgrades later; if another connection holds the lock
        // then (the checkpointer's RESTART), SQLite may answer "database is locked" at once
        // instead of waiting out the busy timeout, and the commit failed every result stream.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        if let Some(from) = schema::migrate(&mut conn).map_err(|e| sql_err(path, e))? {
            tracing::info!(
                path = %path.display(),
                from,
                to = schema::SCHEMA_VERSION,
                "migrated the study database to the current schema"
            );
        }
        schema::create(&conn).map_err(|e| sql_err(path, e))?;
        let mut store = StudyStore {
            conn,
            path: path.to_path_buf(),
            config,
            study: None,
            version: schema::SCHEMA_VERSION,
            quarantine_full_logged: false,
        };
        store.version = store.check_schema_version(schema::SCHEMA_VERSION..=schema::SCHEMA_VERSION)?;
        store.study = store.load_cached_study()?;
        Ok(store)
    }

    /// Open an existing store read-only (export, plot, status). Works while a coordinator
    /// writes to the same file (WAL); each query sees the last committed state.
    ///
    /// Fails with [`StoreError::Incompatible`] if the file is missing or holds no study.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<StudyStore, StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                reason: "no such file (run `taustar run` or `taustar serve` first)".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| sql_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| sql_err(path, e))?;
        let mut store = StudyStore {
            conn,
            path: path.to_path_buf(),
            config: StoreConfig::default(),
            study: None,
            version: schema::SCHEMA_VERSION,
            quarantine_full_logged: false,
        };
        // Readers also accept older versions, so `taustar status` works on a study that an
        // older coordinator is still running (it migrates only when a new writer opens it).
        store.version =
            store.check_schema_version(schema::OLDEST_READABLE_VERSION..=schema::SCHEMA_VERSION)?;
        store.study = store.load_cached_study()?;
        if store.study.is_none() {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                reason: "holds no study yet".into(),
            });
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored study's name, if a study was inserted.
    pub fn study_name(&self) -> Option<&str> {
        self.study.as_ref().map(|s| s.name.as_str())
    }

    /// The settings the stored study was made with (their effective values; settings
    /// written before a key existed read as the value every study had then).
    pub fn study_settings(&self) -> Option<&CellSettings> {
        self.study.as_ref().map(|s| &s.settings)
    }

    /// The spec of replicate `replicate` of `point`, as a lease hands it to a worker, or
    /// `None` before a study is stored. Readers use it to compute a cell again (curves of a
    /// `tau.curves = "recompute"` study).
    pub fn cell_spec(&self, point: &GridPoint, replicate: u32) -> Option<CellSpec> {
        let study = self.study.as_ref()?;
        Some(CellSpec {
            study_seed: study.seed,
            point: point.clone(),
            replicate,
            settings: study.settings.clone(),
        })
    }

    /// The study's τ grid (empty before a study is stored): the τ of curves stored in the
    /// grid layout (see [`codec`]).
    fn tau_grid(&self) -> &[f64] {
        self.study.as_ref().map_or(&[], |s| s.grid.as_slice())
    }

    /// The store's random uid (workers detect a store swap through it).
    pub fn study_uid(&self) -> Option<&str> {
        self.study.as_ref().map(|s| s.uid.as_str())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql_err(&self.path, e)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), reason: reason.into() }
    }

    /// The file's schema version, if it is in `accepted`.
    fn check_schema_version(&self, accepted: std::ops::RangeInclusive<u32>) -> Result<u32, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        match v.as_deref().map(|v| (v, v.parse::<u32>())) {
            Some((_, Ok(n))) if accepted.contains(&n) => Ok(n),
            Some((v, _)) => Err(StoreError::Incompatible {
                path: self.path.clone(),
                reason: format!(
                    "schema version {v}, this taustar reads versions {} to {}",
                    accepted.start(),
                    accepted.end()
                ),
            }),
            None => Err(StoreError::Incompatible {
                path: self.path.clone(),
                reason: "not a taustar study database (no schema_version)".into(),
            }),
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    fn load_cached_study(&self) -> Result<Option<CachedStudy>, StoreError> {
        let Some(name) = self.meta("study_name")? else { return Ok(None) };
        let seed = self.meta("study_seed")?.unwrap_or_default();
        let seed: u64 = seed.parse().map_err(|_| self.corrupt(format!("meta.study_seed = {seed:?}")))?;
        let settings = self.meta("settings_json")?.unwrap_or_default();
        let settings: CellSettings =
            serde_json::from_str(&settings).map_err(|e| self.corrupt(format!("meta.settings_json: {e}")))?;
        let uid = self.meta("study_uid")?.unwrap_or_default();
        let grid = settings.tau_grid.values();
        Ok(Some(CachedStudy { name, seed, uid, settings, grid }))
    }

    /// Insert a study, or extend the stored one, idempotently.
    ///
    /// The first call stores the definition and every cell. Later calls with the same
    /// definition add nothing; with an *extended* file (more replicates, more grid values)
    /// they add only the cells that are new — existing cells keep their state and results.
    /// Cells are streamed from `cells`, in one transaction (a crash mid-insert leaves the
    /// store as it was). A different seed or settings fingerprint is refused: results
    /// computed under other settings must not be mixed into one store.
    ///
    /// Cells that a newer file no longer lists stay in the store (it is the union of all
    /// versions of the file that ran against it).
    pub fn sync_study(
        &mut self,
        def: &StudyDefinition,
        cells: impl IntoIterator<Item = CellSpec>,
    ) -> Result<SyncReport, StoreError> {
        if let Some(stored) = &self.study {
            let stored_fp = self.meta("fingerprint")?.unwrap_or_default();
            if stored.name != def.name {
                return Err(StoreError::StudyMismatch {
                    path: self.path.clone(),
                    stored_name: stored.name.clone(),
                    reason: format!(
                        "the study file is named {:?}; one database holds one study — use another --db",
                        def.name
                    ),
                });
            }
            if stored.seed != def.seed {
                return Err(StoreError::StudyMismatch {
                    path: self.path.clone(),
                    stored_name: stored.name.clone(),
                    reason: format!(
                        "seed = {} in the database but {} in the study file; a new seed means new \
                         results, use a new --db",
                        stored.seed, def.seed
                    ),
                });
            }
            if stored_fp != def.fingerprint {
                return Err(StoreError::StudyMismatch {
                    path: self.path.clone(),
                    stored_name: stored.name.clone(),
                    reason: format!(
                        "settings fingerprint {stored_fp} in the database but {} in the study file \
                         (τ grid, τ bounds, τ curves or fit limits changed); only grid values and replicates \
                         may be added to an existing study — use a new --db",
                        def.fingerprint
                    ),
                });
            }
        }
        let path = self.path.clone();
        let e = |err| sql_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let uid = match tx
            .query_row("SELECT value FROM meta WHERE key = 'study_uid'", [], |r| r.get::<_, String>(0))
            .optional()
            .map_err(e)?
        {
            Some(uid) => uid,
            None => new_uid(),
        };
        let settings_json = serde_json::to_string(&def.settings)
            .map_err(|err| StoreError::Corrupt { path: path.clone(), reason: format!("settings: {err}") })?;
        {
            let mut put =
                tx.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)").map_err(e)?;
            for (k, v) in [
                ("study_name", def.name.as_str()),
                ("study_seed", &def.seed.to_string()),
                ("study_toml", def.toml.as_str()),
                ("fingerprint", def.fingerprint.as_str()),
                ("settings_json", settings_json.as_str()),
                ("study_uid", uid.as_str()),
            ] {
                put.execute(params![k, v]).map_err(e)?;
            }
        }
        let (mut cells_added, mut points_added) = (0u64, 0u64);
        {
            let mut find_point = tx.prepare_cached("SELECT id FROM points WHERE key = ?1").map_err(e)?;
            let mut add_point =
                tx.prepare_cached("INSERT INTO points(key, spec) VALUES (?1, ?2)").map_err(e)?;
            let mut add_cell = tx
                .prepare_cached("INSERT OR IGNORE INTO cells(point_id, replicate) VALUES (?1, ?2)")
                .map_err(e)?;
            // Cells of one grid point usually arrive together: remember the last point's id.
            let mut last: Option<(String, i64)> = None;
            for cell in cells {
                let pkey = cell.point.key();
                let point_id = match &last {
                    Some((k, id)) if *k == pkey => *id,
                    _ => {
                        let id = match find_point.query_row([&pkey], |r| r.get(0)).optional().map_err(e)? {
                            Some(id) => id,
                            None => {
                                let spec = point_json(&cell.point, &pkey)
                                    .map_err(|reason| StoreError::Corrupt { path: path.clone(), reason })?;
                                add_point.execute(params![pkey, spec]).map_err(e)?;
                                points_added += 1;
                                tx.last_insert_rowid()
                            }
                        };
                        last = Some((pkey, id));
                        id
                    }
                };
                cells_added += add_cell.execute(params![point_id, cell.replicate]).map_err(e)? as u64;
            }
        }
        schema::count_inserted(&tx, cells_added).map_err(e)?;
        let cells_total: i64 = tx.query_row("SELECT count(*) FROM cells", [], |r| r.get(0)).map_err(e)?;
        tx.commit().map_err(e)?;
        self.study = self.load_cached_study()?;
        Ok(SyncReport { cells_added, points_added, cells_total: cells_total as u64 })
    }

    /// The study file text as stored by the last `sync_study` (the file of the last run).
    pub fn study_toml(&self) -> Result<String, StoreError> {
        self.meta("study_toml")?.ok_or_else(|| self.corrupt("meta.study_toml is missing"))
    }

    fn cached(&self) -> Result<&CachedStudy, StoreError> {
        self.study.as_ref().ok_or_else(|| StoreError::Incompatible {
            path: self.path.clone(),
            reason: "holds no study yet".into(),
        })
    }

    fn point_from_json(&self, point_id: i64, json: &str) -> Result<GridPoint, StoreError> {
        serde_json::from_str(json).map_err(|e| self.corrupt(format!("points.spec of point {point_id}: {e}")))
    }

    /// Look up one committed result by its cell key (tests and debugging).
    pub fn result_by_key(&self, key: &str) -> Result<Option<CellResult>, StoreError> {
        let Some((point_key, replicate)) = CellKey::split(key) else { return Ok(None) };
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM results r JOIN cells c ON c.id = r.cell_id JOIN points p ON p.id = c.point_id \
                     WHERE p.key = ?1 AND c.replicate = ?2",
                    codec::result_columns(self.version)
                ),
                params![point_key, replicate],
                |r| codec::decode_row(r, 0, key, self.tau_grid()),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.transpose().map_err(|reason| self.corrupt(reason))
    }
}

/// The JSON stored for a grid point, checked to decode to the same point: a cell leased
/// from the store must be bit-identical to the cell of the study file.
fn point_json(point: &GridPoint, key: &str) -> Result<String, String> {
    let json = serde_json::to_string(point).map_err(|e| format!("point {key}: {e}"))?;
    let back: GridPoint = serde_json::from_str(&json).map_err(|e| format!("point {key}: {e}"))?;
    if back != *point || back.key() != key {
        return Err(format!("point {key} does not survive its JSON encoding {json}"));
    }
    Ok(json)
}

fn sql_err(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError::Sqlite { path: path.to_path_buf(), error }
}

/// A random-enough uid for a new store: time and process id through SHA-free mixing
/// (no crypto is needed: it only has to differ between two stores a worker might see).
fn new_uid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    format!("{x:016x}")
}

#[cfg(test)]
pub(crate) mod tests;

/// Cell ids as a JSON array, for `id IN (SELECT value FROM json_each(?))`: one UPDATE for a
/// whole batch. A state change fires the `cell_counts` trigger, and a statement with a
/// trigger copies every page it touches into a statement journal first; per cell that copy
/// of ~5 pages of 16 KiB was the largest cost of a commit (perf, 64 workers).
pub(crate) fn id_list(ids: impl Iterator<Item = u64>) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(']');
    out
}
