//! The SEV-SNP `ATTESTATION_REPORT` structure (AMD SEV-SNP ABI spec, table "ATTESTATION_REPORT"), versions 2
//! to 5, always 1184 bytes.
//!
//! [`SnpReport::parse`] reads only what chooses the verification path (size, version, signature algorithm)
//! and copies the fields out; nothing here is trusted until [`super::verify`] has checked the signature over
//! [`SnpReport::signed_bytes`].

use serde::Serialize;

use crate::error::ParseError;
use crate::reader::{le_u32, le_u64};

/// Size of every SNP attestation report.
pub const REPORT_LEN: usize = 1184;
/// The signature covers bytes `[0, SIGNED_LEN)`.
pub const SIGNED_LEN: usize = 0x2A0;
const WHAT: &str = "SEV-SNP report";

/// AMD EPYC generations Sigil knows the roots of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Product {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4).
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Product {
    /// The name AMD uses in certificate names and KDS URLs.
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// From CPUID family / model (as in trustee's `get_processor_generation`).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// From a certificate `productName` extension ("Milan-B0", "Genoa", "Turin", VLEK: "Milan").
    pub fn from_product_name(name: &str) -> Option<Product> {
        let base = name.split('-').next().unwrap_or(name);
        [Product::Milan, Product::Genoa, Product::Turin].into_iter().find(|p| p.name() == base)
    }
}

/// Which key signed the report (signer info bits 4:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key (per chip, per TCB).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider).
    Vlek,
    /// The report is not signed.
    None,
}

/// A TCB version, decoded with the layout of its product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tcb {
    /// Turin only: FMC firmware SPL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    #[serde(default)]
    pub bl: u8,
    /// PSP OS SPL.
    #[serde(default)]
    pub tee: u8,
    /// SNP firmware SPL.
    #[serde(default)]
    pub snp: u8,
    /// Microcode SPL.
    #[serde(default)]
    pub ucode: u8,
}

impl Tcb {
    /// Decodes a raw TCB_VERSION. Milan/Genoa: [0]=bl [1]=tee [6]=snp [7]=ucode; Turin: [0]=fmc [1]=bl [2]=tee
    /// [3]=snp [7]=ucode.
    pub fn decode(raw: u64, product: Product) -> Tcb {
        let b = raw.to_le_bytes();
        match product {
            Product::Turin => Tcb { fmc: Some(b[0]), bl: b[1], tee: b[2], snp: b[3], ucode: b[7] },
            _ => Tcb { fmc: None, bl: b[0], tee: b[1], snp: b[6], ucode: b[7] },
        }
    }

    /// Every component is at least `min`'s. `fmc` exists on Turin only: a minimum for it applies to TCBs that
    /// have one, so one policy can serve a fleet of several generations.
    pub fn at_least(&self, min: &Tcb) -> bool {
        let fmc_ok = match (self.fmc, min.fmc) {
            (Some(have), Some(want)) => have >= want,
            _ => true,
        };
        self.bl >= min.bl && self.tee >= min.tee && self.snp >= min.snp && self.ucode >= min.ucode && fmc_ok
    }
}

impl core::fmt::Display for Tcb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(f, "bl={} tee={} snp={} ucode={}", self.bl, self.tee, self.snp, self.ucode)
    }
}

/// A parsed (not yet verified) SEV-SNP attestation report.
#[derive(Clone, Debug)]
pub struct SnpReport {
    raw: Box<[u8; REPORT_LEN]>,
}

/// The little-endian `u32` at `off`, a fixed offset inside a report of [`REPORT_LEN`] bytes.
fn le32(b: &[u8], off: usize) -> u32 {
    le_u32(b, off).expect("a fixed offset inside the report")
}
/// The little-endian `u64` at `off`, a fixed offset inside a report of [`REPORT_LEN`] bytes.
fn le64(b: &[u8], off: usize) -> u64 {
    le_u64(b, off).expect("a fixed offset inside the report")
}

impl SnpReport {
    /// Parses a report: exactly 1184 bytes, VERSION 2..=5, SIGNATURE_ALGO 1 (ECDSA P-384 SHA-384).
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, ParseError> {
        if bytes.len() != REPORT_LEN {
            return Err(ParseError::Length { what: WHAT, expected: REPORT_LEN, got: bytes.len() });
        }
        let raw: Box<[u8; REPORT_LEN]> = Box::new(bytes.try_into().expect("length checked"));
        let version = le32(&raw[..], 0);
        if !(2..=5).contains(&version) {
            return Err(ParseError::Version { what: WHAT, version });
        }
        let algo = le32(&raw[..], 0x34);
        if algo != 1 {
            return Err(ParseError::Field {
                what: "SEV-SNP report SIGNATURE_ALGO",
                detail: format!("{algo} is not 1 (ECDSA P-384 with SHA-384)"),
            });
        }
        Ok(SnpReport { raw })
    }

    /// The whole report.
    pub fn raw(&self) -> &[u8] {
        &self.raw[..]
    }
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }
    /// VERSION.
    pub fn version(&self) -> u32 {
        le32(self.raw(), 0x00)
    }
    /// GUEST_SVN.
    pub fn guest_svn(&self) -> u32 {
        le32(self.raw(), 0x04)
    }
    /// Guest POLICY.
    pub fn policy(&self) -> u64 {
        le64(self.raw(), 0x08)
    }
    /// FAMILY_ID.
    pub fn family_id(&self) -> &[u8] {
        &self.raw[0x10..0x20]
    }
    /// IMAGE_ID.
    pub fn image_id(&self) -> &[u8] {
        &self.raw[0x20..0x30]
    }
    /// VMPL the report was requested from.
    pub fn vmpl(&self) -> u32 {
        le32(self.raw(), 0x30)
    }
    /// CURRENT_TCB (raw).
    pub fn current_tcb(&self) -> u64 {
        le64(self.raw(), 0x38)
    }
    /// PLATFORM_INFO.
    pub fn platform_info(&self) -> u64 {
        le64(self.raw(), 0x40)
    }
    /// Signer info word at 0x48 (AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY).
    pub fn signer_info(&self) -> u32 {
        le32(self.raw(), 0x48)
    }
    /// Which key signed the report; `Err(value)` for a reserved encoding.
    pub fn signing_key(&self) -> Result<SigningKey, u32> {
        match (self.signer_info() >> 2) & 0x7 {
            0 => Ok(SigningKey::Vcek),
            1 => Ok(SigningKey::Vlek),
            7 => Ok(SigningKey::None),
            v => Err(v),
        }
    }
    /// MASK_CHIP_ID: the firmware replaced CHIP_ID by zeros.
    pub fn chip_id_masked(&self) -> bool {
        self.signer_info() & 0b10 != 0
    }
    /// REPORT_DATA (64 bytes chosen by the guest).
    pub fn report_data(&self) -> &[u8] {
        &self.raw[0x50..0x90]
    }
    /// MEASUREMENT (launch digest, 48 bytes).
    pub fn measurement(&self) -> &[u8] {
        &self.raw[0x90..0xC0]
    }
    /// HOST_DATA (32 bytes chosen by the host at launch).
    pub fn host_data(&self) -> &[u8] {
        &self.raw[0xC0..0xE0]
    }
    /// ID_KEY_DIGEST.
    pub fn id_key_digest(&self) -> &[u8] {
        &self.raw[0xE0..0x110]
    }
    /// AUTHOR_KEY_DIGEST.
    pub fn author_key_digest(&self) -> &[u8] {
        &self.raw[0x110..0x140]
    }
    /// REPORT_ID.
    pub fn report_id(&self) -> &[u8] {
        &self.raw[0x140..0x160]
    }
    /// REPORT_ID_MA.
    pub fn report_id_ma(&self) -> &[u8] {
        &self.raw[0x160..0x180]
    }
    /// REPORTED_TCB (raw).
    pub fn reported_tcb(&self) -> u64 {
        le64(self.raw(), 0x180)
    }
    /// CPUID family, model, stepping (version 3 and later).
    pub fn cpuid(&self) -> Option<(u8, u8, u8)> {
        (self.version() >= 3).then(|| (self.raw[0x188], self.raw[0x189], self.raw[0x18A]))
    }
    /// CHIP_ID.
    pub fn chip_id(&self) -> &[u8] {
        &self.raw[0x1A0..0x1E0]
    }
    /// COMMITTED_TCB (raw).
    pub fn committed_tcb(&self) -> u64 {
        le64(self.raw(), 0x1E0)
    }
    /// Current firmware version (major, minor, build).
    pub fn current_version(&self) -> (u8, u8, u8) {
        (self.raw[0x1EA], self.raw[0x1E9], self.raw[0x1E8])
    }
    /// Committed firmware version (major, minor, build).
    pub fn committed_version(&self) -> (u8, u8, u8) {
        (self.raw[0x1EE], self.raw[0x1ED], self.raw[0x1EC])
    }
    /// LAUNCH_TCB (raw).
    pub fn launch_tcb(&self) -> u64 {
        le64(self.raw(), 0x1F0)
    }
    /// LAUNCH_MIT_VECTOR (version 5 and later).
    pub fn launch_mit_vector(&self) -> Option<u64> {
        (self.version() >= 5).then(|| le64(self.raw(), 0x1F8))
    }
    /// CURRENT_MIT_VECTOR (version 5 and later).
    pub fn current_mit_vector(&self) -> Option<u64> {
        (self.version() >= 5).then(|| le64(self.raw(), 0x200))
    }
    /// The signature as the 96-byte big-endian `r || s` that P-384 verifiers take. The report stores r and s as
    /// 72-byte little-endian integers whose top 24 bytes must be zero.
    pub fn signature_fixed(&self) -> Result<[u8; 96], String> {
        let mut out = [0u8; 96];
        for (i, off) in [0x2A0usize, 0x2E8].into_iter().enumerate() {
            let le = &self.raw[off..off + 72];
            if le[48..].iter().any(|&b| b != 0) {
                return Err("signature component is wider than 384 bits".into());
            }
            for (j, b) in le[..48].iter().enumerate() {
                out[i * 48 + 47 - j] = *b;
            }
        }
        Ok(out)
    }

    /// The product this report's CPUID names (version 3 and later).
    pub fn product_from_cpuid(&self) -> Option<Product> {
        self.cpuid().and_then(|(fam, model, _)| Product::from_cpuid(fam, model))
    }

    /// Reserved ranges that must be zero for this version (after the signature is checked these are trusted).
    pub fn nonzero_reserved(&self) -> Vec<String> {
        let mut ranges: Vec<(usize, usize)> = vec![(0x4C, 0x50), (0x1EB, 0x1EC), (0x1EF, 0x1F0), (0x330, REPORT_LEN)];
        ranges.push((if self.version() >= 3 { 0x18B } else { 0x188 }, 0x1A0));
        ranges.push((if self.version() >= 5 { 0x208 } else { 0x1F8 }, 0x2A0));
        ranges
            .into_iter()
            .filter(|&(a, b)| self.raw[a..b].iter().any(|&x| x != 0))
            .map(|(a, b)| format!("reserved bytes {a:#x}..{b:#x} are not zero"))
            .collect()
    }
}

/// Guest policy bits (SEV-SNP ABI, "GUEST_POLICY").
pub mod policy_bits {
    /// SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Reserved, must be one.
    pub const RESERVED_ONE: u64 = 1 << 17;
    /// Migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Debugging allowed: the hypervisor can read and write guest memory.
    pub const DEBUG: u64 = 1 << 19;
    /// Single socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// Bits 63:26 must be zero.
    pub const MBZ: u64 = !((1 << 26) - 1);
}

/// PLATFORM_INFO bits.
pub mod platform_info_bits {
    /// SMT is enabled on the platform.
    pub const SMT_EN: u64 = 1 << 0;
    /// TSME is enabled.
    pub const TSME_EN: u64 = 1 << 1;
}
