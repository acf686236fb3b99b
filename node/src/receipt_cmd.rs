//! `sigil receipt ...`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use sigil_ledger::checkpoint::SignedCheckpoint;
use sigil_ledger::receipt::Receipt;
use sigil_ledger::{Entry, Hash};

#[derive(Subcommand)]
pub enum ReceiptCommand {
    /// Verify a receipt offline, with nothing but the pod's genesis.
    ///
    /// Checks that the entry is in the pod's log: its inclusion proof leads to the root of a checkpoint signed by
    /// a quorum of the validator set the log defines at that size (rebuilt from the genesis and the validator-set
    /// changes the receipt carries, each proven in the same tree), and that a validator signed the receipt.
    /// With --checkpoint, also checks that a checkpoint you already trust extends the receipt's
    /// (--consistency gives the proof when it is later).
    ///
    /// For an invocation, also re-verifies who executed it: the receipt carries the executor's attestation entry
    /// and the entry that set the pod's policy in force, proven in the same tree; the executor's evidence must
    /// bind its key to this pod and satisfy that policy (or yours, with --policy), judged as of when the
    /// invocation ran. The result names its platform, measurement, TCB status and verdict (`executor`).
    ///
    /// RECEIPT and the genesis may be binary CBOR or hex. Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
    ///
    /// Example:
    ///   sigil receipt verify receipt.cose --genesis pod-genesis.cbor --json
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
    /// Write an example pod log's genesis, a receipt and a checkpoint, to try `sigil receipt verify` before a
    /// pod runs. The pod is an in-memory log of four validators with fixed, published TEST keys: the files
    /// prove nothing about any real pod.
    Example {
        /// Directory to write genesis.cbor, receipt.cose and checkpoint.note into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The receipt (COSE_Sign1), binary or hex.
    receipt: PathBuf,
    /// The pod's genesis entry (canonical CBOR, binary or hex): the only thing the verifier trusts.
    #[arg(long, value_name = "FILE")]
    genesis: PathBuf,
    /// A checkpoint (signed note) you already trust, of the same pod.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Consistency proof from the receipt's checkpoint to --checkpoint: one hash per line, hex or base64.
    #[arg(long, value_name = "FILE", requires = "checkpoint")]
    consistency: Option<PathBuf>,
    /// Judge the executor's evidence under this attestation policy (TOML, as `sigil policy check` reads it)
    /// instead of the pod's: e.g. one that pins the measurements you trust.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ReceiptCommand) -> ExitCode {
    let r = match cmd {
        ReceiptCommand::Verify(a) => verify(a),
        ReceiptCommand::Example { out } => example(&out).map(|()| ExitCode::SUCCESS),
    };
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

/// Binary, or hex text (whitespace ignored).
fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = raw.trim_ascii();
    if !text.is_empty() && text.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) {
        let clean: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        if let Ok(v) = hex::decode(clean) {
            return Ok(v);
        }
    }
    Ok(raw)
}

fn read_hashes(path: &Path) -> anyhow::Result<Vec<Hash>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            let b = hex::decode(l).or_else(|_| base64::engine::general_purpose::STANDARD.decode(l));
            b.ok()
                .and_then(|b| Hash::from_slice(&b))
                .with_context(|| format!("{} line {}: not a 32-byte hash", path.display(), i + 1))
        })
        .collect()
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let genesis = read_bytes(&a.genesis)?;
    match Entry::decode(&genesis) {
        Ok(Entry::Genesis(_)) => {}
        Ok(e) => bail!("{} holds a {} entry, not a genesis", a.genesis.display(), e.kind()),
        Err(e) => bail!("{}: not a genesis entry: {e}", a.genesis.display()),
    }
    let trusted = match &a.checkpoint {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(SignedCheckpoint::parse(&text).with_context(|| format!("{}", p.display()))?)
        }
        None => None,
    };
    let consistency = a.consistency.as_deref().map(read_hashes).transpose()?.unwrap_or_default();
    let policy = match &a.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            sigil_pod::admission::parse_policy(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Some((text, p.display().to_string()))
        }
        None => None,
    };
    let bytes = read_bytes(&a.receipt)?;
    let mut out = std::io::stdout().lock();
    let receipt = match Receipt::decode(&bytes) {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                let j = serde_json::json!({ "valid": false, "checks": [{ "name": "receipt.format", "ok": false, "detail": e.to_string() }], "reasons": [format!("receipt.format: {e}")] });
                writeln!(out, "{j}")?;
            } else {
                writeln!(out, "INVALID  receipt.format: {e}")?;
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mut report = receipt.verify(&genesis);
    if let Some(t) = &trusted {
        Receipt::add_check(&mut report, "receipt.trusted_checkpoint", receipt.check_trusted(t, &consistency));
    }
    let judged = judge_executor(&mut report, policy.as_ref().map(|(t, s)| (t.as_str(), s.as_str())));
    if a.json {
        let mut j = serde_json::to_value(&report)?;
        if let (Some(ex), Some(judged)) = (j.get_mut("executor").and_then(|e| e.as_object_mut()), &judged) {
            ex.extend(judged.json());
        }
        writeln!(out, "{j}")?;
    } else {
        writeln!(
            out,
            "{}  pod {}  entry {} ({})",
            if report.valid { "VALID" } else { "INVALID" },
            report.pod,
            report.index,
            report.entry_kind.as_deref().unwrap_or("?")
        )?;
        writeln!(out, "  checkpoint  size {} root {}", report.checkpoint_size, report.checkpoint_root)?;
        if let Some(e) = &report.entry {
            for k in ["applet", "method", "executor", "delegate", "outcome"] {
                if k == "executor" && report.executor.is_some() {
                    continue; // with its attestation, below
                }
                if let Some(v) = e.get(k).and_then(|v| v.as_str()) {
                    writeln!(out, "  {k:<10}  {v}")?;
                }
            }
        }
        if let (Some(ex), Some(j)) = (&report.executor, &judged) {
            writeln!(
                out,
                "  executor    {} (attested by entry {}, {})",
                ex.name, ex.attestation_index, ex.attestation_kind
            )?;
            if let Some(a) = &ex.anchor {
                writeln!(
                    out,
                    "  anchor      height {}, root {}: its evidence was made after that block",
                    a.height,
                    a.root.to_hex()
                )?;
            }
            if let Some(r) = &j.result {
                writeln!(
                    out,
                    "  platform    {}{}",
                    r.platform.as_str(),
                    if r.platform == sigil_attest::Platform::Sim {
                        " (INSECURE: simulated, proves nothing)"
                    } else {
                        ""
                    }
                )?;
                writeln!(out, "  measurement {}", r.measurement)?;
                writeln!(out, "  tcb         {}", r.tcb_status.as_deref().unwrap_or("not evaluated"))?;
                writeln!(out, "  workload    {}", crate::attest_cmd::workload_line(&r.claims))?;
            }
            writeln!(out, "  policy      {}", j.policy_source)?;
            writeln!(out, "  verdict     {} (as of {})", j.verdict(), sigil_attest::time::fmt_unix(j.at))?;
        }
        for c in &report.checks {
            writeln!(out, "    {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail)?;
        }
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How an invocation's executor fared: its evidence judged under the pod's policy in force (or the verifier's own).
pub(crate) struct Judged {
    /// Where the policy came from: the pod's (and the entry that set it) or the verifier's file.
    pub policy_source: String,
    /// The time it was judged at (when the invocation ran), Unix seconds.
    pub at: u64,
    /// The verifier's result; `None` when the evidence could not be read at all.
    pub result: Option<sigil_attest::AttestationResult>,
    /// Why it could not be judged (unreadable evidence, a policy that does not parse).
    pub error: Option<String>,
}

impl Judged {
    fn verdict(&self) -> &'static str {
        match &self.result {
            Some(r) if r.accepted() => "accepted",
            _ => "rejected",
        }
    }

    /// The fields `sigil receipt verify --json` adds to its `executor` object.
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("policy_source".into(), self.policy_source.clone().into());
        m.insert("judged_at".into(), self.at.into());
        m.insert("verdict".into(), self.verdict().into());
        if let Some(r) = &self.result {
            m.insert("platform".into(), r.platform.as_str().into());
            m.insert("measurement".into(), r.measurement.clone().into());
            m.insert("tcb_status".into(), r.tcb_status.clone().into());
            m.insert("workload".into(), r.claims.get("workload").cloned().unwrap_or_default());
            m.insert("reasons".into(), r.reasons.clone().into());
            m.insert("claims".into(), r.claims.clone());
            m.insert("checks".into(), serde_json::to_value(&r.checks).unwrap_or_default());
            m.insert("policy_digest".into(), r.policy_digest.clone().into());
        } else if let Some(e) = &self.error {
            m.insert("reasons".into(), vec![e.clone()].into());
        }
        m
    }
}

/// Re-verifies the evidence of a verified receipt's executor (check `receipt.executor.evidence`): it must bind the
/// executor's key to the pod and satisfy `policy` (TOML and where it came from), or else the pod's policy in force
/// when the invocation ran, judged at that time. `None` when the receipt has no executor (not an invocation, or
/// its executor did not check out: `receipt.executor` says why).
pub(crate) fn judge_executor(
    report: &mut sigil_ledger::receipt::ReceiptReport,
    policy: Option<(&str, &str)>,
) -> Option<Judged> {
    let ex = report.executor.as_ref()?;
    let at = ex.ran_at_ms / 1000;
    let nonce = ex.anchor.map(|a| a.nonce()).unwrap_or_default();
    let (text, policy_source) = match (policy, &ex.policy, ex.policy_index) {
        (Some((text, source)), _, _) => (Some(text), format!("{source} (the verifier's)")),
        (None, Some(text), Some(i)) => (Some(text.as_str()), format!("the pod's, set by entry {i}")),
        _ => (None, "none: the invocation names no policy (written before invocations named one)".to_string()),
    };
    let mut judged = Judged { policy_source, at, result: None, error: None };
    let r = match text.map(sigil_pod::admission::parse_policy) {
        None => Err("the invocation does not name the policy it ran under (it was written before invocations named \
                     one): judge its executor's evidence under yours, with --policy"
            .to_string()),
        Some(Err(e)) => Err(e),
        Some(Ok(p)) => match sigil_pod::admission::judge(&p, &report.pod, &ex.key, &nonce, &ex.evidence, at) {
            Err(e) => Err(e),
            Ok(r) => {
                let line = if r.accepted() {
                    Ok(format!(
                        "{} evidence of {} accepted under {}, as of {}",
                        r.platform.as_str(),
                        ex.name,
                        judged.policy_source,
                        sigil_attest::time::fmt_unix(at)
                    ))
                } else {
                    Err(format!("{} evidence of {} refused: {}", r.platform.as_str(), ex.name, r.reasons.join("; ")))
                };
                judged.result = Some(r);
                line
            }
        },
    };
    if let Err(e) = &r {
        judged.error = Some(e.clone());
    }
    Receipt::add_check(report, "receipt.executor.evidence", r);
    Some(judged)
}

/// An example log: genesis (four validators with TEST keys), 12 invocations, a checkpoint signed by three.
fn example(out: &Path) -> anyhow::Result<()> {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use sigil_ledger::checkpoint::Validator;
    use sigil_ledger::entry::{Genesis, Invocation, Member};
    let keys: Vec<Ed25519KeyPair> = (0..4u8)
        .map(|i| {
            Ed25519KeyPair::from_seed_unchecked(
                &sigil_ledger::Hash::digest(format!("sigil example TEST key {i}").as_bytes()).0,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("bad test key"))?;
    let genesis = Entry::Genesis(Genesis {
        pod: "example.pod.invalid".into(),
        jurisdiction: "EXAMPLE".into(),
        created_at: 1_764_000_000,
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator { name: format!("node-{i}"), public_key: k.public_key().as_ref().to_vec() })
            .collect(),
        // Simulated evidence (INSECURE, accepted only because this example's policy allows `sim`).
        evidence: keys
            .iter()
            .map(|k| {
                let key: [u8; 32] = k.public_key().as_ref().try_into().expect("32 bytes");
                let measurement = sigil_attest::sha384(b"sigil example measurement"); // pinned by the policy below
                serde_bytes::ByteBuf::from(sigil_pod::admission::sim_evidence("example.pod.invalid", &key, measurement))
            })
            .collect(),
        members: vec![Member { name: "example-operator".into(), public_key: serde_bytes::ByteBuf::from(vec![0; 32]) }],
        threshold: 1,
        policy: format!(
            "[sim]\nallow = true\nmeasurements = [\"{}\"]\n",
            hex::encode(sigil_attest::sha384(b"sigil example measurement"))
        ),
    });
    let mut log = sigil_ledger::store::Ledger::in_memory(&genesis)?;
    for n in 0..12u64 {
        let h = Hash::digest(format!("example request {n}").as_bytes());
        log.append(&Entry::Invocation(Invocation {
            request_hash: h,
            caller: serde_bytes::ByteBuf::from(Hash::digest(b"example caller").0.to_vec()),
            applet: "notes".into(),
            method: if n % 3 == 0 { "read".into() } else { "append".into() },
            code_digest: Hash::digest(b"notes.wasm"),
            input_hash: h,
            output_hash: Hash::digest(&h.0),
            write_set_hash: Hash::digest(&n.to_le_bytes()),
            executor: format!("node-{}", n % 4),
            executor_attestation: 0,
            policy: Some(0),
            outcome: "ok".into(),
            fuel_used: 10_000 + n,
            at_ms: 1_764_000_000_000 + n * 1000,
            delegate: None,
        }))?;
    }
    let cp = log.checkpoint_at(log.size())?;
    let lines: Vec<String> = (0..3).map(|i| cp.sign(&format!("node-{i}"), &keys[i])).collect();
    let signed = SignedCheckpoint::from_lines(cp, &lines)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write =
        |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"));
    write("genesis.cbor", &genesis.encode())?;
    write("receipt.cose", &log.receipt(7, &signed, "node-3", &keys[3])?)?;
    write("checkpoint.note", signed.to_note().as_bytes())?;
    eprintln!(
        "wrote genesis.cbor, receipt.cose (entry 7) and checkpoint.note to {} (TEST keys: an example only)",
        out.display()
    );
    eprintln!("next: sigil receipt verify {0}/receipt.cose --genesis {0}/genesis.cbor", out.display());
    Ok(())
}
