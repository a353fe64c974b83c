//! Flat, typed tables of a study: `summary` (one row per grid point), `cells` (one row per
//! cell, scalar fields) and `curves` (one row per cell and τ). Pure: the writers for CSV,
//! Parquet and JSON live in the coordinator and only see [`Column`]s and [`Value`]s.
//!
//! The summary's first columns are the export contract ([`SUMMARY_CONTRACT_COLUMNS`], in that
//! order); more columns follow (`<quantity>_<statistic>` for every [`Quantity`] and statistic,
//! at-bound and divergence counts). A value that does not apply (the gap of an Ising point,
//! `mu` of a point given by M, a statistic of no values) is null — an empty CSV field.

use std::borrow::Cow;

use super::stats::Stats;
use super::summary::{Quantity, SummaryRow};
use crate::cell::{fmt_f64, CellResult, CurvePoint, CurveSe, DataSize, GridPoint, TruthColumns};
use crate::result_fields::{FieldKind, FieldValue, RESULT_FIELDS};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// UTF-8 text.
    Str,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// Boolean.
    Bool,
}

/// A named, typed column; every column is nullable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: Cow<'static, str>,
    /// Column type.
    pub kind: ColumnKind,
}

impl Column {
    fn new(name: impl Into<Cow<'static, str>>, kind: ColumnKind) -> Self {
        Column { name: name.into(), kind }
    }
}

/// One field of a row. `Null` is allowed in a column of any kind; otherwise the variant
/// matches the column's [`ColumnKind`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Not applicable / not available.
    Null,
    /// An integer.
    Int(i64),
    /// A float (finite in valid results; writers map non-finite floats to null where the
    /// format has no representation for them).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Str(Cow<'a, str>),
}

impl<'a> Value<'a> {
    fn float(x: Option<f64>) -> Self {
        x.map_or(Value::Null, Value::Float)
    }
    fn int(x: Option<u64>) -> Self {
        // Counts and sizes in a study never approach 2^63; saturate rather than wrap.
        x.map_or(Value::Null, |v| Value::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn bool(x: Option<bool>) -> Self {
        x.map_or(Value::Null, Value::Bool)
    }
    fn str(x: impl Into<Cow<'a, str>>) -> Self {
        Value::Str(x.into())
    }
}

/// The summary columns promised by the export contract, in order.
pub const SUMMARY_CONTRACT_COLUMNS: [&str; 29] = [
    "truth",
    "states",
    "low_states",
    "gap",
    "lattice",
    "temperature",
    "samples",
    "mu",
    "l2",
    "replicates",
    "tau_rev_mean",
    "tau_rev_median",
    "tau_rev_sem",
    "tau_rev_q25",
    "tau_rev_q75",
    "tau_fwd_mean",
    "tau_fwd_median",
    "tau_fwd_sem",
    "frac_tau_rev_below_1",
    "dkl_rev_at_1_mean",
    "dkl_rev_opt_mean",
    "gain_rev_mean",
    "dkl_fwd_at_1_mean",
    "dkl_fwd_opt_mean",
    "gain_fwd_mean",
    "tau_heat_peak_mean",
    "tau_var_mean",
    "low_states_hat_mean",
    "gap_hat_mean",
];

/// Names of the statistics in `<quantity>_<statistic>` columns, in column order.
pub const STATISTICS: [&str; 9] = ["count", "mean", "std", "sem", "median", "q25", "q75", "min", "max"];

fn stat_value(s: &Stats, stat: &str) -> Value<'static> {
    match stat {
        "count" => Value::int(Some(s.count)),
        "mean" => Value::float(s.mean),
        "std" => Value::float(s.std),
        "sem" => Value::float(s.sem),
        "median" => Value::float(s.median),
        "q25" => Value::float(s.q25),
        "q75" => Value::float(s.q75),
        "min" => Value::float(s.min),
        "max" => Value::float(s.max),
        other => unreachable!("unknown statistic {other}"),
    }
}

/// Where a summary column's value comes from.
#[derive(Debug, Clone, Copy)]
enum SummarySource {
    Truth,
    States,
    LowStates,
    Gap,
    Lattice,
    Temperature,
    Sites,
    CouplingStrength,
    Samples,
    Mu,
    Fit,
    L2,
    Point,
    Replicates,
    FracBelow1,
    TauRevAtBound,
    TauFwdAtBound,
    FitDiverged,
    FracKappaSignAgrees,
    McmcNotOk,
    Stat(Quantity, &'static str),
}

/// The summary table's layout: computed once, then used for the header and every row.
#[derive(Debug, Clone)]
pub struct SummaryLayout {
    columns: Vec<Column>,
    sources: Vec<SummarySource>,
}

impl Default for SummaryLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl SummaryLayout {
    /// The contract columns first, then every other statistic.
    pub fn new() -> Self {
        use ColumnKind::*;
        use SummarySource as S;
        let fixed: [(&'static str, ColumnKind, SummarySource); 20] = [
            ("truth", Str, S::Truth),
            ("states", Int, S::States),
            ("low_states", Int, S::LowStates),
            ("gap", Float, S::Gap),
            ("lattice", Str, S::Lattice),
            ("temperature", Float, S::Temperature),
            ("samples", Int, S::Samples),
            ("mu", Float, S::Mu),
            ("l2", Float, S::L2),
            ("replicates", Int, S::Replicates),
            ("frac_tau_rev_below_1", Float, S::FracBelow1),
            ("fit", Str, S::Fit),
            ("point", Str, S::Point),
            ("tau_rev_at_bound", Int, S::TauRevAtBound),
            ("tau_fwd_at_bound", Int, S::TauFwdAtBound),
            ("fit_diverged", Int, S::FitDiverged),
            ("frac_kappa_sign_agrees", Float, S::FracKappaSignAgrees),
            ("mcmc_not_ok", Int, S::McmcNotOk),
            ("sites", Int, S::Sites),
            ("coupling_strength", Float, S::CouplingStrength),
        ];
        let mut all: Vec<(Cow<'static, str>, ColumnKind, SummarySource)> =
            fixed.iter().map(|&(n, k, s)| (Cow::Borrowed(n), k, s)).collect();
        for q in Quantity::ALL {
            for stat in STATISTICS {
                let kind = if stat == "count" { Int } else { Float };
                all.push((Cow::Owned(format!("{}_{stat}", q.name())), kind, S::Stat(q, stat)));
            }
        }
        // Contract columns first, in contract order; the rest keep their order.
        let mut columns = Vec::with_capacity(all.len());
        let mut sources = Vec::with_capacity(all.len());
        for name in SUMMARY_CONTRACT_COLUMNS {
            let i = all.iter().position(|(n, _, _)| n == name).expect("contract column is defined");
            let (n, k, s) = all.remove(i);
            columns.push(Column::new(n, k));
            sources.push(s);
        }
        for (n, k, s) in all {
            columns.push(Column::new(n, k));
            sources.push(s);
        }
        SummaryLayout { columns, sources }
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The row of one grid point, aligned with [`Self::columns`].
    pub fn row<'a>(&self, s: &'a SummaryRow) -> Vec<Value<'a>> {
        let d = Descriptors::of(&s.point);
        self.sources
            .iter()
            .map(|src| match *src {
                SummarySource::Truth => Value::str(d.truth.kind),
                SummarySource::States => Value::int(d.truth.states),
                SummarySource::LowStates => Value::int(d.truth.low_states),
                SummarySource::Gap => Value::float(d.truth.gap),
                SummarySource::Lattice => d.truth.lattice.clone().map_or(Value::Null, Value::str),
                SummarySource::Temperature => Value::float(d.truth.temperature),
                SummarySource::Sites => Value::int(d.truth.sites),
                SummarySource::CouplingStrength => Value::float(d.truth.coupling_strength),
                SummarySource::Samples => Value::int(s.samples),
                SummarySource::Mu => Value::float(d.mu),
                SummarySource::Fit => Value::str(d.fit),
                SummarySource::L2 => Value::Float(d.l2),
                SummarySource::Point => Value::str(s.point_key.as_str()),
                SummarySource::Replicates => Value::int(Some(s.replicates)),
                SummarySource::FracBelow1 => Value::float(s.frac_tau_rev_below_1),
                SummarySource::TauRevAtBound => Value::int(Some(s.tau_rev_at_bound)),
                SummarySource::TauFwdAtBound => Value::int(Some(s.tau_fwd_at_bound)),
                SummarySource::FitDiverged => Value::int(s.fit_diverged),
                SummarySource::FracKappaSignAgrees => Value::float(s.frac_kappa_sign_agrees),
                SummarySource::McmcNotOk => Value::int(s.mcmc_not_ok),
                SummarySource::Stat(q, stat) => stat_value(s.stats(q), stat),
            })
            .collect()
    }
}

/// A grid point's swept values as table fields (null where the truth has no such field).
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptors {
    /// The truth's kind and swept values.
    pub truth: TruthColumns,
    /// M as specified (None for μ-specified points).
    pub samples: Option<u64>,
    /// μ as specified.
    pub mu: Option<f64>,
    /// Fit mode.
    pub fit: &'static str,
    /// L2 penalty λ.
    pub l2: f64,
}

impl Descriptors {
    /// The descriptors of a grid point.
    pub fn of(p: &GridPoint) -> Self {
        let mut d = Descriptors {
            truth: p.truth.columns(),
            samples: None,
            mu: None,
            fit: p.fit.mode.as_str(),
            l2: p.fit.l2,
        };
        match p.data {
            DataSize::Samples(m) => d.samples = Some(m),
            DataSize::Mu(mu) => d.mu = Some(mu),
        }
        d
    }

    /// `name=value` pairs of the fields that apply, in key order, values in the canonical
    /// float form (used to name plots and to match `--point` selections).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("truth", self.truth.kind.to_string())];
        if let Some(x) = self.truth.states {
            v.push(("states", x.to_string()));
        }
        if let Some(x) = self.truth.low_states {
            v.push(("low_states", x.to_string()));
        }
        if let Some(x) = self.truth.gap {
            v.push(("gap", fmt_f64(x)));
        }
        if let Some(x) = &self.truth.lattice {
            v.push(("lattice", x.clone()));
        }
        if let Some(x) = self.truth.temperature {
            v.push(("temperature", fmt_f64(x)));
        }
        if let Some(x) = self.truth.sites {
            v.push(("sites", x.to_string()));
        }
        if let Some(x) = self.truth.coupling_strength {
            v.push(("coupling_strength", fmt_f64(x)));
        }
        if let Some(x) = self.samples {
            v.push(("samples", x.to_string()));
        }
        if let Some(x) = self.mu {
            v.push(("mu", fmt_f64(x)));
        }
        v.push(("fit", self.fit.to_string()));
        v.push(("l2", fmt_f64(self.l2)));
        v
    }
}

/// The columns of `cells.*`: the cell, its grid point's descriptors, then every scalar
/// result field ([`RESULT_FIELDS`]), each gain right after the divergence at τ* it is
/// derived from.
pub fn cell_columns() -> Vec<Column> {
    use ColumnKind::*;
    let mut cols: Vec<Column> = [
        ("key", Str),
        ("point", Str),
        ("replicate", Int),
        ("truth", Str),
        ("states", Int),
        ("low_states", Int),
        ("gap", Float),
        ("lattice", Str),
        ("temperature", Float),
        ("sites", Int),
        ("coupling_strength", Float),
        ("mu", Float),
        ("fit", Str),
        ("l2", Float),
    ]
    .into_iter()
    .map(|(n, k)| Column::new(n, k))
    .collect();
    for f in &RESULT_FIELDS {
        let kind = match f.kind {
            FieldKind::Float => Float,
            FieldKind::Int => Int,
            FieldKind::Bool => Bool,
            FieldKind::Str => Str,
        };
        cols.push(Column::new(f.name, kind));
        if let Some(gain) = gain_after(f.name) {
            cols.push(Column::new(gain, Float));
        }
    }
    cols
}

/// The derived gain column that follows field `name`: D(1) − D(τ*).
fn gain_after(name: &str) -> Option<&'static str> {
    match name {
        "dkl_rev_opt" => Some("gain_rev"),
        "dkl_fwd_opt" => Some("gain_fwd"),
        _ => None,
    }
}

/// One row of `cells.*`, aligned with [`cell_columns`]. `point_key` and `d` describe the
/// cell's grid point (computed once per point by the caller).
pub fn cell_row<'a>(point_key: &'a str, d: &'a Descriptors, r: &'a CellResult) -> Vec<Value<'a>> {
    let mut row = vec![
        Value::str(r.key.0.as_str()),
        Value::str(point_key),
        Value::int(r.key.replicate().map(u64::from)),
        Value::str(d.truth.kind),
        Value::int(d.truth.states),
        Value::int(d.truth.low_states),
        Value::float(d.truth.gap),
        d.truth.lattice.as_deref().map_or(Value::Null, Value::str),
        Value::float(d.truth.temperature),
        Value::int(d.truth.sites),
        Value::float(d.truth.coupling_strength),
        Value::float(d.mu),
        Value::str(d.fit),
        Value::Float(d.l2),
    ];
    for f in &RESULT_FIELDS {
        row.push(match (f.get)(r) {
            FieldValue::Float(x) => Value::float(x),
            FieldValue::Int(x) => Value::int(x),
            FieldValue::Bool(x) => Value::bool(x),
            FieldValue::Str(x) => x.map_or(Value::Null, Value::str),
        });
        match gain_after(f.name) {
            Some("gain_rev") => row.push(Value::Float(r.tau.dkl_rev_at_1 - r.tau.dkl_rev_opt)),
            Some(_) => row.push(Value::Float(r.tau.dkl_fwd_at_1 - r.tau.dkl_fwd_opt)),
            None => {}
        }
    }
    row
}

/// The columns of `curves.*` (a long table: one row per cell and τ).
pub fn curve_columns() -> Vec<Column> {
    use ColumnKind::*;
    [
        ("key", Str),
        ("tau", Float),
        ("dkl_rev", Float),
        ("dkl_fwd", Float),
        ("entropy", Float),
        ("mean_energy", Float),
        ("heat_capacity", Float),
        ("kappa", Float),
        ("dkl_rev_se", Float),
        ("dkl_fwd_se", Float),
        ("entropy_se", Float),
        ("mean_energy_se", Float),
        ("heat_capacity_se", Float),
        ("kappa_se", Float),
    ]
    .into_iter()
    .map(|(n, k)| Column::new(n, k))
    .collect()
}

/// One row of `curves.*`, aligned with [`curve_columns`]; `se` holds the point's standard
/// errors (Monte Carlo cells; the `*_se` columns are null for exact ones).
pub fn curve_row<'a>(key: &'a str, c: &CurvePoint, se: Option<&CurveSe>) -> [Value<'a>; 14] {
    let se = |f: fn(&CurveSe) -> f64| Value::float(se.map(f));
    [
        Value::Str(Cow::Borrowed(key)),
        Value::Float(c.tau),
        Value::Float(c.dkl_rev),
        Value::Float(c.dkl_fwd),
        Value::Float(c.entropy),
        Value::Float(c.mean_energy),
        Value::Float(c.heat_capacity),
        Value::float(c.kappa),
        se(|e| e.dkl_rev),
        se(|e| e.dkl_fwd),
        se(|e| e.entropy),
        se(|e| e.mean_energy),
        se(|e| e.heat_capacity),
        se(|e| e.kappa),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::summary::tests::{ising_point, result, two_level_point};
    use super::super::summary::PointAggregator;
    use super::*;
    use crate::CellKey;

    fn kind_of(v: &Value) -> Option<ColumnKind> {
        match v {
            Value::Null => None,
            Value::Int(_) => Some(ColumnKind::Int),
            Value::Float(_) => Some(ColumnKind::Float),
            Value::Bool(_) => Some(ColumnKind::Bool),
            Value::Str(_) => Some(ColumnKind::Str),
        }
    }

    fn assert_row_matches(cols: &[Column], row: &[Value]) {
        assert_eq!(cols.len(), row.len());
        for (c, v) in cols.iter().zip(row) {
            if let Some(k) = kind_of(v) {
                assert_eq!(k, c.kind, "column {} holds {v:?}", c.name);
            }
        }
    }

    fn get<'r>(cols: &[Column], row: &'r [Value<'r>], name: &str) -> &'r Value<'r> {
        &row[cols.iter().position(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}"))]
    }

    #[test]
    fn summary_starts_with_the_contract_columns_in_order_and_names_are_unique() {
        let l = SummaryLayout::new();
        let names: Vec<&str> = l.columns().iter().map(|c| c.name.as_ref()).collect();
        assert_eq!(&names[..SUMMARY_CONTRACT_COLUMNS.len()], &SUMMARY_CONTRACT_COLUMNS[..]);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate column names");
        assert!(names.contains(&"gap_ratio_mean") && names.contains(&"fit_diverged"));
    }

    #[test]
    fn two_level_summary_row_fills_two_level_fields_and_leaves_ising_fields_empty() {
        let p = two_level_point(2.5, 40);
        let s = PointAggregator::summarize(&p, &[result(&p, 0, 0.8, 1.2), result(&p, 1, 1.0, 1.4)]);
        let l = SummaryLayout::new();
        let row = l.row(&s);
        assert_row_matches(l.columns(), &row);
        let c = l.columns();
        assert_eq!(get(c, &row, "truth"), &Value::str("two-level"));
        assert_eq!(get(c, &row, "states"), &Value::Int(100));
        assert_eq!(get(c, &row, "gap"), &Value::Float(2.5));
        assert_eq!(get(c, &row, "samples"), &Value::Int(40));
        assert_eq!(get(c, &row, "lattice"), &Value::Null);
        assert_eq!(get(c, &row, "temperature"), &Value::Null);
        assert_eq!(get(c, &row, "mu"), &Value::Null);
        assert_eq!(get(c, &row, "replicates"), &Value::Int(2));
        assert_eq!(get(c, &row, "tau_rev_mean"), &Value::Float(0.9));
        assert_eq!(get(c, &row, "frac_tau_rev_below_1"), &Value::Float(0.5));
        assert_eq!(get(c, &row, "fit_diverged"), &Value::Null);
        assert_eq!(get(c, &row, "tau_var_mean"), &Value::Null);
        assert_eq!(get(c, &row, "tau_var_count"), &Value::Int(0));
        assert_eq!(get(c, &row, "low_states_hat_mean"), &Value::Float(18.5));
    }

    #[test]
    fn ising_summary_row_fills_lattice_and_temperature() {
        let p = ising_point(2.3, 200);
        let s = PointAggregator::summarize(&p, &[result(&p, 0, 1.1, 1.3)]);
        let l = SummaryLayout::new();
        let row = l.row(&s);
        assert_row_matches(l.columns(), &row);
        let c = l.columns();
        assert_eq!(get(c, &row, "lattice"), &Value::str("4x4"));
        assert_eq!(get(c, &row, "temperature"), &Value::Float(2.3));
        assert_eq!(get(c, &row, "gap"), &Value::Null);
        assert_eq!(get(c, &row, "gap_hat_mean"), &Value::Null);
        assert_eq!(get(c, &row, "fit_diverged"), &Value::Int(0));
        assert_eq!(get(c, &row, "tau_rev_sem"), &Value::Null, "one replicate has no sem");
    }

    #[test]
    fn cell_columns_keep_their_published_order() {
        // The `cells.*` schema is what users' scripts read: generated from RESULT_FIELDS, it
        // must stay this list (new fields go at the end of their part).
        let names: Vec<String> = cell_columns().iter().map(|c| c.name.to_string()).collect();
        let want = "key point replicate truth states low_states gap lattice temperature sites coupling_strength mu fit l2 samples \
            tau_rev tau_fwd tau_rev_at_bound tau_fwd_at_bound dkl_rev_at_1 dkl_rev_opt gain_rev dkl_fwd_at_1 \
            dkl_fwd_opt gain_fwd tau_heat_peak tau_var kappa_at_1 heat_capacity_at_1 low_states_hat gap_hat \
            overlap tau_rev_closed tau_fwd_closed fit_mode fit_iterations fit_stop grad_max_norm nll \
            coupling_max_abs fit_diverged fit_note tau_rev_se tau_fwd_se dkl_rev_at_1_se dkl_rev_opt_se \
            dkl_fwd_at_1_se dkl_fwd_opt_se kappa_at_1_se heat_capacity_at_1_se mcmc_ok mcmc_note mcmc_steps \
            ladder_rungs min_swap_acceptance round_trips r_hat tau_int ess log_z_ti_gap log_z_ti_gap_se \
            data_tau_int data_thinning fit_pearson equilibrated_tau_lo tau_fwd_equilibrated tau_fwd_equilibrated_se \
            walker_round_trips_min flatness";
        assert_eq!(names, want.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn cell_and_curve_rows_match_their_columns() {
        for p in [two_level_point(3.0, 10), ising_point(3.0, 10)] {
            let r = result(&p, 7, 0.9, 1.1);
            let d = Descriptors::of(&p);
            let key = p.key();
            let row = cell_row(&key, &d, &r);
            let cols = cell_columns();
            assert_row_matches(&cols, &row);
            assert_eq!(get(&cols, &row, "replicate"), &Value::Int(7));
            assert_eq!(get(&cols, &row, "gain_rev"), &Value::Float(r.tau.dkl_rev_at_1 - r.tau.dkl_rev_opt));
            let crow = curve_row(&r.key.0, &r.curve[0], None);
            assert_row_matches(&curve_columns(), &crow);
            let se = crate::cell::CurveSe {
                dkl_rev: 0.1,
                dkl_fwd: 0.2,
                entropy: 0.3,
                mean_energy: 0.4,
                heat_capacity: 0.5,
                kappa: 0.6,
            };
            let crow = curve_row(&r.key.0, &r.curve[0], Some(&se));
            assert_row_matches(&curve_columns(), &crow);
            assert_eq!(get(&curve_columns(), &crow, "heat_capacity_se"), &Value::Float(0.5));
        }
    }

    #[test]
    fn replicate_is_parsed_from_the_key_suffix() {
        let key = CellKey("two-level;states=100;gap=2.5;samples=4;fit=mle;l2=0;r=12".into());
        assert_eq!(key.replicate(), Some(12));
        assert_eq!(CellKey::split(&key.0), Some(("two-level;states=100;gap=2.5;samples=4;fit=mle;l2=0", 12)));
        assert_eq!(CellKey::new("two-level;states=100;gap=2.5;samples=4;fit=mle;l2=0", 12), key);
        assert_eq!(CellKey("no-replicate".into()).replicate(), None);
        assert_eq!(CellKey::split("p;r=x"), None);
    }

    #[test]
    fn descriptor_pairs_use_canonical_float_form() {
        let d = Descriptors::of(&two_level_point(2.75, 9));
        let pairs = d.pairs();
        assert!(pairs.contains(&("gap", "2.75".to_string())));
        assert!(pairs.contains(&("samples", "9".to_string())));
        assert!(pairs.contains(&("l2", "0".to_string())));
    }
}
