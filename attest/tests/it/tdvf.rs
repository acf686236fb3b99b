//! TDX measurements (`sigil_attest::measure::tdx`).
//!
//! - Debian's OVMF build (package `ovmf`, which has TDX metadata): MRTD in both page orders, the CFV and TD HOB
//!   digests, pinned to what Phala's `dstack-mr` (an implementation we did not write; Phala-Network/dstack at
//!   da51524) computed on the same file in a session on 2026-12-02. docs/measure.md lists that run. The pins
//!   apply to the package build they were computed on (its SHA-256 is checked); another build is still
//!   parsed and checked for its structure.
//! - Synthetic TDVF images: which bytes MRTD covers and which it does not, and every malformed metadata refused.
//! - Authenticode (RTMR1's kernel digest) against `osslsigncode`, an independent implementation: a PE image
//!   built here, signed with a throwaway certificate, whose digest osslsigncode computes in SHA-256 and SHA-384.

use std::process::Command;

use sigil_attest::measure::authenticode::authenticode;
use sigil_attest::measure::tdx::{self, PageOrder, SectionType, Tdvf};

const DEBIAN_OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// `ovmf` 2022.11-6+deb12u2 (Debian bookworm).
const DEBIAN_OVMF_SHA256: &str = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";

fn sha256(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

#[test]
fn debian_ovmf_measures_as_dstack_mr_computes_it() {
    let fw =
        std::fs::read(DEBIAN_OVMF).unwrap_or_else(|e| panic!("{DEBIAN_OVMF}: {e} (scripts/setup.sh installs ovmf)"));
    let t = Tdvf::parse(&fw).expect("Debian's OVMF.fd has TDX metadata");
    let kinds: Vec<SectionType> = t.sections.iter().map(|s| s.kind).collect();
    use SectionType::*;
    assert_eq!(kinds, [Bfv, Cfv, TempMem, TempMem, TdHob, TempMem]);
    assert_eq!(t.sections.iter().filter(|s| s.extend).count(), 1, "only the BFV is measured into MRTD");
    let hob = tdx::td_hob(&t, 2 << 30).unwrap();
    // The worked example: 8 resource descriptors after the PHIT, which points just past the end-of-list HOB.
    assert_eq!(hob.len(), 56 + 8 * 48);
    assert_eq!(u64::from_le_bytes(hob[48..56].try_into().unwrap()), 0x8091C0);
    if sha256(&fw) != DEBIAN_OVMF_SHA256 {
        eprintln!("{DEBIAN_OVMF} is another build than the pinned one: structure checked, values not compared");
        return;
    }
    let h = |d: [u8; 48]| hex::encode(d);
    assert_eq!(
        h(tdx::mrtd(&t, PageOrder::PerPage)),
        "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"
    );
    assert_eq!(
        h(tdx::mrtd(&t, PageOrder::PerSection)),
        "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1"
    );
    assert_eq!(
        h(t.cfv_digest().unwrap()),
        "f87302177b059d54a2cf0c5f13340dbabf5c9dd60dc3f996c68b776fbe4de959769443a3d8ef6538b97d7e151c8298e8"
    );
    for (mem, want) in [
        (
            1u64 << 30,
            "1055c9b9a1fc534e688560e2304e18c8597b7261818cf61fb163d40c130547309b750575947a4dcaedbdce4b8d0535f2",
        ),
        (2 << 30, "0b8772e5b0b41b83e6044a68397e02f49fb47066b4fbe4917ea2c45c64f323fdacbb37948f821ebaf8bc9c938ba8a749"),
        (
            2816 << 20,
            "8eb1a02074362aa0761541cdb4dc3f1788dfeb4538803b241477848e26de294dbe917ab56c5628732679b3abc168c2de",
        ),
        (4 << 30, "5b684faf8d02a733945f821d9cdd170802e72103977acf66949c9382500283adc90cbec57f8e7653f8bee1cab83689de"),
        (16 << 30, "cd2312a0d87ef3c4a928df87088969a80b33d7bf3fc584bdde637b09ed808a8d821a56b78a13a6eb506db7578444abbe"),
    ] {
        assert_eq!(h(sigil_attest::sha384(&tdx::td_hob(&t, mem).unwrap())), want, "TD HOB at {mem} bytes");
    }
}

/// A section: (data offset, raw size, GPA, memory size, type, attributes).
type Sec = (u32, u32, u64, u64, u32, u32);

/// A 64 KiB TDVF image: BFV (32 KiB, measured) and CFV (16 KiB) in the image, TD_HOB and TempMem in memory only,
/// the metadata in the last 8 KiB, in the footer table.
fn synthetic(sections: &[Sec]) -> Vec<u8> {
    let len = 64 * 1024;
    let mut img: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let meta_at = len - 8192;
    let mut meta = b"TDVF".to_vec();
    meta.extend(((16 + 32 * sections.len()) as u32).to_le_bytes());
    meta.extend(1u32.to_le_bytes());
    meta.extend((sections.len() as u32).to_le_bytes());
    for &(off, raw, gpa, mem, kind, attr) in sections {
        meta.extend(off.to_le_bytes());
        meta.extend(raw.to_le_bytes());
        meta.extend(gpa.to_le_bytes());
        meta.extend(mem.to_le_bytes());
        meta.extend(kind.to_le_bytes());
        meta.extend(attr.to_le_bytes());
    }
    img[meta_at..meta_at + meta.len()].copy_from_slice(&meta);
    crate::firmware::write_footer_table(
        &mut img,
        &[(((len - meta_at) as u32).to_le_bytes().to_vec(), "e47a6535-984a-4798-865e-4685a7bf8ec2")],
    );
    img
}

const BFV: Sec = (0, 0x8000, 0xFFFF_0000, 0x8000, 0, 1);
const CFV: Sec = (0x8000, 0x4000, 0xFFFF_8000, 0x4000, 1, 0);
const HOB: Sec = (0, 0, 0x80_9000, 0x2000, 2, 0);
const TEMP: Sec = (0, 0, 0x80_0000, 0x6000, 3, 0);

fn layout() -> Vec<Sec> {
    vec![BFV, CFV, HOB, TEMP]
}

fn mrtd_of(img: &[u8], order: PageOrder) -> [u8; 48] {
    tdx::mrtd(&Tdvf::parse(img).unwrap(), order)
}

#[test]
fn mrtd_covers_the_measured_pages_and_every_added_address() {
    let img = synthetic(&layout());
    let base = mrtd_of(&img, PageOrder::PerPage);
    assert_ne!(base, mrtd_of(&img, PageOrder::PerSection), "the page order changes MRTD");
    // A byte of the BFV (MR.EXTEND): MRTD changes, in both orders.
    let mut b = img.clone();
    b[0x7FFF] ^= 1;
    assert_ne!(mrtd_of(&b, PageOrder::PerPage), base);
    assert_ne!(mrtd_of(&b, PageOrder::PerSection), mrtd_of(&img, PageOrder::PerSection));
    // A byte of the CFV (added, not extended): MRTD is unchanged, the CFV digest (RTMR0) is not.
    let mut c = img.clone();
    c[0x8001] ^= 1;
    assert_eq!(mrtd_of(&c, PageOrder::PerPage), base);
    assert_ne!(Tdvf::parse(&c).unwrap().cfv_digest(), Tdvf::parse(&img).unwrap().cfv_digest());
    // Where a memory-only section is added, and the order of the sections, are measured.
    let mut moved = layout();
    moved[3].2 = 0x80_1000;
    assert_ne!(mrtd_of(&synthetic(&moved), PageOrder::PerPage), base);
    let mut swapped = layout();
    swapped.swap(2, 3);
    assert_ne!(mrtd_of(&synthetic(&swapped), PageOrder::PerPage), base);
    // With one page per section and the BFV last, the two orders agree: the difference is page interleaving.
    let one = vec![
        (0, 0, 0x80_9000, 0x1000, 2, 0),
        (0x8000, 0x4000, 0xFFFF_8000, 0x4000, 1, 0),
        (0, 0x1000, 0xFFFF_0000, 0x1000, 0, 1),
    ];
    let img1 = synthetic(&one);
    assert_eq!(mrtd_of(&img1, PageOrder::PerPage), mrtd_of(&img1, PageOrder::PerSection));
}

#[test]
fn malformed_tdvf_metadata_is_refused() {
    let ok = synthetic(&layout());
    assert!(Tdvf::parse(&ok).is_ok());
    let with = |f: &dyn Fn(&mut Vec<Sec>)| {
        let mut s = layout();
        f(&mut s);
        synthetic(&s)
    };
    let meta = 64 * 1024 - 8192;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("type 5", with(&|s| s[3].4 = 5)),
        ("PAGE.AUG", with(&|s| s[3].5 = 2)),
        ("not whole pages", with(&|s| s[2].2 = 0x80_9800)),
        ("not whole pages", with(&|s| s[2].3 = 0x1800)),
        ("more bytes in the image than in memory", with(&|s| s[1].1 = 0x5000)),
        ("is measured but has", with(&|s| s[0].3 = 0x9000)),
        ("runs past the end", with(&|s| s[1].0 = 0xF000)),
        ("is empty", with(&|s| s[0].1 = 0)),
        ("has contents in the image", with(&|s| s[3].1 = 0x1000)),
        ("0 TD_HOB sections", with(&|s| s[2].4 = 3)),
        ("2 TD_HOB sections", with(&|s| s[3].4 = 2)),
        ("malformed", synthetic(&[BFV])),
    ];
    let mut sig = ok.clone();
    sig[meta] = b'X';
    cases.push(("signature is not TDVF", sig));
    let mut ver = ok.clone();
    ver[meta + 8] = 2;
    cases.push(("version 2", ver));
    let mut len = ok.clone();
    len[meta + 4] ^= 0x20;
    cases.push(("malformed", len));
    let mut no_entry = ok.clone();
    let g = crate::firmware::guid_le("e47a6535-984a-4798-865e-4685a7bf8ec2");
    let at = no_entry.windows(16).rposition(|w| w == g.as_slice()).unwrap();
    no_entry[at] ^= 1;
    cases.push(("no TDX metadata", no_entry));
    cases.push(("not a TDVF image", vec![0; 100]));
    for (why, img) in cases {
        let e = Tdvf::parse(&img).expect_err(why).to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn the_td_hob_accepts_the_firmware_ranges_and_leaves_the_rest_unaccepted() {
    let img = synthetic(&layout());
    let t = Tdvf::parse(&img).unwrap();
    let hob = tdx::td_hob(&t, 6 << 30).unwrap();
    let ranges: Vec<(u32, u64, u64)> = hob[56..]
        .chunks(48)
        .map(|r| {
            let kind = u32::from_le_bytes(r[24..28].try_into().unwrap());
            (kind, u64::from_le_bytes(r[32..40].try_into().unwrap()), u64::from_le_bytes(r[40..48].try_into().unwrap()))
        })
        .collect();
    // 6 GiB on q35: 2 GiB below 4 GiB, 4 GiB above; TempMem and TD_HOB accepted (0), the rest unaccepted (7).
    assert_eq!(
        ranges,
        [
            (7, 0, 0x80_0000),
            (0, 0x80_0000, 0x6000),
            (7, 0x80_6000, 0x3000),
            (0, 0x80_9000, 0x2000),
            (7, 0x80_b000, 0x8000_0000 - 0x80_b000),
            (7, 1 << 32, 4 << 30),
        ]
    );
    assert!(tdx::td_hob(&t, 100 << 20).is_err(), "below 256 MiB");
}

/// Runs a command; its stdout, or a panic with its stderr.
fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh installs osslsigncode)"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A PE32+ image: DOS header, PE header with 16 data directories, three sections (one empty), trailing bytes.
fn pe() -> Vec<u8> {
    let mut b = vec![0u8; 0x400];
    b[..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    b[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    b[coff + 2..coff + 4].copy_from_slice(&3u16.to_le_bytes());
    b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    b[coff + 18..coff + 20].copy_from_slice(&0x0022u16.to_le_bytes());
    let opt = coff + 20;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    b[opt + 16..opt + 20].copy_from_slice(&0x1000u32.to_le_bytes()); // entry point
    b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // section alignment
    b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // file alignment
    b[opt + 56..opt + 60].copy_from_slice(&0x4000u32.to_le_bytes()); // size of image
    b[opt + 60..opt + 64].copy_from_slice(&0x400u32.to_le_bytes()); // size of headers
    b[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes()); // EFI application
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    let table = opt + 240;
    for (i, (name, rva, raw, ptr)) in [
        (*b".text\0\0\0", 0x1000u32, 0x400u32, 0x400u32),
        (*b".data\0\0\0", 0x2000, 0x200, 0x800),
        (*b".bss\0\0\0\0", 0x3000, 0, 0),
    ]
    .iter()
    .enumerate()
    {
        let s = table + 40 * i;
        b[s..s + 8].copy_from_slice(name);
        b[s + 8..s + 12].copy_from_slice(&0x1000u32.to_le_bytes());
        b[s + 12..s + 16].copy_from_slice(&rva.to_le_bytes());
        b[s + 16..s + 20].copy_from_slice(&raw.to_le_bytes());
        b[s + 20..s + 24].copy_from_slice(&ptr.to_le_bytes());
    }
    b.extend((0..0x600).map(|i| (i * 13 % 256) as u8));
    b
}

#[test]
fn authenticode_matches_osslsigncode() {
    let dir = std::env::temp_dir().join(format!("sigil-authenticode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sigil test", "-days", "1"])
        .args(["-keyout", &p("k.pem"), "-out", &p("c.pem")]));
    std::fs::write(p("unsigned.efi"), pe()).unwrap();
    for (alg, ring_alg) in [("sha256", &ring::digest::SHA256), ("sha384", &ring::digest::SHA384)] {
        let signed = p(&format!("signed-{alg}.efi"));
        let _ = std::fs::remove_file(&signed);
        run(Command::new("osslsigncode").args([
            "sign",
            "-certs",
            &p("c.pem"),
            "-key",
            &p("k.pem"),
            "-h",
            alg,
            "-in",
            &p("unsigned.efi"),
            "-out",
            &signed,
        ]));
        let out = run(Command::new("osslsigncode").args(["verify", "-in", &signed, "-CAfile", &p("c.pem")]));
        let theirs = out
            .lines()
            .find_map(|l| l.strip_prefix("Calculated message digest : "))
            .unwrap_or_else(|| panic!("no digest in: {out}"))
            .trim()
            .to_ascii_lowercase();
        let bytes = std::fs::read(&signed).unwrap();
        assert_eq!(hex::encode(authenticode(&bytes, ring_alg).unwrap()), theirs, "{alg}, signed image");
        // The certificate table is not part of the digest: the unsigned image has the same one.
        let unsigned = std::fs::read(p("unsigned.efi")).unwrap();
        assert_eq!(hex::encode(authenticode(&unsigned, ring_alg).unwrap()), theirs, "{alg}, unsigned image");
        // A flipped byte of a section changes it.
        let mut flipped = bytes.clone();
        flipped[0x500] ^= 1;
        assert_ne!(hex::encode(authenticode(&flipped, ring_alg).unwrap()), theirs);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rtmr2_measures_the_load_options_and_the_initrd() {
    use tdx::InitrdOption::*;
    let initrd = b"initrd bytes";
    let suffix = tdx::rtmr2_events("console=ttyS0", Some(initrd), Suffix);
    let prefix = tdx::rtmr2_events("console=ttyS0", Some(initrd), Prefix);
    assert_eq!(suffix.len(), 2);
    assert_ne!(suffix[0], prefix[0]);
    assert_eq!(suffix[1], prefix[1]);
    let utf16: Vec<u8> = "console=ttyS0 initrd=initrd\0".encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
    assert_eq!(suffix[0], sigil_attest::sha384(&utf16));
    assert_eq!(suffix[1], sigil_attest::sha384(initrd));
    assert_eq!(tdx::rtmr2_events("", None, Suffix).len(), 0, "no load options, no initrd: no events");
}
