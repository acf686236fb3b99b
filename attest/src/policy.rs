//! Attestation policy: what evidence a verifier accepts beyond "genuine hardware signed it".
//!
//! Written as TOML by people (`docs/policy.default.toml` shows every key, `docs/attestation.md` explains them;
//! see [`Policy::from_toml`]); every key is optional and the
//! defaults are the safe choice: no debug guests, VMPL 0, committed firmware only, TDX TCB not Revoked and
//! collateral required, simulated evidence refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::snp::Tcb;

/// Bytes written as a hex string in TOML/JSON.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.trim().trim_start_matches("0x");
        hex::decode(s).map(HexBytes).map_err(|e| serde::de::Error::custom(format!("invalid hex {s:?}: {e}")))
    }
}

/// A "major.minor" version (ABI or firmware).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parse = |p: Option<&str>| p.and_then(|x| x.trim().parse::<u8>().ok());
        let mut it = s.split('.');
        match (parse(it.next()), parse(it.next()), it.next()) {
            (Some(major), Some(minor), None) => Ok(Version { major, minor }),
            _ => Err(serde::de::Error::custom(format!("{s:?} is not a \"major.minor\" version such as \"1.55\""))),
        }
    }
}

/// The whole policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// AMD SEV-SNP rules.
    pub snp: SnpPolicy,
    /// Intel TDX rules.
    pub tdx: TdxPolicy,
    /// Simulated TEE rules.
    pub sim: SimPolicy,
    /// Virtual TPM rules: quotes, PCR values, boot events.
    #[serde(skip_serializing_if = "VtpmPolicy::is_empty")]
    pub vtpm: VtpmPolicy,
    /// What the evidence must prove about the code that runs (see [`WorkloadPolicy`]).
    #[serde(skip_serializing_if = "WorkloadPolicy::is_default")]
    pub workload: WorkloadPolicy,
    /// Not an attestation rule: how the pod's validators check invocations (`sigil-pod`), governed with the rest.
    pub execution: ExecutionPolicy,
    /// Not an attestation rule: how often the pod's validators refresh their evidence, and how fresh a
    /// re-attestation must be (`sigil-pod`), governed with the rest.
    #[serde(skip_serializing_if = "ReattestationPolicy::is_default")]
    pub reattestation: ReattestationPolicy,
}

/// `[workload]`: whether evidence must prove the code that runs (kernel, initrd holding `sigil`, command line), not
/// only the firmware. What establishes the workload is a rule elsewhere in the policy that pins it: `[snp]
/// measurements` declared to cover the kernel (`measurements_cover = "workload"`, as `sigil measure snp --kernel
/// --policy` prints it), `[tdx] rtmr1` and `rtmr2` (`sigil measure tdx --policy`), `[vtpm]` rules on PCR 4 or 11 (`sigil
/// measure image --policy`) with a key the hardware report binds, or `[sim] measurements`. The verdict names which,
/// in the `workload` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadPolicy {
    /// Accept evidence that proves only the firmware (AWS and GCP SNP, whose launch digest covers their firmware;
    /// TDX without RTMR rules; a vTPM outside the TEE): the claim then says `unmeasured`. Default false.
    pub allow_unmeasured: bool,
}

impl WorkloadPolicy {
    fn is_default(&self) -> bool {
        *self == WorkloadPolicy::default()
    }
}

/// What `[snp] measurements` cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeasurementsCover {
    /// The firmware only (a cloud's launch digest, or a direct boot measured without kernel hashes). The default.
    #[default]
    Firmware,
    /// The firmware and, through the kernel-hashes table of a QEMU direct boot, the kernel, initrd and command
    /// line: the workload.
    Workload,
}

impl MeasurementsCover {
    fn is_firmware(&self) -> bool {
        *self == MeasurementsCover::Firmware
    }
}

/// `[execution]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionPolicy {
    /// Every validator runs each invocation of a `deterministic` applet again before it votes, and refuses a
    /// block whose outcome, output, write set or fuel differs from the executor's. Default false.
    pub replay_deterministic: bool,
}

/// `[reattestation]`: validators refresh their evidence with `reattested` entries. Each binds a committed point of
/// the ledger (a height and the root after it) in its REPORT_DATA, so it cannot have been made before that block;
/// validators refuse one whose point is older than `window_s` at the block that commits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReattestationPolicy {
    /// How often each validator re-attests, in seconds after its latest attestation (its admission, the genesis or
    /// its last `reattested`). 0: validators do not re-attest on their own. Default 14,400 (4 hours).
    pub every_s: u64,
    /// How old, at the block that commits it, the ledger point a re-attestation binds may be, in seconds (at
    /// least 60). Default 600.
    pub window_s: u64,
    /// How old a validator's latest attestation may grow before the pod suspends it (a `node_suspended` entry
    /// takes its vote and its invocations until it re-attests), in seconds. 0: never for age. Applies while
    /// validators re-attest (`every_s` > 0); at least twice `every_s`, so a node has retries before it is
    /// suspended. Default 86,400 (a day: six chances at the default `every_s`).
    pub max_age_s: u64,
    /// How long, after the pod resumes (its first block, or the first after a pause longer than this), no
    /// validator is suspended, in seconds (at least 60): every node gets that long to re-attest after the pod was
    /// down, before the quickest suspend the rest. Default 600.
    pub grace_s: u64,
}

impl Default for ReattestationPolicy {
    fn default() -> Self {
        ReattestationPolicy { every_s: 4 * 3600, window_s: 600, max_age_s: 24 * 3600, grace_s: 600 }
    }
}

impl ReattestationPolicy {
    fn is_default(&self) -> bool {
        *self == ReattestationPolicy::default()
    }

    /// The age, in milliseconds, past which a validator's latest attestation has lapsed; `None` when age never
    /// suspends (`max_age_s = 0`, or validators do not re-attest).
    pub fn max_age_ms(&self) -> Option<u64> {
        (self.every_s != 0 && self.max_age_s != 0).then(|| self.max_age_s.saturating_mul(1000))
    }
}

/// `[vtpm]`: what a virtual TPM's quote must show. Empty (the default), a quote that comes with the evidence is
/// still verified, and nothing requires one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VtpmPolicy {
    /// Refuse evidence without a vTPM quote.
    pub require_quote: bool,
    /// Accept a TPM quote that comes with no TEE report (platform `tpm`). Its TPM is the host's (QEMU's swtpm)
    /// or the machine's: for labs and tests of the boot chain, never for a pod that must not trust its host.
    pub allow_without_tee: bool,
    /// Names (`nameAlg` ‖ digest of the public area) of attestation keys accepted where no hardware report binds
    /// the key.
    pub ak_names: Vec<HexBytes>,
    /// Allowed SHA-256 values per PCR index (`4 = ["..."]`, PCRs 0-15); each named PCR must be quoted.
    #[serde(deserialize_with = "pcr_map")]
    pub pcrs: BTreeMap<u32, Vec<HexBytes>>,
    /// What the quoted, replayed event log must show in a PCR: the SHA-256 digests of every event extended into it,
    /// in order (in PCR 4, OVMF's boot-option action, the separator, then the UKI's Authenticode hash). Nothing
    /// else may have been extended there: an earlier loader that extends the right digest and then runs
    /// something else still shows as an extra event.
    pub events: Vec<EventRule>,
}

/// The events of one PCR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    /// The PCR (0-15).
    pub pcr: u32,
    /// Only events of this type (`EV_EFI_BOOT_SERVICES_APPLICATION`: the code the firmware loaded into PCR 4,
    /// whatever actions and separators it logged around it); absent, every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The SHA-256 digest of each (such) event extended into it, in order.
    pub digests: Vec<HexBytes>,
}

/// TOML keys are strings: `4 = [...]` names PCR 4.
fn pcr_map<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<u32, Vec<HexBytes>>, D::Error> {
    let raw = BTreeMap::<String, Vec<HexBytes>>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match k.parse::<u32>() {
            Ok(i) if k == i.to_string() => Ok((i, v)),
            _ => Err(serde::de::Error::custom(format!(
                "vtpm.pcrs: {k:?} is not a PCR index (0 to 15, no sign or leading zero)"
            ))),
        })
        .collect()
}

impl VtpmPolicy {
    /// Whether it says nothing (then it is left out of the policy's digest, which stays what it was before).
    pub fn is_empty(&self) -> bool {
        *self == VtpmPolicy::default()
    }

    /// Whether the rules pin the workload. PCR 4, what the firmware loaded (the UKI), by its value or by its boot
    /// applications (a rule on its separator, or one that lists no digest, pins no code); and PCRs 12 and 13, what
    /// systemd's stub adds from outside the UKI (a command line the host passes, credentials, system extensions),
    /// by value or by any rule. PCR 11 alone does not count: the firmware never extends it, so whatever it loaded
    /// can extend PCR 11 to any value (systemd's stub does so honestly; other code need not).
    pub fn pins_workload(&self) -> bool {
        const APPS: &str = "EV_EFI_BOOT_SERVICES_APPLICATION";
        let code = self.pcrs.contains_key(&4)
            || self
                .events
                .iter()
                .any(|e| e.pcr == 4 && !e.digests.is_empty() && e.kind.as_deref().is_none_or(|k| k == APPS));
        let pinned = |pcr: u32| self.pcrs.contains_key(&pcr) || self.events.iter().any(|e| e.pcr == pcr);
        code && pinned(12) && pinned(13)
    }

    /// Whether evidence must carry a quote (with a nonce): required outright, or needed by a rule.
    pub fn demands_quote(&self) -> bool {
        self.require_quote || !self.ak_names.is_empty() || !self.pcrs.is_empty() || !self.events.is_empty()
    }
}

/// `[snp]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnpPolicy {
    /// Accept guests whose policy allows debugging (the host can read their memory). Default false.
    pub allow_debug: bool,
    /// Accept guests that allow a migration agent. Default false.
    pub allow_migrate_ma: bool,
    /// Accept guests that allow SMT and platforms that run with SMT on. Default true (clouds enable it).
    pub allow_smt: bool,
    /// The VMPL the report must come from. Default 0.
    pub vmpl: u32,
    /// Minimum REPORTED_TCB and LAUNCH_TCB, component-wise. Default all zero.
    pub min_tcb: Tcb,
    /// Accept a report whose COMMITTED_TCB / firmware differs from CURRENT (provisional firmware). Default false.
    pub allow_provisional_firmware: bool,
    /// Allowed MEASUREMENT values (48-byte hex); empty allows any.
    pub measurements: Vec<HexBytes>,
    /// What those measurements cover: `firmware` (the default) or `workload` (a direct boot with kernel hashes).
    #[serde(skip_serializing_if = "MeasurementsCover::is_firmware")]
    pub measurements_cover: MeasurementsCover,
    /// Allowed HOST_DATA values (32-byte hex); empty allows any.
    pub host_data: Vec<HexBytes>,
    /// Minimum GUEST_SVN. Default 0.
    pub min_guest_svn: u32,
    /// Bits that must be set in LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR (report v5+). Default 0.
    pub required_mitigations: u64,
    /// Require the guest policy's SINGLE_SOCKET bit. Default false.
    pub require_single_socket: bool,
    /// Minimum ABI version the guest policy demands, "major.minor" (e.g. "1.51"). Default none.
    pub min_abi: Option<Version>,
    /// Minimum current and committed SEV firmware version, "major.minor" (e.g. "1.55"). Default none.
    pub min_firmware: Option<Version>,
    /// Allowed FAMILY_ID values (16-byte hex, from the ID block); empty allows any.
    pub family_ids: Vec<HexBytes>,
    /// Allowed IMAGE_ID values (16-byte hex); empty allows any.
    pub image_ids: Vec<HexBytes>,
    /// Allowed ID_KEY_DIGEST values (48-byte hex); empty allows any.
    pub id_key_digests: Vec<HexBytes>,
    /// Allowed AUTHOR_KEY_DIGEST values (48-byte hex); empty allows any.
    pub author_key_digests: Vec<HexBytes>,
    /// Expected REPORT_DATA (64-byte hex). Usually supplied per request instead.
    pub report_data: Option<HexBytes>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        SnpPolicy {
            allow_debug: false,
            allow_migrate_ma: false,
            allow_smt: true,
            vmpl: 0,
            min_tcb: Tcb::default(),
            allow_provisional_firmware: false,
            measurements: Vec::new(),
            measurements_cover: MeasurementsCover::Firmware,
            host_data: Vec::new(),
            min_guest_svn: 0,
            required_mitigations: 0,
            require_single_socket: false,
            min_abi: None,
            min_firmware: None,
            family_ids: Vec::new(),
            image_ids: Vec::new(),
            id_key_digests: Vec::new(),
            author_key_digests: Vec::new(),
            report_data: None,
        }
    }
}

/// Every TCB status Intel defines except `Revoked`.
pub const TDX_NON_REVOKED: [&str; 8] = [
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// `[tdx]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TdxPolicy {
    /// Accept debug TDs. Default false.
    pub allow_debug: bool,
    /// Accepted TCB statuses. Default: every status but Revoked (which is never accepted).
    pub accepted_tcb_status: Vec<String>,
    /// Intel advisory IDs that reject a quote when present (e.g. "INTEL-SA-00615").
    pub rejected_advisories: Vec<String>,
    /// Require collateral (so that the TCB level is known). Default true. When false, a quote whose signatures
    /// and PCK chain verify is accepted with `tcb_status: null`.
    pub require_collateral: bool,
    /// Require TD_ATTRIBUTES.SEPT_VE_DISABLE. Default true. Azure TDX and some SPR quotes lack it. With
    /// collateral, dcap-qvl enforces it regardless of this setting.
    pub require_sept_ve_disable: bool,
    /// Accept TDs bound to a service TD (non-zero MRSERVICETD). Default false.
    pub allow_service_td: bool,
    /// Allowed MRTD values (48-byte hex); empty allows any.
    pub mrtd: Vec<HexBytes>,
    /// Allowed RTMR0 values; empty allows any.
    pub rtmr0: Vec<HexBytes>,
    /// Allowed RTMR1 values; empty allows any.
    pub rtmr1: Vec<HexBytes>,
    /// Allowed RTMR2 values; empty allows any.
    pub rtmr2: Vec<HexBytes>,
    /// Allowed RTMR3 values; empty allows any.
    pub rtmr3: Vec<HexBytes>,
    /// Allowed MRCONFIGID values; empty allows any.
    pub mrconfigid: Vec<HexBytes>,
    /// Allowed MROWNER values; empty allows any.
    pub mrowner: Vec<HexBytes>,
    /// Allowed MROWNERCONFIG values; empty allows any.
    pub mrownerconfig: Vec<HexBytes>,
    /// Allowed MRSEAM values (TDX module measurements); empty allows any.
    pub mrseam: Vec<HexBytes>,
    /// Minimum TEE_TCB_SVN (16-byte hex), component-wise. Default none.
    pub min_tee_tcb_svn: Option<HexBytes>,
    /// XFAM bits that may be set. Default 0x6DBE7 (go-tdx-guest's mask); bits 0 and 1 must always be set.
    pub xfam_allowed: u64,
    /// Expected REPORT_DATA (64-byte hex).
    pub report_data: Option<HexBytes>,
    /// What the CC event log (CCEL), replayed to the quote's RTMRs, must show in an RTMR: the SHA-384 digests of
    /// every event (of one type, with `kind`) extended into it, in order. Any rule makes the CCEL mandatory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RtmrRule>,
}

/// One `[tdx] events` rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtmrRule {
    /// The RTMR (0-3).
    pub rtmr: u32,
    /// Only events of this type (`EV_EFI_BOOT_SERVICES_APPLICATION`: the kernel TDVF loaded into RTMR1); absent,
    /// every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The SHA-384 digest of each (such) event extended into it, in order.
    pub digests: Vec<HexBytes>,
}

impl TdxPolicy {
    /// Whether RTMR rules pin the workload: values of RTMR1 and RTMR2, or event rules that pin RTMR1's boot
    /// applications (the kernel) and RTMR2 (its command line and initrd); and MRTD, the firmware that measures them
    /// (a TD can extend its own RTMRs: firmware nothing pins could skip the measurements and the kernel write the
    /// expected values).
    pub fn pins_workload(&self) -> bool {
        const APPS: &str = "EV_EFI_BOOT_SERVICES_APPLICATION";
        let rule = |rtmr: u32, apps_ok: bool| {
            self.events.iter().any(|e| {
                e.rtmr == rtmr
                    && !e.digests.is_empty()
                    && (e.kind.is_none() || (apps_ok && e.kind.as_deref() == Some(APPS)))
            })
        };
        !self.mrtd.is_empty() && (!self.rtmr1.is_empty() || rule(1, true)) && (!self.rtmr2.is_empty() || rule(2, false))
    }
}

impl Default for TdxPolicy {
    fn default() -> Self {
        TdxPolicy {
            allow_debug: false,
            accepted_tcb_status: TDX_NON_REVOKED.iter().map(|s| s.to_string()).collect(),
            rejected_advisories: Vec::new(),
            require_collateral: true,
            require_sept_ve_disable: true,
            allow_service_td: false,
            mrtd: Vec::new(),
            rtmr0: Vec::new(),
            rtmr1: Vec::new(),
            rtmr2: Vec::new(),
            rtmr3: Vec::new(),
            mrconfigid: Vec::new(),
            mrowner: Vec::new(),
            mrownerconfig: Vec::new(),
            mrseam: Vec::new(),
            min_tee_tcb_svn: None,
            xfam_allowed: 0x6DBE7,
            report_data: None,
            events: Vec::new(),
        }
    }
}

/// `[sim]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimPolicy {
    /// Accept simulated (insecure) evidence. Default false; only tests and the devnet turn it on.
    pub allow: bool,
    /// Allowed measurements (48-byte hex); empty allows any.
    pub measurements: Vec<HexBytes>,
    /// Expected REPORT_DATA (64-byte hex).
    pub report_data: Option<HexBytes>,
}

/// Checks event rules (`[vtpm] events`, `[tdx] events`), each `(register, kind, digests)`, in order: the register
/// exists (`register_ok`), is named once per type, the type is a known one, and each digest is `len` bytes.
fn check_event_rules(
    key: &str,
    register: &str,
    len: usize,
    alg: &str,
    rules: &[(u32, &Option<String>, &[HexBytes])],
    register_ok: impl Fn(u32) -> Result<()>,
) -> Result<()> {
    for (i, (r, kind, digests)) in rules.iter().enumerate() {
        register_ok(*r)?;
        if rules[..i].iter().any(|(o, k, _)| o == r && k == kind) {
            return Err(Error::Policy(format!("{key}: {register} {r} is named twice")));
        }
        if let Some(k) = kind {
            if crate::vtpm::eventlog::kind_from_name(k).is_none() {
                return Err(Error::Policy(format!("{key}: unknown event type {k:?} (EV_...)")));
            }
        }
        check_lengths(digests, len, &format!("{key} ({alg} digests)"))?;
    }
    Ok(())
}

fn check_lengths(list: &[HexBytes], len: usize, key: &str) -> Result<()> {
    for v in list {
        if v.0.len() != len {
            return Err(Error::Policy(format!("{key}: {} is {} bytes, expected {len}", hex::encode(&v.0), v.0.len())));
        }
    }
    Ok(())
}

impl Policy {
    /// Parses a TOML policy and checks every value's length. Unknown keys are errors (a typo must not
    /// silently weaken a policy).
    pub fn from_toml(text: &str) -> Result<Policy> {
        let p: Policy = toml::from_str(text).map_err(|e| Error::Policy(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks lengths and values.
    pub fn validate(&self) -> Result<()> {
        check_lengths(&self.snp.measurements, 48, "snp.measurements")?;
        check_lengths(&self.snp.host_data, 32, "snp.host_data")?;
        check_lengths(&self.snp.family_ids, 16, "snp.family_ids")?;
        check_lengths(&self.snp.image_ids, 16, "snp.image_ids")?;
        check_lengths(&self.snp.id_key_digests, 48, "snp.id_key_digests")?;
        check_lengths(&self.snp.author_key_digests, 48, "snp.author_key_digests")?;
        check_lengths(self.tdx.min_tee_tcb_svn.as_slice(), 16, "tdx.min_tee_tcb_svn")?;
        check_lengths(self.snp.report_data.as_slice(), 64, "snp.report_data")?;
        for (k, l) in [
            ("tdx.mrtd", &self.tdx.mrtd),
            ("tdx.rtmr0", &self.tdx.rtmr0),
            ("tdx.rtmr1", &self.tdx.rtmr1),
            ("tdx.rtmr2", &self.tdx.rtmr2),
            ("tdx.rtmr3", &self.tdx.rtmr3),
            ("tdx.mrconfigid", &self.tdx.mrconfigid),
            ("tdx.mrowner", &self.tdx.mrowner),
            ("tdx.mrownerconfig", &self.tdx.mrownerconfig),
            ("tdx.mrseam", &self.tdx.mrseam),
        ] {
            check_lengths(l, 48, k)?;
        }
        check_lengths(self.tdx.report_data.as_slice(), 64, "tdx.report_data")?;
        let rtmrs: Vec<_> = self.tdx.events.iter().map(|e| (e.rtmr, &e.kind, e.digests.as_slice())).collect();
        check_event_rules("tdx.events", "RTMR", 48, "sha384", &rtmrs, |r| {
            if r > 3 {
                Err(Error::Policy(format!("tdx.events: RTMR {r} does not exist (0 to 3)")))
            } else {
                Ok(())
            }
        })?;
        check_lengths(&self.sim.measurements, 48, "sim.measurements")?;
        let r = &self.reattestation;
        if r.window_s < 60 {
            return Err(Error::Policy(format!(
                "reattestation.window_s = {}: at least 60 seconds (an idle pod commits a block every 10 s by default; \
                 a re-attestation binds the latest one)",
                r.window_s
            )));
        }
        if r.every_s != 0 && r.every_s < 60 {
            return Err(Error::Policy(format!(
                "reattestation.every_s = {}: 0 (off) or at least 60 seconds (validators refuse a node's \
                 re-attestation within 60 s, or a quarter of every_s, of its last)",
                r.every_s
            )));
        }
        if r.grace_s < 60 {
            return Err(Error::Policy(format!(
                "reattestation.grace_s = {}: at least 60 seconds (after the pod resumes, its nodes need time to \
                 re-attest before any is suspended)",
                r.grace_s
            )));
        }
        if r.max_age_s != 0 && r.every_s != 0 && r.max_age_s < r.every_s.saturating_mul(2).max(120) {
            return Err(Error::Policy(format!(
                "reattestation.max_age_s = {}: 0 (never suspend for age) or at least twice every_s ({} s), so a \
                 validator whose re-attestation fails once is not suspended for it",
                r.max_age_s,
                r.every_s.saturating_mul(2).max(120)
            )));
        }
        if self.snp.measurements_cover == MeasurementsCover::Workload && self.snp.measurements.is_empty() {
            return Err(Error::Policy(
                "snp.measurements_cover = \"workload\" with no snp.measurements: nothing would pin the workload".into(),
            ));
        }
        // PCR 16 and 23 can be reset by software and 17-22 belong to a dynamic launch: policies pin 0-15.
        let static_pcr = |pcr: u32, key: &str| match pcr {
            0..=15 => Ok(()),
            _ => Err(Error::Policy(format!("{key}: PCR {pcr} is not a static boot PCR (0 to 15)"))),
        };
        for (pcr, values) in &self.vtpm.pcrs {
            static_pcr(*pcr, "vtpm.pcrs")?;
            if values.is_empty() {
                return Err(Error::Policy(format!("vtpm.pcrs: PCR {pcr} allows no value (leave it out to allow any)")));
            }
            check_lengths(values, 32, "vtpm.pcrs (sha256 values)")?;
        }
        let pcrs: Vec<_> = self.vtpm.events.iter().map(|e| (e.pcr, &e.kind, e.digests.as_slice())).collect();
        check_event_rules("vtpm.events", "PCR", 32, "sha256", &pcrs, |p| static_pcr(p, "vtpm.events"))?;
        check_lengths(&self.vtpm.ak_names, 34, "vtpm.ak_names (sha256 names: 000b and 32 bytes)")?;
        check_lengths(self.sim.report_data.as_slice(), 64, "sim.report_data")?;
        for s in &self.tdx.accepted_tcb_status {
            if s == "Revoked" {
                return Err(Error::Policy("tdx.accepted_tcb_status: Revoked is never accepted".into()));
            }
            if !TDX_NON_REVOKED.contains(&s.as_str()) {
                return Err(Error::Policy(format!(
                    "tdx.accepted_tcb_status: unknown status {s:?} (known: {})",
                    TDX_NON_REVOKED.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// SHA-256 of the policy's canonical JSON: names the policy a verdict was reached under.
    pub fn digest(&self) -> [u8; 32] {
        crate::sha256(serde_json::to_string(self).expect("policy serialises").as_bytes())
    }
}

/// The REPORT_DATA to expect: the caller's (a per-request nonce or key binding), else the policy's.
pub(crate) fn expected_report_data<'a>(caller: Option<&'a [u8]>, policy: &'a Option<HexBytes>) -> Option<&'a [u8]> {
    caller.or(policy.as_ref().map(|h| h.0.as_slice()))
}

/// `value` is in `allowed`, or `allowed` is empty.
pub(crate) fn allowed(allowed: &[HexBytes], value: &[u8]) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.0 == value)
}
