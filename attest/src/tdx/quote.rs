//! [`Quote::parse`]: Sigil's own bounded parser of TDX quotes v4/v5 (TD 1.0 and TD 1.5 bodies). It checks every
//! length, accepts zero padding after the quote (configfs-tsm hands out fixed-size buffers) and refuses any other
//! trailing byte.

use crate::error::ParseError;
use crate::reader::{le_u16, Reader};

use super::{HEADER_LEN, MAX_QUOTE_LEN, QE_REPORT_LEN, TD10_LEN, TD15_LEN, TEE_TYPE_TDX, WHAT};

/// The TD report body of a quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdBody {
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: u64,
    /// TDATTRIBUTES.
    pub td_attributes: u64,
    /// XFAM.
    pub xfam: u64,
    /// MRTD: the measurement of the initial TD contents.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// TD 1.5: TEE_TCB_SVN2.
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// TD 1.5: MRSERVICETD.
    pub mr_service_td: Option<[u8; 48]>,
}

/// A parsed (not yet verified) TDX quote.
#[derive(Clone, Debug)]
pub struct Quote {
    /// The quote bytes without trailing padding.
    pub raw: Vec<u8>,
    /// Header version (4 or 5).
    pub version: u16,
    /// Attestation key type (2 = ECDSA P-256).
    pub att_key_type: u16,
    /// TEE type (0x81 = TDX).
    pub tee_type: u32,
    /// QE vendor ID.
    pub qe_vendor_id: [u8; 16],
    /// The TD report.
    pub body: TdBody,
    /// Length of header + body: the bytes the quote signature covers.
    pub signed_len: usize,
    /// ECDSA signature (r ‖ s, big-endian).
    pub signature: [u8; 64],
    /// Attestation public key (X ‖ Y).
    pub attestation_key: [u8; 64],
    /// The QE's enclave report (384 bytes).
    pub qe_report: [u8; QE_REPORT_LEN],
    /// PCK signature over the QE report.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
    /// Inner certification data type (5 = PCK chain, PEM).
    pub cert_type: u16,
    /// Inner certification data.
    pub cert_data: Vec<u8>,
}

/// Reads the quote header's (version, attestation key type, tee type) if `bytes` can be a DCAP quote.
pub fn sniff(bytes: &[u8]) -> Option<(u16, u16, u32)> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let mut r = Reader::new(bytes, "TDX quote header");
    let (v, k, t) = (r.u16().ok()?, r.u16().ok()?, r.u32().ok()?);
    ((3..=5).contains(&v) && k == 2 && (t == 0 || t == TEE_TYPE_TDX)).then_some((v, k, t))
}

impl Quote {
    /// Parses a TDX quote v4/v5. Trailing bytes must all be zero.
    pub fn parse(bytes: &[u8]) -> Result<Quote, ParseError> {
        if bytes.len() > MAX_QUOTE_LEN {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("{} bytes exceeds the {MAX_QUOTE_LEN}-byte limit", bytes.len()),
            });
        }
        let mut c = Reader::new(bytes, "TDX quote header");
        let version = c.section("TDX quote header").u16()?;
        let att_key_type = c.section("TDX quote header").u16()?;
        let tee_type = c.section("TDX quote header").u32()?;
        if tee_type == 0 {
            return Err(ParseError::Field {
                what: WHAT,
                detail: "not a TDX quote: TEE type 0 is an SGX enclave quote".into(),
            });
        }
        if tee_type != TEE_TYPE_TDX {
            return Err(ParseError::Field { what: WHAT, detail: format!("TEE type {tee_type:#x} is not TDX (0x81)") });
        }
        if version != 4 && version != 5 {
            return Err(ParseError::Version { what: WHAT, version: version.into() });
        }
        if att_key_type != 2 {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("attestation key type {att_key_type} is not ECDSA P-256 (2)"),
            });
        }
        c.section("TDX quote header").take(4)?; // qe_svn, pce_svn
        let qe_vendor_id = c.section("TDX quote header").array::<16>()?;
        c.section("TDX quote header").take(20)?; // user_data
        let td15 = if version == 5 {
            let body_type = c.section("TDX quote v5 body descriptor").u16()?;
            let size = c.section("TDX quote v5 body descriptor").u32()? as usize;
            let (td15, want) = match body_type {
                2 => (false, TD10_LEN),
                3 => (true, TD15_LEN),
                t => {
                    return Err(ParseError::Field {
                        what: WHAT,
                        detail: format!("v5 body type {t} is not TD 1.0 (2) or TD 1.5 (3)"),
                    })
                }
            };
            if size != want {
                return Err(ParseError::Length { what: "TDX quote v5 body", expected: want, got: size });
            }
            td15
        } else {
            false
        };
        c.section("TD report");
        let body = TdBody {
            tee_tcb_svn: c.array()?,
            mr_seam: c.array()?,
            mr_signer_seam: c.array()?,
            seam_attributes: c.u64()?,
            td_attributes: c.u64()?,
            xfam: c.u64()?,
            mr_td: c.array()?,
            mr_config_id: c.array()?,
            mr_owner: c.array()?,
            mr_owner_config: c.array()?,
            rtmr: [c.array()?, c.array()?, c.array()?, c.array()?],
            report_data: c.array()?,
            tee_tcb_svn2: if td15 { Some(c.section("TD 1.5 report").array()?) } else { None },
            mr_service_td: if td15 { Some(c.array()?) } else { None },
        };
        let signed_len = c.used();
        // The signature data and, inside it, the certification data are length-prefixed: each is read from a
        // sub-reader of exactly its declared length, which must be used up (a size that disagrees with the
        // contents is refused either way: as truncated, or as trailing bytes).
        let sig_len = c.section("quote signature data length").u32()? as usize;
        let mut sig = c.sub(sig_len, "quote signature data")?;
        let signature = sig.section("quote signature").array::<64>()?;
        let attestation_key = sig.section("attestation key").array::<64>()?;
        let outer_type = sig.section("certification data").u16()?;
        if outer_type != 6 {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("certification data type {outer_type} is not 6 (QE report certification data)"),
            });
        }
        let outer_len = sig.u32()? as usize;
        let mut outer = sig.sub(outer_len, "certification data")?;
        let qe_report = outer.section("QE report").array::<QE_REPORT_LEN>()?;
        let qe_report_signature = outer.section("QE report signature").array::<64>()?;
        let auth_len = outer.section("QE authentication data").u16()? as usize;
        let qe_auth_data = outer.take(auth_len)?.to_vec();
        let cert_type = outer.section("PCK certification data").u16()?;
        let cert_len = outer.u32()? as usize;
        let cert_data = outer.take(cert_len)?.to_vec();
        outer.expect_empty()?;
        sig.expect_empty()?;
        let raw = bytes[..c.used()].to_vec();
        let rest = c.rest();
        if rest.iter().any(|&b| b != 0) {
            return Err(ParseError::TrailingBytes { what: WHAT, count: rest.len() });
        }
        Ok(Quote {
            raw,
            version,
            att_key_type,
            tee_type,
            qe_vendor_id,
            body,
            signed_len,
            signature,
            attestation_key,
            qe_report,
            qe_report_signature,
            qe_auth_data,
            cert_type,
            cert_data,
        })
    }

    /// QE report fields: (MRSIGNER, ISVPRODID, ISVSVN, REPORTDATA).
    pub(super) fn qe_fields(&self) -> ([u8; 32], u16, u16, &[u8]) {
        let q = &self.qe_report;
        (
            q[128..160].try_into().expect("32"),
            le_u16(q, 256).expect("in the QE report"),
            le_u16(q, 258).expect("in the QE report"),
            &q[320..384],
        )
    }
}
