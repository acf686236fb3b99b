//! `sigil devnet`: a local pod on 127.0.0.1 with simulated TEEs, in one process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use sigil::pod::{local, PodNode};

/// Start a local pod: N nodes on 127.0.0.1 with simulated (INSECURE) TEE evidence and published test keys,
/// committing blocks through Malachite consensus into their RocksDB ledgers under --data. Runs until Ctrl-C
/// (or --for seconds); run it again with the same --data to resume the same pod.
///
/// Today the devnet is the consensus layer only: the HTTP API, applets, devnet.json and the client commands
/// arrive with the node issue.
///
/// Example:
///   sigil devnet --nodes 4 --data /tmp/pod
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
}

/// What a devnet directory records so that it can be resumed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodFile {
    pod: String,
    ports: Vec<u16>,
}

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
    let file = a.data.join("pod.json");
    let pod = if file.exists() {
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
        let p = PodFile { pod: "devnet".into(), ports: (0..a.nodes).map(|_| local::free_port()).collect() };
        std::fs::write(&file, serde_json::to_vec_pretty(&p)?)?;
        p
    };
    let cfgs = local::configs_on(&pod.pod, &pod.ports, &a.data);
    let genesis = a.data.join("genesis.cbor");
    std::fs::write(&genesis, cfgs[0].genesis.encode())?;
    eprintln!("starting {} nodes on 127.0.0.1 (ports {:?}), waiting for the first commit...", cfgs.len(), pod.ports);
    let mut nodes = Vec::new();
    for c in cfgs {
        nodes.push(PodNode::start(c).await?);
    }
    let mut tip = nodes[0].tip();
    let first = tip.borrow().height;
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height > first))
        .await
        .context("the pod did not commit within 60 s (see SIGIL_LOG=info)")?
        .ok();
    println!("pod {:?}: {} nodes committing (simulated TEEs: INSECURE, for local use only)", pod.pod, nodes.len());
    println!("  data:    {}", a.data.display());
    println!("  genesis: {}", genesis.display());
    println!(
        "next: verify a receipt offline with `sigil receipt verify RECEIPT --genesis {}` once nodes serve",
        genesis.display()
    );
    println!("      them (the node issue); until then `sigil receipt example --out DIR` shows the verifier.");
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
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
