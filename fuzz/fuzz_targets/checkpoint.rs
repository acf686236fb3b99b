//! Signed checkpoint parser: never panics, and a parsed note prints back to the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(n) = sigil_ledger::checkpoint::SignedCheckpoint::parse(text) {
            assert_eq!(n.to_note(), text);
        }
    }
});
