//! `notes`: a shared notebook in pod-local key-value state (namespace `notes`).
//!
//! Methods (JSON in, JSON out): `put {"key", "value"}`, `get {"key"}`, `delete {"key"}`, `list {"prefix"?}`.

use sigil_sdk::serde::Deserialize;
use sigil_sdk::serde_json::json;
use sigil_sdk::{json, kv, to_json, Error};

const NS: &str = "notes";

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Put {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Key {
    key: String,
}

#[derive(Deserialize, Default)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct List {
    #[serde(default)]
    prefix: String,
}

fn put(input: &[u8]) -> Result<Vec<u8>, Error> {
    let p: Put = json(input)?;
    if p.key.is_empty() {
        return Err("key must not be empty".into());
    }
    let previous = kv::get(NS, p.key.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned());
    kv::put(NS, p.key.as_bytes(), p.value.as_bytes());
    to_json(&json!({ "key": p.key, "previous": previous }))
}

fn get(input: &[u8]) -> Result<Vec<u8>, Error> {
    let k: Key = json(input)?;
    match kv::get(NS, k.key.as_bytes()) {
        Some(v) => to_json(&json!({ "key": k.key, "value": String::from_utf8_lossy(&v) })),
        None => Err(format!("no note with key {:?}", k.key).into()),
    }
}

fn delete(input: &[u8]) -> Result<Vec<u8>, Error> {
    let k: Key = json(input)?;
    let existed = kv::delete(NS, k.key.as_bytes());
    to_json(&json!({ "key": k.key, "deleted": existed }))
}

fn list(input: &[u8]) -> Result<Vec<u8>, Error> {
    let l: List = if input.is_empty() { List::default() } else { json(input)? };
    let keys: Vec<String> =
        kv::list(NS, l.prefix.as_bytes()).into_iter().map(|k| String::from_utf8_lossy(&k).into_owned()).collect();
    to_json(&json!({ "keys": keys }))
}

sigil_sdk::methods! { put => put, get => get, delete => delete, list => list }
