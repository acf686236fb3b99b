//! The ledger on a key-value store: blocks, reopening, audit queries, receipts from storage, and corruption
//! detected, never served.

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{SignedCheckpoint, Validator};
use sigil_ledger::entry::{Genesis, Invocation, Member, NodeAdmitted, RequestRejected};
use sigil_ledger::receipt::Receipt;
use sigil_ledger::store::{Kv, Ledger, MemKv, Pair, Query};
use sigil_ledger::{Entry, Hash, LedgerError};

fn key(i: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[i + 1; 32]).unwrap()
}

fn validator(i: u8) -> Validator {
    Validator { name: format!("node-{i}"), public_key: key(i).public_key().as_ref().to_vec() }
}

fn genesis() -> Entry {
    Entry::Genesis(Genesis {
        pod: "pod.eu".into(),
        jurisdiction: "EU".into(),
        created_at: 0,
        validators: (0..4).map(validator).collect(),
        evidence: vec![ByteBuf::from(vec![0]); 4],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: String::new(),
    })
}

fn call(n: u64, caller: u8, applet: &str) -> Entry {
    let h = Hash::digest(&n.to_le_bytes());
    Entry::Invocation(Invocation {
        request_hash: h,
        caller: ByteBuf::from(vec![caller; 32]),
        applet: applet.into(),
        method: "m".into(),
        code_digest: h,
        input_hash: h,
        output_hash: h,
        write_set_hash: h,
        executor: "node-0".into(),
        executor_attestation: 0,
        policy: None,
        outcome: "ok".into(),
        fuel_used: 1,
        at_ms: 1000 + n,
        delegate: None,
    })
}

/// A shared MemKv handle so a test can reopen and tamper with the same data.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<MemKv>>);

impl Kv for Shared {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.0.lock().unwrap().get(k)
    }
    fn scan(&self, p: &[u8], f: Option<&[u8]>, l: usize) -> Result<Vec<Pair>, LedgerError> {
        self.0.lock().unwrap().scan(p, f, l)
    }
    fn last(&self, p: &[u8]) -> Result<Option<Pair>, LedgerError> {
        self.0.lock().unwrap().last(p)
    }
    fn apply(&mut self, b: Vec<Pair>, d: Vec<Vec<u8>>) -> Result<(), LedgerError> {
        self.0.lock().unwrap().apply(b, d)
    }
}

/// `last` finds the greatest key of a prefix, and nothing of its neighbours, in both stores.
fn last_of_a_prefix(kv: &mut dyn Kv) {
    let pairs = |keys: &[&[u8]]| keys.iter().map(|k| (k.to_vec(), k.to_vec())).collect::<Vec<_>>();
    assert_eq!(kv.last(b"c").unwrap(), None);
    kv.write(pairs(&[b"b\xff\xff", b"d", b"c\x00\x01", b"c\x00\x02", b"c\xff\xff"])).unwrap();
    assert_eq!(kv.last(b"c").unwrap(), Some((b"c\xff\xff".to_vec(), b"c\xff\xff".to_vec())));
    assert_eq!(kv.last(b"c\x00").unwrap().unwrap().0, b"c\x00\x02");
    assert_eq!(kv.last(b"b").unwrap().unwrap().0, b"b\xff\xff");
    assert_eq!(kv.last(b"a").unwrap(), None);
    assert_eq!(kv.last(b"e").unwrap(), None);
    assert_eq!(kv.last(b"").unwrap().unwrap().0, b"d");
    kv.write(pairs(&[b"\xff\xff"])).unwrap();
    assert_eq!(kv.last(b"\xff").unwrap().unwrap().0, b"\xff\xff");
}

#[test]
fn the_last_key_of_a_prefix_is_one_seek() {
    last_of_a_prefix(&mut MemKv::default());
    #[cfg(feature = "rocksdb")]
    {
        let dir = std::env::temp_dir().join(format!("sigil-last-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        last_of_a_prefix(&mut sigil_ledger::store::RocksKv::open(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn filled() -> (Shared, Ledger) {
    let kv = Shared::default();
    let mut l = Ledger::create(Box::new(kv.clone()), &genesis()).unwrap();
    for block in 0..10u64 {
        let entries: Vec<Entry> =
            (0..5).map(|i| call(block * 5 + i, (i % 2) as u8, if i < 3 { "kv" } else { "notes" })).collect();
        l.append_block(&entries).unwrap();
    }
    (kv, l)
}

#[test]
fn blocks_survive_reopening() {
    let (kv, l) = filled();
    assert_eq!(l.size(), 51);
    let root = l.root();
    let reopened = Ledger::open(Box::new(kv)).unwrap();
    assert_eq!((reopened.size(), reopened.root()), (51, root));
    reopened.verify_integrity().unwrap();
    assert_eq!(reopened.entry(7).unwrap(), call(6, 1, "kv"), "entry 7 is call 6: block 1, second entry");
}

#[test]
fn a_refused_block_writes_nothing() {
    let (kv, mut l) = filled();
    let before = (l.size(), l.root());
    // The second entry re-admits a member: the whole block is refused.
    let bad = vec![
        call(100, 0, "kv"),
        Entry::NodeAdmitted(NodeAdmitted {
            validator: validator(1),
            evidence: ByteBuf::new(),
            attestation_result: ByteBuf::new(),
            prior: 0,
            approvals: vec![],
        }),
    ];
    assert!(l.append_block(&bad).is_err());
    assert_eq!((l.size(), l.root()), before);
    let reopened = Ledger::open(Box::new(kv)).unwrap();
    assert_eq!((reopened.size(), reopened.root()), before);
    assert!(
        reopened.by_request(&Hash::digest(&100u64.to_le_bytes())).unwrap().is_none(),
        "no index of the refused block"
    );
}

#[test]
fn audit_queries_page_through_results() {
    let (_, mut l) = filled();
    l.append_block(&[Entry::RequestRejected(RequestRejected {
        request_hash: Hash::digest(b"denied"),
        caller: ByteBuf::from(vec![1; 32]),
        applet: "kv".into(),
        method: "delete".into(),
        reason: "not allowed".into(),
        node: "node-0".into(),
        at_ms: 5000,
    })])
    .unwrap();
    // By caller, three at a time.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = l.query(&Query::Caller(vec![1; 32]), after.as_deref(), 3).unwrap();
        all.extend(page.indexes);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let want: Vec<u64> = (1..=50).filter(|i| (i - 1) % 5 % 2 == 1).chain([51]).collect();
    assert_eq!(all, want);
    // By applet.
    let notes = l.query(&Query::Applet("notes".into()), None, 100).unwrap();
    assert_eq!(notes.indexes.len(), 20);
    assert!(notes.next.is_none());
    // By time range [1010, 1020): entries n = 10..19 are at indexes 11..=20.
    let t = l.query(&Query::TimeRange { from_ms: 1010, to_ms: 1020 }, None, 100).unwrap();
    assert_eq!(t.indexes, (11..=20).collect::<Vec<_>>());
    // By request.
    // A rejection is found as a rejection, not as an invocation of the request.
    assert_eq!(l.by_request(&Hash::digest(b"denied")).unwrap(), None);
    assert_eq!(l.by_rejection(&Hash::digest(b"denied")).unwrap(), Some(51));
    assert_eq!(l.by_rejection(&Hash::digest(&7u64.to_le_bytes())).unwrap(), None);
    assert_eq!(l.by_request(&Hash::digest(&7u64.to_le_bytes())).unwrap(), Some(8));
    // A page token of another query is refused.
    let token = l.query(&Query::Caller(vec![1; 32]), None, 1).unwrap().next.unwrap();
    assert!(l.query(&Query::Applet("kv".into()), Some(&token), 1).is_err());
}

#[test]
fn checkpoints_and_receipts_from_storage() {
    let (_, mut l) = filled();
    let cp = l.checkpoint_at(l.size()).unwrap();
    let lines: Vec<String> = (0..3).map(|i| cp.sign(&format!("node-{i}"), &key(i as u8))).collect();
    let signed = SignedCheckpoint::from_lines(cp, &lines).unwrap();
    l.add_checkpoint(&signed).unwrap();
    assert_eq!(l.latest_checkpoint().unwrap(), Some(signed.clone()));
    let receipt = l.receipt(23, &signed, "node-2", &key(2)).unwrap();
    let report = Receipt::decode(&receipt).unwrap().verify(&genesis().encode());
    assert!(report.valid, "{:?}", report.reasons);
    // A checkpoint that does not describe this ledger, or lacks a quorum, is not stored.
    let mut wrong = signed.clone();
    wrong.checkpoint.size = 20;
    assert!(l.add_checkpoint(&wrong).is_err());
    let cp = l.checkpoint_at(30).unwrap();
    let few = SignedCheckpoint::from_lines(cp.clone(), &[cp.sign("node-0", &key(0))]).unwrap();
    assert!(l.add_checkpoint(&few).is_err());
}

#[test]
fn corrupted_entries_are_detected() {
    let (kv, _) = filled();
    let mut e = b"e".to_vec();
    e.extend_from_slice(&12u64.to_be_bytes());
    kv.0.lock().unwrap().tamper(&e, &call(999, 0, "kv").encode());
    let l = Ledger::open(Box::new(kv.clone())).unwrap();
    match l.entry(12) {
        Err(LedgerError::Corrupt(m)) => assert!(m.contains("entry 12"), "{m}"),
        other => panic!("served a corrupted entry: {other:?}"),
    }
    assert!(matches!(l.verify_integrity(), Err(LedgerError::Corrupt(_))));
    assert!(l.entry(13).is_ok(), "other entries still read");
}

#[test]
fn corrupted_tree_nodes_are_detected_on_open() {
    let (kv, _) = filled();
    // The frontier node of a 51-leaf tree at level 5 (leaves 0..32).
    let mut n = b"n".to_vec();
    n.push(5);
    n.extend_from_slice(&0u64.to_be_bytes());
    kv.0.lock().unwrap().tamper(&n, &[0u8; 32]);
    match Ledger::open(Box::new(kv)) {
        Err(LedgerError::Corrupt(m)) => assert!(m.contains("root"), "{m}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a ledger whose tree does not match its root"),
    }
}

#[test]
fn create_refuses_a_used_store() {
    let (kv, _) = filled();
    assert!(Ledger::create(Box::new(kv), &genesis()).is_err());
    assert!(Ledger::open(Box::new(Shared::default())).is_err(), "nothing to open");
}

#[test]
fn adapter_pairs_commit_with_their_block_and_stay_in_their_namespace() {
    let (kv, mut l) = filled();
    let before = (l.size(), l.root());
    let block: Vec<sigil_ledger::entry::Encoded> =
        vec![call(100, 1, "kv"), call(101, 2, "kv")].into_iter().map(sigil_ledger::entry::Encoded::new).collect();
    assert_eq!(l.root_after(&block).0, before.0 + 2);
    let predicted = l.root_after(&block);
    l.aux_write(vec![(b"u/1".to_vec(), b"undecided".to_vec())], vec![]).unwrap();
    let (size, root) =
        l.append_block_with(&block, vec![(b"b/1".to_vec(), b"block".to_vec())], vec![b"u/1".to_vec()], None).unwrap();
    assert_eq!((size, root), predicted, "root_after predicts the appended root");
    assert_eq!(l.aux_get(b"b/1").unwrap().as_deref(), Some(&b"block"[..]));
    assert_eq!(l.aux_get(b"u/1").unwrap(), None, "deleted in the block's write");
    // Adapter keys never collide with the ledger's own (they are under their own prefix).
    assert!(kv.get(b"b/1").unwrap().is_none() && kv.get(b"xb/1").unwrap().is_some());
    let page = l.aux_scan(b"b/", None, 10).unwrap();
    assert_eq!(page, vec![(b"b/1".to_vec(), b"block".to_vec())]);
    // Reopened: the block and its pair are both there.
    let l2 = Ledger::open(Box::new(kv.clone())).unwrap();
    assert_eq!((l2.size(), l2.root()), (size, root));
    assert_eq!(l2.aux_get(b"b/1").unwrap().as_deref(), Some(&b"block"[..]));
    // A refused block writes none of its pairs.
    let mut l3 = Ledger::open(Box::new(kv.clone())).unwrap();
    let g = [sigil_ledger::entry::Encoded::new(genesis())];
    assert!(l3.append_block_with(&g, vec![(b"b/2".to_vec(), vec![1])], vec![], None).is_err());
    assert_eq!(l3.aux_get(b"b/2").unwrap(), None);
}

#[test]
fn a_checkpoint_in_the_block_s_write_must_describe_the_ledger_after_it() {
    let (kv, mut l) = filled();
    let block: Vec<sigil_ledger::entry::Encoded> =
        vec![call(200, 1, "kv")].into_iter().map(sigil_ledger::entry::Encoded::new).collect();
    let (size, root) = l.root_after(&block);
    let set = l.validators_after(&block).unwrap();
    let cp = sigil_ledger::checkpoint::Checkpoint { origin: l.pod().to_string(), size, root, validators: set.digest() };
    let sign = |cp: &sigil_ledger::checkpoint::Checkpoint, n: u8| {
        let lines: Vec<String> = (0..n).map(|i| cp.sign(&format!("node-{i}"), &key(i))).collect();
        sigil_ledger::checkpoint::SignedCheckpoint::from_lines(cp.clone(), &lines).unwrap()
    };
    let before = (l.size(), l.root());
    // Another root, or too few signatures: the whole block is refused and nothing is written.
    let wrong = sigil_ledger::checkpoint::Checkpoint { root: Hash::digest(b"x"), ..cp.clone() };
    assert!(l.append_block_with(&block, vec![], vec![], Some(&sign(&wrong, 4))).is_err());
    assert!(l.append_block_with(&block, vec![], vec![], Some(&sign(&cp, 1))).is_err());
    assert_eq!((l.size(), l.root()), before);
    let reopened = Ledger::open(Box::new(kv.clone())).unwrap();
    assert_eq!((reopened.size(), reopened.root()), before);
    // The right one is stored with the block.
    l.append_block_with(&block, vec![], vec![], Some(&sign(&cp, 4))).unwrap();
    assert_eq!(l.latest_checkpoint().unwrap().unwrap().checkpoint, cp);
}
