//! # sigil-tidy: habits that check themselves
//!
//! Nothing to link: the crate is its test, `tests/tidy.rs` (rust-analyzer's `xtask/src/tidy.rs` is the model),
//! which reads the repository and fails when what is written in two places drifts apart: the fuzz targets, the
//! code map in ARCHITECTURE.md, the HTTP routes and `openapi.json`, and the one place the clock is read.
