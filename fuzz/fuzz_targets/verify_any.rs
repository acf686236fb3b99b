//! The whole verifier on arbitrary input (format detection, hex, every platform path): never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static V: OnceLock<attest::Verifier> = OnceLock::new();
    let v = V.get_or_init(|| attest::Verifier::new(attest::Policy::default()));
    let _ = v.verify(data, &attest::Endorsements::default(), 1_750_000_000);
});
