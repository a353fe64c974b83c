//! `taustar plot` (being written).

/// Arguments of `taustar plot`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar plot`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar plot is not implemented yet")
}
