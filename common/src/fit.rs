//! fit (being written).
