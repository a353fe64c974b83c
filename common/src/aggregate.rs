//! Replicate statistics per grid point, and the flat tables built from them (docs/spec.md §6).
//!
//! A study's results arrive one cell at a time; a phase diagram needs, per grid point, the
//! distribution of τ*, of the divergences and of the fitted parameters over replicates.
//! [`PointAggregator`] collects one grid point's replicates (as they arrive, so a running
//! study can show partial diagrams) and [`PointAggregator::finish`] turns them into a
//! [`SummaryRow`]. Only one grid point's values are held at a time: a study of 10^6 cells
//! streams through in memory proportional to the replicates of one point.
//!
//! [`table`] flattens summaries, cells and τ curves into typed columns — the export
//! contract read by pandas, polars and Julia — without doing any I/O itself.
//!
//! Definitions used throughout (stated once, relied on by the export contract):
//! - `std` is the sample standard deviation (denominator n − 1); empty for n < 2.
//! - `sem` = std / √n.
//! - Quantiles (`q25`, `median`, `q75`) use linear interpolation between order statistics,
//!   Hyndman–Fan type 7 (numpy's and R's default): for sorted x₀ ≤ … ≤ x_{n−1},
//!   h = (n − 1)p, q = x_⌊h⌋ + (h − ⌊h⌋)(x_{⌊h⌋+1} − x_⌊h⌋).
//! - Non-finite values (which a valid result never holds) are left out of every statistic,
//!   so `count` can be lower than `replicates`; optional quantities (τ_heat_peak, τ_var, the
//!   two-level fit) are aggregated over the replicates that have them, and `count` says how many.

mod stats;
pub(crate) mod summary;
pub mod table;

pub use stats::{quantile_sorted, Stats};
pub use summary::{PointAggregator, Quantity, SummaryRow};
