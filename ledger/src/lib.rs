//! # ledger: the pod's append-only, provable log
//!
//! **Not implemented yet** (issue "Ledger core"). This crate will hold the ledger's pure core — entries,
//! the RFC 9162 Merkle log, inclusion and consistency proofs, checkpoints and receipts — with RocksDB storage and
//! the BFT state machine as adapters at its edge.
//!
//! What it must never do: depend on RocksDB, libp2p or HTTP in its core (storage and consensus are adapters),
//! or use `unsafe`.

#![forbid(unsafe_code)]
