//! `sigil receipt ...`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use ledger::checkpoint::SignedCheckpoint;
use ledger::receipt::Receipt;
use ledger::{Entry, Hash};

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
            for k in ["applet", "method", "executor", "outcome"] {
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
