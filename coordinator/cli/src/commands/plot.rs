//! `taustar plot`: the CLI face of [`report::plot`].

use std::path::PathBuf;

use report::export::source::StoreSource;
use report::plot::plot_study;
use report::plot::point::PointSelector;

/// Arguments of `taustar plot`.
#[derive(clap::Args)]
pub struct Args {
    /// The study database (written by `taustar run` or `taustar serve`); may be in use.
    #[arg(long)]
    pub db: PathBuf,
    /// Output directory (created if missing); existing plots of the same names are replaced.
    #[arg(long)]
    pub out: PathBuf,
    /// Also draw D_rev and D_fwd vs τ for the replicates of one grid point, chosen by its
    /// values, e.g. `gap=6,samples=200` or `temperature=2.05,samples=71`.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub point: Option<PointSelector>,
}

/// Run `taustar plot`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let source = StoreSource::open(&args.db)?;
    let report = plot_study(&source, &args.out, args.point.as_ref())?;
    for f in &report.files {
        println!("{}", f.display());
    }
    Ok(())
}
