//! The scalar fields of a [`CellResult`], listed once.
//!
//! The store's result columns (`coordinator/src/store/codec.rs`), the `cells` export table
//! (`aggregate::table`) and the checks that keep NaN out of the store all walk
//! [`RESULT_FIELDS`], so a new field is added here and in its struct, and nowhere else in
//! those three places. The wire message (`proto/taustar.proto`, `proto/src/convert.rs`) is
//! written out by hand: protobuf field numbers are a contract of their own.

use crate::cell::{CellResult, FitMode, FitStop, LadderDiagnostics};

/// How a field is stored and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An `f64`.
    Float,
    /// A non-negative integer.
    Int,
    /// A flag.
    Bool,
    /// Text (names of enum values, notes).
    Str,
}

/// A field's value in a result (`None`: the field does not apply, or was not recorded).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// [`FieldKind::Float`].
    Float(Option<f64>),
    /// [`FieldKind::Int`].
    Int(Option<u64>),
    /// [`FieldKind::Bool`].
    Bool(Option<bool>),
    /// [`FieldKind::Str`].
    Str(Option<&'a str>),
}

/// A value read back from storage, to be put into a result by [`ResultField::set`].
#[derive(Debug, Clone, PartialEq)]
pub enum StoredValue {
    /// A REAL (or NULL).
    Float(Option<f64>),
    /// An INTEGER (or NULL).
    Int(Option<i64>),
    /// TEXT (or NULL).
    Str(Option<String>),
}

/// One scalar field of a [`CellResult`].
pub struct ResultField {
    /// The name: JSON key, store column and export column alike.
    pub name: &'static str,
    /// How it is stored.
    pub kind: FieldKind,
    /// A temperature: when present it must be finite (every τ lies inside the finite search
    /// bounds; a minimum at a bound is flagged, never reported as ∞).
    pub temperature: bool,
    /// Read it from a result.
    pub get: for<'a> fn(&'a CellResult) -> FieldValue<'a>,
    /// Write it into a result; errors name what is wrong with the stored value.
    pub set: fn(&mut CellResult, StoredValue) -> Result<(), String>,
}

fn float(v: StoredValue) -> Result<Option<f64>, String> {
    match v {
        StoredValue::Float(x) => Ok(x),
        // SQLite hands back an integral REAL written as an INTEGER affinity value.
        StoredValue::Int(x) => Ok(x.map(|i| i as f64)),
        StoredValue::Str(_) => Err("is text, expected a number".into()),
    }
}

fn required<T>(v: Option<T>) -> Result<T, String> {
    v.ok_or_else(|| "is NULL".to_string())
}

fn int<T: TryFrom<i64>>(v: StoredValue) -> Result<Option<T>, String> {
    match v {
        StoredValue::Int(x) => {
            x.map(|i| T::try_from(i).map_err(|_| format!("{i} is out of range"))).transpose()
        }
        _ => Err("is not an integer".into()),
    }
}

fn boolean(v: StoredValue) -> Result<Option<bool>, String> {
    Ok(int::<i64>(v)?.map(|i| i != 0))
}

fn text(v: StoredValue) -> Result<Option<String>, String> {
    match v {
        StoredValue::Str(s) => Ok(s),
        _ => Err("is not text".into()),
    }
}

fn parsed<T: std::str::FromStr>(v: StoredValue) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    text(v)?.map(|s| s.parse::<T>().map_err(|e| e.to_string())).transpose()
}

/// A field of [`FieldKind::Float`] that every result has.
macro_rules! float_field {
    ($name:literal, $temperature:expr, $($path:ident).+) => {
        ResultField {
            name: $name,
            kind: FieldKind::Float,
            temperature: $temperature,
            get: |r| FieldValue::Float(Some(r.$($path).+)),
            set: |r, v| {
                r.$($path).+ = required(float(v)?)?;
                Ok(())
            },
        }
    };
}

/// A field of [`FieldKind::Float`] that may be absent.
macro_rules! opt_float_field {
    ($name:literal, $temperature:expr, $($path:ident).+) => {
        ResultField {
            name: $name,
            kind: FieldKind::Float,
            temperature: $temperature,
            get: |r| FieldValue::Float(r.$($path).+),
            set: |r, v| {
                r.$($path).+ = float(v)?;
                Ok(())
            },
        }
    };
}

/// A flag that every result has.
macro_rules! bool_field {
    ($name:literal, $($path:ident).+) => {
        ResultField {
            name: $name,
            kind: FieldKind::Bool,
            temperature: false,
            get: |r| FieldValue::Bool(Some(r.$($path).+)),
            set: |r, v| {
                r.$($path).+ = required(boolean(v)?)?;
                Ok(())
            },
        }
    };
}

/// A `u32` that may be absent.
macro_rules! opt_u32_field {
    ($name:literal, $($path:ident).+) => {
        ResultField {
            name: $name,
            kind: FieldKind::Int,
            temperature: false,
            get: |r| FieldValue::Int(r.$($path).+.map(u64::from)),
            set: |r, v| {
                r.$($path).+ = int::<u32>(v)?;
                Ok(())
            },
        }
    };
}

/// The Monte Carlo diagnostics of a result, created blank when a stored value is put into a
/// result that had none (exact cells store every one of them as NULL, and so stay `None`).
fn ladder(r: &mut CellResult) -> &mut LadderDiagnostics {
    r.mcmc.ladder.get_or_insert_with(LadderDiagnostics::default)
}

/// A field of the sampler's diagnostics ([`LadderDiagnostics`]): absent for exact cells.
/// `float` and `int` fields are present whenever the diagnostics are; `opt_float` fields
/// (an `Option` inside them) may be absent either way.
macro_rules! ladder_field {
    ($name:literal, float, $temperature:expr, $field:ident) => {
        ResultField {
            name: $name,
            kind: FieldKind::Float,
            temperature: $temperature,
            get: |r| FieldValue::Float(r.mcmc.ladder.as_ref().map(|l| l.$field)),
            set: |r, v| {
                if let Some(x) = float(v)? {
                    ladder(r).$field = x;
                }
                Ok(())
            },
        }
    };
    ($name:literal, opt_float, $temperature:expr, $field:ident) => {
        ResultField {
            name: $name,
            kind: FieldKind::Float,
            temperature: $temperature,
            get: |r| FieldValue::Float(r.mcmc.ladder.as_ref().and_then(|l| l.$field)),
            set: |r, v| {
                if let Some(x) = float(v)? {
                    ladder(r).$field = Some(x);
                }
                Ok(())
            },
        }
    };
    ($name:literal, int $int:ty, $field:ident) => {
        ResultField {
            name: $name,
            kind: FieldKind::Int,
            temperature: false,
            get: |r| FieldValue::Int(r.mcmc.ladder.as_ref().map(|l| u64::from(l.$field))),
            set: |r, v| {
                if let Some(x) = int::<$int>(v)? {
                    ladder(r).$field = x;
                }
                Ok(())
            },
        }
    };
    ($name:literal, opt_int $int:ty, $field:ident) => {
        ResultField {
            name: $name,
            kind: FieldKind::Int,
            temperature: false,
            get: |r| FieldValue::Int(r.mcmc.ladder.as_ref().and_then(|l| l.$field.map(u64::from))),
            set: |r, v| {
                if let Some(x) = int::<$int>(v)? {
                    ladder(r).$field = Some(x);
                }
                Ok(())
            },
        }
    };
}

/// Every scalar field of a [`CellResult`] (the key and the curve are not scalars), in the
/// order of the `cells` export table and of the store's result columns.
pub const RESULT_FIELDS: [ResultField; 53] = [
    ResultField {
        name: "samples",
        kind: FieldKind::Int,
        temperature: false,
        get: |r| FieldValue::Int(Some(r.samples)),
        set: |r, v| {
            r.samples = required(int::<u64>(v)?)?;
            Ok(())
        },
    },
    float_field!("tau_rev", true, tau.tau_rev),
    float_field!("tau_fwd", true, tau.tau_fwd),
    bool_field!("tau_rev_at_bound", tau.tau_rev_at_bound),
    bool_field!("tau_fwd_at_bound", tau.tau_fwd_at_bound),
    float_field!("dkl_rev_at_1", false, tau.dkl_rev_at_1),
    float_field!("dkl_rev_opt", false, tau.dkl_rev_opt),
    float_field!("dkl_fwd_at_1", false, tau.dkl_fwd_at_1),
    float_field!("dkl_fwd_opt", false, tau.dkl_fwd_opt),
    opt_float_field!("tau_heat_peak", true, tau.tau_heat_peak),
    opt_float_field!("tau_var", true, tau.tau_var),
    opt_float_field!("kappa_at_1", false, tau.kappa_at_1),
    opt_float_field!("heat_capacity_at_1", false, tau.heat_capacity_at_1),
    opt_u32_field!("low_states_hat", two_level.low_states_hat),
    opt_float_field!("gap_hat", false, two_level.gap_hat),
    opt_u32_field!("overlap", two_level.overlap),
    opt_float_field!("tau_rev_closed", true, two_level.tau_rev_closed),
    opt_float_field!("tau_fwd_closed", true, two_level.tau_fwd_closed),
    ResultField {
        name: "fit_mode",
        kind: FieldKind::Str,
        temperature: false,
        get: |r| FieldValue::Str(r.fit.fit_mode.map(FitMode::as_str)),
        set: |r, v| {
            r.fit.fit_mode = parsed::<FitMode>(v)?;
            Ok(())
        },
    },
    opt_u32_field!("fit_iterations", fit.fit_iterations),
    ResultField {
        name: "fit_stop",
        kind: FieldKind::Str,
        temperature: false,
        get: |r| FieldValue::Str(r.fit.fit_stop.map(FitStop::as_str)),
        set: |r, v| {
            r.fit.fit_stop = parsed::<FitStop>(v)?;
            Ok(())
        },
    },
    opt_float_field!("grad_max_norm", false, fit.grad_max_norm),
    opt_float_field!("nll", false, fit.nll),
    opt_float_field!("coupling_max_abs", false, fit.coupling_max_abs),
    ResultField {
        name: "fit_diverged",
        kind: FieldKind::Bool,
        temperature: false,
        get: |r| FieldValue::Bool(r.fit.fit_diverged),
        set: |r, v| {
            r.fit.fit_diverged = boolean(v)?;
            Ok(())
        },
    },
    ResultField {
        name: "fit_note",
        kind: FieldKind::Str,
        temperature: false,
        get: |r| FieldValue::Str(r.fit.fit_note.as_deref()),
        set: |r, v| {
            r.fit.fit_note = text(v)?;
            Ok(())
        },
    },
    // Schema 5 from here on: Monte Carlo cells first.
    opt_float_field!("tau_rev_se", false, mcmc.tau_rev_se),
    opt_float_field!("tau_fwd_se", false, mcmc.tau_fwd_se),
    opt_float_field!("dkl_rev_at_1_se", false, mcmc.dkl_rev_at_1_se),
    opt_float_field!("dkl_rev_opt_se", false, mcmc.dkl_rev_opt_se),
    opt_float_field!("dkl_fwd_at_1_se", false, mcmc.dkl_fwd_at_1_se),
    opt_float_field!("dkl_fwd_opt_se", false, mcmc.dkl_fwd_opt_se),
    opt_float_field!("kappa_at_1_se", false, mcmc.kappa_at_1_se),
    opt_float_field!("heat_capacity_at_1_se", false, mcmc.heat_capacity_at_1_se),
    ResultField {
        name: "mcmc_ok",
        kind: FieldKind::Bool,
        temperature: false,
        get: |r| FieldValue::Bool(r.mcmc.ladder.as_ref().map(|l| l.ok)),
        set: |r, v| {
            if let Some(ok) = boolean(v)? {
                ladder(r).ok = ok;
            }
            Ok(())
        },
    },
    ResultField {
        name: "mcmc_note",
        kind: FieldKind::Str,
        temperature: false,
        get: |r| FieldValue::Str(r.mcmc.ladder.as_ref().and_then(|l| l.note.as_deref())),
        set: |r, v| {
            if let Some(note) = text(v)? {
                ladder(r).note = Some(note);
            }
            Ok(())
        },
    },
    ladder_field!("mcmc_steps", int u64, steps),
    ladder_field!("ladder_rungs", int u32, rungs),
    ladder_field!("min_swap_acceptance", opt_float, false, min_swap_acceptance),
    ladder_field!("round_trips", int u64, round_trips),
    ladder_field!("r_hat", float, false, r_hat),
    ladder_field!("tau_int", float, false, tau_int),
    ladder_field!("ess", float, false, ess),
    opt_float_field!("log_z_ti_gap", false, mcmc.log_z_ti_gap),
    opt_float_field!("log_z_ti_gap_se", false, mcmc.log_z_ti_gap_se),
    // Lattices past enumeration (schema 5 too).
    opt_float_field!("data_tau_int", false, fit.data_tau_int),
    opt_u32_field!("data_thinning", fit.data_thinning),
    opt_float_field!("fit_pearson", false, fit.fit_pearson),
    // Schema 6: what a cell whose cold rungs did not equilibrate can still say.
    ladder_field!("equilibrated_tau_lo", opt_float, true, equilibrated_tau_lo),
    opt_float_field!("tau_fwd_equilibrated", true, mcmc.tau_fwd_equilibrated),
    opt_float_field!("tau_fwd_equilibrated_se", false, mcmc.tau_fwd_equilibrated_se),
    // Schema 7: the multicanonical sampler's own diagnostics (tempering cells keep them NULL).
    ladder_field!("walker_round_trips_min", opt_int u64, walker_round_trips_min),
    ladder_field!("flatness", opt_float, false, flatness),
];

/// The fields that schema 5 of the store added, by name: the Monte Carlo estimate's and
/// those of cells past enumeration (how the data were drawn, `bml`'s Pearson correlation).
pub fn added_in_schema_5(name: &str) -> bool {
    RESULT_FIELDS
        .iter()
        .position(|f| f.name == name)
        .is_some_and(|i| (FIRST_SCHEMA_5_FIELD..FIRST_SCHEMA_6_FIELD).contains(&i))
}

/// The fields that schema 6 of the store added, by name: how far down the ladder the
/// chains equilibrated, and τ*_fwd from that part when the whole did not.
pub fn added_in_schema_6(name: &str) -> bool {
    RESULT_FIELDS
        .iter()
        .position(|f| f.name == name)
        .is_some_and(|i| (FIRST_SCHEMA_6_FIELD..FIRST_SCHEMA_7_FIELD).contains(&i))
}

/// The fields that schema 7 of the store added, by name: the multicanonical sampler's round
/// trips per walker and histogram flatness.
pub fn added_in_schema_7(name: &str) -> bool {
    RESULT_FIELDS.iter().position(|f| f.name == name).is_some_and(|i| i >= FIRST_SCHEMA_7_FIELD)
}

/// Index in [`RESULT_FIELDS`] of the first field schema 5 added; every later one is too.
pub const FIRST_SCHEMA_5_FIELD: usize = 26;

/// Index in [`RESULT_FIELDS`] of the first field schema 6 added; every later one is too.
pub const FIRST_SCHEMA_6_FIELD: usize = FIRST_SCHEMA_5_FIELD + 22;

/// Index in [`RESULT_FIELDS`] of the first field schema 7 added; every later one is too.
pub const FIRST_SCHEMA_7_FIELD: usize = FIRST_SCHEMA_6_FIELD + 3;

/// The first scalar field in which `a` and `b` differ, with both values, or `None` when
/// every field of [`RESULT_FIELDS`] is bit-identical (the curve is not compared). Used to
/// check that a cell computed again reproduces the stored result.
pub fn first_difference(a: &CellResult, b: &CellResult) -> Option<(&'static str, String, String)> {
    let bits = |v: FieldValue<'_>| match v {
        FieldValue::Float(x) => format!("{:?}", x.map(f64::to_bits)),
        other => format!("{other:?}"),
    };
    RESULT_FIELDS.iter().find_map(|f| {
        let (x, y) = ((f.get)(a), (f.get)(b));
        (bits(x.clone()) != bits(y.clone())).then(|| (f.name, format!("{x:?}"), format!("{y:?}")))
    })
}

/// Why `r` must not be stored, naming the field and value: NaN in any float (docs/spec.md
/// §8: "no NaN anywhere", the curve included) or an infinite temperature.
pub fn invalid_value(r: &CellResult) -> Option<String> {
    for f in &RESULT_FIELDS {
        if let FieldValue::Float(Some(v)) = (f.get)(r) {
            if v.is_nan() {
                return Some(format!("{} = NaN", f.name));
            }
            if f.temperature && !v.is_finite() {
                return Some(format!("{} = {v} (a temperature must be finite)", f.name));
            }
        }
    }
    for (i, p) in r.curve.iter().enumerate() {
        if !p.tau.is_finite() {
            return Some(format!("curve[{i}].tau = {} (a temperature must be finite)", p.tau));
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
            return Some(format!("{name} = NaN in curve point {i} (tau = {})", p.tau));
        }
    }
    let se = &r.mcmc.curve_se;
    if !se.is_empty() && se.len() != r.curve.len() {
        return Some(format!(
            "curve_se has {} points but the curve has {}: one standard error per point",
            se.len(),
            r.curve.len()
        ));
    }
    for (i, p) in se.iter().enumerate() {
        let vals = [
            ("dkl_rev_se", p.dkl_rev),
            ("dkl_fwd_se", p.dkl_fwd),
            ("entropy_se", p.entropy),
            ("mean_energy_se", p.mean_energy),
            ("heat_capacity_se", p.heat_capacity),
            ("kappa_se", p.kappa),
        ];
        if let Some((name, _)) = vals.iter().find(|(_, v)| v.is_nan()) {
            return Some(format!("{name} = NaN in curve point {i}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::summary::tests::{ising_point, result, two_level_point};

    #[test]
    fn names_are_unique_and_are_the_json_keys_of_a_result() {
        let mut names: Vec<&str> = RESULT_FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RESULT_FIELDS.len());
        // Every field of a fully populated result is one of its JSON keys, and every JSON key
        // but the key and the curve is a field: the list misses nothing.
        let mut r = result(&ising_point(2.3, 54), 1, 0.8, 1.2);
        r.two_level.gap_hat = Some(3.0);
        r.two_level.low_states_hat = Some(2);
        r.two_level.overlap = Some(1);
        r.two_level.tau_rev_closed = Some(0.8);
        r.two_level.tau_fwd_closed = Some(1.1);
        r.tau.tau_var = Some(1.0);
        r.tau.tau_heat_peak = Some(1.0);
        r.fit.fit_note = Some("n".into());
        r.fit.data_tau_int = Some(1.5);
        r.fit.data_thinning = Some(3);
        r.fit.fit_pearson = Some(0.96);
        r.mcmc = full_mcmc_report();
        let json = serde_json::to_value(&r).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "key" && *k != "curve" && *k != "curve_se")
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, names);
    }

    /// A Monte Carlo report with every field set (and distinct values).
    pub(crate) fn full_mcmc_report() -> crate::cell::McmcReport {
        crate::cell::McmcReport {
            tau_rev_se: Some(0.01),
            tau_fwd_se: Some(0.02),
            dkl_rev_at_1_se: Some(0.03),
            dkl_rev_opt_se: Some(0.04),
            dkl_fwd_at_1_se: Some(0.05),
            dkl_fwd_opt_se: Some(0.06),
            kappa_at_1_se: Some(0.07),
            heat_capacity_at_1_se: Some(0.08),
            ladder: Some(crate::cell::LadderDiagnostics {
                ok: false,
                note: Some("R̂ 1.2 over 2 ladders above 1.05".into()),
                steps: 8_000,
                rungs: 9,
                min_swap_acceptance: Some(0.31),
                round_trips: 17,
                r_hat: 1.2,
                tau_int: 3.5,
                ess: 1_100.0,
                equilibrated_tau_lo: Some(0.9),
                walker_round_trips_min: Some(4),
                flatness: Some(0.41),
            }),
            log_z_ti_gap: Some(-0.002),
            log_z_ti_gap_se: Some(0.004),
            tau_fwd_equilibrated: Some(1.3),
            tau_fwd_equilibrated_se: Some(0.011),
            curve_se: Vec::new(),
        }
    }

    /// The schema boundaries name the fields the store's migrations add.
    #[test]
    fn the_schema_boundaries_fall_on_the_first_field_of_each_version() {
        assert_eq!(RESULT_FIELDS[FIRST_SCHEMA_5_FIELD].name, "tau_rev_se");
        assert_eq!(RESULT_FIELDS[FIRST_SCHEMA_6_FIELD].name, "equilibrated_tau_lo");
        assert!(added_in_schema_5("fit_pearson") && !added_in_schema_5("equilibrated_tau_lo"));
        assert!(added_in_schema_6("tau_fwd_equilibrated_se") && !added_in_schema_6("fit_pearson"));
        assert!(!added_in_schema_5("tau_rev") && !added_in_schema_6("tau_rev"));
        assert_eq!(RESULT_FIELDS[FIRST_SCHEMA_7_FIELD].name, "walker_round_trips_min");
        assert!(
            added_in_schema_7("flatness") && !added_in_schema_6("flatness") && !added_in_schema_7("tau_rev")
        );
    }

    #[test]
    fn set_after_get_round_trips_every_field() {
        let mut mc = result(&ising_point(2.3, 54), 3, 0.7, 1.1);
        mc.mcmc = full_mcmc_report();
        for r in
            [result(&ising_point(2.3, 54), 1, 0.8, 1.2), result(&two_level_point(4.0, 100), 2, 1.3, 0.9), mc]
        {
            let mut back = r.clone();
            for f in &RESULT_FIELDS {
                let stored = match (f.get)(&r) {
                    FieldValue::Float(x) => StoredValue::Float(x),
                    FieldValue::Int(x) => StoredValue::Int(x.map(|v| v as i64)),
                    FieldValue::Bool(x) => StoredValue::Int(x.map(i64::from)),
                    FieldValue::Str(x) => StoredValue::Str(x.map(str::to_string)),
                };
                (f.set)(&mut back, stored).unwrap();
            }
            assert_eq!(back, r);
        }
    }

    #[test]
    fn nan_and_infinite_temperatures_are_named() {
        let mut r = result(&ising_point(2.3, 54), 1, 0.8, 1.2);
        assert_eq!(invalid_value(&r), None);
        r.tau.dkl_fwd_opt = f64::INFINITY;
        assert_eq!(invalid_value(&r), None, "a divergence may be infinite");
        r.tau.tau_var = Some(f64::INFINITY);
        assert_eq!(invalid_value(&r).unwrap(), "tau_var = inf (a temperature must be finite)");
        r.tau.tau_var = None;
        r.fit.nll = Some(f64::NAN);
        assert_eq!(invalid_value(&r).unwrap(), "nll = NaN");
        let mut bad = StoredValue::Str(Some("x".into()));
        assert!((RESULT_FIELDS[1].set)(&mut r, bad.clone()).is_err());
        bad = StoredValue::Float(None);
        assert_eq!((RESULT_FIELDS[1].set)(&mut r, bad).unwrap_err(), "is NULL");
    }
}
