//! Evidence collection on Azure, against a real TPM 2.0 (swtpm, libtpms) and a loopback stand-in for Azure's
//! instance metadata service. swtpm plays the vTPM: `tpm2-tools` (an independent TPM stack) writes an HCL report
//! into NV index 0x01400001 as the paravisor would, and reads back the user data Sigil wrote to 0x01400002.
//!
//! What cannot run here is the paravisor itself, which re-signs the HCL report after each user-data write. So the
//! HCL reports below carry the real hardware reports of the Azure vectors (an SNP report, a TDREPORT) with new
//! runtime claims holding this test's user data: everything the collector does is exercised, the verifier accepts
//! the certificate chain and the quote, and it refuses REPORT_DATA, which binds the vectors' original claims.
//! (The vectors' own HCL reports, 2436 bytes, do not fit libtpms's 2048-byte NV index limit.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sigil_attest::collect::{collect_azure, detect_azure, AzureSource};
use sigil_attest::tpm::TpmDevice;
use sigil_attest::{CheckStatus, Endorsements, Platform, Policy, Verifier};

use crate::swtpm::{serial, tempdir, Swtpm};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

impl Swtpm {
    /// Defines NV `index` as the paravisor does and writes `data` into it.
    fn provision(&self, index: &str, data: &[u8], dir: &Path) {
        let f = dir.join(format!("nv-{index}.bin"));
        std::fs::write(&f, data).unwrap();
        let size = data.len().to_string();
        self.tool(&["tpm2_nvdefine", "-C", "o", "-s", &size, "-a", "ownerread|ownerwrite|authread|authwrite", index]);
        self.tool(&["tpm2_nvwrite", "-C", "o", "-i", f.to_str().unwrap(), index]);
    }
}

/// An HCL report: the vector's header and hardware report, new runtime claims with `user_data`.
fn hcl_with_claims(vector: &[u8], report_type: u32, user_data: &[u8; 64]) -> Vec<u8> {
    let ak = serde_json::json!({"kid": "HCLAkPub", "kty": "RSA", "e": "AQAB", "n": "test"});
    hcl_with_claims_and_ak(vector, report_type, user_data, ak)
}

/// [`hcl_with_claims`] with `ak` as the `HCLAkPub` key.
fn hcl_with_claims_and_ak(vector: &[u8], report_type: u32, user_data: &[u8; 64], ak: serde_json::Value) -> Vec<u8> {
    let claims = serde_json::json!({
        "keys": [ak],
        "vm-configuration": {"console-enabled": false, "secure-boot": true, "tpm-enabled": true},
        "user-data": hex::encode_upper(user_data),
    })
    .to_string();
    let mut b = vector[..0x4C0].to_vec();
    let total = (0x4D4 + claims.len()) as u32;
    b[8..12].copy_from_slice(&total.to_le_bytes());
    for v in [claims.len() as u32 + 20, 1, report_type, 1, claims.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(claims.as_bytes());
    b
}

/// Each request's head and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback HTTP server answering like Azure IMDS, recording each request.
struct Imds {
    url: String,
    seen: Requests,
}

impl Imds {
    fn start(routes: Vec<(&'static str, Vec<u8>, bool)>) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Requests = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                log.lock().unwrap().push((head.clone(), body));
                let resp = match routes.iter().find(|(p, _, _)| *p == path) {
                    Some((_, payload, false)) => {
                        let mut v = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            payload.len()
                        )
                        .into_bytes();
                        v.extend_from_slice(payload);
                        v
                    }
                    Some((_, payload, true)) => {
                        let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                        for c in payload.chunks(700) {
                            v.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                            v.extend_from_slice(c);
                            v.extend_from_slice(b"\r\n");
                        }
                        v.extend_from_slice(b"0\r\n\r\n");
                        v
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec(),
                };
                let _ = conn.write_all(&resp);
            }
        });
        Imds { url, seen }
    }
}

fn scratch(name: &str) -> tempdir::Dir {
    let d = std::env::temp_dir().join(format!("sigil-azure-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    tempdir::Dir(d)
}

fn failed(r: &sigil_attest::AttestationResult) -> Vec<&str> {
    r.checks.iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name.as_str()).collect()
}

fn passed(r: &sigil_attest::AttestationResult, name: &str) -> bool {
    r.checks.iter().any(|c| c.name == name && c.status == CheckStatus::Pass)
}

const JUNE_2025: u64 = 1_748_736_000;

/// Where the collector finds `tpm` and IMDS; the event log path is none, whatever this machine has.
fn source(tpm: &Swtpm, imds: &str, refresh: Duration) -> AzureSource {
    AzureSource {
        tpm: tpm.device(),
        imds: imds.into(),
        refresh,
        event_log: "/nonexistent/binary_bios_measurements".into(),
    }
}

/// IMDS answering THIM with the Azure SNP vector's VCEK and `chain` (chunked, or with a length).
fn thim(chain: &str, chunked: bool) -> Imds {
    let vcek = String::from_utf8(file("sev-snp-azure/azure-genoa-v3.vcek.pem")).unwrap();
    let thim = serde_json::json!({"vcekCert": vcek, "certificateChain": chain, "tcbm": "DB18000000000004"});
    Imds::start(vec![("/metadata/THIM/amd/certification", thim.to_string().into_bytes(), chunked)])
}

#[test]
fn snp_on_azure_writes_user_data_reads_the_hcl_report_and_fetches_the_vcek() {
    let _serial = serial();
    let tmp = scratch("snp");
    let tpm = Swtpm::start();
    let rd: [u8; 64] = std::array::from_fn(|i| i as u8 ^ 0xA5);
    let hcl = hcl_with_claims(&file("sev-snp-azure/azure-genoa-v3.hcl.bin"), 2, &rd);
    tpm.provision("0x01400001", &hcl, &tmp.0);

    let chain = String::from_utf8(file("amd-certs/genoa.ask.pem")).unwrap();
    let imds = thim(&chain, true);
    let src = source(&tpm, &imds.url, Duration::from_secs(1));

    assert_eq!(detect_azure(&src), Some(Platform::SevSnp));
    let b = collect_azure(&src, &rd).expect("collects");

    // The user data landed in its index, as another TPM stack reads it.
    let out = tmp.0.join("user.bin");
    tpm.tool(&["tpm2_nvread", "-C", "o", "-s", "64", "-o", out.to_str().unwrap(), "0x01400002"]);
    assert_eq!(std::fs::read(&out).unwrap(), rd);
    let public = String::from_utf8(tpm.tool(&["tpm2_nvreadpublic", "0x01400002"])).unwrap();
    assert!(public.contains("ownerwrite") && public.contains("size: 64"), "{public}");

    assert_eq!(b.platform, Platform::SevSnp);
    assert_eq!(b.evidence.as_slice(), &hcl[..], "the HCL report is the evidence, as read");
    assert_eq!(b.certs.len(), 2, "the VCEK and the ASK from IMDS");
    let seen = imds.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0.starts_with("GET /metadata/THIM/amd/certification HTTP/1.1\r\n"), "{}", seen[0].0);
    assert!(seen[0].0.contains("Metadata: true\r\n"));

    // The verifier accepts the chain and signature from what was collected, and catches the claims that
    // REPORT_DATA does not bind (the paravisor would have re-signed them).
    let v = Verifier::new(Policy::default());
    let e = Endorsements { expected_report_data: Some(rd.to_vec()), ..Endorsements::default() };
    let r = v.verify(&b.encode().unwrap(), &e, JUNE_2025).unwrap();
    assert!(passed(&r, "snp.report_signature") && passed(&r, "snp.cert_chain"), "{:?}", r.checks);
    assert!(passed(&r, "azure.user_data"));
    assert_eq!(failed(&r), ["snp.report_data"]);

    // A second collection finds the index defined and rewrites it.
    drop(seen);
    let again = collect_azure(&src, &rd).expect("collects again");
    assert_eq!(again.evidence, b.evidence);
}

#[test]
fn on_azure_the_vtpm_also_quotes_its_pcrs_with_the_ak_the_claims_name() {
    use base64::Engine as _;
    let _serial = serial();
    let tmp = scratch("snp-ak");
    let tpm = Swtpm::start();
    tpm.provision_ak(&tmp.0, "0x81000003");
    let ak = sigil_attest::tpm::Tpm::open(&tpm.device()).unwrap().read_public(sigil_attest::collect::AZURE_AK).unwrap();
    let sigil_attest::vtpm::quote::AkPublic::Rsa { n, e } = ak.key else { panic!("an RSA AK") };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = serde_json::json!({"kid": "HCLAkPub", "kty": "RSA", "e": b64.encode(e), "n": b64.encode(n)});
    let rd: [u8; 64] = std::array::from_fn(|i| i as u8);
    let hcl = hcl_with_claims_and_ak(&file("sev-snp-azure/azure-genoa-v3.hcl.bin"), 2, &rd, jwk);
    tpm.provision("0x01400001", &hcl, &tmp.0);
    let imds = thim("", false);
    let src = source(&tpm, &imds.url, Duration::from_secs(1));

    let b = collect_azure(&src, &rd).expect("collects");
    let v = b.vtpm.as_ref().expect("the AK is there: the bundle carries a quote");
    assert!(v.ak_public.is_none(), "on Azure the claims carry the key");
    assert_eq!(v.pcrs["sha256"].len(), 24);

    let e = Endorsements { expected_report_data: Some(rd.to_vec()), ..Endorsements::default() };
    let r = Verifier::new(Policy::default()).verify(&b.encode().unwrap(), &e, JUNE_2025).unwrap();
    for check in ["vtpm.ak", "vtpm.signature", "vtpm.nonce", "vtpm.pcr_digest", "azure.user_data"] {
        assert!(passed(&r, check), "{check}: {:?}", r.checks);
    }
    assert_eq!(failed(&r), ["snp.report_data"], "only what the paravisor would have re-signed");
    assert_eq!(r.claims["vtpm"]["ak_trust"], "hardware-bound");
}

#[test]
fn tdx_on_azure_turns_the_tdreport_into_a_quote_through_imds() {
    let _serial = serial();
    let tmp = scratch("tdx");
    let tpm = Swtpm::start();
    let rd = [0x3Cu8; 64];
    let hcl = hcl_with_claims(&file("tdx/azure-00806f05-v4.hcl.bin"), 4, &rd);
    tpm.provision("0x01400001", &hcl, &tmp.0);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let quote = file("tdx/azure-00806f05-v4.quote.bin");
    let answer = serde_json::json!({ "quote": b64.encode(&quote) }).to_string().into_bytes();
    let imds = Imds::start(vec![("/acc/tdquote", answer, false)]);
    let src = source(&tpm, &imds.url, Duration::from_secs(1));

    assert_eq!(detect_azure(&src), Some(Platform::Tdx));
    let b = collect_azure(&src, &rd).expect("collects");
    assert_eq!(b.platform, Platform::Tdx);
    assert_eq!(b.evidence.as_slice(), &quote[..]);
    assert_eq!(b.azure_hcl.as_deref().map(|h| h.as_slice()), Some(&hcl[..]));
    let seen = imds.seen.lock().unwrap();
    assert!(seen[0].0.starts_with("POST /acc/tdquote HTTP/1.1\r\n"));
    let req: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(b64.decode(req["report"].as_str().unwrap()).unwrap(), hcl[0x20..0x20 + 1024], "the TDREPORT");

    let v =
        Verifier::new(Policy::from_toml("[tdx]\nrequire_collateral = false\nrequire_sept_ve_disable = false").unwrap());
    let e = Endorsements { expected_report_data: Some(rd.to_vec()), ..Endorsements::default() };
    let r = v.verify(&b.encode().unwrap(), &e, JUNE_2025).unwrap();
    assert!(passed(&r, "azure.user_data"));
    assert_eq!(failed(&r), ["tdx.report_data"]);
}

#[test]
fn a_report_that_never_carries_the_user_data_is_refused() {
    let _serial = serial();
    let tmp = scratch("stale");
    let tpm = Swtpm::start();
    let hcl = hcl_with_claims(&file("sev-snp-azure/azure-genoa-v3.hcl.bin"), 2, &[0; 64]);
    tpm.provision("0x01400001", &hcl, &tmp.0);
    let imds = Imds::start(vec![]);
    let src = source(&tpm, &imds.url, Duration::from_millis(600));
    let err = collect_azure(&src, &[7; 64]).unwrap_err().to_string();
    assert!(err.contains("does not carry the user data"), "{err}");
    assert!(imds.seen.lock().unwrap().is_empty(), "nothing is fetched for a stale report");

    // With the right user data but no IMDS route: the metadata service's refusal is reported.
    let err = collect_azure(&src, &[0; 64]).unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
}

#[test]
fn a_tpm_without_an_hcl_report_is_not_azure() {
    let _serial = serial();
    let tpm = Swtpm::start();
    let src = source(&tpm, "http://127.0.0.1:9", Duration::from_millis(100));
    assert_eq!(detect_azure(&src), None);
    let err = collect_azure(&src, &[0; 64]).unwrap_err().to_string();
    assert!(err.contains("no HCL report"), "{err}");
    // And nothing was defined on a TPM that is not Azure's.
    let public = String::from_utf8(tpm.tool(&["tpm2_getcap", "handles-nv-index"])).unwrap();
    assert!(!public.contains("0x1400002"), "{public}");
    let missing = AzureSource { tpm: TpmDevice::Path(PathBuf::from("/nonexistent/tpm")), ..src };
    assert_eq!(detect_azure(&missing), None);
}
