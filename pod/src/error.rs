//! [`PodError`]: why a node could not start, or a key or genesis is not one a pod can use. (Entries the pod
//! refuses are [`crate::Rejection`]s.)

use std::path::PathBuf;

use thiserror::Error;

/// Why the pod layer cannot go on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PodError {
    /// The genesis is not one a node may start from (its kind, its policy, a validator's key or evidence).
    #[error("{0}")]
    Genesis(String),
    /// The data directory holds another pod's ledger.
    #[error("{} holds the ledger of another genesis (pod {pod:?})", dir.display())]
    OtherGenesis {
        /// The data directory.
        dir: PathBuf,
        /// The pod whose ledger it holds.
        pod: String,
    },
    /// A file or directory could not be used.
    #[error("{what}: {error}")]
    Io {
        /// What was being done, and to which path.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// What the node keeps beside the ledger (its tip, rules, undecided blocks) could not be loaded.
    #[error("{0}")]
    State(String),
    /// The ledger store failed to open, read or write.
    #[error(transparent)]
    Ledger(#[from] sigil_ledger::LedgerError),
    /// A p2p address that is not a multiaddr.
    #[error("{0:?} is not a multiaddr")]
    Address(String),
    /// Bytes that are not an Ed25519 public key.
    #[error("not an Ed25519 public key: {0}")]
    Key(String),
    /// The consensus engine did not start.
    #[error("{0}")]
    Engine(String),
}
