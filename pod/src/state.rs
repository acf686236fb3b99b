//! Pod state kept beside the ledger, in its adapter namespace, and changed only by committed blocks: applet
//! key-value state (with versions), the callers' used nonces, the deployed applets and their code.
//!
//! | aux key | value |
//! |---|---|
//! | `s/` ‖ len(namespace) (u8) ‖ namespace ‖ key | version (u64 BE: the ledger index of the invocation that wrote it) ‖ value |
//! | `n/` ‖ caller key (32) ‖ nonce | the ledger index of the request that used it |
//! | `ap/` ‖ applet name | the ledger index of its latest `applet_deployed` entry |
//! | `w/` ‖ code digest (32) | the wasm module |
//! | `g/policy` | the ledger index of the `policy_changed` entry that set the current policy (absent: the genesis) |
//! | `g/m/` ‖ node name | the ledger index of the last admission or removal of that name (absent: the genesis, or never) |
//! | `dl/` ‖ SHA-256(client assertion) | the name of the validator that first signed a committed request under it |
//!
//! A governance entry's `prior` must equal its subject's last change ([`last_change`]; an applet's is its `ap/`
//! value), so an approved entry applies once, to the state its members approved it for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_bytes::ByteBuf;
use sigil_ledger::entry::{AppletDeployed, Subject};
use sigil_ledger::store::Ledger;
use sigil_ledger::{Entry, Hash, LedgerError};
use sigil_runtime::Manifest;

use super::block::Attachments;

/// Prefix of applet state.
pub const STATE: &[u8] = b"s/";
/// Prefix of used nonces.
pub const NONCE: &[u8] = b"n/";
/// Prefix of deployed applets.
pub const APPLET: &[u8] = b"ap/";
/// Prefix of applet code.
pub const CODE: &[u8] = b"w/";
/// The index of the entry that set the current policy.
pub const POLICY_CHANGE: &[u8] = b"g/policy";
/// Prefix of the last membership change of each node name.
pub const MEMBERSHIP: &[u8] = b"g/m/";
/// Prefix of the delegate each client assertion is bound to.
pub const DELEGATION: &[u8] = b"dl/";
/// Prefix of the OAuth client assertions this node exchanged for tokens (by SHA-256 of caller key and `jti`) →
/// their expiry, Unix seconds (8 bytes). The node's own record, which no block writes: it outlives a restart.
pub const EXCHANGED: &[u8] = b"ox/";

/// The aux key of (`namespace`, `key`). Namespaces are at most 64 bytes (manifest rule), so the length fits a
/// byte and no namespace's keys can be mistaken for another's.
pub fn state_key(namespace: &str, key: &[u8]) -> Vec<u8> {
    let ns = namespace.as_bytes();
    [STATE, &[ns.len().min(255) as u8], ns, key].concat()
}

/// The aux key of a used nonce.
pub fn nonce_key(caller: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    [NONCE, caller.as_slice(), nonce].concat()
}

/// The aux key of a deployed applet.
pub fn applet_key(name: &str) -> Vec<u8> {
    [APPLET, name.as_bytes()].concat()
}

/// The aux key of applet code.
pub fn code_key(digest: &Hash) -> Vec<u8> {
    [CODE, digest.0.as_slice()].concat()
}

/// The aux key that holds the index of the last entry that changed `subject`.
pub fn change_key(subject: Subject<'_>) -> Vec<u8> {
    match subject {
        Subject::Policy => POLICY_CHANGE.to_vec(),
        Subject::Applet(name) => applet_key(name),
        Subject::Membership(name) => [MEMBERSHIP, name.as_bytes()].concat(),
    }
}

/// Reads a stored change index (`None`: no change since the genesis, which is index 0).
pub fn change_index(stored: Option<&[u8]>) -> Result<u64, LedgerError> {
    match stored {
        None => Ok(0),
        Some(v) => v
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| LedgerError::Corrupt("a governance change index is not 8 bytes".into())),
    }
}

/// The ledger index of the last committed entry that changed `subject`: what a new governance entry for it must
/// name as its `prior` (0: the genesis, or nothing yet).
pub fn last_change(l: &Ledger, subject: Subject<'_>) -> Result<u64, LedgerError> {
    change_index(l.aux_get(&change_key(subject))?.as_deref())
}

/// The aux key of the delegate a client assertion (the compact JWT, exactly as signed) is bound to.
pub fn delegation_key(assertion: &str) -> Vec<u8> {
    [DELEGATION, Hash::digest(assertion.as_bytes()).0.as_slice()].concat()
}

/// The validator a client assertion is bound to: the first that signed a committed request under it. A caller's
/// assertion serves one node (the one it was exchanged at), pod-wide: no other validator, having seen it in a
/// block, can sign under it, and no other node issues a token for it.
pub fn delegate_of(l: &Ledger, assertion: &str) -> Result<Option<String>, LedgerError> {
    l.aux_get(&delegation_key(assertion))?
        .map(|v| String::from_utf8(v).map_err(|_| LedgerError::Corrupt("a delegate name is not UTF-8".into())))
        .transpose()
}

/// Whether this node exchanged assertion `id` and it had not expired by `now` (Unix seconds).
pub fn exchanged(l: &Ledger, id: &Hash, now: u64) -> Result<bool, LedgerError> {
    Ok(match l.aux_get(&[EXCHANGED, &id.0].concat())? {
        Some(v) => v.try_into().map(u64::from_be_bytes).map_or(true, |exp| exp > now), // unreadable: kept used
        None => false,
    })
}

/// Records assertion `id`, exchanged here, until `exp`, and forgets the `expired` ones (a synced write).
pub fn record_exchanged(l: &mut Ledger, id: &Hash, exp: u64, expired: &[Hash]) -> Result<(), LedgerError> {
    let deletes = expired.iter().map(|h| [EXCHANGED, &h.0].concat()).collect();
    l.aux_write(vec![([EXCHANGED, &id.0].concat(), exp.to_be_bytes().to_vec())], deletes)
}

/// Forgets every exchanged assertion that expired by `now`; returns how many it forgot.
pub fn forget_exchanged(l: &mut Ledger, now: u64) -> Result<usize, LedgerError> {
    let mut gone = Vec::new();
    let mut from: Option<Vec<u8>> = None;
    loop {
        let page = l.aux_scan(EXCHANGED, from.as_deref(), 4096)?;
        let last = page.last().map(|(k, _)| k.clone());
        for (k, v) in &page {
            let exp = <[u8; 8]>::try_from(v.as_slice()).map(u64::from_be_bytes).unwrap_or(0);
            if exp <= now && from.as_deref() != Some(k.as_slice()) {
                gone.push(k.clone());
            }
        }
        if page.len() < 4096 {
            break;
        }
        from = last;
    }
    let n = gone.len();
    if n > 0 {
        l.aux_write(Vec::new(), gone)?;
    }
    Ok(n)
}

/// Whether `caller` has used `nonce` in a committed request.
pub fn nonce_used(l: &Ledger, caller: &[u8; 32], nonce: &[u8]) -> Result<bool, LedgerError> {
    Ok(l.aux_get(&nonce_key(caller, nonce))?.is_some())
}

/// The code (wasm module) of a deployed applet, by its digest.
pub fn applet_code(l: &Ledger, digest: &Hash) -> Result<Option<Vec<u8>>, LedgerError> {
    l.aux_get(&code_key(digest))
}

/// The committed value of (`namespace`, `key`) in applet state, with its version.
pub fn state_value(l: &Ledger, namespace: &str, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>, LedgerError> {
    match l.aux_get(&state_key(namespace, key))? {
        None => Ok(None),
        Some(v) => parse_value(&v).map(Some).ok_or_else(|| LedgerError::Corrupt(format!("state value of {namespace}"))),
    }
}

/// A stored state value: (value, version).
pub fn parse_value(v: &[u8]) -> Option<(Vec<u8>, u64)> {
    let version = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    Some((v[8..].to_vec(), version))
}

/// The stored form of a state value.
pub fn value_bytes(value: &[u8], version: u64) -> Vec<u8> {
    [&version.to_be_bytes(), value].concat()
}

/// A deployment of the applet `manifest` with `code`: the `applet_deployed` entry (without approvals) and the
/// code that travels beside it in the block.
/// `prior` is the index of the applet's current deployment, 0 for a new applet ([`last_change`]).
pub fn deployment(manifest: &Manifest, code: &[u8], prior: u64) -> (Entry, Attachments) {
    let e = Entry::AppletDeployed(AppletDeployed {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        manifest: ByteBuf::from(manifest.to_cbor()),
        code_digest: manifest.code_digest,
        prior,
        approvals: Vec::new(),
    });
    (e, Attachments { code: code.to_vec(), ..Default::default() })
}

/// An applet deployed in the pod.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// Ledger index of its `applet_deployed` entry.
    pub index: u64,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
}

/// The deployed applets, from the ledger (each `ap/` key names the entry that holds the manifest).
pub fn load_applets(l: &Ledger) -> Result<HashMap<String, Deployed>, String> {
    let mut out = HashMap::new();
    for (k, v) in l.aux_scan(APPLET, None, 1_000_000).map_err(|e| e.to_string())? {
        let name = String::from_utf8_lossy(&k[APPLET.len()..]).into_owned();
        let index = u64::from_be_bytes(v.as_slice().try_into().map_err(|_| "a bad applet index")?);
        let Entry::AppletDeployed(d) = l.entry(index).map_err(|e| e.to_string())? else {
            return Err(format!("applet {name}: entry {index} is not a deployment"));
        };
        let manifest = Manifest::from_cbor(&d.manifest).map_err(|e| format!("applet {name}: {e}"))?;
        out.insert(name, Deployed { index, manifest: Arc::new(manifest) });
    }
    Ok(out)
}

/// The pod's committed applet state, read through the ledger: what an invocation executes against.
pub struct LedgerState {
    ledger: Arc<Mutex<Ledger>>,
}

impl LedgerState {
    /// State read from `ledger`.
    pub fn new(ledger: Arc<Mutex<Ledger>>) -> LedgerState {
        LedgerState { ledger }
    }
}

impl sigil_runtime::State for LedgerState {
    fn get(&self, namespace: &str, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        let l = self.ledger.lock().expect("not poisoned");
        l.aux_get(&state_key(namespace, key)).ok().flatten().and_then(|v| parse_value(&v))
    }

    fn list(&self, namespace: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
        list(&self.ledger.lock().expect("not poisoned"), namespace, prefix, limit)
    }
}

/// Up to `limit` keys of `namespace` under `prefix`, in byte order, from the stored state.
pub fn list(l: &Ledger, namespace: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
    let base = state_key(namespace, b"");
    l.aux_scan(&state_key(namespace, prefix), None, limit)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k[base.len()..].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_of_exchanged_assertions_holds_until_they_expire_and_is_then_forgotten() {
        let mut l = Ledger::in_memory(&crate::local::genesis("p", 1)).unwrap();
        let (a, b) = (Hash::digest(b"a"), Hash::digest(b"b"));
        assert!(!exchanged(&l, &a, 10).unwrap());
        record_exchanged(&mut l, &a, 100, &[]).unwrap();
        record_exchanged(&mut l, &b, 200, &[]).unwrap();
        assert!(exchanged(&l, &a, 99).unwrap());
        assert!(!exchanged(&l, &a, 100).unwrap(), "expired: its token has too");
        assert_eq!(forget_exchanged(&mut l, 150).unwrap(), 1, "only the expired one goes");
        assert!(l.aux_get(&[EXCHANGED, &a.0].concat()).unwrap().is_none());
        assert!(exchanged(&l, &b, 150).unwrap());
        // A record the table dropped as expired goes with the next one written.
        record_exchanged(&mut l, &a, 300, &[b]).unwrap();
        assert!(l.aux_get(&[EXCHANGED, &b.0].concat()).unwrap().is_none());
        assert!(exchanged(&l, &a, 250).unwrap());
    }
}
