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
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
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
                if let Some(v) = e.get(k).and_then(|v| v.as_str()) {
                    writeln!(out, "  {k:<10}  {v}")?;
                }
            }
        }
        for c in &report.checks {
            writeln!(out, "    {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail)?;
        }
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
        evidence: vec![],
        members: vec![Member { name: "example-operator".into(), public_key: serde_bytes::ByteBuf::from(vec![0; 32]) }],
        threshold: 1,
        policy: "[sim]\nallow = true\n".into(),
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
