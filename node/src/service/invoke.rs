//! The request path: a signed request is decoded, sent to its own pod if it is for another (nothing of it kept),
//! checked (signature, freshness, nonce, the caller's delegate, the applet's access rules), executed in the enclave
//! runtime against the pod's committed state, and its receipt committed through consensus with the request and its
//! write set; the caller gets the receipt with its Merkle proof and cosigned checkpoint. The refusal of a request its
//! caller signed is committed as a `request_rejected` entry, with the request; a request that does not decode or
//! whose signature does not verify is refused, counted and logged, and nothing of it is kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sigil_ledger::entry::{Invocation, RequestRejected};
use sigil_ledger::request::SignedRequest;
use sigil_ledger::{Entry, Hash};
use sigil_pod::{Attachments, Committed, LedgerState, Rejection};
use sigil_primitives::clock::now_ms;
use sigil_runtime::{Applet, Call, ReceiptFields};

use super::{base64_encode, Refused, Service, COMMIT_TIMEOUT};

/// Executions retried when a concurrent invocation changed what one read.
const CONFLICT_RETRIES: usize = 5;

/// A committed invocation, as the caller gets it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invoked {
    /// The request hash (hex).
    pub request_hash: String,
    /// The entry's ledger index.
    pub index: u64,
    /// The block height.
    pub height: u64,
    /// The outcome (`ok`, or the error or trap).
    pub outcome: String,
    /// The output as text (UTF-8, lossy).
    pub output: String,
    /// Fuel used.
    pub fuel_used: u64,
    /// The executing node.
    pub executor: String,
    /// The COSE receipt (base64), once a cosigned checkpoint covers the entry.
    pub receipt: Option<String>,
}

impl Service {
    /// Commits the refusal of `raw`, a request its caller signed (`req`, authenticated), and returns it as the API
    /// answers it. The block carries the signed request, so every validator can check that the refusal is on the
    /// record of the caller who asked. A request whose refusal is already in the ledger is not recorded again.
    pub(super) async fn refuse(
        &self,
        raw: &[u8],
        req: &SignedRequest,
        caller: [u8; 32],
        reason: String,
        kind: fn(String, Option<u64>) -> Refused,
    ) -> Refused {
        self.metrics.rejected.inc();
        let request_hash = SignedRequest::hash_of(raw);
        let known = self.node.ledger().lock().expect("not poisoned").by_rejection(&request_hash).ok().flatten();
        if let Some(i) = known {
            return kind(reason, Some(i));
        }
        // What a refusal may cost the pod is bounded: the request it carries, and how many this node records.
        if raw.len() > RequestRejected::MAX_REQUEST_BYTES || !self.recorded_refusals.take(Instant::now()) {
            self.metrics.refusals_not_recorded.inc();
            return kind(reason, None);
        }
        let clip = RequestRejected::clip;
        let entry = Entry::RequestRejected(RequestRejected {
            request_hash,
            caller: ByteBuf::from(caller.to_vec()),
            applet: clip(&req.request.applet, RequestRejected::MAX_NAME_CHARS),
            method: clip(&req.request.method, RequestRejected::MAX_NAME_CHARS),
            reason: clip(&reason, RequestRejected::MAX_REASON_CHARS),
            node: self.node.name().to_string(),
            at_ms: now_ms(),
        });
        // The caller's signature over `raw` was verified (`authenticate`) before this was called.
        let attachments = Attachments { request: raw.to_vec(), verified: true, ..Default::default() };
        let index = match self.node.submit_with(entry, attachments) {
            Ok(rx) => match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
                Ok(Ok(c)) => Some(c.index),
                _ => None,
            },
            Err(why) => {
                tracing::warn!("the refusal of a request could not be recorded: {why}");
                None
            }
        };
        kind(reason, index)
    }

    /// Refuses a request that proves nothing about who sent it (it does not decode, or its signature does not
    /// verify): nothing is committed and nothing is attributed to the key it names. It is counted, and logged at
    /// most once a second (with how many were not logged), so a flood costs the pod no storage and little else.
    fn refuse_unauthenticated(&self, reason: String) -> Refused {
        self.metrics.unauthenticated.inc();
        if let Some(suppressed) = self.unauthenticated_log.allow(Instant::now()) {
            tracing::info!(suppressed, "refused an unauthenticated request (not recorded): {reason}");
        }
        Refused::BadRequest(reason, None)
    }

    /// Signs `r` as its caller's delegate (this node), under the caller's client assertion.
    pub fn sign_delegated(&self, r: sigil_ledger::request::Request, assertion: String) -> SignedRequest {
        r.sign_delegated(assertion, &self.key)
    }

    /// Runs a signed request (`raw`: its canonical CBOR) and commits its receipt.
    pub async fn invoke(&self, raw: &[u8]) -> Result<Invoked, Refused> {
        let t0 = Instant::now();
        let req = match SignedRequest::decode(raw) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse_unauthenticated(format!("malformed request: {e}"))),
        };
        let r = &req.request;
        // Sovereignty first: a request for another pod is redirected, and nothing of it is kept here.
        if r.pod != self.pod {
            self.metrics.redirected.inc();
            return Err(match self.directory.pods.get(&r.pod) {
                Some(urls) => Refused::Redirect(format!("pod {:?} is served by its own nodes", r.pod), urls.clone()),
                None => Refused::Misdirected(format!("this node serves pod {:?}, not {:?}", self.pod, r.pod)),
            });
        }
        let caller = match req.authenticate() {
            Ok(k) => k,
            Err(why) => return Err(self.refuse_unauthenticated(why)),
        };
        // A delegated request speaks for its caller only through a delegate the pod trusts: anyone can sign as a
        // "delegate" of an assertion they saw, so one whose delegate is not a validator proves no caller either.
        if req.delegate_key().is_some_and(|k| self.node.validator_named(&k).is_none()) {
            return Err(self.refuse_unauthenticated("the request's delegate is not a validator of the pod".into()));
        }
        // Authenticated: from here on a refusal is the caller's, and is recorded.
        if let Err(why) = req.verify_verified(&self.pod, now_ms()) {
            return Err(self.refuse(raw, &req, caller, why, Refused::BadRequest).await);
        }
        let request_hash = SignedRequest::hash_of(raw);
        let mut last = String::new();
        for attempt in 0..CONFLICT_RETRIES {
            // Checked on every attempt: another node may have committed this request (or its nonce) meanwhile.
            let (replay, nonce_used, deployed, attestation, delegate, bound) = {
                let rules = self.node.rules().ok_or_else(|| Refused::Unavailable("the node is starting".into()))?;
                let l = self.node.ledger();
                let l = l.lock().expect("not poisoned");
                let replay = l.by_request(&request_hash).ok().flatten();
                let nonce_used = sigil_pod::nonce_used(&l, &caller, &r.nonce).unwrap_or(false);
                // Its latest attestation and the policy in force, which the invocation names (the block rules
                // check both, so its receipt carries the evidence and the policy it ran under).
                let att = rules.attestations.get(self.node.name()).map(|a| (*a, rules.policy_index));
                let delegate = req.delegate_key().map(|k| rules.set.by_key(&k).map(|v| v.name.clone()));
                let bound = match &req.delegation {
                    Some(d) => {
                        sigil_pod::delegate_of(&l, &d.assertion).map_err(|e| Refused::Unavailable(e.to_string()))?
                    }
                    None => None,
                };
                (replay, nonce_used, rules.applets.get(&r.applet).cloned(), att, delegate, bound)
            };
            if let Some(i) = replay {
                let why = format!("a replay: this request was committed at index {i}");
                return Err(self.refuse(raw, &req, caller, why, Refused::Conflict).await);
            }
            if nonce_used {
                let why = "a replay: the caller used this nonce before".to_string();
                return Err(self.refuse(raw, &req, caller, why, Refused::Conflict).await);
            }
            let Some(deployed) = deployed else {
                let why = format!("applet {:?} is not deployed in pod {:?}", r.applet, self.pod);
                return Err(self.refuse(raw, &req, caller, why, Refused::NotFound).await);
            };
            if let Err(why) = deployed.manifest.authorize(&caller, &r.method, r.args.len()) {
                let why = format!("not authorized: {why}");
                return Err(self.refuse(raw, &req, caller, why, Refused::Forbidden).await);
            }
            // A caller over its rate is answered 429 and nothing is recorded: its own flood is not worth a ledger
            // entry. Charged only for a fresh, new request it may make (so replaying a request someone saw, which
            // is refused above, cannot use up the caller's rate), and once however often it is retried.
            if attempt == 0 && !self.callers.take(&caller, Instant::now()) {
                self.metrics.rate_limited.inc();
                return Err(Refused::TooMany("this caller is over its request rate; retry after a second".into()));
            }
            // A delegated request names a validator of the pod as its delegate; the entry names it too.
            let delegate = match delegate {
                None => None,
                Some(Some(name)) => Some(name),
                Some(None) => {
                    // Checked above; the set changed since. Still no caller proven by a validator's delegation.
                    return Err(
                        self.refuse_unauthenticated("the request's delegate is not a validator of the pod".into())
                    );
                }
            };
            // The caller's assertion serves one validator pod-wide (the block rules bind it to the first that
            // signed under it): under another's, nothing runs, and nothing can be recorded either.
            if let (Some(b), Some(d)) = (&bound, &delegate) {
                if b != d {
                    return Err(Refused::Forbidden(
                        format!("the caller's assertion serves node {b:?}, not {d:?}: make a new one for this node"),
                        None,
                    ));
                }
            }
            let Some(attestation) = attestation else {
                return Err(Refused::Unavailable("this node is not an attested validator of the pod".into()));
            };
            let applet = self.applet(&deployed.manifest).await.map_err(Refused::Unavailable)?;
            let state = Arc::new(LedgerState::new(self.node.ledger()));
            let call = Call { request_hash, caller, method: &r.method, input: &r.args, now_ms: now_ms() };
            let exec = tokio::task::block_in_place(|| self.runtime.invoke(&applet, &call, state))
                .map_err(|e| Refused::Unavailable(format!("the runtime: {e}")))?;
            let inv = invocation(&exec.receipt, &caller, &r.applet, &r.method, self.node.name(), attestation, delegate);
            let outcome = inv.outcome.clone();
            // The request's signature over `raw` was verified above.
            let attachments = Attachments {
                request: raw.to_vec(),
                write_set: exec.write_set.encode(),
                verified: true,
                ..Default::default()
            };
            let rx = match self.node.submit_with(Entry::Invocation(inv), attachments) {
                Ok(rx) => rx,
                // Committed state moved under it (a conflict), or the request landed meanwhile (a replay, seen
                // on the next attempt): run it again.
                Err(why @ (Rejection::Conflict(_) | Rejection::Replay(_))) => {
                    last = why.to_string();
                    continue;
                }
                // The rest as every submission answers it (an invocation carries no approvals to be refused).
                Err(why) => return Err(Refused::of(why)),
            };
            let c = match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
                Ok(Ok(c)) => c,
                Ok(Err(_)) => {
                    // Dropped at proposal: a concurrent invocation changed what this one read. Run it again.
                    last = "a concurrent invocation changed the state it read".into();
                    continue;
                }
                Err(_) => return Err(Refused::Unavailable("the commit did not happen within 30 s".into())),
            };
            self.metrics.invoked(&outcome, t0.elapsed());
            return Ok(Invoked {
                request_hash: request_hash.to_hex(),
                index: c.index,
                height: c.height,
                outcome,
                output: String::from_utf8_lossy(&exec.output).into_owned(),
                fuel_used: exec.fuel_used,
                executor: self.node.name().to_string(),
                receipt: self.receipt_when_covered(c).await.map(|b| base64_encode(&b)),
            });
        }
        Err(Refused::Unavailable(format!("gave up after {CONFLICT_RETRIES} conflicting runs: {last}")))
    }

    /// The compiled applet for a manifest (its code from the pod state), cached by code digest.
    pub(super) async fn applet(&self, m: &sigil_runtime::Manifest) -> Result<Applet, String> {
        if let Some(a) = self.runtime.cached(m) {
            return Ok(a);
        }
        let code = sigil_pod::applet_code(&self.node.ledger().lock().expect("not poisoned"), &m.code_digest)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the code of applet {} is not in this node's store", m.name))?;
        self.load(m, &code).await.map_err(|e| format!("applet {}: {e}", m.name))
    }

    /// Loads (compiles) an applet off the async workers, on at most half the cores at a time: compiling is the
    /// costliest thing a request can start, and it must not stall the API or consensus.
    pub(super) async fn load(&self, m: &sigil_runtime::Manifest, code: &[u8]) -> Result<Applet, String> {
        let _slot = tokio::time::timeout(COMMIT_TIMEOUT, self.compile_slots.acquire())
            .await
            .map_err(|_| "the node is busy compiling other applets; try again shortly".to_string())?
            .map_err(|_| "the node is stopping".to_string())?;
        tokio::task::block_in_place(|| self.runtime.load(m, code)).map_err(|e| e.to_string())
    }

    /// The receipt of the entry committed at `c`, once a cosigned checkpoint covers it (waits up to 10 s: a block
    /// that changes the validator set is covered by the next one's checkpoint).
    async fn receipt_when_covered(&self, c: Committed) -> Option<Vec<u8>> {
        let mut tip = self.node.tip();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(r)) = self.receipt_at(c.index) {
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, tip.changed()).await;
        }
    }

    /// The receipt of entry `index` against the first cosigned checkpoint covering it. That checkpoint never
    /// changes once it exists, so neither does the receipt: it is made once (under the ledger lock) and then
    /// answered from a bounded cache.
    pub fn receipt_at(&self, index: u64) -> Result<Option<Vec<u8>>, String> {
        if let Some(r) = self.receipts.get(&index) {
            return Ok(Some(r));
        }
        let r = {
            let l = self.node.ledger();
            let l = l.lock().expect("not poisoned");
            let Some(cp) = l.checkpoint_covering(index).map_err(|e| e.to_string())? else { return Ok(None) };
            l.receipt(index, &cp, self.node.name(), &self.key).map_err(|e| e.to_string())?
        };
        self.receipts.put(index, r.clone());
        Ok(Some(r))
    }

    /// The index of the entry for request `hash`: its invocation, or else its rejection.
    pub fn find_request(&self, hash: &Hash) -> Result<Option<u64>, String> {
        let l = self.node.ledger();
        let l = l.lock().expect("not poisoned");
        match l.by_request(hash).map_err(|e| e.to_string())? {
            Some(i) => Ok(Some(i)),
            None => l.by_rejection(hash).map_err(|e| e.to_string()),
        }
    }
}

/// The ledger's `invocation` entry for one execution: what the runtime measured, and who asked, for what, where,
/// under which attestation: `attested` is the ledger index of the executor's latest attestation entry and of the
/// entry that set the policy in force.
pub fn invocation(
    r: &ReceiptFields,
    caller: &[u8; 32],
    applet: &str,
    method: &str,
    executor: &str,
    attested: (u64, u64),
    delegate: Option<String>,
) -> Invocation {
    Invocation {
        request_hash: r.request_hash,
        caller: ByteBuf::from(caller.to_vec()),
        applet: applet.to_string(),
        method: method.to_string(),
        code_digest: r.code_digest,
        input_hash: r.input_hash,
        output_hash: r.output_hash,
        write_set_hash: r.write_set_hash,
        executor: executor.to_string(),
        executor_attestation: attested.0,
        policy: Some(attested.1),
        outcome: r.outcome.clone(),
        fuel_used: r.fuel_used,
        at_ms: r.at_ms,
        delegate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_s_receipt_fields_become_the_invocation_entry() {
        let h = |s: &[u8]| Hash::digest(s);
        let r = ReceiptFields {
            request_hash: h(b"request"),
            code_digest: h(b"code"),
            input_hash: h(b"input"),
            output_hash: h(b"output"),
            write_set_hash: h(b"writes"),
            outcome: "ok".into(),
            fuel_used: 12,
            at_ms: 34,
        };
        let inv = invocation(&r, &[7; 32], "hash", "sha256", "node-1", (7, 5), Some("node-2".into()));
        let entry = Entry::Invocation(inv.clone());
        assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
        assert_eq!((inv.outcome.as_str(), inv.executor_attestation, inv.policy), ("ok", 7, Some(5)));
        assert_eq!((inv.request_hash, inv.code_digest, inv.input_hash), (r.request_hash, r.code_digest, r.input_hash));
        assert_eq!(
            (inv.output_hash, inv.write_set_hash, inv.fuel_used, inv.at_ms),
            (r.output_hash, r.write_set_hash, 12, 34)
        );
        assert_eq!((inv.caller.as_slice(), inv.delegate.as_deref()), (&[7u8; 32][..], Some("node-2")));
    }
}
