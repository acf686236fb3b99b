//! The `sigil` node as a library: [`service`], what a node does for its callers (signed requests, the HTTPS API,
//! MCP, OAuth, the console), over its part in the pod's consensus (the `sigil-pod` crate), and [`config`], the
//! node's configuration file. The binary (`main.rs` and the `*_cmd.rs` files) is the CLI on top.

pub mod config;
pub mod service;
