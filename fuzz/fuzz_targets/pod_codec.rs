#![no_main]
//! Every consensus message a peer can send (and the WAL holds), decoded from arbitrary bytes: no panic, and what
//! decodes re-encodes stably (`sigil_pod::fuzz::codec`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sigil_pod::fuzz::codec(data);
});
