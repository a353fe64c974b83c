//! # taustar-science — the science of optimal sampling temperature, without studies
//!
//! The pieces a cell is made of (docs/spec.md §2–§5, §10), none of which knows what a study,
//! a grid point or a cell key is: ground truths and their exact data, fits, the exact τ
//! landscape and its τ* searches, the Monte Carlo estimators past enumeration, and Potts
//! models with the file formats they come in. `taustar-common` puts them together into
//! cells and studies; the binaries never need to look below it except for a user's model
//! (`taustar eval`, `diagnose`).
//!
//! Modules:
//! - [`model`]: ground truths (two-level, 2D Ising, Kaufman's closed form for the torus).
//! - [`exact`]: Walsh–Hadamard transforms, log-sum-exp, exact sampling.
//! - [`fit`]: the fits — two-level ML, fully connected Ising (exact MLE, the paper's
//!   gradient ascent, pseudo-likelihood, Boltzmann machine), Potts (plm, bml) — and what
//!   every fit reports ([`fit::FitMode`], [`fit::FitStop`]).
//! - [`tau`]: the exact τ landscape: D_rev, D_fwd, S, C, κ over τ, τ* and heat-peak search.
//! - [`mc`]: beyond enumeration: chains, tempering, MBAR, bootstrap errors, the τ
//!   estimators, a model's own curves (`diagnose`) and chain-drawn training data.
//! - [`potts`]: Potts models, their chain, enumeration, synthetic families, adabmDCA's
//!   parameter format, alignments and sequence weights.
#![deny(missing_docs)]

pub mod exact;
pub mod fit;
pub mod mc;
pub mod model;
pub mod potts;
pub mod tau;
