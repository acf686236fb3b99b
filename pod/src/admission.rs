//! Attested admission: a node's identity key is bound into its TEE evidence, and only a node whose evidence the
//! pod's policy accepts becomes a validator.
//!
//! The binding is REPORT_DATA = SHA-512(`"sigil/node-identity/v1\0"` ‖ public key (32) ‖ pod id ‖ 0x00 ‖ nonce),
//! as docs/consensus.md describes. A genesis validator's and a `node_admitted` entry's evidence use an empty nonce,
//! so it is bound to one key and one pod; a `reattested` entry's binds its anchor (a committed height and the
//! ledger root after it, [`sigil_ledger::entry::Anchor::nonce`]), so it was made after that block. Either can be
//! checked by anyone, later, from the ledger alone. Peers do not re-send evidence when they connect: the ledger is where it was checked,
//! and a connecting validator proves it holds an admitted key (`signing::PodVerifier`).

use ring::digest::{digest, SHA512};
use sigil_attest::{AttestationResult, Endorsements, Policy, Verdict, Verifier};

const IDENTITY: &[u8] = b"sigil/node-identity/v1\0";

/// The REPORT_DATA that binds `key` to `pod`.
pub fn report_data(pod: &str, key: &[u8; 32], nonce: &[u8]) -> [u8; 64] {
    let mut m = IDENTITY.to_vec();
    m.extend_from_slice(key);
    m.extend_from_slice(pod.as_bytes());
    m.push(0);
    m.extend_from_slice(nonce);
    digest(&SHA512, &m).as_ref().try_into().expect("64 bytes")
}

/// Sim evidence (an evidence bundle) binding `key` to `pod`, with the simulated launch `measurement`.
/// INSECURE: anyone can make sim evidence; only a policy with `[sim] allow = true` accepts it.
pub fn sim_evidence(pod: &str, key: &[u8; 32], measurement: [u8; 48]) -> Vec<u8> {
    sim_bundle(pod, measurement, report_data(pod, key, &[]), None)
}

/// [`sim_evidence`] bound with `nonce` (a re-attestation's anchor), lapsing after `not_after` (Unix seconds) as real
/// evidence does when its certificates or collateral expire (tests of a pod over time).
pub fn sim_evidence_with(
    pod: &str,
    key: &[u8; 32],
    measurement: [u8; 48],
    nonce: &[u8],
    not_after: Option<u64>,
) -> Vec<u8> {
    sim_bundle(pod, measurement, report_data(pod, key, nonce), not_after)
}

/// A sim evidence bundle of `measurement` over `report_data`, with HOST_DATA the SHA-256 of the pod id, lapsing after
/// `not_after`: what every sim node and test of a pod makes (a node's TEE backend `sim` calls it with the REPORT_DATA
/// it is given).
pub fn sim_bundle(pod: &str, measurement: [u8; 48], report_data: [u8; 64], not_after: Option<u64>) -> Vec<u8> {
    let host_data = sigil_attest::sha256(pod.as_bytes());
    sigil_attest::collect::collect_sim_until(measurement, report_data, host_data, not_after)
        .and_then(|b| b.encode())
        .expect("sim evidence encodes")
}

/// Verifies `evidence` (any form `sigil attest verify` reads) for the node with `key` in `pod`, bound with `nonce`
/// (empty, or a re-attestation's anchor), under the pod's `policy` at `now` (Unix seconds). Accepted: the result.
/// Refused: every reason, in one line.
pub fn verify(
    policy: &Policy,
    pod: &str,
    key: &[u8; 32],
    nonce: &[u8],
    evidence: &[u8],
    now: u64,
) -> Result<AttestationResult, String> {
    let r = judge(policy, pod, key, nonce, evidence, now)?;
    match r.verdict {
        Verdict::Accepted => Ok(r),
        _ => Err(format!("{} evidence refused: {}", r.platform.as_str(), r.reasons.join("; "))),
    }
}

/// The verifier's result on `evidence` for the node with `key` in `pod`, under `policy` at `now`, accepted or not
/// (what [`verify`] decides on, for a caller that reports every check). `Err` only for evidence that cannot be read.
pub fn judge(
    policy: &Policy,
    pod: &str,
    key: &[u8; 32],
    nonce: &[u8],
    evidence: &[u8],
    now: u64,
) -> Result<AttestationResult, String> {
    let e =
        Endorsements { expected_report_data: Some(report_data(pod, key, nonce).to_vec()), ..Endorsements::default() };
    Verifier::new(policy.clone()).verify(evidence, &e, now).map_err(|e| format!("unreadable evidence: {e}"))
}

/// Parses a pod's attestation policy (the genesis' or a `policy_changed` entry's TOML).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    Policy::from_toml(text).map_err(|e| format!("the pod's policy does not parse: {e}"))
}
