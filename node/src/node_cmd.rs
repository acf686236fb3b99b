//! `sigil node run --config FILE`: one node of a pod.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use sigil::config::{self, NodeFile};
use sigil::service::{ApiConfig, RunningNode};
use sigil_ledger::Entry;
use sigil_pod::{self as pod, PodConfig, PodNode};

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Run a node: open (or create, from the genesis) its ledger, join its pod's consensus over libp2p, and
    /// commit blocks until stopped with Ctrl-C or SIGTERM. Logs go to stderr (`SIGIL_LOG=info` shows every
    /// commit).
    ///
    /// The configuration file (TOML; relative paths are relative to the file):
    ///
    ///   name      = "node-0"                      # the node's name in the ledger (its checkpoint key name)
    ///   identity  = "node-0.key"                  # its identity seed: 64 hex digits (keep it secret)
    ///   data_dir  = "data/node-0"                 # ledger (RocksDB) and consensus WAL
    ///   genesis   = "genesis.cbor"                # the pod's genesis entry (canonical CBOR)
    ///
    ///   [p2p]
    ///   listen = "/ip4/127.0.0.1/tcp/27000"       # libp2p listen address (TCP)
    ///   peers  = ["/ip4/127.0.0.1/tcp/27001/p2p/12D3KooW..."]   # the other nodes; only these may connect
    ///
    ///   [consensus]                               # all optional
    ///   idle_block_ms    = 100                    # wait this long for entries before proposing an empty block
    ///   idle_interval_ms = 10000                  # an idle pod's pause between empty blocks (0: none)
    ///   mempool_capacity = 100000                 # entries queued at most
    ///   propose_ms = 1000, prevote_ms = 500, precommit_ms = 500, round_delta_ms = 250   # round timeouts
    ///
    ///   [api]                                     # optional: without it the node serves no API
    ///   listen = "127.0.0.1:8443"                 # HTTPS: the attested certificate (evidence in an extension)
    ///   cert = "op.crt.der", key = "op.key.der"   # optional: an operator certificate chain (DER) and PKCS#8 key
    ///   max_connections = 4096                    # optional: open connections in all; more are closed on arrival
    ///   max_connections_per_source = 256          # optional: from one address (raise behind a load balancer)
    ///   max_requests_per_caller = 500             # optional: signed requests/s per caller key (429 past it; 0: none)
    ///   public_urls = ["https://node-0.eu.example:8443"]  # optional: where clients reach it (MCP assertions' audience)
    ///   auditors = ["ed25519:<hex>"]              # optional: keys that read every entry (as members do)
    ///   public_reads = false                      # optional: true lets anyone read the audit log and receipts
    ///
    ///   [tee]
    ///   backend = "sim"                           # "sim" (INSECURE, simulated), "snp", "tdx", "azure" or "auto"
    ///                                             # (detect: configfs-tsm, /dev/sev-guest, then Azure's vTPM)
    ///   sim_measurement = "5a5a…"                 # the simulated launch measurement (96 hex digits)
    ///   tpm = "/dev/tpmrm0"                       # azure: the vTPM; imds = "http://169.254.169.254"
    ///
    ///   [labels]                                  # free-form, shown in the pod status and console
    ///   cloud = "aws", region = "eu-central-1"
    ///
    ///   [pods]                                    # other pods' API URLs: requests for them are redirected
    ///   us = ["https://us-node-0.example:8443"]
    ///
    /// Environment overrides: SIGIL_API_LISTEN (the [api] listen address), SIGIL_DATA_DIR (data_dir).
    #[command(verbatim_doc_comment)]
    Run {
        /// The node's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Reads a 32-byte seed written as 64 hex digits (surrounding whitespace allowed).
pub fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading identity {}", path.display()))?;
    let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{}: {} bytes; an identity seed is 32", path.display(), b.len()))
}

fn load(path: &Path) -> anyhow::Result<(PodConfig, Option<ApiConfig>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut f =
        NodeFile::parse(&text).with_context(|| format!("{} is not a valid node configuration", path.display()))?;
    if let Ok(v) = std::env::var("SIGIL_DATA_DIR") {
        f.data_dir = PathBuf::from(v);
    }
    if let Ok(v) = std::env::var("SIGIL_API_LISTEN") {
        match &mut f.api {
            Some(a) => a.listen = v,
            None => f.api = Some(config::Api { listen: v, ..Default::default() }),
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let seed = read_seed(&rel(&f.identity))?;
    let gpath = rel(&f.genesis);
    let gbytes = std::fs::read(&gpath).with_context(|| format!("reading genesis {}", gpath.display()))?;
    let genesis = Entry::decode(&gbytes).with_context(|| format!("{} is not a genesis entry", gpath.display()))?;
    let Entry::Genesis(g) = &genesis else {
        bail!("{} holds a {} entry, not a genesis", gpath.display(), genesis.kind())
    };
    if !g.validators.iter().any(|v| v.name == f.name) {
        tracing::warn!(name = %f.name, pod = %g.pod, "this node is not among the genesis validators");
    }
    let api = match &f.api {
        None => None,
        Some(a) => {
            let listen = a.listen.parse().with_context(|| format!("[api] listen {:?} is not HOST:PORT", a.listen))?;
            let operator_tls = match (&a.cert, &a.key) {
                (Some(c), Some(k)) => {
                    let chain = std::fs::read(rel(c)).with_context(|| format!("reading {}", rel(c).display()))?;
                    let key = std::fs::read(rel(k)).with_context(|| format!("reading {}", rel(k).display()))?;
                    Some((vec![chain], key))
                }
                (None, None) => None,
                _ => bail!("[api] cert and key go together"),
            };
            let key = pod::public_key(&seed);
            let evidence = evidence(&f.tee, &g.pod, &key)?;
            Some(ApiConfig {
                listen,
                operator_tls,
                evidence,
                directory: sigil::service::PodDirectory { pods: f.pods.clone() },
                labels: f.labels.clone(),
                limits: sigil::service::api::Limits {
                    max_connections: a.max_connections,
                    max_connections_per_source: a.max_connections_per_source,
                    requests_per_caller: a.max_requests_per_caller,
                    ..Default::default()
                },
                public_urls: public_urls(&a.public_urls)?,
                public_reads: a.public_reads,
                auditors: a.auditor_keys().map_err(|e| anyhow::anyhow!(e))?,
            })
        }
    };
    // The node re-attests with the same backend, on the pod's schedule (`[reattestation]`).
    let attester = {
        let (tee, pod_id) = (f.tee.clone(), g.pod.clone());
        pod::reattest::Attester::new(move |rd| collect_evidence(&tee, &pod_id, rd).map_err(|e| format!("{e:#}")))
    };
    let c = &f.consensus;
    let delta = Duration::from_millis(c.round_delta_ms);
    let propose = Duration::from_millis(c.propose_ms);
    let (prevote, precommit) = (Duration::from_millis(c.prevote_ms), Duration::from_millis(c.precommit_ms));
    Ok((
        PodConfig {
            name: f.name,
            seed,
            data_dir: rel(&f.data_dir),
            listen: f.p2p.listen,
            peers: f.p2p.peers,
            genesis,
            timeouts: sigil_pod::LinearTimeouts {
                propose,
                propose_delta: delta,
                prevote,
                prevote_delta: delta,
                precommit,
                precommit_delta: delta,
                rebroadcast: propose + prevote + precommit,
                max_timeout: Duration::from_secs(30),
            },
            idle_block: Duration::from_millis(c.idle_block_ms),
            idle_interval: Duration::from_millis(c.idle_interval_ms),
            replay: Default::default(), // the runtime's, set where the node starts (`RunningNode::start`)
            mempool_capacity: c.mempool_capacity,
            attester,
            fault: pod::Fault::None,
        },
        api,
    ))
}

/// The node's evidence for its identity key in `pod`, from the configured TEE backend.
pub(crate) fn evidence(tee: &config::Tee, pod_id: &str, key: &[u8; 32]) -> anyhow::Result<Vec<u8>> {
    collect_evidence(tee, pod_id, &pod::admission::report_data(pod_id, key, &[]))
}

/// Evidence over `report_data` (a node-identity binding, [`pod::admission::report_data`]) from the configured TEE
/// backend: what the node's evidence at start and its re-attestations are made of.
pub(crate) fn collect_evidence(tee: &config::Tee, pod_id: &str, report_data: &[u8; 64]) -> anyhow::Result<Vec<u8>> {
    let report_data = *report_data;
    match tee.backend.as_deref().unwrap_or("sim") {
        "sim" => {
            let m = match &tee.sim_measurement {
                Some(h) => hex::decode(h)
                    .ok()
                    .and_then(|b| <[u8; 48]>::try_from(b).ok())
                    .context("[tee] sim_measurement: 96 hex digits")?,
                None => pod::local::MEASUREMENT,
            };
            tracing::warn!("TEE backend sim: this node's evidence is SIMULATED (insecure); only a policy that allows sim accepts it");
            Ok(pod::admission::sim_bundle(pod_id, m, report_data, None))
        }
        "azure" => {
            let src = sigil_attest::collect::AzureSource::at(tee.tpm.as_deref(), tee.imds.as_deref());
            let b =
                sigil_attest::collect::collect_azure(&src, &report_data).context("collecting Azure vTPM evidence")?;
            Ok(b.encode()?)
        }
        backend @ ("snp" | "tdx" | "auto") => {
            let found = sigil_attest::collect::detect();
            let want = match backend {
                "snp" => Some(sigil_attest::Platform::SevSnp),
                "tdx" => Some(sigil_attest::Platform::Tdx),
                _ => None,
            };
            match (found, want) {
                (None, _) => bail!("[tee] backend {backend:?}: no TEE found here (no configfs-tsm report directory, /dev/sev-guest or Azure vTPM HCL report); use backend = \"sim\" off confidential hardware"),
                (Some(f), Some(w)) if f != w => bail!("[tee] backend {backend:?}, but this machine is a {} guest", f.as_str()),
                _ => {}
            }
            let b = sigil_attest::collect::collect(&report_data).context("collecting TEE evidence")?;
            Ok(b.encode()?)
        }
        "vtpm" => {
            let dev = sigil_attest::tpm::TpmDevice::parse(
                tee.tpm.as_deref().unwrap_or(sigil_attest::tpm::TpmDevice::DEFAULT),
            );
            let ak = tee.ak.as_deref().unwrap_or(sigil_attest::collect::VTPM_AK);
            let ak = sigil_attest::collect::parse_handle(ak).map_err(|e| anyhow::anyhow!("[tee] ak: {e}"))?;
            let log = tee.event_log.clone().unwrap_or_else(|| sigil_attest::collect::EVENT_LOG.into());
            tracing::warn!("TEE backend vtpm: a TPM quote with no TEE report; only a policy with [vtpm] allow_without_tee accepts it");
            let b = sigil_attest::collect::collect_vtpm(&dev, ak, &report_data, Some(&log))
                .context("collecting vTPM evidence")?;
            Ok(b.encode()?)
        }
        other => bail!("[tee] backend {other:?}: use sim, snp, tdx, azure, vtpm or auto"),
    }
}

pub fn run(cmd: NodeCommand) -> ExitCode {
    let NodeCommand::Run { config } = cmd;
    let (cfg, api) = match load(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sigil node run: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match rt.block_on(serve(cfg, api)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sigil node run: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: PodConfig, api: Option<ApiConfig>) -> anyhow::Result<()> {
    let name = cfg.name.clone();
    tracing::info!(node = %name, peer_id = %pod::peer_id(&cfg.seed), listen = %cfg.listen, data = %cfg.data_dir.display(), "starting");
    let (node, running) = match api {
        Some(api) => {
            let r = RunningNode::start(cfg, api).await?;
            tracing::info!(node = %name, api = %r.url(), "serving the API");
            eprintln!("{name}: API at {}", r.url());
            (None, Some(r))
        }
        None => {
            // No API, no invocations of its own: it still replays its peers' where the policy asks.
            let replay = sigil::service::replay::replayer()?;
            (Some(PodNode::start(PodConfig { replay, ..cfg }).await?), None)
        }
    };
    let pod_node = node.as_ref().unwrap_or_else(|| &running.as_ref().expect("one of them").service.node);
    let mut tip = pod_node.tip();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            changed = tip.changed() => {
                if changed.is_err() {
                    break;
                }
                let t = tip.borrow_and_update().clone();
                tracing::info!(target: "sigil::commit", height = t.height, size = t.size, root = %t.root, "committed");
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if pod_node.app_stopped() {
                    bail!("the consensus app stopped (see the error above)");
                }
            }
        }
    }
    tracing::info!(node = %name, "stopping");
    if let Some(n) = node {
        n.stop().await;
    }
    if let Some(r) = running {
        r.stop().await;
    }
    Ok(())
}

/// `[api] public_urls`, each an https URL with a host (a path or query would never match an issuer).
fn public_urls(urls: &[String]) -> anyhow::Result<Vec<String>> {
    urls.iter()
        .map(|u| {
            let ok = u.strip_prefix("https://").is_some_and(|rest| {
                let authority = rest.trim_end_matches('/');
                !authority.contains(['/', '?', '#', '@']) && !authority.contains(char::is_whitespace)
            }) && sigil::service::client::Endpoint::parse(u).is_ok();
            if !ok {
                anyhow::bail!("[api] public_urls: {u:?} is not an https URL of a host (https://HOST[:PORT])");
            }
            Ok(u.trim_end_matches('/').to_string())
        })
        .collect()
}
