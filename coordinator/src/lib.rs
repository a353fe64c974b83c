//! # taustar-coordinator — the durable, distributed runtime of a study
//!
//! A study file expands (in `taustar_common::study`) into cells. This crate keeps them in a SQLite
//! store, hands them to workers under leases over gRPC, and commits their results exactly
//! once. Tables and figures are the `taustar-report` crate (coordinator/report), which reads
//! the store through its read API only; the `taustar` binary (coordinator/cli, one module per
//! subcommand) is glue on top of both.
//!
//! ```text
//!   taustar serve / taustar run
//!          │ study file → StudyDefinition + cells         (study_file)
//!          ▼
//!   StudyStore (SQLite, WAL) ◄── StoreHandle: one writer task, batched commits   (store, writer)
//!          ▲                          ▲
//!          │ read-only connection     │ lease / commit / heartbeat / release / expire
//!   status, Watch, export, plot       │
//!                              CoordinatorService (tonic)   (service, batch, clock)
//!                                     ▲  interceptor hook (auth)
//!                                     │  gRPC over TCP, health service beside it
//!                              server::serve — shutdown, lease sweeper, exit-when-done
//!                                     ▲
//!                              workers (taustar-worker crate; `taustar run` embeds one)
//! ```
//!
//! Invariants (docs/architecture.md): a result is committed in the same transaction as its cell's
//! state change, keyed by the cell, so duplicates and late results are ignored and counted;
//! leases expire and return cells to the queue; a cell failing `max_failures` times is
//! marked failed without blocking the study; nothing holds all cells or results in memory.
//!
//! Shutdown follows mini-redis: one broadcast tells every task to stop, streams finish the
//! results already in flight within a grace period, and the store writer drains its queue
//! and closes the database after the last handle is gone.
#![deny(missing_docs)]

pub mod auth;
pub mod batch;
pub mod clock;
pub mod metrics;
pub mod progress;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod study_file;
pub mod tls;
pub mod writer;

pub use store::{StoreError, StudyStatus, StudyStore};
