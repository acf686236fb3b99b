//! The soak (`scripts/soak.sh`; ignored, so never in CI): a 4-node pod of `sigil node run` processes under honest
//! load at about half the throughput it measured quietly first, while one node is killed (SIGKILL) and restarted
//! every minute and a stranger floods garbage bodies, slow connections and token requests. At the end, every
//! acknowledged request's receipt must verify against the genesis and all nodes must hold the same root; it
//! prints the nodes' memory and disk over time and the honest callers' latency against the quiet run's, and fails
//! when their p99 is over 3 times the quiet one. `SOAK_SECONDS` (default 600) sets the length of the loaded part;
//! `SIGIL_BIN` the nodes' binary (`scripts/soak.sh` gives it a release build when there is one); `SOAK_PROPOSE_MS`
//! their round-0 propose timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil::service::client::{Client, Connection, Endpoint};
use sigil::service::tls::Trust;
use sigil_ledger::request::{Request, SignedRequest};
use sigil_ledger::Hash;
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// Honest callers, each a key of its own with one request in flight.
const CALLERS: usize = 24;

/// What one honest phase saw.
#[derive(Default)]
struct Honest {
    /// Acknowledged requests: hash, caller, the receipt if the answer carried one.
    acked: Vec<(Hash, usize, Option<Vec<u8>>)>,
    /// Their latencies, from the first send to the answer, by when they were sent.
    latencies: Vec<(Instant, Duration)>,
    /// Answers other than 200 (a retry at another node of a request that did commit is a 409).
    refused: u64,
    /// Requests given up after every node failed them.
    lost: u64,
}

fn percentile(v: &[(Instant, Duration)], p: f64) -> Duration {
    let mut v: Vec<Duration> = v.iter().map(|(_, d)| *d).collect();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn client(port: u16) -> Client {
    Client::new(Endpoint::parse(&format!("https://127.0.0.1:{port}")).unwrap(), Trust::Default { loopback_sim: true })
        .unwrap()
}

fn caller(i: usize) -> Ed25519KeyPair {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
}

/// Honest load: `CALLERS` callers, each sending `hash.sha256` requests one at a time, until `until`, at most
/// `rate` requests a second in all (none: as fast as answers come). A request whose node fails is sent again,
/// the same bytes, to the next node.
async fn honest(ports: &[u16], until: Instant, rate: Option<f64>, serial: &AtomicU64) -> Honest {
    let out = Arc::new(Mutex::new(Honest::default()));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for w in 0..CALLERS {
        let (ports, out) = (ports.to_vec(), out.clone());
        let first = serial.fetch_add(1_000_000, Ordering::SeqCst);
        tasks.spawn(async move {
            let key = caller(w);
            let clients: Vec<Client> = ports.iter().map(|p| client(*p)).collect();
            let mut conns: Vec<Option<Connection>> = (0..ports.len()).map(|_| None).collect();
            let mut n = 0u64;
            while Instant::now() < until {
                if let Some(r) = rate {
                    // Open loop: this caller's k-th request leaves at start + k * CALLERS / rate.
                    let at = start + Duration::from_secs_f64(n as f64 * CALLERS as f64 / r);
                    if at > until {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                let nonce = (first + n).to_be_bytes();
                let body = Request {
                    pod: POD.into(),
                    applet: "hash".into(),
                    method: "sha256".into(),
                    args: ByteBuf::from(format!("soak {w} {n}").into_bytes()),
                    nonce: ByteBuf::from([nonce, nonce].concat()),
                    issued_at_ms: now_ms(),
                    caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
                }
                .sign(&key)
                .encode();
                let hash = SignedRequest::hash_of(&body);
                let sent = Instant::now();
                let mut answered = None;
                for attempt in 0..ports.len() {
                    let i = (w + n as usize + attempt) % ports.len();
                    if conns[i].is_none() {
                        conns[i] = clients[i].connect().await.ok();
                    }
                    let Some(c) = conns[i].as_mut() else { continue };
                    match c.send("POST", "/v1/invoke", Some("application/cbor"), body.clone()).await {
                        Ok(r) => {
                            answered = Some(r);
                            break;
                        }
                        Err(_) => conns[i] = None,
                    }
                }
                let mut o = out.lock().unwrap();
                match answered {
                    Some(r) if r.status == 200 => {
                        let v = r.json().unwrap();
                        let receipt = v["receipt"].as_str().map(|b| sigil::service::base64_decode(b).unwrap());
                        o.acked.push((hash, w, receipt));
                        o.latencies.push((sent, sent.elapsed()));
                    }
                    Some(_) => o.refused += 1,
                    None => o.lost += 1,
                }
                n += 1;
            }
        });
    }
    tasks.join_all().await;
    Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
}

/// What the stranger did, by kind and answer.
#[derive(Default, Debug)]
struct Stranger {
    garbage: u64,
    garbage_400: u64,
    slow: u64,
    tokens_issued: u64,
    tokens_refused: u64,
}

/// A stranger, until `stop`: garbage bodies, connections that send a body's first bytes and stall (slowloris, at
/// most 32 held), and token requests with fresh keys' assertions, at every node it reaches.
async fn stranger(ports: Vec<u16>, stop: Arc<AtomicBool>) -> Stranger {
    let mut s = Stranger::default();
    let clients: Vec<Client> = ports.iter().map(|p| client(*p)).collect();
    let mut slow = VecDeque::new();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let (c, port) = (&clients[i % clients.len()], ports[i % ports.len()]);
        let Ok(mut conn) = c.connect().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let junk: Vec<u8> = (0..256).map(|k| (k * 31 + i) as u8).collect();
        if let Ok(r) = conn.send("POST", "/v1/invoke", Some("application/cbor"), junk).await {
            s.garbage += 1;
            s.garbage_400 += (r.status == 400) as u64;
        }
        if let Ok((mut tls, host)) = c.tls().await {
            let head = format!(
                "POST /v1/invoke HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/cbor\r\ncontent-length: 1000\r\n\r\n0123456789"
            );
            if tls.write_all(head.as_bytes()).await.is_ok() {
                s.slow += 1;
                slow.push_back(tls);
                if slow.len() > 32 {
                    slow.pop_front();
                }
            }
        }
        let key = Ed25519KeyPair::from_seed_unchecked(&Hash::digest(&i.to_be_bytes()).0).unwrap();
        let issuer = format!("https://127.0.0.1:{port}{}", sigil_ledger::request::issuer_path(POD));
        let jwt = sigil_ledger::request::client_assertion(
            &key,
            &issuer,
            sigil_primitives::clock::now_secs(),
            600,
            &i.to_string(),
        );
        let form = format!(
            "grant_type=client_credentials&client_assertion_type={}&client_assertion={jwt}",
            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        );
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        if let Ok(r) = conn.send_with("POST", &format!("/oauth/{POD}/token"), &headers, form.into_bytes()).await {
            if r.status == 200 {
                s.tokens_issued += 1;
            } else {
                s.tokens_refused += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s
}

/// A node's resident memory (kB) and its data directory's size (bytes).
fn footprint(pid: u32, data: &std::path::Path) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    fn size(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p).map_or(0, |d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
    }
    (rss, size(data))
}

// The one-pod guard is held for the whole soak, across awaits, on purpose: no other pod may run beside it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-minute soak: scripts/soak.sh"]
async fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let _one = one_pod_at_a_time();
    let dir = tempdir();
    let cfgs = configs(4, dir.path());
    let ports: Vec<u16> = (0..4).map(|_| sigil_pod::local::free_port()).collect();
    // `SOAK_PROPOSE_MS`: the nodes' round-0 propose timeout (what a dead proposer's turn costs), else the default.
    let propose_ms: Option<u64> = std::env::var("SOAK_PROPOSE_MS").ok().and_then(|v| v.parse().ok());
    let propose = |f: &mut sigil::config::NodeFile| {
        if let Some(ms) = propose_ms {
            f.consensus.propose_ms = ms;
        }
    };
    println!("propose timeout: {} ms", propose_ms.unwrap_or(sigil::config::Consensus::default().propose_ms));
    let files: Vec<_> = cfgs.iter().zip(&ports).map(|(c, p)| write_config_with_api_and(c, *p, propose)).collect();
    let nodes: Arc<Mutex<Vec<ProcessNode>>> =
        Arc::new(Mutex::new(files.iter().map(|f| ProcessNode::spawn(f)).collect()));
    for i in 0..4 {
        let h = { nodes.lock().unwrap()[i].height.clone() };
        let t = Instant::now();
        while h.load(Ordering::SeqCst) < 2 {
            assert!(t.elapsed() < Duration::from_secs(90), "node {i} did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let e = sigil_example_applets::example("hash");
    let manifest = sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap();
    let (entry, code) = deployment(&manifest, e.wasm, 0);
    let d = sigil::service::Deployment {
        entry: ByteBuf::from(approved(POD, entry).encode()),
        code: ByteBuf::from(code.code),
    };
    let r = client(ports[0]).post_cbor("/v1/applets", sigil_primitives::cbor::encode(&d)).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.error());
    let genesis = cfgs[0].genesis.encode();
    let serial = AtomicU64::new(0);

    // A warm-up, not measured: every node compiles the applet on its first call.
    honest(&ports, Instant::now() + Duration::from_secs(15), None, &serial).await;

    // Quiet: as fast as the callers are answered, for 30 s.
    let quiet_for = Duration::from_secs(30);
    let quiet = honest(&ports, Instant::now() + quiet_for, None, &serial).await;
    let capacity = quiet.acked.len() as f64 / quiet_for.as_secs_f64();
    let (q50, q99) = (percentile(&quiet.latencies, 0.5), percentile(&quiet.latencies, 0.99));
    println!(
        "quiet: {} acknowledged in {} s ({capacity:.0}/s), p50 {q50:?}, p99 {q99:?}, {} refused, {} lost",
        quiet.acked.len(),
        quiet_for.as_secs(),
        quiet.refused,
        quiet.lost
    );

    // Loaded: half that, with a node killed and restarted every minute and a stranger at every node.
    let until = Instant::now() + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(stranger(ports.clone(), stop.clone()));
    let killer = {
        let (nodes, files, stop) = (nodes.clone(), files.clone(), stop.clone());
        tokio::spawn(async move {
            // When each node was down: from its kill to its restart.
            let mut down = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(50)).await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = (down.len() + 1) % 4;
                let at = Instant::now();
                nodes.lock().unwrap()[i].kill();
                tokio::time::sleep(Duration::from_secs(10)).await;
                nodes.lock().unwrap()[i] = ProcessNode::spawn(&files[i]);
                down.push((at, Instant::now()));
            }
            down
        })
    };
    let sampler = {
        let (nodes, stop, data) =
            (nodes.clone(), stop.clone(), cfgs.iter().map(|c| c.data_dir.clone()).collect::<Vec<_>>());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let pids: Vec<Option<u32>> =
                    nodes.lock().unwrap().iter().map(|n| n.child.as_ref().map(|c| c.id())).collect();
                let at: Vec<(u64, u64)> =
                    pids.iter().zip(&data).map(|(p, d)| p.map_or((0, 0), |p| footprint(p, d))).collect();
                samples.push(at);
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            samples
        })
    };
    let loaded = honest(&ports, until, Some(capacity / 2.0), &serial).await;
    stop.store(true, Ordering::SeqCst);
    let strange = flood.await.unwrap();
    let down = killer.await.unwrap();
    let kills = down.len();
    let samples = sampler.await.unwrap();
    let (l50, l99) = (percentile(&loaded.latencies, 0.5), percentile(&loaded.latencies, 0.99));
    // Apart: requests sent while a node was down (or within 10 s of its restart), and the rest.
    let near_a_kill = |at: &Instant| {
        down.iter()
            .any(|(killed, back)| *at + Duration::from_secs(2) >= *killed && *at <= *back + Duration::from_secs(10))
    };
    let (during, apart): (Vec<_>, Vec<_>) = loaded.latencies.iter().partition(|(at, _)| near_a_kill(at));
    println!(
        "loaded: {} acknowledged in {seconds} s ({:.0}/s, asked {:.0}/s), p50 {l50:?}, p99 {l99:?} ({:.2}x quiet), \
         {} refused, {} lost; {kills} nodes killed and restarted",
        loaded.acked.len(),
        loaded.acked.len() as f64 / seconds as f64,
        capacity / 2.0,
        l99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
        loaded.refused,
        loaded.lost
    );
    println!(
        "  sent while a node was down or catching up (kill - 2 s to restart + 10 s): {} requests, p50 {:?}, p99 {:?}",
        during.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99)
    );
    println!(
        "  sent with all four nodes up: {} requests, p50 {:?}, p99 {:?} ({:.2}x quiet)",
        apart.len(),
        percentile(&apart, 0.5),
        percentile(&apart, 0.99),
        percentile(&apart, 0.99).as_secs_f64() / q99.as_secs_f64().max(1e-9)
    );
    println!("stranger: {strange:?}");
    for (i, name) in (0..4).map(|i| (i, sigil_pod::local::name(i))) {
        let rss: Vec<u64> = samples.iter().map(|s| s[i].0).filter(|x| *x > 0).collect();
        let disk: Vec<u64> = samples.iter().map(|s| s[i].1).filter(|x| *x > 0).collect();
        let half = rss.len() / 2;
        println!(
            "{name}: RSS max {} MB in the first half, {} MB in the second; data {} MB -> {} MB",
            rss[..half].iter().max().unwrap_or(&0) / 1024,
            rss[half..].iter().max().unwrap_or(&0) / 1024,
            disk.first().unwrap_or(&0) / 1_000_000,
            disk.last().unwrap_or(&0) / 1_000_000
        );
    }

    // Every node holds the same root once the last restarted one has caught up.
    let clients: Vec<Client> = ports.iter().map(|p| client(*p)).collect();
    let t = Instant::now();
    let roots = loop {
        let mut seen = Vec::new();
        for c in &clients {
            if let Ok(r) = c.get("/v1/checkpoint").await {
                seen.push(String::from_utf8_lossy(&r.body).lines().take(3).collect::<Vec<_>>().join(" "));
            }
        }
        if seen.len() == 4 && seen.iter().all(|s| *s == seen[0]) {
            break seen;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the nodes hold different checkpoints: {seen:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("all 4 nodes at the same checkpoint: {}", roots[0]);

    // Every acknowledged request's receipt verifies against the genesis and is that request's.
    let mut verified = 0;
    for (hash, w, receipt) in quiet.acked.iter().chain(&loaded.acked) {
        let bytes = match receipt {
            Some(r) => r.clone(),
            None => {
                let path = format!("/v1/receipts/{}?format=cose", hash.to_hex());
                clients[verified % 4].get_signed(&path, &caller(*w), POD).await.unwrap().body
            }
        };
        let r = sigil_ledger::receipt::Receipt::decode(&bytes).unwrap();
        let report = r.verify_request(&genesis, hash);
        assert!(report.valid, "the receipt of {} does not verify: {:?}", hash.to_hex(), report.reasons);
        verified += 1;
    }
    println!("receipts: {verified} of {} acknowledged verify against the genesis", verified);
    let within = l99 <= 3 * q99;
    println!("honest p99 within 3x of the quiet run: {}", if within { "yes" } else { "NO" });
    for n in nodes.lock().unwrap().iter_mut() {
        n.kill();
    }
    assert!(within, "the honest callers' p99 was {l99:?} under the soak, {q99:?} quiet");
}
