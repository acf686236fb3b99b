//! vTPM evidence: Azure's real quote (signed by `HCLAkPub`, which the SNP report binds), real event logs replayed
//! and compared with tpm2-tools, and a quote made by a real TPM (swtpm) through Sigil's own client over a real
//! log's measurements, verified end to end. Every check is shown failing on a flipped or swapped value.

use std::collections::BTreeMap;
use std::process::Command;

use serde_bytes::ByteBuf;
use sigil_attest::sim::{SimClaims, SimEvidence};
use sigil_attest::tpm::Tpm;
use sigil_attest::vtpm::eventlog::{self, EventLog};
use sigil_attest::vtpm::quote::{self, AkPublic, Quoted, Signature};
use sigil_attest::vtpm::{HashAlg, PcrBanks, VtpmEvidence};
use sigil_attest::{AttestationResult, Bundle, CheckStatus, Endorsements, Platform, Policy, Verifier};

use crate::swtpm::{serial, tempdir, Swtpm};
use crate::vectors::at;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn status(r: &AttestationResult, name: &str) -> CheckStatus {
    r.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name} in {:#?}", r.checks)).status
}

fn failed(r: &AttestationResult, name: &str) -> String {
    let c = r.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name} in {:#?}", r.checks));
    assert_eq!(c.status, CheckStatus::Fail, "{name} should fail: {:#?}", r.checks);
    c.detail.clone().unwrap_or_default()
}

// ---- Azure: the vTPM quote of a real Azure SNP CVM ----

const AZURE: &str = "sev-snp-azure/azure-genoa-v3.evidence.json";

fn azure_json() -> serde_json::Value {
    serde_json::from_slice(&file(AZURE)).unwrap()
}

fn azure_nonce() -> Vec<u8> {
    let v = azure_json();
    let message: Vec<u8> = serde_json::from_value(v["quote"]["message"].clone()).unwrap();
    Quoted::parse(&message).unwrap().extra_data
}

/// A policy from `toml` that accepts evidence proving only the firmware: these tests are about the quote and the
/// log (the `workload` tests are about what pins the code).
fn lab(toml: &str) -> Policy {
    let mut p = Policy::from_toml(toml).unwrap();
    p.workload.allow_unmeasured = true;
    p
}

fn verify_azure(json: &serde_json::Value, policy: Policy, nonce: Option<Vec<u8>>) -> AttestationResult {
    let e = Endorsements { expected_report_data: nonce, ..Endorsements::default() };
    Verifier::new(policy).verify(&serde_json::to_vec(json).unwrap(), &e, at("2025-06-01")).unwrap()
}

#[test]
fn azure_vtpm_quote_is_signed_by_the_hcl_bound_key_and_covers_the_24_pcrs() {
    let r = verify_azure(&azure_json(), lab(""), None);
    assert!(r.accepted(), "{:#?}", r.reasons);
    for c in ["vtpm.ak", "vtpm.signature", "vtpm.pcr_digest"] {
        assert_eq!(status(&r, c), CheckStatus::Pass, "{c}");
    }
    assert_eq!(status(&r, "vtpm.nonce"), CheckStatus::Skipped);
    assert_eq!(r.claims["vtpm"]["quote"]["selection"][0]["pcrs"].as_array().unwrap().len(), 24);

    // The nonce trustee's test quoted with. Azure guests put Sigil's nonce in user-data too; trustee's did not,
    // so that check fails here while the quote's passes.
    let r = verify_azure(&azure_json(), lab(""), Some(azure_nonce()));
    assert_eq!(status(&r, "vtpm.nonce"), CheckStatus::Pass);
    failed(&r, "azure.user_data");
    let mut other = azure_nonce();
    other[0] ^= 1;
    let r = verify_azure(&azure_json(), lab(""), Some(other));
    assert!(failed(&r, "vtpm.nonce").contains("neither"));
}

#[test]
fn azure_vtpm_quote_refuses_a_flipped_message_pcr_or_signature_and_another_key() {
    for (path, what) in [
        ("/quote/message/40", "vtpm.signature"),
        ("/quote/signature/7", "vtpm.signature"),
        ("/quote/pcrs/4/0", "vtpm.pcr_digest"),
        ("/quote/pcrs/23/31", "vtpm.pcr_digest"),
    ] {
        let mut j = azure_json();
        let v = j.pointer_mut(path).unwrap();
        *v = serde_json::json!(v.as_u64().unwrap() ^ 1);
        let r = verify_azure(&j, lab(""), None);
        assert!(!r.accepted(), "{path}");
        failed(&r, what);
    }
    // A quote over fewer PCRs than it signed.
    let mut j = azure_json();
    j["quote"]["pcrs"].as_array_mut().unwrap().pop();
    assert!(failed(&verify_azure(&j, lab(""), None), "vtpm.pcr_digest").contains("PCR 23"));

    // The encryption key the same claims carry is not the key that signed.
    let v = azure_json();
    let hcl = sigil_attest::azure::HclReport::parse(&file("sev-snp-azure/azure-genoa-v3.hcl.bin")).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&hcl.runtime_claims).unwrap();
    let ek = AkPublic::from_jwk(&claims["keys"][1]).unwrap();
    let ak = sigil_attest::azure::ak_public(&claims).unwrap();
    let q: sigil_attest::azure::JsonQuote = serde_json::from_value(v["quote"].clone()).unwrap();
    let ev = q.into_evidence();
    let sig = Signature::parse(&ev.signature).unwrap();
    assert_eq!(quote::verify_signature(&ak, &ev.quote, &sig), Ok(()));
    assert!(quote::verify_signature(&ek, &ev.quote, &sig).is_err());
}

#[test]
fn azure_vtpm_policy_pins_pcr_values_and_can_require_a_quote() {
    let pcr0: Vec<u8> = serde_json::from_value(azure_json()["quote"]["pcrs"][0].clone()).unwrap();
    let toml = |v: &str| lab(&format!("[vtpm]\npcrs = {{ 0 = [\"{v}\"] }}\n"));
    // With vTPM rules the quote's nonce must be checked (trustee's user-data differs from it: that check fails).
    let r = verify_azure(&azure_json(), toml(&hex::encode(&pcr0)), Some(azure_nonce()));
    assert_eq!(status(&r, "vtpm.pcr0"), CheckStatus::Pass);
    assert_eq!(status(&r, "vtpm.nonce"), CheckStatus::Pass);
    assert_eq!(r.reasons.len(), 1, "only azure.user_data: {:?}", r.reasons);
    let r = verify_azure(&azure_json(), toml(&"00".repeat(32)), Some(azure_nonce()));
    assert!(failed(&r, "vtpm.pcr0").contains("not in the allowed list"));
    assert!(failed(&verify_azure(&azure_json(), toml(&hex::encode(&pcr0)), None), "vtpm.nonce").contains("replayed"));

    // A quote left out of the evidence does not leave its rules unchecked.
    let mut j = azure_json();
    j.as_object_mut().unwrap().remove("quote");
    for policy in [
        "[vtpm]\nrequire_quote = true\n".to_string(),
        format!("[vtpm]\npcrs = {{ 0 = [\"{}\"] }}\n", hex::encode(&pcr0)),
    ] {
        let p = lab(&policy);
        assert!(failed(&verify_azure(&j, p, None), "vtpm.quote").contains("no vTPM quote"), "{policy}");
    }
    assert!(verify_azure(&j, lab(""), None).accepted(), "without rules, no quote is needed");

    for bad in [
        "pcrs = { 24 = [\"%\"] }",
        "pcrs = { 23 = [\"%\"] }",
        "pcrs = { 16 = [\"%\"] }",
        "pcrs = { \"04\" = [\"%\"] }",
        "pcrs = { 4 = [] }",
        "pcrs = { 4 = [\"00\"] }",
        "events = [{ pcr = 4, digests = [\"%\"] }, { pcr = 4, digests = [] }]",
    ] {
        let text = format!("[vtpm]\n{}\n", bad.replace('%', &"00".repeat(32)));
        assert!(Policy::from_toml(&text).is_err(), "{text}");
    }
    assert_eq!(
        Policy::default().digest(),
        Policy::from_toml("[vtpm]\n").unwrap().digest(),
        "an empty [vtpm] leaves the digest of existing policies as it was"
    );
}

// ---- Event logs: real ones, replayed, against tpm2-tools and a real machine's PCRs ----

const LOGS: &[&str] = &[
    "eventlogs/cos-101-amd-sev.bin",
    "eventlogs/ubuntu-2104-no-secure-boot.bin",
    "eventlogs/arch-linux-workstation.bin",
    "eventlogs/tpm2-tools-sd-boot-fedora37.bin",
];

/// `tpm2_eventlog`'s replay: the `pcrs:` section of its YAML, by bank.
fn tpm2_eventlog_pcrs(rel: &str) -> PcrBanks {
    let out = Command::new("tpm2_eventlog")
        .arg(format!("{DIR}/{rel}"))
        .output()
        .expect("tpm2_eventlog is installed (scripts/setup.sh installs tpm2-tools)");
    assert!(out.status.success(), "tpm2_eventlog {rel}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut banks = PcrBanks::new();
    let mut bank = None;
    for line in text[text.find("\npcrs:\n").expect("a pcrs section")..].lines().skip(2) {
        let t = line.trim();
        if let Some(name) = t.strip_suffix(':') {
            bank = HashAlg::from_name(name);
        } else if let (Some(alg), Some((idx, val))) = (bank, t.split_once(':')) {
            let v = hex::decode(val.trim().trim_start_matches("0x")).unwrap();
            banks.entry(alg).or_default().insert(idx.trim().parse().unwrap(), v);
        }
    }
    assert!(!banks.is_empty(), "{rel}: no PCRs parsed");
    banks
}

fn replay_all(log: &EventLog) -> PcrBanks {
    log.banks.iter().map(|a| (*a, log.replay(*a).unwrap())).collect()
}

#[test]
fn real_event_logs_replay_to_what_tpm2_tools_computes_in_every_bank() {
    for rel in LOGS {
        let log = EventLog::parse(&file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(replay_all(&log), tpm2_eventlog_pcrs(rel), "{rel}");
    }
}

#[test]
fn a_gce_sev_log_replays_to_the_pcrs_its_vtpm_reported() {
    // go-eventlog's tpmeventlog/extract_test.go, COS101AmdSev: the SHA-256 PCRs read from that VM's vTPM.
    let want: BTreeMap<u32, &str> = BTreeMap::from([
        (0, "0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf"),
        (1, "6eb40f5b6bfafcb9914d486ce59404acd24bc13a6a3c45cda3b44c9d7053d638"),
        (2, "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"),
        (3, "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"),
        (4, "6d9f1a1d461cf77517e8d4c488c53f338a71c5a8e2b81ab7011c14f72cbc9a80"),
        (5, "d1a1ab23a5c3d98fbacff3891bad42d8e9257d61e1f683f42c6c9fa949bf96c5"),
        (6, "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969"),
        (7, "2bc6edaa921f953cec0ffb28dad4f87114886603d6a782036502d28e69d97a48"),
        (8, "ebb7c847c4ade99849bcffca236d32331224a530087a7ae4cb9f7db4c2e571b5"),
        (9, "b5ad662e5eb9165825ee39ad66e851a67a193e0b87b27858f25ac58afa72ac57"),
        (14, "d0d95459205afae879514db7b85630f5d6b8272ed8c731bf92933dbc9fe99969"),
    ]);
    let log = EventLog::parse(&file(LOGS[0])).unwrap();
    let got = log.replay(HashAlg::Sha256).unwrap();
    assert_eq!(
        got.iter().map(|(p, v)| (*p, hex::encode(v))).collect::<BTreeMap<_, _>>(),
        want.iter().map(|(p, v)| (*p, v.to_string())).collect()
    );
}

/// The log re-encoded with `edit` applied to its events (the header kept as it is).
fn edited(raw: &[u8], edit: impl FnOnce(&mut Vec<(u32, u32, Vec<u8>, Vec<u8>)>)) -> Vec<u8> {
    // (pcr, type, raw digests block, data) per event, sliced from the original bytes.
    let log = EventLog::parse(raw).unwrap();
    let header_len = {
        let size = u32::from_le_bytes(raw[28..32].try_into().unwrap()) as usize;
        32 + size
    };
    let mut events = Vec::new();
    let mut at = header_len;
    for e in &log.events {
        let count = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        let mut d = at + 12;
        for _ in 0..count {
            let alg = u16::from_le_bytes(raw[d..d + 2].try_into().unwrap());
            d += 2 + HashAlg::from_id(alg).unwrap().size();
        }
        events.push((e.pcr, e.kind, raw[at + 8..d].to_vec(), e.data.clone()));
        at = d + 4 + e.data.len();
    }
    edit(&mut events);
    let mut out = raw[..header_len].to_vec();
    for (pcr, kind, digests, data) in events {
        out.extend(pcr.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(digests);
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
    }
    out
}

#[test]
fn a_truncated_reordered_extra_or_altered_event_does_not_replay_to_the_quoted_pcrs() {
    let raw = file(LOGS[0]);
    let log = EventLog::parse(&raw).unwrap();
    let quoted = replay_all(&log);
    assert_eq!(edited(&raw, |_| {}), raw, "the re-encoding is exact");
    let ok = eventlog::check_against(&log, &quoted).unwrap();
    assert_eq!(ok.alg, HashAlg::Sha384);
    assert_eq!(ok.verified, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]);

    let in_pcr4: Vec<usize> =
        log.events.iter().enumerate().filter(|(_, e)| e.pcr == 4 && e.kind != 3).map(|(i, _)| i).collect();
    let last4 = *in_pcr4.last().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("the last event of PCR 4 dropped", edited(&raw, |ev| drop(ev.remove(last4)))),
        ("two events of PCR 4 swapped", edited(&raw, |ev| ev.swap(in_pcr4[0], in_pcr4[1]))),
        ("an event repeated", edited(&raw, |ev| ev.insert(last4, ev[last4].clone()))),
        ("a digest flipped", edited(&raw, |ev| ev[last4].2[10] ^= 1)),
        ("an event moved to PCR 5", edited(&raw, |ev| ev[last4].0 = 5)),
        ("cut at an event boundary", edited(&raw, |ev| ev.truncate(last4))),
    ];
    for (what, bytes) in cases {
        let log = EventLog::parse(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        let err = eventlog::check_against(&log, &quoted).expect_err(what);
        assert!(err.contains("the log replays to"), "{what}: {err}");
    }
    // Cut inside an event: not a log.
    assert!(EventLog::parse(&raw[..raw.len() - 3]).is_err());
    // A quote over a bank the log lacks, and a quote over other PCRs.
    let sha512 = PcrBanks::from([(HashAlg::Sha512, BTreeMap::from([(4, vec![0; 64])]))]);
    assert!(eventlog::check_against(&log, &sha512).unwrap_err().contains("no bank"));
    let other = PcrBanks::from([(HashAlg::Sha256, BTreeMap::from([(15, vec![0; 32])]))]);
    let r = eventlog::check_against(&log, &other).unwrap();
    assert!(r.verified.is_empty(), "no event is proven by a quote over PCRs the log does not touch");
}

// ---- A real TPM: swtpm holds the measurements of a real log; Sigil's client quotes them ----

const AK: &str = "0x81010002";

/// swtpm with an RSA attestation key (made by tpm2-tools) and the SHA-256 digests of `log` extended into its PCRs.
fn measured_tpm(dir: &std::path::Path, log: &EventLog) -> Swtpm {
    let tpm = Swtpm::start();
    tpm.provision_ak(dir, AK);
    for e in log.events.iter().filter(|e| e.kind != eventlog::EV_NO_ACTION) {
        let spec = format!("{}:sha256={}", e.pcr, hex::encode(&e.digests[&HashAlg::Sha256]));
        tpm.tool(&["tpm2_pcrextend", &spec]);
    }
    tpm
}

fn bundle_with(vtpm: VtpmEvidence, nonce: &[u8]) -> Vec<u8> {
    let claims = SimClaims {
        measurement: vec![1; 48],
        report_data: nonce.to_vec(),
        host_data: vec![0; 32],
        debug: false,
        svn: 0,
        not_after: None,
    };
    let mut b = Bundle::new(Platform::Sim, SimEvidence::generate(&claims).unwrap(), vec![]);
    b.vtpm = Some(vtpm);
    b.encode().unwrap()
}

#[test]
fn a_quote_from_a_real_tpm_over_a_real_logs_measurements_verifies_end_to_end() {
    let _one = serial();
    let scratch = tempdir::Dir(std::env::temp_dir().join(format!("sigil-vtpm-{}", std::process::id())));
    let dir = scratch.0.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let raw = file(LOGS[0]);
    let log = EventLog::parse(&raw).unwrap();
    let swtpm = measured_tpm(&dir, &log);
    let ak: u32 = u32::from_str_radix(AK.trim_start_matches("0x"), 16).unwrap();

    let mut tpm = Tpm::open(&swtpm.device()).unwrap();
    let public = tpm.read_public(ak).unwrap();
    assert!(public.missing_ak_attributes().is_empty(), "{:?}", public.missing_ak_attributes());
    let all: Vec<u32> = (0..24).collect();
    let pcrs = tpm.pcr_read(HashAlg::Sha256, &all).unwrap();
    assert_eq!(
        pcrs.iter().filter(|(p, _)| log.replay(HashAlg::Sha256).unwrap().contains_key(p)).count(),
        11,
        "the eleven PCRs the log extends"
    );
    let nonce = [7u8; 64];
    let (attest, sig) = tpm.quote(ak, &nonce, HashAlg::Sha256, &all).unwrap();
    let evidence = |attest: &[u8], sig: &[u8], pcrs: &BTreeMap<u32, Vec<u8>>, log: &[u8]| VtpmEvidence {
        quote: ByteBuf::from(attest.to_vec()),
        signature: ByteBuf::from(sig.to_vec()),
        pcrs: [("sha256".into(), pcrs.iter().map(|(i, v)| (*i, ByteBuf::from(v.clone()))).collect())].into(),
        ak_public: Some(ByteBuf::from(public.raw.clone())),
        event_log: Some(ByteBuf::from(log.to_vec())),
    };
    let name = hex::encode(public.name());
    // What this VM ran, event by event, in PCR 4: among them the Authenticode digests of its shim, GRUB and kernel
    // (go-eventlog's expected EFI app digests start with the shim's, c7ac5d44...).
    let pcr4: Vec<String> = log.extended(4).map(|e| hex::encode(&e.digests[&HashAlg::Sha256])).collect();
    let shim = "c7ac5d44444affd8d4a7c5d3dea0ce20a71e05812fc18777a428d092f78ae3ff";
    assert!(pcr4.iter().any(|d| d == shim));
    let policy = |ak: &str, digests: &[String]| {
        Policy::from_toml(&format!(
            "[workload]\nallow_unmeasured = true\n[sim]\nallow = true\n[vtpm]\nrequire_quote = true\nak_names = [\"{ak}\"]\nevents = [{{ pcr = 4, digests = {digests:?} }}]\n"
        ))
        .unwrap()
    };
    let verify = |policy: Policy, bundle: &[u8], nonce: &[u8]| {
        let e = Endorsements { expected_report_data: Some(nonce.to_vec()), ..Endorsements::default() };
        Verifier::new(policy).verify(bundle, &e, at("2026-12-07")).unwrap()
    };
    let good = bundle_with(evidence(&attest, &sig, &pcrs, &raw), &nonce);
    let r = verify(policy(&name, &pcr4), &good, &nonce);
    assert!(r.accepted(), "{:#?}", r.reasons);
    for c in ["vtpm.ak", "vtpm.signature", "vtpm.nonce", "vtpm.pcr_digest", "vtpm.event_log", "vtpm.events.pcr4"] {
        assert_eq!(status(&r, c), CheckStatus::Pass, "{c}");
    }
    assert_eq!(
        r.claims["vtpm"]["event_log"]["replay"]["verified"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14])
    );

    // The AK is not pinned: nothing vouches for the key.
    assert_eq!(r.claims["vtpm"]["ak_trust"], "policy-pinned: the key's TPM may be the host's");
    assert!(failed(&verify(policy(&"00".repeat(34), &pcr4), &good, &nonce), "vtpm.ak").contains("pinned"));
    // An application that did not boot in place of the shim.
    let other: Vec<String> = pcr4.iter().map(|d| if d == shim { "ab".repeat(32) } else { d.clone() }).collect();
    assert!(failed(&verify(policy(&name, &other), &good, &nonce), "vtpm.events.pcr4").contains("the policy expects"));
    // The policy's list with one application fewer: the log shows one more than it allows.
    assert!(failed(&verify(policy(&name, &pcr4[..pcr4.len() - 1]), &good, &nonce), "vtpm.events.pcr4")
        .contains("does not list"));
    // No nonce to check against: refused, since an old quote would do.
    let none = Verifier::new(policy(&name, &pcr4)).verify(&good, &Endorsements::default(), at("2026-12-07")).unwrap();
    failed(&none, "vtpm.nonce");
    // Another nonce.
    let other = [8u8; 64];
    assert!(failed(
        &verify(policy(&name, &pcr4), &bundle_with(evidence(&attest, &sig, &pcrs, &raw), &other), &other),
        "vtpm.nonce"
    )
    .contains("neither"));
    // A PCR value the TPM did not sign.
    let mut forged = pcrs.clone();
    forged.insert(4, vec![0; 32]);
    failed(
        &verify(policy(&name, &pcr4), &bundle_with(evidence(&attest, &sig, &forged, &raw), &nonce), &nonce),
        "vtpm.pcr_digest",
    );
    // A flipped bit in the quote.
    let mut flipped = attest.clone();
    flipped[attest.len() - 1] ^= 1;
    failed(
        &verify(policy(&name, &pcr4), &bundle_with(evidence(&flipped, &sig, &pcrs, &raw), &nonce), &nonce),
        "vtpm.signature",
    );
    // A log with the shim's event dropped: it no longer replays to the quote.
    let in4 =
        log.events.iter().position(|e| e.pcr == 4 && e.kind == eventlog::EV_EFI_BOOT_SERVICES_APPLICATION).unwrap();
    let short = edited(&raw, |ev| drop(ev.remove(in4)));
    assert!(failed(
        &verify(policy(&name, &pcr4), &bundle_with(evidence(&attest, &sig, &pcrs, &short), &nonce), &nonce),
        "vtpm.event_log"
    )
    .contains("PCR 4"));

    // Something more measured after the log was read: the new quote and the old log disagree.
    drop(tpm); // swtpm serves one connection at a time
    swtpm.tool(&["tpm2_pcrextend", &format!("4:sha256={}", "11".repeat(32))]);
    let mut tpm = Tpm::open(&swtpm.device()).unwrap();
    let pcrs2 = tpm.pcr_read(HashAlg::Sha256, &all).unwrap();
    let (attest2, sig2) = tpm.quote(ak, &nonce, HashAlg::Sha256, &all).unwrap();
    let r = verify(policy(&name, &pcr4), &bundle_with(evidence(&attest2, &sig2, &pcrs2, &raw), &nonce), &nonce);
    assert_eq!(status(&r, "vtpm.signature"), CheckStatus::Pass);
    assert!(failed(&r, "vtpm.event_log").contains("PCR 4"));
    // Logged too, it replays; but an event the policy does not list is refused, even after the listed ones.
    let with_extra = edited(&raw, |ev| {
        let mut digests = (log.banks.len() as u32).to_le_bytes().to_vec();
        for a in &log.banks {
            digests.extend(a.id().to_le_bytes());
            digests.extend(vec![0x11; a.size()]);
        }
        ev.push((4, eventlog::EV_EFI_BOOT_SERVICES_APPLICATION, digests, Vec::new()));
    });
    let r = verify(policy(&name, &pcr4), &bundle_with(evidence(&attest2, &sig2, &pcrs2, &with_extra), &nonce), &nonce);
    assert_eq!(status(&r, "vtpm.event_log"), CheckStatus::Pass);
    assert!(failed(&r, "vtpm.events.pcr4").contains("does not list"));
}

#[test]
fn a_tpm_bundle_is_collected_by_sigil_and_refused_unless_the_policy_allows_a_tee_less_quote() {
    let _one = serial();
    let scratch = tempdir::Dir(std::env::temp_dir().join(format!("sigil-vtpm-collect-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let raw = file(LOGS[0]);
    let log = EventLog::parse(&raw).unwrap();
    let swtpm = measured_tpm(&scratch.0, &log);
    let log_path = scratch.0.join("binary_bios_measurements");
    std::fs::write(&log_path, &raw).unwrap();
    let nonce = [9u8; 64];
    let ak = u32::from_str_radix(AK.trim_start_matches("0x"), 16).unwrap();
    let bundle = sigil_attest::collect::collect_vtpm(&swtpm.device(), ak, &nonce, Some(&log_path)).unwrap();
    assert_eq!(bundle.platform, Platform::Tpm);
    let bytes = bundle.encode().unwrap();
    let name = {
        let public = quote::PublicArea::parse(bundle.vtpm.as_ref().unwrap().ak_public.as_ref().unwrap()).unwrap();
        hex::encode(public.name())
    };
    let e = Endorsements { expected_report_data: Some(nonce.to_vec()), ..Endorsements::default() };
    let pinned = format!("[workload]\nallow_unmeasured = true\n[vtpm]\nak_names = [\"{name}\"]\n");

    let r = Verifier::new(Policy::from_toml(&pinned).unwrap()).verify(&bytes, &e, at("2026-12-07")).unwrap();
    assert_eq!(r.platform, Platform::Tpm);
    assert!(failed(&r, "tpm.allowed").contains("allow_without_tee"));
    assert_eq!(status(&r, "vtpm.event_log"), CheckStatus::Pass, "everything else holds");

    let allowed = Policy::from_toml(&format!("{pinned}allow_without_tee = true\n")).unwrap();
    let r = Verifier::new(allowed).verify(&bytes, &e, at("2026-12-07")).unwrap();
    assert!(r.accepted(), "{:#?}", r.reasons);
    assert_eq!(
        r.report_data,
        hex::encode(sigil_attest::sha256(&nonce)),
        "the collector quotes over the SHA-256 of REPORT_DATA, which is the result's REPORT_DATA"
    );
    let other = Endorsements { expected_report_data: Some(vec![8; 64]), ..Endorsements::default() };
    let allowed = Policy::from_toml(&format!("{pinned}allow_without_tee = true\n")).unwrap();
    let r = Verifier::new(allowed).verify(&bytes, &other, at("2026-12-07")).unwrap();
    assert!(failed(&r, "vtpm.nonce").contains("nor its SHA-256"));

    // A tpm bundle must carry its quote in vtpm and nothing else.
    let mut b = Bundle::decode(&bytes).unwrap();
    b.evidence = ByteBuf::from(vec![1]);
    assert!(Bundle::decode(&b.encode().unwrap()).is_err());
    b.evidence = ByteBuf::new();
    b.vtpm = None;
    assert!(Bundle::decode(&b.encode().unwrap()).is_err());
}
