//! Direct SQL on a study database, independent of the store's own read API: the fault and
//! crash tests check what is *in the file*, so a bug in the store's reader cannot hide a
//! bug in its writer.
//!
//! Cell states (`cells.state`): 0 pending, 1 leased, 2 done, 3 failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Open `db` read-only (the coordinator may be writing: WAL lets us read beside it).
pub fn open_read_only(db: &Path) -> Connection {
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()));
    conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// Open `db` read-write (for a copy of a crashed database: opening runs WAL recovery).
pub fn open(db: &Path) -> Connection {
    let conn = Connection::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
    conn
}

/// The single integer `sql` returns.
pub fn int(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `PRAGMA integrity_check`, all rows joined ("ok" for a sound file).
pub fn integrity_check(conn: &Connection) -> String {
    let mut q = conn.prepare("PRAGMA integrity_check").expect("prepare integrity_check");
    let rows: Vec<String> =
        q.query_map([], |r| r.get(0)).expect("integrity_check").collect::<Result<_, _>>().expect("rows");
    rows.join("; ")
}

/// Cells per state: `[pending, leased, done, failed]`.
pub fn state_counts(conn: &Connection) -> [i64; 4] {
    let mut out = [0; 4];
    for (i, o) in out.iter_mut().enumerate() {
        *o = int(conn, &format!("SELECT count(*) FROM cells WHERE state = {i}"));
    }
    out
}

/// A counter of the `counters` table (0 if absent).
pub fn counter(conn: &Connection, name: &str) -> i64 {
    conn.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .unwrap_or_else(|e| panic!("read counter {name}: {e}"))
        .unwrap_or(0)
}

/// The store invariants that must hold in every state of the file, also right after a
/// crash. Returns a description of each violation (empty when sound).
///
/// - a done cell has exactly one `results` row, and a `results` row belongs to a done cell
///   (so leased, pending and failed cells have none); `results.cell_id` is the primary key,
///   so "exactly one" is "at least one" here;
/// - every state is one of the four; a leased cell names its worker and deadline; a done
///   cell has its finish time;
/// - `PRAGMA foreign_key_check` finds nothing.
pub fn invariant_violations(conn: &Connection) -> Vec<String> {
    let checks = [
        (
            "done cells without a result",
            "SELECT count(*) FROM cells c WHERE c.state = 2 AND NOT EXISTS \
             (SELECT 1 FROM results r WHERE r.cell_id = c.id)",
        ),
        (
            "results of cells that are not done (or do not exist)",
            "SELECT count(*) FROM results r LEFT JOIN cells c ON c.id = r.cell_id \
             WHERE c.id IS NULL OR c.state != 2",
        ),
        ("cells in an unknown state", "SELECT count(*) FROM cells WHERE state NOT IN (0, 1, 2, 3)"),
        (
            "leased cells without a worker or deadline",
            "SELECT count(*) FROM cells WHERE state = 1 AND (worker_id IS NULL OR deadline_ms IS NULL)",
        ),
        (
            "done cells without a finish time",
            "SELECT count(*) FROM cells WHERE state = 2 AND finished_ms IS NULL",
        ),
    ];
    let mut out = vec![];
    for (what, sql) in checks {
        let n = int(conn, sql);
        if n != 0 {
            out.push(format!("{n} {what}"));
        }
    }
    let mut fk = conn.prepare("PRAGMA foreign_key_check").expect("prepare foreign_key_check");
    let bad: Vec<String> = fk
        .query_map([], |r| Ok(format!("{}:{:?}", r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .expect("foreign_key_check")
        .collect::<Result<_, _>>()
        .expect("rows");
    if !bad.is_empty() {
        out.push(format!("foreign key violations: {bad:?}"));
    }
    out
}

/// Every `results` row by cell key (`<point key>;r=<replicate>`), each column except
/// `cell_id` (ids are the store's business, not the science) as `name=value` text that is
/// exact: reals as their IEEE-754 bits, blobs (the τ curve) in hex. Equal maps mean
/// bit-identical results. Columns are read from the table itself, so a column added later
/// is compared too.
pub fn result_rows(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let mut q = conn
        .prepare(
            "SELECT p.key || ';r=' || c.replicate AS cell_key, r.* FROM results r \
             JOIN cells c ON c.id = r.cell_id JOIN points p ON p.id = c.point_id",
        )
        .expect("prepare results query");
    let names: Vec<String> = q.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = q.query([]).expect("query results");
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next().expect("results row") {
        let key: String = row.get(0).expect("cell key");
        let mut cols = vec![];
        for (i, name) in names.iter().enumerate().skip(1) {
            if name == "cell_id" {
                continue;
            }
            let v = match row.get_ref(i).expect("column") {
                ValueRef::Null => "null".to_string(),
                ValueRef::Integer(n) => format!("i{n}"),
                ValueRef::Real(x) => format!("f{:016x}", x.to_bits()),
                ValueRef::Text(t) => format!("t{:?}", String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => b.iter().fold(String::from("b"), |mut s, byte| {
                    let _ = write!(s, "{byte:02x}");
                    s
                }),
            };
            cols.push(format!("{name}={v}"));
        }
        let prev = out.insert(key.clone(), cols);
        assert!(prev.is_none(), "two results rows for cell {key}");
    }
    out
}

/// The first difference between two result maps (for an assertion message), or `None`.
pub fn first_difference(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    if let Some(k) = a.keys().find(|k| !b.contains_key(*k)) {
        return Some(format!("cell {k} only in the first ({} vs {} results)", a.len(), b.len()));
    }
    if let Some(k) = b.keys().find(|k| !a.contains_key(*k)) {
        return Some(format!("cell {k} only in the second ({} vs {} results)", a.len(), b.len()));
    }
    for (k, ra) in a {
        let rb = &b[k];
        if ra != rb {
            let col = ra.iter().zip(rb).find(|(x, y)| x != y);
            return Some(match col {
                Some((x, y)) => format!("cell {k}: {x} vs {y}"),
                None => format!("cell {k}: {} vs {} columns", ra.len(), rb.len()),
            });
        }
    }
    None
}
