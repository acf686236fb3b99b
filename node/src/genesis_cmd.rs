//! `sigil genesis enroll | build | show`: how a production pod's genesis is made from keys that never leave
//! their VMs.
//!
//! 1. On each node's VM: `enroll` reads the identity key, collects the TEE's evidence binding that key to the pod
//!    (the same REPORT_DATA the node's admission checks), and writes an enrollment: name, public key, peer id,
//!    evidence. It holds nothing secret.
//! 2. Anywhere: `build` checks every enrollment's evidence under the pod's policy, exactly as a node checks its
//!    genesis before it starts, and writes the genesis entry.
//! 3. `show` prints a genesis and re-checks its validators' evidence now.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::Validator;
use sigil_ledger::entry::{Genesis, Member};
use sigil_ledger::Entry;

use crate::node_cmd::read_seed;
use sigil::config::Tee;
use sigil_pod as pod;

/// Exit status: a validator's evidence does not satisfy the policy.
const REJECTED: u8 = 1;

#[derive(Subcommand)]
pub enum GenesisCommand {
    /// On a node's VM: collect evidence binding its identity key to the pod, and write an enrollment.
    ///
    /// The enrollment holds the node's name, public key, peer id and evidence; nothing secret. The
    /// key stays on the VM. `build` takes the enrollments.
    ///
    /// Examples:
    ///   sigil genesis enroll --pod eu --name aws-snp-0 --identity /var/lib/sigil/identity.key \
    ///       --backend auto --address /ip4/203.0.113.7/tcp/27000 --out aws-snp-0.enroll.json
    ///   sigil genesis enroll --pod test --name n0 --identity n0.key --backend sim --out n0.enroll.json
    #[command(verbatim_doc_comment)]
    Enroll(EnrollArgs),
    /// Build a pod's genesis from its nodes' enrollments, its members and its policy.
    ///
    /// Every enrollment's evidence is verified under the policy, bound to its key and this pod, as
    /// each node does before it starts from a genesis; nothing is written unless all pass. Prints the
    /// peers line for the nodes' configuration (for enrollments with --address) and the genesis as
    /// base64 (Terraform's `genesis_b64`).
    ///
    /// Examples:
    ///   sigil genesis build --pod eu --jurisdiction EU --policy pod-policy.toml \
    ///       --member ops=ed25519:3b6a… --member audit=ed25519:9f1c… --threshold 2 \
    ///       aws-snp-0.enroll.json gcp-snp-0.enroll.json gcp-tdx-0.enroll.json \
    ///       azure-snp-0.enroll.json --out genesis.cbor
    #[command(verbatim_doc_comment)]
    Build(BuildArgs),
    /// Print a genesis and check its validators' evidence under its policy: at the genesis' time, as the pod's
    /// nodes judge it, and again now (evidence whose collateral or certificates lapsed since is shown as refused
    /// today; the pod's validators keep their evidence fresh by re-attesting).
    ///
    /// Exit status: 0 every validator's evidence is accepted at the genesis' time, 1 some is not, 2 the file is not a
    /// genesis.
    Show {
        /// The genesis (CBOR, as `build` writes it).
        genesis: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct EnrollArgs {
    /// The pod the node will join.
    #[arg(long)]
    pod: String,
    /// The node's name (its `name` in node.toml).
    #[arg(long)]
    name: String,
    /// The node's identity key (64 hex digits, as `sigil keys generate` writes).
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// Where the evidence comes from: sim (INSECURE), snp, tdx, azure, vtpm or auto, as `[tee] backend`.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// With --backend sim: the simulated launch measurement (96 hex digits).
    #[arg(long, value_name = "HEX")]
    sim_measurement: Option<String>,
    /// With --backend azure or vtpm: the TPM (default /dev/tpmrm0; tcp:HOST:PORT for a simulator).
    #[arg(long, value_name = "DEV")]
    tpm: Option<String>,
    /// With --backend vtpm: the attestation key's persistent handle (default 0x81010002).
    #[arg(long, value_name = "HANDLE")]
    ak: Option<String>,
    /// With --backend vtpm: the firmware's event log (default the kernel's; left out if absent).
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// With --backend azure: the instance metadata service (default http://169.254.169.254).
    #[arg(long, value_name = "URL")]
    imds: Option<String>,
    /// The node's p2p address as its peers will dial it, e.g. /ip4/203.0.113.7/tcp/27000.
    #[arg(long, value_name = "MULTIADDR")]
    address: Option<String>,
    /// Where to write the enrollment (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The pod id.
    #[arg(long)]
    pod: String,
    /// The pod's jurisdiction label, e.g. EU.
    #[arg(long)]
    jurisdiction: String,
    /// The attestation policy (TOML; `sigil policy check` reviews it).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A governance member, NAME=ed25519:HEX (what `sigil keys generate` prints). Repeat for each.
    #[arg(long, value_name = "NAME=KEY", required = true)]
    member: Vec<String>,
    /// Member approvals needed for governance entries.
    #[arg(long, default_value_t = 1)]
    threshold: u32,
    /// The nodes' enrollments, in validator order.
    #[arg(required = true, value_name = "ENROLLMENT")]
    enrollments: Vec<PathBuf>,
    /// Where to write the genesis (refused if it exists, unless --force).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
}

/// What `enroll` writes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enrollment {
    #[serde(rename = "sigil-enrollment")]
    version: u32,
    pod: String,
    name: String,
    /// Hex.
    public_key: String,
    peer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    platform: String,
    /// The evidence bundle, base64.
    evidence: String,
}

pub fn run(cmd: GenesisCommand) -> ExitCode {
    let r = match cmd {
        GenesisCommand::Enroll(a) => enroll(a).map(|()| ExitCode::SUCCESS),
        GenesisCommand::Build(a) => build(a).map(|()| ExitCode::SUCCESS),
        GenesisCommand::Show { genesis, json } => show(&genesis, json),
    };
    r.unwrap_or_else(|e| {
        eprintln!("sigil genesis: {e:#}");
        ExitCode::from(2)
    })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn enroll(a: EnrollArgs) -> anyhow::Result<()> {
    if a.out.exists() {
        bail!("{} exists; not overwritten", a.out.display());
    }
    check_fields(&a.pod, &a.name, a.address.as_deref()).map_err(|e| anyhow!("{e}"))?;
    if let Some(m) = &a.sim_measurement {
        if hex::decode(m).map(|b| b.len()) != Ok(48) {
            bail!("--sim-measurement: 96 hex digits");
        }
    }
    let seed = read_seed(&a.identity)?;
    let key = pod::public_key(&seed);
    let tee = Tee {
        backend: Some(a.backend.clone()),
        sim_measurement: a.sim_measurement,
        tpm: a.tpm,
        imds: a.imds,
        ak: a.ak,
        event_log: a.event_log,
    };
    let evidence = crate::node_cmd::evidence(&tee, &a.pod, &key)?;
    let platform = sigil_attest::Bundle::decode(&evidence).map(|b| b.platform.as_str().to_string()).unwrap_or_default();
    let e = Enrollment {
        version: 1,
        pod: a.pod.clone(),
        name: a.name.clone(),
        public_key: hex::encode(key),
        peer_id: pod::peer_id_of(&key)?,
        address: a.address,
        platform: platform.clone(),
        evidence: b64().encode(&evidence),
    };
    let text = serde_json::to_string_pretty(&e)? + "\n";
    write_new(&a.out, text.as_bytes(), false)?;
    eprintln!(
        "enrolled {} for pod {}: key ed25519:{}, peer {}, {} evidence; wrote {}",
        e.name,
        e.pod,
        e.public_key,
        e.peer_id,
        platform,
        a.out.display()
    );
    Ok(())
}

/// What an enrollment's pod, name and address must be, checked where it is made and again where it is read.
fn check_fields(pod: &str, name: &str, address: Option<&str>) -> Result<(), String> {
    let printable = |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic());
    if !printable(pod) || !printable(name) {
        return Err(format!("pod {pod:?} and name {name:?}: 1 to 128 printable characters, no spaces"));
    }
    if let Some(addr) = address {
        if !printable(addr) || !addr.starts_with('/') || addr.contains("/p2p/") || addr.contains('"') {
            return Err(format!("address {addr:?}: a multiaddr without /p2p/, e.g. /ip4/203.0.113.7/tcp/27000"));
        }
    }
    Ok(())
}

fn read_enrollment(path: &Path) -> anyhow::Result<(Enrollment, [u8; 32], Vec<u8>)> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let e: Enrollment =
        serde_json::from_slice(&text).with_context(|| format!("{} is not an enrollment", path.display()))?;
    if e.version != 1 {
        bail!("{}: enrollment version {} (this sigil reads 1)", path.display(), e.version);
    }
    check_fields(&e.pod, &e.name, e.address.as_deref()).map_err(|m| anyhow!("{}: {m}", path.display()))?;
    let key: [u8; 32] = hex::decode(&e.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| anyhow!("{}: public_key is not 64 hex digits", path.display()))?;
    let evidence = b64().decode(&e.evidence).with_context(|| format!("{}: evidence is not base64", path.display()))?;
    if pod::peer_id_of(&key)? != e.peer_id {
        bail!("{}: peer_id {} is not the peer id of its public key", path.display(), e.peer_id);
    }
    Ok((e, key, evidence))
}

/// `NAME=ed25519:HEX` (or `NAME=HEX`).
fn parse_member(s: &str) -> anyhow::Result<Member> {
    let (name, key) = s.split_once('=').ok_or_else(|| anyhow!("--member {s:?}: NAME=ed25519:HEX"))?;
    let hexkey = key.strip_prefix("ed25519:").unwrap_or(key);
    let k = hex::decode(hexkey)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| anyhow!("--member {s:?}: the key is not ed25519:<64 hex digits>"))?;
    if name.is_empty() {
        bail!("--member {s:?}: empty name");
    }
    Ok(Member { name: name.into(), public_key: ByteBuf::from(k) })
}

fn build(a: BuildArgs) -> anyhow::Result<()> {
    if a.out.exists() && !a.force {
        bail!("{} exists; not overwritten (use --force)", a.out.display());
    }
    let policy_text = std::fs::read_to_string(&a.policy).with_context(|| format!("reading {}", a.policy.display()))?;
    let policy = pod::admission::parse_policy(&policy_text).map_err(|e| anyhow!("{}: {e}", a.policy.display()))?;
    let members: Vec<Member> = a.member.iter().map(|m| parse_member(m)).collect::<anyhow::Result<_>>()?;
    for (i, m) in members.iter().enumerate() {
        if members[..i].iter().any(|o| o.name == m.name || o.public_key == m.public_key) {
            bail!("member {} is listed twice (by name or key)", m.name);
        }
    }
    if a.threshold == 0 || a.threshold as usize > members.len() {
        bail!("--threshold {} must be between 1 and the {} member(s)", a.threshold, members.len());
    }
    let now = sigil_primitives::clock::now_secs();
    let mut validators = Vec::new();
    let mut evidence = Vec::new();
    let mut peers = Vec::new();
    let mut failures = Vec::new();
    for path in &a.enrollments {
        let (e, key, ev) = read_enrollment(path)?;
        if e.pod != a.pod {
            bail!("{}: enrolled for pod {:?}, not {:?}", path.display(), e.pod, a.pod);
        }
        if validators.iter().any(|v: &Validator| v.name == e.name || v.public_key == key) {
            bail!("{}: node {} is enrolled twice (by name or key)", path.display(), e.name);
        }
        match pod::admission::verify(&policy, &a.pod, &key, &[], &ev, now) {
            Ok(_) => eprintln!("  {}: {} evidence accepted under the policy", e.name, e.platform),
            Err(why) => failures.push(format!("{} ({}): {why}", e.name, path.display())),
        }
        if let Some(addr) = &e.address {
            peers.push(format!("{addr}/p2p/{}", e.peer_id));
        }
        validators.push(Validator { name: e.name, public_key: key.to_vec() });
        evidence.push(ByteBuf::from(ev));
    }
    if !failures.is_empty() {
        bail!("evidence refused, no genesis written:\n  {}", failures.join("\n  "));
    }
    for w in crate::policy_cmd::policy_warnings(&policy) {
        eprintln!("warning: {w}");
    }
    let n = validators.len();
    if n < 4 {
        eprintln!("warning: {n} validator(s) tolerate no faulty node; 4 tolerate one (n = 3f + 1)");
    }
    let genesis = Entry::Genesis(Genesis {
        pod: a.pod.clone(),
        jurisdiction: a.jurisdiction,
        created_at: now,
        validators,
        evidence,
        members,
        threshold: a.threshold,
        policy: policy_text,
    });
    // The same check a node makes before it starts from this genesis.
    pod::check_genesis(&genesis)?;
    let bytes = genesis.encode();
    write_new(&a.out, &bytes, a.force)?;
    eprintln!("wrote the genesis of pod {} ({n} validators, {} bytes) to {}", a.pod, bytes.len(), a.out.display());
    println!("genesis_sha256 = \"{}\"", hex::encode(sigil_attest::sha256(&bytes)));
    if !peers.is_empty() {
        let quoted: Vec<String> = peers.iter().map(|p| serde_json::Value::from(p.as_str()).to_string()).collect();
        println!("peers = [{}]", quoted.join(", "));
    }
    println!("genesis_b64 = \"{}\"", b64().encode(&bytes));
    Ok(())
}

/// Writes `bytes` to `out` whole or not at all: through a temporary file beside it, then renamed (`replace`) or
/// linked (refused if `out` exists by then).
fn write_new(out: &Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if replace {
            std::fs::rename(&tmp, out)?;
        } else {
            std::fs::hard_link(&tmp, out).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow!("{} exists; not overwritten", out.display()),
                _ => e.into(),
            })?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result.with_context(|| format!("writing {}", out.display()))
}

fn show(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let entry = Entry::decode(&bytes).with_context(|| format!("{} is not a ledger entry", path.display()))?;
    let Entry::Genesis(g) = &entry else { bail!("{} holds a {} entry, not a genesis", path.display(), entry.kind()) };
    let policy = pod::admission::parse_policy(&g.policy).map_err(|e| anyhow!(e))?;
    let now = sigil_primitives::clock::now_secs();
    let warnings = crate::policy_cmd::policy_warnings(&policy);
    let mut all_ok = g.evidence.len() == g.validators.len();
    let validators: Vec<serde_json::Value> = g
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let key: Option<[u8; 32]> = v.public_key.as_slice().try_into().ok();
            let ev = g.evidence.get(i).map(|b| b.as_slice()).unwrap_or_default();
            let platform =
                sigil_attest::Bundle::decode(ev).map(|b| b.platform.as_str().to_string()).unwrap_or_default();
            // Judged as the pod's nodes judge it (at the genesis' time), and again now: evidence that has lapsed since
            // (collateral, certificates) does not stop the pod, but an operator should know.
            let judge = |at: u64| match key {
                None => Err(format!("a {}-byte key", v.public_key.len())),
                Some(k) => pod::admission::verify(&policy, &g.pod, &k, &[], ev, at),
            };
            let verdict = judge(g.created_at);
            let today = judge(now).map(drop);
            all_ok &= verdict.is_ok();
            let workload = verdict.as_ref().ok().map(|r| r.claims["workload"].clone());
            let verdict = verdict.map(drop);
            serde_json::json!({
                "name": v.name,
                "public_key": hex::encode(&v.public_key),
                "peer_id": key.and_then(|k| pod::peer_id_of(&k).ok()),
                "platform": platform,
                "accepted": verdict.is_ok(),
                "workload": workload,
                "reason": verdict.err(),
                "accepted_now": today.is_ok(),
                "reason_now": today.err(),
            })
        })
        .collect();
    let out = serde_json::json!({
        "pod": g.pod,
        "jurisdiction": g.jurisdiction,
        "created_at": g.created_at,
        "validators": validators,
        "members": g.members.iter().map(|m| serde_json::json!({"name": m.name, "public_key": hex::encode(&m.public_key)})).collect::<Vec<_>>(),
        "threshold": g.threshold,
        "policy_sha256": hex::encode(sigil_attest::sha256(g.policy.as_bytes())),
        "genesis_sha256": hex::encode(sigil_attest::sha256(&bytes)),
        "policy_warnings": warnings,
    });
    if json {
        println!("{out}");
    } else {
        println!("pod {} ({}), created {}", g.pod, g.jurisdiction, sigil_attest::time::fmt_unix(g.created_at));
        println!("  genesis sha256 {}", out["genesis_sha256"].as_str().unwrap_or_default());
        println!("  validators ({}):", g.validators.len());
        for v in &validators {
            println!(
                "    {:<16} ed25519:{}  {}  {}",
                v["name"].as_str().unwrap_or_default(),
                v["public_key"].as_str().unwrap_or_default(),
                v["platform"].as_str().unwrap_or_default(),
                match (v["reason"].as_str(), v["reason_now"].as_str()) {
                    (None, None) => format!("accepted; workload {}", crate::attest_cmd::workload_line(v)),
                    (None, Some(now)) => format!(
                        "accepted at creation; workload {}; refused today (re-attestation keeps a pod's evidence \
                         fresh): {now}",
                        crate::attest_cmd::workload_line(v)
                    ),
                    (Some(r), _) => format!("REFUSED: {r}"),
                }
            );
        }
        println!("  members (threshold {}):", g.threshold);
        for m in &g.members {
            println!("    {:<16} ed25519:{}", m.name, hex::encode(&m.public_key));
        }
        println!("  policy sha256 {}", out["policy_sha256"].as_str().unwrap_or_default());
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(REJECTED) })
}
