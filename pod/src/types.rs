//! The pod's identities, free of engine types: heights, validator addresses and keys, block ids, signatures,
//! validator sets, and the receipt signature check. The block format and rules ([`crate::block`]), pod state
//! and admission use only these; `context` makes them the types Malachite runs on (its trait impls live
//! there), so the rules can be read, tested and fuzzed without the engine in view.

use std::fmt;
use std::sync::Arc;

use ring::signature::{UnparsedPublicKey, ED25519};

/// A consensus height: the number of decided blocks after genesis (the first block is height 1).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A validator's consensus address: its Ed25519 public key.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 32]);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", &hex::encode(self.0)[..12])
    }
}

/// What consensus decides: the id of a block (SHA-256 of its canonical encoding).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub sigil_ledger::Hash);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex()[..16])
    }
}

/// An Ed25519 public key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature(pub [u8; 64]);

/// A member of the validator set, as the ledger defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The node's name in the ledger (the checkpoint key name).
    pub name: String,
    /// Its address (= its key).
    pub address: Address,
    /// Its key.
    pub public_key: PublicKey,
}

/// The validators of one height, in admission order (the ledger's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    /// Members.
    pub validators: Arc<Vec<Validator>>,
}

impl ValidatorSet {
    /// The consensus view of a ledger validator set. Keys that are not 32 bytes are refused.
    pub fn from_ledger(set: &sigil_ledger::checkpoint::ValidatorSet) -> Result<ValidatorSet, String> {
        let validators = set
            .members
            .iter()
            .map(|m| {
                let key: [u8; 32] = m
                    .public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("validator {} has a {}-byte key", m.name, m.public_key.len()))?;
                Ok(Validator { name: m.name.clone(), address: Address(key), public_key: PublicKey(key) })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ValidatorSet { validators: Arc::new(validators) })
    }

    /// The member with this name.
    pub fn by_name(&self, name: &str) -> Option<&Validator> {
        self.validators.iter().find(|v| v.name == name)
    }

    /// The member with this key.
    pub fn by_key(&self, key: &[u8; 32]) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.public_key.0 == key)
    }
}

const RECEIPT: &[u8] = b"sigil/receipt\0";

/// What the executing node signs to vouch for an invocation or rejection entry: its leaf hash, under the
/// receipt domain (no consensus message's signed bytes start with it; see `signing`).
pub fn receipt_bytes(leaf: &sigil_ledger::Hash) -> Vec<u8> {
    [RECEIPT, &leaf.0].concat()
}

/// Verifies an Ed25519 signature over raw bytes.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    UnparsedPublicKey::new(&ED25519, &key.0).verify(msg, &sig.0).is_ok()
}
