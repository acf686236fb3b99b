//! Receipts end to end on an in-memory pod log: a valid receipt verifies with nothing but the genesis; every
//! tampering (entry, proof, checkpoint, signatures, origin, validator set) is refused with its reason.

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{SignedCheckpoint, Validator};
use sigil_ledger::entry::*;
use sigil_ledger::receipt::Receipt;
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash};

struct Pod {
    keys: Vec<Ed25519KeyPair>,
    log: Ledger,
    genesis: Vec<u8>,
}

fn key(i: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[i + 1; 32]).unwrap()
}

fn validator(i: u8) -> Validator {
    Validator { name: format!("node-{i}"), public_key: key(i).public_key().as_ref().to_vec() }
}

fn invocation(n: u64) -> Entry {
    let h = Hash::digest(&n.to_le_bytes());
    Entry::Invocation(Invocation {
        request_hash: h,
        caller: ByteBuf::from(vec![7; 32]),
        applet: "kv".into(),
        method: "put".into(),
        code_digest: h,
        input_hash: h,
        output_hash: h,
        write_set_hash: h,
        executor: "node-1".into(),
        executor_attestation: 0,
        policy: None,
        outcome: "ok".into(),
        fuel_used: n,
        at_ms: 1_764_000_000_000 + n,
        delegate: None,
    })
}

/// Genesis with node-0..3, 10 invocations, node-4 admitted at index 11, 8 more invocations (size 20).
fn pod(pod_id: &str) -> Pod {
    let genesis = Entry::Genesis(Genesis {
        pod: pod_id.into(),
        jurisdiction: "EU".into(),
        created_at: 1_764_000_000,
        validators: (0..4).map(validator).collect(),
        evidence: vec![ByteBuf::from(vec![0]); 4],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: "[sim]\nallow = true\n".into(),
    });
    let mut log = Ledger::in_memory(&genesis).unwrap();
    for n in 1..=10 {
        log.append(&invocation(n)).unwrap();
    }
    log.append(&Entry::NodeAdmitted(NodeAdmitted {
        validator: validator(4),
        evidence: ByteBuf::from(vec![1]),
        attestation_result: ByteBuf::from(vec![2]),
        prior: 0,
        approvals: vec![],
    }))
    .unwrap();
    for n in 11..=18 {
        log.append(&invocation(n)).unwrap();
    }
    Pod { keys: (0..6).map(key).collect(), log, genesis: genesis.encode() }
}

impl Pod {
    fn checkpoint(&self, size: u64, signers: &[usize]) -> SignedCheckpoint {
        let cp = self.log.checkpoint_at(size).unwrap();
        let lines: Vec<String> = signers.iter().map(|&i| cp.sign(&format!("node-{i}"), &self.keys[i])).collect();
        SignedCheckpoint::from_lines(cp, &lines).unwrap()
    }
    fn receipt(&self, index: u64, cp: &SignedCheckpoint) -> Vec<u8> {
        self.log.receipt(index, cp, "node-1", &self.keys[1]).unwrap()
    }
}

/// One bit flipped every `step` bytes of an encoded receipt: it no longer decodes, or no longer verifies.
fn assert_bit_flips_refused(bytes: &[u8], genesis: &[u8], step: usize) {
    for pos in (0..bytes.len()).step_by(step) {
        let mut b = bytes.to_vec();
        b[pos] ^= 0x01;
        if let Ok(r) = Receipt::decode(&b) {
            assert!(!r.verify(genesis).valid, "bit flip at {pos} still verifies");
        }
    }
}

fn failed(r: &sigil_ledger::receipt::ReceiptReport) -> Vec<&str> {
    r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[test]
fn a_receipt_verifies_with_only_the_genesis() {
    let p = pod("pod.eu");
    assert_eq!(p.log.size(), 20);
    // After node-4's admission the set has 5 members: quorum 4.
    let cp = p.checkpoint(20, &[0, 1, 3, 4]);
    let bytes = p.receipt(15, &cp);
    let r = Receipt::decode(&bytes).unwrap().verify(&p.genesis);
    assert!(r.valid, "{:?}", r.reasons);
    assert_eq!(r.pod, "pod.eu");
    assert_eq!(r.entry_kind.as_deref(), Some("invocation"));
    assert_eq!(r.entry.as_ref().unwrap()["applet"], "kv");
    assert_eq!(r.checkpoint_size, 20);
    assert_eq!(r.cosigners, ["node-0", "node-1", "node-3", "node-4"]);
    // An entry before the admission, proven at a size before it too: the set of four.
    let cp = p.checkpoint(8, &[0, 2, 3]);
    let r = Receipt::decode(&p.receipt(5, &cp)).unwrap().verify(&p.genesis);
    assert!(r.valid, "{:?}", r.reasons);
    // The genesis itself, and the admission entry.
    let cp = p.checkpoint(20, &[0, 1, 2, 3, 4]);
    for i in [0, 11, 19] {
        let r = Receipt::decode(&p.receipt(i, &cp)).unwrap().verify(&p.genesis);
        assert!(r.valid, "index {i}: {:?}", r.reasons);
    }
}

#[test]
fn below_quorum_of_the_current_set_is_invalid() {
    let p = pod("pod.eu");
    // Three signatures were a quorum of the genesis set, not of the five-member set at size 20.
    let cp = p.checkpoint(20, &[0, 1, 2]);
    let r = Receipt::decode(&p.receipt(15, &cp)).unwrap().verify(&p.genesis);
    assert_eq!(failed(&r), ["receipt.checkpoint"]);
    assert!(r.reasons[0].contains("a quorum is 4"), "{:?}", r.reasons);
}

#[test]
fn a_receipt_of_pod_a_is_not_a_receipt_of_pod_b() {
    let a = pod("pod.eu");
    let b = pod("pod.us");
    let cp = a.checkpoint(20, &[0, 1, 2, 3]);
    let r = Receipt::decode(&a.receipt(15, &cp)).unwrap().verify(&b.genesis);
    assert!(!r.valid);
    assert_eq!(failed(&r), ["receipt.genesis"]);
}

#[test]
fn tampered_entries_and_proofs_are_refused() {
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 2, 3]);
    let good = Receipt::decode(&p.receipt(15, &cp)).unwrap();
    // Another entry with the same proof.
    let mut r = good.clone();
    r.entry = invocation(99).encode();
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.inclusion"]);
    // Another index.
    let mut r = good.clone();
    r.index = 14;
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.inclusion"]);
    // A flipped bit in the proof.
    let mut r = good.clone();
    r.proof[1].0[0] ^= 1;
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.inclusion"]);
    // A proof for another tree size.
    let mut r = good.clone();
    r.tree_size = 19;
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.tree_size"]);
}

#[test]
fn tampered_checkpoints_and_validator_sets_are_refused() {
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 2, 3, 4]);
    let good = Receipt::decode(&p.receipt(15, &cp)).unwrap();
    // A checkpoint signature flipped.
    let mut r = good.clone();
    r.checkpoint.signatures[2].2[0] ^= 1;
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.checkpoint"]);
    // The admission of node-4 left out: the set no longer matches what the checkpoint committed to.
    let mut r = good.clone();
    r.changes.remove(1);
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.checkpoint"]);
    // A forged admission of an outsider, with a made-up proof.
    let mut r = good.clone();
    let forged = Entry::NodeAdmitted(NodeAdmitted {
        validator: Validator { name: "mallory".into(), public_key: key(5).public_key().as_ref().to_vec() },
        evidence: ByteBuf::from(vec![]),
        attestation_result: ByteBuf::from(vec![]),
        prior: 0,
        approvals: vec![],
    });
    r.changes.push(sigil_ledger::receipt::ProvenEntry {
        index: 12,
        entry: forged.encode(),
        proof: r.changes[1].proof.clone(),
    });
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.validator_set"]);
    // A non-change entry presented as a change.
    let mut r = good.clone();
    r.changes[1].entry = p.log.entry_bytes(12).unwrap();
    r.changes[1].index = 12;
    assert_eq!(failed(&r.verify(&p.genesis)), ["receipt.validator_set"]);
}

#[test]
fn the_receipt_signer_must_be_a_validator_and_its_signature_valid() {
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 2, 3]);
    // Signed by an outsider.
    let outsider = key(5);
    let bytes = p.log.receipt(15, &cp, "node-5", &outsider).unwrap();
    assert_eq!(failed(&Receipt::decode(&bytes).unwrap().verify(&p.genesis)), ["receipt.signature"]);
    // A member's name with an outsider's key.
    let bytes = p.log.receipt(15, &cp, "node-2", &outsider).unwrap();
    assert_eq!(failed(&Receipt::decode(&bytes).unwrap().verify(&p.genesis)), ["receipt.signature"]);
    // One bit flipped anywhere in the encoded receipt: it no longer decodes, or no longer verifies.
    assert_bit_flips_refused(&p.receipt(15, &cp), &p.genesis, 37);
}

#[test]
fn consistency_with_a_trusted_later_checkpoint() {
    let p = pod("pod.eu");
    let cp = p.checkpoint(12, &[0, 1, 2, 3]);
    let r = Receipt::decode(&p.receipt(5, &cp)).unwrap();
    assert!(r.verify(&p.genesis).valid);
    let later = p.checkpoint(20, &[0, 1, 2, 3, 4]);
    let proof = p.log.consistency(12, 20).unwrap();
    assert!(r.check_trusted(&later, &proof).is_ok());
    assert!(r.check_trusted(&later, &proof[1..]).is_err());
    assert!(r.check_trusted(&cp, &[]).is_ok(), "the same tree head");
    let other = pod("pod.us").checkpoint(20, &[0, 1, 2, 3, 4]);
    assert!(r.check_trusted(&other, &proof).is_err(), "another pod");
}

#[test]
fn a_caller_checks_the_receipt_is_of_its_own_request() {
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 2, 3]);
    let r = Receipt::decode(&p.receipt(15, &cp)).unwrap();
    let Ok(Entry::Invocation(i)) = Entry::decode(&r.entry) else { panic!("an invocation") };
    assert!(r.verify_request(&p.genesis, &i.request_hash).valid);
    // A valid receipt, of another request: refused by this check alone.
    let other = Hash::digest(b"another request");
    let report = r.verify_request(&p.genesis, &other);
    assert_eq!(failed(&report), ["receipt.request"]);
    assert!(!report.valid);
    // Of an entry that is not an invocation (the admission at index 11).
    let admission = Receipt::decode(&p.receipt(11, &cp)).unwrap();
    assert_eq!(failed(&admission.verify_request(&p.genesis, &i.request_hash)), ["receipt.request"]);
}

#[test]
fn one_receipt_has_one_encoding() {
    use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 3, 4]);
    let bytes = p.receipt(15, &cp);
    assert!(Receipt::decode(&bytes).unwrap().verify(&p.genesis).valid);
    let refused = |what: &str, other: Vec<u8>| {
        assert_ne!(other, bytes, "{what}: a different encoding");
        let err = Receipt::decode(&other).expect_err(what).to_string();
        assert!(err.contains("receipt"), "{what}: {err}");
    };
    // The detached payload as CBOR `undefined` (0xf7) instead of `nil` (0xf6): right before the signature, whose
    // 64 bytes and two-byte header end the receipt. coset reads both as "no payload".
    let at = bytes.len() - 67;
    assert_eq!(bytes[at], 0xf6);
    let mut undefined = bytes.clone();
    undefined[at] = 0xf7;
    assert!(CoseSign1::from_tagged_slice(&undefined).is_ok_and(|c| c.payload.is_none()), "coset takes it");
    refused("undefined payload", undefined);
    // Without the COSE_Sign1 tag (18).
    let cose = CoseSign1::from_tagged_slice(&bytes).unwrap();
    refused("untagged", cose.clone().to_vec().unwrap());
    // The signature as a non-minimal byte-string header (0x59 0x00 0x40 for 64 bytes).
    let mut long = bytes[..bytes.len() - 66].to_vec();
    long.extend_from_slice(&[0x59, 0x00, 0x40]);
    long.extend_from_slice(&bytes[bytes.len() - 64..]);
    refused("non-minimal length", long);
    // The referenced entries' label present but empty (a receipt whose invocation names only changes leaves it out).
    let mut empty = cose.clone();
    empty.unprotected.rest.push((coset::Label::Int(-70004), ciborium::Value::Array(vec![])));
    refused("an empty -70004", empty.to_tagged_vec().unwrap());
    // An extra unprotected header field (not covered by the signature, so it would verify).
    let mut extra = cose.clone();
    extra.unprotected.rest.push((coset::Label::Int(-70099), ciborium::Value::Bool(true)));
    refused("an extra header field", extra.to_tagged_vec().unwrap());
    // The unprotected fields in another order.
    let mut reordered = cose;
    reordered.unprotected.rest.reverse();
    refused("reordered header fields", reordered.to_tagged_vec().unwrap());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bytes in [vec![], vec![0xd2], vec![0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40], b"not cbor".to_vec()] {
        assert!(Receipt::decode(&bytes).is_err());
    }
}

#[test]
fn the_receipt_format_is_pinned() {
    // Ed25519 signatures are deterministic, so the same log yields the same receipt, byte for byte.
    let p = pod("pod.eu");
    let cp = p.checkpoint(20, &[0, 1, 3, 4]);
    let receipt = hex::encode(p.receipt(15, &cp));
    let genesis = hex::encode(&p.genesis);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/conformance");
    if std::env::var_os("SIGIL_BLESS").is_some() {
        std::fs::write(format!("{dir}/receipt.cose.hex"), format!("{receipt}\n")).unwrap();
        std::fs::write(format!("{dir}/receipt-genesis.cbor.hex"), format!("{genesis}\n")).unwrap();
    }
    let want = std::fs::read_to_string(format!("{dir}/receipt.cose.hex")).expect("run with SIGIL_BLESS=1 once");
    let want_genesis = std::fs::read_to_string(format!("{dir}/receipt-genesis.cbor.hex")).unwrap();
    assert_eq!(genesis, want_genesis.trim(), "the genesis encoding changed");
    assert_eq!(receipt, want.trim(), "the receipt format changed: existing receipts would no longer verify");
    // And the pinned receipt still verifies.
    let r = Receipt::decode(&hex::decode(want.trim()).unwrap()).unwrap();
    assert!(r.verify(&hex::decode(want_genesis.trim()).unwrap()).valid);
}

/// An invocation by `executor` naming attestation entry `att` and policy entry `policy`.
fn run_by(n: u64, executor: &str, att: u64, policy: u64) -> Entry {
    let Entry::Invocation(mut i) = invocation(n) else { unreachable!() };
    (i.executor, i.executor_attestation, i.policy) = (executor.into(), att, Some(policy));
    Entry::Invocation(i)
}

/// [`pod`], then: the policy changes (20), node-4 re-attests (21), node-4 runs a request (22), node-1 runs one
/// (23). Size 24.
fn pod_with_history() -> Pod {
    let mut p = pod("pod.eu");
    let policy = Entry::PolicyChanged(PolicyChanged {
        policy: "[sim]\nallow = true\nmeasurements = []\n".into(),
        prior: 0,
        approvals: vec![],
    });
    assert_eq!(p.log.append(&policy).unwrap(), 20);
    let again = Entry::Reattested(Reattested {
        node: "node-4".into(),
        key: ByteBuf::from(key(4).public_key().as_ref().to_vec()),
        evidence: ByteBuf::from(b"node-4 evidence, later".to_vec()),
        attestation_result: ByteBuf::new(),
        anchor: Some(sigil_ledger::entry::Anchor { height: 9, root: Hash([7; 32]) }),
    });
    assert_eq!(p.log.append(&again).unwrap(), 21);
    assert_eq!(p.log.append(&run_by(100, "node-4", 21, 20)).unwrap(), 22);
    assert_eq!(p.log.append(&run_by(101, "node-1", 0, 20)).unwrap(), 23);
    p
}

#[test]
fn an_invocation_receipt_proves_its_executors_attestation_and_policy() {
    let p = pod_with_history();
    let cp = p.checkpoint(24, &[0, 1, 3, 4]);
    // node-4's run: its re-attestation and the policy change travel beside the validator-set changes.
    let r = Receipt::decode(&p.receipt(22, &cp)).unwrap();
    assert_eq!(r.referenced.iter().map(|e| e.index).collect::<Vec<_>>(), [20, 21]);
    let report = r.verify(&p.genesis);
    assert!(report.valid, "{:?}", report.reasons);
    let ex = report.executor.as_ref().expect("an executor record");
    assert_eq!((ex.name.as_str(), ex.attestation_index, ex.attestation_kind), ("node-4", 21, "reattested"));
    // The anchor its evidence binds travels with it, so a verifier can rebuild the REPORT_DATA.
    assert_eq!(ex.anchor, Some(sigil_ledger::entry::Anchor { height: 9, root: Hash([7; 32]) }));
    assert_eq!(ex.key.as_slice(), key(4).public_key().as_ref());
    assert_eq!(ex.evidence, b"node-4 evidence, later");
    assert_eq!((ex.policy_index, ex.policy.as_deref()), (Some(20), Some("[sim]\nallow = true\nmeasurements = []\n")));
    assert_eq!(ex.evidence_sha256, Hash::digest(b"node-4 evidence, later").to_hex());
    // node-1's run: attested by the genesis (a change already), so only the policy change is referenced.
    let r = Receipt::decode(&p.receipt(23, &cp)).unwrap();
    assert_eq!(r.referenced.iter().map(|e| e.index).collect::<Vec<_>>(), [20]);
    let report = r.verify(&p.genesis);
    assert!(report.valid, "{:?}", report.reasons);
    let ex = report.executor.unwrap();
    assert_eq!((ex.attestation_index, ex.attestation_kind, ex.evidence.as_slice()), (0, "genesis", &[0u8][..]));
    // Under the genesis attestation: nothing referenced.
    let r = Receipt::decode(&p.receipt(15, &cp)).unwrap();
    assert!(r.referenced.is_empty());
    let ex = r.verify(&p.genesis).executor.unwrap();
    // An invocation written before invocations named their policy (the pinned vector's): it has none to show.
    assert_eq!((ex.attestation_index, ex.policy_index, ex.policy), (0, None, None));
    // Entries other than invocations have no executor.
    assert!(Receipt::decode(&p.receipt(21, &cp)).unwrap().verify(&p.genesis).executor.is_none());
    // An invocation that names the genesis policy (0): the genesis carries it, nothing more is referenced.
    let mut p = p;
    let at = p.log.append(&run_by(102, "node-1", 0, 0)).unwrap();
    let cp = p.checkpoint(at + 1, &[0, 1, 3, 4]);
    let r = Receipt::decode(&p.receipt(at, &cp)).unwrap();
    assert!(r.referenced.is_empty());
    let ex = r.verify(&p.genesis).executor.unwrap();
    assert_eq!((ex.policy_index, ex.policy.as_deref()), (Some(0), Some("[sim]\nallow = true\n")));
}

#[test]
fn an_executors_attestation_left_out_altered_or_added_is_refused() {
    let p = pod_with_history();
    let cp = p.checkpoint(24, &[0, 1, 3, 4]);
    let good = Receipt::decode(&p.receipt(22, &cp)).unwrap();
    let refused = |r: &Receipt, why: &str| {
        let report = r.verify(&p.genesis);
        assert_eq!(failed(&report), ["receipt.executor"], "{why}");
        assert!(report.executor.is_none(), "{why}");
        report.reasons[0].clone()
    };
    let mut r = good.clone();
    r.referenced.remove(1);
    assert!(refused(&r, "left out").contains("carries entries [20]"));
    // The re-attestation's evidence altered (one bit): no longer the entry in the tree.
    let mut r = good.clone();
    let last = r.referenced[1].entry.len() - 40;
    r.referenced[1].entry[last] ^= 1;
    assert!(refused(&r, "altered").contains("entry 21 is not in the checkpoint's tree"));
    // Another entry swapped in at the same index, with its own proof: not at that index.
    let mut r = good.clone();
    r.referenced[1].entry = p.log.entry_bytes(23).unwrap();
    refused(&r, "swapped");
    // An entry the invocation does not name, added with its own valid proof.
    let mut r = good.clone();
    let other = Receipt::decode(&p.receipt(23, &cp)).unwrap();
    r.referenced.push(sigil_ledger::receipt::ProvenEntry { index: 23, entry: other.entry, proof: other.proof });
    assert!(refused(&r, "extra").contains("carries entries [20, 21, 23]"));
    // An entry referenced by an entry that names none (the re-attestation's own receipt).
    let mut r = Receipt::decode(&p.receipt(21, &cp)).unwrap();
    r.referenced.push(good.referenced[0].clone());
    assert!(refused(&r, "added").contains("names none"));
    // Bit flips anywhere in the encoded receipt.
    assert_bit_flips_refused(&p.receipt(22, &cp), &p.genesis, 29);
}

#[test]
fn an_invocation_naming_the_wrong_attestation_or_policy_has_no_executor() {
    let mut p = pod_with_history();
    let cases = [
        // node-1 names node-4's re-attestation, node-4 names the genesis (it was admitted later).
        (run_by(200, "node-1", 21, 20), "not an attestation of \"node-1\""),
        (run_by(201, "node-4", 0, 20), "not an attestation of \"node-4\""),
        // A policy entry that sets no policy; an index at or after the invocation.
        (run_by(202, "node-4", 21, 22), "not a policy"),
        (run_by(203, "node-4", 21, 99), "does not come before"),
        // An executor that is not a validator.
        (run_by(204, "node-9", 0, 20), "was not a validator"),
    ];
    let first = p.log.size();
    for (e, _) in &cases {
        p.log.append(e).unwrap();
    }
    // node-4 leaves and comes back with another key: its old re-attestation binds the old key.
    p.log
        .append(&Entry::NodeRemoved(NodeRemoved {
            name: "node-4".into(),
            reason: "".into(),
            prior: 0,
            approvals: vec![],
        }))
        .unwrap();
    let back = p
        .log
        .append(&Entry::NodeAdmitted(NodeAdmitted {
            validator: Validator { name: "node-4".into(), public_key: key(5).public_key().as_ref().to_vec() },
            evidence: ByteBuf::from(vec![5]),
            attestation_result: ByteBuf::new(),
            prior: 0,
            approvals: vec![],
        }))
        .unwrap();
    let stale = p.log.append(&run_by(205, "node-4", 21, 20)).unwrap();
    let fine = p.log.append(&run_by(206, "node-4", back, 20)).unwrap();
    let size = p.log.size();
    let cp = p.checkpoint(size, &[0, 1, 2, 3]);
    for (n, (_, why)) in cases.iter().enumerate() {
        let report = Receipt::decode(&p.receipt(first + n as u64, &cp)).unwrap().verify(&p.genesis);
        assert_eq!(failed(&report), ["receipt.executor"], "{why}");
        assert!(report.reasons[0].contains(why), "{why}: {:?}", report.reasons);
    }
    let report = Receipt::decode(&p.receipt(stale, &cp)).unwrap().verify(&p.genesis);
    assert!(report.reasons.iter().any(|r| r.contains("another key")), "{:?}", report.reasons);
    let report = Receipt::decode(&p.receipt(fine, &cp)).unwrap().verify(&p.genesis);
    assert!(report.valid, "{:?}", report.reasons);
    assert_eq!(report.executor.unwrap().key.as_slice(), key(5).public_key().as_ref());
}

#[test]
fn the_executor_receipt_format_is_pinned() {
    let p = pod_with_history();
    let cp = p.checkpoint(24, &[0, 1, 3, 4]);
    let receipt = hex::encode(p.receipt(22, &cp));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/conformance/receipt-executor.cose.hex");
    if std::env::var_os("SIGIL_BLESS").is_some() {
        std::fs::write(path, format!("{receipt}\n")).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("run with SIGIL_BLESS=1 once");
    assert_eq!(receipt, want.trim(), "the receipt format changed: existing receipts would no longer verify");
    let r = Receipt::decode(&hex::decode(want.trim()).unwrap()).unwrap();
    assert!(r.verify(&p.genesis).valid);
}

#[test]
fn a_suspension_and_a_reinstatement_change_the_set_a_receipt_replays() {
    // [`pod_with_history`], then: node-4 is suspended (24), a run it claims while suspended (25), node-4 is
    // reinstated with fresh evidence (26) and runs a request under it (27). Size 28.
    let mut p = pod_with_history();
    let suspended = Entry::NodeSuspended(NodeSuspended {
        name: "node-4".into(),
        cause: NodeSuspended::REFUSED.into(),
        attestation: 21,
        reason: "the pod's policy refuses its latest evidence".into(),
    });
    assert_eq!(p.log.append(&suspended).unwrap(), 24);
    assert_eq!(p.log.append(&run_by(102, "node-4", 21, 20)).unwrap(), 25);
    let anchor = Anchor { height: 12, root: Hash([8; 32]) };
    let back = Entry::NodeReinstated(NodeReinstated {
        validator: validator(4),
        evidence: ByteBuf::from(b"node-4 evidence, back".to_vec()),
        attestation_result: ByteBuf::new(),
        anchor,
    });
    assert_eq!(p.log.append(&back).unwrap(), 26);
    assert_eq!(p.log.append(&run_by(103, "node-4", 26, 20)).unwrap(), 27);
    // While suspended the set is node-0..3 (a quorum of 3); reinstated, node-0..4 again (a quorum of 4).
    let cp26 = p.checkpoint(26, &[0, 1, 3]);
    let r = Receipt::decode(&p.receipt(25, &cp26)).unwrap();
    let report = r.verify(&p.genesis);
    assert!(!report.valid, "a run by a suspended node has no executor");
    assert_eq!(failed(&report), ["receipt.executor"]);
    assert!(
        report.reasons.iter().any(|r| r.contains("\"node-4\" was not a validator when entry 25")),
        "{:?}",
        report.reasons
    );
    let four_of_four = p.checkpoint(26, &[0, 1, 3, 4]);
    assert!(
        Receipt::decode(&p.receipt(24, &four_of_four)).unwrap().verify(&p.genesis).valid,
        "node-4's signature is ignored"
    );
    let three_of_five = p.checkpoint(28, &[0, 1, 3]);
    let report = Receipt::decode(&p.receipt(27, &three_of_five)).unwrap().verify(&p.genesis);
    assert_eq!(failed(&report), ["receipt.checkpoint"], "node-4 is back in the set: 3 of 5 is no quorum");
    let cp28 = p.checkpoint(28, &[0, 1, 3, 4]);
    let r = Receipt::decode(&p.receipt(27, &cp28)).unwrap();
    assert_eq!(r.changes.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 11, 24, 26]);
    let report = r.verify(&p.genesis);
    assert!(report.valid, "{:?}", report.reasons);
    let ex = report.executor.expect("an executor record");
    assert_eq!((ex.attestation_index, ex.attestation_kind, ex.anchor), (26, "node_reinstated", Some(anchor)));
    assert_eq!(ex.evidence, b"node-4 evidence, back");
    // Its run before the suspension still verifies against the later checkpoint.
    assert!(Receipt::decode(&p.receipt(22, &cp28)).unwrap().verify(&p.genesis).valid);
    // Leaving the suspension out of the changes: the replayed set does not match the checkpoint's.
    let mut r = Receipt::decode(&p.receipt(27, &cp28)).unwrap();
    r.changes.retain(|c| c.index != 24);
    assert!(!r.verify(&p.genesis).valid);
}
