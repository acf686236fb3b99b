//! `sigil measure snp`: the digest matches sev-snp-measure (PyPI) on the same firmware, and the policy it prints is
//! a policy `sigil attest verify` enforces (a real report with another measurement is rejected for it, and
//! accepted under the measurement its own report carries).

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{sigil, text};

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
    // (This vector is a debug guest, which the default policy refuses on its own.)
    std::fs::write(&file, own + "allow_debug = true\n").unwrap();
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

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
