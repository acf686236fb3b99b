//! Attestation over time (#16): a validator refreshes its evidence on the pod's schedule. `[reattestation]
//! every_s` after its latest attestation (the genesis, its admission or its last `reattested` entry), a node with
//! an [`Attester`] (its TEE backend) collects evidence whose REPORT_DATA binds its key, the pod and an anchor (the
//! height it has decided last and the ledger root after it), checks it under the pod's policy as the validators
//! will, and submits a `reattested` entry. The validators refuse it unless the anchor is theirs and within
//! `[reattestation] window_s` of the block (`block::Checker`), so evidence cannot be made ahead of time and kept:
//! each re-attestation proves the TEE was running this node's key after that block.
//!
//! A node that fails to re-attest (no evidence, evidence the policy refuses, an entry that is not committed)
//! says so in its log and tries again a minute later. A validator whose standing lapses (evidence older than
//! `[reattestation] max_age_s`, or refused by the current policy) is suspended by the others
//! ([`crate::standing`]); this loop then tries to come back at once and every [`SUSPENDED_RETRY`]: fresh evidence
//! the current policy accepts, bound to its tip, in a `node_reinstated` entry that it offers to the validators
//! over the network (a suspended node proposes no block).

use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sigil_ledger::entry::{Anchor, Encoded, NodeReinstated, Reattested};
use sigil_ledger::Entry;
use sigil_primitives::clock::{now_ms, now_secs};

use crate::app::Shared;
use crate::signing::PodSigner;
use crate::{admission, signing, Attachments};

/// Collects this node's TEE evidence (an encoded bundle) over the 64-byte REPORT_DATA it is given: the node's
/// backend. Called off the async runtime (it may block on a device).
pub type Collect = dyn Fn(&[u8; 64]) -> Result<Vec<u8>, String> + Send + Sync;

/// The TEE backend a node re-attests with; none by default (the node does not re-attest).
#[derive(Clone, Default)]
pub struct Attester(pub Option<Arc<Collect>>);

impl Attester {
    /// An attester that collects with `f`.
    pub fn new(f: impl Fn(&[u8; 64]) -> Result<Vec<u8>, String> + Send + Sync + 'static) -> Attester {
        Attester(Some(Arc::new(f)))
    }
}

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Attester(backend)" } else { "Attester(none)" })
    }
}

/// How long the loop waits before it looks again when nothing is due (the policy can change meanwhile).
const LOOK_AGAIN: Duration = Duration::from_secs(30);
/// How long it waits after a failed try.
const RETRY: Duration = Duration::from_secs(60);
/// How long a suspended node waits after a try that did not reinstate it (its evidence is refused, or no block
/// took its entry yet), doubled after each such try up to [`MAX_SUSPENDED_RETRY`].
pub const SUSPENDED_RETRY: Duration = Duration::from_secs(10);
/// The longest a suspended node waits between tries.
const MAX_SUSPENDED_RETRY: Duration = Duration::from_secs(300);
/// How long a suspended node waits for its offered reinstatement to commit.
const REINSTATE_WAIT: Duration = Duration::from_secs(30);

/// Offers an entry with the node's signature to the pod's validators (a suspended node's reinstatement).
pub(crate) type Offer = dyn Fn(Encoded, crate::types::Signature) -> Result<(), String> + Send + Sync;

/// What the loop needs of its node.
pub(crate) struct Ctx {
    pub name: String,
    pub pod: String,
    pub signer: Arc<PodSigner>,
    pub shared: Shared,
    pub collect: Arc<Collect>,
    pub queue: Box<
        dyn Fn(Encoded, Attachments) -> Result<tokio::sync::oneshot::Receiver<crate::Committed>, String> + Send + Sync,
    >,
    pub offer: Box<Offer>,
}

/// What the loop does next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Wait(Duration),
    Attest(Anchor),
    /// Suspended: come back with evidence bound to this anchor.
    Reinstate(Anchor),
}

/// Whether this node is due to re-attest, as of the last commit.
fn next(ctx: &Ctx) -> Next {
    let key = ctx.signer.public_key().0;
    let (every_ms, last) = {
        let rules = ctx.shared.rules.lock().expect("not poisoned");
        let Some(rules) = rules.as_ref() else { return Next::Wait(Duration::from_secs(1)) };
        if rules.suspended.get(&ctx.name).is_some_and(|s| s.key == key) {
            let tip = ctx.shared.tip.borrow().clone();
            return Next::Reinstate(Anchor { height: tip.height, root: tip.root });
        }
        match rules.set.by_name(&ctx.name) {
            Some(v) if v.public_key.0 == key => {}
            _ => return Next::Wait(LOOK_AGAIN), // not a validator (yet, or any more)
        }
        let every = rules.policy.reattestation.every_s;
        if every == 0 {
            return Next::Wait(LOOK_AGAIN);
        }
        (every.saturating_mul(1000), rules.attested_at.get(&ctx.name).copied().unwrap_or(0))
    };
    let due = last.saturating_add(every_ms);
    let now = now_ms();
    if now < due {
        return Next::Wait(Duration::from_millis(due - now).min(LOOK_AGAIN));
    }
    let tip = ctx.shared.tip.borrow().clone();
    if tip.height == 0 {
        return Next::Wait(Duration::from_secs(1)); // nothing decided to anchor to yet
    }
    Next::Attest(Anchor { height: tip.height, root: tip.root })
}

/// Collects, checks and submits one re-attestation bound to `anchor` (a reinstatement, when `reinstate`); returns
/// its ledger index once committed.
async fn attest(ctx: &Ctx, anchor: Anchor, reinstate: bool) -> Result<u64, String> {
    let key = ctx.signer.public_key().0;
    let nonce = anchor.nonce();
    let report_data = admission::report_data(&ctx.pod, &key, &nonce);
    let collect = ctx.collect.clone();
    let evidence = tokio::task::spawn_blocking(move || collect(&report_data))
        .await
        .map_err(|e| format!("collecting evidence: {e}"))?
        .map_err(|e| format!("collecting evidence: {e}"))?;
    let policy = ctx.shared.rules.lock().expect("not poisoned").as_ref().map(|r| r.policy.clone());
    let policy = policy.ok_or("the node is starting")?;
    let result = admission::judge(&policy, &ctx.pod, &key, &nonce, &evidence, now_secs())?;
    if !result.accepted() {
        return Err(format!(
            "this node's fresh {} evidence is refused by the pod's policy: {}",
            result.platform.as_str(),
            result.reasons.join("; ")
        ));
    }
    let attestation_result = ByteBuf::from(result.to_cbor().map_err(|e| e.to_string())?);
    if reinstate {
        let validator = sigil_ledger::checkpoint::Validator { name: ctx.name.clone(), public_key: key.to_vec() };
        let evidence = ByteBuf::from(evidence);
        let entry =
            Encoded::new(Entry::NodeReinstated(NodeReinstated { validator, evidence, attestation_result, anchor }));
        let signature = ctx.signer.sign(&signing::receipt_bytes(&entry.leaf_hash()));
        (ctx.offer)(entry, signature)?;
        let until = tokio::time::Instant::now() + REINSTATE_WAIT;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rules = ctx.shared.rules.lock().expect("not poisoned");
            let Some(rules) = rules.as_ref() else { continue };
            if rules.set.by_name(&ctx.name).is_some() {
                return rules.attestations.get(&ctx.name).copied().ok_or_else(|| "no attestation recorded".into());
            }
            if !rules.suspended.contains_key(&ctx.name) {
                return Err("the pod's members removed this node while it was suspended".into());
            }
        }
        return Err(format!("no block reinstated this node within {} s", REINSTATE_WAIT.as_secs()));
    }
    let entry = Encoded::new(Entry::Reattested(Reattested {
        node: ctx.name.clone(),
        key: ByteBuf::from(key.to_vec()),
        evidence: ByteBuf::from(evidence),
        attestation_result,
        anchor: Some(anchor),
    }));
    let signature = ctx.signer.sign(&signing::receipt_bytes(&entry.leaf_hash())).0.to_vec();
    let rx = (ctx.queue)(entry, Attachments { signature, ..Default::default() })?;
    match tokio::time::timeout(Duration::from_secs(120), rx).await {
        Ok(Ok(c)) => Ok(c.index),
        Ok(Err(_)) => Err("the re-attestation was dropped before a block committed it".into()),
        Err(_) => Err("the re-attestation was not committed within 120 s".into()),
    }
}

/// The loop: re-attests whenever [`next`] says so, until the task is aborted.
pub(crate) async fn run(ctx: Ctx) {
    let mut failures = 0u32; // tries in a row that did not reinstate this node
    loop {
        match next(&ctx) {
            Next::Wait(d) => tokio::time::sleep(d).await,
            Next::Attest(anchor) => match attest(&ctx, anchor, false).await {
                Ok(index) => tracing::info!(node = %ctx.name, index, anchor_height = anchor.height, "re-attested"),
                Err(e) => {
                    tracing::warn!(node = %ctx.name, "re-attestation failed, trying again in {} s: {e}", RETRY.as_secs());
                    tokio::time::sleep(RETRY).await;
                }
            },
            Next::Reinstate(anchor) => match attest(&ctx, anchor, true).await {
                Ok(index) => {
                    failures = 0;
                    tracing::info!(node = %ctx.name, index, anchor_height = anchor.height, "reinstated")
                }
                Err(e) => {
                    // Every 10 s at first; a node the policy keeps refusing backs off to every 5 minutes, and tries
                    // again at once when the policy changes.
                    let wait = SUSPENDED_RETRY.saturating_mul(1 << failures.min(5)).min(MAX_SUSPENDED_RETRY);
                    failures += 1;
                    tracing::warn!(node = %ctx.name, "this node is suspended and is not reinstated yet, trying again within {} s: {e}", wait.as_secs());
                    let policy =
                        |ctx: &Ctx| ctx.shared.rules.lock().expect("not poisoned").as_ref().map(|r| r.policy_index);
                    let (before, until) = (policy(&ctx), tokio::time::Instant::now() + wait);
                    while tokio::time::Instant::now() < until && policy(&ctx) == before {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Tip;
    use crate::local;
    use sigil_ledger::store::Ledger;
    use sigil_ledger::Hash;

    /// The loop's view of node `me` of a local pod whose policy adds `extra`.
    fn ctx(me: usize, extra: &str) -> Ctx {
        let Entry::Genesis(mut g) = local::genesis("p", 4) else { unreachable!() };
        g.policy.push_str(extra);
        let (_app, shared) = crate::app::app_for_tests(Ledger::in_memory(&Entry::Genesis(g)).unwrap(), me);
        Ctx {
            name: local::name(me),
            pod: "p".into(),
            signer: Arc::new(PodSigner::new(&local::seed(me))),
            shared,
            collect: Arc::new(|_| Err("not called".into())),
            queue: Box::new(|_, _| Err("not called".into())),
            offer: Box::new(|_, _| Err("not called".into())),
        }
    }

    #[test]
    fn a_validator_is_due_every_s_after_its_latest_attestation_and_anchors_to_its_tip() {
        // The local genesis was made in 2025: its validators are due at once, but nothing is decided to anchor to.
        let c = ctx(0, "");
        assert_eq!(next(&c), Next::Wait(Duration::from_secs(1)));
        let root = Hash([5; 32]);
        c.shared.tip.send_replace(Tip { height: 3, size: 9, root });
        assert_eq!(next(&c), Next::Attest(Anchor { height: 3, root }));
        // Attested a moment ago: not due for 4 hours; it looks again within LOOK_AGAIN (the policy may change).
        c.shared.rules.lock().unwrap().as_mut().unwrap().attested_at.insert(local::name(0), now_ms());
        assert!(matches!(next(&c), Next::Wait(d) if d == LOOK_AGAIN), "{:?}", next(&c));
        // Attested every_s (60 s) minus 2 s ago: due in about 2 s.
        let c = ctx(0, "\n[reattestation]\nevery_s = 60\n");
        c.shared.tip.send_replace(Tip { height: 3, size: 9, root });
        c.shared.rules.lock().unwrap().as_mut().unwrap().attested_at.insert(local::name(0), now_ms() - 58_000);
        assert!(matches!(next(&c), Next::Wait(d) if d <= Duration::from_secs(2)), "{:?}", next(&c));
        // `every_s = 0`: never.
        let c = ctx(0, "\n[reattestation]\nevery_s = 0\n");
        c.shared.tip.send_replace(Tip { height: 3, size: 9, root });
        assert_eq!(next(&c), Next::Wait(LOOK_AGAIN));
        // Not a validator: a name outside the set, or a name whose key is another's.
        for name in ["node-9", "node-1"] {
            let mut c = ctx(0, "");
            c.shared.tip.send_replace(Tip { height: 3, size: 9, root });
            c.name = name.into();
            assert_eq!(next(&c), Next::Wait(LOOK_AGAIN), "{name}");
        }
    }
}
