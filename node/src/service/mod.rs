//! # service: what a node does for its callers
//!
//! Between the HTTP API and the pod (`sigil-pod`): signed requests are checked (signature, freshness, nonce, pod,
//! the applet's access rules), executed in the enclave runtime against the pod's committed state, and the execution
//! receipt is committed through consensus with the request and its write set; the caller gets the receipt with its
//! Merkle proof and cosigned checkpoint. The refusal of a request its caller signed is committed too, as a
//! `request_rejected` entry (who, what, why) with the request; a request that proves no caller (it does not
//! decode, or its signature does not verify) is refused, counted and logged, never recorded; requests for another
//! pod are redirected and nothing of them is kept.
//!
//! | module | what |
//! |---|---|
//! | `invoke` | the request path: checks, execution, commit, receipts, refusals |
//! | `govern` | member-approved deployments (checked and compiled before they commit) and governance entries |
//! | [`api`] | the HTTPS API (axum): routes, status, audit and entry queries, the console |
//! | [`mcp`] | the pod's applets as MCP tools (rmcp), through the same request path |
//! | [`oauth`] | the node as its pod's OAuth 2.1 authorization server, for MCP clients |
//! | [`reads`] | who may read the record: signed reads and access tokens, a caller's own entries, auditors |
//! | [`tls`] | attested TLS: the node's certificate carries its evidence; the client's verifier checks it |
//! | [`client`] | the HTTPS client the CLI and the tests use |
//! | [`error`] | the service's errors: starting, TLS, the client |
//! | [`metrics`] | counters and histograms for `/metrics` |
//!
//! What it must never do: run anything before the request's signature, freshness, nonce and authorization have
//! passed; answer "committed" before the entry is in the ledger; keep or forward the body of a request for
//! another pod.

pub mod api;
pub mod client;
pub mod error;
mod govern;
mod invoke;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod reads;
pub mod replay;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sigil_ledger::Entry;
use sigil_pod::PodNode;
use sigil_runtime::Runtime;

use error::{NoRandomness, StartError};

/// How long a caller waits for a commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Applets compiled at once (deployments and first calls): half the cores, at least one. The rest wait, so
/// compiling never takes every core from the API and consensus.
fn compile_slots() -> usize {
    std::thread::available_parallelism().map(|n| (n.get() / 2).max(1)).unwrap_or(1)
}

/// Another pod's public endpoints, for redirects.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodDirectory {
    /// Pod id → its nodes' API URLs.
    pub pods: HashMap<String, Vec<String>>,
}

/// Labels an operator gives a node (cloud, region, ...), shown in the pod status and the console.
pub type Labels = std::collections::BTreeMap<String, String>;

/// Why a request was refused, as the API answers it.
#[derive(Debug)]
pub enum Refused {
    /// 400: malformed, badly signed, stale, replayed (with the audit entry's index where one was committed).
    BadRequest(String, Option<u64>),
    /// 403: the applet's access rules refuse the caller.
    Forbidden(String, Option<u64>),
    /// 404: no such applet (or receipt).
    NotFound(String, Option<u64>),
    /// 409: a replay of a request already committed; a governance entry whose approved state has changed.
    Conflict(String, Option<u64>),
    /// 307: the request is for another pod; its endpoints.
    Redirect(String, Vec<String>),
    /// 421: a pod this node does not know.
    Misdirected(String),
    /// 503: the node cannot take it now (starting, mempool full, commit timed out).
    Unavailable(String),
    /// 429: the caller is over its request rate (not recorded: it is the caller's own flood).
    TooMany(String),
}

impl Refused {
    /// How the API answers the pod's refusal of an entry: missing or bad approvals are 403, a governance entry
    /// approved for a state that changed since (or replayed) 409, the node being busy or starting 503, anything
    /// else 400. (The request path retries conflicts and replays before it gets here.)
    pub fn of(r: sigil_pod::Rejection) -> Refused {
        use sigil_pod::Rejection as R;
        match r {
            R::Unapproved(why) => Refused::Forbidden(why, None),
            R::Stale(why) => Refused::Conflict(why, None),
            R::MempoolFull(_) | R::Starting => Refused::Unavailable(r.to_string()),
            r => Refused::BadRequest(r.to_string(), None),
        }
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        match self {
            Refused::BadRequest(r, _)
            | Refused::Forbidden(r, _)
            | Refused::NotFound(r, _)
            | Refused::Conflict(r, _)
            | Refused::Redirect(r, _)
            | Refused::Misdirected(r)
            | Refused::Unavailable(r)
            | Refused::TooMany(r) => r,
        }
    }

    /// The index of the `request_rejected` entry that audits it, if any.
    pub fn audit_index(&self) -> Option<u64> {
        match self {
            Refused::BadRequest(_, i)
            | Refused::Forbidden(_, i)
            | Refused::NotFound(_, i)
            | Refused::Conflict(_, i) => *i,
            _ => None,
        }
    }
}

pub use govern::Deployment;
pub use invoke::{invocation, Invoked};

/// A node's service: its pod node, its runtime, its identity.
pub struct Service {
    /// The pod node.
    pub node: PodNode,
    pod: String,
    runtime: Runtime,
    /// Compilations that may run at once.
    compile_slots: tokio::sync::Semaphore,
    key: ring::signature::Ed25519KeyPair,
    /// The node's evidence bundle (in its certificate).
    pub evidence: Vec<u8>,
    /// Other pods, for redirects.
    pub directory: PodDirectory,
    /// The node's labels.
    pub labels: Labels,
    /// The URLs clients reach this node at (see [`ApiConfig::public_urls`]).
    pub public_urls: Vec<String>,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Refusals of unauthenticated requests are logged at most once a second.
    unauthenticated_log: metrics::LogLimit,
    /// Refusals this node records in the ledger: 10 a second, 100 at once; past that they are answered only.
    recorded_refusals: metrics::RateLimit,
    /// Each caller's request rate.
    callers: metrics::PerKey,
    /// Each reader's rate of reads of the record: a bucket of its own, so that reads (a signed read's header can
    /// be replayed for a few minutes) never use up a caller's requests.
    readers: metrics::PerKey,
    /// Anyone may read the record (`[api] public_reads`).
    public_reads: bool,
    /// Keys that read every entry besides the governance members (`[api] auditors`).
    auditors: Vec<[u8; 32]>,
    /// The MCP access tokens the node's authorization server issued ([`oauth`]); they also sign in readers.
    pub(crate) tokens: Mutex<oauth::Tokens>,
    /// Receipts already made, by entry index.
    receipts: Recent<u64, Vec<u8>>,
    /// Each validator's attestation verdict for `GET /v1/pod`, by (name, attestation entry): when, under which
    /// policy.
    pub(crate) verdicts: Recent<(String, u64), (Instant, Arc<sigil_attest::Policy>, api::Verdict)>,
    started: Instant,
}

/// A map that keeps its `cap` most recently inserted values (a cache whose values never go stale, or say when).
pub(crate) struct Recent<K, V> {
    cap: usize,
    map: Mutex<(HashMap<K, V>, std::collections::VecDeque<K>)>,
}

impl<K: Clone + Eq + std::hash::Hash, V: Clone> Recent<K, V> {
    pub(crate) fn new(cap: usize) -> Recent<K, V> {
        Recent { cap, map: Mutex::new((HashMap::new(), std::collections::VecDeque::new())) }
    }

    pub(crate) fn get(&self, k: &K) -> Option<V> {
        self.map.lock().expect("not poisoned").0.get(k).cloned()
    }

    pub(crate) fn put(&self, k: K, v: V) {
        let mut m = self.map.lock().expect("not poisoned");
        let (map, order) = &mut *m;
        if map.insert(k.clone(), v).is_none() {
            order.push_back(k);
            while order.len() > self.cap {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }
}

impl Service {
    /// A service around a started node, serving as `api` says.
    pub fn new(node: PodNode, seed: &[u8; 32], api: ApiConfig) -> Result<Service, StartError> {
        let ApiConfig { evidence, directory, labels, limits, public_urls, public_reads, auditors, .. } = api;
        let pod = node.ledger().lock().expect("not poisoned").pod().to_string();
        let runtime = Runtime::new(sigil_runtime::RuntimeConfig::default())?;
        match sigil_pod::forget_exchanged(
            &mut node.ledger().lock().expect("not poisoned"),
            sigil_primitives::clock::now_secs(),
        ) {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(forgotten = n, "forgot the expired client assertions exchanged before the restart")
            }
            Err(e) => tracing::warn!("forgetting expired client assertions: {e}"),
        }
        Ok(Service {
            node,
            pod,
            runtime,
            compile_slots: tokio::sync::Semaphore::new(compile_slots()),
            key: ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                .map_err(|e| StartError::Key(e.to_string()))?,
            evidence,
            directory,
            labels,
            public_urls,
            metrics: metrics::Metrics::default(),
            unauthenticated_log: metrics::LogLimit::new(Duration::from_secs(1)),
            recorded_refusals: metrics::RateLimit::new(10.0, 100.0),
            callers: metrics::PerKey::new(
                limits.requests_per_caller as f64,
                2.0 * limits.requests_per_caller as f64,
                65_536,
            ),
            public_reads,
            auditors,
            tokens: Mutex::new(oauth::Tokens::new(oauth::TokenLimits::default())),
            readers: metrics::PerKey::new(
                limits.requests_per_caller as f64,
                2.0 * limits.requests_per_caller as f64,
                65_536,
            ),
            receipts: Recent::new(4096),
            verdicts: Recent::new(1024),
            started: Instant::now(),
        })
    }

    /// The pod id.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// Seconds since start.
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The live grant of an access token this node issued, if any.
    pub fn grant(&self, token: &str) -> Option<oauth::Grant> {
        let now = sigil_primitives::clock::now_secs();
        let hash = sigil_ledger::Hash::digest(token.as_bytes());
        self.tokens.lock().expect("not poisoned").grant(&hash, now).cloned()
    }

    /// Who reads, by the request's `Authorization` header (a signed read, or an access token), for `method` of
    /// `path_and_query` ([`reads`]). A proven key reads at most its request rate (in a bucket of reads only).
    pub fn reader(
        &self,
        authorization: Option<&str>,
        method: &str,
        path_and_query: &str,
    ) -> Result<reads::Reader, reads::NoRead> {
        if self.public_reads {
            return Ok(reads::Reader::Anyone);
        }
        let unauthenticated = |why: String| {
            self.metrics.reads_unauthenticated.inc();
            reads::NoRead::Unauthenticated(why)
        };
        let Some(value) = authorization else {
            return Err(unauthenticated(format!(
                "pod {:?} answers reads of its record to a key it knows: sign the read (`sigil audit --key FILE`), \
                 or send an access token (`sigil mcp token`)",
                self.pod
            )));
        };
        let key = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                let grant = self.grant(token.trim());
                grant.ok_or_else(|| unauthenticated("the access token is unknown or expired".into()))?.caller
            }
            _ => reads::verify(value, &self.pod, method, path_and_query, sigil_primitives::clock::now_ms())
                .map_err(unauthenticated)?,
        };
        if !self.readers.take(&key, Instant::now()) {
            self.metrics.rate_limited.inc();
            return Err(reads::NoRead::TooMany);
        }
        Ok(if self.auditors.contains(&key) || self.node.is_member(&key) {
            reads::Reader::Auditor(key)
        } else {
            reads::Reader::Caller(key)
        })
    }
}

/// `N` bytes from the system's secure random source.
pub fn random<const N: usize>() -> Result<[u8; N], NoRandomness> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| NoRandomness)?;
    Ok(b)
}

/// Standard base64 with padding.
pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes standard base64.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("not base64: {e}"))
}

/// How a node serves its API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Listen address, e.g. `127.0.0.1:8443`.
    pub listen: std::net::SocketAddr,
    /// An operator certificate chain and PKCS#8 key (DER) instead of the attested certificate.
    pub operator_tls: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    /// The node's evidence bundle (in its attested certificate).
    pub evidence: Vec<u8>,
    /// Other pods' endpoints, for redirects.
    pub directory: PodDirectory,
    /// Labels shown in the pod status.
    pub labels: Labels,
    /// Connection caps.
    pub limits: api::Limits,
    /// The https URLs clients reach this node at (`[api] public_urls`). When set, an MCP client assertion is
    /// exchanged only if its audience is this node's issuer at one of them, so an assertion made for another server
    /// (one a phishing server was sent) is refused here. Empty: any https URL that ends in the pod's issuer path.
    pub public_urls: Vec<String>,
    /// Anyone may read the record (`[api] public_reads`): the audit log, entries and receipts. Default: only a
    /// key the node can tell, and only what that key may see ([`reads`]).
    pub public_reads: bool,
    /// Keys that may read every entry, besides the pod's governance members (`[api] auditors`).
    pub auditors: Vec<[u8; 32]>,
}

/// A node with its API running.
pub struct RunningNode {
    /// The service (and its pod node).
    pub service: Arc<Service>,
    /// Where the API listens.
    pub api: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    /// Starts the pod node and its API.
    pub async fn start(pod: sigil_pod::PodConfig, api: ApiConfig) -> Result<RunningNode, StartError> {
        let seed = pod.seed;
        let name = pod.name.clone();
        let pod_id = match &pod.genesis {
            Entry::Genesis(g) => g.pod.clone(),
            _ => return Err(StartError::NotGenesis),
        };
        let listen = |error| StartError::Listen { addr: api.listen, error };
        let listener = tokio::net::TcpListener::bind(api.listen).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        let tls = match &api.operator_tls {
            Some((chain, key)) => tls::server_config(chain.clone(), key.clone())?,
            None => {
                let (cert, key) = tls::attested_certificate(&seed, &name, &pod_id, &api.evidence)?;
                tls::server_config(vec![cert], key)?
            }
        };
        let node = PodNode::start(sigil_pod::PodConfig { replay: replay::replayer()?, ..pod }).await?;
        let limits = api.limits;
        let service = Arc::new(Service::new(node, &seed, api)?);
        let (stop, rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(api::serve(service.clone(), listener, tls, limits, rx));
        Ok(RunningNode { service, api: addr, stop, server })
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.api)
    }

    /// Stops the API and the node.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        match Arc::try_unwrap(self.service) {
            Ok(s) => s.node.stop().await,
            Err(s) => {
                // A request still holds the service: give it a moment, then stop the node under it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(s) = Arc::try_unwrap(s) {
                    s.node.stop().await;
                }
            }
        }
    }
}
