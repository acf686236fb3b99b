//! [`Hash`]: a SHA-256 digest, the one hash type of Sigil's ledger, runtime and pod.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A SHA-256 hash: a leaf hash, a tree node, a root, an entry digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hash length in bytes.
    pub const LEN: usize = 32;

    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Hash {
        Hash(ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().expect("32 bytes"))
    }

    /// From exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Hash> {
        b.try_into().ok().map(Hash)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Hash {
    /// Accepts 32 raw bytes or 64 hex digits, whatever the format claims to be: serde's buffering of internally
    /// tagged enums does not carry `is_human_readable` through.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Hash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 32-byte hash (bytes or hex)")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Hash, E> {
                Hash::from_slice(v).ok_or_else(|| E::custom(format!("a hash is 32 bytes, got {}", v.len())))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hash, E> {
                let b = hex::decode(v).map_err(E::custom)?;
                self.visit_bytes(&b)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}
