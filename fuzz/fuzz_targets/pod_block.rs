#![no_main]
//! A proposed or synced block from arbitrary bytes: only its canonical encoding decodes, and every block rule runs
//! on it against a local pod's ledger without panicking (`sigil_pod::fuzz::block`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigil_pod::fuzz::block(data);
});
