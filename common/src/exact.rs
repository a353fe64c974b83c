//! exact (being written).
