//! MCP on a devnet: an MCP client that is not ours (the official Python SDK, `mcp` on PyPI) authenticates with
//! OAuth (client_credentials + private_key_jwt), lists the pod's applets as tools and calls them; each call's
//! receipt verifies offline; a caller outside the ticket desk is refused per tool, and audited. Then the protocol
//! edges through raw JSON-RPC: malformed messages get the JSON-RPC error codes, missing or bad tokens get 401,
//! oversized messages and inputs are refused, and a caller-signed request works without a token.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{one_pod_at_a_time, p, sigil, start_devnet, tempdir, text};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use serde_json::{json, Value};
use sigil::service::client::{Client, Connection, Endpoint};
use sigil::service::tls::Trust;
use sigil_ledger::request::{Request, SignedRequest};

/// The Python with the MCP SDK: `SIGIL_MCP_PYTHON`, else the venv `scripts/setup.sh` makes.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SIGIL_MCP_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let p = PathBuf::from(home).join(".cache/sigil-venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (it installs the MCP Python SDK)", p.display());
    p
}

/// Runs the Python SDK client; its events, one JSON object per line.
fn python_client(url: &str, cert: &Path, key: &Path, label: &str, calls: Value) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/interop.py");
    let issuer = format!("{}/oauth/devnet", url.trim_end_matches("/mcp"));
    let out = Command::new(python())
        .args([script, url, p(cert), p(key), label, &issuer, &calls.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "the Python MCP client failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events.iter().find(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

fn called<'a>(events: &'a [Value], tool: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "called" && e["tool"] == tool)
        .unwrap_or_else(|| panic!("no call of {tool} in {events:?}"))
}

#[test]
fn an_mcp_client_that_is_not_ours_lists_and_calls_the_pods_applets_with_receipts() {
    let _one = one_pod_at_a_time();
    let dir = tempdir();
    let data = dir.path().join("pod");
    let (_devnet, info) = start_devnet(&data, 4);
    let api = info["api"][0].as_str().unwrap().to_string();
    let mcp_url = info["mcp"][0].as_str().unwrap().to_string();
    assert_eq!(mcp_url, format!("{api}/mcp"));
    let genesis = PathBuf::from(info["genesis"].as_str().unwrap());
    let desk_key = PathBuf::from(info["keys"]["caller"].as_str().unwrap());

    // The client trusts the certificate `sigil mcp pin` checked (sim evidence, on this machine).
    let cert = dir.path().join("node.pem");
    let o = sigil(&["mcp", "pin", "--api", &api, "--genesis", p(&genesis), "--out", p(&cert)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_to_string(&cert).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    // The desk (the devnet's caller) opens a ticket and stores a note.
    let calls = json!([
        ["notes.put", {"key": "mcp", "value": "from python"}],
        ["tools.create_ticket", {"title": "Printer on fire", "body": "3rd floor", "priority": "high"}],
        ["tools.search_tickets", {"query": "printer"}],
        ["notes.get", {"key": "mcp"}],
    ]);
    let events = python_client(&mcp_url, &cert, &desk_key, "desk", calls);
    let init = event(&events, "initialized");
    assert_eq!(init["server"], "sigil");
    let att = &init["attestation"];
    assert_eq!(att["pod"], "devnet");
    assert_eq!(att["platform"], "sim");
    assert_eq!(att["verdict"], "accepted");
    assert_eq!(att["log"]["origin"], "devnet");
    assert!(init["instructions"].as_str().unwrap().contains("SIMULATED"));
    let tools = event(&events, "tools")["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in ["notes.put", "notes.get", "hash.sha256", "tools.create_ticket", "tools.search_tickets"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let create = tools.iter().find(|t| t["name"] == "tools.create_ticket").unwrap();
    assert_eq!(create["schema"]["required"], json!(["title", "body"]), "the manifest's input schema");
    assert!(create["description"].as_str().unwrap().starts_with("Open a ticket"));

    let put = called(&events, "notes.put");
    assert_eq!(put["is_error"], false, "{put}");
    let ticket = called(&events, "tools.create_ticket");
    assert_eq!(ticket["is_error"], false, "{ticket}");
    assert_eq!(ticket["structured"]["priority"], "high");
    let found = called(&events, "tools.search_tickets");
    assert_eq!(found["structured"]["tickets"][0]["title"], "Printer on fire", "{found}");
    let got = called(&events, "notes.get");
    assert!(got["text"][0].as_str().unwrap().contains("from python"), "{got}");

    // Each call's receipt verifies offline, with nothing but the genesis; a flipped byte does not.
    for (i, e) in events.iter().filter(|e| e["event"] == "called").enumerate() {
        let r = &e["meta"]["io.sigil/receipt"];
        assert_eq!(r["outcome"], "ok");
        let cose = sigil::service::base64_decode(r["receipt"].as_str().unwrap()).unwrap();
        let file = dir.path().join(format!("r{i}.cose"));
        std::fs::write(&file, &cose).unwrap();
        let o = sigil(&["receipt", "verify", p(&file), "--genesis", p(&genesis), "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        // The receipt's entry names the node that signed for the caller's token.
        assert!(String::from_utf8_lossy(&o.stdout).contains(r#""delegate":"node-0""#), "{}", text(&o));
        if i == 0 {
            let mut bad = cose.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 1;
            std::fs::write(&file, &bad).unwrap();
            assert_eq!(sigil(&["receipt", "verify", p(&file), "--genesis", p(&genesis)]).status.code(), Some(1));
        }
    }

    // A stranger may search but not open tickets: refused for that tool only, and audited.
    let stranger = dir.path().join("stranger.key");
    assert!(sigil(&["keys", "generate", "--out", p(&stranger)]).status.success());
    let calls = json!([
        ["tools.search_tickets", {"query": "printer"}],
        ["tools.create_ticket", {"title": "Let me in", "body": "please"}],
    ]);
    let events = python_client(&mcp_url, &cert, &stranger, "stranger", calls);
    let stranger_id = event(&events, "initialized")["caller"].as_str().unwrap().to_string();
    assert_eq!(called(&events, "tools.search_tickets")["is_error"], false);
    let refused = called(&events, "tools.create_ticket");
    assert_eq!(refused["is_error"], true, "{refused}");
    assert!(refused["text"][0].as_str().unwrap().contains("not authorized"), "{refused}");
    let audit_index = refused["meta"]["io.sigil/refused"]["audit_index"].as_u64().expect("an audit index");

    // The stranger reads its own refusal (its key signs the reads).
    let o = sigil(&["audit", "--api", &api, "--genesis", p(&genesis), "--key", p(&stranger), "--all", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let audit: Value = serde_json::from_slice(&o.stdout).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let rejected = entries.iter().find(|e| e["index"] == audit_index).expect("the refusal is in the audit log");
    assert_eq!(rejected["kind"], "request_rejected");
    assert_eq!(rejected["method"], "create_ticket");
    assert!(entries.iter().all(|e| e["caller"] == stranger_id.as_str()), "only its own entries");
    let search = entries.iter().find(|e| e["kind"] == "invocation").expect("the search is audited");
    assert_eq!(search["method"], "search_tickets");
    assert_eq!(search["delegate"], "node-0", "a token call is signed by the node as the caller's delegate");

    protocol_edges(&api, &desk_key, &stranger);
}

/// POSTs one JSON-RPC message (bytes as given) to `/mcp`.
async fn rpc(c: &mut Connection, token: Option<&str>, body: Vec<u8>) -> (u16, Value, Option<String>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    let r = c.send_with("POST", "/mcp", &headers, body).await.unwrap();
    let www = r.headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, www)
}

fn call(name: &str, args: Value, meta: Option<Value>) -> Vec<u8> {
    let mut params = json!({ "name": name, "arguments": args });
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params }).to_string().into_bytes()
}

fn protocol_edges(api: &str, desk_key: &Path, stranger: &Path) {
    let token = |key: &Path| {
        let o = sigil(&["mcp", "token", "--api", api, "--key", p(key), "--lifetime", "120"]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let desk = token(desk_key);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = Client::new(Endpoint::parse(api).unwrap(), Trust::Default { loopback_sim: true }).unwrap();
        let mut c = client.connect().await.unwrap();
        let code = |v: &Value| v["error"]["code"].as_i64();

        // Malformed JSON-RPC: the spec's codes.
        let (s, v, _) = rpc(&mut c, Some(&desk), b"{not json".to_vec()).await;
        assert_eq!((s, code(&v)), (400, Some(-32700)), "{v}");
        let (s, v, _) = rpc(&mut c, Some(&desk), b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".to_vec()).await;
        assert_eq!((s, code(&v)), (400, Some(-32600)), "a batch: {v}");
        let (_, v, _) = rpc(&mut c, Some(&desk), br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec()).await;
        assert_eq!(code(&v), Some(-32600), "{v}");
        let (_, v, _) = rpc(&mut c, Some(&desk), br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#.to_vec()).await;
        assert_eq!(code(&v), Some(-32600), "an object id: {v}");
        let (_, v, _) = rpc(&mut c, Some(&desk), br#"{"jsonrpc":"2.0","id":1,"method":"tickets/steal"}"#.to_vec()).await;
        assert_eq!(code(&v), Some(-32601), "an unknown method: {v}");
        let (_, v, _) =
            rpc(&mut c, Some(&desk), br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#.to_vec())
                .await;
        assert_eq!(code(&v), Some(-32602), "a tool call without a name: {v}");
        let (_, v, _) =
            rpc(&mut c, Some(&desk), br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#.to_vec()).await;
        assert_eq!(code(&v), Some(-32602), "params not an object: {v}");
        let (_, v, _) = rpc(&mut c, Some(&desk), call("notes.nope", json!({}), None)).await;
        assert_eq!(code(&v), Some(-32602), "an unknown tool: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("Unknown tool"), "{v}");
        assert!(v["error"]["data"]["audit_index"].is_u64(), "audited: {v}");
        let (_, v, _) = rpc(&mut c, Some(&desk), call("nodots", json!({}), None)).await;
        assert_eq!(code(&v), Some(-32602), "{v}");

        // Tokens: none, unknown, or a token for a caller the tool refuses.
        let (s, _, www) = rpc(&mut c, None, call("hash.sha256", json!({}), None)).await;
        assert_eq!(s, 401);
        assert!(www.as_deref().unwrap().contains("resource_metadata="), "{www:?}");
        let (s, _, www) = rpc(&mut c, Some("forged-token"), call("hash.sha256", json!({}), None)).await;
        assert_eq!(s, 401);
        assert!(www.as_deref().unwrap().contains("invalid_token"), "{www:?}");
        let (s, v, _) = rpc(&mut c, Some(&desk), call("hash.sha256", json!({"x": 1}), None)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"]["isError"], false, "{v}");
        assert!(v["result"]["_meta"]["io.sigil/receipt"]["receipt"].is_string(), "{v}");
        // Its receipt_url answers the token (its caller's own receipt), and nobody without one.
        let url = v["result"]["_meta"]["io.sigil/receipt"]["receipt_url"].as_str().unwrap().to_string();
        let bearer = format!("Bearer {desk}");
        let mut r = client.connect().await.unwrap();
        let got = r.send_with("GET", &url, &[("authorization", bearer.as_str())], vec![]).await.unwrap();
        assert_eq!(got.status, 200, "{}", got.error());
        assert_eq!(got.headers.get("content-type").unwrap(), "application/cose");
        assert_eq!(client.get(&url).await.unwrap().status, 401, "without the token");
        // Listing needs no token.
        let (s, v, _) = rpc(&mut c, None, br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#.to_vec()).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["result"]["tools"].as_array().unwrap().len() >= 9, "{v}");

        // Oversized: the message (before anything is parsed), and an input over the tool's limit (audited).
        let huge = vec![b' '; sigil::service::mcp::MAX_MESSAGE + 1];
        let (s, v, _) = rpc(&mut c, Some(&desk), huge).await;
        assert_eq!((s, code(&v)), (413, Some(-32600)), "{v}");
        let mut c = client.connect().await.unwrap();
        let long = "x".repeat(5000);
        let (_, v, _) = rpc(&mut c, Some(&desk), call("tools.create_ticket", json!({"title": "t", "body": long}), None)).await;
        assert_eq!(v["result"]["isError"], true, "{v}");
        assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains("4096"), "{v}");
        assert!(v["result"]["_meta"]["io.sigil/refused"]["audit_index"].is_u64(), "{v}");

        // A request the caller signed needs no token; it must be this call's.
        let key = Ed25519KeyPair::from_seed_unchecked(&seed(desk_key)).unwrap();
        let args = json!({"note": "signed by the caller"});
        let signed = |args: &Value| {
            let nonce: [u8; 16] = sigil::service::random().unwrap();
            let r = Request {
                pod: "devnet".into(),
                applet: "hash".into(),
                method: "sha256".into(),
                args: ByteBuf::from(serde_json::to_vec(args).unwrap()),
                nonce: ByteBuf::from(nonce.to_vec()),
                issued_at_ms: sigil_primitives::clock::now_ms(),
                caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
            };
            let raw = r.sign(&key).encode();
            (SignedRequest::hash_of(&raw), sigil::service::base64_encode(&raw))
        };
        let (hash, b64) = signed(&args);
        let (s, v, _) = rpc(&mut c, None, call("hash.sha256", args.clone(), Some(json!({"io.sigil/signedRequest": b64})))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["result"]["_meta"]["io.sigil/receipt"]["request_hash"], hash.to_hex(), "{v}");
        let (_, b64) = signed(&args);
        let other = json!({"note": "something else"});
        let (_, v, _) = rpc(&mut c, None, call("hash.sha256", other, Some(json!({"io.sigil/signedRequest": b64})))).await;
        assert_eq!(code(&v), Some(-32602), "a signed request for other arguments: {v}");
        let (_, b64) = signed(&args);
        let (_, v, _) = rpc(&mut c, None, call("notes.get", args, Some(json!({"io.sigil/signedRequest": b64})))).await;
        assert_eq!(code(&v), Some(-32602), "a signed request for another tool: {v}");

        // The token endpoint: an assertion for another pod, a wrong grant, a bad assertion.
        let stranger_key = Ed25519KeyPair::from_seed_unchecked(&seed(stranger)).unwrap();
        let now = sigil_primitives::clock::now_secs();
        let form = |assertion: &str, grant: &str| {
            format!(
                "grant_type={grant}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
            )
            .into_bytes()
        };
        let post = |body: Vec<u8>| async {
            let mut c = client.connect().await.unwrap();
            let r = c
                .send_with("POST", "/oauth/devnet/token", &[("content-type", "application/x-www-form-urlencoded")], body)
                .await
                .unwrap();
            (r.status, r.json().unwrap_or(Value::Null))
        };
        let base = api.trim_end_matches('/');
        let other_pod = sigil_ledger::request::client_assertion(&stranger_key, &format!("{base}/oauth/eu"), now, 60, "a");
        let (s, v) = post(form(&other_pod, "client_credentials")).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
        // The devnet's nodes know their public URL: an assertion made for another server is not exchanged here.
        let phished =
            sigil_ledger::request::client_assertion(&stranger_key, "https://phish.example/oauth/devnet", now, 60, "p");
        let (s, v) = post(form(&phished, "client_credentials")).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
        assert!(v["error_description"].as_str().unwrap().contains("not this node's issuer"), "{v}");
        let good = sigil_ledger::request::client_assertion(&stranger_key, &format!("{base}/oauth/devnet"), now, 60, "b");
        let (s, v) = post(form(&good, "password")).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("unsupported_grant_type")), "{v}");
        let mut flipped = good.clone().into_bytes();
        let at = flipped.len() - 5;
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        let (s, v) = post(form(std::str::from_utf8(&flipped).unwrap(), "client_credentials")).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
        let expired = sigil_ledger::request::client_assertion(&stranger_key, &format!("{base}/oauth/devnet"), now - 120, 60, "c");
        let (s, v) = post(form(&expired, "client_credentials")).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
        let (s, v) = post(form(&good, "client_credentials")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token_type"], "Bearer");
        // One token per assertion: the same assertion again (a replay of what the caller sent) is refused.
        let (s, v) = post(form(&good, "client_credentials")).await;
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
        assert!(v["error_description"].as_str().unwrap().contains("exchanged before"), "{v}");
    });
}

fn seed(path: &Path) -> [u8; 32] {
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap().try_into().unwrap()
}

/// Exchanges a client assertion for an access token at the node: the status and the answer.
async fn exchange(c: &Client, assertion: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let mut conn = c.connect().await.unwrap();
    let r = conn.send_with("POST", "/oauth/pod-h/token", &headers, form.into_bytes()).await.unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_a_node_exchanged_is_not_exchanged_again_after_a_restart_used_or_not() {
    let dir = tempdir();
    let (n, c) = crate::hostile::node(dir.path(), Default::default()).await;
    crate::hostile::deploy_hash(&n).await;
    let caller = Ed25519KeyPair::from_seed_unchecked(&[0x5c; 32]).unwrap();
    let issuer = format!("{}{}", n.url(), sigil_ledger::request::issuer_path("pod-h"));
    let now = sigil_primitives::clock::now_secs();
    let assertion = sigil_ledger::request::client_assertion(&caller, &issuer, now, 600, "one-jti");
    let (status, v) = exchange(&c, &assertion).await;
    assert_eq!(status, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    // Another, exchanged and never used: no block binds it.
    let unused = sigil_ledger::request::client_assertion(&caller, &issuer, now, 600, "unused-jti");
    assert_eq!(exchange(&c, &unused).await.0, 200);
    // A call under the token: the node signs it as the caller's delegate, and the block binds the assertion to it.
    let c = Client::new(Endpoint::parse(&n.url()).unwrap(), Trust::Default { loopback_sim: true }).unwrap();
    let (s, v, _) = rpc(&mut c.connect().await.unwrap(), Some(&token), call("hash.sha256", json!({}), None)).await;
    assert_eq!((s, &v["result"]["isError"]), (200, &json!(false)), "{v}");
    let (status, _) = exchange(&c, &assertion).await;
    assert_eq!(status, 401, "exchanged once");
    // The node restarts: the binding in the ledger and the node's record of what it exchanged outlive it.
    n.stop().await;
    let (n, c) = crate::hostile::node(dir.path(), Default::default()).await;
    for (a, what) in [(&assertion, "used"), (&unused, "never used")] {
        let (status, v) = exchange(&c, a).await;
        assert_eq!(status, 401, "a copy of the {what} assertion buys no token after the restart: {v}");
        assert!(v["error_description"].as_str().unwrap().contains("exchanged before"), "{v}");
    }
    n.stop().await;
}
