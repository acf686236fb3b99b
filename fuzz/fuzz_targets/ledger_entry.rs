//! Ledger entry decoder: never panics, and an entry that decodes re-encodes to exactly the input (one encoding
//! per entry).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = sigil_ledger::Entry::decode(data) {
        assert_eq!(e.encode(), data, "a decoded entry must be in its one canonical encoding");
    }
});
