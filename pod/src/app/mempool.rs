//! The mempool: entries waiting for a block, and who waits for them; and this node's block for a round, built
//! from it.

use super::*;
use crate::rejection::Rejection;

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
    pub fn push(
        &mut self,
        entry: Encoded,
        attachments: Attachments,
    ) -> Result<oneshot::Receiver<Committed>, Rejection> {
        let leaf = entry.leaf_hash();
        let (tx, rx) = oneshot::channel();
        if let Some(w) = self.waiters.get_mut(&leaf) {
            w.push(tx); // already queued: wait for the same commit
            return Ok(rx);
        }
        if self.queue.len() >= self.capacity.max(1) {
            return Err(Rejection::MempoolFull(format!(
                "the mempool is full ({} entries); try again shortly",
                self.queue.len()
            )));
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

    pub(super) fn committed(&mut self, leaves: &HashMap<Hash, Committed>) {
        self.queue.retain(|(h, _, _)| !leaves.contains_key(h));
        for (h, c) in leaves {
            for w in self.waiters.remove(h).unwrap_or_default() {
                let _ = w.send(*c);
            }
        }
    }

    pub(super) fn drop_entry(&mut self, leaf: &Hash) {
        self.queue.retain(|(h, _, _)| h != leaf);
        self.waiters.remove(leaf); // the waiters see their sender dropped: not committed
    }
}

impl App {
    /// `GetValue`: this node proposes at (height, round): the block it already built for it, or a new one.
    pub(super) async fn on_get_value(
        &mut self,
        height: Height,
        round: Round,
        timeout: Duration,
    ) -> Result<BlockId, String> {
        match self.mine.get(&(height, round)) {
            Some(id) => Ok(*id),
            None => self.propose(height, round, timeout).await,
        }
    }

    /// Builds this node's block for (height, round) from its mempool.
    pub(super) async fn propose(&mut self, height: Height, round: Round, timeout: Duration) -> Result<BlockId, String> {
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
                    crate::Fault::None => checker.check(b.entries.len(), &enc, &att),
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
            if self.cfg.fault == crate::Fault::None {
                self.prepared.insert(id, Arc::new(Prepared { entries: taken, effects, checkpoint }));
            }
        }
        self.mine.insert((height, round), id);
        Ok(id)
    }
}
