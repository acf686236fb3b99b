//! Signed requests as a node receives them: decoding (canonical CBOR only) and the stateless checks never
//! panic, and whatever decodes re-encodes to the same bytes (one request, one hash).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_ledger::request::SignedRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedRequest::decode(data) {
        assert_eq!(r.encode(), data, "a decoded request re-encodes to its bytes");
        let _ = r.verify(&r.request.pod, r.request.issued_at_ms);
        let _ = r.verify("other", 0);
    }
});
