//! Pod-local key-value state as an applet sees it: reads from a [`State`] snapshot, writes buffered in a
//! [`WriteSet`] that records the version of everything read, so validators can re-check it (optimistic
//! concurrency) before applying it at commit.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;
use sigil_primitives::cbor;
use sigil_primitives::Hash;

/// Version of a key that does not exist.
pub const ABSENT: u64 = 0;

/// Most keys one `kv_list` call returns.
pub const MAX_LIST: usize = 1_000;

/// A read-only view of pod state for one invocation. Versions are opaque positive numbers that change whenever the
/// value changes (the node uses the ledger index of the write's commit); [`ABSENT`] means no value.
pub trait State: Send + Sync {
    /// The value and version at (`namespace`, `key`).
    fn get(&self, namespace: &str, key: &[u8]) -> Option<(Vec<u8>, u64)>;
    /// Up to `limit` keys of `namespace` starting with `prefix`, in byte order.
    fn list(&self, namespace: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>>;
}

/// One invocation's effect on state: what it read (with versions), what it listed, what it wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    /// (namespace, key) → version read ([`ABSENT`] if there was no value).
    pub reads: BTreeMap<(String, Vec<u8>), u64>,
    /// (namespace, prefix) → hash of the keys the listing returned from state.
    pub lists: BTreeMap<(String, Vec<u8>), Hash>,
    /// (namespace, key) → new value, or `None` for a delete.
    pub writes: BTreeMap<(String, Vec<u8>), Option<Vec<u8>>>,
}

#[derive(Serialize)]
struct Encoded<'a> {
    reads: Vec<(&'a str, &'a serde_bytes::Bytes, u64)>,
    lists: Vec<(&'a str, &'a serde_bytes::Bytes, &'a Hash)>,
    writes: Vec<(&'a str, &'a serde_bytes::Bytes, Option<&'a serde_bytes::Bytes>)>,
}

#[derive(serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Decoded {
    reads: Vec<(String, serde_bytes::ByteBuf, u64)>,
    lists: Vec<(String, serde_bytes::ByteBuf, Hash)>,
    writes: Vec<(String, serde_bytes::ByteBuf, Option<serde_bytes::ByteBuf>)>,
}

/// Hash of a key listing (each key length-prefixed).
pub fn list_hash(keys: &[Vec<u8>]) -> Hash {
    let mut buf = Vec::new();
    for k in keys {
        buf.extend_from_slice(&(k.len() as u32).to_be_bytes());
        buf.extend_from_slice(k);
    }
    Hash::digest(&buf)
}

impl WriteSet {
    /// Canonical CBOR: `{reads: [[ns, key, version]...], lists: [[ns, prefix, hash]...], writes: [[ns, key,
    /// value|null]...]}`, each list sorted by (namespace, key).
    pub fn encode(&self) -> Vec<u8> {
        let b = serde_bytes::Bytes::new;
        cbor::encode(&Encoded {
            reads: self.reads.iter().map(|((n, k), v)| (n.as_str(), b(k), *v)).collect(),
            lists: self.lists.iter().map(|((n, p), h)| (n.as_str(), b(p), h)).collect(),
            writes: self.writes.iter().map(|((n, k), v)| (n.as_str(), b(k), v.as_deref().map(b))).collect(),
        })
    }

    /// Decodes [`WriteSet::encode`]'s output and nothing else: canonical CBOR, each list strictly sorted (no
    /// key twice), at most `max` bytes.
    pub fn decode(bytes: &[u8], max: usize) -> Result<WriteSet, String> {
        let d: Decoded = cbor::decode(bytes, "write set", max).map_err(|e| e.to_string())?;
        let mut ws = WriteSet::default();
        fn sorted<K: Ord + Clone, V>(items: Vec<(K, V)>, what: &str, into: &mut BTreeMap<K, V>) -> Result<(), String> {
            for (k, v) in items {
                if into.last_key_value().is_some_and(|(last, _)| *last >= k) {
                    return Err(format!("write set: the {what} are not strictly sorted"));
                }
                into.insert(k, v);
            }
            Ok(())
        }
        let key = |n: String, k: serde_bytes::ByteBuf| (n, k.into_vec());
        sorted(d.reads.into_iter().map(|(n, k, v)| (key(n, k), v)).collect(), "reads", &mut ws.reads)?;
        sorted(d.lists.into_iter().map(|(n, p, h)| (key(n, p), h)).collect(), "lists", &mut ws.lists)?;
        sorted(
            d.writes.into_iter().map(|(n, k, v)| (key(n, k), v.map(|v| v.into_vec()))).collect(),
            "writes",
            &mut ws.writes,
        )?;
        if ws.reads.values().any(|v| *v == u64::MAX) {
            return Err("write set: a read version out of range".into());
        }
        Ok(ws)
    }

    /// SHA-256 of [`WriteSet::encode`]: the receipt's `write_set_hash`.
    pub fn hash(&self) -> Hash {
        Hash::digest(&self.encode())
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// What was read and listed, without the writes: a failed run's record.
    pub fn without_writes(self) -> WriteSet {
        WriteSet { writes: BTreeMap::new(), ..self }
    }
}

/// Why a write set cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A key read has changed since.
    #[error("namespace {namespace}: key {key} was read at version {read} but is now at version {now}")]
    Read {
        /// Namespace.
        namespace: String,
        /// Key, hex.
        key: String,
        /// Version read.
        read: u64,
        /// Version now.
        now: u64,
    },
    /// A listing would now return other keys.
    #[error("namespace {namespace}: the keys under prefix {prefix} changed since they were listed")]
    List {
        /// Namespace.
        namespace: String,
        /// Prefix, hex.
        prefix: String,
    },
}

/// (namespace, key) → (value, version).
type Map = BTreeMap<(String, Vec<u8>), (Vec<u8>, u64)>;

/// State in memory: for tests, replays and tools. The node keeps state in its store.
#[derive(Default)]
pub struct MemState {
    map: RwLock<Map>,
}

impl MemState {
    /// Empty state.
    pub fn new() -> MemState {
        MemState::default()
    }

    /// Checks every read and listing against the current state, then applies the writes at `version` — all or
    /// nothing.
    pub fn apply(&self, ws: &WriteSet, version: u64) -> Result<(), Conflict> {
        assert!(version != ABSENT, "version 0 means absent");
        let mut map = self.map.write().expect("state lock");
        for ((ns, key), read) in &ws.reads {
            let now = map.get(&(ns.clone(), key.clone())).map_or(ABSENT, |(_, v)| *v);
            if now != *read {
                return Err(Conflict::Read { namespace: ns.clone(), key: hex::encode(key), read: *read, now });
            }
        }
        for ((ns, prefix), h) in &ws.lists {
            if list_hash(&list_in(&map, ns, prefix, MAX_LIST)) != *h {
                return Err(Conflict::List { namespace: ns.clone(), prefix: hex::encode(prefix) });
            }
        }
        for ((ns, key), value) in &ws.writes {
            match value {
                Some(v) => {
                    map.insert((ns.clone(), key.clone()), (v.clone(), version));
                }
                None => {
                    map.remove(&(ns.clone(), key.clone()));
                }
            }
        }
        Ok(())
    }

    /// Sets a value directly (loading saved state).
    pub fn insert(&self, namespace: &str, key: &[u8], value: &[u8], version: u64) {
        self.map.write().expect("state lock").insert((namespace.to_string(), key.to_vec()), (value.to_vec(), version));
    }

    /// Every (namespace, key, value, version), in order (saving state).
    pub fn entries(&self) -> Vec<(String, Vec<u8>, Vec<u8>, u64)> {
        self.map
            .read()
            .expect("state lock")
            .iter()
            .map(|((n, k), (v, ver))| (n.clone(), k.clone(), v.clone(), *ver))
            .collect()
    }

    /// A copy (for replays from the same starting point).
    pub fn snapshot(&self) -> MemState {
        MemState { map: RwLock::new(self.map.read().expect("state lock").clone()) }
    }
}

fn list_in(map: &Map, ns: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
    map.range((ns.to_string(), prefix.to_vec())..)
        .take_while(|((n, k), _)| n == ns && k.starts_with(prefix))
        .take(limit)
        .map(|((_, k), _)| k.clone())
        .collect()
}

impl State for MemState {
    fn get(&self, namespace: &str, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        self.map.read().expect("state lock").get(&(namespace.to_string(), key.to_vec())).cloned()
    }

    fn list(&self, namespace: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
        list_in(&self.map.read().expect("state lock"), namespace, prefix, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> WriteSet {
        let mut ws = WriteSet::default();
        ws.reads.insert(("notes".into(), b"a".to_vec()), 3);
        ws.reads.insert(("notes".into(), b"b".to_vec()), ABSENT);
        ws.lists.insert(("notes".into(), b"".to_vec()), list_hash(&[b"a".to_vec()]));
        ws.writes.insert(("notes".into(), b"a".to_vec()), Some(b"v".to_vec()));
        ws.writes.insert(("notes".into(), b"c".to_vec()), None);
        ws
    }

    #[test]
    fn a_write_set_decodes_to_itself_and_nothing_else_does() {
        let bytes = ws().encode();
        assert_eq!(WriteSet::decode(&bytes, 1 << 20).unwrap(), ws());
        assert!(WriteSet::decode(&bytes, 8).is_err(), "size limit");
        let mut t = bytes.clone();
        t.push(0);
        assert!(WriteSet::decode(&t, 1 << 20).is_err(), "trailing bytes");
        // The same writes listed twice, or out of order, encode canonically but are not a write set.
        let e = |writes: Vec<(&str, &[u8])>| {
            cbor::encode(&Encoded {
                reads: vec![],
                lists: vec![],
                writes: writes
                    .into_iter()
                    .map(|(n, k)| (n, serde_bytes::Bytes::new(k), None::<&serde_bytes::Bytes>))
                    .collect(),
            })
        };
        assert!(WriteSet::decode(&e(vec![("n", b"a"), ("n", b"b")]), 1 << 20).is_ok());
        assert!(WriteSet::decode(&e(vec![("n", b"b"), ("n", b"a")]), 1 << 20).unwrap_err().contains("sorted"));
        assert!(WriteSet::decode(&e(vec![("n", b"a"), ("n", b"a")]), 1 << 20).unwrap_err().contains("sorted"));
        // Found by the fuzz target: a tag on the key "writes" decoded to the same write set under other bytes.
        let tagged = hex::decode(
            "a3656c69737473806572656164738183656e6f746573416b03da1868dada667772697465738183656e6f746573416b4176",
        )
        .unwrap();
        assert!(WriteSet::decode(&tagged, 1 << 20).unwrap_err().contains("canonical"));
    }
}
