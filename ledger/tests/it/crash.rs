//! Crash safety on RocksDB: a writer process is killed with SIGKILL at random points, many times; after each
//! kill the ledger reopens with every acknowledged block intact, the tree matching its root, and nothing
//! half-written.
#![cfg(feature = "rocksdb")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::Validator;
use sigil_ledger::entry::{Genesis, Invocation, Member};
use sigil_ledger::store::{Ledger, RocksKv};
use sigil_ledger::{Entry, Hash};

const BLOCK: u64 = 7;
const DIR_ENV: &str = "SIGIL_CRASH_WRITER_DIR";

fn genesis() -> Entry {
    Entry::Genesis(Genesis {
        pod: "pod.crash".into(),
        jurisdiction: "EU".into(),
        created_at: 0,
        validators: (0..4u8).map(|i| Validator { name: format!("node-{i}"), public_key: vec![i + 1; 32] }).collect(),
        evidence: vec![],
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(vec![9; 32]) }],
        threshold: 1,
        policy: String::new(),
    })
}

fn call(n: u64) -> Entry {
    let h = Hash::digest(&n.to_le_bytes());
    Entry::Invocation(Invocation {
        request_hash: h,
        caller: ByteBuf::from(vec![(n % 5) as u8; 32]),
        applet: "kv".into(),
        method: "put".into(),
        code_digest: h,
        input_hash: h,
        output_hash: h,
        write_set_hash: h,
        executor: "node-0".into(),
        executor_attestation: 0,
        policy: None,
        outcome: "ok".into(),
        fuel_used: n,
        at_ms: n,
        delegate: None,
    })
}

/// Opens the ledger, or creates it if the store holds none yet (the writer may die before its first block).
fn open(dir: &std::path::Path) -> Ledger {
    match Ledger::open(Box::new(RocksKv::open(dir).unwrap())) {
        Ok(l) => l,
        Err(sigil_ledger::LedgerError::Storage(m)) if m.contains("holds no ledger") => {
            Ledger::create(Box::new(RocksKv::open(dir).unwrap()), &genesis()).unwrap()
        }
        Err(e) => panic!("the ledger does not reopen: {e}"),
    }
}

/// The writer: runs only when re-executed by `sigkill_at_random_points_loses_nothing`.
#[test]
fn crash_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else { return };
    let dir = std::path::PathBuf::from(dir);
    let mut l = open(&dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let start = l.size();
        let entries: Vec<Entry> = (0..BLOCK).map(|i| call(start + i)).collect();
        let (size, root) = l.append_block(&entries).unwrap();
        // Acknowledged only after the synced write returned.
        println!("ACK {size} {}", root.to_hex());
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("sigil-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut acked: Vec<(u64, String)> = Vec::new();
    // A fixed sequence of kill delays (a simple LCG, seeded): reproducible, and spread over a block's write.
    let mut seed: u64 = 0x0051_6711;
    let rounds = 25;
    for round in 0..rounds {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(20 + (seed >> 33) % 180);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash::crash_writer", "--nocapture", "--test-threads", "1"])
            .env(DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ACK ").map(|r| r.to_string()))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let (size, root) = line.split_once(' ').unwrap();
            acked.push((size.parse().unwrap(), root.to_string()));
        }
        // Reopen: every acknowledged block is there, with the root acknowledged at its size.
        let l = open(&dir);
        let size = l.size();
        assert_eq!((size - 1) % BLOCK, 0, "round {round}: size {size} is not a block boundary: a half-written block");
        if let Some((last, _)) = acked.last() {
            assert!(size >= *last, "round {round}: acknowledged size {last} lost (have {size})");
        }
        for (s, root) in acked.iter().rev().take(3) {
            assert_eq!(&l.checkpoint_at(*s).unwrap().root.to_hex(), root, "round {round}: root at size {s} changed");
        }
        l.verify_integrity().unwrap();
    }
    assert!(acked.len() > rounds, "the writer acknowledged too few blocks to mean anything: {}", acked.len());
    eprintln!("{} blocks acknowledged over {rounds} kills; final size {}", acked.len(), open(&dir).size());
    std::fs::remove_dir_all(&dir).unwrap();
}
