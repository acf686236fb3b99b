//! Outbound HTTP for applets granted `http`: an allow-list enforced on every hop, SSRF-safe address checks, and a
//! small HTTP/1.1 client over the vetted address (never a second DNS lookup).
//!
//! Rules (each has a test in `tests/egress.rs`):
//! - `https://` (rustls, the runtime's trust roots: Mozilla's by default) and `http://` URLs; no user-info.
//! - HOST[:PORT] must match an allow-list entry exactly (names case-insensitively). An entry without a port allows
//!   the scheme's default port (443 or 80).
//! - A redirect from `https` to `http` is refused (no downgrade).
//! - A listed *name* must resolve only to public addresses: loopback, private, link-local, CGNAT, unique-local,
//!   multicast, documentation and other special ranges are refused (so a name cannot be pointed at the node's own
//!   network — the DNS-rebinding form of SSRF). Such addresses are reachable only when listed as IP literals.
//! - Redirects are followed (at most the applet's request budget) only when the new location passes the same checks;
//!   a redirect off the list ends the run as `denied` (Spin's outbound HTTP once followed redirects inside its
//!   client, bypassing its allow-list: spinframework/spin#1881).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

/// A byte stream: TCP, or TLS over TCP.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    /// Lower-case host name or IP literal (without brackets).
    pub host: String,
    /// Port; `None` allows the default port of the URL's scheme.
    pub port: Option<u16>,
}

impl AllowEntry {
    /// Parses `HOST[:PORT]` (IPv6 literals in brackets).
    pub fn parse(s: &str) -> Result<AllowEntry, String> {
        let (host, port) = split_host_port(s).ok_or_else(|| format!("{s:?} is not HOST[:PORT]"))?;
        if !valid_host(host) {
            return Err(format!("{s:?}: bad host (a DNS name or an IP address)"));
        }
        Ok(AllowEntry { host: host.to_ascii_lowercase(), port })
    }
}

/// A DNS name (letters, digits, `-`, `.`) or an IP literal.
fn valid_host(h: &str) -> bool {
    h.parse::<IpAddr>().is_ok()
        || (!h.is_empty()
            && h.len() <= 253
            && h.split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')))
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<Ipv6Addr>().ok()?;
        return match after {
            "" => Some((h, None)),
            p => Some((h, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https`.
    pub tls: bool,
    /// Lower-case host (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(s: &str) -> Result<Url, EgressError> {
        let bad = |why: &str| EgressError::Failed(format!("bad URL {s:?}: {why}"));
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("not absolute"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http:// and https:// URLs")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("user-info is not allowed"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
        if !valid_host(host) {
            return Err(bad("the host is not a DNS name or an IP address"));
        }
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.is_empty() || tail.starts_with('?') { format!("/{tail}") } else { tail.to_string() };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("control characters or spaces in the path"));
        }
        Ok(Url { tls, host: host.to_ascii_lowercase(), port: port.unwrap_or(if tls { 443 } else { 80 }), path })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }

    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves a `Location` header against this URL.
    fn join(&self, location: &str) -> Result<Url, EgressError> {
        let (scheme, authority) = (self.scheme(), self.authority());
        if location.contains("://") {
            Url::parse(location)
        } else if location.starts_with("//") {
            Url::parse(&format!("{scheme}:{location}"))
        } else if location.starts_with('/') {
            Url::parse(&format!("{scheme}://{authority}{location}"))
        } else {
            let base = self.path.rsplit_once('/').map_or("", |(b, _)| b);
            Url::parse(&format!("{scheme}://{authority}{base}/{location}"))
        }
    }
}

/// Why a request was not made or did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressError {
    /// The policy forbids it: the run ends with the outcome `denied`.
    Denied(String),
    /// It was allowed but failed (bad URL, connection refused, timeout, malformed response): the applet gets the
    /// error and may carry on.
    Failed(String),
}

/// Whether `ip` is a special-purpose address (anything but the public unicast internet).
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_special_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_special_v4(v4);
            }
            let s = a.segments();
            a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 (embeds IPv4)
                || s[0] == 0x2002 // 6to4 (embeds IPv4)
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0..6] == [0; 6]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_special_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
        || CLOUD_HOST_V4.contains(&o)
}

/// Cloud host endpoints at addresses outside the ranges above: only the host answers them.
/// - 168.63.129.16: Azure's WireServer (the host agent's channel: DNS, DHCP, health probes, VM extension settings
///   and certificates);
/// - 100.100.100.200: Alibaba Cloud's instance metadata (inside shared address space, named for clarity).
const CLOUD_HOST_V4: &[[u8; 4]] = &[[168, 63, 129, 16], [100, 100, 100, 200]];

/// Whether `ip` is a cloud host endpoint: instance metadata services (169.254.169.254 on AWS, GCP, Azure and
/// Oracle; AWS's DNS, time and ECS endpoints; any link-local address), their IPv6 addresses (AWS fd00:ec2::/32,
/// GCP fd20:ce::/32, Oracle fd00:c1::/32), Azure's WireServer and Alibaba's metadata, also inside IPv6 (mapped,
/// compatible or NAT64). The host (the adversary of a confidential VM) answers these, and
/// the metadata services hand out the VM's cloud credentials, so no applet reaches them, even one whose
/// manifest lists the address itself.
pub fn is_host_endpoint(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local() || CLOUD_HOST_V4.contains(&a.octets()),
        IpAddr::V6(a) => {
            let s = a.segments();
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d).
            let embedded =
                s[0..6] == [0; 6] || s[0..6] == [0, 0, 0, 0, 0, 0xffff] || s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            if embedded {
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return is_host_endpoint(IpAddr::V4(v4));
            }
            (s[0] & 0xffc0) == 0xfe80 // link-local
                || CLOUD_HOST_V6_32.contains(&[s[0], s[1]])
        }
    }
}

/// Cloud host endpoints' IPv6 /32s: AWS (fd00:ec2::254 and its DNS and time), GCP (fd20:ce::254) and Oracle
/// (fd00:c1::a9fe:a9fe) instance metadata.
const CLOUD_HOST_V6_32: &[[u16; 2]] = &[[0xfd00, 0x0ec2], [0xfd20, 0x00ce], [0xfd00, 0x00c1]];

/// The allow-list and limits for one invocation's egress.
pub struct Egress {
    allow: Vec<AllowEntry>,
    max_response: u64,
    tls: Arc<rustls::ClientConfig>,
}

/// The TLS client configuration for egress: ring, TLS 1.2 and 1.3, and these trust roots (DER certificates), or
/// Mozilla's (webpki-roots) when `None`.
pub fn tls_config(roots: Option<&[Vec<u8>]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(ders) => {
            for der in ders {
                store
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| format!("egress trust root: {e}"))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const MAX_HEAD: usize = 16 << 10;

impl Egress {
    /// From a manifest's allow-list (entries already validated), response limit and TLS configuration.
    pub fn new(allow: &[String], max_response: u64, tls: Arc<rustls::ClientConfig>) -> Egress {
        Egress { allow: allow.iter().filter_map(|a| AllowEntry::parse(a).ok()).collect(), max_response, tls }
    }

    /// Checks `url` against the allow-list and resolves it to the one address to connect to.
    pub fn vet(&self, url: &Url, deadline: Instant) -> Result<SocketAddr, EgressError> {
        let listed = self.allow.iter().any(|a| a.host == url.host && a.port.unwrap_or(url.default_port()) == url.port);
        if !listed {
            return Err(EgressError::Denied(format!(
                "{}:{} is not in the applet's http allow-list",
                url.host, url.port
            )));
        }
        if let Ok(ip) = url.host.parse::<IpAddr>() {
            // Checked here, when the applet runs, not when a manifest is parsed: committed manifests are re-read at
            // every start and must stay valid under the rules they were committed under.
            if is_host_endpoint(ip) {
                return Err(EgressError::Denied(format!(
                    "{ip} is a cloud host endpoint (instance metadata, Azure WireServer): never reachable from an applet"
                )));
            }
            // Listed as a literal: reachable even if special (the manifest's signers said so).
            return Ok(SocketAddr::new(ip, url.port));
        }
        let addrs = resolve(&url.host, url.port, deadline)?;
        if let Some(bad) = addrs.iter().find(|a| is_special(a.ip())) {
            return Err(EgressError::Denied(format!(
                "{} resolves to {}, a private or special-purpose address; list the address itself to allow it",
                url.host,
                bad.ip()
            )));
        }
        addrs.into_iter().next().ok_or_else(|| EgressError::Failed(format!("{} has no addresses", url.host)))
    }

    /// Sends a request, following allowed redirects. `budget` is decremented per request sent; `deadline` bounds the
    /// whole exchange.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        budget: &mut u64,
        deadline: Instant,
    ) -> Result<Response, EgressError> {
        let mut method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(EgressError::Failed(format!("method {method:?} is not one of {}", METHODS.join(", "))));
        }
        let mut url = Url::parse(url)?;
        let mut body = body.to_vec();
        let mut redirected_by: Option<String> = None;
        loop {
            // The address checked here is the one connected to: no second lookup between check and use.
            let addr = self.vet(&url, deadline).map_err(|e| match (e, &redirected_by) {
                (EgressError::Denied(why), Some(loc)) => {
                    EgressError::Denied(format!("redirect to {loc:?} refused: {why}"))
                }
                (e, _) => e,
            })?;
            if *budget == 0 {
                return Err(EgressError::Denied(
                    "the applet's HTTP request budget (limits.max_http_requests) is spent".into(),
                ));
            }
            *budget -= 1;
            let (status, location, resp) = self.exchange(addr, &url, &method, &body, deadline)?;
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => {
                    if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
                        method = "GET".into();
                        body.clear();
                    }
                    let next = url.join(&loc).map_err(|e| match e {
                        EgressError::Failed(m) => EgressError::Denied(format!("redirect to {loc:?} refused: {m}")),
                        d => d,
                    })?;
                    if url.tls && !next.tls {
                        return Err(EgressError::Denied(format!(
                            "redirect to {loc:?} refused: it downgrades https to http"
                        )));
                    }
                    url = next;
                    redirected_by = Some(loc);
                }
                _ => return Ok(Response { status, body: resp }),
            }
        }
    }

    fn exchange(
        &self,
        addr: SocketAddr,
        url: &Url,
        method: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(u16, Option<String>, Vec<u8>), EgressError> {
        let fail =
            |what: &str, e: std::io::Error| EgressError::Failed(format!("{what} {}:{}: {e}", url.host, url.port));
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| EgressError::Failed("deadline reached".into()))
        };
        let tcp = TcpStream::connect_timeout(&addr, left()?).map_err(|e| fail("connect to", e))?;
        tcp.set_write_timeout(Some(left()?)).map_err(|e| fail("socket", e))?;
        let sock = tcp.try_clone().map_err(|e| fail("socket", e))?;
        let mut s: Box<dyn ReadWrite> = if url.tls {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| EgressError::Failed(format!("{}: not a TLS server name: {e}", url.host)))?;
            let conn = rustls::ClientConnection::new(self.tls.clone(), name)
                .map_err(|e| EgressError::Failed(format!("TLS: {e}")))?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        } else {
            Box::new(tcp)
        };
        let head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sigil-applet\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            url.path,
            url.authority(),
            body.len()
        );
        s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| fail("write to", e))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let limit = self.max_response as usize + MAX_HEAD;
        loop {
            sock.set_read_timeout(Some(left()?)).map_err(|e| fail("socket", e))?;
            let n = match s.read(&mut chunk) {
                Ok(n) => n,
                // A TLS peer that closes without close_notify: the end of a close-delimited body, as browsers
                // treat it (Content-Length and chunked bodies are checked for completeness anyway).
                Err(e) if url.tls && e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(fail("read from", e)),
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > limit {
                return Err(EgressError::Failed(format!("response exceeds {} bytes", self.max_response)));
            }
            if complete(&buf) {
                break;
            }
        }
        parse_response(&buf, self.max_response)
    }
}

/// Resolves `host` with the system resolver, giving up at `deadline` (getaddrinfo has no timeout of its own: the
/// lookup runs on a helper thread, abandoned if it is late).
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, EgressError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("sigil-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        })
        .map_err(|e| EgressError::Failed(format!("cannot resolve {host}: {e}")))?;
    let wait = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(wait) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(EgressError::Failed(format!("cannot resolve {host}: {e}"))),
        Err(_) => Err(EgressError::Failed(format!("cannot resolve {host}: deadline reached"))),
    }
}

/// Parses a complete HTTP/1.1 response (the connection was closed after it): status, `Location`, and the body
/// (Content-Length, chunked, or up to the end), at most `max_body` bytes.
pub fn parse_response(buf: &[u8], max_body: u64) -> Result<(u16, Option<String>, Vec<u8>), EgressError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(EgressError::Failed("truncated response head".into())),
        Err(e) => return Err(EgressError::Failed(format!("malformed response: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let location = header("location");
    let rest = &buf[head_len..];
    let body = if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| EgressError::Failed("bad Content-Length".into()))?;
        rest.get(..len).ok_or_else(|| EgressError::Failed("body shorter than Content-Length".into()))?.to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() as u64 > max_body {
        return Err(EgressError::Failed(format!("response exceeds {} bytes", max_body)));
    }
    Ok((status, location, body))
}

/// Whether `buf` holds a whole response whose body length is given by Content-Length (servers that keep the
/// connection open despite `Connection: close` are not waited on). Chunked and close-delimited bodies read to EOF.
fn complete(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = resp.parse(buf) else { return false };
    let len = resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let chunked = resp.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    match len.and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok()) {
        Some(n) if !chunked => buf.len() >= head.saturating_add(n),
        _ => false,
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, EgressError> {
    let bad = || EgressError::Failed("malformed chunked body".into());
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
        rest = rest.get(size.checked_add(2).ok_or_else(bad)?..).ok_or_else(bad)?;
    }
}
