//! Firmware images as `sigil measure snp` reads them: parsing the footer table and SEV metadata, and measuring,
//! never panic whatever the image holds (the tables are read from the end of the fuzz input, padded to a page).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_attest::measure::{snp_launch_digest, SnpLaunch, Vmm};

fuzz_target!(|data: &[u8]| {
    let mut img = vec![0u8; data.len().div_ceil(4096).max(1) * 4096];
    let at = img.len() - data.len();
    img[at..].copy_from_slice(data);
    for (vcpus, vmm, kernel) in [(1, Vmm::Qemu, None), (3, Vmm::Ec2, Some(&b"k"[..])), (2, Vmm::Gce, None)] {
        let _ = snp_launch_digest(&SnpLaunch {
            ovmf: &img,
            ovmf_digest: None,
            kernel,
            initrd: None,
            append: None,
            vcpus,
            vcpu_sig: 0xa00f11,
            guest_features: 1,
            vmm,
        });
    }
});
