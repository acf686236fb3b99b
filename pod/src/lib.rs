//! # sigil-pod: a node's part in its pod's consensus
//!
//! Malachite (Tendermint) over libp2p, wired to the ledger. The engine side: [`context`] holds the types
//! consensus runs on, `signing` the domain-separated Ed25519 signatures and the validator-proof check that keeps
//! unadmitted peers out, [`codec`] the CBOR encoding of every message on the wire and in the WAL, and `app` the
//! loop that answers the engine (propose, validate, commit, serve sync), dispatching each message to its handler
//! under `app/`. The pod's own rules, free of engine types: [`types`] (heights, addresses, keys, block ids,
//! validator sets), `block` (the block format and the rules every validator checks before voting), `state`
//! (applet state, nonces and code beside the ledger) and [`admission`] (evidence checked against the pod's
//! policy). [`local`] builds pods on one host (the devnet and the tests); `testing` (feature `testing`) holds the
//! fixtures of tests and benchmarks.
//!
//! The crate root is the API the service uses: [`PodNode`] to start a node, submit entries and watch commits,
//! [`Attachments`] and [`Committed`], the read helpers over the ledger ([`nonce_used`], [`applet_code`],
//! [`state_value`], [`LedgerState`]) and [`MAX_BLOCK_BYTES`].
//!
//! What it must never do: vote for a block it has not re-validated against its own ledger; acknowledge a
//! decision before the block, its certificate and its entries are in one synced write; accept a validator
//! proof from a key the ledger has not admitted, or from a peer whose network key is not its ledger key; know
//! anything of HTTP, MCP or the CLI.

pub mod admission;
mod app;
mod block;
pub mod codec;
pub mod context;
mod error;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzz;
pub mod local;
pub mod reattest;
mod rejection;
pub mod replay;
mod signing;
pub mod standing;
mod state;
#[cfg(any(test, fuzzing, feature = "testing"))]
pub mod testing;
pub mod types;

pub use app::{block_time_at, decided_round, misbehaviour, root_at_height, Committed, Mempool, Tip};
pub use block::{Attachments, Block, Item, Rules, Suspended, MAX_BLOCK_BYTES};
pub use error::PodError;
pub use malachitebft_app_channel::app::types::core::LinearTimeouts;
pub use rejection::Rejection;
pub use state::{
    applet_code, delegate_of, deployment, exchanged, forget_exchanged, last_change, nonce_used, record_exchanged,
    state_value, Deployed, LedgerState,
};
pub use types::receipt_bytes;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use malachitebft_app_channel::app::config::{
    ConsensusConfig, DiscoveryConfig, NodeConfig, P2pConfig, PubSubProtocol, ValuePayload, ValueSyncConfig,
};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::Keypair;
use malachitebft_app_channel::{
    Channels, ConsensusContext, EngineBuilder, EngineHandle, NetworkContext, NetworkIdentity, RequestContext,
    Signer as _, SyncContext, WalContext,
};
use sigil_ledger::entry::Encoded;
use sigil_ledger::store::{Kv, Ledger};
use sigil_ledger::Entry;
use sigil_primitives::clock::now_ms;
use tokio::sync::{oneshot, watch, Notify};

use app::{App, AppConfig, Shared};

use codec::PodCodec;
use context::{Address, PodContext};
use signing::{Admitted, PodSigner, PodVerifier};

/// How one node takes part in its pod.
#[derive(Clone, Debug)]
pub struct PodConfig {
    /// The node's name in the ledger (its checkpoint key name).
    pub name: String,
    /// The node's identity seed: its ledger key, consensus key and libp2p key are all derived from it.
    pub seed: [u8; 32],
    /// Where the ledger (RocksDB) and the consensus WAL live.
    pub data_dir: PathBuf,
    /// The libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/27000`.
    pub listen: String,
    /// The other nodes, each `/ip4/…/tcp/…/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// The pod's genesis entry (creates the ledger on first start; must match it afterwards).
    pub genesis: Entry,
    /// Consensus timeouts.
    pub timeouts: LinearTimeouts,
    /// How long a proposer with nothing to propose waits before proposing an empty block.
    pub idle_block: Duration,
    /// How long an idle pod waits after an empty block before it commits another, unless an entry or a
    /// validator's wake comes first ([`IDLE_INTERVAL`] by default; zero: it does not wait).
    pub idle_interval: Duration,
    /// Most entries queued for a block.
    pub mempool_capacity: usize,
    /// How this node runs invocations again when the pod's policy asks validators to (`replay`): the node's wasm
    /// runtime. Without one, the node refuses the blocks that need a replay.
    pub replay: replay::Replayer,
    /// The node's TEE backend: with one, the node re-attests on the pod's schedule (`[reattestation] every_s`,
    /// [`reattest`]); without, it does not.
    pub attester: reattest::Attester,
    /// Misbehaviour to inject, for the tests of the pod's fault tolerance. Always [`Fault::None`] for a real node:
    /// `sigil node run` has no way to set it.
    pub fault: Fault,
}

/// Ways a node can be made to misbehave (tests of fault tolerance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// An honest node.
    #[default]
    None,
    /// Proposes whatever its mempool holds without checking it: forged receipts, replays and stale entries reach
    /// the other validators, which must refuse the block.
    UncheckedProposals,
    /// Double-signs: every vote it sends is followed by a conflicting one, every proposal by a proposal of
    /// another block (Malachite's Byzantine network proxy; feature `byzantine`).
    #[cfg(feature = "byzantine")]
    Equivocate,
}

#[cfg(feature = "byzantine")]
mod byzantine {
    use malachitebft_app_channel::{ByzantineContext, NetworkIdentity};
    use malachitebft_engine_byzantine::{ByzantineConfig, Trigger};

    use super::codec::PodCodec;
    use super::context::{Address, BlockId, PodContext};
    use super::signing::PodSigner;

    /// A network proxy that equivocates every vote and proposal.
    pub fn context(
        identity: NetworkIdentity,
        seed: &[u8; 32],
        address: Address,
    ) -> ByzantineContext<PodContext, PodCodec> {
        let flip = |id: &BlockId| {
            let mut h = id.0;
            h.0[31] ^= 0xff;
            BlockId(h)
        };
        ByzantineContext {
            identity,
            codec: PodCodec,
            config: ByzantineConfig::new(Some(7))
                .with_equivocate_votes(Trigger::Always)
                .with_equivocate_proposals(Trigger::Always),
            signer: Box::new(PodSigner::new(seed)),
            address,
            conflicting_value_fn: Some(Box::new(move |v: &BlockId| flip(v))),
            conflicting_vote_value_fn: Some(Box::new(move |v: Option<&BlockId>| match v {
                Some(id) => flip(id),
                None => BlockId(sigil_ledger::Hash::digest(b"sigil: a conflicting vote")),
            })),
        }
    }
}

/// How long an idle pod waits between empty blocks by default: one heartbeat block per interval.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(10);

impl PodConfig {
    /// Timeouts for a pod on one host or one LAN: short, growing per round.
    pub fn local_timeouts() -> LinearTimeouts {
        LinearTimeouts {
            propose: Duration::from_millis(1000),
            propose_delta: Duration::from_millis(250),
            prevote: Duration::from_millis(500),
            prevote_delta: Duration::from_millis(250),
            precommit: Duration::from_millis(500),
            precommit_delta: Duration::from_millis(250),
            rebroadcast: Duration::from_millis(2000),
            max_timeout: Duration::from_secs(10),
        }
    }
}

struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// The libp2p peer id of the node with this identity seed.
pub fn peer_id(seed: &[u8; 32]) -> String {
    Keypair::ed25519_from_bytes(*seed).expect("32 bytes").public().to_peer_id().to_string()
}

/// The libp2p peer id of the node whose ledger key is `public_key` (the same Ed25519 key).
pub fn peer_id_of(public_key: &[u8; 32]) -> Result<String, PodError> {
    let k =
        libp2p_identity::ed25519::PublicKey::try_from_bytes(public_key).map_err(|e| PodError::Key(e.to_string()))?;
    Ok(libp2p_identity::PublicKey::from(k).to_peer_id().to_string())
}

/// The public (ledger) key of the node with this identity seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    PodSigner::new(seed).public_key().0
}

/// A running node.
pub struct PodNode {
    /// The node's consensus address (its ledger key).
    pub address: Address,
    name: String,
    signer: Arc<PodSigner>,
    fault: Fault,
    engine: EngineHandle,
    app: tokio::task::JoinHandle<Result<(), String>>,
    shared: Shared,
    /// The re-attestation loop, where the node has an attester.
    #[allow(dead_code)] // held for its drop
    reattest: Option<AbortOnDrop>,
    /// The task that looks at the validators' standing.
    standing: AbortOnDrop,
}

/// A task that stops when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PodNode {
    /// Opens (or creates, from the genesis) the node's ledger and starts consensus.
    pub async fn start(cfg: PodConfig) -> Result<PodNode, PodError> {
        check_genesis(&cfg.genesis)?; // before anything is created
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|error| PodError::Io { what: format!("creating {}", cfg.data_dir.display()), error })?;
        let kv = open_store(&cfg.data_dir.join("ledger"))?;
        let ledger = if kv.get(b"m")?.is_some() {
            let l = Ledger::open(kv)?;
            if l.entry_bytes(0)? != cfg.genesis.encode() {
                return Err(PodError::OtherGenesis { dir: cfg.data_dir.clone(), pod: l.pod().to_string() });
            }
            l
        } else {
            Ledger::create(kv, &cfg.genesis)?
        };
        let signer = Arc::new(PodSigner::new(&cfg.seed));
        let address = Address(signer.public_key().0);
        let member = ledger.validators_at(ledger.size()).members.iter().any(|m| m.public_key == address.0);
        if !member {
            tracing::warn!(name = %cfg.name, "this node is not a validator of the pod (yet): it follows the pod and votes once admitted");
        }
        let (tip, _) = watch::channel(Tip::default());
        let shared = Shared {
            rules: Arc::new(Mutex::new(None)),
            ledger: Arc::new(Mutex::new(ledger)),
            mempool: Arc::new(Mutex::new(Mempool::new(cfg.mempool_capacity))),
            queued: Arc::new(Notify::new()),
            tip,
            lapsed: Default::default(),
        };
        let admitted = Admitted::default();
        let app = App::new(
            AppConfig {
                timeouts: cfg.timeouts,
                idle_block: cfg.idle_block,
                idle_interval: cfg.idle_interval,
                replay: cfg.replay.clone(),
                fault: cfg.fault,
                peers: cfg.peers.iter().filter_map(|p| p.parse().ok()).collect(),
            },
            signer.clone(),
            shared.clone(),
            admitted.clone(),
        )
        .map_err(PodError::State)?;

        let keypair = Keypair::ed25519_from_bytes(cfg.seed).expect("32 bytes");
        let peer = keypair.public().to_peer_id();
        let proof = signer
            .sign_validator_proof(address.0.to_vec(), peer.to_bytes())
            .await
            .map_err(|e| PodError::Engine(format!("signing the validator proof: {e}")))?;
        let proof_bytes = PodCodec.encode(&proof).map_err(|e| PodError::Engine(e.to_string()))?;
        // A node that is not (yet) a validator sends no validator proof: the pod's nodes would refuse it and
        // disconnect. It connects as a follower, syncs, and votes from the height after its admission.
        let identity = if member {
            NetworkIdentity::new_validator(cfg.name.clone(), keypair, address.to_string(), proof_bytes)
        } else {
            NetworkIdentity::new(cfg.name.clone(), keypair, Some(address.to_string()))
        };
        let parse = |a: &str| a.parse::<Multiaddr>().map_err(|_| PodError::Address(a.to_string()));
        let peers: Vec<Multiaddr> = cfg.peers.iter().map(|p| parse(p)).collect::<Result<_, _>>()?;
        // Pod data goes only to the pod's nodes: the configured peers (libp2p refuses every other peer), less those
        // of nodes the pod has removed. The app drops and restores peers as the set changes (`app::peers`).
        // A suspended node is no former one: it follows the pod and re-attests through its peers.
        let suspended: Vec<[u8; 32]> = shared
            .rules
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map_or(Vec::new(), |r| r.suspended.values().map(|s| s.key).collect());
        let mut former = shared.ledger.lock().expect("not poisoned").former_validators();
        former.retain(|k| !suspended.iter().any(|s| s.as_slice() == k.as_slice()));
        let current: Vec<Multiaddr> = peers
            .iter()
            .filter(|a| {
                let gone = former.iter().any(|k| app::peer_is(a, k));
                if gone {
                    tracing::info!(peer = %a, "not connecting to a peer the pod has removed");
                }
                !gone
            })
            .cloned()
            .collect();
        let discovery = DiscoveryConfig { enabled: false, max_connections_per_ip: 64, ..DiscoveryConfig::default() };
        let p2p = P2pConfig {
            listen_addr: parse(&cfg.listen)?,
            persistent_peers: current,
            persistent_peers_only: true,
            discovery,
            protocol: PubSubProtocol::default(),
            ..P2pConfig::default()
        };
        let engine_cfg = EngineConfig {
            moniker: cfg.name.clone(),
            consensus: ConsensusConfig {
                p2p,
                value_payload: ValuePayload::ProposalAndParts,
                ..ConsensusConfig::default()
            },
            value_sync: ValueSyncConfig {
                status_update_interval: Duration::from_millis(500),
                ..ValueSyncConfig::default()
            },
        };
        let verifier = PodVerifier { admitted };
        let wal = WalContext::new(cfg.data_dir.join("wal").join("consensus.wal"), PodCodec);
        let consensus =
            ConsensusContext::new_validator(address, Box::new(verifier), Box::new(PodSigner::new(&cfg.seed)));
        #[cfg(feature = "byzantine")]
        let (channels, engine) = if cfg.fault == Fault::Equivocate {
            EngineBuilder::new(PodContext, engine_cfg)
                .with_default_wal(wal)
                .with_byzantine_network(byzantine::context(identity, &cfg.seed, address))
                .await
                .map_err(|e| PodError::Engine(format!("starting the byzantine network proxy: {e:#}")))?
                .with_default_sync(SyncContext::new(PodCodec))
                .with_default_consensus(consensus)
                .with_default_request(RequestContext::new(100))
                .build()
                .await
                .map_err(|e| PodError::Engine(format!("starting consensus: {e:#}")))?
        } else {
            engine(engine_cfg, wal, identity, consensus).await?
        };
        #[cfg(not(feature = "byzantine"))]
        let (channels, engine) = engine(engine_cfg, wal, identity, consensus).await?;
        let network = channels.network.clone();
        let name = cfg.name.clone();
        let app = tokio::spawn(async move {
            let r = app.run(channels).await;
            if let Err(e) = &r {
                tracing::error!(node = %name, "the consensus app stopped: {e}");
            }
            r
        });
        let reattest = cfg.attester.0.clone().map(|collect| {
            let (queued, fault) = (shared.clone(), cfg.fault);
            let ctx = reattest::Ctx {
                name: cfg.name.clone(),
                pod: shared.ledger.lock().expect("not poisoned").pod().to_string(),
                signer: signer.clone(),
                shared: shared.clone(),
                collect,
                queue: Box::new(move |e, a| queue(&queued, fault, e, a).map_err(|r| r.to_string())),
                offer: Box::new(move |e, signature| offer(&network, e, signature)),
            };
            AbortOnDrop(tokio::spawn(reattest::run(ctx)))
        });
        let standing = AbortOnDrop(tokio::spawn(standing::watch(shared.clone())));
        Ok(PodNode { address, name: cfg.name, signer, fault: cfg.fault, engine, app, shared, reattest, standing })
    }

    /// Queues an entry for a block; the receiver fires once it is committed (dropped if it never will be). An
    /// invocation or rejection this node executed, or its own re-attestation, is signed with its key here.
    pub fn submit(&self, entry: Entry) -> Result<oneshot::Receiver<Committed>, Rejection> {
        self.submit_with(entry, Attachments::default())
    }

    /// [`PodNode::submit`] with what the entry needs besides a signature: an invocation's signed request and
    /// write set, a deployment's code. `attachments.verified` says the caller verified the request's signature
    /// over these bytes (the node's own signature it makes here); it is ignored for entries of other nodes.
    pub fn submit_with(
        &self,
        entry: Entry,
        mut attachments: Attachments,
    ) -> Result<oneshot::Receiver<Committed>, Rejection> {
        let mine = match &entry {
            Entry::Invocation(i) => i.executor == self.name,
            Entry::RequestRejected(r) => r.node == self.name,
            Entry::Reattested(r) => r.node == self.name,
            Entry::NodeReinstated(r) => r.validator.name == self.name,
            _ => false,
        };
        let enc = Encoded::new(entry);
        if mine {
            attachments.signature = self.signer.sign(&signing::receipt_bytes(&enc.leaf_hash())).0.to_vec();
        } else {
            attachments.verified = false; // a signature this node did not make is checked
        }
        self.submit_encoded(enc, attachments)
    }

    /// Queues an entry with the signature that vouches for it (see [`block::Item`]) and its other attachments.
    pub fn submit_signed(
        &self,
        entry: Entry,
        attachments: Attachments,
    ) -> Result<oneshot::Receiver<Committed>, Rejection> {
        self.submit_encoded(Encoded::new(entry), Attachments { verified: false, ..attachments })
    }

    /// Checks an entry against the ledger as a validator would, then queues it: an entry that cannot be
    /// committed is refused here, with the reason.
    fn submit_encoded(
        &self,
        entry: Encoded,
        attachments: Attachments,
    ) -> Result<oneshot::Receiver<Committed>, Rejection> {
        queue(&self.shared, self.fault, entry, attachments)
    }

    /// The rules entries are checked by, as of the last commit (validators, attestations, policy, applets).
    pub fn rules(&self) -> Option<block::Rules> {
        self.shared.rules.lock().expect("not poisoned").clone()
    }

    /// The name of the validator whose key is `key`, as of the last commit (without copying the rules).
    pub fn validator_named(&self, key: &[u8; 32]) -> Option<String> {
        self.shared.rules.lock().expect("not poisoned").as_ref()?.set.by_key(key).map(|v| v.name.clone())
    }

    /// Whether `key` is one of the pod's governance members, as of the last commit.
    pub fn is_member(&self, key: &[u8; 32]) -> bool {
        let rules = self.shared.rules.lock().expect("not poisoned");
        rules.as_ref().is_some_and(|r| r.members.iter().any(|m| m.public_key.as_slice() == key))
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tip after each commit.
    pub fn tip(&self) -> watch::Receiver<Tip> {
        self.shared.tip.subscribe()
    }

    /// The node's ledger.
    pub fn ledger(&self) -> Arc<Mutex<Ledger>> {
        self.shared.ledger.clone()
    }

    /// Whether the app loop has stopped (an error it logged, or the engine closed).
    pub fn app_stopped(&self) -> bool {
        self.app.is_finished()
    }

    /// Stops consensus and the app, and waits for them.
    pub async fn stop(self) {
        drop(self.reattest);
        drop(self.standing);
        self.engine.actor.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.engine.handle).await;
        self.app.abort();
        let _ = self.app.await;
    }
}

/// Every genesis validator's evidence must bind its key to the pod and satisfy the genesis policy, judged at the
/// genesis' own time (`created_at`), as every later attestation is judged at the time of the block that commits it.
/// A node that restarts does not re-judge what its pod settled: evidence or collateral that lapsed since (a VLEK
/// after its year, TDX collateral after its month) cannot stop a pod's nodes from starting; keeping evidence fresh is
/// re-attestation's job ([`reattest`], docs/attestation.md "Attestation over time"). `sigil genesis build` judges
/// the evidence at its own clock when it writes `created_at`.
pub fn check_genesis(genesis: &Entry) -> Result<(), PodError> {
    let bad = PodError::Genesis;
    let Entry::Genesis(g) = genesis else { return Err(bad(format!("the genesis is a {} entry", genesis.kind()))) };
    let policy = admission::parse_policy(&g.policy).map_err(bad)?;
    if g.evidence.len() != g.validators.len() {
        let (v, e) = (g.validators.len(), g.evidence.len());
        return Err(bad(format!("the genesis has {v} validators but {e} evidence bundles")));
    }
    for (v, ev) in g.validators.iter().zip(&g.evidence) {
        let key: [u8; 32] = v
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("validator {}: a {}-byte key", v.name, v.public_key.len())))?;
        admission::verify(&policy, &g.pod, &key, &[], ev, g.created_at)
            .map_err(|why| bad(format!("genesis validator {}: {why} (judged at the genesis' time)", v.name)))?;
    }
    Ok(())
}

/// Checks an entry against the ledger as a validator would, then queues it in the node's mempool (see
/// [`PodNode::submit_signed`]).
fn queue(
    shared: &app::Shared,
    fault: Fault,
    entry: Encoded,
    attachments: Attachments,
) -> Result<oneshot::Receiver<Committed>, Rejection> {
    if matches!(entry.entry(), Entry::Genesis(_)) {
        return Err("a genesis cannot be submitted".into());
    }
    if fault != Fault::UncheckedProposals {
        // Lock order: the rules, then the ledger (the app never holds the ledger while it takes the rules).
        let guard = shared.rules.lock().expect("not poisoned");
        let rules = guard.as_ref().ok_or(Rejection::Starting)?;
        let l = shared.ledger.lock().expect("not poisoned");
        let now = now_ms().max(rules.parent_time_ms);
        block::Checker::new(&l, rules, now)
            .check(0, &entry, &attachments)
            .map_err(|why| why.map(|why| why.replacen("entry 0 ", "", 1)))?;
    }
    // Checked in full above (or signed here): the proposer need not verify its signatures again.
    let attachments = Attachments { verified: fault != Fault::UncheckedProposals, ..attachments };
    let rx = shared.mempool.lock().expect("not poisoned").push(entry, attachments)?;
    shared.queued.notify_one();
    Ok(rx)
}

/// Publishes a signed entry to the pod's nodes as a [`context::ProposalPart::Reinstate`] (each its own stream,
/// so the network does not drop a second offer as one it has seen).
fn offer(
    network: &tokio::sync::mpsc::Sender<malachitebft_app_channel::NetworkMsg<PodContext>>,
    entry: Encoded,
    signature: types::Signature,
) -> Result<(), String> {
    use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
    static OFFERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = OFFERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = StreamId::new(bytes::Bytes::from(
        [b"reinstate".as_slice(), &now_ms().to_be_bytes(), &n.to_be_bytes()].concat(),
    ));
    let part = context::ProposalPart::Reinstate { entry: bytes::Bytes::from(entry.bytes().to_vec()), signature };
    let msg = StreamMessage::new(id, 0, StreamContent::Data(part));
    network
        .try_send(malachitebft_app_channel::NetworkMsg::PublishProposalPart(msg))
        .map_err(|e| format!("offering the entry to the pod: {e}"))
}

/// Malachite with its own network, WAL, sync and consensus actors.
async fn engine(
    cfg: EngineConfig,
    wal: WalContext<PodCodec>,
    identity: NetworkIdentity,
    consensus: ConsensusContext<PodContext>,
) -> Result<(Channels<PodContext>, EngineHandle), PodError> {
    EngineBuilder::new(PodContext, cfg)
        .with_default_wal(wal)
        .with_default_network(NetworkContext::new(identity, PodCodec))
        .with_default_sync(SyncContext::new(PodCodec))
        .with_default_consensus(consensus)
        .with_default_request(RequestContext::new(100))
        .build()
        .await
        .map_err(|e| PodError::Engine(format!("starting consensus: {e:#}")))
}

/// The node's RocksDB store at `path`.
#[cfg(feature = "rocksdb")]
fn open_store(path: &std::path::Path) -> Result<Box<dyn Kv>, PodError> {
    Ok(Box::new(sigil_ledger::store::RocksKv::open(path)?))
}

/// Built without RocksDB (the fuzz build): a node cannot start.
#[cfg(not(feature = "rocksdb"))]
fn open_store(path: &std::path::Path) -> Result<Box<dyn Kv>, PodError> {
    Err(PodError::Engine(format!("this build has no RocksDB (feature `rocksdb`) for {}", path.display())))
}
