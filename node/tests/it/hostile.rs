//! A stranger with a laptop against a node's API: connections past the caps are closed on arrival, a body sent
//! too slowly (slowloris) is answered 408 and costs nothing more, and a caller over its rate is answered 429 while
//! other callers are served. (The other hostile cases sit beside what
//! they break: unauthenticated refusals in `node.rs`, approvals before compilation in `status.rs`, the block
//! rules in sigil-pod, egress and state budgets in sigil-runtime, receipt encodings in sigil-ledger.)

use std::time::{Duration, Instant};

use sigil::service::api::Limits;
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_pod::local;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn node(dir: &std::path::Path, limits: Limits) -> (RunningNode, Client) {
    let cfg = local::configs("pod-h", 1, dir).remove(0);
    let api = ApiConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        operator_tls: None,
        evidence: local::evidence("pod-h", 0),
        directory: PodDirectory::default(),
        labels: Default::default(),
        limits,
        public_urls: vec![],
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
async fn a_caller_over_its_rate_gets_429_and_other_callers_are_still_served() {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let dir = tempdir();
    let (n, c) = node(dir.path(), Limits { requests_per_caller: 1, ..Default::default() }).await;
    let e = sigil_example_applets::example("hash");
    let manifest = sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap();
    let (entry, code) = sigil_pod::testing::deployment(&manifest, e.wasm, 0);
    let d = sigil::service::Deployment {
        entry: serde_bytes::ByteBuf::from(sigil_pod::testing::approved("pod-h", entry).encode()),
        code: serde_bytes::ByteBuf::from(code.code),
    };
    n.service.deploy(&sigil_primitives::cbor::encode(&d)).await.map_err(|r| r.reason().to_string()).unwrap();
    let request = |key: &Ed25519KeyPair, nonce: u8| {
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
    };
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
