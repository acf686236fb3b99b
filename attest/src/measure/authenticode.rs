//! The Authenticode digest of a PE/COFF image, as UEFI firmware measures an image it loads (the kernel's, in
//! RTMR1). Checked against `osslsigncode`, an implementation we did not write, in CI (`attest/tests/it/tdvf.rs`).

use ring::digest::Context;

use super::MeasureError;
use crate::reader::{le_u16, le_u32};

/// The Authenticode digest of a PE/COFF image (as UEFI firmware measures an image it loads): the headers less the
/// checksum and the certificate table entry, then each section's raw data in file order, then any bytes after
/// them but before the certificate table. `alg` is SHA-384 for RTMRs; SHA-256 to compare with signing tools.
pub fn authenticode(pe: &[u8], alg: &'static ring::digest::Algorithm) -> Result<Vec<u8>, MeasureError> {
    let bad = |m: &str| MeasureError::Kernel(format!("the kernel is not a PE image: {m}"));
    if pe.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ header"));
    }
    let lfanew = le_u32(pe, 0x3c).ok_or_else(|| bad("truncated"))? as usize;
    if pe.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let coff = lfanew + 4;
    let sections = le_u16(pe, coff + 2).ok_or_else(|| bad("truncated"))? as usize;
    let opt_size = le_u16(pe, coff + 16).ok_or_else(|| bad("truncated"))? as usize;
    let opt = coff + 20;
    let (rva_count_at, dirs_at) = match le_u16(pe, opt) {
        Some(0x10b) => (opt + 92, opt + 96),
        Some(0x20b) => (opt + 108, opt + 112),
        _ => return Err(bad("unknown optional header magic")),
    };
    let checksum = opt + 64;
    let headers = le_u32(pe, opt + 60).ok_or_else(|| bad("truncated"))? as usize;
    let rva_count = le_u32(pe, rva_count_at).ok_or_else(|| bad("truncated"))? as usize;
    if headers > pe.len() || checksum + 4 > headers || opt + opt_size > headers {
        return Err(bad("headers out of bounds"));
    }
    let mut h = Context::new(alg);
    h.update(&pe[..checksum]);
    let mut cert = (0usize, 0usize);
    if rva_count > 4 {
        let entry = dirs_at + 4 * 8;
        if entry + 8 > headers {
            return Err(bad("data directories out of bounds"));
        }
        h.update(&pe[checksum + 4..entry]);
        h.update(&pe[entry + 8..headers]);
        cert = (le_u32(pe, entry).expect("in bounds") as usize, le_u32(pe, entry + 4).expect("in bounds") as usize);
    } else {
        h.update(&pe[checksum + 4..headers]);
    }
    let table = opt + opt_size;
    let mut raw: Vec<(usize, usize)> = Vec::with_capacity(sections);
    for i in 0..sections {
        let at = table + 40 * i;
        let (Some(size), Some(ptr)) = (le_u32(pe, at + 16), le_u32(pe, at + 20)) else {
            return Err(bad("section table out of bounds"));
        };
        if size > 0 {
            raw.push((ptr as usize, size as usize));
        }
    }
    raw.sort_unstable();
    let mut hashed = headers;
    for (ptr, size) in raw {
        let s = ptr
            .checked_add(size)
            .and_then(|end| pe.get(ptr..end))
            .ok_or_else(|| bad("a section runs past the file"))?;
        h.update(s);
        hashed += size;
    }
    let end = if cert.1 > 0 {
        if cert.0.checked_add(cert.1) != Some(pe.len()) {
            return Err(bad("the certificate table is not at the end of the file"));
        }
        cert.0
    } else {
        pe.len()
    };
    if end > hashed {
        h.update(&pe[hashed..end]);
    }
    Ok(h.finish().as_ref().to_vec())
}
