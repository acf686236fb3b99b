//! Verification cost, each measured beside its baseline in the same run:
//! - `snp::verify/chain=cold` (a fresh verifier: ARK, ASK, VCEK RSA-PSS checks and the P-384 report signature)
//!   and `snp::verify/chain=cached` against `snp::sev_crate/baseline` (virtee `sev` parsing and verifying the
//!   same report and chain);
//! - `tdx::verify/collateral` against `tdx::dcap_qvl_verify/baseline` (dcap-qvl's `verify` called directly on
//!   the same quote and collateral), and `tdx::verify/offline` (no collateral).
//!
//! `scripts/bench.sh` runs this and prints the ratios.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sigil_attest::{x509::parse_cert_file, Endorsements, Policy, Verifier};

const REPORT_HEX: &str = include_str!("../testdata/sev-snp/virtee-milan-v2.report.hex");
const VCEK: &[u8] = include_bytes!("../testdata/sev-snp/virtee-milan-v2.vcek.der");
const ARK: &[u8] = include_bytes!("../roots/milan.ark.pem");
const ASK: &[u8] = include_bytes!("../roots/milan.ask.pem");
const QUOTE: &[u8] = include_bytes!("../testdata/tdx/dcapqvl-b0c06f-v4.quote.bin");
const COLLATERAL: &[u8] = include_bytes!("../testdata/tdx/dcapqvl-b0c06f-v4.collateral.json");
/// 2025-07-01: inside every certificate's and the collateral's validity.
const NOW: u64 = 1_751_328_000;

/// The default policy, accepting evidence that proves only the firmware: these vectors' images are unknown, so
/// nothing pins the code they ran (the `workload` judgement itself is a few comparisons).
fn firmware_only() -> Policy {
    let mut p = Policy::default();
    p.workload.allow_unmeasured = true;
    p
}

fn snp(c: &mut Criterion) {
    let report = hex::decode(REPORT_HEX.trim()).unwrap();
    let e = Endorsements { certs: parse_cert_file(VCEK, "vcek").unwrap(), ..Default::default() };
    let mut g = c.benchmark_group("snp");
    g.bench_function("verify/chain=cold", |b| {
        b.iter(|| {
            let r = Verifier::new(firmware_only()).verify(black_box(&report), &e, NOW).unwrap();
            assert!(r.accepted());
        })
    });
    let warm = Verifier::new(firmware_only());
    g.bench_function("verify/chain=cached", |b| {
        b.iter(|| {
            let r = warm.verify(black_box(&report), &e, NOW).unwrap();
            assert!(r.accepted());
        })
    });
    // The floor: one P-384 signature check over the same bytes with ring, nothing else.
    let vcek_key = parse_cert_file(VCEK, "vcek").unwrap().remove(0).public_key_bits().to_vec();
    let parsed = sigil_attest::snp::SnpReport::parse(&report).unwrap();
    let sig = parsed.signature_fixed().unwrap();
    g.bench_function("ring_p384_verify/floor", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, &vcek_key)
                .verify(black_box(parsed.signed_bytes()), &sig)
                .unwrap()
        })
    });
    let chain = Chain {
        ca: ca::Chain { ark: Certificate::from_pem(ARK).unwrap(), ask: Certificate::from_pem(ASK).unwrap() },
        vek: Certificate::from_der(VCEK).unwrap(),
    };
    g.bench_function("sev_crate/baseline", |b| {
        b.iter(|| {
            let r = AttestationReport::from_bytes(black_box(&report)).unwrap();
            (&chain, &r).verify().unwrap();
        })
    });
    g.finish();
}

fn tdx(c: &mut Criterion) {
    let collateral = Endorsements::parse_collateral(COLLATERAL).unwrap();
    let e = Endorsements { collateral: Some(collateral.clone()), ..Default::default() };
    let v = Verifier::new(firmware_only());
    let mut g = c.benchmark_group("tdx");
    g.bench_function("verify/collateral", |b| {
        b.iter(|| {
            let r = v.verify(black_box(QUOTE), &e, NOW).unwrap();
            assert!(r.accepted());
        })
    });
    g.bench_function("dcap_qvl_verify/baseline", |b| {
        b.iter(|| dcap_qvl::verify::verify(black_box(QUOTE), &collateral, NOW).unwrap())
    });
    let offline = Verifier::new(
        Policy::from_toml("[tdx]\nrequire_collateral = false\n[workload]\nallow_unmeasured = true").unwrap(),
    );
    g.bench_function("verify/offline", |b| {
        b.iter(|| {
            let r = offline.verify(black_box(QUOTE), &Endorsements::default(), NOW).unwrap();
            assert!(r.accepted());
        })
    });
    g.finish();
}

criterion_group!(benches, snp, tdx);
criterion_main!(benches);
