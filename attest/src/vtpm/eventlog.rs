//! The TCG PC Client Platform Firmware Profile event log, crypto-agile format (spec 2.0, section 10): what the
//! firmware and boot loader extended into PCRs 0-15, one event at a time, with a digest per PCR bank.
//!
//! The log is untrusted: it is worth something only once [`check_against`] has replayed it to the PCR values a
//! verified quote signed. Then each event's *digest* is proven (for the PCRs the quote covers); its *data* is what
//! the log says was measured, which, for most event types, nothing binds to the digest, so policies match digests.
//!
//! Parsed strictly: the first event is the SHA-1-format `Spec ID Event03` header that lists the banks and their
//! digest sizes; every later event carries exactly one digest per listed bank; nothing follows the last event
//! except an unused, uniformly `00` or `FF` log area. A `StartupLocality` event sets PCR 0's starting value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{reset_value, HashAlg, PcrBanks, PCR_COUNT};
use crate::error::ParseError;
use crate::reader::Reader;

/// Largest log read.
pub const MAX_LOG: usize = 1 << 20;
/// Most events read.
pub const MAX_EVENTS: usize = 10_000;

const WHAT: &str = "TCG event log";
const SPEC_ID: &[u8; 16] = b"Spec ID Event03\0";
const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// `EV_NO_ACTION`: logged, never extended.
pub const EV_NO_ACTION: u32 = 0x3;
/// `EV_SEPARATOR`.
pub const EV_SEPARATOR: u32 = 0x4;
/// `EV_IPL`: what systemd-stub logs for the kernel command line (PCR 12) and boot loaders for theirs.
pub const EV_IPL: u32 = 0xD;
/// `EV_EFI_BOOT_SERVICES_APPLICATION`: a UEFI application (a UKI, a boot loader); its digest is the image's
/// Authenticode hash.
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;

/// The event types the PC Client profile defines, with their names.
pub const KINDS: &[(u32, &str)] = &[
    (0x0, "EV_PREBOOT_CERT"),
    (0x1, "EV_POST_CODE"),
    (0x2, "EV_UNUSED"),
    (EV_NO_ACTION, "EV_NO_ACTION"),
    (EV_SEPARATOR, "EV_SEPARATOR"),
    (0x5, "EV_ACTION"),
    (0x6, "EV_EVENT_TAG"),
    (0x7, "EV_S_CRTM_CONTENTS"),
    (0x8, "EV_S_CRTM_VERSION"),
    (0x9, "EV_CPU_MICROCODE"),
    (0xA, "EV_PLATFORM_CONFIG_FLAGS"),
    (0xB, "EV_TABLE_OF_DEVICES"),
    (0xC, "EV_COMPACT_HASH"),
    (EV_IPL, "EV_IPL"),
    (0xE, "EV_IPL_PARTITION_DATA"),
    (0xF, "EV_NONHOST_CODE"),
    (0x10, "EV_NONHOST_CONFIG"),
    (0x11, "EV_NONHOST_INFO"),
    (0x12, "EV_OMIT_BOOT_DEVICE_EVENTS"),
    (0x8000_0001, "EV_EFI_VARIABLE_DRIVER_CONFIG"),
    (0x8000_0002, "EV_EFI_VARIABLE_BOOT"),
    (EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION"),
    (0x8000_0004, "EV_EFI_BOOT_SERVICES_DRIVER"),
    (0x8000_0005, "EV_EFI_RUNTIME_SERVICES_DRIVER"),
    (0x8000_0006, "EV_EFI_GPT_EVENT"),
    (0x8000_0007, "EV_EFI_ACTION"),
    (0x8000_0008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"),
    (0x8000_0009, "EV_EFI_HANDOFF_TABLES"),
    (0x8000_000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"),
    (0x8000_000B, "EV_EFI_HANDOFF_TABLES2"),
    (0x8000_000C, "EV_EFI_VARIABLE_BOOT2"),
    (0x8000_000D, "EV_EFI_GPT_EVENT2"),
    (0x8000_0010, "EV_EFI_HCRTM_EVENT"),
    (0x8000_00E0, "EV_EFI_VARIABLE_AUTHORITY"),
    (0x8000_00E1, "EV_EFI_SPDM_FIRMWARE_BLOB"),
    (0x8000_00E2, "EV_EFI_SPDM_FIRMWARE_CONFIG"),
];

/// The name of an event type (`EV_SEPARATOR`), or its number in hex.
pub fn kind_name(kind: u32) -> String {
    match KINDS.iter().find(|(k, _)| *k == kind) {
        Some((_, name)) => name.to_string(),
        None => format!("{kind:#010x}"),
    }
}

/// The event type a name (`EV_EFI_BOOT_SERVICES_APPLICATION`) stands for.
pub fn kind_from_name(name: &str) -> Option<u32> {
    KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
}

/// One event after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Its position in the log (the header is 0).
    pub seq: usize,
    /// The PCR it extends.
    pub pcr: u32,
    /// Its type (`EV_*`).
    pub kind: u32,
    /// One digest per bank the header lists that this crate knows (others are read and skipped).
    pub digests: BTreeMap<HashAlg, Vec<u8>>,
    /// The event data, unverified.
    pub data: Vec<u8>,
}

/// A parsed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLog {
    /// The banks the header lists that this crate knows, with their digest sizes checked.
    pub banks: Vec<HashAlg>,
    /// PCR 0's locality at startup (from a `StartupLocality` event), 0 if the log has none.
    pub startup_locality: u8,
    /// The events after the header, in order.
    pub events: Vec<Event>,
}

impl EventLog {
    /// Parses a crypto-agile log (`/sys/kernel/security/tpm0/binary_bios_measurements`, the UEFI
    /// `EFI_TCG2_EVENT_LOG_FORMAT_TCG_2` log).
    pub fn parse(bytes: &[u8]) -> Result<EventLog, ParseError> {
        Self::parse_with(bytes, 0)
    }

    /// Parses a TDX CC event log: the same format, whose header event names measurement register 1 (the firmware
    /// writes it so; index 0 would be MRTD).
    pub fn parse_ccel(bytes: &[u8]) -> Result<EventLog, ParseError> {
        Self::parse_with(bytes, 1)
    }

    fn parse_with(bytes: &[u8], header_index: u32) -> Result<EventLog, ParseError> {
        if bytes.len() > MAX_LOG {
            return Err(ParseError::Field { what: WHAT, detail: format!("{} bytes exceeds {MAX_LOG}", bytes.len()) });
        }
        let mut r = Reader::new(bytes, WHAT);
        let sizes = header(&mut r, header_index)?;
        let banks: Vec<HashAlg> = sizes.iter().filter_map(|(id, _)| HashAlg::from_id(*id)).collect();
        let mut events = Vec::new();
        let mut startup_locality = None;
        loop {
            let rest = &bytes[r.used()..];
            if rest.is_empty() || rest.iter().all(|&b| b == 0) || rest.iter().all(|&b| b == 0xFF) {
                break;
            }
            if events.len() == MAX_EVENTS {
                return Err(ParseError::Field { what: WHAT, detail: format!("more than {MAX_EVENTS} events") });
            }
            let seq = events.len() + 1;
            let e = event(&mut r, &sizes, seq)?;
            if e.kind == EV_NO_ACTION && e.pcr == 0 && e.data.starts_with(STARTUP_LOCALITY) {
                if events.iter().any(|x: &Event| x.pcr == 0 && x.kind != EV_NO_ACTION) || startup_locality.is_some() {
                    return Err(ParseError::Field {
                        what: WHAT,
                        detail: format!("event {seq}: a StartupLocality event after PCR 0 was extended or set"),
                    });
                }
                match e.data.get(16..) {
                    Some(&[loc]) => startup_locality = Some(loc),
                    _ => {
                        return Err(ParseError::Field {
                            what: WHAT,
                            detail: format!("event {seq}: a StartupLocality event must carry one locality byte"),
                        })
                    }
                }
            }
            events.push(e);
        }
        Ok(EventLog { banks, startup_locality: startup_locality.unwrap_or(0), events })
    }

    /// The events extended into `pcr`, in order (not `EV_NO_ACTION`).
    pub fn extended(&self, pcr: u32) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.pcr == pcr && e.kind != EV_NO_ACTION)
    }

    /// The value of every PCR the log extends, replayed in the bank `alg`; `None` if the log has no such bank.
    pub fn replay(&self, alg: HashAlg) -> Option<BTreeMap<u32, Vec<u8>>> {
        if !self.banks.contains(&alg) {
            return None;
        }
        let mut pcrs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for e in self.events.iter().filter(|e| e.kind != EV_NO_ACTION) {
            let v = pcrs.entry(e.pcr).or_insert_with(|| self.initial(alg, e.pcr));
            *v = alg.extend(v, &e.digests[&alg]);
        }
        Some(pcrs)
    }

    fn initial(&self, alg: HashAlg, pcr: u32) -> Vec<u8> {
        let mut v = reset_value(alg, pcr);
        if pcr == 0 {
            *v.last_mut().expect("digests are not empty") = self.startup_locality;
        }
        v
    }
}

/// The first event: `Spec ID Event03`, with its list of (algorithm id, digest size).
fn header(r: &mut Reader<'_>, header_index: u32) -> Result<Vec<(u16, u16)>, ParseError> {
    let field = |detail: String| ParseError::Field { what: WHAT, detail };
    let pcr = r.u32()?;
    let kind = r.u32()?;
    let digest = r.take(20)?;
    let size = r.u32()?;
    let mut h = r.sub(size as usize, "TCG event log header (TCG_EfiSpecIDEvent)")?;
    let signature = h.take(16).ok();
    if pcr != header_index || kind != EV_NO_ACTION || digest.iter().any(|&b| b != 0) || signature != Some(&SPEC_ID[..])
    {
        return Err(field(
            "the first event is not the crypto-agile header (EV_NO_ACTION in PCR 0, \"Spec ID Event03\"): a SHA-1-only \
             (TPM 1.2 format) log is not accepted"
                .into(),
        ));
    }
    h.take(4 + 4)?; // platformClass, specVersionMinor/Major, specErrata, uintnSize
    let n = h.u32()?;
    if n == 0 || n > 16 {
        return Err(field(format!("the header lists {n} algorithms (1 to 16 expected)")));
    }
    let mut sizes: Vec<(u16, u16)> = Vec::new();
    for _ in 0..n {
        let (id, size) = (h.u16()?, h.u16()?);
        if let Some(alg) = HashAlg::from_id(id) {
            if usize::from(size) != alg.size() {
                return Err(field(format!("the header gives {alg} digests {size} bytes, not {}", alg.size())));
            }
        }
        if size == 0 || size > 64 || sizes.iter().any(|(i, _)| *i == id) {
            return Err(field(format!("the header lists algorithm {id:#06x} with size {size} (or twice)")));
        }
        sizes.push((id, size));
    }
    if !sizes.iter().any(|(id, _)| HashAlg::from_id(*id).is_some()) {
        return Err(field("the header lists no SHA-1/256/384/512 bank".into()));
    }
    let vendor = h.take(1)?[0];
    h.take(usize::from(vendor))?;
    h.expect_empty()?;
    Ok(sizes)
}

/// A `TCG_PCR_EVENT2`.
fn event(r: &mut Reader<'_>, sizes: &[(u16, u16)], seq: usize) -> Result<Event, ParseError> {
    let field = |detail: String| ParseError::Field { what: WHAT, detail: format!("event {seq}: {detail}") };
    let pcr = r.u32()?;
    if pcr >= PCR_COUNT {
        return Err(field(format!("PCR {pcr}; a PC Client TPM has 24")));
    }
    let kind = r.u32()?;
    let count = r.u32()?;
    if count as usize != sizes.len() {
        return Err(field(format!("{count} digests, the header lists {} banks", sizes.len())));
    }
    let mut digests = BTreeMap::new();
    let mut seen = Vec::with_capacity(sizes.len());
    for _ in 0..count {
        let id = r.u16()?;
        let size = sizes
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| *s)
            .ok_or_else(|| field(format!("a digest of algorithm {id:#06x}, which the header does not list")))?;
        if seen.contains(&id) {
            return Err(field(format!("two digests of algorithm {id:#06x}")));
        }
        seen.push(id);
        let d = r.take(usize::from(size))?;
        if let Some(alg) = HashAlg::from_id(id) {
            digests.insert(alg, d.to_vec());
        }
    }
    let size = r.u32()?;
    let data = r.take(size as usize)?.to_vec();
    if kind == EV_NO_ACTION && digests.values().any(|d| d.iter().any(|&b| b != 0)) {
        return Err(field("an EV_NO_ACTION event with a digest that is not zero (it is never extended)".into()));
    }
    Ok(Event { seq, pcr, kind, digests, data })
}

/// What a log proves once replayed against a quote's PCRs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The bank the log was replayed in (the strongest both have).
    #[serde(serialize_with = "super::ser::alg")]
    pub alg: HashAlg,
    /// PCRs the log extends whose replayed value the quote signed: their events are proven.
    pub verified: Vec<u32>,
    /// PCRs the log extends that the quote does not cover: their events prove nothing.
    pub unverified: Vec<u32>,
    /// PCRs the quote covers that the log never extends (an OS may extend them with its own log).
    pub unexplained: Vec<u32>,
}

/// Replays `log` and compares it with `quoted` (PCR values a verified quote signed): every PCR that both the log
/// extends and the quote covers must replay to exactly the quoted value, in every bank both have. The banks are
/// replayed from the strongest down; the result names the strongest.
pub fn check_against(log: &EventLog, quoted: &PcrBanks) -> Result<Replayed, String> {
    let mut common: Vec<HashAlg> = quoted.keys().filter(|a| log.banks.contains(a)).copied().collect();
    common.sort_by(|a, b| b.cmp(a));
    let Some(&strongest) = common.first() else {
        return Err(format!(
            "the log has no bank the quote covers (log: {}; quote: {})",
            names(log.banks.iter()),
            names(quoted.keys())
        ));
    };
    let mut strongest_replay = None;
    for alg in &common {
        let replayed = log.replay(*alg).expect("the log has the bank");
        for (pcr, want) in &quoted[alg] {
            if let Some(got) = replayed.get(pcr) {
                if got != want {
                    return Err(format!(
                        "PCR {pcr} ({alg}): the log replays to {}, the quote signed {}",
                        hex::encode(got),
                        hex::encode(want)
                    ));
                }
            }
        }
        strongest_replay.get_or_insert(replayed);
    }
    let replayed = strongest_replay.expect("the strongest bank was replayed first");
    let covered = &quoted[&strongest];
    Ok(Replayed {
        alg: strongest,
        verified: replayed.keys().filter(|p| covered.contains_key(p)).copied().collect(),
        unverified: replayed.keys().filter(|p| !covered.contains_key(p)).copied().collect(),
        unexplained: covered.keys().filter(|p| !replayed.contains_key(p)).copied().collect(),
    })
}

fn names<'a>(algs: impl Iterator<Item = &'a HashAlg>) -> String {
    let v: Vec<&str> = algs.map(|a| a.name()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Builds a crypto-agile log from events (for tests and for tools that assemble expected logs): a `Spec ID
/// Event03` header listing `banks`, then each `(pcr, kind, data)` with the digest of `data` in every bank (zeros
/// for `EV_NO_ACTION`, which is never extended).
pub fn encode(banks: &[HashAlg], events: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut spec = SPEC_ID.to_vec();
    spec.extend(0u32.to_le_bytes()); // platformClass: client
    spec.extend([0, 2, 0, 2]); // spec version 2.0, errata 0, uintnSize 2 (64-bit)
    spec.extend((banks.len() as u32).to_le_bytes());
    for a in banks {
        spec.extend(a.id().to_le_bytes());
        spec.extend((a.size() as u16).to_le_bytes());
    }
    spec.push(0);
    let mut out = Vec::new();
    out.extend(0u32.to_le_bytes());
    out.extend(EV_NO_ACTION.to_le_bytes());
    out.extend([0; 20]);
    out.extend((spec.len() as u32).to_le_bytes());
    out.extend(spec);
    for (pcr, kind, data) in events {
        out.extend(pcr.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend((banks.len() as u32).to_le_bytes());
        for a in banks {
            out.extend(a.id().to_le_bytes());
            match *kind {
                EV_NO_ACTION => out.extend(vec![0; a.size()]),
                _ => out.extend(a.digest(&[data])),
            }
        }
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(*data);
    }
    out
}

/// `EV_EFI_ACTION`: a fixed string the firmware logs (boot-option calls and returns, ExitBootServices).
pub const EV_EFI_ACTION: u32 = 0x8000_0007;
/// `EV_EFI_GPT_EVENT`: the boot disk's GPT header and partition entries.
pub const EV_EFI_GPT_EVENT: u32 = 0x8000_0006;

/// The `EV_EFI_ACTION` strings the TCG PC Client profile defines for the boot path (PCR 4, and RTMR1 in a TD).
const BOOT_ACTIONS: &[&[u8]] = &[
    b"Calling EFI Application from Boot Option",
    b"Returning from EFI Application from Boot Option",
    b"Exit Boot Services Invocation",
    b"Exit Boot Services Returned with Failure",
    b"Exit Boot Services Returned with Success",
];

/// Whether an event's digest is provably not code: the verifier recomputes it from data whose form it knows. A
/// separator (4 zero bytes), one of the boot-path `EV_EFI_ACTION` strings, or a GPT event (its header, "EFI PART"),
/// each with the digest of its data in bank `alg`. The type and data of an event are not measured, only its digest:
/// any other event, an application relabelled among them, could stand for anything.
pub fn provably_not_code(e: &Event, alg: HashAlg) -> bool {
    let data_ok = match e.kind {
        EV_SEPARATOR => e.data == [0, 0, 0, 0],
        EV_EFI_ACTION => BOOT_ACTIONS.contains(&e.data.as_slice()),
        EV_EFI_GPT_EVENT => e.data.starts_with(b"EFI PART"),
        _ => false,
    };
    data_ok && e.digests.get(&alg).is_some_and(|d| *d == alg.digest(&[&e.data]))
}

/// The events of a register that a rule of type `kind` looks at, in log order (`kind` absent: all of them). A rule
/// of one type is sound only if every other event in the register is provably not code ([`provably_not_code`]):
/// since types are not measured, code that extended the register after the firmware could log its own measurement
/// under another type and the expected digests under the rule's. So any other event refuses the rule, naming it.
pub fn select_events<'a>(
    register: &str,
    events: impl Iterator<Item = &'a Event>,
    kind: Option<u32>,
    alg: HashAlg,
) -> Result<Vec<&'a Event>, String> {
    let Some(kind) = kind else { return Ok(events.collect()) };
    let mut got = Vec::new();
    for (i, e) in events.enumerate() {
        if e.kind == kind {
            got.push(e);
        } else if !provably_not_code(e, alg) {
            return Err(format!(
                "event {} of {register} ({}) is not of the rule's type and its digest is not provably a separator, a boot action or a GPT header: a rule on one type cannot tell what it stands for",
                i + 1,
                kind_name(e.kind)
            ));
        }
    }
    Ok(got)
}

/// A policy's event rule on a register's `events` (in log order): the events of type `kind` ([`select_events`])
/// have exactly the digests `want` in bank `alg`, in order. `register` names the register in messages ("PCR 4",
/// "RTMR1"). Says which event differs first, or what is missing or extra.
pub fn compare_events<'a>(
    register: &str,
    events: impl Iterator<Item = &'a Event>,
    kind: Option<u32>,
    alg: HashAlg,
    want: &[crate::policy::HexBytes],
) -> Result<String, String> {
    fn digest(e: &Event, alg: HashAlg) -> &[u8] {
        e.digests.get(&alg).map(Vec::as_slice).unwrap_or_default()
    }
    let got = select_events(register, events, kind, alg)?;
    let want: Vec<&[u8]> = want.iter().map(|d| d.0.as_slice()).collect();
    let differs = (0..got.len().max(want.len())).find(|&i| got.get(i).map(|e| digest(e, alg)) != want.get(i).copied());
    match differs {
        None => Ok(format!("{} events, as the policy lists them", got.len())),
        Some(i) => Err(match (got.get(i), want.get(i)) {
            (Some(e), Some(w)) => format!(
                "event {} of {register} ({}) has digest {}, the policy expects {}",
                i + 1,
                kind_name(e.kind),
                hex::encode(digest(e, alg)),
                hex::encode(w)
            ),
            (Some(e), None) => format!(
                "{register} has an event the policy does not list: {} ({})",
                kind_name(e.kind),
                hex::encode(digest(e, alg))
            ),
            _ => format!("{register} has {} events, the policy lists {}", got.len(), want.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_on_one_type_refuses_a_log_whose_other_events_could_be_code() {
        let apps = EV_EFI_BOOT_SERVICES_APPLICATION;
        let (uki, evil) = (b"the UKI".as_slice(), b"other code".as_slice());
        let select = |events: &[(u32, u32, &[u8])]| {
            let log = EventLog::parse(&encode(&[HashAlg::Sha256], events)).unwrap();
            select_events("PCR 4", log.extended(4), Some(apps), HashAlg::Sha256)
                .map(|got| got.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
        };
        // What OVMF logs in PCR 4 around the applications: actions and the separator, each recomputed from its data.
        let honest: [(u32, u32, &[u8]); 5] = [
            (4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option"),
            (4, EV_SEPARATOR, &[0, 0, 0, 0]),
            (4, EV_EFI_ACTION, b"Returning from EFI Application from Boot Option"),
            (4, EV_EFI_GPT_EVENT, b"EFI PART and the partition entries"),
            (4, apps, uki),
        ];
        assert_eq!(select(&honest).unwrap(), [uki.to_vec()]);
        // Code logged under another type (types are not measured, so code that ran could log itself so and the
        // expected digest as the application): refused, whatever the type.
        for kind in [0x6, EV_IPL, EV_EFI_ACTION, EV_SEPARATOR, EV_EFI_GPT_EVENT, 0x8000_0004] {
            let relabelled = [(4, kind, evil), (4, apps, uki)];
            let err = select(&relabelled).unwrap_err();
            assert!(err.starts_with("event 1 of PCR 4"), "{kind:#x}: {err}");
        }
        // A separator that is not 4 zero bytes, or an action string the profile does not define.
        assert!(select(&[(4, EV_SEPARATOR, &[1, 0, 0, 0]), (4, apps, uki)]).is_err());
        assert!(select(&[(4, EV_EFI_ACTION, b"Calling EFI Application"), (4, apps, uki)]).is_err());
        // The right data under a digest that is not its hash.
        let mut log = EventLog::parse(&encode(&[HashAlg::Sha256], &honest)).unwrap();
        log.events[1].digests.insert(HashAlg::Sha256, vec![7; 32]);
        assert!(select_events("PCR 4", log.extended(4), Some(apps), HashAlg::Sha256).is_err());
        // A rule on every event takes them all, whatever they are: their order and digests are what it pins.
        let log = EventLog::parse(&encode(&[HashAlg::Sha256], &[(4, 0x6, evil), (4, apps, uki)])).unwrap();
        assert_eq!(select_events("PCR 4", log.extended(4), None, HashAlg::Sha256).unwrap().len(), 2);
    }

    const BANKS: &[HashAlg] = &[HashAlg::Sha1, HashAlg::Sha256];

    #[test]
    fn a_log_replays_each_pcr_from_its_reset_value() {
        let log = EventLog::parse(&encode(BANKS, &[(4, 0x8000_0003, b"uki"), (4, EV_SEPARATOR, &[0; 4])])).unwrap();
        assert_eq!(log.banks, BANKS);
        let want = HashAlg::Sha256.extend(
            &HashAlg::Sha256.extend(&[0; 32], &HashAlg::Sha256.digest(&[b"uki"])),
            &HashAlg::Sha256.digest(&[&[0; 4]]),
        );
        assert_eq!(log.replay(HashAlg::Sha256).unwrap(), BTreeMap::from([(4, want)]));
        assert_eq!(log.replay(HashAlg::Sha384), None);
    }

    #[test]
    fn startup_locality_sets_pcr_0s_first_value_and_no_action_extends_nothing() {
        let mut loc = STARTUP_LOCALITY.to_vec();
        loc.push(3);
        let log = EventLog::parse(&encode(BANKS, &[(0, EV_NO_ACTION, &loc), (0, 0x8, b"crtm")])).unwrap();
        assert_eq!(log.startup_locality, 3);
        let mut start = vec![0u8; 32];
        start[31] = 3;
        let want = HashAlg::Sha256.extend(&start, &HashAlg::Sha256.digest(&[b"crtm"]));
        assert_eq!(log.replay(HashAlg::Sha256).unwrap()[&0], want);

        let late = encode(BANKS, &[(0, 0x8, b"crtm"), (0, EV_NO_ACTION, &loc)]);
        assert!(EventLog::parse(&late).unwrap_err().to_string().contains("StartupLocality"));
    }

    #[test]
    fn the_log_area_may_end_in_unused_bytes_but_nothing_else() {
        let log = encode(BANKS, &[(7, EV_SEPARATOR, &[0; 4])]);
        for pad in [0x00u8, 0xFF] {
            let mut padded = log.clone();
            padded.extend([pad; 100]);
            assert_eq!(EventLog::parse(&padded).unwrap().events.len(), 1);
        }
        let mut junk = log.clone();
        junk.extend([0u8; 40]);
        junk[log.len() + 20] = 0xFF; // zeros with one byte set: not an unused area, and not an event
        assert!(EventLog::parse(&junk).is_err());
        assert!(EventLog::parse(&log[..log.len() - 1]).is_err(), "a cut event");
    }

    #[test]
    fn an_event_must_carry_one_digest_per_listed_bank() {
        let log = encode(BANKS, &[(7, EV_SEPARATOR, &[0; 4])]);
        let count_at = encode(BANKS, &[]).len() + 8;
        let mut short = log.clone();
        short[count_at] = 1;
        assert!(EventLog::parse(&short).unwrap_err().to_string().contains("1 digests, the header lists 2"));
        // Two SHA-1 digests (the second where the SHA-256 one belongs), the sizes kept consistent.
        let dup = encode(&[HashAlg::Sha1, HashAlg::Sha1], &[]);
        assert!(EventLog::parse(&dup).unwrap_err().to_string().contains("twice"), "in the header");
        let sha1_twice = {
            let one = encode(&[HashAlg::Sha1], &[(7, EV_SEPARATOR, &[0; 4])]);
            let h = encode(&[HashAlg::Sha1], &[]).len();
            let mut b = encode(&[HashAlg::Sha1], &[]);
            b.extend(&one[h..h + 8]); // pcr, type
            b.extend(2u32.to_le_bytes());
            b.extend(&one[h + 12..h + 12 + 22]);
            b.extend(&one[h + 12..h + 12 + 22]);
            b.extend(&one[h + 34..]);
            b
        };
        let err = EventLog::parse(&sha1_twice).unwrap_err().to_string();
        assert!(err.contains("2 digests, the header lists 1"), "{err}");
    }

    #[test]
    fn an_ev_no_action_event_carries_zero_digests() {
        let log = encode(BANKS, &[(4, EV_NO_ACTION, b"note")]);
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.extended(4).count(), 0, "logged, never extended");
        // A digest there could pass for a measurement in a listing or a rule: refused.
        let mut with_digest = log.clone();
        let sha256_at = encode(BANKS, &[]).len() + 12 + 2 + 20 + 2;
        with_digest[sha256_at] = 1;
        assert!(EventLog::parse(&with_digest).unwrap_err().to_string().contains("EV_NO_ACTION"));
    }

    #[test]
    fn a_sha1_only_log_is_refused() {
        let mut legacy = Vec::new();
        legacy.extend(0u32.to_le_bytes());
        legacy.extend(0x8u32.to_le_bytes());
        legacy.extend([1; 20]);
        legacy.extend(0u32.to_le_bytes());
        assert!(EventLog::parse(&legacy).unwrap_err().to_string().contains("SHA-1-only"));
    }

    #[test]
    fn replay_is_checked_against_every_common_bank() {
        let log = EventLog::parse(&encode(BANKS, &[(4, 0x8000_0003, b"uki"), (9, EV_IPL, b"cmdline")])).unwrap();
        let mut quoted = PcrBanks::new();
        for a in BANKS {
            let mut bank = log.replay(*a).unwrap();
            bank.remove(&9);
            bank.insert(11, vec![0; a.size()]);
            quoted.insert(*a, bank);
        }
        let r = check_against(&log, &quoted).unwrap();
        assert_eq!((r.alg, r.verified, r.unverified, r.unexplained), (HashAlg::Sha256, vec![4], vec![9], vec![11]));

        let mut sha1_wrong = quoted.clone();
        sha1_wrong.get_mut(&HashAlg::Sha1).unwrap().insert(4, vec![9; 20]);
        assert!(check_against(&log, &sha1_wrong).unwrap_err().contains("PCR 4 (sha1)"));

        let only384 = PcrBanks::from([(HashAlg::Sha384, BTreeMap::new())]);
        assert!(check_against(&log, &only384).unwrap_err().contains("no bank the quote covers"));
    }
}
