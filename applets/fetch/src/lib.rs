//! `fetch`: outbound HTTP to the hosts its manifest allows.
//!
//! Method `get {"url"}` → `{"status", "body"}`. A URL whose host is not allowed ends the run with `denied`.

use sigil_sdk::serde::Deserialize;
use sigil_sdk::serde_json::json;
use sigil_sdk::{http, json, to_json, Error};

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Get {
    url: String,
}

fn get(input: &[u8]) -> Result<Vec<u8>, Error> {
    let g: Get = json(input)?;
    let r = http::get(&g.url)?;
    to_json(&json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) }))
}

sigil_sdk::methods! { get => get }
