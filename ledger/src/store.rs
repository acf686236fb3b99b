//! Storage: the ledger on a key-value store, one atomic, synced write per block.
//!
//! [`Kv`] is the adapter trait (get, prefix scan, atomic batch write that is durable when it returns);
//! [`MemKv`] keeps everything in memory and [`RocksKv`] (feature `rocksdb`) on disk. [`Ledger`] owns the
//! layout and the rules:
//!
//! | key | value |
//! |---|---|
//! | `m` | meta: pod id, size, root (CBOR) |
//! | `e` ‖ index (u64 BE) | the entry's canonical encoding |
//! | `n` ‖ level (u8) ‖ index (u64 BE) | a perfect subtree's hash |
//! | `v` ‖ index | (empty) a validator-set change at this index |
//! | `c` ‖ size | a cosigned checkpoint (signed note text) |
//! | `ir` ‖ request hash | index of the invocation of that request |
//! | `ij` ‖ request hash | index of the rejection of that request (one per request: a replay of a rejected request is not recorded again) |
//! | `ic` ‖ SHA-256(caller key) ‖ index, `ia` ‖ SHA-256(applet) ‖ index, `it` ‖ time (ms, BE) ‖ index | (empty) audit indexes |
//! | `x` ‖ key | the driving adapter's own data (consensus: decided blocks, certificates), see [`Ledger::append_block_with`] |
//!
//! A block's entries, tree nodes, indexes and the new meta go in one batch, so after a crash the store holds
//! exactly the blocks whose write returned. Reads check what they return: an entry must hash to its stored
//! leaf, and on open the frontier must reproduce the stored root; a mismatch is reported as corruption, never
//! served as valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{SignedCheckpoint, ValidatorSet};
use crate::entry::{Encoded, Entry};
use crate::error::LedgerError;
use crate::hash::{leaf_hash, Hash};
use crate::merkle::{inclusion_proof, root_at, Frontier, NodePos, NodeReader};
use crate::receipt::{ProvenEntry, Receipt};
use sigil_primitives::cbor;

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Key-value adapter.
pub trait Kv: Send {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Up to `limit` pairs whose key starts with `prefix`, in key order, starting at `from` (inclusive) when
    /// given.
    fn scan(&self, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<Pair>, LedgerError>;
    /// The pair with the greatest key that starts with `prefix` (one seek, however many there are).
    fn last(&self, prefix: &[u8]) -> Result<Option<Pair>, LedgerError>;
    /// Writes all pairs and removes all `deletes` atomically; durable (synced) when it returns.
    fn apply(&mut self, batch: Vec<Pair>, deletes: Vec<Vec<u8>>) -> Result<(), LedgerError>;
    /// Writes all pairs atomically; durable (synced) when it returns.
    fn write(&mut self, batch: Vec<Pair>) -> Result<(), LedgerError> {
        self.apply(batch, Vec::new())
    }
}

/// The least key greater than every key that starts with `prefix`, if there is one (not for all-0xff prefixes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(b) = end.pop() {
        if b < 0xff {
            end.push(b + 1);
            return Some(end);
        }
    }
    None
}

/// An in-memory [`Kv`].
#[derive(Clone, Debug, Default)]
pub struct MemKv {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemKv {
    /// Overwrites a value behind the ledger's back (tests of corruption detection).
    pub fn tamper(&mut self, key: &[u8], value: &[u8]) {
        self.map.insert(key.to_vec(), value.to_vec());
    }
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.map.get(key).cloned())
    }
    fn scan(&self, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<Pair>, LedgerError> {
        let start = from.unwrap_or(prefix).to_vec();
        Ok(self
            .map
            .range(start..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Pair>, LedgerError> {
        let last = match prefix_end(prefix) {
            Some(end) => self.map.range(prefix.to_vec()..end).next_back(),
            None => self.map.range(prefix.to_vec()..).next_back(),
        };
        Ok(last.map(|(k, v)| (k.clone(), v.clone())))
    }
    fn apply(&mut self, batch: Vec<Pair>, deletes: Vec<Vec<u8>>) -> Result<(), LedgerError> {
        for k in deletes {
            self.map.remove(&k);
        }
        self.map.extend(batch);
        Ok(())
    }
}

/// RocksDB [`Kv`]: one `WriteBatch` per write, synced.
#[cfg(feature = "rocksdb")]
pub struct RocksKv {
    db: rocksdb::DB,
}

#[cfg(feature = "rocksdb")]
impl RocksKv {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<RocksKv, LedgerError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_paranoid_checks(true);
        let db = rocksdb::DB::open(&opts, path).map_err(|e| storage(format!("opening {}: {e}", path.display())))?;
        Ok(RocksKv { db })
    }
}

#[cfg(feature = "rocksdb")]
impl Kv for RocksKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.db.get(key).map_err(|e| storage(e.to_string()))
    }
    fn scan(&self, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<Pair>, LedgerError> {
        let start = from.unwrap_or(prefix);
        let mut out = Vec::new();
        for item in self.db.iterator(rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward)) {
            let (k, v) = item.map_err(|e| storage(e.to_string()))?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Pair>, LedgerError> {
        let end = prefix_end(prefix);
        let mode = match &end {
            // Positions at the last key at or before `end`; `end` itself, if present, is skipped.
            Some(end) => rocksdb::IteratorMode::From(end, rocksdb::Direction::Reverse),
            None => rocksdb::IteratorMode::End,
        };
        for item in self.db.iterator(mode) {
            let (k, v) = item.map_err(|e| storage(e.to_string()))?;
            if end.as_deref() == Some(&k[..]) {
                continue;
            }
            return Ok(k.starts_with(prefix).then(|| (k.to_vec(), v.to_vec())));
        }
        Ok(None)
    }
    fn apply(&mut self, batch: Vec<Pair>, deletes: Vec<Vec<u8>>) -> Result<(), LedgerError> {
        let mut wb = rocksdb::WriteBatch::default();
        for k in deletes {
            wb.delete(k);
        }
        for (k, v) in batch {
            wb.put(k, v);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(|e| storage(e.to_string()))
    }
}

fn storage(detail: String) -> LedgerError {
    LedgerError::Storage(detail)
}

fn corrupt(detail: String) -> LedgerError {
    LedgerError::Corrupt(detail)
}

fn be(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// The namespace of the adapter's keys.
const AUX: &[u8] = b"x";

fn aux_key(k: &[u8]) -> Vec<u8> {
    [AUX, k].concat()
}

fn node_key(pos: NodePos) -> Vec<u8> {
    key(b"n", &[&[pos.level], &be(pos.index)])
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    pod: String,
    size: u64,
    root: Hash,
}

/// An audit query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Entries of requests made by this caller key.
    Caller(Vec<u8>),
    /// Entries of requests to this applet.
    Applet(String),
    /// Entries of requests in `[from_ms, to_ms)`.
    TimeRange {
        /// Start, Unix milliseconds, inclusive.
        from_ms: u64,
        /// End, Unix milliseconds, exclusive.
        to_ms: u64,
    },
}

/// One page of a query's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Matching entry indexes, in order.
    pub indexes: Vec<u64>,
    /// Pass as `after` to get the next page; `None` when there is none.
    pub next: Option<Vec<u8>>,
}

/// The ledger on a [`Kv`].
pub struct Ledger {
    kv: Box<dyn Kv>,
    meta: Meta,
    frontier: Frontier,
    /// (index, set after it) for every validator-set change.
    history: Vec<(u64, ValidatorSet)>,
}

struct KvNodes<'a>(&'a dyn Kv);

impl NodeReader for KvNodes<'_> {
    fn node(&self, pos: NodePos) -> Result<Hash, LedgerError> {
        match self.0.get(&node_key(pos))? {
            Some(v) => Hash::from_slice(&v).ok_or_else(|| corrupt(format!("node {pos:?} is {} bytes", v.len()))),
            None => Err(LedgerError::MissingNode(pos)),
        }
    }
}

impl Ledger {
    /// Starts a new ledger with `genesis` on an empty store.
    pub fn create(kv: Box<dyn Kv>, genesis: &Entry) -> Result<Ledger, LedgerError> {
        let Entry::Genesis(g) = genesis else {
            return Err(LedgerError::Decode { what: "ledger", detail: "the first entry must be a genesis".into() });
        };
        if kv.get(b"m")?.is_some() {
            return Err(storage("the store already holds a ledger".into()));
        }
        let mut l = Ledger {
            kv,
            meta: Meta { pod: g.pod.clone(), size: 0, root: Hash::default() },
            frontier: Frontier::new(),
            history: Vec::new(),
        };
        l.append_block(std::slice::from_ref(genesis))?;
        Ok(l)
    }

    /// A new ledger in memory ([`MemKv`]): tests, benchmarks and examples.
    pub fn in_memory(genesis: &Entry) -> Result<Ledger, LedgerError> {
        Ledger::create(Box::new(MemKv::default()), genesis)
    }

    /// Opens an existing ledger, checking that the stored tree reproduces the stored root.
    pub fn open(kv: Box<dyn Kv>) -> Result<Ledger, LedgerError> {
        let raw = kv.get(b"m")?.ok_or_else(|| storage("the store holds no ledger".into()))?;
        let meta: Meta = cbor::decode(&raw, "ledger meta", 4096).map_err(|e| corrupt(format!("meta: {e}")))?;
        let frontier = Frontier::load(meta.size, &KvNodes(kv.as_ref())).map_err(|e| corrupt(format!("tree: {e}")))?;
        if frontier.root() != meta.root {
            return Err(corrupt(format!(
                "the stored tree's root {} is not the committed root {}",
                frontier.root(),
                meta.root
            )));
        }
        let mut l = Ledger { kv, meta, frontier, history: Vec::new() };
        let mut set = ValidatorSet::default();
        let mut from: Option<Vec<u8>> = None;
        loop {
            let page = l.kv.scan(b"v", from.as_deref(), 1024)?;
            let done = page.len() < 1024;
            for (k, _) in &page {
                let index = u64::from_be_bytes(k[1..9].try_into().map_err(|_| corrupt("bad change key".into()))?);
                if index >= l.meta.size {
                    continue;
                }
                set.apply(&l.entry(index)?)?;
                l.history.push((index, set.clone()));
            }
            match page.last() {
                Some((k, _)) if !done => from = Some([k.as_slice(), &[0]].concat()),
                _ => break,
            }
        }
        Ok(l)
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.meta.size
    }

    /// Current root.
    pub fn root(&self) -> Hash {
        self.meta.root
    }

    /// The pod id.
    pub fn pod(&self) -> &str {
        &self.meta.pod
    }

    /// The validator set the first `size` entries define.
    pub fn validators_at(&self, size: u64) -> ValidatorSet {
        self.history.iter().rev().find(|(i, _)| *i < size).map(|(_, s)| s.clone()).unwrap_or_default()
    }

    /// Appends a block of entries in one atomic, synced write. Nothing is written if any entry is refused.
    pub fn append_block(&mut self, entries: &[Entry]) -> Result<(u64, Hash), LedgerError> {
        let encoded: Vec<Encoded> = entries.iter().cloned().map(Encoded::new).collect();
        self.append_block_with(&encoded, Vec::new(), Vec::new(), None)
    }

    /// Appends a block of entries together with `aux` pairs of the adapter that drives the ledger (consensus: the
    /// decided block and its commit certificate), all in one atomic, synced write. `aux` keys live in their own
    /// namespace ([`Ledger::aux_get`]); `aux_deletes` are removed from it in the same write.
    ///
    /// `checkpoint`, when given, must be the cosigned checkpoint of the ledger after this block (its size, root
    /// and validator set, signed by a quorum of that set); it is stored in the same write, or nothing is.
    pub fn append_block_with(
        &mut self,
        entries: &[Encoded],
        aux: Vec<Pair>,
        aux_deletes: Vec<Vec<u8>>,
        checkpoint: Option<&SignedCheckpoint>,
    ) -> Result<(u64, Hash), LedgerError> {
        let mut batch: Vec<Pair> = aux.into_iter().map(|(k, v)| (aux_key(&k), v)).collect();
        let mut frontier = self.frontier.clone();
        let mut history = Vec::new();
        let mut set = self.validators_at(self.meta.size);
        for enc in entries {
            let e = enc.entry();
            let index = frontier.size();
            if index > 0 && matches!(e, Entry::Genesis(_)) {
                return Err(LedgerError::Decode { what: "block", detail: "a genesis after the first entry".into() });
            }
            if ValidatorSet::changes_with(e) {
                set.apply(e)?;
                history.push((index, set.clone()));
                batch.push((key(b"v", &[&be(index)]), Vec::new()));
            }
            for (pos, h) in frontier.append(enc.leaf_hash()) {
                batch.push((node_key(pos), h.0.to_vec()));
            }
            index_entry(&mut batch, e, index);
            batch.push((key(b"e", &[&be(index)]), enc.bytes().to_vec()));
        }
        let meta = Meta { pod: self.meta.pod.clone(), size: frontier.size(), root: frontier.root() };
        if let Some(cp) = checkpoint {
            let c = &cp.checkpoint;
            if c.origin != meta.pod || c.size != meta.size || c.root != meta.root || c.validators != set.digest() {
                return Err(LedgerError::Checkpoint("it does not describe the ledger after this block".into()));
            }
            cp.verify(&meta.pod, &set)?;
            batch.push((key(b"c", &[&be(c.size)]), cp.to_note().into_bytes()));
        }
        batch.push((b"m".to_vec(), cbor::encode(&meta)));
        self.kv.apply(batch, aux_deletes.iter().map(|k| aux_key(k)).collect())?;
        self.frontier = frontier;
        self.history.extend(history);
        self.meta = meta;
        Ok((self.meta.size, self.meta.root))
    }

    /// The adapter's value at `key` (see [`Ledger::append_block_with`]).
    pub fn aux_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.kv.get(&aux_key(key))
    }

    /// Up to `limit` adapter pairs whose key starts with `prefix`, from `from` (inclusive), keys without the
    /// namespace.
    pub fn aux_scan(&self, prefix: &[u8], from: Option<&[u8]>, limit: usize) -> Result<Vec<Pair>, LedgerError> {
        let from = from.map(aux_key);
        Ok(self
            .kv
            .scan(&aux_key(prefix), from.as_deref(), limit)?
            .into_iter()
            .map(|(k, v)| (k[AUX.len()..].to_vec(), v))
            .collect())
    }

    /// Writes adapter pairs (and removes `deletes`) outside any block, atomically and synced.
    pub fn aux_write(&mut self, pairs: Vec<Pair>, deletes: Vec<Vec<u8>>) -> Result<(), LedgerError> {
        let pairs = pairs.into_iter().map(|(k, v)| (aux_key(&k), v)).collect();
        self.kv.apply(pairs, deletes.iter().map(|k| aux_key(k)).collect())
    }

    /// The root the ledger would have after appending `entries`, and its size; nothing is written.
    pub fn root_after(&self, entries: &[Encoded]) -> (u64, Hash) {
        let mut frontier = self.frontier.clone();
        for e in entries {
            frontier.append(e.leaf_hash());
        }
        (frontier.size(), frontier.root())
    }

    /// The validator set after appending `entries` to the current ledger; nothing is written.
    pub fn validators_after(&self, entries: &[Encoded]) -> Result<ValidatorSet, LedgerError> {
        let mut set = self.validators_at(self.meta.size);
        for e in entries {
            set.apply(e.entry())?;
        }
        Ok(set)
    }

    /// Appends one entry as a block of its own; returns its index.
    pub fn append(&mut self, entry: &Entry) -> Result<u64, LedgerError> {
        let index = self.meta.size;
        self.append_block(std::slice::from_ref(entry))?;
        Ok(index)
    }

    /// A consistency proof between two sizes of this ledger.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        if new > self.meta.size {
            return Err(crate::ProofError::BadSizes { old, new }.into());
        }
        crate::merkle::consistency_proof(&KvNodes(self.kv.as_ref()), old, new)
    }

    /// The entry at `index`, checked against its stored leaf hash.
    pub fn entry_bytes(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        if index >= self.meta.size {
            return Err(crate::ProofError::IndexOutOfRange { index, size: self.meta.size }.into());
        }
        let bytes =
            self.kv.get(&key(b"e", &[&be(index)]))?.ok_or_else(|| corrupt(format!("entry {index} is missing")))?;
        let leaf = KvNodes(self.kv.as_ref()).node(NodePos::new(0, index))?;
        if leaf_hash(&bytes) != leaf {
            return Err(corrupt(format!("entry {index} does not match its leaf hash")));
        }
        Ok(bytes)
    }

    /// The decoded entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Entry, LedgerError> {
        Entry::decode(&self.entry_bytes(index)?).map_err(|e| corrupt(format!("entry {index}: {e}")))
    }

    /// The unsigned checkpoint at `size` (what validators sign).
    pub fn checkpoint_at(&self, size: u64) -> Result<crate::checkpoint::Checkpoint, LedgerError> {
        Ok(crate::checkpoint::Checkpoint {
            origin: self.meta.pod.clone(),
            size,
            root: root_at(&KvNodes(self.kv.as_ref()), size)?,
            validators: self.validators_at(size).digest(),
        })
    }

    /// Stores a cosigned checkpoint after checking it against this ledger (root, set, quorum).
    pub fn add_checkpoint(&mut self, cp: &SignedCheckpoint) -> Result<(), LedgerError> {
        let c = &cp.checkpoint;
        if c.size == 0 || c.size > self.meta.size || self.checkpoint_at(c.size)? != *c {
            return Err(LedgerError::Checkpoint("it does not describe this ledger".into()));
        }
        cp.verify(&self.meta.pod, &self.validators_at(c.size))?;
        self.kv.write(vec![(key(b"c", &[&be(c.size)]), cp.to_note().into_bytes())])
    }

    /// The newest stored checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, LedgerError> {
        // Checkpoints are keyed by size, big-endian: the last key is the latest.
        self.kv
            .last(b"c")?
            .map(|(_, v)| {
                let text = String::from_utf8(v).map_err(|_| corrupt("a checkpoint is not UTF-8".into()))?;
                SignedCheckpoint::parse(&text).map_err(|e| corrupt(format!("checkpoint: {e}")))
            })
            .transpose()
    }

    /// The keys of nodes that were validators and are not now (removed by a `node_removed` entry).
    pub fn former_validators(&self) -> Vec<Vec<u8>> {
        let now = self.validators_at(self.size());
        let mut former: Vec<Vec<u8>> = Vec::new();
        for (_, set) in &self.history {
            for m in &set.members {
                if !now.members.iter().any(|n| n.public_key == m.public_key) && !former.contains(&m.public_key) {
                    former.push(m.public_key.clone());
                }
            }
        }
        former
    }

    /// A receipt for the entry at `index` against `checkpoint`, signed by the validator `signer`: with the
    /// validator-set changes up to the checkpoint and, for an invocation, the other entries it names
    /// ([`Receipt::references`]), each with its inclusion proof.
    pub fn receipt(
        &self,
        index: u64,
        checkpoint: &SignedCheckpoint,
        signer: &str,
        key_pair: &ring::signature::Ed25519KeyPair,
    ) -> Result<Vec<u8>, LedgerError> {
        let size = checkpoint.checkpoint.size;
        let nodes = KvNodes(self.kv.as_ref());
        let proven = |i: u64| -> Result<ProvenEntry, LedgerError> {
            Ok(ProvenEntry { index: i, entry: self.entry_bytes(i)?, proof: inclusion_proof(&nodes, i, size)? })
        };
        let changes = self
            .history
            .iter()
            .filter(|(i, _)| *i < size)
            .map(|(i, _)| proven(*i))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let entry = self.entry_bytes(index)?;
        let referenced = Receipt::references(&Entry::decode(&entry)?)
            .into_iter()
            .filter(|i| *i < index && !changes.iter().any(|c| c.index == *i))
            .map(proven)
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Receipt::issue(
            &entry,
            index,
            &inclusion_proof(&nodes, index, size)?,
            checkpoint,
            &changes,
            &referenced,
            signer,
            key_pair,
        )
    }

    /// The index of the invocation of request `request_hash`.
    pub fn by_request(&self, request_hash: &Hash) -> Result<Option<u64>, LedgerError> {
        self.index_at(&key(b"ir", &[&request_hash.0]))
    }

    /// The index of the rejection of request `request_hash`.
    pub fn by_rejection(&self, request_hash: &Hash) -> Result<Option<u64>, LedgerError> {
        self.index_at(&key(b"ij", &[&request_hash.0]))
    }

    fn index_at(&self, k: &[u8]) -> Result<Option<u64>, LedgerError> {
        match self.kv.get(k)? {
            None => Ok(None),
            Some(v) => Ok(Some(u64::from_be_bytes(
                v.try_into().map_err(|_| corrupt("a request index is not 8 bytes".into()))?,
            ))),
        }
    }

    /// The first cosigned checkpoint that covers the entry at `index` (size > index): what a receipt of that entry
    /// is issued against. `None` until a block at or after it has a quorum-signed checkpoint.
    pub fn checkpoint_covering(&self, index: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        let from = key(b"c", &[&be(index + 1)]);
        match self.kv.scan(b"c", Some(&from), 1)?.pop() {
            None => Ok(None),
            Some((_, v)) => {
                let text = String::from_utf8(v).map_err(|_| corrupt("a checkpoint is not UTF-8".into()))?;
                SignedCheckpoint::parse(&text).map(Some).map_err(|e| corrupt(format!("checkpoint: {e}")))
            }
        }
    }

    /// One page of an audit query; `after` is the previous page's `next`.
    pub fn query(&self, q: &Query, after: Option<&[u8]>, limit: usize) -> Result<Page, LedgerError> {
        let (prefix, lo, hi): (Vec<u8>, Vec<u8>, Option<Vec<u8>>) = match q {
            Query::Caller(c) => (key(b"ic", &[&Hash::digest(c).0]), key(b"ic", &[&Hash::digest(c).0]), None),
            Query::Applet(a) => {
                let h = Hash::digest(a.as_bytes());
                (key(b"ia", &[&h.0]), key(b"ia", &[&h.0]), None)
            }
            Query::TimeRange { from_ms, to_ms } => {
                (b"it".to_vec(), key(b"it", &[&be(*from_ms)]), Some(key(b"it", &[&be(*to_ms)])))
            }
        };
        let start = match after {
            Some(a) if a.starts_with(&prefix) && a >= lo.as_slice() => a.to_vec(),
            Some(_) => {
                return Err(LedgerError::Decode { what: "query", detail: "the page token is not of this query".into() })
            }
            None => lo,
        };
        let rows = self.kv.scan(&prefix, Some(&start), limit + 1)?;
        let mut indexes = Vec::new();
        let mut next = None;
        for (i, (k, _)) in rows.iter().enumerate() {
            if hi.as_ref().is_some_and(|h| k >= h) {
                break;
            }
            if i == limit {
                next = Some(k.clone());
                break;
            }
            let tail: [u8; 8] = k[k.len() - 8..].try_into().expect("keys end with an index");
            indexes.push(u64::from_be_bytes(tail));
        }
        Ok(Page { indexes, next })
    }

    /// Recomputes every leaf from the stored entries and the root from the leaves: a full integrity check.
    pub fn verify_integrity(&self) -> Result<(), LedgerError> {
        let mut f = Frontier::new();
        for i in 0..self.meta.size {
            f.append(leaf_hash(&self.entry_bytes(i)?));
        }
        if f.root() != self.meta.root {
            return Err(corrupt("the entries do not hash to the committed root".into()));
        }
        Ok(())
    }
}

fn index_entry(batch: &mut Vec<Pair>, e: &Entry, index: u64) {
    let (req, caller, applet, at_ms) = match e {
        Entry::Invocation(i) => (i.request_hash, &i.caller, &i.applet, i.at_ms),
        Entry::RequestRejected(r) => (r.request_hash, &r.caller, &r.applet, r.at_ms),
        _ => return,
    };
    let ix = be(index);
    let by_request: &[u8] = if matches!(e, Entry::Invocation(_)) { b"ir" } else { b"ij" };
    batch.push((key(by_request, &[&req.0]), ix.to_vec()));
    // Hashed so that keys have fixed widths: no caller or applet name can be a prefix of another's keys.
    batch.push((key(b"ic", &[&Hash::digest(caller).0, &ix]), Vec::new()));
    batch.push((key(b"ia", &[&Hash::digest(applet.as_bytes()).0, &ix]), Vec::new()));
    batch.push((key(b"it", &[&be(at_ms), &ix]), Vec::new()));
}
