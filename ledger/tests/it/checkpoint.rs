//! Checkpoints: the C2SP signed-note format against the Go reference example, and quorum rules.

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sigil_ledger::checkpoint::{signature_line, Checkpoint, SignedCheckpoint, Validator, ValidatorSet};
use sigil_ledger::Hash;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn validator(name: &str, k: &Ed25519KeyPair) -> Validator {
    Validator { name: name.into(), public_key: k.public_key().as_ref().to_vec() }
}

/// A pod of `n` validators: node-0 .. node-(n-1).
fn pod(n: u8) -> (Vec<Ed25519KeyPair>, ValidatorSet) {
    let keys: Vec<_> = (0..n).map(|i| key(i + 1)).collect();
    let members = keys.iter().enumerate().map(|(i, k)| validator(&format!("node-{i}"), k)).collect();
    (keys, ValidatorSet { members })
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "pod.eu-west.example".into(),
        size: 42,
        root: Hash::digest(b"root"),
        validators: pod(4).1.digest(),
    }
}

fn signed_by(cp: &Checkpoint, keys: &[Ed25519KeyPair], who: &[usize]) -> SignedCheckpoint {
    let lines: Vec<String> = who.iter().map(|&i| cp.sign(&format!("node-{i}"), &keys[i])).collect();
    SignedCheckpoint::from_lines(cp.clone(), &lines).unwrap()
}

#[test]
fn signed_note_matches_the_go_reference_example() {
    // golang.org/x/mod/sumdb/note's documented example key and note.
    let skey = B64.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
    assert_eq!(skey[0], 1, "Ed25519");
    let k = Ed25519KeyPair::from_seed_unchecked(&skey[1..]).unwrap();
    let v = validator("PeterNeumann", &k);
    assert_eq!(hex::encode(v.key_id()), "c74f20a3");
    assert_eq!(v.verifier_key(), "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    assert_eq!(
        signature_line(text, "PeterNeumann", &k),
        "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    );
}

#[test]
fn quorum_sizes() {
    for (n, q) in [(1u8, 1usize), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (10, 7)] {
        assert_eq!(pod(n).1.quorum(), q, "n = {n}");
    }
    assert_eq!(ValidatorSet::default().quorum(), usize::MAX, "an empty set never reaches quorum");
}

#[test]
fn quorum_signed_checkpoint_verifies_and_round_trips() {
    let (keys, set) = pod(4);
    let cp = checkpoint();
    let s = signed_by(&cp, &keys, &[0, 2, 3]);
    assert_eq!(s.verify("pod.eu-west.example", &set).unwrap(), ["node-0", "node-2", "node-3"]);
    let note = s.to_note();
    assert!(note.starts_with("pod.eu-west.example\n42\n"), "{note}");
    assert!(note.contains("\nsigil-validators "), "{note}");
    assert_eq!(SignedCheckpoint::parse(&note).unwrap(), s);
}

#[test]
fn below_quorum_is_invalid() {
    let (keys, set) = pod(4);
    let e = signed_by(&checkpoint(), &keys, &[1, 3]).verify("pod.eu-west.example", &set).unwrap_err();
    assert!(e.to_string().contains("2 of 4 validators signed; a quorum is 3"), "{e}");
    // The same validator twice counts once.
    let e = signed_by(&checkpoint(), &keys, &[1, 1, 3]).verify("pod.eu-west.example", &set).unwrap_err();
    assert!(e.to_string().contains("2 of 4"), "{e}");
}

#[test]
fn outsiders_do_not_count() {
    let (keys, set) = pod(4);
    let outsider = key(99);
    let cp = checkpoint();
    let lines = vec![cp.sign("node-0", &keys[0]), cp.sign("node-1", &keys[1]), cp.sign("mallory", &outsider)];
    let s = SignedCheckpoint::from_lines(cp.clone(), &lines).unwrap();
    assert!(s.verify("pod.eu-west.example", &set).is_err());
    // An outsider using a member's name has another key id: ignored, still no quorum.
    let lines = vec![cp.sign("node-0", &keys[0]), cp.sign("node-1", &keys[1]), cp.sign("node-2", &outsider)];
    let s = SignedCheckpoint::from_lines(cp, &lines).unwrap();
    assert!(s.verify("pod.eu-west.example", &set).is_err());
}

#[test]
fn tampering_is_detected() {
    let (keys, set) = pod(4);
    let s = signed_by(&checkpoint(), &keys, &[0, 1, 2]);
    // Another pod: a checkpoint of pod A presented as pod B.
    assert!(s.verify("pod.us-east.example", &set).unwrap_err().to_string().contains("not for pod"));
    // A changed size or root: the members' signatures no longer verify.
    for (size, root) in [(43, s.checkpoint.root), (42, Hash::digest(b"other"))] {
        let mut t = s.clone();
        t.checkpoint.size = size;
        t.checkpoint.root = root;
        let e = t.verify("pod.eu-west.example", &set).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
    }
    // A flipped bit in a signature.
    let mut t = s.clone();
    t.signatures[1].2[10] ^= 1;
    assert!(t.verify("pod.eu-west.example", &set).is_err());
    // Verified against another validator set (e.g. before these nodes were admitted): the extension line
    // commits the signers to the set of four.
    let (_, other) = pod(7);
    assert!(s.verify("pod.eu-west.example", &other).unwrap_err().to_string().contains("another validator set"));
    // A set with a member left out does not match either, even where the signers are all still in it.
    let mut fewer = set.clone();
    fewer.members.pop();
    assert!(s.verify("pod.eu-west.example", &fewer).unwrap_err().to_string().contains("another validator set"));
}

#[test]
fn malformed_notes_are_refused() {
    let (keys, _) = pod(4);
    let good = signed_by(&checkpoint(), &keys, &[0]).to_note();
    let root = B64.encode(Hash::digest(b"root").0);
    let vals = format!("sigil-validators {root}");
    let sig_line = good.lines().last().unwrap().to_string();
    for bad in [
        String::new(),
        "pod\n42\n".to_string(),
        format!("pod\n42\n{root}\n{vals}\n"),
        format!("pod\n42\n{root}\n\n{sig_line}\n"),
        format!("pod\n042\n{root}\n{vals}\n\n{sig_line}\n"),
        format!("pod\n-1\n{root}\n{vals}\n\n{sig_line}\n"),
        format!("pod\n42\n{}\n{vals}\n\n{sig_line}\n", B64.encode([0u8; 31])),
        format!("pod\n42\n{root}\n{vals}\next\n\n{sig_line}\n"),
        format!("pod\n42\n{root}\nsigil-validators AAAA\n\n{sig_line}\n"),
        format!(" pod\n42\n{root}\n{vals}\n\n{sig_line}\n"),
        format!("pod\n42\n{root}\n{vals}\n\n{sig_line}"),
        format!("pod\n42\n{root}\n{vals}\n\n- node-0 AAAA\n"),
        format!("pod\n42\n{root}\n{vals}\n\n\u{2014} node-0 !!!\n"),
        format!("pod\n18446744073709551616\n{root}\n{vals}\n\n{sig_line}\n"),
    ] {
        assert!(SignedCheckpoint::parse(&bad).is_err(), "accepted {bad:?}");
    }
    assert!(SignedCheckpoint::parse(&good).is_ok());
}
