//! # measure: expected measurements, computed from the guest image
//!
//! An operator sets a pod's allowed measurements from what the image *should* measure to, not from a value copied
//! off a running VM. Each platform has its file:
//! - [`snp`]: the SEV-SNP launch digest (OVMF, its SEV metadata sections, kernel hashes, VMSAs);
//! - [`tdx`]: the TDX MRTD (TDVF metadata, both host page orders) and the RTMR0–2 events of QEMU direct boot;
//! - [`authenticode`]: the PE/COFF image digest UEFI firmware measures (the kernel, in RTMR1);
//! - [`uki`]: what a vTPM's PCR 4 and PCR 11 hold after UEFI boots a Unified Kernel Image through systemd's stub.
//!
//! Input is bytes; nothing here reads files or trusts the firmware's tables beyond their bounds (malformed input
//! is an error, never a panic). Each is proven against an implementation we did not write (docs/measure.md).

pub mod authenticode;
pub mod snp;
pub mod tdx;
pub mod uki;

pub use snp::{
    cpu_sig, sev_hashes_table, snp_launch_digest, snp_ovmf_digest, vcpu_sig, vmsa, MetadataSection, Ovmf, Section,
    SnpLaunch, Vmm, VCPU_TYPES,
};

use crate::reader::le_u16;

const FOOTER_GUID: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";

/// A SHA-384 launch digest.
pub type Digest = [u8; 48];

/// Why a measurement cannot be computed, by which input is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The firmware image (OVMF, TDVF) is malformed, or cannot measure what was asked of it.
    #[error("{0}")]
    Firmware(String),
    /// The kernel image: not a PE image, too short, too old for what was asked.
    #[error("{0}")]
    Kernel(String),
    /// A launch parameter is out of range or inconsistent: vCPUs, memory, initrd size, command line, VMM, page
    /// order.
    #[error("{0}")]
    Parameter(String),
}

/// A malformed firmware image.
pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, MeasureError> {
    Err(MeasureError::Firmware(msg.into()))
}

/// A launch parameter out of range.
pub(crate) fn bad_parameter<T>(msg: impl Into<String>) -> Result<T, MeasureError> {
    Err(MeasureError::Parameter(msg.into()))
}

/// A kernel image that cannot be measured.
pub(crate) fn bad_kernel<T>(msg: impl Into<String>) -> Result<T, MeasureError> {
    Err(MeasureError::Kernel(msg.into()))
}

/// A GUID as the firmware stores it (the mixed-endian layout of EFI_GUID).
pub(crate) fn guid(s: &str) -> [u8; 16] {
    let hex: Vec<u8> = s
        .split('-')
        .flat_map(|p| (0..p.len()).step_by(2).map(move |i| u8::from_str_radix(&p[i..i + 2], 16).expect("a GUID")))
        .collect();
    let mut g = [0u8; 16];
    g[..4].copy_from_slice(&[hex[3], hex[2], hex[1], hex[0]]);
    g[4..6].copy_from_slice(&[hex[5], hex[4]]);
    g[6..8].copy_from_slice(&[hex[7], hex[6]]);
    g[8..].copy_from_slice(&hex[8..16]);
    g
}

/// A footer table entry: its GUID and data.
pub(crate) type FooterEntry<'a> = ([u8; 16], &'a [u8]);

/// The GUIDed entries of an OVMF image's footer table (the list that ends 32 bytes before the image's end, walked
/// from its end), or none when the image has no table.
pub(crate) fn footer_table(data: &[u8]) -> Result<Vec<FooterEntry<'_>>, MeasureError> {
    let mut table = Vec::new();
    const ENTRY: usize = 18;
    let footer =
        data.len().checked_sub(32 + ENTRY).ok_or(MeasureError::Firmware("the firmware is too small".into()))?;
    if data[footer + 2..footer + ENTRY] == guid(FOOTER_GUID) {
        let size = le_u16(data, footer).unwrap_or(0) as usize;
        let table_len =
            size.checked_sub(ENTRY).ok_or(MeasureError::Firmware("the footer table's size is too small".into()))?;
        let start = footer
            .checked_sub(table_len)
            .ok_or(MeasureError::Firmware("the footer table starts before the image".into()))?;
        let mut rest = &data[start..footer];
        while rest.len() >= ENTRY {
            let at = rest.len() - ENTRY;
            let len = le_u16(rest, at).unwrap_or(0) as usize;
            if len < ENTRY || len > rest.len() {
                return err(format!("a footer table entry has length {len}"));
            }
            let g: [u8; 16] = rest[at + 2..].try_into().expect("16 bytes");
            table.push((g, &rest[rest.len() - len..at]));
            rest = &rest[..rest.len() - len];
        }
    }
    Ok(table)
}
