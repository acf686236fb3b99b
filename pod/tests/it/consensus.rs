//! A pod of nodes on 127.0.0.1 running Malachite consensus over libp2p, committing into RocksDB ledgers, all in
//! this process: commits, partitions, Byzantine proposers and double signers, admission and removal. (Pods of
//! `sigil node run` processes are tested in the node's tests.)

use std::time::Duration;

use sigil_pod::local::{name, seed};
#[cfg(feature = "byzantine")]
use sigil_pod::misbehaviour;
use sigil_pod::testing::{self, *};
use sigil_pod::{decided_round, local, Attachments, Fault, PodNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_commit_a_stream_of_entries_with_identical_ledgers() {
    init_logs();
    let dir = TempDir::new();
    let nodes = start_all(configs(4, dir.path())).await;
    deploy_probe(&nodes).await; // entry 1
                                // Entries go to every node: each executes its own requests and proposes them in its turn.
    let mut waiting = Vec::new();
    for n in 0..200u64 {
        let i = (n % 4) as usize;
        waiting.push(submit(&nodes[i], invocation(i, n)).expect("queued"));
    }
    let mut indexes = Vec::new();
    for rx in waiting {
        let c = tokio::time::timeout(Duration::from_secs(90), rx).await.expect("committed in time").expect("committed");
        indexes.push(c.index);
    }
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 200, "every entry has its own index");
    assert!(
        indexes.iter().all(|i| (2..=201).contains(i)),
        "entries follow the genesis and the deployment: {indexes:?}"
    );

    // Every node reaches the same tip; every height has the same root everywhere.
    agree(&nodes).await;
    for (i, n) in nodes.iter().enumerate() {
        let l = n.ledger();
        let l = l.lock().unwrap();
        l.verify_integrity().unwrap();
        assert!(l.size() >= 202);
        // The precommits' extensions are the validators' checkpoint signatures: a quorum-signed checkpoint per
        // block, from which a receipt verifies with nothing but the genesis.
        let cp = l.latest_checkpoint().unwrap().expect("a cosigned checkpoint");
        assert_eq!(cp.checkpoint.size, l.size());
        assert!(cp.signatures.len() >= 3, "{} signatures", cp.signatures.len());
        let receipt = l
            .receipt(
                indexes[17],
                &cp,
                &name(i),
                &ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed(i)).unwrap(),
            )
            .unwrap();
        let report = sigil_ledger::receipt::Receipt::decode(&receipt).unwrap().verify(&genesis(4).encode());
        assert!(report.valid, "{report:?}");
    }
    for n in nodes {
        n.stop().await;
    }
}

/// The genesis of `test-pod` with 4 validators, created at `created_at`, whose evidence lapses after `not_after`
/// (as a VLEK's does after a year, TDX collateral's after a month).
fn genesis_lapsing(created_at: u64, not_after: u64) -> sigil_ledger::Entry {
    let sigil_ledger::Entry::Genesis(mut g) = genesis(4) else { unreachable!() };
    g.created_at = created_at;
    g.evidence = (0..4)
        .map(|i| {
            let key = sigil_pod::public_key(&seed(i));
            let ev = sigil_pod::admission::sim_evidence_with(POD, &key, local::MEASUREMENT, &[], Some(not_after));
            serde_bytes::ByteBuf::from(ev)
        })
        .collect();
    sigil_ledger::Entry::Genesis(g)
}

/// The restart bomb (#16): genesis evidence is judged at the genesis' own time, not at the clock of a node that
/// starts later. A pod whose genesis evidence lapsed years before today's clock starts, commits, and a node of it
/// restarts and goes on. Evidence that had lapsed when the genesis was made is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_whose_genesis_evidence_lapsed_years_ago_starts_commits_and_restarts() {
    init_logs();
    let created_at = 1_700_000_000; // 2023-11-14
    let lapsed = genesis_lapsing(created_at, created_at + 30 * 86_400);
    let now = sigil_primitives::clock::now_secs();
    assert!(now > created_at + 365 * 86_400, "this test's clock is at least a year past the evidence");
    sigil_pod::check_genesis(&lapsed).expect("judged at the genesis' time");
    let stale = genesis_lapsing(created_at, created_at - 1);
    let err = sigil_pod::check_genesis(&stale).unwrap_err().to_string();
    assert!(err.contains("sim.validity") || err.contains("expired at"), "{err}");

    let dir = TempDir::new();
    let cfgs: Vec<_> =
        configs(4, dir.path()).into_iter().map(|c| sigil_pod::PodConfig { genesis: lapsed.clone(), ..c }).collect();
    // Each node starts from a genesis whose evidence lapsed since.
    let mut nodes = start_all(cfgs.clone()).await;
    commit_batch(&nodes, &[0, 1, 2, 3], 0, 8).await;
    let last = nodes.pop().expect("4 nodes");
    nodes.push(restart(last, cfgs[3].clone()).await);
    commit_batch(&nodes, &[0, 1, 2, 3], 8, 8).await;
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}

/// Attestation over time (#16): a validator with a TEE backend re-attests once its latest attestation is older
/// than the pod's `[reattestation] every_s` (here the genesis, made a year before this test's clock). Each
/// `reattested` entry binds a height the pod decided shortly before, and the ledger root after it, in its
/// evidence; the validators committed it only after checking that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_re_attest_on_the_pod_s_schedule_bound_to_a_recent_block() {
    init_logs();
    let sigil_ledger::Entry::Genesis(mut g) = genesis(4) else { unreachable!() };
    g.policy.push_str("\n[reattestation]\nevery_s = 60\n");
    let g = sigil_ledger::Entry::Genesis(g);
    let dir = TempDir::new();
    let cfgs: Vec<_> = configs(4, dir.path())
        .into_iter()
        .map(|c| sigil_pod::PodConfig { genesis: g.clone(), attester: local::sim_attester(POD), ..c })
        .collect();
    let nodes = start_all(cfgs).await;
    let reattested = |n: &PodNode| {
        let rules = n.rules()?;
        let all: Vec<u64> = (0..4).map(|i| rules.attestations.get(&name(i)).copied().unwrap_or(0)).collect();
        all.iter().all(|i| *i > 0).then_some(all)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let indexes = loop {
        if let Some(all) = reattested(&nodes[0]) {
            break all;
        }
        assert!(tokio::time::Instant::now() < deadline, "every validator re-attests within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ledger = nodes[0].ledger();
    let policy = sigil_pod::admission::parse_policy(&local::policy()).unwrap();
    for (i, index) in indexes.iter().enumerate() {
        let l = ledger.lock().unwrap();
        let sigil_ledger::Entry::Reattested(r) = l.entry(*index).unwrap() else { panic!("entry {index}") };
        assert_eq!(r.node, name(i));
        let anchor = r.anchor.expect("a re-attestation binds an anchor");
        let (_, root) = sigil_pod::root_at_height(&l, anchor.height).unwrap().expect("a decided height");
        assert_eq!(root, anchor.root, "the anchor is this ledger's");
        let key = sigil_pod::public_key(&seed(i));
        let now = sigil_primitives::clock::now_secs();
        sigil_pod::admission::verify(&policy, POD, &key, &anchor.nonce(), &r.evidence, now)
            .expect("the evidence binds the node's key, the pod and the anchor");
        let unbound = sigil_pod::admission::verify(&policy, POD, &key, &[], &r.evidence, now);
        assert!(unbound.is_err(), "the evidence binds the anchor, not an empty nonce");
        let result = sigil_attest::AttestationResult::from_cbor(&r.attestation_result);
        assert!(result.is_ok_and(|r| r.accepted()), "the node's own verdict travels with it");
    }
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pod_stops_committing_empty_blocks_and_an_entry_at_any_node_wakes_it() {
    init_logs();
    let dir = TempDir::new();
    // An interval far past what the test waits for a commit: only a wake can start a height in time.
    let interval = Duration::from_secs(60);
    let nodes =
        start_all(configs(4, dir.path()).into_iter().map(|c| sigil_pod::PodConfig { idle_interval: interval, ..c }))
            .await;
    deploy_probe(&nodes).await;
    let height = |n: &PodNode| n.tip().borrow().height;
    for n in 0..8u64 {
        // The block after the last entry is empty, and then the pod waits: its height holds still.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let h0 = height(&nodes[0]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let h1 = height(&nodes[0]);
        assert!(h1 <= h0 + 1, "an idle pod went from height {h0} to {h1} in 3 s");
        // An entry at each node in turn (most of them not the next proposer) commits long before the interval
        // ends: its node starts the height and wakes the others.
        let k = (n % 4) as usize;
        let t = std::time::Instant::now();
        let rx = submit(&nodes[k], invocation(k, n)).expect("queued");
        let c = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .unwrap_or_else(|_| panic!("entry {n} at node {k} not committed within 20 s of an idle pod"))
            .expect("committed");
        assert!(c.height > h1);
        eprintln!("entry {n} at node {k}: committed at height {} (idle at {h1}) in {:?}", c.height, t.elapsed());
    }
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_proposer_s_forged_replayed_and_stale_entries_are_refused_and_the_pod_goes_on() {
    init_logs();
    let dir = TempDir::new();
    let mut cfgs = configs(4, dir.path());
    cfgs[3].fault = Fault::UncheckedProposals; // node 3 proposes its mempool unchecked
    let nodes = start_all(cfgs).await;
    let first = commit_batch(&nodes[..3], &[0, 1, 2], 0, 30).await;

    let sign = |by: usize, e: &sigil_ledger::Entry| {
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed(by)).unwrap();
        key.sign(&sigil_pod::receipt_bytes(&e.leaf_hash())).as_ref().to_vec()
    };
    // A receipt that names node 0 as its executor, signed by node 3.
    let (forged, forged_a) = invocation(0, 1000);
    // A replay: node 3 executes a request that is already committed (node 0 ran it) once more, and signs that.
    let (mut replay, replay_a) = first[0].1.clone();
    if let sigil_ledger::Entry::Invocation(i) = &mut replay {
        i.executor = name(3);
    }
    // A genuine receipt of node 3, ten minutes old.
    let (mut stale, stale_a) = invocation(3, 1001);
    if let sigil_ledger::Entry::Invocation(i) = &mut stale {
        i.at_ms -= 600_000;
    }
    // An approved admission of a node whose evidence is forged (sim evidence with a byte flipped after the sim
    // root signed it).
    let mut forged_evidence = local::evidence(POD, 5);
    let at = forged_evidence.len() / 2;
    forged_evidence[at] ^= 1;
    let forged_admission = approved(admission(5, forged_evidence));
    let with = |a: &Attachments, signature: Vec<u8>| Attachments { signature, ..a.clone() };
    let bad = [
        (forged.clone(), with(&forged_a, sign(3, &forged))),
        (replay.clone(), with(&replay_a, sign(3, &replay))),
        (stale.clone(), with(&stale_a, sign(3, &stale))),
        (forged_admission, Attachments::default()),
    ];
    let mut pending = Vec::new();
    for (e, a) in bad {
        pending.push(nodes[3].submit_signed(e, a).expect("node 3 queues anything"));
    }

    // The honest three keep committing through node 3's turns (its blocks are refused, the round moves on).
    let h0 = nodes[0].tip().borrow().height;
    commit_batch(&nodes[..3], &[0, 1, 2], 100, 120).await;
    let mut tip = nodes[0].tip();
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height >= h0 + 9))
        .await
        .expect("liveness")
        .unwrap();

    // Node 3 was the first proposer of at least two of those heights: its blocks were refused, and those heights
    // were decided in a later round. None of its bad entries ever committed.
    let later_rounds = (h0 + 1..=h0 + 9)
        .filter(|h| decided_round(&nodes[0].ledger().lock().unwrap(), *h).unwrap().is_some_and(|r| r.as_i64() > 0))
        .count();
    assert!(later_rounds >= 2, "{later_rounds} heights decided after round 0");
    for (k, rx) in pending.iter_mut().enumerate() {
        let r = rx.try_recv();
        assert!(matches!(r, Err(tokio::sync::oneshot::error::TryRecvError::Empty)), "bad entry {k}: {r:?}");
    }
    for n in &nodes {
        let l = n.ledger();
        let l = l.lock().unwrap();
        let request = |e: &sigil_ledger::Entry| match e {
            sigil_ledger::Entry::Invocation(i) => i.request_hash,
            _ => unreachable!(),
        };
        assert_eq!(l.by_request(&request(&forged)).unwrap(), None);
        assert_eq!(l.by_request(&request(&stale)).unwrap(), None);
        assert_eq!(l.by_request(&request(&replay)).unwrap(), Some(first[0].0), "the request is in the ledger once");
        assert_eq!(l.validators_at(l.size()).members.len(), 4, "the forged admission never committed");
    }
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}

#[cfg(feature = "byzantine")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_signing_node_is_recorded_as_misbehaving_and_the_pod_keeps_committing() {
    init_logs();
    let dir = TempDir::new();
    let mut cfgs = configs(4, dir.path());
    cfgs[3].fault = Fault::Equivocate; // every vote and proposal of node 3 is followed by a conflicting one
    let nodes = start_all(cfgs).await;
    let h0 = nodes[0].tip().borrow().height;
    commit_batch(&nodes[..3], &[0, 1, 2], 0, 60).await;
    let mut tip = nodes[0].tip();
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height >= h0 + 8))
        .await
        .expect("liveness")
        .unwrap();
    // The honest nodes agree at every height, and recorded node 3's double votes.
    agree(&nodes[..3]).await;
    let recorded: Vec<String> = nodes[..3]
        .iter()
        .flat_map(|n| misbehaviour(&n.ledger().lock().unwrap()).unwrap())
        .flat_map(|(_, lines)| lines)
        .collect();
    assert!(recorded.iter().any(|l| l.starts_with("node-3 double-voted")), "{recorded:?}");
    assert!(recorded.iter().all(|l| l.starts_with("node-3 ")), "only node 3 misbehaved: {recorded:?}");
    for n in nodes {
        n.stop().await;
    }
}

fn approved(e: sigil_ledger::Entry) -> sigil_ledger::Entry {
    testing::approved(POD, e)
}

fn admission(i: usize, evidence: Vec<u8>) -> sigil_ledger::Entry {
    sigil_ledger::Entry::NodeAdmitted(sigil_ledger::entry::NodeAdmitted {
        validator: sigil_ledger::checkpoint::Validator {
            name: name(i),
            public_key: sigil_pod::public_key(&seed(i)).to_vec(),
        },
        evidence: serde_bytes::ByteBuf::from(evidence),
        attestation_result: serde_bytes::ByteBuf::new(),
        prior: 0,
        approvals: vec![],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_node_joins_by_attestation_and_approval_and_a_node_is_removed() {
    init_logs();
    let dir = TempDir::new();
    // Nodes 0-3 are the genesis validators; node 4 starts from the same genesis, follows, and asks to join.
    let mut cfgs = configs(5, dir.path());
    for c in &mut cfgs {
        c.genesis = genesis(4);
    }
    let cfg3 = cfgs[3].clone();
    let mut nodes = start_all(cfgs).await;
    commit_batch(&nodes[..4], &[0, 1, 2, 3], 0, 20).await;
    let h = nodes[0].tip().borrow().height;
    let mut tip4 = nodes[4].tip();
    tokio::time::timeout(Duration::from_secs(30), tip4.wait_for(|t| t.height >= h))
        .await
        .expect("node 4 follows")
        .unwrap();

    // Refused, each with its reason: no evidence at all, a measurement the policy does not allow, evidence that
    // binds another key, and no member approval.
    let refused = |e: sigil_ledger::Entry, why: &str| {
        let err = nodes[0].submit(e).expect_err("refused");
        assert!(err.to_string().contains(why), "{err:?} does not say {why:?}");
    };
    refused(approved(admission(4, b"not evidence".to_vec())), "unreadable evidence");
    let wrong = sigil_pod::admission::sim_evidence(POD, &sigil_pod::public_key(&seed(4)), [0x66; 48]);
    refused(approved(admission(4, wrong)), "measurement");
    refused(approved(admission(4, local::evidence(POD, 5))), "report_data");
    refused(approved(admission(4, local::evidence("other-pod", 4))), "report_data");
    refused(admission(4, local::evidence(POD, 4)), "member approvals");

    // Attested and approved: admitted.
    let admitted = nodes[0].submit(approved(admission(4, local::evidence(POD, 4)))).unwrap();
    let index4 = tokio::time::timeout(Duration::from_secs(60), admitted).await.unwrap().unwrap().index;
    tokio::time::timeout(Duration::from_secs(30), tip4.wait_for(|t| t.size > index4))
        .await
        .expect("node 4 commits its admission")
        .unwrap();

    // Node 4 votes from the next height: with node 3 stopped, 0, 1, 2 and 4 are 4 of 5, a quorum only with it.
    let node3 = nodes.remove(3);
    node3.stop().await;
    let mut waiting = Vec::new();
    for n in 200..240u64 {
        let k = (n % 4) as usize; // nodes[3] is node 4 now
        let executor = if k == 3 { 4 } else { k };
        let mut e = invocation(executor, n);
        if let sigil_ledger::Entry::Invocation(i) = &mut e.0 {
            i.executor_attestation = if executor == 4 { index4 } else { 0 };
        }
        waiting.push(submit(&nodes[k], e).expect("queued"));
    }
    for rx in waiting {
        tokio::time::timeout(Duration::from_secs(90), rx)
            .await
            .expect("committed with node 4's votes")
            .expect("committed");
    }

    // Node 3 is removed: the set is 0, 1, 2, 4 (a quorum of 3).
    let removal = sigil_ledger::Entry::NodeRemoved(sigil_ledger::entry::NodeRemoved {
        name: name(3),
        reason: "decommissioned".into(),
        prior: 0,
        approvals: vec![],
    });
    // Node 3 comes back first and catches up: connected, it would go on receiving blocks after its removal.
    let node3 = PodNode::start(cfg3).await.expect("node 3 starts");
    let h = nodes[0].tip().borrow().height;
    let mut tip3 = node3.tip();
    tokio::time::timeout(Duration::from_secs(60), tip3.wait_for(|t| t.height >= h))
        .await
        .expect("node 3 catches up")
        .unwrap();
    let removed = nodes[0].submit(approved(removal)).unwrap();
    tokio::time::timeout(Duration::from_secs(60), removed).await.unwrap().unwrap();
    // Its peers drop it as the removal commits: it falls behind while the pod goes on. (A redial can still be
    // answered a block before libp2p identify refuses it: docs/security.md.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dropped = node3.tip().borrow().height;
    let last = commit_batch(&nodes[..3], &[0, 1, 2], 300, 12).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // time enough to receive many blocks, were it served
    let pod_height = nodes[0].tip().borrow().height;
    assert!(pod_height >= dropped + 5, "the pod went on: {dropped} -> {pod_height}");
    let node3_height = node3.tip().borrow().height;
    assert!(
        node3_height <= dropped + 2,
        "the removed node is not served: {dropped} -> {node3_height} (pod {pod_height})"
    );
    node3.stop().await;

    // Checkpoints after both changes are cosigned by the new set and verify from the genesis alone.
    let mut tip = nodes[0].tip();
    let size = last.iter().map(|(i, _)| *i).max().unwrap() + 1;
    tokio::time::timeout(Duration::from_secs(30), tip.wait_for(|t| t.size >= size)).await.unwrap().unwrap();
    let receipt = {
        let l = nodes[0].ledger();
        let l = l.lock().unwrap();
        assert_eq!(
            l.validators_at(l.size()).members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            ["node-0", "node-1", "node-2", "node-4"]
        );
        let cp = l.latest_checkpoint().unwrap().expect("a checkpoint");
        assert!(cp.checkpoint.size >= size, "a checkpoint after the changes");
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed(0)).unwrap();
        l.receipt(last[0].0, &cp, &name(0), &key).unwrap()
    };
    // With the offline verifier (what `sigil receipt verify RECEIPT --genesis FILE` runs), from the genesis alone.
    let report = sigil_ledger::receipt::Receipt::decode(&receipt).unwrap().verify(&genesis(4).encode());
    assert!(report.valid, "{report:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_2_partition_commits_nothing_and_heals_without_a_fork() {
    init_logs();
    let dir = TempDir::new();
    let (cfgs, links) = configs_with_links(4, dir.path()).await;
    let nodes = start_all(cfgs).await;
    commit_batch(&nodes, &[0, 1, 2, 3], 0, 40).await;

    // Cut every link between {0, 1} and {2, 3}.
    let across = |f: &dyn Fn(&Link)| {
        for (i, j) in [(0, 2), (0, 3), (1, 2), (1, 3)] {
            f(links[i][j].as_ref().unwrap());
            f(links[j][i].as_ref().unwrap());
        }
    };
    across(&|l| l.cut());
    tokio::time::sleep(Duration::from_millis(500)).await; // what was in flight settles
    let before: Vec<u64> = nodes.iter().map(|n| n.tip().borrow().height).collect();
    let mut waiting = Vec::new();
    for n in 40..80u64 {
        let k = (n % 4) as usize;
        waiting.push(submit(&nodes[k], invocation(k, n)).expect("queued"));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during: Vec<u64> = nodes.iter().map(|n| n.tip().borrow().height).collect();
    assert_eq!(before, during, "neither half (2 of 4) has a quorum: no commits");

    // Healed: the entries queued during the partition commit, and every height agrees everywhere.
    across(&|l| l.restore());
    for rx in waiting {
        tokio::time::timeout(Duration::from_secs(120), rx).await.expect("committed after healing").expect("committed");
    }
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}

/// An invocation of `probe` by node `executor`, request `n`, naming its attestation entry `att` and the policy
/// entry `policy`.
fn invocation_under(executor: usize, n: u64, att: u64, policy: u64) -> (sigil_ledger::Entry, Attachments) {
    let now = sigil_primitives::clock::now_ms();
    let (mut e, a) = testing::probe_invocation(POD, &name(executor), att, &CALLER_SEED, n, now);
    if let sigil_ledger::Entry::Invocation(i) = &mut e {
        i.policy = Some(policy);
    }
    (e, a)
}

/// A sim policy that accepts these measurements, with re-attestation off and the shortest grace.
fn sim_policy(measurements: &[[u8; 48]]) -> String {
    let list: Vec<String> = measurements.iter().map(|m| format!("\"{}\"", hex::encode(m))).collect();
    format!("[sim]\nallow = true\nmeasurements = [{}]\n\n[reattestation]\nevery_s = 0\ngrace_s = 60\n", list.join(", "))
}

/// Waits until `f` holds of node `n`'s rules, or panics with `what` after `secs`.
async fn until_rules(n: &PodNode, secs: u64, what: &str, f: impl Fn(&sigil_pod::Rules) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !n.rules().is_some_and(|r| f(&r)) {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Attestation over time (#16): the members tighten the pod's policy so that node 3's measurement is no longer
/// accepted. Once the pod's grace after its start is over, the other validators suspend it (a `node_suspended`
/// entry, cause `refused`): it loses its vote and its invocations are refused, while the pod goes on with three
/// validators and node 3 keeps following the ledger. The members relax the policy again: node 3's attester sees
/// its fresh evidence accepted, offers a `node_reinstated` entry bound to its tip, and the pod commits it; node 3
/// votes and executes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_the_policy_refuses_is_suspended_the_pod_goes_on_and_it_returns_when_the_policy_accepts_it() {
    init_logs();
    const OTHER: [u8; 48] = [0x3c; 48];
    let key3 = sigil_pod::public_key(&seed(3));
    let sigil_ledger::Entry::Genesis(mut g) = genesis(4) else { unreachable!() };
    g.policy = sim_policy(&[local::MEASUREMENT, OTHER]);
    g.evidence[3] = serde_bytes::ByteBuf::from(sigil_pod::admission::sim_evidence(POD, &key3, OTHER));
    let g = sigil_ledger::Entry::Genesis(g);
    let dir = TempDir::new();
    let cfgs: Vec<_> = configs(4, dir.path())
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let attester = match i {
                3 => {
                    sigil_pod::reattest::Attester::new(|rd| Ok(sigil_pod::admission::sim_bundle(POD, OTHER, *rd, None)))
                }
                _ => local::sim_attester(POD),
            };
            sigil_pod::PodConfig { genesis: g.clone(), attester, ..c }
        })
        .collect();
    let mut nodes = start_all(cfgs.clone()).await;
    commit_batch(&nodes, &[0, 1, 2, 3], 0, 8).await;

    // Tightened: only the other nodes' measurement.
    let change = |policy: String, prior: u64| {
        approved(sigil_ledger::Entry::PolicyChanged(sigil_ledger::entry::PolicyChanged {
            policy,
            prior,
            approvals: vec![],
        }))
    };
    let rx = nodes[0].submit(change(sim_policy(&[local::MEASUREMENT]), 0)).unwrap();
    let tight = tokio::time::timeout(Duration::from_secs(60), rx).await.unwrap().unwrap().index;
    until_rules(&nodes[0], 120, "node 3 is suspended", |r| r.suspended.contains_key(&name(3))).await;
    let rules = nodes[0].rules().unwrap();
    assert_eq!(rules.set.validators.len(), 3, "it lost its vote");
    let suspended_at = rules.suspended[&name(3)].height;
    {
        let l = nodes[0].ledger();
        let l = l.lock().unwrap();
        let found = (tight + 1..l.size()).find_map(|i| match l.entry(i).unwrap() {
            sigil_ledger::Entry::NodeSuspended(s) => Some(s),
            _ => None,
        });
        let s = found.expect("a node_suspended entry");
        assert_eq!((s.name.as_str(), s.cause.as_str(), s.attestation), ("node-3", "refused", 0), "{s:?}");
        assert!(s.reason.contains(&format!("the pod's policy (entry {tight}) refuses")), "{}", s.reason);
    }
    // Its invocations are refused (by itself too, once it has committed its suspension); the pod goes on without
    // it, and it keeps following the ledger.
    until_rules(&nodes[3], 30, "node 3 commits its suspension", |r| r.suspended.contains_key(&name(3))).await;
    let err = submit(&nodes[3], invocation_under(3, 100, 0, tight)).expect_err("refused");
    assert!(err.contains("not a validator"), "{err}");
    let mut waiting = Vec::new();
    for n in 101..113u64 {
        let k = (n % 3) as usize;
        waiting.push(submit(&nodes[k], invocation_under(k, n, 0, tight)).expect("queued"));
    }
    for rx in waiting {
        tokio::time::timeout(Duration::from_secs(60), rx).await.expect("committed by three").expect("committed");
    }
    let h = nodes[0].tip().borrow().height;
    let mut tip3 = nodes[3].tip();
    tokio::time::timeout(Duration::from_secs(30), tip3.wait_for(|t| t.height >= h))
        .await
        .expect("the suspended node follows")
        .unwrap();
    assert!(nodes[3].rules().unwrap().suspended.contains_key(&name(3)), "still suspended: its evidence is refused");
    // A validator that restarts now rebuilds from its store what the others hold in memory.
    let node1 = nodes.remove(1);
    nodes.insert(1, restart(node1, cfgs[1].clone()).await);
    agree(&nodes).await;
    let (r0, r1) = (nodes[0].rules().unwrap(), nodes[1].rules().unwrap());
    assert_eq!(r1.suspended, r0.suspended);
    assert_eq!(r1.resumed_at_ms, r0.resumed_at_ms);
    assert_eq!((r1.attestations, r1.attested_at), (r0.attestations, r0.attested_at));

    // Relaxed: node 3 comes back with fresh evidence bound to a block after its suspension.
    let rx = nodes[0].submit(change(sim_policy(&[local::MEASUREMENT, OTHER]), tight)).unwrap();
    let relaxed = tokio::time::timeout(Duration::from_secs(60), rx).await.unwrap().unwrap().index;
    until_rules(&nodes[0], 90, "node 3 is reinstated", |r| r.set.validators.len() == 4).await;
    let rules = nodes[0].rules().unwrap();
    assert!(rules.suspended.is_empty());
    let back = rules.attestations[&name(3)];
    assert!(back > relaxed);
    {
        let l = nodes[0].ledger();
        let l = l.lock().unwrap();
        let sigil_ledger::Entry::NodeReinstated(r) = l.entry(back).unwrap() else { panic!("entry {back}") };
        assert_eq!(r.validator.public_key, key3.to_vec());
        assert!(r.anchor.height >= suspended_at, "bound to a block after its suspension");
        let policy = sigil_pod::admission::parse_policy(&sim_policy(&[local::MEASUREMENT, OTHER])).unwrap();
        let now = sigil_primitives::clock::now_secs();
        sigil_pod::admission::verify(&policy, POD, &key3, &r.anchor.nonce(), &r.evidence, now)
            .expect("its fresh evidence binds its key, the pod and the anchor");
    }
    // It executes again, under its reinstatement, and votes: with node 0 stopped, 1, 2 and 3 are a quorum only
    // with it. (Node 3 itself must have committed its reinstatement first: until then it refuses its own
    // invocation, as any validator would.)
    until_rules(&nodes[3], 30, "node 3 commits its reinstatement", |r| r.set.validators.len() == 4).await;
    let rx = submit(&nodes[3], invocation_under(3, 200, back, relaxed)).expect("queued at node 3");
    tokio::time::timeout(Duration::from_secs(60), rx).await.expect("committed").expect("committed");
    let node0 = nodes.remove(0);
    node0.stop().await;
    let mut waiting = Vec::new();
    for n in 201..209u64 {
        let k = (n % 3) as usize; // nodes 1, 2, 3
        waiting.push(submit(&nodes[k], invocation_under(k + 1, n, if k == 2 { back } else { 0 }, relaxed)).unwrap());
    }
    for rx in waiting {
        tokio::time::timeout(Duration::from_secs(90), rx)
            .await
            .expect("committed with node 3's vote")
            .expect("committed");
    }
    agree(&nodes).await;
    for n in nodes {
        n.stop().await;
    }
}
