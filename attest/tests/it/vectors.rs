//! Every real vector in `testdata/` gets the verdict it deserves, for the stated reason; and each check fails
//! the evidence when its input is tampered with (bit flips, swapped certificates, wrong times, wrong data).

use sigil_attest::{x509::parse_cert_file, AttestationResult, CheckStatus, Endorsements, Policy, Verifier};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn certs(rels: &[&str]) -> Endorsements {
    let mut e = Endorsements::default();
    for r in rels {
        e.certs.extend(parse_cert_file(&file(r), r).unwrap());
    }
    e
}

/// Unix seconds of a UTC date `YYYY-MM-DD`.
pub(crate) fn at(date: &str) -> u64 {
    let p: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m, d) = (p[0], p[1], p[2]);
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    ((era * 146_097 + doe - 719_468) * 86_400) as u64
}

/// A policy from `toml` that, unless the text says otherwise, accepts evidence that proves only the firmware: these
/// tests are about the hardware chain and its fields (the `workload` tests below are about the rest).
fn verifier(toml: &str) -> Verifier {
    let mut p = Policy::from_toml(toml).unwrap();
    if !toml.contains("[workload]") {
        p.workload.allow_unmeasured = true;
    }
    Verifier::new(p)
}

/// The default policy, except that it accepts firmware-only evidence (see [`verifier`]).
fn lab() -> Policy {
    let mut p = Policy::default();
    p.workload.allow_unmeasured = true;
    p
}

fn run(v: &Verifier, evidence: &[u8], e: &Endorsements, now: u64) -> AttestationResult {
    v.verify(evidence, e, now).unwrap()
}

/// The names of the failed checks.
fn failed(r: &AttestationResult) -> Vec<&str> {
    r.checks.iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name.as_str()).collect()
}

fn passed(r: &AttestationResult, name: &str) -> bool {
    r.checks.iter().any(|c| c.name == name && c.status == CheckStatus::Pass)
}

fn assert_accepted(r: &AttestationResult) {
    assert!(r.accepted(), "expected accepted, got reasons {:?}", r.reasons);
    assert!(r.reasons.is_empty());
    assert_eq!(r.ear_status, "affirming");
}

fn assert_rejected_for(r: &AttestationResult, checks: &[&str]) {
    assert!(!r.accepted(), "expected rejection for {checks:?}");
    assert_eq!(failed(r), checks, "reasons: {:?}", r.reasons);
    assert_eq!(r.ear_status, "contraindicated");
}

const VIRTEE: &str = "sev-snp/virtee-milan-v2.report.hex";
const VIRTEE_VCEK: &str = "sev-snp/virtee-milan-v2.vcek.der";

fn virtee_raw() -> Vec<u8> {
    hex::decode(String::from_utf8(file(VIRTEE)).unwrap().trim()).unwrap()
}

// ---------------------------------------------------------------- SEV-SNP: verdicts on real evidence

#[test]
fn snp_milan_v2_hex_is_accepted_with_every_binding_checked() {
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01"));
    assert_accepted(&r);
    for c in [
        "snp.cert_chain",
        "snp.cert_validity",
        "snp.report_signature",
        "snp.tcb_binding",
        "snp.chip_id_binding",
        "snp.reserved_fields",
    ] {
        assert!(passed(&r, c), "{c} did not pass");
    }
    assert_eq!(
        r.measurement,
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert_eq!(r.claims["snp"]["product"], "Milan");
    assert_eq!(r.claims["snp"]["reported_tcb"]["ucode"], 115);
    assert_eq!(r.tcb_status, None);
}

#[test]
fn snp_go_sev_guest_report_is_a_debug_guest() {
    let e = certs(&["sev-snp/gsg-milan-v2.vcek.der"]);
    let ev = file("sev-snp/gsg-milan-v2.report.bin");
    assert_rejected_for(&run(&Verifier::new(lab()), &ev, &e, at("2025-01-01")), &["snp.policy.debug"]);
    assert_accepted(&run(&verifier("[snp]\nallow_debug = true"), &ev, &e, at("2025-01-01")));
}

#[test]
fn snp_genoa_v5_is_accepted_inside_its_vcek_window_only() {
    let e = certs(&["sev-snp/oak-genoa-v5.vcek.der"]);
    let ev = file("sev-snp/oak-genoa-v5.report.bin");
    let v = Verifier::new(lab());
    let r = run(&v, &ev, &e, at("2025-09-01"));
    assert_accepted(&r);
    assert_eq!(r.claims["snp"]["product"], "Genoa");
    assert_eq!(r.claims["snp"]["launch_mit_vector"], 1);
    // Before the VCEK was issued: the cached chain still has its window checked.
    assert_rejected_for(&run(&v, &ev, &e, at("2025-08-01")), &["snp.cert_validity"]);
}

#[test]
fn snp_turin_v5_uses_the_turin_tcb_layout_and_8_byte_chip_id() {
    let r = run(
        &Verifier::new(lab()),
        &file("sev-snp/oak-turin-v5.report.bin"),
        &certs(&["sev-snp/oak-turin-v5.vcek.der"]),
        at("2025-09-01"),
    );
    assert_accepted(&r);
    assert_eq!(r.claims["snp"]["product"], "Turin");
    assert_eq!(r.claims["snp"]["reported_tcb"]["fmc"], 0);
    assert_eq!(r.claims["snp"]["reported_tcb"]["snp"], 2);
    assert_eq!(r.claims["snp"]["reported_tcb"]["ucode"], 71);
    assert!(passed(&r, "snp.chip_id_binding"));
}

#[test]
fn snp_aws_vlek_report_needs_a_policy_for_vmpl_1_and_provisional_firmware() {
    let e = certs(&["sev-snp/trustee-aws-milan-vlek-v3.vlek.der"]);
    let ev = file("sev-snp/trustee-aws-milan-vlek-v3.report.bin");
    let now = at("2025-06-01");
    assert_rejected_for(&run(&Verifier::new(lab()), &ev, &e, now), &["snp.policy.vmpl", "snp.policy.committed_tcb"]);
    let v = verifier("[snp]\nvmpl = 1\nallow_provisional_firmware = true");
    let r = run(&v, &ev, &e, now);
    assert_accepted(&r);
    assert_eq!(r.claims["snp"]["signing_key"], "vlek");
    assert_eq!(r.claims["snp"]["csp_id"], "CN=cc-us-east-2.amazonaws.com");
    // The VLEK is valid for one year only.
    assert_rejected_for(&run(&v, &ev, &e, at("2026-01-01")), &["snp.cert_validity"]);
}

#[test]
fn snp_vlek_report_with_a_vcek_is_refused() {
    // The report says VLEK; a VCEK (even a genuine one) is the wrong kind of key.
    let r = run(
        &Verifier::new(lab()),
        &file("sev-snp/trustee-aws-milan-vlek-v3.report.bin"),
        &certs(&[VIRTEE_VCEK]),
        at("2025-06-01"),
    );
    assert_rejected_for(&r, &["snp.cert_chain"]);
    assert!(r.reasons[0].contains("no VLEK certificate"), "{}", r.reasons[0]);
}

#[test]
fn snp_azure_hcl_report_binds_the_runtime_claims() {
    let e = certs(&["sev-snp-azure/azure-genoa-v3.vcek.pem"]);
    let r = run(&Verifier::new(lab()), &file("sev-snp-azure/azure-genoa-v3.hcl.bin"), &e, at("2025-06-01"));
    assert_accepted(&r);
    assert!(passed(&r, "snp.report_data"), "the claims hash must be checked against REPORT_DATA");
    assert_eq!(r.claims["azure_runtime_claims"]["keys"][0]["kid"], "HCLAkPub");
    // Azure vTPM evidence JSON carries the same report and its VCEK.
    let r = run(
        &Verifier::new(lab()),
        &file("sev-snp-azure/azure-genoa-v3.evidence.json"),
        &Endorsements::default(),
        at("2025-06-01"),
    );
    assert_accepted(&r);
}

#[test]
fn snp_azure_runtime_claims_tampering_breaks_the_binding() {
    let e = certs(&["sev-snp-azure/azure-genoa-v3.vcek.pem"]);
    let mut hcl = file("sev-snp-azure/azure-genoa-v3.hcl.bin");
    // Inside the JSON: change one character of the HCLAkPub modulus without breaking the JSON.
    let pos = hcl.windows(3).position(|w| w == b"\"n\"").expect("modulus field") + 6;
    hcl[pos] = if hcl[pos] == b'A' { b'B' } else { b'A' };
    let r = run(&Verifier::new(lab()), &hcl, &e, at("2025-06-01"));
    assert_rejected_for(&r, &["snp.report_data"]);
}

// ---------------------------------------------------------------- SEV-SNP: tampering

#[test]
fn snp_one_bit_flips_in_signed_bytes_are_rejected() {
    let v = Verifier::new(lab());
    let e = certs(&[VIRTEE_VCEK]);
    // Guest SVN, policy, VMPL, report data, measurement, host data, reported TCB, chip id, committed TCB,
    // the last signed byte, and signature r and s.
    for off in [0x04usize, 0x08, 0x30, 0x50, 0x8F, 0x90, 0xC0, 0x180, 0x1A0, 0x1DF, 0x1E0, 0x29F, 0x2A0, 0x2E8] {
        let mut ev = virtee_raw();
        ev[off] ^= 0x01;
        let r = run(&v, &ev, &e, at("2025-01-01"));
        assert!(!r.accepted(), "flip at {off:#x} accepted");
        assert!(
            failed(&r).iter().any(|c| *c == "snp.report_signature" || *c == "snp.signing_key"),
            "flip at {off:#x}: {:?}",
            r.reasons
        );
    }
}

#[test]
fn snp_signature_wider_than_384_bits_is_rejected() {
    let mut ev = virtee_raw();
    ev[0x2A0 + 50] = 1;
    let r = run(&Verifier::new(lab()), &ev, &certs(&[VIRTEE_VCEK]), at("2025-01-01"));
    assert_rejected_for(&r, &["snp.report_signature"]);
}

#[test]
fn snp_vcek_of_another_chip_is_rejected() {
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &certs(&["sev-snp/gsg-milan-v2.vcek.der"]), at("2025-01-01"));
    assert_rejected_for(&r, &["snp.report_signature"]);
}

#[test]
fn snp_vcek_of_another_product_is_rejected() {
    // A Milan VCEK for a Genoa report (CPUID says Genoa): it is not under the Genoa ASK.
    let ev = file("sev-snp/oak-genoa-v5.report.bin");
    let r = run(&Verifier::new(lab()), &ev, &certs(&[VIRTEE_VCEK]), at("2025-09-01"));
    assert_rejected_for(&r, &["snp.cert_chain"]);
    // A v2 report has no CPUID: the product follows the certificate, and the signature decides.
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &certs(&["sev-snp/oak-genoa-v5.vcek.der"]), at("2025-09-01"));
    assert_rejected_for(&r, &["snp.report_signature"]);
}

#[test]
fn snp_missing_vcek_names_where_to_fetch_it() {
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &Endorsements::default(), at("2025-01-01"));
    assert_rejected_for(&r, &["snp.product"]);
    assert!(r.reasons[0].contains("https://kdsintf.amd.com/vcek/v1/Milan/d49554ec"), "{}", r.reasons[0]);
    let ev = file("sev-snp/oak-genoa-v5.report.bin");
    let r = run(&Verifier::new(lab()), &ev, &Endorsements::default(), at("2025-09-01"));
    assert_rejected_for(&r, &["snp.cert_chain"]);
    assert!(r.reasons[0].contains("https://kdsintf.amd.com/vcek/v1/Genoa/d2421d97"), "{}", r.reasons[0]);
    assert!(r.reasons[0].contains("blSPL=10&teeSPL=0&snpSPL=25&ucodeSPL=84"), "{}", r.reasons[0]);
}

#[test]
fn snp_supplied_ark_must_be_the_pinned_one() {
    // A Milan ARK with one bit changed in its public key: not AMD's root, whatever it claims to be.
    let mut ark = parse_cert_file(&file("amd-certs/milan.ark.pem"), "ark").unwrap().remove(0).der().to_vec();
    let pos = ark.len() / 2;
    ark[pos] ^= 0x01;
    let mut e = certs(&[VIRTEE_VCEK]);
    e.certs.push(sigil_attest::x509::Cert::from_der(&ark, "ark").unwrap());
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &e, at("2025-01-01"));
    assert_rejected_for(&r, &["snp.cert_chain"]);
    assert!(r.reasons[0].contains("pinned ARK-Milan"), "{}", r.reasons[0]);
}

#[test]
fn snp_tampered_vcek_certificate_is_rejected() {
    let original = file(VIRTEE_VCEK);
    // Flip one bit at many places in the certificate: in its signed part, its signature, its key.
    for pos in (20..original.len()).step_by(97) {
        let mut vcek = original.clone();
        vcek[pos] ^= 0x10;
        let Ok(certs) = parse_cert_file(&vcek, "vcek") else {
            continue; // the flip broke the DER itself: also a refusal
        };
        let e = Endorsements { certs, ..Default::default() };
        let r = run(&Verifier::new(lab()), &file(VIRTEE), &e, at("2025-01-01"));
        assert!(!r.accepted(), "VCEK with bit flipped at {pos} accepted");
    }
}

#[test]
fn snp_expected_report_data_is_enforced() {
    let v = Verifier::new(lab());
    let mut e = certs(&[VIRTEE_VCEK]);
    let rd = virtee_raw()[0x50..0x90].to_vec();
    e.expected_report_data = Some(rd.clone());
    assert_accepted(&run(&v, &file(VIRTEE), &e, at("2025-01-01")));
    let mut wrong = rd;
    wrong[63] ^= 1;
    e.expected_report_data = Some(wrong);
    assert_rejected_for(&run(&v, &file(VIRTEE), &e, at("2025-01-01")), &["snp.report_data"]);
}

#[test]
fn snp_policy_allow_lists_and_minimums_are_enforced() {
    let ev = file(VIRTEE);
    let e = certs(&[VIRTEE_VCEK]);
    let now = at("2025-01-01");
    let m_other = format!("[snp]\nmeasurements = [\"{}\"]", "11".repeat(48));
    let h_other = format!("[snp]\nhost_data = [\"{}\"]", "11".repeat(32));
    let f_other = format!("[snp]\nfamily_ids = [\"{}\"]", "11".repeat(16));
    let i_other = format!("[snp]\nimage_ids = [\"{}\"]", "11".repeat(16));
    let k_other = format!("[snp]\nid_key_digests = [\"{}\"]", "11".repeat(48));
    let cases: [(&str, &str); 14] = [
        (&m_other, "snp.policy.measurement"),
        (&h_other, "snp.policy.host_data"),
        ("[snp]\nmin_tcb = { bl = 3, tee = 0, snp = 9, ucode = 0 }", "snp.policy.min_tcb"),
        ("[snp]\nmin_tcb = { ucode = 116 }", "snp.policy.min_tcb"),
        ("[snp]\nmin_guest_svn = 1", "snp.policy.guest_svn"),
        ("[snp]\nallow_smt = false", "snp.policy.smt"),
        ("[snp]\nvmpl = 2", "snp.policy.vmpl"),
        ("[snp]\nrequired_mitigations = 1", "snp.policy.mitigations"),
        ("[snp]\nrequire_single_socket = true", "snp.policy.single_socket"),
        ("[snp]\nmin_abi = \"0.1\"", "snp.policy.versions"),
        ("[snp]\nmin_firmware = \"1.53\"", "snp.policy.versions"),
        (&f_other, "snp.policy.family_id"),
        (&i_other, "snp.policy.image_id"),
        (&k_other, "snp.policy.id_key_digest"),
    ];
    for (toml, check) in cases {
        assert_rejected_for(&run(&verifier(toml), &ev, &e, now), &[check]);
    }
    let m = hex::encode(&virtee_raw()[0x90..0xC0]);
    let raw = virtee_raw();
    let (fam, img, idk) =
        (hex::encode(&raw[0x10..0x20]), hex::encode(&raw[0x20..0x30]), hex::encode(&raw[0xE0..0x110]));
    let ok = format!(
        "[snp]\nmeasurements = [\"{m}\"]\nmin_tcb = {{ bl = 3, snp = 8, ucode = 115 }}\nmin_firmware = \"1.52\"\nmin_abi = \"0.0\"\nfamily_ids = [\"{fam}\"]\nimage_ids = [\"{img}\"]\nid_key_digests = [\"{idk}\"]"
    );
    assert_accepted(&run(&verifier(&ok), &ev, &e, now));
    assert!(Policy::from_toml("[snp]\nmeasurements = [\"00\"]").is_err(), "a 1-byte measurement is refused");
    assert!(Policy::from_toml("[snp]\nmin_firmware = \"1\"").is_err(), "versions are major.minor");
}

#[test]
fn snp_truncated_and_padded_reports_are_refused() {
    let v = Verifier::new(lab());
    let e = certs(&[VIRTEE_VCEK]);
    let raw = virtee_raw();
    assert!(v.verify(&raw[..1183], &e, at("2025-01-01")).is_err());
    let mut long = raw.clone();
    long.push(0);
    assert!(v.verify(&long, &e, at("2025-01-01")).is_err());
    let mut v9 = raw;
    v9[0] = 9;
    assert!(v.verify(&v9, &e, at("2025-01-01")).is_err());
}

// ---------------------------------------------------------------- TDX

const B0: &str = "tdx/dcapqvl-b0c06f-v4.quote.bin";
const B0_COL: &str = "tdx/dcapqvl-b0c06f-v4.collateral.json";

fn collateral(rel: &str) -> Endorsements {
    Endorsements { collateral: Some(Endorsements::parse_collateral(&file(rel)).unwrap()), ..Default::default() }
}

#[test]
fn tdx_v4_with_collateral_is_up_to_date() {
    let r = run(&Verifier::new(lab()), &file(B0), &collateral(B0_COL), at("2025-07-01"));
    assert_accepted(&r);
    assert_eq!(r.tcb_status.as_deref(), Some("UpToDate"));
    assert_eq!(
        r.measurement,
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert!(passed(&r, "tdx.dcap"));
}

#[test]
fn tdx_collateral_outside_its_window_is_rejected() {
    let r = run(&Verifier::new(lab()), &file(B0), &collateral(B0_COL), at("2025-09-01"));
    // Expired collateral: the quote's own signatures still hold, so the TCB is unknown for that reason alone.
    assert_rejected_for(&r, &["tdx.dcap", "tdx.tcb_status"]);
    assert!(r.reasons[0].contains("expired"), "{:?}", r.reasons);
}

#[test]
fn tdx_tcb_status_must_be_accepted_by_policy() {
    let v = verifier("[tdx]\naccepted_tcb_status = [\"OutOfDate\"]");
    let r = run(&v, &file(B0), &collateral(B0_COL), at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.tcb_status"]);
    assert!(Policy::from_toml("[tdx]\naccepted_tcb_status = [\"Revoked\"]").is_err());
}

#[test]
fn tdx_without_collateral_is_rejected_by_default_and_checked_offline() {
    let ev = file(B0);
    let r = run(&Verifier::new(lab()), &ev, &Endorsements::default(), at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.tcb_status"]);
    for c in
        ["tdx.pck_chain", "tdx.qe_report_signature", "tdx.qe_report_data", "tdx.qe_identity", "tdx.quote_signature"]
    {
        assert!(passed(&r, c), "{c}");
    }
    let r = run(&verifier("[tdx]\nrequire_collateral = false"), &ev, &Endorsements::default(), at("2025-07-01"));
    assert_accepted(&r);
    assert_eq!(r.tcb_status, None);
}

#[test]
fn tdx_v5_td15_quote_matches_no_tcb_level() {
    let q = file("tdx/dcapqvl-90c06f-v5-notcb.quote.bin");
    let r =
        run(&Verifier::new(lab()), &q, &collateral("tdx/dcapqvl-90c06f-v5-notcb.collateral.json"), at("2026-03-01"));
    // Refused by its collateral, the quote is still shown genuine (signatures and PCK chain, as without
    // collateral), and the policy is still applied: an operator sees the authenticated measurement and every
    // reason, not only the first.
    assert_rejected_for(&r, &["tdx.dcap", "tdx.tcb_status"]);
    assert!(r.reasons[0].contains("No matching TCB level"), "{}", r.reasons[0]);
    assert!(r.reasons[1].contains("the collateral did not verify"), "{}", r.reasons[1]);
    for c in ["tdx.pck_chain", "tdx.qe_identity", "tdx.quote_signature", "tdx.policy.debug", "tdx.report_data"] {
        assert!(r.checks.iter().any(|x| x.name == c), "{c} ran: {:?}", r.checks);
    }
    assert_eq!(r.measurement.len(), 96, "MRTD");
    let other = "00".repeat(48);
    let strict = verifier(&format!("[tdx]\nmrtd = [\"{other}\"]"));
    let col = collateral("tdx/dcapqvl-90c06f-v5-notcb.collateral.json");
    let r = run(&strict, &q, &col, at("2026-03-01"));
    assert_rejected_for(&r, &["tdx.dcap", "tdx.tcb_status", "tdx.policy.mrtd"]);
    // A quote whose signature does not hold gets no policy checks: nothing in it is authenticated.
    let mut forged = q.clone();
    forged[200] ^= 1; // in the signed TD body
    let r = run(&strict, &forged, &col, at("2026-03-01"));
    assert!(!r.accepted());
    assert!(!r.checks.iter().any(|x| x.name == "tdx.policy.mrtd"), "{:?}", r.checks);
    // Offline, its signatures are genuine: only the TCB is unknown.
    let r = run(&verifier("[tdx]\nrequire_collateral = false"), &q, &Endorsements::default(), at("2026-03-01"));
    assert_accepted(&r);
    assert!(r.claims["tdx"]["mr_service_td"].is_string(), "TD 1.5 body parsed");
}

#[test]
fn sgx_quote_is_not_a_tdx_quote() {
    let e = collateral("tdx/dcapqvl-sgx-v3.collateral.json");
    let r = run(&Verifier::new(lab()), &file("tdx/dcapqvl-sgx-v3.quote.bin"), &e, at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.format"]);
    assert!(r.reasons[0].contains("not a TDX quote"));
}

#[test]
fn tdx_debug_td_is_rejected() {
    let ev = file("tdx/trustee-debug-50806f-v4.quote.bin");
    let r = run(&verifier("[tdx]\nrequire_collateral = false"), &ev, &Endorsements::default(), at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.policy.debug"]);
    let lax = verifier("[tdx]\nrequire_collateral = false\nallow_debug = true");
    assert_accepted(&run(&lax, &ev, &Endorsements::default(), at("2025-07-01")));
}

#[test]
fn tdx_azure_quote_lacks_sept_ve_disable_and_binds_hcl_claims() {
    let ev = file("tdx/azure-00806f05-v4.quote.bin");
    let lax = "[tdx]\nrequire_collateral = false";
    assert_rejected_for(
        &run(&verifier(lax), &ev, &Endorsements::default(), at("2025-07-01")),
        &["tdx.policy.sept_ve_disable"],
    );
    let v = verifier("[tdx]\nrequire_collateral = false\nrequire_sept_ve_disable = false");
    assert_accepted(&run(&v, &ev, &Endorsements::default(), at("2025-07-01")));
    // As a bundle with its HCL report: REPORT_DATA must equal SHA-256 of the runtime claims.
    let mut b = sigil_attest::Bundle::new(sigil_attest::Platform::Tdx, ev.clone(), vec![]);
    b.azure_hcl = Some(serde_bytes::ByteBuf::from(file("tdx/azure-00806f05-v4.hcl.bin")));
    let r = run(&v, &b.encode().unwrap(), &Endorsements::default(), at("2025-07-01"));
    assert_accepted(&r);
    assert!(passed(&r, "tdx.report_data"));
    assert_eq!(r.claims["azure_runtime_claims"]["keys"][0]["kid"], "HCLAkPub");
    // The SNP VM's claims do not match this TD's REPORT_DATA.
    b.azure_hcl = Some(serde_bytes::ByteBuf::from(file("sev-snp-azure/azure-genoa-v3.hcl.bin")));
    assert_rejected_for(
        &run(&v, &b.encode().unwrap(), &Endorsements::default(), at("2025-07-01")),
        &["tdx.report_data"],
    );
}

#[test]
fn tdx_one_bit_flips_are_rejected() {
    let v = verifier("[tdx]\nrequire_collateral = false");
    let base = file(B0);
    // Header, TD body (MRTD, RTMR, REPORT_DATA), quote signature, attestation key, QE report, QE signature,
    // QE auth data, and inside the PCK chain PEM.
    for off in [10usize, 48 + 136, 48 + 330, 48 + 583, 636, 700, 770, 900, 1160, 1240, 1300, 2500] {
        let mut ev = base.clone();
        ev[off] ^= 0x01;
        if let Ok(r) = v.verify(&ev, &Endorsements::default(), at("2025-07-01")) {
            assert!(!r.accepted(), "flip at {off} accepted");
        }
    }
}

#[test]
fn tdx_padding_must_be_zero_and_truncation_is_refused() {
    let v = verifier("[tdx]\nrequire_collateral = false");
    let mut ev = file(B0);
    assert_eq!(ev.len(), 5006, "vector carries 70 bytes of zero padding");
    assert_accepted(&run(&v, &ev, &Endorsements::default(), at("2025-07-01")));
    *ev.last_mut().unwrap() = 1;
    assert_rejected_for(&run(&v, &ev, &Endorsements::default(), at("2025-07-01")), &["tdx.format"]);
    let ev = file(B0);
    assert_rejected_for(&run(&v, &ev[..4000], &Endorsements::default(), at("2025-07-01")), &["tdx.format"]);
}

#[test]
fn tdx_expected_report_data_and_measurement_allow_lists() {
    let ev = file(B0);
    let e = collateral(B0_COL);
    let other = "00".repeat(48);
    let r = run(&verifier(&format!("[tdx]\nmrtd = [\"{other}\"]")), &ev, &e, at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.policy.mrtd"]);
    let r = run(&verifier(&format!("[tdx]\nrtmr0 = [\"{other}\"]")), &ev, &e, at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.policy.rtmr0"]);
    let r = run(&verifier(&format!("[tdx]\nmrseam = [\"{other}\"]")), &ev, &e, at("2025-07-01"));
    assert_rejected_for(&r, &["tdx.policy.mrseam"]);
    // TEE_TCB_SVN is 06 01 03 00...: a minimum of 07 in component 0 fails, 06 passes.
    let min = |first: &str| format!("[tdx]\nmin_tee_tcb_svn = \"{first}{}\"", "00".repeat(15));
    assert_rejected_for(&run(&verifier(&min("07")), &ev, &e, at("2025-07-01")), &["tdx.policy.min_tee_tcb_svn"]);
    assert_accepted(&run(&verifier(&min("06")), &ev, &e, at("2025-07-01")));
    let mut e2 = e.clone();
    e2.expected_report_data = Some(vec![0; 64]);
    assert_rejected_for(&run(&Verifier::new(lab()), &ev, &e2, at("2025-07-01")), &["tdx.report_data"]);
}

// ---------------------------------------------------------------- sim and bundles

#[test]
fn sim_evidence_is_refused_by_default_and_accepted_when_allowed() {
    let b = sigil_attest::collect::collect_sim([7; 48], [9; 64], [0; 32]).unwrap();
    let bytes = b.encode().unwrap();
    let r = run(&Verifier::new(lab()), &bytes, &Endorsements::default(), 0);
    assert_rejected_for(&r, &["sim.policy.allow"]);
    let r = run(&verifier("[sim]\nallow = true"), &bytes, &Endorsements::default(), 0);
    assert_accepted(&r);
    assert_eq!(r.platform, sigil_attest::Platform::Sim);
    assert_eq!(r.claims["sim"]["insecure"], true);
    assert_eq!(r.report_data, "09".repeat(64));
    // A flipped bit anywhere in the signed body or the signature.
    for pos in 20..b.evidence.len() {
        let mut evid = b.evidence.to_vec();
        evid[pos] ^= 1;
        if let Ok(r) = verifier("[sim]\nallow = true").verify(&evid, &Endorsements::default(), 0) {
            assert!(!r.accepted(), "flip at {pos} accepted");
        }
    }
}

#[test]
fn sim_evidence_with_a_validity_window_is_refused_after_it() {
    let b = sigil_attest::collect::collect_sim_until([7; 48], [9; 64], [0; 32], Some(1_000)).unwrap();
    let bytes = b.encode().unwrap();
    let v = verifier("[sim]\nallow = true");
    let r = run(&v, &bytes, &Endorsements::default(), 1_000);
    assert_accepted(&r);
    assert_eq!(r.claims["sim"]["not_after"], 1_000);
    let r = run(&v, &bytes, &Endorsements::default(), 1_001);
    assert_rejected_for(&r, &["sim.validity"]);
    assert!(r.reasons.iter().any(|x| x.contains("expired at 1970-01-01")), "{:?}", r.reasons);
    // Without the window, no time limit.
    let open = sigil_attest::collect::collect_sim([7; 48], [9; 64], [0; 32]).unwrap().encode().unwrap();
    assert_accepted(&run(&v, &open, &Endorsements::default(), u64::MAX / 2));
}

#[test]
fn bundle_round_trips_and_verifies_like_its_parts() {
    let vcek = parse_cert_file(&file(VIRTEE_VCEK), "vcek").unwrap().remove(0);
    let b = sigil_attest::Bundle::new(sigil_attest::Platform::SevSnp, virtee_raw(), vec![vcek.der().to_vec()]);
    let bytes = b.encode().unwrap();
    assert_eq!(sigil_attest::Bundle::decode(&bytes).unwrap(), b);
    let v = Verifier::new(lab());
    assert_accepted(&run(&v, &bytes, &Endorsements::default(), at("2025-01-01")));
    // Hex-encoded bundles are read too.
    assert_accepted(&run(&v, hex::encode(&bytes).as_bytes(), &Endorsements::default(), at("2025-01-01")));
    // A bundle that lies about its platform.
    let liar = sigil_attest::Bundle::new(sigil_attest::Platform::Tdx, virtee_raw(), vec![]);
    assert_rejected_for(&run(&v, &liar.encode().unwrap(), &Endorsements::default(), 0), &["bundle.platform"]);
    // Trailing bytes after the CBOR.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(sigil_attest::Bundle::decode(&trailing).is_err());
}

#[test]
fn results_encode_as_json_and_cbor() {
    let r = run(&Verifier::new(lab()), &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    for k in [
        "verdict",
        "platform",
        "measurement",
        "report_data",
        "tcb_status",
        "reasons",
        "checks",
        "eat_profile",
        "ear.status",
    ] {
        assert!(json.get(k).is_some(), "{k} missing");
    }
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["platform"], "sev-snp");
    assert_eq!(AttestationResult::from_cbor(&r.to_cbor().unwrap()).unwrap(), r);
}

#[test]
fn unknown_input_is_an_error_not_a_verdict() {
    let v = Verifier::new(lab());
    assert!(v.verify(b"", &Endorsements::default(), 0).is_err());
    assert!(v.verify(b"hello world", &Endorsements::default(), 0).is_err());
    assert!(v.verify(&[0u8; 100], &Endorsements::default(), 0).is_err());
}

#[test]
fn default_policy_text_matches_the_default_policy() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.default.toml")).unwrap();
    assert_eq!(Policy::from_toml(&text).unwrap(), Policy::default());
    assert!(Policy::from_toml("[snp]\nallow_debugg = true").is_err(), "typos must not pass silently");
}

#[test]
fn bundle_keys_may_come_in_any_order() {
    use ciborium::Value;
    let vcek = file(VIRTEE_VCEK);
    // Keys sorted (as a deterministic CBOR encoder would), the format key last.
    let map = Value::Map(vec![
        (Value::Text("certs".into()), Value::Array(vec![Value::Bytes(vcek)])),
        (Value::Text("evidence".into()), Value::Bytes(virtee_raw())),
        (Value::Text("platform".into()), Value::Text("sev-snp".into())),
        (Value::Text("sigil-evidence".into()), Value::Integer(1.into())),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&map, &mut bytes).unwrap();
    assert_accepted(&run(&Verifier::new(lab()), &bytes, &Endorsements::default(), at("2025-01-01")));
}

#[test]
fn the_same_vcek_twice_is_fine_two_different_ones_are_not() {
    let v = Verifier::new(lab());
    let twice = certs(&[VIRTEE_VCEK, VIRTEE_VCEK]);
    assert_accepted(&run(&v, &file(VIRTEE), &twice, at("2025-01-01")));
    let two = certs(&[VIRTEE_VCEK, "sev-snp/gsg-milan-v2.vcek.der"]);
    let r = run(&v, &file(VIRTEE), &two, at("2025-01-01"));
    assert_rejected_for(&r, &["snp.cert_chain"]);
    assert!(!r.reasons[0].contains("kdsintf"), "{}", r.reasons[0]);
}

#[test]
fn azure_hcl_is_refused_outside_tdx_bundles() {
    let vcek = file(VIRTEE_VCEK);
    let mut b = sigil_attest::Bundle::new(sigil_attest::Platform::SevSnp, virtee_raw(), vec![vcek]);
    b.azure_hcl = Some(serde_bytes::ByteBuf::from(file("tdx/azure-00806f05-v4.hcl.bin")));
    let r = run(&Verifier::new(lab()), &b.encode().unwrap(), &Endorsements::default(), at("2025-01-01"));
    assert_rejected_for(&r, &["bundle.azure_hcl"]);
}

#[test]
fn tcb_minimums_refuse_typos_and_fmc_applies_to_turin_only() {
    assert!(Policy::from_toml("[snp]\nmin_tcb = { bl = 1, ucod = 250 }").is_err());
    let fmc = verifier("[snp]\nmin_tcb = { fmc = 1 }");
    // Milan has no FMC: the minimum does not apply.
    assert_accepted(&run(&fmc, &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01")));
    // The Turin report has fmc = 0.
    let turin = run(
        &fmc,
        &file("sev-snp/oak-turin-v5.report.bin"),
        &certs(&["sev-snp/oak-turin-v5.vcek.der"]),
        at("2025-09-01"),
    );
    assert_rejected_for(&turin, &["snp.policy.min_tcb"]);
}

#[test]
fn malformed_evidence_errors_say_it_once() {
    let e = Verifier::new(lab()).verify(b"zz not evidence", &Endorsements::default(), 0).unwrap_err();
    let shown = format!("{e}");
    assert!(shown.starts_with("malformed evidence: unrecognised evidence format"), "{shown}");
    assert!(std::error::Error::source(&e).is_none(), "the cause is in the message, not repeated as a source");
}

#[test]
fn azure_tdx_vtpm_evidence_json_is_read() {
    // The trustee az-tdx-vtpm shape, built from the two Azure TDX vectors.
    let mut json = serde_json::json!({
        "version": 0,
        "hcl_report": file("tdx/azure-00806f05-v4.hcl.bin"),
        "td_quote": file("tdx/azure-00806f05-v4.quote.bin"),
    });
    let bytes = serde_json::to_vec(&json).unwrap();
    let v = verifier("[tdx]\nrequire_collateral = false\nrequire_sept_ve_disable = false");
    let r = run(&v, &bytes, &Endorsements::default(), at("2025-07-01"));
    assert_accepted(&r);
    assert!(passed(&r, "tdx.report_data"), "the runtime claims binding is checked");
    assert_eq!(r.claims["azure_runtime_claims"]["keys"][0]["kid"], "HCLAkPub");
    // A vTPM quote that is there is verified: an empty one is not a quote.
    json["tpm_quote"] = serde_json::json!({ "signature": [], "message": [], "pcrs": [] });
    let r = run(&v, &serde_json::to_vec(&json).unwrap(), &Endorsements::default(), at("2025-07-01"));
    assert_rejected_for(&r, &["vtpm.format"]);
}

// ---------------------------------------------------------------- workload: what the evidence proves about the code

fn workload_status(r: &AttestationResult) -> (CheckStatus, String) {
    let c = r.checks.iter().find(|c| c.name == "workload.measured").expect("a workload.measured check");
    (c.status, c.detail.clone().unwrap_or_default())
}

#[test]
fn firmware_only_evidence_is_refused_by_default_and_says_unmeasured() {
    // A real SNP report, every hardware check passing: its MEASUREMENT pins nothing the policy knows to be the code.
    let strict = Verifier::new(Policy::default());
    let r = run(&strict, &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01"));
    assert_rejected_for(&r, &["workload.measured"]);
    assert_eq!(r.claims["workload"]["established_by"], "unmeasured");
    assert!(workload_status(&r).1.contains("proves the firmware, not the code"), "{:?}", r.reasons);
    // Pinned, but declared (by default) to cover the firmware only, as a cloud's launch digest does.
    let m = r.measurement.clone();
    let pinned = format!("[snp]\nmeasurements = [\"{m}\"]\n");
    assert_rejected_for(
        &run(&verifier(&format!("{pinned}[workload]\n")), &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01")),
        &["workload.measured"],
    );
    // Declared to cover the workload (a direct boot with kernel hashes): the launch digest establishes it.
    let r = run(
        &verifier(&format!("{pinned}measurements_cover = \"workload\"\n")),
        &file(VIRTEE),
        &certs(&[VIRTEE_VCEK]),
        at("2025-01-01"),
    );
    assert_accepted(&r);
    assert_eq!(
        r.claims["workload"],
        serde_json::json!({ "established_by": "launch_digest", "values": { "measurement": m } })
    );
    assert_eq!(workload_status(&r).0, CheckStatus::Pass);
    // Another pinned measurement fails its own check; the workload is not judged on evidence that failed.
    let other = format!("[snp]\nmeasurements = [\"{}\"]\nmeasurements_cover = \"workload\"\n", "ab".repeat(48));
    let r = run(&verifier(&other), &file(VIRTEE), &certs(&[VIRTEE_VCEK]), at("2025-01-01"));
    assert_rejected_for(&r, &["snp.policy.measurement"]);
    assert_eq!(workload_status(&r).0, CheckStatus::Skipped);
    assert!(r.claims.get("workload").is_none(), "no workload claim on evidence that failed");
    // A pod that accepts firmware-only evidence says so, and the verdict still names it.
    let r = run(
        &verifier("[workload]\nallow_unmeasured = true\n"),
        &file(VIRTEE),
        &certs(&[VIRTEE_VCEK]),
        at("2025-01-01"),
    );
    assert_accepted(&r);
    assert_eq!(r.claims["workload"]["established_by"], "unmeasured");
    assert_eq!(workload_status(&r).0, CheckStatus::Skipped);
    // The declaration needs something to declare.
    assert!(Policy::from_toml("[snp]\nmeasurements_cover = \"workload\"\n").is_err());
    assert!(Policy::from_toml(&format!("{pinned}measurements_cover = \"kernel\"\n")).is_err());
}

#[test]
fn tdx_rtmr1_and_rtmr2_establish_the_workload() {
    let lab_result = run(&Verifier::new(lab()), &file(B0), &collateral(B0_COL), at("2025-07-01"));
    let rtmr = |i: usize| lab_result.claims["tdx"]["rtmr"][i].as_str().unwrap().to_string();
    let strict = Verifier::new(Policy::default());
    assert_rejected_for(&run(&strict, &file(B0), &collateral(B0_COL), at("2025-07-01")), &["workload.measured"]);
    // MRTD alone (the TD's firmware) does not; RTMR1 alone (the kernel) does not: the initrd and command line are in
    // RTMR2.
    let mrtd = format!("[tdx]\nmrtd = [\"{}\"]\n[workload]\n", lab_result.measurement);
    assert_rejected_for(
        &run(&verifier(&mrtd), &file(B0), &collateral(B0_COL), at("2025-07-01")),
        &["workload.measured"],
    );
    let pinned = format!("mrtd = [\"{}\"]\n", lab_result.measurement);
    let one = format!("[tdx]\n{pinned}rtmr1 = [\"{}\"]\n[workload]\n", rtmr(1));
    assert_rejected_for(
        &run(&verifier(&one), &file(B0), &collateral(B0_COL), at("2025-07-01")),
        &["workload.measured"],
    );
    // RTMR1 and RTMR2 without MRTD: firmware nothing pins could leave them unmeasured and the kernel extend them.
    let no_mrtd = format!("[tdx]\nrtmr1 = [\"{}\"]\nrtmr2 = [\"{}\"]\n[workload]\n", rtmr(1), rtmr(2));
    assert_rejected_for(
        &run(&verifier(&no_mrtd), &file(B0), &collateral(B0_COL), at("2025-07-01")),
        &["workload.measured"],
    );
    let both = format!("[tdx]\n{pinned}rtmr1 = [\"{}\"]\nrtmr2 = [\"{}\"]\n[workload]\n", rtmr(1), rtmr(2));
    let r = run(&verifier(&both), &file(B0), &collateral(B0_COL), at("2025-07-01"));
    assert_accepted(&r);
    assert_eq!(
        r.claims["workload"],
        serde_json::json!({ "established_by": "rtmr", "values": { "rtmr1": rtmr(1), "rtmr2": rtmr(2) } })
    );
}

#[test]
fn sim_measurements_establish_a_simulated_workload() {
    let bytes = sigil_attest::collect::collect_sim([7; 48], [9; 64], [0; 32]).unwrap().encode().unwrap();
    let any = verifier("[sim]\nallow = true\n[workload]\n");
    assert_rejected_for(&run(&any, &bytes, &Endorsements::default(), 0), &["workload.measured"]);
    let pinned = verifier(&format!("[sim]\nallow = true\nmeasurements = [\"{}\"]\n[workload]\n", "07".repeat(48)));
    let r = run(&pinned, &bytes, &Endorsements::default(), 0);
    assert_accepted(&r);
    assert_eq!(r.claims["workload"]["established_by"], "launch_digest");
    assert_eq!(r.claims["workload"]["values"]["simulated"], true);
}

#[test]
fn a_bundles_ccel_is_replayed_against_its_verified_quote_and_its_rules_need_it() {
    use serde_bytes::ByteBuf;
    let ccel = file("eventlogs/ccel-cos-113-intel-tdx.bin");
    let mut b = sigil_attest::Bundle::new(sigil_attest::Platform::Tdx, file(B0), vec![]);
    b.collateral = Some(String::from_utf8(file(B0_COL)).unwrap());
    let verify = |b: &sigil_attest::Bundle, v: &Verifier| {
        run(v, &b.encode().unwrap(), &Endorsements::default(), at("2025-07-01"))
    };
    // Without a CCEL the quote verifies; with another TD's CCEL (a COS VM's), the replay does not reach its RTMRs.
    assert_accepted(&verify(&b, &Verifier::new(lab())));
    b.ccel = Some(ByteBuf::from(ccel.clone()));
    let r = verify(&b, &Verifier::new(lab()));
    assert_rejected_for(&r, &["tdx.ccel"]);
    assert!(r.reasons[0].contains("the CCEL replays to"), "{:?}", r.reasons);
    // A CCEL that does not parse.
    b.ccel = Some(ByteBuf::from(vec![0; 64]));
    assert_rejected_for(&verify(&b, &Verifier::new(lab())), &["tdx.ccel"]);
    // Event rules make the CCEL mandatory.
    b.ccel = None;
    let r = verify(&b, &verifier("[tdx]\nevents = [{ rtmr = 3, digests = [] }]\n"));
    assert_rejected_for(&r, &["tdx.events"]);
    // A CCEL belongs in TDX bundles only.
    let vcek = parse_cert_file(&file(VIRTEE_VCEK), "vcek").unwrap().remove(0);
    let mut snp = sigil_attest::Bundle::new(sigil_attest::Platform::SevSnp, virtee_raw(), vec![vcek.der().to_vec()]);
    snp.ccel = Some(ByteBuf::from(ccel));
    let r = run(&Verifier::new(lab()), &snp.encode().unwrap(), &Endorsements::default(), at("2025-01-01"));
    assert_rejected_for(&r, &["bundle.ccel"]);
}

#[test]
fn tdx_event_rules_parse_strictly_and_pin_the_workload_only_with_rtmr1_and_rtmr2() {
    let d = |b: &str| format!("\"{}\"", b.repeat(48));
    let policy = |rules: &str| Policy::from_toml(&format!("[tdx]\nevents = [{rules}]\n"));
    for bad in [
        "{ rtmr = 4, digests = [] }",
        "{ rtmr = 1, digests = [\"00\"] }",
        "{ rtmr = 1, kind = \"EV_NOPE\", digests = [] }",
        "{ rtmr = 2, digests = [] }, { rtmr = 2, digests = [] }",
        "{ rtmr = 2, digests = [], extra = 1 }",
    ] {
        assert!(policy(bad).is_err(), "{bad}");
    }
    let pins = |rules: &str| {
        assert!(!policy(rules).unwrap().tdx.pins_workload(), "without MRTD: {rules}");
        let with_mrtd = format!("[tdx]\nmrtd = [{}]\nevents = [{rules}]\n", d("aa"));
        Policy::from_toml(&with_mrtd).unwrap().tdx.pins_workload()
    };
    let kernel = format!("{{ rtmr = 1, kind = \"EV_EFI_BOOT_SERVICES_APPLICATION\", digests = [{}] }}", d("11"));
    let cmdline = format!("{{ rtmr = 2, digests = [{}] }}", d("22"));
    assert!(pins(&format!("{kernel}, {cmdline}")));
    assert!(!pins(&kernel), "RTMR2 (command line and initrd) is not pinned");
    assert!(!pins(&cmdline), "RTMR1 (the kernel) is not pinned");
    assert!(!pins(&format!("{{ rtmr = 1, kind = \"EV_SEPARATOR\", digests = [{}] }}, {cmdline}", d("11"))));
    assert!(!pins("{ rtmr = 1, digests = [] }, { rtmr = 2, digests = [] }"), "rules that list nothing pin nothing");
    // Adding no rule leaves the policy digest of existing policies as it was.
    assert_eq!(Policy::from_toml("[tdx]\nevents = []\n").unwrap().digest(), Policy::default().digest());
}
