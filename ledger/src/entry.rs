//! Ledger entries: what a pod records, in canonical CBOR with a stable hash.
//!
//! Encoding: the envelope `{"v": 1, "entry": {"kind": "<kind>", ...fields}}` in RFC 8949 §4.2.1 core
//! deterministic CBOR (definite lengths, shortest integers, map keys sorted by their encoding). Decoding accepts
//! exactly that: any other encoding of the same data (reordered keys, long integers, indefinite lengths),
//! unknown fields, trailing bytes or more than [`MAX_ENTRY_LEN`] bytes are refused, so every entry has one
//! encoding and one hash. The leaf hash of an entry in the Merkle log is RFC 9162's H(0x00 ‖ encoding).
//!
//! Validator-set and policy changes are entries, so the validator set at any size is derived from the log
//! ([`ValidatorSet::apply`]).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sigil_primitives::cbor;

use crate::checkpoint::{Validator, ValidatorSet};
use crate::error::LedgerError;
use crate::hash::{leaf_hash, Hash};

/// Entry format version.
pub const ENTRY_VERSION: u32 = 1;
/// Largest encoded entry accepted.
pub const MAX_ENTRY_LEN: usize = 4 << 20;

/// A governance member (operator or enterprise key) of a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Display name.
    pub name: String,
    /// Ed25519 public key.
    pub public_key: ByteBuf,
}

/// A member's signature approving a governance entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The member's name.
    pub member: String,
    /// Ed25519 signature over the entry's approval payload.
    pub signature: ByteBuf,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a governance entry changes (see [`Entry::prior`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The pod's attestation policy.
    Policy,
    /// The applet of this name.
    Applet(&'a str),
    /// The membership of the node of this name in the validator set.
    Membership(&'a str),
}

impl std::fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Policy => write!(f, "the policy"),
            Subject::Applet(n) => write!(f, "applet {n:?}"),
            Subject::Membership(n) => write!(f, "the membership of {n:?}"),
        }
    }
}

/// The first entry of every pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The pod id (the checkpoint origin).
    pub pod: String,
    /// Jurisdiction label, e.g. "EU".
    pub jurisdiction: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Initial validators.
    pub validators: Vec<Validator>,
    /// Each initial validator's evidence bundle, in the same order.
    pub evidence: Vec<ByteBuf>,
    /// Governance members.
    pub members: Vec<Member>,
    /// Member approvals needed for governance entries.
    pub threshold: u32,
    /// The attestation policy (TOML, as `sigil_attest::Policy` reads it).
    pub policy: String,
}

/// A node joins the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAdmitted {
    /// The node's name and key.
    pub validator: Validator,
    /// Its evidence bundle.
    pub evidence: ByteBuf,
    /// The attestation result (CBOR) the admitting nodes reached.
    pub attestation_result: ByteBuf,
    /// The ledger index of the last entry that changed what this one changes (a node name's membership: its last removal), 0 for the genesis or
    /// none. Approvals sign it and validators refuse the entry unless it is still the last, so an approved
    /// entry applies once, to the state its approvers saw: a replay, or approvals gathered before another change
    /// to the same thing, are refused ([`Entry::prior`]). Left out of the encoding when 0, so entries written
    /// before it existed keep their encoding and hash (and 0 has exactly one encoding: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior: u64,
    /// Member approvals.
    pub approvals: Vec<Approval>,
}

/// A node leaves the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRemoved {
    /// The node's name.
    pub name: String,
    /// Why.
    pub reason: String,
    /// The ledger index of the last entry that changed what this one changes (the node's membership: its admission, or the genesis), 0 for the genesis or
    /// none. Approvals sign it and validators refuse the entry unless it is still the last, so an approved
    /// entry applies once, to the state its approvers saw: a replay, or approvals gathered before another change
    /// to the same thing, are refused ([`Entry::prior`]). Left out of the encoding when 0, so entries written
    /// before it existed keep their encoding and hash (and 0 has exactly one encoding: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior: u64,
    /// Member approvals.
    pub approvals: Vec<Approval>,
}

/// The attestation policy changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanged {
    /// The new policy (TOML).
    pub policy: String,
    /// The ledger index of the last entry that changed what this one changes (the policy: the entry that set the current one, or the genesis), 0 for the genesis or
    /// none. Approvals sign it and validators refuse the entry unless it is still the last, so an approved
    /// entry applies once, to the state its approvers saw: a replay, or approvals gathered before another change
    /// to the same thing, are refused ([`Entry::prior`]). Left out of the encoding when 0, so entries written
    /// before it existed keep their encoding and hash (and 0 has exactly one encoding: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior: u64,
    /// Member approvals.
    pub approvals: Vec<Approval>,
}

/// An applet is deployed (or a new version of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppletDeployed {
    /// Applet name.
    pub name: String,
    /// Applet version.
    pub version: String,
    /// The signed manifest (canonical CBOR).
    pub manifest: ByteBuf,
    /// SHA-256 of the wasm module.
    pub code_digest: Hash,
    /// The ledger index of the last entry that changed what this one changes (the applet: its current deployment, or none), 0 for the genesis or
    /// none. Approvals sign it and validators refuse the entry unless it is still the last, so an approved
    /// entry applies once, to the state its approvers saw: a replay, or approvals gathered before another change
    /// to the same thing, are refused ([`Entry::prior`]). Left out of the encoding when 0, so entries written
    /// before it existed keep their encoding and hash (and 0 has exactly one encoding: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior: u64,
    /// Member approvals.
    pub approvals: Vec<Approval>,
}

/// One executed request: the execution receipt the node's enclave produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    /// SHA-256 of the signed request.
    pub request_hash: Hash,
    /// The caller's Ed25519 key.
    pub caller: ByteBuf,
    /// Applet name.
    pub applet: String,
    /// Method called.
    pub method: String,
    /// SHA-256 of the wasm module that ran.
    pub code_digest: Hash,
    /// SHA-256 of the input.
    pub input_hash: Hash,
    /// SHA-256 of the output.
    pub output_hash: Hash,
    /// SHA-256 of the state write set.
    pub write_set_hash: Hash,
    /// The executing node.
    pub executor: String,
    /// Ledger index of the executing node's latest attestation entry (0: its evidence in the genesis).
    pub executor_attestation: u64,
    /// Ledger index of the entry that set the attestation policy in force when it ran: the genesis (0) or the
    /// latest `policy_changed`. Validators refuse an invocation that names another or none, so a receipt can carry
    /// the executor's evidence and the very policy it was held to. `None` only in invocations written before it
    /// existed (their encoding and hash unchanged): what policy those ran under, their receipts cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<u64>,
    /// "ok", or the error or trap that ended the run.
    pub outcome: String,
    /// Fuel the run consumed.
    pub fuel_used: u64,
    /// Execution time, Unix milliseconds.
    pub at_ms: u64,
    /// The pod node that signed the request on the caller's behalf, under the caller's signed delegation (an
    /// OAuth client assertion, see [`crate::request::Delegation`]); absent when the caller signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<String>,
}

/// A request refused before it ran (audited too). Only a request its caller signed is refused on the record:
/// the block carries the signed request beside the entry, and validators check that it hashes to `request_hash`,
/// is `caller`'s, and names `applet` and `method` (each clipped to [`RequestRejected::MAX_NAME_CHARS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRejected {
    /// SHA-256 of the signed request.
    pub request_hash: Hash,
    /// The caller's key (the request's signature verified with it).
    pub caller: ByteBuf,
    /// Applet name.
    pub applet: String,
    /// Method.
    pub method: String,
    /// Why it was refused.
    pub reason: String,
    /// The node that refused it.
    pub node: String,
    /// When, Unix milliseconds.
    pub at_ms: u64,
}

impl RequestRejected {
    /// The most characters of the request's applet and method a rejection records.
    pub const MAX_NAME_CHARS: usize = 64;
    /// The most characters of the reason a rejection records.
    pub const MAX_REASON_CHARS: usize = 512;
    /// The largest signed request a rejection carries: a refusal of a larger one is answered, not recorded, so
    /// a caller's refused bytes cannot grow every node's ledger by more than this each.
    pub const MAX_REQUEST_BYTES: usize = 16 << 10;

    /// `s` clipped to `n` characters, as a rejection records it.
    pub fn clip(s: &str, n: usize) -> String {
        s.chars().take(n).collect()
    }
}

/// A node refreshed its evidence (periodically or on TCB change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reattested {
    /// The node.
    pub node: String,
    /// Its identity key, the one the evidence binds: validators refuse the entry unless it is the node's key in the
    /// current validator set, so a receipt names the key from the entry itself, not from a replay of the set.
    pub key: ByteBuf,
    /// Its new evidence bundle.
    pub evidence: ByteBuf,
    /// The attestation result (CBOR).
    pub attestation_result: ByteBuf,
    /// The committed point of the ledger the evidence binds in its REPORT_DATA (nonce [`Anchor::nonce`]), which
    /// proves the evidence was made after it. Validators refuse a new re-attestation without one, or whose anchor
    /// is not this ledger's or older than the pod's window (`[reattestation] window_s`). `None` only in entries
    /// written before anchors existed (their encoding and hash unchanged): their evidence binds an empty nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
}

/// A validator loses its vote because its standing lapsed: its latest attestation is older than the pod's
/// `[reattestation] max_age_s`, or the pod's current policy refuses its latest evidence. No member approves it:
/// any validator may propose it, and every validator checks the cause itself at the block's time (from the ledger
/// alone), that a quorum of the set it changes stays in good standing, and that the smaller set stays safe against
/// as many Byzantine nodes as the pod's whole membership is sized for, so neither an honest node's error nor a
/// Byzantine proposer can suspend a node in good standing or make the pod less safe (a smaller set is less live:
/// it tolerates fewer nodes down). A suspended node keeps its name and key: a
/// [`NodeReinstated`] with fresh evidence gives it its vote back; a `node_removed` ends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSuspended {
    /// The node.
    pub name: String,
    /// What lapsed: [`NodeSuspended::STALE`] or [`NodeSuspended::REFUSED`].
    pub cause: String,
    /// The ledger index of the node's latest attestation, the one judged.
    pub attestation: u64,
    /// Why, in the proposer's words (at most [`NodeSuspended::MAX_REASON_CHARS`], no control characters):
    /// validators check the cause and the attestation, not this text, so that binaries whose verifiers word a
    /// refusal differently agree. An auditor reads it as the proposer's claim.
    pub reason: String,
}

impl NodeSuspended {
    /// The cause of a suspension for evidence older than the pod's maximum age.
    pub const STALE: &'static str = "stale";
    /// The cause of a suspension for evidence the pod's current policy refuses.
    pub const REFUSED: &'static str = "refused";
    /// The most characters a suspension's reason records.
    pub const MAX_REASON_CHARS: usize = 512;
}

/// A suspended node gets its vote back: fresh evidence, bound to a recent point of the ledger (its anchor) and
/// to the key it held when suspended, that the pod's current policy accepts. Signed by that key. Validators refuse
/// it unless the node is suspended with that key and the anchor is theirs, no older than the suspension and within
/// `[reattestation] window_s` of the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeReinstated {
    /// The node's name and key, as when it was suspended.
    pub validator: Validator,
    /// Its fresh evidence bundle (REPORT_DATA binds the key, the pod and [`Anchor::nonce`] of `anchor`).
    pub evidence: ByteBuf,
    /// The attestation result (CBOR) the node reached on it.
    pub attestation_result: ByteBuf,
    /// The ledger point the evidence binds.
    pub anchor: Anchor,
}

/// A committed point of a pod's ledger: a height and the ledger's root after it. Evidence that binds it in its
/// REPORT_DATA was made after that block was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The consensus height.
    pub height: u64,
    /// The ledger root after it.
    pub root: Hash,
}

impl Anchor {
    /// What evidence bound to this anchor puts in the node-identity binding's nonce:
    /// `"sigil/anchor/v1\0"` ‖ height (u64, big-endian) ‖ root (32 bytes).
    pub fn nonce(&self) -> Vec<u8> {
        [b"sigil/anchor/v1\0".as_slice(), &self.height.to_be_bytes(), &self.root.0].concat()
    }
}

/// Everything a pod's ledger records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// See [`Genesis`].
    Genesis(Genesis),
    /// See [`NodeAdmitted`].
    NodeAdmitted(NodeAdmitted),
    /// See [`NodeRemoved`].
    NodeRemoved(NodeRemoved),
    /// See [`PolicyChanged`].
    PolicyChanged(PolicyChanged),
    /// See [`AppletDeployed`].
    AppletDeployed(AppletDeployed),
    /// See [`Invocation`].
    Invocation(Invocation),
    /// See [`RequestRejected`].
    RequestRejected(RequestRejected),
    /// See [`Reattested`].
    Reattested(Reattested),
    /// See [`NodeSuspended`].
    NodeSuspended(NodeSuspended),
    /// See [`NodeReinstated`].
    NodeReinstated(NodeReinstated),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: u32,
    entry: Entry,
}

impl Entry {
    /// The kind, as written in the encoding.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Genesis(_) => "genesis",
            Entry::NodeAdmitted(_) => "node_admitted",
            Entry::NodeRemoved(_) => "node_removed",
            Entry::PolicyChanged(_) => "policy_changed",
            Entry::AppletDeployed(_) => "applet_deployed",
            Entry::Invocation(_) => "invocation",
            Entry::RequestRejected(_) => "request_rejected",
            Entry::Reattested(_) => "reattested",
            Entry::NodeSuspended(_) => "node_suspended",
            Entry::NodeReinstated(_) => "node_reinstated",
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&Envelope { v: ENTRY_VERSION, entry: self.clone() })
    }

    /// Decodes a canonical encoding (and nothing else).
    pub fn decode(bytes: &[u8]) -> Result<Entry, LedgerError> {
        let env: Envelope = cbor::decode(bytes, "entry", MAX_ENTRY_LEN)?;
        if env.v != ENTRY_VERSION {
            return Err(LedgerError::Decode { what: "entry", detail: format!("unsupported version {}", env.v) });
        }
        Ok(env.entry)
    }

    /// The entry's leaf hash in the Merkle log.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }

    /// The approvals of a governance entry (admission, removal, policy change, applet deployment); `None` for
    /// entries that take none.
    pub fn approvals(&self) -> Option<&[Approval]> {
        match self {
            Entry::NodeAdmitted(e) => Some(&e.approvals),
            Entry::NodeRemoved(e) => Some(&e.approvals),
            Entry::PolicyChanged(e) => Some(&e.approvals),
            Entry::AppletDeployed(e) => Some(&e.approvals),
            _ => None,
        }
    }

    /// What a governance entry changes, and its `prior`: the index of the last entry that changed the same (0 for
    /// the genesis or none). `None` for entries that take no approvals.
    pub fn prior(&self) -> Option<(Subject<'_>, u64)> {
        match self {
            Entry::NodeAdmitted(e) => Some((Subject::Membership(&e.validator.name), e.prior)),
            Entry::NodeRemoved(e) => Some((Subject::Membership(&e.name), e.prior)),
            Entry::PolicyChanged(e) => Some((Subject::Policy, e.prior)),
            Entry::AppletDeployed(e) => Some((Subject::Applet(&e.name), e.prior)),
            _ => None,
        }
    }

    fn approvals_mut(&mut self) -> Option<&mut Vec<Approval>> {
        match self {
            Entry::NodeAdmitted(e) => Some(&mut e.approvals),
            Entry::NodeRemoved(e) => Some(&mut e.approvals),
            Entry::PolicyChanged(e) => Some(&mut e.approvals),
            Entry::AppletDeployed(e) => Some(&mut e.approvals),
            _ => None,
        }
    }

    /// Adds `member`'s approval for pod `pod`, signed with `key` over [`Entry::approval_payload`]. An error for
    /// entries that take no approvals.
    pub fn approve(&mut self, pod: &str, member: &str, key: &ring::signature::Ed25519KeyPair) -> Result<(), String> {
        let payload =
            self.approval_payload(pod).ok_or_else(|| format!("a {} entry takes no approvals", self.kind()))?;
        let signature = serde_bytes::ByteBuf::from(key.sign(&payload).as_ref().to_vec());
        self.approvals_mut().expect("it took a payload").push(Approval { member: member.into(), signature });
        Ok(())
    }

    /// What a member signs (Ed25519) to approve a governance entry of pod `pod`:
    /// `"sigil/approval\0" ‖ pod ‖ 0x00 ‖ SHA-256(canonical encoding of the entry with no approvals)`. So an
    /// approval is bound to one pod and one exact entry, and approvals can be gathered in any order. `None` for
    /// entries that take no approvals.
    pub fn approval_payload(&self, pod: &str) -> Option<Vec<u8>> {
        let mut bare = self.clone();
        bare.approvals_mut()?.clear();
        let mut out = b"sigil/approval\0".to_vec();
        out.extend_from_slice(pod.as_bytes());
        out.push(0);
        out.extend_from_slice(&Hash::digest(&bare.encode()).0);
        Some(out)
    }

    /// Checks that at least `threshold` distinct `members` approved this governance entry for `pod` with
    /// signatures that verify. Returns the approving members' names.
    pub fn check_approvals(&self, pod: &str, members: &[Member], threshold: u32) -> Result<Vec<String>, String> {
        let (Some(approvals), Some(payload)) = (self.approvals(), self.approval_payload(pod)) else {
            return Err(format!("a {} entry takes no approvals", self.kind()));
        };
        let mut names: Vec<String> = Vec::new();
        for a in approvals {
            let m =
                members.iter().find(|m| m.name == a.member).ok_or_else(|| format!("{:?} is not a member", a.member))?;
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &m.public_key)
                .verify(&payload, &a.signature)
                .map_err(|_| format!("the approval of {:?} does not verify", a.member))?;
            if names.contains(&a.member) {
                return Err(format!("{:?} approved twice", a.member));
            }
            names.push(a.member.clone());
        }
        if (names.len() as u64) < threshold.max(1) as u64 {
            return Err(format!("{} of the {threshold} member approvals it needs", names.len()));
        }
        Ok(names)
    }
}

/// An entry with its canonical encoding and leaf hash, made only by encoding an entry or by decoding a canonical
/// encoding, so the three always agree. Lets a caller that has checked an entry's bytes append it without
/// encoding it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    entry: Entry,
    bytes: Vec<u8>,
    leaf: Hash,
}

impl Encoded {
    /// Encodes `entry`.
    pub fn new(entry: Entry) -> Encoded {
        let bytes = entry.encode();
        Encoded { leaf: leaf_hash(&bytes), entry, bytes }
    }

    /// Decodes a canonical encoding (and nothing else), keeping the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Encoded, LedgerError> {
        let entry = Entry::decode(bytes)?;
        Ok(Encoded { leaf: leaf_hash(bytes), entry, bytes: bytes.to_vec() })
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Its canonical encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its leaf hash in the Merkle log.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf
    }
}

impl ValidatorSet {
    /// The set after `entry`: genesis sets it, admissions and reinstatements add, suspensions remove, removals
    /// remove (a removal of a suspended node, which is no member, leaves the set as it is: whether a name may be
    /// removed is the block rules' business, which know the suspended); other entries leave it.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), LedgerError> {
        let bad = |detail: String| Err(LedgerError::Decode { what: "validator set change", detail });
        match entry {
            Entry::Genesis(g) => {
                if !self.members.is_empty() {
                    return bad("a second genesis".into());
                }
                self.members = g.validators.clone();
            }
            Entry::NodeAdmitted(NodeAdmitted { validator, .. })
            | Entry::NodeReinstated(NodeReinstated { validator, .. }) => {
                if self.members.iter().any(|m| m.name == validator.name || m.public_key == validator.public_key) {
                    return bad(format!("{} is already a validator", validator.name));
                }
                self.members.push(validator.clone());
            }
            Entry::NodeRemoved(r) => self.members.retain(|m| m.name != r.name),
            Entry::NodeSuspended(s) => {
                let before = self.members.len();
                self.members.retain(|m| m.name != s.name);
                if self.members.len() == before {
                    return bad(format!("{} is not a validator", s.name));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `entry` changes the validator set.
    pub fn changes_with(entry: &Entry) -> bool {
        matches!(
            entry,
            Entry::Genesis(_)
                | Entry::NodeAdmitted(_)
                | Entry::NodeRemoved(_)
                | Entry::NodeSuspended(_)
                | Entry::NodeReinstated(_)
        )
    }
}
