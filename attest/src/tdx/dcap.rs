//! The path with collateral: `dcap-qvl` verifies the whole DCAP chain (PCK chain and CRLs, TCB info, QE identity,
//! TDX module identity, signatures) against the pinned root and yields the TCB status and advisories.

use crate::result::Outcome;
use crate::x509::Cert;

use super::Quote;

/// Verifies `q` with Intel collateral; the advisory ids on success, `None` (with the failure recorded) otherwise.
pub(super) fn verify(
    q: &Quote,
    collateral: &dcap_qvl::QuoteCollateralV3,
    root: &Cert,
    now: u64,
    out: &mut Outcome,
) -> Option<Vec<String>> {
    // dcap-qvl checks everything cryptographic and the TCB; its TD-attribute checks for debug and service TDs are
    // disabled here so that Sigil's policy (`judge`) decides, and names, them.
    let verifier = dcap_qvl::verify::QuoteVerifier::new(root.der().to_vec()).allow_debug(true).allow_service_td(true);
    match verifier.verify(&q.raw, collateral, now) {
        Ok(rep) => {
            out.checks.pass(
                "tdx.dcap",
                "quote, QE, PCK chain, CRLs, TCB info, QE identity and TDX module verified by dcap-qvl".to_string(),
            );
            out.tcb_status = Some(rep.status.clone());
            Some(rep.advisory_ids.clone())
        }
        Err(e) => {
            out.checks.fail("tdx.dcap", format!("{e:#}"));
            None
        }
    }
}
