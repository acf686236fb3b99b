//! Firmware images and kernels as `sigil measure tdx` reads them: the TDVF metadata, MRTD in both orders, the TD
//! HOB, and the kernel's Authenticode digest never panic whatever the bytes hold (the metadata is read from the
//! end of the fuzz input, padded to a page).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_attest::measure::authenticode::authenticode;
use sigil_attest::measure::tdx::{self, PageOrder, Tdvf};

fuzz_target!(|data: &[u8]| {
    let mut img = vec![0u8; data.len().div_ceil(4096).max(1) * 4096];
    let at = img.len() - data.len();
    img[at..].copy_from_slice(data);
    if let Ok(t) = Tdvf::parse(&img) {
        let _ = tdx::mrtd(&t, PageOrder::PerPage);
        let _ = tdx::mrtd(&t, PageOrder::PerSection);
        let _ = tdx::td_hob(&t, 2 << 30);
        // And a memory size from the input: the TD HOB's arithmetic with any RAM.
        let mem = u64::from_le_bytes(img[..8].try_into().expect("8 bytes"));
        let _ = tdx::td_hob(&t, mem);
        let _ = t.cfv_digest();
    }
    let _ = authenticode(data, &ring::digest::SHA384);
    let cmdline = String::from_utf8_lossy(&data[..data.len().min(64)]);
    let _ = tdx::qemu_patched_kernel(data, 1 << 30, Some(data.len() as u64), &cmdline);
});
