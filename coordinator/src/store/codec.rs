//! Result rows ↔ [`CellResult`].
//!
//! Scalars live in typed columns (so `sqlite3` can query them); the τ curve is one BLOB:
//! for each curve point, 6 little-endian f64 — τ, D_rev, D_fwd, S, ⟨E⟩, C — 48 bytes per
//! point, bit-exact. κ(τ) (schema 3) is a second BLOB, `curve_kappa`, of one f64 per point,
//! NULL in rows written before κ existed: the old curve BLOB stays readable as it was. SQLite's REAL columns keep every finite or infinite f64 exactly except
//! the sign of -0.0; NaN is refused before it reaches the store ([`check_result`]).

use common::cell::CurvePoint;
use common::{CellKey, CellResult, FitMode, FitStop, IsingFitReport, TauSummary, TwoLevelFitReport};
use rusqlite::types::Value;
use rusqlite::Row;

/// The result columns in the order [`decode_row`] reads them (prefix each with `r.`).
pub const RESULT_COLUMNS: &str = "r.samples, r.tau_rev, r.tau_fwd, r.tau_rev_at_bound, r.tau_fwd_at_bound, \
     r.dkl_rev_at_1, r.dkl_rev_opt, r.dkl_fwd_at_1, r.dkl_fwd_opt, r.tau_heat_peak, r.tau_var, \
     r.low_states_hat, r.gap_hat, r.overlap, r.tau_rev_closed, r.tau_fwd_closed, r.fit_mode, \
     r.fit_iterations, r.grad_max_norm, r.nll, r.coupling_max_abs, r.fit_diverged, r.fit_note, r.curve, \
     r.kappa_at_1, r.heat_capacity_at_1, r.fit_stop, r.curve_kappa";

/// [`RESULT_COLUMNS`] for a store of schema 1 or 2 opened read-only (not yet migrated): the
/// columns schema 3 added read as NULL.
const RESULT_COLUMNS_V2: &str = "r.samples, r.tau_rev, r.tau_fwd, r.tau_rev_at_bound, r.tau_fwd_at_bound, \
     r.dkl_rev_at_1, r.dkl_rev_opt, r.dkl_fwd_at_1, r.dkl_fwd_opt, r.tau_heat_peak, r.tau_var, \
     r.low_states_hat, r.gap_hat, r.overlap, r.tau_rev_closed, r.tau_fwd_closed, r.fit_mode, \
     r.fit_iterations, r.grad_max_norm, r.nll, r.coupling_max_abs, r.fit_diverged, r.fit_note, r.curve, \
     NULL, NULL, NULL, NULL";

/// The result columns to select from a store of schema `version`.
pub fn result_columns(version: u32) -> &'static str {
    if version >= 3 {
        RESULT_COLUMNS
    } else {
        RESULT_COLUMNS_V2
    }
}

/// The SQL that inserts one result (parameters from [`encode`]).
pub const INSERT_RESULT: &str = "INSERT OR IGNORE INTO results(cell_id, samples, tau_rev, tau_fwd, \
     tau_rev_at_bound, tau_fwd_at_bound, dkl_rev_at_1, dkl_rev_opt, dkl_fwd_at_1, dkl_fwd_opt, tau_heat_peak, \
     tau_var, low_states_hat, gap_hat, overlap, tau_rev_closed, tau_fwd_closed, fit_mode, fit_iterations, \
     grad_max_norm, nll, coupling_max_abs, fit_diverged, fit_note, curve, kappa_at_1, heat_capacity_at_1, \
     fit_stop, curve_kappa) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
     ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)";

/// Bytes per curve point in the BLOB.
pub const CURVE_POINT_BYTES: usize = 48;

/// Encode a curve as the BLOB format described in the module docs.
pub fn encode_curve(curve: &[CurvePoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(curve.len() * CURVE_POINT_BYTES);
    for p in curve {
        for x in [p.tau, p.dkl_rev, p.dkl_fwd, p.entropy, p.mean_energy, p.heat_capacity] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decode a curve BLOB; errors if its length is not a multiple of 48 bytes.
pub fn decode_curve(blob: &[u8]) -> Result<Vec<CurvePoint>, String> {
    if !blob.len().is_multiple_of(CURVE_POINT_BYTES) {
        return Err(format!("curve BLOB of {} bytes is not a multiple of {CURVE_POINT_BYTES}", blob.len()));
    }
    Ok(blob
        .chunks_exact(CURVE_POINT_BYTES)
        .map(|c| {
            let f = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&c[i * 8..i * 8 + 8]);
                f64::from_le_bytes(b)
            };
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
    let temperatures = [
        ("tau_rev", Some(r.tau.tau_rev)),
        ("tau_fwd", Some(r.tau.tau_fwd)),
        ("tau_heat_peak", r.tau.tau_heat_peak),
        ("tau_var", r.tau.tau_var),
        ("tau_rev_closed", r.two_level.tau_rev_closed),
        ("tau_fwd_closed", r.two_level.tau_fwd_closed),
    ];
    for (name, v) in temperatures {
        if let Some(v) = v.filter(|v| !v.is_finite()) {
            return Err(format!("result of {key} has {name} = {v} (a temperature must be finite)"));
        }
    }
    let others = [
        ("dkl_rev_at_1", Some(r.tau.dkl_rev_at_1)),
        ("dkl_rev_opt", Some(r.tau.dkl_rev_opt)),
        ("dkl_fwd_at_1", Some(r.tau.dkl_fwd_at_1)),
        ("dkl_fwd_opt", Some(r.tau.dkl_fwd_opt)),
        ("gap_hat", r.two_level.gap_hat),
        ("grad_max_norm", r.ising.grad_max_norm),
        ("nll", r.ising.nll),
        ("coupling_max_abs", r.ising.coupling_max_abs),
        ("kappa_at_1", r.tau.kappa_at_1),
        ("heat_capacity_at_1", r.tau.heat_capacity_at_1),
    ];
    for (name, v) in others {
        if v.is_some_and(f64::is_nan) {
            return Err(format!("result of {key} has {name} = NaN"));
        }
    }
    for (i, p) in r.curve.iter().enumerate() {
        if !p.tau.is_finite() {
            return Err(format!(
                "result of {key} has curve[{i}].tau = {} (a temperature must be finite)",
                p.tau
            ));
        }
        let vals = [
            ("dkl_rev", p.dkl_rev),
            ("dkl_fwd", p.dkl_fwd),
            ("entropy", p.entropy),
            ("mean_energy", p.mean_energy),
            ("heat_capacity", p.heat_capacity),
            ("kappa", p.kappa.unwrap_or(0.0)),
        ];
        if let Some((name, _)) = vals.iter().find(|(_, v)| v.is_nan()) {
            return Err(format!("result of {key} has {name} = NaN in curve point {i} (tau = {})", p.tau));
        }
    }
    if let Some(note) = &r.ising.fit_note {
        let n = note.chars().count();
        if n > MAX_FIT_NOTE_CHARS {
            return Err(format!(
                "result of {key} has a fit_note of {n} characters (at most {MAX_FIT_NOTE_CHARS})"
            ));
        }
    }
    Ok(())
}

fn opt_f(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::Real)
}

fn opt_i(x: Option<u32>) -> Value {
    x.map_or(Value::Null, |v| Value::Integer(i64::from(v)))
}

/// The 29 parameters of [`INSERT_RESULT`] for `cell_id`.
pub fn encode(cell_id: i64, r: &CellResult) -> [Value; 29] {
    [
        Value::Integer(cell_id),
        Value::Integer(i64::try_from(r.samples).unwrap_or(i64::MAX)),
        Value::Real(r.tau.tau_rev),
        Value::Real(r.tau.tau_fwd),
        Value::Integer(i64::from(r.tau.tau_rev_at_bound)),
        Value::Integer(i64::from(r.tau.tau_fwd_at_bound)),
        Value::Real(r.tau.dkl_rev_at_1),
        Value::Real(r.tau.dkl_rev_opt),
        Value::Real(r.tau.dkl_fwd_at_1),
        Value::Real(r.tau.dkl_fwd_opt),
        opt_f(r.tau.tau_heat_peak),
        opt_f(r.tau.tau_var),
        opt_i(r.two_level.low_states_hat),
        opt_f(r.two_level.gap_hat),
        opt_i(r.two_level.overlap),
        opt_f(r.two_level.tau_rev_closed),
        opt_f(r.two_level.tau_fwd_closed),
        r.ising.fit_mode.map_or(Value::Null, |m| Value::Text(m.as_str().to_string())),
        opt_i(r.ising.fit_iterations),
        opt_f(r.ising.grad_max_norm),
        opt_f(r.ising.nll),
        opt_f(r.ising.coupling_max_abs),
        r.ising.fit_diverged.map_or(Value::Null, |b| Value::Integer(i64::from(b))),
        r.ising.fit_note.clone().map_or(Value::Null, Value::Text),
        Value::Blob(encode_curve(&r.curve)),
        opt_f(r.tau.kappa_at_1),
        opt_f(r.tau.heat_capacity_at_1),
        r.ising.fit_stop.map_or(Value::Null, |s| Value::Text(s.as_str().to_string())),
        encode_curve_kappa(&r.curve).map_or(Value::Null, Value::Blob),
    ]
}

/// Decode the [`RESULT_COLUMNS`] starting at column `at` of `row`, for cell `key`.
/// The outer `Result` is SQLite's; the inner one a decoding error naming the field.
pub fn decode_row(row: &Row<'_>, at: usize, key: &str) -> rusqlite::Result<Result<CellResult, String>> {
    let fit_mode: Option<String> = row.get(at + 16)?;
    let fit_mode = match fit_mode.as_deref().map(str::parse::<FitMode>).transpose() {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("results.fit_mode of {key}: {e}"))),
    };
    let blob: Vec<u8> = row.get(at + 23)?;
    let mut curve = match decode_curve(&blob) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("results.curve of {key}: {e}"))),
    };
    let kappa: Option<Vec<u8>> = row.get(at + 27)?;
    if let Some(Err(e)) = kappa.map(|k| decode_curve_kappa(&k, &mut curve)) {
        return Ok(Err(format!("results.curve_kappa of {key}: {e}")));
    }
    let fit_stop: Option<String> = row.get(at + 26)?;
    let fit_stop = match fit_stop.as_deref().map(str::parse::<FitStop>).transpose() {
        Ok(s) => s,
        Err(e) => return Ok(Err(format!("results.fit_stop of {key}: {e}"))),
    };
    let samples: i64 = row.get(at)?;
    Ok(Ok(CellResult {
        key: CellKey(key.to_string()),
        samples: samples as u64,
        tau: TauSummary {
            tau_rev: row.get(at + 1)?,
            tau_fwd: row.get(at + 2)?,
            tau_rev_at_bound: row.get(at + 3)?,
            tau_fwd_at_bound: row.get(at + 4)?,
            dkl_rev_at_1: row.get(at + 5)?,
            dkl_rev_opt: row.get(at + 6)?,
            dkl_fwd_at_1: row.get(at + 7)?,
            dkl_fwd_opt: row.get(at + 8)?,
            tau_heat_peak: row.get(at + 9)?,
            tau_var: row.get(at + 10)?,
            kappa_at_1: row.get(at + 24)?,
            heat_capacity_at_1: row.get(at + 25)?,
        },
        two_level: TwoLevelFitReport {
            low_states_hat: row.get(at + 11)?,
            gap_hat: row.get(at + 12)?,
            overlap: row.get(at + 13)?,
            tau_rev_closed: row.get(at + 14)?,
            tau_fwd_closed: row.get(at + 15)?,
        },
        ising: IsingFitReport {
            fit_mode,
            fit_iterations: row.get(at + 17)?,
            fit_stop,
            grad_max_norm: row.get(at + 18)?,
            nll: row.get(at + 19)?,
            coupling_max_abs: row.get(at + 20)?,
            fit_diverged: row.get(at + 21)?,
            fit_note: row.get(at + 22)?,
        },
        curve,
    }))
}
