//! The `sigil` node as a library: what the binary and the multi-node tests share: [`pod`], a node's part in its
//! pod's consensus, and [`service`], what it does for callers (signed requests, the HTTPS API, the console).

pub mod pod;
pub mod service;
