//! `taustar status` (being written).

/// Arguments of `taustar status`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar status`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar status is not implemented yet")
}
