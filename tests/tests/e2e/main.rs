//! End-to-end tests that start real taustar processes on loopback (helpers: the taustar-e2e library).
//!
//! One test binary for the whole directory (each file a module): one link instead of one
//! per file, and shared helpers stay in one place.

mod auth;
mod crash;
mod disk_full;
mod distributed;
mod drain;
mod faults;
mod slurm;
mod tls;
