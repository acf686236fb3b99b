//! The mempool: entries waiting for a block, and who waits for them; and this node's block for a round, built
//! from it.

use super::*;
use crate::rejection::Rejection;

/// What a block's header and framing may take besides its items.
const BLOCK_OVERHEAD: usize = 4096;
/// The most bytes one item may take (see [`item_len`]): what fits in a block on its own.
pub(crate) const MAX_ITEM_BYTES: usize = MAX_BLOCK_BYTES - BLOCK_OVERHEAD;
/// Room a proposer keeps in its block for each suspension it may add: more than a `node_suspended` entry with a
/// reason of the most characters (each up to 4 bytes) takes, with its framing.
const SUSPENSION_BYTES: usize = 4096;
/// The most bytes the pool holds, whatever its entry capacity: 32 blocks' worth.
const MAX_POOL_BYTES: usize = 32 * MAX_BLOCK_BYTES;

/// An upper bound on an item's CBOR framing in a block: a map of at most five fields (header 1 byte; keys
/// `entry`, `signature`, `request`, `write_set`, `code`: 39 bytes with their headers), each value a byte string
/// whose header is at most 5 bytes (every length is below 2^32), and the item's share of the entries array's
/// header. Under the real framing, a full block would not decode at its validators.
const ITEM_FRAMING: usize = 1 + 39 + 5 * 5 + 5;

/// The bytes an entry and its attachments take in a block, with their framing (never less than they take).
fn item_len(entry: &Encoded, attachments: &Attachments) -> usize {
    entry.bytes().len() + attachments.len() + ITEM_FRAMING
}

/// Entries waiting for a block, and who waits for them.
#[derive(Default)]
pub struct Mempool {
    queue: VecDeque<(Hash, Encoded, Attachments)>,
    waiters: HashMap<Hash, Vec<oneshot::Sender<Committed>>>,
    /// Bytes queued ([`item_len`] of each).
    bytes: usize,
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
        let len = item_len(&entry, &attachments);
        if len > MAX_ITEM_BYTES {
            // It could never be in a block: queued, it would sit at the head of every proposal.
            return Err(Rejection::Invalid(format!(
                "the entry with its attachments is {len} bytes; a block holds at most {MAX_ITEM_BYTES}"
            )));
        }
        if self.queue.len() >= self.capacity.max(1) || self.bytes + len > MAX_POOL_BYTES {
            return Err(Rejection::MempoolFull(format!(
                "the mempool is full ({} entries, {} bytes); try again shortly",
                self.queue.len(),
                self.bytes
            )));
        }
        self.bytes += len;
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
        self.remove(|h| leaves.contains_key(h));
        for (h, c) in leaves {
            for w in self.waiters.remove(h).unwrap_or_default() {
                let _ = w.send(*c);
            }
        }
    }

    /// Takes the entries whose leaf hash `gone` picks out of the queue, and their bytes off the count.
    fn remove(&mut self, gone: impl Fn(&Hash) -> bool) {
        let bytes = &mut self.bytes;
        self.queue.retain(|(h, e, a)| {
            let keep = !gone(h);
            if !keep {
                *bytes -= item_len(e, a);
            }
            keep
        });
    }

    pub(super) fn drop_entry(&mut self, leaf: &Hash) {
        self.remove(|h| h == leaf);
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
        // Woken for this height, the entries are another node's: waiting for some here would only delay its turn.
        if self.woken < height && self.shared.mempool.lock().expect("not poisoned").is_empty() {
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
        // At most a block's worth of entries and twice a block's bytes are copied out of the pool per proposal.
        let candidates: Vec<(Hash, Encoded, Attachments)> = {
            let m = self.shared.mempool.lock().expect("not poisoned");
            let mut bytes = 0;
            m.queue
                .iter()
                .take(MAX_BLOCK_ENTRIES)
                .take_while(|(_, e, a)| {
                    bytes += item_len(e, a);
                    bytes <= 2 * MAX_BLOCK_BYTES
                })
                .cloned()
                .collect()
        };
        let mut bytes_total = 0;
        let mut refused = Vec::new();
        let mut taken = Vec::new();
        let checkpoint;
        let effects;
        let now = tokio::time::Instant::now();
        let mut lapsed = self.shared.lapsed.lock().expect("not poisoned").clone();
        lapsed.retain(|n| {
            self.suspensions_tried.get(n).is_none_or(|t| now.duration_since(*t) >= crate::standing::LOOK_EVERY)
        });
        self.suspensions_tried.retain(|_, t| now.duration_since(*t) < crate::standing::LOOK_EVERY);
        for n in &lapsed {
            self.suspensions_tried.insert(n.clone(), now);
        }
        {
            let l = self.shared.ledger.lock().expect("not poisoned");
            let mut checker = block::Checker::new(&l, &self.rules, b.time_ms);
            // Room kept for the suspensions below, so a busy pod's full blocks do not put them off.
            let (reserved_entries, reserved_bytes) = (lapsed.len(), lapsed.len() * SUSPENSION_BYTES);
            for (leaf, enc, att) in candidates {
                let len = item_len(&enc, &att);
                if b.entries.len() + reserved_entries >= MAX_BLOCK_ENTRIES {
                    break;
                }
                if bytes_total + len + reserved_bytes > MAX_ITEM_BYTES {
                    continue; // the next block takes it; smaller entries behind it need not wait
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
            // Validators whose standing lapsed: suspended after the entries (a re-attestation among them comes first,
            // and the rules then refuse the suspension), judged at this block's time as its validators will (a
            // suspension the rules refuse, one that would leave too few in good standing, is left out).
            for name in lapsed.iter().filter(|_| self.cfg.fault == crate::Fault::None) {
                let lapse = match checker.lapse(name) {
                    Ok(Some(lapse)) => lapse,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(node = %name, "judging a validator's standing: {e}");
                        continue;
                    }
                };
                let enc = Encoded::new(Entry::NodeSuspended(lapse.suspension(name)));
                let len = item_len(&enc, &Attachments::default());
                if b.entries.len() >= MAX_BLOCK_ENTRIES || bytes_total + len > MAX_ITEM_BYTES {
                    break; // a later block
                }
                match checker.check(b.entries.len(), &enc, &Attachments::default()) {
                    Ok(()) => {
                        tracing::info!(%height, node = %name, cause = lapse.cause, "proposing to suspend a validator: {}", lapse.reason);
                        bytes_total += len;
                        b.entries.push(block::Item::new(&enc, &Attachments::default()));
                        taken.push(enc);
                    }
                    Err(why) => tracing::debug!(node = %name, "not suspending a lapsed validator: {why}"),
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
        if bytes.len() > MAX_BLOCK_BYTES {
            // The bounds above make this impossible; were they wrong, proposing it would stall every round.
            return Err(format!("the block would be {} bytes, over {MAX_BLOCK_BYTES}", bytes.len()));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_framing_bound_is_never_less_than_an_item_takes_in_a_block() {
        let (e, a) = testing::invocation(0, 1);
        let entry = Encoded::new(e);
        // Every attachment present and large enough for 4-byte length headers.
        let a = Attachments { signature: vec![1; 64], write_set: vec![2; 70_000], code: vec![3; 70_000], ..a };
        let encoded = sigil_primitives::cbor::encode(&block::Item::new(&entry, &a)).len();
        assert!(item_len(&entry, &a) >= encoded, "bound {} < encoded {encoded}", item_len(&entry, &a));
        assert!(item_len(&entry, &a) - encoded < 64, "and not far above it");
    }

    #[test]
    fn the_pool_is_bounded_by_bytes_as_well_as_entries() {
        let mut pool = Mempool::new(1_000_000);
        let (e, a) = testing::invocation(0, 1);
        // Items of nearly a block each (a few bytes under, as `n` grows the entry).
        let room = MAX_ITEM_BYTES - item_len(&Encoded::new(e), &a) - 64;
        let mut queued = 0;
        let r = loop {
            let (e, a) = testing::invocation(0, queued);
            match pool.push(Encoded::new(e), Attachments { code: vec![0; room], ..a }) {
                Ok(_) => queued += 1,
                Err(r) => break r,
            }
        };
        assert!(matches!(&r, Rejection::MempoolFull(why) if why.contains("bytes")), "{r:?}");
        assert_eq!(queued as usize, MAX_POOL_BYTES / MAX_ITEM_BYTES);
        assert!(pool.bytes <= MAX_POOL_BYTES);
        // The count follows entries out of the pool.
        let first = pool.queue[0].0;
        pool.drop_entry(&first);
        assert_eq!(pool.bytes, pool.queue.iter().map(|(_, e, a)| item_len(e, a)).sum::<usize>());
        let (e, a) = testing::invocation(0, queued);
        assert!(pool.push(Encoded::new(e), Attachments { code: vec![0; room], ..a }).is_ok(), "room again");
    }

    #[test]
    fn an_entry_that_can_never_fit_a_block_is_refused_at_the_door_and_nothing_is_queued() {
        let mut pool = Mempool::new(10);
        let (e, a) = testing::invocation(0, 1);
        let entry = Encoded::new(e);
        let room = MAX_ITEM_BYTES - item_len(&entry, &a);
        // Exactly as large as a block can hold on its own: queued.
        let fits = Attachments { code: vec![0; room], ..a.clone() };
        assert!(pool.push(entry.clone(), fits).is_ok());
        // One byte more: refused, as invalid (it never will fit), and the pool is as it was.
        let mut pool = Mempool::new(10);
        let too_big = Attachments { code: vec![0; room + 1], ..a };
        let r = pool.push(entry, too_big).map(|_| ()).expect_err("refused");
        assert!(matches!(&r, Rejection::Invalid(why) if why.contains("a block holds at most")), "{r:?}");
        assert!(pool.is_empty() && pool.waiters.is_empty());
    }
}
