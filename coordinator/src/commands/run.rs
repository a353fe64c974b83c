//! `taustar run` (being written).

/// Arguments of `taustar run`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `taustar run`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("taustar run is not implemented yet")
}
