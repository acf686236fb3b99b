//! # oauth: the node as its pod's OAuth 2.1 authorization server (for MCP clients)
//!
//! The MCP authorization spec: the node is the protected resource (`/.well-known/oauth-protected-resource`, RFC 9728)
//! and its pod's authorization server (`/oauth/POD`, RFC 8414 metadata). It grants `client_credentials` to clients
//! that authenticate with `private_key_jwt` (RFC 7523): the client id is `ed25519:` and the caller's key, and the
//! assertion is signed with that key (checked over its raw bytes by `sigil_ledger::request::verify_assertion`). A
//! token is opaque, stored as its SHA-256, and stands for the caller's key and assertion ([`Grant`]) until the
//! assertion expires; each assertion (`jti`) is exchanged once.
//!
//! Keys are free, so what a node holds for strangers is bounded by where they come from ([`Tokens`]): at most
//! [`TokenLimits::per_source`] assertions exchanged and live per source address (an IPv6 /64 counts as one), at
//! most [`TokenLimits::per_caller`] live tokens per caller (a caller's oldest gives way to its newest), and
//! [`TokenLimits::total`] in all; everything expires with its assertion (an hour at most). So one address, or one
//! key, filling its share locks nobody else out.
//!
//! What it must never do: issue a token for an assertion that is not the caller's signature for this pod, or issue
//! two for one assertion; issue one for an assertion another node already signed under (an assertion serves one
//! validator pod-wide: the block rules bind it to the first that signs a committed request under it); keep a
//! token itself (only its hash).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sigil_ledger::request;
use sigil_ledger::Hash;

use super::Service;

/// How much token state a node holds.
#[derive(Clone, Copy, Debug)]
pub struct TokenLimits {
    /// Assertions exchanged (and so tokens) held at once, in all.
    pub total: usize,
    /// Assertions exchanged and not yet expired, per source address (IPv4 address or IPv6 /64).
    pub per_source: usize,
    /// Live tokens per caller key: past it, the caller's token that expires first is revoked.
    pub per_caller: usize,
}

impl Default for TokenLimits {
    fn default() -> TokenLimits {
        TokenLimits { total: 100_000, per_source: 1_000, per_caller: 16 }
    }
}

/// A bearer token's grant: who it stands for, and the assertion the caller signed for it.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The caller's key.
    pub caller: [u8; 32],
    /// The client assertion (compact JWT), carried in every delegated request.
    pub assertion: String,
    /// Expiry, Unix seconds (the assertion's).
    pub exp_s: u64,
}

/// Where a connection comes from (its IPv4 address or IPv6 /64), put on each of its requests by the API's server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(pub IpAddr);

/// Why a token is not issued.
#[derive(Debug, PartialEq, Eq)]
pub enum NotIssued {
    /// The assertion was exchanged before.
    Replayed,
    /// The source holds its share of exchanged assertions.
    SourceFull,
    /// The node holds its total.
    Full,
}

/// The live tokens and the assertions already exchanged, bounded in all, per source and per caller. Expired state
/// is dropped at most once a second (a full table waits for the next second rather than scanning on every request).
#[derive(Default)]
pub struct Tokens {
    limits: TokenLimits,
    /// SHA-256 of each live token → its grant.
    tokens: HashMap<Hash, Grant>,
    /// Assertions exchanged (SHA-256 of caller key and `jti`) → their expiry and source: one token each.
    used: HashMap<Hash, (u64, Source)>,
    by_source: HashMap<Source, usize>,
    /// Each caller's live tokens (at most `per_caller`).
    by_caller: HashMap<[u8; 32], Vec<Hash>>,
    /// When expired state was last dropped (Unix seconds).
    pruned_at: u64,
    /// Exchanged assertions dropped as expired, for their record in the store to go too ([`Tokens::take_expired`]).
    expired: Vec<Hash>,
}

/// What identifies an assertion: SHA-256 of its caller's key and its `jti`.
pub fn assertion_id(caller: &[u8; 32], jti: &str) -> Hash {
    Hash::digest(&[caller.as_slice(), jti.as_bytes()].concat())
}

impl Tokens {
    /// Empty tables with these limits.
    pub fn new(limits: TokenLimits) -> Tokens {
        Tokens { limits, ..Default::default() }
    }

    /// The live grant of the token whose SHA-256 is `hash`.
    pub fn grant(&self, hash: &Hash, now: u64) -> Option<&Grant> {
        self.tokens.get(hash).filter(|g| g.exp_s > now)
    }

    /// Live tokens and exchanged assertions held.
    pub fn len(&self) -> (usize, usize) {
        (self.tokens.len(), self.used.len())
    }

    /// Drops what expired, once a second.
    fn prune(&mut self, now: u64) {
        if now == self.pruned_at {
            return;
        }
        self.pruned_at = now;
        let by_caller = &mut self.by_caller;
        self.tokens.retain(|h, g| {
            let live = g.exp_s > now;
            if !live {
                Self::forget(by_caller, &g.caller, h);
            }
            live
        });
        let (by_source, expired) = (&mut self.by_source, &mut self.expired);
        self.used.retain(|id, (exp, source)| {
            let live = *exp > now;
            if !live {
                expired.push(*id);
                if let Some(n) = by_source.get_mut(source) {
                    *n -= 1;
                    if *n == 0 {
                        by_source.remove(source);
                    }
                }
            }
            live
        });
    }

    /// The exchanged assertions dropped as expired since the last call.
    pub fn take_expired(&mut self) -> Vec<Hash> {
        std::mem::take(&mut self.expired)
    }

    fn forget(by_caller: &mut HashMap<[u8; 32], Vec<Hash>>, caller: &[u8; 32], token: &Hash) {
        if let Some(v) = by_caller.get_mut(caller) {
            v.retain(|t| t != token);
            if v.is_empty() {
                by_caller.remove(caller);
            }
        }
    }

    /// Records the exchange of `jti` from `source` and the token (by its SHA-256) that it buys; a caller past its
    /// share of live tokens loses the one that expires first. Nothing changes when it is refused.
    pub fn issue(&mut self, token: Hash, g: Grant, jti: &str, source: Source, now: u64) -> Result<(), NotIssued> {
        let id = assertion_id(&g.caller, jti);
        self.prune(now);
        if self.used.contains_key(&id) {
            return Err(NotIssued::Replayed);
        }
        if self.by_source.get(&source).copied().unwrap_or(0) >= self.limits.per_source {
            return Err(NotIssued::SourceFull);
        }
        if self.used.len() >= self.limits.total {
            return Err(NotIssued::Full);
        }
        let mine = self.by_caller.entry(g.caller).or_default();
        if mine.len() >= self.limits.per_caller {
            let tokens = &self.tokens;
            let first = mine.iter().copied().min_by_key(|t| tokens.get(t).map_or(0, |g| g.exp_s));
            if let Some(t) = first {
                mine.retain(|x| *x != t);
                self.tokens.remove(&t);
            }
        }
        mine.push(token);
        self.used.insert(id, (g.exp_s, source));
        *self.by_source.entry(source).or_insert(0) += 1;
        self.tokens.insert(token, g);
        Ok(())
    }
}

/// The authorization server's state.
pub struct OAuth {
    service: Arc<Service>,
}

/// The OAuth routes: the protected-resource and authorization-server metadata, the token and authorize endpoints.
pub fn router(oauth: Arc<OAuth>) -> Router {
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(resource_metadata))
        .route("/.well-known/oauth-authorization-server/oauth/{pod}", get(server_metadata))
        .route("/oauth/{pod}/.well-known/oauth-authorization-server", get(server_metadata))
        .route("/oauth/{pod}/token", post(token))
        .route("/oauth/{pod}/authorize", get(authorize))
        .with_state(oauth)
}

/// `https://` and the authority the client used.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("https://{host}")
}

impl OAuth {
    /// The tokens of a node's authorization server for `service`'s pod.
    pub fn new(service: Arc<Service>) -> OAuth {
        OAuth { service }
    }

    /// The live grant of `token`, if any.
    pub fn grant(&self, token: &str) -> Option<Grant> {
        self.service.grant(token)
    }
}

/// The answer to an assertion exchanged before.
fn replayed() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "this client assertion was exchanged before (make a new one, with a new jti, for each token)".into(),
    )
}

/// RFC 9728 protected resource metadata.
async fn resource_metadata(State(m): State<Arc<OAuth>>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [format!("{base}{}", request::issuer_path(m.service.pod()))],
        "bearer_methods_supported": ["header"],
        "resource_name": format!("Sigil pod {} (node {})", m.service.pod(), m.service.node.name()),
        "resource_documentation": format!("{base}/openapi.json"),
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: String) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

fn pod_matches(m: &OAuth, pod: &str) -> Result<(), Box<Response>> {
    if pod != m.service.pod() {
        return Err(Box::new(oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            format!("this node is the authorization server of pod {:?}, not {pod:?}", m.service.pod()),
        )));
    }
    Ok(())
}

/// RFC 8414 authorization server metadata.
async fn server_metadata(State(m): State<Arc<OAuth>>, Path(pod): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = pod_matches(&m, &pod) {
        return *r;
    }
    let issuer = format!("{}{}", base_url(&headers), request::issuer_path(&pod));
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "service_documentation": format!("{}/openapi.json", base_url(&headers)),
    }))
    .into_response()
}

/// Only `client_credentials` is granted: there is no interactive authorization.
async fn authorize(State(m): State<Arc<OAuth>>, Path(pod): Path<String>) -> Response {
    if let Err(r) = pod_matches(&m, &pod) {
        return *r;
    }
    oauth_error(
        StatusCode::BAD_REQUEST,
        "unsupported_response_type",
        "this authorization server grants client_credentials with private_key_jwt only".into(),
    )
}

/// The token request (RFC 6749 §4.4 with RFC 7523 §2.2 client authentication).
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    resource: Option<String>,
}

async fn token(
    State(m): State<Arc<OAuth>>,
    Path(pod): Path<String>,
    source: Option<Extension<Source>>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let source = source.map_or(Source(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), |Extension(s)| s);
    let resp = grant_token(&m, &pod, source, &headers, form);
    m.service.metrics.http("/oauth/{pod}/token", resp.status().as_u16());
    resp
}

fn grant_token(
    m: &OAuth,
    pod: &str,
    source: Source,
    headers: &HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Err(r) = pod_matches(m, pod) {
        return *r;
    }
    let Ok(Form(t)) = form else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "a form-encoded token request".into());
    };
    if t.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is granted".into(),
        );
    }
    if t.client_assertion_type.as_deref() != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "clients authenticate with private_key_jwt (a client assertion signed with the caller's Ed25519 key)"
                .into(),
        );
    }
    let Some(jwt) = t.client_assertion else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "no client_assertion".into());
    };
    let a = match request::verify_assertion(&jwt, pod) {
        Ok(a) => a,
        Err(why) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why),
    };
    // With the node's public URLs configured, the audience must be this node's issuer at one of them: an assertion
    // the caller made for another server (a phishing one, which then brings it here) is not exchanged.
    // Compared as (host, port, path): host case and an explicit default port do not matter.
    let origin = |url: &str| {
        let rest = url.strip_prefix("https://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let e = super::client::Endpoint::parse(&format!("https://{authority}")).ok()?;
        Some((e.host.to_ascii_lowercase(), e.port, path.to_string()))
    };
    let want = request::issuer_path(pod);
    let aud = origin(&a.aud);
    let own = |u: &String| {
        let Some((host, port, _)) = origin(u) else { return false };
        aud.as_ref()
            .is_some_and(|(h, p, path)| *h == host && *p == port && (*path == want || *path == format!("{want}/token")))
    };
    if !m.service.public_urls.is_empty() && !m.service.public_urls.iter().any(own) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            format!(
                "the assertion's audience {:?} is not this node's issuer ({}{})",
                a.aud,
                m.service.public_urls[0],
                request::issuer_path(pod)
            ),
        );
    }
    if t.client_id.as_deref().is_some_and(|id| id != request::client_id(&a.caller)) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client_id is not the assertion's".into());
    }
    let now = sigil_primitives::clock::now_secs();
    if a.exp <= now {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "the client assertion has expired".into());
    }
    if a.iat > now + request::MAX_AHEAD_MS / 1000 {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client assertion is issued in the future (check the client's clock)".into(),
        );
    }
    let Some(jti) = a.jti.as_deref() else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "the client assertion has no jti".into());
    };
    // An assertion serves the node that first signed under it, pod-wide (the block rules hold every node to it):
    // one seen in a block is not exchanged again, here or anywhere. Bound to this node, or in the node's own record
    // of what it exchanged (kept in its store, so a restart does not forget it), it was exchanged here before.
    let id = assertion_id(&a.caller, jti);
    let (bound, exchanged) = {
        let l = m.service.node.ledger();
        let l = l.lock().expect("not poisoned");
        (sigil_pod::delegate_of(&l, &jwt), sigil_pod::exchanged(&l, &id, now))
    };
    match exchanged {
        Ok(true) => return replayed(),
        Ok(false) => {}
        Err(e) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.to_string()),
    }
    match bound {
        Ok(Some(node)) if node != m.service.node.name() => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                format!("this client assertion serves node {node:?}; make a new one for this node"),
            )
        }
        Ok(Some(_)) => return replayed(),
        Ok(None) => {}
        Err(e) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.to_string()),
    }
    let resource = format!("{}/mcp", base_url(headers));
    if t.resource.as_deref().is_some_and(|r| r.trim_end_matches('/') != resource) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", format!("this node's resource is {resource}"));
    }
    let caller = a.caller;
    let token = match super::random::<32>() {
        Ok(t) => base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, t),
        Err(e) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.to_string()),
    };
    let grant = Grant { caller, assertion: jwt, exp_s: a.exp };
    let issued =
        m.service.tokens.lock().expect("not poisoned").issue(Hash::digest(token.as_bytes()), grant, jti, source, now);
    match issued {
        Ok(()) => {
            // Recorded in the store before the token is given out; if that fails, the token never is (the table
            // keeps the assertion used until it expires).
            let expired = m.service.tokens.lock().expect("not poisoned").take_expired();
            let recorded = sigil_pod::record_exchanged(
                &mut m.service.node.ledger().lock().expect("not poisoned"),
                &id,
                a.exp,
                &expired,
            );
            if let Err(e) = recorded {
                return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.to_string());
            }
            tracing::info!(caller = %request::client_id(&caller), expires_in = a.exp - now, "issued an MCP access token");
            let mut resp = Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": a.exp - now }))
                .into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            resp
        }
        Err(NotIssued::Replayed) => replayed(),
        Err(NotIssued::SourceFull) => {
            m.service.metrics.tokens_refused.inc();
            oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "this address holds its share of live tokens; they expire with their assertions".into(),
            )
        }
        Err(NotIssued::Full) => {
            m.service.metrics.tokens_refused.inc();
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the node holds too many live tokens; try again later".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(caller: u8, exp_s: u64) -> Grant {
        Grant { caller: [caller; 32], assertion: String::new(), exp_s }
    }

    fn source(last: u8) -> Source {
        Source(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    fn token(n: u32) -> Hash {
        Hash::digest(&n.to_be_bytes())
    }

    #[test]
    fn an_assertion_buys_one_token() {
        let mut t = Tokens::new(TokenLimits::default());
        assert_eq!(t.issue(token(1), grant(1, 100), "a", source(1), 10), Ok(()));
        assert_eq!(t.issue(token(2), grant(1, 100), "a", source(2), 10), Err(NotIssued::Replayed));
        assert_eq!(t.issue(token(2), grant(2, 100), "a", source(1), 10), Ok(()), "another caller's jti");
        assert!(t.grant(&token(1), 10).is_some());
        assert!(t.grant(&token(1), 100).is_none(), "expired with its assertion");
        assert_eq!(t.issue(token(3), grant(1, 200), "a", source(1), 100), Ok(()), "forgotten once expired");
        let expired = t.take_expired();
        assert_eq!(expired.len(), 2, "both assertions that expired go from the store too");
        assert!(expired.contains(&assertion_id(&[1; 32], "a")) && expired.contains(&assertion_id(&[2; 32], "a")));
        assert!(t.take_expired().is_empty());
    }

    #[test]
    fn one_address_filling_its_share_locks_nobody_else_out() {
        let limits = TokenLimits { total: 100, per_source: 10, per_caller: 4 };
        let mut t = Tokens::new(limits);
        // One address with free keys: its share, then no more.
        for n in 0..10 {
            assert_eq!(t.issue(token(n), grant(n as u8, 100), "j", source(1), 10), Ok(()));
        }
        assert_eq!(t.issue(token(10), grant(10, 100), "j", source(1), 10), Err(NotIssued::SourceFull));
        assert_eq!(t.len(), (10, 10), "the refusal changed nothing");
        // Others still get theirs.
        assert_eq!(t.issue(token(11), grant(11, 100), "j", source(2), 10), Ok(()));
        // Once its tokens expire, the address gets its share again.
        assert_eq!(t.issue(token(12), grant(12, 200), "j", source(1), 100), Ok(()));
        assert_eq!(t.len(), (1, 1), "expired state is dropped");

        // Many addresses fill the node: then it is full for everyone, and nothing changes.
        let mut t = Tokens::new(limits);
        for n in 0..100u32 {
            assert_eq!(t.issue(token(n), grant(n as u8, 100), "j", source((n / 10) as u8), 10), Ok(()));
        }
        assert_eq!(t.issue(token(100), grant(100, 100), "j", source(200), 10), Err(NotIssued::Full));
        assert_eq!(t.len(), (100, 100));
    }

    #[test]
    fn a_caller_past_its_share_loses_its_token_that_expires_first() {
        let mut t = Tokens::new(TokenLimits { total: 100, per_source: 100, per_caller: 2 });
        assert_eq!(t.issue(token(1), grant(1, 50), "a", source(1), 10), Ok(()));
        assert_eq!(t.issue(token(2), grant(1, 60), "b", source(1), 10), Ok(()));
        assert_eq!(t.issue(token(3), grant(1, 70), "c", source(1), 10), Ok(()));
        assert!(t.grant(&token(1), 10).is_none(), "the first to expire gave way");
        assert!(t.grant(&token(2), 10).is_some() && t.grant(&token(3), 10).is_some());
        assert_eq!(t.issue(token(4), grant(1, 70), "a", source(1), 10), Err(NotIssued::Replayed), "its jti stays used");
    }
}
