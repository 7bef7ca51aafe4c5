//! SQL text → fingerprint. Pure functions, no I/O.

pub mod split;
