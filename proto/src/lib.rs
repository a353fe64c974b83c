//! # taustar-proto — the only wire contract between coordinator and workers
//!
//! - [`pb`]: the prost messages and tonic client/server generated from `taustar.proto`
//!   (compiled by the pure-Rust `protox` in `build.rs`; no `protoc` needed).
//! - [`convert`]: the one place where wire types meet `common`'s science types
//!   ([`taustar_common::CellSpec`], [`taustar_common::CellResult`]). Neither `common` nor the binaries
//!   translate field by field anywhere else.
//!
//! - [`auth`] and [`tls`]: how a connection is secured, the same for both ends — the
//!   shared bearer token, and TLS / mutual TLS certificates read with clear errors.
//! - [`process`]: what both binaries do alike as processes — drain on SIGINT/SIGTERM, and
//!   one logging setup.
//!
//! Both binaries sit on top of this crate; neither imports from the other.
//!
//! [`PROTOCOL_VERSION`] is sent in every `Register`; the coordinator refuses other versions.
#![deny(missing_docs)]

pub mod auth;
pub mod convert;
pub mod process;
pub mod tls;

/// Generated gRPC code for package `taustar.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("taustar.v1");
}

pub use convert::ConvertError;

/// The wire protocol version. Bump it on any change an older peer would misread.
///
/// 2: `HeartbeatRequest.cell_ids` — heartbeats extend only the listed leases (a version-1
/// worker sends none, so all its leases would expire).
///
/// 3: `CellResult.curve` carries the τ curve as packed columns; a version-2 coordinator would
/// store such a result without its curve.
///
/// 4: `CellSettings.rel_tol` (the paper mode's stopping rule), `CellResult.kappa_at_1`,
/// `heat_capacity_at_1`, `fit_stop`, and the curve's κ column; a version-3 worker would stop
/// every paper-mode fit at its built-in tolerance and report no κ.
///
/// 5: `CellSettings.mcmc` (Monte Carlo evaluation) and the result's standard errors,
/// diagnostics and `curve_se`; a version-4 worker would evaluate a Monte Carlo study exactly
/// and report no error bars.
///
/// 6: `CellResult.equilibrated_tau_lo`, `tau_fwd_equilibrated` and its standard error; a
/// version-5 worker would leave them out, so the same cell would read differently depending
/// on which worker computed it.
pub const PROTOCOL_VERSION: u32 = 7;

/// The encoded `FileDescriptorSet` of `taustar.proto`: what gRPC reflection serves, so that
/// `grpcurl` or a Python client can list the services and build the messages without the
/// `.proto` file.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/taustar_descriptor.bin"));
