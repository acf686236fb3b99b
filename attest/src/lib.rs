//! # sigil-attest: what Sigil believes about a machine, and why
//!
//! This crate turns TEE evidence into an [`AttestationResult`]: AMD SEV-SNP reports (raw, hex, or inside an
//! Azure HCL report), Intel TDX quotes v4/v5 (with or without Intel PCS collateral), Sigil evidence bundles, and
//! the insecure simulated TEE used by tests and devnets. It also collects evidence on real hardware
//! ([`collect`]).
//!
//! What it must never do:
//! - **No networking, no storage.** Certificates and collateral come in as bytes; `now` comes in as a number.
//!   The verifier builds without RocksDB, wasmtime or libp2p and could run in a browser.
//! - **Trust no field before the signature over the raw bytes has been checked.** Fields read earlier only
//!   choose which key and chain to check against (SNP VERSION, SIGNING_KEY, CPUID; the quote header).
//! - **Accept no root it was not built with.** AMD ARKs (Milan, Genoa, Turin) and the Intel SGX Root CA are
//!   pinned; a supplied root that differs is refused.
//! - Panic on any input. Every parser is length-checked and fuzzed.
//!
//! Entry point: [`Verifier::verify`] with the evidence bytes and [`Endorsements`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod azure;
pub mod bundle;
pub mod collect;
pub mod error;
pub mod measure;
pub mod policy;
mod reader;
pub mod result;
pub mod sim;
pub mod snp;
pub mod tdx;
pub mod time;
pub mod tpm;
pub mod vtpm;
pub mod x509;

pub use bundle::Bundle;
pub use error::{Error, ParseError, Result};
pub use policy::Policy;
pub use result::{AttestationResult, Check, CheckStatus, Platform, Verdict};

use result::Outcome;
use x509::Cert;

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().expect("32 bytes")
}

/// Largest evidence input accepted (a bundle with everything is well under this).
pub const MAX_EVIDENCE_LEN: usize = 2 << 20;

/// What comes with the evidence: certificates, collateral, and the REPORT_DATA the caller expects.
#[derive(Clone, Debug, Default)]
pub struct Endorsements {
    /// Certificates (VCEK/VLEK and optionally ASK/ASVK/ARK for SNP). Any order.
    pub certs: Vec<Cert>,
    /// Intel PCS collateral for a TDX quote.
    pub collateral: Option<dcap_qvl::QuoteCollateralV3>,
    /// The REPORT_DATA the verifier expects (a nonce or key binding), overriding the policy's.
    pub expected_report_data: Option<Vec<u8>>,
}

impl Endorsements {
    /// Reads collateral JSON (the dcap-qvl `QuoteCollateralV3` shape, as Intel PCS data is usually stored).
    pub fn parse_collateral(json: &[u8]) -> Result<dcap_qvl::QuoteCollateralV3> {
        serde_json::from_slice(json).map_err(|e| Error::Collateral(format!("not dcap-qvl QuoteCollateralV3 JSON: {e}")))
    }
}

/// The evidence formats Sigil reads, as detected from the bytes.
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A raw SEV-SNP report.
    Snp(Vec<u8>),
    /// An Azure HCL report (SNP or TDX inside).
    AzureHcl(Vec<u8>),
    /// A DCAP quote (TDX, or SGX which is rejected).
    Quote(Vec<u8>),
    /// Sim evidence.
    Sim(Vec<u8>),
    /// A Sigil evidence bundle.
    Bundle(Bundle),
    /// Azure TDX vTPM evidence JSON (trustee `az-tdx-vtpm` shape): the TD quote and the HCL report.
    AzureTdxJson {
        /// The HCL report (runtime claims bound by the quote's REPORT_DATA).
        hcl: Vec<u8>,
        /// The TD quote.
        quote: Vec<u8>,
        /// The vTPM quote, if the JSON has one.
        vtpm: Option<vtpm::VtpmEvidence>,
    },
    /// Azure SNP vTPM evidence JSON (trustee `az-snp-vtpm` shape): HCL report and VCEK.
    AzureJson {
        /// The HCL report.
        hcl: Vec<u8>,
        /// The VCEK (PEM).
        vcek_pem: String,
        /// The vTPM quote, if the JSON has one.
        vtpm: Option<vtpm::VtpmEvidence>,
    },
}

impl Evidence {
    /// Detects the format of `bytes`. Hex text is decoded first (once).
    pub fn detect(bytes: &[u8]) -> core::result::Result<Evidence, ParseError> {
        Self::detect_inner(bytes, true)
    }

    fn detect_inner(bytes: &[u8], allow_hex: bool) -> core::result::Result<Evidence, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        if bytes.len() > MAX_EVIDENCE_LEN {
            return Err(ParseError::Field {
                what: "evidence",
                detail: format!("{} bytes exceeds {MAX_EVIDENCE_LEN}", bytes.len()),
            });
        }
        if azure::sniff(bytes) {
            return Ok(Evidence::AzureHcl(bytes.to_vec()));
        }
        // A CBOR map: a bundle or sim evidence, whatever the order of their keys. No other format starts with
        // a map header (0xA0..=0xBF): SNP reports start with their version, quotes with 03..05 00, HCL with "H",
        // hex text with a digit or a..f.
        if bytes[0] & 0xE0 == 0xA0 {
            return match Bundle::decode(bytes) {
                Ok(b) => Ok(Evidence::Bundle(b)),
                Err(_) if sim::sniff(bytes) => Ok(Evidence::Sim(bytes.to_vec())),
                Err(e) => Err(e),
            };
        }
        if bytes.len() == snp::report::REPORT_LEN && reader::le_u32(bytes, 0).is_some_and(|v| (2..=5).contains(&v)) {
            return Ok(Evidence::Snp(bytes.to_vec()));
        }
        if tdx::sniff(bytes).is_some() {
            return Ok(Evidence::Quote(bytes.to_vec()));
        }
        let text = bytes.trim_ascii();
        if text.first() == Some(&b'{') {
            return azure_json(text);
        }
        if allow_hex && text.len() >= 2 && text.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) {
            let clean: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            let raw = hex::decode(&clean).map_err(|e| ParseError::Hex(e.to_string()))?;
            return Self::detect_inner(&raw, false);
        }
        Err(ParseError::UnknownFormat { len: bytes.len() })
    }
}

/// Azure vTPM evidence as trustee's `az-snp-vtpm` (`{report, vcek, quote}`) and `az-tdx-vtpm`
/// (`{hcl_report, td_quote, tpm_quote}`) verifiers take it. The TPM quote is verified with `HCLAkPub`.
fn azure_json(text: &[u8]) -> core::result::Result<Evidence, ParseError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum AzureEvidence {
        Snp { report: Vec<u8>, vcek: String, quote: Option<azure::JsonQuote> },
        Tdx { hcl_report: Vec<u8>, td_quote: Vec<u8>, tpm_quote: Option<azure::JsonQuote> },
    }
    let ev: AzureEvidence = serde_json::from_slice(text).map_err(|_| {
        ParseError::Json(
            "not Azure vTPM evidence JSON: expected {report, vcek, ...} (SNP) or {hcl_report, td_quote, ...} (TDX)"
                .into(),
        )
    })?;
    Ok(match ev {
        AzureEvidence::Snp { report, vcek, quote } => {
            Evidence::AzureJson { hcl: report, vcek_pem: vcek, vtpm: quote.map(azure::JsonQuote::into_evidence) }
        }
        AzureEvidence::Tdx { hcl_report, td_quote, tpm_quote } => Evidence::AzureTdxJson {
            hcl: hcl_report,
            quote: td_quote,
            vtpm: tpm_quote.map(azure::JsonQuote::into_evidence),
        },
    })
}

/// Verifies evidence under one policy. Keeps a cache of verified SNP certificate chains, so it is meant to be
/// long-lived and shared.
#[derive(Debug)]
pub struct Verifier {
    policy: Policy,
    policy_digest: [u8; 32],
    chains: snp::ChainCache,
}

impl Verifier {
    /// A verifier for `policy`.
    pub fn new(policy: Policy) -> Verifier {
        let policy_digest = policy.digest();
        Verifier { policy, policy_digest, chains: snp::ChainCache::default() }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Verifies `evidence` (any supported format) at time `now` (Unix seconds).
    ///
    /// Returns `Err` only when the bytes are not evidence of any known kind, or an endorsement cannot be read;
    /// evidence of a known kind that is malformed or fails a check yields a rejected result listing why.
    pub fn verify(&self, evidence: &[u8], endorsements: &Endorsements, now: u64) -> Result<AttestationResult> {
        let ev = Evidence::detect(evidence)?;
        self.verify_detected(ev, endorsements, now)
    }

    /// Verifies already-detected evidence.
    pub fn verify_detected(&self, ev: Evidence, endorsements: &Endorsements, now: u64) -> Result<AttestationResult> {
        self.verify_with(ev, endorsements, now, None)
    }

    /// Verifies evidence that may come with a vTPM quote (from a bundle).
    fn verify_with(
        &self,
        ev: Evidence,
        endorsements: &Endorsements,
        now: u64,
        vtpm: Option<&vtpm::VtpmEvidence>,
    ) -> Result<AttestationResult> {
        let rd = endorsements.expected_report_data.as_deref();
        let p = &self.policy;
        let out = match ev {
            Evidence::Snp(raw) => {
                let mut out = match snp::SnpReport::parse(&raw) {
                    Ok(r) => snp::verify(&r, &endorsements.certs, &p.snp, rd, now, &self.chains),
                    Err(e) => format_failure(Platform::SevSnp, "snp.format", e),
                };
                self.unbound_vtpm(&mut out, vtpm, policy::expected_report_data(rd, &p.snp.report_data));
                out
            }
            Evidence::AzureHcl(raw) => self.verify_hcl(&raw, endorsements, now, vtpm),
            Evidence::AzureTdxJson { hcl, quote, vtpm: v } => {
                self.verify_quote(&quote, Some(&hcl), endorsements, now, v.as_ref().or(vtpm), None)
            }
            Evidence::AzureJson { hcl, vcek_pem, vtpm: v } => {
                let mut e = endorsements.clone();
                e.certs.extend(x509::parse_cert_file(vcek_pem.as_bytes(), "VCEK in Azure evidence")?);
                self.verify_hcl(&hcl, &e, now, v.as_ref().or(vtpm))
            }
            Evidence::Quote(raw) => self.verify_quote(&raw, None, endorsements, now, vtpm, None),
            Evidence::Sim(raw) => {
                let mut out = match sim::SimEvidence::parse(&raw) {
                    Ok(s) => sim::verify(&s, &p.sim, rd, now),
                    Err(e) => format_failure(Platform::Sim, "sim.format", e),
                };
                self.unbound_vtpm(&mut out, vtpm, policy::expected_report_data(rd, &p.sim.report_data));
                out
            }
            Evidence::Bundle(b) => return self.verify_bundle(b, endorsements, now),
        };
        Ok(self.finish(out, now))
    }

    /// The result: the `workload` judgement added, then every check folded into a verdict.
    fn finish(&self, mut out: Outcome, now: u64) -> AttestationResult {
        self.workload(&mut out);
        out.finish(now, self.policy_digest)
    }

    /// What establishes the code that runs (the `workload` claim and the `workload.measured` check): a policy rule
    /// that pins it and that the evidence satisfied. In order: `vtpm` (rules on PCR 4, a key the hardware report
    /// binds, and the launch that runs the vTPM pinned), `rtmr` (TDX with MRTD, RTMR1 and RTMR2 pinned),
    /// `launch_digest` (SNP measurements declared to
    /// cover the workload, or sim measurements), `vtpm-host` (PCR 4 rules, a key no hardware report binds: what the
    /// TPM's host says, enough only for platform `tpm`, whose policy already trusts that host), else `unmeasured`.
    /// Refused unless measured or `[workload] allow_unmeasured`; judged only on evidence that verified.
    fn workload(&self, out: &mut Outcome) {
        const CHECK: &str = "workload.measured";
        if out.checks.any_failed() {
            out.checks.skip(CHECK, "the evidence did not verify");
            return;
        }
        let p = &self.policy;
        let vtpm = out.claims.get("vtpm").cloned().unwrap_or_default();
        let ak_trust = vtpm["ak_trust"].as_str().map(str::to_string);
        let pcrs = || serde_json::json!({ "pcr4": vtpm["pcrs"]["sha256"]["4"], "pcr11": vtpm["pcrs"]["sha256"]["11"] });
        let measurement = hex::encode(&out.measurement);
        // The vTPM a hardware report binds is as honest as the launched code that runs it (Azure's paravisor): that
        // launch must be pinned too.
        let launch_pinned = match out.platform {
            Platform::SevSnp => !p.snp.measurements.is_empty(),
            Platform::Tdx => !p.tdx.mrtd.is_empty(),
            _ => false,
        };
        let (by, values, enough) =
            if ak_trust.as_deref() == Some("hardware-bound") && launch_pinned && p.vtpm.pins_workload() {
                ("vtpm", pcrs(), true)
            } else if out.platform == Platform::Tdx && p.tdx.pins_workload() {
                let r = &out.claims.get("tdx").cloned().unwrap_or_default()["rtmr"];
                ("rtmr", serde_json::json!({ "rtmr1": r[1], "rtmr2": r[2] }), true)
            } else if out.platform == Platform::SevSnp
                && !p.snp.measurements.is_empty()
                && p.snp.measurements_cover == policy::MeasurementsCover::Workload
            {
                ("launch_digest", serde_json::json!({ "measurement": measurement }), true)
            } else if out.platform == Platform::Sim && !p.sim.measurements.is_empty() {
                ("launch_digest", serde_json::json!({ "measurement": measurement, "simulated": true }), true)
            } else if ak_trust.is_some() && p.vtpm.pins_workload() {
                ("vtpm-host", pcrs(), out.platform == Platform::Tpm)
            } else {
                ("unmeasured", serde_json::json!({}), false)
            };
        out.claim("workload", serde_json::json!({ "established_by": by, "values": values }));
        if enough {
            out.checks.pass(CHECK, format!("{by}: {values}"));
        } else {
            let what = if by == "vtpm-host" {
                "a TPM outside the TEE claims the workload (no hardware report binds its key)"
            } else {
                "the evidence proves the firmware, not the code that runs"
            };
            if p.workload.allow_unmeasured {
                out.checks.skip(CHECK, format!("{by}: {what}; accepted because [workload] allow_unmeasured = true"));
            } else {
                out.checks.fail(
                    CHECK,
                    format!(
                        "{by}: {what}: pin the workload (`sigil measure snp --kernel`, `measure tdx` or `measure image` print the rules) or set [workload] allow_unmeasured = true"
                    ),
                );
            }
        }
    }

    /// A vTPM quote whose key no hardware report binds: verified, its key must be pinned by the policy.
    fn unbound_vtpm(&self, out: &mut Outcome, vtpm: Option<&vtpm::VtpmEvidence>, nonce: Option<&[u8]>) {
        match vtpm {
            Some(v) => drop(vtpm::verify(out, v, vtpm::AkTrust::Unbound, nonce, &self.policy.vtpm)),
            None => self.no_vtpm(out),
        }
    }

    fn no_vtpm(&self, out: &mut Outcome) {
        if self.policy.vtpm.demands_quote() {
            out.checks.fail("vtpm.quote", "the policy has vTPM rules and the evidence carries no vTPM quote");
        }
    }

    /// A vTPM quote signed by Azure's `HCLAkPub`, which the hardware report binds through the runtime claims.
    fn azure_vtpm(
        &self,
        out: &mut Outcome,
        hcl: &azure::HclReport,
        vtpm: Option<&vtpm::VtpmEvidence>,
        nonce: Option<&[u8]>,
    ) {
        let Some(v) = vtpm else { return self.no_vtpm(out) };
        let claims: serde_json::Value = serde_json::from_slice(&hcl.runtime_claims).unwrap_or_default();
        match azure::ak_public(&claims) {
            Ok(ak) => drop(vtpm::verify(out, v, vtpm::AkTrust::Bound(ak), nonce, &self.policy.vtpm)),
            Err(e) => out.checks.fail("vtpm.ak", e),
        }
    }

    fn verify_bundle(&self, b: Bundle, endorsements: &Endorsements, now: u64) -> Result<AttestationResult> {
        let mut e = endorsements.clone();
        for der in &b.certs {
            e.certs.push(Cert::from_der(der, "certificate in bundle")?);
        }
        if let Some(col) = &b.collateral {
            if e.collateral.is_none() {
                e.collateral = Some(Endorsements::parse_collateral(col.as_bytes())?);
            }
        }
        if b.platform == Platform::Tpm {
            let mut out = Outcome::new(Platform::Tpm);
            if !self.policy.vtpm.allow_without_tee {
                out.checks.fail(
                    "tpm.allowed",
                    "a TPM quote with no TEE report: the host runs that TPM; the policy must set [vtpm] allow_without_tee",
                );
            }
            let v = b.vtpm.as_ref().expect("Bundle::decode requires vtpm in a tpm bundle");
            let nonce = e.expected_report_data.as_deref();
            if let Some(q) = vtpm::verify(&mut out, v, vtpm::AkTrust::Unbound, nonce, &self.policy.vtpm) {
                out.measurement = q.pcr_digest;
                out.report_data = q.extra_data;
            }
            return Ok(self.finish(out, now));
        }
        if b.ccel.is_some() && b.platform != Platform::Tdx {
            let msg = "ccel (a TDX event log) belongs in TDX bundles only".to_string();
            return Ok(self.finish(format_failure_msg(b.platform, "bundle.ccel", msg), now));
        }
        if b.azure_hcl.is_some() && b.platform != Platform::Tdx {
            let msg = "azure_hcl belongs in TDX bundles only (an SNP HCL report is itself the evidence)".to_string();
            return Ok(self.finish(format_failure_msg(b.platform, "bundle.azure_hcl", msg), now));
        }
        let inner = Evidence::detect_inner(&b.evidence, false);
        let out = match (b.platform, inner) {
            (Platform::Tdx, Ok(Evidence::Quote(q))) => {
                let (hcl, ccel) = (b.azure_hcl.as_ref().map(|h| h.as_slice()), b.ccel.as_ref().map(|c| c.as_slice()));
                self.verify_quote(&q, hcl, &e, now, b.vtpm.as_ref(), ccel)
            }
            (Platform::SevSnp, Ok(ev @ (Evidence::Snp(_) | Evidence::AzureHcl(_)))) => {
                return self.verify_with(ev, &e, now, b.vtpm.as_ref())
            }
            (Platform::Sim, Ok(ev @ Evidence::Sim(_))) => return self.verify_with(ev, &e, now, b.vtpm.as_ref()),
            (platform, Ok(_)) => format_failure_msg(
                platform,
                "bundle.platform",
                format!("the bundle says {} but its evidence is of another kind", platform.as_str()),
            ),
            (platform, Err(err)) => format_failure(platform, "bundle.evidence", err),
        };
        Ok(self.finish(out, now))
    }

    fn verify_hcl(&self, raw: &[u8], e: &Endorsements, now: u64, vtpm: Option<&vtpm::VtpmEvidence>) -> Outcome {
        let hcl = match azure::HclReport::parse(raw) {
            Ok(h) => h,
            Err(err) => return format_failure(Platform::SevSnp, "azure.format", err),
        };
        if hcl.kind == azure::HclKind::Tdx {
            return format_failure_msg(
                Platform::Tdx,
                "azure.format",
                "an Azure TDX HCL report holds a TDREPORT, which only the CPU can check: verify the TD quote, in a bundle with this HCL report as azure_hcl".into(),
            );
        }
        let report = match snp::SnpReport::parse(&hcl.hw_report) {
            Ok(r) => r,
            Err(err) => return format_failure(Platform::SevSnp, "snp.format", err),
        };
        let binding = hcl.expected_report_data();
        let mut out = snp::verify(&report, &e.certs, &self.policy.snp, Some(&binding), now, &self.chains);
        let nonce = policy::expected_report_data(e.expected_report_data.as_deref(), &self.policy.snp.report_data);
        bind_runtime_claims(&mut out, &hcl.runtime_claims, nonce);
        self.azure_vtpm(&mut out, &hcl, vtpm, nonce);
        out
    }

    fn verify_quote(
        &self,
        raw: &[u8],
        azure_hcl: Option<&[u8]>,
        e: &Endorsements,
        now: u64,
        vtpm: Option<&vtpm::VtpmEvidence>,
        ccel: Option<&[u8]>,
    ) -> Outcome {
        let q = match tdx::Quote::parse(raw) {
            Ok(q) => q,
            Err(err) => return format_failure(Platform::Tdx, "tdx.format", err),
        };
        let hcl = match azure_hcl.map(azure::HclReport::parse).transpose() {
            Ok(h) => h,
            Err(err) => return format_failure(Platform::Tdx, "azure.format", err),
        };
        let nonce = policy::expected_report_data(e.expected_report_data.as_deref(), &self.policy.tdx.report_data);
        let mut out = match hcl {
            None => {
                let mut out =
                    tdx::verify(&q, e.collateral.as_ref(), &self.policy.tdx, e.expected_report_data.as_deref(), now);
                self.unbound_vtpm(&mut out, vtpm, nonce);
                out
            }
            Some(h) => {
                let binding = h.expected_report_data();
                let mut out = tdx::verify(&q, e.collateral.as_ref(), &self.policy.tdx, Some(&binding), now);
                bind_runtime_claims(&mut out, &h.runtime_claims, nonce);
                self.azure_vtpm(&mut out, &h, vtpm, nonce);
                out
            }
        };
        let rules = &self.policy.tdx.events;
        match ccel {
            Some(_) if out.checks.any_failed() => {
                out.checks.skip("tdx.ccel", "the quote did not verify: its RTMRs are not known")
            }
            Some(ccel) => tdx::ccel::check_ccel(&mut out, &q, ccel, rules),
            None if !rules.is_empty() => {
                out.checks.fail("tdx.events", "the policy has CCEL event rules and the evidence carries no CCEL")
            }
            None => {}
        }
        out
    }
}

/// After the hardware report checked REPORT_DATA against the claims' hash: expose the claims, and check the
/// caller's expected REPORT_DATA against the guest's `user-data` claim (where Azure guests put their nonce).
fn bind_runtime_claims(out: &mut Outcome, claims: &[u8], expected_user_data: Option<&[u8]>) {
    let json: serde_json::Value = serde_json::from_slice(claims).unwrap_or(serde_json::Value::Null);
    if let Some(want) = expected_user_data {
        let got = azure::user_data(&json);
        out.checks.record(
            "azure.user_data",
            if got.as_deref() == Some(want) {
                Ok(())
            } else {
                Err(format!(
                    "runtime claim user-data {} differs from the expected {}",
                    got.map(hex::encode).unwrap_or_else(|| "(absent)".into()),
                    hex::encode(want)
                ))
            },
        );
    }
    out.claim("azure_runtime_claims", json);
}

fn format_failure(platform: Platform, check: &str, e: ParseError) -> Outcome {
    format_failure_msg(platform, check, e.to_string())
}

fn format_failure_msg(platform: Platform, check: &str, msg: String) -> Outcome {
    let mut out = Outcome::new(platform);
    out.checks.fail(check, msg);
    out
}

/// SHA-384.
pub fn sha384(data: &[u8]) -> [u8; 48] {
    ring::digest::digest(&ring::digest::SHA384, data).as_ref().try_into().expect("48 bytes")
}

/// The `workload` judgement on each kind of vTPM key (the real vectors cover SNP, TDX and sim; no public vTPM vector
/// both carries a hardware-bound key and verifies with its nonce, so these build the verified outcome directly).
#[cfg(test)]
mod workload_tests {
    use super::*;

    fn outcome(platform: Platform, ak_trust: &str) -> Outcome {
        let mut out = Outcome::new(platform);
        out.checks.pass("vtpm.signature", None);
        out.claim(
            "vtpm",
            serde_json::json!({ "ak_trust": ak_trust, "pcrs": { "sha256": { "4": "44".repeat(32), "11": "bb".repeat(32) } } }),
        );
        out
    }

    fn judged(policy: &str, mut out: Outcome) -> (String, CheckStatus) {
        Verifier::new(Policy::from_toml(policy).unwrap()).workload(&mut out);
        let check = out.checks.into_vec().into_iter().find(|c| c.name == "workload.measured").unwrap();
        (out.claims["workload"]["established_by"].as_str().unwrap().to_string(), check.status)
    }

    #[test]
    fn a_vtpm_establishes_the_workload_only_with_a_bound_key_a_pcr_4_rule_and_a_pinned_launch() {
        // The launch that runs the vTPM (Azure's paravisor), pinned for SNP and for TDX.
        let launch =
            format!("[snp]\nmeasurements = [\"{}\"]\n[tdx]\nmrtd = [\"{}\"]\n", "aa".repeat(48), "aa".repeat(48));
        // What systemd's stub adds from outside the UKI: nothing.
        let outside = "{ pcr = 12, digests = [] }, { pcr = 13, digests = [] }";
        let d44 = "44".repeat(32);
        let pcr4 = format!("{launch}[vtpm]\nevents = [{{ pcr = 4, digests = [\"{d44}\"] }}, {outside}]\n");
        let pcr4_value =
            format!("{launch}[vtpm]\npcrs = {{ 4 = [\"{d44}\"], 12 = [\"{0}\"], 13 = [\"{0}\"] }}\n", "00".repeat(32));
        let apps = format!(
            "{launch}[vtpm]\nevents = [{{ pcr = 4, kind = \"EV_EFI_BOOT_SERVICES_APPLICATION\", digests = [\"{d44}\"] }}, {outside}]\n"
        );
        let bound = "hardware-bound";
        let host = "policy-pinned: the key's TPM may be the host's";
        for rule in [&pcr4, &pcr4_value, &apps] {
            assert_eq!(judged(rule, outcome(Platform::SevSnp, bound)), ("vtpm".into(), CheckStatus::Pass));
            assert_eq!(judged(rule, outcome(Platform::Tdx, bound)), ("vtpm".into(), CheckStatus::Pass));
            // A key no hardware report binds: what the host says. Enough where the policy trusts a TEE-less TPM at
            // all (platform tpm), not beside a TEE report (GCP's vTPM).
            assert_eq!(judged(rule, outcome(Platform::Tpm, host)), ("vtpm-host".into(), CheckStatus::Pass));
            assert_eq!(judged(rule, outcome(Platform::SevSnp, host)), ("vtpm-host".into(), CheckStatus::Fail));
            let allowed = format!("[workload]\nallow_unmeasured = true\n{rule}");
            assert_eq!(judged(&allowed, outcome(Platform::SevSnp, host)), ("vtpm-host".into(), CheckStatus::Skipped));
        }
        // The same rule with the launch that runs the vTPM unpinned: any paravisor could report these PCRs.
        let unpinned = format!("[vtpm]\nevents = [{{ pcr = 4, digests = [\"{d44}\"] }}, {outside}]\n");
        assert_eq!(judged(&unpinned, outcome(Platform::SevSnp, bound)).1, CheckStatus::Fail);
        assert_eq!(judged(&unpinned, outcome(Platform::Tdx, bound)).1, CheckStatus::Fail);
        // PCR 0 is the firmware; PCR 11 alone is whatever the loaded code extended; PCR 4's separator, or a rule that
        // lists nothing, pins no code.
        for rule in [
            // PCR 4 pinned, but not what the stub adds from outside the UKI (PCR 12: a host's command line; 13).
            format!("{launch}[vtpm]\nevents = [{{ pcr = 4, digests = [\"{d44}\"] }}, {{ pcr = 13, digests = [] }}]\n"),
            format!("{launch}[vtpm]\nevents = [{{ pcr = 4, digests = [\"{d44}\"] }}, {{ pcr = 12, digests = [] }}]\n"),
            format!("{launch}[vtpm]\npcrs = {{ 0 = [\"{}\"] }}\n", "00".repeat(32)),
            format!("{launch}[vtpm]\npcrs = {{ 11 = [\"{}\"] }}\n", "bb".repeat(32)),
            format!("{launch}[vtpm]\nevents = [{{ pcr = 11, digests = [\"{}\"] }}]\n", "bb".repeat(32)),
            format!(
                "{launch}[vtpm]\nevents = [{{ pcr = 4, kind = \"EV_SEPARATOR\", digests = [\"{}\"] }}]\n",
                "44".repeat(32)
            ),
            format!("{launch}[vtpm]\nevents = [{{ pcr = 4, digests = [] }}]\n"),
        ] {
            assert_eq!(
                judged(&rule, outcome(Platform::SevSnp, bound)),
                ("unmeasured".into(), CheckStatus::Fail),
                "{rule}"
            );
        }
        // The values that established it are named.
        let mut out = outcome(Platform::SevSnp, bound);
        Verifier::new(Policy::from_toml(&pcr4).unwrap()).workload(&mut out);
        assert_eq!(
            out.claims["workload"]["values"],
            serde_json::json!({ "pcr4": "44".repeat(32), "pcr11": "bb".repeat(32) })
        );
        // Evidence that failed a check is not judged.
        let mut out = outcome(Platform::SevSnp, bound);
        out.checks.fail("snp.report_signature", "bad");
        Verifier::new(Policy::from_toml(&pcr4).unwrap()).workload(&mut out);
        assert!(!out.claims.contains_key("workload"));
    }
}
