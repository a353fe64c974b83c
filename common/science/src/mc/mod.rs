//! Monte Carlo estimates for models too large to enumerate (docs/spec.md §10).
//!
//! This is the foundation the τ estimators build on; every piece is checked against an
//! exact answer (enumeration up to 24 spins, or Kaufman's closed form,
//! [`crate::model::kaufman`]) with z-scores over many seeds:
//! - [`model`]: a pairwise spin model — fields and a symmetric coupling matrix, stored as
//!   neighbour lists, so a sparse lattice and a dense fitted model share one code path.
//! - [`chain`]: single-site Metropolis sweeps with incrementally maintained local fields
//!   and energy.
//! - [`cluster`]: Wolff cluster moves for zero-field models with non-negative couplings (the
//!   nearest-neighbour Ising truth near and below T_c, where single flips stall).
//! - [`replica`]: what tempering needs of a model ([`replica::Ensemble`], [`replica::Replica`]),
//!   for spins and for Potts sequences alike.
//! - [`curves`]: a model's own S, ⟨E⟩, C and held-out log-likelihood against τ, no truth
//!   needed (`taustar diagnose`).
//! - [`local`]: single-site moves decided by ΔE alone ([`local::LocalEnsemble`]), for spins,
//!   Potts sequences and the Potts lattice.
//! - [`multicanonical`]: multicanonical sampling (Wang–Landau 1/t, then the recursion, then a
//!   frozen-weight production run by parallel walkers) and its reweighting to any β, where
//!   tempering cannot tunnel through a first-order-like transition.
//! - [`stats`]: the integrated autocorrelation time by Sokal's automatic window, the
//!   effective sample size and the standard error of a correlated series' mean.
//! - [`multispin`]: multispin-coded truth chains (64 replicas per word).
//! - [`tempering`]: parallel tempering and the placement of its β ladder.
//! - [`mbar`]: MBAR over the ladder's rungs and the block bootstrap of any statistic of it.
//! - [`ti`]: thermodynamic integration of ln Z, the cross-check of MBAR's.
//! - [`estimate`]: the τ estimators — τ*_rev, τ*_fwd, the divergences, κ and C with standard
//!   errors and the ladder's diagnostics.
//! - [`diagnostics`]: the convergence diagnostics of a tempering run, one type for every
//!   report.
//! - [`data`]: training data from a thinned chain of the truth, one sampler for every truth.
//! - [`truth`]: the truth's side of the divergences past enumeration, one chain loop.
//!
//! Everything is deterministic given the generator it is handed (the cell's, seeded from
//! its key), so a cell stays bit-identical on any worker.

pub mod chain;
pub mod cluster;
pub mod curves;
pub mod data;
pub mod diagnostics;
pub mod estimate;
pub mod local;
pub mod mbar;
pub mod model;
pub mod multicanonical;
pub mod multispin;
pub mod replica;
pub mod stats;
pub mod tempering;
pub mod ti;
pub mod truth;

/// `k` empty series, each with room for `capacity` values (`vec![Vec::with_capacity(c); k]`
/// would give the room to the last one only).
pub(crate) fn empty_series(k: usize, capacity: usize) -> Vec<Vec<f64>> {
    (0..k).map(|_| Vec::with_capacity(capacity)).collect()
}
