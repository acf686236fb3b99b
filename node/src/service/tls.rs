//! Attested TLS: the node's certificate carries its TEE evidence in an X.509 extension, so a client trusts the
//! node by checking the evidence, not a CA.
//!
//! The certificate: subject `CN=<node name>, O=<pod id>`, a P-256 TLS key made when the node starts (browsers do
//! not take Ed25519 server certificates), and two extensions:
//! - [`EVIDENCE_OID`]: the node's evidence bundle, whose REPORT_DATA binds its Ed25519 identity key to the pod
//!   (see [`sigil_pod::admission`]);
//! - [`ENDORSEMENT_OID`]: the identity key (32 bytes) and its Ed25519 signature (64 bytes) over
//!   `"sigil/tls-key/v1\0" ‖ pod ‖ 0x00 ‖ the certificate's SubjectPublicKeyInfo (DER)`: the attested identity
//!   vouches for this TLS key.
//!
//! The handshake proves the server holds the TLS key; the endorsement ties it to the identity key; the evidence
//! ties that to an attested TEE of the pod. [`AttestedVerifier`] checks all three, and what it accepted is left in
//! its [`Seen`] for the caller to report. The private identity key never leaves the node's memory and never
//! signs TLS traffic.

use std::sync::{Arc, Mutex};

use der::Decode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub use super::error::TlsError;

/// The extension that carries the evidence: 1.3.6.1.4.1.57264.1.77 is a placeholder under a private enterprise
/// arc (registration pending); clients look for exactly this OID.
pub const EVIDENCE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 77];
const EVIDENCE_OID_STR: &str = "1.3.6.1.4.1.57264.1.77";
/// The extension that carries the identity key's endorsement of the TLS key (same arc).
pub const ENDORSEMENT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 78];
const ENDORSEMENT_OID_STR: &str = "1.3.6.1.4.1.57264.1.78";
const TLS_KEY_DOMAIN: &[u8] = b"sigil/tls-key/v1\0";

/// What the identity key signs to endorse a TLS key.
pub fn endorsement_bytes(pod: &str, spki_der: &[u8]) -> Vec<u8> {
    [TLS_KEY_DOMAIN, pod.as_bytes(), &[0], spki_der].concat()
}

/// The node's attested certificate (DER) for `name` in `pod`, with `evidence`, and the PKCS#8 of its TLS key.
pub fn attested_certificate(
    seed: &[u8; 32],
    name: &str,
    pod: &str,
    evidence: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let tls_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let identity =
        ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| TlsError::Key(e.to_string()))?;
    let spki = rcgen::PublicKeyData::subject_public_key_info(&tls_key);
    let mut endorsement = ring::signature::KeyPair::public_key(&identity).as_ref().to_vec();
    endorsement.extend_from_slice(identity.sign(&endorsement_bytes(pod, &spki)).as_ref());
    let mut params = rcgen::CertificateParams::new(vec![name.to_string(), "localhost".into()])?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    dn.push(rcgen::DnType::OrganizationName, pod);
    params.distinguished_name = dn;
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(EVIDENCE_OID, evidence.to_vec()));
    params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(ENDORSEMENT_OID, endorsement));
    Ok((params.self_signed(&tls_key)?.der().to_vec(), tls_key.serialize_der()))
}

/// The rustls server configuration for the node's HTTPS API: its attested certificate, or an operator's
/// certificate chain and key.
pub fn server_config(cert_chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(
            cert_chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8)),
        )?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What an attested certificate says, once parsed and its endorsement checked (the evidence not yet verified).
#[derive(Clone, Debug)]
pub struct NodeCert {
    /// The node's name (subject CN).
    pub name: String,
    /// Its pod (subject O).
    pub pod: String,
    /// Its Ed25519 identity key (which endorsed the certificate's TLS key).
    pub key: [u8; 32],
    /// Its evidence bundle.
    pub evidence: Vec<u8>,
    /// The certificate (DER), as served.
    pub der: Vec<u8>,
}

/// Parses an attested certificate and checks that its identity key endorsed its TLS key for its pod.
pub fn parse_certificate(der_bytes: &[u8]) -> Result<NodeCert, String> {
    use der::Encode;
    let cert = x509_cert::Certificate::from_der(der_bytes).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let tbs = cert.tbs_certificate();
    let ext = |oid: &str| {
        tbs.extensions()
            .iter()
            .flat_map(|x| x.iter())
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let evidence =
        ext(EVIDENCE_OID_STR).ok_or("the certificate carries no evidence extension: not an attested Sigil node")?;
    let endorsement = ext(ENDORSEMENT_OID_STR).ok_or("the certificate carries no endorsement of its TLS key")?;
    if endorsement.len() != 96 {
        return Err(format!("the TLS key endorsement is {} bytes, not 96", endorsement.len()));
    }
    let key: [u8; 32] = endorsement[..32].try_into().expect("32");
    // Node names and pod ids are plain names (no ',', '=', '+' or escapes), so the RFC 4514 form splits simply.
    let subject = tbs.subject().to_string();
    let attr = |t: &str| subject.split(',').find_map(|p| p.trim().strip_prefix(t).map(str::to_string));
    let name = attr("CN=").ok_or("the certificate names no node (CN)")?;
    let pod = attr("O=").ok_or("the certificate names no pod (O)")?;
    let spki = tbs.subject_public_key_info().to_der().map_err(|e| format!("the certificate's key: {e}"))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&endorsement_bytes(&pod, &spki), &endorsement[32..])
        .map_err(|_| "the identity key did not endorse this certificate's TLS key (a forged or swapped certificate)")?;
    Ok(NodeCert { name, pod, key, evidence, der: der_bytes.to_vec() })
}

/// How a client decides to trust a node's evidence.
#[derive(Clone)]
pub enum Trust {
    /// The pod's policy (from its genesis), for the pod it names.
    Policy {
        /// The pod the node must belong to.
        pod: String,
        /// The policy its evidence must satisfy.
        policy: Box<sigil_attest::Policy>,
    },
    /// The default policy (no debug guests, no revoked TCB, no sim evidence), except that it does not ask the
    /// evidence to prove which code runs (it pins none: `[workload] allow_unmeasured`), and that sim evidence is
    /// accepted from a node on a loopback address (a devnet on this machine) when `loopback_sim` is set.
    Default {
        /// Whether the server is on 127.0.0.1 / ::1.
        loopback_sim: bool,
    },
    /// An operator's certificate authority (plain TLS, no attestation): the node's certificate must chain to
    /// one of these roots and name the host.
    Ca(Vec<Vec<u8>>),
}

/// What the verifier accepted.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The node's certificate.
    pub cert: Option<NodeCert>,
    /// The attestation result of its evidence.
    pub result: Option<sigil_attest::AttestationResult>,
}

/// A rustls verifier that trusts a server by its attested certificate.
#[derive(Debug)]
pub struct AttestedVerifier {
    trust: TrustDebug,
    /// What the last handshake accepted.
    pub seen: Arc<Mutex<Seen>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

struct TrustDebug(Trust);
impl std::fmt::Debug for TrustDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust")
    }
}

impl AttestedVerifier {
    /// A verifier with this trust.
    pub fn new(trust: Trust) -> AttestedVerifier {
        AttestedVerifier {
            trust: TrustDebug(trust),
            seen: Arc::default(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// Checks a node certificate's evidence under the trust, at `now` (Unix seconds).
    pub fn check(&self, cert: &NodeCert, now: u64) -> Result<sigil_attest::AttestationResult, String> {
        let (policy, pod) = match &self.trust.0 {
            Trust::Policy { pod, policy } => {
                if &cert.pod != pod {
                    return Err(format!("the node is of pod {:?}, not {pod:?}", cert.pod));
                }
                ((**policy).clone(), pod.clone())
            }
            Trust::Default { loopback_sim } => {
                // Genuine TEE hardware, no debug, no revoked TCB: it pins no code, so it cannot ask the evidence
                // to prove the workload (the pod's policy, with --genesis, does).
                let mut p = sigil_attest::Policy::default();
                p.workload.allow_unmeasured = true;
                if *loopback_sim {
                    p.sim.allow = true;
                }
                (p, cert.pod.clone())
            }
            Trust::Ca(_) => return Err("an operator certificate is checked by its CA, not by evidence".into()),
        };
        sigil_pod::admission::verify(&policy, &pod, &cert.key, &[], &cert.evidence, now)
    }
}

fn tls_error(msg: String) -> rustls::Error {
    rustls::Error::General(msg)
}

impl ServerCertVerifier for AttestedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = parse_certificate(end_entity.as_ref()).map_err(tls_error)?;
        let result = self.check(&cert, now.as_secs()).map_err(|e| tls_error(format!("the node's evidence: {e}")))?;
        *self.seen.lock().expect("not poisoned") = Seen { cert: Some(cert), result: Some(result) };
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_pod::local;

    fn cert(pod: &str, i: usize) -> Vec<u8> {
        attested_certificate(&local::seed(i), &local::name(i), pod, &local::evidence(pod, i)).unwrap().0
    }

    fn verifier(loopback_sim: bool) -> AttestedVerifier {
        AttestedVerifier::new(Trust::Default { loopback_sim })
    }

    #[test]
    fn an_attested_certificate_verifies_and_names_its_node() {
        let c = parse_certificate(&cert("p", 0)).unwrap();
        assert_eq!((c.name.as_str(), c.pod.as_str()), ("node-0", "p"));
        assert_eq!(c.key, sigil_pod::public_key(&local::seed(0)));
        let r = verifier(true).check(&c, sigil_primitives::clock::now_secs()).unwrap();
        assert_eq!(r.platform.as_str(), "sim");
        // Sim evidence is refused by the default policy away from loopback, and by a policy that refuses it.
        assert!(verifier(false).check(&c, 0).unwrap_err().contains("sim"));
        let strict = AttestedVerifier::new(Trust::Policy { pod: "p".into(), policy: Box::default() });
        assert!(strict.check(&c, 0).is_err());
        let other = AttestedVerifier::new(Trust::Policy {
            pod: "q".into(),
            policy: Box::new(sigil_pod::admission::parse_policy(&local::policy()).unwrap()),
        });
        assert!(other.check(&c, 0).unwrap_err().contains("pod"));
    }

    /// `der` with the bytes `from` (found once) replaced by `to` (of the same length).
    fn replace(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = der.windows(from.len()).position(|w| w == from).expect("found");
        let mut out = der.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    fn endorsement(der: &[u8]) -> Vec<u8> {
        let key = parse_certificate(der).unwrap().key;
        let at = der.windows(32).position(|w| w == key).unwrap();
        der[at..at + 96].to_vec()
    }

    #[test]
    fn swapped_or_altered_extensions_are_refused() {
        let (a, b) = (cert("p", 0), cert("p", 1));
        // Node 0's endorsement on node 1's TLS key: it does not cover that key.
        let e = parse_certificate(&replace(&b, &endorsement(&b), &endorsement(&a))).unwrap_err();
        assert!(e.contains("did not endorse"), "{e}");
        // Node 1's certificate with node 0's evidence: the evidence binds another key.
        let (ea, eb) = (parse_certificate(&a).unwrap().evidence, parse_certificate(&b).unwrap().evidence);
        let c = parse_certificate(&replace(&b, &eb, &ea)).unwrap();
        let err = verifier(true).check(&c, sigil_primitives::clock::now_secs()).unwrap_err();
        assert!(err.contains("report_data"), "{err}");
        // A flipped bit in the endorsement's signature.
        let mut sig = endorsement(&a);
        sig[50] ^= 1;
        assert!(parse_certificate(&replace(&a, &endorsement(&a), &sig)).unwrap_err().contains("did not endorse"));
    }
}
