//! # service: what a node does for its callers
//!
//! Between the HTTP API ([`api`]) and the pod ([`crate::pod`]): signed requests are checked (signature,
//! freshness, nonce, pod, the applet's access rules), executed in the enclave runtime against the pod's committed
//! state, and the execution receipt is committed through consensus with the request and its write set; the
//! caller gets the receipt with its Merkle proof and cosigned checkpoint. Every refusal is committed too, as a
//! `request_rejected` entry (who, what, why), except requests for another pod: those are redirected and nothing
//! of them is kept. Applet deployments (member-approved) are checked and compiled before they are committed.
//!
//! What it must never do: run anything before the request's signature, freshness, nonce and authorization have
//! passed; answer "committed" before the entry is in the ledger; keep or forward the body of a request for
//! another pod.

pub mod api;
pub mod client;
pub mod mcp;
pub mod metrics;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enclave_runtime::{Applet, Call, Runtime};
use ledger::entry::{AppletDeployed, RequestRejected};
use ledger::request::SignedRequest;
use ledger::{Entry, Hash};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::pod::app::{now_ms, Committed};
use crate::pod::block::Attachments;
use crate::pod::state::{self, LedgerState};
use crate::pod::PodNode;

/// How long a caller waits for a commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Executions retried when a concurrent invocation changed what one read.
const CONFLICT_RETRIES: usize = 5;

/// A deployment as the API takes it (CBOR): the member-approved `applet_deployed` entry and the module.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The entry's canonical encoding.
    pub entry: ByteBuf,
    /// The wasm module.
    pub code: ByteBuf,
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
    /// 409: a replay of a request already committed.
    Conflict(String, Option<u64>),
    /// 307: the request is for another pod; its endpoints.
    Redirect(String, Vec<String>),
    /// 421: a pod this node does not know.
    Misdirected(String),
    /// 503: the node cannot take it now (starting, mempool full, commit timed out).
    Unavailable(String),
}

impl Refused {
    /// The reason.
    pub fn reason(&self) -> &str {
        match self {
            Refused::BadRequest(r, _)
            | Refused::Forbidden(r, _)
            | Refused::NotFound(r, _)
            | Refused::Conflict(r, _)
            | Refused::Redirect(r, _)
            | Refused::Misdirected(r)
            | Refused::Unavailable(r) => r,
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

/// A committed invocation, as the caller gets it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invoked {
    /// The request hash (hex).
    pub request_hash: String,
    /// The entry's ledger index.
    pub index: u64,
    /// The block height.
    pub height: u64,
    /// The outcome (`ok`, or the error or trap).
    pub outcome: String,
    /// The output as text (UTF-8, lossy).
    pub output: String,
    /// Fuel used.
    pub fuel_used: u64,
    /// The executing node.
    pub executor: String,
    /// The COSE receipt (base64), once a cosigned checkpoint covers the entry.
    pub receipt: Option<String>,
}

/// A node's service: its pod node, its runtime, its identity.
pub struct Service {
    /// The pod node.
    pub node: PodNode,
    pod: String,
    runtime: Runtime,
    applets: Mutex<HashMap<Hash, Applet>>,
    key: ring::signature::Ed25519KeyPair,
    /// The node's evidence bundle (in its certificate).
    pub evidence: Vec<u8>,
    /// Other pods, for redirects.
    pub directory: PodDirectory,
    /// The node's labels.
    pub labels: Labels,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    started: Instant,
}

impl Service {
    /// A service around a started node.
    pub fn new(
        node: PodNode,
        seed: &[u8; 32],
        evidence: Vec<u8>,
        directory: PodDirectory,
        labels: Labels,
    ) -> anyhow::Result<Service> {
        let pod = node.ledger().lock().expect("not poisoned").pod().to_string();
        let runtime = Runtime::new(enclave_runtime::RuntimeConfig::default())?;
        Ok(Service {
            node,
            pod,
            runtime,
            applets: Mutex::new(HashMap::new()),
            key: ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| anyhow::anyhow!("{e}"))?,
            evidence,
            directory,
            labels,
            metrics: metrics::Metrics::default(),
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

    /// Commits a refusal of `raw` (a request as received) and returns it as the API answers it. A request whose
    /// refusal is already in the ledger is not recorded again.
    async fn refuse(
        &self,
        raw: &[u8],
        req: Option<&SignedRequest>,
        reason: String,
        kind: fn(String, Option<u64>) -> Refused,
    ) -> Refused {
        self.metrics.rejected.inc();
        let request_hash = SignedRequest::hash_of(raw);
        let known = self.node.ledger().lock().expect("not poisoned").by_rejection(&request_hash).ok().flatten();
        if let Some(i) = known {
            return kind(reason, Some(i));
        }
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        let entry = Entry::RequestRejected(RequestRejected {
            request_hash,
            // Only a well-formed key is recorded as the claimed caller: the audit entry is not a place to store
            // whatever a request carried.
            caller: ByteBuf::from(req.and_then(|r| r.request.caller_key()).map(|k| k.to_vec()).unwrap_or_default()),
            applet: req.map(|r| clip(&r.request.applet, 64)).unwrap_or_default(),
            method: req.map(|r| clip(&r.request.method, 64)).unwrap_or_default(),
            reason: clip(&reason, 512),
            node: self.node.name().to_string(),
            at_ms: now_ms(),
        });
        let index = match self.node.submit(entry) {
            Ok(rx) => match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
                Ok(Ok(c)) => Some(c.index),
                _ => None,
            },
            Err(why) => {
                tracing::warn!("the refusal of a request could not be recorded: {why}");
                None
            }
        };
        kind(reason, index)
    }

    /// Signs `r` as its caller's delegate (this node), under the caller's client assertion.
    pub fn sign_delegated(&self, r: ledger::request::Request, assertion: String) -> SignedRequest {
        r.sign_delegated(assertion, &self.key)
    }

    /// Runs a signed request (`raw`: its canonical CBOR) and commits its receipt.
    pub async fn invoke(&self, raw: &[u8]) -> Result<Invoked, Refused> {
        let t0 = Instant::now();
        let req = match SignedRequest::decode(raw) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(raw, None, format!("malformed request: {e}"), Refused::BadRequest).await),
        };
        let r = &req.request;
        // Sovereignty first: a request for another pod is redirected, and nothing of it is kept here.
        if r.pod != self.pod {
            self.metrics.redirected.inc();
            return Err(match self.directory.pods.get(&r.pod) {
                Some(urls) => Refused::Redirect(format!("pod {:?} is served by its own nodes", r.pod), urls.clone()),
                None => Refused::Misdirected(format!("this node serves pod {:?}, not {:?}", self.pod, r.pod)),
            });
        }
        let caller = match req.verify(&self.pod, now_ms()) {
            Ok(k) => k,
            Err(why) => return Err(self.refuse(raw, Some(&req), why, Refused::BadRequest).await),
        };
        let request_hash = SignedRequest::hash_of(raw);
        let mut last = String::new();
        for _ in 0..CONFLICT_RETRIES {
            // Checked on every attempt: another node may have committed this request (or its nonce) meanwhile.
            let (replay, nonce_used, deployed, attestation, delegate) = {
                let rules = self.node.rules().ok_or_else(|| Refused::Unavailable("the node is starting".into()))?;
                let l = self.node.ledger();
                let l = l.lock().expect("not poisoned");
                let replay = l.by_request(&request_hash).ok().flatten();
                let nonce_used = l.aux_get(&state::nonce_key(&caller, &r.nonce)).ok().flatten().is_some();
                let att = rules.attestations.get(self.node.name()).copied();
                let delegate = req
                    .delegate_key()
                    .map(|k| rules.set.validators.iter().find(|v| v.public_key.0 == k).map(|v| v.name.clone()));
                (replay, nonce_used, rules.applets.get(&r.applet).cloned(), att, delegate)
            };
            if let Some(i) = replay {
                let why = format!("a replay: this request was committed at index {i}");
                return Err(self.refuse(raw, Some(&req), why, Refused::Conflict).await);
            }
            if nonce_used {
                let why = "a replay: the caller used this nonce before".to_string();
                return Err(self.refuse(raw, Some(&req), why, Refused::Conflict).await);
            }
            let Some(deployed) = deployed else {
                let why = format!("applet {:?} is not deployed in pod {:?}", r.applet, self.pod);
                return Err(self.refuse(raw, Some(&req), why, Refused::NotFound).await);
            };
            if let Err(why) = deployed.manifest.authorize(&caller, &r.method, r.args.len()) {
                let why = format!("not authorized: {why}");
                return Err(self.refuse(raw, Some(&req), why, Refused::Forbidden).await);
            }
            // A delegated request names a validator of the pod as its delegate; the entry names it too.
            let delegate = match delegate {
                None => None,
                Some(Some(name)) => Some(name),
                Some(None) => {
                    let why = "the request's delegate is not a validator of the pod".to_string();
                    return Err(self.refuse(raw, Some(&req), why, Refused::BadRequest).await);
                }
            };
            let Some(attestation) = attestation else {
                return Err(Refused::Unavailable("this node is not an attested validator of the pod".into()));
            };
            let applet = self.applet(&deployed.manifest).map_err(Refused::Unavailable)?;
            let state = Arc::new(LedgerState::new(self.node.ledger()));
            let call = Call { request_hash, caller, method: &r.method, input: &r.args, now_ms: now_ms() };
            let exec = tokio::task::block_in_place(|| self.runtime.invoke(&applet, &call, state))
                .map_err(|e| Refused::Unavailable(format!("the runtime: {e}")))?;
            let mut inv = exec.receipt.to_invocation(&caller, &r.applet, &r.method, self.node.name(), attestation);
            inv.delegate = delegate;
            let outcome = inv.outcome.clone();
            // The request's signature over `raw` was verified above.
            let attachments = Attachments {
                request: raw.to_vec(),
                write_set: exec.write_set.encode(),
                verified: true,
                ..Default::default()
            };
            let rx = match self.node.submit_with(Entry::Invocation(inv), attachments) {
                Ok(rx) => rx,
                // Committed state moved under it (a conflict), or the request landed meanwhile (a replay, seen
                // on the next attempt): run it again.
                Err(why) if why.contains("a conflict") || why.contains("replay") => {
                    last = why;
                    continue;
                }
                Err(why) if why.contains("mempool is full") => return Err(Refused::Unavailable(why)),
                Err(why) => return Err(Refused::BadRequest(why, None)),
            };
            let c = match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
                Ok(Ok(c)) => c,
                Ok(Err(_)) => {
                    // Dropped at proposal: a concurrent invocation changed what this one read. Run it again.
                    last = "a concurrent invocation changed the state it read".into();
                    continue;
                }
                Err(_) => return Err(Refused::Unavailable("the commit did not happen within 30 s".into())),
            };
            self.metrics.invoked(&outcome, t0.elapsed());
            return Ok(Invoked {
                request_hash: request_hash.to_hex(),
                index: c.index,
                height: c.height,
                outcome,
                output: String::from_utf8_lossy(&exec.output).into_owned(),
                fuel_used: exec.fuel_used,
                executor: self.node.name().to_string(),
                receipt: self.receipt_when_covered(c).await.map(|b| base64_encode(&b)),
            });
        }
        Err(Refused::Unavailable(format!("gave up after {CONFLICT_RETRIES} conflicting runs: {last}")))
    }

    /// The compiled applet for a manifest (its code from the pod state), cached by code digest.
    fn applet(&self, m: &enclave_runtime::Manifest) -> Result<Applet, String> {
        if let Some(a) = self.applets.lock().expect("not poisoned").get(&m.code_digest) {
            if a.manifest() == m {
                return Ok(a.clone());
            }
        }
        let code = self
            .node
            .ledger()
            .lock()
            .expect("not poisoned")
            .aux_get(&state::code_key(&m.code_digest))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the code of applet {} is not in this node's store", m.name))?;
        let a = self.runtime.load(m, &code).map_err(|e| format!("applet {}: {e}", m.name))?;
        self.applets.lock().expect("not poisoned").insert(m.code_digest, a.clone());
        Ok(a)
    }

    /// Checks, compiles and commits a deployment.
    pub async fn deploy(&self, body: &[u8]) -> Result<(Committed, AppletDeployed), Refused> {
        let d: Deployment = ledger::entry::canonical_decode(body, "deployment", crate::pod::block::MAX_BLOCK_BYTES)
            .map_err(|e| Refused::BadRequest(format!("malformed deployment: {e}"), None))?;
        let entry = Entry::decode(&d.entry).map_err(|e| Refused::BadRequest(format!("the entry: {e}"), None))?;
        let Entry::AppletDeployed(dep) = &entry else {
            return Err(Refused::BadRequest(format!("a {} entry, not applet_deployed", entry.kind()), None));
        };
        let m = enclave_runtime::Manifest::from_cbor(&dep.manifest)
            .map_err(|e| Refused::BadRequest(format!("the manifest: {e}"), None))?;
        // Compile it before anything is committed: a module that does not load would fail every call.
        self.runtime.load(&m, &d.code).map_err(|e| Refused::BadRequest(format!("the module: {e}"), None))?;
        let dep = dep.clone();
        let rx = self.node.submit_with(entry, Attachments { code: d.code.into_vec(), ..Default::default() }).map_err(
            |why| {
                if why.contains("approval") {
                    Refused::Forbidden(why, None)
                } else {
                    Refused::BadRequest(why, None)
                }
            },
        )?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(c)) => Ok((c, dep)),
            _ => Err(Refused::Unavailable("the deployment did not commit within 30 s".into())),
        }
    }

    /// Checks and commits a member-approved governance entry: a policy change or a node's removal (canonical CBOR
    /// of the entry, its approvals inside). Validators check the approvals against the pod's members and threshold.
    pub async fn govern(&self, body: &[u8]) -> Result<(Committed, &'static str), Refused> {
        let entry = Entry::decode(body).map_err(|e| Refused::BadRequest(format!("the entry: {e}"), None))?;
        match &entry {
            Entry::PolicyChanged(p) => {
                crate::pod::admission::parse_policy(&p.policy)
                    .map_err(|e| Refused::BadRequest(format!("the policy: {e}"), None))?;
            }
            Entry::NodeRemoved(_) => {}
            e => {
                return Err(Refused::BadRequest(
                    format!("a {} entry is not a governance entry (policy_changed, node_removed)", e.kind()),
                    None,
                ))
            }
        }
        let kind = entry.kind();
        let rx = self.node.submit(entry).map_err(|why| {
            if why.contains("approv") || why.contains("member") {
                Refused::Forbidden(why, None)
            } else {
                Refused::BadRequest(why, None)
            }
        })?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(c)) => Ok((c, kind)),
            _ => Err(Refused::Unavailable("the governance entry did not commit within 30 s".into())),
        }
    }

    /// The receipt of the entry committed at `c`, once a cosigned checkpoint covers it (waits up to 10 s: a block
    /// that changes the validator set is covered by the next one's checkpoint).
    async fn receipt_when_covered(&self, c: Committed) -> Option<Vec<u8>> {
        let mut tip = self.node.tip();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(r)) = self.receipt_at(c.index) {
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, tip.changed()).await;
        }
    }

    /// The receipt of entry `index` against the first cosigned checkpoint covering it.
    pub fn receipt_at(&self, index: u64) -> Result<Option<Vec<u8>>, String> {
        let l = self.node.ledger();
        let l = l.lock().expect("not poisoned");
        let Some(cp) = l.checkpoint_covering(index).map_err(|e| e.to_string())? else { return Ok(None) };
        l.receipt(index, &cp, self.node.name(), &self.key).map(Some).map_err(|e| e.to_string())
    }

    /// The index of the entry for request `hash`: its invocation, or else its rejection.
    pub fn find_request(&self, hash: &Hash) -> Result<Option<u64>, String> {
        let l = self.node.ledger();
        let l = l.lock().expect("not poisoned");
        match l.by_request(hash).map_err(|e| e.to_string())? {
            Some(i) => Ok(Some(i)),
            None => l.by_rejection(hash).map_err(|e| e.to_string()),
        }
    }
}

/// `N` bytes from the system's secure random source.
pub fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| anyhow::anyhow!("no system randomness"))?;
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
    pub async fn start(pod: crate::pod::PodConfig, api: ApiConfig) -> anyhow::Result<RunningNode> {
        let seed = pod.seed;
        let name = pod.name.clone();
        let pod_id = match &pod.genesis {
            Entry::Genesis(g) => g.pod.clone(),
            _ => anyhow::bail!("the genesis is not a genesis entry"),
        };
        let listener = tokio::net::TcpListener::bind(api.listen)
            .await
            .map_err(|e| anyhow::anyhow!("the API cannot listen on {}: {e}", api.listen))?;
        let addr = listener.local_addr()?;
        let tls = match &api.operator_tls {
            Some((chain, key)) => tls::server_config(chain.clone(), key.clone())?,
            None => {
                let (cert, key) = tls::attested_certificate(&seed, &name, &pod_id, &api.evidence)?;
                tls::server_config(vec![cert], key)?
            }
        };
        let node = PodNode::start(pod).await?;
        let service = Arc::new(Service::new(node, &seed, api.evidence, api.directory, api.labels)?);
        let (stop, rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(api::serve(service.clone(), listener, tls, rx));
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
