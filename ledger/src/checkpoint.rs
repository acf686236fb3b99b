//! Checkpoints: signed tree heads in the C2SP `tlog-checkpoint` format, cosigned by the pod's validators as a
//! C2SP `signed-note`.
//!
//! ```text
//! <origin: the pod id>
//! <tree size, decimal>
//! <root hash, base64>
//! sigil-validators <SHA-256 of the validator set at this size, base64>
//!
//! — <validator name> <base64(key id ‖ Ed25519 signature)>
//! — <validator name> <base64(key id ‖ Ed25519 signature)>
//! ```
//! The key id is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key); each signature covers the note
//! text (the lines above the blank line, newline-terminated). The fourth line is a C2SP extension line: it
//! commits the signers to the validator set the log defines at this size, so a verifier that rebuilds the set
//! from validator-set changes (as receipts carry them) knows none was left out. A checkpoint is valid for a
//! validator set when the set hashes to that line and at least a quorum (2f+1 of 3f+1) of its members signed it;
//! signatures from unknown keys are ignored, a signature from a member that does not verify invalidates the
//! note.

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::error::LedgerError;
use crate::hash::Hash;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Largest signed note accepted.
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// Most signature lines accepted.
pub const MAX_SIGNATURES: usize = 128;
const ED25519_ALG: u8 = 0x01;

fn err(detail: impl Into<String>) -> LedgerError {
    LedgerError::Checkpoint(detail.into())
}

/// A validator's checkpoint-signing identity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// Key name in signed notes (no spaces, no '+').
    pub name: String,
    /// Ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
}

impl Validator {
    /// The 4-byte key id of signed notes.
    pub fn key_id(&self) -> [u8; 4] {
        let mut m = Vec::with_capacity(self.name.len() + 34);
        m.extend_from_slice(self.name.as_bytes());
        m.push(b'\n');
        m.push(ED25519_ALG);
        m.extend_from_slice(&self.public_key);
        Hash::digest(&m).0[..4].try_into().expect("4 bytes")
    }

    /// The C2SP verifier key string `<name>+<key id hex>+<base64(0x01 ‖ key)>`.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![ED25519_ALG];
        k.extend_from_slice(&self.public_key);
        format!("{}+{}+{}", self.name, hex::encode(self.key_id()), B64.encode(k))
    }
}

/// Checks a key name: non-empty, printable, no spaces or '+'.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '+')
}

/// The signed-note signature line `— <name> <base64(key id ‖ Ed25519(text))>` for any note text.
pub fn signature_line(text: &str, name: &str, key: &Ed25519KeyPair) -> String {
    let v = Validator { name: name.to_string(), public_key: key.public_key().as_ref().to_vec() };
    let mut blob = v.key_id().to_vec();
    blob.extend_from_slice(key.sign(text.as_bytes()).as_ref());
    format!("\u{2014} {name} {}\n", B64.encode(blob))
}

/// The validators whose signatures make a checkpoint valid at some tree size.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidatorSet {
    /// Members, in admission order.
    pub members: Vec<Validator>,
}

/// The extension line's prefix.
pub const VALIDATORS_LINE: &str = "sigil-validators ";

impl ValidatorSet {
    /// SHA-256 of the members' canonical CBOR encoding: what checkpoints commit to.
    pub fn digest(&self) -> Hash {
        Hash::digest(&sigil_primitives::cbor::encode(&self.members))
    }

    /// Signatures needed: n − f where f = ⌊(n − 1) / 3⌋ (2f+1 when n = 3f+1).
    pub fn quorum(&self) -> usize {
        let n = self.members.len();
        if n == 0 {
            return usize::MAX;
        }
        n - (n - 1) / 3
    }
}

/// A tree head: the pod (origin), the size and the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The pod id.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Root hash of the tree of `size` entries.
    pub root: Hash,
    /// [`ValidatorSet::digest`] of the validator set the log defines at `size`.
    pub validators: Hash,
}

impl Checkpoint {
    /// The note text that signatures cover.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{VALIDATORS_LINE}{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0),
            B64.encode(self.validators.0)
        )
    }

    /// Parses the note text: origin, size, root and the `sigil-validators` extension line, nothing else.
    pub fn parse_body(body: &str) -> Result<Checkpoint, LedgerError> {
        let lines: Vec<&str> =
            body.strip_suffix('\n').ok_or_else(|| err("note text must end with a newline"))?.split('\n').collect();
        let [origin, size, root, validators] = lines[..] else {
            return Err(err(format!(
                "checkpoint has {} lines, expected origin, size, root and the sigil-validators line",
                lines.len()
            )));
        };
        if origin.is_empty() || origin.trim() != origin {
            return Err(err("origin is empty or has surrounding spaces"));
        }
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(err(format!("tree size {size:?} is not a decimal number without leading zeros")));
        }
        let size: u64 = size.parse().map_err(|_| err("tree size overflows"))?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|r| Hash::from_slice(&r))
            .ok_or_else(|| err("root is not a base64 32-byte hash"))?;
        let validators = validators
            .strip_prefix(VALIDATORS_LINE)
            .and_then(|v| B64.decode(v).ok())
            .and_then(|v| Hash::from_slice(&v))
            .ok_or_else(|| err("the fourth line is not \"sigil-validators <base64 hash>\""))?;
        Ok(Checkpoint { origin: origin.to_string(), size, root, validators })
    }

    /// Signs the checkpoint as `name` with an Ed25519 key pair; returns the signature line.
    pub fn sign(&self, name: &str, key: &Ed25519KeyPair) -> String {
        signature_line(&self.body(), name, key)
    }
}

/// A checkpoint with its signature lines, as carried in receipts and published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// Signatures: (key name, key id, Ed25519 signature).
    pub signatures: Vec<(String, [u8; 4], Vec<u8>)>,
}

impl SignedCheckpoint {
    /// The full signed note text.
    pub fn to_note(&self) -> String {
        let mut s = self.checkpoint.body();
        s.push('\n');
        for (name, id, sig) in &self.signatures {
            let mut blob = id.to_vec();
            blob.extend_from_slice(sig);
            s.push_str(&format!("\u{2014} {name} {}\n", B64.encode(blob)));
        }
        s
    }

    /// Builds a note from a checkpoint and signature lines produced by [`Checkpoint::sign`].
    pub fn from_lines(checkpoint: Checkpoint, lines: &[String]) -> Result<SignedCheckpoint, LedgerError> {
        let mut text = checkpoint.body();
        text.push('\n');
        for l in lines {
            text.push_str(l);
        }
        SignedCheckpoint::parse(&text)
    }

    /// Parses a signed note (strictly: UTF-8, size-limited, every signature line well formed).
    pub fn parse(note: &str) -> Result<SignedCheckpoint, LedgerError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(err(format!("note is larger than {MAX_NOTE_LEN} bytes")));
        }
        let split = note.find("\n\n").ok_or_else(|| err("no blank line between the note text and its signatures"))?;
        let checkpoint = Checkpoint::parse_body(&note[..split + 1])?;
        let sigs = &note[split + 2..];
        let sigs = sigs.strip_suffix('\n').ok_or_else(|| err("signature lines must end with a newline"))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(err(format!("more than {MAX_SIGNATURES} signatures")));
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| err(format!("signature line {line:?} does not start with an em dash")))?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| err("signature line has no signature"))?;
            if !valid_key_name(name) {
                return Err(err(format!("bad key name {name:?}")));
            }
            let blob = B64.decode(b64).map_err(|_| err(format!("signature of {name} is not base64")))?;
            if blob.len() < 5 {
                return Err(err(format!("signature of {name} is too short")));
            }
            signatures.push((name.to_string(), blob[..4].try_into().expect("4"), blob[4..].to_vec()));
        }
        if signatures.is_empty() {
            return Err(err("the note has no signatures"));
        }
        Ok(SignedCheckpoint { checkpoint, signatures })
    }

    /// Checks that a quorum of `set` signed this checkpoint for `origin`. Returns the names of the members
    /// whose signatures verified.
    pub fn verify(&self, origin: &str, set: &ValidatorSet) -> Result<Vec<String>, LedgerError> {
        if self.checkpoint.origin != origin {
            return Err(err(format!("checkpoint is for {:?}, not for pod {origin:?}", self.checkpoint.origin)));
        }
        if self.checkpoint.validators != set.digest() {
            return Err(err(format!(
                "the checkpoint commits to another validator set than the {} members given",
                set.members.len()
            )));
        }
        let body = self.checkpoint.body();
        let mut signers: Vec<String> = Vec::new();
        for (name, id, sig) in &self.signatures {
            let Some(member) = set.members.iter().find(|m| &m.name == name && &m.key_id() == id) else {
                continue; // not a member at this size: ignored, as signed notes require
            };
            UnparsedPublicKey::new(&ED25519, &member.public_key)
                .verify(body.as_bytes(), sig)
                .map_err(|_| err(format!("signature of validator {name} does not verify")))?;
            if !signers.contains(name) {
                signers.push(name.clone());
            }
        }
        let need = set.quorum();
        if signers.len() < need {
            return Err(err(format!(
                "{} of {} validators signed; a quorum is {need}",
                signers.len(),
                set.members.len()
            )));
        }
        Ok(signers)
    }
}
