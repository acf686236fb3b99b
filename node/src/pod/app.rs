//! The application side of consensus: builds blocks from the mempool, re-validates every proposed or synced
//! block, commits decided blocks to the ledger (block, certificate and entries in one synced write), serves
//! decided blocks to peers that sync, and keeps the validator set of each height from the ledger.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use ledger::entry::Encoded;
use ledger::store::Ledger;
use ledger::{Entry, Hash};
use malachitebft_app_channel::app::consensus::VoteExtensionError;
use malachitebft_app_channel::app::engine::host::{Next, SyncedValueOutcome};
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, Context as _, ExtendedCommitCertificate, HeightParams, LinearTimeouts, Round, ValidatorSet as _,
    Validity, VoteExtensionPolicy, VoteExtensions,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, MisbehaviorEvidence, PeerId, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use serde_bytes::ByteBuf;
use tokio::sync::{oneshot, watch, Notify};

use super::block::{self, Attachments, Block, Effects, Rules, MAX_BLOCK_BYTES, MAX_BLOCK_ENTRIES};
use super::codec::PodCodec;
use super::context::{Address, BlockId, Height, PodContext, ProposalPart, PublicKey, Signature, ValidatorSet};
use super::signing::{self, Admitted, PodSigner};

/// Bytes of block per `Data` part.
const CHUNK: usize = 512 * 1024;
/// Complete proposal streams for future heights kept at most.
const MAX_FUTURE: usize = 64;
/// Incomplete streams kept at most (a peer cannot make us buffer without bound).
const MAX_STREAMS: usize = 64;
/// Most decided blocks served in one sync response.
const MAX_SYNC_BATCH: u64 = 50;

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

/// Entries waiting for a block, and who waits for them.
#[derive(Default)]
pub struct Mempool {
    queue: VecDeque<(Hash, Encoded, Attachments)>,
    waiters: HashMap<Hash, Vec<oneshot::Sender<Committed>>>,
    /// Limit on queued entries.
    pub capacity: usize,
}

impl Mempool {
    /// An empty pool holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Mempool {
        Mempool { capacity, ..Default::default() }
    }

    /// Queues `entry` with its attachments (see [`block::Item`]); the receiver fires once it commits. A full
    /// pool refuses.
    pub fn push(&mut self, entry: Encoded, attachments: Attachments) -> Result<oneshot::Receiver<Committed>, String> {
        let leaf = entry.leaf_hash();
        let (tx, rx) = oneshot::channel();
        if let Some(w) = self.waiters.get_mut(&leaf) {
            w.push(tx); // already queued: wait for the same commit
            return Ok(rx);
        }
        if self.queue.len() >= self.capacity.max(1) {
            return Err(format!("the mempool is full ({} entries); try again shortly", self.queue.len()));
        }
        self.queue.push_back((leaf, entry, attachments));
        self.waiters.insert(leaf, vec![tx]);
        Ok(rx)
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn committed(&mut self, leaves: &HashMap<Hash, Committed>) {
        self.queue.retain(|(h, _, _)| !leaves.contains_key(h));
        for (h, c) in leaves {
            for w in self.waiters.remove(h).unwrap_or_default() {
                let _ = w.send(*c);
            }
        }
    }

    fn drop_entry(&mut self, leaf: &Hash) {
        self.queue.retain(|(h, _, _)| h != leaf);
        self.waiters.remove(leaf); // the waiters see their sender dropped: not committed
    }
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
}

/// Tunables of the app.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Consensus timeouts of every height.
    pub timeouts: LinearTimeouts,
    /// How long a proposer with an empty mempool waits for entries before proposing an empty block.
    pub idle_block: Duration,
    /// Injected misbehaviour (tests).
    pub fault: super::Fault,
}

struct Partial {
    init: Option<(Height, Round, Round, Address)>,
    data: BTreeMap<u64, Bytes>,
    fin: Option<Signature>,
    end: Option<u64>,
    bytes: usize,
}

struct Assembled {
    height: Height,
    round: Round,
    pol_round: Round,
    proposer: Address,
    bytes: Vec<u8>,
    signature: Signature,
}

/// A block that validated: its entries decoded and the checkpoint it leads to, so nothing is decoded or hashed
/// twice between validation, the precommit's checkpoint signature and the commit.
struct Prepared {
    entries: Vec<Encoded>,
    effects: Effects,
    checkpoint: Checkpoint,
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
    streams: HashMap<(PeerId, StreamId), Partial>,
    stream_order: VecDeque<(PeerId, StreamId)>,
    future: Vec<Assembled>,
    /// Blocks seen at the current height, by id: (height, round, proposed value, bytes).
    undecided: HashMap<BlockId, (ProposedValue<PodContext>, Vec<u8>)>,
    prepared: HashMap<BlockId, Arc<Prepared>>,
    mine: HashMap<(Height, Round), BlockId>,
}

/// This machine's clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn height_key(prefix: &[u8], h: u64) -> Vec<u8> {
    [prefix, &h.to_be_bytes()].concat()
}

/// Aux keys (under the ledger's adapter namespace).
pub mod keys {
    /// The last decided height and its block time: 16 bytes.
    pub const TIP: &[u8] = b"tip";
    /// `d` ‖ height: the decided block.
    pub const DECIDED: &[u8] = b"d";
    /// `c` ‖ height: its commit certificate (with extensions).
    pub const CERT: &[u8] = b"c";
    /// `r` ‖ height: ledger size and root after it (16 + 32 bytes).
    pub const ROOT: &[u8] = b"r";
    /// `u` ‖ height ‖ block id: a block proposed at the current height, not decided yet.
    pub const UNDECIDED: &[u8] = b"u";
    /// `a/` ‖ name: the node's latest attestation entry.
    pub const ATTESTATION: &[u8] = b"a/";
    /// `ev` ‖ height: misbehaviour seen at that height.
    pub const EVIDENCE: &[u8] = b"ev";
    /// The pod's current attestation policy (TOML), once a block changed it.
    pub const POLICY: &[u8] = b"policy";
}

/// The decided height, its block time, from the store.
pub fn stored_tip(ledger: &Ledger) -> Result<(u64, u64), String> {
    match ledger.aux_get(keys::TIP).map_err(|e| e.to_string())? {
        None => Ok((0, 0)),
        Some(v) if v.len() == 16 => {
            Ok((u64::from_be_bytes(v[..8].try_into().unwrap()), u64::from_be_bytes(v[8..].try_into().unwrap())))
        }
        Some(v) => Err(format!("the stored tip is {} bytes", v.len())),
    }
}

/// Ledger size and root after `height`, from the store.
pub fn root_at_height(ledger: &Ledger, height: u64) -> Result<Option<(u64, Hash)>, String> {
    Ok(ledger.aux_get(&height_key(keys::ROOT, height)).map_err(|e| e.to_string())?.and_then(|v| {
        (v.len() == 40).then(|| (u64::from_be_bytes(v[..8].try_into().unwrap()), Hash::from_slice(&v[8..]).unwrap()))
    }))
}

/// The misbehaviour recorded at finalization, by height (double votes and double proposals, in words).
pub fn misbehaviour(ledger: &Ledger) -> Result<Vec<(u64, Vec<String>)>, String> {
    let mut out = Vec::new();
    for (k, v) in ledger.aux_scan(keys::EVIDENCE, None, 100_000).map_err(|e| e.to_string())? {
        let Ok(h) = <[u8; 8]>::try_from(&k[keys::EVIDENCE.len()..]) else { continue };
        let lines: Vec<String> = ciborium::from_reader(v.as_slice()).map_err(|e| format!("stored evidence: {e}"))?;
        out.push((u64::from_be_bytes(h), lines));
    }
    Ok(out)
}

/// The checkpoint `ledger` reaches by appending `entries`.
fn checkpoint_after(ledger: &Ledger, entries: &[Encoded]) -> Result<Checkpoint, String> {
    let (size, root) = ledger.root_after(entries);
    let validators = ledger.validators_after(entries).map_err(|e| e.to_string())?.digest();
    Ok(Checkpoint { origin: ledger.pod().to_string(), size, root, validators })
}

/// The round in which `height` was decided, from its stored commit certificate.
pub fn decided_round(ledger: &Ledger, height: u64) -> Result<Option<Round>, String> {
    let Some(c) = ledger.aux_get(&height_key(keys::CERT, height)).map_err(|e| e.to_string())? else { return Ok(None) };
    let cert: ExtendedCommitCertificate<PodContext> =
        PodCodec.decode(Bytes::from(c)).map_err(|e: super::codec::CodecError| e.to_string())?;
    Ok(Some(cert.round))
}

impl App {
    /// The app for a node whose ledger is in `shared`.
    pub fn new(cfg: AppConfig, signer: Arc<PodSigner>, shared: Shared, admitted: Admitted) -> Result<App, String> {
        let me = Address(signer.public_key().0);
        let (tip, rules, size, root) = {
            let l = shared.ledger.lock().expect("not poisoned");
            let (tip, parent_time_ms) = stored_tip(&l)?;
            let set = ValidatorSet::from_ledger(&l.validators_at(l.size()))?;
            let Entry::Genesis(genesis) = l.entry(0).map_err(|e| e.to_string())? else {
                return Err("the ledger does not start with a genesis".into());
            };
            // The genesis (entry 0) attests its validators; later admissions and re-attestations, stored as they
            // commit, replace that.
            let mut attestations: HashMap<String, u64> =
                genesis.validators.iter().map(|v| (v.name.clone(), 0)).collect();
            for (k, v) in l.aux_scan(keys::ATTESTATION, None, 100_000).map_err(|e| e.to_string())? {
                let name = String::from_utf8_lossy(&k[keys::ATTESTATION.len()..]).into_owned();
                let index = v.as_slice().try_into().map_err(|_| "bad attestation index")?;
                attestations.insert(name, u64::from_be_bytes(index));
            }
            let text = match l.aux_get(keys::POLICY).map_err(|e| e.to_string())? {
                Some(t) => String::from_utf8(t).map_err(|_| "the stored policy is not UTF-8")?,
                None => genesis.policy,
            };
            let policy = super::admission::parse_policy(&text)?;
            let rules = Rules {
                set,
                attestations,
                policy,
                members: genesis.members,
                threshold: genesis.threshold,
                parent_time_ms,
                applets: super::state::load_applets(&l)?,
            };
            (tip, rules, l.size(), l.root())
        };
        admitted.set(rules.set.validators.iter().map(|v| v.public_key.0));
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
            streams: HashMap::new(),
            stream_order: VecDeque::new(),
            future: Vec::new(),
            undecided: HashMap::new(),
            prepared: HashMap::new(),
            mine: HashMap::new(),
        })
    }

    fn params(&self) -> HeightParams<PodContext> {
        HeightParams::new(self.rules.set.clone(), self.cfg.timeouts, None)
            .with_vote_extension_policy(VoteExtensionPolicy::Required)
    }

    /// Runs until consensus closes its channel.
    pub async fn run(mut self, mut channels: Channels<PodContext>) -> Result<(), String> {
        self.load_undecided()?;
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(msg, &channels).await?;
        }
        Ok(())
    }

    fn load_undecided(&mut self) -> Result<(), String> {
        let prefix = height_key(keys::UNDECIDED, self.height.0);
        let l = self.shared.ledger.lock().expect("not poisoned");
        for (_, v) in l.aux_scan(&prefix, None, 10_000).map_err(|e| e.to_string())? {
            let (pv, bytes): (ByteBuf, ByteBuf) =
                ciborium::from_reader(v.as_slice()).map_err(|e| format!("a stored undecided block: {e}"))?;
            let pv: ProposedValue<PodContext> =
                Codec::<ProposedValue<PodContext>>::decode(&PodCodec, Bytes::from(pv.into_vec()))
                    .map_err(|e| e.to_string())?;
            if pv.proposer == self.me {
                self.mine.insert((pv.height, pv.round), pv.value);
            }
            self.undecided.insert(pv.value, (pv, bytes.into_vec()));
        }
        Ok(())
    }

    fn store_undecided(&mut self, pv: ProposedValue<PodContext>, bytes: Vec<u8>) -> Result<(), String> {
        if self.undecided.contains_key(&pv.value) && self.undecided[&pv.value].0.round == pv.round {
            return Ok(());
        }
        let key = [height_key(keys::UNDECIDED, pv.height.0).as_slice(), &pv.value.0 .0].concat();
        let enc = PodCodec.encode(&pv).map_err(|e| e.to_string())?;
        let mut v = Vec::new();
        ciborium::into_writer(&(ByteBuf::from(enc.to_vec()), ByteBuf::from(bytes.clone())), &mut v).expect("Vec");
        self.shared
            .ledger
            .lock()
            .expect("not poisoned")
            .aux_write(vec![(key, v)], vec![])
            .map_err(|e| e.to_string())?;
        self.undecided.insert(pv.value, (pv, bytes));
        Ok(())
    }

    async fn handle(&mut self, msg: AppMsg<PodContext>, channels: &Channels<PodContext>) -> Result<(), String> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                tracing::info!(height = %self.height, validators = self.rules.set.validators.len(), "consensus ready");
                let _ = reply.send((self.height, self.params()));
            }
            AppMsg::StartedRound { height, round, proposer, role, reply_value } => {
                tracing::debug!(%height, %round, %proposer, ?role, "round started");
                self.height = height;
                let mut values: Vec<ProposedValue<PodContext>> = self
                    .undecided
                    .values()
                    .filter(|(pv, _)| pv.height == height && pv.round == round)
                    .map(|(pv, _)| pv.clone())
                    .collect();
                let ready: Vec<Assembled> = {
                    let (now, later): (Vec<_>, Vec<_>) =
                        std::mem::take(&mut self.future).into_iter().partition(|a| a.height == height);
                    self.future = later.into_iter().filter(|a| a.height > height).collect();
                    now
                };
                for a in ready {
                    if let Some(pv) = self.accept_stream(a)? {
                        if pv.round == round {
                            values.push(pv);
                        }
                    }
                }
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue { height, round, timeout, reply } => {
                let id = match self.mine.get(&(height, round)) {
                    Some(id) => *id,
                    None => self.propose(height, round, timeout).await?,
                };
                let _ = reply.send(LocallyProposedValue::new(height, round, id));
                self.stream(height, round, Round::Nil, &id, channels).await;
            }
            AppMsg::ExtendVote { height, value_id, reply, .. } => {
                // A precommit carries the voter's signature over the checkpoint the block produces: the commit
                // certificate is then also the cosigned checkpoint.
                let ext = match self.checkpoint_of(&value_id) {
                    Ok(cp) => Some(Bytes::copy_from_slice(&self.signer.sign(cp.body().as_bytes()).0)),
                    Err(why) => {
                        tracing::warn!(%height, block = %value_id, "no checkpoint signature for this precommit: {why}");
                        None
                    }
                };
                let _ = reply.send(ext);
            }
            AppMsg::VerifyVoteExtensions { height, value_id, extensions, reply, .. } => {
                let verdicts = match self.checkpoint_of(&value_id) {
                    // The block is not here yet (precommits can outrun the proposal's parts, and sync checks a
                    // certificate's extensions before it hands over the block) or was already committed. The
                    // engine has checked each extension's own signature; whether it signs the right checkpoint
                    // is checked again at commit, where only those that verify make the cosigned checkpoint.
                    Err(_) if !self.undecided.contains_key(&value_id) => {
                        extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect()
                    }
                    Ok(cp) => {
                        let body = cp.body();
                        extensions
                            .into_iter()
                            .map(|(a, ext)| {
                                let ok = <[u8; 64]>::try_from(ext.as_ref())
                                    .map(|s| signing::verify(&PublicKey(a.0), body.as_bytes(), &Signature(s)))
                                    .unwrap_or(false);
                                if !ok {
                                    tracing::warn!(%height, validator = %a, "a precommit's checkpoint signature does not verify");
                                }
                                (a, if ok { Ok(()) } else { Err(VoteExtensionError::InvalidVoteExtension) })
                            })
                            .collect()
                    }
                    Err(why) => {
                        tracing::warn!(%height, block = %value_id, "cannot check checkpoint signatures: {why}");
                        extensions
                            .into_iter()
                            .map(|(a, _)| (a, Err(VoteExtensionError::InvalidVoteExtension)))
                            .collect()
                    }
                };
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal { height, round, valid_round, address, value_id } => {
                if address == self.me && self.undecided.contains_key(&value_id) {
                    self.stream(height, round, valid_round, &value_id, channels).await;
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::ReceivedProposalPart { from, published_by, part, reply } => {
                let publisher = published_by.unwrap_or(from);
                let out = match self.add_part(publisher, part) {
                    Some(a) if a.height == self.height => self.accept_stream(a)?,
                    Some(a) if a.height > self.height && self.future.len() < MAX_FUTURE => {
                        self.future.push(a);
                        None
                    }
                    _ => None,
                };
                let _ = reply.send(out);
            }
            AppMsg::Decided { certificate, extensions, reply } => {
                self.commit(certificate, extensions)?;
                let _ = reply.send(());
            }
            AppMsg::Finalized { certificate, evidence, reply, .. } => {
                self.record_evidence(certificate.height, &evidence)?;
                let _ = reply.send(Next::Start(self.height, self.params()));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let l = self.shared.ledger.lock().expect("not poisoned");
                let mut out = Vec::new();
                let (start, end) =
                    (range.start().0, range.end().0.min(range.start().0.saturating_add(MAX_SYNC_BATCH - 1)));
                for h in start..=end {
                    let (Some(b), Some(c)) = (
                        l.aux_get(&height_key(keys::DECIDED, h)).map_err(|e| e.to_string())?,
                        l.aux_get(&height_key(keys::CERT, h)).map_err(|e| e.to_string())?,
                    ) else {
                        break;
                    };
                    let cert: ExtendedCommitCertificate<PodContext> =
                        PodCodec.decode(Bytes::from(c)).map_err(|e| format!("stored certificate {h}: {e}"))?;
                    out.push(RawDecidedValue::new(Bytes::from(b), cert));
                }
                let _ = reply.send(out);
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let outcome = match Block::decode(&value_bytes) {
                    Err(e) => {
                        tracing::warn!(%height, "a peer synced a block that does not decode: {e}");
                        SyncedValueOutcome::PeerFault
                    }
                    Ok(b) if height != self.height => {
                        tracing::debug!(%height, current = %self.height, block = b.height, "synced block for another height");
                        SyncedValueOutcome::LocalTransientError
                    }
                    Ok(b) => {
                        let id = Block::id_of(&value_bytes);
                        let validity = self.check(id, &b, height, &proposer);
                        let pv =
                            ProposedValue { height, round, valid_round: Round::Nil, proposer, value: id, validity };
                        self.store_undecided(pv.clone(), value_bytes.to_vec())?;
                        SyncedValueOutcome::Verdict(pv)
                    }
                };
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    /// Block `id` of this height, its entries decoded and the checkpoint it leads to: from the cache of validated
    /// blocks, or worked out from its stored bytes.
    fn prepared(&self, id: &BlockId) -> Result<Arc<Prepared>, String> {
        if let Some(p) = self.prepared.get(id) {
            return Ok(p.clone());
        }
        let (_, bytes) = self.undecided.get(id).ok_or("the block is not known here")?;
        let b = Block::decode(bytes)?;
        let l = self.shared.ledger.lock().expect("not poisoned");
        if b.parent_size != l.size() || b.parent_root != l.root() {
            return Err("the block does not extend this ledger".into());
        }
        // Its entries and effects, as a validator works them out.
        let mut checker = block::Checker::new(&l, &self.rules, b.time_ms);
        let entries =
            b.entries.iter().enumerate().map(|(i, item)| checker.item(i, item)).collect::<Result<Vec<_>, _>>()?;
        let effects = std::mem::take(&mut checker.effects);
        Ok(Arc::new(Prepared { checkpoint: checkpoint_after(&l, &entries)?, entries, effects }))
    }

    /// The checkpoint the ledger reaches by appending block `id` (which must be a block of this height).
    fn checkpoint_of(&self, id: &BlockId) -> Result<Checkpoint, String> {
        self.prepared(id).map(|p| p.checkpoint.clone())
    }

    /// The cosigned checkpoint of a decided block: the precommits' extensions that verify, from members of the set
    /// after the block, or `None` when they are not a quorum of it (a block that changes the set; the next block's
    /// checkpoint covers it). The ledger checks it again as it stores it.
    fn cosigned(
        &self,
        cp: &Checkpoint,
        extensions: &VoteExtensions<PodContext>,
        after: &ledger::checkpoint::ValidatorSet,
    ) -> Option<SignedCheckpoint> {
        let body = cp.body();
        let mut signatures = Vec::new();
        for (addr, ext) in &extensions.extensions {
            let Some(member) = after.members.iter().find(|m| m.public_key == addr.0) else { continue };
            let Ok(sig) = <[u8; 64]>::try_from(ext.message.as_ref()) else { continue };
            if signing::verify(&PublicKey(addr.0), body.as_bytes(), &Signature(sig)) {
                signatures.push((member.name.clone(), member.key_id(), sig.to_vec()));
            }
        }
        (signatures.len() >= after.quorum()).then(|| SignedCheckpoint { checkpoint: cp.clone(), signatures })
    }

    /// Validates block `id` at the current ledger state; a valid block is kept prepared for its commit.
    fn check(&mut self, id: BlockId, b: &Block, height: Height, proposer: &Address) -> Validity {
        let l = self.shared.ledger.lock().expect("not poisoned");
        let at = block::Slot { height, proposer: *proposer, now_ms: now_ms() };
        let checked = block::validate(b, &l, &self.rules, &at).and_then(|(entries, effects)| {
            Ok(Prepared { checkpoint: checkpoint_after(&l, &entries)?, entries, effects })
        });
        drop(l);
        match checked {
            Ok(p) => {
                self.prepared.insert(id, Arc::new(p));
                Validity::Valid
            }
            Err(why) => {
                tracing::warn!(%height, proposer = %proposer, "refusing a block: {why}");
                Validity::Invalid
            }
        }
    }

    /// Builds this node's block for (height, round) from its mempool.
    async fn propose(&mut self, height: Height, round: Round, timeout: Duration) -> Result<BlockId, String> {
        let wait = self.cfg.idle_block.min(timeout / 2);
        if self.shared.mempool.lock().expect("not poisoned").is_empty() {
            let _ = tokio::time::timeout(wait, self.shared.queued.notified()).await;
        }
        let mut b = {
            let l = self.shared.ledger.lock().expect("not poisoned");
            Block {
                pod: l.pod().to_string(),
                height: height.0,
                proposer: ByteBuf::from(self.me.0.to_vec()),
                time_ms: now_ms().max(self.rules.parent_time_ms),
                parent_size: l.size(),
                parent_root: l.root(),
                entries: Vec::new(),
            }
        };
        // Take what validates, in order; drop what never will.
        let candidates: Vec<(Hash, Encoded, Attachments)> =
            self.shared.mempool.lock().expect("not poisoned").queue.iter().take(MAX_BLOCK_ENTRIES).cloned().collect();
        let mut bytes_total = 0;
        let mut refused = Vec::new();
        let mut taken = Vec::new();
        let checkpoint;
        let effects;
        {
            let l = self.shared.ledger.lock().expect("not poisoned");
            let mut checker = block::Checker::new(&l, &self.rules, b.time_ms);
            for (leaf, enc, att) in candidates {
                let len = enc.bytes().len() + att.len() + 32;
                if bytes_total + len > MAX_BLOCK_BYTES - 4096 {
                    break;
                }
                let checked = match self.cfg.fault {
                    super::Fault::None => checker.check(b.entries.len(), &enc, &att),
                    _ => Ok(()),
                };
                match checked {
                    Ok(()) => {
                        b.entries.push(block::Item::new(&enc, &att));
                        taken.push(enc);
                        bytes_total += len;
                    }
                    Err(why) => {
                        tracing::warn!("dropping a mempool entry that would make the block invalid: {why}");
                        refused.push(leaf);
                    }
                }
            }
            checkpoint = checkpoint_after(&l, &taken);
            effects = std::mem::take(&mut checker.effects);
        }
        {
            let mut m = self.shared.mempool.lock().expect("not poisoned");
            for leaf in &refused {
                m.drop_entry(leaf);
            }
        }
        let bytes = b.encode();
        let id = Block::id_of(&bytes);
        tracing::debug!(%height, %round, entries = b.entries.len(), block = %id, "proposing");
        let pv = ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer: self.me,
            value: id,
            validity: Validity::Valid,
        };
        self.store_undecided(pv, bytes)?;
        if let Ok(checkpoint) = checkpoint {
            if self.cfg.fault == super::Fault::None {
                self.prepared.insert(id, Arc::new(Prepared { entries: taken, effects, checkpoint }));
            }
        }
        self.mine.insert((height, round), id);
        Ok(id)
    }

    /// Publishes the parts of block `id` for (height, round).
    async fn stream(
        &self,
        height: Height,
        round: Round,
        pol_round: Round,
        id: &BlockId,
        channels: &Channels<PodContext>,
    ) {
        let Some((_, bytes)) = self.undecided.get(id) else { return };
        let stream_id = StreamId::new(Bytes::from([height.0.to_be_bytes(), round.as_i64().to_be_bytes()].concat()));
        let mut parts = vec![ProposalPart::Init { height, round, pol_round, proposer: self.me }];
        parts.extend(bytes.chunks(CHUNK).map(|c| ProposalPart::Data(Bytes::copy_from_slice(c))));
        let signature = self.signer.sign(&signing::block_bytes(height, round, id, &self.me));
        parts.push(ProposalPart::Fin { signature });
        let mut seq = 0;
        for p in parts {
            let msg = StreamMessage::new(stream_id.clone(), seq, StreamContent::Data(p));
            let _ = channels.network.send(NetworkMsg::PublishProposalPart(msg)).await;
            seq += 1;
        }
        let _ = channels
            .network
            .send(NetworkMsg::PublishProposalPart(StreamMessage::new(stream_id, seq, StreamContent::Fin)))
            .await;
    }

    /// Adds a part to its stream; returns the stream once complete.
    fn add_part(&mut self, publisher: PeerId, msg: StreamMessage<ProposalPart>) -> Option<Assembled> {
        let key = (publisher, msg.stream_id.clone());
        if !self.streams.contains_key(&key) {
            if self.stream_order.len() >= MAX_STREAMS {
                if let Some(old) = self.stream_order.pop_front() {
                    self.streams.remove(&old);
                }
            }
            self.stream_order.push_back(key.clone());
            self.streams
                .insert(key.clone(), Partial { init: None, data: BTreeMap::new(), fin: None, end: None, bytes: 0 });
        }
        let s = self.streams.get_mut(&key).expect("inserted");
        match msg.content {
            StreamContent::Fin => s.end = Some(msg.sequence),
            StreamContent::Data(ProposalPart::Init { height, round, pol_round, proposer }) => {
                if msg.sequence == 0 {
                    s.init = Some((height, round, pol_round, proposer));
                }
            }
            StreamContent::Data(ProposalPart::Data(d)) => {
                s.bytes += d.len();
                if s.bytes > MAX_BLOCK_BYTES {
                    tracing::warn!(%publisher, "a proposal stream exceeds the block size limit; dropped");
                    self.streams.remove(&key);
                    self.stream_order.retain(|k| k != &key);
                    return None;
                }
                s.data.insert(msg.sequence, d);
            }
            StreamContent::Data(ProposalPart::Fin { signature }) => s.fin = Some(signature),
        }
        let (Some((height, round, pol_round, proposer)), Some(signature), Some(end)) = (s.init, s.fin, s.end) else {
            return None;
        };
        // Init is sequence 0, the data 1 .. end-2, the Fin part end-1, and the stream closes at `end`.
        if end < 2 || !s.data.keys().copied().eq(1..end - 1) {
            return None;
        }
        let s = self.streams.remove(&key).expect("present");
        self.stream_order.retain(|k| k != &key);
        let bytes = s.data.into_values().flat_map(|d| d.to_vec()).collect();
        Some(Assembled { height, round, pol_round, proposer, bytes, signature })
    }

    /// Checks a complete stream for the current height: the round's proposer sent it and signed it; the block
    /// validates. Returns what consensus should know of it.
    fn accept_stream(&mut self, a: Assembled) -> Result<Option<ProposedValue<PodContext>>, String> {
        let expected = self.ctx.select_proposer(&self.rules.set, a.height, a.round).address;
        if a.proposer != expected {
            tracing::warn!(height = %a.height, round = %a.round, claimed = %a.proposer, "a proposal from a node that is not the round's proposer; ignored");
            return Ok(None);
        }
        let id = Block::id_of(&a.bytes);
        let key = self.rules.set.get_by_address(&a.proposer).expect("the proposer is in the set").public_key;
        if !signing::verify(&key, &signing::block_bytes(a.height, a.round, &id, &a.proposer), &a.signature) {
            tracing::warn!(height = %a.height, round = %a.round, "a proposal whose block signature does not verify; ignored");
            return Ok(None);
        }
        let validity = match Block::decode(&a.bytes) {
            Ok(b) => self.check(id, &b, a.height, &a.proposer),
            Err(e) => {
                tracing::warn!(height = %a.height, "a proposed block that does not decode: {e}");
                Validity::Invalid
            }
        };
        let pv = ProposedValue {
            height: a.height,
            round: a.round,
            valid_round: a.pol_round,
            proposer: a.proposer,
            value: id,
            validity,
        };
        self.store_undecided(pv.clone(), a.bytes)?;
        Ok(Some(pv))
    }

    /// Appends the decided block: entries, block, certificate, tip and root in one synced write.
    fn commit(
        &mut self,
        cert: CommitCertificate<PodContext>,
        extensions: VoteExtensions<PodContext>,
    ) -> Result<(), String> {
        let h = cert.height;
        let (_, bytes) = self
            .undecided
            .get(&cert.value_id)
            .cloned()
            .ok_or_else(|| format!("decided block {} at height {h} is not in the store", cert.value_id))?;
        let b = Block::decode(&bytes).map_err(|e| format!("decided block at {h}: {e}"))?;
        let prepared = self.prepared(&cert.value_id).map_err(|e| format!("decided block at {h}: {e}"))?;
        let encoded = &prepared.entries;
        let ext = ExtendedCommitCertificate::from_commit_certificate_and_extensions(cert, extensions.clone());
        let cert_bytes = PodCodec.encode(&ext).map_err(|e| e.to_string())?;
        let mut l = self.shared.ledger.lock().expect("not poisoned");
        let first = l.size();
        let (size, root) = (prepared.checkpoint.size, prepared.checkpoint.root);
        let entries: Vec<&Entry> = encoded.iter().map(|e| e.entry()).collect();
        let mut aux = vec![
            (height_key(keys::DECIDED, h.0), bytes.clone()),
            (height_key(keys::CERT, h.0), cert_bytes.to_vec()),
            (keys::TIP.to_vec(), [h.0.to_be_bytes(), b.time_ms.to_be_bytes()].concat()),
            (height_key(keys::ROOT, h.0), [size.to_be_bytes().as_slice(), &root.0].concat()),
        ];
        let mut attested = Vec::new();
        let new_policy = entries.iter().rev().find_map(|e| match e {
            Entry::PolicyChanged(p) => Some(p.policy.clone()),
            _ => None,
        });
        if let Some(text) = &new_policy {
            aux.push((keys::POLICY.to_vec(), text.as_bytes().to_vec()));
        }
        for (i, e) in entries.iter().enumerate() {
            let name = match e {
                Entry::NodeAdmitted(a) => Some(a.validator.name.clone()),
                Entry::Reattested(r) => Some(r.node.clone()),
                _ => None,
            };
            if let Some(n) = name {
                aux.push(([keys::ATTESTATION, n.as_bytes()].concat(), (first + i as u64).to_be_bytes().to_vec()));
                attested.push((n, first + i as u64));
            }
        }
        let (state_writes, state_deletes) = prepared.effects.split();
        aux.extend(state_writes);
        let deployed = prepared.effects.applets.clone();
        let mut undecided: Vec<Vec<u8>> = l
            .aux_scan(keys::UNDECIDED, None, 100_000)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.len() >= 9 && u64::from_be_bytes(k[1..9].try_into().unwrap()) <= h.0)
            .collect();
        undecided.extend(state_deletes);
        let after = l.validators_after(encoded).map_err(|e| format!("height {h}: {e}"))?;
        let cosigned = self.cosigned(&prepared.checkpoint, &extensions, &after);
        if cosigned.is_none() {
            tracing::info!(height = %h, "no quorum-signed checkpoint for this block; the next one covers it");
        }
        let (size2, root2) = l
            .append_block_with(encoded, aux, undecided, cosigned.as_ref())
            .map_err(|e| format!("committing height {h}: {e}"))?;
        if (size2, root2) != (size, root) {
            return Err(format!(
                "height {h}: the ledger reached size {size2} root {root2}, not the checkpoint's {size} {root}"
            ));
        }
        drop(l);
        let set = ValidatorSet::from_ledger(&after)?;
        tracing::debug!(height = %h, entries = entries.len(), size, root = %root, "committed");
        self.rules.attestations.extend(attested);
        self.rules.applets.extend(deployed);
        if let Some(text) = new_policy {
            self.rules.policy = super::admission::parse_policy(&text)?;
            tracing::info!(height = %h, "the pod's attestation policy changes");
        }
        if set != self.rules.set {
            tracing::info!(height = %h, validators = set.validators.len(), "the validator set changes from the next height");
            self.admitted.set(set.validators.iter().map(|v| v.public_key.0));
            self.rules.set = set;
        }
        let committed: HashMap<Hash, Committed> = encoded
            .iter()
            .enumerate()
            .map(|(i, e)| (e.leaf_hash(), Committed { index: first + i as u64, height: h.0 }))
            .collect();
        self.rules.parent_time_ms = b.time_ms;
        self.height = Height(h.0 + 1);
        self.undecided.clear();
        self.prepared.clear();
        self.mine.retain(|(hh, _), _| *hh > h);
        *self.shared.rules.lock().expect("not poisoned") = Some(self.rules.clone());
        self.shared.tip.send_replace(Tip { height: h.0, size, root });
        // Waiters last: whoever learns its entry committed sees the rules and the tip that include it.
        self.shared.mempool.lock().expect("not poisoned").committed(&committed);
        Ok(())
    }

    fn record_evidence(&mut self, height: Height, ev: &MisbehaviorEvidence<PodContext>) -> Result<(), String> {
        if ev.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for v in self.rules.set.validators.iter() {
            if let Some(pairs) = ev.votes.get(&v.address) {
                for (a, b) in pairs {
                    lines.push(format!(
                        "{} double-voted at height {} round {}: {:?} and {:?}",
                        v.name, a.height, a.round, a.value, b.value
                    ));
                }
            }
            if let Some(pairs) = ev.proposals.get(&v.address) {
                for (a, b) in pairs {
                    lines.push(format!(
                        "{} proposed twice at height {} round {}: {} and {}",
                        v.name, a.height, a.round, a.value, b.value
                    ));
                }
            }
        }
        for line in &lines {
            tracing::warn!(%height, "misbehaviour: {line}");
        }
        let mut v = Vec::new();
        ciborium::into_writer(&lines, &mut v).expect("Vec");
        self.shared
            .ledger
            .lock()
            .expect("not poisoned")
            .aux_write(vec![(height_key(keys::EVIDENCE, height.0), v)], vec![])
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::local;
    use ledger::entry::NodeAdmitted;

    #[test]
    fn a_reopened_ledger_keeps_the_genesis_attestations_beside_later_admissions() {
        let mut ledger = Ledger::in_memory(&local::genesis("p", 4)).unwrap();
        let admitted = Entry::NodeAdmitted(NodeAdmitted {
            validator: ledger::checkpoint::Validator { name: local::name(4), public_key: vec![4; 32] },
            evidence: ByteBuf::new(),
            attestation_result: ByteBuf::new(),
            approvals: vec![],
        });
        let index = ledger.append(&admitted).unwrap();
        ledger
            .aux_write(vec![([keys::ATTESTATION, b"node-4"].concat(), index.to_be_bytes().to_vec())], vec![])
            .unwrap();
        let (tip, _) = watch::channel(Tip::default());
        let shared = Shared {
            rules: Arc::new(Mutex::new(None)),
            ledger: Arc::new(Mutex::new(ledger)),
            mempool: Arc::new(Mutex::new(Mempool::new(10))),
            queued: Arc::new(Notify::new()),
            tip,
        };
        let cfg = AppConfig {
            timeouts: crate::pod::PodConfig::local_timeouts(),
            idle_block: Duration::from_millis(100),
            fault: crate::pod::Fault::None,
        };
        App::new(cfg, Arc::new(PodSigner::new(&local::seed(0))), shared.clone(), Admitted::default()).unwrap();
        let rules = shared.rules.lock().unwrap().clone().unwrap();
        for i in 0..4 {
            assert_eq!(rules.attestations.get(&local::name(i)), Some(&0), "genesis validator {i}");
        }
        assert_eq!(rules.attestations.get("node-4"), Some(&index));
    }
}
