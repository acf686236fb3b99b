//! Attestation results: the verifier's verdict, shaped after the IETF RATS EAT Attestation Result (EAR) where it
//! fits, with every check that ran listed by name.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The EAR profile this result follows (`eat_profile`).
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";

/// Accepted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed.
    Accepted,
    /// At least one check failed; `reasons` says which.
    Rejected,
}

/// The kind of TEE that produced the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    /// AMD SEV-SNP (including Azure's HCL-wrapped reports).
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// Intel TDX.
    #[serde(rename = "tdx")]
    Tdx,
    /// Sigil's simulated TEE: no hardware, no security.
    #[serde(rename = "sim")]
    Sim,
    /// A TPM quote with no TEE report: a vTPM the host runs (QEMU's swtpm) or a discrete TPM. It proves what that
    /// TPM signed, which the host could forge; policies refuse it unless `[vtpm] allow_without_tee`.
    #[serde(rename = "tpm")]
    Tpm,
}

impl Platform {
    /// The wire name ("sev-snp", "tdx", "sim").
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::SevSnp => "sev-snp",
            Platform::Tdx => "tdx",
            Platform::Sim => "sim",
            Platform::Tpm => "tpm",
        }
    }
}

/// Outcome of one named check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check ran and passed.
    Pass,
    /// The check ran and failed.
    Fail,
    /// The check did not apply (the detail says why).
    Skipped,
}

/// One check that the verifier ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name, e.g. `snp.report_signature`.
    pub name: String,
    /// Pass, fail or skipped.
    pub status: CheckStatus,
    /// What was found (for failures: why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The verifier's verdict on one piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttestationResult {
    /// "accepted" or "rejected".
    pub verdict: Verdict,
    /// Which TEE.
    pub platform: Platform,
    /// SNP MEASUREMENT, TDX MRTD or the sim measurement, hex.
    pub measurement: String,
    /// REPORT_DATA (64 bytes), hex.
    pub report_data: String,
    /// TDX TCB status from the collateral ("UpToDate", "OutOfDate", ...); null when not evaluated.
    pub tcb_status: Option<String>,
    /// Why the evidence was rejected (empty when accepted), one line per failed check.
    pub reasons: Vec<String>,
    /// Every check that ran, in order.
    pub checks: Vec<Check>,
    /// Platform claims (TCB, policy, chip id, RTMRs, runtime claims, ...). Trust them only when accepted.
    pub claims: serde_json::Value,
    /// EAR: `eat_profile`.
    pub eat_profile: String,
    /// EAR: the time of verification (`now`), Unix seconds.
    pub iat: u64,
    /// EAR: verifier identity.
    #[serde(rename = "ear.verifier-id")]
    pub verifier_id: VerifierId,
    /// EAR: "affirming" when accepted, "contraindicated" when rejected.
    #[serde(rename = "ear.status")]
    pub ear_status: String,
    /// SHA-256 of the policy the verdict was reached under (its canonical JSON), hex.
    pub policy_digest: String,
}

/// EAR `ear.verifier-id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierId {
    /// Who built the verifier.
    pub developer: String,
    /// Which build.
    pub build: String,
}

impl AttestationResult {
    /// True when the verdict is accepted.
    pub fn accepted(&self) -> bool {
        self.verdict == Verdict::Accepted
    }

    /// The result as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialise")
    }

    /// The result as CBOR.
    pub fn to_cbor(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Reads a result back from CBOR.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        ciborium::from_reader(bytes).map_err(|e| Error::Encode(e.to_string()))
    }
}

/// Collects checks while a platform verifier runs.
#[derive(Default, Debug)]
pub(crate) struct Checks {
    list: Vec<Check>,
}

impl Checks {
    pub fn pass(&mut self, name: &str, detail: impl Into<Option<String>>) {
        self.list.push(Check { name: name.into(), status: CheckStatus::Pass, detail: detail.into() });
    }
    pub fn fail(&mut self, name: &str, reason: impl Into<String>) {
        self.list.push(Check { name: name.into(), status: CheckStatus::Fail, detail: Some(reason.into()) });
    }
    pub fn skip(&mut self, name: &str, why: impl Into<String>) {
        self.list.push(Check { name: name.into(), status: CheckStatus::Skipped, detail: Some(why.into()) });
    }
    /// Records `r`; returns whether it passed.
    pub fn record(&mut self, name: &str, r: Result<(), String>) -> bool {
        match r {
            Ok(()) => {
                self.pass(name, None);
                true
            }
            Err(e) => {
                self.fail(name, e);
                false
            }
        }
    }
    /// Passes when `allowed` is empty (any value) or holds `value`.
    pub fn allow_list(&mut self, name: &str, allowed: &[crate::policy::HexBytes], value: &[u8]) {
        if crate::policy::allowed(allowed, value) {
            self.pass(name, None);
        } else {
            self.fail(name, format!("{} is not in the allowed list", hex::encode(value)));
        }
    }
    /// Compares REPORT_DATA with the expected value, or records that there was none to compare with.
    pub fn report_data(&mut self, name: &str, got: &[u8], want: Option<&[u8]>) {
        match want {
            Some(want) if want == got => self.pass(name, None),
            Some(want) => self.fail(
                name,
                format!("REPORT_DATA {} differs from the expected {}", hex::encode(got), hex::encode(want)),
            ),
            None => self.skip(name, "no expected REPORT_DATA given"),
        }
    }
    pub fn any_failed(&self) -> bool {
        self.list.iter().any(|c| c.status == CheckStatus::Fail)
    }
    #[cfg(test)]
    pub fn list(&self) -> &[Check] {
        &self.list
    }
    pub fn into_vec(self) -> Vec<Check> {
        self.list
    }
}

/// What a platform verifier hands back to [`crate::Verifier`].
#[derive(Debug)]
pub(crate) struct Outcome {
    pub platform: Platform,
    pub checks: Checks,
    pub measurement: Vec<u8>,
    pub report_data: Vec<u8>,
    pub tcb_status: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    pub fn new(platform: Platform) -> Self {
        Outcome {
            platform,
            checks: Checks::default(),
            measurement: Vec::new(),
            report_data: Vec::new(),
            tcb_status: None,
            claims: serde_json::Map::new(),
        }
    }

    pub fn claim(&mut self, key: &str, value: impl Serialize) {
        self.claims.insert(key.into(), serde_json::to_value(value).expect("claims serialise"));
    }

    pub fn finish(self, now: u64, policy_digest: [u8; 32]) -> AttestationResult {
        let accepted = !self.checks.any_failed();
        let checks = self.checks.into_vec();
        let reasons = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| match &c.detail {
                Some(d) => format!("{}: {d}", c.name),
                None => c.name.clone(),
            })
            .collect();
        AttestationResult {
            verdict: if accepted { Verdict::Accepted } else { Verdict::Rejected },
            platform: self.platform,
            measurement: hex::encode(&self.measurement),
            report_data: hex::encode(&self.report_data),
            tcb_status: self.tcb_status,
            reasons,
            checks,
            claims: serde_json::Value::Object(self.claims),
            eat_profile: EAR_PROFILE.into(),
            iat: now,
            verifier_id: VerifierId {
                developer: "sigil".into(),
                build: concat!("attest/", env!("CARGO_PKG_VERSION")).into(),
            },
            ear_status: if accepted { "affirming" } else { "contraindicated" }.into(),
            policy_digest: hex::encode(policy_digest),
        }
    }
}
