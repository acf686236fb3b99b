//! Sync: decided blocks served to peers that are behind (in bounded batches), and blocks synced from peers,
//! validated like any proposal before consensus takes them.

use super::*;

/// Most decided blocks served in one sync response.
const MAX_SYNC_BATCH: u64 = 50;

impl App {
    /// `GetDecidedValues`: the decided blocks of heights `start..=end` (at most [`MAX_SYNC_BATCH`]) with their
    /// certificates, up to the first this node does not have.
    pub(super) fn on_get_decided_values(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<RawDecidedValue<PodContext>>, String> {
        let l = self.shared.ledger.lock().expect("not poisoned");
        let mut out = Vec::new();
        let end = end.min(start.saturating_add(MAX_SYNC_BATCH - 1));
        for h in start..=end {
            let (Some(b), Some(c)) = (
                l.aux_get(&height_key(keys::DECIDED, h)).map_err(|e| e.to_string())?,
                l.aux_get(&height_key(keys::CERT, h)).map_err(|e| e.to_string())?,
            ) else {
                break;
            };
            let cert: ExtendedCommitCertificate<PodContext> =
                PodCodec.decode(Bytes::from(c)).map_err(|e| format!("stored certificate {h}: {e}"))?;
            out.push(RawDecidedValue::new(Bytes::from(b), cert));
        }
        Ok(out)
    }

    /// `ProcessSyncedValue`: a decided block a peer sent, validated at this node's height.
    pub(super) fn on_process_synced_value(
        &mut self,
        height: Height,
        round: Round,
        proposer: Address,
        value_bytes: Bytes,
    ) -> Result<SyncedValueOutcome<PodContext>, String> {
        Ok(match Block::decode(&value_bytes) {
            Err(e) => {
                tracing::warn!(%height, "a peer synced a block that does not decode: {e}");
                SyncedValueOutcome::PeerFault
            }
            Ok(b) if height != self.height => {
                tracing::debug!(%height, current = %self.height, block = b.height, "synced block for another height");
                SyncedValueOutcome::LocalTransientError
            }
            Ok(b) => {
                let id = Block::id_of(&value_bytes);
                let validity = self.check(id, &b, height, &proposer, true);
                let pv = ProposedValue { height, round, valid_round: Round::Nil, proposer, value: id, validity };
                self.store_undecided(pv.clone(), value_bytes.to_vec())?;
                SyncedValueOutcome::Verdict(pv)
            }
        })
    }
}
