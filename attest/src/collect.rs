//! Evidence collection from the local TEE.
//!
//! Hardware evidence comes through the Linux kernel's configfs-tsm interface (`/sys/kernel/config/tsm/report`,
//! Linux 6.7+), which serves both SEV-SNP (`sev_guest`) and TDX (`tdx_guest`): Sigil writes REPORT_DATA to
//! `inblob`, reads the report or quote from `outblob` and, on SNP, the certificate table from `auxblob`. The
//! result is a [`Bundle`] an offline verifier can check with nothing else.
//!
//! The simulated TEE ([`collect_sim`]) needs no hardware and is insecure by design (see [`crate::sim`]).
//!
//! On SEV-SNP guests whose kernel predates configfs-tsm, [`collect`] falls back to `/dev/sev-guest`
//! (`SNP_GET_EXT_REPORT` through the virtee `sev` crate; feature `sev-guest`), which also returns the host's
//! certificate table. Not implemented: `/dev/tdx_guest` (TDX needs configfs-tsm).
//!
//! On Azure confidential VMs the paravisor (HCL) owns the TEE and the guest sees neither: [`collect_azure`] writes
//! REPORT_DATA to the vTPM as user data, reads back the HCL report that binds it, and completes it from Azure's
//! instance metadata service (the VCEK on SNP; the TD quote on TDX). Where the vTPM holds Azure's attestation key
//! (persistent handle [`AZURE_AK`]), the bundle also carries a quote of PCRs 0-23 over the same REPORT_DATA.
//!
//! Any TPM ([`collect_vtpm`]): a quote of the SHA-256 PCRs 0-23 by an attestation key already in the TPM, with the
//! PCR values and the firmware's event log. Without a TEE report this is a `tpm` bundle, which policies refuse
//! unless they allow it: such a TPM is the host's.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::azure::{HclKind, HclReport};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::reader::le_u32;
use crate::result::Platform;
use crate::sim::{SimClaims, SimEvidence};
use crate::tpm::{attr, Tpm, TpmDevice};

/// Where configfs-tsm lives.
pub const TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";

/// Where Linux exposes the TDX firmware's CC event log (ACPI table `CCEL`).
pub const CCEL: &str = "/sys/firmware/acpi/tables/data/CCEL";

/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// How this machine's evidence is collected.
enum Route {
    /// configfs-tsm, for this platform.
    Tsm(Platform),
    /// The `/dev/sev-guest` ioctl.
    SevGuest,
    /// An Azure paravisor's vTPM, wrapping this platform.
    Azure(Platform),
}

/// The one decision [`detect`] reports and [`collect`] follows.
fn route() -> Option<Route> {
    let tsm = Path::new(TSM_REPORT_DIR).is_dir();
    let sev_guest = Path::new(SEV_GUEST_DEVICE).exists();
    if tsm && Path::new("/dev/tdx_guest").exists() {
        Some(Route::Tsm(Platform::Tdx))
    } else if tsm && sev_guest {
        Some(Route::Tsm(Platform::SevSnp))
    } else if sev_guest && cfg!(feature = "sev-guest") {
        Some(Route::SevGuest)
    } else {
        detect_azure(&AzureSource::default()).map(Route::Azure)
    }
}

/// Which TEE [`collect`] can reach on this machine, if any.
pub fn detect() -> Option<Platform> {
    match route()? {
        Route::Tsm(p) | Route::Azure(p) => Some(p),
        Route::SevGuest => Some(Platform::SevSnp),
    }
}

/// Collects hardware evidence binding `report_data`: through configfs-tsm where the kernel has it, else (SNP)
/// through `/dev/sev-guest`, else (Azure) through the paravisor's vTPM.
pub fn collect(report_data: &[u8; 64]) -> Result<Bundle> {
    match route() {
        Some(Route::SevGuest) => collect_sev_guest(report_data),
        Some(Route::Azure(_)) => collect_azure(&AzureSource::default(), report_data),
        // /dev/sev-guest in a build without the ioctl: say so.
        None if Path::new(SEV_GUEST_DEVICE).exists() => collect_sev_guest(report_data),
        // configfs-tsm, or (nothing found) the error that says what is missing.
        Some(Route::Tsm(_)) | None => collect_at(Path::new(TSM_REPORT_DIR), report_data),
    }
}

/// SEV-SNP evidence through the `/dev/sev-guest` ioctl: the raw report as the firmware signed it, and every
/// certificate in the host's certificate table.
#[cfg(all(feature = "sev-guest", target_os = "linux"))]
pub fn collect_sev_guest(report_data: &[u8; 64]) -> Result<Bundle> {
    use sev::firmware::guest::Firmware;
    let mut fw = Firmware::open().map_err(|e| Error::Collect(format!("opening {SEV_GUEST_DEVICE}: {e}")))?;
    // VMPL None: the firmware reports at the VMPL the guest runs at.
    let (report, table) = fw
        .get_ext_report(None, Some(*report_data), None)
        .map_err(|e| Error::Collect(format!("SNP_GET_EXT_REPORT: {e}")))?;
    let certs = table
        .unwrap_or_default()
        .into_iter()
        .map(|entry| entry.data().to_vec())
        .filter(|der| crate::x509::Cert::from_der(der, "cert table entry").is_ok())
        .collect();
    Ok(Bundle::new(Platform::SevSnp, report, certs))
}

/// Without the `sev-guest` feature there is no ioctl path.
#[cfg(not(all(feature = "sev-guest", target_os = "linux")))]
pub fn collect_sev_guest(_report_data: &[u8; 64]) -> Result<Bundle> {
    Err(Error::Collect(format!(
        "{TSM_REPORT_DIR} is missing and this build has no {SEV_GUEST_DEVICE} support (attest feature `sev-guest`)"
    )))
}

/// Removes the report directory when dropped.
struct TsmEntry(PathBuf);

impl Drop for TsmEntry {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// [`collect`] against a configfs-tsm tree at `root` (tests point this at a directory they prepare).
pub fn collect_at(root: &Path, report_data: &[u8; 64]) -> Result<Bundle> {
    if !root.is_dir() {
        return Err(Error::Collect(format!(
            "{} not found: this machine exposes no TEE through configfs-tsm (Linux 6.7+ inside an SEV-SNP or TDX guest), /dev/sev-guest or an Azure paravisor's vTPM; use --sim for insecure simulated evidence",
            root.display()
        )));
    }
    let io = |what: &str, e: std::io::Error| Error::Collect(format!("{what}: {e}"));
    let dir = root.join(format!("sigil-{}-{}", std::process::id(), nonce_suffix(report_data)));
    fs::create_dir(&dir).map_err(|e| io(&format!("creating {}", dir.display()), e))?;
    let entry = TsmEntry(dir);
    let gen_before = fs::read_to_string(entry.0.join("generation")).ok();
    fs::write(entry.0.join("inblob"), report_data).map_err(|e| io("writing inblob", e))?;
    let out = fs::read(entry.0.join("outblob")).map_err(|e| io("reading outblob", e))?;
    let provider = fs::read_to_string(entry.0.join("provider")).map_err(|e| io("reading provider", e))?;
    let aux = fs::read(entry.0.join("auxblob")).unwrap_or_default();
    let gen_after = fs::read_to_string(entry.0.join("generation")).ok();
    if let (Some(a), Some(b)) = (&gen_before, &gen_after) {
        // Each inblob write bumps the generation once; more means another writer raced us.
        let (a, b) = (a.trim().parse::<u64>().unwrap_or(0), b.trim().parse::<u64>().unwrap_or(0));
        if b != a + 1 {
            return Err(Error::Collect("configfs-tsm entry was written concurrently; retry".into()));
        }
    }
    drop(entry);
    match provider.trim() {
        "sev_guest" => {
            let certs = parse_cert_table(&aux)?;
            Ok(Bundle::new(Platform::SevSnp, out, certs))
        }
        "tdx_guest" => {
            let mut b = Bundle::new(Platform::Tdx, out, Vec::new());
            // The firmware's CC event log, for the verifier to replay against the quote's RTMRs.
            b.ccel = fs::read(CCEL).ok().filter(|c| !c.is_empty()).map(serde_bytes::ByteBuf::from);
            Ok(b)
        }
        p => Err(Error::Collect(format!("unknown configfs-tsm provider {p:?}"))),
    }
}

fn nonce_suffix(rd: &[u8; 64]) -> String {
    hex::encode(&crate::sha256(rd)[..4])
}

/// Parses the SEV-SNP certificate table (GHCB spec: entries of GUID ‖ offset ‖ length, ended by a zero entry)
/// and returns the DER blobs that are certificates (the verifier classifies them by subject).
pub fn parse_cert_table(table: &[u8]) -> Result<Vec<Vec<u8>>> {
    const ENTRY: usize = 24;
    const MAX_ENTRIES: usize = 64;
    let mut certs = Vec::new();
    for i in 0..MAX_ENTRIES {
        let at = i * ENTRY;
        let Some(e) = table.get(at..at + ENTRY) else {
            if table.is_empty() {
                return Ok(certs);
            }
            return Err(Error::Collect("certificate table is not terminated".into()));
        };
        if e.iter().all(|&b| b == 0) {
            return Ok(certs);
        }
        let (off, len) = (le_u32(e, 16).expect("in the entry") as usize, le_u32(e, 20).expect("in the entry") as usize);
        let blob = off
            .checked_add(len)
            .and_then(|end| table.get(off..end))
            .ok_or_else(|| Error::Collect(format!("certificate table entry {i} points outside the table")))?;
        if crate::x509::Cert::from_der(blob, "cert table entry").is_ok() {
            certs.push(blob.to_vec());
        }
    }
    Err(Error::Collect(format!("certificate table has more than {MAX_ENTRIES} entries")))
}

/// Produces **insecure** simulated evidence, wrapped in a bundle.
pub fn collect_sim(measurement: [u8; 48], report_data: [u8; 64], host_data: [u8; 32]) -> Result<Bundle> {
    collect_sim_until(measurement, report_data, host_data, None)
}

/// [`collect_sim`] with evidence that lapses after `not_after` (Unix seconds), as real evidence does when its
/// certificates or collateral expire: for tests of how a pod treats evidence over time.
pub fn collect_sim_until(
    measurement: [u8; 48],
    report_data: [u8; 64],
    host_data: [u8; 32],
    not_after: Option<u64>,
) -> Result<Bundle> {
    let claims = SimClaims {
        measurement: measurement.to_vec(),
        report_data: report_data.to_vec(),
        host_data: host_data.to_vec(),
        debug: false,
        svn: 1,
        not_after,
    };
    Ok(Bundle::new(Platform::Sim, SimEvidence::generate(&claims)?, Vec::new()))
}

/// The NV index where Azure's paravisor keeps the HCL report.
pub const AZURE_HCL_INDEX: u32 = 0x0140_0001;
/// The NV index the guest writes its 64 bytes of user data to; the paravisor puts them in the next report.
pub const AZURE_USER_DATA_INDEX: u32 = 0x0140_0002;
/// Azure's instance metadata service.
pub const AZURE_IMDS: &str = "http://169.254.169.254";
/// How long the paravisor gets to put new user data into the HCL report.
const AZURE_REFRESH: Duration = Duration::from_secs(10);

/// Where an Azure confidential VM's evidence comes from: its vTPM and the instance metadata service.
#[derive(Clone, Debug)]
pub struct AzureSource {
    /// The vTPM.
    pub tpm: TpmDevice,
    /// The IMDS base URL (plain `http://HOST[:PORT]`).
    pub imds: String,
    /// How long the paravisor gets to put new user data into the HCL report.
    pub refresh: Duration,
    /// The firmware's event log, added to the vTPM quote if it is there ([`EVENT_LOG`]).
    pub event_log: PathBuf,
}

impl Default for AzureSource {
    fn default() -> AzureSource {
        AzureSource {
            tpm: TpmDevice::default(),
            imds: AZURE_IMDS.into(),
            refresh: AZURE_REFRESH,
            event_log: EVENT_LOG.into(),
        }
    }
}

impl AzureSource {
    /// The default source, with the TPM (`tcp:HOST:PORT` or a device) and the IMDS URL given where they are.
    pub fn at(tpm: Option<&str>, imds: Option<&str>) -> AzureSource {
        let d = AzureSource::default();
        AzureSource {
            tpm: tpm.map_or(d.tpm, TpmDevice::parse),
            imds: imds.map_or(d.imds, str::to_string),
            refresh: d.refresh,
            event_log: d.event_log,
        }
    }
}

/// Whether this is an Azure confidential VM with a paravisor, and which TEE its HCL report wraps: the vTPM
/// exists and holds an HCL report.
pub fn detect_azure(src: &AzureSource) -> Option<Platform> {
    if let TpmDevice::Path(p) = &src.tpm {
        if !p.exists() {
            return None;
        }
    }
    let mut tpm = Tpm::open(&src.tpm).ok()?;
    let public = tpm.nv_read_public(AZURE_HCL_INDEX).ok()??;
    let bytes = tpm.nv_read(Tpm::read_auth(AZURE_HCL_INDEX, public)?, AZURE_HCL_INDEX, public.size.into()).ok()?;
    match HclReport::parse(&bytes).ok()?.kind {
        HclKind::Snp => Some(Platform::SevSnp),
        HclKind::Tdx => Some(Platform::Tdx),
    }
}

/// Collects evidence on an Azure confidential VM, where the paravisor owns the TEE and the guest has neither
/// configfs-tsm nor `/dev/sev-guest`:
///
/// 1. writes `report_data` to the vTPM's user-data index ([`AZURE_USER_DATA_INDEX`], defined if missing), which
///    the paravisor puts into the HCL report's runtime claims (`user-data`), whose hash is the hardware report's
///    REPORT_DATA;
/// 2. reads the HCL report ([`AZURE_HCL_INDEX`]) until it carries that user data;
/// 3. SEV-SNP: fetches the VCEK and its chain from IMDS (`/metadata/THIM/amd/certification`); the HCL report is
///    the evidence. TDX: has IMDS turn the TDREPORT into a TD quote (`/acc/tdquote`); the quote is the evidence
///    and the HCL report rides along as `azure_hcl`.
pub fn collect_azure(src: &AzureSource, report_data: &[u8; 64]) -> Result<Bundle> {
    let mut tpm = Tpm::open(&src.tpm)?;
    let hcl_public = tpm.nv_read_public(AZURE_HCL_INDEX)?.ok_or_else(|| {
        Error::Collect(format!(
            "the TPM {} has no HCL report (NV index {AZURE_HCL_INDEX:#010x}): this is not an Azure confidential VM with a paravisor",
            src.tpm
        ))
    })?;
    let hcl_auth = Tpm::read_auth(AZURE_HCL_INDEX, hcl_public).ok_or_else(|| {
        Error::Collect(format!("NV index {AZURE_HCL_INDEX:#010x} allows neither owner nor index reads"))
    })?;
    let user = match tpm.nv_read_public(AZURE_USER_DATA_INDEX)? {
        Some(p) => p,
        None => {
            let a = attr::OWNERWRITE | attr::OWNERREAD | attr::AUTHWRITE | attr::AUTHREAD | attr::NO_DA;
            // Another collector may define it first: that is as good.
            tpm.nv_define(AZURE_USER_DATA_INDEX, 64, a)?;
            tpm.nv_read_public(AZURE_USER_DATA_INDEX)?.ok_or_else(|| {
                Error::Collect(format!("NV index {AZURE_USER_DATA_INDEX:#010x} vanished after definition"))
            })?
        }
    };
    if user.size != 64 {
        return Err(Error::Collect(format!(
            "NV index {AZURE_USER_DATA_INDEX:#010x} holds {} bytes; Azure's user data is 64",
            user.size
        )));
    }
    let user_auth = Tpm::write_auth(AZURE_USER_DATA_INDEX, user)
        .ok_or_else(|| Error::Collect(format!("NV index {AZURE_USER_DATA_INDEX:#010x} is not writable")))?;
    tpm.nv_write(user_auth, AZURE_USER_DATA_INDEX, report_data)?;

    let deadline = std::time::Instant::now() + src.refresh;
    let (raw, hcl) = loop {
        let raw = tpm.nv_read(hcl_auth, AZURE_HCL_INDEX, hcl_public.size.into())?;
        let hcl = HclReport::parse(&raw).map_err(|e| Error::Collect(format!("the vTPM's HCL report: {e}")))?;
        let claims: serde_json::Value = serde_json::from_slice(&hcl.runtime_claims).unwrap_or_default();
        if crate::azure::user_data(&claims).as_deref() == Some(&report_data[..]) {
            break (raw, hcl);
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Collect(format!(
                "the HCL report in {} does not carry the user data written to {AZURE_USER_DATA_INDEX:#010x} after {} s (is the paravisor serving this vTPM?)",
                src.tpm,
                src.refresh.as_secs_f32()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    // Keep the report itself, not the index's zero padding past the claims.
    let raw = raw[..hcl.encoded_len()].to_vec();
    let vtpm = match tpm.public_area(AZURE_AK)? {
        Some(_) => Some(quote_vtpm(&mut tpm, AZURE_AK, report_data, Some(&src.event_log), false)?),
        None => None,
    };
    let mut bundle = azure_bundle(src, hcl, raw)?;
    bundle.vtpm = vtpm;
    Ok(bundle)
}

/// The HCL report completed from IMDS: with the VCEK (SNP), or as the TD quote's `azure_hcl` (TDX).
fn azure_bundle(src: &AzureSource, hcl: HclReport, raw: Vec<u8>) -> Result<Bundle> {
    match hcl.kind {
        HclKind::Snp => {
            let body = http(&src.imds, "GET", "/metadata/THIM/amd/certification", None)?;
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Thim {
                vcek_cert: String,
                #[serde(default)]
                certificate_chain: String,
            }
            let t: Thim = serde_json::from_slice(&body)
                .map_err(|e| Error::Collect(format!("IMDS THIM certification response: {e}")))?;
            let mut certs = Vec::new();
            for (pem, what) in [(&t.vcek_cert, "IMDS vcekCert"), (&t.certificate_chain, "IMDS certificateChain")] {
                if !pem.trim().is_empty() {
                    certs.extend(crate::x509::parse_cert_file(pem.as_bytes(), what)?.iter().map(|c| c.der().to_vec()));
                }
            }
            Ok(Bundle::new(Platform::SevSnp, raw, certs))
        }
        HclKind::Tdx => {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let req = serde_json::json!({ "report": b64.encode(&hcl.hw_report[..1024]) }).to_string();
            let body = http(&src.imds, "POST", "/acc/tdquote", Some(req.as_bytes()))?;
            #[derive(serde::Deserialize)]
            struct TdQuote {
                quote: String,
            }
            let q: TdQuote = serde_json::from_slice(&body)
                .map_err(|e| Error::Collect(format!("IMDS /acc/tdquote response: {e}")))?;
            let quote = b64
                .decode(q.quote.trim_end_matches('='))
                .map_err(|e| Error::Collect(format!("IMDS /acc/tdquote: quote is not base64url: {e}")))?;
            let mut b = Bundle::new(Platform::Tdx, quote, Vec::new());
            b.azure_hcl = Some(serde_bytes::ByteBuf::from(raw));
            Ok(b)
        }
    }
}

/// The persistent handle of the attestation key Azure provisions in its vTPM (its public key is `HCLAkPub`).
pub const AZURE_AK: u32 = 0x8100_0003;

/// Where Linux exposes the firmware's TCG event log.
pub const EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// The persistent handle Sigil's image provisioning gives the attestation key (`infra/image/boot.sh`), the default
/// of `sigil attest collect --vtpm --ak` and `[tee] ak`.
pub const VTPM_AK: &str = "0x81010002";

/// A persistent TPM handle written in hex (`0x81010002`): 1 to 8 hex digits, no sign, in the persistent range
/// `0x81000000..=0x81FFFFFF` (an attestation key lives there; a transient or hierarchy handle is a mistake).
pub fn parse_handle(s: &str) -> core::result::Result<u32, String> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let bad = || format!("{s:?} is not a persistent handle in hex, such as 0x81010002");
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let h = u32::from_str_radix(digits, 16).map_err(|_| bad())?;
    if h >> 24 != 0x81 {
        return Err(bad());
    }
    Ok(h)
}

/// The SHA-256 PCRs 0-23, quoted by the attestation key at `ak` over the SHA-256 of `nonce` (a TPM takes as much
/// qualifying data as its largest digest: 64 bytes of REPORT_DATA do not fit one without SHA-512; the verifier
/// accepts the nonce or its SHA-256), with the event log at `event_log` if there is one there. The PCRs are read before and after the quote, and the pair is taken again (up to three
/// times) if something was extended in between. `with_public` puts the key's public area in the evidence (not on
/// Azure, where the hardware report carries it).
pub fn quote_vtpm(
    tpm: &mut Tpm,
    ak: u32,
    nonce: &[u8],
    event_log: Option<&Path>,
    with_public: bool,
) -> Result<crate::vtpm::VtpmEvidence> {
    use crate::vtpm::HashAlg;
    use serde_bytes::ByteBuf;
    let public = if with_public { Some(ByteBuf::from(tpm.read_public(ak)?.raw)) } else { None };
    let all: Vec<u32> = (0..crate::vtpm::PCR_COUNT).collect();
    for _ in 0..3 {
        let before = tpm.pcr_read(HashAlg::Sha256, &all)?;
        let (attest, sig) = tpm.quote(ak, &crate::sha256(nonce), HashAlg::Sha256, &all)?;
        if tpm.pcr_read(HashAlg::Sha256, &all)? != before {
            continue;
        }
        let event_log = match event_log {
            Some(p) if p.exists() => Some(ByteBuf::from(
                fs::read(p).map_err(|e| Error::Collect(format!("reading the event log {}: {e}", p.display())))?,
            )),
            _ => None,
        };
        return Ok(crate::vtpm::VtpmEvidence {
            quote: ByteBuf::from(attest),
            signature: ByteBuf::from(sig),
            pcrs: [("sha256".to_string(), before.into_iter().map(|(i, v)| (i, ByteBuf::from(v))).collect())].into(),
            ak_public: public,
            event_log,
        });
    }
    Err(Error::Collect("the PCRs kept changing while they were quoted".into()))
}

/// A `tpm` bundle: the TPM at `dev` quotes its PCRs with the key at `ak` over `nonce`, with the event log.
pub fn collect_vtpm(dev: &TpmDevice, ak: u32, nonce: &[u8; 64], event_log: Option<&Path>) -> Result<Bundle> {
    let mut tpm = Tpm::open(dev)?;
    let mut b = Bundle::new(Platform::Tpm, Vec::new(), Vec::new());
    b.vtpm = Some(quote_vtpm(&mut tpm, ak, nonce, event_log, true)?);
    Ok(b)
}

/// Largest IMDS response read.
const MAX_HTTP_BODY: usize = 1 << 20;

/// One plain-HTTP/1.1 request to the link-local metadata service (`Metadata: true`), returning the body of a
/// 200 response. Everything it returns is checked later by the verifier; this only moves bytes.
fn http(base: &str, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>> {
    let url = format!("{base}{path}");
    let err = |m: String| Error::Collect(format!("{method} {url}: {m}"));
    let host = base
        .strip_prefix("http://")
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| err("the metadata service URL must be http://HOST[:PORT]".into()))?;
    let addr = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(|e| err(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nMetadata: true\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| err(e.to_string()))?;
    let mut resp = Vec::new();
    s.take((MAX_HTTP_BODY + 16 * 1024) as u64).read_to_end(&mut resp).map_err(|e| err(e.to_string()))?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| err("no HTTP response header".into()))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let mut payload = resp[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        let text = String::from_utf8_lossy(&payload[..payload.len().min(200)]).to_string();
        return Err(err(format!("{status}: {text}")));
    }
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        payload = dechunk(&payload).ok_or_else(|| err("malformed chunked body".into()))?;
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if payload.len() < n {
            return Err(err(format!("body of {} bytes is shorter than its Content-Length {n}", payload.len())));
        }
        payload.truncate(n);
    }
    if payload.len() > MAX_HTTP_BODY {
        return Err(err(format!("response over {MAX_HTTP_BODY} bytes")));
    }
    Ok(payload)
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_field = std::str::from_utf8(&b[..eol]).ok()?;
        let n = usize::from_str_radix(size_field.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..n)?);
        b = b.get(n..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_are_persistent_hex_without_sign() {
        use super::parse_handle;
        assert_eq!(parse_handle("0x81010002"), Ok(0x8101_0002));
        assert_eq!(parse_handle("81000003"), Ok(0x8100_0003));
        for bad in ["", "0x", "0x+81010002", "-1", "0x80000000", "0x40000001", "0x1_81010002", "0x0181010002", "ak"] {
            assert!(parse_handle(bad).is_err(), "{bad:?}");
        }
    }

    use super::*;

    #[test]
    fn chunked_bodies_decode_and_malformed_ones_are_refused() {
        assert_eq!(dechunk(b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n").as_deref(), Some(&b"hello!"[..]));
        assert_eq!(dechunk(b"0\r\n\r\n").as_deref(), Some(&b""[..]));
        for bad in [&b"5\r\nhell"[..], b"5\r\nhelloX\r\n0\r\n\r\n", b"zz\r\n", b"5\r\nhello\r\n", b""] {
            assert_eq!(dechunk(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_metadata_service_must_be_plain_http_to_a_host() {
        for url in ["https://169.254.169.254", "169.254.169.254", "http://", "http://h/x"] {
            let e = http(url, "GET", "/", None).unwrap_err().to_string();
            assert!(e.contains("must be http://HOST[:PORT]"), "{url}: {e}");
        }
    }
}
