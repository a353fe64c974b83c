//! One module per subcommand.

pub mod cell;
pub mod diagnose;
pub mod energies;
pub mod eval;
pub mod export;
pub mod fit;
pub mod plot;
pub mod run;
pub mod serve;
pub mod split;
pub mod status;
mod table;
