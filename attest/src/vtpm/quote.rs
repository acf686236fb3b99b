//! `TPM2_Quote`: the signed `TPMS_ATTEST` (TPM 2.0 Part 2, 10.12.12), its `TPMT_SIGNATURE`, the attestation key's
//! public area, and the checks a verifier makes (go-tpm-tools' `server.VerifyQuote` and Azure's `az-cvm-vtpm` do
//! the same): the signature over the raw `TPMS_ATTEST` bytes, `TPM_GENERATED_VALUE` and the quote type, the nonce
//! in `extraData`, and the PCR digest recomputed from the PCR values the evidence states, over exactly the PCRs the
//! quote selects.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{HashAlg, PcrBanks, PCR_COUNT};
use crate::error::ParseError;
use crate::reader::Reader;

/// `TPM_GENERATED_VALUE`: the TPM puts it in every structure it signs, and a restricted key signs no data that
/// starts with it, so a signed structure that carries it was made by the TPM.
pub const TPM_GENERATED: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
pub const ST_ATTEST_QUOTE: u16 = 0x8018;
/// Largest quote, signature or public area read (real ones are a few hundred bytes).
pub const MAX_LEN: usize = 4096;

const WHAT: &str = "TPM quote (TPMS_ATTEST)";
const ALG_RSA: u16 = 0x0001;
const ALG_NULL: u16 = 0x0010;
const ALG_RSASSA: u16 = 0x0014;
const ALG_RSAPSS: u16 = 0x0016;
const ALG_ECDSA: u16 = 0x0018;
const ALG_ECC: u16 = 0x0023;
const ECC_NIST_P256: u16 = 0x0003;
const ECC_NIST_P384: u16 = 0x0004;

/// One bank's PCRs in a quote's selection, in the order the quote lists banks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// The bank.
    #[serde(serialize_with = "super::ser::alg")]
    pub alg: HashAlg,
    /// The PCR indices selected, ascending.
    pub pcrs: Vec<u32>,
}

/// A parsed `TPMS_ATTEST` of type quote. Nothing in it is trusted before [`verify_signature`] passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quoted {
    /// `qualifiedSigner`: the AK's qualified name.
    #[serde(serialize_with = "super::ser::hex")]
    pub signer: Vec<u8>,
    /// `extraData`: the verifier's nonce.
    #[serde(serialize_with = "super::ser::hex")]
    pub extra_data: Vec<u8>,
    /// `clockInfo.clock`: milliseconds the TPM has been powered.
    pub clock: u64,
    /// `clockInfo.resetCount`: TPM resets (reboots) so far.
    pub reset_count: u32,
    /// `clockInfo.restartCount`.
    pub restart_count: u32,
    /// `clockInfo.safe`.
    pub safe: bool,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// `pcrSelect`.
    pub selection: Vec<Selection>,
    /// `pcrDigest`: the digest of the selected PCR values, with the signing scheme's hash.
    #[serde(serialize_with = "super::ser::hex")]
    pub pcr_digest: Vec<u8>,
}

/// A reader over one TPM structure of at most [`MAX_LEN`] bytes.
fn bounded<'a>(bytes: &'a [u8], what: &'static str) -> Result<Reader<'a>, ParseError> {
    if bytes.len() > MAX_LEN {
        return Err(ParseError::Field { what, detail: format!("{} bytes exceeds {MAX_LEN}", bytes.len()) });
    }
    Ok(Reader::new(bytes, what))
}

/// A `TPMI_ALG_HASH` (`field` names it in the error).
fn hash_alg(r: &mut Reader<'_>, what: &'static str, field: &str) -> Result<HashAlg, ParseError> {
    let id = r.be_u16()?;
    HashAlg::from_id(id).ok_or_else(|| ParseError::Field { what, detail: format!("{field} {id:#06x}") })
}

impl Quoted {
    /// Parses a `TPMS_ATTEST` (without the `TPM2B` size in front), refusing any other attestation type and any
    /// trailing byte.
    pub fn parse(bytes: &[u8]) -> Result<Quoted, ParseError> {
        let mut r = bounded(bytes, WHAT)?;
        let magic = r.be_u32()?;
        if magic != TPM_GENERATED {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("magic {magic:#010x} is not TPM_GENERATED_VALUE {TPM_GENERATED:#010x}"),
            });
        }
        let kind = r.be_u16()?;
        if kind != ST_ATTEST_QUOTE {
            return Err(ParseError::Field {
                what: WHAT,
                detail: format!("type {kind:#06x} is not TPM_ST_ATTEST_QUOTE {ST_ATTEST_QUOTE:#06x}"),
            });
        }
        let signer = r.tpm2b()?.to_vec();
        let extra_data = r.tpm2b()?.to_vec();
        let clock = r.be_u64()?;
        let reset_count = r.be_u32()?;
        let restart_count = r.be_u32()?;
        let safe = match r.take(1)?[0] {
            0 => false,
            1 => true,
            b => {
                return Err(ParseError::Field {
                    what: WHAT,
                    detail: format!("clockInfo.safe is {b}, not a TPMI_YES_NO"),
                })
            }
        };
        let firmware_version = r.be_u64()?;
        let selection = selections(&mut r)?;
        let pcr_digest = r.tpm2b()?.to_vec();
        r.expect_empty()?;
        Ok(Quoted {
            signer,
            extra_data,
            clock,
            reset_count,
            restart_count,
            safe,
            firmware_version,
            selection,
            pcr_digest,
        })
    }
}

/// `TPML_PCR_SELECTION`: at most one entry per bank, no PCR past 23, no empty list.
fn selections(r: &mut Reader<'_>) -> Result<Vec<Selection>, ParseError> {
    let count = r.be_u32()?;
    if count == 0 || count > 16 {
        return Err(ParseError::Field { what: WHAT, detail: format!("{count} PCR selections (1 to 16 expected)") });
    }
    let mut out: Vec<Selection> = Vec::new();
    for _ in 0..count {
        let id = r.be_u16()?;
        let alg = HashAlg::from_id(id).ok_or_else(|| ParseError::Field {
            what: WHAT,
            detail: format!("PCR bank of algorithm {id:#06x}, not SHA-1/256/384/512"),
        })?;
        let size = r.take(1)?[0];
        if !(1..=4).contains(&size) {
            return Err(ParseError::Field { what: WHAT, detail: format!("sizeofSelect {size} (1 to 4 expected)") });
        }
        let bits = r.take(usize::from(size))?;
        let pcrs: Vec<u32> =
            (0..u32::from(size) * 8).filter(|&i| bits[(i / 8) as usize] & (1 << (i % 8)) != 0).collect();
        if pcrs.is_empty() {
            return Err(ParseError::Field { what: WHAT, detail: format!("selects no PCR of the {alg} bank") });
        }
        if let Some(&p) = pcrs.iter().find(|&&p| p >= PCR_COUNT) {
            return Err(ParseError::Field { what: WHAT, detail: format!("selects PCR {p}; a PC Client TPM has 24") });
        }
        if out.iter().any(|s| s.alg == alg) {
            return Err(ParseError::Field { what: WHAT, detail: format!("the {alg} bank is selected twice") });
        }
        out.push(Selection { alg, pcrs });
    }
    Ok(out)
}

/// A `TPMT_SIGNATURE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    /// RSASSA-PKCS1-v1_5 (`TPM_ALG_RSASSA`).
    RsaSsa {
        /// The scheme's hash.
        hash: HashAlg,
        /// The signature.
        sig: Vec<u8>,
    },
    /// RSASSA-PSS (`TPM_ALG_RSAPSS`): read, refused by [`verify_signature`] (TPMs differ in salt length).
    RsaPss {
        /// The scheme's hash.
        hash: HashAlg,
        /// The signature.
        sig: Vec<u8>,
    },
    /// ECDSA (`TPM_ALG_ECDSA`).
    Ecdsa {
        /// The scheme's hash.
        hash: HashAlg,
        /// `signatureR`, big-endian.
        r: Vec<u8>,
        /// `signatureS`, big-endian.
        s: Vec<u8>,
    },
}

impl Signature {
    /// Parses a `TPMT_SIGNATURE`, refusing any trailing byte.
    pub fn parse(bytes: &[u8]) -> Result<Signature, ParseError> {
        const WHAT: &str = "TPM signature (TPMT_SIGNATURE)";
        let mut r = bounded(bytes, WHAT)?;
        let alg = r.be_u16()?;
        let hash = hash_alg(&mut r, WHAT, "hash algorithm")?;
        let sig = match alg {
            ALG_RSASSA => Signature::RsaSsa { hash, sig: r.tpm2b()?.to_vec() },
            ALG_RSAPSS => Signature::RsaPss { hash, sig: r.tpm2b()?.to_vec() },
            ALG_ECDSA => Signature::Ecdsa { hash, r: r.tpm2b()?.to_vec(), s: r.tpm2b()?.to_vec() },
            a => {
                return Err(ParseError::Field {
                    what: WHAT,
                    detail: format!("signature algorithm {a:#06x} is not RSASSA, RSAPSS or ECDSA"),
                })
            }
        };
        r.expect_empty()?;
        Ok(sig)
    }

    /// The scheme's hash: the algorithm of the quote's PCR digest.
    pub fn hash(&self) -> HashAlg {
        match self {
            Signature::RsaSsa { hash, .. } | Signature::RsaPss { hash, .. } | Signature::Ecdsa { hash, .. } => *hash,
        }
    }
}

/// An attestation key's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AkPublic {
    /// RSA: modulus and public exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// ECC on a NIST curve: the point, big-endian coordinates.
    Ecc {
        /// P-256 or P-384.
        curve: Curve,
        /// X.
        x: Vec<u8>,
        /// Y.
        y: Vec<u8>,
    },
}

/// The NIST curves an AK may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

/// `TPMA_OBJECT` bits an attestation key must have: made in this TPM and never out of it, a signing key that
/// signs only what the TPM itself produced.
pub mod attr {
    /// `fixedTPM`.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// `fixedParent`.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// `sensitiveDataOrigin`.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// `restricted`.
    pub const RESTRICTED: u32 = 1 << 16;
    /// `decrypt`.
    pub const DECRYPT: u32 = 1 << 17;
    /// `sign`.
    pub const SIGN: u32 = 1 << 18;
    /// All that an attestation key needs.
    pub const AK: u32 = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | RESTRICTED | SIGN;
}

/// A `TPMT_PUBLIC` that holds a signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicArea {
    /// The key.
    pub key: AkPublic,
    /// `objectAttributes`.
    pub attributes: u32,
    /// `nameAlg`.
    pub name_alg: HashAlg,
    /// The raw `TPMT_PUBLIC`, as parsed.
    pub raw: Vec<u8>,
}

impl PublicArea {
    /// Parses a `TPMT_PUBLIC` (RSA or ECC), refusing any trailing byte.
    pub fn parse(bytes: &[u8]) -> Result<PublicArea, ParseError> {
        const WHAT: &str = "TPM public area (TPMT_PUBLIC)";
        let mut r = bounded(bytes, WHAT)?;
        let kind = r.be_u16()?;
        let name_alg = hash_alg(&mut r, WHAT, "nameAlg")?;
        let attributes = r.be_u32()?;
        r.tpm2b()?; // authPolicy
                    // TPMT_SYM_DEF_OBJECT: a signing key's is TPM_ALG_NULL; a storage key's names a cipher, key bits and mode.
        if r.be_u16()? != ALG_NULL {
            r.take(4)?;
        }
        // The signing scheme: TPM_ALG_NULL, or a scheme and its hash.
        if r.be_u16()? != ALG_NULL {
            r.take(2)?;
        }
        let key = match kind {
            ALG_RSA => {
                r.be_u16()?; // keyBits: the modulus says it
                let exponent = match r.be_u32()? {
                    0 => 65537,
                    e => e,
                };
                let n = r.tpm2b()?.to_vec();
                let e = exponent.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
                AkPublic::Rsa { n, e }
            }
            ALG_ECC => {
                let curve = match r.be_u16()? {
                    ECC_NIST_P256 => Curve::P256,
                    ECC_NIST_P384 => Curve::P384,
                    c => return Err(ParseError::Field { what: WHAT, detail: format!("ECC curve {c:#06x}") }),
                };
                if r.be_u16()? != ALG_NULL {
                    r.take(2)?; // the KDF's hash
                }
                AkPublic::Ecc { curve, x: r.tpm2b()?.to_vec(), y: r.tpm2b()?.to_vec() }
            }
            k => return Err(ParseError::Field { what: WHAT, detail: format!("key type {k:#06x} is not RSA or ECC") }),
        };
        r.expect_empty()?;
        Ok(PublicArea { key, attributes, name_alg, raw: bytes.to_vec() })
    }

    /// The attestation-key attributes it lacks (none: it is a restricted signing key that never left its TPM).
    pub fn missing_ak_attributes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, name) in [
            (attr::FIXED_TPM, "fixedTPM"),
            (attr::FIXED_PARENT, "fixedParent"),
            (attr::SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
            (attr::RESTRICTED, "restricted"),
            (attr::SIGN, "sign"),
        ] {
            if self.attributes & bit == 0 {
                out.push(name);
            }
        }
        if self.attributes & attr::DECRYPT != 0 {
            out.push("not decrypt");
        }
        out
    }

    /// The object's name: `nameAlg` then the `nameAlg` digest of the public area.
    pub fn name(&self) -> Vec<u8> {
        let mut out = self.name_alg.id().to_be_bytes().to_vec();
        out.extend(self.name_alg.digest(&[&self.raw]));
        out
    }
}

impl AkPublic {
    /// An RSA key from a JSON Web Key (`kty` RSA, `n` and `e` base64url), as Azure's runtime claims carry
    /// `HCLAkPub`.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<AkPublic, String> {
        use base64::Engine as _;
        if jwk.get("kty").and_then(|v| v.as_str()) != Some("RSA") {
            return Err("the JWK is not an RSA key (kty)".into());
        }
        let field = |k: &str| -> Result<Vec<u8>, String> {
            let s = jwk.get(k).and_then(|v| v.as_str()).ok_or_else(|| format!("the JWK has no {k}"))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| format!("JWK {k} is not base64url: {e}"))
        };
        Ok(AkPublic::Rsa { n: field("n")?, e: field("e")? })
    }
}

/// Checks `sig` over the raw `TPMS_ATTEST` bytes with `ak`. SHA-1 and RSA-PSS are refused, as is a hash that does
/// not suit the curve.
pub fn verify_signature(ak: &AkPublic, message: &[u8], sig: &Signature) -> Result<(), String> {
    use ring::signature as rs;
    match (ak, sig) {
        (_, s) if s.hash() == HashAlg::Sha1 => Err("the quote is signed with SHA-1, which is refused".into()),
        (AkPublic::Rsa { .. }, Signature::RsaPss { .. }) => {
            Err("RSA-PSS quotes are not supported (TPMs differ in salt length); use an RSASSA or ECDSA key".into())
        }
        (AkPublic::Rsa { n, e }, Signature::RsaSsa { hash, sig }) => {
            let params = match hash {
                HashAlg::Sha256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                HashAlg::Sha384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                _ => &rs::RSA_PKCS1_2048_8192_SHA512,
            };
            rs::RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .map_err(|_| format!("the {hash} RSASSA signature does not verify under the attestation key"))
        }
        (AkPublic::Ecc { curve, x, y }, Signature::Ecdsa { hash, r, s }) => {
            let (params, len): (&rs::EcdsaVerificationAlgorithm, usize) = match (curve, hash) {
                (Curve::P256, HashAlg::Sha256) => (&rs::ECDSA_P256_SHA256_FIXED, 32),
                (Curve::P384, HashAlg::Sha384) => (&rs::ECDSA_P384_SHA384_FIXED, 48),
                (c, h) => return Err(format!("an ECDSA signature with {h} on {c:?} is not accepted")),
            };
            let point = [&[4u8][..], &left_pad(x, len)?, &left_pad(y, len)?].concat();
            let signature = [left_pad(r, len)?, left_pad(s, len)?].concat();
            rs::UnparsedPublicKey::new(params, point)
                .verify(message, &signature)
                .map_err(|_| format!("the {hash} ECDSA signature does not verify under the attestation key"))
        }
        _ => Err("the signature's algorithm does not match the attestation key's type".into()),
    }
}

/// A big-endian integer as exactly `len` bytes.
fn left_pad(v: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let v = &v[v.iter().take_while(|&&b| b == 0).count()..];
    if v.len() > len {
        return Err(format!("an ECDSA value of {} bytes does not fit the curve", v.len()));
    }
    let mut out = vec![0; len - v.len()];
    out.extend_from_slice(v);
    Ok(out)
}

/// Recomputes the quote's PCR digest from `banks`, which must hold a value for exactly the PCRs the quote selects
/// (a value the quote does not cover is not signed, so it is refused rather than passed on). `hash` is the
/// signature scheme's.
pub fn check_pcrs(quoted: &Quoted, hash: HashAlg, banks: &PcrBanks) -> Result<(), String> {
    let mut concat = Vec::new();
    for s in &quoted.selection {
        let bank = banks
            .get(&s.alg)
            .ok_or_else(|| format!("the quote covers the {} bank, the evidence gives none of its values", s.alg))?;
        for p in &s.pcrs {
            let v = bank
                .get(p)
                .ok_or_else(|| format!("the quote covers PCR {p} ({}), the evidence gives no value", s.alg))?;
            if v.len() != s.alg.size() {
                return Err(format!("PCR {p} ({}) is {} bytes, not {}", s.alg, v.len(), s.alg.size()));
            }
            concat.extend_from_slice(v);
        }
    }
    for (alg, bank) in banks {
        let Some(selected) = quoted.selection.iter().find(|s| s.alg == *alg).map(|s| s.pcrs.as_slice()) else {
            return Err(format!("the evidence gives a {alg} bank, which the quote does not select"));
        };
        if let Some(p) = bank.keys().find(|p| !selected.contains(p)) {
            return Err(format!("the evidence gives PCR {p} ({alg}), which the quote does not cover"));
        }
    }
    let got = hash.digest(&[&concat]);
    if got != quoted.pcr_digest {
        return Err(format!(
            "the PCR values hash to {} ({hash}), the quote signed {}",
            hex::encode(got),
            hex::encode(&quoted.pcr_digest)
        ));
    }
    Ok(())
}

/// PCR values from a list indexed by PCR (as Azure's evidence JSON gives them: 24 SHA-256 values), for the bank
/// `alg`.
pub fn bank_from_list(alg: HashAlg, values: &[Vec<u8>]) -> PcrBanks {
    let bank: BTreeMap<u32, Vec<u8>> = (0u32..).zip(values.iter().cloned()).collect();
    BTreeMap::from([(alg, bank)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_bytes(extra: &[u8], select: &[(u16, &[u8])], digest: &[u8]) -> Vec<u8> {
        let mut b = TPM_GENERATED.to_be_bytes().to_vec();
        b.extend(ST_ATTEST_QUOTE.to_be_bytes());
        b.extend([0, 0]); // signer
        b.extend((extra.len() as u16).to_be_bytes());
        b.extend(extra);
        b.extend([0; 17]);
        b.extend([0; 8]);
        b.extend((select.len() as u32).to_be_bytes());
        for (alg, bits) in select {
            b.extend(alg.to_be_bytes());
            b.push(bits.len() as u8);
            b.extend(*bits);
        }
        b.extend((digest.len() as u16).to_be_bytes());
        b.extend(digest);
        b
    }

    #[test]
    fn a_quote_parses_and_its_pcr_digest_is_recomputed() {
        let pcr = vec![7u8; 32];
        let banks = BTreeMap::from([(HashAlg::Sha256, BTreeMap::from([(0, pcr.clone()), (9, pcr.clone())]))]);
        let digest = HashAlg::Sha256.digest(&[&pcr, &pcr]);
        let q = Quoted::parse(&quote_bytes(b"nonce", &[(0x000B, &[0x01, 0x02, 0x00])], &digest)).unwrap();
        assert_eq!(q.extra_data, b"nonce");
        assert_eq!(q.selection, vec![Selection { alg: HashAlg::Sha256, pcrs: vec![0, 9] }]);
        assert_eq!(check_pcrs(&q, HashAlg::Sha256, &banks), Ok(()));

        let mut other = banks.clone();
        other.get_mut(&HashAlg::Sha256).unwrap().insert(9, vec![8; 32]);
        assert!(check_pcrs(&q, HashAlg::Sha256, &other).unwrap_err().contains("hash to"));
        let mut extra = banks.clone();
        extra.get_mut(&HashAlg::Sha256).unwrap().insert(4, vec![0; 32]);
        assert!(check_pcrs(&q, HashAlg::Sha256, &extra).unwrap_err().contains("does not cover"));
        let mut missing = banks.clone();
        missing.get_mut(&HashAlg::Sha256).unwrap().remove(&9);
        assert!(check_pcrs(&q, HashAlg::Sha256, &missing).unwrap_err().contains("gives no value"));
        assert!(check_pcrs(&q, HashAlg::Sha384, &banks).is_err(), "the digest is taken with the scheme's hash");
        let mut unselected = banks.clone();
        unselected.insert(HashAlg::Sha512, BTreeMap::new());
        assert!(check_pcrs(&q, HashAlg::Sha256, &unselected).unwrap_err().contains("does not select"));
    }

    #[test]
    fn malformed_quotes_are_refused() {
        let ok = quote_bytes(b"", &[(0x000B, &[1, 0, 0])], &[0; 32]);
        assert!(Quoted::parse(&ok).is_ok());
        let mut bad = ok.clone();
        bad[0] ^= 1;
        assert!(Quoted::parse(&bad).unwrap_err().to_string().contains("TPM_GENERATED_VALUE"));
        let mut certify = ok.clone();
        certify[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert!(Quoted::parse(&certify).unwrap_err().to_string().contains("TPM_ST_ATTEST_QUOTE"));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(Quoted::parse(&trailing).is_err());
        assert!(Quoted::parse(&ok[..ok.len() - 1]).is_err());
        assert!(Quoted::parse(&quote_bytes(b"", &[(0x0012, &[1, 0, 0])], &[0; 32])).is_err(), "SM3");
        assert!(Quoted::parse(&quote_bytes(b"", &[(0x000B, &[0, 0, 0, 1])], &[0; 32])).is_err(), "PCR 24");
        assert!(Quoted::parse(&quote_bytes(b"", &[(0x000B, &[1]), (0x000B, &[2])], &[0; 32])).is_err(), "twice");
        assert!(Quoted::parse(&quote_bytes(b"", &[], &[0; 32])).is_err(), "no selection");
        assert!(Quoted::parse(&quote_bytes(b"", &[(0x000B, &[0, 0, 0])], &[0; 32])).is_err(), "a bank, no PCR");
    }

    #[test]
    fn sha1_and_pss_signatures_and_a_mismatched_key_type_are_refused() {
        let rsa = AkPublic::Rsa { n: vec![0xC5; 256], e: vec![1, 0, 1] };
        let ecc = AkPublic::Ecc { curve: Curve::P256, x: vec![1; 32], y: vec![2; 32] };
        let sig = |hash| Signature::RsaSsa { hash, sig: vec![0; 256] };
        assert!(verify_signature(&rsa, b"m", &sig(HashAlg::Sha1)).unwrap_err().contains("SHA-1"));
        let pss = Signature::RsaPss { hash: HashAlg::Sha256, sig: vec![0; 256] };
        assert!(verify_signature(&rsa, b"m", &pss).unwrap_err().contains("RSA-PSS"));
        assert!(verify_signature(&ecc, b"m", &sig(HashAlg::Sha256)).unwrap_err().contains("does not match"));
        let p256_384 = Signature::Ecdsa { hash: HashAlg::Sha384, r: vec![1; 32], s: vec![1; 32] };
        assert!(verify_signature(&ecc, b"m", &p256_384).unwrap_err().contains("not accepted"));
    }

    #[test]
    fn a_key_that_is_not_a_restricted_signing_key_is_named_as_such() {
        // TPMT_PUBLIC: ECC, nameAlg SHA-256, attributes, empty policy, NULL symmetric, ECDSA-SHA256, P-256, NULL
        // KDF, the point.
        let public = |attributes: u32| {
            let mut b = vec![0x00, 0x23, 0x00, 0x0B];
            b.extend(attributes.to_be_bytes());
            b.extend([0, 0, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10]);
            b.extend([0, 32]);
            b.extend([1; 32]);
            b.extend([0, 32]);
            b.extend([2; 32]);
            b
        };
        let ak = PublicArea::parse(&public(attr::AK)).unwrap();
        assert!(ak.missing_ak_attributes().is_empty());
        assert_eq!(ak.key, AkPublic::Ecc { curve: Curve::P256, x: vec![1; 32], y: vec![2; 32] });
        assert_eq!(ak.name()[..2], [0x00, 0x0B]);
        let storage = PublicArea::parse(&public(attr::AK & !attr::SIGN | attr::DECRYPT)).unwrap();
        assert_eq!(storage.missing_ak_attributes(), vec!["sign", "not decrypt"]);
        let exportable = PublicArea::parse(&public(attr::AK & !attr::FIXED_TPM)).unwrap();
        assert_eq!(exportable.missing_ak_attributes(), vec!["fixedTPM"]);
        let mut trailing = public(attr::AK);
        trailing.push(0);
        assert!(PublicArea::parse(&trailing).is_err());
    }

    #[test]
    fn a_left_padded_ecdsa_value_keeps_its_number() {
        assert_eq!(left_pad(&[0, 0, 5], 4), Ok(vec![0, 0, 0, 5]));
        assert!(left_pad(&[1; 33], 32).is_err());
    }
}
