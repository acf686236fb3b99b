//! The one error type of the crate.
//!
//! Errors describe why evidence could not be *read* (wrong size, bad encoding, unknown platform) or why a
//! verification step could not *run*. A verdict of "rejected" is not an error: it is an
//! [`AttestationResult`](crate::AttestationResult) whose `reasons` say what failed.

use thiserror::Error;

/// Everything that can go wrong in `attest`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The evidence bytes could not be parsed.
    #[error("malformed evidence: {0}")]
    Parse(ParseError),
    /// A certificate could not be parsed or does not have the expected profile.
    #[error("certificate {which}: {reason}")]
    Certificate {
        /// Which certificate (e.g. "VCEK", "ASK", "PCK leaf").
        which: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A policy file could not be read.
    #[error("policy: {0}")]
    Policy(String),
    /// Collateral (Intel PCS JSON) could not be read.
    #[error("collateral: {0}")]
    Collateral(String),
    /// Evidence collection from the local TEE failed.
    #[error("evidence collection: {0}")]
    Collect(String),
    /// A result or bundle could not be encoded.
    #[error("encoding: {0}")]
    Encode(String),
}

/// Why bytes could not be parsed as evidence. Parsers return these before any signature is checked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty.
    #[error("input is empty")]
    Empty,
    /// The input did not match any evidence format Sigil knows.
    #[error("unrecognised evidence format ({len} bytes): expected an SEV-SNP report (1184 bytes), an Azure HCL report, a TDX quote, a Sigil evidence bundle or sim evidence, raw or hex")]
    UnknownFormat {
        /// Length of the input.
        len: usize,
    },
    /// A structure has the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// The structure.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The input is shorter than a structure needs.
    #[error("{what}: truncated (need {need} bytes, have {have})")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Bytes follow the structure that are not zero padding.
    #[error("{what}: {count} trailing bytes after the structure are not zero padding")]
    TrailingBytes {
        /// The structure.
        what: &'static str,
        /// Number of trailing bytes.
        count: usize,
    },
    /// A version field has a value this verifier does not accept.
    #[error("{what}: unsupported version {version}")]
    Version {
        /// The structure.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A field has a value that is not allowed.
    #[error("{what}: {detail}")]
    Field {
        /// The structure and field.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Hex input with a non-hex character or odd length.
    #[error("hex input: {0}")]
    Hex(String),
    /// CBOR that does not decode into the expected shape.
    #[error("CBOR: {0}")]
    Cbor(String),
    /// JSON that does not decode into the expected shape.
    #[error("JSON: {0}")]
    Json(String),
}

// Not `#[from]`: that would also make the ParseError the error's `source`, and reports that print the chain
// would say everything twice.
impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

impl Error {
    pub(crate) fn cert(which: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Certificate { which: which.into(), reason: reason.into() }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
