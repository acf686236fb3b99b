//! `sigil measure ...`: reference measurements from the guest image.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sigil_attest::measure::{self, SnpLaunch, Vmm};

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
    /// The expected Intel TDX MRTD (and RTMR0-2 where computable) of a guest image, for `[tdx]` policy.
    ///
    /// MRTD: the TDX module hashes the pages the host adds from the firmware's TDVF metadata. Hosts
    /// add and measure them in one of two orders, a property of their KVM and QEMU (--page-order):
    ///   per-page     upstream KVM (Linux 6.16+) with QEMU 10.1+, Google Compute Engine,
    ///                Intel's QEMU 7.2 and 8.1
    ///   per-section  KVM v19-era hosts: Canonical's Ubuntu 24.04 TDX host (QEMU 8.2.2), dstack 0.5
    /// Without --page-order both are printed (and both allowed by --policy).
    ///
    /// RTMRs, for QEMU direct boot (-bios OVMF.fd -kernel -initrd -append):
    ///   rtmr0  the TD HOB (from --memory), the firmware's CFV, empty Secure Boot variables and
    ///          QEMU's ACPI blobs, which depend on the whole VM: give them (--acpi-*, read in a
    ///          guest from /sys/firmware/qemu_fw_cfg/by_name/etc/...), or it is not computed
    ///   rtmr1  the kernel's Authenticode SHA-384; QEMU before 10.2 patches the kernel's setup
    ///          header first (--kernel-header qemu-patched, with --memory)
    ///   rtmr2  the command line with the firmware's initrd=initrd (--initrd-option), the initrd
    ///   rtmr3  zero at boot
    /// Clouds that run their own firmware (Azure, GCE) publish or report their own values.
    ///
    /// Examples:
    ///   sigil measure tdx --ovmf OVMF.fd
    ///   sigil measure tdx --ovmf OVMF.fd --page-order per-page --memory 4G \
    ///       --kernel vmlinuz --initrd initrd.img --append "console=ttyS0 root=/dev/vda" \
    ///       --kernel-header unmodified --initrd-option suffix --policy
    #[command(verbatim_doc_comment)]
    Tdx(TdxArgs),
    /// What a vTPM shows after UEFI firmware boots Sigil's node image, for `[vtpm]` policy.
    ///
    /// IMAGE is the Unified Kernel Image (sigil.efi), or the directory infra/image/build.py wrote.
    /// The firmware measures each UEFI application it loads into PCR 4 (the UKI, then the kernel the
    /// stub loads) and each driver into PCR 2; systemd's stub measures the UKI's sections into PCR 11
    /// (name, then content: .linux, .osrel, .cmdline, .initrd, as systemd 252 does), a command line
    /// given from outside into PCR 12 and extra credentials or system extensions into PCR 12/13. The
    /// printed policy pins PCR 4's applications and PCR 11 event by event, and requires no driver in
    /// PCR 2 and nothing in PCR 12 or 13: a changed byte in the kernel, the initrd (sigil, busybox,
    /// init) or the command line, or a command line the host passes, is refused with the event.
    ///
    /// What it does not cover: the firmware itself (PCR 0: applications built into it, such as
    /// OVMF's shell, run unlogged) and its variables (PCR 1, 7). A TEE's launch digest covers the
    /// firmware's code, not its variable store. A vTPM outside the TEE is the host's: its quote is
    /// the host's word (docs/measure.md).
    ///
    /// Examples:
    ///   sigil measure image out/sigil.efi
    ///   sigil measure image out/ --policy >> pod-policy.toml
    #[command(verbatim_doc_comment)]
    Image(ImageArgs),
}

#[derive(Args)]
pub struct ImageArgs {
    /// The UKI, or the directory that holds sigil.efi.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// Print JSON.
    #[arg(long, conflicts_with = "policy")]
    json: bool,
    /// Print a `[vtpm]` policy section for this image (see above for what it covers).
    #[arg(long)]
    policy: bool,
}

#[derive(Args)]
pub struct TdxArgs {
    /// The TDVF firmware image (OVMF.fd built with TDX support: the unified image, not OVMF_CODE.fd).
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,
    /// The host's page-add order: per-page or per-section (see above). Default: print both.
    #[arg(long, value_name = "ORDER")]
    page_order: Option<String>,
    /// The TD's RAM (QEMU -m), e.g. 2G, 4096M: for RTMR0's TD HOB and a QEMU-patched kernel header.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// A kernel booted directly: RTMR1.
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Its initrd: RTMR2.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Its command line: RTMR2.
    #[arg(long, value_name = "CMDLINE", requires = "kernel", default_value = "")]
    append: String,
    /// With --kernel: unmodified (QEMU 10.2+) or qemu-patched (earlier QEMU patches the setup header).
    #[arg(long, value_name = "HOW", requires = "kernel")]
    kernel_header: Option<String>,
    /// With --initrd: where the firmware puts initrd=initrd: suffix (edk2 to 2024) or prefix (later edk2).
    #[arg(long, value_name = "WHERE", requires = "initrd")]
    initrd_option: Option<String>,
    /// QEMU's etc/table-loader fw_cfg blob: RTMR0 (with --acpi-rsdp, --acpi-tables, --memory).
    #[arg(long, value_name = "FILE", requires_all = ["acpi_rsdp", "acpi_tables", "memory"])]
    acpi_loader: Option<PathBuf>,
    /// QEMU's etc/acpi/rsdp fw_cfg blob.
    #[arg(long, value_name = "FILE", requires = "acpi_loader")]
    acpi_rsdp: Option<PathBuf>,
    /// QEMU's etc/acpi/tables fw_cfg blob.
    #[arg(long, value_name = "FILE", requires = "acpi_loader")]
    acpi_tables: Option<PathBuf>,
    /// Print JSON: every value, each RTMR's event digests, and every input's SHA-256.
    #[arg(long, conflicts_with = "policy")]
    json: bool,
    /// Print a `[tdx]` policy section that allows these values.
    #[arg(long)]
    policy: bool,
}

/// `2G`, `4096M`, `512MiB` or bytes.
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (num, mul) = match t.trim_end_matches("iB").trim_end_matches('B') {
        n if n.ends_with(['G', 'g']) => (&n[..n.len() - 1], 1u64 << 30),
        n if n.ends_with(['M', 'm']) => (&n[..n.len() - 1], 1 << 20),
        n if n.ends_with(['K', 'k']) => (&n[..n.len() - 1], 1 << 10),
        n => (n, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|&n| n <= sigil_attest::measure::tdx::MAX_MEMORY)
        .with_context(|| format!("--memory {s:?}: a size such as 2G or 4096M, at most 64 TiB"))
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
        MeasureCommand::Tdx(a) => tdx(a),
        MeasureCommand::Image(a) => image(a),
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
        if kernel.is_some() {
            println!(
                "# the kernel, initrd and command line are in it (QEMU's kernel-hashes table): it pins the workload"
            );
            println!("measurements_cover = \"workload\"");
        } else {
            println!("# the firmware only: the workload is not pinned ([workload] in docs/attestation.md)");
        }
    } else {
        println!("{m}");
    }
    Ok(())
}

fn tdx(a: TdxArgs) -> anyhow::Result<()> {
    use sigil_attest::measure::tdx::{self, InitrdOption, KernelHeader, PageOrder, Tdvf};
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ovmf = read(&a.ovmf)?;
    let fw = Tdvf::parse(&ovmf).with_context(|| format!("{}", a.ovmf.display()))?;
    let orders: Vec<PageOrder> = match &a.page_order {
        Some(o) => vec![o.parse()?],
        None => vec![PageOrder::PerPage, PageOrder::PerSection],
    };
    let mrtd: Vec<(PageOrder, String)> = orders.iter().map(|&o| (o, hex::encode(tdx::mrtd(&fw, o)))).collect();
    let memory = a.memory.as_deref().map(parse_size).transpose()?;
    let kernel = a.kernel.as_ref().map(read).transpose()?;
    let initrd = a.initrd.as_ref().map(read).transpose()?;

    let rtmr0 = match (&a.acpi_loader, &a.acpi_rsdp, &a.acpi_tables) {
        (Some(l), Some(r), Some(t)) => {
            let (l, r, t) = (read(l)?, read(r)?, read(t)?);
            let mem = memory.context("RTMR0 needs --memory (the TD HOB describes the TD's RAM)")?;
            Some(tdx::rtmr0_events(&fw, mem, &tdx::Acpi { loader: &l, rsdp: &r, tables: &t })?)
        }
        _ => None,
    };
    let style = match (a.initrd_option.as_deref(), initrd.is_some()) {
        (_, false) | (Some("suffix"), true) => InitrdOption::Suffix,
        (Some("prefix"), true) => InitrdOption::Prefix,
        (Some(o), true) => bail!("--initrd-option {o:?}: suffix or prefix"),
        (None, true) => bail!(
            "--initrd needs --initrd-option: suffix (\"CMDLINE initrd=initrd\", edk2 to 2024) or prefix (\"initrd=initrd CMDLINE\", later edk2)"
        ),
    };
    let rtmr2 = kernel.as_ref().map(|_| tdx::rtmr2_events(&a.append, initrd.as_deref(), style));
    let rtmr1 = match &kernel {
        None => None,
        Some(k) => {
            let header = match a.kernel_header.as_deref() {
                Some("unmodified") => KernelHeader::Unmodified,
                Some("qemu-patched") => KernelHeader::QemuPatched {
                    memory: memory.context("--kernel-header qemu-patched needs --memory")?,
                    initrd_size: initrd.as_ref().map(|i| i.len() as u64),
                    cmdline: &a.append,
                },
                Some(o) => bail!("--kernel-header {o:?}: unmodified or qemu-patched"),
                None => bail!(
                    "--kernel needs --kernel-header: unmodified (QEMU 10.2 and later) or qemu-patched (earlier QEMU patches the kernel's setup header, so RTMR1 differs)"
                ),
            };
            Some(tdx::rtmr1_events(k, header)?)
        }
    };
    let value = |e: &Option<Vec<sigil_attest::measure::Digest>>| e.as_ref().map(|e| hex::encode(tdx::rtmr(e)));
    let (r0, r1, r2) = (value(&rtmr0), value(&rtmr1), value(&rtmr2));
    let zero = hex::encode([0u8; 48]);

    if a.json {
        let sha256 = |b: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, b));
        let events = |e: &Option<Vec<sigil_attest::measure::Digest>>| {
            e.as_ref().map(|e| e.iter().map(hex::encode).collect::<Vec<_>>())
        };
        let v = serde_json::json!({
            "platform": "tdx",
            "mrtd": mrtd.iter().map(|(o, m)| (o.as_str().to_string(), serde_json::Value::from(m.clone()))).collect::<serde_json::Map<_, _>>(),
            "rtmr0": r0, "rtmr1": r1, "rtmr2": r2, "rtmr3": zero,
            "events": { "rtmr0": events(&rtmr0), "rtmr1": events(&rtmr1), "rtmr2": events(&rtmr2) },
            "cfv_sha384": fw.cfv_digest().map(hex::encode),
            "td_hob_sha384": memory.map(|m| tdx::td_hob(&fw, m).map(|h| hex::encode(sigil_attest::sha384(&h)))).transpose()?,
            "inputs": {
                "ovmf_sha256": sha256(&ovmf),
                "kernel_sha256": kernel.as_deref().map(sha256),
                "initrd_sha256": initrd.as_deref().map(sha256),
                "append": a.kernel.as_ref().map(|_| &a.append),
                "memory": memory,
                "kernel_header": a.kernel_header,
                "initrd_option": a.initrd_option,
            },
        });
        println!("{v}");
    } else if a.policy {
        println!("[tdx]\n# sigil measure tdx: {}", a.ovmf.display());
        let list: Vec<String> = mrtd.iter().map(|(_, m)| format!("\"{m}\"")).collect();
        let orders: Vec<&str> = mrtd.iter().map(|(o, _)| o.as_str()).collect();
        println!("# MRTD for page order {}", orders.join(" and "));
        println!("mrtd = [{}]", list.join(", "));
        for (name, v) in [("rtmr0", &r0), ("rtmr1", &r1), ("rtmr2", &r2)] {
            if let Some(v) = v {
                println!("{name} = [\"{v}\"]");
            }
        }
    } else {
        for (o, m) in &mrtd {
            println!("mrtd ({:<11}) {m}", o.as_str());
        }
        let why0 = "not computed: QEMU's ACPI blobs are needed (--acpi-loader, --acpi-rsdp, --acpi-tables, --memory)";
        println!("rtmr0 {}", r0.as_deref().unwrap_or(why0));
        println!("rtmr1 {}", r1.as_deref().unwrap_or("not computed: no --kernel"));
        println!("rtmr2 {}", r2.as_deref().unwrap_or("not computed: no --kernel"));
        println!("rtmr3 {zero} (nothing measures it at boot)");
    }
    Ok(())
}

fn image(a: ImageArgs) -> anyhow::Result<()> {
    let path = if a.image.is_dir() { a.image.join("sigil.efi") } else { a.image.clone() };
    let uki = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let m = measure::uki::measure_uki(&uki).with_context(|| format!("{}", path.display()))?;
    let cmdline =
        m.sections.iter().find(|(n, _)| n == ".cmdline").map(|(_, c)| String::from_utf8_lossy(c).into_owned());
    let pcr11: Vec<String> = m.pcr11_events.iter().map(|(_, d)| hex::encode(d)).collect();
    if a.json {
        let v = serde_json::json!({
            "image": path.display().to_string(),
            "sha256": hex::encode(sigil_attest::sha256(&uki)),
            "pcr4": { "uki": hex::encode(m.uki), "kernel": hex::encode(m.kernel) },
            "pcr11": {
                "events": m.pcr11_events.iter().map(|(s, d)| serde_json::json!({ "section": s, "digest": hex::encode(d) })).collect::<Vec<_>>(),
                "value": hex::encode(m.pcr11),
            },
            "cmdline": cmdline,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if a.policy {
        println!("# sigil measure image {:?}: UEFI firmware and systemd's stub booting this UKI, seen by a vTPM", path);
        println!("[vtpm]");
        println!("require_quote = true");
        println!("events = [");
        println!("  # PCR 4: the UEFI applications loaded, in order: the UKI, then its kernel (Authenticode SHA-256)");
        println!(
            "  {{ pcr = 4, kind = \"EV_EFI_BOOT_SERVICES_APPLICATION\", digests = [\"{}\", \"{}\"] }},",
            hex::encode(m.uki),
            hex::encode(m.kernel)
        );
        let names: Vec<&str> = m.pcr11_events.iter().step_by(2).map(|(s, _)| s.as_str()).collect();
        println!("  # PCR 11: systemd's stub, each section's name then content: {}", names.join(", "));
        println!("  {{ pcr = 11, digests = [");
        for d in &pcr11 {
            println!("    \"{d}\",");
        }
        println!("  ] }},");
        println!(
            "  # No driver loaded from a device or a boot variable (PCR 2): one could hook what is measured after it"
        );
        println!("  {{ pcr = 2, kind = \"EV_EFI_BOOT_SERVICES_DRIVER\", digests = [] }},");
        println!("  {{ pcr = 2, kind = \"EV_EFI_RUNTIME_SERVICES_DRIVER\", digests = [] }},");
        println!("  # Nothing from outside the UKI: a command line passed by the boot entry or the host (PCR 12),");
        println!("  # credentials or system extensions from the disk (PCR 12, 13)");
        println!("  {{ pcr = 12, digests = [] }},");
        println!("  {{ pcr = 13, digests = [] }},");
        println!("]");
    } else {
        println!("image     {} (sha256 {})", path.display(), hex::encode(sigil_attest::sha256(&uki)));
        println!("pcr4      uki      {}", hex::encode(m.uki));
        println!("          kernel   {}", hex::encode(m.kernel));
        for (s, d) in &m.pcr11_events {
            println!("pcr11     {s:<9}{}", hex::encode(d));
        }
        println!("          value    {}", hex::encode(m.pcr11));
        if let Some(c) = cmdline {
            println!("cmdline   {c:?}");
        }
    }
    Ok(())
}
