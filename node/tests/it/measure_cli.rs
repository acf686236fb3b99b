//! `sigil measure snp`: the digest matches sev-snp-measure (PyPI) on the same firmware, and the policy it prints is
//! a policy `sigil attest verify` enforces (a real report with another measurement is rejected for it, and
//! accepted under the measurement its own report carries).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{sigil, text};

fn vector(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "attest", "testdata", rel].iter().collect();
    p.to_string_lossy().into_owned()
}

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

#[test]
fn sigil_measure_snp_agrees_with_sev_snp_measure_and_writes_an_enforced_policy() {
    let reference = PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sigil-venv/bin/sev-snp-measure");
    assert!(reference.exists(), "run scripts/setup.sh (it installs sev-snp-measure)");
    for (vcpus, cpu, vmm) in [("4", "EPYC-Milan", "qemu"), ("2", "EPYC-Genoa", "ec2")] {
        let ours = sigil(&["measure", "snp", "--ovmf", OVMF, "--vcpus", vcpus, "--vcpu-type", cpu, "--vmm", vmm]);
        assert!(ours.status.success(), "{}", text(&ours));
        let vmm_type = if vmm == "qemu" { "QEMU" } else { vmm };
        let theirs = Command::new(&reference)
            .args(["--mode", "snp", "--vcpus", vcpus, "--vcpu-type", cpu, "--vmm-type", vmm_type, "--ovmf", OVMF])
            .output()
            .unwrap();
        assert!(theirs.status.success(), "{}", text(&theirs));
        assert_eq!(String::from_utf8_lossy(&ours.stdout).trim(), String::from_utf8_lossy(&theirs.stdout).trim());
    }

    // The policy it prints is enforced: a real Milan report (another image) is rejected for its measurement.
    let dir = std::env::temp_dir().join(format!("sigil-measure-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = sigil(&["measure", "snp", "--ovmf", OVMF, "--vcpus", "4", "--vcpu-type", "EPYC-Milan", "--policy"]);
    assert!(policy.status.success(), "{}", text(&policy));
    let file = dir.join("policy.toml");
    std::fs::write(&file, &policy.stdout).unwrap();
    let report = vector("sev-snp/gsg-milan-v2.report.bin");
    let (vcek, ask) = (vector("sev-snp/gsg-milan-v2.vcek.der"), vector("amd-certs/milan.ask.pem"));
    let verify = |policy: &std::path::Path| {
        let p = policy.to_str().unwrap();
        sigil(&[
            "attest",
            "verify",
            &report,
            "--cert",
            &vcek,
            "--cert",
            &ask,
            "--now",
            "2025-01-01T00:00:00Z",
            "--policy",
            p,
            "--json",
        ])
    };
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let measured = v["measurement"].as_str().unwrap().to_string();
    assert!(v["reasons"].to_string().contains("snp.policy.measurement"), "{v}");
    // The same report under a policy that allows its own measurement is accepted: the check is the measurement.
    let own = String::from_utf8_lossy(&policy.stdout).replace(
        &String::from_utf8_lossy(
            &sigil(&["measure", "snp", "--ovmf", OVMF, "--vcpus", "4", "--vcpu-type", "EPYC-Milan"]).stdout,
        )
        .trim()
        .to_string(),
        &measured,
    );
    // (This vector is a debug guest, which the default policy refuses on its own.) Measured without a kernel, the
    // policy pins the firmware only: the workload is unmeasured, refused unless the policy accepts that.
    assert!(own.contains("# the firmware only"), "{own}");
    let own = own + "allow_debug = true\n";
    std::fs::write(&file, &own).unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["reasons"][0].as_str().unwrap().starts_with("workload.measured: unmeasured"), "{v}");
    std::fs::write(&file, own + "[workload]\nallow_unmeasured = true\n").unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["claims"]["workload"]["established_by"], "unmeasured", "{v}");

    // Bad input: a clear error, exit 2.
    let bad = sigil(&["measure", "snp", "--ovmf", OVMF, "--vcpu-type", "EPYC-Nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("known: EPYC"), "{}", text(&bad));
    let kernel = dir.join("k");
    std::fs::write(&kernel, b"kernel").unwrap();
    let bad = sigil(&["measure", "snp", "--ovmf", OVMF, "--vcpu-type", "EPYC", "--kernel", kernel.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SNP_KERNEL_HASHES"), "{}", text(&bad));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigil_measure_tdx_prints_both_orders_and_writes_an_enforced_policy() {
    let out = sigil(&["measure", "tdx", "--ovmf", OVMF]);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("mrtd (per-page   ) ") && s.contains("mrtd (per-section) "), "{s}");
    assert!(s.contains("rtmr0 not computed: QEMU's ACPI blobs are needed"), "{s}");

    let json = sigil(&["measure", "tdx", "--ovmf", OVMF, "--page-order", "per-page", "--memory", "2G", "--json"]);
    assert!(json.status.success(), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mrtd = v["mrtd"]["per-page"].as_str().unwrap().to_string();
    assert!(v["mrtd"].get("per-section").is_none());
    assert_eq!(v["td_hob_sha384"].as_str().unwrap().len(), 96);

    // The policy it prints parses, and is enforced: a real TDX quote (another firmware) is rejected for its MRTD,
    // and accepted when the policy names the quote's own.
    let dir = std::env::temp_dir().join(format!("sigil-measure-tdx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = sigil(&["measure", "tdx", "--ovmf", OVMF, "--page-order", "per-page", "--policy"]);
    assert!(policy.status.success(), "{}", text(&policy));
    let text_policy = String::from_utf8_lossy(&policy.stdout).to_string();
    assert!(text_policy.contains(&format!("mrtd = [\"{mrtd}\"]")), "{text_policy}");
    let file = dir.join("policy.toml");
    let lax = "require_collateral = false\nrequire_sept_ve_disable = false\n";
    std::fs::write(&file, format!("{text_policy}{lax}")).unwrap();
    let check = sigil(&["policy", "check", file.to_str().unwrap()]);
    // Valid, with a warning: it pins no SEV-SNP measurement.
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("[snp] measurements is empty"), "{}", text(&check));
    let quote = vector("tdx/azure-00806f05-v4.quote.bin");
    let verify = |p: &std::path::Path| {
        sigil(&["attest", "verify", &quote, "--now", "2025-07-01T00:00:00Z", "--policy", p.to_str().unwrap(), "--json"])
    };
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["reasons"].to_string().contains("tdx.policy.mrtd"), "{r}");
    let theirs = r["measurement"].as_str().unwrap().to_string();
    // MRTD is the TD's firmware: without its RTMR1 and RTMR2 (no --kernel here) the workload is unmeasured.
    let own = format!("{}{lax}", text_policy.replace(&mrtd, &theirs));
    std::fs::write(&file, &own).unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("workload.measured: unmeasured"), "{}", text(&out));
    std::fs::write(&file, own + "[workload]\nallow_unmeasured = true\n").unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Inputs whose meaning depends on the host are asked for, not guessed.
    let kernel = dir.join("vmlinuz");
    std::fs::write(&kernel, vec![0u8; 8192]).unwrap();
    let k = kernel.to_str().unwrap();
    let bad = sigil(&["measure", "tdx", "--ovmf", OVMF, "--kernel", k]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--kernel-header: unmodified"), "{}", text(&bad));
    let bad = sigil(&["measure", "tdx", "--ovmf", OVMF, "--kernel", k, "--initrd", k, "--kernel-header", "unmodified"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--initrd-option: suffix"), "{}", text(&bad));
    let bad = sigil(&["measure", "tdx", "--ovmf", OVMF, "--kernel", k, "--kernel-header", "qemu-patched"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs --memory"), "{}", text(&bad));
    let bad = sigil(&["measure", "tdx", "--ovmf", OVMF, "--kernel", k, "--kernel-header", "unmodified"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a PE image"), "{}", text(&bad));
    let bad = sigil(&["measure", "tdx", "--ovmf", OVMF, "--page-order", "sideways"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("per-page or per-section"), "{}", text(&bad));
    let code = "/usr/share/OVMF/OVMF_CODE.fd";
    if std::path::Path::new(code).exists() {
        let bad = sigil(&["measure", "tdx", "--ovmf", code]);
        assert_eq!(bad.status.code(), Some(2), "the split CODE image is refused: {}", text(&bad));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
