//! Export round trips: every table, in every format, read back with an independent reader
//! (the csv crate, parquet's arrow reader, serde_json) and compared field by field with
//! the rows computed from the source.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use taustar_common::aggregate::table::{self, Column, ColumnKind, Descriptors, SummaryLayout, Value};
use taustar_common::aggregate::PointAggregator;
use taustar_common::{CellResult, GridPoint};

use super::sink::Format;
use super::source::{MemorySource, PointSource};
use super::synthetic::{Kind, SyntheticSource};
use super::{export, test_dir, Table};

type Row = Vec<Value<'static>>;

fn owned(v: Value<'_>) -> Value<'static> {
    match v {
        Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        Value::Null => Value::Null,
        Value::Int(i) => Value::Int(i),
        Value::Float(x) => Value::Float(x),
        Value::Bool(b) => Value::Bool(b),
    }
}

/// The rows each table must hold, computed directly from the source.
fn expected(source: &dyn PointSource) -> (Vec<Row>, Vec<Row>, Vec<Row>) {
    let layout = SummaryLayout::new();
    let (mut s, mut c, mut k) = (Vec::new(), Vec::new(), Vec::new());
    source
        .for_each_point(&mut |p, rs| {
            let row = PointAggregator::summarize(p, rs);
            s.push(layout.row(&row).into_iter().map(owned).collect());
            let d = Descriptors::of(p);
            for r in rs {
                c.push(table::cell_row(&row.point_key, &d, r).into_iter().map(owned).collect());
                for (i, cp) in r.curve.iter().enumerate() {
                    k.push(
                        table::curve_row(&r.key.0, cp, r.mcmc.curve_se.get(i))
                            .into_iter()
                            .map(owned)
                            .collect(),
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    (s, c, k)
}

/// A small study with awkward values: a note with a comma, quotes and a newline, a float
/// far below 1e-5, missing optional fields, an Ising point next to two-level ones.
fn awkward_study() -> MemorySource {
    let tl =
        SyntheticSource { ys: vec![2.5, 6.0], samples: vec![4, 40, 400], ..SyntheticSource::fig2_like(3, 4) };
    let is = SyntheticSource { ys: vec![2.05], samples: vec![50, 71], ..SyntheticSource::fig3_like(2, 3) };
    let mut points: Vec<(GridPoint, Vec<CellResult>)> = Vec::new();
    for src in [&tl, &is] {
        src.for_each_point(&mut |p, rs| {
            points.push((p.clone(), rs.to_vec()));
            Ok(())
        })
        .unwrap();
    }
    let r = &mut points[0].1[0];
    r.tau.dkl_rev_opt = 1.234_567_890_123e-300;
    r.tau.tau_heat_peak = None;
    r.tau.tau_var = None;
    let last = points.last_mut().unwrap();
    last.1[1].fit.fit_note = Some("stopped, \"early\"\nafter 9 iterations".into());
    MemorySource { name: "awkward".into(), points }
}

fn parse_csv_field(kind: ColumnKind, s: &str) -> Value<'static> {
    if s.is_empty() {
        return Value::Null;
    }
    match kind {
        ColumnKind::Str => Value::Str(Cow::Owned(s.to_string())),
        ColumnKind::Int => Value::Int(s.parse().unwrap_or_else(|e| panic!("int {s:?}: {e}"))),
        ColumnKind::Float => Value::Float(s.parse().unwrap_or_else(|e| panic!("float {s:?}: {e}"))),
        ColumnKind::Bool => Value::Bool(s.parse().unwrap_or_else(|e| panic!("bool {s:?}: {e}"))),
    }
}

fn read_csv(path: &Path, columns: &[Column]) -> Vec<Row> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let names: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(header, names, "{}", path.display());
    rdr.records()
        .map(|rec| {
            let rec = rec.unwrap();
            columns.iter().zip(rec.iter()).map(|(c, f)| parse_csv_field(c.kind, f)).collect()
        })
        .collect()
}

fn read_parquet(path: &Path, columns: &[Column]) -> Vec<Row> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let want: Vec<String> = columns.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, want, "{}", path.display());
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.num_rows() {
            let row = columns
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let a = batch.column(j);
                    if a.is_null(i) {
                        return Value::Null;
                    }
                    match c.kind {
                        ColumnKind::Str => Value::Str(Cow::Owned(
                            a.as_any().downcast_ref::<StringArray>().unwrap().value(i).to_string(),
                        )),
                        ColumnKind::Int => {
                            Value::Int(a.as_any().downcast_ref::<Int64Array>().unwrap().value(i))
                        }
                        ColumnKind::Float => {
                            Value::Float(a.as_any().downcast_ref::<Float64Array>().unwrap().value(i))
                        }
                        ColumnKind::Bool => {
                            Value::Bool(a.as_any().downcast_ref::<BooleanArray>().unwrap().value(i))
                        }
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    rows
}

fn read_json(path: &Path, columns: &[Column]) -> Vec<Row> {
    let v: serde_json::Value = serde_json::from_reader(File::open(path).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|obj| {
            let obj = obj.as_object().unwrap();
            assert_eq!(obj.len(), columns.len());
            columns
                .iter()
                .map(|c| match &obj[c.name.as_ref()] {
                    serde_json::Value::Null => Value::Null,
                    x => match c.kind {
                        ColumnKind::Str => Value::Str(Cow::Owned(x.as_str().unwrap().to_string())),
                        ColumnKind::Int => Value::Int(x.as_i64().unwrap()),
                        ColumnKind::Float => Value::Float(x.as_f64().unwrap()),
                        ColumnKind::Bool => Value::Bool(x.as_bool().unwrap()),
                    },
                })
                .collect()
        })
        .collect()
}

fn assert_same(got: &[Row], want: &[Row], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: row {i}");
    }
}

/// Like [`assert_same`], but floats may differ in the last bit: serde_json's default float
/// parser (like pandas' `precise_float=False`) is not correctly rounded, although the
/// written text is the shortest round-trip form (checked bit-exactly through CSV).
fn assert_same_within_an_ulp(got: &[Row], want: &[Row], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len());
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            match (a, b) {
                (Value::Float(a), Value::Float(b)) => {
                    assert!(
                        (a - b).abs() <= 2.0 * f64::EPSILON * b.abs(),
                        "{what}: row {i} field {j}: {a} vs {b}"
                    )
                }
                _ => assert_eq!(a, b, "{what}: row {i} field {j}"),
            }
        }
    }
}

#[test]
fn every_table_round_trips_through_csv_parquet_and_json() {
    let source = awkward_study();
    let dir = test_dir("roundtrip");
    let report = export(
        &source,
        &dir,
        &[Format::Csv, Format::Parquet, Format::Json],
        &[Table::Summary, Table::Cells, Table::Curves],
    )
    .unwrap();
    let (s, c, k) = expected(&source);
    assert_eq!((report.points, report.cells, report.curve_rows), (8, 22, 6 * 3 * 4 + 2 * 2 * 3));
    assert_eq!(report.files.len(), 9);
    assert_eq!(s.len(), 8);
    let layout = SummaryLayout::new();
    let tables: [(&str, Vec<Column>, &Vec<Row>); 3] = [
        ("summary", layout.columns().to_vec(), &s),
        ("cells", table::cell_columns(), &c),
        ("curves", table::curve_columns(), &k),
    ];
    for (name, cols, want) in &tables {
        assert_same(&read_csv(&dir.join(format!("{name}.csv")), cols), want, &format!("{name}.csv"));
        assert_same(
            &read_parquet(&dir.join(format!("{name}.parquet")), cols),
            want,
            &format!("{name}.parquet"),
        );
        assert_same_within_an_ulp(
            &read_json(&dir.join(format!("{name}.json")), cols),
            want,
            &format!("{name}.json"),
        );
    }
    // Exactly the nine tables, no temporary files left over.
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn summary_csv_has_the_contract_header_and_empty_fields_where_not_applicable() {
    let source = awkward_study();
    let dir = test_dir("contract");
    export(&source, &dir, &[Format::Csv], &[Table::Summary]).unwrap();
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with(&table::SUMMARY_CONTRACT_COLUMNS.join(",")), "{header}");
    // First row: a two-level point given by M: lattice, temperature and mu are empty.
    let first = text.lines().nth(1).unwrap();
    assert!(first.starts_with("two-level,100,20,2.5,,,4,,0.0,3,"), "{first}");
    let ising = text.lines().last().unwrap();
    assert!(ising.starts_with("ising2d,,,,4x4,2.05,71,,0.0,2,"), "{ising}");
    assert!(!dir.join("cells.csv").exists() && !dir.join("summary.parquet").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parquet_is_written_in_several_row_groups_for_long_tables() {
    let source = SyntheticSource { samples: (10..80).collect(), ..SyntheticSource::fig2_like(5, 71) };
    let dir = test_dir("rowgroups");
    let report = export(&source, &dir, &[Format::Parquet], &[Table::Curves]).unwrap();
    assert!(report.curve_rows > 2 * super::parquet_sink::ROW_GROUP_ROWS as u64);
    let r =
        ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join("curves.parquet")).unwrap()).unwrap();
    let md = r.metadata();
    assert!(md.num_row_groups() >= 3, "{} row groups", md.num_row_groups());
    assert_eq!(md.file_metadata().num_rows() as u64, report.curve_rows);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `[tau] curves = "none"`: the curves table is written with its header and no rows (a
/// reader's schema stays the same), the other tables as usual.
#[test]
fn a_study_without_curves_exports_an_empty_curves_table() {
    let source = SyntheticSource { samples: vec![50, 71], ..SyntheticSource::fig3_like(2, 0) };
    let dir = test_dir("nocurves");
    let report =
        export(&source, &dir, &[Format::Csv, Format::Parquet], &[Table::Cells, Table::Curves]).unwrap();
    assert_eq!((report.cells, report.curve_rows), (source.cells(), 0));
    let csv = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
    assert!(csv.starts_with("key,tau,"), "{csv}");
    let r =
        ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join("curves.parquet")).unwrap()).unwrap();
    assert_eq!(r.metadata().file_metadata().num_rows(), 0);
    assert_eq!(r.schema().fields().len(), table::curve_columns().len());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A source that fails after its first point (a corrupt row, a vanished disk).
struct FailingSource(SyntheticSource);

impl PointSource for FailingSource {
    fn study_name(&self) -> String {
        "failing".into()
    }
    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&GridPoint, &[CellResult]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut n = 0;
        self.0.for_each_point(&mut |p, rs| {
            n += 1;
            anyhow::ensure!(n < 2, "corrupt row at point {}", p.key());
            f(p, rs)
        })
    }
}

#[test]
fn a_failed_export_leaves_no_files_behind() {
    let dir = test_dir("failed");
    let err = export(
        &FailingSource(SyntheticSource::fig2_like(2, 3)),
        &dir,
        &[Format::Csv, Format::Parquet, Format::Json],
        &[Table::Summary, Table::Cells, Table::Curves],
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("corrupt row"), "{err:#}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no table and no temporary file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn synthetic_ising_study_exports_diverged_counts() {
    let source = SyntheticSource { kind: Kind::Ising, ..SyntheticSource::fig3_like(4, 3) };
    let dir = test_dir("ising");
    export(&source, &dir, &[Format::Csv], &[Table::Summary]).unwrap();
    let layout = SummaryLayout::new();
    let rows = read_csv(&dir.join("summary.csv"), layout.columns());
    let col = layout.columns().iter().position(|c| c.name == "fit_diverged").unwrap();
    let total: i64 =
        rows.iter().map(|r| if let Value::Int(n) = r[col] { n } else { panic!("{:?}", r[col]) }).sum();
    assert!(total > 0 && total < 4 * rows.len() as i64, "some but not all fits diverged: {total}");
    std::fs::remove_dir_all(&dir).unwrap();
}
