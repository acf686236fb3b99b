//! X.509 certificates as the verifiers need them: parsed with `x509-cert`, signatures checked with `ring`
//! over the certificate's own raw `tbsCertificate` bytes (never a re-encoding).

use der::{Decode, Encode};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::Certificate;

use crate::error::{Error, Result};

/// OID of RSASSA-PSS (RFC 4055).
pub const OID_RSASSA_PSS: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// OID of ecdsa-with-SHA256.
pub const OID_ECDSA_SHA256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// OID of ecdsa-with-SHA384.
pub const OID_ECDSA_SHA384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// OID of id-ecPublicKey.
pub const OID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of the P-256 curve.
pub const OID_P256: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// OID of the P-384 curve.
pub const OID_P384: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");

const SHA384_OID: [u8; 11] = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const MGF1_OID: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

/// Whether `params` (the DER of RSASSA-PSS-params) says {SHA-384, MGF1-SHA-384, salt 48, trailer 1}, in any of
/// the encodings seen in AMD certificates: hash parameters NULL or absent, trailer field explicit or default.
/// Anything else is refused: the signature check always runs with exactly these parameters, and a certificate
/// that declares others is not AMD's profile.
fn is_pss_sha384_params(params: &[u8]) -> bool {
    let tlv = |tag: u8, body: &[u8]| -> Vec<u8> { [&[tag, body.len() as u8][..], body].concat() };
    for null in [true, false] {
        let alg = if null { [&SHA384_OID[..], &[0x05, 0x00]].concat() } else { SHA384_OID.to_vec() };
        let hash = tlv(0xa0, &tlv(0x30, &alg));
        let mgf = tlv(0xa1, &tlv(0x30, &[&MGF1_OID[..], &tlv(0x30, &alg)].concat()));
        let salt = tlv(0xa2, &[0x02, 0x01, 0x30]);
        for trailer in [true, false] {
            let mut body = [hash.clone(), mgf.clone(), salt.clone()].concat();
            if trailer {
                body.extend_from_slice(&tlv(0xa3, &[0x02, 0x01, 0x01]));
            }
            if params == tlv(0x30, &body).as_slice() {
                return true;
            }
        }
    }
    false
}

/// Largest certificate accepted (AMD and Intel certificates are under 2 KiB).
const MAX_CERT_LEN: usize = 16 * 1024;

/// A parsed certificate that keeps its raw DER and the raw `tbsCertificate` slice the signature covers.
#[derive(Clone, Debug)]
pub struct Cert {
    der: Vec<u8>,
    fingerprint: [u8; 32],
    tbs: core::ops::Range<usize>,
    parsed: Certificate,
}

impl Cert {
    /// Parses one DER certificate. Rejects trailing bytes.
    pub fn from_der(der: &[u8], which: &str) -> Result<Self> {
        if der.len() > MAX_CERT_LEN {
            return Err(Error::cert(
                which,
                format!("{} bytes is larger than any certificate expected here", der.len()),
            ));
        }
        let parsed =
            Certificate::from_der(der).map_err(|e| Error::cert(which, format!("not a DER X.509 certificate: {e}")))?;
        let tbs = tbs_range(der).ok_or_else(|| Error::cert(which, "cannot locate tbsCertificate"))?;
        Ok(Cert { der: der.to_vec(), fingerprint: crate::sha256(der), tbs, parsed })
    }

    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn parsed(&self) -> &Certificate {
        &self.parsed
    }

    /// SHA-256 of the DER encoding (computed once, at parse time).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Subject common name, if any.
    pub fn subject_cn(&self) -> Option<String> {
        self.parsed.tbs_certificate().subject().common_name().ok().flatten().map(String::from)
    }

    /// Issuer common name, if any.
    pub fn issuer_cn(&self) -> Option<String> {
        self.parsed.tbs_certificate().issuer().common_name().ok().flatten().map(String::from)
    }

    /// Whether this certificate's issuer name equals `issuer`'s subject name.
    pub fn issued_by_name(&self, issuer: &Cert) -> bool {
        let a = self.parsed.tbs_certificate().issuer().to_der();
        let b = issuer.parsed.tbs_certificate().subject().to_der();
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    }

    /// Whether subject and issuer names are equal.
    pub fn is_self_issued(&self) -> bool {
        self.issued_by_name(self)
    }

    /// X.509 version is v3.
    pub fn is_v3(&self) -> bool {
        self.parsed.tbs_certificate().version() == x509_cert::certificate::Version::V3
    }

    /// Validity window as Unix seconds (not_before, not_after).
    pub fn validity(&self) -> (u64, u64) {
        let v = self.parsed.tbs_certificate().validity();
        (v.not_before.to_unix_duration().as_secs(), v.not_after.to_unix_duration().as_secs())
    }

    /// Checks `now` (Unix seconds) is inside the validity window.
    pub fn check_validity(&self, now: u64, which: &str) -> Result<(), String> {
        let (nb, na) = self.validity();
        if now < nb {
            return Err(format!("{which} is not valid yet (valid from {})", crate::time::fmt_unix(nb)));
        }
        if now > na {
            return Err(format!("{which} expired at {}", crate::time::fmt_unix(na)));
        }
        Ok(())
    }

    /// The raw subject public key bits (RSAPublicKey DER for RSA, the SEC1 point for EC).
    pub fn public_key_bits(&self) -> &[u8] {
        self.parsed.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes()
    }

    /// The SPKI algorithm and curve OIDs.
    pub fn public_key_algorithm(&self) -> (der::asn1::ObjectIdentifier, Option<der::asn1::ObjectIdentifier>) {
        let alg = &self.parsed.tbs_certificate().subject_public_key_info().algorithm;
        let curve = alg.parameters.as_ref().and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
        (alg.oid, curve)
    }

    /// The raw `extnValue` contents of the extension with this OID (None if absent; error if repeated).
    pub fn extension(&self, oid: &der::asn1::ObjectIdentifier) -> Result<Option<&[u8]>, String> {
        let mut found = None;
        for ext in self.parsed.tbs_certificate().extensions().into_iter().flatten() {
            if &ext.extn_id == oid {
                if found.is_some() {
                    return Err(format!("extension {oid} appears twice"));
                }
                found = Some(ext.extn_value.as_bytes());
            }
        }
        Ok(found)
    }

    /// Checks that `issuer` signed this certificate with RSASSA-PSS SHA-384 (AMD's profile).
    pub fn verify_signed_by_rsa_pss_sha384(&self, issuer: &Cert) -> Result<(), String> {
        let outer = self.parsed.signature_algorithm();
        let inner = self.parsed.tbs_certificate().signature();
        if outer != inner {
            return Err("signatureAlgorithm differs from tbsCertificate.signature".into());
        }
        if outer.oid != OID_RSASSA_PSS {
            return Err(format!("signature algorithm {} is not RSASSA-PSS", outer.oid));
        }
        let params = outer.parameters.as_ref().and_then(|p| p.to_der().ok()).unwrap_or_default();
        if !is_pss_sha384_params(&params) {
            return Err("RSASSA-PSS parameters are not SHA-384 / MGF1-SHA-384 / salt 48".into());
        }
        self.verify_with(&signature::RSA_PSS_2048_8192_SHA384, issuer.public_key_bits())
    }

    /// Checks that `issuer` signed this certificate with ECDSA P-256 SHA-256 (Intel's profile).
    pub fn verify_signed_by_ecdsa_p256(&self, issuer: &Cert) -> Result<(), String> {
        let outer = self.parsed.signature_algorithm();
        if outer != self.parsed.tbs_certificate().signature() {
            return Err("signatureAlgorithm differs from tbsCertificate.signature".into());
        }
        if outer.oid != OID_ECDSA_SHA256 {
            return Err(format!("signature algorithm {} is not ecdsa-with-SHA256", outer.oid));
        }
        if issuer.public_key_algorithm() != (OID_EC_PUBLIC_KEY, Some(OID_P256)) {
            return Err("issuer key is not an EC P-256 key".into());
        }
        self.verify_with(&signature::ECDSA_P256_SHA256_ASN1, issuer.public_key_bits())
    }

    fn verify_with(&self, alg: &'static dyn VerificationAlgorithm, key: &[u8]) -> Result<(), String> {
        let sig = self.parsed.signature().as_bytes().ok_or("signature BIT STRING has unused bits")?;
        UnparsedPublicKey::new(alg, key)
            .verify(&self.der[self.tbs.clone()], sig)
            .map_err(|_| "signature does not verify".to_string())
    }
}

/// Reads a DER tag + length header at `pos`; returns (header length, content length).
fn der_header(der: &[u8], pos: usize) -> Option<(usize, usize)> {
    let _tag = *der.get(pos)?;
    let first = *der.get(pos + 1)? as usize;
    if first < 0x80 {
        return Some((2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *der.get(pos + 2 + i)? as usize;
    }
    Some((2 + n, len))
}

/// The byte range of `tbsCertificate` inside a DER certificate.
fn tbs_range(der: &[u8]) -> Option<core::ops::Range<usize>> {
    let (outer_hdr, outer_len) = der_header(der, 0)?;
    if outer_hdr.checked_add(outer_len)? != der.len() {
        return None;
    }
    let (hdr, len) = der_header(der, outer_hdr)?;
    let end = outer_hdr.checked_add(hdr)?.checked_add(len)?;
    (end <= der.len()).then_some(outer_hdr..end)
}

/// Parses certificates given as DER, a PEM file with one or more certificates, or a concatenation of DER
/// certificates. Returns them in input order.
pub fn parse_cert_file(bytes: &[u8], what: &str) -> Result<Vec<Cert>> {
    let trimmed = trim_ascii(bytes);
    if trimmed.starts_with(b"-----BEGIN") {
        let docs = pem_blocks(trimmed).map_err(|e| Error::cert(what, e))?;
        if docs.is_empty() {
            return Err(Error::cert(what, "PEM input holds no CERTIFICATE block"));
        }
        return docs.iter().map(|d| Cert::from_der(d, what)).collect();
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (hdr, len) = der_header(bytes, pos).ok_or_else(|| Error::cert(what, "neither PEM nor DER"))?;
        let end = pos.checked_add(hdr).and_then(|v| v.checked_add(len)).filter(|&e| e <= bytes.len());
        let end = end.ok_or_else(|| Error::cert(what, "DER certificate is truncated"))?;
        out.push(Cert::from_der(&bytes[pos..end], what)?);
        pos = end;
    }
    if out.is_empty() {
        return Err(Error::cert(what, "file is empty"));
    }
    Ok(out)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Extracts the DER of every `CERTIFICATE` block in a PEM text. Other block types are skipped.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = core::str::from_utf8(text).map_err(|_| "PEM text is not UTF-8".to_string())?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("unterminated PEM header")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker).ok_or_else(|| format!("PEM block {label} has no END line"))?;
        if label == "CERTIFICATE" {
            let der = der::pem::decode_vec(
                format!("-----BEGIN {label}-----{}{end_marker}\n", &body_start[..body_end]).as_bytes(),
            )
            .map_err(|e| format!("bad PEM certificate: {e}"))?
            .1;
            out.push(der);
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

/// The DER of the first `PRIVATE KEY` (PKCS#8) block of a PEM text. Test keys only: `attest` never holds
/// private keys.
#[cfg(test)]
pub(crate) fn pem_private_key(text: &str) -> Result<Vec<u8>, String> {
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| e.to_string())?;
    if label != "PRIVATE KEY" {
        return Err(format!("PEM block {label} is not a PKCS#8 PRIVATE KEY"));
    }
    Ok(der)
}
