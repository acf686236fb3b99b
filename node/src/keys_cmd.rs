//! `sigil keys generate | show`: Ed25519 key files for callers and members.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::cli::fail;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate an Ed25519 key (a caller's or a member's) into FILE: 64 hex digits of seed, readable by you
    /// only. Prints the public key as `ed25519:<hex>`, the form manifests' access rules use.
    ///
    /// Example:
    ///   sigil keys generate --out alice.key
    #[command(verbatim_doc_comment)]
    Generate {
        /// Where to write the key (refused if it exists, unless --force).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite FILE.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        key: PathBuf,
    },
}

pub fn keys(cmd: KeysCommand) -> ExitCode {
    let r = match cmd {
        KeysCommand::Generate { out, force } => generate(&out, force),
        KeysCommand::Show { key } => {
            read_key(&key).map(|k| println!("ed25519:{}", hex::encode(k.public_key().as_ref())))
        }
    };
    r.map(|()| ExitCode::SUCCESS).unwrap_or_else(fail)
}

pub(crate) fn generate(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!("{} exists (pass --force to replace it)", out.display());
    }
    let seed: [u8; 32] = random()?;
    write_key(out, &seed)?;
    let k = Ed25519KeyPair::from_seed_unchecked(&seed).expect("32 bytes");
    println!("ed25519:{}", hex::encode(k.public_key().as_ref()));
    eprintln!("wrote {} (keep it secret)", out.display());
    Ok(())
}

pub use sigil::service::random;

/// Writes a key file readable by its owner only.
pub fn write_key(out: &Path, seed: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("writing {}", out.display()))?;
    writeln!(f, "{}", hex::encode(seed))?;
    Ok(())
}

/// Reads a key file (64 hex digits).
pub fn read_key(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let seed = crate::node_cmd::read_seed(path)?;
    Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
