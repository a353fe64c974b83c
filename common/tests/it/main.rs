//! Integration tests of taustar-common: the docs/spec.md §8 invariants and the study format.
//!
//! One test binary for the whole directory (each file a module): one link instead of one
//! per file, and shared helpers stay in one place.

mod bml;
mod invariants;
mod mc;
mod plm;
mod potts_bml;
mod potts_cell;
mod potts_curves;
mod potts_formats;
mod potts_mc;
mod potts_plm;
mod potts_random;
mod study;
mod study_hostile;
