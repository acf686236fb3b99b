//! SNP launch digests against an implementation we did not write: `sev-snp-measure` (PyPI, IBM's), on the same
//! inputs. The firmware is Debian's OVMF build (`/usr/share/ovmf/OVMF.fd`, package `ovmf`) and synthetic images
//! built here whose footer table and SEV metadata exercise what the Debian build lacks (the kernel hashes page,
//! several sections of each type). `scripts/setup.sh` installs both the package and the Python tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use sigil_attest::measure::{snp_launch_digest, snp_ovmf_digest, vcpu_sig, SnpLaunch, Vmm};

/// `sev-snp-measure` from the venv `scripts/setup.sh` makes (or `SIGIL_SNP_MEASURE`).
fn reference() -> PathBuf {
    if let Some(p) = std::env::var_os("SIGIL_SNP_MEASURE") {
        return p.into();
    }
    let p = PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/sigil-venv/bin/sev-snp-measure");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (it installs sev-snp-measure)", p.display());
    p
}

const DEBIAN_OVMF: &str = "/usr/share/ovmf/OVMF.fd";

fn debian_ovmf() -> Vec<u8> {
    std::fs::read(DEBIAN_OVMF).unwrap_or_else(|e| panic!("{DEBIAN_OVMF}: {e} (scripts/setup.sh installs ovmf)"))
}

/// Runs the reference on files; its hex digest.
fn reference_digest(args: &[String]) -> String {
    let out = Command::new(reference()).args(args).output().unwrap();
    assert!(out.status.success(), "sev-snp-measure {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Case<'a> {
    ovmf: &'a Path,
    kernel: Option<&'a Path>,
    initrd: Option<&'a Path>,
    append: Option<&'a str>,
    vcpus: u32,
    vcpu_type: &'a str,
    vmm: &'a str,
    features: u64,
}

fn both(c: &Case) -> (String, String) {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut args = vec![
        "--mode".into(),
        "snp".into(),
        "--vcpus".into(),
        c.vcpus.to_string(),
        "--vcpu-type".into(),
        c.vcpu_type.into(),
        "--vmm-type".into(),
        c.vmm.into(),
        "--ovmf".into(),
        s(c.ovmf),
        "--guest-features".into(),
        format!("{:#x}", c.features),
    ];
    if let Some(k) = c.kernel {
        args.extend(["--kernel".into(), s(k)]);
    }
    if let Some(i) = c.initrd {
        args.extend(["--initrd".into(), s(i)]);
    }
    if let Some(a) = c.append {
        args.extend(["--append".into(), a.into()]);
    }
    let ovmf = std::fs::read(c.ovmf).unwrap();
    let kernel = c.kernel.map(|p| std::fs::read(p).unwrap());
    let initrd = c.initrd.map(|p| std::fs::read(p).unwrap());
    let ours = snp_launch_digest(&SnpLaunch {
        ovmf: &ovmf,
        ovmf_digest: None,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        append: c.append,
        vcpus: c.vcpus,
        vcpu_sig: vcpu_sig(c.vcpu_type).unwrap(),
        guest_features: c.features,
        vmm: c.vmm.parse::<Vmm>().unwrap(),
    })
    .unwrap();
    (hex::encode(ours), reference_digest(&args))
}

/// Deterministic bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A firmware image of `pages` pages whose footer table has a reset block, a hashes-table address and SEV
/// metadata with `sections` (gpa, size, type).
fn synthetic(seed: u64, pages: usize, sections: &[(u32, u32, u32)], hashes_gpa: u32, ap_eip: u32) -> Vec<u8> {
    let mut img = bytes(seed, pages * 4096);
    let len = img.len();
    // The metadata block, at 8 KiB from the end.
    let meta_at = len - 8192;
    let mut meta = b"ASEV".to_vec();
    meta.extend(((16 + 12 * sections.len()) as u32).to_le_bytes());
    meta.extend(1u32.to_le_bytes());
    meta.extend((sections.len() as u32).to_le_bytes());
    for (gpa, size, kind) in sections {
        meta.extend(gpa.to_le_bytes());
        meta.extend(size.to_le_bytes());
        meta.extend(kind.to_le_bytes());
    }
    img[meta_at..meta_at + meta.len()].copy_from_slice(&meta);
    crate::firmware::write_footer_table(
        &mut img,
        &[
            ((len as u32 - meta_at as u32).to_le_bytes().to_vec(), "dc886566-984a-4798-a75e-5585a7bf67cc"),
            ([hashes_gpa.to_le_bytes(), 0x400u32.to_le_bytes()].concat(), "7255371f-3a3b-4b04-927b-1da6efa8d454"),
            (ap_eip.to_le_bytes().to_vec(), "00f771de-1a7e-4fcb-890e-68c77e2fb44e"),
        ],
    );
    img
}

#[test]
fn launch_digests_of_debian_ovmf_match_sev_snp_measure() {
    let dir = std::env::temp_dir().join(format!("sigil-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ovmf = PathBuf::from(DEBIAN_OVMF);
    let _ = debian_ovmf();
    let mut n = 0;
    for (vcpus, vcpu_type, vmm) in [
        (1, "EPYC-v4", "QEMU"),
        (4, "EPYC-Milan", "QEMU"),
        (2, "EPYC-Genoa", "QEMU"),
        (8, "EPYC-Rome", "QEMU"),
        (2, "EPYC-Milan", "ec2"),
        (1, "EPYC-Milan", "ec2"),
        (3, "EPYC-Genoa", "gce"),
    ] {
        let (ours, theirs) =
            both(&Case { ovmf: &ovmf, kernel: None, initrd: None, append: None, vcpus, vcpu_type, vmm, features: 1 });
        assert_eq!(ours, theirs, "{vcpus} x {vcpu_type} on {vmm}");
        n += 1;
    }
    // Other SEV features (e.g. 0x21: SNP and restricted injection).
    let (ours, theirs) = both(&Case {
        ovmf: &ovmf,
        kernel: None,
        initrd: None,
        append: None,
        vcpus: 2,
        vcpu_type: "EPYC-Milan",
        vmm: "QEMU",
        features: 0x21,
    });
    assert_eq!(ours, theirs);
    // The firmware's own digest, and a launch seeded with it.
    let theirs_ovmf = reference_digest(&["--mode".into(), "snp:ovmf-hash".into(), "--ovmf".into(), DEBIAN_OVMF.into()]);
    let ovmf_bytes = debian_ovmf();
    assert_eq!(hex::encode(snp_ovmf_digest(&ovmf_bytes).unwrap()), theirs_ovmf);
    let seeded = snp_launch_digest(&SnpLaunch {
        ovmf: &ovmf_bytes,
        ovmf_digest: Some(snp_ovmf_digest(&ovmf_bytes).unwrap()),
        kernel: None,
        initrd: None,
        append: None,
        vcpus: 4,
        vcpu_sig: vcpu_sig("EPYC-Milan").unwrap(),
        guest_features: 1,
        vmm: Vmm::Qemu,
    })
    .unwrap();
    assert_eq!(
        hex::encode(seeded),
        both(&Case {
            ovmf: &ovmf,
            kernel: None,
            initrd: None,
            append: None,
            vcpus: 4,
            vcpu_type: "EPYC-Milan",
            vmm: "QEMU",
            features: 1
        })
        .1
    );
    eprintln!("{} Debian OVMF cases agree", n + 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn launch_digests_with_kernel_hashes_match_sev_snp_measure() {
    let dir = std::env::temp_dir().join(format!("sigil-measure-k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let top = 1u32 << 31; // any addresses below the image will do
    let sections = [
        (0x80_0000, 0x9000, 1),    // SNP_SEC_MEM
        (0x80_9000, 0x1000, 2),    // secrets
        (0x80_a000, 0x1000, 3),    // CPUID
        (0x80_b000, 0x1000, 0x10), // kernel hashes
        (0x80_c000, 0x3000, 1),    // more SEC_MEM
        (0x80_f000, 0x1000, 4),    // SVSM CAA
    ];
    let _ = top;
    let fw = dir.join("fw.bin");
    std::fs::write(&fw, synthetic(7, 64, &sections, 0x80_bc00, 0xffff_f000 - 0x1000 + 0x0b0)).unwrap();
    let kernel = dir.join("vmlinuz");
    std::fs::write(&kernel, bytes(11, 300_001)).unwrap();
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, bytes(13, 77_777)).unwrap();
    let mut n = 0;
    for (k, i, a, vcpus, vmm) in [
        (false, false, None, 2, "QEMU"),
        (true, false, None, 1, "QEMU"),
        (true, true, Some("console=ttyS0 root=/dev/vda1 ro"), 4, "QEMU"),
        (true, true, Some("quiet"), 2, "ec2"),
        (true, false, Some("x"), 3, "gce"),
        (false, false, None, 2, "gce"),
    ] {
        let c = Case {
            ovmf: &fw,
            kernel: k.then_some(kernel.as_path()),
            initrd: i.then_some(initrd.as_path()),
            append: a,
            vcpus,
            vcpu_type: "EPYC-Milan",
            vmm,
            features: 1,
        };
        let (ours, theirs) = both(&c);
        assert_eq!(ours, theirs, "kernel {k} initrd {i} append {a:?} {vcpus} vCPUs {vmm}");
        n += 1;
    }
    // Every input counts: another kernel, command line or vCPU count changes the digest.
    let base = both(&Case {
        ovmf: &fw,
        kernel: Some(&kernel),
        initrd: None,
        append: Some("a"),
        vcpus: 2,
        vcpu_type: "EPYC-Milan",
        vmm: "QEMU",
        features: 1,
    })
    .0;
    let other_cmdline = both(&Case {
        ovmf: &fw,
        kernel: Some(&kernel),
        initrd: None,
        append: Some("b"),
        vcpus: 2,
        vcpu_type: "EPYC-Milan",
        vmm: "QEMU",
        features: 1,
    })
    .0;
    let other_cpu = both(&Case {
        ovmf: &fw,
        kernel: Some(&kernel),
        initrd: None,
        append: Some("a"),
        vcpus: 2,
        vcpu_type: "EPYC-Genoa",
        vmm: "QEMU",
        features: 1,
    })
    .0;
    assert!(base != other_cmdline && base != other_cpu && other_cmdline != other_cpu);
    eprintln!("{n} synthetic-firmware cases agree");
    let _ = std::fs::remove_dir_all(&dir);
}
