//! `taustar export` (being written).

/// Arguments of `taustar export`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar export`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar export is not implemented yet")
}
