//! Proposals as part streams: this node's block published as `Init`, `Data` chunks and a signed `Fin`; peers'
//! streams reassembled (bounded in count and size), checked to come from the round's proposer, and validated.

use super::*;

/// Bytes of block per `Data` part.
const CHUNK: usize = 512 * 1024;
/// Complete proposal streams for future heights kept at most.
const MAX_FUTURE: usize = 64;
/// Incomplete streams kept at most (a peer cannot make us buffer without bound).
const MAX_STREAMS: usize = 64;

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
        Ok(match self.add_part(publisher, part) {
            Some(a) if a.height == self.height => self.accept_stream(a)?,
            Some(a) if a.height > self.height && self.future.len() < MAX_FUTURE => {
                self.future.push(a);
                None
            }
            _ => None,
        })
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
    pub(super) fn accept_stream(&mut self, a: Assembled) -> Result<Option<ProposedValue<PodContext>>, String> {
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
}
