//! Signed invocations through the HTTPS API of a 4-node pod on this machine, against the same pod's consensus
//! committing the same kind of entry submitted directly (the consensus bench's raw path), and the same invocation
//! as an MCP tool call (`POST /mcp`, JSON-RPC), in one run:
//!
//!   cargo bench -p sigil --bench api [-- SECONDS [CLIENTS]]
//!
//! API: CLIENTS concurrent callers, each on its own keep-alive TLS connection to a node (round-robin), each
//! signing a request for `hash.sha256` (64 bytes of input), sending it, and waiting for the answer, which comes
//! once the receipt is committed and cosigned. Raw: `probe` invocations (entry + executor signature + the
//! caller's signed request) submitted straight to the nodes' mempools, 4096 in flight. MCP: the same callers
//! calling the tool `hash.sha256` with the same arguments, once with an OAuth bearer token (each client gets one
//! from the node's token endpoint first; the node signs each call as the caller's delegate) and once with the
//! caller's signed request in `_meta`. The pod's validators re-execute each `hash` call (the local policy); last,
//! the API load again on a second pod whose policy does not ask them to, for the cost of re-execution. Every node
//! runs in this process, all sharing this machine's cores.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_ledger::request::Request;
use sigil_pod::{local, testing};
use support::{closed_loop, now_ms, pct};

/// A 4-node pod with the probe and hash applets deployed; `replay`: its validators re-execute `hash` (the local
/// pods' policy), or not.
async fn pod(dir: &std::path::Path, replay: bool) -> Vec<RunningNode> {
    let mut nodes = Vec::new();
    for (i, mut cfg) in local::configs("bench-pod", 4, dir).into_iter().enumerate() {
        if let sigil_ledger::Entry::Genesis(g) = &mut cfg.genesis {
            assert!(g.policy.contains("replay_deterministic = true"), "the local policy re-executes");
            if !replay {
                g.policy = g.policy.replace("replay_deterministic = true", "replay_deterministic = false");
            }
        }
        cfg.idle_block = Duration::from_millis(2);
        cfg.idle_interval = Duration::ZERO;
        cfg.mempool_capacity = 1_000_000;
        let api = ApiConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            operator_tls: None,
            evidence: local::evidence("bench-pod", i),
            directory: PodDirectory::default(),
            labels: Default::default(),
            limits: Default::default(),
            public_urls: vec![],
            public_reads: false,
            auditors: vec![],
        };
        nodes.push(RunningNode::start(cfg, api).await.expect("node starts"));
    }
    let mut tip = nodes[0].service.node.tip();
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height >= 2)).await.unwrap().unwrap();
    for (m, code) in
        [testing::probe()].into_iter().map(|m| (m, testing::PROBE_CODE.to_vec())).chain(["hash"].into_iter().map(|n| {
            let e = sigil_example_applets::example(n);
            (sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap(), e.wasm.to_vec())
        }))
    {
        let (e, a) = testing::deployment(&m, &code, 0);
        let rx = nodes[0].service.node.submit_with(testing::approved("bench-pod", e), a).expect("queued");
        let c = rx.await.expect("deployed");
        for n in &nodes {
            let mut tip = n.service.node.tip();
            tokio::time::timeout(Duration::from_secs(30), tip.wait_for(|t| t.size > c.index)).await.unwrap().unwrap();
        }
    }
    nodes
}

/// Raw: probe invocations straight into the mempools, the consensus bench's closed loop.
async fn raw(nodes: &[RunningNode], secs: f64) -> (f64, Vec<Duration>) {
    let pods: Vec<&sigil_pod::PodNode> = nodes.iter().map(|n| &n.service.node).collect();
    let (l, elapsed) = closed_loop(&pods, secs, 1_000_000).await;
    (l.len() as f64 / elapsed, l)
}

/// How the callers call.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Signed CBOR to `POST /v1/invoke`.
    Api,
    /// `tools/call` with a bearer token.
    McpToken,
    /// `tools/call` with the signed request in `_meta`.
    McpSigned,
}

/// The tool's arguments (64 bytes of JSON), the same in every mode.
fn args() -> Vec<u8> {
    let v = serde_json::json!({ "data": "x".repeat(53) });
    let b = serde_json::to_vec(&v).unwrap();
    assert_eq!(b.len(), 64);
    b
}

/// A bearer token for `key` from the node's token endpoint.
async fn token(
    conn: &mut sigil::service::client::Connection,
    url: std::net::SocketAddr,
    key: &Ed25519KeyPair,
) -> String {
    let aud = format!("https://{url}{}", sigil_ledger::request::issuer_path("bench-pod"));
    let assertion = sigil_ledger::request::client_assertion(key, &aud, now_ms() / 1000, 600, "bench");
    let form = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    let r = conn
        .send_with(
            "POST",
            "/oauth/bench-pod/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.into_bytes(),
        )
        .await
        .expect("the token endpoint answers");
    r.json().unwrap()["access_token"].as_str().expect("a token").to_string()
}

/// `clients` callers, each on a keep-alive connection, one request at a time.
async fn api(nodes: &[RunningNode], secs: f64, clients: usize, mode: Mode) -> (f64, Vec<Duration>, u64) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = nodes[c % nodes.len()].api;
        let (lat, errors) = (lat.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let endpoint = Endpoint { host: url.ip().to_string(), port: url.port() };
            let client = Client::new(endpoint, Trust::Default { loopback_sim: true }).unwrap();
            let mut conn = client.connect().await.expect("connects");
            let key = Ed25519KeyPair::from_seed_unchecked(&[c as u8 + 1; 32]).unwrap();
            let auth = match mode {
                Mode::McpToken => format!("Bearer {}", token(&mut conn, url, &key).await),
                _ => String::new(),
            };
            let args = args();
            let arguments: serde_json::Value = serde_json::from_slice(&args).unwrap();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let mut nonce = vec![0u8; 16];
                nonce[..8].copy_from_slice(&n.to_be_bytes());
                // The same callers sign in two phases: the phase keeps their nonces apart.
                nonce[8] = mode as u8;
                let signed = || {
                    Request {
                        pod: "bench-pod".into(),
                        applet: "hash".into(),
                        method: "sha256".into(),
                        args: ByteBuf::from(args.clone()),
                        nonce: ByteBuf::from(nonce.clone()),
                        issued_at_ms: now_ms(),
                        caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
                    }
                    .sign(&key)
                    .encode()
                };
                let t = Instant::now();
                let sent = match mode {
                    Mode::Api => conn.send("POST", "/v1/invoke", Some("application/cbor"), signed()).await,
                    Mode::McpToken | Mode::McpSigned => {
                        let mut params = serde_json::json!({ "name": "hash.sha256", "arguments": arguments });
                        if mode == Mode::McpSigned {
                            params["_meta"] = serde_json::json!({
                                sigil::service::mcp::SIGNED_REQUEST_META: sigil::service::base64_encode(&signed())
                            });
                        }
                        let msg =
                            serde_json::json!({ "jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params });
                        let mut headers = vec![
                            ("content-type", "application/json"),
                            ("accept", "application/json, text/event-stream"),
                            ("mcp-protocol-version", "2025-11-25"),
                        ];
                        if mode == Mode::McpToken {
                            headers.push(("authorization", auth.as_str()));
                        }
                        conn.send_with("POST", "/mcp", &headers, msg.to_string().into_bytes()).await
                    }
                };
                let ok = match sent {
                    Ok(r) if r.status == 200 && mode == Mode::Api => true,
                    // A tool result that carries its receipt (not a JSON-RPC error, not a tool error).
                    Ok(r) if r.status == 200 => r.json().is_ok_and(|v| {
                        v["result"]["isError"] == false
                            && v["result"]["_meta"]["io.sigil/receipt"]["receipt"].is_string()
                    }),
                    _ => false,
                };
                if ok {
                    lat.lock().unwrap().push(t.elapsed());
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    let t0 = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = t0.elapsed().as_secs_f64().max(secs);
    let mut l = lat.lock().unwrap().clone();
    l.sort();
    (l.len() as f64 / elapsed, l, errors.load(std::sync::atomic::Ordering::Relaxed))
}

/// Prints `what`'s throughput, p50 and p99 as ratios to `base`'s (rate, sorted latencies).
fn ratio(what: &str, (rate, lat): (f64, &[Duration]), (base_rate, base_lat): (f64, &[Duration])) {
    println!(
        "ratio {what}: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
        rate / base_rate,
        pct(lat, 0.5) / pct(base_lat, 0.5),
        pct(lat, 0.99) / pct(base_lat, 0.99)
    );
}

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(10.0);
    let clients = args.get(1).copied().unwrap_or(256.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "API vs raw consensus, 4-node pod on this host ({} cores), {secs} s each, {clients} API clients",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let dir = std::env::temp_dir().join(format!("sigil-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(async {
        let nodes = pod(&dir, true).await;
        let (raw_rate, raw_lat) = raw(&nodes, secs).await;
        println!(
            "raw consensus (probe entries into the mempools): {raw_rate:>8.1} entries/s   submit→commit p50 {:>7.1} ms  p99 {:>7.1} ms",
            pct(&raw_lat, 0.5),
            pct(&raw_lat, 0.99)
        );
        tokio::time::sleep(Duration::from_secs(2)).await; // the mempools drain
        let (api_rate, api_lat, errors) = api(&nodes, secs, clients, Mode::Api).await;
        println!(
            "HTTPS API (signed hash.sha256, executed):        {api_rate:>8.1} invocations/s  request→receipt p50 {:>7.1} ms  p99 {:>7.1} ms  ({errors} not 200)",
            pct(&api_lat, 0.5),
            pct(&api_lat, 0.99)
        );
        ratio("API / raw", (api_rate, &api_lat), (raw_rate, &raw_lat));
        for (mode, what) in [(Mode::McpToken, "MCP tools/call, bearer token:   "), (Mode::McpSigned, "MCP tools/call, signed request: ")] {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (rate, lat, errors) = api(&nodes, secs, clients, mode).await;
            println!(
                "{what}                {rate:>8.1} tool calls/s    request→receipt p50 {:>7.1} ms  p99 {:>7.1} ms  ({errors} failed)",
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
            ratio("MCP / API", (rate, &lat), (api_rate, &api_lat));
        }
        for n in nodes {
            n.stop().await;
        }
        // The same API load on a pod whose validators do not re-execute (the executor alone runs each call).
        let nodes = pod(&dir.join("no-replay"), false).await;
        let (rate, lat, errors) = api(&nodes, secs, clients, Mode::Api).await;
        println!(
            "HTTPS API, validators not re-executing:         {rate:>8.1} invocations/s  request→receipt p50 {:>7.1} ms  p99 {:>7.1} ms  ({errors} not 200)",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
        ratio("API re-executed / not", (api_rate, &api_lat), (rate, &lat));
        for n in nodes {
            n.stop().await;
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
