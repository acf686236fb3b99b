//! Integration tests of the attestation crate: real-hardware vectors, tamper negatives, parsers under arbitrary bytes, measurements against independent implementations, collection against swtpm.
//!
//! One test binary per crate (wasmtime's `tests/all/main.rs` is the model), so the crate and its heavy
//! dependencies link once: each file here is a module.

mod azure_collect;
mod firmware;
mod hardware;
mod measure;
mod no_panic;
mod swtpm;
mod tdvf;
mod vectors;
mod vtpm;
