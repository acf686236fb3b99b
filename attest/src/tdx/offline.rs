//! The path without collateral: the quote signature, the QE report signature and its binding to the attestation
//! key, the PCK chain to the pinned Intel SGX Root CA and the QE's signer. The TCB level stays unknown
//! (`tcb_status: null`); the policy decides whether that is enough.

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use crate::result::Outcome;
use crate::x509::{pem_blocks, Cert};

use super::{Quote, INTEL_QE_VENDOR_ID, INTEL_TD_QE_MRSIGNER, INTEL_TD_QE_PROD_ID};

fn p256_point(xy: &[u8; 64]) -> [u8; 65] {
    let mut k = [4u8; 65];
    k[1..].copy_from_slice(xy);
    k
}

/// Signatures and the PCK chain, without collateral.
pub(super) fn verify_offline(q: &Quote, root: &Cert, now: u64, out: &mut Outcome) -> bool {
    let c = &mut out.checks;
    if q.qe_vendor_id != INTEL_QE_VENDOR_ID {
        c.fail("tdx.qe_vendor", format!("QE vendor ID {} is not Intel's", hex::encode(q.qe_vendor_id)));
        return false;
    }
    c.pass("tdx.qe_vendor", None);
    // PCK chain: leaf ← Platform/Processor CA ← pinned root.
    let chain = match pck_chain(q) {
        Ok(ch) => ch,
        Err(e) => {
            c.fail("tdx.pck_chain", e);
            return false;
        }
    };
    let r = (|| {
        let (leaf, inter) = (&chain[0], &chain[1]);
        if let Some(supplied_root) = chain.get(2) {
            if supplied_root.der() != root.der() {
                return Err("the chain's root is not the pinned Intel SGX Root CA".to_string());
            }
        }
        for (cert, which) in [(leaf, "PCK leaf"), (inter, "PCK CA")] {
            if !cert.is_v3() {
                return Err(format!("{which} is not X.509 v3"));
            }
        }
        let inter_cn = inter.subject_cn().unwrap_or_default();
        if inter_cn != "Intel SGX PCK Platform CA" && inter_cn != "Intel SGX PCK Processor CA" {
            return Err(format!("intermediate CN {inter_cn:?} is not an Intel SGX PCK CA"));
        }
        if leaf.subject_cn().as_deref() != Some("Intel SGX PCK Certificate") {
            return Err(format!("leaf CN {:?} is not \"Intel SGX PCK Certificate\"", leaf.subject_cn()));
        }
        if !inter.issued_by_name(root) || !leaf.issued_by_name(inter) {
            return Err("issuer names do not link leaf → CA → root".into());
        }
        inter.verify_signed_by_ecdsa_p256(root).map_err(|e| format!("PCK CA signed by root: {e}"))?;
        leaf.verify_signed_by_ecdsa_p256(inter).map_err(|e| format!("PCK leaf signed by CA: {e}"))?;
        for (cert, which) in [(root, "Intel SGX Root CA"), (inter, "PCK CA"), (leaf, "PCK leaf")] {
            cert.check_validity(now, which)?;
        }
        Ok(())
    })();
    if !c.record("tdx.pck_chain", r) {
        return false;
    }
    // QE report signed by the PCK key.
    let leaf_key = chain[0].public_key_bits();
    if UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, leaf_key).verify(&q.qe_report, &q.qe_report_signature).is_err()
    {
        c.fail("tdx.qe_report_signature", "the QE report is not signed by the PCK key");
        return false;
    }
    c.pass("tdx.qe_report_signature", None);
    let (mrsigner, prod_id, isv_svn, qe_rd) = q.qe_fields();
    let mut h = Vec::with_capacity(64 + q.qe_auth_data.len());
    h.extend_from_slice(&q.attestation_key);
    h.extend_from_slice(&q.qe_auth_data);
    let want = crate::sha256(&h);
    if qe_rd[..32] != want || qe_rd[32..].iter().any(|&b| b != 0) {
        c.fail("tdx.qe_report_data", "QE REPORTDATA is not SHA-256(attestation key ‖ QE auth data) ‖ 0³²");
        return false;
    }
    c.pass("tdx.qe_report_data", None);
    if mrsigner != INTEL_TD_QE_MRSIGNER || prod_id != INTEL_TD_QE_PROD_ID {
        c.fail(
            "tdx.qe_identity",
            format!("QE MRSIGNER {} / ISVPRODID {prod_id} is not Intel's TD quoting enclave", hex::encode(mrsigner)),
        );
        return false;
    }
    c.pass(
        "tdx.qe_identity",
        format!("Intel QE, ISVPRODID {prod_id}, ISVSVN {isv_svn} (TCB of the QE not evaluated without collateral)"),
    );
    if UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &p256_point(&q.attestation_key)[..])
        .verify(&q.raw[..q.signed_len], &q.signature)
        .is_err()
    {
        c.fail("tdx.quote_signature", "the quote is not signed by the attestation key");
        return false;
    }
    c.pass("tdx.quote_signature", None);
    true
}

pub(super) fn pck_chain(q: &Quote) -> Result<Vec<Cert>, String> {
    if q.cert_type != 5 {
        return Err(format!(
            "certification data type {} is not 5 (PCK chain): supply collateral with the PCK chain",
            q.cert_type
        ));
    }
    let text = q.cert_data.split(|&b| b == 0).next().unwrap_or_default();
    let ders = pem_blocks(text)?;
    let certs = ders
        .iter()
        .map(|d| Cert::from_der(d, "PCK chain").map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.len() < 2 || certs.len() > 3 {
        return Err(format!("PCK chain has {} certificates, expected leaf, CA and optionally root", certs.len()));
    }
    Ok(certs)
}
