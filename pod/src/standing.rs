//! A validator's standing (#16): whether it may keep its vote, judged from the ledger alone at a block's time.
//! It lapses when its latest attestation is older than the pod's `[reattestation] max_age_s`, or when the pod's
//! current policy refuses its latest evidence at that time (a tightened policy, an expired certificate or
//! collateral). A validator whose standing lapsed is suspended by a `node_suspended` entry that any validator
//! proposes (every node notes the lapsed ones with [`watch`], and its proposer, `app::mempool`, judges them again
//! at its block's time) and every validator checks with [`lapsed`]; it comes back with a `node_reinstated`.

use std::time::Duration;

use sigil_ledger::entry::NodeSuspended;
use sigil_ledger::store::Ledger;
use sigil_ledger::Entry;

use crate::admission;
use crate::app::Shared;
use crate::block::Rules;

/// How often a node looks at every validator's standing.
pub const LOOK_EVERY: Duration = Duration::from_secs(10);

/// Why a validator's standing lapsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lapse {
    /// [`NodeSuspended::STALE`] or [`NodeSuspended::REFUSED`].
    pub cause: &'static str,
    /// The attestation entry judged (the node's latest).
    pub attestation: u64,
    /// Why, in words (clipped to [`NodeSuspended::MAX_REASON_CHARS`]); informational, see [`NodeSuspended::reason`].
    pub reason: String,
}

impl Lapse {
    /// The suspension of `name` it calls for.
    pub fn suspension(&self, name: &str) -> NodeSuspended {
        NodeSuspended {
            name: name.to_string(),
            cause: self.cause.to_string(),
            attestation: self.attestation,
            reason: self.reason.clone(),
        }
    }
}

/// What an attestation entry holds for one node: the key its evidence binds, the evidence bundle, and the nonce it
/// binds (empty, or a re-attestation's or reinstatement's anchor).
pub type Attested = ([u8; 32], Vec<u8>, Vec<u8>);

/// The key, evidence and nonce of attestation entry `index` (the genesis, an admission, a re-attestation or a
/// reinstatement) of node `name`.
pub fn attestation_evidence(ledger: &Ledger, index: u64, name: &str) -> Result<Attested, String> {
    let entry = ledger.entry(index).map_err(|e| format!("reading entry {index}: {e}"))?;
    let (key, evidence, nonce) = match entry {
        Entry::Genesis(g) => {
            let p = g.validators.iter().position(|v| v.name == name);
            let p = p.ok_or_else(|| format!("the genesis lists no validator {name:?}"))?;
            let ev = g.evidence.get(p).ok_or("the genesis lists fewer evidence bundles than validators")?;
            (g.validators[p].public_key.clone(), ev.to_vec(), Vec::new())
        }
        Entry::NodeAdmitted(a) if a.validator.name == name => (a.validator.public_key, a.evidence.to_vec(), Vec::new()),
        Entry::Reattested(r) if r.node == name => {
            (r.key.to_vec(), r.evidence.to_vec(), r.anchor.map(|a| a.nonce()).unwrap_or_default())
        }
        Entry::NodeReinstated(r) if r.validator.name == name => {
            (r.validator.public_key, r.evidence.to_vec(), r.anchor.nonce())
        }
        other => return Err(format!("entry {index} ({}) is no attestation of {name:?}", other.kind())),
    };
    let key = key.as_slice().try_into().map_err(|_| format!("{name:?}'s key is not 32 bytes"))?;
    Ok((key, evidence, nonce))
}

/// Why validator `name`'s standing has lapsed at `at_ms` (a block's time, Unix ms) under `rules`, or `None` while
/// it holds. `Err` only when the ledger cannot be read.
pub fn lapsed(ledger: &Ledger, rules: &Rules, name: &str, at_ms: u64) -> Result<Option<Lapse>, String> {
    let index = *rules.attestations.get(name).ok_or_else(|| format!("{name:?} has no attestation"))?;
    // One line of at most the characters a suspension records (a verifier's reason may hold a line break).
    let clip = |s: String| {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(NodeSuspended::MAX_REASON_CHARS)
            .collect::<String>()
    };
    if let Some(max_ms) = rules.policy.reattestation.max_age_ms() {
        let age_ms = at_ms.saturating_sub(rules.attested_at.get(name).copied().unwrap_or(0));
        if age_ms > max_ms {
            return Ok(Some(Lapse {
                cause: NodeSuspended::STALE,
                attestation: index,
                reason: clip(format!(
                    "its latest attestation (entry {index}) is {} s old, more than the pod's max_age_s of {} s",
                    age_ms / 1000,
                    max_ms / 1000
                )),
            }));
        }
    }
    let (key, evidence, nonce) = attestation_evidence(ledger, index, name)?;
    Ok(match admission::verify(&rules.policy, ledger.pod(), &key, &nonce, &evidence, at_ms / 1000) {
        Ok(_) => None,
        Err(why) => Some(Lapse {
            cause: NodeSuspended::REFUSED,
            attestation: index,
            reason: clip(format!(
                "the pod's policy (entry {}) refuses its latest evidence (entry {index}): {why}",
                rules.policy_index
            )),
        }),
    })
}

/// The task that looks at every validator's standing every [`LOOK_EVERY`] and notes those lapsed in
/// `shared.lapsed`; the node, when it proposes, judges them again at its block's time and suspends them
/// (`app::mempool`). The ledger is locked per validator, not for the whole look.
pub(crate) async fn watch(shared: Shared) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let Some(rules) = shared.rules.lock().expect("not poisoned").clone() else { continue };
        let now = sigil_primitives::clock::now_ms();
        let mut found = Vec::new();
        for v in rules.set.validators.iter() {
            let judged = lapsed(&shared.ledger.lock().expect("not poisoned"), &rules, &v.name, now);
            match judged {
                Ok(Some(l)) => {
                    tracing::debug!(node = %v.name, cause = l.cause, "a validator's standing lapsed: {}", l.reason);
                    found.push(v.name.clone());
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(node = %v.name, "judging a validator's standing: {e}"),
            }
        }
        *shared.lapsed.lock().expect("not poisoned") = found;
    }
}
