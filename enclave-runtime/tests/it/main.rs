//! Integration tests of the enclave runtime: the example applets in wasmtime, limits, capabilities, egress against loopback servers.
//!
//! One test binary per crate (wasmtime's `tests/all/main.rs` is the model), so the crate and its heavy
//! dependencies link once: each file here is a module.

mod egress;
mod runtime;
mod support;
