//! Canonical CBOR: RFC 8949 §4.2.1 core deterministic encoding (definite lengths, shortest integers, map keys
//! sorted by their encoding), and a decoder that accepts that encoding and no other, so that every signed or
//! hashed value has exactly one encoding and one hash.

use ciborium::Value;
use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Why bytes did not decode as the value they claim to be. Each variant names what was being decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// More bytes than that value may have.
    #[error("decode {what}: {len} bytes exceeds {max}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The length offered.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// Not a CBOR data item.
    #[error("decode {what}: not CBOR: {detail}")]
    NotCbor {
        /// What was being decoded.
        what: &'static str,
        /// The CBOR reader's reason.
        detail: String,
    },
    /// Bytes after the one data item.
    #[error("decode {what}: {count} trailing bytes")]
    Trailing {
        /// What was being decoded.
        what: &'static str,
        /// How many.
        count: usize,
    },
    /// Valid CBOR, but not in core deterministic form.
    #[error("decode {what}: not in canonical CBOR form (key order, integer sizes or lengths)")]
    NotCanonical {
        /// What was being decoded.
        what: &'static str,
    },
    /// Canonical CBOR whose value re-encodes differently (a tag, or another CBOR type for a field).
    #[error("decode {what}: not the canonical encoding of its value (a tag, or another type for a field)")]
    NotCanonicalValue {
        /// What was being decoded.
        what: &'static str,
    },
    /// Canonical CBOR that is not a value of the expected shape (a missing, unknown or mistyped field).
    #[error("decode {what}: {detail}")]
    Shape {
        /// What was being decoded.
        what: &'static str,
        /// The deserialiser's reason.
        detail: String,
    },
}

impl CodecError {
    /// What was being decoded.
    pub fn what(&self) -> &'static str {
        match self {
            CodecError::TooLarge { what, .. }
            | CodecError::NotCbor { what, .. }
            | CodecError::Trailing { what, .. }
            | CodecError::NotCanonical { what }
            | CodecError::NotCanonicalValue { what }
            | CodecError::Shape { what, .. } => what,
        }
    }
}

/// The RFC 8949 §4.2.1 core deterministic encoding of `value`.
///
/// # Panics
/// If `value`'s `Serialize` fails: Sigil's signed and hashed types are plain data and never do.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = Value::serialized(value).expect("sigil types serialise to CBOR");
    sort_maps(&mut v);
    value_bytes(&v)
}

/// Decodes `bytes` (at most `max` of them) as `T`, accepting only the canonical encoding of a `T`: one data item,
/// in core deterministic form, that re-encodes to the same bytes.
pub fn decode<T: DeserializeOwned + Serialize>(bytes: &[u8], what: &'static str, max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge { what, len: bytes.len(), max });
    }
    let mut rest = bytes;
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|e| CodecError::NotCbor { what, detail: e.to_string() })?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing { what, count: rest.len() });
    }
    let mut sorted = value.clone();
    sort_maps(&mut sorted);
    if value_bytes(&sorted) != bytes {
        return Err(CodecError::NotCanonical { what });
    }
    let t: T = value.deserialized().map_err(|e| CodecError::Shape { what, detail: e.to_string() })?;
    // What decodes must be what encodes: serde reads through tags and takes an array of small integers for a
    // byte string, so the same value could arrive in several forms (and under several hashes) without this.
    if encode(&t) != bytes {
        return Err(CodecError::NotCanonicalValue { what });
    }
    Ok(t)
}

fn value_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn sort_maps(v: &mut Value) {
    match v {
        Value::Map(entries) => {
            for (k, val) in entries.iter_mut() {
                sort_maps(k);
                sort_maps(val);
            }
            entries.sort_by_cached_key(|(k, _)| value_bytes(k));
        }
        Value::Array(items) => items.iter_mut().for_each(sort_maps),
        Value::Tag(_, inner) => sort_maps(inner),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn maps_are_sorted_by_encoded_key_and_only_that_order_decodes() {
        let m: BTreeMap<String, u32> = [("bb".to_string(), 1), ("a".to_string(), 2)].into_iter().collect();
        let bytes = encode(&m);
        // "a" (0x61 0x61) sorts before "bb" (0x62 0x62 0x62).
        assert_eq!(bytes, [0xa2, 0x61, b'a', 0x02, 0x62, b'b', b'b', 0x01]);
        assert_eq!(decode::<BTreeMap<String, u32>>(&bytes, "map", 64).unwrap(), m);
        let swapped = [0xa2, 0x62, b'b', b'b', 0x01, 0x61, b'a', 0x02];
        assert_eq!(decode::<BTreeMap<String, u32>>(&swapped, "map", 64), Err(CodecError::NotCanonical { what: "map" }));
    }

    #[test]
    fn every_other_encoding_is_refused_with_its_reason() {
        let d = |b: &[u8]| decode::<u32>(b, "n", 8);
        assert_eq!(d(&[0x01]), Ok(1));
        assert_eq!(d(&[0x18, 0x01]), Err(CodecError::NotCanonical { what: "n" })); // a long integer
        assert_eq!(d(&[0x01, 0x00]), Err(CodecError::Trailing { what: "n", count: 1 }));
        assert!(matches!(d(&[0xc1, 0x01]), Err(CodecError::Shape { .. }))); // a tag
                                                                            // Inside an internally tagged enum (as ledger entries are), serde buffers the fields and then takes an array
                                                                            // of small integers for a byte string: valid, sorted CBOR that is not how the value encodes.
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind")]
        enum E {
            A { b: serde_bytes::ByteBuf },
        }
        let e = |b: &[u8]| decode::<E>(b, "e", 64);
        let bytes_form = [0xa2, 0x61, b'b', 0x41, 0x01, 0x64, b'k', b'i', b'n', b'd', 0x61, b'A'];
        assert_eq!(e(&bytes_form), Ok(E::A { b: serde_bytes::ByteBuf::from(vec![1]) }));
        assert_eq!(encode(&E::A { b: serde_bytes::ByteBuf::from(vec![1]) }), bytes_form);
        let array_form = [0xa2, 0x61, b'b', 0x81, 0x01, 0x64, b'k', b'i', b'n', b'd', 0x61, b'A'];
        assert_eq!(e(&array_form), Err(CodecError::NotCanonicalValue { what: "e" }));
        assert!(matches!(d(&[0x1f]), Err(CodecError::NotCbor { .. })));
        assert!(matches!(d(&[0x61, b'x']), Err(CodecError::Shape { .. })));
        assert_eq!(d(&[0; 9]), Err(CodecError::TooLarge { what: "n", len: 9, max: 8 }));
        // The message keeps the shape every caller printed before this type existed.
        assert_eq!(d(&[0x01, 0x00]).unwrap_err().to_string(), "decode n: 1 trailing bytes");
    }
}
