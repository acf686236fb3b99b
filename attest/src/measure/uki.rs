//! Unified Kernel Images: what a vTPM's event log shows when UEFI firmware boots one with systemd's stub.
//!
//! - PCR 4: the firmware measures each UEFI application it loads by its Authenticode SHA-256 digest: the UKI, then
//!   the kernel the stub loads from the UKI's `.linux` section.
//! - PCR 11: the stub measures each of its sections it will use, in a fixed order, as two `EV_IPL` events: the
//!   SHA-256 of the section's name with its NUL, then the SHA-256 of the section's content. The order is systemd
//!   252's (Debian 12's `systemd-boot-efi`): `.linux`, `.osrel`, `.cmdline`, `.initrd`, `.splash`, `.dtb`. A stub
//!   that measures other sections (newer systemd measures `.uname` and `.sbat` too) gives another PCR 11, which a
//!   verifier then refuses: a safe failure, never a false pass.
//!
//! Proof: equal to the event log of the image booting under QEMU with Debian's OVMF and swtpm
//! (`node/tests/it/image.rs`).

use super::authenticode::authenticode;
use super::MeasureError;
use crate::reader::{le_u16, le_u32};

/// The sections systemd 252's stub measures into PCR 11, in its order (`.pcrsig`, which it reads, is not measured).
pub const MEASURED_SECTIONS: [&str; 7] = [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"];

/// Most sections read (systemd's stub reads at most this many).
pub const MAX_SECTIONS: usize = 96;

/// What booting a UKI measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UkiMeasurements {
    /// The UKI's Authenticode SHA-256 (the first application in PCR 4).
    pub uki: [u8; 32],
    /// The kernel's (the `.linux` section's) Authenticode SHA-256 (the second).
    pub kernel: [u8; 32],
    /// The PCR 11 events, in order, with the section each belongs to.
    pub pcr11_events: Vec<(String, [u8; 32])>,
    /// PCR 11 after them.
    pub pcr11: [u8; 32],
    /// The content of each measured section, by name (the command line, the os-release).
    pub sections: Vec<(String, Vec<u8>)>,
}

/// The sections systemd 252's stub uses, found as it finds them: a section whose 8-byte name *starts with* one of
/// [`MEASURED_SECTIONS`] is that section, a later match replaces an earlier one, and an empty one is skipped. Each
/// is returned as the loader maps it: `VirtualSize` bytes of its raw data, zero-filled past `SizeOfRawData`.
pub fn stub_sections(pe: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, MeasureError> {
    let bad = |m: &str| MeasureError::Kernel(format!("the UKI is not a PE image: {m}"));
    let lfanew = le_u32(pe, 0x3c).ok_or_else(|| bad("truncated"))? as usize;
    if pe.get(..2) != Some(b"MZ") || pe.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(bad("no MZ/PE signature"));
    }
    let coff = lfanew + 4;
    let count = le_u16(pe, coff + 2).ok_or_else(|| bad("truncated"))? as usize;
    if count > MAX_SECTIONS {
        return Err(bad(&format!("{count} sections (at most {MAX_SECTIONS})")));
    }
    let opt_size = le_u16(pe, coff + 16).ok_or_else(|| bad("truncated"))? as usize;
    let table = coff + 20 + opt_size;
    // (name, VirtualSize, SizeOfRawData, PointerToRawData) of the last section matching each measured name.
    let mut found: [Option<(usize, usize, usize)>; MEASURED_SECTIONS.len()] = [None; MEASURED_SECTIONS.len()];
    for i in 0..count {
        let at = table + 40 * i;
        let name = pe.get(at..at + 8).ok_or_else(|| bad("section table out of bounds"))?;
        let (Some(vsize), Some(rsize), Some(ptr)) = (le_u32(pe, at + 8), le_u32(pe, at + 16), le_u32(pe, at + 20))
        else {
            return Err(bad("section table out of bounds"));
        };
        if let Some(k) = MEASURED_SECTIONS.iter().position(|n| name.starts_with(n.as_bytes())) {
            found[k] = Some((vsize as usize, rsize as usize, ptr as usize));
        }
    }
    let mut out = Vec::new();
    let mut total = 0usize;
    for (k, f) in found.iter().enumerate() {
        let Some((vsize, rsize, ptr)) = *f else { continue };
        if vsize == 0 {
            continue;
        }
        // Zero-fill past the raw data is bounded by the file: no section maps more than the UKI could carry.
        total = total.saturating_add(vsize);
        if total > pe.len().saturating_mul(2).max(1 << 20) {
            return Err(bad("its sections map far more than the file holds"));
        }
        let raw = ptr
            .checked_add(rsize.min(vsize))
            .and_then(|end| pe.get(ptr..end))
            .ok_or_else(|| bad("a section runs past the file"))?;
        let mut content = raw.to_vec();
        content.resize(vsize, 0);
        out.push((MEASURED_SECTIONS[k], content));
    }
    Ok(out)
}

/// The PCR 4 and PCR 11 measurements of booting `uki` through systemd's stub.
pub fn measure_uki(uki: &[u8]) -> Result<UkiMeasurements, MeasureError> {
    let sha256 = |d: &[u8]| -> [u8; 32] { crate::sha256(d) };
    let a256 = |pe: &[u8]| -> Result<[u8; 32], MeasureError> {
        Ok(authenticode(pe, &ring::digest::SHA256)?.try_into().expect("a SHA-256 digest"))
    };
    let sections = stub_sections(uki)?;
    let linux = sections
        .iter()
        .find(|(n, _)| *n == ".linux")
        .map(|(_, c)| c.as_slice())
        .ok_or_else(|| MeasureError::Kernel("the UKI has no .linux section".into()))?;
    let mut events = Vec::new();
    for (name, content) in &sections {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        events.push((name.to_string(), sha256(&n)));
        events.push((name.to_string(), sha256(content)));
    }
    let mut pcr11 = [0u8; 32];
    for (_, d) in &events {
        pcr11 = sha256(&[&pcr11[..], &d[..]].concat());
    }
    let kernel = a256(linux)?;
    let sections = sections.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
    Ok(UkiMeasurements { uki: a256(uki)?, kernel, pcr11_events: events, pcr11, sections })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_pe_input_is_an_error_not_a_panic() {
        for b in [&b""[..], b"MZ", &[0u8; 64][..]] {
            assert!(measure_uki(b).is_err());
        }
    }

    /// A PE header with `sections` (name, VirtualSize, raw data) laid out after the table.
    fn pe(sections: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 0x40];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b.extend(b"PE\0\0");
        let mut coff = [0u8; 20];
        coff[2..4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        b.extend(coff); // no optional header
        let mut data_at = b.len() + 40 * sections.len();
        let mut data = Vec::new();
        for (name, vsize, raw) in sections {
            let mut h = [0u8; 40];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[8..12].copy_from_slice(&vsize.to_le_bytes());
            h[16..20].copy_from_slice(&(raw.len() as u32).to_le_bytes());
            h[20..24].copy_from_slice(&(data_at as u32).to_le_bytes());
            b.extend(h);
            data.extend_from_slice(raw);
            data_at += raw.len();
        }
        b.extend(data);
        b
    }

    #[test]
    fn sections_are_found_as_systemd_252_finds_them() {
        let image = pe(&[(".cmdline", 3, b"one"), (".linuxXY", 4, b"kern"), (".cmdline", 3, b"two"), (".dtb", 0, b"")]);
        let s = stub_sections(&image).unwrap();
        let names: Vec<&str> = s.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [".linux", ".cmdline"], "prefix match, stub order, empty .dtb skipped");
        assert_eq!(s[1].1, b"two", "the last .cmdline wins");
        let padded = stub_sections(&pe(&[(".initrd", 6, b"abc")])).unwrap();
        assert_eq!(padded[0].1, b"abc\0\0\0", "zero-filled to VirtualSize");
    }

    #[test]
    fn a_tiny_image_cannot_make_it_allocate_gigabytes() {
        let big: Vec<(&str, u32, &[u8])> = MEASURED_SECTIONS.iter().map(|n| (*n, 1u32 << 30, &b""[..])).collect();
        assert!(stub_sections(&pe(&big)).unwrap_err().to_string().contains("far more"));
        let many: Vec<(&str, u32, &[u8])> = (0..=MAX_SECTIONS).map(|_| (".x", 1, &b"x"[..])).collect();
        assert!(stub_sections(&pe(&many)).unwrap_err().to_string().contains("sections"));
    }
}
