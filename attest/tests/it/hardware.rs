//! On a machine with a TEE (an SEV-SNP or TDX guest), collect real evidence and verify it. Compiles everywhere;
//! where there is no TEE it says so and checks that collection refuses cleanly instead.

use sigil_attest::{collect, Endorsements, Platform, Policy, Verifier};

#[test]
fn collect_and_verify_this_machines_evidence() {
    let rd = [0x5a; 64];
    let Some(platform) = collect::detect() else {
        eprintln!("no TEE on this machine: hardware collection not exercised");
        let e = collect::collect(&rd).unwrap_err();
        assert!(e.to_string().contains("--sim") || e.to_string().contains("sev-guest"), "{e}");
        return;
    };
    let bundle = collect::collect(&rd).expect("collect evidence from this machine's TEE");
    assert_eq!(bundle.platform, platform);
    // A policy for whatever cloud this runs on; what matters here is that the hardware signed our nonce.
    let policy =
        "[snp]\nallow_provisional_firmware = true\n[tdx]\nrequire_collateral = false\nrequire_sept_ve_disable = false";
    let v = Verifier::new(Policy::from_toml(policy).unwrap());
    let now = sigil_primitives::clock::now_secs();
    let e = Endorsements { expected_report_data: Some(rd.to_vec()), ..Default::default() };
    let r = v.verify(&bundle.encode().unwrap(), &e, now).unwrap();
    assert_eq!(r.report_data, hex::encode(rd));
    if platform == Platform::SevSnp && bundle.certs.is_empty() {
        eprintln!("the host supplied no VCEK: the chain cannot be checked offline here; reasons: {:?}", r.reasons);
        return;
    }
    let signature_checks = ["snp.report_signature", "tdx.quote_signature"];
    assert!(
        r.checks
            .iter()
            .any(|c| signature_checks.contains(&c.name.as_str()) && c.status == sigil_attest::CheckStatus::Pass),
        "{:?}",
        r.reasons
    );
}
