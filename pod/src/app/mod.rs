//! The application side of consensus: the loop that answers the engine. [`App::run`] takes each message the
//! engine sends and [`App::handle`] dispatches it to its `on_*` handler, in the file named for what it does:
//!
//! | file | what | handlers |
//! |---|---|---|
//! | `mempool.rs` | entries waiting for a block; building this node's block | `on_get_value` |
//! | `streams.rs` | proposals as part streams, out and in | `on_started_round`, `on_received_proposal_part`, `on_restream_proposal` |
//! | `commit.rs` | validating blocks, cosigning checkpoints, the commit | `on_extend_vote`, `on_verify_vote_extensions`, `on_decided`, `on_finalized` |
//! | `sync.rs` | decided blocks served to and taken from peers that sync | `on_get_decided_values`, `on_process_synced_value` |
//! | `store.rs` | what the app keeps beside the ledger (tip, certificates, roots, undecided blocks, evidence) | |
//! | `peers.rs` | who the node talks to: configured peers, less the validators the pod removed | (after `on_decided`) |
//! | `idle.rs` | an idle pod waits for entries instead of committing empty blocks; wakes | (after `on_finalized`) |
//!
//! Every handler re-validates what it is given against the node's own ledger: a block is voted for only once the
//! block rules (`crate::block`) pass, and committed in one synced write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::VoteExtensionError;
use malachitebft_app_channel::app::engine::host::{Next, SyncedValueOutcome};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, Context as _, ExtendedCommitCertificate, HeightParams, LinearTimeouts, Round, ValidatorSet as _,
    Validity, VoteExtensionPolicy, VoteExtensions,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, MisbehaviorEvidence, PeerId, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg, NetworkRequest};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use sigil_ledger::entry::Encoded;
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash};
use sigil_primitives::clock::now_ms;
use tokio::sync::{oneshot, watch, Notify};

use super::block::{self, Attachments, Block, Effects, Rules, MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES};
use super::codec::PodCodec;
use super::context::{Address, BlockId, Height, PodContext, ProposalPart, PublicKey, Signature, ValidatorSet};
use super::signing::{self, Admitted, PodSigner};

mod commit;
mod idle;
mod mempool;
mod peers;
mod store;
mod streams;
mod sync;

pub use mempool::Mempool;
pub use store::{block_time_at, decided_round, misbehaviour, root_at_height};

use commit::{checkpoint_after, Prepared};
pub(crate) use peers::peer_is;
pub(crate) use store::height_records;
pub(crate) use store::load_rules;
use store::{height_key, keys, stored_tip};
use streams::{Assembled, Partial};

/// The ledger's state after the last committed block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tip {
    /// The last decided height (0 before the first block).
    pub height: u64,
    /// Ledger size.
    pub size: u64,
    /// Ledger root.
    pub root: Hash,
}

/// Where a committed entry landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its ledger index.
    pub index: u64,
    /// The height of its block.
    pub height: u64,
}

/// What the app shares with the node's handle.
#[derive(Clone)]
pub struct Shared {
    /// The rules entries are checked by, as of the last commit; `None` until the app has loaded them.
    pub rules: Arc<Mutex<Option<Rules>>>,
    /// The ledger (the app writes it; others read).
    pub ledger: Arc<Mutex<Ledger>>,
    /// The mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Woken when an entry is queued.
    pub queued: Arc<Notify>,
    /// The tip after every commit.
    pub tip: watch::Sender<Tip>,
    /// Validators whose standing had lapsed when last looked at (`crate::standing::watch`): this node, when it
    /// proposes, judges them again at its block's time and suspends those still lapsed.
    pub lapsed: Arc<Mutex<Vec<String>>>,
}

/// Tunables of the app.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Consensus timeouts of every height.
    pub timeouts: LinearTimeouts,
    /// How long a proposer with an empty mempool waits for entries before proposing an empty block.
    pub idle_block: Duration,
    /// How long an idle pod waits after an empty block before the next height (zero: it does not wait).
    pub idle_interval: Duration,
    /// How invocations are run again where the policy asks for it.
    pub replay: crate::replay::Replayer,
    /// Injected misbehaviour (tests).
    pub fault: super::Fault,
    /// The configured peers (persistent): those of validators the pod removes are dropped, and come back if
    /// the node is admitted again.
    pub peers: Vec<Multiaddr>,
}

/// The app's state.
pub struct App {
    ctx: PodContext,
    cfg: AppConfig,
    me: Address,
    signer: Arc<PodSigner>,
    shared: Shared,
    admitted: Admitted,
    rules: Rules,
    height: Height,
    /// The current round of `height` (as the engine last started it).
    round: Round,
    streams: HashMap<(PeerId, StreamId), Partial>,
    stream_order: VecDeque<(PeerId, StreamId)>,
    future: Vec<Assembled>,
    /// Blocks seen at the current height, by id: (height, round, proposed value, bytes).
    undecided: HashMap<BlockId, (ProposedValue<PodContext>, Vec<u8>)>,
    prepared: HashMap<BlockId, Arc<Prepared>>,
    mine: HashMap<(Height, Round), BlockId>,
    /// Peers to drop (false) or restore (true) after the last commit changed the validator set.
    peer_changes: Vec<(bool, Multiaddr)>,
    /// Where those go: one task that asks the network, in order.
    peer_tx: Option<tokio::sync::mpsc::UnboundedSender<(bool, Multiaddr)>>,
    /// Whether the last committed block was empty (an idle pod).
    last_empty: bool,
    /// The highest height a validator's wake asked for.
    woken: Height,
    /// The engine's answer to `Finalized`, held while the pod is idle.
    paused: Option<idle::Paused>,
    /// When to send this height's wake again (`idle.rs`), and how many were sent.
    wake_again: Option<tokio::time::Instant>,
    wakes_sent: u64,
    /// When each suspended node's offered reinstatement was last checked in full, and the offers (leaf hashes)
    /// checked so far (`streams.rs`); forgotten when the node is no longer suspended.
    reinstate_seen: HashMap<String, (Option<tokio::time::Instant>, std::collections::HashSet<Hash>)>,
    /// When this node last tried to suspend each lapsed validator in its block (`mempool.rs`): once per
    /// `standing::LOOK_EVERY`, so a suspension the rules refuse (too few in good standing) does not cost every
    /// proposal its evidence checks.
    suspensions_tried: HashMap<String, tokio::time::Instant>,
}

impl App {
    /// The app for a node whose ledger is in `shared`.
    pub fn new(cfg: AppConfig, signer: Arc<PodSigner>, shared: Shared, admitted: Admitted) -> Result<App, String> {
        let me = Address(signer.public_key().0);
        let (tip, rules, size, root) = {
            let l = shared.ledger.lock().expect("not poisoned");
            let (tip, _) = stored_tip(&l)?;
            let rules = Rules { replay: cfg.replay.clone(), ..load_rules(&l)? };
            (tip, rules, l.size(), l.root())
        };
        admitted.set(rules.admitted_keys());
        shared.tip.send_replace(Tip { height: tip, size, root });
        *shared.rules.lock().expect("not poisoned") = Some(rules.clone());
        Ok(App {
            ctx: PodContext,
            cfg,
            me,
            signer,
            shared,
            admitted,
            rules,
            height: Height(tip + 1),
            round: Round::new(0),
            streams: HashMap::new(),
            stream_order: VecDeque::new(),
            future: Vec::new(),
            undecided: HashMap::new(),
            prepared: HashMap::new(),
            mine: HashMap::new(),
            peer_changes: Vec::new(),
            peer_tx: None,
            last_empty: false,
            woken: Height(0),
            paused: None,
            wake_again: None,
            wakes_sent: 0,
            reinstate_seen: HashMap::new(),
            suspensions_tried: HashMap::new(),
        })
    }

    fn params(&self) -> HeightParams<PodContext> {
        HeightParams::new(self.rules.set.clone(), self.cfg.timeouts, None)
            .with_vote_extension_policy(VoteExtensionPolicy::Required)
    }

    /// Runs until consensus closes its channel.
    pub async fn run(mut self, mut channels: Channels<PodContext>) -> Result<(), String> {
        self.load_undecided()?;
        self.peer_tx = Some(peers::updater(channels.net_requests.clone()));
        let queued = self.shared.queued.clone();
        loop {
            // While a height is held (`idle.rs`), an entry queued here or the end of the interval also counts; while
            // this node's wake may be unanswered, the time to send it again.
            let msg = match (self.paused_until(), self.wake_again) {
                (None, None) => channels.consensus.recv().await,
                (Some(until), _) => {
                    tokio::select! {
                        m = channels.consensus.recv() => m,
                        _ = tokio::time::sleep_until(until) => {
                            self.resume_if_due(&channels).await;
                            continue;
                        }
                        _ = queued.notified() => {
                            self.resume_if_due(&channels).await;
                            continue;
                        }
                    }
                }
                (None, Some(at)) => {
                    tokio::select! {
                        m = channels.consensus.recv() => m,
                        _ = tokio::time::sleep_until(at) => {
                            self.wake(&channels).await;
                            continue;
                        }
                    }
                }
            };
            let Some(msg) = msg else { break };
            self.handle(msg, &channels).await?;
            self.resume_if_due(&channels).await;
        }
        Ok(())
    }

    /// Dispatches one message from the engine to its handler.
    async fn handle(&mut self, msg: AppMsg<PodContext>, channels: &Channels<PodContext>) -> Result<(), String> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                tracing::info!(height = %self.height, validators = self.rules.set.validators.len(), "consensus ready");
                let _ = reply.send((self.height, self.params()));
            }
            AppMsg::StartedRound { height, round, proposer, role, reply_value } => {
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                let _ = reply_value.send(self.on_started_round(height, round)?);
            }
            AppMsg::GetValue { height, round, timeout, reply } => {
                let id = self.on_get_value(height, round, timeout).await?;
                let _ = reply.send(LocallyProposedValue::new(height, round, id));
                self.stream(height, round, Round::Nil, &id, channels).await;
            }
            AppMsg::ExtendVote { height, value_id, reply, .. } => {
                let _ = reply.send(self.on_extend_vote(height, &value_id));
            }
            AppMsg::VerifyVoteExtensions { height, value_id, extensions, reply, .. } => {
                let _ = reply.send(self.on_verify_vote_extensions(height, &value_id, extensions));
            }
            AppMsg::RestreamProposal { height, round, valid_round, address, value_id } => {
                self.on_restream_proposal(height, round, valid_round, address, &value_id, channels).await;
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ReceivedProposalPart { from, published_by, part, reply } => {
                let _ = reply.send(self.on_received_proposal_part(published_by.unwrap_or(from), part)?);
            }
            AppMsg::Decided { certificate, extensions, reply } => {
                self.on_decided(certificate, extensions)?;
                let _ = reply.send(());
                self.update_peers();
            }
            AppMsg::Finalized { certificate, evidence, reply, .. } => {
                self.on_finalized(certificate.height, &evidence)?;
                self.start_next(reply, channels).await;
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(self.on_get_decided_values(range.start().0, range.end().0)?);
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let _ = reply.send(self.on_process_synced_value(height, round, proposer, value_bytes)?);
            }
        }
        Ok(())
    }
}

/// The app of node `me` of a 4-node `p` pod whose ledger is `ledger`, for the app's unit tests.
#[cfg(test)]
pub(crate) fn app_for_tests(ledger: Ledger, me: usize) -> (App, Shared) {
    let (tip, _) = watch::channel(Tip::default());
    let shared = Shared {
        rules: Arc::new(Mutex::new(None)),
        ledger: Arc::new(Mutex::new(ledger)),
        mempool: Arc::new(Mutex::new(Mempool::new(10))),
        queued: Arc::new(Notify::new()),
        tip,
        lapsed: Default::default(),
    };
    let cfg = AppConfig {
        timeouts: crate::PodConfig::local_timeouts(),
        idle_block: Duration::from_millis(100),
        idle_interval: Duration::ZERO,
        replay: Default::default(),
        fault: crate::Fault::None,
        peers: Vec::new(),
    };
    let signer = Arc::new(PodSigner::new(&crate::local::seed(me)));
    let app = App::new(cfg, signer, shared.clone(), Admitted::default()).unwrap();
    (app, shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local;
    use sigil_ledger::entry::NodeAdmitted;

    #[test]
    fn a_reopened_ledger_keeps_the_genesis_attestations_beside_later_admissions() {
        let mut ledger = Ledger::in_memory(&local::genesis("p", 4)).unwrap();
        let admitted = Entry::NodeAdmitted(NodeAdmitted {
            validator: sigil_ledger::checkpoint::Validator { name: local::name(4), public_key: vec![4; 32] },
            evidence: ByteBuf::new(),
            attestation_result: ByteBuf::new(),
            prior: 0,
            approvals: vec![],
        });
        let index = ledger.append(&admitted).unwrap();
        let at = 1_800_000_000_000u64;
        ledger
            .aux_write(
                vec![
                    ([keys::ATTESTATION, b"node-4"].concat(), index.to_be_bytes().to_vec()),
                    ([keys::ATTESTED_AT, b"node-4"].concat(), [at.to_be_bytes(), 9u64.to_be_bytes()].concat()),
                    ([keys::SUPERSEDED, b"node-4"].concat(), [3u64.to_be_bytes(), at.to_be_bytes()].concat()),
                ],
                vec![],
            )
            .unwrap();
        let (_, shared) = app_for_tests(ledger, 0);
        let rules = shared.rules.lock().unwrap().clone().unwrap();
        for i in 0..4 {
            assert_eq!(rules.attestations.get(&local::name(i)), Some(&0), "genesis validator {i}");
        }
        assert_eq!(rules.attestations.get("node-4"), Some(&index));
        // When each was committed: the genesis' validators at its creation, node-4 at its block's time.
        assert_eq!(rules.attested_at.get(&local::name(0)), Some(&1_764_000_000_000));
        assert_eq!(rules.attested_at.get("node-4"), Some(&at));
        assert_eq!(rules.attested_height.get("node-4"), Some(&9));
        assert_eq!(rules.superseded.get("node-4"), Some(&(3, at)), "the attestation it replaced, and when");
    }
}
