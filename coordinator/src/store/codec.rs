//! Result rows ↔ [`CellResult`].
//!
//! Scalars live in typed columns (so `sqlite3` can query them); the τ curve is a BLOB in one
//! of two layouts, both bit-exact:
//! - **on the study's grid** (schema 4, what every result of a study normally is): the tag
//!   byte [`GRID_CURVE_TAG`], then for each point of the study's τ grid 6 little-endian f64 —
//!   D_rev, D_fwd, S, ⟨E⟩, C, κ — so 1 + 48·n bytes and `curve_kappa` NULL. τ is not stored:
//!   it is the grid's (`CellSettings::tau_grid`), bit for bit. Why: at the default 71 points
//!   a result row is then ~3.7 KB and fits one 4 KB SQLite page; with τ and κ apart it was
//!   ~4.2 KB, spilled into an overflow page, and cost 5.5 KB of file and WAL per result (the
//!   coordinator committed 18.3k instead of 23k results/s at 3·10^5 cells).
//! - **general** (schemas 1–3, and any curve not on the grid or without κ): for each point
//!   6 little-endian f64 — τ, D_rev, D_fwd, S, ⟨E⟩, C — 48·n bytes; κ(τ) (schema 3) in the
//!   second BLOB `curve_kappa`, one f64 per point, NULL in rows written before κ existed.
//!
//! The layouts cannot be confused: a general BLOB is a multiple of 48 bytes long, a grid
//! BLOB one byte more.
//! The scalar columns are the fields of `taustar_common::result_fields::RESULT_FIELDS`, in order.
//! SQLite's REAL columns keep every finite or infinite f64 exactly except the sign of -0.0; NaN is refused before it reaches the store ([`check_result`]).

use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::Row;
use taustar_common::cell::{CurvePoint, CurveSe};
use taustar_common::result_fields::{FieldKind, FieldValue, StoredValue, RESULT_FIELDS};
use taustar_common::{CellKey, CellResult, FitReport, McmcReport, TauSummary, TwoLevelFitReport};

/// The result columns besides the scalar fields: the curve BLOBs.
const CURVE_COLUMNS: [&str; 3] = ["curve", "curve_kappa", "curve_se"];

/// Columns that schema 3 added; a store of schema 1 or 2 opened read-only (not yet
/// migrated) reads them as NULL.
pub const ADDED_IN_SCHEMA_3: [&str; 4] = ["kappa_at_1", "heat_capacity_at_1", "fit_stop", "curve_kappa"];

/// Whether schema 5 added column `c`: the Monte Carlo fields of `RESULT_FIELDS` and the
/// curve's standard errors. A store of an older schema opened read-only reads them as NULL.
pub fn added_in_schema_5(c: &str) -> bool {
    c == "curve_se" || taustar_common::result_fields::added_in_schema_5(c)
}

/// Whether column `c` is missing from a store of schema `version`.
pub fn missing_in(version: u32, c: &str) -> bool {
    (version < 3 && ADDED_IN_SCHEMA_3.contains(&c))
        || (version < 5 && added_in_schema_5(c))
        || (version < 6 && taustar_common::result_fields::added_in_schema_6(c))
        || (version < 7 && taustar_common::result_fields::added_in_schema_7(c))
}

/// Every result column, in the order [`encode`] writes and [`decode_row`] reads them: the
/// scalar fields of [`RESULT_FIELDS`], then the curve BLOBs.
pub fn column_names() -> impl Iterator<Item = &'static str> {
    RESULT_FIELDS.iter().map(|f| f.name).chain(CURVE_COLUMNS)
}

/// The result columns to select from a store of schema `version` (each prefixed `r.`).
pub fn result_columns(version: u32) -> &'static str {
    static CURRENT: OnceLock<String> = OnceLock::new();
    static BEFORE_7: OnceLock<String> = OnceLock::new();
    static BEFORE_6: OnceLock<String> = OnceLock::new();
    static BEFORE_5: OnceLock<String> = OnceLock::new();
    static BEFORE_3: OnceLock<String> = OnceLock::new();
    let (cell, as_of) = match version {
        7.. => (&CURRENT, 7),
        6 => (&BEFORE_7, 6),
        5 => (&BEFORE_6, 5),
        3 | 4 => (&BEFORE_5, 3),
        _ => (&BEFORE_3, 1),
    };
    cell.get_or_init(|| {
        let cols: Vec<String> = column_names()
            .map(|c| if missing_in(as_of, c) { "NULL".to_string() } else { format!("r.{c}") })
            .collect();
        cols.join(", ")
    })
}

/// The SQL that inserts one result (parameters from [`encode`], after the cell id).
pub fn insert_result() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<&str> = column_names().collect();
        let params: Vec<String> = (1..=cols.len() + 1).map(|i| format!("?{i}")).collect();
        format!("INSERT OR IGNORE INTO results(cell_id, {}) VALUES ({})", cols.join(", "), params.join(", "))
    })
}

/// Bytes per curve point in the BLOB (either layout).
pub const CURVE_POINT_BYTES: usize = 48;

/// First byte of a curve BLOB in the grid layout (see the module docs).
pub const GRID_CURVE_TAG: u8 = 0xC7;

/// The two curve columns of `curve`: the grid layout when its τ are exactly `grid` and every
/// point has κ, else the general layout and its κ BLOB.
pub fn encode_curve_columns(curve: &[CurvePoint], grid: &[f64]) -> (Value, Value) {
    let on_grid = !curve.is_empty()
        && curve.len() == grid.len()
        && curve.iter().zip(grid).all(|(p, t)| p.tau.to_bits() == t.to_bits() && p.kappa.is_some());
    if !on_grid {
        return (
            Value::Blob(encode_curve(curve)),
            encode_curve_kappa(curve).map_or(Value::Null, Value::Blob),
        );
    }
    let mut out = Vec::with_capacity(1 + curve.len() * CURVE_POINT_BYTES);
    out.push(GRID_CURVE_TAG);
    for p in curve {
        let kappa = p.kappa.unwrap_or(f64::NAN);
        for x in [p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity, kappa] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    (Value::Blob(out), Value::Null)
}

/// Decode the two curve columns (see the module docs); `grid` is the study's τ grid.
pub fn decode_curve_columns(
    blob: &[u8],
    kappa: Option<&[u8]>,
    grid: &[f64],
) -> Result<Vec<CurvePoint>, String> {
    if blob.len() % CURVE_POINT_BYTES == 1 && blob[0] == GRID_CURVE_TAG {
        let n = blob.len() / CURVE_POINT_BYTES;
        if n != grid.len() {
            return Err(format!(
                "curve BLOB holds {n} points on the study's τ grid, but the grid has {} points",
                grid.len()
            ));
        }
        if kappa.is_some() {
            return Err("curve BLOB in the grid layout (κ included) beside a curve_kappa BLOB".to_string());
        }
        return Ok(blob[1..]
            .chunks_exact(CURVE_POINT_BYTES)
            .zip(grid)
            .map(|(c, &tau)| {
                let f = |i: usize| f64_at(c, i);
                CurvePoint {
                    tau,
                    dkl_rev: f(0),
                    dkl_fwd: f(1),
                    entropy: f(2),
                    mean_energy: f(3),
                    heat_capacity: f(4),
                    kappa: Some(f(5)),
                }
            })
            .collect());
    }
    let mut curve = decode_curve(blob)?;
    if let Some(k) = kappa {
        decode_curve_kappa(k, &mut curve).map_err(|e| format!("curve_kappa: {e}"))?;
    }
    Ok(curve)
}

/// The `i`-th little-endian f64 of `chunk`.
fn f64_at(chunk: &[u8], i: usize) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
    f64::from_le_bytes(b)
}

/// Encode a curve in the general layout (see the module docs).
pub fn encode_curve(curve: &[CurvePoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(curve.len() * CURVE_POINT_BYTES);
    for p in curve {
        for x in [p.tau, p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decode a curve BLOB of the general layout; errors if its length is not a multiple of 48.
pub fn decode_curve(blob: &[u8]) -> Result<Vec<CurvePoint>, String> {
    if !blob.len().is_multiple_of(CURVE_POINT_BYTES) {
        return Err(format!("curve BLOB of {} bytes is not a multiple of {CURVE_POINT_BYTES}", blob.len()));
    }
    Ok(blob
        .chunks_exact(CURVE_POINT_BYTES)
        .map(|c| {
            let f = |i: usize| f64_at(c, i);
            CurvePoint {
                tau: f(0),
                dkl_rev: f(1),
                dkl_fwd: f(2),
                entropy: f(3),
                mean_energy: f(4),
                heat_capacity: f(5),
                kappa: None,
            }
        })
        .collect())
}

/// Encode the κ column of a curve (one little-endian f64 per point), or `None` when the
/// curve carries no κ (results computed before κ existed). A curve is all-κ or κ-free.
pub fn encode_curve_kappa(curve: &[CurvePoint]) -> Option<Vec<u8>> {
    let kappa: Option<Vec<f64>> = curve.iter().map(|p| p.kappa).collect();
    kappa.filter(|k| !k.is_empty()).map(|k| k.iter().flat_map(|x| x.to_le_bytes()).collect())
}

/// Put a `curve_kappa` BLOB into `curve`; errors unless it holds one f64 per point.
fn decode_curve_kappa(blob: &[u8], curve: &mut [CurvePoint]) -> Result<(), String> {
    if blob.len() != curve.len() * 8 {
        return Err(format!(
            "curve_kappa BLOB of {} bytes for a curve of {} points",
            blob.len(),
            curve.len()
        ));
    }
    for (p, c) in curve.iter_mut().zip(blob.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        p.kappa = Some(f64::from_le_bytes(b));
    }
    Ok(())
}

/// Longest text from a worker (an error message) the store keeps, in characters.
pub const MAX_ERROR_CHARS: usize = 2048;

/// Longest worker-supplied value quoted inside one of our own messages, in characters.
pub const MAX_QUOTED_CHARS: usize = 200;

/// Longest `fit_note` a result may carry; the notes `common` writes are one sentence.
pub const MAX_FIT_NOTE_CHARS: usize = 4096;

/// `s` cut to at most `max` characters (on a character boundary), marked with `…` if cut:
/// strings from workers reach the database and logs, and a worker controls their length.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &s[..at], s.len()),
    }
}

/// Refuse a result the store must not commit; the error names the field and value.
///
/// - NaN anywhere (docs/spec.md §8: no result contains NaN).
/// - ±∞ in a temperature: τ*, the closed forms, τ at the heat-capacity peak, τ_var and the
///   curve's τ all lie inside the finite search bounds (docs/spec.md §5: a minimum at a bound is
///   reported as at-bound, never as a silent number). Divergences, entropies, energies and
///   fit diagnostics may be infinite, and SQLite keeps ±∞ exactly.
/// - A `fit_note` longer than [`MAX_FIT_NOTE_CHARS`].
pub fn check_result(r: &CellResult) -> Result<(), String> {
    let key = clip(&r.key.0, MAX_QUOTED_CHARS);
    if let Some(what) = taustar_common::result_fields::invalid_value(r) {
        return Err(format!("result of {key} has {what}"));
    }
    if let Some(note) = &r.fit.fit_note {
        let n = note.chars().count();
        if n > MAX_FIT_NOTE_CHARS {
            return Err(format!(
                "result of {key} has a fit_note of {n} characters (at most {MAX_FIT_NOTE_CHARS})"
            ));
        }
    }
    Ok(())
}

/// The parameters of [`insert_result`] for `cell_id`: the id, then [`column_names`] in order.
/// `grid` is the study's τ grid (the curve's layout depends on it).
pub fn encode(cell_id: i64, r: &CellResult, grid: &[f64]) -> Vec<Value> {
    let mut v = Vec::with_capacity(RESULT_FIELDS.len() + 4);
    v.push(Value::Integer(cell_id));
    for f in &RESULT_FIELDS {
        v.push(match (f.get)(r) {
            FieldValue::Float(x) => x.map_or(Value::Null, Value::Real),
            // Counts in a study never approach 2^63; saturate rather than wrap.
            FieldValue::Int(x) => {
                x.map_or(Value::Null, |i| Value::Integer(i64::try_from(i).unwrap_or(i64::MAX)))
            }
            FieldValue::Bool(x) => x.map_or(Value::Null, |b| Value::Integer(i64::from(b))),
            FieldValue::Str(x) => x.map_or(Value::Null, |s| Value::Text(s.to_string())),
        });
    }
    let (curve, kappa) = encode_curve_columns(&r.curve, grid);
    v.push(curve);
    v.push(kappa);
    v.push(if r.mcmc.curve_se.is_empty() {
        Value::Null
    } else {
        Value::Blob(encode_curve_se(&r.mcmc.curve_se))
    });
    v
}

/// Encode a curve's standard errors: for each point 6 little-endian f64 — those of D_rev,
/// D_fwd, S, ⟨E⟩, C, κ — so 48 bytes a point, in the order of the curve's points.
pub fn encode_curve_se(se: &[CurveSe]) -> Vec<u8> {
    let mut out = Vec::with_capacity(se.len() * CURVE_POINT_BYTES);
    for p in se {
        for x in [p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity, p.kappa] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decode a `curve_se` BLOB for a curve of `points` points.
pub fn decode_curve_se(blob: &[u8], points: usize) -> Result<Vec<CurveSe>, String> {
    if blob.len() != points * CURVE_POINT_BYTES {
        return Err(format!(
            "BLOB of {} bytes for a curve of {points} points ({CURVE_POINT_BYTES} bytes each)",
            blob.len()
        ));
    }
    Ok(blob
        .chunks_exact(CURVE_POINT_BYTES)
        .map(|c| {
            let f = |i: usize| f64_at(c, i);
            CurveSe {
                dkl_rev: f(0),
                dkl_fwd: f(1),
                entropy: f(2),
                mean_energy: f(3),
                heat_capacity: f(4),
                kappa: f(5),
            }
        })
        .collect())
}

/// Decode the [`result_columns`] starting at column `at` of `row`, for cell `key`; `grid` is
/// the study's τ grid. The outer `Result` is SQLite's; the inner one a decoding error
/// naming the field.
pub fn decode_row(
    row: &Row<'_>,
    at: usize,
    key: &str,
    grid: &[f64],
) -> rusqlite::Result<Result<CellResult, String>> {
    let n = RESULT_FIELDS.len();
    let blob: Vec<u8> = row.get(at + n)?;
    let kappa: Option<Vec<u8>> = row.get(at + n + 1)?;
    let se: Option<Vec<u8>> = row.get(at + n + 2)?;
    let curve = match decode_curve_columns(&blob, kappa.as_deref(), grid) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("results.curve of {key}: {e}"))),
    };
    let curve_se = match se.map(|b| decode_curve_se(&b, curve.len())).transpose() {
        Ok(se) => se.unwrap_or_default(),
        Err(e) => return Ok(Err(format!("results.curve_se of {key}: {e}"))),
    };
    let mut r = CellResult {
        key: CellKey(key.to_string()),
        samples: 0,
        tau: TauSummary::default(),
        two_level: TwoLevelFitReport::default(),
        fit: FitReport::default(),
        mcmc: McmcReport { curve_se, ..McmcReport::default() },
        curve,
    };
    for (i, f) in RESULT_FIELDS.iter().enumerate() {
        let stored = match f.kind {
            FieldKind::Float => StoredValue::Float(row.get(at + i)?),
            FieldKind::Int | FieldKind::Bool => StoredValue::Int(row.get(at + i)?),
            FieldKind::Str => StoredValue::Str(row.get(at + i)?),
        };
        if let Err(e) = (f.set)(&mut r, stored) {
            return Ok(Err(format!("results.{} of {key} {e}", f.name)));
        }
    }
    Ok(Ok(r))
}
