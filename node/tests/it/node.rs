//! The node end to end: signed requests through the HTTPS API (attested certificates), applets executed in the
//! enclave runtime, receipts committed and verified offline, audit, sovereignty redirects, bad input.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::*;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use serde_json::Value;
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_ledger::request::{Request, SignedRequest};
use sigil_ledger::Entry;
use sigil_pod::{local, testing};

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// `sigil invoke --api URL --key KEY notes METHOD --args ARGS [--receipt-out FILE] --json`.
fn invoke(url: &str, key: &Path, method: &str, args: &str, receipt: Option<&Path>) -> Output {
    let mut a = vec!["invoke", "--api", url, "--key", p(key), "notes", method, "--args", args, "--json"];
    if let Some(r) = receipt {
        a.extend(["--receipt-out", p(r)]);
    }
    sigil(&a)
}

/// A request of `key` for `pod`, signed.
pub(crate) fn request(
    key: &Ed25519KeyPair,
    pod: &str,
    applet: &str,
    method: &str,
    args: &str,
    nonce: u8,
) -> SignedRequest {
    Request {
        pod: pod.into(),
        applet: applet.into(),
        method: method.into(),
        args: ByteBuf::from(args.as_bytes().to_vec()),
        nonce: ByteBuf::from(vec![nonce; 16]),
        issued_at_ms: now_ms(),
        caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
    }
    .sign(key)
}

fn client(url: &str) -> Client {
    Client::new(Endpoint::parse(url).unwrap(), Trust::Default { loopback_sim: true }).unwrap()
}

#[test]
fn end_to_end_deploy_invoke_verify_survive_a_killed_node_and_audit_every_refusal() {
    let _one = one_pod_at_a_time();
    let dir = tempdir();
    let wasm = applet_files();
    let cfgs = configs(4, dir.path());
    let api_ports: Vec<u16> = (0..4).map(|_| local::free_port()).collect();
    let configs: Vec<PathBuf> = cfgs.iter().zip(&api_ports).map(|(c, port)| write_config_with_api(c, *port)).collect();
    let mut nodes: Vec<ProcessNode> = configs.iter().map(|c| ProcessNode::spawn(c)).collect();
    let urls: Vec<String> = api_ports.iter().map(|p| format!("https://127.0.0.1:{p}")).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(nodes[0].wait_height(2, Duration::from_secs(60)));
    let genesis = dir.path().join("genesis.cbor");

    // Keys: a member's (the published devnet member) and a fresh caller's.
    let member_key = dir.path().join("member.key");
    std::fs::write(&member_key, hex::encode(local::MEMBER_SEED)).unwrap();
    let caller_key = dir.path().join("caller.key");
    let out = sigil(&["keys", "generate", "--out", p(&caller_key)]);
    assert!(out.status.success(), "{}", text(&out));
    let caller_pub = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(caller_pub.starts_with("ed25519:") && caller_pub.len() == 8 + 64, "{caller_pub}");
    let again = sigil(&["keys", "generate", "--out", p(&caller_key)]);
    assert_eq!(again.status.code(), Some(2), "an existing key is not overwritten: {}", text(&again));

    // Deploy notes (member-approved), checked against the pod's genesis policy.
    let manifest = wasm.join("notes/sigil.toml");
    let module = wasm.join("notes.wasm");
    let g = p(&genesis);
    let out = sigil(&[
        "applet",
        "deploy",
        "--api",
        &urls[0],
        "--genesis",
        g,
        "--key",
        p(&member_key),
        "--member",
        "ops",
        p(&manifest),
        p(&module),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_out(&out)["name"], "notes");
    // A non-member's approval is refused.
    let out = sigil(&[
        "applet",
        "deploy",
        "--api",
        &urls[0],
        "--key",
        p(&caller_key),
        "--member",
        "ops",
        p(&manifest),
        p(&module),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Nodes of `sigil node run` re-attest on the pod's schedule: this genesis was made a year ago, so each has
    // done it since it started, with sim evidence bound to a recent block. `GET /v1/pod` shows each one's latest
    // attestation, its age and its verdict now.
    let status = rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = client(&urls[0]).get("/v1/pod").await.unwrap().json().unwrap();
            let done = s["validators"].as_array().unwrap().iter().all(|v| v["attestation_index"].as_u64() > Some(0));
            if done || std::time::Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    for v in status["validators"].as_array().unwrap() {
        assert!(v["attestation_index"].as_u64() > Some(0), "every validator re-attested: {status}");
        assert!(v["attestation_age_s"].as_u64() < Some(120), "{v}");
        assert_eq!(v["verdict"], "accepted", "{v}");
    }
    assert_eq!(status["reattestation"]["every_s"], 14_400);
    assert_eq!(status["reattestation"]["max_age_s"], 86_400);
    assert_eq!(status["suspended"], serde_json::json!([]), "nobody is suspended within the grace after the start");

    // A signed invocation through node 1; its receipt verifies offline from the genesis alone.
    let r1 = dir.path().join("r1.cose");
    let out = invoke(&urls[1], &caller_key, "put", r#"{"key":"k","value":"v1"}"#, Some(&r1));
    assert!(out.status.success(), "{}", text(&out));
    let first = json_out(&out);
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["executor"], "node-1");
    let out = sigil(&["receipt", "verify", p(&r1), "--genesis", g, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let verified = json_out(&out);
    assert_eq!(verified["valid"], true);
    // Who ran it: node-1, attested by its re-attestation, whose (simulated) evidence binds the anchor the receipt
    // carries and is re-verified under the pod's policy.
    let ex = &verified["executor"];
    assert_eq!((ex["name"].as_str(), ex["attestation_kind"].as_str()), (Some("node-1"), Some("reattested")), "{ex}");
    assert!(ex["anchor"]["height"].as_u64() > Some(0), "{ex}");
    assert_eq!((ex["platform"].as_str(), ex["verdict"].as_str()), (Some("sim"), Some("accepted")), "{ex}");
    assert_eq!(ex["measurement"], hex::encode(local::MEASUREMENT));

    // Node 3 is killed: the pod goes on, and another invocation commits.
    nodes[3].kill();
    let r2 = dir.path().join("r2.cose");
    let out = invoke(&urls[2], &caller_key, "put", r#"{"key":"k","value":"v2"}"#, Some(&r2));
    assert!(out.status.success(), "with node 3 down: {}", text(&out));
    let second = json_out(&out);
    assert_eq!(second["output"], r#"{"key":"k","previous":"v1"}"#, "the second put sees the first");
    let out = sigil(&["receipt", "verify", p(&r2), "--genesis", g]);
    assert!(out.status.success(), "{}", text(&out));

    // Restarted, node 3 catches up: it reads the latest value from its own store.
    nodes[3] = ProcessNode::spawn(&configs[3]);
    let h = rt.block_on(async {
        let r = client(&urls[0]).get("/healthz").await.unwrap();
        r.json().unwrap()["height"].as_u64().unwrap()
    });
    rt.block_on(nodes[3].wait_height(h, Duration::from_secs(90)));
    let out = invoke(&urls[3], &caller_key, "get", r#"{"key":"k"}"#, None);
    assert!(out.status.success(), "{}", text(&out));
    let read = json_out(&out);
    assert_eq!(read["executor"], "node-3");
    assert_eq!(read["output"], r#"{"key":"k","value":"v2"}"#);

    // The receipt can be fetched again by its task id, from any node.
    let path = format!("/v1/receipts/{}", first["request_hash"].as_str().unwrap());
    let fetched = rt.block_on(client(&urls[3]).get_signed(&path, &read_key(&caller_key), "test-pod"));
    let fetched = fetched.unwrap().json().unwrap();
    assert_eq!(fetched["entry"]["kind"], "invocation");
    assert!(fetched["receipt"].is_string());

    // Refused, each with a clear 4xx: unsigned and forged (not the caller's: no audit entry names it), replayed
    // (the caller's: audited).
    let key = read_key(&caller_key);
    let (unsigned, forged, replay) = rt.block_on(async {
        let c = client(&urls[0]);
        let mut unsigned = request(&key, "test-pod", "notes", "put", r#"{"key":"u","value":"x"}"#, 1);
        unsigned.signature = ByteBuf::from(vec![0; 64]);
        let u = c.post_cbor("/v1/invoke", unsigned.encode()).await.unwrap();
        // Signed by another key, claiming to be the caller.
        let mallory = Ed25519KeyPair::from_seed_unchecked(&[0x66; 32]).unwrap();
        let mut forged = request(&key, "test-pod", "notes", "put", r#"{"key":"f","value":"x"}"#, 2);
        forged.signature = ByteBuf::from(mallory.sign(&forged.request.signing_bytes()).as_ref().to_vec());
        let f = c.post_cbor("/v1/invoke", forged.encode()).await.unwrap();
        // A committed request's exact bytes, sent again (to another node).
        let req = request(&key, "test-pod", "notes", "get", r#"{"key":"k"}"#, 9);
        let ok = c.post_cbor("/v1/invoke", req.encode()).await.unwrap();
        assert_eq!(ok.status, 200, "{}", ok.error());
        let r = client(&urls[1]).post_cbor("/v1/invoke", req.encode()).await.unwrap();
        (u, f, r)
    });
    assert_eq!(unsigned.status, 400, "{}", unsigned.error());
    assert!(unsigned.error().contains("signature"), "{}", unsigned.error());
    assert_eq!(forged.status, 400, "{}", forged.error());
    assert!(forged.error().contains("signature"), "{}", forged.error());
    assert_eq!(replay.status, 409, "{}", replay.error());
    assert!(replay.error().contains("replay"), "{}", replay.error());

    // The audit shows the invocations and each refusal, with who and why. The replay was refused (and its refusal
    // committed) by node 1, so node 0 may be a block behind: ask until it has caught up.
    let mut entries = Vec::new();
    for _ in 0..40 {
        let out = sigil(&[
            "audit",
            "--api",
            &urls[0],
            "--key",
            p(&caller_key),
            "--caller",
            p(&caller_key),
            "--json",
            "--all",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        entries = json_out(&out)["entries"].as_array().unwrap().clone();
        if entries.iter().filter(|e| e["kind"] == "request_rejected").count() >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let kinds = |k: &str| entries.iter().filter(|e| e["kind"] == k).count();
    assert_eq!(kinds("invocation"), 4, "{entries:#?}");
    let reasons: Vec<&str> = entries.iter().filter_map(|e| e["reason"].as_str()).collect();
    // Requests the caller did not sign leave nothing on its record (a stranger cannot make the audit log show
    // refusals "by" this caller).
    assert!(!reasons.iter().any(|r| r.contains("signature")), "unsigned and forged are not audited: {reasons:?}");
    assert_eq!(kinds("request_rejected"), 1, "only the replay: {entries:#?}");
    assert!(reasons.iter().any(|r| r.contains("replay")), "{reasons:?}");
    assert!(entries.iter().all(|e| e["caller"] == caller_pub), "all claim the caller's key");
    let task = first["request_hash"].as_str().unwrap();
    let out = sigil(&["audit", "--api", &urls[2], "--key", p(&member_key), "--request", task, "--json"]);
    let one = json_out(&out)["entries"].as_array().unwrap().clone();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["method"], "put");
    // Without a key the record is not read, and the CLI says how to read it.
    let out = sigil(&["audit", "--api", &urls[2], "--request", task]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("401") && text(&out).contains("--key"), "{}", text(&out));
    for n in &mut nodes {
        assert!(n.terminate().success(), "a node stops cleanly on SIGTERM");
    }
}

fn read_key(path: &Path) -> Ed25519KeyPair {
    let seed = hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap();
    Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
}

/// A one-node pod in this process with the API up, notes deployed.
async fn one_node_pod(pod: &str, dir: &Path, directory: PodDirectory) -> RunningNode {
    let cfg = local::configs(pod, 1, dir).remove(0);
    let api = ApiConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        operator_tls: None,
        evidence: local::evidence(pod, 0),
        directory,
        labels: Default::default(),
        limits: Default::default(),
        public_urls: vec![],
        public_reads: false,
        auditors: vec![],
    };
    let n = RunningNode::start(cfg, api).await.expect("the node starts");
    let (m, wasm) = example("notes");
    let (e, a) = testing::deployment(&m, &wasm, 0);
    let entry = ByteBuf::from(testing::approved(pod, e).encode());
    let d = sigil::service::Deployment { entry, code: ByteBuf::from(a.code) };
    n.service.deploy(&sigil_primitives::cbor::encode(&d)).await.map_err(|r| r.reason().to_string()).unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_nothing_is_stored_but_the_caller_s_audit_entry() {
    let dir = tempdir();
    let n = one_node_pod("pod-a", dir.path(), PodDirectory::default()).await;
    let c = client(&n.url());
    let key = Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).unwrap();
    let state = |k: &str| {
        let l = n.service.node.ledger();
        let l = l.lock().unwrap();
        sigil_pod::state_value(&l, "notes", k.as_bytes()).unwrap()
    };
    let size = || n.service.node.ledger().lock().unwrap().size();
    let entry = |i: u64| n.service.node.ledger().lock().unwrap().entry(i).unwrap();

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed CBOR", b"\xa1\x01".to_vec(), 400, "malformed"),
        ("JSON instead of CBOR", br#"{"pod":"pod-a"}"#.to_vec(), 400, "malformed"),
        (
            "bad signature",
            {
                let mut r = request(&key, "pod-a", "notes", "put", r#"{"key":"a","value":"1"}"#, 1);
                r.signature[3] ^= 1;
                r.encode()
            },
            400,
            "signature",
        ),
        (
            "stale",
            {
                let mut r = request(&key, "pod-a", "notes", "put", r#"{"key":"b","value":"1"}"#, 2).request;
                r.issued_at_ms -= 10 * 60_000;
                r.sign(&key).encode()
            },
            400,
            "ago",
        ),
        ("unknown applet", request(&key, "pod-a", "nope", "run", "{}", 3).encode(), 404, "not deployed"),
        ("unknown method", request(&key, "pod-a", "notes", "nope", "{}", 4).encode(), 403, "no method"),
    ];
    for (what, body, status, says) in cases {
        let before = size();
        let r = c.post_cbor("/v1/invoke", body).await.unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.error());
        assert!(r.error().contains(says), "{what}: {:?} does not say {says:?}", r.error());
        let audit = r.json().unwrap()["audit_index"].as_u64();
        if ["malformed CBOR", "JSON instead of CBOR", "bad signature"].contains(&what) {
            // It proves no caller: refused and counted, nothing committed, nothing attributed.
            assert_eq!(audit, None, "{what}: not audited");
            assert_eq!(size(), before, "{what}: nothing stored");
        } else {
            let audit = audit.unwrap_or_else(|| panic!("{what}: no audit entry"));
            assert_eq!(size(), before + 1, "{what}: one entry, the audit");
            let Entry::RequestRejected(rej) = entry(audit) else { panic!("{what}: not a request_rejected entry") };
            assert_eq!(rej.caller.as_slice(), key.public_key().as_ref(), "{what}: the signing caller's record");
        }
    }
    let metrics = String::from_utf8(c.get("/metrics").await.unwrap().body).unwrap();
    assert!(metrics.contains("sigil_requests_unauthenticated_total 3"), "{metrics}");
    assert_eq!(state("a"), None, "nothing of a refused request ran");
    assert_eq!(state("b"), None);

    // A replayed nonce: a second request with the same nonce, after the first committed.
    let ok = c
        .post_cbor("/v1/invoke", request(&key, "pod-a", "notes", "put", r#"{"key":"c","value":"1"}"#, 7).encode())
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.error());
    let reuse = request(&key, "pod-a", "notes", "put", r#"{"key":"c","value":"2"}"#, 7);
    let r = c.post_cbor("/v1/invoke", reuse.encode()).await.unwrap();
    assert_eq!(r.status, 409, "{}", r.error());
    assert!(r.error().contains("nonce"));
    let stored = state("c").unwrap().0;
    assert_eq!(stored, br#"1"#.to_vec(), "the replayed nonce changed nothing");
    // The same refused bytes again: refused again, not audited twice.
    let before = size();
    let r2 = c.post_cbor("/v1/invoke", reuse.encode()).await.unwrap();
    assert_eq!(r2.status, 409);
    assert_eq!(size(), before, "a refusal is recorded once per request");

    // Refused before any entry: oversized bodies, the wrong media type, a pod this node does not know.
    let before = size();
    let big = c.post_cbor("/v1/invoke", vec![0u8; sigil_ledger::request::MAX_REQUEST_LEN + 1]).await.unwrap();
    assert_eq!(big.status, 413);
    let json = c.send("POST", "/v1/invoke", Some("application/json"), b"{}".to_vec()).await.unwrap();
    assert_eq!(json.status, 415, "{}", json.error());
    let other = c.post_cbor("/v1/invoke", request(&key, "pod-z", "notes", "get", "{}", 8).encode()).await.unwrap();
    assert_eq!(other.status, 421, "{}", other.error());
    let member = Ed25519KeyPair::from_seed_unchecked(&local::MEMBER_SEED).unwrap();
    let missing = c.get_signed("/v1/receipts/00", &member, "pod-a").await.unwrap();
    assert_eq!(missing.status, 400);
    let bad_query = c.get_signed("/v1/audit?colour=blue", &member, "pod-a").await.unwrap();
    assert_eq!(bad_query.status, 400, "{}", bad_query.error());
    assert_eq!(size(), before, "none of these stored anything");

    // The API describes itself and reports.
    let spec = c.get("/openapi.json").await.unwrap();
    assert_eq!(spec.status, 200);
    assert!(spec.json().unwrap()["paths"]["/v1/invoke"].is_object());
    let m = String::from_utf8(c.get("/metrics").await.unwrap().body).unwrap();
    assert!(m.contains("sigil_requests_rejected_total"), "{m}");
    let status = c.get("/v1/pod").await.unwrap().json().unwrap();
    assert_eq!(status["pod"], "pod-a");
    assert_eq!(status["validators"][0]["platform"], "sim");
    assert_eq!(status["validators"][0]["verdict"], "accepted");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_pod_is_redirected_and_its_body_never_reaches_that_pod() {
    let dir = tempdir();
    let a = one_node_pod("pod-a", &dir.path().join("a"), PodDirectory::default()).await;
    let directory = PodDirectory { pods: [("pod-a".to_string(), vec![a.url()])].into_iter().collect() };
    let b = one_node_pod("pod-b", &dir.path().join("b"), directory).await;
    let key = Ed25519KeyPair::from_seed_unchecked(&[0x43; 32]).unwrap();
    let marker = "sovereign-marker-5b1f0c2e";
    let req = request(&key, "pod-a", "notes", "put", &format!(r#"{{"key":"{marker}","value":"{marker}"}}"#), 1);
    let b_size = b.service.node.ledger().lock().unwrap().size();

    let r = client(&b.url()).post_cbor("/v1/invoke", req.encode()).await.unwrap();
    assert_eq!(r.status, 307, "{}", r.error());
    assert_eq!(r.location.as_deref(), Some(format!("{}/v1/invoke", a.url()).as_str()));
    assert_eq!(r.json().unwrap()["endpoints"][0], a.url());
    // Followed, it commits in pod A.
    let r = client(r.location.as_deref().unwrap().trim_end_matches("/v1/invoke"))
        .post_cbor("/v1/invoke", req.encode())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.error());

    // Pod B kept nothing of it: no entry, and the marker is nowhere in its store (RocksDB files and WAL).
    let b_node = b.service.node.ledger();
    assert_eq!(b_node.lock().unwrap().size(), b_size, "B recorded nothing");
    assert_eq!(b.service.metrics.redirected.get(), 1);
    let a_dir = dir.path().join("a");
    let b_dir = dir.path().join("b");
    a.stop().await;
    b.stop().await; // flushes B's store
    assert!(contains_bytes(&a_dir, marker.as_bytes()), "the marker is in pod A's store (the check can find it)");
    assert!(!contains_bytes(&b_dir, marker.as_bytes()), "pod B's store holds the body of a request for pod A");
}

/// Whether any file under `dir` contains `needle`.
fn contains_bytes(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_an_operator_certificate_is_trusted_by_its_ca_and_not_as_attested() {
    let dir = tempdir();
    // An operator CA and a certificate for 127.0.0.1 it issued.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let cfg = local::configs("pod-op", 1, dir.path()).remove(0);
    let api = ApiConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        operator_tls: Some((vec![leaf.der().to_vec()], key.serialize_der())),
        evidence: local::evidence("pod-op", 0),
        directory: PodDirectory::default(),
        labels: Default::default(),
        limits: Default::default(),
        public_urls: vec![],
        public_reads: false,
        auditors: vec![],
    };
    let n = RunningNode::start(cfg, api).await.unwrap();
    let endpoint = Endpoint::parse(&n.url()).unwrap();
    let by_ca = Client::new(endpoint.clone(), Trust::Ca(vec![ca.der().to_vec()])).unwrap();
    let r = by_ca.get("/healthz").await.unwrap();
    assert_eq!(r.status, 200);
    // An attested-only client refuses it: there is no evidence in an operator certificate.
    let err = client(&n.url()).get("/healthz").await.err().expect("refused");
    assert!(format!("{err:#}").contains("evidence"), "{err:#}");
    // Another CA is not trusted.
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    assert!(Client::new(endpoint, Trust::Ca(vec![other.der().to_vec()])).unwrap().get("/healthz").await.is_err());
    n.stop().await;
}
