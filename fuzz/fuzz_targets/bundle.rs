//! Evidence bundle decoder: never panics, and whatever decodes re-encodes to something that decodes equal.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = sigil_attest::Bundle::decode(data) {
        let again = sigil_attest::Bundle::decode(&b.encode().expect("encodes")).expect("round trip decodes");
        assert_eq!(again, b);
    }
    let _ = sigil_attest::collect::parse_cert_table(data);
});
