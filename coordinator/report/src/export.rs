//! `taustar export`: a study's tables as CSV, Parquet and/or JSON, in one streaming pass.
//!
//! - `summary.*`: one row per grid point, replicate statistics (`taustar_common::aggregate`); its
//!   first columns are the export contract.
//! - `cells.*`: one row per cell, every scalar field of its result.
//! - `curves.*`: the per-τ curves as a long table (key, tau, dkl_rev, dkl_fwd, entropy,
//!   mean_energy, heat_capacity), joined to `cells` by `key`.
//!
//! The store hands over one grid point's results at a time and every sink writes as it
//! goes, so memory does not grow with the study. Files appear atomically when complete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use taustar_common::aggregate::table::{self, cell_row, curve_row, Descriptors, SummaryLayout};
use taustar_common::aggregate::PointAggregator;

pub mod csv_sink;
pub mod curves;
pub mod json_sink;
pub mod parquet_sink;
pub mod sink;
pub mod source;
pub mod synthetic;
#[cfg(test)]
mod tests;

use sink::{open_sink, Format, TableSink};
use source::PointSource;

/// A table of `taustar export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Table {
    /// One row per grid point: replicate statistics.
    Summary,
    /// One row per cell: the scalar fields of its result.
    Cells,
    /// One row per cell and τ: the curves.
    Curves,
}

impl Table {
    fn file_stem(self) -> &'static str {
        match self {
            Table::Summary => "summary",
            Table::Cells => "cells",
            Table::Curves => "curves",
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Grid points (summary rows).
    pub points: u64,
    /// Cells (cells rows).
    pub cells: u64,
    /// Curve rows.
    pub curve_rows: u64,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Write the chosen `tables` in every format of `formats` into `out`, in one pass over
/// `source`. Nothing appears in `out` unless every table is complete.
pub fn export(
    source: &dyn PointSource,
    out: &Path,
    formats: &[Format],
    tables: &[Table],
) -> anyhow::Result<ExportReport> {
    anyhow::ensure!(!formats.is_empty(), "--format: no format given");
    anyhow::ensure!(!tables.is_empty(), "--tables: no table given");
    std::fs::create_dir_all(out).with_context(|| format!("creating output directory {}", out.display()))?;
    let mut unique: Vec<Format> = Vec::new();
    for &f in formats {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    let formats = unique;
    let summary_layout = SummaryLayout::new();
    let open_all = |t: Table, columns: &[table::Column]| -> anyhow::Result<Vec<Box<dyn TableSink>>> {
        if !tables.contains(&t) {
            return Ok(Vec::new());
        }
        formats.iter().map(|&f| open_sink(out, t.file_stem(), f, columns)).collect()
    };
    let mut summary = open_all(Table::Summary, summary_layout.columns())?;
    let mut cells = open_all(Table::Cells, &table::cell_columns())?;
    let mut curves = open_all(Table::Curves, &table::curve_columns())?;

    let mut report = ExportReport { points: 0, cells: 0, curve_rows: 0, files: Vec::new() };
    source.for_each_point(&mut |point, results| {
        let row = PointAggregator::summarize(point, results);
        if !summary.is_empty() {
            let values = summary_layout.row(&row);
            for s in summary.iter_mut() {
                s.write_row(&values)?;
            }
        }
        report.points += 1;
        if !cells.is_empty() {
            let d = Descriptors::of(point);
            for r in results {
                let values = cell_row(&row.point_key, &d, r);
                for s in cells.iter_mut() {
                    s.write_row(&values)?;
                }
            }
        }
        report.cells += results.len() as u64;
        if !curves.is_empty() {
            let mut completed;
            let mut results = results;
            if results.iter().any(|r| r.curve.is_empty()) {
                completed = results.to_vec();
                source.complete_curves(point, &mut completed)?;
                results = &completed;
            }
            for r in results {
                for (i, c) in r.curve.iter().enumerate() {
                    let values = curve_row(&r.key.0, c, r.mcmc.curve_se.get(i));
                    for s in curves.iter_mut() {
                        s.write_row(&values)?;
                    }
                }
                report.curve_rows += r.curve.len() as u64;
            }
        }
        Ok(())
    })?;
    for (t, sinks) in [(Table::Summary, summary), (Table::Cells, cells), (Table::Curves, curves)] {
        for (sink, f) in sinks.into_iter().zip(&formats) {
            sink.finish()?;
            report.files.push(out.join(format!("{}.{}", t.file_stem(), f.extension())));
        }
    }
    if report.points == 0 {
        tracing::warn!("the study has no results yet: the tables have a header only");
    }
    Ok(report)
}

/// A fresh, empty directory for a test's files (removed by the test when it passes).
#[cfg(test)]
pub fn test_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "taustar-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a test directory");
    d
}
