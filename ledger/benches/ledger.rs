//! Ledger core costs, each beside its floor measured in the same run:
//! - `merkle::append` (leaf hash + frontier update + node writes, in memory) against `sha256/leaf` (one leaf
//!   hash of the same entry: the work no append can avoid);
//! - `merkle::inclusion_proof/size=2^20` (O(log n) node reads) and `merkle::verify_inclusion`;
//! - `receipt::verify/validators=4` against `ed25519_verify/x4` (the receipt's four signature checks: three
//!   checkpoint cosignatures and the receipt's own).
//!
//! `scripts/bench.sh` runs this with the attestation benchmarks and prints the ratios.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{SignedCheckpoint, Validator};
use sigil_ledger::entry::{Genesis, Invocation, Member};
use sigil_ledger::hash::leaf_hash;
use sigil_ledger::merkle::{inclusion_proof, verify_inclusion, MemTree};
use sigil_ledger::receipt::Receipt;
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash};

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
        at_ms: n,
        delegate: None,
    })
}

fn merkle(c: &mut Criterion) {
    let entry = invocation(1).encode();
    let mut g = c.benchmark_group("merkle");
    g.bench_function("sha256/leaf", |b| b.iter(|| leaf_hash(black_box(&entry))));
    let mut t = MemTree::default();
    g.bench_function("append", |b| b.iter(|| t.push(leaf_hash(black_box(&entry)))));
    let mut big = MemTree::default();
    for i in 0..(1u64 << 20) {
        big.push(leaf_hash(&i.to_le_bytes()));
    }
    let size = big.size();
    let mut i = 0u64;
    g.bench_function("inclusion_proof/size=2^20", |b| {
        b.iter(|| {
            i = (i + 7919) % size;
            inclusion_proof(&big.nodes, black_box(i), size).unwrap()
        })
    });
    let proof = inclusion_proof(&big.nodes, 123_456, size).unwrap();
    let (leaf, root) = (leaf_hash(&123_456u64.to_le_bytes()), big.root());
    g.bench_function("verify_inclusion/size=2^20", |b| {
        b.iter(|| verify_inclusion(123_456, size, &leaf, black_box(&proof), &root).unwrap())
    });
    g.finish();
}

fn receipt(c: &mut Criterion) {
    let keys: Vec<Ed25519KeyPair> =
        (0..4u8).map(|i| Ed25519KeyPair::from_seed_unchecked(&[i + 1; 32]).unwrap()).collect();
    let genesis = Entry::Genesis(Genesis {
        pod: "pod.bench".into(),
        jurisdiction: "EU".into(),
        created_at: 0,
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator { name: format!("node-{i}"), public_key: k.public_key().as_ref().to_vec() })
            .collect(),
        evidence: vec![ByteBuf::from(vec![0]); 4],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: String::new(),
    });
    let mut log = Ledger::in_memory(&genesis).unwrap();
    for n in 0..100_000 {
        log.append(&invocation(n)).unwrap();
    }
    let cp = log.checkpoint_at(log.size()).unwrap();
    let lines: Vec<String> = (0..3).map(|i| cp.sign(&format!("node-{i}"), &keys[i])).collect();
    let signed = SignedCheckpoint::from_lines(cp, &lines).unwrap();
    let bytes = log.receipt(54_321, &signed, "node-1", &keys[1]).unwrap();
    let genesis = genesis.encode();
    let mut g = c.benchmark_group("receipt");
    g.bench_function("verify/validators=4", |b| {
        b.iter(|| {
            let r = Receipt::decode(black_box(&bytes)).unwrap().verify(&genesis);
            assert!(r.valid);
        })
    });
    let msg = b"a checkpoint body of about the same length as the real one, with a root...";
    let sig = keys[0].sign(msg);
    let pk = keys[0].public_key().as_ref().to_vec();
    g.bench_function("ed25519_verify/x4", |b| {
        b.iter(|| {
            for _ in 0..4 {
                UnparsedPublicKey::new(&ED25519, &pk).verify(black_box(msg), sig.as_ref()).unwrap();
            }
        })
    });
    g.finish();
}

/// Blocks of 100 invocations: one batch each (synced, for RocksDB). Entries per second = 100 / time.
fn store(c: &mut Criterion) {
    use sigil_ledger::store::MemKv;
    let keys: Vec<Validator> =
        (0..4u8).map(|i| Validator { name: format!("node-{i}"), public_key: vec![i + 1; 32] }).collect();
    let genesis = Entry::Genesis(Genesis {
        pod: "pod.bench".into(),
        jurisdiction: "EU".into(),
        created_at: 0,
        validators: keys,
        evidence: vec![],
        members: vec![],
        threshold: 1,
        policy: String::new(),
    });
    let block = |start: u64| (start..start + 100).map(invocation).collect::<Vec<_>>();
    let mut g = c.benchmark_group("store");
    let mut mem = Ledger::create(Box::new(MemKv::default()), &genesis).unwrap();
    g.bench_function("append_block/kv=memory,entries=100", |b| {
        b.iter(|| {
            let s = mem.size();
            mem.append_block(&block(s)).unwrap()
        })
    });
    #[cfg(feature = "rocksdb")]
    {
        let dir = std::env::temp_dir().join(format!("sigil-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rocks = Ledger::create(Box::new(sigil_ledger::store::RocksKv::open(&dir).unwrap()), &genesis).unwrap();
        g.bench_function("append_block/kv=rocksdb,entries=100", |b| {
            b.iter(|| {
                let s = rocks.size();
                rocks.append_block(&block(s)).unwrap()
            })
        });
        drop(rocks);
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

criterion_group!(benches, merkle, receipt, store);
criterion_main!(benches);
