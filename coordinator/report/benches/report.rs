//! Export and plot of a million-cell study: throughput and peak memory.
//!
//! `cargo bench -p taustar-report --bench report`
//!
//! A 10^6-cell study (the Fig. 2 grid, 216 replicates per point, 71-point curves) is
//! generated one grid point at a time ([`SyntheticSource`], so generation costs no memory),
//! exported (CSV + Parquet, all three tables) and plotted. Prints wall times, rows/s, file
//! sizes and the process's peak RSS after each phase. Knobs:
//! - `TAUSTAR_BENCH_REPLICATES` (default 216) scales the study;
//! - `TAUSTAR_BENCH_FORMATS=csv|parquet|none` isolates one writer (`none`: generation only);
//! - `TAUSTAR_BENCH_TABLES` (default `summary,cells,curves`) picks the tables, e.g.
//!   `summary,cells` for what `taustar run` writes;
//! - `TAUSTAR_BENCH_DIR` keeps the output (default: a temporary directory).
//!
//! A plain harness, not criterion: one run takes tens of seconds and the point is the
//! end-to-end cost and memory of one pass, which criterion's repetitions would not add to.

use std::path::PathBuf;
use std::time::Instant;

use report::export::sink::Format;
use report::export::synthetic::SyntheticSource;
use report::export::{export, Table};
use report::plot::plot_study;

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects a
    // quick smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let reps: u32 = match std::env::var("TAUSTAR_BENCH_REPLICATES") {
        Ok(v) => v.parse().map_err(|_| anyhow::anyhow!("invalid TAUSTAR_BENCH_REPLICATES {v:?}"))?,
        Err(_) if smoke => 1,
        Err(_) => 216,
    };
    let formats = match std::env::var("TAUSTAR_BENCH_FORMATS").as_deref() {
        Ok("csv") => vec![Format::Csv],
        Ok("parquet") => vec![Format::Parquet],
        Ok("none") => vec![],
        Ok(other) => anyhow::bail!("invalid TAUSTAR_BENCH_FORMATS {other:?}: csv, parquet or none"),
        Err(_) => vec![Format::Csv, Format::Parquet],
    };
    let tables = match std::env::var("TAUSTAR_BENCH_TABLES") {
        Err(_) => vec![Table::Summary, Table::Cells, Table::Curves],
        Ok(list) => list
            .split(',')
            .map(|t| match t.trim() {
                "summary" => Ok(Table::Summary),
                "cells" => Ok(Table::Cells),
                "curves" => Ok(Table::Curves),
                other => Err(anyhow::anyhow!("invalid TAUSTAR_BENCH_TABLES entry {other:?}")),
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let source = SyntheticSource::fig2_like(reps, 71);
    let _tmp;
    let dir = match std::env::var_os("TAUSTAR_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            _tmp = tempfile::tempdir()?;
            _tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let before = peak_rss_mib();
    let t = Instant::now();
    let (cells, points, curve_rows, files) = if formats.is_empty() {
        let (mut cells, mut points) = (0u64, 0u64);
        use report::export::source::PointSource;
        source.for_each_point(&mut |_, results| {
            points += 1;
            cells += results.len() as u64;
            Ok(())
        })?;
        (cells, points, 0, vec![])
    } else {
        let r = export(&source, &dir, &formats, &tables)?;
        (r.cells, r.points, r.curve_rows, r.files)
    };
    let export_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(cells == source.cells(), "exported {cells} cells of {}", source.cells());
    let after_export = peak_rss_mib();
    let t = Instant::now();
    let plotted = plot_study(&source, &dir, Some(&"gap=6,samples=247".parse()?))?;
    let plot_s = t.elapsed().as_secs_f64();
    let sizes: Vec<String> = files
        .iter()
        .map(|f| {
            let mib = std::fs::metadata(f).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0);
            format!("{}={mib:.1} MiB", f.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
        })
        .collect();
    println!("cells={cells} points={points} curve_rows={curve_rows}");
    println!(
        "export: {export_s:.2} s ({:.0} cells/s, {:.0} curve rows/s incl. generation)",
        cells as f64 / export_s,
        curve_rows as f64 / export_s
    );
    println!("plot: {plot_s:.2} s, {} files", plotted.files.len());
    println!(
        "peak RSS: {before:.0} MiB before, {after_export:.0} MiB after export, {:.0} MiB after plot",
        peak_rss_mib()
    );
    println!("{}", sizes.join(", "));
    Ok(())
}
