//! Receipt decoder and verifier: never panic on any bytes, and nothing decoded from mutated bytes verifies
//! unless it is the pinned receipt itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (receipt, genesis) = FIXTURE.get_or_init(|| {
        let d = concat!(env!("CARGO_MANIFEST_DIR"), "/../ledger/testdata/conformance");
        let read = |f: &str| hex::decode(std::fs::read_to_string(format!("{d}/{f}")).unwrap().trim()).unwrap();
        (read("receipt.cose.hex"), read("receipt-genesis.cbor.hex"))
    });
    if let Ok(r) = sigil_ledger::receipt::Receipt::decode(data) {
        let report = r.verify(genesis);
        if report.valid {
            // Only encodings of the same statement may verify: same entry, index and checkpoint.
            let pinned = sigil_ledger::receipt::Receipt::decode(receipt).unwrap();
            assert_eq!((r.entry, r.index), (pinned.entry, pinned.index), "a different receipt verified");
            assert_eq!(r.checkpoint.checkpoint, pinned.checkpoint.checkpoint);
        }
    }
});
