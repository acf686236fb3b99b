//! What the app keeps beside the ledger, in its adapter namespace: the tip, each height's decided block,
//! certificate and root, the blocks proposed at the current height (reloaded at start), recorded misbehaviour, the
//! latest attestation of each node and the pod's current policy.

use super::*;

pub(super) fn height_key(prefix: &[u8], h: u64) -> Vec<u8> {
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
    /// `at/` ‖ name: the time (Unix ms) and height of the block that committed it, 16 bytes; absent for the
    /// genesis' validators (the genesis' `created_at`, height 0) and for attestations committed before it was kept
    /// (read as time 0, height 0: long ago).
    pub const ATTESTED_AT: &[u8] = b"at/";
    /// `ab/` ‖ name: the attestation entry the node's latest one replaced and the time it was replaced (Unix ms),
    /// 16 bytes.
    pub const SUPERSEDED: &[u8] = b"ab/";
    /// `bt` ‖ height: the block's time (Unix ms), which a re-attestation's anchor is judged by. Absent for heights
    /// committed before it was kept, whose decided block (`d`) gives it ([`super::block_time_at`]).
    pub const BLOCK_TIME: &[u8] = b"bt";
    /// `su/` ‖ name: a suspended validator (`node_suspended`): its key, and the height and time (Unix ms) of the
    /// block that suspended it, 48 bytes. A reinstatement or a removal deletes it.
    pub const SUSPENDED: &[u8] = b"su/";
    /// When the pod last resumed (`block::Rules::resumed_at_ms`), Unix ms, 8 bytes.
    pub const RESUMED: &[u8] = b"rs";
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

/// What the store records of each decided height besides its block and certificate: the ledger's size and root
/// after it, and the block's time.
pub(crate) fn height_records(height: u64, size: u64, root: &Hash, time_ms: u64) -> [(Vec<u8>, Vec<u8>); 2] {
    [
        (height_key(keys::ROOT, height), [size.to_be_bytes().as_slice(), &root.0].concat()),
        (height_key(keys::BLOCK_TIME, height), time_ms.to_be_bytes().to_vec()),
    ]
}

/// The time (Unix ms) of the block decided at `height`, from the store.
pub fn block_time_at(ledger: &Ledger, height: u64) -> Result<Option<u64>, String> {
    if let Some(v) = ledger.aux_get(&height_key(keys::BLOCK_TIME, height)).map_err(|e| e.to_string())? {
        let v: [u8; 8] = v.as_slice().try_into().map_err(|_| "a stored block time is not 8 bytes")?;
        return Ok(Some(u64::from_be_bytes(v)));
    }
    // A height committed before block times were recorded: the decided block's own.
    match ledger.aux_get(&height_key(keys::DECIDED, height)).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(b) => Ok(Some(Block::decode(&b).map_err(|e| format!("the decided block at {height}: {e}"))?.time_ms)),
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

/// The round in which `height` was decided, from its stored commit certificate.
pub fn decided_round(ledger: &Ledger, height: u64) -> Result<Option<Round>, String> {
    let Some(c) = ledger.aux_get(&height_key(keys::CERT, height)).map_err(|e| e.to_string())? else { return Ok(None) };
    let cert: ExtendedCommitCertificate<PodContext> =
        PodCodec.decode(Bytes::from(c)).map_err(|e: crate::codec::CodecError| e.to_string())?;
    Ok(Some(cert.round))
}

/// The rules entries are checked by, as the ledger and what the app stored beside it say after the last commit:
/// the validator set, each node's latest attestation (the genesis attests its validators; later admissions and
/// re-attestations replace that), the current policy, the members and the deployed applets.
pub(crate) fn load_rules(l: &Ledger) -> Result<Rules, String> {
    let (_, parent_time_ms) = stored_tip(l)?;
    let set = ValidatorSet::from_ledger(&l.validators_at(l.size()))?;
    let Entry::Genesis(genesis) = l.entry(0).map_err(|e| e.to_string())? else {
        return Err("the ledger does not start with a genesis".into());
    };
    let mut attestations: HashMap<String, u64> = genesis.validators.iter().map(|v| (v.name.clone(), 0)).collect();
    for (k, v) in l.aux_scan(keys::ATTESTATION, None, 100_000).map_err(|e| e.to_string())? {
        let name = String::from_utf8_lossy(&k[keys::ATTESTATION.len()..]).into_owned();
        let index = v.as_slice().try_into().map_err(|_| "bad attestation index")?;
        attestations.insert(name, u64::from_be_bytes(index));
    }
    let mut attested_at: HashMap<String, u64> =
        genesis.validators.iter().map(|v| (v.name.clone(), genesis.created_at.saturating_mul(1000))).collect();
    let mut attested_height = HashMap::new();
    for name in attestations.iter().filter(|(_, i)| **i > 0).map(|(n, _)| n) {
        let key = [keys::ATTESTED_AT, name.as_bytes()].concat();
        let (at, height) = match l.aux_get(&key).map_err(|e| e.to_string())? {
            Some(v) => two_u64(&v, "attestation time")?,
            None => (0, 0),
        };
        attested_at.insert(name.clone(), at);
        attested_height.insert(name.clone(), height);
    }
    let mut superseded = HashMap::new();
    for (k, v) in l.aux_scan(keys::SUPERSEDED, None, 100_000).map_err(|e| e.to_string())? {
        let name = String::from_utf8_lossy(&k[keys::SUPERSEDED.len()..]).into_owned();
        superseded.insert(name, two_u64(&v, "superseded attestation")?);
    }
    let mut suspended = HashMap::new();
    for (k, v) in l.aux_scan(keys::SUSPENDED, None, 100_000).map_err(|e| e.to_string())? {
        let name = String::from_utf8_lossy(&k[keys::SUSPENDED.len()..]).into_owned();
        suspended.insert(name, block::Suspended::decode(&v)?);
    }
    let resumed_at_ms = match l.aux_get(keys::RESUMED).map_err(|e| e.to_string())? {
        Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| "a stored resume time is not 8 bytes")?),
        None => 0,
    };
    let text = match l.aux_get(keys::POLICY).map_err(|e| e.to_string())? {
        Some(t) => String::from_utf8(t).map_err(|_| "the stored policy is not UTF-8")?,
        None => genesis.policy,
    };
    let policy = crate::admission::parse_policy(&text)?;
    let policy_index = crate::last_change(l, sigil_ledger::entry::Subject::Policy).map_err(|e| e.to_string())?;
    Ok(Rules {
        set,
        attestations,
        attested_at,
        attested_height,
        superseded,
        suspended,
        policy,
        policy_index,
        members: genesis.members,
        threshold: genesis.threshold,
        parent_time_ms,
        resumed_at_ms,
        applets: crate::state::load_applets(l)?,
        replay: Default::default(),
    })
}

/// Two big-endian u64s, as `at/` and `ab/` values hold them.
fn two_u64(v: &[u8], what: &str) -> Result<(u64, u64), String> {
    let v: [u8; 16] = v.try_into().map_err(|_| format!("a stored {what} is {} bytes, not 16", v.len()))?;
    let (a, b) = v.split_at(8);
    Ok((u64::from_be_bytes(a.try_into().expect("8")), u64::from_be_bytes(b.try_into().expect("8"))))
}

/// Undecided blocks a restart reloads at most.
const MAX_RELOADED: usize = 1_000;

impl App {
    pub(super) fn load_undecided(&mut self) -> Result<(), String> {
        let prefix = height_key(keys::UNDECIDED, self.height.0);
        let l = self.shared.ledger.lock().expect("not poisoned");
        // Bounded: what is stored per height is bounded per (round, proposer) (see `streams`).
        for (_, v) in l.aux_scan(&prefix, None, MAX_RELOADED).map_err(|e| e.to_string())? {
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

    pub(super) fn store_undecided(&mut self, pv: ProposedValue<PodContext>, bytes: Vec<u8>) -> Result<(), String> {
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

    pub(super) fn record_evidence(
        &mut self,
        height: Height,
        ev: &MisbehaviorEvidence<PodContext>,
    ) -> Result<(), String> {
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
