//! # taustar-common — the science of optimal sampling temperature
//!
//! Everything in taustar ends in one pure function, [`run_cell`]: draw M samples from a
//! ground truth, fit an energy-based model to them, and evaluate the fitted model at every
//! sampling temperature τ against the truth (docs/spec.md §6). This crate holds that function and
//! the study model around it. It knows nothing of gRPC, SQLite or threads: the coordinator
//! and the worker are glue around it.
//!
//! Modules, in the order data flows through them:
//! - [`study`]: study file (TOML) → grid points → cells, canonical cell keys, seeds.
//! - [`model`]: ground truths (two-level, 2D Ising) and their exact enumeration.
//! - [`exact`]: Walsh–Hadamard transforms, log-sum-exp, exact sampling.
//! - [`fit`]: maximum-likelihood fits (two-level, fully connected Ising).
//! - [`tau`]: evaluation of D_rev, D_fwd, entropy, heat capacity over τ; τ* search.
//! - [`cell`]: [`CellSpec`] → [`CellResult`], the unit of work; [`compute`] runs its steps.
//! - [`aggregate`]: replicate statistics per grid point (phase-diagram tables).
#![deny(missing_docs)]

pub mod aggregate;
pub mod cell;
pub mod compute;
pub mod error;
pub mod potts_cell;
pub mod result_fields;
pub mod study;

pub use cell::{
    CellKey, CellResult, CellSettings, CellSpec, CurveOutput, DataSize, FitMode, FitSpec, FitStop, GridPoint,
    IsingFitReport, McmcReport, McmcSettings, TauSummary, TruthSpec, TwoLevelFitReport,
};
pub use compute::run_cell;
pub use error::SpecError;
