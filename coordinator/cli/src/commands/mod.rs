//! One module per subcommand.

pub mod cell;
pub mod diagnose;
pub mod energies;
pub mod eval;
pub mod export;
pub mod plot;
pub mod run;
pub mod serve;
pub mod status;
mod table;
