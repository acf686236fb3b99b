//! Entries: one canonical encoding each, round trips for every kind, refusals for anything else, and the
//! validator set derived from the log. The encoding of a fixed entry is pinned in
//! `testdata/conformance/genesis.cbor.hex`: changing the format must be an explicit decision.

use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{Validator, ValidatorSet};
use sigil_ledger::entry::*;
use sigil_ledger::{Entry, Hash};

fn v(name: &str, k: u8) -> Validator {
    Validator { name: name.into(), public_key: vec![k; 32] }
}

fn genesis() -> Entry {
    Entry::Genesis(Genesis {
        pod: "pod.eu-west.example".into(),
        jurisdiction: "EU".into(),
        created_at: 1_764_000_000,
        validators: vec![v("node-0", 1), v("node-1", 2), v("node-2", 3), v("node-3", 4)],
        evidence: vec![ByteBuf::from(vec![0xAA; 4]); 4],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: "[sim]\nallow = true\n".into(),
    })
}

fn all_kinds() -> Vec<Entry> {
    let h = Hash::digest(b"x");
    let approvals = vec![Approval { member: "ops".into(), signature: ByteBuf::from(vec![7; 64]) }];
    vec![
        genesis(),
        Entry::NodeAdmitted(NodeAdmitted {
            validator: v("node-4", 5),
            evidence: ByteBuf::from(vec![1, 2, 3]),
            attestation_result: ByteBuf::from(vec![4, 5]),
            prior: 0,
            approvals: approvals.clone(),
        }),
        Entry::NodeRemoved(NodeRemoved {
            name: "node-1".into(),
            reason: "decommissioned".into(),
            prior: 0,
            approvals: approvals.clone(),
        }),
        Entry::PolicyChanged(PolicyChanged {
            policy: "[snp]\nvmpl = 0\n".into(),
            prior: 0,
            approvals: approvals.clone(),
        }),
        Entry::AppletDeployed(AppletDeployed {
            name: "kv".into(),
            version: "1.0.0".into(),
            manifest: ByteBuf::from(vec![0xA0]),
            code_digest: h,
            prior: 0,
            approvals,
        }),
        Entry::Invocation(Invocation {
            request_hash: h,
            caller: ByteBuf::from(vec![3; 32]),
            applet: "kv".into(),
            method: "get".into(),
            code_digest: h,
            input_hash: h,
            output_hash: h,
            write_set_hash: h,
            executor: "node-2".into(),
            executor_attestation: 3,
            policy: None,
            outcome: "ok".into(),
            fuel_used: 12_345,
            at_ms: 1_764_000_000_123,
            delegate: None,
        }),
        Entry::RequestRejected(RequestRejected {
            request_hash: h,
            caller: ByteBuf::from(vec![3; 32]),
            applet: "kv".into(),
            method: "delete".into(),
            reason: "caller may not call delete".into(),
            node: "node-0".into(),
            at_ms: 1,
        }),
        Entry::Reattested(Reattested {
            node: "node-0".into(),
            key: ByteBuf::from(vec![3; 32]),
            evidence: ByteBuf::from(vec![1]),
            attestation_result: ByteBuf::from(vec![2]),
            anchor: None,
        }),
        Entry::Reattested(Reattested {
            node: "node-0".into(),
            key: ByteBuf::from(vec![3; 32]),
            evidence: ByteBuf::from(vec![1]),
            attestation_result: ByteBuf::from(vec![2]),
            anchor: Some(sigil_ledger::entry::Anchor { height: 7, root: h }),
        }),
    ]
}

#[test]
fn every_kind_round_trips_canonically() {
    for e in all_kinds() {
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e, "{}", e.kind());
        assert_eq!(Entry::decode(&bytes).unwrap().encode(), bytes);
        assert_eq!(e.leaf_hash(), sigil_ledger::hash::leaf_hash(&bytes));
    }
}

#[test]
fn hashes_are_byte_strings_and_keys_are_sorted() {
    let bytes = all_kinds()[5].encode();
    // A 32-byte hash is a CBOR byte string (0x58 0x20), not hex text.
    assert!(bytes.windows(2).any(|w| w == [0x58, 0x20]));
    // Top level: {"v": 1, "entry": ...}: "v" (1 char) sorts before "entry" (5 chars).
    assert_eq!(&bytes[..4], &[0xA2, 0x61, b'v', 0x01]);
}

#[test]
fn the_encoding_is_pinned() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/conformance/genesis.cbor.hex");
    let got = hex::encode(genesis().encode());
    if std::env::var_os("SIGIL_BLESS").is_some() {
        std::fs::write(path, format!("{got}\n")).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("run with SIGIL_BLESS=1 once to create the fixture");
    assert_eq!(got, want.trim(), "the canonical encoding of entries changed: this breaks every existing ledger");
}

#[test]
fn other_encodings_of_the_same_data_are_refused() {
    let e = genesis();
    let bytes = e.encode();
    // Reordered keys.
    let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
    let ciborium::Value::Map(mut m) = value else { panic!() };
    m.reverse();
    let mut reordered = Vec::new();
    ciborium::into_writer(&ciborium::Value::Map(m), &mut reordered).unwrap();
    assert!(Entry::decode(&reordered).is_err(), "reordered keys");
    // A non-minimal integer: "v": 1 as a 2-byte integer (0x18 0x01).
    let mut long_int = vec![0xA2, 0x61, b'v', 0x18, 0x01];
    long_int.extend_from_slice(&bytes[4..]);
    assert!(Entry::decode(&long_int).is_err(), "non-minimal integer");
    // Trailing bytes.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Entry::decode(&trailing).is_err());
    // Truncated.
    assert!(Entry::decode(&bytes[..bytes.len() - 1]).is_err());
    // Unknown version.
    let mut v2 = bytes.clone();
    v2[3] = 0x02;
    assert!(Entry::decode(&v2).unwrap_err().to_string().contains("version"));
}

#[test]
fn a_governance_entry_s_prior_has_one_encoding_and_is_approved_with_it() {
    let enc = |json: serde_json::Value| {
        sigil_primitives::cbor::encode(
            &ciborium::Value::serialized(&serde_json::json!({ "v": 1, "entry": json })).unwrap(),
        )
    };
    // Written before `prior` existed: it decodes, as prior 0, to the same bytes and hash.
    let old = enc(serde_json::json!({ "kind": "node_removed", "name": "n", "reason": "r", "approvals": [] }));
    let e = Entry::decode(&old).unwrap();
    assert_eq!(e.prior().map(|(_, p)| p), Some(0));
    assert_eq!(e.encode(), old);
    // 0 written out is another encoding of the same entry: refused.
    let explicit =
        enc(serde_json::json!({ "kind": "node_removed", "name": "n", "reason": "r", "approvals": [], "prior": 0 }));
    assert!(Entry::decode(&explicit).is_err());
    let seven =
        enc(serde_json::json!({ "kind": "node_removed", "name": "n", "reason": "r", "approvals": [], "prior": 7 }));
    assert_eq!(Entry::decode(&seven).unwrap().prior(), Some((Subject::Membership("n"), 7)));
    // The approvals sign it: moved to another prior, an approval no longer verifies.
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
    let members = [Member {
        name: "ops".into(),
        public_key: ByteBuf::from(ring::signature::KeyPair::public_key(&key).as_ref().to_vec()),
    }];
    let mut approved = Entry::decode(&seven).unwrap();
    approved.approve("p", "ops", &key).unwrap();
    assert!(approved.check_approvals("p", &members, 1).is_ok());
    let Entry::NodeRemoved(mut r) = approved else { unreachable!() };
    r.prior = 8;
    let moved = Entry::NodeRemoved(r);
    assert!(moved.check_approvals("p", &members, 1).unwrap_err().contains("does not verify"));
}

#[test]
fn unknown_fields_and_kinds_are_refused() {
    let mut m = match ciborium::Value::serialized(&serde_json::json!({
        "v": 1,
        "entry": { "kind": "node_removed", "name": "n", "reason": "r", "approvals": [], "extra": 1 }
    }))
    .unwrap()
    {
        ciborium::Value::Map(m) => m,
        _ => unreachable!(),
    };
    let enc =
        |m: &Vec<(ciborium::Value, ciborium::Value)>| sigil_primitives::cbor::encode(&ciborium::Value::Map(m.clone()));
    assert!(Entry::decode(&enc(&m)).is_err(), "unknown field");
    m[1].1 = ciborium::Value::serialized(&serde_json::json!({ "kind": "no_such_kind" })).unwrap();
    assert!(Entry::decode(&enc(&m)).is_err(), "unknown kind");
}

#[test]
fn validator_set_follows_the_log() {
    let mut set = ValidatorSet::default();
    let kinds = all_kinds();
    set.apply(&kinds[0]).unwrap();
    assert_eq!(set.members.len(), 4);
    assert_eq!(set.quorum(), 3);
    set.apply(&kinds[1]).unwrap(); // node-4 admitted
    assert_eq!(set.members.len(), 5);
    assert_eq!(set.quorum(), 4);
    set.apply(&kinds[2]).unwrap(); // node-1 removed
    assert_eq!(
        set.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["node-0", "node-2", "node-3", "node-4"]
    );
    for e in &kinds[3..] {
        let before = set.clone();
        set.apply(e).unwrap();
        assert_eq!(set, before, "{} does not change the set", e.kind());
    }
    assert!(set.apply(&kinds[0]).is_err(), "a second genesis");
    assert!(set.apply(&kinds[1]).is_err(), "admitting a member twice");
    // A removal of a name outside the set (a suspended node, which only the block rules know) leaves it as it is.
    let before = set.clone();
    set.apply(&kinds[2]).unwrap();
    assert_eq!(set, before, "removing a non-member");
    // A suspension takes a validator out, a reinstatement puts it back (last, as an admission would).
    let node2 = set.members.iter().find(|m| m.name == "node-2").unwrap().clone();
    let suspended = Entry::NodeSuspended(NodeSuspended {
        name: "node-2".into(),
        cause: NodeSuspended::STALE.into(),
        attestation: 0,
        reason: "its latest attestation is too old".into(),
    });
    let back = Entry::NodeReinstated(NodeReinstated {
        validator: node2.clone(),
        evidence: ByteBuf::from(vec![1]),
        attestation_result: ByteBuf::from(vec![2]),
        anchor: sigil_ledger::entry::Anchor { height: 7, root: Hash([1; 32]) },
    });
    for e in [&suspended, &back] {
        assert!(ValidatorSet::changes_with(e));
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap().encode(), bytes, "{} round-trips canonically", e.kind());
    }
    set.apply(&suspended).unwrap();
    assert_eq!(set.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["node-0", "node-3", "node-4"]);
    assert!(set.apply(&suspended).is_err(), "suspending a non-member");
    set.apply(&back).unwrap();
    assert_eq!(set.members.last(), Some(&node2));
    assert!(set.apply(&back).is_err(), "reinstating a member");
}
