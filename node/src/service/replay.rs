//! The pod's re-execution (`sigil_pod::replay`) on a wasm runtime with the same ceilings as the one that runs the
//! node's own invocations, so a deterministic applet's replay uses the fuel and makes the write set its executor
//! did.

use std::sync::Arc;

use sigil_pod::replay::{Replay, ReplayCall, Replayed, Replayer};
use sigil_runtime::manifest::Manifest;
use sigil_runtime::state::State;
use sigil_runtime::{Call, Outcome, Runtime, RuntimeConfig, RuntimeError};

/// Runs invocations again on a node's runtime.
pub struct RuntimeReplay(pub Arc<Runtime>);

impl Replay for RuntimeReplay {
    fn replay(
        &self,
        manifest: &Manifest,
        code: &[u8],
        call: &ReplayCall,
        state: Arc<dyn State>,
    ) -> Result<Replayed, String> {
        let applet = match self.0.cached(manifest) {
            Some(a) => a,
            None => self.0.load(manifest, code).map_err(|e| format!("loading the applet: {e}"))?,
        };
        let c = Call {
            request_hash: call.request_hash,
            caller: call.caller,
            method: &call.method,
            input: &call.input,
            now_ms: call.now_ms,
        };
        let exec = self.0.invoke(&applet, &c, state).map_err(|e| e.to_string())?;
        if exec.outcome == Outcome::Deadline {
            return Err("the replay ran past the applet's deadline".into());
        }
        let r = exec.receipt;
        Ok(Replayed {
            outcome: r.outcome,
            output_hash: r.output_hash,
            write_set_hash: r.write_set_hash,
            fuel_used: r.fuel_used,
        })
    }
}

/// Pool slots of the replay runtime: the consensus task replays one invocation at a time.
const REPLAY_INSTANCES: u32 = 2;

/// A replayer on a runtime of its own: the ceilings of the node's (so fuel and outcomes match the executor's),
/// but its own pool slots and module cache, so invocations flooding this node cannot leave a replay without a
/// slot (which would refuse an honest block).
pub fn replayer() -> Result<Replayer, RuntimeError> {
    let rt = Runtime::new(RuntimeConfig { max_instances: REPLAY_INSTANCES, ..RuntimeConfig::default() })?;
    Ok(Replayer(Some(Arc::new(RuntimeReplay(Arc::new(rt))))))
}
