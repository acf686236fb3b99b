//! An in-memory ledger: the pure core wired together (entries, tree, validator-set history, checkpoints,
//! receipts). Tests, benchmarks and light tools use it; the RocksDB store will keep the same data on disk.

use ring::signature::Ed25519KeyPair;

use crate::checkpoint::{Checkpoint, SignedCheckpoint, ValidatorSet};
use crate::entry::Entry;
use crate::error::LedgerError;
use crate::hash::leaf_hash;
use crate::merkle::{inclusion_proof, root_at, MemTree};
use crate::receipt::{Receipt, SetChange};

/// A pod's log held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    entries: Vec<Vec<u8>>,
    tree: MemTree,
    /// (index, set after it) for every validator-set change.
    history: Vec<(u64, ValidatorSet)>,
    pod: String,
}

impl MemLog {
    /// A log that starts with `genesis`.
    pub fn new(genesis: &Entry) -> Result<MemLog, LedgerError> {
        let Entry::Genesis(g) = genesis else {
            return Err(LedgerError::Decode { what: "log", detail: "the first entry must be a genesis".into() });
        };
        let mut log = MemLog { pod: g.pod.clone(), ..MemLog::default() };
        log.append(genesis)?;
        Ok(log)
    }

    /// Appends an entry; returns its index. Validator-set changes are applied (and refused when invalid).
    pub fn append(&mut self, entry: &Entry) -> Result<u64, LedgerError> {
        let index = self.entries.len() as u64;
        if ValidatorSet::changes_with(entry) {
            let mut set = self.validators_at(index);
            set.apply(entry)?;
            self.history.push((index, set));
        }
        let bytes = entry.encode();
        self.tree.push(leaf_hash(&bytes));
        self.entries.push(bytes);
        Ok(index)
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The pod id.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// The encoded entry at `index`.
    pub fn entry(&self, index: u64) -> Option<&[u8]> {
        self.entries.get(index as usize).map(|e| e.as_slice())
    }

    /// The validator set defined by the first `size` entries.
    pub fn validators_at(&self, size: u64) -> ValidatorSet {
        self.history.iter().rev().find(|(i, _)| *i < size).map(|(_, s)| s.clone()).unwrap_or_default()
    }

    /// The checkpoint (unsigned) at `size`.
    pub fn checkpoint_at(&self, size: u64) -> Result<Checkpoint, LedgerError> {
        Ok(Checkpoint {
            origin: self.pod.clone(),
            size,
            root: root_at(&self.tree.nodes, size)?,
            validators: self.validators_at(size).digest(),
        })
    }

    /// A receipt for the entry at `index`, against a signed checkpoint of this log, signed by `signer`.
    pub fn receipt(
        &self,
        index: u64,
        checkpoint: &SignedCheckpoint,
        signer: &str,
        key: &Ed25519KeyPair,
    ) -> Result<Vec<u8>, LedgerError> {
        let size = checkpoint.checkpoint.size;
        let entry = self.entry(index).ok_or(crate::ProofError::IndexOutOfRange { index, size: self.size() })?;
        let proof = inclusion_proof(&self.tree.nodes, index, size)?;
        let changes = self
            .history
            .iter()
            .filter(|(i, _)| *i < size)
            .map(|(i, _)| {
                Ok(SetChange {
                    index: *i,
                    entry: self.entries[*i as usize].clone(),
                    proof: inclusion_proof(&self.tree.nodes, *i, size)?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Receipt::issue(entry, index, &proof, checkpoint, &changes, signer, key)
    }

    /// A consistency proof between two sizes of this log.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<crate::Hash>, LedgerError> {
        crate::merkle::consistency_proof(&self.tree.nodes, old, new)
    }
}
