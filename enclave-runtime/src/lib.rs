//! # enclave-runtime: the wasmtime host for applets
//!
//! **Not implemented yet** (issue "Enclave runtime"). This crate will run applets (WebAssembly modules with a
//! manifest) inside the enclave with fuel/epoch deadlines, memory limits and only the capabilities they were
//! granted, and describe every execution as a receipt.
//!
//! What it must never do: know about libp2p or HTTP, or give an applet any ambient authority.
