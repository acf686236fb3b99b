//! The `sigil attest` command-line contract (docs/attestation.md): arguments, JSON fields, exit codes 0/1/2.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn vectors(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "attest", "testdata", rel].iter().collect();
    p.to_string_lossy().into_owned()
}

fn sigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil")).args(args).stdin(Stdio::null()).output().expect("run sigil")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A policy that accepts evidence proving only the firmware (`[workload] allow_unmeasured`), as these real vectors
/// are: their images are not known, so nothing can pin the code they ran.
fn firmware_only() -> String {
    // Written once: tests run in parallel, and a file being rewritten can be read empty.
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let p = tmp("firmware-only.toml");
        std::fs::write(&p, "[workload]\nallow_unmeasured = true\n").unwrap();
        p.to_string_lossy().into_owned()
    })
    .clone()
}

#[test]
fn accepted_snp_report_exits_0_with_the_json_contract() {
    let args = [
        "attest",
        "verify",
        &vectors("sev-snp/virtee-milan-v2.report.hex"),
        "--cert",
        &vectors("sev-snp/virtee-milan-v2.vcek.der"),
        "--now",
        "2025-01-01T00:00:00Z",
        "--json",
    ];
    // The default policy asks the evidence to prove the code that runs; this report proves its firmware only.
    let out = sigil(&args);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let j = json(&out);
    assert_eq!(j["reasons"].as_array().unwrap().len(), 1);
    assert!(j["reasons"][0].as_str().unwrap().starts_with("workload.measured: unmeasured"), "{j}");
    let policy = firmware_only();
    let out = sigil(&[&args[..], &["--policy", &policy]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let j = json(&out);
    assert_eq!(j["verdict"], "accepted");
    assert_eq!(j["claims"]["workload"]["established_by"], "unmeasured");
    assert_eq!(j["platform"], "sev-snp");
    assert_eq!(
        j["measurement"],
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert!(j["report_data"].as_str().unwrap().starts_with("d447b55d"));
    assert!(j["tcb_status"].is_null());
    assert_eq!(j["reasons"], serde_json::json!([]));
}

#[test]
fn rejected_evidence_exits_1_with_reasons() {
    let out = sigil(&[
        "attest",
        "verify",
        &vectors("sev-snp/gsg-milan-v2.report.bin"),
        "--cert",
        &vectors("sev-snp/gsg-milan-v2.vcek.der"),
        "--cert",
        &vectors("amd-certs/milan.ask.pem"),
        "--now",
        "2025-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["verdict"], "rejected");
    assert!(j["reasons"][0].as_str().unwrap().starts_with("snp.policy.debug"), "{}", j["reasons"]);
}

#[test]
fn tdx_with_collateral_reports_the_tcb_status() {
    let out = sigil(&[
        "attest",
        "verify",
        &vectors("tdx/dcapqvl-b0c06f-v4.quote.bin"),
        "--collateral",
        &vectors("tdx/dcapqvl-b0c06f-v4.collateral.json"),
        "--now",
        "2025-07-01T00:00:00Z",
        "--json",
        "--policy",
        &firmware_only(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let j = json(&out);
    assert_eq!(j["platform"], "tdx");
    assert_eq!(j["tcb_status"], "UpToDate");
}

#[test]
fn policy_file_changes_the_verdict() {
    let policy = tmp("lax-tdx.toml");
    std::fs::write(&policy, "[tdx]\nrequire_collateral = false\n[workload]\nallow_unmeasured = true\n").unwrap();
    let quote = vectors("tdx/dcapqvl-b0c06f-v4.quote.bin");
    let strict = sigil(&["attest", "verify", &quote, "--now", "2025-07-01T00:00:00Z", "--json"]);
    assert_eq!(strict.status.code(), Some(1));
    let lax = sigil(&[
        "attest",
        "verify",
        &quote,
        "--now",
        "2025-07-01T00:00:00Z",
        "--json",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(lax.status.code(), Some(0));
    assert!(json(&lax)["tcb_status"].is_null());
}

#[test]
fn usage_and_io_errors_exit_2() {
    let missing = sigil(&["attest", "verify", "/nonexistent/evidence.bin"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/evidence.bin"));
    let bad_now = sigil(&["attest", "verify", &vectors("sev-snp/gsg-milan-v2.report.bin"), "--now", "yesterday"]);
    assert_eq!(bad_now.status.code(), Some(2));
    let garbage = tmp("garbage.bin");
    std::fs::write(&garbage, b"definitely not evidence").unwrap();
    let out = sigil(&["attest", "verify", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognised evidence format"));
    let bad_policy = tmp("typo.toml");
    std::fs::write(&bad_policy, "[snp]\nalow_debug = true\n").unwrap();
    let out = sigil(&[
        "attest",
        "verify",
        &vectors("sev-snp/gsg-milan-v2.report.bin"),
        "--policy",
        bad_policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alow_debug"));
    let no_args = sigil(&["attest", "verify"]);
    assert_eq!(no_args.status.code(), Some(2));
}

#[test]
fn sim_collect_then_verify_round_trip() {
    let bundle = tmp("sim.cbor");
    let rd = "ab".repeat(64);
    let out = sigil(&["attest", "collect", "--sim", "--report-data", &rd, "--out", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INSECURE"));
    // Refused by default...
    let refused = sigil(&["attest", "verify", bundle.to_str().unwrap(), "--json"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(json(&refused)["platform"], "sim");
    // ...accepted when the policy opts in and pins its (simulated) measurement, with the expected report data.
    let m = json(&refused)["measurement"].as_str().unwrap().to_string();
    let policy = tmp("sim.toml");
    std::fs::write(&policy, format!("[sim]\nallow = true\nmeasurements = [\"{m}\"]\n")).unwrap();
    let ok = sigil(&[
        "attest",
        "verify",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--report-data",
        &rd,
        "--json",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    let wrong = sigil(&[
        "attest",
        "verify",
        bundle.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--report-data",
        &"cd".repeat(64),
        "--json",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
}

#[test]
fn human_output_lists_checks_and_reasons() {
    let out = sigil(&[
        "attest",
        "verify",
        &vectors("tdx/trustee-debug-50806f-v4.quote.bin"),
        "--now",
        "2025-07-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("REJECTED  tdx"), "{text}");
    assert!(text.contains("FAIL tdx.policy.debug"), "{text}");
    assert!(text.contains("ok   tdx.pck_chain"), "{text}");
}

#[test]
fn default_policy_prints_and_parses() {
    let out = sigil(&["attest", "policy"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(sigil_attest::Policy::from_toml(&text).unwrap(), sigil_attest::Policy::default());
}

#[test]
fn policy_check_explains_the_reattestation_schedule_and_refuses_settings_that_would_suspend_too_soon() {
    let check = |name: &str, toml: &str| {
        let file = tmp(name);
        std::fs::write(&file, toml).unwrap();
        sigil(&["policy", "check", file.to_str().unwrap(), "--json"])
    };
    let base =
        "[snp]\nmeasurements = [\"{m}\"]\n[tdx]\nmrtd = [\"{m}\"]\n[reattestation]\n".replace("{m}", &"ab".repeat(48));
    // Valid: every hour, suspended after three hours without one, a two-minute grace.
    let out = check("reattest-ok.toml", &format!("{base}every_s = 3600\nmax_age_s = 10800\ngrace_s = 120\n"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(v["reattestation"]["max_age_s"], 10800, "{v}");
    // A maximum age under twice the schedule would suspend a node for one failed re-attestation.
    let out = check("reattest-age.toml", &format!("{base}every_s = 3600\nmax_age_s = 7000\n"));
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reattestation.max_age_s = 7000") && err.contains("twice every_s (7200 s)"), "{err}");
    let out = check("reattest-grace.toml", &format!("{base}grace_s = 30\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reattestation.grace_s = 30"), "{out:?}");
    // Age never suspends where validators do not re-attest (or max_age_s = 0): null in JSON, said in words.
    let out = check("reattest-off.toml", &format!("{base}every_s = 0\n"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["reattestation"]["max_age_s"].is_null(), "{v}");
    let file = tmp("reattest-off.toml");
    let out = sigil(&["policy", "check", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("suspension: only when the current policy refuses"), "{text}");
}

#[test]
fn collect_without_a_tee_explains_itself() {
    if sigil_attest::collect::detect().is_some() {
        return; // on real hardware this would collect real evidence
    }
    let out = sigil(&["attest", "collect"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sim"));
}

#[test]
fn bundle_packs_an_azure_tdx_quote_with_its_hcl_report() {
    let out_path = tmp("azure-tdx.cbor");
    let out = sigil(&[
        "attest",
        "bundle",
        &vectors("tdx/azure-00806f05-v4.quote.bin"),
        "--azure-hcl",
        &vectors("tdx/azure-00806f05-v4.hcl.bin"),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let policy = tmp("azure-tdx.toml");
    let lax =
        "[tdx]\nrequire_collateral = false\nrequire_sept_ve_disable = false\n[workload]\nallow_unmeasured = true\n";
    std::fs::write(&policy, lax).unwrap();
    let v = sigil(&[
        "attest",
        "verify",
        out_path.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--now",
        "2025-07-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    let j = json(&v);
    assert_eq!(j["claims"]["azure_runtime_claims"]["keys"][0]["kid"], "HCLAkPub");
    // --azure-hcl with SNP evidence is a usage error.
    let bad = sigil(&[
        "attest",
        "bundle",
        &vectors("sev-snp/gsg-milan-v2.report.bin"),
        "--azure-hcl",
        &vectors("tdx/azure-00806f05-v4.hcl.bin"),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn bundle_of_tdx_quote_and_collateral_verifies_alone() {
    let out_path = tmp("tdx.cbor");
    let out = sigil(&[
        "attest",
        "bundle",
        &vectors("tdx/dcapqvl-b0c06f-v4.quote.bin"),
        "--collateral",
        &vectors("tdx/dcapqvl-b0c06f-v4.collateral.json"),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (p, now) = (out_path.to_str().unwrap(), "2025-07-01T00:00:00Z");
    let v = sigil(&["attest", "verify", p, "--now", now, "--json", "--policy", &firmware_only()]);
    assert_eq!(v.status.code(), Some(0));
    assert_eq!(json(&v)["tcb_status"], "UpToDate");
}
