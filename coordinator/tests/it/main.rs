//! Integration tests of the taustar CLI and the coordinator's handlers, in-process and as a process.
//!
//! One test binary for the whole directory (each file a module): one link instead of one
//! per file, and shared helpers stay in one place.

mod cli_cell;
mod cli_run;
mod health;
mod hostile_handlers;
mod lease_expiry;
