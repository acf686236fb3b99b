//! The client side: `sigil keys`, `sigil invoke`, `sigil audit`, `sigil applet deploy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ledger::request::{Request, SignedRequest};
use ledger::Entry;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use serde_json::{json, Value};
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil::service::{base64_decode, Deployment};

/// Exit status of a refusal (the node answered, and said no).
const REFUSED: u8 = 1;
/// Exit status of a usage, I/O or connection error.
const ERROR: u8 = 2;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate an Ed25519 key (a caller's or a member's) into FILE: 64 hex digits of seed, readable by you
    /// only. Prints the public key as `ed25519:<hex>`, the form manifests' access rules use.
    ///
    /// Example:
    ///   sigil keys generate --out alice.key
    #[command(verbatim_doc_comment)]
    Generate {
        /// Where to write the key (refused if it exists, unless --force).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite FILE.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        key: PathBuf,
    },
}

/// How the client reaches and trusts a node.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// The node's API, https://HOST:PORT (see `DIR/devnet.json` for a devnet's).
    #[arg(long, value_name = "URL", env = "SIGIL_API")]
    pub api: String,
    /// The pod's genesis: the node's attested certificate must satisfy its policy and name its pod. Without it
    /// the default policy applies (no debug guests, no revoked TCB, no simulated TEEs), except that simulated
    /// evidence is accepted from a node on 127.0.0.1 (a devnet on this machine), with a warning.
    #[arg(long, value_name = "FILE", env = "SIGIL_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Trust a node that serves an operator certificate (plain TLS, no attestation) issued by this CA (PEM or
    /// DER), instead of an attested certificate.
    #[arg(long, value_name = "FILE", conflicts_with = "genesis")]
    pub ca: Option<PathBuf>,
}

/// `sigil invoke`.
#[derive(Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The caller's key file (`sigil keys generate`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The applet.
    applet: String,
    /// The method.
    method: String,
    /// The arguments (JSON).
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Where to save the receipt (COSE), to verify with `sigil receipt verify`.
    #[arg(long, value_name = "FILE")]
    receipt_out: Option<PathBuf>,
    /// The pod the request is for (default: the node's). A node of another pod redirects to the home pod's
    /// nodes, and the request is sent there.
    #[arg(long)]
    pod: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `sigil audit`.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this caller's requests: a key file, `ed25519:<hex>` or hex.
    #[arg(long)]
    caller: Option<String>,
    /// Only requests to this applet.
    #[arg(long)]
    applet: Option<String>,
    /// Only this request (its hash, hex: the task id `sigil invoke` prints).
    #[arg(long)]
    request: Option<String>,
    /// Only entries made at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only entries made before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Entries per page.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Fetch every page.
    #[arg(long)]
    all: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `sigil applet deploy`.
#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The member's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The member's name in the pod's genesis.
    #[arg(long)]
    member: String,
    /// The manifest (TOML).
    manifest: PathBuf,
    /// The wasm module.
    module: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(ERROR)
}

pub fn keys(cmd: KeysCommand) -> ExitCode {
    let r = match cmd {
        KeysCommand::Generate { out, force } => generate(&out, force),
        KeysCommand::Show { key } => {
            read_key(&key).map(|k| println!("ed25519:{}", hex::encode(k.public_key().as_ref())))
        }
    };
    r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
}

fn generate(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!("{} exists (pass --force to replace it)", out.display());
    }
    let seed: [u8; 32] = random()?;
    write_key(out, &seed)?;
    let k = Ed25519KeyPair::from_seed_unchecked(&seed).expect("32 bytes");
    println!("ed25519:{}", hex::encode(k.public_key().as_ref()));
    eprintln!("wrote {} (keep it secret)", out.display());
    Ok(())
}

pub use sigil::service::random;

/// Writes a key file readable by its owner only.
pub fn write_key(out: &Path, seed: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("writing {}", out.display()))?;
    writeln!(f, "{}", hex::encode(seed))?;
    Ok(())
}

/// Reads a key file (64 hex digits).
pub fn read_key(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let seed = crate::node_cmd::read_seed(path)?;
    Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A client of `--api`, trusting it per `--genesis`.
fn client(a: &ApiArgs) -> anyhow::Result<Client> {
    if let Some(ca) = &a.ca {
        let bytes = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let der = if bytes.starts_with(b"-----BEGIN") {
            let text = String::from_utf8(bytes).context("a PEM file is text")?;
            let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            base64_decode(&b64).map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?
        } else {
            bytes
        };
        eprintln!("note: trusting an operator certificate (plain TLS): the node is not checked by attestation");
        return Client::new(Endpoint::parse(&a.api)?, Trust::Ca(vec![der]));
    }
    client_of(&a.api, a.genesis.as_deref())
}

fn client_of(url: &str, genesis: Option<&Path>) -> anyhow::Result<Client> {
    let endpoint = Endpoint::parse(url)?;
    let trust = match genesis {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let Entry::Genesis(g) =
                Entry::decode(&bytes).with_context(|| format!("{} is not a genesis", p.display()))?
            else {
                bail!("{} is not a genesis entry", p.display())
            };
            let policy = sigil::pod::admission::parse_policy(&g.policy).map_err(|e| anyhow::anyhow!(e))?;
            Trust::Policy { pod: g.pod, policy: Box::new(policy) }
        }
        None => Trust::Default { loopback_sim: endpoint.is_loopback() },
    };
    Client::new(endpoint, trust)
}

/// Says what the client trusted, once per run.
fn report_trust(c: &Client, quiet: bool) {
    let seen = c.seen.lock().expect("not poisoned").clone();
    if let (Some(cert), Some(r)) = (seen.cert, seen.result) {
        if r.platform.as_str() == "sim" {
            eprintln!(
                "warning: node {} of pod {} has SIMULATED (insecure) TEE evidence, accepted because it is on this machine",
                cert.name, cert.pod
            );
        } else if !quiet {
            eprintln!(
                "node {} of pod {}: {} evidence accepted, measurement {}",
                cert.name,
                cert.pod,
                r.platform.as_str(),
                r.measurement
            );
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

pub fn invoke(a: InvokeArgs) -> ExitCode {
    runtime().block_on(invoke_async(a)).unwrap_or_else(fail)
}

async fn invoke_async(a: InvokeArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&a.key)?;
    serde_json::from_str::<Value>(&a.args).with_context(|| format!("--args {:?} is not JSON", a.args))?;
    let mut c = client(&a.api)?;
    let status = c.get("/v1/pod").await?;
    report_trust(&c, a.json);
    let home = c.seen.lock().expect("not poisoned").cert.as_ref().map(|x| x.pod.clone()).unwrap_or_default();
    let pod = a.pod.clone().unwrap_or(home);
    if status.status != 200 {
        bail!("the node's status: {} {}", status.status, status.error());
    }
    let nonce: [u8; 16] = random()?;
    let request = Request {
        pod: pod.clone(),
        applet: a.applet.clone(),
        method: a.method.clone(),
        args: ByteBuf::from(a.args.as_bytes().to_vec()),
        nonce: ByteBuf::from(nonce.to_vec()),
        issued_at_ms: sigil::pod::app::now_ms(),
        caller: ByteBuf::from(key.public_key().as_ref().to_vec()),
    };
    let body = request.sign(&key).encode();
    let hash = SignedRequest::hash_of(&body);
    if !a.json {
        eprintln!(
            "request {} sent to {}:{}; waiting for the commit...",
            hash.to_hex(),
            c.endpoint.host,
            c.endpoint.port
        );
    }
    let mut resp = c.post_cbor("/v1/invoke", body.clone()).await?;
    if resp.status == 307 {
        let loc = resp.location.clone().context("a redirect without a Location")?;
        let base = loc.trim_end_matches("/v1/invoke").to_string();
        eprintln!(
            "pod {pod:?} is served elsewhere: redirected to {base} (the request is sent there, not through this node)"
        );
        c = client_of(&base, a.api.genesis.as_deref())?;
        resp = c.post_cbor("/v1/invoke", body).await?;
        report_trust(&c, a.json);
        let there = c.seen.lock().expect("not poisoned").cert.as_ref().map(|x| x.pod.clone()).unwrap_or_default();
        if there != pod {
            bail!("redirected to a node of pod {there:?}, not {pod:?}");
        }
    }
    if resp.status != 200 {
        let v = resp.json().unwrap_or(json!({ "error": resp.error() }));
        if a.json {
            println!(
                "{}",
                json!({ "committed": false, "status": resp.status, "error": v["error"], "audit_index": v["audit_index"], "request_hash": hash.to_hex() })
            );
        } else {
            eprintln!("refused ({}): {}", resp.status, v["error"].as_str().unwrap_or(""));
            if let Some(i) = v["audit_index"].as_u64() {
                eprintln!("the refusal is audited: ledger entry {i}");
            }
        }
        return Ok(ExitCode::from(if resp.status >= 500 { ERROR } else { REFUSED }));
    }
    let mut v = resp.json()?;
    let mut receipt = v["receipt"].as_str().map(base64_decode).transpose().map_err(|e| anyhow::anyhow!(e))?;
    if receipt.is_none() {
        // Committed, but no cosigned checkpoint covered it yet: ask again for a while.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let r = c.get(&format!("/v1/receipts/{}?format=cose", hash.to_hex())).await?;
            if r.status == 200 {
                receipt = Some(r.body);
                break;
            }
        }
    }
    if let (Some(path), Some(r)) = (&a.receipt_out, &receipt) {
        std::fs::write(path, r).with_context(|| format!("writing {}", path.display()))?;
    }
    let outcome = v["outcome"].as_str().unwrap_or("").to_string();
    if a.json {
        v["committed"] = json!(true);
        v["receipt_file"] = json!(a.receipt_out.as_ref().map(|p| p.display().to_string()));
        println!("{v}");
    } else {
        println!(
            "committed at ledger index {} (height {}), executed by {}",
            v["index"],
            v["height"],
            v["executor"].as_str().unwrap_or("")
        );
        println!("outcome: {outcome}");
        println!("output:  {}", v["output"].as_str().unwrap_or(""));
        println!("task id: {}", hash.to_hex());
        match (&a.receipt_out, &receipt) {
            (Some(p), Some(_)) => println!("receipt: {} (verify: sigil receipt verify {} --genesis GENESIS)", p.display(), p.display()),
            (Some(_), None) => eprintln!("warning: no cosigned checkpoint covers the entry yet; fetch the receipt later with `sigil audit --request {}`", hash.to_hex()),
            _ => {}
        }
    }
    if outcome != "ok" {
        eprintln!("note: the applet did not end ok ({outcome}); the receipt records that");
    }
    if a.receipt_out.is_some() && receipt.is_none() {
        return Ok(ExitCode::from(ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(a: AuditArgs) -> ExitCode {
    runtime().block_on(audit_async(a)).unwrap_or_else(fail)
}

fn rfc3339_ms(s: &str) -> anyhow::Result<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is not an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
}

async fn audit_async(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let c = client(&a.api)?;
    let mut params = vec![format!("limit={}", a.limit)];
    if let Some(x) = &a.caller {
        let key = if Path::new(x).exists() {
            format!("ed25519:{}", hex::encode(read_key(Path::new(x))?.public_key().as_ref()))
        } else {
            x.clone()
        };
        params.push(format!("caller={key}"));
    }
    if let Some(x) = &a.applet {
        params.push(format!("applet={x}"));
    }
    if let Some(x) = &a.request {
        params.push(format!("request={x}"));
    }
    if let Some(x) = &a.since {
        params.push(format!("from_ms={}", rfc3339_ms(x)?));
    }
    if let Some(x) = &a.until {
        params.push(format!("to_ms={}", rfc3339_ms(x)?));
    }
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = params.clone();
        if let Some(t) = &after {
            q.push(format!("after={t}"));
        }
        let r = c.get(&format!("/v1/audit?{}", q.join("&"))).await?;
        if r.status != 200 {
            eprintln!("refused ({}): {}", r.status, r.error());
            return Ok(ExitCode::from(REFUSED));
        }
        let v = r.json()?;
        entries.extend(v["entries"].as_array().cloned().unwrap_or_default());
        after = v["next"].as_str().map(str::to_string);
        if !a.all || after.is_none() {
            break;
        }
    }
    report_trust(&c, true);
    if a.json {
        println!("{}", json!({ "entries": entries, "next": after }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>7}  {:<16}  {:<24}  {:<10}  {:<18}  what", "index", "kind", "time (UTC)", "applet", "caller");
    for e in &entries {
        let at = e["at_ms"].as_u64().unwrap_or(0);
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(at as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        let caller = e["caller"].as_str().map(|c| format!("{}…", &c[..c.len().min(16)])).unwrap_or("-".into());
        let what = match e["kind"].as_str() {
            Some("invocation") => format!(
                "{} → {} (by {})",
                e["method"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
                e["executor"].as_str().unwrap_or("")
            ),
            _ => format!("refused: {}", e["reason"].as_str().unwrap_or("")),
        };
        println!(
            "{:>7}  {:<16}  {:<24}  {:<10}  {:<18}  {what}",
            e["index"].as_u64().unwrap_or(0),
            e["kind"].as_str().unwrap_or(""),
            &t[..t.len().min(24)],
            e["applet"].as_str().unwrap_or(""),
            caller
        );
    }
    if let Some(n) = after {
        println!("(more: pass --all, or the page token {n})");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn deploy(a: DeployArgs) -> ExitCode {
    runtime().block_on(deploy_async(a)).unwrap_or_else(fail)
}

/// The deployment of `manifest` + `module`, approved by `member` with `key`, for `pod`.
pub fn deployment(
    pod: &str,
    manifest: &enclave_runtime::Manifest,
    module: &[u8],
    member: &str,
    key: &Ed25519KeyPair,
) -> Deployment {
    let (mut e, a) = sigil::pod::state::deployment(manifest, module);
    e.approve(pod, member, key).expect("a deployment takes approvals");
    Deployment { entry: ByteBuf::from(e.encode()), code: ByteBuf::from(a.code) }
}

async fn deploy_async(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&a.key)?;
    let text = std::fs::read_to_string(&a.manifest).with_context(|| format!("reading {}", a.manifest.display()))?;
    let module = std::fs::read(&a.module).with_context(|| format!("reading {}", a.module.display()))?;
    let manifest = enclave_runtime::Manifest::from_toml(&text, &module)?;
    let c = client(&a.api)?;
    let status = c.get("/v1/pod").await?;
    report_trust(&c, a.json);
    if status.status != 200 {
        bail!("the node's status: {} {}", status.status, status.error());
    }
    let pod = status.json()?["pod"].as_str().context("the status names no pod")?.to_string();
    let d = deployment(&pod, &manifest, &module, &a.member, &key);
    if !a.json {
        eprintln!(
            "deploying {} {} ({}) to pod {pod:?}; waiting for the commit...",
            manifest.name, manifest.version, manifest.code_digest
        );
    }
    let r = c.post_cbor("/v1/applets", ledger::entry::canonical_encode(&d)).await?;
    if r.status != 201 {
        eprintln!("refused ({}): {}", r.status, r.error());
        return Ok(ExitCode::from(if r.status >= 500 { ERROR } else { REFUSED }));
    }
    let v = r.json()?;
    if a.json {
        println!("{v}");
    } else {
        println!("deployed {} {} at ledger index {}", manifest.name, manifest.version, v["index"]);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum McpCommand {
    /// Get an OAuth access token for a node's MCP endpoint (`https://HOST:PORT/mcp`), for MCP clients that take a
    /// fixed `Authorization: Bearer` header.
    ///
    /// The token stands for KEY: the node grants it (client_credentials, private_key_jwt) for a client assertion
    /// signed with KEY, and signs each tool call as KEY's delegate under that assertion. It is valid on that node
    /// only, until the assertion expires (--lifetime, at most 3600 s). Prints the token on stdout.
    ///
    /// Example:
    ///   sigil mcp token --api https://127.0.0.1:8443 --key caller.key --lifetime 600
    #[command(verbatim_doc_comment)]
    Token {
        #[command(flatten)]
        api: ApiArgs,
        /// The caller's key file (64 hex digits).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Seconds the token (the assertion behind it) stays valid.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        lifetime: u64,
        /// Print the token response (JSON) instead of the token.
        #[arg(long)]
        json: bool,
    },
    /// Check a node's attested certificate and save it (PEM), for MCP clients that trust a certificate file.
    ///
    /// The certificate is checked as `sigil invoke` checks it (its evidence under --genesis's policy, or the default
    /// policy) before it is written; the file then pins that node for clients that cannot check attestation.
    ///
    /// Example:
    ///   sigil mcp pin --api https://127.0.0.1:8443 --genesis pod-genesis.cbor --out node.pem
    #[command(verbatim_doc_comment)]
    Pin {
        #[command(flatten)]
        api: ApiArgs,
        /// Where to write the PEM certificate.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn mcp(cmd: McpCommand) -> ExitCode {
    let r = match cmd {
        McpCommand::Token { api, key, lifetime, json } => runtime().block_on(mcp_token(&api, &key, lifetime, json)),
        McpCommand::Pin { api, out } => runtime().block_on(mcp_pin(&api, &out)),
    };
    r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
}

/// The path of an absolute URL (`https://host:port/a/b` → `/a/b`), if it has one.
fn url_path(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    rest.find('/').map(|i| &rest[i..])
}

/// Discovers the node's authorization server and gets a token for `key`.
pub async fn access_token(c: &Client, key: &Ed25519KeyPair, lifetime: u64) -> anyhow::Result<Value> {
    let meta = c.get("/.well-known/oauth-protected-resource/mcp").await?;
    if meta.status != 200 {
        bail!("the node's resource metadata: {} {}", meta.status, meta.error());
    }
    let issuer = meta.json()?["authorization_servers"][0].as_str().context("no authorization server")?.to_string();
    let path = url_path(&issuer).unwrap_or("");
    let server = c.get(&format!("/.well-known/oauth-authorization-server{path}")).await?;
    if server.status != 200 {
        bail!("the authorization server's metadata: {} {}", server.status, server.error());
    }
    let server = server.json()?;
    if server["issuer"].as_str() != Some(issuer.as_str()) {
        bail!("the authorization server's metadata names issuer {}, not {issuer}", server["issuer"]);
    }
    let token_url = server["token_endpoint"].as_str().context("no token endpoint")?;
    let token_path = url_path(token_url).unwrap_or("/");
    let jti = hex::encode(random::<16>()?);
    let now = sigil::pod::app::now_ms() / 1000;
    let assertion = ledger::request::client_assertion(key, &issuer, now, lifetime, &jti);
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")];
    let r = c.connect().await?.send_with("POST", token_path, &headers, form.into_bytes()).await?;
    let v = r.json().unwrap_or(Value::Null);
    if r.status != 200 {
        bail!("the token endpoint refused: {} {} ({})", r.status, v["error"], v["error_description"]);
    }
    Ok(v)
}

async fn mcp_token(a: &ApiArgs, key: &Path, lifetime: u64, json: bool) -> anyhow::Result<()> {
    let key = read_key(key)?;
    let c = client(a)?;
    let v = access_token(&c, &key, lifetime).await?;
    report_trust(&c, json);
    if json {
        println!("{v}");
    } else {
        println!("{}", v["access_token"].as_str().context("no access_token")?);
        eprintln!(
            "a bearer token for {} at {}/mcp, valid for {} s on this node",
            ledger::request::client_id(key.public_key().as_ref().try_into().expect("32 bytes")),
            a.api.trim_end_matches('/'),
            v["expires_in"]
        );
    }
    Ok(())
}

async fn mcp_pin(a: &ApiArgs, out: &Path) -> anyhow::Result<()> {
    let c = client(a)?;
    c.get("/healthz").await?;
    report_trust(&c, false);
    let seen = c.seen.lock().expect("not poisoned").clone();
    let (Some(cert), Some(r)) = (seen.cert, seen.result) else {
        bail!("the node's certificate was not checked by attestation (an operator certificate is pinned by its CA)");
    };
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&cert.der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    std::fs::write(out, pem).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {}: node {} of pod {}, {} evidence accepted, measurement {}",
        out.display(),
        cert.name,
        cert.pod,
        r.platform.as_str(),
        r.measurement
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a pod policy (TOML) and say what it accepts; warns where it accepts what a production pod should not.
    ///
    /// Exit status: 0 valid, 1 valid but with warnings (simulated TEEs, debug guests, no measurement pinned),
    /// 2 invalid or unreadable. `sigil attest policy` prints every key, documented.
    ///
    /// Example:
    ///   sigil policy check pod-policy.toml
    #[command(verbatim_doc_comment)]
    Check {
        /// The policy file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Propose a policy change: the `policy_changed` governance entry, approved by a member.
    ///
    /// With --api it is submitted and waits until committed (a pod whose threshold is 1 member); with --out it is
    /// written for the other members' `sigil policy approve`, then `sigil policy submit`. Validators check the
    /// policy parses and the approvals against the genesis's members and threshold.
    ///
    /// Examples:
    ///   sigil policy propose new-policy.toml --member ops --key member.key --api https://127.0.0.1:8443
    ///   sigil policy propose new-policy.toml --member ops --key ops.key --pod eu --out change.cbor
    #[command(verbatim_doc_comment)]
    Propose {
        /// The new policy (TOML).
        file: PathBuf,
        /// The approving member's name (as in the genesis).
        #[arg(long)]
        member: String,
        /// The member's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The pod (default: the --api node's).
        #[arg(long)]
        pod: Option<String>,
        /// Write the approved entry here instead of submitting it.
        #[arg(long, value_name = "FILE", conflicts_with = "api")]
        out: Option<PathBuf>,
        #[command(flatten)]
        api: Option<ApiArgs>,
    },
    /// Add a member's approval to a governance entry written by `propose --out`.
    Approve {
        /// The entry (CBOR).
        entry: PathBuf,
        /// The approving member's name.
        #[arg(long)]
        member: String,
        /// The member's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The pod.
        #[arg(long)]
        pod: String,
        /// Where to write the entry with the added approval (may be ENTRY itself).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Submit an approved governance entry and wait until it is committed.
    Submit {
        /// The entry (CBOR).
        entry: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub fn policy(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Check { file, json } => policy_check(&file, json).unwrap_or_else(fail),
        PolicyCommand::Propose { file, member, key, pod, out, api } => runtime()
            .block_on(policy_propose(&file, &member, &key, pod, out, api))
            .map(|()| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        PolicyCommand::Approve { entry, member, key, pod, out } => {
            let r = (|| {
                let bytes = std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
                let mut e =
                    Entry::decode(&bytes).with_context(|| format!("{} is not a ledger entry", entry.display()))?;
                e.approve(&pod, &member, &read_key(&key)?).map_err(|e| anyhow::anyhow!(e))?;
                std::fs::write(&out, e.encode()).with_context(|| format!("writing {}", out.display()))?;
                eprintln!("{member} approved the {} entry: {}", e.kind(), out.display());
                Ok(())
            })();
            r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        PolicyCommand::Submit { entry, api } => runtime()
            .block_on(async {
                let bytes = std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
                submit_governance(&api, bytes).await
            })
            .map(|()| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
    }
}

/// What an operator should know about a pod policy that parses: what it lets in.
pub(crate) fn policy_warnings(p: &attest::Policy) -> Vec<String> {
    let mut warnings = Vec::new();
    if p.sim.allow {
        warnings
            .push("[sim] allow = true: SIMULATED TEEs are accepted (INSECURE: for devnets and tests only)".to_string());
    }
    if p.snp.allow_debug {
        warnings.push("[snp] allow_debug = true: the host can read and write debug guests' memory".into());
    }
    if p.tdx.allow_debug {
        warnings.push("[tdx] allow_debug = true: the host can read and write debug TDs' memory".into());
    }
    if p.snp.measurements.is_empty() {
        warnings.push(
            "[snp] measurements is empty: any SEV-SNP guest image is accepted (sigil measure snp gives one)".into(),
        );
    }
    if p.tdx.mrtd.is_empty() {
        warnings.push("[tdx] mrtd is empty: any TDX guest firmware is accepted".into());
    }
    warnings
}

fn policy_check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let p = attest::Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let warnings = policy_warnings(&p);
    let summary = serde_json::json!({
        "valid": true,
        "snp": { "measurements": p.snp.measurements.len(), "allow_debug": p.snp.allow_debug, "vmpl": p.snp.vmpl,
                 "min_tcb": p.snp.min_tcb.to_string(), "min_guest_svn": p.snp.min_guest_svn },
        "tdx": { "mrtd": p.tdx.mrtd.len(), "allow_debug": p.tdx.allow_debug, "accepted_tcb_status": p.tdx.accepted_tcb_status },
        "sim": { "allow": p.sim.allow },
        "warnings": warnings,
    });
    if json {
        println!("{summary}");
    } else {
        println!("{}: valid", file.display());
        println!(
            "  sev-snp: {} measurement(s) pinned, VMPL {}, min TCB {}, debug {}",
            p.snp.measurements.len(),
            p.snp.vmpl,
            p.snp.min_tcb,
            if p.snp.allow_debug { "ALLOWED" } else { "refused" }
        );
        println!(
            "  tdx:     {} MRTD(s) pinned, TCB status accepted: {}, debug {}",
            p.tdx.mrtd.len(),
            p.tdx.accepted_tcb_status.join(", "),
            if p.tdx.allow_debug { "ALLOWED" } else { "refused" }
        );
        println!("  sim:     {}", if p.sim.allow { "ACCEPTED (insecure)" } else { "refused" });
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(if warnings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(REFUSED) })
}

async fn policy_propose(
    file: &Path,
    member: &str,
    key: &Path,
    pod: Option<String>,
    out: Option<PathBuf>,
    api: Option<ApiArgs>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    attest::Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let key = read_key(key)?;
    let pod = match (pod, &api) {
        (Some(p), _) => p,
        (None, Some(a)) => {
            let c = client(a)?;
            c.get("/healthz").await?;
            let home = c.seen.lock().expect("not poisoned").cert.as_ref().map(|x| x.pod.clone());
            home.context("the node's pod is unknown (an operator certificate): pass --pod")?
        }
        (None, None) => bail!("pass --pod (with --out) or --api"),
    };
    let mut e = Entry::PolicyChanged(ledger::entry::PolicyChanged { policy: text, approvals: vec![] });
    e.approve(&pod, member, &key).map_err(|e| anyhow::anyhow!(e))?;
    match (out, api) {
        (Some(out), _) => {
            std::fs::write(&out, e.encode()).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} (approved by {member}); more approvals: sigil policy approve", out.display());
            Ok(())
        }
        (None, Some(a)) => submit_governance(&a, e.encode()).await,
        (None, None) => bail!("pass --api or --out"),
    }
}

async fn submit_governance(a: &ApiArgs, entry: Vec<u8>) -> anyhow::Result<()> {
    let c = client(a)?;
    let r = c.post_cbor("/v1/governance", entry).await?;
    report_trust(&c, false);
    if r.status != 201 {
        bail!("the node refused the entry: {} {}", r.status, r.error());
    }
    let v = r.json()?;
    println!("committed: {} at index {} (height {})", v["kind"].as_str().unwrap_or("?"), v["index"], v["height"]);
    Ok(())
}
