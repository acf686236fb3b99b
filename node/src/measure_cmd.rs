//! `sigil measure ...`: reference measurements from the guest image.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use attest::measure::{self, SnpLaunch, Vmm};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum MeasureCommand {
    /// The expected SEV-SNP launch digest (the report's MEASUREMENT) of a guest image, for `[snp] measurements`.
    ///
    /// It is computed the way the AMD secure processor chains it while the VMM adds the guest's pages: the OVMF
    /// firmware, the sections its SEV metadata lists (with the SEV hashes table of a direct-boot kernel, initrd
    /// and command line), and one VMSA per vCPU, whose registers depend on the vCPU type and on the VMM (QEMU/KVM,
    /// AWS EC2 and GCE differ). Checked against sev-snp-measure (PyPI) on the same inputs.
    ///
    /// The firmware must be the exact build the cloud or the VMM launches (AWS and GCE publish theirs). Azure's
    /// confidential VMs measure their own paravisor firmware: use the measurement Azure's attestation reports.
    ///
    /// Examples:
    ///   sigil measure snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-Milan
    ///   sigil measure snp --ovmf ovmf_img.fd --vmm ec2 --vcpus 2 --vcpu-type EPYC-Milan --json
    ///   sigil measure snp --ovmf OVMF.amdsev.fd --kernel vmlinuz --initrd initrd.img --append "console=ttyS0" \
    ///       --vcpus 8 --vcpu-type EPYC-Genoa --policy >> pod-policy.toml
    #[command(verbatim_doc_comment)]
    Snp(SnpArgs),
}

#[derive(Args)]
pub struct SnpArgs {
    /// The OVMF firmware image.
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,
    /// A kernel booted directly (measured through the firmware's SEV hashes table).
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Its initrd.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Its command line.
    #[arg(long, value_name = "CMDLINE", requires = "kernel")]
    append: Option<String>,
    /// vCPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=512))]
    vcpus: u32,
    /// The vCPU model (QEMU's names: EPYC, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin, and their versions).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["vcpu_sig", "vcpu_family"])]
    vcpu_type: Option<String>,
    /// The vCPU's CPUID signature (Fn0000_0001_EAX), hex.
    #[arg(long, value_name = "HEX", conflicts_with = "vcpu_family")]
    vcpu_sig: Option<String>,
    /// The vCPU's family, with --vcpu-model and --vcpu-stepping.
    #[arg(long, requires_all = ["vcpu_model", "vcpu_stepping"])]
    vcpu_family: Option<u32>,
    /// The vCPU's model.
    #[arg(long, requires = "vcpu_family")]
    vcpu_model: Option<u32>,
    /// The vCPU's stepping.
    #[arg(long, requires = "vcpu_family")]
    vcpu_stepping: Option<u32>,
    /// The VMM: qemu (QEMU/KVM), ec2 (AWS), gce (Google Compute Engine).
    #[arg(long, default_value = "qemu")]
    vmm: String,
    /// The guest's SEV features (hex; 0x1 = SNP active).
    #[arg(long, default_value = "0x1", value_name = "HEX")]
    guest_features: String,
    /// The digest of the firmware's pages, when it is published instead of the image (hex, 96 digits); the image
    /// is still read for its metadata.
    #[arg(long, value_name = "HEX")]
    ovmf_digest: Option<String>,
    /// Print JSON: the measurement, the firmware's digest and every input's SHA-256.
    #[arg(long, conflicts_with = "policy")]
    json: bool,
    /// Print a `[snp]` policy section that allows this measurement.
    #[arg(long)]
    policy: bool,
}

fn hex_u64(s: &str, what: &str) -> anyhow::Result<u64> {
    u64::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16)
        .with_context(|| format!("{what} {s:?} is not hex"))
}

pub fn run(cmd: MeasureCommand) -> ExitCode {
    let r = match cmd {
        MeasureCommand::Snp(a) => snp(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn snp(a: SnpArgs) -> anyhow::Result<()> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ovmf = read(&a.ovmf)?;
    let kernel = a.kernel.as_ref().map(read).transpose()?;
    let initrd = a.initrd.as_ref().map(read).transpose()?;
    let vcpu_sig = match (&a.vcpu_type, &a.vcpu_sig, a.vcpu_family) {
        (Some(t), _, _) => measure::vcpu_sig(t).with_context(|| {
            let names: Vec<&str> = measure::VCPU_TYPES.iter().map(|t| t.0).collect();
            format!("unknown --vcpu-type {t:?}; known: {}", names.join(", "))
        })?,
        (None, Some(s), _) => u32::try_from(hex_u64(s, "--vcpu-sig")?).context("--vcpu-sig is 32 bits")?,
        (None, None, Some(f)) => measure::cpu_sig(f, a.vcpu_model.unwrap_or(0), a.vcpu_stepping.unwrap_or(0)),
        (None, None, None) => {
            bail!("name the vCPU: --vcpu-type, --vcpu-sig, or --vcpu-family/--vcpu-model/--vcpu-stepping")
        }
    };
    let vmm: Vmm = a.vmm.parse()?;
    let ovmf_digest = match &a.ovmf_digest {
        Some(h) => Some(
            <[u8; 48]>::try_from(hex::decode(h).context("--ovmf-digest is not hex")?)
                .map_err(|_| anyhow::anyhow!("--ovmf-digest is 48 bytes (96 hex digits)"))?,
        ),
        None => None,
    };
    let launch = SnpLaunch {
        ovmf: &ovmf,
        ovmf_digest,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        append: a.append.as_deref(),
        vcpus: a.vcpus,
        vcpu_sig,
        guest_features: hex_u64(&a.guest_features, "--guest-features")?,
        vmm,
    };
    let m = hex::encode(measure::snp_launch_digest(&launch)?);
    if a.json {
        let sha256 = |b: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, b));
        let v = serde_json::json!({
            "platform": "sev-snp",
            "measurement": m,
            "ovmf_digest": hex::encode(match ovmf_digest { Some(d) => d, None => measure::snp_ovmf_digest(&ovmf)? }),
            "inputs": {
                "ovmf_sha256": sha256(&ovmf),
                "kernel_sha256": kernel.as_deref().map(sha256),
                "initrd_sha256": initrd.as_deref().map(sha256),
                "append": a.append,
                "vcpus": a.vcpus,
                "vcpu_sig": format!("{vcpu_sig:#010x}"),
                "vmm": a.vmm.to_ascii_lowercase(),
                "guest_features": format!("{:#x}", launch.guest_features),
            },
        });
        println!("{v}");
    } else if a.policy {
        println!(
            "[snp]\n# sigil measure snp: {} on {} ({} vCPUs, signature {vcpu_sig:#010x})",
            a.ovmf.display(),
            a.vmm,
            a.vcpus
        );
        println!("measurements = [\"{m}\"]");
    } else {
        println!("{m}");
    }
    Ok(())
}
