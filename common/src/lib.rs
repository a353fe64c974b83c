//! # taustar-common — studies and cells, built from `taustar-science`
//!
//! Everything in taustar ends in one pure function, [`run_cell`]: draw M samples from a
//! ground truth, fit an energy-based model to them, and evaluate the fitted model at every
//! sampling temperature τ against the truth (docs/spec.md §6). This crate holds that function
//! and the study model around it; the maths it is made of lives in [`taustar_science`]. It
//! knows nothing of gRPC, SQLite or threads: the coordinator and the worker are glue around it.
//!
//! Modules, in the order data flows through them:
//! - [`study`]: study file (TOML) → grid points → cells, canonical cell keys, seeds.
//! - [`cell`]: [`CellSpec`] → [`CellResult`], the unit of work: its truth (`cell/truth.rs`),
//!   the settings a study's cells share (`cell/settings.rs`) and the result with its parts
//!   (`cell/result.rs`).
//! - [`compute`]: the steps of a cell (data → fit → evaluate), one module per truth kind
//!   ([`compute::two_level`], [`compute::ising`], [`compute::potts`]), and the fit-free
//!   evaluation of a given model ([`compute::eval`]).
//! - [`result_fields`]: the one list of a result's scalar columns (export, summary, maps).
//! - [`aggregate`]: replicate statistics per grid point (phase-diagram tables).
//! - [`error`]: [`SpecError`], every way a study or cell description can be wrong.
#![deny(missing_docs)]

pub mod aggregate;
pub mod cell;
pub mod compute;
pub mod error;
pub mod result_fields;
pub mod study;

pub use cell::{
    CellKey, CellResult, CellSettings, CellSpec, CurveOutput, DataSize, FitMode, FitReport, FitSpec, FitStop,
    GridPoint, McmcReport, McmcSettings, Sampler, TauSummary, TruthSpec, TwoLevelFitReport,
};
pub use compute::run_cell;
pub use error::SpecError;
