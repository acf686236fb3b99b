//! Blocks: what a proposer asks the pod to append, and the rules every validator checks before voting for one.

use std::collections::{HashMap, HashSet};

use ledger::entry::{canonical_decode, canonical_encode};
use ledger::entry::{Encoded, Member};
use ledger::store::Ledger;
use ledger::{Entry, Hash};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::context::{Address, BlockId, Height, Signature, ValidatorSet};
use super::{admission, signing};

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

/// What checking a block needs besides the ledger: the pod's state after the last committed block. The app keeps
/// it and shares it with submitters.
#[derive(Clone)]
pub struct Rules {
    /// The validator set of the next height.
    pub set: ValidatorSet,
    /// Latest attestation entry of each validator, by name.
    pub attestations: HashMap<String, u64>,
    /// The pod's attestation policy.
    pub policy: attest::Policy,
    /// The governance members (from the genesis).
    pub members: Vec<Member>,
    /// Member approvals a governance entry needs.
    pub threshold: u32,
    /// The last block's time (0 before the first block).
    pub parent_time_ms: u64,
}

/// Everything a validator checks before it votes for `block` in `at`, on top of `ledger` (which must be at the
/// parent). Returns the decoded entries.
///
/// - the block is for this pod and this height, by the proposer consensus chose, on top of this ledger;
/// - its time is not before the parent block's and not ahead of this validator's clock by more than
///   [`MAX_CLOCK_DRIFT_MS`];
/// - every entry decodes canonically, and no entry is a genesis;
/// - an invocation or rejection is signed by the node it names as executing it;
/// - an invocation or rejection names an executing node that is a current validator and its latest attestation
///   entry, was made within [`FRESHNESS_MS`] of the block's time and no later than it, and records a request
///   that neither the ledger nor this block already holds (replays are refused);
/// - an admission's or re-attestation's evidence binds the node's key to this pod and satisfies the pod's policy
///   at the block's time; a re-attestation is signed by its node; a new policy parses;
/// - a governance entry (admission, removal, policy, applet) carries the approvals of at least the genesis'
///   threshold of members, each verifying over the entry's approval payload;
/// - validator-set changes apply to the current set (no duplicate admission, no removal of a non-member) and
///   leave at least one validator.
pub fn validate(block: &Block, ledger: &Ledger, rules: &Rules, at: &Slot) -> Result<Vec<Encoded>, Refusal> {
    check_header(block, ledger, rules, at)?;
    if block.entries.len() > MAX_BLOCK_ENTRIES {
        return Err(format!("{} entries; a block holds at most {MAX_BLOCK_ENTRIES}", block.entries.len()));
    }
    let mut checker = Checker::new(ledger, rules, block.time_ms);
    block.entries.iter().enumerate().map(|(i, item)| checker.item(i, item)).collect()
}

/// Where a block is proposed: what its header must say.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The height.
    pub height: Height,
    /// The round's proposer.
    pub proposer: Address,
    /// The validating node's clock.
    pub now_ms: u64,
}

/// The block's own fields: pod, height, proposer, parent, time.
pub fn check_header(block: &Block, ledger: &Ledger, rules: &Rules, at: &Slot) -> Result<(), Refusal> {
    let Slot { height, proposer, now_ms } = *at;
    let parent_time_ms = rules.parent_time_ms;
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
        return Err(format!(
            "the block's time {} is {} ms ahead of this node's clock",
            block.time_ms,
            block.time_ms - now_ms
        ));
    }
    Ok(())
}

/// Checks a block's entries one after the other (what earlier entries did is remembered: requests seen,
/// validator-set changes).
pub struct Checker<'a> {
    ledger: &'a Ledger,
    rules: &'a Rules,
    block_time_ms: u64,
    requests: HashSet<Hash>,
    members: ledger::checkpoint::ValidatorSet,
}

impl<'a> Checker<'a> {
    /// Evidence in an admission or re-attestation must bind the node's key to this pod and satisfy the pod's
    /// policy, judged at the block's time (so every validator reaches the same verdict); a policy change must
    /// parse (a policy nobody can read would stop every later admission).
    fn attested(&self, e: &Entry) -> Result<(), String> {
        let now = self.block_time_ms / 1000;
        let pod = self.ledger.pod();
        match e {
            Entry::NodeAdmitted(a) => {
                if !ledger::checkpoint::valid_key_name(&a.validator.name) {
                    return Err(format!("{:?} is not a valid node name", a.validator.name));
                }
                let key: [u8; 32] =
                    a.validator.public_key.as_slice().try_into().map_err(|_| "the node's key is not 32 bytes")?;
                admission::verify(&self.rules.policy, pod, &key, &a.evidence, now)
                    .map(|_| ())
                    .map_err(|why| format!("{} is not admitted: {why}", a.validator.name))
            }
            Entry::Reattested(r) => {
                let v = self.rules.set.by_name(&r.node).ok_or_else(|| format!("{:?} is not a validator", r.node))?;
                admission::verify(&self.rules.policy, pod, &v.public_key.0, &r.evidence, now)
                    .map(|_| ())
                    .map_err(|why| format!("{}: {why}", r.node))
            }
            Entry::PolicyChanged(p) => admission::parse_policy(&p.policy).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// A checker for the entries of a block at `block_time_ms` on top of `ledger`, under `rules`.
    pub fn new(ledger: &'a Ledger, rules: &'a Rules, block_time_ms: u64) -> Checker<'a> {
        Checker { ledger, rules, block_time_ms, requests: HashSet::new(), members: ledger.validators_at(ledger.size()) }
    }

    /// Checks entry `i`; returns it decoded. A refused entry changes nothing.
    pub fn item(&mut self, i: usize, item: &Item) -> Result<Encoded, Refusal> {
        let enc = Encoded::decode(&item.entry).map_err(|e| format!("entry {i}: {e}"))?;
        self.check(i, &enc, &item.signature)?;
        Ok(enc)
    }

    /// Checks entry `i`, already decoded, with its `signature`. A refused entry changes nothing.
    pub fn check(&mut self, i: usize, enc: &Encoded, signature: &[u8]) -> Result<(), Refusal> {
        let e = enc.entry();
        let fail = |why: String| format!("entry {i} ({}): {why}", e.kind());
        check_entry(enc, signature, self.block_time_ms, self.ledger, self.rules, &self.requests).map_err(fail)?;
        self.attested(e).map_err(fail)?;
        if e.approvals().is_some() {
            e.check_approvals(self.ledger.pod(), &self.rules.members, self.rules.threshold).map_err(fail)?;
        }
        if ledger::checkpoint::ValidatorSet::changes_with(e) {
            let mut members = self.members.clone();
            members.apply(e).map_err(|why| format!("entry {i}: {why}"))?;
            if members.members.is_empty() {
                return Err(format!("entry {i} removes the last validator"));
            }
            self.members = members;
        }
        // Recorded only once every check passed, so a refused entry leaves no trace.
        if let Some(r) = request_of(e) {
            self.requests.insert(r);
        }
        Ok(())
    }
}

fn request_of(e: &Entry) -> Option<Hash> {
    match e {
        Entry::Invocation(i) => Some(i.request_hash),
        Entry::RequestRejected(r) => Some(r.request_hash),
        _ => None,
    }
}

/// `signature` is `node`'s over the entry's receipt bytes.
fn signed_by<'s>(
    rules: &'s Rules,
    node: &str,
    signature: &[u8],
    leaf: &Hash,
) -> Result<&'s super::context::Validator, String> {
    let v = rules.set.by_name(node).ok_or_else(|| format!("{node:?} is not a validator of this pod"))?;
    let sig =
        <[u8; 64]>::try_from(signature).map_err(|_| format!("no signature of {node:?} ({} bytes)", signature.len()))?;
    if !signing::verify(&v.public_key, &signing::receipt_bytes(leaf), &Signature(sig)) {
        return Err(format!("the signature is not {node:?}'s (a forged receipt)"));
    }
    Ok(v)
}

fn check_entry(
    enc: &Encoded,
    signature: &[u8],
    block_time_ms: u64,
    ledger: &Ledger,
    rules: &Rules,
    requests: &HashSet<Hash>,
) -> Result<(), String> {
    let e = enc.entry();
    let leaf = enc.leaf_hash();
    let executed = |node: &str, at_ms: u64, request: &Hash, att: Option<u64>| -> Result<(), String> {
        signed_by(rules, node, signature, &leaf)?;
        if let Some(att) = att {
            if rules.attestations.get(node) != Some(&att) {
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
        Ok(())
    };
    match e {
        Entry::Genesis(_) => Err("a genesis after the first entry".into()),
        Entry::Invocation(i) => executed(&i.executor, i.at_ms, &i.request_hash, Some(i.executor_attestation)),
        Entry::RequestRejected(r) => executed(&r.node, r.at_ms, &r.request_hash, None),
        Entry::Reattested(r) => signed_by(rules, &r.node, signature, &leaf).map(|_| ()),
        _ if !signature.is_empty() => Err("a signature on an entry that takes none".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::local;
    use crate::pod::signing::PodSigner;
    use ledger::entry::{Invocation, NodeRemoved};

    const T: u64 = 1_764_000_100_000;

    fn invocation(executor: usize, n: u64, at_ms: u64) -> Entry {
        Entry::Invocation(Invocation {
            request_hash: Hash::digest(format!("r{n}").as_bytes()),
            caller: ByteBuf::from(vec![1; 32]),
            applet: "notes".into(),
            method: "put".into(),
            code_digest: Hash::digest(b"c"),
            input_hash: Hash::digest(b"i"),
            output_hash: Hash::digest(b"o"),
            write_set_hash: Hash::digest(b"w"),
            executor: local::name(executor),
            executor_attestation: 0,
            outcome: "ok".into(),
            fuel_used: 1,
            at_ms,
        })
    }

    fn signed(e: &Entry, by: usize) -> Item {
        let sig = PodSigner::new(&local::seed(by)).sign(&signing::receipt_bytes(&e.leaf_hash()));
        Item { entry: ByteBuf::from(e.encode()), signature: ByteBuf::from(sig.0.to_vec()) }
    }

    struct Fixture {
        ledger: Ledger,
        set: ValidatorSet,
        proposer: Address,
    }

    fn fixture() -> Fixture {
        let mut ledger = Ledger::in_memory(&local::genesis("p", 4)).unwrap();
        ledger.append(&invocation(0, 999, T - 1000)).unwrap();
        let set = ValidatorSet::from_ledger(&ledger.validators_at(ledger.size())).unwrap();
        let proposer = set.validators[1].address;
        Fixture { ledger, set, proposer }
    }

    fn block(f: &Fixture, entries: Vec<Item>) -> Block {
        Block {
            pod: "p".into(),
            height: 2,
            proposer: ByteBuf::from(f.proposer.0.to_vec()),
            time_ms: T,
            parent_size: f.ledger.size(),
            parent_root: f.ledger.root(),
            entries,
        }
    }

    fn check(f: &Fixture, b: &Block) -> Result<Vec<Encoded>, Refusal> {
        let Entry::Genesis(g) = local::genesis("p", 4) else { unreachable!() };
        let rules = Rules {
            set: f.set.clone(),
            attestations: (0..4).map(|i| (local::name(i), 0)).collect(),
            policy: admission::parse_policy(&local::policy()).unwrap(),
            members: g.members,
            threshold: g.threshold,
            parent_time_ms: T - 500,
        };
        validate(b, &f.ledger, &rules, &Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 })
    }

    fn refused(f: &Fixture, b: &Block, why: &str) {
        match check(f, b) {
            Ok(_) => panic!("accepted a block that should be refused for {why:?}"),
            Err(e) => assert!(e.contains(why), "{e:?} does not say {why:?}"),
        }
    }

    #[test]
    fn a_valid_block_passes_and_every_rule_refuses_what_breaks_it() {
        let f = fixture();
        let good = vec![signed(&invocation(0, 1, T - 10), 0), signed(&invocation(2, 2, T - 10), 2)];
        assert_eq!(check(&f, &block(&f, good.clone())).unwrap().len(), 2);
        assert!(check(&f, &block(&f, vec![])).is_ok(), "an empty block is valid");

        let mut b = block(&f, good.clone());
        b.pod = "q".into();
        refused(&f, &b, "for pod");
        let mut b = block(&f, good.clone());
        b.height = 3;
        refused(&f, &b, "for height 3");
        let mut b = block(&f, good.clone());
        b.proposer = ByteBuf::from(f.set.validators[2].address.0.to_vec());
        refused(&f, &b, "another proposer");
        let mut b = block(&f, good.clone());
        b.parent_root = Hash::digest(b"other");
        refused(&f, &b, "extends size");
        let mut b = block(&f, good.clone());
        b.parent_size -= 1;
        refused(&f, &b, "extends size");
        let mut b = block(&f, good.clone());
        b.time_ms = T - 501;
        refused(&f, &b, "before its parent");
        let mut b = block(&f, good.clone());
        b.time_ms = T + 100 + MAX_CLOCK_DRIFT_MS + 1;
        refused(&f, &b, "ahead of this node's clock");

        // Entries.
        refused(
            &f,
            &block(&f, vec![Item { entry: ByteBuf::from(local::genesis("p", 4).encode()), signature: ByteBuf::new() }]),
            "genesis",
        );
        let e = invocation(0, 3, T - 10);
        refused(
            &f,
            &block(&f, vec![Item { entry: ByteBuf::from(e.encode()), signature: ByteBuf::new() }]),
            "no signature",
        );
        refused(&f, &block(&f, vec![signed(&e, 3)]), "forged receipt");
        let mut flipped = signed(&e, 0);
        flipped.signature[5] ^= 1;
        refused(&f, &block(&f, vec![flipped]), "forged receipt");
        let mut swapped = signed(&e, 0);
        swapped.entry = ByteBuf::from(invocation(0, 4, T - 10).encode());
        refused(&f, &block(&f, vec![swapped]), "forged receipt");
        refused(&f, &block(&f, vec![signed(&invocation(7, 5, T - 10), 7)]), "not a validator");
        let mut wrong_att = invocation(0, 6, T - 10);
        if let Entry::Invocation(i) = &mut wrong_att {
            i.executor_attestation = 1;
        }
        refused(&f, &block(&f, vec![signed(&wrong_att, 0)]), "latest attestation");
        refused(&f, &block(&f, vec![signed(&invocation(0, 7, T - FRESHNESS_MS - 1), 0)]), "stale");
        refused(&f, &block(&f, vec![signed(&invocation(0, 8, T + 1), 0)]), "after its block's time");
        let twice = signed(&invocation(0, 9, T - 10), 0);
        refused(&f, &block(&f, vec![twice.clone(), twice]), "twice in the block");
        refused(&f, &block(&f, vec![signed(&invocation(0, 999, T - 10), 0)]), "a replay");
        let mut noncanonical = signed(&e, 0);
        noncanonical.entry.push(0);
        refused(&f, &block(&f, vec![noncanonical]), "entry 0");
        let removal = |name: &str| Item {
            entry: ByteBuf::from(
                Entry::NodeRemoved(NodeRemoved { name: name.into(), reason: "r".into(), approvals: vec![] }).encode(),
            ),
            signature: ByteBuf::new(),
        };
        refused(&f, &block(&f, vec![removal("node-2")]), "0 of the 1 member approvals");
        let approve = |item: &mut Item, seed: [u8; 32], member: &str| {
            let mut e = Entry::decode(&item.entry).unwrap();
            let payload = e.approval_payload("p").unwrap();
            let sig = PodSigner::new(&seed).sign(&payload);
            if let Entry::NodeRemoved(r) = &mut e {
                r.approvals
                    .push(ledger::entry::Approval { member: member.into(), signature: ByteBuf::from(sig.0.to_vec()) });
            }
            item.entry = ByteBuf::from(e.encode());
        };
        let mut approved = removal("node-2");
        approve(&mut approved, [0xee; 32], "ops");
        assert!(check(&f, &block(&f, vec![approved.clone()])).is_ok(), "an approved removal passes");
        let mut outsider = removal("node-2");
        approve(&mut outsider, [0xef; 32], "ops");
        refused(&f, &block(&f, vec![outsider]), "does not verify");
        let mut stranger = removal("node-2");
        approve(&mut stranger, [0xee; 32], "eve");
        refused(&f, &block(&f, vec![stranger]), "not a member");
        // An approval is for one entry: moved onto another, it does not verify.
        let mut moved = removal("node-1");
        if let (Entry::NodeRemoved(src), Entry::NodeRemoved(mut dst)) =
            (Entry::decode(&approved.entry).unwrap(), Entry::decode(&moved.entry).unwrap())
        {
            dst.approvals = src.approvals;
            moved.entry = ByteBuf::from(Entry::NodeRemoved(dst).encode());
        }
        refused(&f, &block(&f, vec![moved]), "does not verify");
        let mut approved9 = removal("node-9");
        approve(&mut approved9, [0xee; 32], "ops");
        refused(&f, &block(&f, vec![approved9]), "not a validator");
        let mut signed_removal = removal("node-2");
        signed_removal.signature = ByteBuf::from(vec![1; 64]);
        refused(&f, &block(&f, vec![signed_removal]), "takes none");
        let all: Vec<Item> = (0..4)
            .map(|i| {
                let mut r = removal(&local::name(i));
                approve(&mut r, [0xee; 32], "ops");
                r
            })
            .collect();
        refused(&f, &block(&f, all), "the last validator");
    }

    #[test]
    fn blocks_have_one_encoding() {
        let f = fixture();
        let b = block(&f, vec![signed(&invocation(0, 1, T - 10), 0)]);
        let bytes = b.encode();
        assert_eq!(Block::decode(&bytes).unwrap(), b);
        assert_eq!(Block::id_of(&bytes), Block::id_of(&b.encode()));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Block::decode(&trailing).is_err());
        assert!(Block::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
