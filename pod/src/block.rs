//! Blocks: what a proposer asks the pod to append, and the rules every validator checks before voting for one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sigil_ledger::entry::{AppletDeployed, Encoded, Invocation, Member, RequestRejected, Subject};
use sigil_ledger::request::SignedRequest;
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash};
use sigil_primitives::cbor;
use sigil_runtime::manifest::Manifest;
use sigil_runtime::WriteSet;

use super::admission;
use super::state::{self, Deployed};
use super::types::{self, Address, BlockId, Height, Signature, Validator, ValidatorSet};
use crate::rejection::Rejection;

/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Most entries in one block.
pub const MAX_BLOCK_ENTRIES: usize = 8192;
/// How far ahead of a validator's clock a block's time may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;
/// How old an invocation or rejection may be, against its block's time, to be committed.
pub const FRESHNESS_MS: u64 = 5 * 60_000;
/// A validator's re-attestation comes at least this long after its latest attestation, and at least a quarter of
/// the pod's `[reattestation] every_s` ([`Checker::fresh`]), so one validator cannot grow the ledger with evidence.
pub const MIN_REATTEST_GAP_MS: u64 = 60_000;

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

/// One entry of a block, with the signature that vouches for it and what validators need to re-check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The entry's canonical encoding.
    pub entry: ByteBuf,
    /// For an invocation or a rejection: the executing node's Ed25519 signature over
    /// [`types::receipt_bytes`] of the entry, so no proposer can put words in
    /// another node's mouth. Empty for other entries (their authority is their members' approvals).
    pub signature: ByteBuf,
    /// For an invocation: the caller's signed request (canonical CBOR), whose hash the entry records.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub request: ByteBuf,
    /// For an invocation: its write set (canonical CBOR), whose hash the entry records.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub write_set: ByteBuf,
    /// For an applet deployment: the wasm module, whose digest the entry records.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub code: ByteBuf,
}

fn is_empty(b: &ByteBuf) -> bool {
    b.is_empty()
}

/// What travels with an entry besides its encoding (see [`Item`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachments {
    /// The executing node's signature.
    pub signature: Vec<u8>,
    /// The signed request.
    pub request: Vec<u8>,
    /// The write set.
    pub write_set: Vec<u8>,
    /// Applet code.
    pub code: Vec<u8>,
    /// Set only in this process, on what it has itself checked or signed: the executor's signature and the
    /// request's signature over these exact bytes are valid, so a [`Checker`] skips those two Ed25519 checks and
    /// runs every other. Never set on anything from the network ([`Item::attachments`] clears it).
    pub verified: bool,
}

impl Attachments {
    /// Bytes they add to a block.
    pub fn len(&self) -> usize {
        self.signature.len() + self.request.len() + self.write_set.len() + self.code.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Item {
    /// The item of an encoded entry with its attachments.
    pub fn new(enc: &Encoded, a: &Attachments) -> Item {
        Item {
            entry: ByteBuf::from(enc.bytes().to_vec()),
            signature: ByteBuf::from(a.signature.clone()),
            request: ByteBuf::from(a.request.clone()),
            write_set: ByteBuf::from(a.write_set.clone()),
            code: ByteBuf::from(a.code.clone()),
        }
    }

    /// Its attachments.
    pub fn attachments(&self) -> Attachments {
        Attachments {
            signature: self.signature.to_vec(),
            request: self.request.to_vec(),
            write_set: self.write_set.to_vec(),
            code: self.code.to_vec(),
            verified: false,
        }
    }
}

impl Block {
    /// Canonical CBOR.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes the canonical encoding, and nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Block, String> {
        cbor::decode(bytes, "block", MAX_BLOCK_BYTES).map_err(|e| e.to_string())
    }

    /// The block's id: SHA-256 of its canonical encoding.
    pub fn id_of(bytes: &[u8]) -> BlockId {
        BlockId(Hash::digest(bytes))
    }
}

/// Why a block or an entry was refused.
pub type Refusal = Rejection;

/// What checking a block needs besides the ledger: the pod's state after the last committed block. The app keeps
/// it and shares it with submitters.
#[derive(Clone)]
pub struct Rules {
    /// The validator set of the next height.
    pub set: ValidatorSet,
    /// Latest attestation entry of each validator, by name.
    pub attestations: HashMap<String, u64>,
    /// The attestation each validator's latest re-attestation replaced, and when (its block's time, Unix ms), by
    /// name: an invocation its node made before that may still name it (within its own [`FRESHNESS_MS`]), so a
    /// re-attestation does not void the invocations in flight. An admission or a removal clears it.
    pub superseded: HashMap<String, (u64, u64)>,
    /// The height that committed each validator's latest attestation (0 for the genesis), by name: a
    /// re-attestation's anchor is no older.
    pub attested_height: HashMap<String, u64>,
    /// When each validator's latest attestation was committed (Unix ms: its block's time; the genesis' validators,
    /// the genesis' `created_at`), by name. A validator re-attests `[reattestation] every_s` after it.
    pub attested_at: HashMap<String, u64>,
    /// The validators the pod suspended (`node_suspended`), by name: no vote and no invocations until a
    /// `node_reinstated` with fresh evidence, or a removal.
    pub suspended: HashMap<String, Suspended>,
    /// The pod's attestation policy.
    pub policy: sigil_attest::Policy,
    /// The ledger index of the entry that set it: the genesis (0) or the latest `policy_changed`. An invocation
    /// names it, so its receipt can carry the policy its executor was held to.
    pub policy_index: u64,
    /// The governance members (from the genesis).
    pub members: Vec<Member>,
    /// Member approvals a governance entry needs.
    pub threshold: u32,
    /// The last block's time (0 before the first block).
    pub parent_time_ms: u64,
    /// When the pod last resumed (Unix ms): the time of its first block, or of the first after a pause longer than
    /// `[reattestation] grace_s`. Nobody is suspended within `grace_s` of it.
    pub resumed_at_ms: u64,
    /// The deployed applets, by name.
    pub applets: HashMap<String, Deployed>,
    /// How this node runs invocations again (`[execution] replay_deterministic`); none in what the store loads.
    pub replay: crate::replay::Replayer,
}

/// A suspended validator: the key it held, and the block that suspended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suspended {
    /// Its key (a reinstatement binds the same).
    pub key: [u8; 32],
    /// The height that suspended it: a reinstatement's anchor is no older.
    pub height: u64,
    /// That block's time, Unix ms.
    pub at_ms: u64,
}

impl Suspended {
    /// Its stored form (`su/` values): key ‖ height ‖ time.
    pub fn encode(&self) -> Vec<u8> {
        [self.key.as_slice(), &self.height.to_be_bytes(), &self.at_ms.to_be_bytes()].concat()
    }

    /// Reads [`Suspended::encode`].
    pub fn decode(v: &[u8]) -> Result<Suspended, String> {
        let v: [u8; 48] = v.try_into().map_err(|_| format!("a stored suspension is {} bytes, not 48", v.len()))?;
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(v[r].try_into().expect("8 bytes"));
        Ok(Suspended { key: v[..32].try_into().expect("32 bytes"), height: u(32..40), at_ms: u(40..48) })
    }
}

impl Rules {
    /// The keys whose validator proofs peers accept: the validators', and the suspended nodes' (a suspended node
    /// stays connected, follows the ledger and can re-attest; only a removal cuts it off).
    pub fn admitted_keys(&self) -> Vec<[u8; 32]> {
        self.set.validators.iter().map(|v| v.public_key.0).chain(self.suspended.values().map(|s| s.key)).collect()
    }
}

/// What a valid block does besides appending its entries: pod-state writes and deletes (aux keys, see
/// [`super::state`]), applied in the block's write, and the applets it deploys.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// Aux key → new value, or `None` to delete.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The applets the block deploys (their `ap/` and `w/` keys are in `writes`).
    pub applets: HashMap<String, Deployed>,
}

impl Effects {
    /// The writes and the deletes.
    pub fn split(&self) -> (Vec<sigil_ledger::store::Pair>, Vec<Vec<u8>>) {
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for (k, v) in &self.writes {
            match v {
                Some(v) => puts.push((k.clone(), v.clone())),
                None => deletes.push(k.clone()),
            }
        }
        (puts, deletes)
    }
}

/// Everything a validator checks before it votes for `block` in `at`, on top of `ledger` (which must be at the
/// parent). Returns the decoded entries and what they change in pod state.
///
/// - the block is for this pod and this height, by the proposer consensus chose, on top of this ledger;
/// - its time is not before the parent block's and not ahead of this validator's clock by more than
///   [`MAX_CLOCK_DRIFT_MS`];
/// - every entry decodes canonically, and no entry is a genesis;
/// - an invocation or rejection is signed by the node it names as executing it;
/// - an invocation or rejection names an executing node that is a current validator and its latest attestation
///   entry (or the one its latest re-attestation replaced, if made before that was committed), was made within
///   [`FRESHNESS_MS`] of the block's time and no later than it, and records a request that neither the ledger nor
///   this block already holds (replays are refused);
/// - an invocation carries the caller's signed request, which hashes to its request hash, verifies with the
///   caller's key, is for this pod, fresh at the block's time, with a nonce the caller never used, and names
///   the invocation's applet, method and input; the applet is deployed with the code digest the invocation
///   names, and its access rules let the caller call the method; its write set hashes to the recorded hash,
///   writes only namespaces the applet may write (nothing unless the outcome is `ok`), and every version it
///   read and every listing it made still hold (no lost update);
/// - where the pod's policy asks (`[execution] replay_deterministic`), an invocation of a `deterministic` applet
///   runs again to the outcome, output hash, write-set hash and fuel it records ([`crate::replay`]);
/// - an applet deployment carries a valid manifest that matches the entry and the code whose digest both name;
/// - an admission's or re-attestation's evidence binds the node's key to this pod and satisfies the pod's policy
///   at the block's time; a re-attestation is signed by its node; a new policy parses;
/// - a governance entry (admission, removal, policy, applet) carries the approvals of at least the genesis'
///   threshold of members, each verifying over the entry's approval payload;
/// - validator-set changes apply to the current set (no duplicate admission, no removal of a non-member) and
///   leave at least one validator.
///
/// `decided`: a quorum has decided the block (a synced one, with its certificate), so it is not re-executed
/// ([`Checker::decided`]).
pub fn validate(
    block: &Block,
    ledger: &Ledger,
    rules: &Rules,
    at: &Slot,
    decided: bool,
) -> Result<(Vec<Encoded>, Effects), Refusal> {
    check_header(block, ledger, rules, at)?;
    if block.entries.len() > MAX_BLOCK_ENTRIES {
        return Err(format!("{} entries; a block holds at most {MAX_BLOCK_ENTRIES}", block.entries.len()).into());
    }
    let mut checker = Checker::new(ledger, rules, block.time_ms);
    if decided {
        checker = checker.decided();
    }
    let entries = block.entries.iter().enumerate().map(|(i, item)| checker.item(i, item)).collect::<Result<_, _>>()?;
    Ok((entries, checker.effects))
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
        return Err(format!("the block is for pod {:?}, not {:?}", block.pod, ledger.pod()).into());
    }
    if block.height != height.0 {
        return Err(format!("the block is for height {}, not {height}", block.height).into());
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
        )
        .into());
    }
    if block.time_ms < parent_time_ms {
        return Err(format!("the block's time {} is before its parent's {parent_time_ms}", block.time_ms).into());
    }
    if block.time_ms > now_ms + MAX_CLOCK_DRIFT_MS {
        return Err(format!(
            "the block's time {} is {} ms ahead of this node's clock",
            block.time_ms,
            block.time_ms - now_ms
        )
        .into());
    }
    Ok(())
}

/// Checks a block's entries one after the other (what earlier entries did is remembered: requests and nonces
/// seen, validator-set changes, applets deployed, state written).
pub struct Checker<'a> {
    ledger: &'a Ledger,
    rules: &'a Rules,
    block_time_ms: u64,
    requests: HashSet<Hash>,
    rejections: HashSet<Hash>,
    members: sigil_ledger::checkpoint::ValidatorSet,
    /// The nodes this block re-attests so far.
    reattested: HashSet<String>,
    /// The nodes this block removes so far.
    removed: HashSet<String>,
    /// The nodes an entry of this block concerns so far (admitted, reinstated, re-attested, removed, suspended).
    touched: HashSet<String>,
    /// The suspended nodes, as of the entries checked so far.
    suspended_now: HashSet<String>,
    /// Whether an entry checked so far changes the policy.
    policy_changed: bool,
    /// Validators' standing at the block's time, once worked out ([`Checker::lapse`]).
    standing: std::cell::RefCell<HashMap<String, Option<crate::standing::Lapse>>>,
    /// Whether invocations are re-executed where the policy asks (not for a block a quorum already decided).
    replay: bool,
    /// Whether a quorum already decided the block (its commit, or a synced block).
    decided: bool,
    /// The block's effects so far.
    pub effects: Effects,
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
                if !sigil_ledger::checkpoint::valid_key_name(&a.validator.name) {
                    return Err(format!("{:?} is not a valid node name", a.validator.name));
                }
                if self.rules.suspended.contains_key(&a.validator.name) && !self.removed.contains(&a.validator.name) {
                    return Err(format!(
                        "{} is a suspended validator of the pod: it comes back by re-attesting, or is removed first",
                        a.validator.name
                    ));
                }
                let key: [u8; 32] =
                    a.validator.public_key.as_slice().try_into().map_err(|_| "the node's key is not 32 bytes")?;
                admission::verify(&self.rules.policy, pod, &key, &[], &a.evidence, now)
                    .map(|_| ())
                    .map_err(|why| format!("{} is not admitted: {why}", a.validator.name))
            }
            Entry::Reattested(r) => {
                let v = self.rules.set.by_name(&r.node).ok_or_else(|| format!("{:?} is not a validator", r.node))?;
                if !self.members.members.iter().any(|m| m.name == r.node) {
                    return Err(format!("{:?} is suspended or removed earlier in this block", r.node));
                }
                if r.key.as_slice() != v.public_key.0.as_slice() {
                    return Err(format!("{}: the entry names another key than the node's", r.node));
                }
                // A block a quorum decided was held to these when it was voted on; what it settled stands.
                if !self.decided {
                    self.fresh(r)?;
                }
                let nonce = r.anchor.map(|a| a.nonce()).unwrap_or_default();
                admission::verify(&self.rules.policy, pod, &v.public_key.0, &nonce, &r.evidence, now)
                    .map(|_| ())
                    .map_err(|why| format!("{}: {why}", r.node))
            }
            Entry::PolicyChanged(p) => admission::parse_policy(&p.policy).map(|_| ()),
            Entry::NodeRemoved(r) => {
                let member = self.members.members.iter().any(|m| m.name == r.name);
                let suspended = self.rules.suspended.contains_key(&r.name) && !self.removed.contains(&r.name);
                if member || suspended {
                    Ok(())
                } else {
                    Err(format!("{} is not a validator", r.name))
                }
            }
            Entry::NodeSuspended(s) => self.suspension(s),
            Entry::NodeReinstated(r) => {
                let name = &r.validator.name;
                let s = self.rules.suspended.get(name).ok_or_else(|| format!("{name:?} is not suspended"))?;
                if self.removed.contains(name) {
                    return Err(format!("{name:?} is removed earlier in this block"));
                }
                if r.validator.public_key.as_slice() != s.key.as_slice() {
                    return Err(format!("{name}: the entry names another key than the one it was suspended with"));
                }
                if !self.decided {
                    self.anchored(name, &r.anchor, s.height)?;
                }
                admission::verify(&self.rules.policy, pod, &s.key, &r.anchor.nonce(), &r.evidence, now)
                    .map(|_| ())
                    .map_err(|why| format!("{name}: {why}"))
            }
            _ => Ok(()),
        }
    }

    /// A suspension names a current validator that nothing else in this block concerns (no admission,
    /// reinstatement, re-attestation, removal or suspension of it earlier in the block: what is judged is its
    /// committed attestation) and whose standing has lapsed at the block's time, for the cause and on the
    /// attestation this validator finds itself ([`crate::standing::lapsed`]); not within `[reattestation] grace_s`
    /// of the pod resuming; and it must leave the pod as safe as its whole membership is meant to be and able to
    /// decide:
    ///
    /// - with N members (validators and suspended nodes), the pod tolerates f(N) = ⌊(N − 1)/3⌋ Byzantine ones; the
    ///   n' validators left must still have quorums that overlap in more than f(N) of them (n' − 2·f(n') > f(N)),
    ///   so a host that blocks honest nodes' attestation cannot shrink the set until its Byzantine nodes fork it;
    /// - at least a quorum of the set it changes stays in good standing, so the pod never acts on a view only a
    ///   minority holds (when most of it has lapsed, nothing is suspended and the lapsed nodes must re-attest).
    ///
    /// The block-local checks run for a decided block too; the judgments are not made again.
    fn suspension(&self, s: &sigil_ledger::entry::NodeSuspended) -> Result<(), String> {
        let name = &s.name;
        let members = &self.members.members;
        if self.touched.contains(name) {
            return Err(format!("{name}: an entry earlier in this block concerns it"));
        }
        if !members.iter().any(|m| m.name == *name) {
            return Err(format!("{name:?} is not a validator"));
        }
        if s.reason.chars().count() > sigil_ledger::entry::NodeSuspended::MAX_REASON_CHARS {
            return Err(format!(
                "a reason longer than {} characters",
                sigil_ledger::entry::NodeSuspended::MAX_REASON_CHARS
            ));
        }
        if s.reason.chars().any(char::is_control) {
            return Err("a reason with control characters".into());
        }
        if self.policy_changed {
            return Err(format!("{name}: the policy changes earlier in this block (judged under the new one next)"));
        }
        if self.decided {
            return Ok(());
        }
        let grace_ms = self.rules.policy.reattestation.grace_s.saturating_mul(1000);
        let resumed = if self.block_time_ms.saturating_sub(self.rules.parent_time_ms) > grace_ms {
            self.block_time_ms // this block ends a pause
        } else {
            self.rules.resumed_at_ms
        };
        if self.block_time_ms < resumed.saturating_add(grace_ms) {
            return Err(format!(
                "the pod resumed {} s before this block; no validator is suspended within the pod's grace_s of {} s \
                 (its nodes are re-attesting)",
                self.block_time_ms.saturating_sub(resumed) / 1000,
                grace_ms / 1000
            ));
        }
        let lapse = self.lapse(name)?.ok_or_else(|| format!("{name} is in good standing at the block's time"))?;
        if lapse.cause != s.cause || lapse.attestation != s.attestation {
            return Err(format!(
                "{name}: the entry says {:?} of entry {}; this validator finds {:?} of entry {} ({})",
                s.cause, s.attestation, lapse.cause, lapse.attestation, lapse.reason
            ));
        }
        let f = |n: usize| n.saturating_sub(1) / 3;
        let (all, left) = (members.len() + self.suspended_now.len(), members.len() - 1);
        if left == 0 || left - 2 * f(left) <= f(all) {
            return Err(format!(
                "suspending {name} would leave {left} validators, whose quorums overlap in {} of them: not more than \
                 the {} Byzantine nodes the pod's {all} members (validators and suspended) are meant to tolerate",
                left.saturating_sub(2 * f(left)),
                f(all)
            ));
        }
        let need = self.members.quorum();
        let mut good = 0;
        for m in members.iter().filter(|m| m.name != *name) {
            // A node admitted, reinstated or re-attested in this block has just shown fresh evidence.
            if self.touched.contains(&m.name) || self.lapse(&m.name)?.is_none() {
                good += 1;
            }
        }
        if good < need {
            return Err(format!(
                "suspending {name} would leave {good} validators in good standing, fewer than the quorum of {need} of \
                 the {} it has: the set is kept until more of it re-attests",
                members.len()
            ));
        }
        Ok(())
    }

    /// [`crate::standing::lapsed`] of `name` at the block's time under the block's rules, worked out once per block.
    pub(crate) fn lapse(&self, name: &str) -> Result<Option<crate::standing::Lapse>, String> {
        if let Some(l) = self.standing.borrow().get(name) {
            return Ok(l.clone());
        }
        let l = crate::standing::lapsed(self.ledger, self.rules, name, self.block_time_ms)?;
        self.standing.borrow_mut().insert(name.to_string(), l.clone());
        Ok(l)
    }

    /// A new re-attestation binds an anchor of this ledger (a decided height and the root after it) whose block is
    /// at most `[reattestation] window_s` older than this block, so its evidence was made within that window, and
    /// no older than the block that committed the node's latest attestation, so a committed re-attestation cannot
    /// be committed again (by a proposer that copies it); it comes at least [`MIN_REATTEST_GAP_MS`] (and a quarter
    /// of `every_s`) after the node's latest attestation, and once per block, so a validator cannot fill blocks
    /// with its own evidence.
    fn fresh(&self, r: &sigil_ledger::entry::Reattested) -> Result<(), String> {
        let node = &r.node;
        if self.reattested.contains(node) {
            return Err(format!("{node}: a second re-attestation in one block"));
        }
        let last = self.rules.attested_at.get(node).copied().unwrap_or(0);
        let every_ms = self.rules.policy.reattestation.every_s.saturating_mul(1000);
        let gap = MIN_REATTEST_GAP_MS.max(every_ms / 4);
        if self.block_time_ms < last.saturating_add(gap) {
            return Err(format!(
                "{node}: re-attests {} ms after its latest attestation, sooner than {gap} ms",
                self.block_time_ms.saturating_sub(last)
            ));
        }
        let a = r.anchor.ok_or_else(|| {
            format!("{node}: the re-attestation binds no anchor (a recent height and root of this ledger)")
        })?;
        let since = self.rules.attested_height.get(node).copied().unwrap_or(0);
        self.anchored(node, &a, since)
    }

    /// [`anchor_holds`] at this block's time, under the pod's `[reattestation] window_s`.
    fn anchored(&self, node: &str, a: &sigil_ledger::entry::Anchor, since: u64) -> Result<(), String> {
        let window_ms = self.rules.policy.reattestation.window_s.saturating_mul(1000);
        anchor_holds(self.ledger, node, a, since, self.block_time_ms, window_ms)
    }

    /// A checker for the entries of a block at `block_time_ms` on top of `ledger`, under `rules`.
    pub fn new(ledger: &'a Ledger, rules: &'a Rules, block_time_ms: u64) -> Checker<'a> {
        Checker {
            ledger,
            rules,
            block_time_ms,
            requests: HashSet::new(),
            rejections: HashSet::new(),
            members: ledger.validators_at(ledger.size()),
            reattested: HashSet::new(),
            removed: HashSet::new(),
            touched: HashSet::new(),
            suspended_now: rules.suspended.keys().cloned().collect(),
            policy_changed: false,
            standing: Default::default(),
            replay: true,
            decided: false,
            effects: Effects::default(),
        }
    }

    /// A checker for a block a quorum has decided (its commit, or a synced block with its certificate): it does not
    /// re-execute. The quorum's honest validators did before they voted, and a decided block must be committable
    /// here even when this node cannot run it (no slot, a slower clock).
    pub fn decided(mut self) -> Checker<'a> {
        self.replay = false;
        self.decided = true;
        self
    }

    /// Checks entry `i`; returns it decoded. A refused entry changes nothing.
    pub fn item(&mut self, i: usize, item: &Item) -> Result<Encoded, Refusal> {
        let enc = Encoded::decode(&item.entry).map_err(|e| Rejection::Invalid(format!("entry {i}: {e}")))?;
        self.check(i, &enc, &item.attachments())?;
        Ok(enc)
    }

    /// Checks entry `i` of the block, already decoded, with its attachments. A refused entry changes nothing.
    pub fn check(&mut self, i: usize, enc: &Encoded, a: &Attachments) -> Result<(), Refusal> {
        let e = enc.entry();
        let fail = |why: Rejection| why.map(|why| format!("entry {i} ({}): {why}", e.kind()));
        let index = self.ledger.size() + i as u64;
        self.executed(enc, a).map_err(fail)?;
        // The executor is a validator as of this point of the block: not suspended or removed by an earlier entry.
        let executor = match e {
            Entry::Invocation(inv) => Some(&inv.executor),
            Entry::RequestRejected(r) => Some(&r.node),
            _ => None,
        };
        if let Some(x) = executor.filter(|x| !self.members.members.iter().any(|m| m.name == **x)) {
            return Err(fail(format!("{x:?} is suspended or removed earlier in this block").into()));
        }
        let (mut effects, deployed) = match e {
            Entry::Invocation(inv) => (self.invocation(inv, a, index).map_err(fail)?, None),
            Entry::AppletDeployed(d) => {
                let (eff, dep) = self.deployment(d, a, index).map_err(|w| fail(w.into()))?;
                (eff, Some(dep))
            }
            Entry::RequestRejected(r) => (self.rejection(r, a).map_err(|w| fail(w.into()))?, None),
            _ if !(a.request.is_empty() && a.write_set.is_empty() && a.code.is_empty()) => {
                return Err(fail("attachments on an entry that takes none".into()))
            }
            _ => (Vec::new(), None),
        };
        self.attested(e).map_err(|w| fail(w.into()))?;
        if e.approvals().is_some() {
            e.check_approvals(self.ledger.pod(), &self.rules.members, self.rules.threshold)
                .map_err(|w| fail(Rejection::Unapproved(w)))?;
        }
        if let Some((subject, prior)) = e.prior() {
            effects.push(self.follows(subject, prior, index).map_err(fail)?);
        }
        if sigil_ledger::checkpoint::ValidatorSet::changes_with(e) {
            let mut members = self.members.clone();
            members.apply(e).map_err(|why| Rejection::Invalid(format!("entry {i}: {why}")))?;
            if members.members.is_empty() {
                return Err(format!("entry {i} removes the last validator").into());
            }
            self.members = members;
        }
        // Recorded only once every check passed, so a refused entry leaves no trace.
        match e {
            Entry::Invocation(inv) => {
                self.requests.insert(inv.request_hash);
            }
            Entry::RequestRejected(r) => {
                self.rejections.insert(r.request_hash);
            }
            Entry::Reattested(r) => {
                self.reattested.insert(r.node.clone());
                self.touched.insert(r.node.clone());
            }
            Entry::NodeRemoved(r) => {
                self.removed.insert(r.name.clone());
                self.touched.insert(r.name.clone());
                self.suspended_now.remove(&r.name);
            }
            Entry::NodeAdmitted(a) => {
                self.touched.insert(a.validator.name.clone());
            }
            Entry::NodeReinstated(r) => {
                self.touched.insert(r.validator.name.clone());
                self.suspended_now.remove(&r.validator.name);
            }
            Entry::NodeSuspended(s) => {
                self.touched.insert(s.name.clone());
                self.suspended_now.insert(s.name.clone());
            }
            Entry::PolicyChanged(_) => self.policy_changed = true,
            _ => {}
        }
        self.effects.writes.extend(effects);
        if let Some((name, dep)) = deployed {
            self.effects.applets.insert(name, dep);
        }
        Ok(())
    }

    /// A governance entry applies to the state its members approved: its `prior` must be the last change to its
    /// subject (committed, or earlier in this block). Returns the write that makes this entry the last change.
    fn follows(&self, subject: Subject<'_>, prior: u64, index: u64) -> Result<Effect, Rejection> {
        let key = state::change_key(subject);
        let last = state::change_index(self.current(&key)?.as_deref()).map_err(|e| e.to_string())?;
        if prior != last {
            return Err(Rejection::Stale(format!(
                "approved as the change after entry {prior}, but {subject} was last changed by entry {last}: a \
                 replay, or approvals for a state that has changed; approve it again for the current state"
            )));
        }
        Ok((key, Some(index.to_be_bytes().to_vec())))
    }

    /// The stored or pending value of an aux key.
    fn current(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self.effects.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.ledger.aux_get(key).map_err(|e| e.to_string()),
        }
    }

    fn applet(&self, name: &str) -> Option<&Deployed> {
        self.effects.applets.get(name).or_else(|| self.rules.applets.get(name))
    }

    /// A rejection carries the request it refuses, and that request is its caller's: the signature verifies with
    /// the key the entry names (or, delegated, a validator signed it under the caller's assertion), so no node (a
    /// Byzantine one included) can put a refusal on a caller's record that the caller did not ask for. (A direct
    /// request's pod and freshness are not checked, since those may be why it was refused; a delegated one must
    /// be fresh.)
    fn rejection(&self, r: &RequestRejected, a: &Attachments) -> Result<Vec<Effect>, String> {
        if a.request.is_empty() {
            return Err("no signed request: only a request its caller signed is refused on the record".into());
        }
        if !(a.write_set.is_empty() && a.code.is_empty()) {
            return Err("a write set or code on a rejection".into());
        }
        if a.request.len() > RequestRejected::MAX_REQUEST_BYTES {
            return Err(format!(
                "a refused request of {} bytes; rejections carry at most {}",
                a.request.len(),
                RequestRejected::MAX_REQUEST_BYTES
            ));
        }
        if SignedRequest::hash_of(&a.request) != r.request_hash {
            return Err("the signed request does not hash to the request hash".into());
        }
        let req = SignedRequest::decode(&a.request)?;
        let caller = if a.verified { req.authenticate_verified() } else { req.authenticate() }
            .map_err(|why| format!("the request is not its caller's: {why}"))?;
        if r.caller.as_slice() != caller {
            return Err("the rejection names another caller than its request".into());
        }
        let mut effects = Vec::new();
        if let Some(k) = req.delegate_key() {
            let v = self.rules.set.by_key(&k).ok_or("the request's delegate is not a validator of the pod")?;
            effects.extend(self.bound(&req, &v.name)?);
            // A delegate signs the moment it is asked, for its own pod: a delegated request that is not fresh
            // for this pod at the block's time was made from an assertion seen elsewhere, not refused.
            req.verify_verified(self.ledger.pod(), self.block_time_ms)
                .map_err(|why| format!("a delegated request is refused on the record only when fresh: {why}"))?;
        }
        let clip = |s: &str| RequestRejected::clip(s, RequestRejected::MAX_NAME_CHARS);
        if r.applet != clip(&req.request.applet) || r.method != clip(&req.request.method) {
            return Err("the rejection names another applet or method than its request".into());
        }
        if r.reason.chars().count() > RequestRejected::MAX_REASON_CHARS {
            return Err(format!("a reason longer than {} characters", RequestRejected::MAX_REASON_CHARS));
        }
        Ok(effects)
    }

    /// A delegated request's assertion serves one validator pod-wide: the first that signed a committed request
    /// (an invocation or a refusal) under it, normally the node the caller exchanged it at. Returns the write that
    /// binds it, when this is the first. (Until that first entry commits, a Byzantine proposer that saw it in a
    /// proposal can leave it out and put its own first: the binding limits a delegation to one node, not to the
    /// node the caller chose; pinning the audience to that node's URL is what would.)
    fn bound(&self, req: &SignedRequest, delegate: &str) -> Result<Option<Effect>, String> {
        let Some(d) = &req.delegation else { return Ok(None) };
        let key = state::delegation_key(&d.assertion);
        match self.current(&key)? {
            Some(first) if first != delegate.as_bytes() => Err(format!(
                "the caller's assertion serves {:?}, which first signed under it, not {delegate:?}",
                String::from_utf8_lossy(&first)
            )),
            Some(_) => Ok(None),
            None => Ok(Some((key, Some(delegate.as_bytes().to_vec())))),
        }
    }

    /// An invocation's request, authorization and write set; returns its state effects.
    fn invocation(&self, inv: &Invocation, a: &Attachments, index: u64) -> Result<Vec<Effect>, Rejection> {
        if a.request.is_empty() {
            return Err("no signed request".into());
        }
        if SignedRequest::hash_of(&a.request) != inv.request_hash {
            return Err("the signed request does not hash to the request hash".into());
        }
        let req = SignedRequest::decode(&a.request)?;
        let caller = if a.verified {
            req.verify_verified(self.ledger.pod(), self.block_time_ms)
        } else {
            req.verify(self.ledger.pod(), self.block_time_ms)
        }
        .map_err(|why| format!("the request: {why}"))?;
        let r = &req.request;
        if inv.caller.as_slice() != caller {
            return Err("the invocation names another caller than its request".into());
        }
        // A delegated request was signed by a validator of the pod, and the invocation names it.
        let delegate = match req.delegate_key() {
            None => None,
            Some(k) => Some(
                self.rules
                    .set
                    .by_key(&k)
                    .map(|v| v.name.as_str())
                    .ok_or("the request's delegate is not a validator of the pod")?,
            ),
        };
        if inv.delegate.as_deref() != delegate {
            return Err("the invocation names another delegate than its request".into());
        }
        let bind = match delegate {
            Some(d) => self.bound(&req, d)?,
            None => None,
        };
        if r.applet != inv.applet || r.method != inv.method {
            return Err("the invocation names another applet or method than its request".into());
        }
        if Hash::digest(&r.args) != inv.input_hash {
            return Err("the input hash is not the request's arguments'".into());
        }
        let nonce = state::nonce_key(&caller, &r.nonce);
        if self.current(&nonce)?.is_some() {
            return Err(Rejection::Replay("the caller used this nonce before (a replay)".into()));
        }
        let dep = self.applet(&r.applet).ok_or_else(|| format!("applet {:?} is not deployed", r.applet))?;
        let m = &dep.manifest;
        if m.code_digest != inv.code_digest {
            return Err(format!("applet {:?} runs code {}, not {}", r.applet, m.code_digest, inv.code_digest).into());
        }
        m.authorize(&caller, &r.method, r.args.len()).map_err(|why| format!("not authorized: {why}"))?;
        if Hash::digest(&a.write_set) != inv.write_set_hash {
            return Err("the write set does not hash to the recorded write-set hash".into());
        }
        let ws = WriteSet::decode(&a.write_set, MAX_BLOCK_BYTES)?;
        if !ws.is_empty() && inv.outcome != "ok" {
            return Err(format!("an invocation that ended {:?} writes state", inv.outcome).into());
        }
        let mut effects = vec![(nonce, Some(index.to_be_bytes().to_vec()))];
        effects.extend(bind);
        for ((ns, key), read) in &ws.reads {
            if m.kv_access(ns).is_none() {
                return Err(format!("read namespace {ns:?}, which the applet is not granted").into());
            }
            let now = match self.current(&state::state_key(ns, key))? {
                Some(v) => state::parse_value(&v).ok_or("a stored state value is corrupt")?.1,
                None => sigil_runtime::state::ABSENT,
            };
            if now != *read {
                return Err(Rejection::Conflict(format!(
                    "a conflict: {ns}/{} was read at version {read}, is now {now}",
                    hex::encode(key)
                )));
            }
        }
        for ((ns, prefix), h) in &ws.lists {
            if m.kv_access(ns).is_none() {
                return Err(format!("listed namespace {ns:?}, which the applet is not granted").into());
            }
            let under = state::state_key(ns, prefix);
            if self.effects.writes.range(under.clone()..).next().is_some_and(|(k, _)| k.starts_with(&under)) {
                return Err(Rejection::Conflict(format!(
                    "a conflict: {ns}/{} was listed and written since",
                    hex::encode(prefix)
                )));
            }
            let keys = state::list(self.ledger, ns, prefix, sigil_runtime::state::MAX_LIST);
            if sigil_runtime::state::list_hash(&keys) != *h {
                return Err(Rejection::Conflict(format!(
                    "a conflict: the keys under {ns}/{} changed since they were listed",
                    hex::encode(prefix)
                )));
            }
        }
        for ((ns, key), value) in &ws.writes {
            if m.kv_access(ns) != Some(sigil_runtime::manifest::KvAccess::ReadWrite) {
                return Err(format!("wrote namespace {ns:?}, which the applet may not write").into());
            }
            effects.push((state::state_key(ns, key), value.as_ref().map(|v| state::value_bytes(v, index))));
        }
        // Run again where the policy asks (not what this node ran or checked itself, nor a decided block).
        if self.replay && self.rules.policy.execution.replay_deterministic && m.deterministic && !a.verified {
            self.replay(inv, r, &caller, &ws, m)?;
        }
        Ok(effects)
    }

    /// Runs invocation `inv` of request `r` again on the state its write set recorded reading, and compares
    /// (`crate::replay`).
    fn replay(
        &self,
        inv: &Invocation,
        r: &sigil_ledger::request::Request,
        caller: &[u8; 32],
        ws: &WriteSet,
        m: &Manifest,
    ) -> Result<(), Rejection> {
        // Wall-clock time does not replay: a run recorded as `deadline` is taken as recorded, output empty (it writes
        // nothing, which the rules above hold it to).
        if inv.outcome == "deadline" {
            return match inv.output_hash == Hash::digest(b"") {
                true => Ok(()),
                false => Err("a run that ended at its deadline has no output".into()),
            };
        }
        let Some(replayer) = &self.rules.replay.0 else {
            return Err("the pod's policy asks validators to re-execute this applet, and this node cannot".into());
        };
        let code = self.current(&state::code_key(&m.code_digest))?.ok_or("the applet's code is not in the ledger")?;
        let mut snapshot = crate::replay::Snapshot::default();
        for (ns, key) in ws.reads.keys() {
            if let Some(v) = self.current(&state::state_key(ns, key))? {
                let value = state::parse_value(&v).ok_or("a stored state value is corrupt")?;
                snapshot.values.insert((ns.clone(), key.clone()), value);
            }
        }
        for (ns, prefix) in ws.lists.keys() {
            let keys = state::list(self.ledger, ns, prefix, sigil_runtime::state::MAX_LIST);
            snapshot.lists.insert((ns.clone(), prefix.clone()), keys);
        }
        let call = crate::replay::ReplayCall {
            request_hash: inv.request_hash,
            caller: *caller,
            method: r.method.clone(),
            input: r.args.to_vec(),
            now_ms: inv.at_ms,
        };
        let replayed = replayer
            .replay(m, &code, &call, std::sync::Arc::new(snapshot))
            .map_err(|e| format!("the pod's policy asks for a re-execution, which could not run here: {e}"))?;
        // Where native stack frames run out depends on the CPU the code was compiled for: a stack overflow, on
        // either side, is not held against the executor (such a run writes nothing and has no output).
        let exhausted = |o: &str| o.contains("call stack exhausted");
        if (exhausted(&inv.outcome) || exhausted(&replayed.outcome)) && inv.output_hash == Hash::digest(b"") {
            return Ok(());
        }
        crate::replay::compare(inv, &replayed).map_err(|e| format!("re-executed, it differs: {e}").into())
    }

    /// A deployment's manifest and code; returns its effects and the applet.
    fn deployment(
        &self,
        d: &AppletDeployed,
        a: &Attachments,
        index: u64,
    ) -> Result<(Vec<Effect>, (String, Deployed)), String> {
        if !a.signature.is_empty() || !a.request.is_empty() || !a.write_set.is_empty() {
            return Err("a deployment carries only its code".into());
        }
        if Hash::digest(&a.code) != d.code_digest {
            return Err("the code does not hash to the code digest".into());
        }
        let m = sigil_runtime::Manifest::from_cbor(&d.manifest).map_err(|e| e.to_string())?;
        if m.name != d.name || m.version != d.version || m.code_digest != d.code_digest {
            return Err("the manifest's name, version or code digest differs from the entry's".into());
        }
        let effects = vec![
            (state::applet_key(&d.name), Some(index.to_be_bytes().to_vec())),
            (state::code_key(&d.code_digest), Some(a.code.clone())),
        ];
        Ok((effects, (d.name.clone(), Deployed { index, manifest: Arc::new(m) })))
    }

    /// An invocation or rejection must be signed by the node it names, fresh, and not a replay; a re-attestation
    /// is signed by its node; nothing else is signed.
    fn executed(&self, enc: &Encoded, a: &Attachments) -> Result<(), Rejection> {
        let (rules, ledger, block_time_ms) = (self.rules, self.ledger, self.block_time_ms);
        let (signature, leaf) = (&a.signature[..], enc.leaf_hash());
        let executed = |node: &str, at_ms: u64, att: Option<u64>| -> Result<(), String> {
            if a.verified {
                rules.set.by_name(node).ok_or_else(|| format!("{node:?} is not a validator of this pod"))?;
            } else {
                signed_by(rules, node, signature, &leaf)?;
            }
            if let Some(att) = att {
                let latest = rules.attestations.get(node) == Some(&att);
                // Made before the re-attestation that replaced it was committed, and still fresh.
                let just_replaced = rules.superseded.get(node).is_some_and(|(i, replaced_at)| {
                    *i == att && at_ms < *replaced_at && block_time_ms <= replaced_at.saturating_add(FRESHNESS_MS)
                });
                if !latest && !just_replaced {
                    return Err(format!("{node:?}'s latest attestation is not entry {att}"));
                }
            }
            if at_ms > block_time_ms {
                return Err(format!("made at {at_ms}, after its block's time {block_time_ms}"));
            }
            if block_time_ms - at_ms > FRESHNESS_MS {
                return Err(format!("made {} s before its block: stale", (block_time_ms - at_ms) / 1000));
            }
            Ok(())
        };
        let io = |e: sigil_ledger::LedgerError| e.to_string();
        match enc.entry() {
            Entry::Genesis(_) => Err("a genesis after the first entry".into()),
            Entry::Invocation(i) => {
                executed(&i.executor, i.at_ms, Some(i.executor_attestation))?;
                // A decided block may hold invocations written before invocations named their policy (`None`): a
                // node syncing such a pod's history takes them as its quorum committed them. New ones must name it.
                let older = i.policy.is_none() && self.decided;
                if i.policy != Some(rules.policy_index) && !older {
                    let named = i.policy.map_or("no policy".to_string(), |p| format!("the policy of entry {p}"));
                    return Err(
                        format!("it names {named}; the policy in force is entry {}'s", rules.policy_index).into()
                    );
                }
                let request = &i.request_hash;
                if self.requests.contains(request) {
                    return Err(format!("request {request} appears twice in the block").into());
                }
                if ledger.by_request(request).map_err(io)?.is_some() {
                    return Err(Rejection::Replay(format!("request {request} is already in the ledger (a replay)")));
                }
                Ok(())
            }
            Entry::RequestRejected(r) => {
                executed(&r.node, r.at_ms, None)?;
                let request = &r.request_hash;
                if self.rejections.contains(request) || ledger.by_rejection(request).map_err(io)?.is_some() {
                    return Err(format!("the rejection of request {request} is already recorded").into());
                }
                Ok(())
            }
            Entry::Reattested(r) => Ok(signed_by(rules, &r.node, signature, &leaf).map(|_| ())?),
            Entry::NodeReinstated(r) => {
                let name = &r.validator.name;
                let s = rules.suspended.get(name).ok_or_else(|| format!("{name:?} is not suspended"))?;
                let sig = <[u8; 64]>::try_from(signature)
                    .map_err(|_| format!("no signature of {name:?} ({} bytes)", signature.len()))?;
                if !types::verify(&types::PublicKey(s.key), &types::receipt_bytes(&leaf), &Signature(sig)) {
                    return Err(format!("the signature is not {name:?}'s").into());
                }
                Ok(())
            }
            _ if !signature.is_empty() => Err("a signature on an entry that takes none".into()),
            _ => Ok(()),
        }
    }
}

/// `a` is a point of `ledger` no older than height `since` (the node's latest attestation, or its suspension: what
/// is committed cannot be committed again) whose block is at most `window_ms` older than `at_ms` (a block's time,
/// or, for an offer not yet in a block, the clock). What the block rules hold a re-attestation's or reinstatement's
/// anchor to, and what a validator checks of an offered reinstatement before its evidence.
pub(crate) fn anchor_holds(
    ledger: &Ledger,
    node: &str,
    a: &sigil_ledger::entry::Anchor,
    since: u64,
    at_ms: u64,
    window_ms: u64,
) -> Result<(), String> {
    if a.height < since {
        return Err(format!(
            "{node}: the anchor's height {} is before height {since}, which committed the node's latest \
             attestation or suspension (an entry committed again?)",
            a.height
        ));
    }
    match crate::root_at_height(ledger, a.height)? {
        Some((_, root)) if root == a.root => {}
        Some(_) => return Err(format!("{node}: the anchor's root is not this ledger's at height {}", a.height)),
        None => return Err(format!("{node}: the anchor's height {} is not decided here", a.height)),
    }
    match crate::block_time_at(ledger, a.height)? {
        Some(t) if at_ms.saturating_sub(t) <= window_ms => Ok(()),
        Some(t) => Err(format!(
            "{node}: the anchor (height {}) is {} s older than this block, more than the pod's window of {} s",
            a.height,
            at_ms.saturating_sub(t) / 1000,
            window_ms / 1000
        )),
        None => Err(format!("{node}: the anchor's height {} has no recorded time (too old)", a.height)),
    }
}

/// One pod-state change: aux key → value, or `None` to delete.
type Effect = (Vec<u8>, Option<Vec<u8>>);

/// `signature` is `node`'s over the entry's receipt bytes.
fn signed_by<'s>(rules: &'s Rules, node: &str, signature: &[u8], leaf: &Hash) -> Result<&'s Validator, String> {
    let v = rules.set.by_name(node).ok_or_else(|| format!("{node:?} is not a validator of this pod"))?;
    let sig =
        <[u8; 64]>::try_from(signature).map_err(|_| format!("no signature of {node:?} ({} bytes)", signature.len()))?;
    if !types::verify(&v.public_key, &types::receipt_bytes(leaf), &Signature(sig)) {
        return Err(format!("the signature is not {node:?}'s (a forged receipt)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::PodSigner;
    use crate::{local, testing};
    use sigil_ledger::entry::{NodeAdmitted, NodeRemoved, PolicyChanged, Reattested};

    const T: u64 = 1_764_000_100_000;

    /// An invocation of `probe.run` by node `executor`, request `n`, made at `at_ms`.
    fn invocation(executor: usize, n: u64, at_ms: u64) -> (Entry, Attachments) {
        testing::probe_invocation("p", &local::name(executor), 0, &testing::CALLER_SEED, n, at_ms)
    }

    /// An invocation built by hand: `request` and `ws` as given, then `edit` on the entry.
    fn custom(
        n: u64,
        request: impl FnOnce(&mut sigil_ledger::request::Request),
        ws: WriteSet,
        edit: impl FnOnce(&mut Invocation),
    ) -> (Entry, Attachments) {
        use ring::signature::KeyPair;
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&testing::CALLER_SEED).unwrap();
        let mut r = sigil_ledger::request::Request {
            pod: "p".into(),
            applet: "probe".into(),
            method: "run".into(),
            args: ByteBuf::from(format!("{{\"n\":{n}}}").into_bytes()),
            nonce: ByteBuf::from(vec![n as u8; 16]),
            issued_at_ms: T - 10,
            caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
        };
        request(&mut r);
        let args = r.args.to_vec();
        let req = r.sign(&key).encode();
        let wsb = ws.encode();
        let mut i = Invocation {
            request_hash: SignedRequest::hash_of(&req),
            caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
            applet: "probe".into(),
            method: "run".into(),
            code_digest: testing::probe().code_digest,
            input_hash: Hash::digest(&args),
            output_hash: Hash::digest(b"{}"),
            write_set_hash: Hash::digest(&wsb),
            executor: local::name(0),
            executor_attestation: 0,
            policy: Some(0),
            outcome: "ok".into(),
            fuel_used: 1,
            at_ms: T - 10,
            delegate: None,
        };
        edit(&mut i);
        (Entry::Invocation(i), Attachments { request: req, write_set: wsb, ..Default::default() })
    }

    fn signed((e, a): &(Entry, Attachments), by: usize) -> Item {
        let sig = PodSigner::new(&local::seed(by)).sign(&types::receipt_bytes(&e.leaf_hash()));
        Item::new(&Encoded::new(e.clone()), &Attachments { signature: sig.0.to_vec(), ..a.clone() })
    }

    fn plain(e: &Entry) -> Item {
        Item::new(&Encoded::new(e.clone()), &Attachments::default())
    }

    struct Fixture {
        ledger: Ledger,
        set: ValidatorSet,
        proposer: Address,
    }

    /// A ledger with `probe` deployed (entry 1), request 999 invoked (entry 2) and state `probe/k` at version 2.
    fn fixture() -> Fixture {
        let mut ledger = Ledger::in_memory(&local::genesis("p", 4)).unwrap();
        let (deploy, code) = testing::deployment(&testing::probe(), testing::PROBE_CODE, 0);
        let deploy = Encoded::new(testing::approved("p", deploy));
        let done = Encoded::new(invocation(0, 999, T - 1000).0);
        let aux = vec![
            (state::applet_key("probe"), 1u64.to_be_bytes().to_vec()),
            (state::code_key(&testing::probe().code_digest), code.code),
            (state::state_key("probe", b"k"), state::value_bytes(b"v", 2)),
        ];
        let (size, root) = ledger.append_block_with(&[deploy, done], aux, vec![], None).unwrap();
        // What the app records of height 1: its root and time (a re-attestation's anchor is checked against them).
        ledger.aux_write(crate::app::height_records(1, size, &root, T - 500).to_vec(), vec![]).unwrap();
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

    fn rules(f: &Fixture) -> Rules {
        let Entry::Genesis(g) = local::genesis("p", 4) else { unreachable!() };
        Rules {
            set: f.set.clone(),
            attestations: (0..4).map(|i| (local::name(i), 0)).collect(),
            attested_at: (0..4).map(|i| (local::name(i), T - 7_200_000)).collect(),
            superseded: HashMap::new(),
            attested_height: HashMap::new(),
            suspended: HashMap::new(),
            policy: admission::parse_policy(&local::policy()).unwrap(),
            policy_index: 0,
            members: g.members,
            threshold: g.threshold,
            parent_time_ms: T - 500,
            resumed_at_ms: 0,
            applets: state::load_applets(&f.ledger).unwrap(),
            replay: Default::default(),
        }
    }

    /// `b` under `r`, as proposed (`decided` false) or decided.
    fn check_with(f: &Fixture, r: &Rules, b: &Block, decided: bool) -> Result<(), String> {
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        validate(b, &f.ledger, r, &slot, decided).map(|_| ()).map_err(|e| e.to_string())
    }

    /// A suspension of `name` as a proposer might write it.
    fn suspended_entry(name: &str, cause: &str, attestation: u64, reason: &str) -> Item {
        plain(&Entry::NodeSuspended(sigil_ledger::entry::NodeSuspended {
            name: name.into(),
            cause: cause.into(),
            attestation,
            reason: reason.into(),
        }))
    }

    /// The suspension of `name` that `r` calls for at the block's time.
    fn suspension(f: &Fixture, r: &Rules, name: &str) -> Item {
        let lapse = crate::standing::lapsed(&f.ledger, r, name, T).unwrap().expect("lapsed");
        plain(&Entry::NodeSuspended(lapse.suspension(name)))
    }

    #[test]
    fn a_validator_is_suspended_only_when_its_standing_lapsed_and_a_quorum_stays_in_good_standing() {
        let f = fixture();
        let bad = |r: &Rules, item: Item, why: &str| {
            let err = check_with(&f, r, &block(&f, vec![item]), false).expect_err(why);
            assert!(err.contains(why), "{err} does not say {why:?}");
        };
        let made_up =
            |cause: &str, attestation: u64, reason: &str| suspended_entry(&local::name(3), cause, attestation, reason);
        // Everyone attested 2 hours ago, under a policy that accepts their evidence: nobody can be suspended.
        let r = rules(&f);
        assert_eq!(crate::standing::lapsed(&f.ledger, &r, &local::name(3), T).unwrap(), None);
        bad(&r, made_up("stale", 0, "it said so"), "in good standing");
        // node-3's latest attestation is a day and a second old (the default max_age_s is a day): lapsed.
        let mut r = rules(&f);
        r.attested_at.insert(local::name(3), T - 86_401_000);
        let ok = suspension(&f, &r, &local::name(3));
        check_with(&f, &r, &block(&f, vec![ok.clone()]), false).expect("a stale validator is suspended");
        let Entry::NodeSuspended(s) = Entry::decode(&ok.entry).unwrap() else { unreachable!() };
        assert_eq!(s.cause, "stale");
        assert!(s.reason.contains("86401 s old, more than the pod's max_age_s of 86400 s"), "{}", s.reason);
        // Not within the grace after the pod resumed (its first block, or the first after a pause): its nodes are
        // re-attesting. A block that itself ends a pause resumes the pod.
        let mut resumed = r.clone();
        resumed.resumed_at_ms = T - 599_000;
        bad(&resumed, ok.clone(), "no validator is suspended within the pod's grace_s of 600 s");
        let mut paused = r.clone();
        paused.parent_time_ms = T - 600_001;
        bad(&paused, ok.clone(), "the pod resumed 0 s before this block");
        // The entry must say what every validator finds: another cause, or another attestation judged, is refused.
        // The reason is the proposer's words (binaries may word a refusal differently), bounded.
        bad(&r, made_up("refused", 0, &s.reason), "this validator finds \"stale\" of entry 0");
        bad(&r, made_up("stale", 2, &s.reason), "the entry says \"stale\" of entry 2");
        check_with(&f, &r, &block(&f, vec![made_up("stale", 0, "its operator is late")]), false).expect("words");
        bad(&r, made_up("stale", 0, &"x".repeat(513)), "a reason longer than 512 characters");
        bad(&r, made_up("stale", 0, "late\u{1b}[2J"), "a reason with control characters");
        // Not in a block that changes the policy before it (judged under the policy the next block has).
        let policy = testing::approved(
            "p",
            Entry::PolicyChanged(PolicyChanged { policy: local::policy(), prior: 0, approvals: vec![] }),
        );
        let err = check_with(&f, &r, &block(&f, vec![plain(&policy), ok.clone()]), false).unwrap_err();
        assert!(err.contains("the policy changes earlier in this block"), "{err}");
        check_with(&f, &r, &block(&f, vec![ok.clone(), plain(&policy)]), false).expect("the other way round");
        // Its invocations after its suspension in the same block are refused, as they are in later blocks.
        let err = check_with(&f, &r, &block(&f, vec![ok.clone(), signed(&invocation(3, 5, T - 10), 3)]), false);
        assert!(err.unwrap_err().contains("\"node-3\" is suspended or removed earlier in this block"));
        check_with(&f, &r, &block(&f, vec![signed(&invocation(3, 5, T - 10), 3), ok.clone()]), false)
            .expect("made before its suspension, in the same block");
        // Not twice, never a node that is no validator, and never one another entry of the block concerns: what
        // is judged is its committed attestation, and a proposer must not pair an entry that changes it with a
        // suspension judged on the old one (a re-attestation, a reinstatement, a removal and re-admission).
        let err = check_with(&f, &r, &block(&f, vec![ok.clone(), ok.clone()]), false).unwrap_err();
        assert!(err.contains("an entry earlier in this block concerns it"), "{err}");
        let own = crate::public_key(&local::seed(3));
        let root1 = crate::root_at_height(&f.ledger, 1).unwrap().unwrap().1;
        let anchor = sigil_ledger::entry::Anchor { height: 1, root: root1 };
        let evidence = admission::sim_evidence_with("p", &own, local::MEASUREMENT, &anchor.nonce(), None);
        let reattested = signed(
            &(
                Entry::Reattested(Reattested {
                    node: local::name(3),
                    key: ByteBuf::from(own.to_vec()),
                    evidence: ByteBuf::from(evidence),
                    attestation_result: ByteBuf::new(),
                    anchor: Some(anchor),
                }),
                Attachments::default(),
            ),
            3,
        );
        check_with(&f, &r, &block(&f, vec![reattested.clone()]), false).expect("a re-attestation alone");
        let err = check_with(&f, &r, &block(&f, vec![reattested.clone(), ok.clone()]), false).unwrap_err();
        assert!(err.contains("an entry earlier in this block concerns it"), "{err}");
        let err = check_with(&f, &r, &block(&f, vec![reattested.clone(), ok.clone()]), true).unwrap_err();
        assert!(err.contains("an entry earlier in this block concerns it"), "decided too: {err}");
        let err = check_with(&f, &r, &block(&f, vec![ok.clone(), reattested]), false).unwrap_err();
        assert!(err.contains("suspended or removed earlier in this block"), "{err}");
        let mut r9 = r.clone();
        r9.attested_at.insert("node-9".into(), 0);
        r9.attestations.insert("node-9".into(), 0);
        let nine = suspended_entry("node-9", "stale", 0, "x");
        bad(&r9, nine, "not a validator");
        // max_age_s = 0: age alone never suspends.
        let mut never = r.clone();
        never.policy.reattestation.max_age_s = 0;
        bad(&never, ok.clone(), "in good standing");
        // Two of four lapsed: suspending either would leave 2 in good standing, under the quorum of 3. The pod
        // keeps its set; a decided block (a quorum voted for it) still commits.
        let mut two = r.clone();
        two.attested_at.insert(local::name(2), T - 86_401_000);
        let err = check_with(&f, &two, &block(&f, vec![ok.clone()]), false).unwrap_err();
        assert!(err.contains("leave 2 validators in good standing, fewer than the quorum of 3"), "{err}");
        check_with(&f, &two, &block(&f, vec![ok.clone()]), true).expect("decided");
        // The pod's whole membership is what its safety is sized for: 4 validators and 6 suspended nodes are 10
        // members, which tolerate 3 Byzantine; the 3 validators left would have quorums (3 of 3) overlapping in 3,
        // not more than 3. Suspensions cannot shrink the set until the Byzantine nodes the pod was sized for fork it.
        let mut many = r.clone();
        for i in 0..6 {
            let s = Suspended { key: [i as u8 + 100; 32], height: 1, at_ms: T - 10_000 };
            many.suspended.insert(format!("gone-{i}"), s);
        }
        let err = check_with(&f, &many, &block(&f, vec![ok.clone()]), false).unwrap_err();
        assert!(
            err.contains("overlap in 3 of them: not more than the 3 Byzantine nodes the pod's 10 members"),
            "{err}"
        );
        // A member's removal of a suspended node shrinks the membership: the suspension then passes.
        let removal = testing::approved(
            "p",
            Entry::NodeRemoved(NodeRemoved {
                name: "gone-0".into(),
                reason: "gone".into(),
                prior: 0,
                approvals: vec![],
            }),
        );
        check_with(&f, &many, &block(&f, vec![plain(&removal), ok.clone()]), false).expect("9 members after it");
        many.suspended.remove("gone-0");
        check_with(&f, &many, &block(&f, vec![ok.clone()]), false).expect("9 members tolerate 2: 3 left overlap in 3");
        // A policy that refuses everyone's evidence: each has lapsed, for that cause, and none can be suspended.
        let mut tight = rules(&f);
        tight.policy.sim.measurements = vec![sigil_attest::policy::HexBytes(vec![7; 48])];
        let lapse = crate::standing::lapsed(&f.ledger, &tight, &local::name(3), T).unwrap().expect("refused");
        assert_eq!(lapse.cause, "refused");
        assert!(lapse.reason.contains("the pod's policy (entry 0) refuses its latest evidence (entry 0)"), "{lapse:?}");
        bad(&tight, suspension(&f, &tight, &local::name(3)), "leave 0 validators in good standing");
        // A suspension takes no signature.
        let mut signed_one = ok.clone();
        signed_one.signature = ByteBuf::from(vec![1; 64]);
        bad(&r, signed_one, "a signature on an entry that takes none");
    }

    /// A ledger in which node-3 is suspended (at height 2, after the fixture's height 1), and its rules.
    fn suspended_fixture() -> (Fixture, Rules) {
        let mut f = fixture();
        let mut r = rules(&f);
        r.attested_at.insert(local::name(3), T - 86_401_000);
        let lapse = crate::standing::lapsed(&f.ledger, &r, &local::name(3), T - 400).unwrap().unwrap();
        let enc = Encoded::new(Entry::NodeSuspended(lapse.suspension(&local::name(3))));
        let (size, root) = f.ledger.append_block_with(&[enc], vec![], vec![], None).unwrap();
        f.ledger.aux_write(crate::app::height_records(2, size, &root, T - 400).to_vec(), vec![]).unwrap();
        f.set = ValidatorSet::from_ledger(&f.ledger.validators_at(f.ledger.size())).unwrap();
        let mut r = rules(&f);
        let key = crate::public_key(&local::seed(3));
        r.suspended.insert(local::name(3), Suspended { key, height: 2, at_ms: T - 400 });
        r.parent_time_ms = T - 400;
        (f, r)
    }

    #[test]
    fn a_suspended_node_comes_back_only_with_fresh_evidence_under_its_own_key_and_loses_its_invocations_meanwhile() {
        let (f, r) = suspended_fixture();
        assert_eq!(f.set.validators.len(), 3, "node-3 lost its vote");
        let key3 = crate::public_key(&local::seed(3));
        let root = |h| crate::root_at_height(&f.ledger, h).unwrap().unwrap().1;
        let anchor = sigil_ledger::entry::Anchor { height: 2, root: root(2) };
        let reinstated = |name: &str, key: [u8; 32], anchor: sigil_ledger::entry::Anchor, measurement, by: usize| {
            let evidence = admission::sim_evidence_with("p", &key, measurement, &anchor.nonce(), None);
            let e = Entry::NodeReinstated(sigil_ledger::entry::NodeReinstated {
                validator: sigil_ledger::checkpoint::Validator { name: name.into(), public_key: key.to_vec() },
                evidence: ByteBuf::from(evidence),
                attestation_result: ByteBuf::new(),
                anchor,
            });
            signed(&(e, Attachments::default()), by)
        };
        let bad = |item: Item, why: &str| {
            let err = check_with(&f, &r, &block(&f, vec![item]), false).expect_err(why);
            assert!(err.contains(why), "{err} does not say {why:?}");
        };
        let back = reinstated("node-3", key3, anchor, local::MEASUREMENT, 3);
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        let (_, effects) = validate(&block(&f, vec![back.clone()]), &f.ledger, &r, &slot, false).expect("reinstated");
        assert!(effects.writes.is_empty());
        // Another key, another signer, a node that is not suspended, an anchor from before the suspension, another
        // ledger's root, evidence the policy refuses, twice in a block.
        bad(reinstated("node-3", crate::public_key(&local::seed(2)), anchor, local::MEASUREMENT, 3), "another key");
        bad(reinstated("node-3", key3, anchor, local::MEASUREMENT, 2), "the signature is not");
        bad(reinstated("node-1", crate::public_key(&local::seed(1)), anchor, local::MEASUREMENT, 1), "not suspended");
        let before = sigil_ledger::entry::Anchor { height: 1, root: root(1) };
        bad(reinstated("node-3", key3, before, local::MEASUREMENT, 3), "before height 2");
        let forged = sigil_ledger::entry::Anchor { root: Hash::digest(b"elsewhere"), ..anchor };
        bad(reinstated("node-3", key3, forged, local::MEASUREMENT, 3), "not this ledger's");
        let mut pinned = r.clone();
        pinned.policy.sim.measurements = vec![sigil_attest::policy::HexBytes(local::MEASUREMENT.to_vec())];
        check_with(&f, &pinned, &block(&f, vec![back.clone()]), false).expect("its measurement is pinned");
        let err = check_with(&f, &pinned, &block(&f, vec![reinstated("node-3", key3, anchor, [9; 48], 3)]), false);
        assert!(err.unwrap_err().contains("sim.policy.measurement"), "the policy refuses another measurement");
        let err = check_with(&f, &r, &block(&f, vec![back.clone(), back.clone()]), false).unwrap_err();
        assert!(err.contains("already a validator"), "{err}");
        // Meanwhile: its invocations and re-attestations are refused, its name cannot be admitted again, and it
        // cannot be suspended twice; members can remove it.
        bad(signed(&invocation(3, 5, T - 10), 3), "not a validator");
        let approve = |e: Entry| plain(&testing::approved("p", e));
        let removal = |name: &str| {
            approve(Entry::NodeRemoved(NodeRemoved {
                name: name.into(),
                reason: "r".into(),
                prior: 0,
                approvals: vec![],
            }))
        };
        check_with(&f, &r, &block(&f, vec![removal("node-3")]), false).expect("a suspended node can be removed");
        let err = check_with(&f, &r, &block(&f, vec![removal("node-3"), back.clone()]), false).unwrap_err();
        assert!(err.contains("removed earlier in this block"), "{err}");
        // A reinstated node is not suspended again in the same block (judged on the evidence it just replaced).
        let mut stale3 = r.clone();
        stale3.attested_at.insert(local::name(3), 0);
        let again3 = suspended_entry(&local::name(3), "stale", 0, "r");
        let err = check_with(&f, &stale3, &block(&f, vec![back.clone(), again3]), true).unwrap_err();
        assert!(err.contains("an entry earlier in this block concerns it"), "{err}");
        bad(removal("node-9"), "not a validator");
        let again = approve(Entry::NodeAdmitted(NodeAdmitted {
            validator: sigil_ledger::checkpoint::Validator { name: "node-3".into(), public_key: vec![0x33; 32] },
            evidence: ByteBuf::from(admission::sim_evidence("p", &[0x33; 32], local::MEASUREMENT)),
            attestation_result: ByteBuf::new(),
            prior: 0,
            approvals: vec![],
        }));
        bad(again, "suspended validator");
        let mut stale = r.clone();
        stale.attested_at.insert(local::name(3), 0);
        let twice = suspended_entry(&local::name(3), "stale", 0, "again");
        let err = check_with(&f, &stale, &block(&f, vec![twice]), false).unwrap_err();
        assert!(err.contains("not a validator"), "{err}");
    }

    fn check(f: &Fixture, b: &Block) -> Result<Vec<Encoded>, Refusal> {
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        validate(b, &f.ledger, &rules(f), &slot, false).map(|(entries, _)| entries)
    }

    /// `b` is refused with a reason that says `why`, as the kind of rejection that reason is: a conflict and a
    /// replay are worth running again (the service does), missing approvals are 403s, anything else never passes.
    fn refused(f: &Fixture, b: &Block, why: &str) {
        let e = match check(f, b) {
            Ok(_) => panic!("accepted a block that should be refused for {why:?}"),
            Err(e) => e,
        };
        let text = e.to_string();
        assert!(text.contains(why), "{e:?} does not say {why:?}");
        let (conflict, replay) = (text.contains("a conflict"), text.contains("(a replay)"));
        let unapproved = text.contains("approv") || text.contains("not a member");
        let kind_ok = match &e {
            Rejection::Conflict(_) => conflict,
            Rejection::Replay(_) => replay,
            Rejection::Unapproved(_) => unapproved,
            Rejection::Stale(_) => text.contains("approve it again"),
            Rejection::Invalid(_) => !(conflict || replay || unapproved),
            other => panic!("a block rule refused with {other:?}"),
        };
        assert!(kind_ok, "{e:?} is the wrong kind of rejection for {why:?}");
    }

    fn refused1(f: &Fixture, item: Item, why: &str) {
        refused(f, &block(f, vec![item]), why)
    }

    /// The rejection of a hand-built request (see [`custom`]) by node 0, with `edit` applied to the entry.
    fn rejection(
        n: u64,
        request: impl FnOnce(&mut sigil_ledger::request::Request),
        edit: impl FnOnce(&mut RequestRejected),
    ) -> (Entry, Attachments) {
        let (inv, a) = custom(n, request, WriteSet::default(), |_| {});
        let Entry::Invocation(inv) = inv else { unreachable!() };
        let req = SignedRequest::decode(&a.request).unwrap();
        let mut r = RequestRejected {
            request_hash: inv.request_hash,
            caller: inv.caller,
            applet: req.request.applet.clone(),
            method: req.request.method.clone(),
            reason: "not authorized".into(),
            node: local::name(0),
            at_ms: T - 10,
        };
        edit(&mut r);
        (Entry::RequestRejected(r), Attachments { request: a.request, ..Default::default() })
    }

    #[test]
    fn a_rejection_is_on_the_record_only_of_the_caller_who_signed_the_request() {
        let f = fixture();
        let ok = rejection(1, |_| {}, |_| {});
        assert!(check(&f, &block(&f, vec![signed(&ok, 0)])).is_ok());
        // A stale request, or one for another pod, is still its caller's: its refusal is recorded.
        let stale = rejection(2, |r| r.issued_at_ms = T - 3_600_000, |_| {});
        assert!(check(&f, &block(&f, vec![signed(&stale, 0)])).is_ok());

        // No request: a node's word alone puts nothing on a caller's record.
        let (e, _) = rejection(3, |_| {}, |_| {});
        refused1(&f, signed(&(e, Attachments::default()), 0), "no signed request");
        // Another caller named than the one who signed: the attribution a Byzantine node would forge.
        let victim = rejection(4, |_| {}, |r| r.caller = ByteBuf::from(crate::public_key(&[0x66; 32]).to_vec()));
        refused1(&f, signed(&victim, 0), "names another caller");
        // The request's signature does not verify (it claims the caller's key, someone else signed).
        let (e, mut a) = rejection(5, |_| {}, |_| {});
        let mut req = SignedRequest::decode(&a.request).unwrap();
        req.signature = ByteBuf::from(vec![0u8; 64]);
        a.request = req.encode();
        let Entry::RequestRejected(mut r) = e else { unreachable!() };
        r.request_hash = SignedRequest::hash_of(&a.request);
        refused1(&f, signed(&(Entry::RequestRejected(r), a), 0), "not its caller's");
        // The request is not the one the entry hashes.
        let (e, _) = rejection(6, |_| {}, |_| {});
        let (_, other) = rejection(7, |_| {}, |_| {});
        refused1(&f, signed(&(e, other), 0), "does not hash");
        // Another applet or method than the request's.
        let renamed = rejection(8, |_| {}, |r| r.method = "other".into());
        refused1(&f, signed(&renamed, 0), "another applet or method");
        // A large refused request (a stranger's way to grow every ledger), and a long reason.
        let big = rejection(12, |r| r.args = ByteBuf::from(vec![b'x'; 20_000]), |_| {});
        refused1(&f, signed(&big, 0), "rejections carry at most");
        let long = rejection(13, |_| {}, |r| r.reason = "x".repeat(RequestRejected::MAX_REASON_CHARS + 1));
        refused1(&f, signed(&long, 0), "a reason longer");
        // A write set riding along.
        let (e, a) = rejection(9, |_| {}, |_| {});
        refused1(&f, signed(&(e, Attachments { write_set: vec![1], ..a }), 0), "a write set or code");

        // Delegated: the caller's assertion with a delegate's signature. Anyone can sign as the "delegate" of an
        // assertion they saw, so only a validator's delegation puts a refusal on the caller's record.
        let caller = ring::signature::Ed25519KeyPair::from_seed_unchecked(&testing::CALLER_SEED).unwrap();
        let assertion =
            sigil_ledger::request::client_assertion(&caller, "https://127.0.0.1:1/oauth/p", T / 1000 - 5, 300, "j");
        let delegated = |by: [u8; 32]| {
            let (e, mut a) = rejection(10, |_| {}, |_| {});
            let req = SignedRequest::decode(&a.request).unwrap().request;
            let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&by).unwrap();
            a.request = req.sign_delegated(assertion.clone(), &key).encode();
            let Entry::RequestRejected(mut r) = e else { unreachable!() };
            r.request_hash = SignedRequest::hash_of(&a.request);
            (Entry::RequestRejected(r), a)
        };
        assert!(check(&f, &block(&f, vec![signed(&delegated(local::seed(1)), 0)])).is_ok());
        refused1(&f, signed(&delegated([0x77; 32]), 0), "delegate is not a validator");
        // A validator's delegation of a request that is not fresh at the block's time: one made later from an
        // assertion the validator saw, to put words on the caller's record.
        let (e, mut a) = rejection(11, |_| {}, |_| {});
        let req = SignedRequest::decode(&a.request).unwrap().request;
        let mut old = req.clone();
        old.issued_at_ms = T - 600_000;
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&local::seed(1)).unwrap();
        let stale_assertion =
            sigil_ledger::request::client_assertion(&caller, "https://127.0.0.1:1/oauth/p", T / 1000 - 650, 300, "k");
        a.request = old.sign_delegated(stale_assertion, &key).encode();
        let Entry::RequestRejected(mut r) = e else { unreachable!() };
        r.request_hash = SignedRequest::hash_of(&a.request);
        refused1(&f, signed(&(Entry::RequestRejected(r), a), 0), "only when fresh");
        // A rejection of a request that was executed (request 999 is in the fixture's ledger) is recorded: that is
        // how a replay is refused on the record. The refusal is the refusing node's word; its reason is not checked.
        let (done, done_a) = invocation(0, 999, T - 1000);
        let Entry::Invocation(inv) = done else { unreachable!() };
        let replayed = Entry::RequestRejected(RequestRejected {
            request_hash: inv.request_hash,
            caller: inv.caller,
            applet: "probe".into(),
            method: "run".into(),
            reason: "a replay".into(),
            node: local::name(0),
            at_ms: T - 10,
        });
        let item = signed(&(replayed, Attachments { request: done_a.request, ..Default::default() }), 0);
        assert!(check(&f, &block(&f, vec![item])).is_ok());
    }

    #[test]
    fn a_delegated_invocation_is_signed_by_a_validator_that_the_entry_names() {
        use sigil_ledger::request::client_assertion;
        let f = fixture();
        let caller = ring::signature::Ed25519KeyPair::from_seed_unchecked(&testing::CALLER_SEED).unwrap();
        let assertion = client_assertion(&caller, "https://127.0.0.1:1/oauth/p", T / 1000 - 5, 300, "j");
        // Re-sign a hand-built invocation's request as a delegate, and name `delegate` in the entry.
        let delegated = |n: u64, by: [u8; 32], named: Option<&str>| {
            let (e, mut a) = custom(n, |_| {}, WriteSet::default(), |_| {});
            let req = SignedRequest::decode(&a.request).unwrap().request;
            let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&by).unwrap();
            a.request = req.sign_delegated(assertion.clone(), &key).encode();
            let Entry::Invocation(mut i) = e else { unreachable!() };
            i.request_hash = SignedRequest::hash_of(&a.request);
            i.delegate = named.map(str::to_string);
            (Entry::Invocation(i), a)
        };
        let node1 = local::name(1);
        assert!(check(&f, &block(&f, vec![signed(&delegated(1, local::seed(1), Some(&node1)), 0)])).is_ok());
        refused1(&f, signed(&delegated(2, [0x5a; 32], Some(&node1)), 0), "not a validator");
        refused1(&f, signed(&delegated(3, local::seed(1), None), 0), "another delegate");
        refused1(&f, signed(&delegated(4, local::seed(1), Some(&local::name(2))), 0), "another delegate");
        // An entry that claims a delegate for a request its caller signed.
        let own = custom(5, |_| {}, WriteSet::default(), |i| i.delegate = Some(local::name(1)));
        refused1(&f, signed(&own, 0), "another delegate");
        // The assertion is checked inside blocks too: one for another pod.
        let (e, mut a) = custom(6, |_| {}, WriteSet::default(), |_| {});
        let req = SignedRequest::decode(&a.request).unwrap().request;
        let other_pod = client_assertion(&caller, "https://127.0.0.1:1/oauth/q", T / 1000 - 5, 300, "j");
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&local::seed(1)).unwrap();
        a.request = req.sign_delegated(other_pod, &key).encode();
        let Entry::Invocation(mut i) = e else { unreachable!() };
        i.request_hash = SignedRequest::hash_of(&a.request);
        i.delegate = Some(node1.clone());
        refused1(&f, signed(&(Entry::Invocation(i), a), 0), "audience");

        // An assertion serves the one validator that first signed under it, pod-wide: a Byzantine validator that
        // saw it in a block cannot sign requests as the caller, in the same block or after.
        let node2 = local::name(2);
        let first = signed(&delegated(7, local::seed(1), Some(&node1)), 0);
        let again = signed(&delegated(8, local::seed(1), Some(&node1)), 0);
        let other = signed(&delegated(9, local::seed(2), Some(&node2)), 0);
        assert!(check(&f, &block(&f, vec![first.clone(), again.clone()])).is_ok(), "the same delegate, twice");
        refused(&f, &block(&f, vec![first.clone(), other.clone()]), "serves \"node-1\", which first signed under it");
        let mut f = f;
        let b = block(&f, vec![first]);
        commit(&mut f, &b);
        assert_eq!(crate::delegate_of(&f.ledger, &assertion).unwrap().as_deref(), Some("node-1"));
        refused1(&f, other, "not \"node-2\"");
        assert!(check(&f, &block(&f, vec![again])).is_ok());
        // Nor can it put a refusal on the caller's record under that assertion.
        let (e, mut a) = rejection(12, |_| {}, |_| {});
        let req = SignedRequest::decode(&a.request).unwrap().request;
        a.request = req
            .sign_delegated(
                assertion.clone(),
                &ring::signature::Ed25519KeyPair::from_seed_unchecked(&local::seed(2)).unwrap(),
            )
            .encode();
        let Entry::RequestRejected(mut r) = e else { unreachable!() };
        r.request_hash = SignedRequest::hash_of(&a.request);
        refused1(&f, signed(&(Entry::RequestRejected(r), a), 0), "serves \"node-1\"");
    }

    #[test]
    fn an_invocation_needs_its_signed_request_authorization_and_a_write_set_that_still_holds() {
        let f = fixture();
        let ok = custom(1, |_| {}, WriteSet::default(), |_| {});
        assert!(check(&f, &block(&f, vec![signed(&ok, 0)])).is_ok());

        // The request: missing, altered, swapped, forged, for another pod, stale, another caller, applet, input.
        let mut none = signed(&ok, 0);
        none.request = ByteBuf::new();
        refused1(&f, none, "no signed request");
        let mut flipped = signed(&ok, 0);
        let last = flipped.request.len() - 1;
        flipped.request[last] ^= 1;
        refused1(&f, flipped, "does not hash");
        let mut swapped = signed(&ok, 0);
        swapped.request = ByteBuf::from(custom(2, |_| {}, WriteSet::default(), |_| {}).1.request);
        refused1(&f, swapped, "does not hash");
        let (e, mut a) = custom(3, |_| {}, WriteSet::default(), |_| {});
        let mut req = SignedRequest::decode(&a.request).unwrap();
        req.signature[7] ^= 1;
        a.request = req.encode();
        let forged = match e {
            Entry::Invocation(mut i) => {
                i.request_hash = SignedRequest::hash_of(&a.request);
                (Entry::Invocation(i), a)
            }
            _ => unreachable!(),
        };
        refused1(&f, signed(&forged, 0), "signature does not verify");
        refused1(&f, signed(&custom(4, |r| r.pod = "q".into(), WriteSet::default(), |_| {}), 0), "for pod");
        let stale =
            custom(5, |r| r.issued_at_ms = T - sigil_ledger::request::MAX_AGE_MS - 1, WriteSet::default(), |_| {});
        refused1(&f, signed(&stale, 0), "ago");
        let other = custom(6, |_| {}, WriteSet::default(), |i| i.caller = ByteBuf::from(vec![3; 32]));
        refused1(&f, signed(&other, 0), "another caller");
        let method = custom(7, |_| {}, WriteSet::default(), |i| i.method = "walk".into());
        refused1(&f, signed(&method, 0), "another applet or method");
        let input = custom(8, |_| {}, WriteSet::default(), |i| i.input_hash = Hash::digest(b"x"));
        refused1(&f, signed(&input, 0), "input hash");

        // The applet: deployed, with this code, and the caller allowed.
        let unknown = custom(9, |r| r.applet = "nope".into(), WriteSet::default(), |i| i.applet = "nope".into());
        refused1(&f, signed(&unknown, 0), "not deployed");
        let code = custom(10, |_| {}, WriteSet::default(), |i| i.code_digest = Hash::digest(b"other code"));
        refused1(&f, signed(&code, 0), "runs code");
        let denied = custom(11, |r| r.method = "nope".into(), WriteSet::default(), |i| i.method = "nope".into());
        refused1(&f, signed(&denied, 0), "not authorized");

        // Nonces: once per caller, in the ledger and in the block.
        let same_nonce = custom(12, |r| r.nonce = ByteBuf::from(vec![1; 16]), WriteSet::default(), |_| {});
        refused(&f, &block(&f, vec![signed(&ok, 0), signed(&same_nonce, 0)]), "nonce");

        // The write set.
        let mut ws_flip = signed(&ok, 0);
        ws_flip.write_set = ByteBuf::from(custom(13, |_| {}, write(&[("probe", b"k", 2)]), |_| {}).1.write_set);
        refused1(&f, ws_flip, "write-set hash");
        let reads = |ns: &str, v: u64| {
            let mut ws = WriteSet::default();
            ws.reads.insert((ns.into(), b"k".to_vec()), v);
            ws
        };
        assert!(check(&f, &block(&f, vec![signed(&custom(14, |_| {}, reads("probe", 2), |_| {}), 0)])).is_ok());
        refused1(&f, signed(&custom(15, |_| {}, reads("probe", 1), |_| {}), 0), "a conflict");
        refused1(&f, signed(&custom(16, |_| {}, reads("other", 0), |_| {}), 0), "not granted");
        let mut blind = WriteSet::default();
        blind.writes.insert(("other".into(), b"k".to_vec()), Some(b"x".to_vec()));
        refused1(&f, signed(&custom(17, |_| {}, blind, |_| {}), 0), "may not write");
        let failed = custom(18, |_| {}, write(&[("probe", b"k", 2)]), |i| i.outcome = "trapped".into());
        refused1(&f, signed(&failed, 0), "writes state");
        // Two invocations that read and write the same key: the second read a version the first replaced.
        let first = custom(19, |_| {}, write(&[("probe", b"k", 2)]), |_| {});
        let second = custom(20, |_| {}, write(&[("probe", b"k", 2)]), |_| {});
        assert!(check(&f, &block(&f, vec![signed(&first, 0)])).is_ok());
        refused(&f, &block(&f, vec![signed(&first, 0), signed(&second, 0)]), "a conflict");
        // A listing another entry of the block changed.
        let mut lists = WriteSet::default();
        lists.lists.insert(("probe".into(), Vec::new()), sigil_runtime::state::list_hash(&[b"k".to_vec()]));
        let listed = custom(21, |_| {}, lists.clone(), |_| {});
        assert!(check(&f, &block(&f, vec![signed(&listed, 0)])).is_ok());
        refused(&f, &block(&f, vec![signed(&first, 0), signed(&listed, 0)]), "listed and written");
        lists.lists.insert(("probe".into(), Vec::new()), sigil_runtime::state::list_hash(&[]));
        refused1(&f, signed(&custom(22, |_| {}, lists, |_| {}), 0), "changed since they were listed");
    }

    #[test]
    fn only_this_process_can_vouch_for_signatures() {
        let f = fixture();
        // Forged signatures, marked as verified: a checker skips the two Ed25519 checks on such attachments...
        let (e, a) = custom(30, |_| {}, WriteSet::default(), |_| {});
        let mut req = SignedRequest::decode(&a.request).unwrap();
        req.signature[0] ^= 1;
        let forged = Attachments { signature: vec![7; 64], request: req.encode(), verified: true, ..a };
        let e = match e {
            Entry::Invocation(mut i) => {
                i.request_hash = SignedRequest::hash_of(&forged.request);
                Entry::Invocation(i)
            }
            _ => unreachable!(),
        };
        let enc = Encoded::new(e);
        let r = rules(&f);
        assert!(Checker::new(&f.ledger, &r, T).check(0, &enc, &forged).is_ok());
        // ...but the flag never travels: in a block, the same entry is checked in full and refused.
        let item = Item::new(&enc, &forged);
        assert!(!item.attachments().verified);
        refused1(&f, item, "forged receipt");
        let signed_ok = signed(&(enc.entry().clone(), Attachments { verified: false, ..forged.clone() }), 0);
        refused1(&f, signed_ok, "signature does not verify");
    }

    /// A write set that read `ns/key` at `version` and writes it.
    fn write(items: &[(&str, &[u8], u64)]) -> WriteSet {
        let mut ws = WriteSet::default();
        for (ns, key, version) in items {
            ws.reads.insert((ns.to_string(), key.to_vec()), *version);
            ws.writes.insert((ns.to_string(), key.to_vec()), Some(b"new".to_vec()));
        }
        ws
    }

    #[test]
    fn a_valid_block_has_the_effects_of_its_entries() {
        let f = fixture();
        let first = custom(19, |_| {}, write(&[("probe", b"k", 2)]), |_| {});
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        let (_, effects) = validate(&block(&f, vec![signed(&first, 0)]), &f.ledger, &rules(&f), &slot, false).unwrap();
        let index = f.ledger.size();
        assert_eq!(
            effects.writes.get(&state::state_key("probe", b"k")),
            Some(&Some(state::value_bytes(b"new", index)))
        );
        assert_eq!(effects.writes.len(), 2, "the state write and the nonce: {effects:?}");
    }

    #[test]
    fn a_deployment_carries_its_code_and_a_manifest_that_matches_it() {
        let f = fixture();
        let mut m = testing::probe();
        m.version = "2".into();
        // It replaces the fixture's deployment of `probe` (entry 1).
        let (e, a) = testing::deployment(&m, testing::PROBE_CODE, 1);
        let e = testing::approved("p", e);
        let item = |e: &Entry, a: &Attachments| Item::new(&Encoded::new(e.clone()), a);
        assert!(check(&f, &block(&f, vec![item(&e, &a)])).is_ok());
        refused1(&f, item(&e, &Attachments::default()), "does not hash");
        refused1(&f, item(&e, &Attachments { code: b"other".to_vec(), ..a.clone() }), "does not hash");
        let (unapproved, _) = testing::deployment(&m, testing::PROBE_CODE, 1);
        refused1(&f, item(&unapproved, &a), "member approvals");
        let mut renamed = e.clone();
        if let Entry::AppletDeployed(d) = &mut renamed {
            d.version = "3".into();
        }
        refused1(&f, item(&testing::approved("p", renamed), &a), "differs");
        refused1(&f, item(&e, &Attachments { request: vec![1], ..a.clone() }), "only its code");
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
        refused(&f, &block(&f, vec![plain(&local::genesis("p", 4))]), "genesis");
        let e = invocation(0, 3, T - 10);
        refused(&f, &block(&f, vec![Item::new(&Encoded::new(e.0.clone()), &e.1)]), "no signature");
        refused(&f, &block(&f, vec![signed(&e, 3)]), "forged receipt");
        let mut flipped = signed(&e, 0);
        flipped.signature[5] ^= 1;
        refused(&f, &block(&f, vec![flipped]), "forged receipt");
        let mut swapped = signed(&e, 0);
        swapped.entry = ByteBuf::from(invocation(0, 4, T - 10).0.encode());
        refused(&f, &block(&f, vec![swapped]), "forged receipt");
        refused(&f, &block(&f, vec![signed(&invocation(7, 5, T - 10), 7)]), "not a validator");
        let mut wrong_att = invocation(0, 6, T - 10);
        if let Entry::Invocation(i) = &mut wrong_att.0 {
            i.executor_attestation = 1;
        }
        refused(&f, &block(&f, vec![signed(&wrong_att, 0)]), "latest attestation");
        // An invocation executed just before its node re-attested (made at T - 10) may name the attestation that was
        // replaced; not one made after the replacement, and not an attestation replaced before that.
        {
            let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
            let b = block(&f, vec![signed(&wrong_att, 0)]);
            let mut r = rules(&f);
            r.attestations.insert(local::name(0), 5);
            r.superseded.insert(local::name(0), (1, T - 5));
            assert!(validate(&b, &f.ledger, &r, &slot, false).is_ok(), "made before its attestation was replaced");
            r.superseded.insert(local::name(0), (1, T - 1000));
            let err = validate(&b, &f.ledger, &r, &slot, false).unwrap_err();
            assert!(err.to_string().contains("latest attestation"), "made after the replacement: {err}");
            r.superseded.insert(local::name(0), (0, T - 5));
            let err = validate(&b, &f.ledger, &r, &slot, false).unwrap_err();
            assert!(err.to_string().contains("latest attestation"), "another attestation: {err}");
        }
        let mut wrong_policy = invocation(0, 6, T - 10);
        if let Entry::Invocation(i) = &mut wrong_policy.0 {
            i.policy = Some(1);
        }
        refused(&f, &block(&f, vec![signed(&wrong_policy, 0)]), "the policy in force is entry 0's");
        // No policy named: refused when proposed; taken as committed in a decided block (an older invocation, synced).
        let mut no_policy = invocation(0, 6, T - 10);
        if let Entry::Invocation(i) = &mut no_policy.0 {
            i.policy = None;
        }
        refused(&f, &block(&f, vec![signed(&no_policy, 0)]), "it names no policy");
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        assert!(validate(&block(&f, vec![signed(&no_policy, 0)]), &f.ledger, &rules(&f), &slot, true).is_ok());
        // A re-attestation names the key its evidence binds: the node's, or it is refused. It binds an anchor (a
        // decided height of this ledger and the root after it) within the pod's window of the block.
        let own = crate::public_key(&local::seed(0));
        let root1 = crate::root_at_height(&f.ledger, 1).unwrap().unwrap().1;
        let anchor = sigil_ledger::entry::Anchor { height: 1, root: root1 };
        let reattested = |key: Vec<u8>, anchor: Option<sigil_ledger::entry::Anchor>, nonce: Vec<u8>| {
            let evidence = admission::sim_evidence_with("p", &own, local::MEASUREMENT, &nonce, None);
            let e = Entry::Reattested(Reattested {
                node: local::name(0),
                key: ByteBuf::from(key),
                evidence: ByteBuf::from(evidence),
                attestation_result: ByteBuf::new(),
                anchor,
            });
            signed(&(e, Attachments::default()), 0)
        };
        let fresh = reattested(own.to_vec(), Some(anchor), anchor.nonce());
        assert!(check(&f, &block(&f, vec![fresh.clone()])).is_ok());
        let other = crate::public_key(&local::seed(1)).to_vec();
        refused(&f, &block(&f, vec![reattested(other, Some(anchor), anchor.nonce())]), "names another key");
        refused(&f, &block(&f, vec![reattested(own.to_vec(), None, vec![])]), "binds no anchor");
        let forged = sigil_ledger::entry::Anchor { root: Hash::digest(b"another ledger"), ..anchor };
        refused(&f, &block(&f, vec![reattested(own.to_vec(), Some(forged), forged.nonce())]), "not this ledger's");
        let ahead = sigil_ledger::entry::Anchor { height: 2, ..anchor };
        refused(&f, &block(&f, vec![reattested(own.to_vec(), Some(ahead), ahead.nonce())]), "not decided here");
        // Evidence made before the anchor (an empty nonce, or another anchor's) does not bind it.
        refused(&f, &block(&f, vec![reattested(own.to_vec(), Some(anchor), vec![])]), "report_data");
        refused(&f, &block(&f, vec![reattested(own.to_vec(), Some(anchor), forged.nonce())]), "report_data");
        refused(&f, &block(&f, vec![fresh.clone(), fresh.clone()]), "second re-attestation in one block");
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        let mut tight = rules(&f);
        tight.policy.reattestation.window_s = 0; // the anchor's block is 500 ms older than this one
        let err = validate(&block(&f, vec![fresh.clone()]), &f.ledger, &tight, &slot, false).unwrap_err();
        assert!(format!("{err:?}").contains("more than the pod's window"), "{err:?}");
        let mut recent = rules(&f);
        recent.attested_at.insert(local::name(0), T - MIN_REATTEST_GAP_MS + 1);
        let err = validate(&block(&f, vec![fresh.clone()]), &f.ledger, &recent, &slot, false).unwrap_err();
        assert!(format!("{err:?}").contains("sooner than"), "{err:?}");
        // The gap is also a quarter of the pod's schedule (every_s 4 h: 1 h).
        recent.attested_at.insert(local::name(0), T - 3_600_000 + 1);
        let err = validate(&block(&f, vec![fresh.clone()]), &f.ledger, &recent, &slot, false).unwrap_err();
        assert!(format!("{err:?}").contains("sooner than 3600000 ms"), "{err:?}");
        // A committed re-attestation copied into a later block: its anchor is older than the height that committed
        // the node's latest attestation (the original).
        let mut copied = rules(&f);
        copied.attested_height.insert(local::name(0), 2);
        let err = validate(&block(&f, vec![fresh.clone()]), &f.ledger, &copied, &slot, false).unwrap_err();
        assert!(format!("{err:?}").contains("committed again"), "{err:?}");
        // A block a quorum decided stands as it was voted on: a re-attestation written before anchors existed
        // (its evidence binds an empty nonce) is committed.
        let old = reattested(own.to_vec(), None, vec![]);
        assert!(validate(&block(&f, vec![old]), &f.ledger, &tight, &slot, true).is_ok());
        refused(&f, &block(&f, vec![signed(&invocation(0, 7, T - FRESHNESS_MS - 1), 0)]), "stale");
        refused(&f, &block(&f, vec![signed(&invocation(0, 8, T + 1), 0)]), "after its block's time");
        let twice = signed(&invocation(0, 9, T - 10), 0);
        refused(&f, &block(&f, vec![twice.clone(), twice]), "twice in the block");
        refused(&f, &block(&f, vec![signed(&invocation(0, 999, T - 1000), 0)]), "a replay");
        let mut noncanonical = signed(&e, 0);
        noncanonical.entry.push(0);
        refused(&f, &block(&f, vec![noncanonical]), "entry 0");
        let removal = |name: &str| {
            plain(&Entry::NodeRemoved(NodeRemoved {
                name: name.into(),
                reason: "r".into(),
                prior: 0,
                approvals: vec![],
            }))
        };
        refused(&f, &block(&f, vec![removal("node-2")]), "0 of the 1 member approvals");
        let approve = |item: &mut Item, seed: [u8; 32], member: &str| {
            let mut e = Entry::decode(&item.entry).unwrap();
            e.approve("p", member, &ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()).unwrap();
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

    /// Validates `b` and appends it with its effects, as a commit does.
    fn commit(f: &mut Fixture, b: &Block) {
        let slot = Slot { height: Height(2), proposer: f.proposer, now_ms: T + 100 };
        let (entries, effects) = validate(b, &f.ledger, &rules(f), &slot, false).unwrap();
        let (puts, deletes) = effects.split();
        f.ledger.append_block_with(&entries, puts, deletes, None).unwrap();
        f.set = ValidatorSet::from_ledger(&f.ledger.validators_at(f.ledger.size())).unwrap();
    }

    #[test]
    fn a_governance_entry_applies_once_to_the_state_it_was_approved_for() {
        let mut f = fixture();
        let approved = |e: Entry| Item::new(&Encoded::new(testing::approved("p", e)), &Attachments::default());
        let policy = |prior: u64| {
            approved(Entry::PolicyChanged(PolicyChanged { policy: local::policy(), prior, approvals: vec![] }))
        };
        let removal = |name: &str, prior: u64| {
            approved(Entry::NodeRemoved(NodeRemoved {
                name: name.into(),
                reason: "r".into(),
                prior,
                approvals: vec![],
            }))
        };
        let mut v2 = testing::probe();
        v2.version = "2.0.0".into();
        let deploy = |prior: u64| {
            let (e, a) = testing::deployment(&v2, testing::PROBE_CODE, prior);
            Item::new(&Encoded::new(testing::approved("p", e)), &a)
        };

        // An applet's new version names the deployment it replaces (entry 1), not "none".
        refused1(&f, deploy(0), "last changed by entry 1");
        refused1(&f, deploy(7), "approve it again");
        assert!(check(&f, &block(&f, vec![deploy(1)])).is_ok());
        // The first deployment, replayed: a rollback.
        let (first, code) = testing::deployment(&testing::probe(), testing::PROBE_CODE, 0);
        refused1(&f, Item::new(&Encoded::new(testing::approved("p", first)), &code), "last changed by entry 1");

        // Two changes of one thing in a block: the second follows the first.
        let next = f.ledger.size();
        refused(
            &f,
            &block(&f, vec![policy(0), policy(0)]),
            "entry 1 (policy_changed): approved as the change after entry 0",
        );
        assert!(check(&f, &block(&f, vec![policy(0), policy(next)])).is_ok());
        // Changes of different things do not wait for each other.
        assert!(check(&f, &block(&f, vec![policy(0), removal("node-2", 0), deploy(1)])).is_ok());

        // Committed, each is the last change of its subject, and its approvals cannot be used again.
        let b = block(&f, vec![policy(0), removal("node-2", 0)]);
        commit(&mut f, &b);
        assert_eq!(crate::last_change(&f.ledger, Subject::Policy).unwrap(), next);
        assert_eq!(crate::last_change(&f.ledger, Subject::Membership("node-2")).unwrap(), next + 1);
        // A node that starts on this ledger knows which entry set the policy, as invocations must name it.
        assert_eq!(crate::app::load_rules(&f.ledger).unwrap().policy_index, next);
        refused1(&f, policy(0), "last changed by entry 3");
        assert!(check(&f, &block(&f, vec![policy(next)])).is_ok());

        // A removed node comes back only by an admission that names its removal; the removal, replayed after it
        // is back, is refused.
        let admission = |prior: u64| {
            let key = crate::public_key(&local::seed(2));
            approved(Entry::NodeAdmitted(NodeAdmitted {
                validator: sigil_ledger::checkpoint::Validator { name: local::name(2), public_key: key.to_vec() },
                evidence: ByteBuf::from(local::evidence("p", 2)),
                attestation_result: ByteBuf::new(),
                prior,
                approvals: vec![],
            }))
        };
        refused1(&f, admission(0), "last changed by entry 4");
        let b = block(&f, vec![admission(next + 1)]);
        commit(&mut f, &b);
        refused1(&f, removal("node-2", 0), "last changed by entry 5");
        assert!(check(&f, &block(&f, vec![removal("node-2", next + 2)])).is_ok());
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
