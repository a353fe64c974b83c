//! Ground truths (docs/spec.md §2) and how to draw exact data from them (docs/spec.md §3).

pub mod ising;
pub mod kaufman;
pub mod potts_lattice;
pub mod two_level;
