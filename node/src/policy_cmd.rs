//! `sigil policy check | propose | approve | submit`: what a pod policy lets in, and the member-approved
//! `policy_changed` entry that changes it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use sigil_ledger::Entry;

use crate::cli::{client, fail, report_trust, runtime, ApiArgs, REFUSED};
use crate::keys_cmd::read_key;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a pod policy (TOML) and say what it accepts; warns where it accepts what a production pod should not.
    ///
    /// Exit status: 0 valid, 1 valid but with warnings (simulated TEEs, debug guests, no measurement pinned),
    /// 2 invalid or unreadable. `sigil attest policy` prints every key, documented.
    ///
    /// Example:
    ///   sigil policy check pod-policy.toml
    #[command(verbatim_doc_comment)]
    Check {
        /// The policy file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Propose a policy change: the `policy_changed` governance entry, approved by a member.
    ///
    /// With --api it is submitted and waits until committed (a pod whose threshold is 1 member); with --out it is
    /// written for the other members' `sigil policy approve`, then `sigil policy submit`. Validators check the
    /// policy parses and the approvals against the genesis's members and threshold.
    ///
    /// The entry names the ledger index of the entry that set the policy it replaces (`policy_index` in
    /// `GET /v1/pod`; 0 for the genesis), and the approvals sign it: validators refuse it (409) once the policy
    /// has changed since, so approvals cannot be replayed to roll a policy back.
    ///
    /// Examples:
    ///   sigil policy propose new-policy.toml --member ops --key member.key --api https://127.0.0.1:8443
    ///   sigil policy propose new-policy.toml --member ops --key ops.key --pod eu --prior 0 --out change.cbor
    #[command(verbatim_doc_comment)]
    Propose {
        /// The new policy (TOML).
        file: PathBuf,
        /// The approving member's name (as in the genesis).
        #[arg(long)]
        member: String,
        /// The member's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The pod (default: the --api node's).
        #[arg(long)]
        pod: Option<String>,
        /// The ledger index of the entry that set the current policy (default: the --api node's `policy_index`).
        #[arg(long, value_name = "INDEX")]
        prior: Option<u64>,
        /// Write the approved entry here instead of submitting it.
        #[arg(long, value_name = "FILE", conflicts_with = "api")]
        out: Option<PathBuf>,
        #[command(flatten)]
        api: Option<ApiArgs>,
    },
    /// Add a member's approval to a governance entry written by `propose --out`.
    Approve {
        /// The entry (CBOR).
        entry: PathBuf,
        /// The approving member's name.
        #[arg(long)]
        member: String,
        /// The member's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The pod.
        #[arg(long)]
        pod: String,
        /// Where to write the entry with the added approval (may be ENTRY itself).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Submit an approved governance entry and wait until it is committed.
    Submit {
        /// The entry (CBOR).
        entry: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub fn policy(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Check { file, json } => policy_check(&file, json).unwrap_or_else(fail),
        PolicyCommand::Propose { file, member, key, pod, prior, out, api } => runtime()
            .block_on(policy_propose(&file, &member, &key, (pod, prior), out, api))
            .map(|()| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        PolicyCommand::Approve { entry, member, key, pod, out } => {
            let r = (|| {
                let bytes = std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
                let mut e =
                    Entry::decode(&bytes).with_context(|| format!("{} is not a ledger entry", entry.display()))?;
                e.approve(&pod, &member, &read_key(&key)?).map_err(|e| anyhow::anyhow!(e))?;
                std::fs::write(&out, e.encode()).with_context(|| format!("writing {}", out.display()))?;
                eprintln!("{member} approved the {} entry: {}", e.kind(), out.display());
                Ok(())
            })();
            r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        PolicyCommand::Submit { entry, api } => runtime()
            .block_on(async {
                let bytes = std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
                submit_governance(&api, bytes).await
            })
            .map(|()| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
    }
}

/// What an operator should know about a pod policy that parses: what it lets in.
pub(crate) fn policy_warnings(p: &sigil_attest::Policy) -> Vec<String> {
    let mut warnings = Vec::new();
    if p.sim.allow {
        warnings
            .push("[sim] allow = true: SIMULATED TEEs are accepted (INSECURE: for devnets and tests only)".to_string());
    }
    if p.snp.allow_debug {
        warnings.push("[snp] allow_debug = true: the host can read and write debug guests' memory".into());
    }
    if p.tdx.allow_debug {
        warnings.push("[tdx] allow_debug = true: the host can read and write debug TDs' memory".into());
    }
    if p.snp.measurements.is_empty() {
        warnings.push(
            "[snp] measurements is empty: any SEV-SNP guest image is accepted (sigil measure snp gives one)".into(),
        );
    }
    if p.tdx.mrtd.is_empty() {
        warnings.push("[tdx] mrtd is empty: any TDX guest firmware is accepted".into());
    }
    if p.workload.allow_unmeasured {
        warnings.push(
            "[workload] allow_unmeasured = true: evidence that proves only the firmware is accepted (any code may run)"
                .into(),
        );
    }
    warnings
}

fn policy_check(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let p = sigil_attest::Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let warnings = policy_warnings(&p);
    let summary = serde_json::json!({
        "valid": true,
        "snp": { "measurements": p.snp.measurements.len(), "allow_debug": p.snp.allow_debug, "vmpl": p.snp.vmpl,
                 "min_tcb": p.snp.min_tcb.to_string(), "min_guest_svn": p.snp.min_guest_svn },
        "tdx": { "mrtd": p.tdx.mrtd.len(), "allow_debug": p.tdx.allow_debug, "accepted_tcb_status": p.tdx.accepted_tcb_status },
        "sim": { "allow": p.sim.allow },
        "workload": { "allow_unmeasured": p.workload.allow_unmeasured, "snp_measurements_cover": p.snp.measurements_cover },
        "reattestation": { "every_s": p.reattestation.every_s, "window_s": p.reattestation.window_s,
                           "max_age_s": p.reattestation.max_age_ms().map(|ms| ms / 1000) },
        "warnings": warnings,
    });
    if json {
        println!("{summary}");
    } else {
        println!("{}: valid", file.display());
        println!(
            "  sev-snp: {} measurement(s) pinned, VMPL {}, min TCB {}, debug {}",
            p.snp.measurements.len(),
            p.snp.vmpl,
            p.snp.min_tcb,
            if p.snp.allow_debug { "ALLOWED" } else { "refused" }
        );
        println!(
            "  tdx:     {} MRTD(s) pinned, TCB status accepted: {}, debug {}",
            p.tdx.mrtd.len(),
            p.tdx.accepted_tcb_status.join(", "),
            if p.tdx.allow_debug { "ALLOWED" } else { "refused" }
        );
        println!("  sim:     {}", if p.sim.allow { "ACCEPTED (insecure)" } else { "refused" });
        let r = &p.reattestation;
        match r.every_s {
            0 => println!("  re-attestation: off (validators keep the evidence they were admitted with)"),
            n => println!("  re-attestation: every {n} s, evidence bound to a block at most {} s old", r.window_s),
        }
        match r.max_age_ms() {
            None => println!("  suspension: only when the current policy refuses a validator's latest evidence"),
            Some(ms) => println!(
                "  suspension: a validator whose latest attestation is over {} s old, or whose latest evidence the \
                 current policy refuses, loses its vote until it re-attests",
                ms / 1000
            ),
        }
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(if warnings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(REFUSED) })
}

async fn policy_propose(
    file: &Path,
    member: &str,
    key: &Path,
    (pod, prior): (Option<String>, Option<u64>),
    out: Option<PathBuf>,
    api: Option<ApiArgs>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    sigil_attest::Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let key = read_key(key)?;
    let (pod, prior) = match (pod, prior, &api) {
        (Some(pod), Some(prior), _) => (pod, prior),
        (pod, prior, Some(a)) => {
            let c = client(a)?;
            let r = c.get("/v1/pod").await?;
            if r.status != 200 {
                bail!("the node's status: {} {}", r.status, r.error());
            }
            let v = r.json()?;
            let home = v["pod"].as_str().context("the status names no pod")?.to_string();
            // The node's attested certificate names its pod too (an operator certificate does not).
            let attested = c.seen.lock().expect("not poisoned").cert.as_ref().map(|x| x.pod.clone());
            if attested.as_ref().is_some_and(|p| *p != home) {
                bail!("the node's certificate is for pod {attested:?}, but its status says {home:?}");
            }
            let index = v["policy_index"].as_u64().context("the status has no policy_index (an older node?)")?;
            (pod.unwrap_or(home), prior.unwrap_or(index))
        }
        (None, _, None) => bail!("pass --pod and --prior (with --out), or --api"),
        (Some(_), None, None) => {
            bail!("pass --prior: the index of the entry that set the current policy (GET /v1/pod shows it as policy_index; 0 for the genesis)")
        }
    };
    let mut e = Entry::PolicyChanged(sigil_ledger::entry::PolicyChanged { policy: text, prior, approvals: vec![] });
    e.approve(&pod, member, &key).map_err(|e| anyhow::anyhow!(e))?;
    match (out, api) {
        (Some(out), _) => {
            std::fs::write(&out, e.encode()).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} (approved by {member}); more approvals: sigil policy approve", out.display());
            Ok(())
        }
        (None, Some(a)) => submit_governance(&a, e.encode()).await,
        (None, None) => bail!("pass --api or --out"),
    }
}

async fn submit_governance(a: &ApiArgs, entry: Vec<u8>) -> anyhow::Result<()> {
    let c = client(a)?;
    let r = c.post_cbor("/v1/governance", entry).await?;
    report_trust(&c, false);
    if r.status != 201 {
        bail!("the node refused the entry: {} {}", r.status, r.error());
    }
    let v = r.json()?;
    println!("committed: {} at index {} (height {})", v["kind"].as_str().unwrap_or("?"), v["index"], v["height"]);
    Ok(())
}
