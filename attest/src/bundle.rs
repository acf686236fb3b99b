//! The Sigil evidence bundle: everything an offline verifier needs in one CBOR object, so a node can ship its
//! evidence with its endorsements. Format (see `docs/evidence-bundle.md`):
//!
//! ```text
//! {
//!   "sigil-evidence": 1,                 ; format version
//!   "platform": "sev-snp" | "tdx" | "sim",
//!   "evidence": bstr,                    ; SNP report, Azure HCL report, TDX quote or sim evidence (raw)
//!   "certs": [* bstr],                   ; DER certificates (VCEK/VLEK, optionally ASK/ASVK/ARK), any order
//!   ? "collateral": tstr,                ; Intel PCS collateral JSON (dcap-qvl QuoteCollateralV3 shape)
//!   ? "azure_hcl": bstr,                 ; Azure TDX: the HCL report whose runtime claims REPORT_DATA binds
//! }
//! ```
//! Decoding rejects unknown keys, trailing bytes and anything over the size limits.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::{Error, ParseError};
use crate::result::Platform;

/// Largest bundle accepted.
pub const MAX_BUNDLE_LEN: usize = 1 << 20;
/// Most certificates a bundle may carry.
pub const MAX_CERTS: usize = 16;

/// A decoded evidence bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Format version (1).
    #[serde(rename = "sigil-evidence")]
    pub version: u32,
    /// Which TEE produced the evidence.
    pub platform: Platform,
    /// The raw evidence.
    pub evidence: ByteBuf,
    /// DER certificates.
    #[serde(default)]
    pub certs: Vec<ByteBuf>,
    /// Intel PCS collateral JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<String>,
    /// Azure TDX: the HCL report with the runtime claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_hcl: Option<ByteBuf>,
    /// TDX only: the guest's CC event log (the ACPI `CCEL` table), replayed against the quote's RTMRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccel: Option<ByteBuf>,
    /// A vTPM quote, its PCR values and event log (see `vtpm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtpm: Option<crate::vtpm::VtpmEvidence>,
}

/// Decodes CBOR into `T`, rejecting trailing bytes.
pub(crate) fn cbor_exact<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ParseError> {
    let mut rest = bytes;
    let v: T = ciborium::from_reader(&mut rest).map_err(|e| ParseError::Cbor(format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(ParseError::Cbor(format!("{what}: {} trailing bytes", rest.len())));
    }
    Ok(v)
}

impl Bundle {
    /// A bundle for `platform` with `evidence` and DER `certs`.
    pub fn new(platform: Platform, evidence: Vec<u8>, certs: Vec<Vec<u8>>) -> Bundle {
        Bundle {
            version: 1,
            platform,
            evidence: ByteBuf::from(evidence),
            certs: certs.into_iter().map(ByteBuf::from).collect(),
            collateral: None,
            azure_hcl: None,
            ccel: None,
            vtpm: None,
        }
    }

    /// Decodes and checks limits.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, ParseError> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(ParseError::Field {
                what: "evidence bundle",
                detail: format!("{} bytes exceeds {MAX_BUNDLE_LEN}", bytes.len()),
            });
        }
        let b: Bundle = cbor_exact(bytes, "evidence bundle")?;
        if b.version != 1 {
            return Err(ParseError::Version { what: "evidence bundle", version: b.version });
        }
        if b.certs.len() > MAX_CERTS {
            return Err(ParseError::Field {
                what: "evidence bundle",
                detail: format!("{} certificates exceeds {MAX_CERTS}", b.certs.len()),
            });
        }
        if b.platform == Platform::Tpm {
            if !b.evidence.is_empty() || b.vtpm.is_none() {
                return Err(ParseError::Field {
                    what: "evidence bundle",
                    detail: "a tpm bundle carries its quote in vtpm and nothing in evidence".into(),
                });
            }
        } else if b.evidence.is_empty() {
            return Err(ParseError::Field { what: "evidence bundle", detail: "evidence is empty".into() });
        }
        Ok(b)
    }

    /// CBOR encoding: definite lengths, keys in a fixed order (the format key first). Decoders accept any key
    /// order.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(out)
    }
}
