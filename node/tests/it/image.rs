//! The measured node image (infra/image): built twice from the same inputs to the same bytes, then booted under
//! QEMU with Debian's OVMF and a swtpm vTPM, where the image's own `sigil` quotes the PCRs over this test's challenge,
//! with the firmware's event log. That evidence is accepted under the policy `sigil measure image` printed for the
//! image, and refused, naming the events that differ, under the policy of the same image with one byte changed in
//! the kernel command line or in the `sigil` binary inside the initrd.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{sigil, text, TempDir};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn kernel() -> PathBuf {
    let k = std::env::var_os("SIGIL_IMAGE_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sigil-image/vmlinuz"));
    assert!(k.exists(), "{}: run scripts/setup.sh (it runs scripts/image-inputs.sh)", k.display());
    k
}

/// `infra/image/build.py`; returns the SHA-256 of each output. `initrd`: one it made before, reused.
fn build(out: &Path, binary: &Path, cmdline: &str, initrd: Option<&Path>) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(repo("infra/image/build.py"))
        .arg("--kernel")
        .arg(kernel())
        .arg("--sigil")
        .arg(binary)
        .arg("--out")
        .arg(out);
    cmd.args(["--cmdline", cmdline]);
    if let Some(i) = initrd {
        cmd.arg("--initrd").arg(i);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "build.py: {}", text(&o));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    manifest["outputs"].clone()
}

/// `sigil measure image DIR --policy`, with what the platform adds: this vTPM's key, and that it has no TEE.
fn policy(image: &Path, ak_name: &str, dir: &Path, name: &str) -> PathBuf {
    let o = sigil(&["measure", "image", image.to_str().unwrap(), "--policy"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut p = String::from_utf8(o.stdout).unwrap();
    p.push_str(&format!("allow_without_tee = true\nak_names = [\"{ak_name}\"]\n"));
    let file = dir.join(name);
    std::fs::write(&file, p).unwrap();
    file
}

fn verify(policy: &Path, challenge: &str, evidence: &Path) -> std::process::Output {
    sigil(&[
        "attest",
        "verify",
        "--policy",
        policy.to_str().unwrap(),
        "--report-data",
        challenge,
        evidence.to_str().unwrap(),
    ])
}

#[test]
fn the_node_image_is_reproducible_boots_on_real_firmware_and_proves_what_it_runs() {
    let tmp = TempDir::new();
    let dir = tmp.path();
    // The image carries this build's sigil, without its debug sections (as a release image would).
    let binary = dir.join("sigil");
    let o = Command::new("strip").arg("-o").arg(&binary).arg(env!("CARGO_BIN_EXE_sigil")).output().unwrap();
    assert!(o.status.success(), "strip: {}", text(&o));
    let cmdline = "console=ttyS0 panic=-1 quiet";

    let a = build(&dir.join("a"), &binary, cmdline, None);
    let again = build(&dir.join("a2"), &binary, cmdline, None);
    assert_eq!(a, again, "the same inputs make the same bytes");

    let challenge = format!("{:064x}{:064x}", std::process::id(), crate::support::now_ms());
    let state = dir.join("vtpm");
    let o = Command::new(repo("infra/image/boot.sh")).arg(dir.join("a")).arg(&state).arg(&challenge).output().unwrap();
    assert!(o.status.success(), "boot.sh: {}", text(&o));
    let evidence = dir.join("evidence.hex");
    std::fs::write(&evidence, &o.stdout).unwrap();
    let ak_name = std::fs::read_to_string(state.join("ak.name")).unwrap();

    let good = policy(&dir.join("a"), ak_name.trim(), dir, "a.toml");
    let r = verify(&good, &challenge, &evidence);
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    for check in ["vtpm.event_log", "vtpm.events.pcr4.EV_EFI_BOOT_SERVICES_APPLICATION", "vtpm.events.pcr11"] {
        assert!(out.contains(&format!("ok   {check}")), "{check}: {out}");
    }
    // Another challenge: this boot's quote does not answer it.
    let other = "00".repeat(64);
    assert!(text(&verify(&good, &other, &evidence)).contains("FAIL vtpm.nonce"));

    // The same UKI, booted by a host that passes its own command line (QEMU's -kernel/-append, as a boot entry's
    // load options would): systemd's stub takes it over the image's and measures it into PCR 12. Refused.
    let o = Command::new(repo("infra/image/boot.sh"))
        .arg(dir.join("a"))
        .arg(&state)
        .arg(&challenge)
        .env("SIGIL_BOOT_APPEND", "console=ttyS0 panic=-1")
        .output()
        .unwrap();
    assert!(o.status.success(), "boot.sh with another command line: {}", text(&o));
    let overridden = dir.join("overridden.hex");
    std::fs::write(&overridden, &o.stdout).unwrap();
    let out = text(&verify(&good, &challenge, &overridden));
    assert!(out.contains("ok   vtpm.events.pcr11"), "the UKI itself is the same: {out}");
    assert!(out.contains("FAIL vtpm.events.pcr12: PCR 12 has an event the policy does not list"), "{out}");

    // One byte of the command line, one byte of the sigil binary (in its section headers, which the loader does not
    // read, so it still runs): another image, refused with the reason.
    let mut flipped = std::fs::read(&binary).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let binary_b = dir.join("sigil-b");
    std::fs::write(&binary_b, flipped).unwrap();
    std::fs::set_permissions(&binary_b, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let same_initrd = dir.join("a/initrd.img");
    for (name, bin, line, initrd, differs) in [
        ("cmdline", &binary, "console=ttyS0 panic=-1 quiEt", Some(same_initrd.as_path()), "event 6 of PCR 11"),
        ("binary", &binary_b, cmdline, None, "event 8 of PCR 11"),
    ] {
        let outputs = build(&dir.join(name), bin, line, initrd);
        assert_ne!(outputs["sigil.efi"], a["sigil.efi"], "{name}");
        let p = policy(&dir.join(name), ak_name.trim(), dir, &format!("{name}.toml"));
        let r = verify(&p, &challenge, &evidence);
        let out = text(&r);
        assert!(!r.status.success(), "{name}: {out}");
        assert!(
            out.contains("FAIL vtpm.events.pcr4.EV_EFI_BOOT_SERVICES_APPLICATION: event 1 of PCR 4"),
            "{name}: {out}"
        );
        assert!(out.contains(&format!("FAIL vtpm.events.pcr11: {differs}")), "{name}: {out}");
    }
}
