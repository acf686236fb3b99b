//! AMD SEV-SNP: report parsing and verification. `report` parses the report, `certs` knows AMD's key hierarchy,
//! `chain` verifies the chain to the pinned ARK, and `judge` checks the authenticated fields; [`verify`] runs them
//! in that order.
//!
//! Order matters: fields are read before the signature is checked only to choose the chain (VERSION, SIGNING_KEY,
//! CPUID); every other field is judged only after the P-384 signature over the raw bytes `[0, 0x2A0)` verified
//! against a VCEK/VLEK that chains to the pinned ARK.

pub mod certs;
mod chain;
mod judge;
pub mod report;

use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};

pub use report::{Product, SigningKey, SnpReport, Tcb};

pub(crate) use chain::ChainCache;
use chain::{kds_hint, product_of, select, verify_chain};
use judge::judge;

use crate::policy::SnpPolicy;
use crate::result::{Outcome, Platform};
use crate::x509::Cert;

/// Verifies an SNP report against `certs` (VCEK/VLEK, optionally ASK/ASVK/ARK) and `policy`.
pub(crate) fn verify(
    report: &SnpReport,
    certs_in: &[Cert],
    policy: &SnpPolicy,
    expected_report_data: Option<&[u8]>,
    now: u64,
    cache: &ChainCache,
) -> Outcome {
    let mut out = Outcome::new(Platform::SevSnp);
    out.measurement = report.measurement().to_vec();
    out.report_data = report.report_data().to_vec();
    let c = &mut out.checks;
    c.pass("snp.format", format!("version {}, 1184 bytes, ECDSA P-384", report.version()));

    // 1. Which key signed, and which product: these only choose the chain.
    let vlek = match report.signing_key() {
        Ok(SigningKey::Vcek) => false,
        Ok(SigningKey::Vlek) => true,
        Ok(SigningKey::None) => {
            c.fail("snp.signing_key", "the report is unsigned (SIGNING_KEY = none)");
            return out;
        }
        Err(v) => {
            c.fail("snp.signing_key", format!("reserved SIGNING_KEY value {v}"));
            return out;
        }
    };
    c.pass("snp.signing_key", if vlek { "VLEK" } else { "VCEK" }.to_string());
    let product = match product_of(report, certs_in) {
        Ok(p) => p,
        Err(e) => {
            c.fail("snp.product", e);
            return out;
        }
    };
    c.pass("snp.product", product.name().to_string());

    // 2. Chain to the pinned ARK (cached by content).
    let sel = match select(certs_in, product, vlek) {
        Ok(s) => s,
        Err((e, missing)) => {
            let hint = if missing && !vlek {
                format!(" (fetch it from {})", kds_hint(report, product))
            } else {
                String::new()
            };
            c.fail("snp.cert_chain", format!("{e}{hint}"));
            return out;
        }
    };
    // The product and key kind are part of the key: a cached chain is only ever reused for the same question.
    let mut key_material = [sel.leaf.fingerprint(), sel.inter.fingerprint(), sel.ark.fingerprint()].concat();
    key_material.extend_from_slice(product.name().as_bytes());
    key_material.push(vlek as u8);
    let cache_key = crate::sha256(&key_material);
    let leaf = match cache.get(&cache_key) {
        Some(l) => l,
        None => match verify_chain(sel.leaf, sel.inter, sel.ark, &certs::roots(product).ark, product, vlek) {
            Ok(l) => {
                cache.put(cache_key, l.clone());
                l
            }
            Err(e) => {
                c.fail("snp.cert_chain", e);
                return out;
            }
        },
    };
    c.pass(
        "snp.cert_chain",
        format!(
            "{} ← {} ← pinned ARK-{}",
            sel.leaf.subject_cn().unwrap_or_default(),
            sel.inter.subject_cn().unwrap_or_default(),
            product.name()
        ),
    );
    if now < leaf.not_before || now > leaf.not_after {
        let which = [(sel.ark, "ARK"), (sel.inter, "intermediate"), (sel.leaf, if vlek { "VLEK" } else { "VCEK" })];
        let e = which
            .iter()
            .find_map(|(cert, w)| cert.check_validity(now, w).err())
            .unwrap_or_else(|| "outside validity".into());
        c.fail("snp.cert_validity", format!("{e} (now = {})", crate::time::fmt_unix(now)));
        return out;
    }
    c.pass("snp.cert_validity", format!("valid at {}", crate::time::fmt_unix(now)));

    // 3. The signature over the raw report bytes.
    let sig = match report.signature_fixed() {
        Ok(s) => s,
        Err(e) => {
            c.fail("snp.report_signature", e);
            return out;
        }
    };
    if UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &leaf.key).verify(report.signed_bytes(), &sig).is_err() {
        c.fail(
            "snp.report_signature",
            format!("signature over bytes 0..0x2a0 does not verify with the {}", if vlek { "VLEK" } else { "VCEK" }),
        );
        return out;
    }
    c.pass("snp.report_signature", None);

    // From here on every field is authentic.
    judge(&mut out, report, &leaf, policy, expected_report_data);
    out
}

/// The checks that run after the signature, each shown to fire on its own. The signature binds every field, so
/// real evidence cannot isolate them: these tests call [`judge`] directly on a genuine report with one field
/// changed, as if AMD's firmware had signed it.
#[cfg(test)]
mod tests {
    use super::chain::VerifiedLeaf;
    use super::*;
    use crate::result::CheckStatus;

    const REPORT_HEX: &str = include_str!("../../testdata/sev-snp/virtee-milan-v2.report.hex");
    const VCEK: &[u8] = include_bytes!("../../testdata/sev-snp/virtee-milan-v2.vcek.der");

    fn genuine() -> (Vec<u8>, VerifiedLeaf) {
        let raw = hex::decode(REPORT_HEX.trim()).unwrap();
        let vcek = Cert::from_der(VCEK, "VCEK").unwrap();
        let roots = certs::roots(Product::Milan);
        let leaf = verify_chain(&vcek, &roots.ask, &roots.ark, &roots.ark, Product::Milan, false).unwrap();
        (raw, leaf)
    }

    fn judged(raw: &[u8], leaf: &VerifiedLeaf, policy: &SnpPolicy) -> Vec<String> {
        let report = SnpReport::parse(raw).unwrap();
        let mut out = Outcome::new(Platform::SevSnp);
        judge(&mut out, &report, leaf, policy, None);
        out.checks.into_vec().into_iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name).collect()
    }

    fn with(mutate: impl FnOnce(&mut Vec<u8>)) -> Vec<String> {
        let (mut raw, leaf) = genuine();
        mutate(&mut raw);
        judged(&raw, &leaf, &SnpPolicy::default())
    }

    #[test]
    fn genuine_report_passes_every_check() {
        assert!(with(|_| {}).is_empty());
    }

    #[test]
    fn reserved_bytes_must_be_zero() {
        for off in [0x4C, 0x188, 0x1EB, 0x1EF, 0x1F8, 0x250, 0x29F, 0x330, 0x49F] {
            assert_eq!(with(|r| r[off] = 1), ["snp.reserved_fields"], "offset {off:#x}");
        }
    }

    #[test]
    fn policy_reserved_bits() {
        assert_eq!(with(|r| r[0x0A] &= !0x02), ["snp.reserved_fields"], "bit 17 must be one");
        assert_eq!(with(|r| r[0x0F] |= 0x80), ["snp.reserved_fields"], "bit 63 must be zero");
        assert_eq!(with(|r| r[0x48] |= 0x40), ["snp.reserved_fields"], "signer info reserved bit");
    }

    #[test]
    fn reported_tcb_must_match_the_vcek() {
        assert!(with(|r| r[0x186] += 1).contains(&"snp.tcb_binding".to_string()), "snp SPL");
        assert!(with(|r| r[0x187] -= 1).contains(&"snp.tcb_binding".to_string()), "ucode SPL");
        assert!(with(|r| r[0x183] = 1).contains(&"snp.tcb_binding".to_string()), "reserved TCB byte");
    }

    #[test]
    fn chip_id_must_match_the_vcek() {
        assert_eq!(with(|r| r[0x1A0] ^= 1), ["snp.chip_id_binding"]);
        assert_eq!(with(|r| r[0x1DF] ^= 1), ["snp.chip_id_binding"]);
        // All-zero chip id without MASK_CHIP_ID is a mismatch, with it the binding is skipped.
        assert_eq!(with(|r| r[0x1A0..0x1E0].fill(0)), ["snp.chip_id_binding"]);
        assert!(with(|r| {
            r[0x1A0..0x1E0].fill(0);
            r[0x48] |= 0b10;
        })
        .is_empty());
    }

    #[test]
    fn turin_chip_id_binds_eight_bytes_and_the_rest_is_zero() {
        let raw = include_bytes!("../../testdata/sev-snp/oak-turin-v5.report.bin").to_vec();
        let vcek = Cert::from_der(include_bytes!("../../testdata/sev-snp/oak-turin-v5.vcek.der"), "VCEK").unwrap();
        let roots = certs::roots(Product::Turin);
        let leaf = verify_chain(&vcek, &roots.ask, &roots.ark, &roots.ark, Product::Turin, false).unwrap();
        assert!(judged(&raw, &leaf, &SnpPolicy::default()).is_empty());
        let mut r = raw.clone();
        r[0x1A8] = 1;
        assert_eq!(judged(&r, &leaf, &SnpPolicy::default()), ["snp.chip_id_binding"]);
        let mut r = raw;
        r[0x1A7] ^= 1;
        assert_eq!(judged(&r, &leaf, &SnpPolicy::default()), ["snp.chip_id_binding"]);
    }

    #[test]
    fn guest_policy_bits() {
        assert_eq!(with(|r| r[0x0A] |= 0x08), ["snp.policy.debug"]);
        assert_eq!(with(|r| r[0x0A] |= 0x04), ["snp.policy.migrate_ma"]);
    }

    #[test]
    fn provisional_firmware_is_refused_by_default() {
        assert_eq!(with(|r| r[0x1E7] = r[0x1E7].wrapping_add(1)), ["snp.policy.committed_tcb"]);
        assert_eq!(with(|r| r[0x1EC] ^= 1), ["snp.policy.committed_tcb"], "committed build");
        let (mut raw, leaf) = genuine();
        raw[0x1EC] ^= 1;
        let lax = SnpPolicy { allow_provisional_firmware: true, ..SnpPolicy::default() };
        assert!(judged(&raw, &leaf, &lax).is_empty());
    }

    #[test]
    fn reported_above_current_tcb_is_refused() {
        // CURRENT_TCB below REPORTED_TCB (and COMMITTED kept equal to CURRENT).
        let v = with(|r| {
            r[0x3E] = 0;
            r[0x1E6] = 0;
        });
        assert_eq!(v, ["snp.policy.min_tcb"]);
    }

    #[test]
    fn launch_tcb_below_minimum_is_refused() {
        let (mut raw, leaf) = genuine();
        raw[0x1F7] = 1; // LAUNCH_TCB ucode
        let p = SnpPolicy { min_tcb: Tcb { ucode: 100, ..Tcb::default() }, ..SnpPolicy::default() };
        assert_eq!(judged(&raw, &leaf, &p), ["snp.policy.min_tcb"]);
    }

    #[test]
    fn the_pin_is_what_stops_a_self_consistent_foreign_root() {
        // Another product's genuine ARK is a valid self-signed root; only the pin refuses it for Milan.
        let vcek = Cert::from_der(VCEK, "VCEK").unwrap();
        let milan = certs::roots(Product::Milan);
        let genoa = certs::roots(Product::Genoa);
        let e = verify_chain(&vcek, &milan.ask, &genoa.ark, &milan.ark, Product::Milan, false).unwrap_err();
        assert!(e.contains("pinned ARK-Milan"), "{e}");
    }
}

/// A forged but self-consistent AMD hierarchy (testdata/forged, test keys): every signature verifies, so only
/// the ARK pin stands between it and acceptance.
#[cfg(test)]
mod forged {
    use super::*;
    use crate::x509::parse_cert_file;

    const ARK: &[u8] = include_bytes!("../../testdata/forged/snp-forged-ark.pem");
    const ASK: &[u8] = include_bytes!("../../testdata/forged/snp-forged-ask.pem");
    const VCEK: &[u8] = include_bytes!("../../testdata/forged/snp-forged-vcek.der");
    const REPORT: &[u8] = include_bytes!("../../testdata/forged/snp-forged-milan.report.bin");

    fn chain() -> (Cert, Cert, Cert) {
        let one = |b: &[u8]| parse_cert_file(b, "forged").unwrap().remove(0);
        (one(ARK), one(ASK), Cert::from_der(VCEK, "forged VCEK").unwrap())
    }

    #[test]
    fn forged_hierarchy_is_internally_valid() {
        let (ark, ask, vcek) = chain();
        // Trusting the forged ARK as if it were pinned: the chain, the signature and every check pass.
        let leaf = verify_chain(&vcek, &ask, &ark, &ark, Product::Milan, false).unwrap();
        let report = SnpReport::parse(REPORT).unwrap();
        let key = UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &leaf.key);
        assert!(key.verify(report.signed_bytes(), &report.signature_fixed().unwrap()).is_ok());
        let mut out = Outcome::new(Platform::SevSnp);
        judge(&mut out, &report, &leaf, &SnpPolicy::default(), None);
        assert!(!out.checks.any_failed());
    }

    #[test]
    fn forged_hierarchy_is_refused_by_the_pin() {
        let (ark, ask, vcek) = chain();
        let err =
            verify_chain(&vcek, &ask, &ark, &certs::roots(Product::Milan).ark, Product::Milan, false).unwrap_err();
        assert!(err.contains("pinned ARK-Milan"), "{err}");
        // And through the public entry point, with or without the forged ARK supplied.
        let verifier = crate::Verifier::new(crate::Policy::default());
        for certs in [vec![ark.clone(), ask.clone(), vcek.clone()], vec![ask.clone(), vcek.clone()], vec![vcek.clone()]]
        {
            let e = crate::Endorsements { certs, ..Default::default() };
            let r = verifier.verify(REPORT, &e, 1_750_000_000).unwrap();
            assert!(!r.accepted());
            assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
            assert!(r.reasons[0].starts_with("snp.cert_chain"), "{:?}", r.reasons);
        }
    }
}
