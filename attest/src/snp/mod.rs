//! AMD SEV-SNP: report parsing and verification.
//!
//! Order matters: fields are read before the signature is checked only to choose the chain (VERSION, SIGNING_KEY,
//! CPUID); every other field is judged only after the P-384 signature over the raw bytes `[0, 0x2A0)` verified
//! against a VCEK/VLEK that chains to the pinned ARK.

pub mod certs;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use serde_json::json;

pub use report::{Product, SigningKey, SnpReport, Tcb};

use crate::policy::{SnpPolicy, Version};
use crate::result::{Outcome, Platform};
use crate::x509::Cert;
use certs::Role;
use report::{platform_info_bits as pi, policy_bits as pb};

/// A VCEK/VLEK whose chain to the pinned ARK has been verified: what later reports need of it.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedLeaf {
    product: Product,
    vlek: bool,
    key: Vec<u8>,
    ext: certs::LeafExtensions,
    /// Intersection of the validity windows of ARK, intermediate and leaf.
    not_before: u64,
    not_after: u64,
}

/// Verified chains keyed by SHA-256 over the fingerprints (SHA-256 of the DER) of leaf, intermediate and ARK, with
/// the product and key kind. Chains change per chip and TCB only, so most reports hit the cache and cost one
/// P-384 verification.
#[derive(Default, Debug)]
pub(crate) struct ChainCache {
    map: Mutex<HashMap<[u8; 32], VerifiedLeaf>>,
}

const CACHE_MAX: usize = 4096;

impl ChainCache {
    fn get(&self, key: &[u8; 32]) -> Option<VerifiedLeaf> {
        self.map.lock().ok()?.get(key).cloned()
    }
    fn put(&self, key: [u8; 32], leaf: VerifiedLeaf) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= CACHE_MAX {
                m.clear();
            }
            m.insert(key, leaf);
        }
    }
}

/// Verifies the chain ARK → ASK/ASVK → VCEK/VLEK. `now` is checked by the caller against the window.
fn verify_chain(
    leaf: &Cert,
    inter: &Cert,
    ark: &Cert,
    pinned: &Cert,
    product: Product,
    vlek: bool,
) -> Result<VerifiedLeaf, String> {
    if ark.der() != pinned.der() {
        return Err(format!("ARK is not AMD's pinned ARK-{}", product.name()));
    }
    let (inter_name, leaf_name) = if vlek { ("ASVK", "VLEK") } else { ("ASK", "VCEK") };
    verify_ca(inter, ark, product, vlek)?;
    if !leaf.is_v3() {
        return Err(format!("{leaf_name} is not an X.509 v3 certificate"));
    }
    if Role::of(leaf) != Some(if vlek { Role::Vlek } else { Role::Vcek }) {
        return Err(format!("leaf has subject CN {:?}, expected SEV-{leaf_name}", leaf.subject_cn()));
    }
    if !leaf.issued_by_name(inter) {
        return Err(format!("{leaf_name} issuer is not the {inter_name} {:?}", inter.subject_cn()));
    }
    leaf.verify_signed_by_rsa_pss_sha384(inter).map_err(|e| format!("{leaf_name} signed by {inter_name}: {e}"))?;
    certs::check_leaf_key(leaf).map_err(|e| format!("{leaf_name} {e}"))?;
    let ext = certs::leaf_extensions(leaf, product, vlek).map_err(|e| format!("{leaf_name} extensions: {e}"))?;
    let windows = [ark.validity(), inter.validity(), leaf.validity()];
    Ok(VerifiedLeaf {
        product,
        vlek,
        key: leaf.public_key_bits().to_vec(),
        ext,
        not_before: windows.iter().map(|w| w.0).max().unwrap_or(0),
        not_after: windows.iter().map(|w| w.1).min().unwrap_or(0),
    })
}

/// ARK → ASK/ASVK checks. The pairs that passed are remembered for the life of the process: AMD's ARKs and
/// intermediates are a handful of constant certificates, so a new chip's VCEK costs one RSA verification.
/// Only successes are cached, keyed by the exact DER of both certificates; the ARK has already been compared
/// with the pin.
fn verify_ca(inter: &Cert, ark: &Cert, product: Product, vlek: bool) -> Result<(), String> {
    static VERIFIED: OnceLock<Mutex<HashSet<[u8; 32]>>> = OnceLock::new();
    let verified = VERIFIED.get_or_init(Default::default);
    let key = crate::sha256(&[ark.fingerprint(), inter.fingerprint()].concat());
    if verified.lock().map(|v| v.contains(&key)).unwrap_or(false) {
        return Ok(());
    }
    let inter_name = if vlek { "ASVK" } else { "ASK" };
    for (c, which) in [(ark, "ARK"), (inter, inter_name)] {
        if !c.is_v3() {
            return Err(format!("{which} is not an X.509 v3 certificate"));
        }
    }
    certs::check_amd_name(ark, "ARK")?;
    certs::check_amd_name(inter, inter_name)?;
    if !ark.is_self_issued() {
        return Err("ARK is not self-issued".into());
    }
    ark.verify_signed_by_rsa_pss_sha384(ark).map_err(|e| format!("ARK self-signature: {e}"))?;
    let want_role = if vlek { Role::Asvk(product) } else { Role::Ask(product) };
    if Role::of(inter) != Some(want_role) {
        return Err(format!(
            "{inter_name} has subject CN {:?}, not the {} {inter_name}",
            inter.subject_cn(),
            product.name()
        ));
    }
    if !inter.issued_by_name(ark) {
        return Err(format!("{inter_name} issuer is not ARK-{}", product.name()));
    }
    inter.verify_signed_by_rsa_pss_sha384(ark).map_err(|e| format!("{inter_name} signed by ARK: {e}"))?;
    if let Ok(mut v) = verified.lock() {
        v.insert(key);
    }
    Ok(())
}

/// Picks the certificates for this report from those supplied (any order) and the built-in intermediates.
struct Selected<'a> {
    leaf: &'a Cert,
    inter: &'a Cert,
    ark: &'a Cert,
}

/// Errors say what is wrong, and whether the leaf is simply missing (so the caller can say where to get it).
fn select<'a>(certs_in: &'a [Cert], product: Product, vlek: bool) -> Result<Selected<'a>, (String, bool)> {
    let roots = certs::roots(product);
    let (leaf_role, inter_role) =
        if vlek { (Role::Vlek, Role::Asvk(product)) } else { (Role::Vcek, Role::Ask(product)) };
    let mut leaf = None;
    let mut inter = None;
    let mut ark = None;
    for c in certs_in {
        match Role::of(c) {
            Some(r) if r == leaf_role => {
                if leaf.is_some_and(|l: &Cert| l.der() != c.der()) {
                    let kind = if vlek { "VLEK" } else { "VCEK" };
                    return Err((format!("two different {kind} certificates supplied"), false));
                }
                leaf = Some(c);
            }
            Some(r) if r == inter_role => inter = Some(c),
            Some(Role::Ark(p)) if p == product => ark = Some(c),
            // Certificates of other roles or products (a bundle may carry both chains) are not used.
            _ => {}
        }
    }
    let leaf = leaf.ok_or_else(|| {
        let msg = {
            if vlek {
                "the report is signed by a VLEK, but no VLEK certificate (CN=SEV-VLEK) was supplied".to_string()
            } else {
                "the report is signed by a VCEK, but no VCEK certificate (CN=SEV-VCEK) was supplied".to_string()
            }
        };
        (msg, true)
    })?;
    Ok(Selected {
        leaf,
        inter: inter.unwrap_or(if vlek { &roots.asvk } else { &roots.ask }),
        ark: ark.unwrap_or(&roots.ark),
    })
}

fn product_of(report: &SnpReport, certs_in: &[Cert]) -> Result<Product, String> {
    if let Some((fam, model, step)) = report.cpuid() {
        return Product::from_cpuid(fam, model).ok_or_else(|| {
            format!("CPUID family {fam:#x} model {model:#x} stepping {step} is not a supported AMD EPYC generation")
        });
    }
    // Version 2 reports carry no CPUID: the leaf certificate's issuer names the product (the signature check
    // that follows proves the choice).
    let mut found = None;
    for c in certs_in {
        if matches!(Role::of(c), Some(Role::Vcek | Role::Vlek)) {
            let cn = c.issuer_cn().unwrap_or_default();
            let p =
                cn.strip_prefix("SEV-VLEK-").or_else(|| cn.strip_prefix("SEV-")).and_then(Product::from_product_name);
            found = found.or(p);
        }
    }
    found.ok_or_else(|| {
        format!(
            "a version 2 report names no CPU generation and no VCEK/VLEK was supplied: fetch the VCEK from {} (or, on Genoa, {})",
            kds_hint(report, Product::Milan),
            kds_hint(report, Product::Genoa)
        )
    })
}

/// KDS URL to fetch the VCEK for this report (for the error message when it is missing).
fn kds_hint(report: &SnpReport, product: Product) -> String {
    let tcb = Tcb::decode(report.reported_tcb(), product);
    let hwid = if product == Product::Turin { &report.chip_id()[..8] } else { report.chip_id() };
    let fmc = tcb.fmc.map(|f| format!("&fmcSPL={f}")).unwrap_or_default();
    format!(
        "https://kdsintf.amd.com/vcek/v1/{}/{}?blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}{fmc}",
        product.name(),
        hex::encode(hwid),
        tcb.bl,
        tcb.tee,
        tcb.snp,
        tcb.ucode
    )
}

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

/// The checks on authenticated fields: structure, bindings to the certificate, and policy.
fn judge(out: &mut Outcome, report: &SnpReport, leaf: &VerifiedLeaf, policy: &SnpPolicy, expected_rd: Option<&[u8]>) {
    let product = leaf.product;
    let reported = Tcb::decode(report.reported_tcb(), product);
    let current = Tcb::decode(report.current_tcb(), product);
    let committed = Tcb::decode(report.committed_tcb(), product);
    let launch = Tcb::decode(report.launch_tcb(), product);
    let c = &mut out.checks;
    let p = report.policy();

    // Structure.
    let mut structural = report.nonzero_reserved();
    if p & pb::RESERVED_ONE == 0 {
        structural.push("guest policy bit 17 (reserved, must be one) is zero".into());
    }
    if p & pb::MBZ != 0 {
        structural.push(format!("guest policy {p:#x} sets reserved bits 63:26"));
    }
    if report.signer_info() & !0x1F != 0 {
        structural.push(format!("signer info {:#x} sets reserved bits", report.signer_info()));
    }
    if let (Some((fam, model, _)), Some(from_cert)) =
        (report.cpuid(), Product::from_product_name(&leaf.ext.product_name))
    {
        if Product::from_cpuid(fam, model) != Some(from_cert) {
            structural.push("CPUID and certificate productName disagree".into());
        }
    }
    c.record("snp.reserved_fields", if structural.is_empty() { Ok(()) } else { Err(structural.join("; ")) });

    // Bindings of the report to its certificate.
    c.record(
        "snp.tcb_binding",
        if report.reported_tcb() == leaf.ext.tcb_raw {
            Ok(())
        } else {
            Err(format!("REPORTED_TCB ({reported}) differs from the certificate's TCB ({})", leaf.ext.tcb))
        },
    );
    match &leaf.ext.hwid {
        None => c.skip("snp.chip_id_binding", format!("VLEK issued to {}", leaf.ext.csp_id.as_deref().unwrap_or("?"))),
        Some(_) if report.chip_id().iter().all(|&b| b == 0) && report.chip_id_masked() => {
            c.skip("snp.chip_id_binding", "CHIP_ID is masked by the guest (MASK_CHIP_ID)")
        }
        Some(hwid) => {
            let chip = report.chip_id();
            let ok = chip[..hwid.len()] == hwid[..] && chip[hwid.len()..].iter().all(|&b| b == 0);
            c.record(
                "snp.chip_id_binding",
                if ok {
                    Ok(())
                } else {
                    Err("CHIP_ID differs from the VCEK's hwID (the VCEK belongs to another chip)".into())
                },
            );
        }
    }

    // Policy.
    c.record(
        "snp.policy.debug",
        if p & pb::DEBUG != 0 && !policy.allow_debug {
            Err("guest policy allows debugging (DEBUG=1): the host can read and write guest memory".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.migrate_ma",
        if p & pb::MIGRATE_MA != 0 && !policy.allow_migrate_ma {
            Err("guest policy allows a migration agent (MIGRATE_MA=1)".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.smt",
        if !policy.allow_smt && (p & pb::SMT != 0 || report.platform_info() & pi::SMT_EN != 0) {
            Err("SMT is allowed by the guest policy or enabled on the platform, and the policy forbids SMT".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.vmpl",
        if report.vmpl() == policy.vmpl {
            Ok(())
        } else {
            Err(format!("VMPL {} is not the required {}", report.vmpl(), policy.vmpl))
        },
    );
    let mut tcb_problems = Vec::new();
    if !reported.at_least(&policy.min_tcb) {
        tcb_problems.push(format!("REPORTED_TCB ({reported}) is below the minimum ({})", policy.min_tcb));
    }
    if !launch.at_least(&policy.min_tcb) {
        tcb_problems.push(format!("LAUNCH_TCB ({launch}) is below the minimum ({})", policy.min_tcb));
    }
    if !current.at_least(&reported) {
        tcb_problems.push(format!("REPORTED_TCB ({reported}) is above CURRENT_TCB ({current})"));
    }
    c.record("snp.policy.min_tcb", if tcb_problems.is_empty() { Ok(()) } else { Err(tcb_problems.join("; ")) });
    let provisional =
        report.committed_tcb() != report.current_tcb() || report.committed_version() != report.current_version();
    c.record(
        "snp.policy.committed_tcb",
        if provisional && !policy.allow_provisional_firmware {
            Err(format!("provisional firmware: COMMITTED_TCB ({committed}) differs from CURRENT_TCB ({current}) or the committed firmware version differs from the current one"))
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.guest_svn",
        if report.guest_svn() >= policy.min_guest_svn {
            Ok(())
        } else {
            Err(format!("GUEST_SVN {} is below {}", report.guest_svn(), policy.min_guest_svn))
        },
    );
    if policy.required_mitigations != 0 {
        let r = match (report.launch_mit_vector(), report.current_mit_vector()) {
            (Some(l), Some(cur))
                if l & policy.required_mitigations == policy.required_mitigations
                    && cur & policy.required_mitigations == policy.required_mitigations =>
            {
                Ok(())
            }
            (Some(l), Some(cur)) => Err(format!(
                "mitigation vectors (launch {l:#x}, current {cur:#x}) lack required bits {:#x}",
                policy.required_mitigations
            )),
            _ => Err(format!(
                "report version {} has no mitigation vectors, and the policy requires {:#x}",
                report.version(),
                policy.required_mitigations
            )),
        };
        c.record("snp.policy.mitigations", r);
    }
    let abi = Version { major: (p >> 8) as u8, minor: p as u8 };
    let mut version_problems = Vec::new();
    if let Some(min) = policy.min_abi {
        if abi < min {
            version_problems.push(format!("the guest policy's ABI {abi} is below {min}"));
        }
    }
    if let Some(min) = policy.min_firmware {
        for (which, (major, minor, _)) in
            [("current", report.current_version()), ("committed", report.committed_version())]
        {
            let have = Version { major, minor };
            if have < min {
                version_problems.push(format!("{which} firmware {have} is below {min}"));
            }
        }
    }
    if policy.min_abi.is_some() || policy.min_firmware.is_some() {
        c.record(
            "snp.policy.versions",
            if version_problems.is_empty() { Ok(()) } else { Err(version_problems.join("; ")) },
        );
    }
    if policy.require_single_socket {
        c.record(
            "snp.policy.single_socket",
            if p & pb::SINGLE_SOCKET != 0 {
                Ok(())
            } else {
                Err("the guest policy does not require a single socket".into())
            },
        );
    }
    for (name, list, value) in [
        ("snp.policy.family_id", &policy.family_ids, report.family_id()),
        ("snp.policy.image_id", &policy.image_ids, report.image_id()),
        ("snp.policy.id_key_digest", &policy.id_key_digests, report.id_key_digest()),
        ("snp.policy.author_key_digest", &policy.author_key_digests, report.author_key_digest()),
    ] {
        if !list.is_empty() {
            c.allow_list(name, list, value);
        }
    }
    c.allow_list("snp.policy.measurement", &policy.measurements, report.measurement());
    c.allow_list("snp.policy.host_data", &policy.host_data, report.host_data());
    let want = crate::policy::expected_report_data(expected_rd, &policy.report_data);
    c.report_data("snp.report_data", report.report_data(), want);

    let signing = if leaf.vlek { "vlek" } else { "vcek" };
    out.claim(
        "snp",
        json!({
            "version": report.version(),
            "product": product.name(),
            "signing_key": signing,
            "guest_svn": report.guest_svn(),
            "policy": format!("{p:#x}"),
            "debug": p & pb::DEBUG != 0,
            "vmpl": report.vmpl(),
            "platform_info": format!("{:#x}", report.platform_info()),
            "family_id": hex::encode(report.family_id()),
            "image_id": hex::encode(report.image_id()),
            "host_data": hex::encode(report.host_data()),
            "id_key_digest": hex::encode(report.id_key_digest()),
            "author_key_digest": hex::encode(report.author_key_digest()),
            "abi": format!("{}.{}", (p >> 8) as u8, p as u8),
            "single_socket": p & pb::SINGLE_SOCKET != 0,
            "report_id": hex::encode(report.report_id()),
            "chip_id": hex::encode(report.chip_id()),
            "reported_tcb": reported,
            "current_tcb": current,
            "committed_tcb": committed,
            "launch_tcb": launch,
            "firmware": { "current": fmt_ver(report.current_version()), "committed": fmt_ver(report.committed_version()) },
            "launch_mit_vector": report.launch_mit_vector(),
            "current_mit_vector": report.current_mit_vector(),
            "csp_id": leaf.ext.csp_id,
        }),
    );
}

fn fmt_ver((major, minor, build): (u8, u8, u8)) -> String {
    format!("{major}.{minor}.{build}")
}

/// The checks that run after the signature, each shown to fire on its own. The signature binds every field, so
/// real evidence cannot isolate them: these tests call [`judge`] directly on a genuine report with one field
/// changed, as if AMD's firmware had signed it.
#[cfg(test)]
mod tests {
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
