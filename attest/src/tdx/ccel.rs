//! The TDX confidential-computing event log (CCEL): the ACPI table the firmware leaves for the guest
//! (`/sys/firmware/acpi/tables/data/CCEL` in Linux), in the TCG crypto-agile format with SHA-384 digests. An
//! event's index names a measurement register: 1 to 4 are RTMR0 to RTMR3; 0, MRTD, is measured by the TDX module
//! and never logged. Replayed from zero, the log must give the quote's RTMRs: then its events say what the firmware
//! measured (the kernel's Authenticode digest in RTMR1, the command line and initrd in RTMR2).
//!
//! Like the vTPM log, the CCEL is untrusted until it replays to a verified quote's registers; an RTMR it never
//! extends but that is not zero was extended by something that did not log it, and is reported so.

use serde::Serialize;

use super::quote::Quote;
use crate::policy::RtmrRule;
use crate::result::Outcome;
use crate::vtpm::eventlog::{compare_events, kind_from_name, kind_name, EventLog, EV_NO_ACTION};
use crate::vtpm::HashAlg;

/// What a CCEL proves once replayed against a quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CcelReplay {
    /// RTMRs (0-3) the log extends, each equal to the quote's.
    pub verified: Vec<usize>,
    /// RTMRs the log never extends that are not zero in the quote.
    pub unexplained: Vec<usize>,
}

/// The RTMR each event extends (its index less one), refusing an index that names no RTMR.
fn rtmr_of(index: u32, seq: usize) -> Result<usize, String> {
    match index {
        1..=4 => Ok(index as usize - 1),
        i => Err(format!("event {seq} names measurement register {i}; a CCEL extends only RTMR0-3 (1-4)")),
    }
}

/// Replays `log` (SHA-384) into four RTMRs from zero; returns them and which ones it extended.
pub fn replay(log: &EventLog) -> Result<([[u8; 48]; 4], [bool; 4]), String> {
    if !log.banks.contains(&HashAlg::Sha384) {
        return Err("the CCEL has no SHA-384 digests".into());
    }
    let mut rtmr = [[0u8; 48]; 4];
    let mut touched = [false; 4];
    for e in log.events.iter().filter(|e| e.kind != EV_NO_ACTION) {
        let i = rtmr_of(e.pcr, e.seq)?;
        let next = HashAlg::Sha384.extend(&rtmr[i], &e.digests[&HashAlg::Sha384]);
        rtmr[i].copy_from_slice(&next);
        touched[i] = true;
    }
    Ok((rtmr, touched))
}

/// Compares the replay of `log` with the quote's RTMRs: every RTMR the log extends must equal the quote's.
pub fn check(log: &EventLog, quoted: &[[u8; 48]; 4]) -> Result<CcelReplay, String> {
    let (replayed, touched) = replay(log)?;
    for i in 0..4 {
        if touched[i] && replayed[i] != quoted[i] {
            return Err(format!(
                "RTMR{i}: the CCEL replays to {}, the quote has {}",
                hex::encode(replayed[i]),
                hex::encode(quoted[i])
            ));
        }
    }
    Ok(CcelReplay {
        verified: (0..4).filter(|&i| touched[i]).collect(),
        unexplained: (0..4).filter(|&i| !touched[i] && quoted[i] != [0; 48]).collect(),
    })
}

/// The `tdx.ccel` check, after the quote verified: parse and replay `raw`, and list the proven events; then the
/// policy's `rules` on them (`tdx.events.rtmrN`): an RTMR the log does not explain fails its rule, and the events a
/// rule selects must have exactly its SHA-384 digests, in order.
pub(crate) fn check_ccel(out: &mut Outcome, q: &Quote, raw: &[u8], rules: &[RtmrRule]) {
    let log = match EventLog::parse_ccel(raw) {
        Ok(l) => l,
        Err(e) => return out.checks.fail("tdx.ccel", format!("CCEL: {e}")),
    };
    match check(&log, &q.body.rtmr) {
        Err(e) => out.checks.fail("tdx.ccel", e),
        Ok(r) => {
            out.checks.pass("tdx.ccel", format!("replays to the quote's RTMRs {:?}", r.verified));
            let events: Vec<serde_json::Value> = log
                .events
                .iter()
                .filter(|e| e.kind != EV_NO_ACTION)
                .map(|e| {
                    serde_json::json!({
                        "rtmr": e.pcr - 1,
                        "type": kind_name(e.kind),
                        "digest": hex::encode(&e.digests[&HashAlg::Sha384]),
                    })
                })
                .collect();
            out.claim("ccel", serde_json::json!({ "replay": r, "events": events }));
            for rule in rules {
                let name = match &rule.kind {
                    Some(k) => format!("tdx.events.rtmr{}.{k}", rule.rtmr),
                    None => format!("tdx.events.rtmr{}", rule.rtmr),
                };
                if r.unexplained.contains(&(rule.rtmr as usize)) {
                    out.checks.fail(&name, format!("RTMR{} holds a value that no logged event explains", rule.rtmr));
                    continue;
                }
                let kind = rule.kind.as_deref().and_then(kind_from_name);
                let register = format!("RTMR{}", rule.rtmr);
                match compare_events(&register, log.extended(rule.rtmr + 1), kind, HashAlg::Sha384, &rule.digests) {
                    Ok(d) => out.checks.pass(&name, d),
                    Err(e) => out.checks.fail(&name, e),
                }
            }
        }
    }
}
