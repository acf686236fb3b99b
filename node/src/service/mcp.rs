//! # mcp: the pod's applets as MCP tools
//!
//! Every node serves the Model Context Protocol at `POST /mcp` (Streamable HTTP, stateless, JSON responses),
//! built on the official Rust SDK (`rmcp`). The tools are the deployed applets' methods, named
//! `applet.method`, described and typed by their manifests. `initialize` (and `server/discover`) advertise the
//! node's attestation result and the pod's log in the `io.sigil/attestation` extension, so a client can decide to
//! trust the node before it sends anything.
//!
//! Every `tools/call` is an invocation, through the same path as `POST /v1/invoke`: checked, audited, executed in
//! the enclave, committed; the result's `_meta["io.sigil/receipt"]` carries the COSE receipt for
//! `sigil receipt verify`. A call names its caller one of two ways:
//! - **signed**: `_meta["io.sigil/signedRequest"]` holds the caller's signed request (base64 canonical CBOR) for
//!   this tool and these arguments; no token is needed;
//! - **OAuth 2.1 bearer token** (the MCP authorization spec): the node is the protected resource
//!   (`/.well-known/oauth-protected-resource`) and its pod's authorization server (`/oauth/POD`, RFC 8414
//!   metadata), which grants `client_credentials` to clients that authenticate with `private_key_jwt`
//!   (RFC 7523): the client id is `ed25519:` and the caller's key, the assertion is signed with that key. The
//!   token maps to that key, and the node signs each call's request as the caller's delegate, carrying the
//!   assertion, so validators (and auditors) see the caller's own signature behind every delegated call.
//!
//! In front of the SDK, the body is bounded and checked as JSON-RPC, so malformed input gets the JSON-RPC error
//! codes: -32700 parse error, -32600 invalid request (batches too: MCP has none since 2025-06-18), -32601 unknown
//! method, -32602 invalid params (and unknown tools).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, ErrorData, Implementation,
    InitializeResult, ListToolsResult, MetaObject, PaginatedRequestParams, ServerCapabilities, Tool, ToolsCapability,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{json, Value};
use sigil_ledger::request::{self, SignedRequest};
use sigil_ledger::Hash;
use tower_service::Service as _;

use super::oauth::{self, base_url, Grant, OAuth};
use super::{base64_decode, Refused, Service};

/// Largest MCP message: a signed request's limit plus room for its base64 and the JSON-RPC envelope.
pub const MAX_MESSAGE: usize = request::MAX_REQUEST_LEN * 2;
/// The `_meta` key of a caller-signed request.
pub const SIGNED_REQUEST_META: &str = "io.sigil/signedRequest";
/// The `_meta` key of a call's receipt.
pub const RECEIPT_META: &str = "io.sigil/receipt";
/// The extension that carries the node's attestation.
pub const ATTESTATION_EXTENSION: &str = "io.sigil/attestation";
/// The node's MCP server.
pub struct Mcp {
    service: Arc<Service>,
    /// The tokens the node's authorization server issued.
    oauth: Arc<OAuth>,
    rmcp: StreamableHttpService<Handler, LocalSessionManager>,
}

/// The routes: `/mcp`, and the OAuth metadata, token and authorize endpoints ([`oauth::router`]).
pub fn router(service: Arc<Service>) -> Router {
    let mut config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.sse_keep_alive = None;
    config.max_request_body_bytes = MAX_MESSAGE;
    let s = service.clone();
    let info = Arc::new(Mutex::new(None));
    let rmcp = StreamableHttpService::new(
        move || Ok(Handler { service: s.clone(), info: info.clone() }),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let oauth = Arc::new(OAuth::new(service.clone()));
    let mcp = Arc::new(Mcp { service, oauth: oauth.clone(), rmcp });
    Router::new()
        .route("/mcp", post(mcp_post).get(mcp_other).delete(mcp_other))
        .with_state(mcp)
        .merge(oauth::router(oauth))
}

fn jsonrpc_error(status: StatusCode, id: Value, code: ErrorCode, message: String, data: Option<Value>) -> Response {
    let mut error = json!({ "code": code.0, "message": message });
    if let Some(d) = data {
        error["data"] = d;
    }
    (status, Json(json!({ "jsonrpc": "2.0", "id": id, "error": error }))).into_response()
}

/// The MCP methods a client may send: a known method whose params do not parse is -32602, not -32601.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
];

/// Checks a message's JSON-RPC shape; the error response if it is not a request or notification rmcp can take.
fn check_jsonrpc(body: &[u8]) -> Result<Value, Box<Response>> {
    let bad = |code, msg: String, id: Value| Err(Box::new(jsonrpc_error(StatusCode::BAD_REQUEST, id, code, msg, None)));
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad(ErrorCode::PARSE_ERROR, format!("Parse error: {e}"), Value::Null),
    };
    let Value::Object(m) = &v else {
        let why = if v.is_array() { "batches are not part of MCP" } else { "a message is a JSON object" };
        return bad(ErrorCode::INVALID_REQUEST, format!("Invalid Request: {why}"), Value::Null);
    };
    let id = m.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = match m.get("id") {
        None => true,
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !id_ok {
        return bad(
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: id must be a string or an integer".into(),
            Value::Null,
        );
    }
    if m.get("jsonrpc") != Some(&json!("2.0")) {
        return bad(ErrorCode::INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"".into(), id);
    }
    let is_response = m.contains_key("result") || m.contains_key("error");
    let Some(method) = m.get("method").and_then(|x| x.as_str()) else {
        if is_response {
            return Ok(v);
        }
        return bad(ErrorCode::INVALID_REQUEST, "Invalid Request: no method".into(), id);
    };
    if let Some(p) = m.get("params") {
        if !p.is_object() {
            return bad(ErrorCode::INVALID_PARAMS, "Invalid params: params must be an object".into(), id);
        }
    }
    // What rmcp cannot parse as the method it names is invalid params; an unknown method parses as a custom
    // request, which the handler answers with -32601.
    match serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(v.clone()) {
        Ok(rmcp::model::ClientJsonRpcMessage::Request(r))
            if matches!(r.request, rmcp::model::ClientRequest::CustomRequest(_)) && KNOWN_METHODS.contains(&method) =>
        {
            bad(ErrorCode::INVALID_PARAMS, format!("Invalid params for {method}"), id)
        }
        Ok(_) => Ok(v),
        Err(e) if KNOWN_METHODS.contains(&method) => {
            bad(ErrorCode::INVALID_PARAMS, format!("Invalid params for {method}: {e}"), id)
        }
        Err(e) => bad(ErrorCode::INVALID_REQUEST, format!("Invalid Request: {e}"), id),
    }
}

/// `WWW-Authenticate` for a call without a usable token (RFC 6750, RFC 9728).
fn unauthorized(headers: &HeaderMap, id: Value, error: Option<&str>, why: &str) -> Response {
    let mut challenge =
        format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"", base_url(headers));
    if let Some(e) = error {
        challenge.push_str(&format!(", error=\"{e}\", error_description=\"{why}\""));
    }
    let mut resp = jsonrpc_error(
        StatusCode::UNAUTHORIZED,
        id,
        ErrorCode::INVALID_REQUEST,
        format!("Unauthorized: {why}. Send a bearer token (see the resource metadata) or sign the request ({SIGNED_REQUEST_META})"),
        None,
    );
    if let Ok(v) = challenge.parse() {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// A refusal of a message before it is parsed (too large, too slow), as JSON-RPC answers it: for the API's body
/// reader, so an MCP client gets the error shape it understands.
pub(super) fn refused_message(status: StatusCode, why: String) -> Response {
    jsonrpc_error(status, Value::Null, ErrorCode::INVALID_REQUEST, format!("Invalid Request: {why}"), None)
}

async fn mcp_post(State(m): State<Arc<Mcp>>, req: Request<Body>) -> Response {
    let resp = mcp_message(&m, req).await;
    m.service.metrics.http("/mcp", resp.status().as_u16());
    resp
}

async fn mcp_message(m: &Mcp, req: Request<Body>) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_MESSAGE).await else {
        return jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
            ErrorCode::INVALID_REQUEST,
            format!("Invalid Request: the message is over {MAX_MESSAGE} bytes"),
            None,
        );
    };
    let v = match check_jsonrpc(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    // The token, when one is sent, must be live; a tool call needs one unless it carries a signed request.
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim);
    if let Some(token) = bearer {
        match m.oauth.grant(token) {
            Some(g) => {
                parts.extensions.insert(g);
            }
            None => return unauthorized(&parts.headers, id, Some("invalid_token"), "the token is unknown or expired"),
        }
    } else if v.get("method").and_then(|x| x.as_str()) == Some("tools/call")
        && v.pointer(&format!("/params/_meta/{}", SIGNED_REQUEST_META.replace('/', "~1"))).is_none()
    {
        return unauthorized(&parts.headers, id, None, "a tool call names its caller");
    }
    forward(m, Request::from_parts(parts, Body::from(body))).await
}

async fn mcp_other(State(m): State<Arc<Mcp>>, req: Request<Body>) -> Response {
    forward(&m, req).await
}

/// Hands a request to the SDK's Streamable HTTP service.
async fn forward(m: &Mcp, req: Request<Body>) -> Response {
    let mut rmcp = m.rmcp.clone();
    match rmcp.call(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}

/// The rmcp handler: one per message (the server is stateless).
#[derive(Clone)]
pub struct Handler {
    service: Arc<Service>,
    /// The last `initialize` result and when it was made: it checks every validator's evidence, so it is made at
    /// most once a second.
    info: Arc<Mutex<Option<(std::time::Instant, InitializeResult)>>>,
}

fn tool_name(applet: &str, method: &str) -> String {
    format!("{applet}.{method}")
}

impl Handler {
    /// Whether `name` (`applet.method`) is a deployed applet's method.
    fn tool_exists(&self, name: &str) -> bool {
        name.split_once('.').is_some_and(|(applet, method)| {
            self.service.node.rules().is_some_and(|r| {
                r.applets.get(applet).is_some_and(|d| d.manifest.methods.iter().any(|m| m.name == method))
            })
        })
    }

    fn make_info(&self) -> InitializeResult {
        let mut caps = ServerCapabilities::default();
        caps.tools = Some(ToolsCapability::default());
        let status = super::api::pod_status(&self.service).unwrap_or_else(|e| json!({ "error": e }));
        let this = status["validators"]
            .as_array()
            .and_then(|v| v.iter().find(|n| n["this_node"] == json!(true)).cloned())
            .unwrap_or(Value::Null);
        let attestation = json!({
            "pod": self.service.pod(),
            "jurisdiction": status["jurisdiction"],
            "node": self.service.node.name(),
            "key": this["key"],
            "platform": this["platform"],
            "measurement": this["measurement"],
            "tcb_status": this["tcb_status"],
            "verdict": this["verdict"],
            "attestation_index": this["attestation_index"],
            "insecure_sim": status["insecure_sim"],
            "log": {
                "origin": self.service.pod(),
                "size": status["size"],
                "root": status["root"],
                "checkpoint": "/v1/checkpoint",
                "genesis": "/v1/genesis",
            },
            "evidence_sha256": Hash::digest(&self.service.evidence).to_hex(),
            "tls": "the certificate of this connection carries the node's evidence (sigil node certificates)",
        });
        caps.extensions =
            Some([(ATTESTATION_EXTENSION.to_string(), attestation.as_object().cloned().unwrap_or_default())].into());
        let mut info = InitializeResult::new(caps);
        let mut implementation = Implementation::new("sigil", env!("CARGO_PKG_VERSION"));
        implementation.title = Some(format!("Sigil pod {}", self.service.pod()));
        implementation.description =
            Some("Attested applets as MCP tools; every call is committed with a receipt".into());
        info.server_info = implementation;
        let platform = this["platform"].as_str().unwrap_or("unknown");
        let verdict = this["verdict"].as_str().unwrap_or("unknown");
        info.instructions = Some(format!(
            "Node {} of pod {:?} ({platform}, attestation {verdict}{}). Tools are the pod's applet methods \
             (applet.method). Every call is signed by its caller (a bearer token from this pod's authorization \
             server, or _meta[\"{SIGNED_REQUEST_META}\"]), authorized by the applet's access rules, executed in \
             the enclave and committed to the pod's ledger; the result's _meta[\"{RECEIPT_META}\"] holds the \
             receipt, which `sigil receipt verify` checks offline.",
            self.service.node.name(),
            self.service.pod(),
            if status["insecure_sim"] == json!(true) { "; SIMULATED TEE, INSECURE" } else { "" },
        ));
        info
    }

    fn tools(&self) -> Result<Vec<Tool>, ErrorData> {
        let rules = self.service.node.rules().ok_or_else(|| ErrorData::internal_error("the node is starting", None))?;
        let mut applets: Vec<_> = rules.applets.values().collect();
        applets.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        let mut tools = Vec::new();
        for d in applets {
            let m = &d.manifest;
            for method in &m.methods {
                let schema = method
                    .input_schema
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_else(|| json!({"type": "object"}).as_object().cloned().unwrap_or_default());
                let description = if method.description.is_empty() {
                    format!("{} (applet {} {})", method.name, m.name, m.version)
                } else {
                    method.description.clone()
                };
                let mut tool = Tool::new(tool_name(&m.name, &method.name), description, Arc::new(schema));
                tool.title = Some(format!("{} · {}", m.name, method.name));
                let mut meta = MetaObject::default();
                meta.0.insert(
                    "io.sigil/applet".into(),
                    json!({
                        "applet": m.name, "version": m.version, "method": method.name,
                        "code_digest": m.code_digest.to_hex(), "max_input_bytes": m.limits.max_input_bytes,
                    }),
                );
                tool.meta = Some(meta);
                tools.push(tool);
            }
        }
        Ok(tools)
    }

    /// The signed request of a call: the caller's own, or one this node signs under the caller's token.
    fn request_for(
        &self,
        p: &CallToolRequestParams,
        meta: &rmcp::model::RequestMetaObject,
        parts: Option<&axum::http::request::Parts>,
    ) -> Result<Vec<u8>, ErrorData> {
        let args = Value::Object(p.arguments.clone().unwrap_or_default());
        let (applet, method) = p.name.split_once('.').ok_or_else(|| {
            ErrorData::invalid_params(format!("Unknown tool: {} (tools are applet.method)", p.name), None)
        })?;
        // rmcp moves the params' `_meta` into the request context.
        let signed = meta.0 .0.get(SIGNED_REQUEST_META).or_else(|| p.meta.as_ref()?.0 .0.get(SIGNED_REQUEST_META));
        if let Some(signed) = signed {
            let raw = signed
                .as_str()
                .ok_or("not a string")
                .map_err(str::to_string)
                .and_then(base64_decode)
                .map_err(|e| ErrorData::invalid_params(format!("{SIGNED_REQUEST_META}: {e}"), None))?;
            // The request is checked in full by the invocation; here only that it is this call.
            if let Ok(r) = SignedRequest::decode(&raw) {
                let r = r.request;
                let same_args = serde_json::from_slice::<Value>(&r.args).ok().as_ref() == Some(&args);
                if r.applet != applet || r.method != method || !same_args {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "{SIGNED_REQUEST_META} is a request for {}.{} with other arguments than this call",
                            r.applet, r.method
                        ),
                        None,
                    ));
                }
            }
            return Ok(raw);
        }
        let grant = parts
            .and_then(|p| p.extensions.get::<Grant>())
            .ok_or_else(|| ErrorData::invalid_request("a tool call needs a bearer token or a signed request", None))?;
        let r = request::Request {
            pod: self.service.pod().to_string(),
            applet: applet.to_string(),
            method: method.to_string(),
            args: serde_bytes::ByteBuf::from(serde_json::to_vec(&args).unwrap_or_default()),
            nonce: serde_bytes::ByteBuf::from(
                super::random::<16>().map_err(|e| ErrorData::internal_error(e.to_string(), None))?.to_vec(),
            ),
            issued_at_ms: sigil_primitives::clock::now_ms(),
            caller: serde_bytes::ByteBuf::from(grant.caller.to_vec()),
        };
        Ok(self.service.sign_delegated(r, grant.assertion.clone()).encode())
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> InitializeResult {
        let mut cached = self.info.lock().expect("not poisoned");
        if let Some((at, info)) = cached.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(1) {
                return info.clone();
            }
        }
        let info = self.make_info();
        *cached = Some((std::time::Instant::now(), info.clone()));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()?))
    }

    async fn call_tool(
        &self,
        p: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let raw = self.request_for(&p, &context.meta, parts)?;
        let audited = |why: &str, audit: Option<u64>| json!({ "reason": why, "audit_index": audit });
        let result = self.service.invoke(&raw).await;
        // A call of a tool that does not exist is refused (and audited) like any other, and answered as the spec
        // says: invalid params. The tool is looked up only for a refusal, off the path of committed calls.
        if let Err(r) = &result {
            if !self.tool_exists(&p.name) {
                let why = r.reason().to_string();
                return Err(ErrorData::invalid_params(
                    format!("Unknown tool: {} ({why})", p.name),
                    Some(audited(&why, r.audit_index())),
                ));
            }
        }
        match result {
            Ok(inv) => {
                let mut content = vec![ContentBlock::text(inv.output.clone())];
                if inv.outcome != "ok" {
                    content.push(ContentBlock::text(format!("the applet ended: {}", inv.outcome)));
                }
                let mut result =
                    if inv.outcome == "ok" { CallToolResult::success(content) } else { CallToolResult::error(content) };
                if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&inv.output) {
                    result.structured_content = Some(v);
                }
                let mut meta = MetaObject::default();
                meta.0.insert(
                    RECEIPT_META.into(),
                    json!({
                        "request_hash": inv.request_hash, "index": inv.index, "height": inv.height,
                        "executor": inv.executor, "outcome": inv.outcome, "fuel_used": inv.fuel_used,
                        "receipt": inv.receipt, "receipt_url": format!("/v1/receipts/{}?format=cose", inv.request_hash),
                    }),
                );
                Ok(CallToolResponse::Complete(result.with_meta(Some(meta))))
            }
            // The caller may not call this tool: a tool error the caller (and its model) can read, audited.
            Err(Refused::Forbidden(why, audit)) => {
                let mut meta = MetaObject::default();
                meta.0.insert("io.sigil/refused".into(), audited(&why, audit));
                let result = CallToolResult::error(vec![ContentBlock::text(why)]).with_meta(Some(meta));
                Ok(CallToolResponse::Complete(result))
            }
            Err(Refused::NotFound(why, audit)) => {
                Err(ErrorData::invalid_params(format!("Unknown tool: {} ({why})", p.name), Some(audited(&why, audit))))
            }
            Err(r @ (Refused::BadRequest(..) | Refused::Conflict(..))) => {
                Err(ErrorData::invalid_params(r.reason().to_string(), Some(audited(r.reason(), r.audit_index()))))
            }
            Err(Refused::Redirect(why, urls)) => {
                Err(ErrorData::invalid_params(why, Some(json!({ "endpoints": urls }))))
            }
            Err(r @ (Refused::Misdirected(_) | Refused::Unavailable(_) | Refused::TooMany(_))) => {
                Err(ErrorData::internal_error(r.reason().to_string(), None))
            }
        }
    }
}
