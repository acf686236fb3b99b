//! A stranger with a laptop against a node's API: connections past the caps are closed on arrival, a body sent
//! too slowly (slowloris) is answered 408 and costs nothing more, a caller over its rate is answered 429 while
//! other callers are served, and the record (audit log, entries, receipts) answers a proven key only what it may
//! see. (The other hostile cases sit beside what
//! they break: unauthenticated refusals in `node.rs`, approvals before compilation in `status.rs`, the block
//! rules in sigil-pod, egress and state budgets in sigil-runtime, receipt encodings in sigil-ledger.)

use std::time::{Duration, Instant};

use ring::signature::{Ed25519KeyPair, KeyPair};
use sigil::service::api::Limits;
use sigil::service::client::{Client, Endpoint};
use sigil::service::reads;
use sigil::service::tls::Trust;
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_pod::local;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

pub(crate) async fn node(dir: &std::path::Path, limits: Limits) -> (RunningNode, Client) {
    node_reading(dir, limits, false, vec![]).await
}

async fn node_reading(
    dir: &std::path::Path,
    limits: Limits,
    public_reads: bool,
    auditors: Vec<[u8; 32]>,
) -> (RunningNode, Client) {
    let cfg = local::configs("pod-h", 1, dir).remove(0);
    let api = ApiConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        operator_tls: None,
        evidence: local::evidence("pod-h", 0),
        directory: PodDirectory::default(),
        labels: Default::default(),
        limits,
        public_urls: vec![],
        public_reads,
        auditors,
    };
    let n = RunningNode::start(cfg, api).await.expect("the node starts");
    let c = Client::new(Endpoint::parse(&n.url()).unwrap(), Trust::Default { loopback_sim: true }).unwrap();
    (n, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_source_cap_are_closed_and_the_slot_comes_back() {
    let dir = tempdir();
    let limits = Limits { max_connections_per_source: 3, ..Default::default() };
    let (n, c) = node(dir.path(), limits).await;
    // Three held connections (a stranger's idle ones) fill this source's slots.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = c.connect().await.expect("within the cap");
        assert_eq!(conn.send("GET", "/healthz", None, vec![]).await.unwrap().status, 200);
        held.push(conn);
    }
    // The fourth is closed on arrival: its handshake fails.
    assert!(c.get("/healthz").await.is_err(), "a connection past the cap is refused");
    let metrics = {
        let mut first = held.remove(0);
        let m = first.send("GET", "/metrics", None, vec![]).await.unwrap();
        String::from_utf8(m.body).unwrap()
    };
    assert!(metrics.contains("sigil_connections_refused_total 1"), "{metrics}");
    // One held connection closed (dropped above): a new one is served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.get("/healthz").await {
            Ok(r) => {
                assert_eq!(r.status, 200);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "the freed slot is reused: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_answered_408_and_nothing_waits_on_it() {
    let dir = tempdir();
    let limits = Limits { body_timeout: Duration::from_millis(500), ..Default::default() };
    let (n, c) = node(dir.path(), limits).await;
    let (mut tls, host) = c.tls().await.unwrap();
    // Headers that promise 1000 bytes, then 10 of them, then nothing.
    let head = format!(
        "POST /v1/invoke HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/cbor\r\ncontent-length: 1000\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[0u8; 10]).await.unwrap();
    tls.flush().await.unwrap();
    let t = Instant::now();
    let mut answer = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut answer)).await.expect("answered").unwrap();
    let text = String::from_utf8_lossy(&answer[..got]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 500 ms"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(5), "answered at the body timeout, took {:?}", t.elapsed());
    // A body larger than its route allows is refused once the limit is read, not buffered further.
    let big = c.post_cbor("/v1/invoke", vec![0u8; sigil_ledger::request::MAX_REQUEST_LEN + 1]).await.unwrap();
    assert_eq!(big.status, 413, "{}", big.error());
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_at_once_stay_within_the_node_s_byte_budget() {
    let dir = tempdir();
    let limits = Limits { body_bytes_in_flight: 64 << 10, body_timeout: Duration::from_secs(2), ..Default::default() };
    let (n, c) = node(dir.path(), limits).await;
    // A stranger's upload that promises 1 MiB, sends 60 KiB of it, and stalls: its bytes are held.
    let (mut slow, host) = c.tls().await.unwrap();
    let head = format!(
        "POST /v1/applets HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\n\r\n",
        1 << 20
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&[0u8; 60 << 10]).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another body that would take the node past its budget is refused as it arrives: 503, with Retry-After.
    let r = c.post_cbor("/v1/invoke", vec![0u8; 16 << 10]).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.error());
    assert!(r.headers.get("retry-after").is_some() && r.error().contains("retry"), "{}", r.error());
    // One that fits is read (and refused for what it is).
    assert_eq!(c.post_cbor("/v1/invoke", vec![0u8; 1 << 10]).await.unwrap().status, 400);
    // Once the stalled upload times out (408), its bytes are given back and the larger body is read again.
    let mut answer = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut answer)).await.expect("answered").unwrap();
    assert!(String::from_utf8_lossy(&answer[..got]).starts_with("HTTP/1.1 408"));
    assert_eq!(c.post_cbor("/v1/invoke", vec![0u8; 16 << 10]).await.unwrap().status, 400);
    let metrics = String::from_utf8(c.get("/metrics").await.unwrap().body).unwrap();
    assert!(metrics.contains("sigil_bodies_refused_total 1"), "{metrics}");
    n.stop().await;
}

/// Deploys the `hash` applet (member-approved) on a `pod-h` node.
pub(crate) async fn deploy_hash(n: &RunningNode) {
    deploy_example(n, "hash").await
}

/// Deploys example applet `name` on the one-node pod `pod-h`.
pub(crate) async fn deploy_example(n: &RunningNode, name: &str) {
    let e = sigil_example_applets::example(name);
    let manifest = sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap();
    let (entry, code) = sigil_pod::testing::deployment(&manifest, e.wasm, 0);
    let d = sigil::service::Deployment {
        entry: serde_bytes::ByteBuf::from(sigil_pod::testing::approved("pod-h", entry).encode()),
        code: serde_bytes::ByteBuf::from(code.code),
    };
    n.service.deploy(&sigil_primitives::cbor::encode(&d)).await.map_err(|r| r.reason().to_string()).unwrap();
}

/// A signed `hash.sha256` request of `key` in `pod-h`.
fn request(key: &Ed25519KeyPair, nonce: u8) -> Vec<u8> {
    sigil_ledger::request::Request {
        pod: "pod-h".into(),
        applet: "hash".into(),
        method: "sha256".into(),
        args: serde_bytes::ByteBuf::from(b"abc".to_vec()),
        nonce: serde_bytes::ByteBuf::from(vec![nonce; 16]),
        issued_at_ms: sigil_primitives::clock::now_ms(),
        caller: serde_bytes::ByteBuf::from(key.public_key().as_ref().to_vec()),
    }
    .sign(key)
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_gets_429_and_other_callers_are_still_served() {
    let dir = tempdir();
    let (n, c) = node(dir.path(), Limits { requests_per_caller: 1, ..Default::default() }).await;
    deploy_hash(&n).await;
    let flooder = Ed25519KeyPair::from_seed_unchecked(&[0x31; 32]).unwrap();
    let other = Ed25519KeyPair::from_seed_unchecked(&[0x32; 32]).unwrap();
    // Ten at once from one caller, whose bucket holds two and refills one a second: most are answered 429, with
    // Retry-After, and nothing of them is recorded.
    let c = std::sync::Arc::new(c);
    let mut sent = tokio::task::JoinSet::new();
    for i in 0..10u8 {
        let (c, body) = (c.clone(), request(&flooder, i));
        sent.spawn(async move { (body.clone(), c.post_cbor("/v1/invoke", body).await.unwrap()) });
    }
    let (bodies, answers): (Vec<_>, Vec<_>) = sent.join_all().await.into_iter().unzip();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(answers.iter().filter(|r| r.status == 429).all(|r| r.headers.get("retry-after").is_some()));
    assert!(limited >= 5, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 429 || *s == 200), "the others run: {statuses:?}");
    // Another caller is served; a request of the flooder's seen and replayed by someone else is refused as a
    // replay before the flooder's rate is charged.
    let r = c.post_cbor("/v1/invoke", request(&other, 9)).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.error());
    let done = bodies[statuses.iter().position(|s| *s == 200).unwrap()].clone();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..5 {
        let r = c.post_cbor("/v1/invoke", done.clone()).await.unwrap();
        assert_eq!(r.status, 409, "{}", r.error());
    }
    for nonce in [20, 21] {
        let r = c.post_cbor("/v1/invoke", request(&flooder, nonce)).await.unwrap();
        assert_eq!(r.status, 200, "the replays did not use the flooder's rate: {}", r.error());
    }
    let metrics = c.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(text.contains(&format!("sigil_requests_rate_limited_total {limited}")), "{text}");
    n.stop().await;
}

/// A GET of `path`, signed for `pod-h` by `key` when there is one.
async fn read(c: &Client, key: Option<&Ed25519KeyPair>, path: &str) -> sigil::service::client::Response {
    match key {
        Some(k) => c.get_signed(path, k, "pod-h").await.unwrap(),
        None => c.get(path).await.unwrap(),
    }
}

/// A GET of `path` with this `Authorization` header.
async fn send(c: &Client, auth: String, path: &str) -> sigil::service::client::Response {
    let mut conn = c.connect().await.unwrap();
    conn.send_with("GET", path, &[("authorization", auth.as_str())], vec![]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_answers_a_proven_key_what_it_may_see_and_a_stranger_nothing() {
    let dir = tempdir();
    let auditor = Ed25519KeyPair::from_seed_unchecked(&[0x41; 32]).unwrap();
    let auditor_pub: [u8; 32] = auditor.public_key().as_ref().try_into().unwrap();
    let (n, c) = node_reading(dir.path(), Limits::default(), false, vec![auditor_pub]).await;
    deploy_hash(&n).await;
    let alice = Ed25519KeyPair::from_seed_unchecked(&[0xa1; 32]).unwrap();
    let bob = Ed25519KeyPair::from_seed_unchecked(&[0xb0; 32]).unwrap();
    let member = Ed25519KeyPair::from_seed_unchecked(&local::MEMBER_SEED).unwrap();
    let mut made = Vec::new();
    for key in [&alice, &bob] {
        let r = c.post_cbor("/v1/invoke", request(key, 1)).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.error());
        let v = r.json().unwrap();
        made.push((v["request_hash"].as_str().unwrap().to_string(), v["index"].as_u64().unwrap()));
    }
    let [(a_hash, a_index), (b_hash, b_index)] = [made[0].clone(), made[1].clone()];
    let hex_of = |k: &Ed25519KeyPair| format!("ed25519:{}", hex::encode(k.public_key().as_ref()));
    let callers_of = |r: &sigil::service::client::Response| -> Vec<String> {
        let v = r.json().unwrap();
        v["entries"].as_array().unwrap().iter().map(|e| e["caller"].as_str().unwrap().to_string()).collect()
    };

    // A stranger: 401 for each read of the record, with a challenge naming both ways in; the rest stays public.
    for path in ["/v1/audit".to_string(), format!("/v1/entries/{a_index}"), format!("/v1/receipts/{a_hash}")] {
        let r = read(&c, None, &path).await;
        assert_eq!(r.status, 401, "{path}: {}", r.error());
        let challenge = r.headers.get("www-authenticate").unwrap().to_str().unwrap().to_string();
        assert!(challenge.starts_with("Sigil realm=\"pod-h\"") && challenge.contains("Bearer"), "{challenge}");
        assert!(r.error().contains("--key"), "the refusal says how to read: {}", r.error());
    }
    for path in ["/v1/pod", "/v1/checkpoint", "/v1/genesis", "/v1/applets", "/healthz"] {
        assert_eq!(read(&c, None, path).await.status, 200, "{path} is public");
    }

    // Alice: her own entries (her key is the filter), her receipt, the governance; not Bob's, which she cannot
    // even tell from a request that is not there.
    let r = read(&c, Some(&alice), "/v1/audit").await;
    assert_eq!(r.status, 200, "{}", r.error());
    assert_eq!(callers_of(&r), vec![hex_of(&alice)]);
    let r = read(&c, Some(&alice), &format!("/v1/audit?caller={}", hex_of(&bob))).await;
    assert_eq!(r.status, 403, "{}", r.error());
    let r = read(&c, Some(&alice), &format!("/v1/audit?request={b_hash}")).await;
    assert!(callers_of(&r).is_empty(), "a request filter does not reach past her key");
    assert_eq!(read(&c, Some(&alice), &format!("/v1/receipts/{a_hash}")).await.status, 200);
    let theirs = read(&c, Some(&alice), &format!("/v1/receipts/{b_hash}")).await;
    let nobody = read(&c, Some(&alice), &format!("/v1/receipts/{}", "ab".repeat(32))).await;
    assert_eq!((theirs.status, nobody.status), (404, 404));
    assert_eq!(read(&c, Some(&alice), &format!("/v1/entries/{a_index}")).await.status, 200);
    assert_eq!(read(&c, Some(&alice), &format!("/v1/entries/{b_index}")).await.status, 404, "answered as not there");
    let genesis = read(&c, Some(&alice), "/v1/entries/0").await;
    assert_eq!(genesis.json().unwrap()["kind"], "genesis", "the governance is every caller's to read");

    // A member and a configured auditor read everyone's.
    for key in [&member, &auditor] {
        let r = read(&c, Some(key), "/v1/audit").await;
        let mut callers = callers_of(&r);
        callers.sort();
        let mut both = vec![hex_of(&alice), hex_of(&bob)];
        both.sort();
        assert_eq!(callers, both);
        assert_eq!(read(&c, Some(key), &format!("/v1/receipts/{b_hash}")).await.status, 200);
    }

    // A signature proves only the read it signed: another query, another pod, an old time, an unknown token.
    let now = sigil_primitives::clock::now_ms();
    let signed = reads::authorization(&member, "pod-h", "GET", "/v1/audit?limit=1", now);
    assert_eq!(send(&c, signed.clone(), "/v1/audit?limit=1").await.status, 200);
    assert_eq!(send(&c, signed, "/v1/audit?limit=2").await.status, 401, "another query");
    let other_pod = reads::authorization(&member, "pod-x", "GET", "/v1/audit", now);
    assert_eq!(send(&c, other_pod, "/v1/audit").await.status, 401, "another pod");
    let old = reads::authorization(&member, "pod-h", "GET", "/v1/audit", now - reads::MAX_SKEW_MS - 60_000);
    let r = send(&c, old, "/v1/audit").await;
    assert!(r.status == 401 && r.error().contains("clock"), "{}", r.error());
    assert_eq!(send(&c, "Bearer not-a-token".into(), "/v1/audit").await.status, 401, "an unknown token");
    let metrics = String::from_utf8(c.get("/metrics").await.unwrap().body).unwrap();
    assert!(metrics.contains("sigil_reads_unauthenticated_total 7"), "{metrics}");
    n.stop().await;

    // A node that serves public reads answers anyone.
    let dir = tempdir();
    let (n, c) = node_reading(dir.path(), Limits::default(), true, vec![]).await;
    let r = c.get("/v1/audit").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.error());
    assert_eq!(c.get("/v1/entries/0").await.unwrap().status, 200);
    n.stop().await;
}
