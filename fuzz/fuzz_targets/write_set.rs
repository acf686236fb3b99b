//! Write sets as validators receive them in blocks: decoding never panics, and whatever decodes re-encodes to the
//! same bytes (its hash is the receipt's write-set hash).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_runtime::WriteSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(ws) = WriteSet::decode(data, 1 << 20) {
        assert_eq!(ws.encode(), data, "a decoded write set re-encodes to its bytes");
    }
});
