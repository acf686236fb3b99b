//! Virtual TPM evidence: a `TPM2_Quote` over PCRs, signed by an attestation key (AK), and the TCG PC Client
//! event log that says what was extended into those PCRs.
//!
//! What each part proves, and what it does not:
//! - [`quote`]: the AK signed these PCR values and this nonce. A quote proves nothing about *which* TPM unless the
//!   AK is vouched for: on Azure the hardware report binds it (`HCLAkPub` in the runtime claims, whose hash is the
//!   SNP or TDX REPORT_DATA); anywhere else a policy must pin it or the TEE report must bind it.
//! - [`eventlog`]: replayed, the log must give exactly the quoted value of every PCR it touches; then, and only
//!   then, its events (the UKI's Authenticode digest, the kernel command line) say what those PCRs hold. Events in
//!   PCRs the quote does not cover prove nothing and are reported as such.
//! - A vTPM outside the TEE (QEMU's swtpm, the vTPM of a cloud whose TEE report covers only its firmware) is run
//!   by the host: its quote is the host's claim, and results label it so.

pub mod eventlog;
pub mod quote;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::ParseError;
use crate::policy::VtpmPolicy;
use crate::result::Outcome;
use quote::{AkPublic, PublicArea, Quoted, Signature};

/// A TPM hash algorithm (`TPM_ALG_ID`) with a PCR bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlg {
    /// SHA-1 (0x0004): read and replayed, never enough on its own for a policy.
    Sha1,
    /// SHA-256 (0x000B).
    Sha256,
    /// SHA-384 (0x000C).
    Sha384,
    /// SHA-512 (0x000D).
    Sha512,
}

impl HashAlg {
    /// The algorithm for a `TPM_ALG_ID`, if it is one of these.
    pub fn from_id(id: u16) -> Option<HashAlg> {
        match id {
            0x0004 => Some(HashAlg::Sha1),
            0x000B => Some(HashAlg::Sha256),
            0x000C => Some(HashAlg::Sha384),
            0x000D => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Its `TPM_ALG_ID`.
    pub fn id(self) -> u16 {
        match self {
            HashAlg::Sha1 => 0x0004,
            HashAlg::Sha256 => 0x000B,
            HashAlg::Sha384 => 0x000C,
            HashAlg::Sha512 => 0x000D,
        }
    }

    /// Digest length in bytes.
    pub fn size(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The name policies and results use (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// The algorithm a name ([`HashAlg::name`]) stands for.
    pub fn from_name(name: &str) -> Option<HashAlg> {
        [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512].into_iter().find(|a| a.name() == name)
    }

    /// The digest of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &ring::digest::SHA256,
            HashAlg::Sha384 => &ring::digest::SHA384,
            HashAlg::Sha512 => &ring::digest::SHA512,
        };
        let mut ctx = ring::digest::Context::new(alg);
        for p in parts {
            ctx.update(p);
        }
        ctx.finish().as_ref().to_vec()
    }

    /// `PCR_Extend`: the new value of a PCR holding `pcr` after `digest` is extended into it.
    pub fn extend(self, pcr: &[u8], digest: &[u8]) -> Vec<u8> {
        self.digest(&[pcr, digest])
    }
}

impl std::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of PCRs a PC Client TPM has.
pub const PCR_COUNT: u32 = 24;

/// PCR values by bank and index, as the evidence states them (a quote signs their digest, not the values).
pub type PcrBanks = BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>;

/// A PCR's value after TPM2_Startup: zero, except PCRs 17-22 (all ones until a dynamic launch resets them).
pub fn reset_value(alg: HashAlg, pcr: u32) -> Vec<u8> {
    let fill = if (17..=22).contains(&pcr) { 0xFF } else { 0 };
    vec![fill; alg.size()]
}

/// A vTPM quote as evidence carries it (in a bundle's `vtpm`, or mapped from Azure's evidence JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VtpmEvidence {
    /// The `TPMS_ATTEST` the TPM signed.
    pub quote: ByteBuf,
    /// Its `TPMT_SIGNATURE`.
    pub signature: ByteBuf,
    /// The PCR values the quote covers, by bank name (`sha256`) and index.
    pub pcrs: BTreeMap<String, BTreeMap<u32, ByteBuf>>,
    /// The attestation key's `TPMT_PUBLIC`; absent where the hardware report carries the key (Azure's `HCLAkPub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ak_public: Option<ByteBuf>,
    /// The TCG event log (crypto-agile) behind the PCRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<ByteBuf>,
}

impl VtpmEvidence {
    /// The PCR values as banks, refusing an unknown bank name.
    pub fn banks(&self) -> Result<PcrBanks, ParseError> {
        let mut out = PcrBanks::new();
        for (name, values) in &self.pcrs {
            let alg = HashAlg::from_name(name).ok_or_else(|| ParseError::Field {
                what: "vTPM evidence",
                detail: format!("PCR bank {name:?} (sha1, sha256, sha384 or sha512 expected)"),
            })?;
            out.insert(alg, values.iter().map(|(i, v)| (*i, v.to_vec())).collect());
        }
        Ok(out)
    }
}

/// Who vouches for the attestation key.
pub(crate) enum AkTrust {
    /// The TEE's own report binds it (Azure: `HCLAkPub` in the runtime claims that REPORT_DATA hashes).
    Bound(AkPublic),
    /// Nothing but the evidence: the policy must pin its name.
    Unbound,
}

/// Verifies `ev` into `out`: the AK, the signature over the raw quote, the nonce, the PCR digest, the event log's
/// replay, and the policy's PCR and event rules. Each is a named check. Returns the quote once its signature
/// verified.
pub(crate) fn verify(
    out: &mut Outcome,
    ev: &VtpmEvidence,
    trust: AkTrust,
    nonce: Option<&[u8]>,
    policy: &VtpmPolicy,
) -> Option<Quoted> {
    let c = &mut out.checks;
    let ak_trust = match trust {
        AkTrust::Bound(_) => "hardware-bound",
        AkTrust::Unbound => "policy-pinned: the key's TPM may be the host's",
    };
    let ak = match (trust, &ev.ak_public) {
        (AkTrust::Bound(ak), None) => {
            c.pass("vtpm.ak", "the hardware report binds the attestation key".to_string());
            ak
        }
        (AkTrust::Bound(_), Some(_)) => {
            c.fail("vtpm.ak", "the hardware report binds the attestation key; the evidence must not name another");
            return None;
        }
        (AkTrust::Unbound, None) => {
            c.fail("vtpm.ak", "no attestation key: the evidence carries no ak_public and no hardware report binds one");
            return None;
        }
        (AkTrust::Unbound, Some(raw)) => match PublicArea::parse(raw) {
            Err(e) => {
                c.fail("vtpm.ak", e.to_string());
                return None;
            }
            Ok(p) => {
                let missing = p.missing_ak_attributes();
                let name = p.name();
                if !missing.is_empty() {
                    c.fail(
                        "vtpm.ak",
                        format!("not a restricted signing key bound to its TPM: lacks {}", missing.join(", ")),
                    );
                    return None;
                }
                if !policy.ak_names.iter().any(|n| n.0 == name) {
                    c.fail(
                        "vtpm.ak",
                        format!(
                            "attestation key {} is neither bound by the hardware report nor pinned in vtpm.ak_names",
                            hex::encode(&name)
                        ),
                    );
                    return None;
                }
                c.pass("vtpm.ak", format!("attestation key {} is pinned by the policy", hex::encode(&name)));
                p.key
            }
        },
    };
    let quoted = match Quoted::parse(&ev.quote) {
        Ok(q) => q,
        Err(e) => {
            c.fail("vtpm.format", e.to_string());
            return None;
        }
    };
    let sig = match Signature::parse(&ev.signature) {
        Ok(s) => s,
        Err(e) => {
            c.fail("vtpm.format", e.to_string());
            return None;
        }
    };
    if !c.record("vtpm.signature", quote::verify_signature(&ak, &ev.quote, &sig)) {
        return None;
    }
    match nonce {
        Some(want) if want == quoted.extra_data.as_slice() => c.pass("vtpm.nonce", None),
        Some(want) if crate::sha256(want) == quoted.extra_data.as_slice() => {
            c.pass("vtpm.nonce", "the quote's nonce is the SHA-256 of the expected one".to_string())
        }
        None if policy.demands_quote() => c.fail(
            "vtpm.nonce",
            "the policy has vTPM rules and no expected nonce was given: an old quote could be replayed",
        ),
        Some(want) => c.fail(
            "vtpm.nonce",
            format!(
                "the quote's nonce {} is neither the expected {} nor its SHA-256",
                hex::encode(&quoted.extra_data),
                hex::encode(want)
            ),
        ),
        None => c.skip("vtpm.nonce", "no expected nonce given"),
    }
    let banks = match ev.banks() {
        Ok(b) => b,
        Err(e) => {
            c.fail("vtpm.format", e.to_string());
            return None;
        }
    };
    if !c.record("vtpm.pcr_digest", quote::check_pcrs(&quoted, sig.hash(), &banks)) {
        return Some(quoted);
    }
    let replayed = match &ev.event_log {
        None => {
            c.skip("vtpm.event_log", "the evidence carries no event log");
            None
        }
        Some(raw) => match eventlog::EventLog::parse(raw) {
            Err(e) => {
                c.fail("vtpm.event_log", e.to_string());
                None
            }
            Ok(log) => match eventlog::check_against(&log, &banks) {
                Err(e) => {
                    c.fail("vtpm.event_log", e);
                    None
                }
                Ok(r) => {
                    c.pass("vtpm.event_log", format!("replays to the quoted {} PCRs {:?}", r.alg, r.verified));
                    Some((log, r))
                }
            },
        },
    };
    policy_checks(c, policy, &banks, replayed.as_ref());
    let mut claim = serde_json::json!({
        "ak_trust": ak_trust,
        "quote": &quoted,
        "pcrs": ev.pcrs.iter().map(|(b, v)| (b.clone(), v.iter().map(|(i, d)| (i.to_string(), hex::encode(d))).collect::<BTreeMap<_, _>>())).collect::<BTreeMap<_, _>>(),
    });
    if let Some((log, r)) = &replayed {
        claim["event_log"] = serde_json::json!({
            "replay": r,
            "events": log.events.iter().filter(|e| e.kind != eventlog::EV_NO_ACTION && r.verified.contains(&e.pcr)).map(|e| serde_json::json!({
                "pcr": e.pcr,
                "type": eventlog::kind_name(e.kind),
                "digest": e.digests.get(&r.alg).map(hex::encode),
            })).collect::<Vec<_>>(),
        });
    }
    out.claim("vtpm", claim);
    Some(quoted)
}

/// The policy's rules on PCR values (SHA-256 bank) and on events proven by the log.
fn policy_checks(
    c: &mut crate::result::Checks,
    policy: &VtpmPolicy,
    banks: &PcrBanks,
    replayed: Option<&(eventlog::EventLog, eventlog::Replayed)>,
) {
    let sha256 = banks.get(&HashAlg::Sha256);
    for (pcr, allowed) in &policy.pcrs {
        let name = format!("vtpm.pcr{pcr}");
        match sha256.and_then(|b| b.get(pcr)) {
            None => c.fail(&name, format!("the quote does not cover PCR {pcr} in the sha256 bank")),
            Some(v) => c.allow_list(&name, allowed, v),
        }
    }
    if policy.events.is_empty() {
        return;
    }
    let Some((log, _)) = replayed else {
        return c.fail("vtpm.events", "the policy requires events and no event log was replayed to the quote");
    };
    let (Some(quoted), true) = (sha256, log.banks.contains(&HashAlg::Sha256)) else {
        return c
            .fail("vtpm.events", "event rules match sha256 digests: the quote and the log must both have that bank");
    };
    for rule in &policy.events {
        let kind = rule.kind.as_deref().and_then(eventlog::kind_from_name);
        let name = match &rule.kind {
            Some(k) => format!("vtpm.events.pcr{}.{k}", rule.pcr),
            None => format!("vtpm.events.pcr{}", rule.pcr),
        };
        let Some(value) = quoted.get(&rule.pcr) else {
            c.fail(&name, format!("the quote does not cover PCR {} in the sha256 bank", rule.pcr));
            continue;
        };
        if log.extended(rule.pcr).next().is_none() && *value != reset_value(HashAlg::Sha256, rule.pcr) {
            c.fail(&name, format!("PCR {} holds a value that no logged event explains", rule.pcr));
            continue;
        }
        let register = format!("PCR {}", rule.pcr);
        match eventlog::compare_events(&register, log.extended(rule.pcr), kind, HashAlg::Sha256, &rule.digests) {
            Ok(d) => c.pass(&name, d),
            Err(e) => c.fail(&name, e),
        }
    }
}

/// Serializers for results: bytes as hex, algorithms by name.
pub(crate) mod ser {
    use super::HashAlg;

    pub(crate) fn hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(crate) fn alg<S: serde::Serializer>(a: &HashAlg, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_ids_names_and_sizes_agree() {
        for a in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(HashAlg::from_id(a.id()), Some(a));
            assert_eq!(HashAlg::from_name(a.name()), Some(a));
            assert_eq!(a.digest(&[b"x"]).len(), a.size());
        }
        assert_eq!(HashAlg::from_id(0x0012), None, "SM3 has no bank here");
        assert_eq!(reset_value(HashAlg::Sha256, 17), vec![0xFF; 32]);
        assert_eq!(reset_value(HashAlg::Sha256, 23), vec![0; 32]);
    }

    #[test]
    fn extend_is_the_hash_of_old_value_then_digest() {
        let old = [1u8; 32];
        let d = [2u8; 32];
        let mut both = old.to_vec();
        both.extend_from_slice(&d);
        assert_eq!(HashAlg::Sha256.extend(&old, &d), crate::sha256(&both).to_vec());
    }
}
