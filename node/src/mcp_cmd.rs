//! `sigil mcp token | pin`: a bearer token for a node's MCP endpoint, its certificate pinned.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;
use sigil::service::client::Client;
use sigil::service::random;

use crate::cli::{client, fail, report_trust, runtime, ApiArgs};
use crate::keys_cmd::read_key;

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
    // The assertion names the issuer as its audience: it must be the node this client reached (RFC 8414 §3.3),
    // or a server we were sent to could have us sign an assertion for another node and exchange it there.
    if !c.endpoint.serves(&issuer) {
        bail!(
            "the node names authorization server {issuer:?}, not one at {}:{}: refusing to sign an assertion for it",
            c.endpoint.host,
            c.endpoint.port
        );
    }
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
    let now = sigil_primitives::clock::now_secs();
    let assertion = sigil_ledger::request::client_assertion(key, &issuer, now, lifetime, &jti);
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
            sigil_ledger::request::client_id(key.public_key().as_ref().try_into().expect("32 bytes")),
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
