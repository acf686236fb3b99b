//! Validating blocks and committing them: a block is checked against the node's ledger and kept prepared; the
//! precommit carries the voter's signature over the checkpoint the block leads to; the decided block, its
//! certificate and its entries are appended in one synced write.

use super::*;

/// A block that validated: its entries decoded and the checkpoint it leads to, so nothing is decoded or hashed
/// twice between validation, the precommit's checkpoint signature and the commit.
pub(super) struct Prepared {
    pub(super) entries: Vec<Encoded>,
    pub(super) effects: Effects,
    pub(super) checkpoint: Checkpoint,
}

/// The checkpoint `ledger` reaches by appending `entries`.
pub(super) fn checkpoint_after(ledger: &Ledger, entries: &[Encoded]) -> Result<Checkpoint, String> {
    let (size, root) = ledger.root_after(entries);
    let validators = ledger.validators_after(entries).map_err(|e| e.to_string())?.digest();
    Ok(Checkpoint { origin: ledger.pod().to_string(), size, root, validators })
}

impl App {
    /// `ExtendVote`: a precommit carries the voter's signature over the checkpoint the block produces, so the commit
    /// certificate is also the cosigned checkpoint.
    pub(super) fn on_extend_vote(&self, height: Height, value_id: &BlockId) -> Option<Bytes> {
        match self.checkpoint_of(value_id) {
            Ok(cp) => Some(Bytes::copy_from_slice(&self.signer.sign(cp.body().as_bytes()).0)),
            Err(why) => {
                tracing::warn!(%height, block = %value_id, "no checkpoint signature for this precommit: {why}");
                None
            }
        }
    }

    /// `VerifyVoteExtensions`: whether each precommit's extension signs the checkpoint of block `value_id`.
    pub(super) fn on_verify_vote_extensions(
        &self,
        height: Height,
        value_id: &BlockId,
        extensions: Vec<(Address, Bytes)>,
    ) -> Vec<(Address, Result<(), VoteExtensionError>)> {
        match self.checkpoint_of(value_id) {
            // The block is not here yet (precommits can outrun the proposal's parts, and sync checks a
            // certificate's extensions before it hands over the block) or was already committed. The
            // engine has checked each extension's own signature; whether it signs the right checkpoint
            // is checked again at commit, where only those that verify make the cosigned checkpoint.
            Err(_) if !self.undecided.contains_key(value_id) => {
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
                extensions.into_iter().map(|(a, _)| (a, Err(VoteExtensionError::InvalidVoteExtension))).collect()
            }
        }
    }

    /// `Decided`: commits the block.
    pub(super) fn on_decided(
        &mut self,
        certificate: CommitCertificate<PodContext>,
        extensions: VoteExtensions<PodContext>,
    ) -> Result<(), String> {
        self.commit(certificate, extensions)
    }

    /// `Finalized`: the height is over; misbehaviour the engine saw in it is recorded.
    pub(super) fn on_finalized(
        &mut self,
        height: Height,
        evidence: &MisbehaviorEvidence<PodContext>,
    ) -> Result<(), String> {
        self.record_evidence(height, evidence)
    }

    /// Block `id` of this height, its entries decoded and the checkpoint it leads to: from the cache of validated
    /// blocks, or worked out from its stored bytes.
    pub(super) fn prepared(&self, id: &BlockId) -> Result<Arc<Prepared>, String> {
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
        let mut checker = block::Checker::new(&l, &self.rules, b.time_ms).decided();
        let entries = b
            .entries
            .iter()
            .enumerate()
            .map(|(i, item)| checker.item(i, item))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| r.to_string())?;
        let effects = std::mem::take(&mut checker.effects);
        Ok(Arc::new(Prepared { checkpoint: checkpoint_after(&l, &entries)?, entries, effects }))
    }

    /// The checkpoint the ledger reaches by appending block `id` (which must be a block of this height).
    pub(super) fn checkpoint_of(&self, id: &BlockId) -> Result<Checkpoint, String> {
        self.prepared(id).map(|p| p.checkpoint.clone())
    }

    /// The cosigned checkpoint of a decided block: the precommits' extensions that verify, from members of the set
    /// after the block, or `None` when they are not a quorum of it (a block that changes the set; the next block's
    /// checkpoint covers it). The ledger checks it again as it stores it.
    pub(super) fn cosigned(
        &self,
        cp: &Checkpoint,
        extensions: &VoteExtensions<PodContext>,
        after: &sigil_ledger::checkpoint::ValidatorSet,
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

    /// Validates block `id` at the current ledger state; a valid block is kept prepared for its commit. `decided`:
    /// a synced block, which a quorum's certificate decided, is not re-executed.
    pub(super) fn check(
        &mut self,
        id: BlockId,
        b: &Block,
        height: Height,
        proposer: &Address,
        decided: bool,
    ) -> Validity {
        let l = self.shared.ledger.lock().expect("not poisoned");
        let at = block::Slot { height, proposer: *proposer, now_ms: now_ms() };
        let checked = block::validate(b, &l, &self.rules, &at, decided).and_then(|(entries, effects)| {
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

    /// Appends the decided block: entries, block, certificate, tip and root in one synced write.
    pub(super) fn commit(
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
        ];
        aux.extend(height_records(h.0, size, &root, b.time_ms));
        // A block after a pause longer than the grace (or the first) is where the pod resumed (`block::Rules`).
        let grace_ms = self.rules.policy.reattestation.grace_s.saturating_mul(1000);
        let resumed_at_ms = if b.time_ms.saturating_sub(self.rules.parent_time_ms) > grace_ms {
            aux.push((keys::RESUMED.to_vec(), b.time_ms.to_be_bytes().to_vec()));
            b.time_ms
        } else {
            self.rules.resumed_at_ms
        };
        let mut attested = Vec::new();
        let mut superseded = Vec::new();
        let new_policy = entries.iter().enumerate().rev().find_map(|(i, e)| match e {
            Entry::PolicyChanged(p) => Some((first + i as u64, p.policy.clone())),
            _ => None,
        });
        if let Some((_, text)) = &new_policy {
            aux.push((keys::POLICY.to_vec(), text.as_bytes().to_vec()));
        }
        // Only a re-attestation leaves the attestation it replaced usable a while (by invocations made before it);
        // an admission or a removal ends a membership, and with it whatever the node attested before.
        let mut forget = Vec::new();
        // Suspensions (Some) and their ends (None: a reinstatement or a removal), in block order.
        let mut suspensions: Vec<(String, Option<block::Suspended>)> = Vec::new();
        let mut removed = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let (name, reattested) = match e {
                Entry::NodeAdmitted(a) => (Some(a.validator.name.clone()), false),
                Entry::Reattested(r) => (Some(r.node.clone()), true),
                Entry::NodeReinstated(r) => {
                    suspensions.push((r.validator.name.clone(), None));
                    (Some(r.validator.name.clone()), false)
                }
                Entry::NodeRemoved(r) => {
                    forget.push(r.name.clone());
                    removed.push(r.name.clone());
                    suspensions.push((r.name.clone(), None));
                    (None, false)
                }
                Entry::NodeSuspended(s) => {
                    // The block rules refuse a suspension of a node an earlier entry of its block concerns, so its
                    // key is the set's before the block; a decided block is committed whatever it holds.
                    match self.rules.set.by_name(&s.name) {
                        Some(v) => {
                            let at = block::Suspended { key: v.public_key.0, height: h.0, at_ms: b.time_ms };
                            suspensions.push((s.name.clone(), Some(at)));
                        }
                        None => {
                            tracing::error!(height = %h, node = %s.name, "a decided block suspends a node that was no validator before it: not recorded as suspended")
                        }
                    }
                    (None, false)
                }
                _ => (None, false),
            };
            if let Some(n) = name {
                aux.push(([keys::ATTESTATION, n.as_bytes()].concat(), (first + i as u64).to_be_bytes().to_vec()));
                let at = [b.time_ms.to_be_bytes(), h.0.to_be_bytes()].concat();
                aux.push(([keys::ATTESTED_AT, n.as_bytes()].concat(), at));
                match self.rules.attestations.get(&n) {
                    Some(old) if reattested => {
                        let v = [old.to_be_bytes(), b.time_ms.to_be_bytes()].concat();
                        aux.push(([keys::SUPERSEDED, n.as_bytes()].concat(), v));
                        superseded.push((n.clone(), (*old, b.time_ms)));
                    }
                    _ if !reattested => forget.push(n.clone()),
                    _ => {}
                }
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
        undecided.extend(forget.iter().map(|n| [keys::SUPERSEDED, n.as_bytes()].concat()));
        for (name, s) in &suspensions {
            let key = [keys::SUSPENDED, name.as_bytes()].concat();
            match s {
                Some(s) => {
                    undecided.retain(|k| *k != key);
                    aux.push((key, s.encode()));
                }
                None => {
                    aux.retain(|(k, _)| *k != key);
                    undecided.push(key);
                }
            }
        }
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
        self.rules.attested_at.extend(attested.iter().map(|(n, _)| (n.clone(), b.time_ms)));
        self.rules.attested_height.extend(attested.iter().map(|(n, _)| (n.clone(), h.0)));
        for n in &forget {
            self.rules.superseded.remove(n);
        }
        self.rules.superseded.extend(superseded);
        let suspensions_changed = !suspensions.is_empty();
        for (name, s) in suspensions {
            match s {
                Some(s) => {
                    tracing::warn!(height = %h, node = %name, "the pod suspends a validator: its vote and invocations end until it re-attests");
                    self.rules.suspended.insert(name, s);
                }
                None => {
                    let Some(s) = self.rules.suspended.remove(&name) else { continue };
                    tracing::info!(height = %h, node = %name, "a suspended validator is reinstated or removed");
                    if removed.contains(&name) {
                        self.drop_peer(&s.key); // removed while suspended: no set change drops it
                    }
                }
            }
        }
        self.rules.attestations.extend(attested);
        self.rules.applets.extend(deployed);
        if let Some((index, text)) = new_policy {
            self.rules.policy = crate::admission::parse_policy(&text)?;
            self.rules.policy_index = index;
            tracing::info!(height = %h, "the pod's attestation policy changes");
        }
        if set != self.rules.set {
            tracing::info!(height = %h, validators = set.validators.len(), "the validator set changes from the next height");
            let before = std::mem::replace(&mut self.rules.set, set);
            let after = self.rules.set.clone();
            self.admitted.set(self.rules.admitted_keys());
            self.set_changed(&before, &after);
        } else if suspensions_changed {
            self.admitted.set(self.rules.admitted_keys()); // a suspended node removed: its proof is refused now
        }
        if suspensions_changed {
            let suspended = &self.rules.suspended;
            self.reinstate_seen.retain(|n, _| suspended.contains_key(n));
        }
        let committed: HashMap<Hash, Committed> = encoded
            .iter()
            .enumerate()
            .map(|(i, e)| (e.leaf_hash(), Committed { index: first + i as u64, height: h.0 }))
            .collect();
        self.rules.parent_time_ms = b.time_ms;
        self.rules.resumed_at_ms = resumed_at_ms;
        self.last_empty = encoded.is_empty();
        self.wake_again = None;
        self.height = Height(h.0 + 1);
        self.round = Round::new(0);
        self.undecided.clear();
        self.prepared.clear();
        self.mine.retain(|(hh, _), _| *hh > h);
        *self.shared.rules.lock().expect("not poisoned") = Some(self.rules.clone());
        self.shared.tip.send_replace(Tip { height: h.0, size, root });
        // Waiters last: whoever learns its entry committed sees the rules and the tip that include it.
        self.shared.mempool.lock().expect("not poisoned").committed(&committed);
        Ok(())
    }
}
