//! Tests of the `taustar` binary as a process: `taustar cell`, `taustar diagnose`, `taustar energies`,
//! `taustar split`, `taustar fit` and `taustar run`.
//!
//! One test binary for the directory (each file a module), so it links once.

mod cell;
mod diagnose;
mod energies;
mod fit;
mod run;
mod split;
