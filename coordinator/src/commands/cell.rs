//! `taustar cell` (being written).

/// Arguments of `taustar cell`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar cell`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar cell is not implemented yet")
}
