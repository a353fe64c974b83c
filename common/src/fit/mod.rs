//! Maximum-likelihood fits of the learned families (docs/spec.md §4).

pub mod bml;
pub mod ising;
pub mod lbfgs;
pub(crate) mod linalg;
pub mod plm;
pub mod potts_bml;
pub mod potts_plm;
pub mod two_level;
