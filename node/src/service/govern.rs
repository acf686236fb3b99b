//! Member-approved changes: applet deployments (checked and compiled before they are committed) and governance
//! entries (policy changes, node removals). Validators check the approvals against the pod's members and threshold.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sigil_ledger::entry::AppletDeployed;
use sigil_ledger::Entry;
use sigil_pod::{Attachments, Committed};

use super::{Refused, Service, COMMIT_TIMEOUT};

/// A deployment as the API takes it (CBOR): the member-approved `applet_deployed` entry and the module.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The entry's canonical encoding.
    pub entry: ByteBuf,
    /// The wasm module.
    pub code: ByteBuf,
}

impl Service {
    /// Checks (member approvals first), compiles and commits a deployment.
    pub async fn deploy(&self, body: &[u8]) -> Result<(Committed, AppletDeployed), Refused> {
        let d: Deployment = sigil_primitives::cbor::decode(body, "deployment", sigil_pod::MAX_BLOCK_BYTES)
            .map_err(|e| Refused::BadRequest(format!("malformed deployment: {e}"), None))?;
        let entry = Entry::decode(&d.entry).map_err(|e| Refused::BadRequest(format!("the entry: {e}"), None))?;
        let Entry::AppletDeployed(dep) = &entry else {
            return Err(Refused::BadRequest(format!("a {} entry, not applet_deployed", entry.kind()), None));
        };
        // Approvals first: nothing costly (decoding the manifest, compiling the module) is done for an entry the
        // pod's members did not approve, so a stranger's modules cost the pod nothing.
        let rules = self.node.rules().ok_or_else(|| Refused::Unavailable("the node is starting".into()))?;
        entry.check_approvals(&self.pod, &rules.members, rules.threshold).map_err(|e| Refused::Forbidden(e, None))?;
        // Nor for a replayed or superseded one: it names the deployment it replaces, and that must still be the
        // applet's (the block rules check it again).
        let last = rules.applets.get(&dep.name).map_or(0, |d| d.index);
        if dep.prior != last {
            return Err(Refused::Conflict(
                format!(
                    "approved to replace entry {} of applet {:?}, whose deployment is now entry {last}: approve it again",
                    dep.prior, dep.name
                ),
                None,
            ));
        }
        let m = sigil_runtime::Manifest::from_cbor(&dep.manifest)
            .map_err(|e| Refused::BadRequest(format!("the manifest: {e}"), None))?;
        // Compile it before anything is committed: a module that does not load would fail every call.
        self.load(&m, &d.code).await.map_err(|e| Refused::BadRequest(format!("the module: {e}"), None))?;
        let dep = dep.clone();
        let rx = self
            .node
            .submit_with(entry, Attachments { code: d.code.into_vec(), ..Default::default() })
            .map_err(Refused::of)?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(c)) => Ok((c, dep)),
            Ok(Err(_)) => Err(dropped()),
            Err(_) => Err(Refused::Unavailable("the deployment did not commit within 30 s".into())),
        }
    }

    /// Checks and commits a member-approved governance entry: a policy change or a node's removal (canonical CBOR
    /// of the entry, its approvals inside). Validators check the approvals against the pod's members and threshold.
    pub async fn govern(&self, body: &[u8]) -> Result<(Committed, &'static str), Refused> {
        let entry = Entry::decode(body).map_err(|e| Refused::BadRequest(format!("the entry: {e}"), None))?;
        match &entry {
            Entry::PolicyChanged(p) => {
                sigil_pod::admission::parse_policy(&p.policy)
                    .map_err(|e| Refused::BadRequest(format!("the policy: {e}"), None))?;
            }
            Entry::NodeRemoved(_) => {}
            e => {
                return Err(Refused::BadRequest(
                    format!("a {} entry is not a governance entry (policy_changed, node_removed)", e.kind()),
                    None,
                ))
            }
        }
        let kind = entry.kind();
        let rx = self.node.submit(entry).map_err(Refused::of)?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Ok(Ok(c)) => Ok((c, kind)),
            Ok(Err(_)) => Err(dropped()),
            Err(_) => Err(Refused::Unavailable("the governance entry did not commit within 30 s".into())),
        }
    }
}

/// A queued governance entry the proposer dropped: it stopped passing the block rules while it waited, which for an
/// approved entry means another change to the same thing committed first.
fn dropped() -> Refused {
    Refused::Conflict(
        "the entry was dropped before it committed: it no longer passes the block rules (another change to the same \
         policy, applet or node committed first); approve it again for the current state"
            .into(),
        None,
    )
}
