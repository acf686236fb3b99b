//! The simulated TEE: **no hardware, no security.** For machines without SEV-SNP or TDX (laptops, CI, the
//! devnet), a node produces evidence signed by the *sim root*, an ed25519 key derived from a seed published right
//! here. Anyone can forge sim evidence; it proves nothing about the machine. The default policy refuses it
//! (`[sim] allow = false`); tests and the devnet opt in explicitly.
//!
//! Wire format (canonical CBOR): `{"sigil-sim": 1, "body": bstr, "sig": bstr(64)}`, where `body` is the CBOR map
//! `{"measurement": bstr(48), "report_data": bstr(64), "host_data": bstr(32), "debug": bool, "svn": uint}`, with an
//! optional `"not_after": uint` (Unix seconds), and `sig` is ed25519 over `"sigil-sim-evidence/v1\0" ‖ body` by the
//! sim root.
//!
//! `not_after` stands in for what makes real evidence expire (a VLEK's year, TDX collateral's month): evidence
//! judged after it is refused (`sim.validity`). It lets tests show how a pod treats evidence that lapses.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, ParseError};
use crate::policy::SimPolicy;
use crate::result::{Outcome, Platform};

/// The published seed of the sim root. It is public on purpose: sim evidence is not secure.
pub const SIM_ROOT_SEED_TEXT: &str =
    "sigil sim TEE root v1: INSECURE, FOR TESTS AND DEVNETS ONLY, NOT A HARDWARE ROOT OF TRUST";
const DOMAIN: &[u8] = b"sigil-sim-evidence/v1\0";
const MAX_SIM: usize = 4096;

fn root_key() -> Ed25519KeyPair {
    let seed = crate::sha256(SIM_ROOT_SEED_TEXT.as_bytes());
    Ed25519KeyPair::from_seed_unchecked(&seed).expect("32-byte seed")
}

/// The sim root public key.
pub fn root_public_key() -> [u8; 32] {
    root_key().public_key().as_ref().try_into().expect("32 bytes")
}

/// What a sim TEE attests to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClaims {
    /// The simulated launch measurement.
    #[serde(with = "serde_bytes")]
    pub measurement: Vec<u8>,
    /// REPORT_DATA chosen by the guest.
    #[serde(with = "serde_bytes")]
    pub report_data: Vec<u8>,
    /// HOST_DATA chosen at launch (e.g. the pod's genesis hash).
    #[serde(with = "serde_bytes")]
    pub host_data: Vec<u8>,
    /// Whether the simulated guest is a debug guest.
    pub debug: bool,
    /// Security version.
    pub svn: u32,
    /// The last second (Unix) at which the evidence is valid, as a certificate's `notAfter`; none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "sigil-sim")]
    version: u32,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

/// Sim evidence as received.
#[derive(Clone, Debug)]
pub struct SimEvidence {
    body: Vec<u8>,
    sig: Vec<u8>,
}

/// Whether `bytes` is a CBOR map that names the sim envelope's key (in any position).
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.len() > 12 && bytes[0] & 0xE0 == 0xA0 && bytes.windows(9).any(|w| w == b"sigil-sim")
}

impl SimEvidence {
    /// Produces sim evidence (what `sigil attest collect --sim` and sim nodes do).
    pub fn generate(claims: &SimClaims) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        ciborium::into_writer(claims, &mut body).map_err(|e| Error::Encode(e.to_string()))?;
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&body);
        let sig = root_key().sign(&msg).as_ref().to_vec();
        let mut out = Vec::new();
        ciborium::into_writer(&Envelope { version: 1, body, sig }, &mut out)
            .map_err(|e| Error::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Parses the envelope (the body is decoded only after the signature verifies).
    pub fn parse(bytes: &[u8]) -> Result<SimEvidence, ParseError> {
        if bytes.len() > MAX_SIM {
            return Err(ParseError::Field {
                what: "sim evidence",
                detail: format!("{} bytes exceeds {MAX_SIM}", bytes.len()),
            });
        }
        let env: Envelope = crate::bundle::cbor_exact(bytes, "sim evidence")?;
        if env.version != 1 {
            return Err(ParseError::Version { what: "sim evidence", version: env.version });
        }
        Ok(SimEvidence { body: env.body, sig: env.sig })
    }
}

pub(crate) fn verify(ev: &SimEvidence, policy: &SimPolicy, expected_rd: Option<&[u8]>, now: u64) -> Outcome {
    let mut out = Outcome::new(Platform::Sim);
    let c = &mut out.checks;
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&ev.body);
    if UnparsedPublicKey::new(&ED25519, root_public_key()).verify(&msg, &ev.sig).is_err() {
        c.fail("sim.signature", "not signed by the sim root");
        return out;
    }
    c.pass("sim.signature", "signed by the published sim root (INSECURE: anyone can make this)".to_string());
    let claims: SimClaims = match crate::bundle::cbor_exact::<SimClaims>(&ev.body, "sim evidence body") {
        Ok(cl) if cl.measurement.len() == 48 && cl.report_data.len() == 64 && cl.host_data.len() == 32 => cl,
        Ok(_) => {
            c.fail("sim.format", "measurement, report_data or host_data has the wrong length");
            return out;
        }
        Err(e) => {
            c.fail("sim.format", e.to_string());
            return out;
        }
    };
    out.measurement = claims.measurement.clone();
    out.report_data = claims.report_data.clone();
    let c = &mut out.checks;
    c.record(
        "sim.policy.allow",
        if policy.allow { Ok(()) } else { Err("simulated TEE evidence is insecure and refused by this policy (set [sim] allow = true for tests and devnets)".into()) },
    );
    c.record("sim.policy.debug", if claims.debug { Err("debug guest".into()) } else { Ok(()) });
    if let Some(t) = claims.not_after {
        c.record(
            "sim.validity",
            if now <= t {
                Ok(())
            } else {
                Err(format!("expired at {}, judged at {}", crate::time::fmt_unix(t), crate::time::fmt_unix(now)))
            },
        );
    }
    c.allow_list("sim.policy.measurement", &policy.measurements, &claims.measurement);
    let want = crate::policy::expected_report_data(expected_rd, &policy.report_data);
    c.report_data("sim.report_data", &claims.report_data, want);
    out.claim("sim", json!({ "insecure": true, "host_data": hex::encode(&claims.host_data), "svn": claims.svn, "debug": claims.debug, "not_after": claims.not_after }));
    out
}
