//! `sigil audit`: query a pod's audit log (invocations and refused requests).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ring::signature::KeyPair;
use serde_json::json;

use crate::cli::{client, fail, pod_of, report_trust, runtime, ApiArgs, REFUSED};
use crate::keys_cmd::read_key;

/// `sigil audit`.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The key that signs the reads: a caller's key reads its own entries; a governance member's, or one of the
    /// node's `[api] auditors`, reads all. Without it, only a node that serves public reads answers.
    #[arg(long, value_name = "FILE", env = "SIGIL_KEY")]
    key: Option<PathBuf>,
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
    let reader = match &a.key {
        Some(k) => Some((read_key(k)?, pod_of(&c).await?)),
        None => None,
    };
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
        let path = format!("/v1/audit?{}", q.join("&"));
        let r = match &reader {
            Some((key, pod)) => c.get_signed(&path, key, pod).await?,
            None => c.get(&path).await?,
        };
        if r.status != 200 {
            eprintln!("refused ({}): {}", r.status, r.error());
            if r.status == 401 && reader.is_none() {
                eprintln!("hint: sign the reads with --key FILE (your caller key, or a member's or auditor's)");
            }
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
