//! `sigil invoke`: sign a request, send it to a node, wait for its commit, verify and save its receipt.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use ring::signature::KeyPair;
use serde_bytes::ByteBuf;
use serde_json::{json, Value};
use sigil::service::{base64_decode, random};
use sigil_ledger::request::{Request, SignedRequest};

use crate::cli::{client, client_of, fail, report_trust, runtime, ApiArgs, ERROR, REFUSED};
use crate::keys_cmd::read_key;

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
        issued_at_ms: sigil_primitives::clock::now_ms(),
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
            let r = c.get_signed(&format!("/v1/receipts/{}?format=cose", hash.to_hex()), &key, &pod).await?;
            if r.status == 200 {
                receipt = Some(r.body);
                break;
            }
        }
    }
    // Nothing is saved unverified: the receipt must verify against the pod's genesis and be this request's.
    let pinned = a.api.genesis.is_some();
    if let Some(r) = &receipt {
        let genesis = match &a.api.genesis {
            Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            None => {
                let g = c.get("/v1/genesis").await?;
                if g.status != 200 {
                    bail!("the node's genesis: {} {}", g.status, g.error());
                }
                eprintln!(
                    "warning: no --genesis: the pod is NOT pinned. The node's evidence was checked against the default \
                     policy only (any measurement), and the receipt against the genesis the node itself served \
                     (sha256 {}). Pin the pod with --genesis FILE or SIGIL_GENESIS.",
                    sigil_ledger::Hash::digest(&g.body).to_hex()
                );
                g.body
            }
        };
        check_receipt(r, &genesis, &hash, &v)?;
    }
    if let (Some(path), Some(r)) = (&a.receipt_out, &receipt) {
        std::fs::write(path, r).with_context(|| format!("writing {}", path.display()))?;
    }
    let outcome = v["outcome"].as_str().unwrap_or("").to_string();
    if a.json {
        v["committed"] = json!(true);
        v["receipt_file"] = json!(a.receipt_out.as_ref().map(|p| p.display().to_string()));
        v["receipt_verified"] = json!(receipt.is_some());
        v["genesis_pinned"] = json!(pinned);
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
            (Some(p), Some(_)) => println!(
                "receipt: {} (verified against {}; again: sigil receipt verify {} --genesis GENESIS)",
                p.display(),
                if pinned { "the pinned genesis" } else { "the node's own genesis, not pinned" },
                p.display()
            ),
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

/// Checks a receipt the node returned before anything keeps it or prints what the node said: it verifies against
/// `genesis` (every check `sigil receipt verify` makes), proves the invocation of request `hash`, and the node's
/// answer `v` (index, executor, outcome, output) is what that invocation records.
fn check_receipt(receipt: &[u8], genesis: &[u8], hash: &sigil_ledger::Hash, v: &Value) -> anyhow::Result<()> {
    let r = sigil_ledger::receipt::Receipt::decode(receipt).context("the node's receipt")?;
    let mut report = r.verify_request(genesis, hash);
    crate::receipt_cmd::judge_executor(&mut report, None);
    if !report.valid {
        bail!("the node's receipt does not verify (not saved): {}", report.reasons.join("; "));
    }
    let Ok(sigil_ledger::Entry::Invocation(inv)) = sigil_ledger::Entry::decode(&r.entry) else {
        bail!("the node's receipt is not of an invocation (not saved)");
    };
    let output = v["output"].as_str().unwrap_or("");
    let answered = (v["index"].as_u64(), v["executor"].as_str(), v["outcome"].as_str());
    if answered != (Some(r.index), Some(inv.executor.as_str()), Some(inv.outcome.as_str())) {
        bail!("the node's answer (index, executor, outcome) is not what its receipt records (not saved)");
    }
    if sigil_ledger::Hash::digest(output.as_bytes()) != inv.output_hash {
        if output.contains('\u{fffd}') {
            eprintln!("note: the output is not UTF-8 as printed; check it against the receipt's output hash");
        } else {
            bail!("the node's output does not hash to the receipt's output hash (not saved)");
        }
    }
    Ok(())
}
