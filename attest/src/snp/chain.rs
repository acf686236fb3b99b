//! The chain: which product and key kind a report names, the certificates supplied for it, and the verified chain
//! ARK → ASK/ASVK → VCEK/VLEK to the pinned ARK, cached by content. Nothing here reads a report field other than
//! those that choose the chain (VERSION, SIGNING_KEY, CPUID).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use crate::x509::Cert;

use super::certs::{self, Role};
use super::report::{Product, SnpReport, Tcb};

/// A VCEK/VLEK whose chain to the pinned ARK has been verified: what later reports need of it.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedLeaf {
    pub(super) product: Product,
    pub(super) vlek: bool,
    pub(super) key: Vec<u8>,
    pub(super) ext: certs::LeafExtensions,
    /// Intersection of the validity windows of ARK, intermediate and leaf.
    pub(super) not_before: u64,
    pub(super) not_after: u64,
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
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<VerifiedLeaf> {
        self.map.lock().ok()?.get(key).cloned()
    }
    pub(super) fn put(&self, key: [u8; 32], leaf: VerifiedLeaf) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= CACHE_MAX {
                m.clear();
            }
            m.insert(key, leaf);
        }
    }
}

/// Verifies the chain ARK → ASK/ASVK → VCEK/VLEK. `now` is checked by the caller against the window.
pub(super) fn verify_chain(
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
pub(super) fn verify_ca(inter: &Cert, ark: &Cert, product: Product, vlek: bool) -> Result<(), String> {
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
pub(super) struct Selected<'a> {
    pub(super) leaf: &'a Cert,
    pub(super) inter: &'a Cert,
    pub(super) ark: &'a Cert,
}

/// Errors say what is wrong, and whether the leaf is simply missing (so the caller can say where to get it).
pub(super) fn select<'a>(certs_in: &'a [Cert], product: Product, vlek: bool) -> Result<Selected<'a>, (String, bool)> {
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

pub(super) fn product_of(report: &SnpReport, certs_in: &[Cert]) -> Result<Product, String> {
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
pub(super) fn kds_hint(report: &SnpReport, product: Product) -> String {
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
