//! The egress HTTP/1.1 response parser (bytes from whatever server an applet reached): never panics, never returns
//! a body over the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, _, body)) = sigil_runtime::egress::parse_response(data, 1024) {
        assert!(body.len() <= 1024);
    }
});
