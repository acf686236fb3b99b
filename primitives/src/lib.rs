//! # sigil-primitives: what every other Sigil crate builds on
//!
//! The few types that the ledger, the enclave runtime and the pod must agree on byte for byte: [`Hash`]
//! (SHA-256), [`cbor`] (RFC 8949 §4.2.1 core deterministic encoding, and a decoder that accepts exactly that
//! encoding) and [`CodecError`], why bytes did not decode.
//!
//! What it must never do: depend on anything heavier than `ring`, `serde` and `ciborium` (it sits under the
//! verifier, which must build for a browser); accept two encodings of one value; panic on untrusted bytes; or
//! use `unsafe`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cbor;
pub mod clock;
pub mod hash;

pub use cbor::CodecError;
pub use hash::Hash;
