//! tau (being written).
