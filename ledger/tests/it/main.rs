//! Integration tests of the ledger: the Merkle log against the transparency-dev vectors, entries, checkpoints, receipts, the RocksDB store and crash safety.
//!
//! One test binary per crate (wasmtime's `tests/all/main.rs` is the model), so the crate and its heavy
//! dependencies link once: each file here is a module.

mod checkpoint;
mod crash;
mod entry;
mod merkle;
mod receipt;
mod store;
