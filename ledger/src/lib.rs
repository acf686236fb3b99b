//! # sigil-ledger: the pod's append-only, provable log
//!
//! The ledger is what makes a receipt worth something: an append-only log whose every entry can be proven to
//! anyone, offline, with nothing but the pod's genesis. This crate is its **pure core**: hashes and the
//! RFC 9162 Merkle tree with inclusion and consistency proofs ([`merkle`]), and checkpoints cosigned by the
//! validators ([`checkpoint`]), entries in canonical CBOR ([`entry`]) and COSE receipts that prove an entry to
//! anyone holding the genesis ([`receipt`]). Storage ([`store`]) keeps it on a key-value adapter: in memory, or RocksDB behind
//! the `rocksdb` feature.
//!
//! What it must never do: depend on RocksDB, libp2p or HTTP in its core (storage and consensus are adapters
//! behind traits such as [`merkle::NodeReader`]); panic on untrusted input (proofs, entries, receipts); or use
//! `unsafe`. It must keep building for a verifier that runs in a browser.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
pub mod entry;
pub mod error;
pub mod hash;
pub mod merkle;
pub mod receipt;
pub mod request;
pub mod store;

pub use entry::Entry;
pub use error::{LedgerError, ProofError};
pub use hash::Hash;
