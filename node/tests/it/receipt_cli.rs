//! `sigil receipt verify`: exit 0 valid, 1 invalid, 2 usage or I/O error; the JSON says what was proven.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{SignedCheckpoint, Validator};
use sigil_ledger::entry::{Genesis, Invocation, Member};
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash};

fn sigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil")).args(args).output().expect("run sigil")
}

/// A directory of its own for each call: tests run in parallel.
fn dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("sigil-receipt-cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn key(i: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[i + 1; 32]).unwrap()
}

fn genesis(pod: &str) -> Entry {
    Entry::Genesis(Genesis {
        pod: pod.into(),
        jurisdiction: "EU".into(),
        created_at: 1,
        validators: (0..4)
            .map(|i| Validator { name: format!("node-{i}"), public_key: key(i).public_key().as_ref().to_vec() })
            .collect(),
        evidence: vec![ByteBuf::from(vec![0]); 4],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: String::new(),
    })
}

/// Writes genesis, a receipt for entry 3 at size 6, a trusted checkpoint at size 9 and the consistency proof.
fn fixture() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let g = genesis("pod.eu");
    let mut log = Ledger::in_memory(&g).unwrap();
    for n in 0..8u64 {
        let h = Hash::digest(&n.to_le_bytes());
        log.append(&Entry::Invocation(Invocation {
            request_hash: h,
            caller: ByteBuf::from(vec![7; 32]),
            applet: "notes".into(),
            method: "append".into(),
            code_digest: h,
            input_hash: h,
            output_hash: h,
            write_set_hash: h,
            executor: "node-2".into(),
            executor_attestation: 0,
            outcome: "ok".into(),
            fuel_used: 100,
            at_ms: n,
            delegate: None,
        }))
        .unwrap();
    }
    let sign = |size: u64| {
        let cp = log.checkpoint_at(size).unwrap();
        let lines: Vec<String> = (0..3).map(|i| cp.sign(&format!("node-{i}"), &key(i as u8))).collect();
        SignedCheckpoint::from_lines(cp, &lines).unwrap()
    };
    let d = dir();
    let (gp, rp, cp, pp) =
        (d.join("genesis.cbor"), d.join("receipt.cose"), d.join("trusted.note"), d.join("consistency.txt"));
    std::fs::write(&gp, g.encode()).unwrap();
    std::fs::write(&rp, log.receipt(3, &sign(6), "node-2", &key(2)).unwrap()).unwrap();
    std::fs::write(&cp, sign(9).to_note()).unwrap();
    let proof: Vec<String> = log.consistency(6, 9).unwrap().iter().map(|h| h.to_hex()).collect();
    std::fs::write(&pp, proof.join("\n")).unwrap();
    (gp, rp, cp, pp)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn valid_receipt_exits_0_and_says_what_it_proves() {
    let (g, r, _, _) = fixture();
    let out = sigil(&["receipt", "verify", s(&r), "--genesis", s(&g), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["valid"], true);
    assert_eq!(j["pod"], "pod.eu");
    assert_eq!(j["index"], 3);
    assert_eq!(j["entry_kind"], "invocation");
    assert_eq!(j["entry"]["applet"], "notes");
    assert_eq!(j["entry"]["executor"], "node-2");
    assert_eq!(j["checkpoint_size"], 6);
    assert!(j["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true));
    // Human output.
    let out = sigil(&["receipt", "verify", s(&r), "--genesis", s(&g)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("VALID  pod pod.eu  entry 3 (invocation)"), "{text}");
}

#[test]
fn trusted_checkpoint_needs_a_consistency_proof() {
    let (g, r, c, p) = fixture();
    let ok = sigil(&[
        "receipt",
        "verify",
        s(&r),
        "--genesis",
        s(&g),
        "--checkpoint",
        s(&c),
        "--consistency",
        s(&p),
        "--json",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    let missing = sigil(&["receipt", "verify", s(&r), "--genesis", s(&g), "--checkpoint", s(&c), "--json"]);
    assert_eq!(missing.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert!(j["reasons"][0].as_str().unwrap().starts_with("receipt.trusted_checkpoint"), "{j}");
}

#[test]
fn tampered_or_foreign_receipts_exit_1() {
    let (g, r, _, _) = fixture();
    let d = dir();
    // Another pod's genesis.
    let other = d.join("other-genesis.cbor");
    std::fs::write(&other, genesis("pod.us").encode()).unwrap();
    assert_eq!(sigil(&["receipt", "verify", s(&r), "--genesis", s(&other)]).status.code(), Some(1));
    // A flipped byte inside the receipt's entry or signature.
    let bytes = std::fs::read(&r).unwrap();
    let bad = d.join("bad.cose");
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&bad, &b).unwrap();
    assert_eq!(sigil(&["receipt", "verify", s(&bad), "--genesis", s(&g)]).status.code(), Some(1));
    // Not a receipt at all.
    std::fs::write(&bad, b"hello").unwrap();
    let out = sigil(&["receipt", "verify", s(&bad), "--genesis", s(&g), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("receipt.format"));
    // Hex-encoded receipts are read too.
    let hexed = d.join("receipt.hex");
    std::fs::write(&hexed, hex::encode(&bytes)).unwrap();
    assert_eq!(sigil(&["receipt", "verify", s(&hexed), "--genesis", s(&g)]).status.code(), Some(0));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let (g, r, _, _) = fixture();
    assert_eq!(sigil(&["receipt", "verify", s(&r), "--genesis", "/nonexistent"]).status.code(), Some(2));
    assert_eq!(sigil(&["receipt", "verify", "/nonexistent", "--genesis", s(&g)]).status.code(), Some(2));
    // A genesis file that is not a genesis entry.
    assert_eq!(sigil(&["receipt", "verify", s(&r), "--genesis", s(&r)]).status.code(), Some(2));
    assert_eq!(sigil(&["receipt", "verify", s(&r)]).status.code(), Some(2), "--genesis is required");
}

#[test]
fn the_example_receipt_verifies_and_matches_its_checkpoint() {
    let d = dir();
    let out = sigil(&["receipt", "example", "--out", s(&d)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (r, g, c) = (d.join("receipt.cose"), d.join("genesis.cbor"), d.join("checkpoint.note"));
    let v = sigil(&["receipt", "verify", s(&r), "--genesis", s(&g), "--checkpoint", s(&c), "--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["pod"], "example.pod.invalid");
    assert!(j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "receipt.trusted_checkpoint" && c["ok"] == true));
}
