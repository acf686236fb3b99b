//! The TCG crypto-agile event log: never panics; a log that parses replays in each of its banks, and checked
//! against its own replay it proves every PCR it extends and nothing else; read as a TDX CCEL, its replay into
//! RTMRs agrees with itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_attest::vtpm::eventlog::{check_against, EventLog};
use sigil_attest::vtpm::PcrBanks;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = EventLog::parse(data) {
        let banks: PcrBanks = log.banks.iter().map(|a| (*a, log.replay(*a).expect("a listed bank"))).collect();
        let touched: Vec<u32> = banks.values().next().map(|b| b.keys().copied().collect()).unwrap_or_default();
        let r = check_against(&log, &banks).expect("a log agrees with its own replay");
        assert_eq!(r.verified, touched);
        assert!(r.unverified.is_empty() && r.unexplained.is_empty());
    }
    if let Ok(log) = EventLog::parse_ccel(data) {
        if let Ok((rtmr, _)) = sigil_attest::tdx::ccel::replay(&log) {
            assert!(sigil_attest::tdx::ccel::check(&log, &rtmr).is_ok());
        }
    }
});
