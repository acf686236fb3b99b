//! `tools`: an MCP-style tool server — a small ticket desk. Each method is a tool with a JSON Schema in the
//! manifest (`applets/tools/sigil.toml`), so an MCP endpoint can list and call them.
//!
//! `create_ticket {"title", "body", "priority"?}` → the ticket; `get_ticket {"id"}`; `search_tickets {"query"}` →
//! the tickets whose title or body contains the query.

use sigil_sdk::serde::{Deserialize, Serialize};
use sigil_sdk::serde_json::json;
use sigil_sdk::{json, kv, log, to_json, Error, Level};

const NS: &str = "tickets";

#[derive(Serialize, Deserialize)]
#[serde(crate = "sigil_sdk::serde")]
struct Ticket {
    id: u64,
    title: String,
    body: String,
    priority: String,
    reporter: String,
    created_ms: u64,
}

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Create {
    title: String,
    body: String,
    #[serde(default = "normal")]
    priority: String,
}

fn normal() -> String {
    "normal".into()
}

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Id {
    id: u64,
}

#[derive(Deserialize)]
#[serde(crate = "sigil_sdk::serde", deny_unknown_fields)]
struct Search {
    query: String,
}

fn key(id: u64) -> Vec<u8> {
    format!("ticket/{id:016}").into_bytes()
}

fn create_ticket(input: &[u8]) -> Result<Vec<u8>, Error> {
    let c: Create = json(input)?;
    if c.title.trim().is_empty() {
        return Err("title must not be empty".into());
    }
    if !["low", "normal", "high"].contains(&c.priority.as_str()) {
        return Err(format!("priority must be low, normal or high, not {:?}", c.priority).into());
    }
    let next = kv::get(NS, b"next_id").map(|v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8]))).unwrap_or(1);
    let reporter: String = sigil_sdk::caller().iter().map(|b| format!("{b:02x}")).collect();
    let t = Ticket {
        id: next,
        title: c.title,
        body: c.body,
        priority: c.priority,
        reporter,
        created_ms: sigil_sdk::now_ms(),
    };
    kv::put(NS, &key(t.id), &to_json(&t)?);
    kv::put(NS, b"next_id", &(next + 1).to_le_bytes());
    log(Level::Info, &format!("ticket {} created", t.id));
    to_json(&t)
}

fn get_ticket(input: &[u8]) -> Result<Vec<u8>, Error> {
    let i: Id = json(input)?;
    kv::get(NS, &key(i.id)).ok_or_else(|| Error(format!("no ticket {}", i.id)))
}

fn search_tickets(input: &[u8]) -> Result<Vec<u8>, Error> {
    let s: Search = json(input)?;
    let q = s.query.to_lowercase();
    let mut found = Vec::new();
    for k in kv::list(NS, b"ticket/") {
        if let Some(v) = kv::get(NS, &k) {
            let t: Ticket = json(&v)?;
            if t.title.to_lowercase().contains(&q) || t.body.to_lowercase().contains(&q) {
                found.push(t);
            }
        }
    }
    to_json(&json!({ "tickets": found }))
}

sigil_sdk::methods! { create_ticket => create_ticket, get_ticket => get_ticket, search_tickets => search_tickets }
