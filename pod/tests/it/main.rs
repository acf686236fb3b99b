//! Integration tests of sigil-pod: pods of nodes in this process on 127.0.0.1, with the fixtures of
//! `sigil_pod::testing`.
//!
//! One test binary per crate (wasmtime's `tests/all/main.rs` is the model): each file here is a module.

mod consensus;
