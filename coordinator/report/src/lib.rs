//! # taustar-report — a study's tables and figures
//!
//! Reads a study store only through its read API ([`export::source::StoreSource`], one grid
//! point's results at a time) and writes, in one streaming pass each:
//! - [`export`]: the summary, cells and curves tables as CSV, Parquet and JSON;
//! - [`plot`]: the phase diagrams and per-point figures as PNG and SVG.
//!
//! It is its own crate so that the coordinator's server and store link neither arrow nor
//! plotters; the `taustar` binary (coordinator/cli) puts the two together.
#![deny(missing_docs)]

pub mod export;
pub mod plot;
