//! Study files (TOML) → grid points → cells. Being written; see issue 3.
