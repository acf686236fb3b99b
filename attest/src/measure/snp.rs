//! Expected SEV-SNP launch digests, computed from the guest image.
//!
//! The SNP launch digest is the chain the AMD secure processor computes while the
//! hypervisor adds the guest's initial pages (SEV-SNP ABI specification, `SNP_LAUNCH_UPDATE` and the PAGE_INFO
//! structure): for every page, `digest = SHA-384(digest ‖ contents ‖ PAGE_INFO fields ‖ GPA)`. What a QEMU-style
//! launch adds, in order:
//!
//! 1. the firmware (OVMF) as normal pages, ending at 4 GiB;
//! 2. the sections its SEV metadata lists: zero pages (`SNP_SEC_MEM`), the secrets page, the CPUID page, and the
//!    page holding the SEV hashes table (SHA-256 of kernel, initrd and command line) or zero pages without one;
//! 3. one VMSA per vCPU: the initial register state, which depends on the vCPU's CPUID signature (in RDX), the
//!    SEV features, and the VMM (QEMU, AWS EC2 and GCE set a few registers differently).
//!
//! Input is bytes; nothing here reads files or trusts the firmware's tables beyond their bounds (malformed
//! firmware is an error, never a panic). Proven against `sev-snp-measure` (PyPI), an implementation we did not
//! write, on the same inputs (`attest/tests/measure.rs`).

use ring::digest::{digest, SHA256, SHA384};

use super::{bad_parameter, err, footer_table, guid, Digest, FooterEntry, MeasureError};
use crate::reader::le_u32;

/// The VMM that launches the guest: its initial register state differs slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmm {
    /// QEMU/KVM (GCP and Azure use their own; see docs/measure.md).
    Qemu,
    /// AWS EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

impl std::str::FromStr for Vmm {
    type Err = MeasureError;
    fn from_str(s: &str) -> Result<Vmm, MeasureError> {
        match s.to_ascii_lowercase().as_str() {
            "qemu" => Ok(Vmm::Qemu),
            "ec2" | "aws" => Ok(Vmm::Ec2),
            "gce" | "gcp" => Ok(Vmm::Gce),
            _ => bad_parameter(format!("unknown VMM {s:?}: qemu, ec2 or gce")),
        }
    }
}

/// The CPUID signature (Fn0000_0001_EAX) of a family, model and stepping (AMD CPUID specification #25481).
pub fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf { (0xf, (family - 0xf) & 0xff) } else { (family, 0) };
    (family_high << 20) | (((model >> 4) & 0xf) << 16) | (family_low << 8) | ((model & 0xf) << 4) | (stepping & 0xf)
}

/// QEMU's EPYC CPU models and their signatures.
pub const VCPU_TYPES: &[(&str, u32, u32, u32)] = &[
    ("EPYC", 23, 1, 2),
    ("EPYC-v1", 23, 1, 2),
    ("EPYC-v2", 23, 1, 2),
    ("EPYC-IBPB", 23, 1, 2),
    ("EPYC-v3", 23, 1, 2),
    ("EPYC-v4", 23, 1, 2),
    ("EPYC-Rome", 23, 49, 0),
    ("EPYC-Rome-v1", 23, 49, 0),
    ("EPYC-Rome-v2", 23, 49, 0),
    ("EPYC-Rome-v3", 23, 49, 0),
    ("EPYC-Milan", 25, 1, 1),
    ("EPYC-Milan-v1", 25, 1, 1),
    ("EPYC-Milan-v2", 25, 1, 1),
    ("EPYC-Genoa", 25, 17, 0),
    ("EPYC-Genoa-v1", 25, 17, 0),
    ("EPYC-Turin", 26, 0, 0),
];

/// The signature of a named vCPU type (case-insensitive).
pub fn vcpu_sig(name: &str) -> Option<u32> {
    VCPU_TYPES.iter().find(|(n, ..)| n.eq_ignore_ascii_case(name)).map(|&(_, f, m, s)| cpu_sig(f, m, s))
}

const SEV_HASH_TABLE_RV_GUID: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
const SEV_ES_RESET_BLOCK_GUID: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
const SEV_METADATA_GUID: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
const HASH_TABLE_GUID: &str = "9438d606-4f22-4cc9-b479-a793d411fd21";
const KERNEL_GUID: &str = "4de79437-abd2-427f-b835-d5b172d2045b";
const INITRD_GUID: &str = "44baf731-3a2f-4bd7-9af1-41e29169781d";
const CMDLINE_GUID: &str = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";

/// A section of the firmware's SEV metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Memory the firmware uses early: zero pages.
    SecMem,
    /// The SNP secrets page.
    Secrets,
    /// The CPUID page.
    Cpuid,
    /// The SVSM calling area: zero pages.
    SvsmCaa,
    /// The page of the SEV hashes table (kernel, initrd, command line).
    KernelHashes,
}

/// One metadata section: where, how long, what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataSection {
    /// Guest physical address.
    pub gpa: u32,
    /// Length in bytes.
    pub size: u32,
    /// Its type.
    pub kind: Section,
}

/// The parts of an OVMF image a launch measurement depends on.
#[derive(Clone, Debug)]
pub struct Ovmf<'a> {
    data: &'a [u8],
    /// The GUIDed entries of the footer table.
    table: Vec<FooterEntry<'a>>,
    /// The SEV metadata sections, in firmware order.
    pub sections: Vec<MetadataSection>,
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table (the GUIDed list that ends 32 bytes before the image's end) and the SEV metadata.
    pub fn parse(data: &'a [u8]) -> Result<Ovmf<'a>, MeasureError> {
        if data.is_empty() || !data.len().is_multiple_of(4096) {
            return err(format!("the firmware is {} bytes, not a whole number of 4 KiB pages", data.len()));
        }
        if data.len() as u64 > 1 << 32 {
            return err("the firmware is larger than 4 GiB");
        }
        let table = footer_table(data)?;
        let mut o = Ovmf { data, table, sections: Vec::new() };
        if let Some(entry) = o.entry(SEV_METADATA_GUID) {
            let back =
                le_u32(entry, 0).ok_or(MeasureError::Firmware("the SEV metadata entry is short".into()))? as usize;
            let start = data
                .len()
                .checked_sub(back)
                .ok_or(MeasureError::Firmware("the SEV metadata is outside the image".into()))?;
            let header = data
                .get(start..start + 16)
                .ok_or(MeasureError::Firmware("the SEV metadata is outside the image".into()))?;
            if &header[..4] != b"ASEV" {
                return err("the SEV metadata's signature is not ASEV");
            }
            if le_u32(header, 8) != Some(1) {
                return err("the SEV metadata's version is not 1");
            }
            let items = le_u32(header, 12).unwrap_or(0) as usize;
            for i in 0..items {
                let at = start + 16 + i * 12;
                let (Some(gpa), Some(size), Some(kind)) =
                    (le_u32(data, at), le_u32(data, at + 4), le_u32(data, at + 8))
                else {
                    return err("the SEV metadata sections run past the image");
                };
                let kind = match kind {
                    1 => Section::SecMem,
                    2 => Section::Secrets,
                    3 => Section::Cpuid,
                    4 => Section::SvsmCaa,
                    0x10 => Section::KernelHashes,
                    k => return err(format!("unknown SEV metadata section type {k:#x}")),
                };
                if matches!(kind, Section::SecMem | Section::SvsmCaa | Section::KernelHashes)
                    && !size.is_multiple_of(4096)
                {
                    return err(format!("SEV metadata section {i} ({kind:?}) is {size} bytes, not whole pages"));
                }
                o.sections.push(MetadataSection { gpa, size, kind });
            }
        }
        Ok(o)
    }

    fn entry(&self, g: &str) -> Option<&'a [u8]> {
        let g = guid(g);
        self.table.iter().find(|(x, _)| *x == g).map(|(_, d)| *d)
    }

    /// The guest physical address the image starts at (it ends at 4 GiB).
    pub fn gpa(&self) -> u64 {
        (1u64 << 32) - self.data.len() as u64
    }

    /// The AP reset address (the SEV-ES reset block), if the firmware has one.
    pub fn ap_reset_eip(&self) -> Option<u32> {
        self.entry(SEV_ES_RESET_BLOCK_GUID).and_then(|e| le_u32(e, 0))
    }

    /// Where the SEV hashes table goes, if the firmware measures a kernel.
    pub fn hashes_table_gpa(&self) -> Option<u32> {
        self.entry(SEV_HASH_TABLE_RV_GUID).and_then(|e| le_u32(e, 0))
    }
}

/// The launch digest as the secure processor chains it.
struct Gctx(Digest);

impl Gctx {
    const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

    fn update(&mut self, page_type: u8, gpa: u64, contents: &[u8; 48]) {
        // PAGE_INFO: the digest so far, the page's contents digest, length 0x70, page type, IMI 0, VMPL 3..1
        // permissions 0, reserved, GPA.
        let mut info = [0u8; 0x70];
        info[..48].copy_from_slice(&self.0);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        info[98] = page_type;
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.0.copy_from_slice(digest(&SHA384, &info).as_ref());
    }

    fn normal(&mut self, gpa: u64, data: &[u8]) {
        for (i, page) in data.chunks(4096).enumerate() {
            let d: [u8; 48] = digest(&SHA384, page).as_ref().try_into().expect("48 bytes");
            self.update(0x01, gpa + 4096 * i as u64, &d);
        }
    }

    fn each_page(&mut self, page_type: u8, gpa: u64, len: u64) {
        for i in 0..len.div_ceil(4096) {
            self.update(page_type, gpa + 4096 * i, &[0; 48]);
        }
    }
}

/// What the guest is launched with.
#[derive(Clone, Debug)]
pub struct SnpLaunch<'a> {
    /// The firmware image.
    pub ovmf: &'a [u8],
    /// The digest of the firmware's pages alone ([`snp_ovmf_digest`]), when known instead of the image's pages
    /// (a vendor that publishes it); the image is still parsed for its metadata.
    pub ovmf_digest: Option<Digest>,
    /// A kernel measured through the SEV hashes table (direct boot), with its initrd and command line.
    pub kernel: Option<&'a [u8]>,
    /// The initrd (only with a kernel).
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line (only with a kernel).
    pub append: Option<&'a str>,
    /// vCPUs.
    pub vcpus: u32,
    /// Their CPUID signature ([`vcpu_sig`], [`cpu_sig`]).
    pub vcpu_sig: u32,
    /// The SEV features the guest runs with (the VMSA's SEV_FEATURES; 0x1 = SNP active).
    pub guest_features: u64,
    /// The VMM.
    pub vmm: Vmm,
}

/// The firmware pages' part of the digest (what `--ovmf-digest` takes).
pub fn snp_ovmf_digest(ovmf: &[u8]) -> Result<Digest, MeasureError> {
    let o = Ovmf::parse(ovmf)?;
    let mut g = Gctx([0; 48]);
    g.normal(o.gpa(), ovmf);
    Ok(g.0)
}

/// The SEV hashes table for a kernel, initrd and command line (padded to 16 bytes), as the firmware checks it.
pub fn sev_hashes_table(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Vec<u8> {
    let sha256 = |b: &[u8]| digest(&SHA256, b).as_ref().to_vec();
    let cmdline = match append {
        Some(a) if !a.is_empty() => [a.as_bytes(), &[0]].concat(),
        _ => vec![0],
    };
    let entry = |g: &str, hash: Vec<u8>| [guid(g).as_slice(), &50u16.to_le_bytes(), &hash].concat();
    let mut t = [guid(HASH_TABLE_GUID).as_slice(), &168u16.to_le_bytes()].concat();
    t.extend(entry(CMDLINE_GUID, sha256(&cmdline)));
    t.extend(entry(INITRD_GUID, sha256(initrd.unwrap_or(&[]))));
    t.extend(entry(KERNEL_GUID, sha256(kernel)));
    t.resize(t.len().div_ceil(16) * 16, 0);
    t
}

/// A vCPU's initial VMSA (AMD APM vol. 2, table B-4: the save area's layout), as the VMM sets it.
pub fn vmsa(eip: u32, vcpu_sig: u32, sev_features: u64, vmm: Vmm) -> [u8; 4096] {
    let mut v = [0u8; 4096];
    let mut seg = |at: usize, selector: u16, attrib: u16, limit: u32, base: u64| {
        v[at..at + 2].copy_from_slice(&selector.to_le_bytes());
        v[at + 2..at + 4].copy_from_slice(&attrib.to_le_bytes());
        v[at + 4..at + 8].copy_from_slice(&limit.to_le_bytes());
        v[at + 8..at + 16].copy_from_slice(&base.to_le_bytes());
    };
    let (cs, ss, tr) = match vmm {
        Vmm::Qemu | Vmm::Gce => (0x9b, 0x93, 0x8b),
        Vmm::Ec2 if eip == 0xffff_fff0 => (0x9a, 0x92, 0x83),
        Vmm::Ec2 => (0x9b, 0x92, 0x83),
    };
    seg(0x00, 0, 0x93, 0xffff, 0); // es
    seg(0x10, 0xf000, cs, 0xffff, (eip & 0xffff_0000) as u64); // cs
    seg(0x20, 0, ss, 0xffff, 0); // ss
    seg(0x30, 0, 0x93, 0xffff, 0); // ds
    seg(0x40, 0, 0x93, 0xffff, 0); // fs
    seg(0x50, 0, 0x93, 0xffff, 0); // gs
    seg(0x60, 0, 0, 0xffff, 0); // gdtr
    seg(0x70, 0, 0x82, 0xffff, 0); // ldtr
    seg(0x80, 0, 0, 0xffff, 0); // idtr
    seg(0x90, 0, tr, 0xffff, 0); // tr
    let mut q = |at: usize, x: u64| v[at..at + 8].copy_from_slice(&x.to_le_bytes());
    q(0xd0, 0x1000); // EFER: SVME (KVM sets it)
    q(0x148, 0x40); // CR4: MCE
    q(0x158, 0x10); // CR0: ET
    q(0x160, 0x400); // DR7
    q(0x168, 0xffff_0ff0); // DR6
    q(0x170, 0x2); // RFLAGS
    q(0x178, (eip & 0xffff) as u64); // RIP
    q(0x268, if vmm == Vmm::Gce { 0x0007_0106 } else { 0x0007_0406_0007_0406 }); // G_PAT
    q(0x310, if vmm == Vmm::Qemu { vcpu_sig as u64 } else { 0x600 }); // RDX: the CPUID signature
    q(0x3b0, sev_features); // SEV_FEATURES
    q(0x3e8, 0x1); // XCR0
    if vmm == Vmm::Qemu {
        v[0x408..0x40c].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        v[0x410..0x412].copy_from_slice(&0x37fu16.to_le_bytes()); // x87 FCW
    }
    v
}

/// The expected SNP launch digest (the attestation report's MEASUREMENT).
pub fn snp_launch_digest(l: &SnpLaunch) -> Result<Digest, MeasureError> {
    let o = Ovmf::parse(l.ovmf)?;
    if l.vcpus == 0 {
        return bad_parameter("a guest has at least one vCPU");
    }
    if l.kernel.is_none() && (l.initrd.is_some() || l.append.is_some()) {
        return bad_parameter("an initrd or a command line is measured only with a kernel");
    }
    let mut g = Gctx([0; 48]);
    match l.ovmf_digest {
        Some(d) => g.0 = d,
        None => g.normal(o.gpa(), l.ovmf),
    }
    let table = l.kernel.map(|k| sev_hashes_table(k, l.initrd, l.append));
    if table.is_some() && !o.sections.iter().any(|s| s.kind == Section::KernelHashes) {
        return err("a kernel is given, but the firmware has no SNP_KERNEL_HASHES section (it cannot measure one)");
    }
    for s in &o.sections {
        let (gpa, size) = (s.gpa as u64, s.size as u64);
        match s.kind {
            Section::SecMem if l.vmm == Vmm::Gce => g.each_page(0x04, gpa, size), // unmeasured
            Section::SecMem | Section::SvsmCaa => g.each_page(0x03, gpa, size),
            Section::Secrets => g.update(0x05, gpa, &[0; 48]),
            Section::Cpuid if l.vmm == Vmm::Ec2 => {} // EC2 adds the CPUID pages last
            Section::Cpuid => g.update(0x06, gpa, &[0; 48]),
            Section::KernelHashes => match &table {
                Some(t) => {
                    if size != 4096 {
                        return err(format!("the SNP_KERNEL_HASHES section is {size} bytes, not one page"));
                    }
                    let at = o.hashes_table_gpa().ok_or(MeasureError::Firmware(
                        "the firmware has an SNP_KERNEL_HASHES section but no SEV hashes table address".into(),
                    ))? as usize
                        & 0xfff;
                    if at + t.len() > 4096 {
                        return err("the SEV hashes table does not fit in its page");
                    }
                    let mut page = [0u8; 4096];
                    page[at..at + t.len()].copy_from_slice(t);
                    g.normal(gpa, &page);
                }
                None => g.each_page(0x03, gpa, size),
            },
        }
    }
    if l.vmm == Vmm::Ec2 {
        for s in o.sections.iter().filter(|s| s.kind == Section::Cpuid) {
            g.update(0x06, s.gpa as u64, &[0; 48]);
        }
    }
    let bsp = vmsa(0xffff_fff0, l.vcpu_sig, l.guest_features, l.vmm);
    let ap = if l.vcpus > 1 {
        let eip = o
            .ap_reset_eip()
            .ok_or(MeasureError::Firmware("the firmware has no SEV-ES reset block (for the APs)".into()))?;
        vmsa(eip, l.vcpu_sig, l.guest_features, l.vmm)
    } else {
        bsp
    };
    for i in 0..l.vcpus {
        let d: [u8; 48] = digest(&SHA384, if i == 0 { &bsp } else { &ap }).as_ref().try_into().expect("48 bytes");
        g.update(0x02, Gctx::VMSA_GPA, &d);
    }
    Ok(g.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_signatures_match_the_cpuid_encoding() {
        // Milan: family 19h (0xf + 0xa), model 1, stepping 1 → 0x00a00f11.
        assert_eq!(vcpu_sig("EPYC-Milan"), Some(0x00a0_0f11));
        assert_eq!(vcpu_sig("epyc-rome"), Some(0x0083_0f10));
        assert_eq!(vcpu_sig("EPYC-Genoa"), Some(0x00a1_0f10));
        assert_eq!(vcpu_sig("nope"), None);
    }

    #[test]
    fn guids_are_stored_mixed_endian() {
        assert_eq!(
            guid("96b582de-1fb2-45f7-baea-a366c55a082d"),
            [0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]
        );
    }

    #[test]
    fn the_hashes_table_has_its_layout() {
        let t = sev_hashes_table(b"kernel", None, Some("console=ttyS0"));
        assert_eq!(t.len(), 176);
        assert_eq!(&t[16..18], &168u16.to_le_bytes());
        assert_eq!(&t[18 + 16..18 + 18], &50u16.to_le_bytes());
        assert_eq!(&t[18 + 18..18 + 50], digest(&SHA256, b"console=ttyS0\0").as_ref());
        assert_eq!(&t[118 + 18..168], digest(&SHA256, b"kernel").as_ref());
    }

    #[test]
    fn malformed_firmware_is_an_error_not_a_panic() {
        assert!(Ovmf::parse(&[]).is_err());
        assert!(Ovmf::parse(&[0; 100]).is_err());
        // A footer that claims a table larger than the image.
        let mut f = vec![0u8; 4096];
        let footer = 4096 - 32 - 18;
        f[footer..footer + 2].copy_from_slice(&0xffffu16.to_le_bytes());
        f[footer + 2..footer + 18].copy_from_slice(&guid(super::super::FOOTER_GUID));
        assert!(Ovmf::parse(&f).is_err());
        // No footer at all: parses, with no metadata; one vCPU needs no reset block.
        let plain = vec![0u8; 8192];
        let l = SnpLaunch {
            ovmf: &plain,
            ovmf_digest: None,
            kernel: None,
            initrd: None,
            append: None,
            vcpus: 1,
            vcpu_sig: 0,
            guest_features: 1,
            vmm: Vmm::Qemu,
        };
        assert!(snp_launch_digest(&l).is_ok());
        assert!(snp_launch_digest(&SnpLaunch { vcpus: 2, ..l.clone() })
            .unwrap_err()
            .to_string()
            .contains("reset block"));
        assert!(snp_launch_digest(&SnpLaunch { kernel: Some(b"k"), ..l.clone() })
            .unwrap_err()
            .to_string()
            .contains("KERNEL_HASHES"));
        assert!(snp_launch_digest(&SnpLaunch { append: Some("x"), ..l }).is_err());
    }
}
