//! # sigil-runtime: the wasmtime host for applets
//!
//! Runs applets — WebAssembly modules with a [`Manifest`] — inside the node's enclave, gives them only the
//! capabilities their manifest grants, stops them at their fuel, memory and time limits, and describes every
//! execution precisely enough to be committed and audited ([`Execution`], [`ReceiptFields`]).
//!
//! ```text
//! Runtime::new(config)                 one engine, pooling allocator, epoch ticker
//!   .load(manifest, wasm) -> Applet    digest check, import/export check, compile, InstancePre (cached by digest)
//!   .invoke(&applet, &call, state)     authorize -> instantiate -> call -> Execution { outcome, output,
//!                                      write_set, fuel_used, logs, receipt: ReceiptFields }
//! ```
//!
//! The host ABI applets see (imports from module `sigil`, plus a small WASI preview 1 subset that maps onto the
//! same capabilities) is documented in `docs/applets.md`; `applets/sdk` wraps it for Rust.
//!
//! Feature `engine` (default) brings wasmtime. Without it the crate still parses and validates manifests, checks
//! access rules, and encodes and applies write sets: what clients, validators and fuzzers need.
//!
//! What this crate never does: know about libp2p or the node's HTTP API, or give an applet ambient authority. The
//! only network it touches is applet egress, through the allow-list in [`egress`].

#![deny(missing_docs)]

pub mod egress;
#[cfg(feature = "engine")]
mod host;
pub mod manifest;
#[cfg(feature = "engine")]
mod runtime;
pub mod state;

pub use manifest::{Manifest, Refusal};
#[cfg(feature = "engine")]
pub use runtime::{
    Applet, Call, Execution, LogLine, Outcome, ReceiptFields, Runtime, RuntimeConfig, MAX_OUTCOME_MESSAGE,
};
pub use state::{MemState, State, WriteSet};

use sigil_primitives::Hash;

/// Errors loading applets or running the runtime (not applet outcomes: those are [`Outcome`]s).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The manifest is malformed or breaks a rule.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The module is not the one the manifest names.
    #[error("module digest {module} differs from the manifest's code_digest {manifest}")]
    DigestMismatch {
        /// What the manifest says.
        manifest: Hash,
        /// SHA-256 of the module given.
        module: Hash,
    },
    /// The module does not compile, or its imports or exports break the ABI.
    #[error("module: {0}")]
    Module(String),
    /// The request was refused before any code ran.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The runtime could not run it now (e.g. every instance slot is busy); nothing ran.
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// Engine setup failed.
    #[error("engine: {0}")]
    Engine(String),
}
