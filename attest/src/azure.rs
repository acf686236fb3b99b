//! Azure confidential VMs with a paravisor (HCL): the "HCLA" report the vTPM holds.
//!
//! Layout: a 32-byte header (`HCLA`, version, size, request type), the hardware report area at 0x20 (an SNP
//! report, or a TDREPORT on TDX), then at 0x4C0 the runtime data header (size, version, report type, hash type,
//! claim size) and the runtime-claims JSON at 0x4D4. The hardware report's REPORT_DATA starts with the hash of
//! that JSON, which carries the vTPM attestation key (`HCLAkPub`) and the guest's `user-data`.

use crate::error::ParseError;
use crate::reader::Reader;

const WHAT: &str = "Azure HCL report";
const RUNTIME_HDR: usize = 0x4C0;
const CLAIMS_AT: usize = 0x4D4;
const MAX_CLAIMS: usize = 64 * 1024;

/// Which hardware report the HCL report wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HclKind {
    /// An SEV-SNP report (report type 2).
    Snp,
    /// A TDX TDREPORT (report type 4): not verifiable on its own; the TD quote is.
    Tdx,
}

/// The hash algorithm of the runtime claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashType {
    /// SHA-256 (type 1).
    Sha256,
    /// SHA-384 (type 2).
    Sha384,
    /// SHA-512 (type 3).
    Sha512,
}

/// A parsed HCL report.
#[derive(Clone, Debug)]
pub struct HclReport {
    /// SNP or TDX.
    pub kind: HclKind,
    /// The hardware report area (1184 bytes; an SNP report or TDREPORT plus padding).
    pub hw_report: Vec<u8>,
    /// Hash algorithm that binds the claims into REPORT_DATA.
    pub hash_type: HashType,
    /// The runtime claims JSON, exactly as hashed.
    pub runtime_claims: Vec<u8>,
}

/// Whether `bytes` starts like an HCL report.
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HCLA")
}

impl HclReport {
    /// Parses an HCL report; bytes after the claims must be zero padding.
    pub fn parse(bytes: &[u8]) -> Result<HclReport, ParseError> {
        if bytes.len() < CLAIMS_AT {
            return Err(ParseError::Truncated { what: WHAT, need: CLAIMS_AT, have: bytes.len() });
        }
        if !sniff(bytes) {
            return Err(ParseError::Field { what: WHAT, detail: "missing HCLA signature".into() });
        }
        // The runtime data header: data size, version, report type, hash type, claim size (u32 each).
        let mut hdr = Reader::at(bytes, RUNTIME_HDR, WHAT);
        let [data_size, _version, kind, hash_type, claim_size] =
            [(); 5].map(|()| hdr.u32().expect("CLAIMS_AT bytes are there: checked above"));
        let kind = match kind {
            2 => HclKind::Snp,
            4 => HclKind::Tdx,
            t => {
                return Err(ParseError::Field {
                    what: WHAT,
                    detail: format!("runtime report type {t} is neither SNP (2) nor TDX (4)"),
                })
            }
        };
        let hash_type = match hash_type {
            1 => HashType::Sha256,
            2 => HashType::Sha384,
            3 => HashType::Sha512,
            t => return Err(ParseError::Field { what: WHAT, detail: format!("unknown runtime claims hash type {t}") }),
        };
        let claim_size = claim_size as usize;
        if claim_size > MAX_CLAIMS {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("runtime claims of {claim_size} bytes exceed {MAX_CLAIMS}"),
            });
        }
        let data_size = data_size as usize;
        if data_size != claim_size + 20 {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("runtime data size {data_size} does not match claim size {claim_size} + 20"),
            });
        }
        let claims = hdr.take(claim_size)?.to_vec();
        let rest = hdr.rest();
        if rest.iter().any(|&b| b != 0) {
            return Err(ParseError::TrailingBytes { what: WHAT, count: rest.len() });
        }
        serde_json::from_slice::<serde_json::Value>(&claims)
            .map_err(|e| ParseError::Json(format!("runtime claims: {e}")))?;
        Ok(HclReport { kind, hw_report: bytes[0x20..0x20 + 1184].to_vec(), hash_type, runtime_claims: claims })
    }

    /// The report's length without the zero padding after its claims.
    pub fn encoded_len(&self) -> usize {
        CLAIMS_AT + self.runtime_claims.len()
    }

    /// The 64 bytes REPORT_DATA must hold: hash of the claims, zero-padded.
    pub fn expected_report_data(&self) -> [u8; 64] {
        runtime_claims_binding(&self.runtime_claims, self.hash_type)
    }
}

/// REPORT_DATA for runtime claims hashed with `hash`, zero-padded to 64 bytes.
pub fn runtime_claims_binding(claims: &[u8], hash: HashType) -> [u8; 64] {
    let alg = match hash {
        HashType::Sha256 => &ring::digest::SHA256,
        HashType::Sha384 => &ring::digest::SHA384,
        HashType::Sha512 => &ring::digest::SHA512,
    };
    let d = ring::digest::digest(alg, claims);
    let mut out = [0u8; 64];
    out[..d.as_ref().len()].copy_from_slice(d.as_ref());
    out
}

/// The guest's `user-data` runtime claim (64 bytes, hex in the JSON), if present.
pub fn user_data(claims: &serde_json::Value) -> Option<Vec<u8>> {
    claims.get("user-data").and_then(|v| v.as_str()).and_then(|s| hex::decode(s).ok())
}

/// The vTPM quote in Azure's evidence JSON (trustee's `az-snp-vtpm` and `az-tdx-vtpm` shape): the `TPMS_ATTEST`,
/// the raw RSASSA-PKCS1-v1_5 SHA-256 signature by `HCLAkPub`, and PCRs 0-23 of the SHA-256 bank.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct JsonQuote {
    /// The raw signature.
    pub signature: Vec<u8>,
    /// The `TPMS_ATTEST`.
    pub message: Vec<u8>,
    /// PCR values by index.
    pub pcrs: Vec<Vec<u8>>,
}

impl JsonQuote {
    /// The quote as Sigil's vTPM evidence: the signature as the `TPMT_SIGNATURE` the TPM returned.
    pub fn into_evidence(self) -> crate::vtpm::VtpmEvidence {
        use serde_bytes::ByteBuf;
        let mut sig = 0x0014u16.to_be_bytes().to_vec(); // TPM_ALG_RSASSA
        sig.extend(crate::vtpm::HashAlg::Sha256.id().to_be_bytes());
        sig.extend((self.signature.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        sig.extend(&self.signature);
        let bank = (0u32..).zip(self.pcrs.into_iter().map(ByteBuf::from)).collect();
        crate::vtpm::VtpmEvidence {
            quote: ByteBuf::from(self.message),
            signature: ByteBuf::from(sig),
            pcrs: [("sha256".to_string(), bank)].into(),
            ak_public: None,
            event_log: None,
        }
    }
}

/// The vTPM's attestation key, `HCLAkPub`, from the runtime claims.
pub fn ak_public(claims: &serde_json::Value) -> Result<crate::vtpm::quote::AkPublic, String> {
    let jwk = claims
        .get("keys")
        .and_then(|k| k.as_array())
        .and_then(|keys| keys.iter().find(|k| k.get("kid").and_then(|v| v.as_str()) == Some("HCLAkPub")))
        .ok_or("the runtime claims carry no HCLAkPub key")?;
    crate::vtpm::quote::AkPublic::from_jwk(jwk)
}
