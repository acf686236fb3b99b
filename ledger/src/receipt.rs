//! Receipts: what a caller keeps to prove, offline, that an entry is in a pod's ledger.
//!
//! A receipt is a COSE_Sign1 in the shape of RFC 9942 (COSE Receipts) with the RFC 9162 SHA-256 verifiable data
//! structure, plus what a verifier holding only the pod's genesis needs to trust the checkpoint:
//!
//! ```text
//! COSE_Sign1 (tag 18) [
//!   protected:   { 1 (alg): -8 (EdDSA), 4 (kid): validator name, 395 (vds): 1 (RFC9162_SHA256) },
//!   unprotected: { 396 (vdp): { -1 (inclusion proofs): [ bstr .cbor [tree_size, leaf_index, [+ bstr]] ] },
//!                  -70001: bstr,   ; the entry (canonical CBOR)
//!                  -70002: tstr,   ; the checkpoint (signed note) at tree_size, cosigned by a quorum
//!                  -70003: [* [leaf_index, bstr entry, [* bstr]]],    ; validator-set changes since genesis
//!                  ? -70004: [+ [leaf_index, bstr entry, [* bstr]]] }, ; entries an invocation names that are not
//!                                                                       ; validator-set changes (its executor's
//!                                                                       ; re-attestation, its policy change)
//!   payload:     nil (detached: the root the inclusion proof leads to),
//!   signature:   Ed25519 by the kid validator over Sig_structure(protected, h'', root)
//! ]
//! ```
//!
//! Verification ([`Receipt::verify`]) rebuilds the validator set at `tree_size` from the genesis and the
//! listed changes (each proven in the same tree), checks that the checkpoint commits to exactly that set and
//! carries a quorum of its signatures, that the entry's inclusion proof leads to the checkpoint's root, and
//! that a member of the set signed the receipt. Every step is reported by name.
//!
//! The receipt of an invocation also proves, in the same tree, the entry that attests its executor (the genesis, its
//! `node_admitted` or its latest `reattested`, as the invocation names it) and the entry that set the policy in
//! force when it ran (the genesis or a `policy_changed`): what [`Receipt::executor`] hands a verifier of the
//! executor's evidence. The validators that committed the invocation checked that these were the executor's
//! latest attestation and the policy in force; the receipt proves the entries are the ones in the log.

use ciborium::Value;
use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, Label, TaggedCborSerializable};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde::Serialize;

use crate::checkpoint::{SignedCheckpoint, ValidatorSet};
use crate::entry::{Entry, Genesis, Invocation};
use crate::error::LedgerError;
use crate::hash::{leaf_hash, Hash};
use crate::merkle::{root_from_inclusion, verify_inclusion};

/// COSE header label of the verifiable data structure (RFC 9942).
pub const LABEL_VDS: i64 = 395;
/// COSE header label of the verifiable data proofs (RFC 9942).
pub const LABEL_VDP: i64 = 396;
/// `vds` value for RFC 9162 SHA-256 trees.
pub const VDS_RFC9162_SHA256: i64 = 1;
/// Key of inclusion proofs in the `vdp` map.
pub const VDP_INCLUSION: i64 = -1;
/// Private header label: the entry.
pub const LABEL_ENTRY: i64 = -70001;
/// Private header label: the signed checkpoint.
pub const LABEL_CHECKPOINT: i64 = -70002;
/// Private header label: validator-set changes since genesis.
pub const LABEL_CHANGES: i64 = -70003;
/// Private header label: the entries an invocation names (its executor's attestation, the policy in force) that
/// are not validator-set changes; absent when there are none.
pub const LABEL_REFERENCED: i64 = -70004;
/// Largest receipt accepted.
pub const MAX_RECEIPT_LEN: usize = 16 << 20;
/// Most validator-set changes a receipt may carry.
pub const MAX_CHANGES: usize = 100_000;
/// Most referenced entries a receipt may carry (an invocation names two).
pub const MAX_REFERENCED: usize = 2;

/// An entry with its inclusion proof: a validator-set change, or an entry an invocation names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenEntry {
    /// Leaf index of the entry.
    pub index: u64,
    /// The entry (canonical CBOR).
    pub entry: Vec<u8>,
    /// Its inclusion proof at the receipt's tree size.
    pub proof: Vec<Hash>,
}

/// A decoded receipt (nothing in it is trusted until [`Receipt::verify`] says so).
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The entry (canonical CBOR).
    pub entry: Vec<u8>,
    /// Its leaf index.
    pub index: u64,
    /// Tree size of the inclusion proof.
    pub tree_size: u64,
    /// The inclusion proof.
    pub proof: Vec<Hash>,
    /// The checkpoint at `tree_size`.
    pub checkpoint: SignedCheckpoint,
    /// Validator-set changes since genesis, genesis first.
    pub changes: Vec<ProvenEntry>,
    /// The entries the entry names that are not validator-set changes, in index order (see
    /// [`Receipt::references`]).
    pub referenced: Vec<ProvenEntry>,
    /// The validator that signed the receipt.
    pub signer: String,
    cose: CoseSign1,
}

/// An invocation's executor's key after each validator-set change that concerned it (`None`: not a validator).
type KeyHistory = Vec<(u64, Option<Vec<u8>>)>;

/// Who executed an invocation and on what evidence, as its receipt proves it: the executor's attestation entry
/// and the policy in force, both proven in the receipt's tree. The evidence is not judged here (the ledger does
/// not verify TEE evidence); [`ExecutorRecord::evidence`], [`ExecutorRecord::key`] and
/// [`ExecutorRecord::policy`] are what a verifier of it needs.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutorRecord {
    /// The executing node.
    pub name: String,
    /// Its Ed25519 identity key when its evidence was recorded (hex in JSON), the key the evidence must bind.
    #[serde(serialize_with = "hex_bytes")]
    pub key: [u8; 32],
    /// Ledger index of its attestation entry.
    pub attestation_index: u64,
    /// That entry's kind: `genesis`, `node_admitted` or `reattested`.
    pub attestation_kind: &'static str,
    /// SHA-256 of its evidence bundle, hex.
    pub evidence_sha256: String,
    /// Ledger index of the entry that set the policy in force (`genesis` or `policy_changed`); `None` for an
    /// invocation written before invocations named it.
    pub policy_index: Option<u64>,
    /// When the invocation ran, Unix milliseconds (the validators that committed it held it to their block's time).
    pub ran_at_ms: u64,
    /// The ledger point a re-attestation's evidence binds (its nonce, [`crate::entry::Anchor::nonce`]); `None`
    /// for the genesis' and admissions' evidence, and re-attestations written before anchors, which bind an empty
    /// nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<crate::entry::Anchor>,
    /// The evidence bundle, as recorded.
    #[serde(skip)]
    pub evidence: Vec<u8>,
    /// The policy in force (TOML), as recorded; `None` where the invocation names none.
    #[serde(skip)]
    pub policy: Option<String>,
}

fn hex_bytes<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// Outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptCheck {
    /// Stable name, e.g. `receipt.inclusion`.
    pub name: &'static str,
    /// Passed or not.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// What a receipt proves, once verified.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptReport {
    /// Whether every check passed.
    pub valid: bool,
    /// The pod.
    pub pod: String,
    /// Leaf index of the entry.
    pub index: u64,
    /// Entry kind ("invocation", ...), if the entry decoded.
    pub entry_kind: Option<String>,
    /// The entry itself (JSON), if it decoded.
    pub entry: Option<serde_json::Value>,
    /// Tree size of the checkpoint.
    pub checkpoint_size: u64,
    /// Root of the checkpoint (hex).
    pub checkpoint_root: String,
    /// Validators whose checkpoint signatures verified.
    pub cosigners: Vec<String>,
    /// The validator that signed the receipt.
    pub signer: String,
    /// For an invocation: its executor's attestation entry and the policy in force, once proven
    /// (`receipt.executor`). Its evidence is judged by whoever holds a TEE verifier (`sigil receipt verify`).
    pub executor: Option<ExecutorRecord>,
    /// Every check, in order.
    pub checks: Vec<ReceiptCheck>,
    /// One line per failed check.
    pub reasons: Vec<String>,
}

fn decode_err(detail: impl Into<String>) -> LedgerError {
    LedgerError::Decode { what: "receipt", detail: detail.into() }
}

fn proof_value(size: u64, index: u64, proof: &[Hash]) -> Value {
    Value::Array(vec![
        Value::Integer(size.into()),
        Value::Integer(index.into()),
        Value::Array(proof.iter().map(|h| Value::Bytes(h.0.to_vec())).collect()),
    ])
}

fn as_u64(v: &Value, what: &str) -> Result<u64, LedgerError> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| decode_err(format!("{what} is not a u64"))),
        _ => Err(decode_err(format!("{what} is not an integer"))),
    }
}

fn as_hashes(v: &Value, what: &str) -> Result<Vec<Hash>, LedgerError> {
    let Value::Array(items) = v else { return Err(decode_err(format!("{what} is not an array"))) };
    if items.len() > 64 {
        return Err(decode_err(format!("{what} has more than 64 hashes")));
    }
    items
        .iter()
        .map(|h| match h {
            Value::Bytes(b) => Hash::from_slice(b).ok_or_else(|| decode_err(format!("{what}: a hash is not 32 bytes"))),
            _ => Err(decode_err(format!("{what}: a hash is not a byte string"))),
        })
        .collect()
}

fn proven_list(v: &Value, what: &str, max: usize) -> Result<Vec<ProvenEntry>, LedgerError> {
    let Value::Array(items) = v else { return Err(decode_err(format!("the {what} list is not an array"))) };
    if items.len() > max {
        return Err(decode_err(format!("more than {max} of {what}")));
    }
    items
        .iter()
        .map(|c| match c {
            Value::Array(a) if a.len() == 3 => {
                let Value::Bytes(e) = &a[1] else { return Err(decode_err(format!("a {what} is not a byte string"))) };
                Ok(ProvenEntry {
                    index: as_u64(&a[0], &format!("{what} index"))?,
                    entry: e.clone(),
                    proof: as_hashes(&a[2], &format!("{what} proof"))?,
                })
            }
            _ => Err(decode_err(format!("a {what} is not [index, entry, proof]"))),
        })
        .collect()
}

fn parse_proof(bytes: &[u8]) -> Result<(u64, u64, Vec<Hash>), LedgerError> {
    let v: Value = ciborium::from_reader(bytes).map_err(|e| decode_err(format!("inclusion proof: {e}")))?;
    match v {
        Value::Array(a) if a.len() == 3 => {
            Ok((as_u64(&a[0], "tree size")?, as_u64(&a[1], "leaf index")?, as_hashes(&a[2], "inclusion path")?))
        }
        _ => Err(decode_err("inclusion proof is not [tree_size, leaf_index, path]")),
    }
}

/// The receipt's COSE_Sign1 without its signature: what [`Receipt::issue`] signs and writes, and the one encoding
/// [`Receipt::decode`] accepts for these contents.
#[allow(clippy::too_many_arguments)]
fn unsigned(
    entry: &[u8],
    index: u64,
    size: u64,
    proof: &[Hash],
    note: &str,
    changes: &[ProvenEntry],
    referenced: &[ProvenEntry],
    signer: &str,
) -> CoseSign1 {
    let mut proof_bytes = Vec::new();
    ciborium::into_writer(&proof_value(size, index, proof), &mut proof_bytes).expect("Vec write");
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(signer.as_bytes().to_vec())
        .value(LABEL_VDS, Value::Integer(VDS_RFC9162_SHA256.into()))
        .build();
    let proven = |list: &[ProvenEntry]| {
        Value::Array(
            list.iter()
                .map(|c| {
                    Value::Array(vec![
                        Value::Integer(c.index.into()),
                        Value::Bytes(c.entry.clone()),
                        Value::Array(c.proof.iter().map(|h| Value::Bytes(h.0.to_vec())).collect()),
                    ])
                })
                .collect(),
        )
    };
    let mut unprotected = HeaderBuilder::new()
        .value(
            LABEL_VDP,
            Value::Map(vec![(Value::Integer(VDP_INCLUSION.into()), Value::Array(vec![Value::Bytes(proof_bytes)]))]),
        )
        .value(LABEL_ENTRY, Value::Bytes(entry.to_vec()))
        .value(LABEL_CHECKPOINT, Value::Text(note.to_string()))
        .value(LABEL_CHANGES, proven(changes));
    if !referenced.is_empty() {
        unprotected = unprotected.value(LABEL_REFERENCED, proven(referenced));
    }
    let unprotected = unprotected.build();
    CoseSign1Builder::new().protected(protected).unprotected(unprotected).build()
}

impl Receipt {
    /// Issues a receipt: the validator `signer` signs the root the inclusion proof leads to.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        entry: &[u8],
        index: u64,
        proof: &[Hash],
        checkpoint: &SignedCheckpoint,
        changes: &[ProvenEntry],
        referenced: &[ProvenEntry],
        signer: &str,
        key: &Ed25519KeyPair,
    ) -> Result<Vec<u8>, LedgerError> {
        let size = checkpoint.checkpoint.size;
        let root = root_from_inclusion(index, size, &leaf_hash(entry), proof)?;
        if root != checkpoint.checkpoint.root {
            return Err(decode_err("the inclusion proof does not lead to the checkpoint's root"));
        }
        let mut sign1 = unsigned(entry, index, size, proof, &checkpoint.to_note(), changes, referenced, signer);
        let tbs = sign1.tbs_detached_data(&root.0, b"");
        sign1.signature = key.sign(&tbs).as_ref().to_vec();
        sign1.to_tagged_vec().map_err(|e| decode_err(format!("encoding: {e:?}")))
    }

    /// Decodes a receipt (a COSE_Sign1 with tag 18), checking its shape. One receipt has one encoding: bytes that
    /// are not exactly what [`Receipt::issue`] writes for the same contents (CBOR `undefined` for the detached
    /// payload, no tag, non-minimal lengths, other key orders or extra header fields, a checkpoint note written
    /// another way) are refused, so a receipt's bytes, which callers hash, store and compare, are unique.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, LedgerError> {
        if bytes.len() > MAX_RECEIPT_LEN {
            return Err(decode_err(format!("{} bytes exceeds {MAX_RECEIPT_LEN}", bytes.len())));
        }
        let cose =
            CoseSign1::from_tagged_slice(bytes).map_err(|e| decode_err(format!("not a tagged COSE_Sign1: {e:?}")))?;
        if cose.payload.is_some() {
            return Err(decode_err("the payload must be detached (nil)"));
        }
        let p = &cose.protected.header;
        if p.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) {
            return Err(decode_err("protected alg is not EdDSA"));
        }
        let vds = p.rest.iter().find(|(l, _)| *l == Label::Int(LABEL_VDS)).map(|(_, v)| v);
        if vds != Some(&Value::Integer(VDS_RFC9162_SHA256.into())) {
            return Err(decode_err("protected vds is not RFC9162_SHA256 (1)"));
        }
        let signer = String::from_utf8(p.key_id.clone()).map_err(|_| decode_err("kid is not a validator name"))?;
        let u = &cose.unprotected.rest;
        let get = |label: i64| u.iter().find(|(l, _)| *l == Label::Int(label)).map(|(_, v)| v);
        let vdp = match get(LABEL_VDP) {
            Some(Value::Map(m)) => m,
            _ => return Err(decode_err("missing vdp map")),
        };
        let proofs = match vdp.iter().find(|(k, _)| *k == Value::Integer(VDP_INCLUSION.into())).map(|(_, v)| v) {
            Some(Value::Array(a)) if a.len() == 1 => a,
            _ => return Err(decode_err("vdp must hold exactly one inclusion proof")),
        };
        let Value::Bytes(proof_bytes) = &proofs[0] else {
            return Err(decode_err("inclusion proof is not a byte string"));
        };
        let (tree_size, index, proof) = parse_proof(proof_bytes)?;
        let Some(Value::Bytes(entry)) = get(LABEL_ENTRY) else { return Err(decode_err("missing entry")) };
        let Some(Value::Text(note)) = get(LABEL_CHECKPOINT) else { return Err(decode_err("missing checkpoint")) };
        let checkpoint = SignedCheckpoint::parse(note)?;
        let Some(changes_v) = get(LABEL_CHANGES) else { return Err(decode_err("missing validator-set changes")) };
        let changes = proven_list(changes_v, "validator-set change", MAX_CHANGES)?;
        let referenced = match get(LABEL_REFERENCED) {
            None => Vec::new(),
            Some(v) => proven_list(v, "referenced entry", MAX_REFERENCED)?,
        };
        let note = checkpoint.to_note();
        let mut canonical = unsigned(entry, index, tree_size, &proof, &note, &changes, &referenced, &signer);
        canonical.signature = cose.signature.clone();
        if canonical.to_tagged_vec().ok().as_deref() != Some(bytes) {
            return Err(decode_err("not the canonical encoding of its contents (one receipt, one encoding)"));
        }
        Ok(Receipt { entry: entry.clone(), index, tree_size, proof, checkpoint, changes, referenced, signer, cose })
    }

    /// The ledger indexes an entry names, which its receipt proves beside it: for an invocation, its executor's
    /// attestation entry and the entry that set the policy in force (in index order, once each); none for other
    /// entries. Those that are validator-set changes travel with the changes; the others in `-70004`.
    pub fn references(entry: &Entry) -> Vec<u64> {
        match entry {
            Entry::Invocation(i) => {
                let mut v: Vec<u64> = [Some(i.executor_attestation), i.policy].into_iter().flatten().collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            _ => Vec::new(),
        }
    }

    /// Verifies the receipt against the pod's genesis entry (its canonical encoding).
    pub fn verify(&self, genesis: &[u8]) -> ReceiptReport {
        let mut checks: Vec<ReceiptCheck> = Vec::new();
        let mut check = |name: &'static str, r: Result<String, String>| -> bool {
            let ok = r.is_ok();
            checks.push(ReceiptCheck { name, ok, detail: r.unwrap_or_else(|e| e) });
            ok
        };
        let cp = &self.checkpoint.checkpoint;
        let decoded = Entry::decode(&self.entry).ok();
        let mut report = ReceiptReport {
            valid: false,
            pod: String::new(),
            index: self.index,
            entry_kind: decoded.as_ref().map(|e| e.kind().to_string()),
            entry: decoded.as_ref().and_then(|e| serde_json::to_value(e).ok()),
            checkpoint_size: cp.size,
            checkpoint_root: cp.root.to_hex(),
            cosigners: Vec::new(),
            signer: self.signer.clone(),
            executor: None,
            checks: Vec::new(),
            reasons: Vec::new(),
        };
        let finish = |mut report: ReceiptReport, checks: Vec<ReceiptCheck>| {
            report.reasons = checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
            report.valid = report.reasons.is_empty();
            report.checks = checks;
            report
        };
        // The genesis names the pod; it must be leaf 0 of this very tree.
        let genesis_entry = Entry::decode(genesis);
        let pod = match &genesis_entry {
            Ok(Entry::Genesis(g)) => g.pod.clone(),
            Ok(other) => {
                check("receipt.genesis", Err(format!("the genesis file holds a {} entry", other.kind())));
                return finish(report, checks);
            }
            Err(e) => {
                check("receipt.genesis", Err(format!("the genesis file does not decode: {e}")));
                return finish(report, checks);
            }
        };
        report.pod = pod.clone();
        let first_ok = self.changes.first().is_some_and(|c| c.index == 0 && c.entry == genesis);
        if !check(
            "receipt.genesis",
            if first_ok {
                Ok(format!("pod {pod}"))
            } else {
                Err("the first validator-set change is not this genesis at index 0".into())
            },
        ) {
            return finish(report, checks);
        }
        if !check(
            "receipt.checkpoint.origin",
            if cp.origin == pod {
                Ok(cp.origin.clone())
            } else {
                Err(format!("the checkpoint is of pod {:?}, the genesis of pod {pod:?}", cp.origin))
            },
        ) {
            return finish(report, checks);
        }
        if !check(
            "receipt.tree_size",
            if self.tree_size == cp.size {
                Ok(cp.size.to_string())
            } else {
                Err(format!("the proof is for size {}, the checkpoint for size {}", self.tree_size, cp.size))
            },
        ) {
            return finish(report, checks);
        }
        // Rebuild the validator set at this size, noting, for an invocation, its executor's key after each change that
        // concerns it (a list as long as those changes: a copy of the set per change would let a receipt of many
        // changes cost its verifier quadratic memory).
        let mut set = ValidatorSet::default();
        let executor = match &decoded {
            Some(Entry::Invocation(i)) => Some(i.executor.as_str()),
            _ => None,
        };
        let mut history: KeyHistory = Vec::new();
        let mut last: Option<u64> = None;
        let mut replay = || -> Result<String, String> {
            for c in &self.changes {
                if last.is_some_and(|l| c.index <= l) || c.index >= cp.size {
                    return Err(format!("change at index {} is out of order or beyond the tree", c.index));
                }
                last = Some(c.index);
                // The genesis (checked above to be change 0) is already decoded.
                let e = match (&genesis_entry, c.index) {
                    (Ok(g), 0) => g.clone(),
                    _ => Entry::decode(&c.entry).map_err(|e| format!("change at {}: {e}", c.index))?,
                };
                if !ValidatorSet::changes_with(&e) {
                    return Err(format!("entry at {} ({}) does not change the validator set", c.index, e.kind()));
                }
                verify_inclusion(c.index, cp.size, &leaf_hash(&c.entry), &c.proof, &cp.root)
                    .map_err(|e| format!("change at {} is not in the checkpoint's tree: {e}", c.index))?;
                set.apply(&e).map_err(|e| e.to_string())?;
                if let Some(name) = executor {
                    let concerns = match &e {
                        Entry::Genesis(_) => true,
                        Entry::NodeAdmitted(a) => a.validator.name == name,
                        Entry::NodeRemoved(r) => r.name == name,
                        Entry::NodeSuspended(s) => s.name == name,
                        Entry::NodeReinstated(r) => r.validator.name == name,
                        _ => false,
                    };
                    if concerns {
                        let key = set.members.iter().find(|m| m.name == name).map(|m| m.public_key.clone());
                        history.push((c.index, key));
                    }
                }
            }
            Ok(format!("{} members after {} changes", set.members.len(), self.changes.len()))
        };
        let replayed = replay();
        if !check("receipt.validator_set", replayed) {
            return finish(report, checks);
        }
        match self.checkpoint.verify(&pod, &set) {
            Ok(signers) => {
                check(
                    "receipt.checkpoint",
                    Ok(format!(
                        "{} of {} validators signed (quorum {})",
                        signers.len(),
                        set.members.len(),
                        set.quorum()
                    )),
                );
                report.cosigners = signers;
            }
            Err(e) => {
                check("receipt.checkpoint", Err(e.to_string()));
                return finish(report, checks);
            }
        }
        let inclusion = verify_inclusion(self.index, cp.size, &leaf_hash(&self.entry), &self.proof, &cp.root);
        if !check(
            "receipt.inclusion",
            inclusion.map(|()| format!("leaf {} of {}", self.index, cp.size)).map_err(|e| e.to_string()),
        ) {
            return finish(report, checks);
        }
        check(
            "receipt.entry",
            decoded.as_ref().map(|e| e.kind().to_string()).ok_or_else(|| "the entry does not decode".to_string()),
        );
        let signer = set.members.iter().find(|m| m.name == self.signer);
        let sig = match signer {
            None => Err(format!("{:?} is not a validator at size {}", self.signer, cp.size)),
            Some(m) => self
                .cose
                .verify_detached_signature(&cp.root.0, b"", |sig, data| {
                    UnparsedPublicKey::new(&ED25519, &m.public_key).verify(data, sig)
                })
                .map(|()| format!("signed by {}", m.name))
                .map_err(|_| "the COSE signature does not verify".to_string()),
        };
        check("receipt.signature", sig);
        if let (Some(Entry::Invocation(inv)), Ok(Entry::Genesis(g))) = (&decoded, &genesis_entry) {
            match self.executor(inv, g, &history) {
                Ok(rec) => {
                    check(
                        "receipt.executor",
                        Ok(format!(
                            "{} attested by entry {} ({}), {}",
                            rec.name,
                            rec.attestation_index,
                            rec.attestation_kind,
                            rec.policy_index.map_or("no policy named (an older invocation)".into(), |p| format!(
                                "policy of entry {p}"
                            ))
                        )),
                    );
                    report.executor = Some(rec);
                }
                Err(e) => {
                    check("receipt.executor", Err(e));
                }
            }
        } else if !self.referenced.is_empty() {
            check("receipt.executor", Err("entries referenced by an entry that names none".into()));
        }
        finish(report, checks)
    }

    /// The executor of invocation `inv` (this receipt's entry) and the evidence and policy it ran under, from the
    /// entries the receipt proves: the attestation entry the invocation names must attest the executor with the
    /// key it held when it ran, the policy entry must set a policy, both must come before the invocation and be in
    /// the checkpoint's tree, and the receipt must carry exactly the entries the invocation names.
    /// `history` is the executor's key after each change that concerned it (from [`Receipt::verify`]'s replay).
    fn executor(
        &self,
        inv: &Invocation,
        genesis: &Genesis,
        history: &[(u64, Option<Vec<u8>>)],
    ) -> Result<ExecutorRecord, String> {
        let cp = &self.checkpoint.checkpoint;
        let named = Receipt::references(&Entry::Invocation(inv.clone()));
        if let Some(i) = named.iter().find(|i| **i >= self.index) {
            return Err(format!("entry {i} does not come before the invocation (entry {})", self.index));
        }
        let want: Vec<u64> = named.iter().copied().filter(|i| !self.changes.iter().any(|c| c.index == *i)).collect();
        let got: Vec<u64> = self.referenced.iter().map(|r| r.index).collect();
        if got != want {
            return Err(format!(
                "the receipt carries entries {got:?}; the invocation names {named:?}, of which {want:?} are not validator-set changes"
            ));
        }
        for r in &self.referenced {
            verify_inclusion(r.index, cp.size, &leaf_hash(&r.entry), &r.proof, &cp.root)
                .map_err(|e| format!("entry {} is not in the checkpoint's tree: {e}", r.index))?;
        }
        let entry_at = |i: u64| -> Result<Entry, String> {
            if i == 0 {
                return Ok(Entry::Genesis(genesis.clone()));
            }
            // Every index named is 0, a change or referenced (checked above); a verifier still never panics.
            let p = self
                .changes
                .iter()
                .chain(&self.referenced)
                .find(|c| c.index == i)
                .ok_or_else(|| format!("entry {i} is not in the receipt"))?;
            Entry::decode(&p.entry).map_err(|e| format!("entry {i}: {e}"))
        };
        // Who held which key just before entry `i`.
        let key_before = |i: u64| -> Option<Vec<u8>> {
            history.iter().take_while(|(at, _)| *at < i).last().and_then(|(_, key)| key.clone())
        };
        let key_then = key_before(self.index)
            .ok_or_else(|| format!("{:?} was not a validator when entry {} was committed", inv.executor, self.index))?;
        let att = inv.executor_attestation;
        let not_it = |kind: &str| format!("entry {att} is a {kind} entry, not an attestation of {:?}", inv.executor);
        let (kind, key, evidence, anchor) = match entry_at(att)? {
            Entry::Genesis(g) => {
                let p = g.validators.iter().position(|v| v.name == inv.executor).ok_or_else(|| not_it("genesis"))?;
                let ev = g.evidence.get(p).ok_or("the genesis lists fewer evidence bundles than validators")?;
                ("genesis", g.validators[p].public_key.clone(), ev.to_vec(), None)
            }
            Entry::NodeAdmitted(a) if a.validator.name == inv.executor => {
                ("node_admitted", a.validator.public_key.clone(), a.evidence.to_vec(), None)
            }
            Entry::Reattested(r) if r.node == inv.executor => {
                ("reattested", r.key.to_vec(), r.evidence.to_vec(), r.anchor)
            }
            Entry::NodeReinstated(r) if r.validator.name == inv.executor => {
                ("node_reinstated", r.validator.public_key.clone(), r.evidence.to_vec(), Some(r.anchor))
            }
            other => return Err(not_it(other.kind())),
        };
        if key != key_then {
            return Err(format!(
                "entry {att} attests another key of {:?} than the one it held at entry {}",
                inv.executor, self.index
            ));
        }
        let policy = match inv.policy.map(entry_at).transpose()? {
            None => None,
            Some(Entry::Genesis(g)) => Some(g.policy),
            Some(Entry::PolicyChanged(p)) => Some(p.policy),
            Some(other) => {
                return Err(format!("entry {} is a {} entry, not a policy", inv.policy.unwrap_or(0), other.kind()))
            }
        };
        Ok(ExecutorRecord {
            name: inv.executor.clone(),
            key: key.as_slice().try_into().map_err(|_| format!("{:?}'s key is not 32 bytes", inv.executor))?,
            attestation_index: att,
            attestation_kind: kind,
            evidence_sha256: Hash::digest(&evidence).to_hex(),
            policy_index: inv.policy,
            ran_at_ms: inv.at_ms,
            anchor,
            evidence,
            policy,
        })
    }

    /// Verifies the receipt as [`Receipt::verify`] does, and that its entry is the invocation of request `request`
    /// (check `receipt.request`): what a caller checks before it keeps the receipt of its own request, so a node
    /// cannot answer with a valid receipt of another entry.
    pub fn verify_request(&self, genesis: &[u8], request: &Hash) -> ReceiptReport {
        let mut report = self.verify(genesis);
        let r = match Entry::decode(&self.entry) {
            Ok(Entry::Invocation(i)) if i.request_hash == *request => {
                Ok(format!("the invocation of {}", request.to_hex()))
            }
            Ok(Entry::Invocation(i)) => {
                Err(format!("the invocation of request {}, not {}", i.request_hash.to_hex(), request.to_hex()))
            }
            Ok(e) => Err(format!("a {} entry, not the invocation of request {}", e.kind(), request.to_hex())),
            Err(e) => Err(format!("the entry does not decode: {e}")),
        };
        Receipt::add_check(&mut report, "receipt.request", r);
        report
    }

    /// Adds a check to a report made by [`Receipt::verify`] (e.g. the trusted-checkpoint check), updating its
    /// verdict.
    pub fn add_check(report: &mut ReceiptReport, name: &'static str, r: Result<String, String>) {
        if let Err(e) = &r {
            report.reasons.push(format!("{name}: {e}"));
            report.valid = false;
        }
        let ok = r.is_ok();
        report.checks.push(ReceiptCheck { name, ok, detail: r.unwrap_or_else(|e| e) });
    }

    /// Checks that this receipt's checkpoint is consistent with a trusted checkpoint of the same pod: the same
    /// tree head, or a later one with a consistency proof from this one.
    pub fn check_trusted(&self, trusted: &SignedCheckpoint, consistency: &[Hash]) -> Result<String, String> {
        let (mine, t) = (&self.checkpoint.checkpoint, &trusted.checkpoint);
        if t.origin != mine.origin {
            return Err(format!("the trusted checkpoint is of pod {:?}", t.origin));
        }
        if t.size < mine.size {
            return Err(format!(
                "the trusted checkpoint (size {}) is older than the receipt's ({})",
                t.size, mine.size
            ));
        }
        if t.size == mine.size {
            return if t.root == mine.root {
                Ok("same tree head".into())
            } else {
                Err("same size, different root: the log forked".into())
            };
        }
        crate::merkle::verify_consistency(mine.size, t.size, &mine.root, &t.root, consistency)
            .map(|()| format!("consistent with the trusted checkpoint at size {}", t.size))
            .map_err(|e| format!("no valid consistency proof from size {} to {}: {e}", mine.size, t.size))
    }
}
