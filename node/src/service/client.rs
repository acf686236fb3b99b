//! An HTTPS client of a node's API that trusts the node by its attested certificate ([`super::tls`]).

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use super::error::ClientError;
use super::tls::{AttestedVerifier, Seen, Trust};

/// A node's API endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `https://HOST:PORT` (a trailing `/` allowed).
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |why| ClientError::Url { url: url.to_string(), why };
        let rest =
            url.strip_prefix("https://").ok_or(bad("the API is HTTPS only (https://HOST:PORT)"))?.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad("give the node's base URL, https://HOST:PORT"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.trim_matches(|c| c == '[' || c == ']').to_string(), p.parse().map_err(|_| bad("bad port"))?)
            }
            _ => (rest.to_string(), 443),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Endpoint { host, port })
    }

    /// Whether `url` (an https URL, with or without a path) is at this endpoint: the same host (any case) and
    /// port (443 when none is given).
    pub fn serves(&self, url: &str) -> bool {
        let Some(rest) = url.strip_prefix("https://") else { return false };
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        Endpoint::parse(&format!("https://{authority}"))
            .is_ok_and(|e| e.host.eq_ignore_ascii_case(&self.host) && e.port == self.port)
    }

    /// Whether the host is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
    }
}

/// A response.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// All headers.
    pub headers: hyper::HeaderMap,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|error| ClientError::NotJson { status: self.status, error })
    }

    /// The `error` field of a JSON error body, or the body as text.
    pub fn error(&self) -> String {
        match self.json() {
            Ok(v) => v["error"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// A client of one node.
pub struct Client {
    /// The node.
    pub endpoint: Endpoint,
    config: Arc<rustls::ClientConfig>,
    /// What the last handshake's verifier accepted.
    pub seen: Arc<Mutex<Seen>>,
}

impl Client {
    /// A client of `endpoint` that trusts it per `trust`.
    pub fn new(endpoint: Endpoint, trust: Trust) -> Result<Client, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|error| ClientError::Config { what: "TLS versions", error })?;
        let (mut config, seen) = match trust {
            Trust::Ca(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for r in roots {
                    store
                        .add(rustls::pki_types::CertificateDer::from(r))
                        .map_err(|error| ClientError::Config { what: "a CA certificate", error })?;
                }
                (builder.with_root_certificates(store).with_no_client_auth(), Arc::default())
            }
            trust => {
                let verifier = Arc::new(AttestedVerifier::new(trust));
                let seen = verifier.seen.clone();
                (builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth(), seen)
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client { endpoint, config: Arc::new(config), seen })
    }

    /// Sends one request on a new connection.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        self.connect().await?.send(method, path, content_type, body).await
    }

    /// A connection that stays open for many requests (HTTP/1.1 keep-alive).
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let (tls, addr) = self.tls().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { sender, host: addr })
    }

    /// A TLS connection to the node, its certificate checked, with no HTTP on it yet; and `HOST:PORT`.
    pub async fn tls(&self) -> Result<(tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String), ClientError> {
        let addr = format!("{}:{}", self.endpoint.host, self.endpoint.port);
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|error| ClientError::Connect { addr: addr.clone(), error })?;
        let name = rustls::pki_types::ServerName::try_from(self.endpoint.host.clone())
            .map_err(|error| ClientError::ServerName { host: self.endpoint.host.clone(), error })?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|error| ClientError::Tls { addr: addr.clone(), error })?;
        Ok((tls, addr))
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.send("GET", path, None, Vec::new()).await
    }

    /// GET `path` as a reader that signs with `key` for `pod` ([`super::reads`]): how a caller reads its own entries
    /// and receipts, and a member or auditor the whole record.
    pub async fn get_signed(
        &self,
        path: &str,
        key: &ring::signature::Ed25519KeyPair,
        pod: &str,
    ) -> Result<Response, ClientError> {
        let auth = super::reads::authorization(key, pod, "GET", path, sigil_primitives::clock::now_ms());
        let headers = [("accept", "application/json"), ("authorization", auth.as_str())];
        self.connect().await?.send_with("GET", path, &headers, Vec::new()).await
    }

    /// POST CBOR to `path`.
    pub async fn post_cbor(&self, path: &str, body: Vec<u8>) -> Result<Response, ClientError> {
        self.send("POST", path, Some("application/cbor"), body).await
    }
}

/// An open connection to a node.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let mut headers = vec![("accept", "application/json")];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        self.send_with(method, path, &headers, body).await
    }

    /// Sends one request with these headers (besides `Host`) and reads the whole response.
    pub async fn send_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let addr = &self.host;
        let mut req = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, addr.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.sender.ready().await?;
        let resp = self.sender.send_request(req.body(Full::new(Bytes::from(body)))?).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers.get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, location, body, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_serves_urls_at_its_own_host_and_port_only() {
        let e = Endpoint::parse("https://Node-0.example:8443").unwrap();
        assert!(e.serves("https://node-0.example:8443/oauth/eu"));
        assert!(e.serves("https://NODE-0.EXAMPLE:8443"));
        assert!(!e.serves("https://node-0.example:8444/oauth/eu"), "another port");
        assert!(!e.serves("https://phish.example:8443/oauth/eu"), "another host");
        assert!(!e.serves("https://node-0.example.phish.example:8443/oauth/eu"));
        assert!(!e.serves("http://node-0.example:8443/oauth/eu"), "not https");
        assert!(!e.serves("https://node-0.example:8443@phish.example/oauth/eu"), "userinfo tricks");
        let default = Endpoint::parse("https://node.example").unwrap();
        assert!(default.serves("https://node.example:443/x") && default.serves("https://node.example/x"));
    }
}
