//! Attested TLS: the node's certificate is self-signed with its Ed25519 identity key and carries its TEE evidence
//! in an X.509 extension, so a client trusts the node by checking the evidence, not a CA.
//!
//! The certificate: subject `CN=<node name>, O=<pod id>`, the identity key as its Ed25519 subject public key, and
//! extension [`EVIDENCE_OID`] holding the node's evidence bundle, whose REPORT_DATA binds that key to that pod
//! (see [`crate::pod::admission`]). The TLS 1.3 handshake proves the server holds the key; the evidence proves
//! the key lives in an attested TEE of the pod. [`AttestedVerifier`] checks both, and what it accepted is left
//! in its [`Seen`] for the caller to report.

use std::sync::{Arc, Mutex};

use der::Decode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The extension that carries the evidence: 1.3.6.1.4.1.57264.1.77 is a placeholder under a private enterprise
/// arc (registration pending); clients look for exactly this OID.
pub const EVIDENCE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 77];
const EVIDENCE_OID_STR: &str = "1.3.6.1.4.1.57264.1.77";
const ED25519_OID: &str = "1.3.101.112";

/// PKCS#8 v1 of an Ed25519 seed (RFC 8410).
pub fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut v = hex::decode("302e020100300506032b657004220420").expect("hex");
    v.extend_from_slice(seed);
    v
}

/// The node's attested certificate (DER) for `name` in `pod`, with `evidence`.
pub fn attested_certificate(seed: &[u8; 32], name: &str, pod: &str, evidence: &[u8]) -> anyhow::Result<Vec<u8>> {
    let der = PrivatePkcs8KeyDer::from(pkcs8(seed));
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string(), "localhost".into()])?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    dn.push(rcgen::DnType::OrganizationName, pod);
    params.distinguished_name = dn;
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(EVIDENCE_OID, evidence.to_vec()));
    Ok(params.self_signed(&key)?.der().to_vec())
}

/// The rustls server configuration for the node's HTTPS API: its attested certificate, or an operator's
/// certificate chain and key.
pub fn server_config(cert_chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
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

/// What an attested certificate says, once parsed (not yet verified).
#[derive(Clone, Debug)]
pub struct NodeCert {
    /// The node's name (subject CN).
    pub name: String,
    /// Its pod (subject O).
    pub pod: String,
    /// Its Ed25519 identity key.
    pub key: [u8; 32],
    /// Its evidence bundle.
    pub evidence: Vec<u8>,
}

/// Parses an attested certificate.
pub fn parse_certificate(der_bytes: &[u8]) -> Result<NodeCert, String> {
    let cert = x509_cert::Certificate::from_der(der_bytes).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let tbs = cert.tbs_certificate();
    let spki = tbs.subject_public_key_info();
    if spki.algorithm.oid.to_string() != ED25519_OID {
        return Err("the certificate key is not Ed25519: not an attested Sigil node certificate".into());
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or("the certificate's Ed25519 key is not 32 bytes")?;
    let evidence = tbs
        .extensions()
        .iter()
        .flat_map(|x| x.iter())
        .find(|e| e.extn_id.to_string() == EVIDENCE_OID_STR)
        .map(|e| e.extn_value.as_bytes().to_vec())
        .ok_or("the certificate carries no evidence extension: not an attested Sigil node")?;
    // Node names and pod ids are plain names (no ',', '=', '+' or escapes), so the RFC 4514 form splits simply.
    let subject = tbs.subject().to_string();
    let attr = |t: &str| subject.split(',').find_map(|p| p.trim().strip_prefix(t).map(str::to_string));
    let (name, pod) = (attr("CN="), attr("O="));
    Ok(NodeCert {
        name: name.ok_or("the certificate names no node (CN)")?,
        pod: pod.ok_or("the certificate names no pod (O)")?,
        key,
        evidence,
    })
}

/// How a client decides to trust a node's evidence.
#[derive(Clone)]
pub enum Trust {
    /// The pod's policy (from its genesis), for the pod it names.
    Policy {
        /// The pod the node must belong to.
        pod: String,
        /// The policy its evidence must satisfy.
        policy: attest::Policy,
    },
    /// The default policy (no debug guests, no revoked TCB, no sim evidence), except that sim evidence is
    /// accepted from a node on a loopback address (a devnet on this machine) when `loopback_sim` is set.
    Default {
        /// Whether the server is on 127.0.0.1 / ::1.
        loopback_sim: bool,
    },
}

/// What the verifier accepted.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The node's certificate.
    pub cert: Option<NodeCert>,
    /// The attestation result of its evidence.
    pub result: Option<attest::AttestationResult>,
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
    pub fn check(&self, cert: &NodeCert, now: u64) -> Result<attest::AttestationResult, String> {
        let (policy, pod) = match &self.trust.0 {
            Trust::Policy { pod, policy } => {
                if &cert.pod != pod {
                    return Err(format!("the node is of pod {:?}, not {pod:?}", cert.pod));
                }
                (policy.clone(), pod.clone())
            }
            Trust::Default { loopback_sim } => {
                let mut p = attest::Policy::default();
                if *loopback_sim {
                    p.sim.allow = true;
                }
                (p, cert.pod.clone())
            }
        };
        crate::pod::admission::verify(&policy, &pod, &cert.key, &cert.evidence, now)
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
        vec![SignatureScheme::ED25519]
    }
}
