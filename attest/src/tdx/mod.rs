//! Intel TDX DCAP quotes (v4 and v5; TD 1.0 and TD 1.5 bodies).
//!
//! [`Quote::parse`] (`quote.rs`) is Sigil's own bounded parser: it checks every length, accepts zero padding after the quote
//! (configfs-tsm hands out fixed-size buffers) and refuses any other trailing byte. Verification then takes one
//! of two paths, each in its file:
//! - **with collateral** (`dcap.rs`): `dcap-qvl` verifies the whole DCAP chain (PCK chain and CRLs, TCB info, QE identity,
//!   TDX module identity, signatures) and yields the TCB status; Sigil then applies its TD policy;
//! - **without collateral** (`offline.rs`): Sigil checks the quote signature, the QE report signature and binding, the PCK chain
//!   to the pinned Intel SGX Root CA and the QE's signer, and reports `tcb_status: null`; the policy decides
//!   whether that is enough (by default it is not).

use std::sync::OnceLock;

use serde_json::json;

use crate::policy::TdxPolicy;
use crate::result::{Outcome, Platform};
use crate::x509::Cert;

pub mod ccel;
mod dcap;
mod offline;
mod quote;

use offline::verify_offline;
pub use quote::{sniff, Quote, TdBody};

const WHAT: &str = "TDX quote";
/// Intel's QE vendor ID.
pub const INTEL_QE_VENDOR_ID: [u8; 16] =
    [0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07];
/// MRSIGNER of Intel's TD quoting enclave (TD_QE), as Intel's signed QE identity collateral names it.
pub const INTEL_TD_QE_MRSIGNER: [u8; 32] = [
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03, 0x0f, 0x7c, 0x15,
    0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
];
/// ISVPRODID of the TD_QE.
pub const INTEL_TD_QE_PROD_ID: u16 = 2;
/// TEE type of a TD quote.
pub const TEE_TYPE_TDX: u32 = 0x81;
const HEADER_LEN: usize = 48;
const TD10_LEN: usize = 584;
const TD15_LEN: usize = 648;
const QE_REPORT_LEN: usize = 384;
/// Largest quote accepted (real ones are about 5 KB; buffers 8 KB).
pub const MAX_QUOTE_LEN: usize = 64 * 1024;

/// The pinned Intel SGX Root CA (DER), SHA-256 44a0196b…d3.
pub const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("../../roots/intel_sgx_root_ca.der");

fn intel_root() -> &'static Cert {
    static ROOT: OnceLock<Cert> = OnceLock::new();
    ROOT.get_or_init(|| Cert::from_der(INTEL_ROOT_CA_DER, "Intel SGX Root CA").expect("built-in Intel root parses"))
}

/// TD_ATTRIBUTES bits.
pub mod td_attributes {
    /// The TD is debuggable.
    pub const DEBUG: u64 = 1 << 0;
    /// TUD bits 1..=7 other than DEBUG (profiling and the like).
    pub const TUD_OTHER: u64 = 0xFE;
    /// EPT violations are not converted to #VE (required by dcap-qvl; the secure choice).
    pub const SEPT_VE_DISABLE: u64 = 1 << 28;
    /// The TD may be migrated.
    pub const MIGRATABLE: u64 = 1 << 29;
    /// Protection keys for supervisor pages.
    pub const PKS: u64 = 1 << 30;
    /// Performance monitoring.
    pub const PERFMON: u64 = 1 << 63;
    /// Bits go-tdx-guest allows.
    pub const ALLOWED: u64 = DEBUG | SEPT_VE_DISABLE | PKS | PERFMON;
}

/// Verifies a parsed quote. `collateral` selects the full DCAP path.
pub(crate) fn verify(
    q: &Quote,
    collateral: Option<&dcap_qvl::QuoteCollateralV3>,
    policy: &TdxPolicy,
    expected_report_data: Option<&[u8]>,
    now: u64,
) -> Outcome {
    verify_with_root(q, collateral, policy, expected_report_data, now, intel_root())
}

/// [`verify`] against a given root. Production code always passes the pinned Intel root; unit tests pass the
/// root of a forged test hierarchy to prove individual checks.
fn verify_with_root(
    q: &Quote,
    collateral: Option<&dcap_qvl::QuoteCollateralV3>,
    policy: &TdxPolicy,
    expected_report_data: Option<&[u8]>,
    now: u64,
    root: &Cert,
) -> Outcome {
    let mut out = Outcome::new(Platform::Tdx);
    out.measurement = q.body.mr_td.to_vec();
    out.report_data = q.body.report_data.to_vec();
    out.checks.pass(
        "tdx.format",
        format!("quote v{}, {} body", q.version, if q.body.mr_service_td.is_some() { "TD 1.5" } else { "TD 1.0" }),
    );
    let mut advisories = Vec::new();
    let mut refused = false;
    match collateral {
        Some(col) => match dcap::verify(q, col, root, now, &mut out) {
            Some(ids) => advisories = ids,
            // The collateral refused the quote (expired, revoked, no TCB level that matches it...). Whether the quote
            // is genuine is still worth knowing to an operator: its signatures and PCK chain are checked as without
            // collateral and, if they hold, every policy check runs, so the result names the authenticated
            // measurement and every reason, not only the first. The verdict stays a rejection (`tdx.dcap`).
            None => {
                if !verify_offline(q, root, now, &mut out) {
                    return out;
                }
                refused = true;
            }
        },
        None => {
            if !verify_offline(q, root, now, &mut out) {
                return out;
            }
        }
    }
    judge(&mut out, q, policy, expected_report_data, &advisories, refused);
    out
}

/// The policy checks of a quote whose signatures hold. `refused`: the collateral given did not verify (so the TCB
/// level is unknown for that reason, not for want of collateral).
fn judge(
    out: &mut Outcome,
    q: &Quote,
    policy: &TdxPolicy,
    expected_rd: Option<&[u8]>,
    advisories: &[String],
    refused: bool,
) {
    use td_attributes as ta;
    let b = &q.body;
    let c = &mut out.checks;
    match &out.tcb_status {
        Some(s) if s == "Revoked" => c.fail("tdx.tcb_status", "TCB status is Revoked"),
        Some(s) if !policy.accepted_tcb_status.iter().any(|a| a == s) => {
            c.fail("tdx.tcb_status", format!("TCB status {s} is not accepted by the policy ({})", policy.accepted_tcb_status.join(", ")))
        }
        Some(s) => c.pass("tdx.tcb_status", s.clone()),
        None if refused => c.fail("tdx.tcb_status", "the TCB level is unknown: the collateral did not verify (tdx.dcap)"),
        None if policy.require_collateral => c.fail(
            "tdx.tcb_status",
            "no collateral: the TCB level is unknown (pass --collateral, or set tdx.require_collateral = false to accept signatures alone)",
        ),
        None => c.skip("tdx.tcb_status", "no collateral; the policy accepts signatures alone"),
    }
    let bad: Vec<_> = advisories.iter().filter(|a| policy.rejected_advisories.contains(a)).cloned().collect();
    c.record(
        "tdx.advisories",
        if bad.is_empty() { Ok(()) } else { Err(format!("advisories rejected by policy: {}", bad.join(", "))) },
    );
    let attrs = b.td_attributes;
    c.record(
        "tdx.policy.debug",
        if attrs & (ta::DEBUG | ta::TUD_OTHER) != 0 && !policy.allow_debug {
            Err(format!("debug TD (TD_ATTRIBUTES {attrs:#x} sets TUD bits): the host can read its memory"))
        } else {
            Ok(())
        },
    );
    c.record(
        "tdx.policy.sept_ve_disable",
        if attrs & ta::SEPT_VE_DISABLE == 0 && policy.require_sept_ve_disable {
            Err("TD_ATTRIBUTES.SEPT_VE_DISABLE is not set (set tdx.require_sept_ve_disable = false to accept, e.g. for Azure TDX)".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "tdx.policy.attributes",
        if attrs & !(ta::ALLOWED | ta::TUD_OTHER) != 0 {
            Err(format!(
                "TD_ATTRIBUTES {attrs:#x} sets bits outside DEBUG, SEPT_VE_DISABLE, PKS, PERFMON (e.g. MIGRATABLE)"
            ))
        } else {
            Ok(())
        },
    );
    c.record(
        "tdx.policy.xfam",
        if b.xfam & 0b11 != 0b11 || b.xfam & !policy.xfam_allowed != 0 {
            Err(format!("XFAM {:#x} is outside the allowed {:#x} (bits 0 and 1 required)", b.xfam, policy.xfam_allowed))
        } else {
            Ok(())
        },
    );
    c.record(
        "tdx.policy.service_td",
        match b.mr_service_td {
            Some(m) if m != [0; 48] && !policy.allow_service_td => {
                Err("the TD is bound to a service TD (MRSERVICETD is not zero)".into())
            }
            _ => Ok(()),
        },
    );
    for (name, list, value) in [
        ("tdx.policy.mrtd", &policy.mrtd, &b.mr_td),
        ("tdx.policy.rtmr0", &policy.rtmr0, &b.rtmr[0]),
        ("tdx.policy.rtmr1", &policy.rtmr1, &b.rtmr[1]),
        ("tdx.policy.rtmr2", &policy.rtmr2, &b.rtmr[2]),
        ("tdx.policy.rtmr3", &policy.rtmr3, &b.rtmr[3]),
        ("tdx.policy.mrconfigid", &policy.mrconfigid, &b.mr_config_id),
        ("tdx.policy.mrowner", &policy.mrowner, &b.mr_owner),
        ("tdx.policy.mrownerconfig", &policy.mrownerconfig, &b.mr_owner_config),
        ("tdx.policy.mrseam", &policy.mrseam, &b.mr_seam),
    ] {
        if !list.is_empty() {
            c.allow_list(name, list, value);
        }
    }
    if let Some(min) = &policy.min_tee_tcb_svn {
        let low: Vec<String> = (0..16)
            .filter(|&i| b.tee_tcb_svn[i] < min.0[i])
            .map(|i| format!("component {i}: {} < {}", b.tee_tcb_svn[i], min.0[i]))
            .collect();
        c.record(
            "tdx.policy.min_tee_tcb_svn",
            if low.is_empty() { Ok(()) } else { Err(format!("TEE_TCB_SVN below the minimum ({})", low.join(", "))) },
        );
    }
    let want = crate::policy::expected_report_data(expected_rd, &policy.report_data);
    c.report_data("tdx.report_data", &b.report_data, want);
    out.claim(
        "tdx",
        json!({
            "quote_version": q.version,
            "tee_tcb_svn": hex::encode(b.tee_tcb_svn),
            "tee_tcb_svn2": b.tee_tcb_svn2.map(hex::encode),
            "mr_seam": hex::encode(b.mr_seam),
            "mr_signer_seam": hex::encode(b.mr_signer_seam),
            "td_attributes": format!("{:#018x}", b.td_attributes),
            "debug": b.td_attributes & ta::DEBUG != 0,
            "xfam": format!("{:#018x}", b.xfam),
            "mr_td": hex::encode(b.mr_td),
            "mr_config_id": hex::encode(b.mr_config_id),
            "mr_owner": hex::encode(b.mr_owner),
            "mr_owner_config": hex::encode(b.mr_owner_config),
            "rtmr": b.rtmr.iter().map(hex::encode).collect::<Vec<_>>(),
            "mr_service_td": b.mr_service_td.map(hex::encode),
            "advisory_ids": advisories,
        }),
    );
}

/// Checks proven against a forged but self-consistent Intel hierarchy (testdata/forged, test keys): a PCK
/// revoked by the CRL, and each offline check failing on its own.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::CheckStatus;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    const ROOT: &[u8] = include_bytes!("../../testdata/forged/dcap-forged-root.der");
    const QUOTE: &[u8] = include_bytes!("../../testdata/forged/dcap-forged.quote.bin");
    const COLLATERAL: &[u8] = include_bytes!("../../testdata/forged/dcap-forged.collateral.json");
    const REVOKED: &[u8] = include_bytes!("../../testdata/forged/dcap-forged-revoked.collateral.json");
    const PCK_KEY: &str = include_str!("../../testdata/forged/dcap-forged-pck.key.pem");
    /// 2025-07-01, inside the forged collateral's window.
    const NOW: u64 = 1_751_328_000;
    const QE_REPORT_AT: usize = 770;
    const QE_SIG_AT: usize = QE_REPORT_AT + QE_REPORT_LEN;

    fn root() -> Cert {
        Cert::from_der(ROOT, "forged root").unwrap()
    }

    fn failed(out: &Outcome) -> Vec<(String, String)> {
        out.checks
            .list()
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| (c.name.clone(), c.detail.clone().unwrap_or_default()))
            .collect()
    }

    fn offline_policy() -> TdxPolicy {
        TdxPolicy { require_collateral: false, ..TdxPolicy::default() }
    }

    fn offline(quote: &[u8]) -> Vec<(String, String)> {
        let q = Quote::parse(quote).unwrap();
        failed(&verify_with_root(&q, None, &offline_policy(), None, NOW, &root()))
    }

    fn resign_qe_report(quote: &mut [u8]) {
        let der = crate::x509::pem_private_key(PCK_KEY).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new()).unwrap();
        let sig = key.sign(&SystemRandom::new(), &quote[QE_REPORT_AT..QE_SIG_AT]).unwrap();
        quote[QE_SIG_AT..QE_SIG_AT + 64].copy_from_slice(sig.as_ref());
    }

    /// The quote with `rtmr` in its body, re-signed with the forged attestation key (the QE report binds that key,
    /// so the quote stays valid).
    fn with_rtmrs(rtmr: &[[u8; 48]; 4]) -> Vec<u8> {
        let key = crate::x509::pem_private_key(include_str!("../../testdata/forged/dcap-forged-attestation.key.pem"));
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.unwrap(), &SystemRandom::new());
        let mut quote = QUOTE.to_vec();
        let q = Quote::parse(QUOTE).unwrap();
        let at = HEADER_LEN + 328; // RTMR0 in a TD 1.0 body
        assert_eq!(&quote[at..at + 48], &q.body.rtmr[0]);
        for (i, r) in rtmr.iter().enumerate() {
            quote[at + 48 * i..at + 48 * (i + 1)].copy_from_slice(r);
        }
        let sig = key.unwrap().sign(&SystemRandom::new(), &quote[..q.signed_len]).unwrap();
        quote[q.signed_len + 4..q.signed_len + 68].copy_from_slice(sig.as_ref());
        quote
    }

    #[test]
    fn a_real_ccel_replays_to_the_rtmrs_its_td_reported_and_a_changed_event_does_not() {
        // go-eventlog's COS 113 TDX log, and the RTMR0-2 its TD's quote held (ccel/cceventlog_test.go).
        let ccel = include_bytes!("../../testdata/eventlogs/ccel-cos-113-intel-tdx.bin");
        let hex48 = |s: &str| -> [u8; 48] { hex::decode(s).unwrap().try_into().unwrap() };
        let rtmr = [
            hex48("a4de2df23e9611299123ba4359c42a5e578b0f8488bf1bba8ef5606d9ea5d81c97c064b482a5eac537d166bd0f0f752d"),
            hex48("0ee9366c928a77092f55e9e114c7394181fd264699155f0df77d23577618d5f650568a17d379355a07bd846e552f4e20"),
            hex48("4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1"),
            [0; 48],
        ];
        let log = crate::vtpm::eventlog::EventLog::parse_ccel(ccel).unwrap();
        assert_eq!(ccel::replay(&log).unwrap().0, rtmr);

        let quote = with_rtmrs(&rtmr);
        let q = Quote::parse(&quote).unwrap();
        let mut out = verify_with_root(&q, None, &offline_policy(), None, NOW, &root());
        assert!(failed(&out).is_empty(), "{:?}", failed(&out));
        ccel::check_ccel(&mut out, &q, ccel, &[]);
        assert!(failed(&out).is_empty(), "{:?}", failed(&out));
        assert_eq!(out.claims["ccel"]["replay"]["verified"], serde_json::json!([0, 1, 2]));

        // The same log with 0xFF padding after it (the ACPI table's unused space) still replays.
        let mut padded = ccel.to_vec();
        padded.extend([0xFF; 4096]);
        let mut out = verify_with_root(&q, None, &offline_policy(), None, NOW, &root());
        ccel::check_ccel(&mut out, &q, &padded, &[]);
        assert!(failed(&out).is_empty(), "{:?}", failed(&out));

        // A quote whose RTMR1 differs (another kernel): the log does not replay to it.
        let mut other = rtmr;
        other[1][0] ^= 1;
        let quote = with_rtmrs(&other);
        let q = Quote::parse(&quote).unwrap();
        let mut out = verify_with_root(&q, None, &offline_policy(), None, NOW, &root());
        assert!(failed(&out).is_empty(), "the quote itself verifies: {:?}", failed(&out));
        ccel::check_ccel(&mut out, &q, ccel, &[]);
        let f = failed(&out);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].0 == "tdx.ccel" && f[0].1.starts_with("RTMR1:"), "{f:?}");
        // RTMR3 that nothing logged is reported, not accepted silently as explained.
        let mut extended3 = rtmr;
        extended3[3] = [7; 48];
        let log = crate::vtpm::eventlog::EventLog::parse_ccel(ccel).unwrap();
        assert_eq!(ccel::check(&log, &extended3).unwrap().unexplained, vec![3]);
    }

    #[test]
    fn ccel_event_rules_pin_what_each_rtmr_holds() {
        use crate::vtpm::HashAlg;
        let ccel = include_bytes!("../../testdata/eventlogs/ccel-cos-113-intel-tdx.bin");
        let log = crate::vtpm::eventlog::EventLog::parse_ccel(ccel).unwrap();
        let (rtmr, _) = ccel::replay(&log).unwrap();
        let digests = |r: u32, kind: Option<u32>| -> Vec<crate::policy::HexBytes> {
            log.extended(r + 1)
                .filter(|e| kind.is_none_or(|k| e.kind == k))
                .map(|e| crate::policy::HexBytes(e.digests[&HashAlg::Sha384].clone()))
                .collect()
        };
        let apps = crate::vtpm::eventlog::kind_from_name("EV_EFI_BOOT_SERVICES_APPLICATION").unwrap();
        let rule = |rtmr: u32, kind: Option<&str>, digests| crate::policy::RtmrRule {
            rtmr,
            kind: kind.map(str::to_string),
            digests,
        };
        let run = |rules: &[crate::policy::RtmrRule], rtmr: &[[u8; 48]; 4]| {
            let q = Quote::parse(&with_rtmrs(rtmr)).unwrap();
            let mut out = verify_with_root(&q, None, &offline_policy(), None, NOW, &root());
            ccel::check_ccel(&mut out, &q, ccel, rules);
            out
        };
        // The kernel TDVF loaded (RTMR1's applications), RTMR2 event by event, and RTMR3 empty: all hold.
        let kernel = digests(1, Some(apps));
        let good = [
            rule(1, Some("EV_EFI_BOOT_SERVICES_APPLICATION"), kernel.clone()),
            rule(2, None, digests(2, None)),
            rule(3, None, vec![]),
        ];
        assert!(!kernel.is_empty() && !good[1].digests.is_empty(), "the real log loads a kernel and logs RTMR2");
        let out = run(&good, &rtmr);
        assert!(failed(&out).is_empty(), "{:?}", failed(&out));
        let names: Vec<&str> =
            out.checks.list().iter().map(|c| c.name.as_str()).filter(|n| n.starts_with("tdx.events")).collect();
        assert_eq!(
            names,
            ["tdx.events.rtmr1.EV_EFI_BOOT_SERVICES_APPLICATION", "tdx.events.rtmr2", "tdx.events.rtmr3"]
        );
        // One digest changed, one left out, one added: each refused, naming the event.
        let mut changed = good.clone();
        changed[1].digests[0].0[0] ^= 1;
        let f = failed(&run(&changed, &rtmr));
        assert!(f.len() == 1 && f[0].0 == "tdx.events.rtmr2" && f[0].1.starts_with("event 1 of RTMR2"), "{f:?}");
        let mut short = good.clone();
        short[1].digests.pop();
        let f = failed(&run(&short, &rtmr));
        assert!(f.len() == 1 && f[0].1.starts_with("RTMR2 has an event the policy does not list"), "{f:?}");
        let mut long = good.clone();
        long[2].digests.push(crate::policy::HexBytes(vec![0; 48]));
        let f = failed(&run(&long, &rtmr));
        assert!(f.len() == 1 && f[0].1 == "RTMR3 has 0 events, the policy lists 1", "{f:?}");
        // The same log with one of RTMR1's applications logged under another type (types are not measured): the
        // rule on RTMR1's applications no longer holds, since that event could be any code.
        let mut relabelled = log.clone();
        let i = relabelled.events.iter().position(|e| e.pcr == 2 && e.kind == apps).unwrap();
        relabelled.events[i].kind = crate::vtpm::eventlog::kind_from_name("EV_EVENT_TAG").unwrap();
        let err = crate::vtpm::eventlog::select_events("RTMR1", relabelled.extended(2), Some(apps), HashAlg::Sha384);
        assert!(err.unwrap_err().contains("EV_EVENT_TAG"));
        // An RTMR3 that nothing logged but is not zero fails its (empty) rule.
        let mut extended3 = rtmr;
        extended3[3] = [7; 48];
        let f = failed(&run(&good, &extended3));
        assert!(f.len() == 1 && f[0].1.contains("no logged event explains"), "{f:?}");
    }

    #[test]
    fn forged_world_verifies_under_its_own_root() {
        let q = Quote::parse(QUOTE).unwrap();
        let col: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(COLLATERAL).unwrap();
        let out = verify_with_root(&q, Some(&col), &TdxPolicy::default(), None, NOW, &root());
        assert!(failed(&out).is_empty(), "{:?}", failed(&out));
        assert_eq!(out.tcb_status.as_deref(), Some("UpToDate"));
        assert!(offline(QUOTE).is_empty(), "{:?}", offline(QUOTE));
    }

    #[test]
    fn pck_revoked_by_the_crl_is_rejected() {
        let q = Quote::parse(QUOTE).unwrap();
        let col: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(REVOKED).unwrap();
        let out = verify_with_root(&q, Some(&col), &TdxPolicy::default(), None, NOW, &root());
        let f = failed(&out);
        // Refused for the revocation; the quote's signatures are still shown, and the TCB stays unknown.
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].0, "tdx.dcap");
        assert!(f[0].1.contains("CertRevoked"), "{}", f[0].1);
        assert_eq!(f[1].0, "tdx.tcb_status");
    }

    #[test]
    fn forged_world_is_refused_by_the_pinned_root() {
        let q = Quote::parse(QUOTE).unwrap();
        let col: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(COLLATERAL).unwrap();
        let with = verify(&q, Some(&col), &TdxPolicy::default(), None, NOW);
        assert_eq!(failed(&with)[0].0, "tdx.dcap");
        let without = verify(&q, None, &offline_policy(), None, NOW);
        let f = failed(&without);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "tdx.pck_chain");
        assert!(f[0].1.contains("pinned Intel SGX Root CA"), "{}", f[0].1);
    }

    #[test]
    fn quote_signature_covers_header_and_body() {
        for off in [8usize, 48, 48 + 136, 48 + 583] {
            let mut q = QUOTE.to_vec();
            q[off] ^= 1;
            let f = offline(&q);
            assert_eq!(f.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["tdx.quote_signature"], "offset {off}");
        }
    }

    #[test]
    fn qe_report_must_be_signed_by_the_pck() {
        let mut q = QUOTE.to_vec();
        q[QE_REPORT_AT + 10] ^= 1;
        assert_eq!(offline(&q)[0].0, "tdx.qe_report_signature");
    }

    #[test]
    fn qe_report_data_must_bind_the_attestation_key() {
        // The QE auth data is outside the QE report: its signature still verifies, the binding does not.
        let mut q = QUOTE.to_vec();
        q[QE_SIG_AT + 64 + 2] ^= 1;
        assert_eq!(offline(&q)[0].0, "tdx.qe_report_data");
        // A different attestation key (re-signing the QE report would not help: it binds the old key).
        let mut q = QUOTE.to_vec();
        q[700] ^= 1;
        assert_eq!(offline(&q)[0].0, "tdx.qe_report_data");
    }

    #[test]
    fn qe_must_be_intels_td_quoting_enclave() {
        // A QE report with another MRSIGNER, correctly signed by the PCK key.
        let mut q = QUOTE.to_vec();
        q[QE_REPORT_AT + 128] ^= 1;
        resign_qe_report(&mut q);
        assert_eq!(offline(&q).iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["tdx.qe_identity"]);
        // ISVPRODID 1 is the SGX QE, not the TD QE.
        let mut q = QUOTE.to_vec();
        q[QE_REPORT_AT + 256] = 1;
        resign_qe_report(&mut q);
        assert_eq!(offline(&q).iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["tdx.qe_identity"]);
    }

    #[test]
    fn pck_chain_validity_is_checked_at_now() {
        let q = Quote::parse(QUOTE).unwrap();
        // 2033-05-18: the forged PCK leaf (2032) and CA (2033-01-01) have expired.
        let out = verify_with_root(&q, None, &offline_policy(), None, 2_000_000_000, &root());
        let f = failed(&out);
        assert_eq!(f[0].0, "tdx.pck_chain");
        assert!(f[0].1.contains("expired"), "{}", f[0].1);
    }
}
