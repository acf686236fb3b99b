//! Integration tests of the node and the `sigil` binary: pods of nodes on 127.0.0.1 (in process and as `sigil node run` processes), the HTTPS API, MCP, the CLI contracts.
//!
//! One test binary per crate (wasmtime's `tests/all/main.rs` is the model), so the crate and its heavy
//! dependencies link once: each file here is a module.

mod applet_cli;
mod cli;
mod genesis;
mod hostile;
mod image;
mod mcp;
mod measure_cli;
mod node;
mod pod;
mod policy;
mod receipt_cli;
mod replay;
mod soak;
mod status;
mod support;
/// A real TPM (swtpm) for the tests, shared with the attest crate's tests (which use all of it; these, the CLI's
/// part).
#[allow(dead_code)]
#[path = "../../../attest/tests/it/swtpm.rs"]
mod swtpm;
