//! Pods of `sigil node run` processes and the devnet: a node killed with SIGKILL and restarted, the devnet started
//! and resumed, and what `node run` refuses. (Pods in one process are tested in sigil-pod's own tests.)

use std::time::Duration;

use crate::support::*;
use sigil_pod::root_at_height;
use sigil_pod::PodNode;

// The guard serializes pods across test threads; this test's future runs on its own runtime, so holding it
// across awaits blocks no other task.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_catches_up_from_its_store_and_peers_losing_nothing() {
    let _one = one_pod_at_a_time();
    init_logs();
    let dir = tempdir();
    let cfgs = configs(4, dir.path());
    // Node 3 is a `sigil node run` process; the others run in this process and take the entries.
    let config3 = write_config(&cfgs[3]);
    let mut p3 = ProcessNode::spawn(&config3);
    let mut nodes = Vec::new();
    for cfg in cfgs[..3].iter().cloned() {
        nodes.push(PodNode::start(cfg).await.expect("node starts"));
    }
    let mut acked = commit_batch(&nodes, &[0, 1, 2], 0, 60).await;
    let h1 = nodes[0].tip().borrow().height;
    p3.wait_height(h1, Duration::from_secs(60)).await;

    // SIGKILL at an arbitrary point; the three others keep committing (3 of 4 is a quorum).
    p3.kill();
    acked.extend(commit_batch(&nodes, &[0, 1, 2], 60, 90).await);
    let h2 = nodes[0].tip().borrow().height;
    assert!(h2 > h1, "commits went on without node 3");

    // Restarted on the same store: it syncs the blocks it missed from its peers and takes part again.
    let p3b = ProcessNode::spawn(&config3);
    p3b.wait_height(h2, Duration::from_secs(90)).await;
    acked.extend(commit_batch(&nodes, &[0, 1, 2], 150, 30).await);
    let h3 = nodes.iter().map(|n| n.tip().borrow().height).max().unwrap();
    p3b.wait_height(h3, Duration::from_secs(60)).await;
    let mut tip0 = nodes[0].tip();
    tokio::time::timeout(Duration::from_secs(30), tip0.wait_for(|t| t.height >= h3)).await.unwrap().unwrap();
    let mut p3b = p3b;
    assert!(p3b.terminate().success(), "node 3 stops cleanly on SIGTERM");

    // Its store: every height's root equals the others', every acknowledged entry is there.
    let l3 = sigil_ledger::store::Ledger::open(Box::new(
        sigil_ledger::store::RocksKv::open(&cfgs[3].data_dir.join("ledger")).unwrap(),
    ))
    .unwrap();
    l3.verify_integrity().unwrap();
    for h in 1..=h3 {
        let mine = root_at_height(&l3, h).unwrap();
        let theirs = root_at_height(&nodes[0].ledger().lock().unwrap(), h).unwrap();
        assert!(mine.is_some() && mine == theirs, "height {h}: {mine:?} vs {theirs:?}");
    }
    for (index, (e, _)) in &acked {
        assert_eq!(l3.entry_bytes(*index).unwrap(), e.encode(), "acknowledged entry {index}");
    }
    assert_eq!(acked.len(), 180);
    for n in nodes {
        n.stop().await;
    }
}

#[test]
fn devnet_starts_a_pod_commits_and_resumes_it() {
    let _one = one_pod_at_a_time();
    let dir = tempdir();
    let data = dir.path().join("pod");
    let devnet = |nodes: &str, secs: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["devnet", "--nodes", nodes, "--for", secs, "--data"])
            .arg(&data)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let heights = |out: &std::process::Output| -> Vec<u64> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("height")?.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let first = devnet("2", "2");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("2 nodes committing"));
    let h1 = *heights(&first).last().expect("progress lines");
    assert!(h1 >= 1, "the pod committed");
    // devnet.json says where everything is, and the applets are deployed.
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    assert_eq!(info["api"].as_array().unwrap().len(), 2);
    assert!(info["api"][0].as_str().unwrap().starts_with("https://127.0.0.1:"));
    assert_eq!(info["applets"], serde_json::json!(["notes", "hash", "fetch", "tools"]));
    assert!(std::path::Path::new(info["genesis"].as_str().unwrap()).exists());
    let caller_key = std::fs::read(info["keys"]["caller"].as_str().unwrap()).unwrap();
    assert!(std::path::Path::new(info["keys"]["member"].as_str().unwrap()).exists());
    assert!(String::from_utf8_lossy(&first.stderr).contains("deployed notes"));
    // Resumed from its directory: the same pod, further along.
    let again = devnet("2", "2");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("resuming the pod"));
    assert!(heights(&again).first().is_some_and(|h| *h >= h1), "resumed at {:?}, was at {h1}", heights(&again));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("deployed"), "deployed applets are not deployed again");
    let info2: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    assert_eq!(info2["api"], info["api"], "the same ports");
    assert_eq!(std::fs::read(info["keys"]["caller"].as_str().unwrap()).unwrap(), caller_key, "the same caller key");
    // Another size on the same directory is refused, and changes nothing.
    let other = devnet("3", "1");
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("holds a pod of 2 nodes, not 3"));
    let l = sigil_ledger::store::Ledger::open(Box::new(
        sigil_ledger::store::RocksKv::open(&data.join("node-0").join("ledger")).unwrap(),
    ))
    .unwrap();
    assert_eq!(l.pod(), "devnet");
    assert!(root_at_height(&l, h1).unwrap().is_some());
}

#[test]
fn node_run_refuses_a_bad_configuration_with_a_clear_error_and_exit_2() {
    let dir = tempdir();
    let cfgs = configs(1, dir.path());
    let good = write_config(&cfgs[0]);
    let text = std::fs::read_to_string(&good).unwrap();
    let run = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(["node", "run", "--config"])
            .arg(config)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let case = |name: &str, body: &str, says: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let out = run(&p);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err:?} does not say {says:?}");
    };
    let out = run(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
    case("unknown.toml", &format!("{text}colour = \"blue\"\n"), "unknown field");
    // Real TEE evidence asked for on a machine without a TEE (these machines have none).
    let snp = format!("{text}\n[api]\nlisten = \"127.0.0.1:0\"\n\n[tee]\nbackend = \"snp\"\n");
    if sigil_attest::collect::detect().is_none() {
        case("snp.toml", &snp, "no TEE found");
    }
    case("tee.toml", &snp.replace("\"snp\"", "\"sgx\""), "use sim, snp, tdx, azure, vtpm or auto");
    case("nokey.toml", &text.replace("identity = \"node-0.key\"", "identity = \"absent.key\""), "absent.key");
    std::fs::write(dir.path().join("short.key"), "abcd").unwrap();
    case(
        "short.toml",
        &text.replace("identity = \"node-0.key\"", "identity = \"short.key\""),
        "an identity seed is 32",
    );
    std::fs::write(dir.path().join("entry.cbor"), invocation(0, 1).0.encode()).unwrap();
    case("notgenesis.toml", &text.replace("genesis = \"genesis.cbor\"", "genesis = \"entry.cbor\""), "not a genesis");
    assert!(!cfgs[0].data_dir.exists(), "nothing was created");

    // A genesis whose validators' evidence its own policy refuses (the default policy refuses sim evidence).
    let mut refusing = genesis(1);
    if let sigil_ledger::Entry::Genesis(g) = &mut refusing {
        g.policy = String::new();
    }
    std::fs::write(dir.path().join("refusing.cbor"), refusing.encode()).unwrap();
    let p = dir.path().join("refusing.toml");
    std::fs::write(&p, text.replace("genesis = \"genesis.cbor\"", "genesis = \"refusing.cbor\"")).unwrap();
    let out = run(&p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("genesis validator node-0: sim evidence refused"), "{err}");
    assert!(!cfgs[0].data_dir.exists(), "nothing was created");
}
