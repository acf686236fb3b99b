//! Fixtures for the tests and benchmarks of a pod and of what runs on it (behind the `testing` feature; the
//! crate's own tests and fuzz entry points have it always): the pod `test-pod` on 127.0.0.1 ([`genesis`],
//! [`configs`]), the published caller and member keys, the `probe` applet whose invocations need no wasm build,
//! entries submitted and awaited, links between nodes that a test can cut, and a temporary directory.
//! Nothing here is secure: every key is published.

use std::path::Path;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sigil_ledger::entry::Invocation;
use sigil_ledger::request::{Request, SignedRequest};
use sigil_ledger::{Entry, Hash};
use sigil_primitives::clock::now_ms;
use sigil_runtime::Manifest;
use tokio::sync::oneshot;

use crate::local::{name, seed, MEMBER_SEED};
use crate::{Attachments, Committed, PodConfig, PodNode};

/// The id of the tests' pod.
pub const POD: &str = "test-pod";

/// The genesis of [`POD`] with `n` validators.
pub fn genesis(n: usize) -> Entry {
    crate::local::genesis(POD, n)
}

/// Configs of an `n`-node [`POD`] whose data lives under `dir`, on free ports of 127.0.0.1. An idle test pod does
/// not pause between empty blocks (`idle_interval` zero), so tests can count heights; a test of the pause sets it.
pub fn configs(n: usize, dir: &Path) -> Vec<PodConfig> {
    crate::local::configs(POD, n, dir).into_iter().map(|c| PodConfig { idle_interval: Duration::ZERO, ..c }).collect()
}

/// The published seed of the local pod's example caller (the devnet's `caller.key`).
pub const CALLER_SEED: [u8; 32] = [0xca; 32];

/// `e` approved by the local pod's member `ops` (the threshold of a local pod is 1).
pub fn approved(pod: &str, mut e: Entry) -> Entry {
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&MEMBER_SEED).expect("32 bytes");
    e.approve(pod, "ops", &key).expect("a governance entry");
    e
}

/// A deployment of the applet `manifest` with `code`, without approvals (see [`crate::deployment`]).
pub use crate::state::deployment;

/// The smallest wasm module (no exports): the code of [`probe`]. Validators check code digests, not code, so
/// consensus tests and benches can commit invocations of it without a wasm build.
pub const PROBE_CODE: &[u8] = b"\0asm\x01\0\0\0";

/// The manifest of `probe`, an applet for consensus tests: one method `run`, any caller, state namespace
/// `probe`.
pub fn probe() -> Manifest {
    let text = r#"
name = "probe"
version = "1"
description = "consensus tests: invocations without a wasm build"
[[methods]]
name = "run"
[capabilities]
kv = [{ namespace = "probe", access = "read_write" }]
[[access]]
methods = ["*"]
callers = ["*"]
"#;
    Manifest::from_toml(text, PROBE_CODE).expect("a valid manifest")
}

/// An invocation of `probe.run` by caller `caller_seed`, request number `n`, as node `executor` (attested at
/// ledger index `attestation`) would record it at `at_ms`, with its signed request; the write set is empty.
pub fn probe_invocation(
    pod: &str,
    executor: &str,
    attestation: u64,
    caller_seed: &[u8; 32],
    n: u64,
    at_ms: u64,
) -> (Entry, Attachments) {
    use ring::signature::KeyPair;
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(caller_seed).expect("32 bytes");
    let caller = key.public_key().as_ref().to_vec();
    let args = format!("{{\"n\":{n}}}").into_bytes();
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    nonce[8..].copy_from_slice(&executor.len().to_be_bytes());
    nonce[15] ^= executor.bytes().fold(0, |a, b| a ^ b);
    let request = Request {
        pod: pod.into(),
        applet: "probe".into(),
        method: "run".into(),
        args: ByteBuf::from(args.clone()),
        nonce: ByteBuf::from(nonce.to_vec()),
        issued_at_ms: at_ms,
        caller: ByteBuf::from(caller.clone()),
    }
    .sign(&key)
    .encode();
    let write_set = sigil_runtime::WriteSet::default().encode();
    let e = Entry::Invocation(Invocation {
        request_hash: SignedRequest::hash_of(&request),
        caller: ByteBuf::from(caller),
        applet: "probe".into(),
        method: "run".into(),
        code_digest: probe().code_digest,
        input_hash: Hash::digest(&args),
        output_hash: Hash::digest(b"{}"),
        write_set_hash: Hash::digest(&write_set),
        executor: executor.into(),
        executor_attestation: attestation,
        policy: Some(0),
        outcome: "ok".into(),
        fuel_used: 1000,
        at_ms,
        delegate: None,
    });
    (e, Attachments { request, write_set, ..Default::default() })
}

/// An invocation of `probe` in [`POD`] executed by node `executor`, request number `n`, now, with its signed
/// request and write set.
pub fn invocation(executor: usize, n: u64) -> (Entry, Attachments) {
    probe_invocation(POD, &name(executor), 0, &CALLER_SEED, n, now_ms())
}

/// Queues an entry with its attachments at `node`.
pub fn submit(node: &PodNode, (e, a): (Entry, Attachments)) -> Result<oneshot::Receiver<Committed>, String> {
    node.submit_with(e, a).map_err(|r| r.to_string())
}

/// Deploys the `probe` applet in [`POD`] through `nodes[0]` unless it is deployed, and waits until every node of
/// `nodes` has committed it.
pub async fn deploy_probe(nodes: &[PodNode]) {
    if nodes[0].rules().is_some_and(|r| r.applets.contains_key("probe")) {
        return;
    }
    let (e, a) = deployment(&probe(), PROBE_CODE, 0);
    let rx = nodes[0].submit_with(approved(POD, e), a).expect("the deployment is queued");
    let c = tokio::time::timeout(Duration::from_secs(60), rx).await.expect("deployed in time").expect("deployed");
    for n in nodes {
        let mut tip = n.tip();
        tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.size > c.index))
            .await
            .expect("every node commits the deployment")
            .unwrap();
    }
}

/// Submits `count` invocations numbered from `from` round-robin to `nodes` (node k's executed by `executors[k]`)
/// and waits until every one is committed. Deploys `probe` first if it is not. Returns each one's index.
pub async fn commit_batch(
    nodes: &[PodNode],
    executors: &[usize],
    from: u64,
    count: u64,
) -> Vec<(u64, (Entry, Attachments))> {
    deploy_probe(nodes).await;
    let mut waiting = Vec::new();
    for n in from..from + count {
        let k = (n % nodes.len() as u64) as usize;
        let inv = invocation(executors[k], n);
        waiting.push((submit(&nodes[k], inv.clone()).expect("queued"), inv));
    }
    let mut out = Vec::new();
    for (rx, inv) in waiting {
        let c = tokio::time::timeout(Duration::from_secs(90), rx).await.expect("committed in time").expect("committed");
        out.push((c.index, inv));
    }
    out
}

/// Starts a node from each of `cfgs`, in order (panics with the node's name if one does not start).
pub async fn start_all(cfgs: impl IntoIterator<Item = PodConfig>) -> Vec<PodNode> {
    let mut nodes = Vec::new();
    for cfg in cfgs {
        let name = cfg.name.clone();
        nodes.push(PodNode::start(cfg).await.unwrap_or_else(|e| panic!("{name} starts: {e}")));
    }
    nodes
}

/// Stops `node` and starts it again from `cfg`. In one process the stopped engine's WAL thread may hold its file
/// lock a moment longer (a process that exits frees it at once), so a start that fails on the lock is tried again
/// for a few seconds.
pub async fn restart(node: PodNode, cfg: PodConfig) -> PodNode {
    node.stop().await;
    let mut tries = 0;
    loop {
        match PodNode::start(cfg.clone()).await {
            Ok(n) => return n,
            Err(e) if tries < 20 && e.to_string().contains("lock") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{} restarts: {e}", cfg.name),
        }
    }
}

/// Waits until every node reaches the highest tip among them, then checks that every height has the same root
/// everywhere. Returns that height.
pub async fn agree(nodes: &[PodNode]) -> u64 {
    let target = nodes.iter().map(|n| n.tip().borrow().height).max().expect("nodes");
    for n in nodes {
        let mut tip = n.tip();
        tokio::time::timeout(Duration::from_secs(30), tip.wait_for(|t| t.height >= target))
            .await
            .expect("every node reaches the tip in time")
            .expect("the node runs");
    }
    for h in 1..=target {
        let roots: Vec<_> = nodes
            .iter()
            .map(|n| crate::root_at_height(&n.ledger().lock().expect("not poisoned"), h).expect("readable"))
            .collect();
        assert!(roots[0].is_some() && roots.iter().all(|r| r == &roots[0]), "height {h}: {roots:?}");
    }
    target
}

/// Logs to the test's output when `SIGIL_LOG` is set (e.g. `SIGIL_LOG=info,sigil_pod=debug`).
#[cfg(feature = "testing")]
pub fn init_logs() {
    if let Ok(filter) = std::env::var("SIGIL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_test_writer()
            .try_init();
    }
}

/// A TCP link between two nodes through a proxy on 127.0.0.1 that the test can cut and restore.
#[derive(Clone)]
pub struct Link {
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Link {
    /// Starts a proxy forwarding to 127.0.0.1:`target`; returns its port.
    pub async fn start(target: u16) -> (u16, Link) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port on 127.0.0.1");
        let port = listener.local_addr().expect("bound").port();
        let link = Link { cut: Default::default(), tasks: Default::default() };
        let l = link.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if l.is_cut() {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut tasks = l.tasks.lock().expect("not poisoned");
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
        });
        (port, link)
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops every connection through the link and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.tasks.lock().expect("not poisoned").drain(..) {
            t.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Configs of an `n`-node [`POD`] in which node i reaches node j only through `links[i][j]`.
pub async fn configs_with_links(n: usize, dir: &Path) -> (Vec<PodConfig>, Vec<Vec<Option<Link>>>) {
    let mut cfgs = configs(n, dir);
    let ports: Vec<u16> =
        cfgs.iter().map(|c| c.listen.rsplit('/').next().and_then(|p| p.parse().ok()).expect("a port")).collect();
    let mut links = vec![vec![None; n]; n];
    for i in 0..n {
        let mut peers = Vec::new();
        for j in (0..n).filter(|j| *j != i) {
            let (port, link) = Link::start(ports[j]).await;
            peers.push(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", crate::peer_id(&seed(j))));
            links[i][j] = Some(link);
        }
        cfgs[i].peers = peers;
    }
    (cfgs, links)
}

/// A directory under the system's temporary directory, removed with everything in it when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sigil-pod-{}-{n}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&p).expect("a temporary directory");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
