//! Who may read the pod's record: `GET /v1/audit`, `/v1/entries/{index}` and `/v1/receipts/{hash}` answer a
//! reader who proves a key, never a stranger (unless the node is configured with `[api] public_reads`).
//!
//! A reader proves its key on each request in one of two ways:
//! - a signature: `Authorization: Sigil key=ed25519:<hex>, at=<unix ms>, sig=<hex>`, an Ed25519 signature over
//!   [`message`] (the pod, the method, the path with its query, and the time), fresh within [`MAX_SKEW_MS`]. A
//!   header seen on the wire can be replayed only for the same read of the same pod for a few minutes, which
//!   shows its replayer no more than the wire already did;
//! - an MCP access token the node issued (`Authorization: Bearer`, `sigil mcp token`): its caller's key.
//!
//! What the key sees ([`Reader::sees`]): a caller sees its own invocations and refused requests, and the pod's
//! governance (genesis, deployments, admissions, removals, policy changes: what `/v1/pod` and `/v1/applets`
//! show anyway). The pod's governance members and the node's `[api] auditors` see every entry. The status, the
//! checkpoint, the genesis, the applets and the metrics stay public: they name no caller.

use ring::signature::{Ed25519KeyPair, KeyPair};
use sigil_ledger::Entry;

/// The `Authorization` scheme of a signed read.
pub const SCHEME: &str = "Sigil";

/// How far a signed read's time may be from the node's clock, either way (as for signed requests).
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// Who is reading, once proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Anyone: the node serves public reads (`[api] public_reads`).
    Anyone,
    /// A governance member or a configured auditor: every entry.
    Auditor([u8; 32]),
    /// A caller: its own invocations and refusals, and the pod's governance.
    Caller([u8; 32]),
}

impl Reader {
    /// Whether this reader may see `e`.
    pub fn sees(&self, e: &Entry) -> bool {
        match self {
            Reader::Anyone | Reader::Auditor(_) => true,
            // Every kind named, so that a new kind is decided here, not let through.
            Reader::Caller(k) => match e {
                Entry::Invocation(i) => i.caller.as_slice() == k,
                Entry::RequestRejected(r) => r.caller.as_slice() == k,
                Entry::Genesis(_)
                | Entry::AppletDeployed(_)
                | Entry::NodeAdmitted(_)
                | Entry::NodeRemoved(_)
                | Entry::Reattested(_)
                | Entry::NodeSuspended(_)
                | Entry::NodeReinstated(_)
                | Entry::PolicyChanged(_) => true,
            },
        }
    }

    /// The caller whose entries are all this reader sees, or `None` for one who sees everything.
    pub fn only(&self) -> Option<&[u8; 32]> {
        match self {
            Reader::Caller(k) => Some(k),
            _ => None,
        }
    }
}

/// Why a read is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRead {
    /// No proof of a key, or one that does not hold (401).
    Unauthenticated(String),
    /// The key reads too fast (429).
    TooMany,
}

/// The bytes a signed read signs: `"sigil-read-v1"`, the pod id, the method, the path with its query, and the time
/// (decimal Unix ms), each after a NUL. A method and a path never hold a NUL, so the pod is what is left.
pub fn message(pod: &str, method: &str, path_and_query: &str, at_ms: u64) -> Vec<u8> {
    format!("sigil-read-v1\0{pod}\0{method}\0{path_and_query}\0{at_ms}").into_bytes()
}

/// The `Authorization` header value of a read by `key` of `path_and_query` in `pod` at `at_ms`.
pub fn authorization(key: &Ed25519KeyPair, pod: &str, method: &str, path_and_query: &str, at_ms: u64) -> String {
    let sig = key.sign(&message(pod, method, path_and_query, at_ms));
    format!("{SCHEME} key=ed25519:{}, at={at_ms}, sig={}", hex::encode(key.public_key().as_ref()), hex::encode(sig))
}

/// A signed read's fields: key, time, signature.
pub fn parse(value: &str) -> Result<([u8; 32], u64, [u8; 64]), String> {
    // The scheme, as HTTP's are, in any case.
    let rest = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(SCHEME))
        .map(|(_, rest)| rest)
        .ok_or(format!("the Authorization scheme is {SCHEME} (a signed read) or Bearer (an access token)"))?;
    let (mut key, mut at, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(format!("{part:?} is not NAME=VALUE"))?;
        let slot = match k {
            "key" => &mut key,
            "at" => &mut at,
            "sig" => &mut sig,
            _ => return Err(format!("unknown field {k:?} (key, at, sig)")),
        };
        if slot.replace(v).is_some() {
            return Err(format!("{k} is given twice"));
        }
    }
    let key = key.ok_or("no key=")?;
    let key = key.strip_prefix("ed25519:").ok_or("key= is ed25519:<hex>")?;
    let key: [u8; 32] =
        hex::decode(key).ok().and_then(|b| b.try_into().ok()).ok_or("key= is an Ed25519 public key, 64 hex digits")?;
    let at = at.ok_or("no at=")?;
    // Exactly one spelling of a number: no sign, no leading zeros.
    if at.is_empty() || !at.bytes().all(|b| b.is_ascii_digit()) || (at.len() > 1 && at.starts_with('0')) {
        return Err("at= is the time in Unix milliseconds".into());
    }
    let at = at.parse::<u64>().map_err(|_| "at= is the time in Unix milliseconds")?;
    let sig: [u8; 64] = hex::decode(sig.ok_or("no sig=")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("sig= is an Ed25519 signature, 128 hex digits")?;
    Ok((key, at, sig))
}

/// The key a signed read proves: its signature over [`message`] for this pod, method and path verifies, and its
/// time is within [`MAX_SKEW_MS`] of `now_ms`.
pub fn verify(value: &str, pod: &str, method: &str, path_and_query: &str, now_ms: u64) -> Result<[u8; 32], String> {
    let (key, at, sig) = parse(value)?;
    if at.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(format!(
            "the signed read is {} s from this node's time (at most {} s either way): check the clock",
            at.abs_diff(now_ms) / 1000,
            MAX_SKEW_MS / 1000
        ));
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&message(pod, method, path_and_query, at), &sig)
        .map_err(|_| "the read's signature does not verify (for this pod, method, path and time)".to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn key(b: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[b; 32]).unwrap()
    }

    #[test]
    fn a_signed_read_proves_its_key_for_that_pod_method_path_and_time_only() {
        let k = key(7);
        let h = authorization(&k, "eu", "GET", "/v1/audit?limit=5", NOW);
        let pk: [u8; 32] = k.public_key().as_ref().try_into().unwrap();
        assert_eq!(verify(&h, "eu", "GET", "/v1/audit?limit=5", NOW + 1000), Ok(pk));
        // Every field it signs is bound.
        assert!(verify(&h, "us", "GET", "/v1/audit?limit=5", NOW).is_err(), "another pod");
        assert!(verify(&h, "eu", "HEAD", "/v1/audit?limit=5", NOW).is_err(), "another method");
        assert!(verify(&h, "eu", "GET", "/v1/audit?limit=6", NOW).is_err(), "another query");
        assert!(verify(&h, "eu", "GET", "/v1/entries/0", NOW).is_err(), "another path");
        // Fresh within five minutes, either way.
        assert!(verify(&h, "eu", "GET", "/v1/audit?limit=5", NOW + MAX_SKEW_MS).is_ok());
        assert!(verify(&h, "eu", "GET", "/v1/audit?limit=5", NOW + MAX_SKEW_MS + 1).unwrap_err().contains("clock"));
        assert!(verify(&h, "eu", "GET", "/v1/audit?limit=5", NOW - MAX_SKEW_MS - 1).is_err());
        // Another time in the header than the one signed; another key; a flipped signature bit.
        let moved = h.replace(&format!("at={NOW}"), &format!("at={}", NOW + 1));
        assert!(verify(&moved, "eu", "GET", "/v1/audit?limit=5", NOW).unwrap_err().contains("signature"));
        let other = hex::encode(key(8).public_key().as_ref());
        let swapped = h.replace(&hex::encode(k.public_key().as_ref()), &other);
        assert!(verify(&swapped, "eu", "GET", "/v1/audit?limit=5", NOW).unwrap_err().contains("signature"));
        let sig_at = h.find("sig=").unwrap() + 4;
        let mut flipped = h.clone().into_bytes();
        flipped[sig_at] = if flipped[sig_at] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(verify(&flipped, "eu", "GET", "/v1/audit?limit=5", NOW).unwrap_err().contains("signature"));
    }

    #[test]
    fn a_malformed_header_says_what_is_wrong_and_proves_nothing() {
        let k = hex::encode([1u8; 32]);
        let s = hex::encode([2u8; 64]);
        for (h, why) in [
            ("Bearer abc".to_string(), "scheme"),
            ("Sigilkey=x".to_string(), "scheme"),
            (format!("Sigil key=ed25519:{k}, at=1"), "no sig"),
            (format!("Sigil key={k}, at=1, sig={s}"), "ed25519:"),
            (format!("Sigil key=ed25519:{k}, at=01, sig={s}"), "Unix milliseconds"),
            (format!("Sigil key=ed25519:{k}, at=+1, sig={s}"), "Unix milliseconds"),
            (format!("Sigil key=ed25519:{k}, at=1, at=2, sig={s}"), "twice"),
            (format!("Sigil key=ed25519:{k}, at=1, sig={s}, pod=eu"), "unknown field"),
            (format!("Sigil key=ed25519:{}, at=1, sig={s}", &k[2..]), "64 hex digits"),
            (format!("Sigil key=ed25519:{k}, at=1, sig={}", &s[2..]), "128 hex digits"),
        ] {
            let e = parse(&h).unwrap_err();
            assert!(e.contains(why), "{h}: {e}");
        }
        assert!(parse(&format!("Sigil key=ed25519:{k}, at=1, sig={s}")).is_ok());
        assert!(parse(&format!("sigil key=ed25519:{k}, at=1, sig={s}")).is_ok(), "a scheme in any case");
    }

    #[test]
    fn a_caller_sees_its_own_entries_and_the_governance_an_auditor_sees_all() {
        let mine = [1u8; 32];
        let theirs = [2u8; 32];
        let inv = |caller: [u8; 32]| {
            let Entry::Invocation(mut i) = sigil_pod::testing::invocation(0, 1).0 else { unreachable!() };
            i.caller = serde_bytes::ByteBuf::from(caller.to_vec());
            Entry::Invocation(i)
        };
        let refused = |caller: [u8; 32]| {
            Entry::RequestRejected(sigil_ledger::entry::RequestRejected {
                request_hash: sigil_ledger::Hash::digest(b"r"),
                caller: serde_bytes::ByteBuf::from(caller.to_vec()),
                applet: "notes".into(),
                method: "get".into(),
                reason: "no".into(),
                node: "node-0".into(),
                at_ms: 1,
            })
        };
        let removed = Entry::NodeRemoved(sigil_ledger::entry::NodeRemoved {
            name: "node-3".into(),
            reason: "retired".into(),
            prior: 0,
            approvals: vec![],
        });
        let caller = Reader::Caller(mine);
        assert!(caller.sees(&inv(mine)) && !caller.sees(&inv(theirs)) && caller.sees(&removed));
        assert!(caller.sees(&refused(mine)) && !caller.sees(&refused(theirs)));
        assert!(Reader::Auditor(theirs).sees(&inv(mine)) && Reader::Anyone.sees(&inv(mine)));
        assert_eq!(caller.only(), Some(&mine));
        assert_eq!(Reader::Auditor(mine).only(), None);
    }
}
