//! `sigil applet check | run | deploy`: check and run applets locally, in the same enclave runtime a node uses, and
//! deploy them to a pod with a member's approval.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ring::signature::Ed25519KeyPair;
use serde_bytes::ByteBuf;
use serde_json::json;
use sigil::service::Deployment;
use sigil_ledger::Hash;
use sigil_runtime::{Call, Manifest, MemState, Runtime, RuntimeConfig, RuntimeError};

use crate::cli::{client, fail, report_trust, runtime as async_runtime, ApiArgs, ERROR, REFUSED};
use crate::keys_cmd::read_key;

#[derive(Subcommand)]
pub enum AppletCommand {
    /// Check a manifest and its module: the digest, the manifest's rules, every import against the host ABI and
    /// every method export. Prints what the applet is and may do. Exit 0 if it would load, 1 if not.
    ///
    /// Example:
    ///   sigil applet check applets/notes/sigil.toml notes.wasm
    #[command(verbatim_doc_comment)]
    Check {
        /// The manifest (TOML); without `code_digest` it is computed from MODULE.
        manifest: PathBuf,
        /// The wasm module.
        module: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run one method locally, as a node would (limits, capabilities, access rules), and print the outcome,
    /// the output and the receipt fields. Nothing is signed or committed.
    ///
    /// Key-value state lives in memory, or in --state FILE (JSON), which is read first and written back only when
    /// the run ends `ok` — so successive runs see each other's writes. Exit status: 0 outcome ok, 1 any other
    /// outcome or a refusal, 2 usage or I/O error.
    ///
    /// Examples:
    ///   sigil applet run applets/notes/sigil.toml notes.wasm put --args '{"key":"a","value":"1"}' --state s.json
    ///   sigil applet run applets/notes/sigil.toml notes.wasm get --args '{"key":"a"}' --state s.json --json
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Deploy an applet to a pod: the manifest and module, approved by a member of the pod (signed with the
    /// member's key), checked and compiled by the node, committed through consensus. The approval names the
    /// deployment it replaces (asked of the node), so it cannot be replayed later to roll the applet back.
    ///
    /// Example:
    ///   sigil applet deploy --api https://127.0.0.1:8443 --key member.key --member ops applets/notes/sigil.toml notes.wasm
    #[command(verbatim_doc_comment)]
    Deploy(DeployArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The manifest (TOML).
    manifest: PathBuf,
    /// The wasm module.
    module: PathBuf,
    /// The method to call.
    method: String,
    /// The input, as text (usually JSON).
    #[arg(long, value_name = "JSON", default_value = "")]
    args: String,
    /// The caller's key, `ed25519:<64 hex digits>` (default: the all-zero key, admitted by `callers = ["*"]`).
    #[arg(long, value_name = "KEY")]
    caller: Option<String>,
    /// Key-value state file (JSON); created if missing.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// The clock the applet sees, Unix milliseconds (default: now).
    #[arg(long, value_name = "MS")]
    now_ms: Option<u64>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: AppletCommand) -> ExitCode {
    let r = match cmd {
        AppletCommand::Check { manifest, module, json } => check(&manifest, &module, json),
        AppletCommand::Run(a) => run_method(a),
        AppletCommand::Deploy(a) => return deploy(a),
    };
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

fn read(manifest: &Path, module: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let wasm = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    Ok((text, wasm))
}

fn runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig::default())?)
}

fn check(manifest: &Path, module: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let (text, wasm) = read(manifest, module)?;
    let loaded = Manifest::from_toml(&text, &wasm)
        .and_then(|m| runtime().map_err(|e| RuntimeError::Engine(e.to_string()))?.load(&m, &wasm).map(|_| m));
    let m = match loaded {
        Ok(m) => m,
        Err(e) => {
            if as_json {
                println!("{}", json!({ "ok": false, "error": e.to_string() }));
            } else {
                println!("refused: {e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let caps = &m.capabilities;
    let mut granted: Vec<String> = caps
        .kv
        .iter()
        .map(|g| {
            let access = match g.access {
                sigil_runtime::manifest::KvAccess::Read => "read",
                sigil_runtime::manifest::KvAccess::ReadWrite => "read_write",
            };
            format!("kv {} ({access})", g.namespace)
        })
        .collect();
    if let Some(h) = &caps.http {
        granted.push(format!("http to {}", h.allow.join(", ")));
    }
    for (on, name) in [(caps.log, "log"), (caps.clock, "clock"), (caps.random, "random")] {
        if on {
            granted.push(name.into());
        }
    }
    if as_json {
        println!(
            "{}",
            json!({
                "ok": true,
                "name": m.name,
                "version": m.version,
                "code_digest": m.code_digest.to_hex(),
                "manifest_digest": m.digest().to_hex(),
                "deterministic": m.deterministic,
                "methods": m.methods.iter().map(|x| &x.name).collect::<Vec<_>>(),
                "capabilities": granted,
            })
        );
    } else {
        println!("ok: {} {} would load", m.name, m.version);
        println!("  code digest      {}", m.code_digest);
        println!("  manifest digest  {} (SHA-256 of the canonical CBOR members sign)", m.digest());
        println!("  methods          {}", m.methods.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", "));
        println!("  capabilities     {}", if granted.is_empty() { "none".into() } else { granted.join("; ") });
        println!("  deterministic    {}", m.deterministic);
    }
    Ok(ExitCode::SUCCESS)
}

fn encode_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.starts_with("hex:") => s.to_string(),
        _ => format!("hex:{}", hex::encode(b)),
    }
}

fn decode_text(s: &str) -> anyhow::Result<Vec<u8>> {
    match s.strip_prefix("hex:") {
        Some(h) => Ok(hex::decode(h).context("bad hex: value")?),
        None => Ok(s.as_bytes().to_vec()),
    }
}

fn load_state(path: &Path) -> anyhow::Result<(MemState, u64)> {
    let state = MemState::new();
    if !path.exists() {
        return Ok((state, 0));
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)
        .with_context(|| format!("{} is not a state file (JSON)", path.display()))?;
    let version = v["version"].as_u64().context("state file: no version")?;
    for e in v["entries"].as_array().context("state file: no entries")? {
        let field = |k: &str| e[k].as_str().with_context(|| format!("state file: entry without {k}"));
        state.insert(
            field("namespace")?,
            &decode_text(field("key")?)?,
            &decode_text(field("value")?)?,
            e["version"].as_u64().context("state file: entry without version")?,
        );
    }
    Ok((state, version))
}

fn save_state(path: &Path, state: &MemState, version: u64) -> anyhow::Result<()> {
    let entries: Vec<_> = state
        .entries()
        .into_iter()
        .map(|(n, k, v, ver)| json!({ "namespace": n, "key": encode_text(&k), "value": encode_text(&v), "version": ver }))
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json!({ "version": version, "entries": entries }))?)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn run_method(a: RunArgs) -> anyhow::Result<ExitCode> {
    let (text, wasm) = read(&a.manifest, &a.module)?;
    let caller: [u8; 32] = match &a.caller {
        None => [0; 32],
        Some(c) => {
            let h = c.strip_prefix("ed25519:").unwrap_or(c);
            let b = hex::decode(h).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            match b {
                Some(k) => k,
                None => bail!("--caller: expected ed25519:<64 hex digits>, got {c:?}"),
            }
        }
    };
    let (state, version) = match &a.state {
        Some(p) => load_state(p)?,
        None => (MemState::new(), 0),
    };
    let state = Arc::new(state);
    let now_ms = a.now_ms.unwrap_or_else(sigil_primitives::clock::now_ms);
    let manifest = Manifest::from_toml(&text, &wasm)?;
    let rt = runtime()?;
    let applet = rt.load(&manifest, &wasm)?;
    let mut request = b"sigil applet run\0".to_vec();
    request.extend_from_slice(a.method.as_bytes());
    request.extend_from_slice(a.args.as_bytes());
    request.extend_from_slice(&now_ms.to_be_bytes());
    let call =
        Call { request_hash: Hash::digest(&request), caller, method: &a.method, input: a.args.as_bytes(), now_ms };
    let e = match rt.invoke(&applet, &call, state.clone()) {
        Ok(e) => e,
        Err(RuntimeError::Refused(r)) => {
            if a.json {
                println!("{}", json!({ "outcome": "refused", "reason": r.to_string() }));
            } else {
                println!("refused before running: {r}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if e.outcome.is_ok() {
        if let Some(p) = &a.state {
            state.apply(&e.write_set, version + 1).context("applying the write set")?;
            save_state(p, &state, version + 1)?;
        }
    }
    let r = &e.receipt;
    if a.json {
        println!(
            "{}",
            json!({
                "outcome": r.outcome,
                "output": String::from_utf8_lossy(&e.output),
                "fuel_used": e.fuel_used,
                "writes": e.write_set.writes.len(),
                "logs": e.logs.iter().map(|l| &l.message).collect::<Vec<_>>(),
                "receipt": {
                    "request_hash": r.request_hash.to_hex(),
                    "code_digest": r.code_digest.to_hex(),
                    "input_hash": r.input_hash.to_hex(),
                    "output_hash": r.output_hash.to_hex(),
                    "write_set_hash": r.write_set_hash.to_hex(),
                    "at_ms": r.at_ms,
                },
            })
        );
    } else {
        println!("outcome    {}", r.outcome);
        if !e.output.is_empty() {
            println!("output     {}", String::from_utf8_lossy(&e.output));
        }
        println!("fuel used  {}", e.fuel_used);
        println!("writes     {}", e.write_set.writes.len());
        for l in &e.logs {
            println!("log        {}", l.message);
        }
        println!("receipt fields (what a node signs and the ledger commits):");
        println!("  code_digest     {}", r.code_digest);
        println!("  input_hash      {}", r.input_hash);
        println!("  output_hash     {}", r.output_hash);
        println!("  write_set_hash  {}", r.write_set_hash);
    }
    Ok(if e.outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
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

pub fn deploy(a: DeployArgs) -> ExitCode {
    async_runtime().block_on(deploy_async(a)).unwrap_or_else(fail)
}

/// The deployment of `manifest` + `module`, approved by `member` with `key`, for `pod`, replacing the deployment
/// at ledger index `prior` (0: a new applet).
pub fn deployment(
    pod: &str,
    (manifest, module): (&sigil_runtime::Manifest, &[u8]),
    prior: u64,
    member: &str,
    key: &Ed25519KeyPair,
) -> Deployment {
    let (mut e, a) = sigil_pod::deployment(manifest, module, prior);
    e.approve(pod, member, key).expect("a deployment takes approvals");
    Deployment { entry: ByteBuf::from(e.encode()), code: ByteBuf::from(a.code) }
}

async fn deploy_async(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let key = read_key(&a.key)?;
    let text = std::fs::read_to_string(&a.manifest).with_context(|| format!("reading {}", a.manifest.display()))?;
    let module = std::fs::read(&a.module).with_context(|| format!("reading {}", a.module.display()))?;
    let manifest = sigil_runtime::Manifest::from_toml(&text, &module)?;
    let c = client(&a.api)?;
    let status = c.get("/v1/pod").await?;
    report_trust(&c, a.json);
    if status.status != 200 {
        bail!("the node's status: {} {}", status.status, status.error());
    }
    let pod = status.json()?["pod"].as_str().context("the status names no pod")?.to_string();
    // The deployment this one replaces: approvals name it, so they cannot be replayed to roll the applet back.
    let listed = c.get("/v1/applets").await?;
    if listed.status != 200 {
        bail!("the node's applets: {} {}", listed.status, listed.error());
    }
    let current = listed.json()?["applets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["name"].as_str() == Some(manifest.name.as_str()))
        .map(|x| x["deployed_at_index"].as_u64().context("an applet without deployed_at_index"))
        .transpose()?;
    let d = deployment(&pod, (&manifest, &module), current.unwrap_or(0), &a.member, &key);
    if !a.json {
        eprintln!(
            "deploying {} {} ({}) to pod {pod:?}; waiting for the commit...",
            manifest.name, manifest.version, manifest.code_digest
        );
    }
    let r = c.post_cbor("/v1/applets", sigil_primitives::cbor::encode(&d)).await?;
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
