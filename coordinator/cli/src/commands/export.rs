//! `taustar export`: the CLI face of [`report::export`].

use std::path::PathBuf;

use report::export::sink::Format;
use report::export::source::StoreSource;
use report::export::{export, Table};

/// Arguments of `taustar export`.
#[derive(clap::Args)]
pub struct Args {
    /// The study database (written by `taustar run` or `taustar serve`); may be in use.
    #[arg(long)]
    pub db: PathBuf,
    /// Output directory (created if missing); existing files of the same names are replaced.
    #[arg(long)]
    pub out: PathBuf,
    /// File formats, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Format::Csv, Format::Parquet])]
    pub format: Vec<Format>,
    /// Tables to write, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Table::Summary, Table::Cells, Table::Curves])]
    pub tables: Vec<Table>,
}

/// Run `taustar export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let source = StoreSource::open(&args.db)?;
    let started = std::time::Instant::now();
    let report = export(&source, &args.out, &args.format, &args.tables)?;
    tracing::info!(
        points = report.points,
        cells = report.cells,
        curve_rows = report.curve_rows,
        seconds = started.elapsed().as_secs_f64(),
        "export finished"
    );
    for f in &report.files {
        println!("{}", f.display());
    }
    Ok(())
}
