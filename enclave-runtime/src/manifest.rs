//! Applet manifests: what an applet is, what it may touch, how much it may use, and who may call it.
//!
//! People write TOML (see `applets/*/sigil.toml`); members sign the canonical CBOR ([`Manifest::to_cbor`]), which the
//! ledger records in its `applet_deployed` entry. Everything is deny-by-default: no capability, no caller and no
//! method exists unless the manifest names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sigil_primitives::cbor;
use sigil_primitives::Hash;

use crate::RuntimeError;

/// Largest accepted manifest encoding.
pub const MAX_MANIFEST_LEN: usize = 256 << 10;

/// An applet manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Applet name: lower-case letters, digits, `-` and `_`, starting with a letter; at most 64 bytes.
    pub name: String,
    /// Version, free text for people (e.g. semver).
    pub version: String,
    /// What the applet does.
    #[serde(default)]
    pub description: String,
    /// SHA-256 of the wasm module. Omitted in TOML, it is computed from the module ([`Manifest::from_toml`]).
    #[serde(default)]
    pub code_digest: Hash,
    /// Promise of replayability: the runtime refuses egress to such an applet, so its output and write set are a
    /// pure function of the logged inputs (input, caller, request hash, clock, state read).
    #[serde(default)]
    pub deterministic: bool,
    /// The methods callers may invoke (exports `sigil:NAME` of the module).
    pub methods: Vec<Method>,
    /// Granted capabilities; absent means none.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Resource limits for one invocation.
    #[serde(default)]
    pub limits: Limits,
    /// Named groups of caller keys, for [`AccessRule::callers`].
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Who may call which methods. No rule, no caller.
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

/// One callable method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Method name: `[a-z][a-z0-9_]*`, at most 64 bytes.
    pub name: String,
    /// What it does (shown to people and to MCP clients as the tool description).
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the input, as JSON text (for MCP tool listings and client-side checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<String>,
}

/// Capabilities: every host import beyond input and output is one of these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Pod-local key-value namespaces.
    #[serde(default)]
    pub kv: Vec<KvGrant>,
    /// Outbound HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
    /// Log lines to the node's log.
    #[serde(default)]
    pub log: bool,
    /// The host's clock (fixed per invocation and recorded).
    #[serde(default)]
    pub clock: bool,
    /// The host's generator (seeded from the request, so replays see the same bytes).
    #[serde(default)]
    pub random: bool,
}

/// Access to one key-value namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvGrant {
    /// Namespace name (same rules as an applet name).
    pub namespace: String,
    /// `read` or `read_write`.
    pub access: KvAccess,
}

/// Key-value access level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvAccess {
    /// Get and list.
    Read,
    /// Get, list, put and delete.
    ReadWrite,
}

/// Outbound HTTP grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    /// Allowed destinations, `HOST[:PORT]` (the scheme's default port, 443 or 80, when omitted). A HOST that is a
    /// name must resolve to public addresses only; loopback, private, link-local and other special addresses are reachable only when listed
    /// as IP literals.
    pub allow: Vec<String>,
}

/// Per-invocation resource limits. Defaults in [`Limits::default`]; the runtime caps them with its own maxima.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Fuel (about one unit per wasm instruction).
    pub fuel: u64,
    /// Linear memory, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline in milliseconds (covers waiting on egress too).
    pub deadline_ms: u64,
    /// Largest accepted input.
    pub max_input_bytes: u64,
    /// Largest output the applet may produce.
    pub max_output_bytes: u64,
    /// Most key-value writes in one invocation.
    pub max_writes: u64,
    /// Most HTTP requests in one invocation (each redirect counts).
    pub max_http_requests: u64,
    /// Largest HTTP response body.
    pub max_http_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000_000,
            memory_bytes: 16 << 20,
            deadline_ms: 2_000,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_writes: 1_000,
            max_http_requests: 8,
            max_http_response_bytes: 1 << 20,
        }
    }
}

/// Who may call which methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Method names, or `"*"` for all.
    pub methods: Vec<String>,
    /// Callers: `ed25519:HEX` (a key), `group:NAME`, or `"*"` (any caller with a valid signature).
    pub callers: Vec<String>,
}

/// Why a caller may not run a method (checked before any applet code runs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The method is not in the manifest.
    #[error("applet {applet} has no method {method:?}")]
    UnknownMethod {
        /// Applet.
        applet: String,
        /// Method asked for.
        method: String,
    },
    /// No access rule lets this caller call this method.
    #[error("caller ed25519:{caller} may not call {applet}.{method}: no access rule allows it")]
    NotAuthorized {
        /// Applet.
        applet: String,
        /// Method.
        method: String,
        /// Caller key, hex.
        caller: String,
    },
    /// The input is larger than the manifest allows.
    #[error("input of {len} bytes exceeds the applet's limit of {max}")]
    InputTooLarge {
        /// Input length.
        len: usize,
        /// Limit.
        max: u64,
    },
}

fn valid_name(s: &str, allow_dash: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_') || (allow_dash && c == '-'))
}

fn parse_key(s: &str) -> Option<[u8; 32]> {
    let h = s.strip_prefix("ed25519:")?;
    let b = hex::decode(h).ok()?;
    b.try_into().ok()
}

impl Manifest {
    /// Parses a TOML manifest for the module `wasm`: fills `code_digest` from the module, or, when the TOML names
    /// one, checks that it is the module's.
    pub fn from_toml(text: &str, wasm: &[u8]) -> Result<Manifest, RuntimeError> {
        let mut m: Manifest =
            toml::from_str(text).map_err(|e| RuntimeError::Manifest(format!("not a valid manifest: {e}")))?;
        let digest = Hash::digest(wasm);
        if m.code_digest == Hash::default() {
            m.code_digest = digest;
        } else if m.code_digest != digest {
            return Err(RuntimeError::DigestMismatch { manifest: m.code_digest, module: digest });
        }
        m.validate()?;
        Ok(m)
    }

    /// The canonical CBOR encoding (RFC 8949 §4.2.1): what members sign and the ledger records.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes a canonical encoding and validates it.
    pub fn from_cbor(bytes: &[u8]) -> Result<Manifest, RuntimeError> {
        let m: Manifest = cbor::decode(bytes, "manifest", MAX_MANIFEST_LEN)
            .map_err(|e| RuntimeError::Manifest(format!("not a valid manifest encoding: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// SHA-256 of the canonical encoding.
    pub fn digest(&self) -> Hash {
        Hash::digest(&self.to_cbor())
    }

    /// Checks names, keys, groups, schemas and the capability rules. Every error names the offending field.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |msg: String| Err(RuntimeError::Manifest(msg));
        if !valid_name(&self.name, true) {
            return bad(format!(
                "name {:?}: use lower-case letters, digits, '-' and '_', start with a letter",
                self.name
            ));
        }
        if self.version.is_empty() || self.version.len() > 64 {
            return bad("version: 1 to 64 characters".into());
        }
        if self.code_digest == Hash::default() {
            return bad("code_digest is missing".into());
        }
        if self.methods.is_empty() {
            return bad("methods: an applet needs at least one".into());
        }
        for (i, m) in self.methods.iter().enumerate() {
            if !valid_name(&m.name, false) {
                return bad(format!("methods[{i}].name {:?}: use [a-z][a-z0-9_]*", m.name));
            }
            if self.methods[..i].iter().any(|o| o.name == m.name) {
                return bad(format!("methods: {:?} listed twice", m.name));
            }
            if let Some(s) = &m.input_schema {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(s) {
                    return bad(format!("methods[{i}].input_schema is not JSON: {e}"));
                }
            }
        }
        for (i, g) in self.capabilities.kv.iter().enumerate() {
            if !valid_name(&g.namespace, true) {
                return bad(format!("capabilities.kv[{i}].namespace {:?}: use [a-z][a-z0-9_-]*", g.namespace));
            }
            if self.capabilities.kv[..i].iter().any(|o| o.namespace == g.namespace) {
                return bad(format!("capabilities.kv: namespace {:?} granted twice", g.namespace));
            }
        }
        if let Some(http) = &self.capabilities.http {
            if self.deterministic {
                return bad("deterministic applets may not have the http capability (egress cannot be replayed)".into());
            }
            for a in &http.allow {
                crate::egress::AllowEntry::parse(a)
                    .map_err(|e| RuntimeError::Manifest(format!("capabilities.http.allow: {e}")))?;
            }
        }
        let l = &self.limits;
        if l.fuel == 0 || l.memory_bytes < 64 << 10 || l.deadline_ms == 0 {
            return bad(
                "limits: fuel and deadline_ms must be positive and memory_bytes at least one page (65536)".into()
            );
        }
        for (name, keys) in &self.groups {
            if !valid_name(name, true) {
                return bad(format!("groups: name {name:?}: use [a-z][a-z0-9_-]*"));
            }
            for k in keys {
                if parse_key(k).is_none() {
                    return bad(format!("groups.{name}: {k:?} is not ed25519:<64 hex digits>"));
                }
            }
        }
        for (i, r) in self.access.iter().enumerate() {
            for m in &r.methods {
                if m != "*" && !self.methods.iter().any(|x| &x.name == m) {
                    return bad(format!("access[{i}].methods: {m:?} is not a method of this applet"));
                }
            }
            for c in &r.callers {
                let ok = c == "*"
                    || parse_key(c).is_some()
                    || c.strip_prefix("group:").is_some_and(|g| self.groups.contains_key(g));
                if !ok {
                    return bad(format!(
                        "access[{i}].callers: {c:?} is not \"*\", ed25519:<64 hex digits> or group:<a defined group>"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The method `method`, if `caller` may call it and `input_len` is within the limit. Checked before any code
    /// runs; the node audits a refusal as a `request_rejected` entry.
    pub fn authorize(&self, caller: &[u8; 32], method: &str, input_len: usize) -> Result<&Method, Refusal> {
        let m = self
            .methods
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| Refusal::UnknownMethod { applet: self.name.clone(), method: method.to_string() })?;
        let is_caller = |c: &str| {
            c == "*"
                || parse_key(c).is_some_and(|k| &k == caller)
                || c.strip_prefix("group:")
                    .and_then(|g| self.groups.get(g))
                    .is_some_and(|keys| keys.iter().any(|k| parse_key(k).is_some_and(|k| &k == caller)))
        };
        let allowed = self
            .access
            .iter()
            .any(|r| r.methods.iter().any(|x| x == "*" || x == method) && r.callers.iter().any(|c| is_caller(c)));
        if !allowed {
            return Err(Refusal::NotAuthorized {
                applet: self.name.clone(),
                method: method.to_string(),
                caller: hex::encode(caller),
            });
        }
        if input_len as u64 > self.limits.max_input_bytes {
            return Err(Refusal::InputTooLarge { len: input_len, max: self.limits.max_input_bytes });
        }
        Ok(m)
    }

    /// The access granted to `namespace`, if any.
    pub fn kv_access(&self, namespace: &str) -> Option<KvAccess> {
        self.capabilities.kv.iter().find(|g| g.namespace == namespace).map(|g| g.access)
    }
}
