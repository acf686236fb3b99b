//! What the client commands share: how they reach and trust a node (`--api`, `--genesis`, `--ca`), the client
//! they build from it, what they report of the node's attestation, and their exit statuses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use sigil::service::base64_decode;
use sigil::service::client::{Client, Endpoint};
use sigil::service::tls::Trust;
use sigil_ledger::Entry;

/// Exit status of a refusal (the node answered, and said no).
pub(crate) const REFUSED: u8 = 1;
/// Exit status of a usage, I/O or connection error.
pub(crate) const ERROR: u8 = 2;

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

pub(crate) fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(ERROR)
}

/// A client of `--api`, trusting it per `--genesis`.
pub(crate) fn client(a: &ApiArgs) -> anyhow::Result<Client> {
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
        return Ok(Client::new(Endpoint::parse(&a.api)?, Trust::Ca(vec![der]))?);
    }
    client_of(&a.api, a.genesis.as_deref())
}

pub(crate) fn client_of(url: &str, genesis: Option<&Path>) -> anyhow::Result<Client> {
    let endpoint = Endpoint::parse(url)?;
    let trust = match genesis {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let Entry::Genesis(g) =
                Entry::decode(&bytes).with_context(|| format!("{} is not a genesis", p.display()))?
            else {
                bail!("{} is not a genesis entry", p.display())
            };
            let policy = sigil_pod::admission::parse_policy(&g.policy).map_err(|e| anyhow::anyhow!(e))?;
            Trust::Policy { pod: g.pod, policy: Box::new(policy) }
        }
        None => Trust::Default { loopback_sim: endpoint.is_loopback() },
    };
    Ok(Client::new(endpoint, trust)?)
}

/// The pod of `c`'s node: its attested certificate names it; behind an operator certificate, the genesis it serves.
/// Signed reads name it ([`sigil::service::reads`]).
pub(crate) async fn pod_of(c: &Client) -> anyhow::Result<String> {
    let attested = || c.seen.lock().expect("not poisoned").cert.as_ref().map(|x| x.pod.clone());
    if let Some(pod) = attested() {
        return Ok(pod);
    }
    let g = c.get("/v1/genesis").await?;
    if let Some(pod) = attested() {
        return Ok(pod);
    }
    if g.status != 200 {
        bail!("the node's genesis: {} {}", g.status, g.error());
    }
    match Entry::decode(&g.body) {
        Ok(Entry::Genesis(g)) => Ok(g.pod),
        _ => bail!("the node's genesis does not decode"),
    }
}

/// Says what the client trusted, once per run.
pub(crate) fn report_trust(c: &Client, quiet: bool) {
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

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}
