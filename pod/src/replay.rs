//! Re-execution (#17 item 10): where the pod's policy asks for it (`[execution] replay_deterministic`), a
//! validator runs every invocation of a `deterministic` applet again before it votes for the block, and refuses
//! the block when the run's outcome, output hash, write-set hash or fuel differs from what the executor recorded.
//! One compromised executor then cannot commit an output or a write its applet did not produce.
//!
//! The pod holds no wasm engine: the node gives it a [`Replay`] (its runtime). The run sees the state the block
//! rules have just checked the invocation's reads against: each key it recorded reading, at the version it recorded
//! (those are the current versions, or the block is refused before this), and each listing it recorded. A key or
//! listing the executor did not record is absent to the run, so an executor that hides a read gets a different
//! write set from the replay and its block is refused. Inputs are the request's (caller, method, arguments, request
//! hash, which seeds the applet's randomness) and the executor's clock (`at_ms`).
//!
//! Not replayed: what this node ran or checked itself; a block a quorum decided (its commit, a synced block with
//! its certificate: the quorum's honest validators replayed it, and it must commit here whatever this node's
//! runtime can do); a run recorded as `deadline` (wall-clock time is not replayable; it must have no output and
//! writes nothing); a stack overflow on either side (where native frames run out depends on the CPU the code was
//! compiled for). A replay that cannot run, or runs past its deadline, refuses the block at this validator: it
//! never votes for what it could not check.

use std::collections::BTreeMap;
use std::sync::Arc;

use sigil_ledger::entry::Invocation;
use sigil_ledger::Hash;
use sigil_runtime::manifest::Manifest;
use sigil_runtime::state::State;

/// What a validator runs again, from the invocation and its signed request.
#[derive(Clone, Debug)]
pub struct ReplayCall {
    /// SHA-256 of the signed request (seeds the applet's randomness).
    pub request_hash: Hash,
    /// The caller's key.
    pub caller: [u8; 32],
    /// The method.
    pub method: String,
    /// The request's arguments.
    pub input: Vec<u8>,
    /// The executor's clock when it ran (`Invocation::at_ms`).
    pub now_ms: u64,
}

/// What the run produced, as its receipt records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// `ok`, or the error or trap that ended it (`Invocation::outcome`'s form).
    pub outcome: String,
    /// SHA-256 of the output.
    pub output_hash: Hash,
    /// SHA-256 of the write set's canonical encoding.
    pub write_set_hash: Hash,
    /// Fuel it consumed.
    pub fuel_used: u64,
}

/// Runs an invocation again: the node's wasm runtime.
pub trait Replay: Send + Sync {
    /// Runs `call` on the applet `manifest` describes, whose module is `code`, against `state`. `Err` when it could
    /// not run at all (the module does not load, the host is out of resources).
    fn replay(
        &self,
        manifest: &Manifest,
        code: &[u8],
        call: &ReplayCall,
        state: Arc<dyn State>,
    ) -> Result<Replayed, String>;
}

/// The replayer a node gives its pod; none by default (a node without one refuses blocks that need a replay).
#[derive(Clone, Default)]
pub struct Replayer(pub Option<Arc<dyn Replay>>);

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Replayer(runtime)" } else { "Replayer(none)" })
    }
}

/// The state a replay sees: exactly what the executor recorded reading and listing, at the values the ledger holds
/// for them now.
#[derive(Default)]
pub struct Snapshot {
    /// (namespace, key) → (value, version); a recorded read of an absent key is not here.
    pub values: BTreeMap<(String, Vec<u8>), (Vec<u8>, u64)>,
    /// (namespace, prefix) → the keys a listing returns.
    pub lists: BTreeMap<(String, Vec<u8>), Vec<Vec<u8>>>,
}

impl State for Snapshot {
    fn get(&self, namespace: &str, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        self.values.get(&(namespace.to_string(), key.to_vec())).cloned()
    }
    fn list(&self, namespace: &str, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
        let keys = self.lists.get(&(namespace.to_string(), prefix.to_vec()));
        keys.map(|k| k.iter().take(limit).cloned().collect()).unwrap_or_default()
    }
}

/// Compares the replay with the invocation: `Err` names the first field that differs.
pub fn compare(inv: &Invocation, r: &Replayed) -> Result<(), String> {
    if r.outcome != inv.outcome {
        return Err(format!("the replay ended {:?}, the executor recorded {:?}", r.outcome, inv.outcome));
    }
    if r.output_hash != inv.output_hash {
        return Err(format!(
            "the replay's output hash is {}, the executor recorded {}",
            r.output_hash, inv.output_hash
        ));
    }
    if r.write_set_hash != inv.write_set_hash {
        return Err(format!(
            "the replay's write set hashes to {}, the executor recorded {}",
            r.write_set_hash, inv.write_set_hash
        ));
    }
    if r.fuel_used != inv.fuel_used {
        return Err(format!("the replay used {} fuel, the executor recorded {}", r.fuel_used, inv.fuel_used));
    }
    Ok(())
}
