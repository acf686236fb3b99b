//! Applet egress against an HTTP server this test starts on 127.0.0.1: the allow-list, redirects on and off the
//! list, names that resolve to private addresses, and the address classifier.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::thread;

use crate::support::*;
use sigil_runtime::egress::{is_host_endpoint, is_special, AllowEntry, Url};
use sigil_runtime::manifest::HttpGrant;
use sigil_runtime::{MemState, Outcome, Runtime, RuntimeConfig};

/// Serves a few paths until the test process ends; returns its port.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            thread::spawn(move || serve(s));
        }
    });
    port
}

fn serve(mut s: std::net::TcpStream) {
    let mut line = String::new();
    let mut r = BufReader::new(s.try_clone().unwrap());
    r.read_line(&mut line).unwrap();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let resp = match path.as_str() {
        "/hello" => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string(),
        "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".into(),
        "/in" => "HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 0\r\n\r\n".into(),
        "/off" => {
            "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"
                .into()
        }
        "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".into(),
        "/big" => format!("HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n{}", "x".repeat(4096)),
        "/linger" => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept".into(),
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
    };
    let _ = s.write_all(resp.as_bytes());
    if path == "/linger" {
        // Ignores `Connection: close` and keeps the connection open.
        thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn fetch(allow: &[String], url: &str) -> sigil_runtime::Execution {
    fetch_with(shared(), allow, url)
}

fn fetch_with(rt: &Runtime, allow: &[String], url: &str) -> sigil_runtime::Execution {
    let (mut m, wasm) = applet("fetch");
    m.capabilities.http = Some(HttpGrant { allow: allow.to_vec() });
    m.limits.max_http_response_bytes = 1024;
    run(rt, &m, &wasm, "get", &format!(r#"{{"url":"{url}"}}"#), &Arc::new(MemState::new()))
}

fn out(e: &sigil_runtime::Execution) -> String {
    String::from_utf8_lossy(&e.output).into_owned()
}

#[test]
fn listed_hosts_are_reachable_and_follow_listed_redirects() {
    let port = server();
    let allow = [format!("127.0.0.1:{port}")];
    let ok = fetch(&allow, &format!("http://127.0.0.1:{port}/hello"));
    assert_eq!(ok.outcome, Outcome::Ok, "{}", out(&ok));
    assert_eq!(out(&ok), r#"{"body":"hello","status":200}"#);
    let chunked = fetch(&allow, &format!("http://127.0.0.1:{port}/chunked"));
    assert_eq!(out(&chunked), r#"{"body":"abcde","status":200}"#);
    let redirected = fetch(&allow, &format!("http://127.0.0.1:{port}/in"));
    assert_eq!(out(&redirected), r#"{"body":"hello","status":200}"#);
    // A server that ignores `Connection: close` is not waited on once Content-Length bytes have arrived (the fetch
    // manifest's deadline is 5 s: waiting for the close would end the run with an error).
    let linger = fetch(&allow, &format!("http://127.0.0.1:{port}/linger"));
    assert_eq!(out(&linger), r#"{"body":"kept","status":200}"#);
    let missing = fetch(&allow, &format!("http://127.0.0.1:{port}/nothing"));
    assert_eq!(out(&missing), r#"{"body":"","status":404}"#);
}

#[test]
fn unlisted_hosts_ports_and_redirects_off_the_list_are_denied() {
    let port = server();
    let allow = [format!("127.0.0.1:{port}")];
    let other_port = fetch(&allow, &format!("http://127.0.0.1:{}/hello", port.wrapping_add(1)));
    assert!(matches!(&other_port.outcome, Outcome::Denied(m) if m.contains("not in the applet's http allow-list")));
    let other_host = fetch(&allow, &format!("http://127.0.0.2:{port}/hello"));
    assert!(matches!(&other_host.outcome, Outcome::Denied(_)), "{:?}", other_host.outcome);
    let off = fetch(&allow, &format!("http://127.0.0.1:{port}/off"));
    assert!(
        matches!(&off.outcome, Outcome::Denied(m) if m.contains("redirect to \"http://169.254.169.254/latest/meta-data/\" refused")),
        "{:?}",
        off.outcome
    );
    assert!(off.output.is_empty());
    // A redirect loop spends the request budget (4 in the fetch manifest) and is stopped.
    let looped = fetch(&allow, &format!("http://127.0.0.1:{port}/loop"));
    assert!(matches!(&looped.outcome, Outcome::Denied(m) if m.contains("budget")), "{:?}", looped.outcome);
    // User-info tricks do not smuggle another host past the list.
    let userinfo = fetch(&allow, &format!("http://127.0.0.1:{port}@169.254.169.254/"));
    assert_eq!(userinfo.outcome.kind(), "error");
    assert!(out(&userinfo).contains("user-info"), "{}", out(&userinfo));
}

#[test]
fn names_resolving_to_private_addresses_are_denied_unless_the_address_is_listed() {
    let port = server();
    let by_name = fetch(&[format!("localhost:{port}")], &format!("http://localhost:{port}/hello"));
    assert!(
        matches!(&by_name.outcome, Outcome::Denied(m) if m.contains("resolves to") && m.contains("private or special")),
        "{:?}",
        by_name.outcome
    );
}

#[test]
fn cloud_host_endpoints_are_never_reachable_even_when_listed() {
    for host in [
        "169.254.169.254",
        "168.63.129.16",
        "100.100.100.200",
        "[fd00:ec2::254]",
        "[fd20:ce::254]",
        "[fd00:c1::a9fe:a9fe]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",
        "[::a9fe:a9fe]",
    ] {
        let ip: IpAddr = host.trim_matches(|c| c == '[' || c == ']').parse().unwrap();
        assert!(is_host_endpoint(ip) && is_special(ip), "{host}");
        // Listed by the manifest as the address itself, it is still refused, before any connection.
        let r = fetch(&[format!("{host}:80")], &format!("http://{host}/latest/meta-data/"));
        assert!(
            matches!(&r.outcome, Outcome::Denied(m) if m.contains("cloud host endpoint")),
            "{host}: {:?}",
            r.outcome
        );
    }
    for other in ["127.0.0.1", "10.0.0.1", "168.63.129.17", "1.1.1.1", "fd00::1", "64:ff9b::101:101", "2606:4700::1111"]
    {
        assert!(!is_host_endpoint(other.parse().unwrap()), "{other}");
    }
}

#[test]
fn failures_the_applet_can_handle_are_errors_not_denials() {
    let port = server();
    let allow = [format!("127.0.0.1:{port}")];
    let big = fetch(&allow, &format!("http://127.0.0.1:{port}/big"));
    assert_eq!(big.outcome.kind(), "error");
    assert!(out(&big).contains("exceeds 1024 bytes"), "{}", out(&big));
    // TLS to a server that speaks plain HTTP fails as a TLS error, not a denial.
    let tls = fetch(&allow, &format!("https://127.0.0.1:{port}/hello"));
    assert_eq!(tls.outcome.kind(), "error", "{:?}", tls.outcome);
    // Nothing listens on port 9 of 127.0.0.1 (discard), so the connection is refused.
    let refused = fetch(&["127.0.0.1:9".into()], "http://127.0.0.1:9/");
    assert_eq!(refused.outcome.kind(), "error");
    assert!(out(&refused).contains("connect to 127.0.0.1:9"), "{}", out(&refused));
}

#[test]
fn special_addresses_are_classified() {
    for special in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "168.63.129.16",
        "::ffff:168.63.129.16",
        "100.100.100.200",
        "fd00:ec2::254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::",
        "2001:db8::1",
    ] {
        assert!(is_special(special.parse::<IpAddr>().unwrap()), "{special} must be special");
    }
    for public in [
        "93.184.215.14",
        "1.1.1.1",
        "168.63.129.17",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        assert!(!is_special(public.parse::<IpAddr>().unwrap()), "{public} is public");
    }
}

#[test]
fn urls_and_allow_entries_parse_strictly() {
    let u = Url::parse("http://Example.COM:8080/a/b?q=1#frag").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("example.com", 8080, "/a/b?q=1"));
    assert_eq!(Url::parse("http://[::1]/").unwrap().host, "::1");
    for bad in ["ftp://x/", "http://", "http://a b/", "http://x:99999/", "//x/", "http://x/a b"] {
        assert!(Url::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        AllowEntry::parse("Api.Example.com").unwrap(),
        AllowEntry { host: "api.example.com".into(), port: None }
    );
    assert_eq!(AllowEntry::parse("[::1]:81").unwrap().port, Some(81));
    let tls = Url::parse("https://example.com/x").unwrap();
    assert!(tls.tls && tls.port == 443);
    for bad in ["*.example.com", "a/b", "x:y", "::1", ""] {
        assert!(AllowEntry::parse(bad).is_err(), "{bad}");
    }
}

/// A TLS server for 127.0.0.1 with a fresh self-signed certificate; returns its port and the certificate (DER).
fn tls_server() -> (u16, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = ck.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone().into()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let cfg = cfg.clone();
            thread::spawn(move || {
                let mut s = rustls::StreamOwned::new(rustls::ServerConnection::new(cfg).unwrap(), tcp);
                let mut req = Vec::new();
                let mut byte = [0u8; 1];
                while !req.ends_with(b"\r\n\r\n") {
                    match std::io::Read::read(&mut s, &mut byte) {
                        Ok(1) => req.push(byte[0]),
                        _ => return,
                    }
                }
                let path = String::from_utf8_lossy(&req).split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = match path.as_str() {
                    "/secret" => "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret".to_string(),
                    _ => format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/secret\r\nContent-Length: 0\r\n\r\n"
                    ),
                };
                let _ = s.write_all(resp.as_bytes());
                s.conn.send_close_notify();
                let _ = s.flush();
            });
        }
    });
    (port, cert)
}

#[test]
fn https_egress_verifies_the_server_and_refuses_downgrades() {
    let (port, cert) = tls_server();
    let allow = [format!("127.0.0.1:{port}")];
    let trusting = Runtime::new(RuntimeConfig { egress_roots: Some(vec![cert]), ..Default::default() }).unwrap();
    let ok = fetch_with(&trusting, &allow, &format!("https://127.0.0.1:{port}/secret"));
    assert_eq!(out(&ok), r#"{"body":"secret","status":200}"#, "{:?}", ok.outcome);
    // An https page redirecting to http (even on a listed host) is a downgrade.
    let down = fetch_with(&trusting, &allow, &format!("https://127.0.0.1:{port}/downgrade"));
    assert!(
        matches!(&down.outcome, Outcome::Denied(m) if m.contains("downgrades https to http")),
        "{:?}",
        down.outcome
    );
    // With the default roots (Mozilla's) the self-signed server is not trusted: an error for the applet.
    let untrusted = fetch(&allow, &format!("https://127.0.0.1:{port}/secret"));
    assert_eq!(untrusted.outcome.kind(), "error");
    assert!(out(&untrusted).contains("certificate"), "{}", out(&untrusted));
}
