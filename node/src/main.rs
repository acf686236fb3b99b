//! `sigil`: the Sigil node and its command-line client.
//!
//! The node (`sigil node run`, `sigil devnet`) and the client side: keys, deploying and invoking applets,
//! audit queries, offline receipt and attestation verification, and the local applet runner.

mod applet_cmd;
mod attest_cmd;
mod audit_cmd;
mod cli;
mod devnet_cmd;
mod genesis_cmd;
mod invoke_cmd;
mod keys_cmd;
mod mcp_cmd;
mod measure_cmd;
mod node_cmd;
mod policy_cmd;
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
    /// Run a local pod on 127.0.0.1 with simulated TEEs, the example applets deployed, API and console up.
    Devnet(devnet_cmd::DevnetArgs),
    /// Generate and show Ed25519 keys (callers, members).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Sign a request, send it to a node, wait until its receipt is committed, save the receipt.
    ///
    /// Exit status: 0 once the receipt is committed (whatever the applet's outcome, which is printed and
    /// recorded), 1 if the node refused the request (the refusal is audited), 2 on a usage, I/O or connection
    /// error.
    ///
    /// Examples:
    ///   sigil invoke --api https://127.0.0.1:8443 --key caller.key notes put --args '{"key":"a","value":"hello"}'
    ///   sigil invoke --api https://127.0.0.1:8443 --key caller.key notes get --args '{"key":"a"}' --receipt-out r.cose
    #[command(verbatim_doc_comment)]
    Invoke(invoke_cmd::InvokeArgs),
    /// Query a pod's audit log: invocations and refused requests, by caller, applet, request or time.
    ///
    /// Examples:
    ///   sigil audit --api https://127.0.0.1:8443
    ///   sigil audit --api https://127.0.0.1:8443 --applet notes --since 2026-12-01T00:00:00Z --json
    #[command(verbatim_doc_comment)]
    Audit(audit_cmd::AuditArgs),
    /// Check a pod's attestation policy, and propose, approve and submit the governance entry that changes it.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Make a production pod's genesis: enroll each node's key and evidence on its VM, build, show.
    #[command(subcommand)]
    Genesis(genesis_cmd::GenesisCommand),
    /// Reference measurements: the launch digest a guest image should have, for a pod's policy.
    #[command(subcommand)]
    Measure(measure_cmd::MeasureCommand),
    /// The pod's applets as MCP tools: get a bearer token for a node's MCP endpoint, pin its certificate.
    #[command(subcommand)]
    Mcp(mcp_cmd::McpCommand),
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
        Command::Keys(cmd) => keys_cmd::keys(cmd),
        Command::Invoke(a) => invoke_cmd::invoke(a),
        Command::Audit(a) => audit_cmd::audit(a),
        Command::Mcp(cmd) => mcp_cmd::mcp(cmd),
        Command::Measure(cmd) => measure_cmd::run(cmd),
        Command::Genesis(cmd) => genesis_cmd::run(cmd),
        Command::Policy(cmd) => policy_cmd::policy(cmd),
    }
}
