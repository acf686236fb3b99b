//! Proposals as part streams: this node's block published as `Init`, `Data` chunks and a signed `Fin`; peers'
//! streams reassembled (bounded in count and size), checked to come from the round's proposer, and validated.
//!
//! A Byzantine proposer can sign as many blocks as it likes for every round it leads, and any peer can send
//! streams for heights and rounds far ahead. What it costs a node is bounded: at most [`MAX_PER_SLOT`] blocks are
//! validated and stored per (height, round, proposer) (an honest proposer makes one; the second is kept so the
//! engine sees the equivocation), a valid block already seen is not validated again, streams for rounds more than
//! [`MAX_ROUNDS_AHEAD`] past the current one and heights more than [`MAX_HEIGHTS_AHEAD`] past it are dropped
//! without being validated or stored (a node that many rounds behind votes nil until the engine skips it to the
//! pod's round; one that many heights behind catches up by sync), and each peer holds at most
//! [`MAX_STREAMS_PER_PEER`] incomplete streams.

use super::*;

/// Bytes of block per `Data` part.
const CHUNK: usize = 512 * 1024;
/// Complete proposal streams for future heights kept at most.
const MAX_FUTURE: usize = 64;
/// Incomplete streams kept at most (a peer cannot make us buffer without bound).
const MAX_STREAMS: usize = 64;
/// Incomplete streams kept at most per peer: a peer that opens more loses its own oldest.
pub(super) const MAX_STREAMS_PER_PEER: usize = 4;
/// Blocks validated and stored at most per (height, round, proposer).
pub(super) const MAX_PER_SLOT: usize = 2;
/// Rounds past the current one whose proposals are taken (a node a round or two behind its peers still gets
/// them; the engine skips ahead on f+1 votes of a later round).
pub(super) const MAX_ROUNDS_AHEAD: i64 = 3;
/// How often a suspended node's offered reinstatement is checked in full, at most.
pub(super) const REINSTATE_EVERY: Duration = Duration::from_secs(5);
/// Heights past the current one whose complete streams are kept for later.
pub(super) const MAX_HEIGHTS_AHEAD: u64 = 2;

pub(super) struct Partial {
    pub(super) init: Option<(Height, Round, Round, Address)>,
    pub(super) data: BTreeMap<u64, Bytes>,
    pub(super) fin: Option<Signature>,
    pub(super) end: Option<u64>,
    pub(super) bytes: usize,
}

pub(super) struct Assembled {
    pub(super) height: Height,
    pub(super) round: Round,
    pub(super) pol_round: Round,
    pub(super) proposer: Address,
    pub(super) bytes: Vec<u8>,
    pub(super) signature: Signature,
}

impl App {
    /// `StartedRound`: the proposals already known for (height, round), from the store or from streams that
    /// arrived for this height before it started.
    pub(super) fn on_started_round(
        &mut self,
        height: Height,
        round: Round,
    ) -> Result<Vec<ProposedValue<PodContext>>, String> {
        self.height = height;
        self.round = round;
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
        Ok(values)
    }

    /// `ReceivedProposalPart`: one part of a peer's stream; a complete stream for this height is checked, one for a
    /// later height kept (boundedly) until that height starts.
    pub(super) fn on_received_proposal_part(
        &mut self,
        publisher: PeerId,
        part: StreamMessage<ProposalPart>,
    ) -> Result<Option<ProposedValue<PodContext>>, String> {
        if let StreamContent::Data(ProposalPart::Wake { height, from, signature }) = &part.content {
            self.on_wake(*height, from, signature);
            return Ok(None);
        }
        if let StreamContent::Data(ProposalPart::Reinstate { entry, signature }) = &part.content {
            self.on_reinstate(publisher, entry, signature);
            return Ok(None);
        }
        Ok(match self.add_part(publisher, part) {
            Some(a) if a.height == self.height => self.accept_stream(a)?,
            Some(a) if self.keep_for_later(&a) => {
                self.future.push(a);
                None
            }
            _ => None,
        })
    }

    /// A suspended node's offered reinstatement: queued here (so whichever validator proposes next commits it)
    /// when it is a `node_reinstated` of a node the pod suspended, signed with the key it was suspended with, and
    /// valid by the block rules now (its evidence and anchor included). What it costs a peer is bounded: the
    /// signature is checked first, then the anchor (a point of this ledger after the suspension, within the pod's
    /// window: cheap reads), and only then the evidence, at most once per offer (by leaf hash) and once per
    /// suspended node per [`REINSTATE_EVERY`]. A peer that replays the node's old offers (their anchors too old)
    /// or the same offer again takes no slot from its fresh one.
    pub(super) fn on_reinstate(&mut self, publisher: PeerId, bytes: &Bytes, signature: &Signature) {
        if self.rules.set.get_by_address(&self.me).is_none() {
            return; // only validators propose
        }
        let Ok(enc) = Encoded::decode(bytes) else {
            tracing::debug!(%publisher, "an offered reinstatement that does not decode; dropped");
            return;
        };
        let Entry::NodeReinstated(r) = enc.entry() else {
            tracing::debug!(%publisher, kind = enc.entry().kind(), "an offered entry that is no reinstatement; dropped");
            return;
        };
        let name = r.validator.name.clone();
        let Some(s) = self.rules.suspended.get(&name) else {
            tracing::debug!(%publisher, node = %name, "a reinstatement of a node that is not suspended; dropped");
            return;
        };
        if !signing::verify(&PublicKey(s.key), &signing::receipt_bytes(&enc.leaf_hash()), signature) {
            tracing::debug!(%publisher, node = %name, "a reinstatement not signed by the suspended node; dropped");
            return;
        }
        let window_ms = self.rules.policy.reattestation.window_s.saturating_mul(1000);
        let anchored = {
            let l = self.shared.ledger.lock().expect("not poisoned");
            block::anchor_holds(&l, &name, &r.anchor, s.height, now_ms(), window_ms)
        };
        if let Err(why) = anchored {
            tracing::debug!(%publisher, node = %name, "an offered reinstatement dropped before its evidence: {why}");
            return;
        }
        let now = tokio::time::Instant::now();
        let leaf = enc.leaf_hash();
        let seen = self.reinstate_seen.entry(name.clone()).or_default();
        if seen.1.contains(&leaf) || seen.0.is_some_and(|t| now.duration_since(t) < REINSTATE_EVERY) {
            return;
        }
        if seen.1.len() >= 1024 {
            seen.1.clear(); // a node offering that many is not coming back by its own evidence; bounded all the same
        }
        seen.0 = Some(now);
        seen.1.insert(leaf);
        let attachments = Attachments { signature: signature.0.to_vec(), ..Default::default() };
        match crate::queue(&self.shared, self.cfg.fault, enc, attachments) {
            Ok(_) => tracing::info!(node = %name, "a suspended node offers fresh evidence: queued for a block"),
            Err(why) => tracing::info!(node = %name, "a suspended node's reinstatement is refused: {why}"),
        }
    }

    /// Whether a complete stream for a later height is worth keeping until that height starts: near, in an early
    /// round, signed by a current validator (the set may change by then; a block it drops is streamed again or
    /// synced), and not one more of the same (height, round, proposer).
    fn keep_for_later(&self, a: &Assembled) -> bool {
        if a.height <= self.height
            || a.height.0 - self.height.0 > MAX_HEIGHTS_AHEAD
            || !(0..=MAX_ROUNDS_AHEAD).contains(&a.round.as_i64())
            || self.future.len() >= MAX_FUTURE
        {
            return false;
        }
        let Some(v) = self.rules.set.get_by_address(&a.proposer) else { return false };
        let id = Block::id_of(&a.bytes);
        if !signing::verify(&v.public_key, &signing::block_bytes(a.height, a.round, &id, &a.proposer), &a.signature) {
            return false;
        }
        let same = |f: &&Assembled| f.height == a.height && f.round == a.round && f.proposer == a.proposer;
        self.future.iter().filter(same).count() < MAX_PER_SLOT
    }

    /// `RestreamProposal`: publishes this node's own block again.
    pub(super) async fn on_restream_proposal(
        &self,
        height: Height,
        round: Round,
        valid_round: Round,
        address: Address,
        value_id: &BlockId,
        channels: &Channels<PodContext>,
    ) {
        if address == self.me && self.undecided.contains_key(value_id) {
            self.stream(height, round, valid_round, value_id, channels).await;
        }
    }

    /// Publishes the parts of block `id` for (height, round).
    pub(super) async fn stream(
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
    pub(super) fn add_part(&mut self, publisher: PeerId, msg: StreamMessage<ProposalPart>) -> Option<Assembled> {
        let key = (publisher, msg.stream_id.clone());
        if !self.streams.contains_key(&key) {
            let own = self.stream_order.iter().filter(|(p, _)| *p == publisher).count();
            if own >= MAX_STREAMS_PER_PEER {
                let oldest = self.stream_order.iter().position(|(p, _)| *p == publisher).expect("counted");
                let old = self.stream_order.remove(oldest).expect("present");
                self.streams.remove(&old);
            } else if self.stream_order.len() >= MAX_STREAMS {
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
            // These belong to no stream (`on_wake`, `on_reinstate`).
            StreamContent::Data(ProposalPart::Wake { .. } | ProposalPart::Reinstate { .. }) => {}
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
    pub(super) fn accept_stream(&mut self, a: Assembled) -> Result<Option<ProposedValue<PodContext>>, String> {
        if a.round.as_i64() < 0 || a.round.as_i64() > self.round.as_i64() + MAX_ROUNDS_AHEAD {
            tracing::debug!(height = %a.height, round = %a.round, "a proposal for no round, or one far ahead; dropped");
            return Ok(None);
        }
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
        let (height, round, valid_round, proposer) = (a.height, a.round, a.pol_round, a.proposer);
        let pv = move |validity| ProposedValue { height, round, valid_round, proposer, value: id, validity };
        // A valid block streamed again for its round is not validated again. (One this node found invalid is: its
        // time may have come within this node's clock since. One re-proposed in another round is too: its
        // validity depends on the round's proposer.)
        let known = |(seen, _): &&(ProposedValue<PodContext>, Vec<u8>)| {
            seen.round == round && matches!(seen.validity, Validity::Valid)
        };
        if let Some((seen, _)) = self.undecided.get(&id).filter(known) {
            return Ok(Some(seen.clone()));
        }
        let slot = |(u, _): &&(ProposedValue<PodContext>, Vec<u8>)| {
            u.height == height && u.round == round && u.proposer == proposer && u.value != id
        };
        if self.undecided.values().filter(slot).count() >= MAX_PER_SLOT {
            tracing::warn!(height = %a.height, round = %a.round, proposer = %a.proposer, "one more block from a proposer that already proposed two in this round; dropped unchecked");
            return Ok(None);
        }
        let validity = match Block::decode(&a.bytes) {
            Ok(b) => self.check(id, &b, a.height, &a.proposer, false),
            Err(e) => {
                tracing::warn!(height = %a.height, "a proposed block that does not decode: {e}");
                Validity::Invalid
            }
        };
        // Kept and stored even when this node finds it invalid: validity can differ between honest validators (a
        // block time near the clock-drift bound), so it may still be decided, and its commit needs its bytes.
        let pv = pv(validity);
        self.store_undecided(pv.clone(), a.bytes)?;
        Ok(Some(pv))
    }
}

#[cfg(test)]
mod tests {
    use super::super::app_for_tests;
    use super::*;
    use crate::local;

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[[0x12, 0x20].as_slice(), &[b; 32]].concat()).unwrap()
    }

    /// The parts of a stream `sid` carrying `block` for (height, round), signed by local node `signer`.
    fn parts(sid: u8, height: u64, round: u32, signer: usize, block: &Block) -> Vec<StreamMessage<ProposalPart>> {
        let key = PodSigner::new(&local::seed(signer));
        let (height, round, proposer) = (Height(height), Round::new(round), Address(key.public_key().0));
        let bytes = block.encode();
        let signature = key.sign(&signing::block_bytes(height, round, &Block::id_of(&bytes), &proposer));
        let id = StreamId::new(Bytes::from(vec![sid]));
        let content = [
            StreamContent::Data(ProposalPart::Init { height, round, pol_round: Round::Nil, proposer }),
            StreamContent::Data(ProposalPart::Data(Bytes::from(bytes))),
            StreamContent::Data(ProposalPart::Fin { signature }),
            StreamContent::Fin,
        ];
        content.into_iter().enumerate().map(|(i, c)| StreamMessage::new(id.clone(), i as u64, c)).collect()
    }

    /// An empty block of height 1 on the genesis, proposed by local node `by`, made distinct by `nth` (its time,
    /// `nth` ms before `at`).
    fn block(app: &App, by: usize, at: u64, nth: u64) -> Block {
        let l = app.shared.ledger.lock().unwrap();
        Block {
            pod: l.pod().into(),
            height: 1,
            proposer: ByteBuf::from(PodSigner::new(&local::seed(by)).public_key().0.to_vec()),
            time_ms: at - nth,
            parent_size: l.size(),
            parent_root: l.root(),
            entries: vec![],
        }
    }

    /// The local node that leads (height, round).
    fn leader(app: &App, height: u64, round: u32) -> usize {
        let a = app.ctx.select_proposer(&app.rules.set, Height(height), Round::new(round)).address;
        (0..4).find(|i| PodSigner::new(&local::seed(*i)).public_key().0 == a.0).unwrap()
    }

    fn send(app: &mut App, from: PeerId, parts: Vec<StreamMessage<ProposalPart>>) -> Option<ProposedValue<PodContext>> {
        let mut last = None;
        for p in parts {
            last = app.on_received_proposal_part(from, p).unwrap();
        }
        last
    }

    fn stored(app: &App) -> usize {
        app.shared.ledger.lock().unwrap().aux_scan(keys::UNDECIDED, None, 10_000).unwrap().len()
    }

    #[test]
    fn a_proposer_that_signs_block_after_block_costs_two_checks_per_round() {
        let (mut app, _) = app_for_tests(Ledger::in_memory(&local::genesis("p", 4)).unwrap(), 0);
        let (by, at) = (leader(&app, 1, 0), now_ms());
        let mut accepted = 0;
        for nth in 0..20 {
            let b = block(&app, by, at, nth);
            if let Some(pv) = send(&mut app, peer(1), parts(nth as u8, 1, 0, by, &b)) {
                assert!(matches!(pv.validity, Validity::Valid), "block {nth} is a valid block");
                accepted += 1;
            }
        }
        assert_eq!(accepted, MAX_PER_SLOT, "the engine hears of two blocks: the equivocation");
        assert_eq!((app.undecided.len(), app.prepared.len(), stored(&app)), (MAX_PER_SLOT, MAX_PER_SLOT, MAX_PER_SLOT));

        // The first block streamed again is answered from what was seen, not checked or stored again.
        let first = block(&app, by, at, 0);
        app.prepared.clear();
        let again = send(&mut app, peer(2), parts(99, 1, 0, by, &first)).expect("known");
        assert_eq!(again.value, Block::id_of(&first.encode()));
        assert!(app.prepared.is_empty(), "not validated again");
        assert_eq!(stored(&app), MAX_PER_SLOT);

        // A round far ahead is not read; a near one, from its leader, is.
        let far = MAX_ROUNDS_AHEAD as u32 + 1;
        let far_leader = leader(&app, 1, far);
        let b = block(&app, far_leader, at, 50);
        assert!(send(&mut app, peer(1), parts(98, 1, far, far_leader, &b)).is_none());
        assert!(!app.undecided.values().any(|(pv, _)| pv.round == Round::new(far)));
        let near = MAX_ROUNDS_AHEAD as u32;
        let near_leader = leader(&app, 1, near);
        let b = block(&app, near_leader, at, 51);
        let pv = send(&mut app, peer(1), parts(97, 1, near, near_leader, &b));
        assert!(pv.is_some_and(|pv| matches!(pv.validity, Validity::Valid)), "round {near}");
    }

    #[test]
    fn an_invalid_block_is_kept_and_checked_again_when_streamed_again() {
        let (mut app, _) = app_for_tests(Ledger::in_memory(&local::genesis("p", 4)).unwrap(), 0);
        let by = leader(&app, 1, 0);
        let mut b = block(&app, by, now_ms(), 0);
        b.pod = "another".into();
        let pv = send(&mut app, peer(1), parts(1, 1, 0, by, &b)).expect("the engine hears of it");
        assert!(matches!(pv.validity, Validity::Invalid));
        // Honest validators can differ on validity (a block time near the drift bound), so it is kept for its
        // commit, and checked again (not answered from what was seen) when it comes again.
        assert_eq!(stored(&app), 1);
        assert!(app.undecided.values().all(|(_, bytes)| *bytes == b.encode()));
        for sid in 2..10 {
            let again = send(&mut app, peer(1), parts(sid, 1, 0, by, &b)).expect("checked again");
            assert!(matches!(again.validity, Validity::Invalid));
        }
        assert_eq!(stored(&app), 1, "the same block, stored once");
    }

    #[test]
    fn streams_far_ahead_or_from_strangers_are_not_kept_and_one_peer_cannot_evict_another() {
        let (mut app, _) = app_for_tests(Ledger::in_memory(&local::genesis("p", 4)).unwrap(), 0);
        let by = leader(&app, 1, 0);
        let b = block(&app, by, now_ms(), 0);
        // Heights: the next two are kept (once per slot, twice at most), a farther one is not.
        for (sid, height) in [(1, 2), (2, 2), (3, 2), (4, 3), (5, 2 + MAX_HEIGHTS_AHEAD)] {
            assert!(send(&mut app, peer(1), parts(sid, height, 0, by, &b)).is_none());
        }
        assert_eq!(app.future.len(), 3, "two at height 2 (a third is one too many) and one at 3");
        // A signature by no validator.
        let mut stranger = parts(6, 2, 1, by, &b);
        if let StreamContent::Data(ProposalPart::Fin { signature }) = &mut stranger[2].content {
            signature.0[0] ^= 1;
        }
        send(&mut app, peer(1), stranger);
        assert_eq!(app.future.len(), 3, "a badly signed stream is not kept");

        // Peer 1 opens incomplete streams without end; peer 2's stream in progress survives them.
        let honest = parts(50, 1, 0, by, &b);
        app.on_received_proposal_part(peer(2), honest[0].clone()).unwrap();
        for sid in 100..200u8 {
            let mut p = parts(sid, 1, 0, by, &b);
            app.on_received_proposal_part(peer(1), p.remove(0)).unwrap();
        }
        assert_eq!(app.stream_order.iter().filter(|(p, _)| *p == peer(1)).count(), MAX_STREAMS_PER_PEER);
        let mut last = None;
        for p in honest.into_iter().skip(1) {
            last = app.on_received_proposal_part(peer(2), p).unwrap();
        }
        assert!(last.is_some(), "the honest stream completes");
    }

    /// A local pod's ledger in which node-3 was suspended at height 2, more than the pod's window (600 s) ago, and
    /// height 3 was decided a moment ago; the app of node `me`; and the anchors of heights 1, 2 and 3.
    fn suspended(me: usize) -> (App, Shared, [sigil_ledger::entry::Anchor; 3]) {
        use sigil_ledger::entry::{Anchor, NodeSuspended};
        let mut l = Ledger::in_memory(&local::genesis("p", 4)).unwrap();
        let now = now_ms();
        let record = |l: &mut Ledger, h: u64, at: u64| {
            let (size, root) = (l.size(), l.root());
            l.aux_write(super::super::height_records(h, size, &root, at).to_vec(), vec![]).unwrap();
            Anchor { height: h, root }
        };
        let one = record(&mut l, 1, now - 800_000);
        let s = Encoded::new(Entry::NodeSuspended(NodeSuspended {
            name: local::name(3),
            cause: NodeSuspended::REFUSED.into(),
            attestation: 0,
            reason: "r".into(),
        }));
        let at = block::Suspended { key: crate::public_key(&local::seed(3)), height: 2, at_ms: now - 700_000 };
        let su = ([keys::SUSPENDED, local::name(3).as_bytes()].concat(), at.encode());
        l.append_block_with(&[s], vec![su], vec![], None).unwrap();
        let two = record(&mut l, 2, now - 700_000);
        let three = record(&mut l, 3, now - 500);
        let (app, shared) = app_for_tests(l, me);
        (app, shared, [one, two, three])
    }

    /// node-3's reinstatement bound to `anchor`, made distinct by `n`, signed by local node `by`.
    fn reinstatement(anchor: sigil_ledger::entry::Anchor, n: u8, by: usize) -> (Bytes, Signature, Hash) {
        let key = crate::public_key(&local::seed(3));
        let evidence = crate::admission::sim_evidence_with("p", &key, local::MEASUREMENT, &anchor.nonce(), None);
        let e = Encoded::new(Entry::NodeReinstated(sigil_ledger::entry::NodeReinstated {
            validator: sigil_ledger::checkpoint::Validator { name: local::name(3), public_key: key.to_vec() },
            evidence: ByteBuf::from(evidence),
            attestation_result: ByteBuf::from(vec![n]),
            anchor,
        }));
        let signature = PodSigner::new(&local::seed(by)).sign(&signing::receipt_bytes(&e.leaf_hash()));
        (Bytes::from(e.bytes().to_vec()), signature, e.leaf_hash())
    }

    #[test]
    fn a_suspended_node_s_offer_is_queued_once_checked_and_replays_or_forgeries_cost_no_evidence_check() {
        let (mut app, shared, [before, stale, recent]) = suspended(0);
        assert!(app.rules.suspended.contains_key(&local::name(3)) && app.rules.set.validators.len() == 3);
        let queued = || shared.mempool.lock().unwrap().len();
        let offer = |app: &mut App, (bytes, sig, _): &(Bytes, Signature, Hash)| app.on_reinstate(peer(9), bytes, sig);
        // Signed by another node; bound to a height before the suspension, to one after it but older than the
        // pod's window, or to another ledger's root; not a reinstatement at all: dropped before the evidence is
        // looked at, and they take no slot.
        offer(&mut app, &reinstatement(recent, 0, 2));
        offer(&mut app, &reinstatement(before, 0, 3));
        offer(&mut app, &reinstatement(stale, 0, 3));
        let forged = sigil_ledger::entry::Anchor { root: Hash::digest(b"elsewhere"), ..recent };
        offer(&mut app, &reinstatement(forged, 0, 3));
        let other = Encoded::new(local::genesis("p", 4));
        let sig = PodSigner::new(&local::seed(3)).sign(&signing::receipt_bytes(&other.leaf_hash()));
        app.on_reinstate(peer(9), &Bytes::from(other.bytes().to_vec()), &sig);
        assert_eq!(queued(), 0);
        assert!(app.reinstate_seen.is_empty(), "nothing was checked in full");
        // node-3's own, bound to a recent point after its suspension: checked and queued for this validator's block.
        let first = reinstatement(recent, 0, 3);
        offer(&mut app, &first);
        assert_eq!(queued(), 1);
        let seen = |app: &App| app.reinstate_seen[&local::name(3)].clone();
        assert_eq!(seen(&app).1.len(), 1);
        // Another one within REINSTATE_EVERY waits.
        let second = reinstatement(recent, 1, 3);
        offer(&mut app, &second);
        assert_eq!((queued(), seen(&app).1.len()), (1, 1));
        // REINSTATE_EVERY later: the same offer again (a replay) is not checked again and takes no slot, so a new
        // one is checked and queued.
        let earlier = tokio::time::Instant::now() - REINSTATE_EVERY;
        app.reinstate_seen.get_mut(&local::name(3)).unwrap().0 = Some(earlier);
        offer(&mut app, &first);
        assert_eq!(seen(&app).0, Some(earlier), "a replay is not checked");
        offer(&mut app, &second);
        assert_eq!((queued(), seen(&app).1.len()), (2, 2));
        // A node that is no validator (node-3 itself, suspended) queues nothing.
        let (mut follower, shared3, [_, _, recent3]) = suspended(3);
        let (bytes, sig, _) = reinstatement(recent3, 0, 3);
        follower.on_reinstate(peer(9), &bytes, &sig);
        assert_eq!(shared3.mempool.lock().unwrap().len(), 0);
    }
}
