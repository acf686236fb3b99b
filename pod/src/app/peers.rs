//! Who the node talks to: its configured peers, less the validators the pod has removed. libp2p refuses every peer
//! that is not configured (persistent-peers-only, applied when libp2p identify completes); a removed node's peer
//! is dropped when its removal commits, so its connection closes and redials are refused, and it is restored if
//! the node is admitted again. A suspended node's peer is kept (it follows the pod and re-attests through it). (Before identify refuses a redial, the connection can still be answered: an open
//! gap, docs/security.md.)

use malachitebft_app_channel::app::engine::network::PersistentPeerError;

use super::*;

/// Whether `addr` is the peer of the node whose ledger key is `key` (its `/p2p/` peer id is the key's).
pub(crate) fn peer_is(addr: &Multiaddr, key: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(key) else { return false };
    let Ok(id) = crate::peer_id_of(&key) else { return false };
    let text = addr.to_string();
    let parts: Vec<&str> = text.split('/').collect();
    parts.windows(2).any(|w| w[0] == "p2p" && w[1] == id)
}

impl App {
    /// Notes the peers to drop and restore when the validator set goes from `before` to `after`. A suspended
    /// validator's peer stays: it follows the pod, and re-attests through it.
    pub(super) fn set_changed(&mut self, before: &ValidatorSet, after: &ValidatorSet) {
        let has = |set: &ValidatorSet, k: &PublicKey| set.validators.iter().any(|v| v.public_key == *k);
        let suspended = |k: &PublicKey| self.rules.suspended.values().any(|s| s.key == k.0);
        let mut changes = Vec::new();
        for (from, to, restore) in [(before, after, false), (after, before, true)] {
            for v in from.validators.iter().filter(|v| !has(to, &v.public_key) && !suspended(&v.public_key)) {
                for a in self.cfg.peers.iter().filter(|a| peer_is(a, &v.public_key.0)) {
                    changes.push((restore, a.clone()));
                }
            }
        }
        self.peer_changes.extend(changes);
    }

    /// Notes the peers of the node with `key` to drop (a suspended node the pod removes).
    pub(super) fn drop_peer(&mut self, key: &[u8; 32]) {
        let addrs: Vec<Multiaddr> = self.cfg.peers.iter().filter(|a| peer_is(a, key)).cloned().collect();
        self.peer_changes.extend(addrs.into_iter().map(|a| (false, a)));
    }

    /// Hands the peers the last commit changed to the updater (off the app's loop: the network answers on its
    /// own time).
    pub(super) fn update_peers(&mut self) {
        for change in std::mem::take(&mut self.peer_changes) {
            if let Some(tx) = &self.peer_tx {
                let _ = tx.send(change);
            }
        }
    }
}

/// The task that drops and restores peers, one request at a time and in commit order (a removal and a later
/// re-admission must not arrive the other way round), retrying while the network's request queue is full.
pub(super) fn updater(
    net: tokio::sync::mpsc::Sender<NetworkRequest>,
) -> tokio::sync::mpsc::UnboundedSender<(bool, Multiaddr)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, Multiaddr)>();
    tokio::spawn(async move {
        while let Some((restore, addr)) = rx.recv().await {
            for _ in 0..100 {
                let r = if restore {
                    NetworkRequest::add_persistent_peer(&net, addr.clone()).await
                } else {
                    NetworkRequest::remove_persistent_peer(&net, addr.clone()).await
                };
                match r {
                    Err(malachitebft_app_channel::ConsensusRequestError::Full) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Ok(Ok(())) => tracing::info!(peer = %addr, restore, "the validator set changed: peer updated"),
                    // Already as wanted: a follower admitted (it was a configured peer all along), or a peer
                    // left out at start.
                    Ok(Err(e @ (PersistentPeerError::AlreadyExists | PersistentPeerError::NotFound))) => {
                        tracing::debug!(peer = %addr, restore, "updating a peer: {e}")
                    }
                    Ok(Err(e)) => tracing::warn!(peer = %addr, restore, "updating a peer: {e}"),
                    Err(e) => tracing::warn!(peer = %addr, restore, "updating a peer: {e}"),
                }
                break;
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local;

    #[test]
    fn a_peer_is_known_by_the_peer_id_of_its_key() {
        let key = crate::public_key(&local::seed(1));
        let id = crate::peer_id(&local::seed(1));
        let at = |s: String| s.parse::<Multiaddr>().unwrap();
        assert!(peer_is(&at(format!("/ip4/127.0.0.1/tcp/9/p2p/{id}")), &key));
        assert!(!peer_is(&at(format!("/ip4/127.0.0.1/tcp/9/p2p/{}", crate::peer_id(&local::seed(2)))), &key));
        assert!(!peer_is(&at("/ip4/127.0.0.1/tcp/9".into()), &key), "an address without a peer id names no node");
        assert!(!peer_is(&at(format!("/ip4/127.0.0.1/tcp/9/p2p/{id}")), &[1, 2, 3]));
    }
}
