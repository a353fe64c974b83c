//! Maximum-likelihood fits of the learned families (SPEC §4).

pub mod ising;
mod linalg;
pub mod two_level;
