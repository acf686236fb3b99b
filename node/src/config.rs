//! # config: the node's configuration file, one type for reading and writing it
//!
//! `sigil node run --config FILE` reads a [`NodeFile`]; `sigil devnet --configs-only`, the tests and the Terraform
//! modules' cloud-init write the same TOML. Paths in it are relative to the file. Unknown keys are refused, so a
//! misspelt setting is an error, not a default.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigil_pod::PodConfig;

/// A node's configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// The node's name in the ledger.
    pub name: String,
    /// Its identity seed (64 hex digits), relative to the file.
    pub identity: PathBuf,
    /// Where the ledger and the consensus WAL live (`SIGIL_DATA_DIR` overrides it).
    pub data_dir: PathBuf,
    /// The pod's genesis entry (`genesis.cbor`).
    pub genesis: PathBuf,
    /// Peering.
    pub p2p: P2p,
    /// Consensus tunables.
    #[serde(default)]
    pub consensus: Consensus,
    /// The HTTPS API; none, no API (`SIGIL_API_LISTEN` sets its address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// Where evidence comes from.
    #[serde(default, skip_serializing_if = "Tee::is_default")]
    pub tee: Tee,
    /// Labels shown in the pod status and the console.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Other pods' API URLs, for redirects.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub pods: HashMap<String, Vec<String>>,
}

/// `[p2p]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2p {
    /// The libp2p listen address, e.g. `/ip4/0.0.0.0/tcp/27000`.
    pub listen: String,
    /// The other nodes, each `/ip4/…/tcp/…/p2p/<peer id>`.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// `[consensus]`: every key optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consensus {
    /// How long a proposer with nothing to propose waits before proposing an empty block.
    #[serde(default = "d_idle")]
    pub idle_block_ms: u64,
    /// How long an idle pod waits after an empty block before it commits another, unless an entry or a
    /// validator's wake comes first (0: it does not wait).
    #[serde(default = "d_idle_interval")]
    pub idle_interval_ms: u64,
    /// Most entries queued for a block.
    #[serde(default = "d_mempool")]
    pub mempool_capacity: usize,
    /// The propose timeout of round 0.
    #[serde(default = "d_propose")]
    pub propose_ms: u64,
    /// The prevote timeout of round 0.
    #[serde(default = "d_vote")]
    pub prevote_ms: u64,
    /// The precommit timeout of round 0.
    #[serde(default = "d_vote")]
    pub precommit_ms: u64,
    /// How much each timeout grows per round.
    #[serde(default = "d_delta")]
    pub round_delta_ms: u64,
}

impl Default for Consensus {
    fn default() -> Self {
        Consensus {
            idle_block_ms: d_idle(),
            idle_interval_ms: d_idle_interval(),
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
fn d_idle_interval() -> u64 {
    sigil_pod::IDLE_INTERVAL.as_millis() as u64
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

/// `[api]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// `HOST:PORT`.
    pub listen: String,
    /// An operator certificate (DER) instead of the attested one; with `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The operator certificate's PKCS#8 key (DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Most connections the API holds open at once; more are closed as they arrive.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections from one source address (behind a load balancer that does not keep client addresses,
    /// raise it: every client then shares one source).
    #[serde(default = "default_max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// Signed requests a second one caller may make on average (bursts of twice as many; past it, 429); 0 for
    /// no limit.
    #[serde(default = "default_max_requests_per_caller")]
    pub max_requests_per_caller: u32,
    /// The https URLs clients reach this node at: when given, MCP client assertions must name this node's issuer
    /// at one of them as their audience (so an assertion made for another server is refused here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_urls: Vec<String>,
    /// Anyone may read the audit log, entries and receipts. Default false: a reader signs its reads (or holds an
    /// access token), and a caller sees its own entries only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public_reads: bool,
    /// Keys (`ed25519:<hex>`) that read every entry, as the pod's governance members do: auditors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auditors: Vec<String>,
}

impl Default for Api {
    fn default() -> Api {
        Api {
            listen: String::new(),
            cert: None,
            key: None,
            max_connections: default_max_connections(),
            max_connections_per_source: default_max_connections_per_source(),
            max_requests_per_caller: default_max_requests_per_caller(),
            public_urls: Vec::new(),
            public_reads: false,
            auditors: Vec::new(),
        }
    }
}

impl Api {
    /// `auditors` as keys: each `ed25519:<64 hex digits>`, or an error that names the one that is not.
    pub fn auditor_keys(&self) -> Result<Vec<[u8; 32]>, String> {
        self.auditors
            .iter()
            .map(|k| {
                k.strip_prefix("ed25519:")
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        format!("[api] auditors: {k:?} is not an Ed25519 public key, ed25519:<64 hex digits>")
                    })
            })
            .collect()
    }
}

fn default_max_connections() -> usize {
    crate::service::api::Limits::default().max_connections
}

fn default_max_connections_per_source() -> usize {
    crate::service::api::Limits::default().max_connections_per_source
}

fn default_max_requests_per_caller() -> u32 {
    crate::service::api::Limits::default().requests_per_caller
}

/// `[tee]`: where the node's evidence comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tee {
    /// `sim` (the default; INSECURE), `snp`, `tdx`, `auto`, `azure`, or `vtpm` (a TPM's quote alone, no TEE report:
    /// only a policy with `[vtpm] allow_without_tee` accepts it; the measured image's boot tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Sim: the measurement the simulated evidence claims (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_measurement: Option<String>,
    /// Azure and vtpm: the TPM (`/dev/tpmrm0`, or `tcp:HOST:PORT` for a simulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<String>,
    /// vtpm: the attestation key's persistent handle, hex (default `0x81010002`, where `infra/image/boot.sh`
    /// provisions it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ak: Option<String>,
    /// vtpm: the firmware's event log (default the kernel's, `/sys/kernel/security/tpm0/binary_bios_measurements`;
    /// left out of the evidence if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<std::path::PathBuf>,
    /// Azure: the instance metadata service (`http://169.254.169.254`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds: Option<String>,
}

impl Tee {
    fn is_default(&self) -> bool {
        *self == Tee::default()
    }
}

impl NodeFile {
    /// Parses a configuration file's text.
    pub fn parse(text: &str) -> Result<NodeFile, toml::de::Error> {
        toml::from_str(text)
    }

    /// The file for a node of a local pod (`sigil_pod::local`): its identity at `NAME.key` and the genesis at
    /// `genesis.cbor`, both beside the file.
    pub fn of(cfg: &PodConfig) -> NodeFile {
        NodeFile {
            name: cfg.name.clone(),
            identity: format!("{}.key", cfg.name).into(),
            data_dir: cfg.data_dir.clone(),
            genesis: "genesis.cbor".into(),
            p2p: P2p { listen: cfg.listen.clone(), peers: cfg.peers.clone() },
            consensus: Consensus {
                idle_block_ms: cfg.idle_block.as_millis() as u64,
                idle_interval_ms: cfg.idle_interval.as_millis() as u64,
                ..Consensus::default()
            },
            api: None,
            tee: Tee::default(),
            labels: BTreeMap::new(),
            pods: HashMap::new(),
        }
    }

    /// The TOML text (an error for what TOML cannot hold, such as a path that is not UTF-8).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Writes node `cfg`'s files for `sigil node run` beside its data directory: its identity (`NAME.key`), the
    /// genesis (`genesis.cbor`) and this configuration as `NAME.toml`. Returns the configuration's path.
    pub fn write_beside(&self, cfg: &PodConfig) -> std::io::Result<PathBuf> {
        let dir = cfg.data_dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&self.identity), hex::encode(cfg.seed))?;
        std::fs::write(dir.join(&self.genesis), cfg.genesis.encode())?;
        let path = dir.join(format!("{}.toml", self.name));
        let text = self.to_toml().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_unknown_keys_are_refused() {
        let cfg = sigil_pod::local::configs("p", 2, Path::new("/tmp/sigil-config-test")).remove(1);
        let mut f = NodeFile::of(&cfg);
        f.api = Some(Api {
            listen: "127.0.0.1:8443".into(),
            max_connections_per_source: 8,
            auditors: vec![format!("ed25519:{}", "ab".repeat(32))],
            public_reads: true,
            ..Default::default()
        });
        f.labels.insert("cloud".into(), "local".into());
        let text = f.to_toml().unwrap();
        assert_eq!(NodeFile::parse(&text).unwrap(), f);
        assert!(text.contains("[api]") && !text.contains("[tee]"), "{text}");
        // Connection caps left out of a file take their defaults.
        let short = text.replace("max_connections_per_source = 8\n", "");
        assert_eq!(NodeFile::parse(&short).unwrap().api.unwrap().max_connections_per_source, 256);
        // Auditors are Ed25519 keys; anything else is refused by name.
        assert_eq!(NodeFile::parse(&text).unwrap().api.unwrap().auditor_keys().unwrap(), vec![[0xab; 32]]);
        for bad in ["ab".repeat(32), format!("ed25519:{}", "ab".repeat(31)), "ed25519:zz".into()] {
            let api = Api { auditors: vec![format!("ed25519:{}", "ab".repeat(32)), bad.clone()], ..Default::default() };
            let e = api.auditor_keys().unwrap_err();
            assert!(e.contains("[api] auditors") && e.contains(&bad), "{e}");
        }
        let typo = text.replace("idle_block_ms", "idle_blocks_ms");
        assert!(NodeFile::parse(&typo).unwrap_err().to_string().contains("idle_blocks_ms"));
        let minimal = "name = \"n\"\nidentity = \"n.key\"\ndata_dir = \"d\"\ngenesis = \"g\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n";
        assert_eq!(NodeFile::parse(minimal).unwrap().consensus, Consensus::default());
    }
}
