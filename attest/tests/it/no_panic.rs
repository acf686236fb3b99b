//! Arbitrary bytes never panic the verifier, whatever format they resemble.

use proptest::prelude::*;
use sigil_attest::{Endorsements, Policy, Verifier};

const VIRTEE_HEX: &str = include_str!("../../testdata/sev-snp/virtee-milan-v2.report.hex");
const QUOTE: &[u8] = include_bytes!("../../testdata/tdx/dcapqvl-b0c06f-v4.quote.bin");
const HCL: &[u8] = include_bytes!("../../testdata/sev-snp-azure/azure-genoa-v3.hcl.bin");
const LOG: &[u8] = include_bytes!("../../testdata/eventlogs/tpm2-tools-sd-boot-fedora37.bin");

fn verify(bytes: &[u8]) {
    let v = Verifier::new(Policy::default());
    let _ = v.verify(bytes, &Endorsements::default(), 1_750_000_000);
}

/// Seeds that look like each format, so mutations reach deep into the parsers.
fn seeds() -> Vec<Vec<u8>> {
    let bundle = sigil_attest::collect::collect_sim([1; 48], [2; 64], [3; 32]).unwrap().encode().unwrap();
    vec![hex::decode(VIRTEE_HEX.trim()).unwrap(), QUOTE.to_vec(), HCL.to_vec(), bundle]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        verify(&bytes);
    }

    #[test]
    fn mutated_evidence(which in 0usize..4, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16), cut in any::<usize>()) {
        let mut b = seeds()[which].clone();
        for (pos, val) in edits {
            let i = pos % b.len();
            b[i] = val;
        }
        verify(&b);
        let keep = cut % (b.len() + 1);
        verify(&b[..keep]);
    }

    #[test]
    fn certificates_and_cert_tables(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = sigil_attest::x509::parse_cert_file(&bytes, "fuzz");
        let _ = sigil_attest::collect::parse_cert_table(&bytes);
        let _ = sigil_attest::Bundle::decode(&bytes);
        let _ = Endorsements::parse_collateral(&bytes);
    }

    #[test]
    fn vtpm_structures(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        use sigil_attest::vtpm::{eventlog::EventLog, quote};
        let _ = quote::Quoted::parse(&bytes);
        let _ = quote::Signature::parse(&bytes);
        let _ = quote::PublicArea::parse(&bytes).map(|p| p.name());
        let _ = EventLog::parse(&bytes);
    }

    #[test]
    fn mutated_event_log(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        use sigil_attest::vtpm::eventlog::{check_against, EventLog};
        let mut b = LOG.to_vec();
        for (pos, val) in edits {
            let i = pos % b.len();
            b[i] = val;
        }
        for bytes in [&b[..], &b[..cut % (b.len() + 1)]] {
            if let Ok(log) = EventLog::parse(bytes) {
                let banks = log.banks.iter().map(|a| (*a, log.replay(*a).unwrap())).collect();
                prop_assert!(check_against(&log, &banks).is_ok());
            }
        }
    }
}
