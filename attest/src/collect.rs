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

use std::fs;
use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::result::Platform;
use crate::sim::{SimClaims, SimEvidence};

/// Where configfs-tsm lives.
pub const TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";

/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

/// Which TEE [`collect`] can reach on this machine, if any.
pub fn detect() -> Option<Platform> {
    let tsm = Path::new(TSM_REPORT_DIR).is_dir();
    let sev_guest = Path::new(SEV_GUEST_DEVICE).exists();
    if tsm && Path::new("/dev/tdx_guest").exists() {
        Some(Platform::Tdx)
    } else if sev_guest && (tsm || cfg!(feature = "sev-guest")) {
        Some(Platform::SevSnp)
    } else {
        None
    }
}

/// Collects hardware evidence binding `report_data`: through configfs-tsm where the kernel has it, else (SNP)
/// through `/dev/sev-guest`.
pub fn collect(report_data: &[u8; 64]) -> Result<Bundle> {
    if !Path::new(TSM_REPORT_DIR).is_dir() && Path::new(SEV_GUEST_DEVICE).exists() {
        return collect_sev_guest(report_data);
    }
    collect_at(Path::new(TSM_REPORT_DIR), report_data)
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
            "{} not found: this machine exposes no TEE through configfs-tsm (Linux 6.7+ inside an SEV-SNP or TDX guest); use --sim for insecure simulated evidence",
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
        "tdx_guest" => Ok(Bundle::new(Platform::Tdx, out, Vec::new())),
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
        let off = u32::from_le_bytes(e[16..20].try_into().expect("4")) as usize;
        let len = u32::from_le_bytes(e[20..24].try_into().expect("4")) as usize;
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
    let claims = SimClaims {
        measurement: measurement.to_vec(),
        report_data: report_data.to_vec(),
        host_data: host_data.to_vec(),
        debug: false,
        svn: 1,
    };
    Ok(Bundle::new(Platform::Sim, SimEvidence::generate(&claims)?, Vec::new()))
}
