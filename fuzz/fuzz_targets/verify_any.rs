//! The whole verifier on arbitrary input (format detection, hex, every platform path): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static V: OnceLock<sigil_attest::Verifier> = OnceLock::new();
    let v = V.get_or_init(|| sigil_attest::Verifier::new(sigil_attest::Policy::default()));
    let _ = v.verify(data, &sigil_attest::Endorsements::default(), 1_750_000_000);
});
