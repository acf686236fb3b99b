//! An idle pod waits instead of committing empty blocks (#17 item 13).
//!
//! After a height whose block was empty, a node with nothing in its mempool does not start the next height at once:
//! it holds its answer to the engine's `Finalized` (the engine goes on taking messages meanwhile, and keeps those for
//! the next height until it starts) until `idle_interval` after the last block's time, and starts the height as
//! soon as
//! - an entry reaches its own mempool (it then asks the others to start too, with a signed [`ProposalPart::Wake`]),
//! - a validator's signed wake for that height arrives,
//! - a proposal for that height arrives (its proposer started it), or
//! - the interval ends: an idle pod commits one empty block per interval, a heartbeat that shows it is alive. A node
//!   syncing old blocks does not wait: their interval is over.
//!
//! A node that starts a height with entries queued after an empty block sends a wake for it, since the others may
//! be waiting, and sends it again every second until a proposal for the height comes. Entries still wait for their
//! executor's turn to propose (mempools are not gossiped), so a lone entry on an idle pod costs as many empty blocks
//! as there are proposers before its executor's turn, no more. A wake is one small message per height, signed by a
//! current validator and for this height or the next; anything else is dropped unverified (after the cheap checks)
//! or, when the signature fails, after one verification. A Byzantine validator's wakes can make the pod commit empty
//! blocks as fast as it did before this pause existed, no faster.

use super::*;

/// How often a node with entries sends its wake again while no proposal for the height has come.
const WAKE_AGAIN: Duration = Duration::from_secs(1);

/// The engine's `Finalized` reply, held while an idle node waits.
pub(super) struct Paused {
    pub(super) reply: oneshot::Sender<Next<PodContext>>,
    pub(super) until: tokio::time::Instant,
}

impl App {
    /// Answers `Finalized`: starts the next height now, or holds the answer while the pod is idle, until
    /// `idle_interval` after the last block's time. (So a node that syncs old empty blocks never waits: their
    /// interval is over.)
    pub(super) async fn start_next(
        &mut self,
        reply: oneshot::Sender<Next<PodContext>>,
        channels: &Channels<PodContext>,
    ) {
        match self.pause(now_ms()) {
            Some(wait) => {
                tracing::debug!(height = %self.height, ?wait, "idle: waiting for entries or a wake");
                self.paused = Some(Paused { reply, until: tokio::time::Instant::now() + wait });
            }
            None => self.start(reply, channels).await,
        }
    }

    /// How long to hold `self.height` at `now` (Unix ms): what is left of the interval after the last block's
    /// time, if the pod is idle.
    fn pause(&self, now: u64) -> Option<Duration> {
        let due = self.rules.parent_time_ms.saturating_add(self.cfg.idle_interval.as_millis() as u64);
        (self.idle() && due > now).then(|| Duration::from_millis(due - now))
    }

    /// Whether to wait before starting `self.height`: pausing is on, the last block was empty, nothing is queued
    /// here, and no validator has woken this height or proposed for it.
    fn idle(&self) -> bool {
        !self.cfg.idle_interval.is_zero()
            && self.last_empty
            && self.shared.mempool.lock().expect("not poisoned").is_empty()
            && !self.woken(self.height)
    }

    /// Whether a validator asked for `height` or proposed a block for it.
    fn woken(&self, height: Height) -> bool {
        self.woken >= height || self.proposed(height) || self.future.iter().any(|a| a.height == height)
    }

    /// Whether a block for `height` (the current one) has come and been checked.
    fn proposed(&self, height: Height) -> bool {
        self.undecided.values().any(|(pv, _)| pv.height == height)
    }

    /// Starts the held height if its wait is over: an entry queued here, a wake or a proposal came, or the interval
    /// ended.
    pub(super) async fn resume_if_due(&mut self, channels: &Channels<PodContext>) {
        let Some(p) = &self.paused else { return };
        let why = if !self.shared.mempool.lock().expect("not poisoned").is_empty() {
            "an entry is queued here"
        } else if self.woken(self.height) {
            "a validator woke the pod"
        } else if tokio::time::Instant::now() >= p.until {
            "the idle interval ended"
        } else {
            return;
        };
        tracing::debug!(height = %self.height, "idle: starting the height: {why}");
        let p = self.paused.take().expect("checked");
        self.start(p.reply, channels).await;
    }

    /// Starts `self.height`; with entries queued after an empty block, wakes the others.
    async fn start(&mut self, reply: oneshot::Sender<Next<PodContext>>, channels: &Channels<PodContext>) {
        let _ = reply.send(Next::Start(self.height, self.params()));
        self.wakes_sent = 0;
        self.wake(channels).await;
    }

    /// Sends a wake for `self.height` when the others may be waiting for it (the last block was empty, no proposal
    /// for it has come) and this node has entries for it: as it starts the height, and again every
    /// [`WAKE_AGAIN`] until a proposal comes, in case one was lost (while the others wait, no round of the height
    /// can end, so nothing else would send it again). Each is numbered, so the network does not drop it as seen.
    pub(super) async fn wake(&mut self, channels: &Channels<PodContext>) {
        let queued = !self.shared.mempool.lock().expect("not poisoned").is_empty();
        let others_may_wait = self.last_empty && !self.proposed(self.height) && !self.cfg.idle_interval.is_zero();
        if !(queued && others_may_wait) {
            self.wake_again = None;
            return;
        }
        let (height, from) = (self.height, self.me);
        let signature = self.signer.sign(&signing::wake_bytes(height, &from));
        let id = StreamId::new(Bytes::from([b"wake".as_slice(), &height.0.to_be_bytes()].concat()));
        let part = StreamContent::Data(ProposalPart::Wake { height, from, signature });
        let msg = StreamMessage::new(id, self.wakes_sent, part);
        let _ = channels.network.send(NetworkMsg::PublishProposalPart(msg)).await;
        self.wakes_sent += 1;
        self.wake_again = Some(tokio::time::Instant::now() + WAKE_AGAIN);
    }

    /// A peer's wake: counted when it is for this height or the next, from a current validator, and signed by it.
    pub(super) fn on_wake(&mut self, height: Height, from: &Address, signature: &Signature) {
        if height <= self.woken || height < self.height || height.0 > self.height.0 + 1 {
            return;
        }
        let Some(v) = self.rules.set.get_by_address(from) else {
            tracing::debug!(%height, %from, "a wake from no validator; dropped");
            return;
        };
        if !signing::verify(&v.public_key, &signing::wake_bytes(height, from), signature) {
            tracing::debug!(%height, %from, "a wake whose signature does not verify; dropped");
            return;
        }
        self.woken = height;
    }

    /// When the held height is due to start by the clock (or `None` when none is held).
    pub(super) fn paused_until(&self) -> Option<tokio::time::Instant> {
        self.paused.as_ref().map(|p| p.until)
    }
}

#[cfg(test)]
mod tests {
    use super::super::app_for_tests;
    use super::*;
    use crate::local;

    /// A wake for `height` by local node `signer`, claiming to come from local node `from`.
    fn wake(height: u64, signer: usize, from: usize) -> (Height, Address, Signature) {
        let from = Address(PodSigner::new(&local::seed(from)).public_key().0);
        let signature = PodSigner::new(&local::seed(signer)).sign(&signing::wake_bytes(Height(height), &from));
        (Height(height), from, signature)
    }

    fn send(app: &mut App, (height, from, signature): (Height, Address, Signature)) {
        app.on_wake(height, &from, &signature);
    }

    #[test]
    fn only_a_validator_s_signed_wake_for_this_height_or_the_next_ends_the_wait() {
        let (mut app, _) = app_for_tests(Ledger::in_memory(&local::genesis("p", 4)).unwrap(), 0);
        app.cfg.idle_interval = Duration::from_secs(10);
        app.last_empty = true;
        assert_eq!(app.height, Height(1));
        assert!(app.idle(), "an idle pod after an empty block waits");
        // For what is left of the interval after the last block's time: a node syncing old blocks does not wait.
        app.rules.parent_time_ms = 1_000_000;
        assert_eq!(app.pause(1_004_000), Some(Duration::from_secs(6)));
        assert_eq!(app.pause(1_010_000), None, "the interval is over");
        assert_eq!(app.pause(5_000_000), None, "an old block");

        send(&mut app, wake(1, 9, 9)); // a key outside the set
        send(&mut app, wake(1, 2, 1)); // node 2's signature, claiming node 1
        let (h, from, mut sig) = wake(1, 1, 1);
        sig.0[10] ^= 1;
        send(&mut app, (h, from, sig)); // a bit flipped
        send(&mut app, wake(3, 1, 1)); // two heights ahead
        send(&mut app, wake(0, 1, 1)); // a past height
        assert_eq!(app.woken, Height(0), "none of those counts");
        assert!(app.idle());

        send(&mut app, wake(2, 1, 1)); // the next height: remembered for when it comes
        assert_eq!(app.woken, Height(2));
        assert!(!app.idle(), "height 1 is not held once height 2 was asked for");
        app.woken = Height(0);
        send(&mut app, wake(1, 3, 3));
        assert!(!app.idle(), "woken for this height");
    }

    #[test]
    fn a_node_with_entries_queued_or_after_a_block_with_entries_does_not_wait() {
        let (mut app, shared) = app_for_tests(Ledger::in_memory(&local::genesis("p", 4)).unwrap(), 0);
        app.last_empty = true;
        assert!(!app.idle(), "an interval of zero: never waits");
        app.cfg.idle_interval = Duration::from_secs(10);
        assert!(app.idle());
        app.last_empty = false;
        assert!(!app.idle(), "the last block had entries");
        app.last_empty = true;
        let (entry, attachments) = crate::testing::invocation(0, 1);
        let _rx = shared.mempool.lock().unwrap().push(Encoded::new(entry), attachments).unwrap();
        assert!(!app.idle(), "an entry is queued here");
    }
}
