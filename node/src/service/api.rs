//! The node's HTTP API (axum, over rustls): JSON for people, CBOR for signed objects. `GET /openapi.json`
//! describes it; `GET /` is the console.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sigil_ledger::entry::Subject;
use sigil_ledger::store::Query as LedgerQuery;
use sigil_ledger::{Entry, Hash};

use super::reads::{NoRead, Reader};
use super::{base64_encode, Refused, Service};

/// Most entries one audit page returns.
pub const MAX_PAGE: usize = 500;

/// Caps on the connections the API holds, so that no source (a stranger's slow or idle connections) can take
/// every socket, task and buffer: past a cap, a new connection is closed as it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections, in all.
    pub max_connections: usize,
    /// Open connections from one source address.
    pub max_connections_per_source: usize,
    /// How long a client may take to send a request's body once its headers are in (headers have their own
    /// 10 s).
    pub body_timeout: Duration,
    /// Signed requests a second one caller may make, on average (bursts of twice as many); 0 for no limit.
    pub requests_per_caller: u32,
    /// Bytes of request bodies the node holds at once, in all, while they are read and handled: past it a body
    /// is answered 503 as its bytes arrive, so connections cannot together make the node buffer more.
    pub body_bytes_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            max_connections_per_source: 256,
            body_timeout: Duration::from_secs(10),
            requests_per_caller: 500,
            body_bytes_in_flight: 256 << 20,
        }
    }
}

/// The most bytes a request body to `path` may have: a signed request for `/v1/invoke`, a block's worth for
/// deployments and governance, MCP's message limit for `/mcp`, 1 MiB for anything else (the token form).
fn body_limit(path: &str) -> usize {
    match path {
        "/v1/invoke" => sigil_ledger::request::MAX_REQUEST_LEN,
        "/v1/applets" | "/v1/governance" => sigil_pod::MAX_BLOCK_BYTES,
        "/mcp" => super::mcp::MAX_MESSAGE,
        _ => 1 << 20,
    }
}

/// How bodies are read: the time each may take, and the bytes all may hold at once (one permit a byte).
#[derive(Clone)]
struct Bodies {
    timeout: Duration,
    budget: Arc<tokio::sync::Semaphore>,
    service: Arc<Service>,
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    OverBudget,
    Broken,
}

/// Reads a body frame by frame, each frame's bytes taken from the budget as they arrive, up to `limit` bytes.
async fn read_within(
    mut body: axum::body::Body,
    limit: usize,
    budget: &Arc<tokio::sync::Semaphore>,
) -> Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>), Unread> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else { continue };
        if bytes.len() + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        let n = u32::try_from(data.len()).map_err(|_| Unread::TooLarge)?;
        let permit = budget.clone().try_acquire_many_owned(n).map_err(|_| Unread::OverBudget)?;
        match &mut held {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes, held))
}

/// Reads the whole body, within the body timeout, the route's [`body_limit`] and the node's budget of body bytes
/// in flight, before any handler sees the request: a client that sends its body slowly (slowloris) or too much
/// of it is answered 408 or 413, and bodies that together would pass the budget are answered 503, costing no more
/// than that. The bytes count against the budget until the handler has answered.
async fn read_body(State(b): State<Bodies>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mcp = req.uri().path() == "/mcp";
    let limit = body_limit(req.uri().path());
    // MCP clients get the refusal as JSON-RPC, everyone else as the API's error object.
    let refuse = |status: StatusCode, why: String| match mcp {
        true => super::mcp::refused_message(status, why),
        false => error(status, why, None),
    };
    let (parts, body) = req.into_parts();
    let (bytes, _held) = match tokio::time::timeout(b.timeout, read_within(body, limit, &b.budget)).await {
        Ok(Ok(read)) => read,
        Ok(Err(Unread::TooLarge)) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the message is over {limit} bytes"))
        }
        Ok(Err(Unread::OverBudget)) => {
            b.service.metrics.bodies_refused.inc();
            let mut resp = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the node is holding as many request bytes as it takes at once; retry in a moment".into(),
            );
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        Ok(Err(Unread::Broken)) => return refuse(StatusCode::BAD_REQUEST, "the body could not be read".into()),
        Err(_) => {
            let why = format!("the body did not arrive within {} ms", b.timeout.as_millis());
            return refuse(StatusCode::REQUEST_TIMEOUT, why);
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// The connections open, in all and per source; a [`Slot`] holds one until it drops.
#[derive(Default)]
struct Connections {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// One open connection, counted until dropped.
struct Slot {
    connections: Arc<Mutex<Connections>>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.connections.lock().expect("not poisoned");
        c.total -= 1;
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

/// The source a connection counts against: its IPv4 address, or its IPv6 /64 (one host is usually given a
/// whole /64, so counting addresses would let it open a cap's worth from each).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A slot for a connection from `source`, or `None` past a cap.
fn admit(connections: &Arc<Mutex<Connections>>, limits: &Limits, source: IpAddr) -> Option<Slot> {
    let source = source_of(source);
    let mut c = connections.lock().expect("not poisoned");
    let mine = c.by_source.get(&source).copied().unwrap_or(0);
    if c.total >= limits.max_connections || mine >= limits.max_connections_per_source {
        return None;
    }
    c.total += 1;
    *c.by_source.entry(source).or_insert(0) += 1;
    Some(Slot { connections: connections.clone(), source })
}

/// The API's routes. Every body is read whole first, within its route's limit, `body_timeout` and the budget of
/// `body_bytes_in_flight` (`read_body`); axum's own 2 MB extractor limit is lifted, since that is the one limit.
pub fn router(s: Arc<Service>, limits: &Limits) -> Router {
    let bodies = Bodies {
        timeout: limits.body_timeout,
        budget: Arc::new(tokio::sync::Semaphore::new(
            limits.body_bytes_in_flight.min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
        service: s.clone(),
    };
    Router::new()
        .route("/", get(console))
        .route("/v1/invoke", post(invoke))
        .route("/v1/applets", post(deploy).get(applets))
        .route("/v1/governance", post(governance))
        .route("/v1/receipts/{hash}", get(receipt))
        .route("/v1/entries/{index}", get(entry))
        .route("/v1/audit", get(audit))
        .route("/v1/pod", get(pod))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/genesis", get(genesis))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(s.clone())
        .merge(super::mcp::router(s))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint (see /openapi.json)".into(), None) })
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(bodies, read_body))
}

fn error(status: StatusCode, reason: String, audit: Option<u64>) -> Response {
    (status, Json(json!({ "error": reason, "audit_index": audit }))).into_response()
}

fn refused(s: &Service, route: &str, r: Refused) -> Response {
    let audit = r.audit_index();
    let resp = match r {
        Refused::BadRequest(why, _) => error(StatusCode::BAD_REQUEST, why, audit),
        Refused::Forbidden(why, _) => error(StatusCode::FORBIDDEN, why, audit),
        Refused::NotFound(why, _) => error(StatusCode::NOT_FOUND, why, audit),
        Refused::Conflict(why, _) => error(StatusCode::CONFLICT, why, audit),
        Refused::Misdirected(why) => error(StatusCode::MISDIRECTED_REQUEST, why, None),
        Refused::Unavailable(why) => error(StatusCode::SERVICE_UNAVAILABLE, why, None),
        Refused::TooMany(why) => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, why, None);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Refused::Redirect(why, urls) => {
            let mut resp =
                (StatusCode::TEMPORARY_REDIRECT, Json(json!({ "error": why, "endpoints": urls }))).into_response();
            if let Some(first) = urls.first() {
                let loc = format!("{}{route}", first.trim_end_matches('/'));
                if let Ok(v) = HeaderValue::from_str(&loc) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
            }
            resp
        }
    };
    s.metrics.http(route, resp.status().as_u16());
    resp
}

fn is_cbor(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/cbor"))
}

/// The reader of a GET of `uri` ([`super::reads`]), or the answer that refuses it: 401 with a challenge for each
/// way in, or 429.
fn reader(s: &Service, route: &str, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<Reader, Box<Response>> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let resp = match s.reader(auth, "GET", path) {
        Ok(r) => return Ok(r),
        Err(NoRead::Unauthenticated(why)) => {
            let mut resp = error(StatusCode::UNAUTHORIZED, why, None);
            let challenge = format!("{} realm=\"{}\", Bearer", super::reads::SCHEME, s.pod().replace(['"', '\\'], ""));
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
        Err(NoRead::TooMany) => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "this key is over its request rate".into(), None);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    };
    s.metrics.http(route, resp.status().as_u16());
    Err(Box::new(resp))
}

async fn invoke(State(s): State<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_cbor(&headers) {
        let why = "a signed request is sent as application/cbor (see `sigil invoke`)".to_string();
        s.metrics.http("/v1/invoke", 415);
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, why, None);
    }
    match s.invoke(&body).await {
        Ok(inv) => {
            s.metrics.http("/v1/invoke", 200);
            Json(inv).into_response()
        }
        Err(r) => refused(&s, "/v1/invoke", r),
    }
}

async fn deploy(State(s): State<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_cbor(&headers) {
        s.metrics.http("/v1/applets", 415);
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a deployment is sent as application/cbor".into(), None);
    }
    match s.deploy(&body).await {
        Ok((c, d)) => {
            s.metrics.http("/v1/applets", 201);
            let body = json!({ "index": c.index, "height": c.height, "name": d.name, "version": d.version,
                "code_digest": d.code_digest.to_hex() });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(r) => refused(&s, "/v1/applets", r),
    }
}

async fn governance(State(s): State<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_cbor(&headers) {
        s.metrics.http("/v1/governance", 415);
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a governance entry is sent as application/cbor".into(),
            None,
        );
    }
    match s.govern(&body).await {
        Ok((c, kind)) => {
            s.metrics.http("/v1/governance", 201);
            (StatusCode::CREATED, Json(json!({ "index": c.index, "height": c.height, "kind": kind }))).into_response()
        }
        Err(r) => refused(&s, "/v1/governance", r),
    }
}

async fn applets(State(s): State<Arc<Service>>) -> Response {
    let Some(rules) = s.node.rules() else { return error(StatusCode::SERVICE_UNAVAILABLE, "starting".into(), None) };
    let mut list: Vec<Value> = rules
        .applets
        .iter()
        .map(|(name, d)| {
            let m = &d.manifest;
            json!({
                "name": name, "version": m.version, "description": m.description, "code_digest": m.code_digest.to_hex(),
                "deployed_at_index": d.index, "deterministic": m.deterministic,
                "methods": m.methods.iter().map(|x| json!({ "name": x.name, "description": x.description,
                    "input_schema": x.input_schema.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()) }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!({ "applets": list })).into_response()
}

/// An entry as JSON for people: hashes and keys in hex.
pub fn entry_json(index: u64, e: &Entry) -> Value {
    let key = |b: &[u8]| if b.is_empty() { Value::Null } else { Value::String(format!("ed25519:{}", hex::encode(b))) };
    let mut v = match e {
        Entry::Invocation(i) => json!({
            "request_hash": i.request_hash.to_hex(), "caller": key(&i.caller), "applet": i.applet, "method": i.method,
            "code_digest": i.code_digest.to_hex(), "input_hash": i.input_hash.to_hex(), "output_hash": i.output_hash.to_hex(),
            "write_set_hash": i.write_set_hash.to_hex(), "executor": i.executor, "executor_attestation": i.executor_attestation,
            "policy": i.policy, "outcome": i.outcome, "fuel_used": i.fuel_used, "at_ms": i.at_ms, "delegate": i.delegate }),
        Entry::RequestRejected(r) => json!({
            "request_hash": r.request_hash.to_hex(), "caller": key(&r.caller), "applet": r.applet, "method": r.method,
            "reason": r.reason, "node": r.node, "at_ms": r.at_ms }),
        Entry::AppletDeployed(d) => {
            json!({ "name": d.name, "version": d.version, "code_digest": d.code_digest.to_hex(), "prior": d.prior,
            "approvals": d.approvals.iter().map(|a| a.member.clone()).collect::<Vec<_>>() })
        }
        Entry::NodeAdmitted(a) => {
            json!({ "node": a.validator.name, "key": key(&a.validator.public_key), "prior": a.prior })
        }
        Entry::NodeRemoved(r) => json!({ "node": r.name, "reason": r.reason, "prior": r.prior }),
        Entry::Reattested(r) => json!({ "node": r.node }),
        Entry::NodeSuspended(s) => {
            json!({ "node": s.name, "cause": s.cause, "attestation": s.attestation, "reason": s.reason })
        }
        Entry::NodeReinstated(r) => json!({ "node": r.validator.name, "key": key(&r.validator.public_key),
            "anchor_height": r.anchor.height }),
        Entry::PolicyChanged(p) => json!({ "policy": p.policy, "prior": p.prior }),
        Entry::Genesis(g) => json!({ "pod": g.pod, "jurisdiction": g.jurisdiction, "created_at": g.created_at,
            "validators": g.validators.iter().map(|v| v.name.clone()).collect::<Vec<_>>() }),
    };
    v["index"] = json!(index);
    v["kind"] = json!(e.kind());
    v
}

fn parse_hash(s: &str) -> Result<Hash, String> {
    let b = hex::decode(s).map_err(|_| format!("{s:?} is not hex"))?;
    Hash::from_slice(&b).ok_or_else(|| format!("a hash is 32 bytes (64 hex digits), not {}", b.len()))
}

#[derive(Deserialize)]
struct ReceiptQuery {
    format: Option<String>,
}

async fn receipt(
    State(s): State<Arc<Service>>,
    Path(hash): Path<String>,
    Query(q): Query<ReceiptQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let reader = match reader(&s, "/v1/receipts", &headers, &uri) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let h = match parse_hash(&hash) {
        Ok(h) => h,
        Err(why) => return error(StatusCode::BAD_REQUEST, why, None),
    };
    // Another caller's request is answered as one that is not there: a hash says nothing about whose it is.
    let not_here = || error(StatusCode::NOT_FOUND, format!("no request {hash} of yours in pod {:?}", s.pod()), None);
    let index = match s.find_request(&h) {
        Ok(Some(i)) => i,
        Ok(None) => return not_here(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
    };
    let e = s.node.ledger().lock().expect("not poisoned").entry(index);
    let e = match e {
        Ok(e) if reader.sees(&e) => e,
        Ok(_) => return not_here(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    };
    let receipt = match s.receipt_at(index) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
    };
    let raw = q.format.as_deref() == Some("cose")
        || headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/cose"));
    if raw {
        return match receipt {
            Some(r) => ([(header::CONTENT_TYPE, "application/cose")], r).into_response(),
            None => error(StatusCode::ACCEPTED, "committed; no cosigned checkpoint covers it yet".into(), None),
        };
    }
    Json(json!({ "index": index, "entry": entry_json(index, &e), "receipt": receipt.map(|r| base64_encode(&r)) }))
        .into_response()
}

async fn entry(
    State(s): State<Arc<Service>>,
    Path(index): Path<u64>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let reader = match reader(&s, "/v1/entries", &headers, &uri) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let e = s.node.ledger().lock().expect("not poisoned").entry(index);
    // Another caller's entry is answered as one that is not there, as a receipt is: which indexes are other
    // callers' is theirs to know.
    match e {
        Ok(e) if reader.sees(&e) => Json(entry_json(index, &e)).into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no entry {index} of yours (a caller reads its own)"), None),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string(), None),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Request hash (hex).
    request: Option<String>,
    /// Caller key: hex or `ed25519:hex`.
    caller: Option<String>,
    applet: Option<String>,
    /// Unix ms, inclusive.
    from_ms: Option<u64>,
    /// Unix ms, exclusive.
    to_ms: Option<u64>,
    limit: Option<usize>,
    /// The previous page's `next`.
    after: Option<String>,
}

async fn audit(
    State(s): State<Arc<Service>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let reader = match reader(&s, "/v1/audit", &headers, &uri) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad query: {e}"), None),
    };
    match audit_page(&s, &q, &reader) {
        Ok(v) => Json(v).into_response(),
        Err((status, why)) => error(status, why, None),
    }
}

/// A page of the audit log for `reader`: a caller's own entries only (its key is the filter when it names none).
fn audit_page(s: &Service, q: &AuditQuery, reader: &Reader) -> Result<Value, (StatusCode, String)> {
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let caller = match &q.caller {
        Some(c) => {
            let b = hex::decode(c.strip_prefix("ed25519:").unwrap_or(c)).map_err(|_| bad("caller: not hex".into()))?;
            if b.len() != 32 {
                return Err(bad("caller: an Ed25519 key is 32 bytes".into()));
            }
            Some(b)
        }
        None => None,
    };
    let caller = match (reader.only(), caller) {
        (Some(me), Some(c)) if c.as_slice() != me => {
            let why = "a caller reads only its own entries (members and auditors read all)".to_string();
            return Err((StatusCode::FORBIDDEN, why));
        }
        (Some(me), _) => Some(me.to_vec()),
        (None, c) => c,
    };
    audit_entries(s, q, caller, limit).map_err(bad)
}

fn audit_entries(s: &Service, q: &AuditQuery, caller: Option<Vec<u8>>, limit: usize) -> Result<Value, String> {
    let l = s.node.ledger();
    let l = l.lock().expect("not poisoned");
    let matches = |e: &Entry| {
        let (c, a, t) = match e {
            Entry::Invocation(i) => (&i.caller, &i.applet, i.at_ms),
            Entry::RequestRejected(r) => (&r.caller, &r.applet, r.at_ms),
            _ => return false,
        };
        caller.as_ref().is_none_or(|k| k == c.as_slice())
            && q.applet.as_ref().is_none_or(|x| x == a)
            && q.from_ms.is_none_or(|f| t >= f)
            && q.to_ms.is_none_or(|x| t < x)
    };
    let mut out = Vec::new();
    let next: Option<String>;
    if let Some(r) = &q.request {
        let h = parse_hash(r)?;
        for i in [l.by_request(&h).map_err(|e| e.to_string())?, l.by_rejection(&h).map_err(|e| e.to_string())?]
            .into_iter()
            .flatten()
        {
            let e = l.entry(i).map_err(|e| e.to_string())?;
            if matches(&e) {
                out.push(entry_json(i, &e));
            }
        }
        next = None;
    } else if caller.is_some() || q.applet.is_some() || q.from_ms.is_some() || q.to_ms.is_some() {
        let lq = match (&caller, &q.applet) {
            (Some(c), _) => LedgerQuery::Caller(c.clone()),
            (None, Some(a)) => LedgerQuery::Applet(a.clone()),
            (None, None) => {
                LedgerQuery::TimeRange { from_ms: q.from_ms.unwrap_or(0), to_ms: q.to_ms.unwrap_or(u64::MAX) }
            }
        };
        let after = q.after.as_deref().map(hex::decode).transpose().map_err(|_| "after: not a page token")?;
        let page = l.query(&lq, after.as_deref(), limit).map_err(|e| e.to_string())?;
        for i in page.indexes {
            let e = l.entry(i).map_err(|e| e.to_string())?;
            if matches(&e) {
                out.push(entry_json(i, &e));
            }
        }
        next = page.next.map(hex::encode);
    } else {
        // No filter: the newest first.
        let mut i = match &q.after {
            Some(a) => a.parse::<u64>().map_err(|_| "after: not a page token")?,
            None => l.size(),
        };
        while i > 0 && out.len() < limit {
            i -= 1;
            let e = l.entry(i).map_err(|e| e.to_string())?;
            if matches(&e) {
                out.push(entry_json(i, &e));
            }
        }
        next = (i > 0).then(|| i.to_string());
    }
    Ok(json!({ "entries": out, "next": next }))
}

/// A validator's attestation as `GET /v1/pod` shows it: platform, measurement, TCB status, verdict.
pub type Verdict = (String, String, Option<String>, String);

/// How long a validator's verdict is reused: it changes with its evidence (part of the cache key) or the policy
/// (kept beside it and compared), and otherwise only with time (a certificate or collateral expiring).
const VERDICT_TTL: Duration = Duration::from_secs(60);

/// The pod's status: nodes, platform, measurement, TCB, last attestation, height. Evidence is verified outside the
/// ledger lock, and each verdict is reused for [`VERDICT_TTL`], so a stream of status requests costs the commit
/// path a few reads each.
pub fn pod_status(s: &Service) -> Result<Value, String> {
    let rules = s.node.rules().ok_or("the node is starting")?;
    let tip = s.node.tip().borrow().clone();
    let now = std::time::Instant::now();
    let (g, policy_index, validators) = {
        let l = s.node.ledger();
        let l = l.lock().expect("not poisoned");
        let Entry::Genesis(g) = l.entry(0).map_err(|e| e.to_string())? else { return Err("no genesis".into()) };
        let last_change = |subject: Subject<'_>| sigil_pod::last_change(&l, subject).map_err(|e| e.to_string());
        let policy_index = last_change(Subject::Policy)?;
        let mut validators = Vec::new();
        for v in rules.set.validators.iter() {
            let name = v.name.clone();
            let att = rules.attestations.get(&name).copied();
            // Reused only if made under the very policy this status is judged by.
            let cached = att
                .and_then(|i| s.verdicts.get(&(name.clone(), i)))
                .filter(|(at, policy, _)| now.duration_since(*at) < VERDICT_TTL && **policy == rules.policy)
                .map(|(_, _, v)| v);
            // The evidence (and the nonce it binds) is read only when its verdict must be worked out again.
            let evidence = match att {
                Some(_) if cached.is_some() => None,
                Some(i) => sigil_pod::standing::attestation_evidence(&l, i, &name).ok().map(|(_, e, n)| (e, n)),
                None => None,
            };
            let at_ms = rules.attested_at.get(&name).copied().unwrap_or(0);
            let member_index = last_change(Subject::Membership(&name))?;
            validators.push((v.clone(), att, at_ms, member_index, cached, evidence));
        }
        (g, policy_index, validators)
    };
    let mut suspended: Vec<Value> = rules
        .suspended
        .iter()
        .map(|(name, s)| {
            json!({ "name": name, "key": format!("ed25519:{}", hex::encode(s.key)), "suspended_at_height": s.height,
                "suspended_at_ms": s.at_ms })
        })
        .collect();
    suspended.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut nodes = Vec::new();
    for (v, att, at_ms, member_index, cached, evidence) in validators {
        let name = v.name.clone();
        let verdict: Verdict = match (cached, evidence, att) {
            (Some(c), _, _) => c,
            (None, Some((ev, nonce)), Some(att)) => {
                let result = sigil_pod::admission::verify(
                    &rules.policy,
                    &g.pod,
                    &v.public_key.0,
                    &nonce,
                    &ev,
                    sigil_primitives::clock::now_secs(),
                );
                let verdict = match result {
                    Ok(r) => (r.platform.as_str().to_string(), r.measurement, r.tcb_status, "accepted".to_string()),
                    Err(e) => ("unknown".into(), String::new(), None, format!("rejected: {e}")),
                };
                s.verdicts.put((name.clone(), att), (now, Arc::new(rules.policy.clone()), verdict.clone()));
                verdict
            }
            _ => ("unknown".into(), String::new(), None, "no evidence".into()),
        };
        let (platform, measurement, tcb, verdict) = verdict;
        nodes.push(json!({
            "name": name, "key": format!("ed25519:{}", hex::encode(v.public_key.0)), "attestation_index": att,
            "membership_index": member_index,
            "attested_at_ms": if at_ms > 0 { Some(at_ms) } else { None },
            "attestation_age_s": (at_ms > 0).then(|| sigil_primitives::clock::now_ms().saturating_sub(at_ms) / 1000),
            "platform": platform,
            "measurement": measurement, "tcb_status": tcb, "verdict": verdict, "this_node": name == s.node.name(),
            "labels": if name == s.node.name() { json!(s.labels) } else { json!({}) },
        }));
    }
    Ok(json!({
        "pod": g.pod, "jurisdiction": g.jurisdiction, "node": s.node.name(), "height": tip.height, "size": tip.size,
        "root": tip.root.to_hex(), "validators": nodes, "members": g.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "threshold": g.threshold, "uptime_s": s.uptime(), "other_pods": s.directory.pods,
        "insecure_sim": rules.policy.sim.allow, "policy_index": policy_index,
        "reattestation": { "every_s": rules.policy.reattestation.every_s, "window_s": rules.policy.reattestation.window_s,
            "max_age_s": rules.policy.reattestation.max_age_ms().map(|ms| ms / 1000) },
        "suspended": suspended,
    }))
}

async fn pod(State(s): State<Arc<Service>>) -> Response {
    match pod_status(&s) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e, None),
    }
}

async fn checkpoint(State(s): State<Arc<Service>>) -> Response {
    let cp = s.node.ledger().lock().expect("not poisoned").latest_checkpoint();
    match cp {
        Ok(Some(cp)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], cp.to_note()).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no cosigned checkpoint yet".into(), None),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

async fn genesis(State(s): State<Arc<Service>>) -> Response {
    let g = s.node.ledger().lock().expect("not poisoned").entry_bytes(0);
    match g {
        Ok(b) => ([(header::CONTENT_TYPE, "application/cbor")], b).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None),
    }
}

async fn health(State(s): State<Arc<Service>>) -> Response {
    let t = s.node.tip().borrow().clone();
    if s.node.app_stopped() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the consensus app stopped".into(), None);
    }
    Json(json!({ "status": "ok", "height": t.height, "size": t.size })).into_response()
}

async fn metrics(State(s): State<Arc<Service>>) -> Response {
    let t = s.node.tip().borrow().clone();
    let validators = s.node.rules().map(|r| r.set.validators.len()).unwrap_or(0);
    let text = s.metrics.render(&[
        ("sigil_height", "The last committed height.", t.height as f64),
        ("sigil_ledger_size", "Entries in the ledger.", t.size as f64),
        ("sigil_validators", "Validators of the next height.", validators as f64),
        ("sigil_uptime_seconds", "Seconds since the node started.", s.uptime() as f64),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn console() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("console.html")).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}

/// Serves the API over TLS on `listener` until `stop` fires.
pub async fn serve(
    s: Arc<Service>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(s.clone(), &limits);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(Mutex::new(Connections::default()));
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = admit(&connections, &limits, peer.ip()) else {
            s.metrics.connections_refused.inc();
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // A connection holds its slot through the handshake: 5 s, so silent ones give it back soon.
            let tls = match tokio::time::timeout(std::time::Duration::from_secs(5), acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake: {e}");
                    return;
                }
                Err(_) => return,
            };
            let app = WithSource { app, source: super::oauth::Source(source_of(peer.ip())) };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r { tracing::debug!(%peer, "HTTP: {e}") },
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

/// The router, with each request told its connection's source (for limits kept per source).
#[derive(Clone)]
struct WithSource {
    app: Router,
    source: super::oauth::Source,
}

impl<B> tower_service::Service<axum::http::Request<B>> for WithSource
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = <Router as tower_service::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<axum::http::Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.source);
        tower_service::Service::call(&mut self.app, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_count_against_their_ipv4_address_or_ipv6_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b), "one /64");
        assert_ne!(source_of(a), source_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_of(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
        let connections = Arc::new(Mutex::new(Connections::default()));
        let limits = Limits { max_connections: 3, max_connections_per_source: 2, ..Default::default() };
        let s1 = admit(&connections, &limits, a).expect("first");
        let _s2 = admit(&connections, &limits, b).expect("second from the /64");
        assert!(admit(&connections, &limits, a).is_none(), "the /64's cap");
        let _s3 = admit(&connections, &limits, other).expect("another source");
        assert!(admit(&connections, &limits, "192.0.2.1".parse().unwrap()).is_none(), "the total cap");
        drop(s1);
        let s4 = admit(&connections, &limits, "192.0.2.1".parse().unwrap());
        assert!(s4.is_some(), "a slot came back");
        assert_eq!(connections.lock().unwrap().total, 3);
        drop(s4);
        assert_eq!(connections.lock().unwrap().by_source.len(), 2, "a source with no connection is forgotten");
    }
}
