//! `taustar status`: progress of a study, read from its database (works while a
//! coordinator is writing to it).

use std::path::PathBuf;

use coordinator::progress::format_secs;
use coordinator::StudyStore;

/// Arguments of `taustar status`.
#[derive(clap::Args)]
pub struct Args {
    /// The study database.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Print JSON (keys: study_name, cells_total, cells_pending, cells_leased, cells_done,
    /// cells_failed, duplicates_ignored, results_rejected, results_quarantined, throughput_per_s, eta_seconds,
    /// workers_active, finished, disk_free_bytes).
    #[arg(long)]
    pub json: bool,
}

/// Run `taustar status`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = StudyStore::open_read_only(&args.db)?;
    let s = store.status(coordinator::clock::wall_now_ms())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let pct = if s.cells_total > 0 {
        100.0 * (s.cells_done + s.cells_failed) as f64 / s.cells_total as f64
    } else {
        100.0
    };
    println!("study        {}", s.study_name);
    println!(
        "cells        {} total: {} done, {} failed, {} leased, {} pending ({pct:.1}% settled)",
        s.cells_total, s.cells_done, s.cells_failed, s.cells_leased, s.cells_pending
    );
    println!("duplicates   {} ignored, {} rejected", s.duplicates_ignored, s.results_rejected);
    println!("quarantined  {} uploads (stored with the reason, never committed)", s.results_quarantined);
    println!(
        "throughput   {:.1} cells/s over the last minute, {} active workers",
        s.throughput_per_s, s.workers_active
    );
    println!(
        "eta          {}",
        if s.finished { "finished".to_string() } else { s.eta_seconds.map_or("unknown".into(), format_secs) }
    );
    match s.disk_free_bytes {
        Some(free) if free < coordinator::store::LOW_DISK_BYTES => println!(
            "disk         FULL or nearly: {} free on the filesystem of {}: commits fail until space is \
             freed (workers keep their computed results and retry; committed results are safe; the \
             coordinator resumes by itself, or rerun the same command)",
            format_bytes(free),
            args.db.display()
        ),
        Some(free) => println!("disk         {} free on the store's filesystem", format_bytes(free)),
        None => {}
    }
    if s.cells_failed > 0 {
        let mut shown = 0;
        store.for_each_failed_cell(|key, failures, error| {
            if shown < 5 {
                println!("failed       {key} ({failures}x): {error}");
            }
            shown += 1;
        })?;
        if shown > 5 {
            println!("failed       … and {} more", shown - 5);
        }
    }
    Ok(())
}

/// `n` bytes in binary units, three significant digits.
fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
