//! Pod state kept beside the ledger, in its adapter namespace, and changed only by committed blocks: applet
//! key-value state (with versions), the callers' used nonces, the deployed applets and their code.
//!
//! | aux key | value |
//! |---|---|
//! | `s/` ‖ len(namespace) (u8) ‖ namespace ‖ key | version (u64 BE: the ledger index of the invocation that wrote it) ‖ value |
//! | `n/` ‖ caller key (32) ‖ nonce | the ledger index of the request that used it |
//! | `ap/` ‖ applet name | the ledger index of its latest `applet_deployed` entry |
//! | `w/` ‖ code digest (32) | the wasm module |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_bytes::ByteBuf;
use sigil_ledger::entry::AppletDeployed;
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
pub fn deployment(manifest: &Manifest, code: &[u8]) -> (Entry, Attachments) {
    let e = Entry::AppletDeployed(AppletDeployed {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        manifest: ByteBuf::from(manifest.to_cbor()),
        code_digest: manifest.code_digest,
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
