//! `sigil node run --config FILE`: one node of a pod.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use ledger::Entry;
use serde::Deserialize;
use sigil::pod::{self, PodConfig, PodNode};

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
    ///   mempool_capacity = 100000                 # entries queued at most
    ///   propose_ms = 1000, prevote_ms = 500, precommit_ms = 500, round_delta_ms = 250   # round timeouts
    ///
    /// Not yet: the HTTP API, applets and TEE evidence (this node runs consensus only).
    #[command(verbatim_doc_comment)]
    Run {
        /// The node's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: String,
    identity: PathBuf,
    data_dir: PathBuf,
    genesis: PathBuf,
    p2p: P2p,
    #[serde(default)]
    consensus: Consensus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct P2p {
    listen: String,
    #[serde(default)]
    peers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Consensus {
    #[serde(default = "d_idle")]
    idle_block_ms: u64,
    #[serde(default = "d_mempool")]
    mempool_capacity: usize,
    #[serde(default = "d_propose")]
    propose_ms: u64,
    #[serde(default = "d_vote")]
    prevote_ms: u64,
    #[serde(default = "d_vote")]
    precommit_ms: u64,
    #[serde(default = "d_delta")]
    round_delta_ms: u64,
}

impl Default for Consensus {
    fn default() -> Self {
        Consensus {
            idle_block_ms: d_idle(),
            mempool_capacity: d_mempool(),
            propose_ms: d_propose(),
            prevote_ms: d_vote(),
            precommit_ms: d_vote(),
            round_delta_ms: d_delta(),
        }
    }
}

fn d_idle() -> u64 {
    100
}
fn d_mempool() -> usize {
    100_000
}
fn d_propose() -> u64 {
    1000
}
fn d_vote() -> u64 {
    500
}
fn d_delta() -> u64 {
    250
}

/// Reads a 32-byte seed written as 64 hex digits (surrounding whitespace allowed).
pub fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading identity {}", path.display()))?;
    let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{}: {} bytes; an identity seed is 32", path.display(), b.len()))
}

fn load(path: &Path) -> anyhow::Result<PodConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let f: FileConfig =
        toml::from_str(&text).with_context(|| format!("{} is not a valid node configuration", path.display()))?;
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
    let c = &f.consensus;
    let delta = Duration::from_millis(c.round_delta_ms);
    let propose = Duration::from_millis(c.propose_ms);
    let (prevote, precommit) = (Duration::from_millis(c.prevote_ms), Duration::from_millis(c.precommit_ms));
    Ok(PodConfig {
        name: f.name,
        seed,
        data_dir: rel(&f.data_dir),
        listen: f.p2p.listen,
        peers: f.p2p.peers,
        genesis,
        timeouts: malachitebft_app_channel::app::types::core::LinearTimeouts {
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
        mempool_capacity: c.mempool_capacity,
        fault: pod::Fault::None,
    })
}

pub fn run(cmd: NodeCommand) -> ExitCode {
    let NodeCommand::Run { config } = cmd;
    let cfg = match load(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sigil node run: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sigil node run: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: PodConfig) -> anyhow::Result<()> {
    let name = cfg.name.clone();
    tracing::info!(node = %name, peer_id = %pod::peer_id(&cfg.seed), listen = %cfg.listen, data = %cfg.data_dir.display(), "starting");
    let node = PodNode::start(cfg).await?;
    let mut tip = node.tip();
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
                if node.app_stopped() {
                    bail!("the consensus app stopped (see the error above)");
                }
            }
        }
    }
    tracing::info!(node = %name, "stopping");
    node.stop().await;
    Ok(())
}
