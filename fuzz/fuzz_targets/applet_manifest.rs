//! Applet manifests, as people write them (TOML) and as members sign them (canonical CBOR): never panic; a TOML
//! manifest that parses encodes to CBOR that decodes to the same manifest; CBOR that decodes is canonical.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_runtime::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = Manifest::from_toml(text, b"module") {
            assert_eq!(Manifest::from_cbor(&m.to_cbor()).expect("own encoding decodes"), m);
            let _ = m.authorize(&[7; 32], "get", 10);
        }
    }
    if let Ok(m) = Manifest::from_cbor(data) {
        assert_eq!(m.to_cbor(), data, "one encoding per manifest");
    }
});
