//! The API's status codes for what the pod refuses at submit: 403 for approvals that do not satisfy the pod's
//! members, 503 when the node cannot take the entry now (its mempool is full), for deployments and governance
//! alike (`Refused::of`; before the typed `Rejection`, text matching answered some of these 400).

use std::time::Duration;

use serde_bytes::ByteBuf;
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil::service::Deployment;
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_ledger::entry::NodeRemoved;
use sigil_ledger::Entry;
use sigil_pod::{local, testing};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_403_and_a_full_mempool_is_503_for_deployments_and_governance() {
    init_logs();
    let dir = tempdir();
    // Node 0 of a 4-node pod, alone: it takes entries but commits nothing (1 of 4 is no quorum), so what it
    // queues stays queued. Its mempool holds one entry.
    let mut cfg = configs(4, dir.path()).remove(0);
    cfg.mempool_capacity = 1;
    let api = ApiConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        operator_tls: None,
        evidence: local::evidence(POD, 0),
        directory: PodDirectory::default(),
        labels: Default::default(),
        limits: Default::default(),
        public_urls: vec![],
        public_reads: false,
        auditors: vec![],
    };
    let node = RunningNode::start(cfg, api).await.expect("node starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node.service.node.rules().is_none() {
        assert!(std::time::Instant::now() < deadline, "the node loaded its rules");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = Client::new(Endpoint::parse(&node.url()).unwrap(), Trust::Default { loopback_sim: true }).unwrap();
    let member = ring::signature::Ed25519KeyPair::from_seed_unchecked(&local::MEMBER_SEED).unwrap();
    let stranger = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]).unwrap();

    let e = sigil_example_applets::example("hash");
    let manifest = sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap();
    let deployment_of = |code: &[u8], approvers: &[&ring::signature::Ed25519KeyPair]| {
        let (mut entry, _) = testing::deployment(&manifest, e.wasm, 0);
        for k in approvers {
            entry.approve(POD, "ops", k).unwrap();
        }
        let d = Deployment { entry: ByteBuf::from(entry.encode()), code: ByteBuf::from(code.to_vec()) };
        sigil_primitives::cbor::encode(&d)
    };
    let deployment = |approvers: &[&ring::signature::Ed25519KeyPair]| deployment_of(e.wasm, approvers);
    let removal = |reason: &str, approvers: &[&ring::signature::Ed25519KeyPair]| {
        let mut entry =
            Entry::NodeRemoved(NodeRemoved { name: name(3), reason: reason.into(), prior: 0, approvals: vec![] });
        for k in approvers {
            entry.approve(POD, "ops", k).unwrap();
        }
        entry
    };

    // 403: a deployment approved by a key that is not the member's, or by the member twice; a governance entry
    // with no approval, or a stranger's.
    let cases = [
        ("a stranger's approval", deployment(&[&stranger])),
        ("one member twice", deployment(&[&member, &member])),
        // Approvals are checked before the module is looked at: a stranger's upload is never compiled (this code
        // does not even match the manifest's digest, which compiling would find).
        ("a stranger's approval of code it did not compile", deployment_of(b"\0asm not this", &[&stranger])),
    ];
    for (what, body) in cases {
        let r = c.post_cbor("/v1/applets", body).await.unwrap();
        assert_eq!(r.status, 403, "deployment with {what}: {}", r.error());
    }
    for (what, entry) in [("no approval", removal("a", &[])), ("a stranger's approval", removal("b", &[&stranger]))] {
        let r = c.post_cbor("/v1/governance", entry.encode()).await.unwrap();
        assert_eq!(r.status, 403, "governance with {what}: {}", r.error());
    }

    // 503: the mempool is full (one approved entry queued that cannot commit), so approved entries wait.
    let _queued = node.service.node.submit(removal("filler", &[&member])).expect("the first entry is queued");
    let r = c.post_cbor("/v1/governance", removal("decommissioned", &[&member]).encode()).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.error());
    assert!(r.error().contains("mempool is full"), "{}", r.error());
    let r = c.post_cbor("/v1/applets", deployment(&[&member])).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.error());
    node.stop().await;
}
