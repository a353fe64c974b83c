//! Replicate statistics per grid point. Being written; see issue 4.
