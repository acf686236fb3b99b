//! `sigil devnet`: a local pod on 127.0.0.1 with simulated TEEs, in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use sigil::service::{ApiConfig, PodDirectory, RunningNode};
use sigil_pod::local;

/// Start a local pod: N nodes on 127.0.0.1 with simulated (INSECURE) TEE evidence and published test node keys,
/// committing blocks through Malachite consensus into their RocksDB ledgers under --data, each serving the HTTPS
/// API and console (attested certificates). The example applets (notes, hash, fetch, tools), built into this
/// binary, are deployed; once the pod commits, DIR/devnet.json says where everything is:
///
///   {"api": [node URLs], "genesis": path, "keys": {"member": path, "caller": path, "auditor": path}, ...}
///
/// The member key governs (deploys, policy), the caller key calls, and the auditor key reads the whole audit log
/// (sign in to the console with it); a caller reads only its own entries.
///
/// Runs until Ctrl-C (or --for seconds); run it again with the same --data to resume the same pod.
///
/// Example:
///   sigil devnet --nodes 4 --data /tmp/pod
///   sigil invoke --api "$(jq -r '.api[0]' /tmp/pod/devnet.json)" --key /tmp/pod/keys/caller.key \
///       notes put --args '{"key":"greeting","value":"hello"}' --receipt-out /tmp/r.cose
///   sigil receipt verify /tmp/r.cose --genesis /tmp/pod/genesis.cbor
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct DevnetArgs {
    /// Nodes in the pod (4 tolerates one faulty node; 7 tolerates two).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// Where the pod lives (created if new, resumed if it holds a pod).
    #[arg(long, value_name = "DIR", default_value = "sigil-devnet")]
    data: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    run_for: Option<u64>,
    /// Write the files of a simulated pod whose nodes run on these hosts (IPv4 addresses, comma-separated: one
    /// node each, p2p on port 27000, API on 8443) into --data, for `sigil node run --config DIR/node-N.toml` on
    /// each host, and exit. `infra/local/faults.sh` runs such a pod across network namespaces.
    #[arg(long, value_name = "IP,IP,...", value_delimiter = ',', requires = "configs_only")]
    hosts: Vec<std::net::Ipv4Addr>,
    /// With --hosts: only write the configuration files.
    #[arg(long, requires = "hosts", conflicts_with = "run_for")]
    configs_only: bool,
}

/// `--configs-only --hosts`: a simulated pod's genesis, keys and node configurations for other hosts.
fn write_configs(a: &DevnetArgs) -> anyhow::Result<()> {
    if a.hosts.is_empty() || a.hosts.len() > 16 {
        bail!("--hosts names 1 to 16 hosts, not {}", a.hosts.len());
    }
    std::fs::create_dir_all(&a.data).with_context(|| format!("creating {}", a.data.display()))?;
    let data = std::fs::canonicalize(&a.data)?;
    let addrs: Vec<_> = a.hosts.iter().map(|h| (*h, 27000)).collect();
    for (i, cfg) in local::configs_at("devnet", &addrs, &data).iter().enumerate() {
        let host = a.hosts[i];
        let mut file = sigil::config::NodeFile::of(cfg);
        file.api = Some(sigil::config::Api { listen: format!("{host}:8443"), ..Default::default() });
        file.tee.backend = Some("sim".into());
        file.labels.insert("host".into(), host.to_string());
        let path = file.write_beside(cfg).with_context(|| format!("writing {}'s configuration", cfg.name))?;
        println!("{}: sigil node run --config {}   (on {host})", cfg.name, path.display());
    }
    println!(
        "pod \"devnet\" of {} nodes (simulated TEEs, published TEST keys: INSECURE, for tests only)",
        a.hosts.len()
    );
    Ok(())
}

/// What a devnet directory records so that it can be resumed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodFile {
    pod: String,
    ports: Vec<u16>,
    #[serde(default)]
    api_ports: Vec<u16>,
}

/// The example applets a devnet deploys.
const APPLETS: &[&str] = &["notes", "hash", "fetch", "tools"];

pub fn run(a: DevnetArgs) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match rt.block_on(devnet(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sigil devnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn devnet(a: DevnetArgs) -> anyhow::Result<()> {
    if a.configs_only {
        return write_configs(&a);
    }
    let file = a.data.join("pod.json");
    let mut pod = if file.exists() {
        let p: PodFile = serde_json::from_slice(&std::fs::read(&file)?)
            .with_context(|| format!("{} is not a devnet's pod file", file.display()))?;
        if p.ports.len() != a.nodes as usize {
            bail!(
                "{} holds a pod of {} nodes, not {} (use another --data, or --nodes {})",
                a.data.display(),
                p.ports.len(),
                a.nodes,
                p.ports.len()
            );
        }
        eprintln!("resuming the pod in {}", a.data.display());
        p
    } else {
        std::fs::create_dir_all(&a.data).with_context(|| format!("creating {}", a.data.display()))?;
        PodFile { pod: "devnet".into(), ports: (0..a.nodes).map(|_| local::free_port()).collect(), api_ports: vec![] }
    };
    if pod.api_ports.len() != pod.ports.len() {
        pod.api_ports = (0..a.nodes).map(|_| local::free_port()).collect();
    }
    std::fs::write(&file, serde_json::to_vec_pretty(&pod)?)?;
    let data = std::fs::canonicalize(&a.data)?;
    let keys = data.join("keys");
    std::fs::create_dir_all(&keys)?;
    let member_key = keys.join("member.key");
    if !member_key.exists() {
        crate::keys_cmd::write_key(&member_key, &local::MEMBER_SEED)?;
    }
    let caller_key = keys.join("caller.key");
    if !caller_key.exists() {
        crate::keys_cmd::write_key(&caller_key, &sigil::service::random()?)?;
    }
    let caller = crate::keys_cmd::read_key(&caller_key)?;
    // The auditor reads the whole record (the console signs in with it); it can govern nothing.
    let auditor_key = keys.join("auditor.key");
    if !auditor_key.exists() {
        crate::keys_cmd::write_key(&auditor_key, &sigil::service::random()?)?;
    }
    let auditor: [u8; 32] = ring::signature::KeyPair::public_key(&crate::keys_cmd::read_key(&auditor_key)?)
        .as_ref()
        .try_into()
        .expect("an Ed25519 key is 32 bytes");
    let cfgs = local::configs_on(&pod.pod, &pod.ports, &data);
    let genesis = data.join("genesis.cbor");
    std::fs::write(&genesis, cfgs[0].genesis.encode())?;
    eprintln!(
        "starting {} nodes on 127.0.0.1 (p2p ports {:?}, API ports {:?})...",
        cfgs.len(),
        pod.ports,
        pod.api_ports
    );
    let mut nodes = Vec::new();
    for (i, c) in cfgs.into_iter().enumerate() {
        let api = ApiConfig {
            listen: ([127, 0, 0, 1], pod.api_ports[i]).into(),
            operator_tls: None,
            evidence: local::evidence(&pod.pod, i),
            directory: PodDirectory::default(),
            labels: [("cloud".to_string(), "local".to_string()), ("region".to_string(), "127.0.0.1".to_string())]
                .into_iter()
                .collect(),
            limits: Default::default(),
            // MCP clients name this node's issuer at this URL: assertions made for any other server are refused.
            public_urls: vec![format!("https://127.0.0.1:{}", pod.api_ports[i])],
            public_reads: false,
            auditors: vec![auditor],
        };
        // Nodes re-attest on the pod's schedule, with (insecure) sim evidence, as `sigil node run` does with its TEE.
        let c = sigil_pod::PodConfig { attester: local::sim_attester(&pod.pod), ..c };
        nodes.push(RunningNode::start(c, api).await?);
    }
    let mut tip = nodes[0].service.node.tip();
    let first = tip.borrow().height;
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height > first))
        .await
        .context("the pod did not commit within 60 s (see SIGIL_LOG=info)")?
        .ok();
    // Deploy what is not deployed yet (or changed since).
    let member = ring::signature::Ed25519KeyPair::from_seed_unchecked(&local::MEMBER_SEED).expect("32 bytes");
    for name in APPLETS {
        // The example applets are compiled into this binary (sigil-example-applets): no cargo, no source tree.
        let e = sigil_example_applets::get(name).with_context(|| format!("applet {name} is not built in"))?;
        let (mut m, wasm) = (sigil_runtime::Manifest::from_toml(e.manifest, e.wasm)?, e.wasm);
        // The devnet's caller is the ticket desk (the tools applet's `desk` group, empty in its manifest).
        if let Some(desk) = m.groups.get_mut("desk") {
            desk.push(format!("ed25519:{}", hex::encode(ring::signature::KeyPair::public_key(&caller).as_ref())));
        }
        let current = nodes[0].service.node.rules().and_then(|r| r.applets.get(*name).cloned());
        if current.as_ref().map(|d| &*d.manifest) == Some(&m) {
            continue;
        }
        let prior = current.map_or(0, |d| d.index);
        let d = crate::applet_cmd::deployment(&pod.pod, (&m, wasm), prior, "ops", &member);
        nodes[0]
            .service
            .deploy(&sigil_primitives::cbor::encode(&d))
            .await
            .map_err(|r| anyhow::anyhow!("deploying {name}: {}", r.reason()))?;
        eprintln!("deployed {name} {} ({})", m.version, m.code_digest);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let info = serde_json::json!({
        "pod": pod.pod,
        "api": urls,
        "console": format!("{}/", urls[0]),
        "genesis": genesis,
        "keys": { "member": member_key, "caller": caller_key, "auditor": auditor_key },
        "member": "ops",
        "applets": APPLETS,
        "mcp": urls.iter().map(|u| format!("{u}/mcp")).collect::<Vec<_>>(),
    });
    std::fs::write(data.join("devnet.json"), serde_json::to_vec_pretty(&info)?)?;
    println!("pod {:?}: {} nodes committing (simulated TEEs: INSECURE, for local use only)", pod.pod, nodes.len());
    println!("  API:     {}", urls.join(" "));
    println!(
        "  console: {}/  (self-signed, attested certificate: your browser will warn; sign in with {} to read the log)",
        urls[0],
        auditor_key.display()
    );
    println!("  applets: {}", APPLETS.join(", "));
    println!("  genesis: {}", genesis.display());
    println!("  devnet:  {}", data.join("devnet.json").display());
    let sigil = self_command();
    println!("try:");
    println!(
        "  {sigil} invoke --api {} --key {} notes put --args '{{\"key\":\"greeting\",\"value\":\"hello\"}}' --receipt-out r.cose",
        urls[0],
        caller_key.display()
    );
    println!(
        "  {sigil} invoke --api {} --key {} notes get --args '{{\"key\":\"greeting\"}}'",
        urls[1 % urls.len()],
        caller_key.display()
    );
    println!("  {sigil} receipt verify r.cose --genesis {}", genesis.display());
    println!(
        "  {sigil} audit --api {} --key {}   # the auditor reads the whole log; a caller's key its own",
        urls[0],
        auditor_key.display()
    );
    println!("MCP (tools = applet methods; the caller key is the tools applet's ticket desk):");
    println!("  endpoint: {}/mcp", urls[0]);
    println!(
        "  {sigil} mcp token --api {} --key {}   # a bearer token for any MCP client",
        urls[0],
        caller_key.display()
    );
    println!("  {sigil} mcp pin --api {} --out node.pem   # its attested certificate, for the client's trust", urls[0]);
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(2));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = every.tick() => {
                let t = tip.borrow().clone();
                eprintln!("height {:>6}  ledger size {:>8}  root {}", t.height, t.size, &t.root.to_hex()[..16]);
                if a.run_for.is_some_and(|s| start.elapsed() >= Duration::from_secs(s)) {
                    break;
                }
            }
        }
    }
    eprintln!("stopping...");
    for n in nodes {
        n.stop().await;
    }
    Ok(())
}

/// How to run this binary from a new shell: `sigil` when that is what PATH finds, else its full path.
fn self_command() -> String {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("sigil")).find(|c| c.is_file()))
        .and_then(|c| std::fs::canonicalize(c).ok());
    match (me, on_path) {
        (Some(me), Some(found)) if me == found => "sigil".into(),
        (Some(me), _) => me.display().to_string(),
        (None, _) => "sigil".into(),
    }
}
