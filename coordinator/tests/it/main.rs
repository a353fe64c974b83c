//! Integration tests of the coordinator's handlers and server, in-process.
//!
//! One test binary for the whole directory (each file a module): one link instead of one
//! per file, and shared helpers stay in one place.

mod health;
mod hostile_handlers;
mod lease_expiry;
