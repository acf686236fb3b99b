//! Entry points for the fuzz targets (`fuzz/fuzz_targets/pod_codec.rs`, `pod_block.rs`): every decoder of what
//! peers send, and the block rules, on arbitrary bytes. Not an API: each function panics when a property fails,
//! which is what a fuzzer looks for.

use std::sync::{Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_app_channel::app::streaming::StreamMessage;
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{ExtendedCommitCertificate, PolkaCertificate, ValidatorProof};
use malachitebft_app_channel::app::types::sync::{Request, Response, Status};
use sigil_ledger::entry::Encoded;
use sigil_ledger::store::Ledger;

use crate::block::{self, Block, Rules, Slot};
use crate::codec::PodCodec;
use crate::context::{Height, PodContext, ProposalPart};
use crate::{local, state, testing};

/// Decodes `data` as each message a peer can send (and the WAL holds); whatever decodes must re-encode to bytes
/// that decode to the same encoding again (one meaning per message).
pub fn codec(data: &[u8]) {
    fn stable<T>(data: &[u8])
    where
        PodCodec: Codec<T>,
    {
        let c = PodCodec;
        if let Ok(v) = Codec::<T>::decode(&c, Bytes::copy_from_slice(data)) {
            let once = c.encode(&v).expect("a decoded message encodes");
            let back: T = c.decode(once.clone()).expect("an encoded message decodes");
            assert_eq!(c.encode(&back).expect("encodes"), once, "re-encoding changed the message");
        }
    }
    stable::<SignedConsensusMsg<PodContext>>(data);
    stable::<LivenessMsg<PodContext>>(data);
    stable::<ProposalPart>(data);
    stable::<StreamMessage<ProposalPart>>(data);
    stable::<ExtendedCommitCertificate<PodContext>>(data);
    stable::<Response<PodContext>>(data);
    stable::<Request<PodContext>>(data);
    stable::<Status<PodContext>>(data);
    stable::<ValidatorProof<PodContext>>(data);
    stable::<ProposedValue<PodContext>>(data);
    stable::<PolkaCertificate<PodContext>>(data);
}

struct Pod {
    ledger: Ledger,
    rules: Rules,
}

/// A local pod's ledger (4 validators, the `probe` applet deployed) and its rules, made once.
fn pod() -> MutexGuard<'static, Pod> {
    static POD: OnceLock<Mutex<Pod>> = OnceLock::new();
    let pod = POD.get_or_init(|| {
        let genesis = local::genesis("p", 4);
        let mut ledger = Ledger::in_memory(&genesis).expect("a genesis ledger");
        let (deploy, code) = testing::deployment(&testing::probe(), testing::PROBE_CODE, 0);
        let aux = vec![
            (state::applet_key("probe"), 1u64.to_be_bytes().to_vec()),
            (state::code_key(&testing::probe().code_digest), code.code),
        ];
        ledger.append_block_with(&[Encoded::new(testing::approved("p", deploy))], aux, vec![], None).expect("deploy");
        // The rules as a node loads them from its ledger at start.
        let rules = crate::app::load_rules(&ledger).expect("the local pod's rules");
        Mutex::new(Pod { ledger, rules })
    });
    pod.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Decodes `data` as a block: what decodes is canonical, and every block rule runs on it without panicking (at
/// the height and time it claims, by the proposer consensus would choose there).
pub fn block(data: &[u8]) {
    let Ok(b) = Block::decode(data) else { return };
    assert_eq!(b.encode(), data, "a block decoded from bytes that are not its encoding");
    let p = pod();
    let proposer = p.rules.set.validators[b.height as usize % p.rules.set.validators.len()].address;
    let slot = Slot { height: Height(b.height), proposer, now_ms: b.time_ms.saturating_add(100) };
    let _ = block::validate(&b, &p.ledger, &p.rules, &slot, false);
    // Entry by entry too, past a bad header, so the entry rules see whatever the fuzzer builds.
    let mut checker = block::Checker::new(&p.ledger, &p.rules, b.time_ms);
    for (i, item) in b.entries.iter().enumerate() {
        let _ = checker.item(i, item);
    }
    drop(checker);
    drop(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_points_take_real_messages_and_garbage() {
        let b = Block {
            pod: "p".into(),
            height: 2,
            proposer: vec![0; 32].into(),
            time_ms: 1_764_000_000_500,
            parent_size: 2,
            parent_root: pod().ledger.root(),
            entries: vec![],
        };
        block(&b.encode());
        block(b"\xa0");
        codec(&b.encode());
        codec(&[0x82, 0x01, 0x02]);
    }
}
