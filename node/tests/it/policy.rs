//! `sigil policy` on a devnet: check a policy, propose the change as a member (it commits and the pod goes on under
//! it), and have the node refuse a non-member's approval, an unparsable policy, a replayed change and a non-governance entry.

use crate::support::{one_pod_at_a_time, p, sigil, start_devnet, tempdir, text};
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil_ledger::entry::PolicyChanged;
use sigil_ledger::Entry;

#[test]
fn a_members_policy_change_commits_and_bad_changes_are_refused() {
    let _one = one_pod_at_a_time();
    let dir = tempdir();
    let (_devnet, info) = start_devnet(&dir.path().join("pod"), 1);
    let api = info["api"][0].as_str().unwrap().to_string();
    let member_key = info["keys"]["member"].as_str().unwrap().to_string();

    // The new policy pins the devnet's simulated measurement (and an SNP one from `sigil measure snp`).
    let snp =
        sigil(&["measure", "snp", "--ovmf", "/usr/share/ovmf/OVMF.fd", "--vcpus", "4", "--vcpu-type", "EPYC-Milan"]);
    assert!(snp.status.success(), "{}", text(&snp));
    let policy = format!(
        "[snp]\nmeasurements = [\"{}\"]\n\n[sim]\nallow = true\nmeasurements = [\"{}\"]\n",
        String::from_utf8_lossy(&snp.stdout).trim(),
        hex::encode(sigil_pod::local::MEASUREMENT)
    );
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, &policy).unwrap();
    let check = sigil(&["policy", "check", p(&file)]);
    assert_eq!(check.status.code(), Some(1), "valid, with the sim warning: {}", text(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("SIMULATED"), "{}", text(&check));

    let o = sigil(&["policy", "propose", p(&file), "--member", "ops", "--key", &member_key, "--api", &api]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("committed: policy_changed"), "{out}");
    let index: u64 = out.split("index ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = Client::new(Endpoint::parse(&api).unwrap(), Trust::Default { loopback_sim: true }).unwrap();
        let member = ring::signature::Ed25519KeyPair::from_seed_unchecked(&sigil_pod::local::MEMBER_SEED).unwrap();
        let e = c.get_signed(&format!("/v1/entries/{index}"), &member, "devnet").await.unwrap().json().unwrap();
        assert_eq!(e["kind"], "policy_changed");
        assert_eq!(e["policy"], policy.as_str());
        // The pod goes on under the new policy.
        let h0 = c.get("/healthz").await.unwrap().json().unwrap()["height"].as_u64().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let h = c.get("/healthz").await.unwrap().json().unwrap()["height"].as_u64().unwrap();
            if h > h0 + 2 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the pod stopped committing after the policy change");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }

        // An invocation now names the new policy: its receipt carries the change, and the executor's evidence is
        // judged under it.
        let receipt = dir.path().join("after.cose");
        let caller = info["keys"]["caller"].as_str().unwrap();
        let args = ["invoke", "--api", &api, "--key", caller, "hash", "sha256", "--args", "{\"data\":\"x\"}"];
        let o = sigil(&[&args[..], &["--receipt-out", p(&receipt)]].concat());
        assert!(o.status.success(), "{}", text(&o));
        let genesis = info["genesis"].as_str().unwrap();
        let o = sigil(&["receipt", "verify", p(&receipt), "--genesis", genesis, "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["executor"]["policy_index"], index, "{j}");
        assert_eq!(j["executor"]["verdict"], "accepted", "{j}");
        assert!(j["executor"]["checks"].as_array().unwrap().iter().any(|c| c["name"] == "sim.policy.measurement"));

        let post = |entry: Vec<u8>| {
            let c = &c;
            async move { c.post_cbor("/v1/governance", entry).await.unwrap() }
        };
        // A key that is not a member's.
        let stranger = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[0x5a; 32]).unwrap();
        let mut e = Entry::PolicyChanged(PolicyChanged { policy: policy.clone(), prior: 0, approvals: vec![] });
        e.approve("devnet", "ops", &stranger).unwrap();
        let r = post(e.encode()).await;
        assert_eq!(r.status, 403, "{}", r.error());
        // A policy that does not parse, approved by the member.
        let member = ring::signature::Ed25519KeyPair::from_seed_unchecked(&sigil_pod::local::MEMBER_SEED).unwrap();
        let mut e =
            Entry::PolicyChanged(PolicyChanged { policy: "[snp]\nbogus = 1\n".into(), prior: 0, approvals: vec![] });
        e.approve("devnet", "ops", &member).unwrap();
        let r = post(e.encode()).await;
        assert_eq!(r.status, 400, "{}", r.error());
        assert!(r.error().contains("bogus"), "{}", r.error());
        // No approval at all.
        let e = Entry::PolicyChanged(PolicyChanged { policy: policy.clone(), prior: 0, approvals: vec![] });
        let r = post(e.encode()).await;
        assert_eq!(r.status, 403, "{}", r.error());
        // The member's change, submitted again (its approvals replayed): it was for the genesis policy, which is
        // no longer the pod's.
        let mut e = Entry::PolicyChanged(PolicyChanged { policy: policy.clone(), prior: 0, approvals: vec![] });
        e.approve("devnet", "ops", &member).unwrap();
        let r = post(e.encode()).await;
        assert_eq!(r.status, 409, "{}", r.error());
        assert!(r.error().contains(&format!("last changed by entry {index}")), "{}", r.error());
        // Not a governance entry; not an entry.
        let r = post(sigil_pod::testing::probe_invocation("devnet", "node-0", 0, &[1; 32], 1, 1).0.encode()).await;
        assert_eq!(r.status, 400, "{}", r.error());
        let r = post(b"not cbor".to_vec()).await;
        assert_eq!(r.status, 400, "{}", r.error());
        // None of those was committed: no policy_changed entry after the member's.
        let size = c.get("/healthz").await.unwrap().json().unwrap()["size"].as_u64().unwrap();
        for i in index + 1..size {
            let e = c.get_signed(&format!("/v1/entries/{i}"), &member, "devnet").await.unwrap().json().unwrap();
            assert_ne!(e["kind"], "policy_changed", "entry {i}: {e}");
        }
    });

    // The offline flow: propose to a file (more members would `sigil policy approve` it), then submit.
    let entry = dir.path().join("change.cbor");
    let o = sigil(&[
        "policy",
        "propose",
        p(&file),
        "--member",
        "ops",
        "--key",
        &member_key,
        "--pod",
        "devnet",
        "--prior",
        &index.to_string(),
        "--out",
        p(&entry),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("unbound.cbor");
    let unbound = sigil(&[
        "policy",
        "propose",
        p(&file),
        "--member",
        "ops",
        "--key",
        &member_key,
        "--pod",
        "devnet",
        "--out",
        p(&out),
    ]);
    assert!(!unbound.status.success() && text(&unbound).contains("--prior"), "{}", text(&unbound));
    let o = sigil(&["policy", "submit", p(&entry), "--api", &api]);
    assert!(o.status.success(), "{}", text(&o));
    let bad =
        sigil(&["policy", "propose", "/nonexistent.toml", "--member", "ops", "--key", &member_key, "--api", &api]);
    assert_eq!(bad.status.code(), Some(2));
}
