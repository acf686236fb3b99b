//! # oauth: the node as its pod's OAuth 2.1 authorization server (for MCP clients)
//!
//! The MCP authorization spec: the node is the protected resource (`/.well-known/oauth-protected-resource`, RFC 9728)
//! and its pod's authorization server (`/oauth/POD`, RFC 8414 metadata). It grants `client_credentials` to clients
//! that authenticate with `private_key_jwt` (RFC 7523): the client id is `ed25519:` and the caller's key, and the
//! assertion is signed with that key (checked over its raw bytes by `sigil_ledger::request::verify_assertion`). A
//! token is opaque, stored as its SHA-256, and stands for the caller's key and assertion ([`Grant`]) until the
//! assertion expires; each assertion (`jti`) is exchanged once.
//!
//! What it must never do: issue a token for an assertion that is not the caller's signature for this pod, or issue
//! two for one assertion; keep a token itself (only its hash).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sigil_ledger::request;
use sigil_ledger::Hash;

use super::Service;

/// Access tokens a node holds at once (expired ones are dropped first).
const MAX_TOKENS: usize = 100_000;

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

/// The authorization server's state: the live tokens and the assertions already exchanged.
pub struct OAuth {
    service: Arc<Service>,
    /// SHA-256 of each live token → its grant.
    tokens: Mutex<HashMap<Hash, Grant>>,
    /// Client assertions already exchanged (SHA-256 of caller key and `jti`) → their expiry: one token each.
    used: Mutex<HashMap<Hash, u64>>,
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
        OAuth { service, tokens: Mutex::new(HashMap::new()), used: Mutex::new(HashMap::new()) }
    }

    /// The live grant of `token`, if any.
    pub fn grant(&self, token: &str) -> Option<Grant> {
        let now = sigil_primitives::clock::now_secs();
        let tokens = self.tokens.lock().expect("not poisoned");
        tokens.get(&Hash::digest(token.as_bytes())).filter(|g| g.exp_s > now).cloned()
    }

    /// Records an assertion's `jti` as used; false if it was used before (a replayed assertion), or if the node
    /// already holds [`MAX_TOKENS`] live ones.
    fn first_use(&self, caller: &[u8; 32], jti: &str, exp: u64) -> bool {
        let now = sigil_primitives::clock::now_secs();
        let mut used = self.used.lock().expect("not poisoned");
        used.retain(|_, e| *e > now);
        if used.len() >= MAX_TOKENS {
            return false;
        }
        let id = Hash::digest(&[caller.as_slice(), jti.as_bytes()].concat());
        used.insert(id, exp).is_none()
    }

    fn issue(&self, g: Grant) -> Result<String, String> {
        let now = sigil_primitives::clock::now_secs();
        let mut tokens = self.tokens.lock().expect("not poisoned");
        tokens.retain(|_, g| g.exp_s > now);
        if tokens.len() >= MAX_TOKENS {
            return Err("the node holds too many live tokens; try again later".into());
        }
        let token = super::random::<32>().map_err(|e| e.to_string())?;
        let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token);
        tokens.insert(Hash::digest(token.as_bytes()), g);
        Ok(token)
    }
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
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let resp = grant_token(&m, &pod, &headers, form);
    m.service.metrics.http("/oauth/{pod}/token", resp.status().as_u16());
    resp
}

fn grant_token(
    m: &OAuth,
    pod: &str,
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
    if !m.first_use(&a.caller, jti, a.exp) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "this client assertion was exchanged before, or the node holds too many live ones (make a new one, with \
             a new jti, for each token)"
                .into(),
        );
    }
    let resource = format!("{}/mcp", base_url(headers));
    if t.resource.as_deref().is_some_and(|r| r.trim_end_matches('/') != resource) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", format!("this node's resource is {resource}"));
    }
    let caller = a.caller;
    match m.issue(Grant { caller, assertion: jwt, exp_s: a.exp }) {
        Ok(token) => {
            tracing::info!(caller = %request::client_id(&caller), expires_in = a.exp - now, "issued an MCP access token");
            let mut resp = Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": a.exp - now }))
                .into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            resp
        }
        Err(why) => oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", why),
    }
}
