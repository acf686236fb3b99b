//! TPM structures from an untrusted vTPM (TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC) and the Azure quote's
//! signature check: never panic; a quote that parses recomputes its PCR digest from any values without panicking;
//! the input split in three drives the key, the signature and the message of one verification.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_attest::vtpm::quote::{check_pcrs, verify_signature, PublicArea, Quoted, Signature};
use sigil_attest::vtpm::{HashAlg, PcrBanks};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = Quoted::parse(data) {
        let mut banks = PcrBanks::new();
        for s in &q.selection {
            assert!(s.pcrs.iter().all(|p| *p < 24));
            banks.insert(s.alg, s.pcrs.iter().map(|p| (*p, vec![*p as u8; s.alg.size()])).collect());
        }
        let _ = check_pcrs(&q, HashAlg::Sha256, &banks);
    }
    let _ = Signature::parse(data);
    if let Ok(p) = PublicArea::parse(data) {
        assert_eq!(p.name().len(), 2 + p.name_alg.size());
        let _ = p.missing_ak_attributes();
    }
    let a = data.len() / 3;
    if let (Ok(p), Ok(s)) = (PublicArea::parse(&data[..a]), Signature::parse(&data[a..2 * a])) {
        let _ = verify_signature(&p.key, &data[2 * a..], &s);
    }
});
