//! TDX quote parser: never panics; a parsed quote's signed part lies inside the input, and only zero padding
//! follows what was parsed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = sigil_attest::tdx::Quote::parse(data) {
        assert!(q.signed_len <= q.raw.len());
        assert_eq!(&data[..q.raw.len()], &q.raw[..]);
        assert!(data[q.raw.len()..].iter().all(|&b| b == 0));
    }
});
