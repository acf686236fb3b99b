//! `sigil`: the Sigil node and its command-line client.
//!
//! Today this binary carries the attestation commands (`sigil attest verify | collect | bundle | policy`), the
//! offline receipt verifier (`sigil receipt verify`), the local applet runner (`sigil applet check | run`) and a
//! node that takes part in its pod's consensus (`sigil node run`). The node's HTTP API, the devnet and the other
//! client commands of DESIGN.md arrive with their issues.

mod applet_cmd;
mod attest_cmd;
mod devnet_cmd;
mod node_cmd;
mod receipt_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sigil: confidential-compute nodes whose every execution is attested and receipted.
#[derive(Parser)]
#[command(name = "sigil", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify and collect TEE attestation evidence (AMD SEV-SNP, Intel TDX, simulated).
    #[command(subcommand)]
    Attest(attest_cmd::AttestCommand),
    /// Check and run applets (WebAssembly + manifest) locally, in the node's enclave runtime.
    #[command(subcommand)]
    Applet(applet_cmd::AppletCommand),
    /// Run a local pod on 127.0.0.1 with simulated TEEs (consensus only, for now).
    Devnet(devnet_cmd::DevnetArgs),
    /// Run a node of a pod (consensus over libp2p, the ledger in RocksDB).
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Verify ledger receipts offline: prove an entry is in a pod's log with nothing but its genesis.
    #[command(subcommand)]
    Receipt(receipt_cmd::ReceiptCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // By default, warnings and errors, less the consensus network's reports of peers it cannot reach yet
        // (every peer that is still starting): SIGIL_LOG=warn shows those too.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGIL_LOG")
                .unwrap_or_else(|_| "warn,arc_malachitebft_network=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Attest(cmd) => attest_cmd::run(cmd),
        Command::Receipt(cmd) => receipt_cmd::run(cmd),
        Command::Applet(cmd) => applet_cmd::run(cmd),
        Command::Node(cmd) => node_cmd::run(cmd),
        Command::Devnet(a) => devnet_cmd::run(a),
    }
}
