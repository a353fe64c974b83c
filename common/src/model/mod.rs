//! Ground truths (SPEC §2) and how to draw exact data from them (SPEC §3).

pub mod ising;
pub mod two_level;
