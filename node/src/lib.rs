//! The `sigil` node as a library: what the binary and the multi-node tests share.

pub mod pod;
pub mod service;
