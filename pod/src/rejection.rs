//! [`Rejection`]: why the pod will not take an entry. Callers branch on the variant, never on the text (rustls's
//! rule): a conflict is worth running again, a replay is answered with what was committed, missing approvals are
//! the caller's to fix, a stale governance entry must be approved again, a full mempool is the node's. The text is for people and logs.

use thiserror::Error;

/// Why an entry is refused: by the block rules every validator applies, or by this node for now.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Committed state moved under the entry (a version it read, a listing it made): running it again may pass.
    #[error("{0}")]
    Conflict(String),
    /// The request is already committed, or its nonce was used.
    #[error("{0}")]
    Replay(String),
    /// A governance entry's member approvals are missing, unknown or do not verify.
    #[error("{0}")]
    Unapproved(String),
    /// A governance entry approved for a state that has changed since (another change to the same policy, applet
    /// or node committed first), or a replay of one already committed: its members must approve it again.
    #[error("{0}")]
    Stale(String),
    /// Anything else the block rules refuse: the entry can never be committed as it is.
    #[error("{0}")]
    Invalid(String),
    /// The node's mempool is full: try again shortly (another node may take it).
    #[error("{0}")]
    MempoolFull(String),
    /// The node has not loaded the pod's rules yet.
    #[error("the node is starting")]
    Starting,
}

impl Rejection {
    /// The same rejection with its text rewritten (to say which entry, or of what).
    pub fn map(self, f: impl FnOnce(String) -> String) -> Rejection {
        match self {
            Rejection::Conflict(s) => Rejection::Conflict(f(s)),
            Rejection::Replay(s) => Rejection::Replay(f(s)),
            Rejection::Unapproved(s) => Rejection::Unapproved(f(s)),
            Rejection::Stale(s) => Rejection::Stale(f(s)),
            Rejection::Invalid(s) => Rejection::Invalid(f(s)),
            Rejection::MempoolFull(s) => Rejection::MempoolFull(f(s)),
            Rejection::Starting => Rejection::Starting,
        }
    }
}

impl From<String> for Rejection {
    fn from(s: String) -> Rejection {
        Rejection::Invalid(s)
    }
}

impl From<&str> for Rejection {
    fn from(s: &str) -> Rejection {
        Rejection::Invalid(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_kind_and_the_text_is_the_reason() {
        let r = Rejection::Conflict("k was read at version 1, is now 2".into()).map(|s| format!("entry 0: {s}"));
        assert_eq!(r, Rejection::Conflict("entry 0: k was read at version 1, is now 2".into()));
        assert_eq!(r.to_string(), "entry 0: k was read at version 1, is now 2");
        assert_eq!(Rejection::from("bad"), Rejection::Invalid("bad".into()));
        assert_eq!(Rejection::Starting.map(|_| "x".into()).to_string(), "the node is starting");
    }
}
