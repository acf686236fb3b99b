//! SEV-SNP report parser: never panics; every accessor works on whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = sigil_attest::snp::SnpReport::parse(data) {
        let _ = (r.signing_key(), r.product_from_cpuid(), r.signature_fixed(), r.nonzero_reserved());
        let _ = (r.launch_mit_vector(), r.current_version(), r.committed_version(), r.cpuid());
        assert_eq!(r.raw(), data, "the report is kept byte for byte");
    }
});
