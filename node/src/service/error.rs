//! The service's errors, one enum per thing that can fail, so callers (the CLI, tests, the devnet) can branch on
//! what went wrong. Each message says what failed and why, in the words the CLI prints.

use std::net::SocketAddr;

use thiserror::Error;

/// Why a node's service could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configured genesis is another kind of entry.
    #[error("the genesis is not a genesis entry")]
    NotGenesis,
    /// The API's address cannot be bound.
    #[error("the API cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The node's TLS certificate or configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The pod node did not start.
    #[error(transparent)]
    Pod(#[from] sigil_pod::PodError),
    /// The applet runtime did not start.
    #[error("the applet runtime: {0}")]
    Runtime(sigil_runtime::RuntimeError),
    /// The identity seed is not an Ed25519 key.
    #[error("the node's identity key: {0}")]
    Key(String),
}

/// Why the node's TLS certificate or configuration could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Making the attested certificate or its key.
    #[error("the attested certificate: {0}")]
    Certificate(rcgen::Error),
    /// The identity seed is not an Ed25519 key.
    #[error("the node's identity key: {0}")]
    Key(String),
    /// rustls refused the configuration (for an operator certificate: a chain and key that do not match).
    #[error("the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Why a request to a node's API failed before a response came back.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node URL is not `https://HOST:PORT`.
    #[error("{url:?}: {why}")]
    Url {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The client's TLS configuration (a CA certificate rustls refused).
    #[error("{what}: {error}")]
    Config {
        /// What was being configured.
        what: &'static str,
        /// Why.
        error: rustls::Error,
    },
    /// No TCP connection.
    #[error("connecting to {addr}: {error}")]
    Connect {
        /// `HOST:PORT`.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// The TLS handshake failed: for an attested node, its certificate or evidence was refused.
    #[error("TLS with {addr} (the node's attested certificate): {error}")]
    Tls {
        /// `HOST:PORT`.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// The host is not a valid TLS server name.
    #[error("{host}: {error}")]
    ServerName {
        /// The host.
        host: String,
        /// Why.
        error: rustls::pki_types::InvalidDnsNameError,
    },
    /// HTTP on an open connection.
    #[error("HTTP: {0}")]
    Http(hyper::Error),
    /// A request that cannot be built (a header value or path that is not valid HTTP).
    #[error("a malformed request: {0}")]
    Request(hyper::http::Error),
    /// The response body was not the JSON the caller expected.
    #[error("the node answered {status} with no JSON: {error}")]
    NotJson {
        /// The response's status.
        status: u16,
        /// Why.
        error: serde_json::Error,
    },
}

// The wrapped errors are in the messages, not the source chain: the CLI prints `{:#}` (message and chain), which
// would say them twice.
macro_rules! from {
    ($($inner:ty => $outer:ident::$variant:ident),* $(,)?) => {$(
        impl From<$inner> for $outer {
            fn from(e: $inner) -> $outer {
                $outer::$variant(e)
            }
        }
    )*};
}
from! {
    sigil_runtime::RuntimeError => StartError::Runtime,
    rcgen::Error => TlsError::Certificate,
    rustls::Error => TlsError::Config,
    hyper::Error => ClientError::Http,
    hyper::http::Error => ClientError::Request,
}

/// The system's secure random source failed.
#[derive(Debug, Error)]
#[error("no system randomness")]
pub struct NoRandomness;
