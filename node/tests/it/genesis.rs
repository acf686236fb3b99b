//! A production genesis made the way operators make one: keys generated per node, `sigil genesis enroll` on each
//! (here with sim evidence: these machines have no TEE), `sigil genesis build` under a policy, and four
//! `sigil node run` processes that start from it and commit. Every bad enrollment is refused with nothing written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{one_pod_at_a_time, p, sigil, text, ProcessNode};

const POD: &str = "eu-prod";
const MEASUREMENT: &str =
    "7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b";

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let o = sigil(&["keys", "generate", "--out", p(&key)]);
    assert!(o.status.success(), "{}", text(&o));
    let public =
        String::from_utf8_lossy(&o.stdout).split_whitespace().find(|w| w.starts_with("ed25519:")).unwrap().to_string();
    (key, public)
}

fn enroll(dir: &Path, pod: &str, name: &str, key: &Path, measurement: &str, port: u16) -> PathBuf {
    let out = dir.join(format!("{name}-{pod}-{}.enroll.json", &measurement[..4]));
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    let o = sigil(&[
        "genesis",
        "enroll",
        "--pod",
        pod,
        "--name",
        name,
        "--identity",
        p(key),
        "--backend",
        "sim",
        "--sim-measurement",
        measurement,
        "--address",
        &addr,
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out
}

fn build(dir: &Path, member: &str, enrollments: &[&Path], extra: &[&str]) -> (std::process::Output, PathBuf) {
    let out = dir.join("genesis.cbor");
    let policy = dir.join("policy.toml");
    let mut args = vec!["genesis", "build", "--pod", POD, "--jurisdiction", "EU", "--policy", p(&policy)];
    let m = format!("ops={member}");
    args.extend(["--member", &m, "--out", p(&out)]);
    args.extend(extra);
    args.extend(enrollments.iter().map(|e| p(e)));
    (sigil(&args), out)
}

// The guard serializes pods across test threads; this test's future runs on its own runtime, so holding it
// across awaits blocks no other task.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genesis_built_from_enrollments_starts_a_pod_of_node_processes() {
    let _one = one_pod_at_a_time();
    let tmp = crate::support::tempdir();
    let dir = tmp.path();
    std::fs::write(dir.join("policy.toml"), format!("[sim]\nallow = true\nmeasurements = [\"{MEASUREMENT}\"]\n"))
        .unwrap();
    let (_, member) = keygen(dir, "ops");
    let ports: Vec<u16> = (0..4).map(|_| sigil_pod::local::free_port()).collect();
    let api = sigil_pod::local::free_port();
    let keys: Vec<PathBuf> = (0..4).map(|i| keygen(dir, &format!("n{i}")).0).collect();
    let good: Vec<PathBuf> =
        (0..4).map(|i| enroll(dir, POD, &format!("n{i}"), &keys[i], MEASUREMENT, ports[i])).collect();
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&good[0]).unwrap()).unwrap();
    assert_eq!(e["pod"], POD);
    assert_eq!(e["platform"], "sim");
    assert!(
        !std::fs::read_to_string(&good[0]).unwrap().contains(std::fs::read_to_string(&keys[0]).unwrap().trim()),
        "no secret in an enrollment"
    );

    // Refusals: each leaves no genesis behind.
    let other_pod = enroll(dir, "us-prod", "n0", &keys[0], MEASUREMENT, ports[0]);
    let other_image = enroll(dir, POD, "n3", &keys[3], &"11".repeat(48), ports[3]);
    let swapped = dir.join("swapped.enroll.json");
    let mut s = e.clone();
    let e1: serde_json::Value = serde_json::from_slice(&std::fs::read(&good[1]).unwrap()).unwrap();
    s["public_key"] = e1["public_key"].clone();
    std::fs::write(&swapped, s.to_string()).unwrap();
    let swapped_both = dir.join("swapped-both.enroll.json");
    s["peer_id"] = e1["peer_id"].clone();
    std::fs::write(&swapped_both, s.to_string()).unwrap();
    let g = |i: usize| good[i].as_path();
    let cases: Vec<(Vec<&Path>, Vec<&str>, &str)> = vec![
        (vec![g(0), g(1), g(2), &other_pod], vec![], "enrolled for pod \"us-prod\""),
        (vec![g(0), g(1), g(2), &other_image], vec![], "evidence refused"),
        (vec![g(0), g(1), g(2), g(2)], vec![], "enrolled twice"),
        (vec![g(0), g(1), g(2), &swapped], vec![], "is not the peer id of its public key"),
        (vec![&swapped_both, g(2), g(3)], vec![], "evidence refused"),
        (vec![g(0), g(1), g(2), g(3)], vec!["--threshold", "2"], "--threshold 2"),
    ];
    for (enrollments, extra, why) in cases {
        let (o, out) = build(dir, &member, &enrollments, &extra);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(why), "{why}: {}", text(&o));
        assert!(!out.exists(), "{why}: nothing is written");
    }
    let o = sigil(&[
        "genesis",
        "build",
        "--pod",
        POD,
        "--jurisdiction",
        "EU",
        "--policy",
        p(&dir.join("policy.toml")),
        "--member",
        "ops=ed25519:00",
        "--out",
        p(&dir.join("x")),
        p(g(0)),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not ed25519:<64 hex digits>"), "{}", text(&o));

    let (o, genesis) = build(dir, &member, &[g(0), g(1), g(2), g(3)], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(String::from_utf8_lossy(&o.stderr).contains("[sim] allow = true"), "the policy's warnings are shown");
    let peers_line = stdout.lines().find(|l| l.starts_with("peers = ")).expect("a peers line").to_string();
    let b64 = stdout.lines().find_map(|l| l.strip_prefix("genesis_b64 = ")).unwrap().trim_matches('"').to_string();
    use base64::Engine as _;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), std::fs::read(&genesis).unwrap());
    let (o2, _) = build(dir, &member, &[g(0), g(1), g(2), g(3)], &[]);
    assert_eq!(o2.status.code(), Some(2), "an existing genesis is not overwritten: {}", text(&o2));

    let o = sigil(&["genesis", "show", p(&genesis), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["pod"], POD);
    assert_eq!(shown["validators"].as_array().unwrap().len(), 4);
    assert!(shown["validators"].as_array().unwrap().iter().all(|v| v["accepted"] == true));
    let e2: serde_json::Value = serde_json::from_slice(&std::fs::read(&good[2]).unwrap()).unwrap();
    assert_eq!(shown["validators"][2]["peer_id"], e2["peer_id"]);

    // Four node processes from that genesis, each with its own key and the peers line.
    let peers: Vec<String> = serde_json::from_str(peers_line.trim_start_matches("peers = ")).unwrap();
    assert_eq!(peers.len(), 4);
    let mut nodes = Vec::new();
    for i in 0..4 {
        let own = format!("/ip4/127.0.0.1/tcp/{}", ports[i]);
        let others: Vec<String> =
            peers.iter().filter(|a| !a.starts_with(&format!("{own}/"))).map(|a| format!("{a:?}")).collect();
        let api_section = if i == 0 { format!("\n[api]\nlisten = \"127.0.0.1:{api}\"\n") } else { String::new() };
        let toml = format!(
            "name = \"n{i}\"\nidentity = {:?}\ndata_dir = {:?}\ngenesis = {:?}\n\n[p2p]\nlisten = \"{own}\"\npeers = [{}]\n\n[consensus]\nidle_block_ms = 100\n{api_section}\n[tee]\nbackend = \"sim\"\nsim_measurement = \"{MEASUREMENT}\"\n",
            p(&keys[i]),
            p(&dir.join(format!("data-{i}"))),
            p(&genesis),
            others.join(", ")
        );
        let cfg = dir.join(format!("n{i}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        nodes.push(ProcessNode::spawn(&cfg));
    }
    for n in &nodes {
        n.wait_height(3, Duration::from_secs(90)).await;
    }
    // A client that trusts only the genesis accepts node 0's attested certificate.
    let url = format!("https://127.0.0.1:{api}");
    let member_key = dir.join("ops.key"); // the genesis's member: it reads the whole record
    let o = sigil(&["audit", "--api", &url, "--genesis", p(&genesis), "--key", p(&member_key), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    for n in &mut nodes {
        n.terminate();
    }
}

/// A node whose evidence is its TPM's quote alone (`[tee] backend = "vtpm"`, as the measured image boots under QEMU):
/// enrolled against a real TPM (swtpm) whose PCR 4 holds one boot application, with the firmware's event log. `genesis
/// build` accepts it under a policy that pins that application and the attestation key and allows a TEE-less TPM,
/// and refuses it, writing nothing, under one that pins another application, or no key.
#[test]
fn a_vtpm_enrollment_is_held_to_the_boot_events_its_policy_pins() {
    use base64::Engine;
    use sigil_attest::vtpm::eventlog;
    use sigil_attest::vtpm::HashAlg;
    let _one = crate::swtpm::serial();
    let dir = crate::support::tempdir();
    let tpm = crate::swtpm::Swtpm::start();
    tpm.provision_ak(dir.path(), sigil_attest::collect::VTPM_AK);
    let app = b"the UKI the firmware loaded";
    let digest = hex::encode(sigil_attest::sha256(app));
    tpm.tool(&["tpm2_pcrextend", &format!("4:sha256={digest}")]);
    let log = dir.path().join("binary_bios_measurements");
    let apps = eventlog::kind_from_name("EV_EFI_BOOT_SERVICES_APPLICATION").unwrap();
    std::fs::write(&log, eventlog::encode(&[HashAlg::Sha256], &[(4, apps, app.as_slice())])).unwrap();

    let (key, _) = keygen(dir.path(), "tpm-0");
    let (_, member) = keygen(dir.path(), "ops");
    let enrollment = dir.path().join("tpm-0.enroll.json");
    let device = format!("tcp:127.0.0.1:{}", tpm.port);
    let o = sigil(&[
        "genesis",
        "enroll",
        "--pod",
        POD,
        "--name",
        "tpm-0",
        "--identity",
        p(&key),
        "--backend",
        "vtpm",
        "--tpm",
        &device,
        "--event-log",
        p(&log),
        "--out",
        p(&enrollment),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&enrollment).unwrap()).unwrap();
    assert_eq!(e["platform"], "tpm");
    let bundle = base64::engine::general_purpose::STANDARD.decode(e["evidence"].as_str().unwrap()).unwrap();
    let bundle = sigil_attest::Bundle::decode(&bundle).unwrap();
    let ak = bundle.vtpm.as_ref().unwrap().ak_public.as_ref().unwrap();
    let ak_name = hex::encode(sigil_attest::vtpm::quote::PublicArea::parse(ak).unwrap().name());

    // PCR 4's application, and nothing from outside it in PCRs 12 and 13 (where systemd's stub would measure a
    // host's command line, credentials and system extensions).
    let outside = "{ pcr = 12, digests = [] }, { pcr = 13, digests = [] }";
    let rules = |ak: &str, digest: &str, outside: &str| {
        format!(
            "[vtpm]\nallow_without_tee = true\nak_names = [{ak}]\n\
             events = [{{ pcr = 4, kind = \"EV_EFI_BOOT_SERVICES_APPLICATION\", digests = [\"{digest}\"] }}, {outside}]\n"
        )
    };
    let policy = |ak: &str, digest: &str| rules(ak, digest, outside);
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, policy(&format!("\"{ak_name}\""), &digest)).unwrap();
    let (o, genesis) = build(dir.path(), &member, &[&enrollment], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let shown = sigil(&["genesis", "show", p(&genesis), "--json"]);
    assert!(shown.status.success(), "{}", text(&shown));
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("vtpm-host"), "the workload, as a TPM outside a TEE says it: {shown}");
    std::fs::remove_file(&genesis).unwrap();

    for (why, text_policy, reason) in [
        ("another application", policy(&format!("\"{ak_name}\""), &"ab".repeat(32)), "vtpm.events.pcr4"),
        ("no pinned key", policy("", &digest), "vtpm.ak"),
        // PCR 4 alone: a host could pass its own command line (PCR 12) to the same UKI.
        (
            "PCR 12 unpinned",
            rules(&format!("\"{ak_name}\""), &digest, "{ pcr = 13, digests = [] }"),
            "workload.measured",
        ),
    ] {
        std::fs::write(&file, text_policy).unwrap();
        let (o, genesis) = build(dir.path(), &member, &[&enrollment], &[]);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", text(&o));
        assert!(text(&o).contains(reason), "{why}: {}", text(&o));
        assert!(!genesis.exists(), "{why}: nothing written");
    }
}

/// A genesis whose validators' evidence lapsed after it was made (as a VLEK does after its year, TDX collateral
/// after its month): `sigil genesis show` judges it as the pod's nodes do, at the genesis' time (exit 0, accepted),
/// and says it would be refused today.
#[test]
fn genesis_show_judges_at_the_genesis_time_and_says_what_has_lapsed_since() {
    let dir = crate::support::tempdir();
    let created_at = 1_700_000_000; // 2023-11-14
    let sigil_ledger::Entry::Genesis(mut g) = sigil_pod::local::genesis(POD, 4) else { unreachable!() };
    g.created_at = created_at;
    g.evidence = (0..4)
        .map(|i| {
            let key = sigil_pod::public_key(&sigil_pod::local::seed(i));
            let m = sigil_pod::local::MEASUREMENT;
            serde_bytes::ByteBuf::from(sigil_pod::admission::sim_evidence_with(
                POD,
                &key,
                m,
                &[],
                Some(created_at + 86_400),
            ))
        })
        .collect();
    let file = dir.path().join("lapsed.cbor");
    std::fs::write(&file, sigil_ledger::Entry::Genesis(g.clone()).encode()).unwrap();
    let o = sigil(&["genesis", "show", p(&file), "--json"]);
    assert!(o.status.success(), "accepted at the genesis' time: {}", text(&o));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for v in shown["validators"].as_array().unwrap() {
        assert_eq!((v["accepted"].as_bool(), v["accepted_now"].as_bool()), (Some(true), Some(false)), "{v}");
        assert!(v["reason_now"].as_str().unwrap().contains("sim.validity"), "{v}");
    }
    let o = sigil(&["genesis", "show", p(&file)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("refused today"), "{}", text(&o));
    // Evidence that had lapsed when the genesis was made is refused: exit 1.
    g.created_at = created_at + 2 * 86_400;
    std::fs::write(&file, sigil_ledger::Entry::Genesis(g).encode()).unwrap();
    let o = sigil(&["genesis", "show", p(&file), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
