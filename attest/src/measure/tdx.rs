//! Expected Intel TDX measurements (MRTD, RTMR0–2), computed from the guest image.
//!
//! **MRTD** is one SHA-384 over the stream of 128-byte buffers the TDX module hashes while the host adds the TD's
//! initial pages (TDX module specification, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND): for each page added,
//! `"MEM.PAGE.ADD" ‖ GPA`; for each 256-byte chunk extended, `"MR.EXTEND" ‖ GPA` and the chunk. Which pages, and
//! which are extended, the firmware's TDVF metadata says (its sections: BFV, CFV, TD_HOB, TempMem). In which
//! order the host issues the two calls depends on the host's KVM and QEMU: [`PageOrder`].
//!
//! **RTMRs** are extended by the firmware and the kernel's EFI stub, `RTMR = SHA-384(RTMR ‖ digest)`, for QEMU
//! direct boot (`-bios OVMF.fd -kernel -initrd -append`):
//! - RTMR0: the TD HOB QEMU builds (from the RAM size and the metadata), the CFV (the firmware's configuration
//!   volume), the Secure Boot variables (empty), a separator, QEMU's three ACPI blobs (which depend on the whole
//!   machine configuration: they are inputs, not computed), BootOrder and Boot0000;
//! - RTMR1: the kernel's Authenticode SHA-384 as the firmware receives it (QEMU before 10.2 patches the kernel's
//!   setup header first: [`KernelHeader`]), and four fixed events;
//! - RTMR2: the kernel's load options (the command line, with the firmware's `initrd=initrd`) and the initrd.
//!
//! Input is bytes; malformed input is an error, never a panic. Checked against Phala's `dstack-mr`, an
//! implementation we did not write (docs/measure.md says how, and what is pinned).

use ring::digest::{digest, Context, SHA384};

use super::authenticode::authenticode;
use super::{bad_kernel, bad_parameter, err, footer_table, guid, Digest, MeasureError};
use crate::error::ParseError;
use crate::reader::{le_u16, le_u32, Reader};

const TDX_METADATA_OFFSET_GUID: &str = "e47a6535-984a-4798-865e-4685a7bf8ec2";
const PAGE: u64 = 4096;
const CHUNK: usize = 256;
/// The most RAM a TD may have here (64 TiB).
pub const MAX_MEMORY: u64 = 1 << 46;
/// Most guest memory all sections together may span.
const MAX_SECTIONS_MEMORY: u64 = 256 << 20;

/// A TDVF section's type (upstream QEMU launches only these four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionType {
    /// The boot firmware volume (code).
    Bfv,
    /// The configuration firmware volume (variables).
    Cfv,
    /// Where QEMU writes the TD HOB.
    TdHob,
    /// Memory the firmware uses early.
    TempMem,
}

/// One TDVF metadata section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdvfSection {
    /// Offset of its contents in the image.
    pub data_offset: u32,
    /// Bytes of contents in the image.
    pub raw_size: u32,
    /// Guest physical address.
    pub gpa: u64,
    /// Bytes of guest memory.
    pub mem_size: u64,
    /// Its type.
    pub kind: SectionType,
    /// Whether its contents are measured (TDH.MR.EXTEND) into MRTD.
    pub extend: bool,
}

/// A TDVF image: the firmware and its TDX metadata.
#[derive(Clone, Debug)]
pub struct Tdvf<'a> {
    data: &'a [u8],
    /// The sections, in metadata order (the order MRTD measures them in).
    pub sections: Vec<TdvfSection>,
}

impl<'a> Tdvf<'a> {
    /// Finds and checks the TDX metadata as QEMU does (and a little more: an extended section must lie inside
    /// the image with as many bytes in the image as in memory).
    pub fn parse(data: &'a [u8]) -> Result<Tdvf<'a>, MeasureError> {
        if data.len() < 4096 || data.len() as u64 > 1 << 32 {
            return err(format!("the firmware is {} bytes: not a TDVF image", data.len()));
        }
        let table = footer_table(data)?;
        let g = guid(TDX_METADATA_OFFSET_GUID);
        let entry = table.iter().find(|(x, _)| *x == g).map(|(_, d)| *d).ok_or_else(|| {
            MeasureError::Firmware("the firmware has no TDX metadata (not a TDVF build: use OVMF built with TDX support, e.g. Debian's or Ubuntu's OVMF.fd)".into())
        })?;
        let back =
            le_u32(entry, 0).ok_or(MeasureError::Firmware("the TDX metadata offset entry is short".into()))? as usize;
        let at = data
            .len()
            .checked_sub(back)
            .filter(|a| a + 16 <= data.len())
            .ok_or(MeasureError::Firmware("the TDX metadata is outside the image".into()))?;
        if &data[at..at + 4] != b"TDVF" {
            return err("the TDX metadata's signature is not TDVF");
        }
        let length = le_u32(data, at + 4).unwrap_or(0) as usize;
        let version = le_u32(data, at + 8).unwrap_or(0);
        let n = le_u32(data, at + 12).unwrap_or(0) as usize;
        if version != 1 {
            return err(format!("TDVF metadata version {version}; only 1 is defined"));
        }
        if !(2..=64).contains(&n) || length != 16 + 32 * n || at + length > data.len() {
            return err(format!("TDVF metadata of length {length} with {n} sections is malformed"));
        }
        let mut sections = Vec::with_capacity(n);
        for i in 0..n {
            // EFI_TDX_METADATA_DESCRIPTOR: u32 data offset, u32 raw size, u64 GPA, u64 memory size, u32 type,
            // u32 attributes (32 bytes, in bounds: `length` was checked against `n` and the image above).
            let mut r = Reader::new(&data[at + 16 + 32 * i..at + 48 + 32 * i], "TDVF section");
            let fields = (|| Ok::<_, ParseError>((r.u32()?, r.u32()?, r.u64()?, r.u64()?, r.u32()?, r.u32()?)))();
            let (data_offset, raw_size, gpa, mem_size, kind, attributes) = fields.expect("32 bytes");
            let kind = match kind {
                0 => SectionType::Bfv,
                1 => SectionType::Cfv,
                2 => SectionType::TdHob,
                3 => SectionType::TempMem,
                k => {
                    return err(format!(
                        "TDVF section {i} has type {k}: QEMU launches only BFV, CFV, TD_HOB and TempMem"
                    ))
                }
            };
            if attributes & !1 != 0 {
                return err(format!(
                    "TDVF section {i} has attributes {attributes:#x}: only MR.EXTEND (0x1) is launched as measured here (PAGE.AUG is not)"
                ));
            }
            let extend = attributes & 1 != 0;
            if !gpa.is_multiple_of(PAGE) || !mem_size.is_multiple_of(PAGE) || mem_size == 0 {
                return err(format!("TDVF section {i} ({kind:?}) at {gpa:#x}+{mem_size:#x} is not whole pages"));
            }
            if gpa.checked_add(mem_size).is_none_or(|end| end > 1 << 52) {
                return err(format!("TDVF section {i} ({kind:?}) at {gpa:#x}+{mem_size:#x} is outside guest memory"));
            }
            if (raw_size as u64) > mem_size {
                return err(format!("TDVF section {i} ({kind:?}) has more bytes in the image than in memory"));
            }
            match kind {
                SectionType::Bfv | SectionType::Cfv if raw_size == 0 => {
                    return err(format!("TDVF section {i} ({kind:?}) is empty"))
                }
                SectionType::TdHob | SectionType::TempMem if raw_size != 0 => {
                    return err(format!("TDVF section {i} ({kind:?}) has contents in the image"))
                }
                _ => {}
            }
            if raw_size != 0 && data_offset as u64 + raw_size as u64 > data.len() as u64 {
                return err(format!(
                    "TDVF section {i} ({kind:?}) runs past the end of the image (a split OVMF_CODE.fd? TDX boots the unified OVMF.fd)"
                ));
            }
            if extend && (raw_size as u64 != mem_size) {
                return err(format!(
                    "TDVF section {i} ({kind:?}) is measured but has {raw_size:#x} bytes in the image for {mem_size:#x} in memory"
                ));
            }
            sections.push(TdvfSection { data_offset, raw_size, gpa, mem_size, kind, extend });
        }
        // Real TDVF sections are a few MiB; the cap keeps a hostile image from asking for 2^40 page additions.
        let total: u64 = sections.iter().map(|s| s.mem_size).sum();
        if total > MAX_SECTIONS_MEMORY {
            return err(format!("the TDVF sections span {total:#x} bytes, over {MAX_SECTIONS_MEMORY:#x}"));
        }
        match sections.iter().filter(|s| s.kind == SectionType::TdHob).count() {
            1 => {}
            k => return err(format!("the TDVF metadata has {k} TD_HOB sections; QEMU needs exactly one")),
        }
        Ok(Tdvf { data, sections })
    }

    fn contents(&self, s: &TdvfSection) -> &'a [u8] {
        &self.data[s.data_offset as usize..s.data_offset as usize + s.raw_size as usize]
    }

    /// SHA-384 of the CFV's bytes (the firmware measures it into RTMR0), if the image has a CFV.
    pub fn cfv_digest(&self) -> Option<Digest> {
        let s = self.sections.iter().find(|s| s.kind == SectionType::Cfv)?;
        Some(sha384(self.contents(s)))
    }
}

fn sha384(b: &[u8]) -> Digest {
    digest(&SHA384, b).as_ref().try_into().expect("48 bytes")
}

/// In which order the host issues TDH.MEM.PAGE.ADD and TDH.MR.EXTEND: a property of the host's KVM and QEMU,
/// not of the image, so the same image has two MRTDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOrder {
    /// Each page is added, then its chunks extended. Upstream KVM (Linux 6.16+) with QEMU 10.1+, Google
    /// Compute Engine, and Intel's older TDX stacks (QEMU 7.2, 8.1).
    PerPage,
    /// Per section, all pages are added, then all extended. The KVM v19 patch set era: Canonical's Ubuntu 24.04
    /// TDX host (QEMU 8.2.2), Intel's QEMU 8.2.50 TDX tree, dstack 0.5 hosts.
    PerSection,
}

impl std::str::FromStr for PageOrder {
    type Err = MeasureError;
    fn from_str(s: &str) -> Result<PageOrder, MeasureError> {
        match s {
            "per-page" | "single-pass" => Ok(PageOrder::PerPage),
            "per-section" | "two-pass" => Ok(PageOrder::PerSection),
            _ => bad_parameter(format!("unknown page order {s:?}: per-page or per-section")),
        }
    }
}

impl PageOrder {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PageOrder::PerPage => "per-page",
            PageOrder::PerSection => "per-section",
        }
    }
}

/// A 128-byte operation header: its name, then the GPA at byte 16.
fn op(name: &[u8], gpa: u64) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[..name.len()].copy_from_slice(name);
    b[16..24].copy_from_slice(&gpa.to_le_bytes());
    b
}

/// The MRTD the TDX module computes as the host adds the image's sections in `order`.
pub fn mrtd(t: &Tdvf, order: PageOrder) -> Digest {
    let mut h = Context::new(&SHA384);
    let add = |h: &mut Context, gpa: u64| h.update(&op(b"MEM.PAGE.ADD", gpa));
    let extend = |h: &mut Context, gpa: u64, page: &[u8]| {
        for (c, chunk) in page.chunks(CHUNK).enumerate() {
            h.update(&op(b"MR.EXTEND", gpa + (c * CHUNK) as u64));
            h.update(chunk);
        }
    };
    for s in &t.sections {
        let pages = s.mem_size / PAGE;
        let contents = if s.extend { t.contents(s) } else { &[][..] };
        let page = |p: u64| &contents[(p * PAGE) as usize..((p + 1) * PAGE) as usize];
        match order {
            PageOrder::PerPage => {
                for p in 0..pages {
                    add(&mut h, s.gpa + p * PAGE);
                    if s.extend {
                        extend(&mut h, s.gpa + p * PAGE, page(p));
                    }
                }
            }
            PageOrder::PerSection => {
                for p in 0..pages {
                    add(&mut h, s.gpa + p * PAGE);
                }
                if s.extend {
                    for p in 0..pages {
                        extend(&mut h, s.gpa + p * PAGE, page(p));
                    }
                }
            }
        }
    }
    h.finish().as_ref().try_into().expect("48 bytes")
}

/// RAM below 4 GiB on QEMU's q35 machine with `memory` bytes (no `max-ram-below-4g`).
fn below_4g(memory: u64) -> u64 {
    let lowmem = if memory >= 0xB000_0000 { 0x8000_0000 } else { 0xB000_0000 };
    memory.min(lowmem)
}

/// The TD HOB QEMU writes for a q35 TD with `memory` bytes of RAM, as the firmware measures it (without the
/// end-of-list HOB): a PHIT HOB, then one resource descriptor per RAM range, the ranges of the TD_HOB and TempMem
/// sections accepted, the rest unaccepted, sorted by address.
pub fn td_hob(t: &Tdvf, memory: u64) -> Result<Vec<u8>, MeasureError> {
    if !(0x1000_0000..=MAX_MEMORY).contains(&memory) || !memory.is_multiple_of(1 << 20) {
        return bad_parameter(format!("memory of {memory} bytes: from 256 MiB to 64 TiB, in whole MiB"));
    }
    // (start, length, accepted)
    let below = below_4g(memory);
    let mut ram = vec![(0u64, below, false)];
    if memory > below {
        ram.push((1 << 32, memory - below, false));
    }
    for s in t.sections.iter().filter(|s| matches!(s.kind, SectionType::TdHob | SectionType::TempMem)) {
        let (start, end) = (s.gpa, s.gpa + s.mem_size);
        let i = ram
            .iter()
            .position(|&(a, l, _)| a <= start && start < a + l)
            .ok_or_else(|| MeasureError::Firmware(format!("TDVF section at {start:#x} is outside the TD's RAM")))?;
        let (a, l, accepted) = ram[i];
        if end > a + l {
            return err(format!("TDVF section at {start:#x}+{:#x} crosses the end of a RAM range", s.mem_size));
        }
        if accepted {
            continue;
        }
        ram[i] = (start, s.mem_size, true);
        if start > a {
            ram.push((a, start - a, false));
        }
        if end < a + l {
            ram.push((end, a + l - end, false));
        }
    }
    ram.sort_by_key(|r| r.0);
    let hob_gpa = t.sections.iter().find(|s| s.kind == SectionType::TdHob).expect("parse checked one").gpa;
    let mut b = Vec::with_capacity(56 + 48 * ram.len());
    // PHIT: type 1, length 56, version 9, boot mode 0, four zero memory bounds, end of the HOB list.
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&56u16.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&[0; 4 + 32]);
    b.extend_from_slice(&(hob_gpa + 56 + 48 * ram.len() as u64 + 8).to_le_bytes());
    for (start, len, accepted) in ram {
        // Resource descriptor: type 3, length 48, zero owner GUID, system memory (0) or unaccepted memory (7),
        // attributes present | initialized | tested.
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&48u16.to_le_bytes());
        b.extend_from_slice(&[0; 4 + 16]);
        b.extend_from_slice(&(if accepted { 0u32 } else { 7 }).to_le_bytes());
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&start.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
    }
    Ok(b)
}

/// Extends `digests` into a zero RTMR.
pub fn rtmr(digests: &[Digest]) -> Digest {
    let mut r = [0u8; 48];
    for d in digests {
        let mut m = r.to_vec();
        m.extend_from_slice(d);
        r = sha384(&m);
    }
    r
}

const EFI_GLOBAL_VARIABLE: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const EFI_IMAGE_SECURITY_DATABASE: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
/// OVMF's Boot0000 for QEMU direct boot: the UiApp load option.
const BOOT0000: &str = "090100002c0055006900410070007000000004071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400";

/// The UEFI_VARIABLE_DATA digest of an empty variable.
fn empty_variable(vendor: &str, name: &str) -> Digest {
    let utf16: Vec<u8> = name.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
    let mut b = guid(vendor).to_vec();
    b.extend_from_slice(&(name.encode_utf16().count() as u64).to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&utf16);
    sha384(&b)
}

/// QEMU's ACPI blobs, as its fw_cfg serves them (`etc/table-loader`, `etc/acpi/rsdp`, `etc/acpi/tables`).
pub struct Acpi<'a> {
    /// `etc/table-loader`.
    pub loader: &'a [u8],
    /// `etc/acpi/rsdp`.
    pub rsdp: &'a [u8],
    /// `etc/acpi/tables`.
    pub tables: &'a [u8],
}

/// The RTMR0 events' digests, in order, for a TD of `memory` bytes with QEMU's `acpi` blobs (Secure Boot off,
/// direct boot).
pub fn rtmr0_events(t: &Tdvf, memory: u64, acpi: &Acpi) -> Result<Vec<Digest>, MeasureError> {
    let cfv = t.cfv_digest().ok_or(MeasureError::Firmware("the firmware has no CFV section".into()))?;
    let mut e = vec![sha384(&td_hob(t, memory)?), cfv];
    for name in ["SecureBoot", "PK", "KEK"] {
        e.push(empty_variable(EFI_GLOBAL_VARIABLE, name));
    }
    for name in ["db", "dbx"] {
        e.push(empty_variable(EFI_IMAGE_SECURITY_DATABASE, name));
    }
    e.push(sha384(&[0; 4]));
    e.extend([sha384(acpi.loader), sha384(acpi.rsdp), sha384(acpi.tables)]);
    e.push(sha384(&[0, 0])); // BootOrder = [0x0000]
    e.push(sha384(&hex::decode(BOOT0000).expect("hex")));
    Ok(e)
}

/// Which kernel bytes the firmware measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelHeader<'a> {
    /// As the file is (QEMU 10.2 and later skip header patching for confidential guests).
    Unmodified,
    /// With the setup header QEMU (before 10.2) writes for a guest of `memory` bytes, an initrd of
    /// `initrd_size` bytes (if any) and a command line of `cmdline_len` bytes.
    QemuPatched {
        /// The TD's RAM.
        memory: u64,
        /// The initrd's size, if there is one.
        initrd_size: Option<u64>,
        /// The command line (its `vga=` and, for kernels older than boot protocol 2.02, its length matter).
        cmdline: &'a str,
    },
}

/// The kernel as QEMU (before 10.2) hands it to the firmware: its setup header patched as `x86_load_linux` does.
pub fn qemu_patched_kernel(
    kernel: &[u8],
    memory: u64,
    initrd_size: Option<u64>,
    cmdline: &str,
) -> Result<Vec<u8>, MeasureError> {
    let cmdline_len = cmdline.len();
    if kernel.len() < 0x1000 {
        return bad_kernel("the kernel is shorter than 4 KiB");
    }
    if !(0x1000_0000..=MAX_MEMORY).contains(&memory) {
        return bad_parameter(format!("memory of {memory} bytes: from 256 MiB to 64 TiB"));
    }
    if cmdline_len > 0x8000 {
        return bad_parameter(format!("a command line of {cmdline_len} bytes is longer than QEMU's setup area takes"));
    }
    let mut k = kernel.to_vec();
    let protocol = if &k[0x202..0x206] == b"HdrS" { le_u16(&k, 0x206).expect("in bounds") } else { 0 };
    let (real, cmdline_at) = if protocol >= 0x202 && k[0x211] & 1 != 0 {
        (0x10000u32, 0x20000u32)
    } else {
        let size = ((cmdline_len + 16) & !15) as u32;
        (0x90000, 0x9a000 - size)
    };
    let put16 = |k: &mut Vec<u8>, at: usize, v: u16| k[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |k: &mut Vec<u8>, at: usize, v: u32| k[at..at + 4].copy_from_slice(&v.to_le_bytes());
    if protocol >= 0x202 {
        put32(&mut k, 0x228, cmdline_at);
    } else {
        put16(&mut k, 0x20, 0xA33F);
        put16(&mut k, 0x22, (cmdline_at - real) as u16);
    }
    if let Some(mode) = vga_mode(cmdline)? {
        put16(&mut k, 0x1fa, mode);
    }
    if protocol >= 0x200 {
        k[0x210] = 0xB0;
    }
    if protocol >= 0x201 {
        k[0x211] |= 0x80;
        put16(&mut k, 0x224, (cmdline_at - real - 0x200) as u16);
    }
    if let Some(size) = initrd_size {
        if protocol < 0x200 {
            return bad_kernel("the kernel is too old to load an initrd (boot protocol before 2.00)");
        }
        let xloadflags = le_u16(&k, 0x236).expect("in bounds");
        let mut max = if protocol >= 0x20c && xloadflags & 0x40 != 0 {
            0xFFFF_FFFFu64
        } else if protocol >= 0x203 {
            le_u32(&k, 0x22c).expect("in bounds") as u64
        } else {
            0x37FF_FFFF
        };
        // QEMU keeps the initrd below the ACPI data at the top of low memory (128 KiB + 32 KiB on pc machines).
        let acpi_data_size = 0x28000;
        let top = below_4g(memory) - acpi_data_size;
        if max >= top {
            max = top - 1;
        }
        if size >= max {
            return bad_parameter(format!("an initrd of {size} bytes does not fit below {max:#x}"));
        }
        put32(&mut k, 0x218, ((max - size) & !0xFFF) as u32);
        put32(&mut k, 0x21c, size as u32);
    }
    Ok(k)
}

/// The video mode QEMU writes into the setup header for a `vga=` in the command line (the first one, wherever it
/// is, as QEMU's `strstr` finds it): `normal`, `ext`, `ask`, or a number (C `strtoul` base 0) ending the word.
fn vga_mode(cmdline: &str) -> Result<Option<u16>, MeasureError> {
    let Some(at) = cmdline.find("vga=") else { return Ok(None) };
    let v = &cmdline[at + 4..];
    for (name, mode) in [("normal", 0xffff), ("ext", 0xfffe), ("ask", 0xfffd)] {
        if v.starts_with(name) {
            return Ok(Some(mode));
        }
    }
    let word = v.split(' ').next().unwrap_or_default();
    let n = if let Some(h) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else if word.len() > 1 && word.starts_with('0') {
        u32::from_str_radix(&word[1..], 8)
    } else {
        word.parse::<u32>()
    };
    match n {
        Ok(n) => Ok(Some(n as u16)),
        Err(_) => {
            bad_parameter(format!("QEMU refuses the kernel parameter vga={word} (not normal, ext, ask or a number)"))
        }
    }
}

/// RTMR1's events: the kernel's Authenticode SHA-384 (of the bytes the firmware receives), then the fixed
/// events of the boot: the boot option's EFI action, a separator and ExitBootServices.
pub fn rtmr1_events(kernel: &[u8], header: KernelHeader) -> Result<Vec<Digest>, MeasureError> {
    let bytes = match header {
        KernelHeader::Unmodified => kernel.to_vec(),
        KernelHeader::QemuPatched { memory, initrd_size, cmdline } => {
            qemu_patched_kernel(kernel, memory, initrd_size, cmdline)?
        }
    };
    let k: Digest = authenticode(&bytes, &SHA384)?.try_into().expect("48 bytes");
    Ok(vec![
        k,
        sha384(b"Calling EFI Application from Boot Option"),
        sha384(&[0; 4]),
        sha384(b"Exit Boot Services Invocation"),
        sha384(b"Exit Boot Services Returned with Success"),
    ])
}

/// Where the firmware puts `initrd=initrd` in the kernel's load options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitrdOption {
    /// `CMDLINE initrd=initrd` (edk2 up to 2024).
    Suffix,
    /// `initrd=initrd CMDLINE` (later edk2).
    Prefix,
}

/// RTMR2's events, as the kernel's EFI stub measures them: its load options (UTF-16LE with the NUL), then the
/// initrd.
pub fn rtmr2_events(cmdline: &str, initrd: Option<&[u8]>, style: InitrdOption) -> Vec<Digest> {
    let options = match (initrd.is_some(), style) {
        (false, _) => cmdline.to_string(),
        (true, InitrdOption::Suffix) => format!("{cmdline} initrd=initrd"),
        (true, InitrdOption::Prefix) => format!("initrd=initrd {cmdline}"),
    };
    let mut e = Vec::new();
    if !options.is_empty() {
        let mut utf16: Vec<u8> = options.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
        utf16.extend_from_slice(&[0, 0]);
        e.push(sha384(&utf16));
    }
    if let Some(i) = initrd {
        e.push(sha384(i));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_headers_have_their_layout() {
        let a = op(b"MEM.PAGE.ADD", 0xffe2_0000);
        assert_eq!(&a[..12], b"MEM.PAGE.ADD");
        assert_eq!(a[12..16], [0; 4]);
        assert_eq!(a[16..24], 0xffe2_0000u64.to_le_bytes());
        assert!(a[24..].iter().all(|&b| b == 0));
        assert_eq!(&op(b"MR.EXTEND", 0)[..9], b"MR.EXTEND");
    }

    #[test]
    fn fixed_event_digests_match_a_real_td_event_log() {
        // The same events in a real TD's CC event log: dstack's sample (Phala-Network/dstack at da51524,
        // cc-eventlog/src/snapshots/cc_eventlog__tests__parse_ccel-2.snap), in the order RTMR0 and RTMR1 get them.
        let real = [
            "9dc3a1f80bcec915391dcda5ffbb15e7419f77eab462bbf72b42166fb70d50325e37b36f93537a863769bcf9bedae6fb",
            "6f2e3cbc14f9def86980f5f66fd85e99d63e69a73014ed8a5633ce56eca5b64b692108c56110e22acadcef58c3250f1b",
            "d607c0efb41c0d757d69bca0615c3a9ac0b1db06c557d992e906c6b7dee40e0e031640c7bfd7bcd35844ef9edeadc6f9",
            "08a74f8963b337acb6c93682f934496373679dd26af1089cb4eaf0c30cf260a12e814856385ab8843e56a9acea19e127",
            "18cc6e01f0c6ea99aa23f8a280423e94ad81d96d0aeb5180504fc0f7a40cb3619dd39bd6a95ec1680a86ed6ab0f9828d",
            "394341b7182cd227c5c6b07ef8000cdfd86136c4292b8e576573ad7ed9ae41019f5818b4b971c9effc60e1ad9f1289f0",
            "1dd6f7b457ad880d840d41c961283bab688e94e4b59359ea45686581e90feccea3c624b1226113f824f315eb60ae0a7c",
            "23ada07f5261f12f34a0bd8e46760962d6b4d576a416f1fea1c64bc656b1d28eacf7047ae6e967c58fd2a98bfa74c298",
        ];
        let ours = [
            empty_variable(EFI_GLOBAL_VARIABLE, "SecureBoot"),
            empty_variable(EFI_GLOBAL_VARIABLE, "PK"),
            empty_variable(EFI_GLOBAL_VARIABLE, "KEK"),
            empty_variable(EFI_IMAGE_SECURITY_DATABASE, "db"),
            empty_variable(EFI_IMAGE_SECURITY_DATABASE, "dbx"),
            sha384(&[0; 4]),
            sha384(&[0, 0]),
            sha384(&hex::decode(BOOT0000).unwrap()),
        ];
        assert_eq!(ours.map(hex::encode), real);
        let t = Tdvf { data: &[], sections: Vec::new() };
        let acpi = Acpi { loader: b"", rsdp: b"", tables: b"" };
        assert!(rtmr0_events(&t, 1 << 31, &acpi).is_err(), "no CFV");
        let rtmr1_fixed = [
            "77a0dab2312b4e1e57a84d865a21e5b2ee8d677a21012ada819d0a98988078d3d740f6346bfe0abaa938ca20439a8d71",
            "394341b7182cd227c5c6b07ef8000cdfd86136c4292b8e576573ad7ed9ae41019f5818b4b971c9effc60e1ad9f1289f0",
            "214b0bef1379756011344877743fdc2a5382bac6e70362d624ccf3f654407c1b4badf7d8f9295dd3dabdef65b27677e0",
            "0a2e01c85deae718a530ad8c6d20a84009babe6c8989269e950d8cf440c6e997695e64d455c4174a652cd080f6230b74",
        ];
        let fixed = [
            sha384(b"Calling EFI Application from Boot Option"),
            sha384(&[0; 4]),
            sha384(b"Exit Boot Services Invocation"),
            sha384(b"Exit Boot Services Returned with Success"),
        ];
        assert_eq!(fixed.map(hex::encode), rtmr1_fixed);
    }

    #[test]
    fn rtmr_extends_from_zero() {
        assert_eq!(rtmr(&[]), [0; 48]);
        let d = [7u8; 48];
        let mut m = vec![0u8; 48];
        m.extend_from_slice(&d);
        assert_eq!(rtmr(&[d]), sha384(&m));
    }

    #[test]
    fn malformed_pe_is_an_error_not_a_panic() {
        for b in [&b""[..], b"MZ", &[b'M', b'Z', 0, 0, 0, 0, 0, 0][..]] {
            assert!(authenticode(b, &SHA384).is_err());
        }
        let mut pe = vec![0u8; 512];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x1000u32.to_le_bytes());
        assert!(authenticode(&pe, &SHA384).is_err());
    }

    #[test]
    fn the_kernel_header_patch_refuses_what_qemu_would_not_load() {
        let mut k = vec![0u8; 0x2000];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        k[0x211] = 1;
        k[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let p = qemu_patched_kernel(&k, 2 << 30, Some(0x10_0000), "console=ttyS0").unwrap();
        assert_eq!(le_u32(&p, 0x228), Some(0x20000), "the command line address of a high kernel");
        assert_eq!(le_u16(&p, 0x224), Some(0xFE00), "heap_end_ptr");
        assert_eq!(le_u32(&p, 0x21c), Some(0x10_0000), "initrd size");
        // Below initrd_addr_max and below the ACPI data (160 KiB) at the top of low memory.
        assert_eq!(le_u32(&p, 0x218), Some((0x8000_0000 - 0x28000 - 1 - 0x10_0000) & !0xFFF));
        assert_eq!(le_u16(&p, 0x1fa), Some(0), "no vga=: the video mode is left alone");
        for (cmdline, mode) in [
            ("quiet vga=ext", 0xfffe),
            ("vga=normal", 0xffff),
            ("x novga=0x317 y", 0x317),
            ("vga=0777", 0o777),
            ("vga=791", 791),
        ] {
            let p = qemu_patched_kernel(&k, 2 << 30, None, cmdline).unwrap();
            assert_eq!(le_u16(&p, 0x1fa), Some(mode), "{cmdline}");
        }
        assert!(qemu_patched_kernel(&k, 2 << 30, None, "vga=12x").is_err(), "QEMU refuses it");
        assert!(qemu_patched_kernel(&k, 1 << 20, None, "").is_err(), "too little memory");
        assert!(qemu_patched_kernel(&k, u64::MAX, None, "").is_err(), "too much memory");
        assert!(qemu_patched_kernel(&k, 2 << 30, Some(0x7fff_ffff), "").is_err(), "initrd too large");
        assert!(qemu_patched_kernel(&k, 2 << 30, None, &"x".repeat(0x10000)).is_err(), "command line too long");
        assert!(qemu_patched_kernel(&k[..0x800], 2 << 30, None, "").is_err(), "too short");
        k[0x206..0x208].copy_from_slice(&0x1ffu16.to_le_bytes());
        assert!(qemu_patched_kernel(&k, 2 << 30, Some(1), "").is_err(), "no initrd before protocol 2.00");
    }
}
