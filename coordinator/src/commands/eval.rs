//! `taustar eval` (being written).

/// Arguments of `taustar eval`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar eval`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar eval is not implemented yet")
}
