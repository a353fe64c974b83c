//! Store tests: see below.
