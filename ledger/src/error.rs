//! The one error type of the ledger crate.

use thiserror::Error;

use crate::merkle::NodePos;

/// Everything that can go wrong in `ledger`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerError {
    /// A proof does not verify, or cannot be built for the sizes asked.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// A tree node the computation needs is not stored.
    #[error("tree node at level {} index {} is missing", .0.level, .0.index)]
    MissingNode(NodePos),
    /// Bytes that do not decode as what they claim to be.
    #[error("decode {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// Bytes that are not the canonical CBOR encoding of what they claim to be.
    #[error(transparent)]
    Codec(#[from] sigil_primitives::CodecError),
    /// A checkpoint that does not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The storage backend failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Stored data does not match its hashes: the store is damaged.
    #[error("corrupted ledger data: {0}")]
    Corrupt(String),
}

/// Why a Merkle proof is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not in the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// Consistency between these sizes is undefined (need 0 < old ≤ new).
    #[error("no consistency proof from size {old} to size {new}")]
    BadSizes {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
    /// The proof has more hashes than the tree shape allows.
    #[error("proof has too many hashes")]
    TooLong,
    /// The proof has fewer hashes than the tree shape needs.
    #[error("proof has too few hashes")]
    TooShort,
    /// The proof leads to another root.
    #[error("proof leads to a different root")]
    RootMismatch,
    /// A proof element is not a 32-byte hash.
    #[error("proof element {0} is not 32 bytes")]
    BadHash(usize),
}
