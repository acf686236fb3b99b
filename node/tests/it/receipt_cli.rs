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

/// The simulated launch measurement the fixture's nodes report.
const MEASUREMENT: [u8; 48] = [0x5a; 48];

/// Sim evidence (INSECURE) binding node `i`'s key to `pod`.
fn evidence(pod: &str, i: u8) -> ByteBuf {
    let k: [u8; 32] = key(i).public_key().as_ref().try_into().unwrap();
    ByteBuf::from(sigil_pod::admission::sim_evidence(pod, &k, MEASUREMENT))
}

fn genesis(pod: &str) -> Entry {
    genesis_with(pod, (0..4).map(|i| evidence(pod, i)).collect())
}

fn genesis_with(pod: &str, evidence: Vec<ByteBuf>) -> Entry {
    Entry::Genesis(Genesis {
        pod: pod.into(),
        jurisdiction: "EU".into(),
        created_at: 1,
        validators: (0..4)
            .map(|i| Validator { name: format!("node-{i}"), public_key: key(i).public_key().as_ref().to_vec() })
            .collect(),
        evidence,
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: format!("[sim]\nallow = true\nmeasurements = [\"{}\"]\n", hex::encode(MEASUREMENT)),
    })
}

/// Writes genesis, a receipt for entry 3 (run by node-2) at size 6, a trusted checkpoint at size 9 and the
/// consistency proof.
fn fixture() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    fixture_of(genesis("pod.eu"))
}

fn fixture_of(g: Entry) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
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
            policy: Some(0),
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
    // Who ran it, on what evidence, judged under the pod's policy as of when it ran.
    let ex = &j["executor"];
    assert_eq!((ex["name"].as_str(), ex["attestation_index"].as_u64()), (Some("node-2"), Some(0)));
    assert_eq!(ex["attestation_kind"], "genesis");
    assert_eq!(ex["key"], hex::encode(key(2).public_key().as_ref()));
    assert_eq!((ex["platform"].as_str(), ex["verdict"].as_str()), (Some("sim"), Some("accepted")));
    assert_eq!(ex["measurement"], hex::encode(MEASUREMENT));
    assert_eq!((ex["policy_index"].as_u64(), ex["judged_at"].as_u64()), (Some(0), Some(0)));
    assert!(ex["checks"].as_array().unwrap().iter().any(|c| c["name"] == "sim.report_data"), "{ex}");
    // Human output.
    let out = sigil(&["receipt", "verify", s(&r), "--genesis", s(&g)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("VALID  pod pod.eu  entry 3 (invocation)"), "{text}");
    assert!(text.contains("executor    node-2 (attested by entry 0, genesis)"), "{text}");
    assert!(text.contains("platform    sim (INSECURE"), "{text}");
}

/// Runs `receipt verify --json` and returns its exit code and failed checks.
fn failed_checks(args: &[&str]) -> (Option<i32>, Vec<String>, serde_json::Value) {
    let out = sigil(&[&["receipt", "verify"], args, &["--json"]].concat());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed =
        j["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).map(|c| c["name"].to_string()).collect();
    (out.status.code(), failed, j)
}

#[test]
fn the_executors_evidence_is_judged_under_the_pods_policy_or_the_verifiers() {
    let (g, r, _, _) = fixture();
    let d = dir();
    // The default policy refuses simulated evidence: so does a verifier who asks for it.
    let strict = d.join("strict.toml");
    std::fs::write(&strict, "# the defaults: no simulated TEE\n").unwrap();
    let (code, failed, j) = failed_checks(&[s(&r), "--genesis", s(&g), "--policy", s(&strict)]);
    assert_eq!((code, failed), (Some(1), vec!["\"receipt.executor.evidence\"".to_string()]), "{j}");
    assert_eq!(j["executor"]["verdict"], "rejected");
    assert!(j["executor"]["policy_source"].as_str().unwrap().contains("strict.toml"), "{j}");
    assert!(j["reasons"][0].as_str().unwrap().contains("sim evidence of node-2 refused"), "{j}");
    // A policy that pins another measurement.
    let pinned = d.join("pinned.toml");
    std::fs::write(&pinned, format!("[sim]\nallow = true\nmeasurements = [\"{}\"]\n", "ab".repeat(48))).unwrap();
    let (code, failed, j) = failed_checks(&[s(&r), "--genesis", s(&g), "--policy", s(&pinned)]);
    assert_eq!((code, failed.len()), (Some(1), 1), "{j}");
    assert!(j["executor"]["reasons"][0].as_str().unwrap().contains("measurement"), "{j}");
    // And the one it runs: valid.
    std::fs::write(&pinned, format!("[sim]\nallow = true\nmeasurements = [\"{}\"]\n", hex::encode(MEASUREMENT)))
        .unwrap();
    assert_eq!(failed_checks(&[s(&r), "--genesis", s(&g), "--policy", s(&pinned)]).0, Some(0));
    // A policy file that does not parse is a usage error.
    std::fs::write(&pinned, "[sim\n").unwrap();
    assert_eq!(sigil(&["receipt", "verify", s(&r), "--genesis", s(&g), "--policy", s(&pinned)]).status.code(), Some(2));
}

#[test]
fn evidence_that_binds_another_key_or_pod_is_refused() {
    // node-2's slot holds node-1's evidence (a field swap): it binds another key.
    let swapped: Vec<ByteBuf> = [0, 1, 1, 3].iter().map(|&i| evidence("pod.eu", i)).collect();
    let (g, r, _, _) = fixture_of(genesis_with("pod.eu", swapped));
    let (code, failed, j) = failed_checks(&[s(&r), "--genesis", s(&g)]);
    assert_eq!((code, failed), (Some(1), vec!["\"receipt.executor.evidence\"".to_string()]), "{j}");
    assert!(j["executor"]["reasons"][0].as_str().unwrap().contains("report_data"), "{j}");
    // node-2's own key, bound to another pod.
    let foreign: Vec<ByteBuf> = (0..4).map(|i| evidence(if i == 2 { "pod.us" } else { "pod.eu" }, i)).collect();
    let (g, r, _, _) = fixture_of(genesis_with("pod.eu", foreign));
    let (code, failed, _) = failed_checks(&[s(&r), "--genesis", s(&g)]);
    assert_eq!((code, failed), (Some(1), vec!["\"receipt.executor.evidence\"".to_string()]));
    // Evidence that is not evidence at all.
    let garbage: Vec<ByteBuf> =
        (0..4).map(|i| if i == 2 { ByteBuf::from(vec![0]) } else { evidence("pod.eu", i) }).collect();
    let (g, r, _, _) = fixture_of(genesis_with("pod.eu", garbage));
    let (code, failed, j) = failed_checks(&[s(&r), "--genesis", s(&g)]);
    assert_eq!((code, failed), (Some(1), vec!["\"receipt.executor.evidence\"".to_string()]));
    assert!(j["reasons"][0].as_str().unwrap().contains("unreadable"), "{j}");
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
