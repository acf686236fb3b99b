//! Blocks: what a proposer asks the pod to append, and the rules every validator checks before voting for one.

use std::collections::HashSet;

use ledger::entry::{canonical_decode, canonical_encode};
use ledger::store::Ledger;
use ledger::{Entry, Hash};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::context::{Address, BlockId, Height, Signature, ValidatorSet};
use super::signing;

/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Most entries in one block.
pub const MAX_BLOCK_ENTRIES: usize = 8192;
/// How far ahead of a validator's clock a block's time may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;
/// How old an invocation or rejection may be, against its block's time, to be committed.
pub const FRESHNESS_MS: u64 = 5 * 60_000;

/// An ordered batch of ledger entries, bound to the ledger state it extends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The pod (the ledger's origin).
    pub pod: String,
    /// The consensus height it is proposed at.
    pub height: u64,
    /// The proposer's key.
    pub proposer: ByteBuf,
    /// The proposer's clock, Unix milliseconds.
    pub time_ms: u64,
    /// The ledger's size before this block.
    pub parent_size: u64,
    /// The ledger's root before this block.
    pub parent_root: Hash,
    /// The entries, in order.
    pub entries: Vec<Item>,
}

/// One entry of a block, with the signature that vouches for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The entry's canonical encoding.
    pub entry: ByteBuf,
    /// For an invocation or a rejection: the executing node's Ed25519 signature over
    /// [`signing::receipt_bytes`](super::signing::receipt_bytes) of the entry, so no proposer can put words in
    /// another node's mouth. Empty for other entries (their authority is their members' approvals).
    pub signature: ByteBuf,
}

impl Block {
    /// Canonical CBOR.
    pub fn encode(&self) -> Vec<u8> {
        canonical_encode(self)
    }

    /// Decodes the canonical encoding, and nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Block, String> {
        canonical_decode(bytes, "block", MAX_BLOCK_BYTES).map_err(|e| e.to_string())
    }

    /// The block's id: SHA-256 of its canonical encoding.
    pub fn id_of(bytes: &[u8]) -> BlockId {
        BlockId(Hash::digest(bytes))
    }
}

/// Why a block was refused.
pub type Refusal = String;

/// Everything a validator checks before it votes for `block` at `height`, proposed by `proposer`, on top of
/// `ledger` (which must be at the parent). Returns the decoded entries.
///
/// - the block is for this pod and this height, by the proposer consensus chose, on top of this ledger;
/// - its time is not before the parent block's and not ahead of this validator's clock by more than
///   [`MAX_CLOCK_DRIFT_MS`];
/// - every entry decodes canonically, and no entry is a genesis;
/// - an invocation or rejection is signed by the node it names as executing it;
/// - an invocation or rejection names an executing node that is a current validator and its latest attestation
///   entry, was made within [`FRESHNESS_MS`] of the block's time and no later than it, and records a request
///   that neither the ledger nor this block already holds (replays are refused);
/// - validator-set changes apply to the current set (no duplicate admission, no removal of a non-member) and
///   leave at least one validator.
pub fn validate(
    block: &Block,
    ledger: &Ledger,
    set: &ValidatorSet,
    attestations: &dyn Fn(&str) -> Option<u64>,
    height: Height,
    proposer: &Address,
    parent_time_ms: u64,
    now_ms: u64,
) -> Result<Vec<Entry>, Refusal> {
    check_header(block, ledger, height, proposer, parent_time_ms, now_ms)?;
    if block.entries.len() > MAX_BLOCK_ENTRIES {
        return Err(format!("{} entries; a block holds at most {MAX_BLOCK_ENTRIES}", block.entries.len()));
    }
    let mut checker = Checker::new(ledger, set, attestations, block.time_ms);
    block.entries.iter().enumerate().map(|(i, item)| checker.item(i, item)).collect()
}

/// The block's own fields: pod, height, proposer, parent, time.
pub fn check_header(
    block: &Block,
    ledger: &Ledger,
    height: Height,
    proposer: &Address,
    parent_time_ms: u64,
    now_ms: u64,
) -> Result<(), Refusal> {
    if block.pod != ledger.pod() {
        return Err(format!("the block is for pod {:?}, not {:?}", block.pod, ledger.pod()));
    }
    if block.height != height.0 {
        return Err(format!("the block is for height {}, not {height}", block.height));
    }
    if block.proposer.as_slice() != proposer.0 {
        return Err("the block names another proposer than the round's".into());
    }
    if block.parent_size != ledger.size() || block.parent_root != ledger.root() {
        return Err(format!(
            "the block extends size {} root {}, but the ledger is at size {} root {}",
            block.parent_size,
            block.parent_root,
            ledger.size(),
            ledger.root()
        ));
    }
    if block.time_ms < parent_time_ms {
        return Err(format!("the block's time {} is before its parent's {parent_time_ms}", block.time_ms));
    }
    if block.time_ms > now_ms + MAX_CLOCK_DRIFT_MS {
        return Err(format!("the block's time {} is {} ms ahead of this node's clock", block.time_ms, block.time_ms - now_ms));
    }
    Ok(())
}

/// Checks a block's entries one after the other (what earlier entries did is remembered: requests seen,
/// validator-set changes).
pub struct Checker<'a> {
    ledger: &'a Ledger,
    set: &'a ValidatorSet,
    attestations: &'a dyn Fn(&str) -> Option<u64>,
    block_time_ms: u64,
    requests: HashSet<Hash>,
    members: ledger::checkpoint::ValidatorSet,
}

impl<'a> Checker<'a> {
    /// A checker for the entries of a block at `block_time_ms` on top of `ledger`.
    pub fn new(
        ledger: &'a Ledger,
        set: &'a ValidatorSet,
        attestations: &'a dyn Fn(&str) -> Option<u64>,
        block_time_ms: u64,
    ) -> Checker<'a> {
        Checker {
            ledger,
            set,
            attestations,
            block_time_ms,
            requests: HashSet::new(),
            members: ledger.validators_at(ledger.size()),
        }
    }

    /// Checks entry `i`; returns it decoded. A refused entry changes nothing.
    pub fn item(&mut self, i: usize, item: &Item) -> Result<Entry, Refusal> {
        let e = Entry::decode(&item.entry).map_err(|e| format!("entry {i}: {e}"))?;
        let mut requests = std::mem::take(&mut self.requests);
        let checked = check_entry(&e, &item.signature, self.block_time_ms, self.ledger, self.set, self.attestations, &mut requests);
        self.requests = requests;
        checked.map_err(|why| format!("entry {i} ({}): {why}", e.kind()))?;
        if ledger::checkpoint::ValidatorSet::changes_with(&e) {
            let mut members = self.members.clone();
            members.apply(&e).map_err(|why| format!("entry {i}: {why}"))?;
            if members.members.is_empty() {
                return Err(format!("entry {i} removes the last validator"));
            }
            self.members = members;
        }
        Ok(e)
    }
}

fn check_entry(
    e: &Entry,
    signature: &[u8],
    block_time_ms: u64,
    ledger: &Ledger,
    set: &ValidatorSet,
    attestations: &dyn Fn(&str) -> Option<u64>,
    requests: &mut HashSet<Hash>,
) -> Result<(), String> {
    let mut executed = |node: &str, at_ms: u64, request: &Hash, att: Option<u64>| -> Result<(), String> {
        let Some(v) = set.by_name(node) else {
            return Err(format!("{node:?} is not a validator of this pod"));
        };
        let sig = <[u8; 64]>::try_from(signature).map_err(|_| format!("no signature of {node:?} ({} bytes)", signature.len()))?;
        if !signing::verify(&v.public_key, &signing::receipt_bytes(&e.leaf_hash()), &Signature(sig)) {
            return Err(format!("the signature is not {node:?}'s (a forged receipt)"));
        }
        if let Some(att) = att {
            if attestations(node) != Some(att) {
                return Err(format!("{node:?}'s latest attestation is not entry {att}"));
            }
        }
        if at_ms > block_time_ms {
            return Err(format!("made at {at_ms}, after its block's time {block_time_ms}"));
        }
        if block_time_ms - at_ms > FRESHNESS_MS {
            return Err(format!("made {} s before its block: stale", (block_time_ms - at_ms) / 1000));
        }
        if requests.contains(request) {
            return Err(format!("request {request} appears twice in the block"));
        }
        if ledger.by_request(request).map_err(|e| e.to_string())?.is_some() {
            return Err(format!("request {request} is already in the ledger (a replay)"));
        }
        requests.insert(*request);
        Ok(())
    };
    match e {
        Entry::Genesis(_) => Err("a genesis after the first entry".into()),
        Entry::Invocation(i) => executed(&i.executor, i.at_ms, &i.request_hash, Some(i.executor_attestation)),
        Entry::RequestRejected(r) => executed(&r.node, r.at_ms, &r.request_hash, None),
        _ if !signature.is_empty() => Err("a signature on an entry that takes none".into()),
        _ => Ok(()),
    }
}
