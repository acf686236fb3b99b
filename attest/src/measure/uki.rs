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

/// The sections systemd 252's stub measures into PCR 11, in its order.
pub const MEASURED_SECTIONS: [&str; 6] = [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb"];

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

/// The sections of a PE image by name, each as the loader maps it: `VirtualSize` bytes of its raw data, zero-filled
/// past `SizeOfRawData`.
pub fn pe_sections(pe: &[u8]) -> Result<Vec<(String, Vec<u8>)>, MeasureError> {
    let bad = |m: &str| MeasureError::Kernel(format!("the UKI is not a PE image: {m}"));
    let lfanew = le_u32(pe, 0x3c).ok_or_else(|| bad("truncated"))? as usize;
    if pe.get(..2) != Some(b"MZ") || pe.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(bad("no MZ/PE signature"));
    }
    let coff = lfanew + 4;
    let count = le_u16(pe, coff + 2).ok_or_else(|| bad("truncated"))? as usize;
    let opt_size = le_u16(pe, coff + 16).ok_or_else(|| bad("truncated"))? as usize;
    let table = coff + 20 + opt_size;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let at = table + 40 * i;
        let name = pe.get(at..at + 8).ok_or_else(|| bad("section table out of bounds"))?;
        let name = String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(8)]).into_owned();
        let (Some(vsize), Some(rsize), Some(ptr)) = (le_u32(pe, at + 8), le_u32(pe, at + 16), le_u32(pe, at + 20))
        else {
            return Err(bad("section table out of bounds"));
        };
        let (vsize, rsize, ptr) = (vsize as usize, rsize as usize, ptr as usize);
        if vsize > 1 << 30 {
            return Err(bad("a section larger than 1 GiB"));
        }
        let raw = ptr
            .checked_add(rsize.min(vsize))
            .and_then(|end| pe.get(ptr..end))
            .ok_or_else(|| bad("a section runs past the file"))?;
        let mut content = raw.to_vec();
        content.resize(vsize, 0);
        out.push((name, content));
    }
    Ok(out)
}

/// The PCR 4 and PCR 11 measurements of booting `uki` through systemd's stub.
pub fn measure_uki(uki: &[u8]) -> Result<UkiMeasurements, MeasureError> {
    let sha256 = |d: &[u8]| -> [u8; 32] { crate::sha256(d) };
    let a256 = |pe: &[u8]| -> Result<[u8; 32], MeasureError> {
        Ok(authenticode(pe, &ring::digest::SHA256)?.try_into().expect("a SHA-256 digest"))
    };
    let sections = pe_sections(uki)?;
    let find = |n: &str| sections.iter().find(|(name, _)| name == n).map(|(_, c)| c.as_slice());
    let linux = find(".linux").ok_or_else(|| MeasureError::Kernel("the UKI has no .linux section".into()))?;
    let mut events = Vec::new();
    let mut measured = Vec::new();
    for name in MEASURED_SECTIONS {
        if let Some(content) = find(name) {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            events.push((name.to_string(), sha256(&n)));
            events.push((name.to_string(), sha256(content)));
            measured.push((name.to_string(), content.to_vec()));
        }
    }
    let mut pcr11 = [0u8; 32];
    for (_, d) in &events {
        pcr11 = sha256(&[&pcr11[..], &d[..]].concat());
    }
    Ok(UkiMeasurements { uki: a256(uki)?, kernel: a256(linux)?, pcr11_events: events, pcr11, sections: measured })
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
}
