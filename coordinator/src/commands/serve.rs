//! `taustar serve` (being written).

/// Arguments of `taustar serve`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar serve`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar serve is not implemented yet")
}
