//! `sigil attest ...`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use sigil_attest::{x509::parse_cert_file, CheckStatus, Endorsements, Policy, Verifier};

/// Exit code for "rejected".
const EXIT_REJECTED: u8 = 1;
/// Exit code for usage and I/O errors.
const EXIT_ERROR: u8 = 2;

#[derive(Subcommand)]
pub enum AttestCommand {
    /// Verify attestation evidence offline against pinned AMD/Intel roots and a policy.
    ///
    /// EVIDENCE is a raw SEV-SNP report (1184 bytes), an Azure HCL report or Azure vTPM evidence JSON, a TDX
    /// quote (v4/v5, zero padding allowed), a Sigil evidence bundle (CBOR) or sim evidence; any of them may be
    /// hex-encoded. Use `-` to read standard input.
    ///
    /// Exit status: 0 accepted, 1 rejected, 2 usage or I/O error.
    ///
    /// Examples:
    ///   sigil attest verify report.bin --cert vcek.der
    ///   sigil attest verify quote.bin --collateral collateral.json --now 2025-07-01T00:00:00Z --json
    ///   sigil attest verify bundle.cbor --policy pod-policy.toml
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
    /// Collect evidence from this machine's TEE and write it as a Sigil evidence bundle.
    ///
    /// On an SEV-SNP or TDX guest (Linux 6.7+, configfs-tsm, or /dev/sev-guest) this asks the hardware for a
    /// report binding --report-data. On an Azure confidential VM (or with --azure) it writes --report-data to the
    /// paravisor's vTPM as user data, reads the HCL report that binds it and completes it from Azure's instance
    /// metadata service (VCEK on SNP, TD quote on TDX). With --sim it produces INSECURE simulated evidence, for
    /// tests and devnets.
    /// Without --out the bundle is printed as hex.
    Collect(CollectArgs),
    /// Pack evidence and its endorsements into one Sigil evidence bundle (CBOR) for offline verifiers.
    ///
    /// The platform is detected from EVIDENCE. Azure vTPM evidence JSON becomes an SNP bundle with its VCEK;
    /// an Azure TDX quote takes its HCL report with --azure-hcl.
    ///
    /// Example:
    ///   sigil attest bundle quote.bin --collateral collateral.json --out evidence.cbor
    #[command(verbatim_doc_comment)]
    Bundle(BundleArgs),
    /// Print the default policy, every key documented (a starting point for --policy files).
    Policy,
}

#[derive(Args)]
pub struct BundleArgs {
    /// Evidence file (any format `sigil attest verify` reads, except a bundle), or `-` for standard input.
    evidence: PathBuf,
    /// Certificate file (DER or PEM) to include.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// Intel PCS collateral JSON to include.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Azure TDX: the HCL report whose runtime claims the quote's REPORT_DATA binds.
    #[arg(long, value_name = "FILE")]
    azure_hcl: Option<PathBuf>,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Evidence file, or `-` for standard input.
    evidence: PathBuf,
    /// Certificate file (DER or PEM, one or more certificates): the VCEK/VLEK, and optionally ASK/ASVK/ARK.
    /// The AMD ARKs and the Intel SGX Root CA are built in; a supplied root must equal them.
    #[arg(long = "cert", value_name = "FILE")]
    certs: Vec<PathBuf>,
    /// Intel PCS collateral for a TDX quote (JSON, dcap-qvl QuoteCollateralV3 shape).
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Policy file (TOML). Default: `sigil attest policy`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Verification time (RFC 3339), for certificate and collateral validity. Default: now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Expected REPORT_DATA (64 bytes, hex), e.g. the nonce you sent. Overrides the policy's.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Print the attestation result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the attestation result as CBOR to FILE.
    #[arg(long, value_name = "FILE")]
    cbor_out: Option<PathBuf>,
}

#[derive(Args)]
pub struct CollectArgs {
    /// Produce simulated evidence (INSECURE: signed by a published key).
    #[arg(long)]
    sim: bool,
    /// REPORT_DATA to bind (up to 64 bytes, hex; zero-padded). Default: zeros.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// With --sim: the simulated measurement (48 bytes hex). Default: SHA-384 of "sigil-sim".
    #[arg(long, value_name = "HEX", requires = "sim")]
    measurement: Option<String>,
    /// With --sim: HOST_DATA (32 bytes hex). Default: zeros.
    #[arg(long, value_name = "HEX", requires = "sim")]
    host_data: Option<String>,
    /// Collect through an Azure paravisor's vTPM even where detection would not choose it.
    #[arg(long, conflicts_with = "sim")]
    azure: bool,
    /// Quote a TPM's SHA-256 PCRs 0-23 with an attestation key it already holds, with the firmware's event log
    /// (a `tpm` bundle: no TEE report, so verifiers refuse it unless their policy sets [vtpm]
    /// allow_without_tee). REPORT_DATA is the quote's nonce.
    #[arg(long, conflicts_with_all = ["sim", "azure"])]
    vtpm: bool,
    /// With --vtpm: the attestation key's persistent handle.
    #[arg(long, value_name = "HANDLE", default_value = sigil_attest::collect::VTPM_AK, requires = "vtpm")]
    ak: String,
    /// With --vtpm: the event log to include (skipped if absent).
    #[arg(long, value_name = "FILE", default_value = sigil_attest::collect::EVENT_LOG, requires = "vtpm")]
    event_log: PathBuf,
    /// With --azure or --vtpm: the TPM device, or tcp:HOST:PORT for a TPM simulator.
    #[arg(long, value_name = "DEV", default_value = sigil_attest::tpm::TpmDevice::DEFAULT)]
    tpm: String,
    /// With --azure: the instance metadata service.
    #[arg(long, value_name = "URL", default_value = sigil_attest::collect::AZURE_IMDS, requires = "azure")]
    imds: String,
    /// Write the bundle (CBOR) to FILE instead of printing hex.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(cmd: AttestCommand) -> ExitCode {
    let r = match cmd {
        AttestCommand::Verify(a) => verify(a),
        AttestCommand::Collect(a) => collect(a).map(|()| ExitCode::SUCCESS),
        AttestCommand::Bundle(a) => bundle(a).map(|()| ExitCode::SUCCESS),
        AttestCommand::Policy => {
            print!("{}", DEFAULT_POLICY);
            Ok(ExitCode::SUCCESS)
        }
    };
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(EXIT_ERROR)
    })
}

/// The documented default policy (parsed by a test to equal `Policy::default()`).
pub const DEFAULT_POLICY: &str = include_str!("../../docs/policy.default.toml");

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).context("reading standard input")?;
        return Ok(v);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn parse_now(s: Option<&str>) -> anyhow::Result<u64> {
    match s {
        None => Ok(sigil_primitives::clock::now_secs()),
        Some(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("--now {s:?} is not an RFC 3339 time such as 2025-07-01T00:00:00Z"))?;
            u64::try_from(t.unix_timestamp()).map_err(|_| anyhow!("--now {s:?} is before 1970"))
        }
    }
}

fn hex_arg(s: &str, max: usize, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim().trim_start_matches("0x");
    let v = hex::decode(s).with_context(|| format!("{name} is not hex"))?;
    if v.len() > max {
        bail!("{name} is {} bytes; at most {max}", v.len());
    }
    Ok(v)
}

fn padded<const N: usize>(v: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..v.len()].copy_from_slice(v);
    out
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let policy = match &a.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading policy {}", p.display()))?;
            Policy::from_toml(&text).with_context(|| format!("policy {}", p.display()))?
        }
        None => Policy::default(),
    };
    let now = parse_now(a.now.as_deref())?;
    let mut e = Endorsements::default();
    for path in &a.certs {
        let bytes = std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
        e.certs.extend(parse_cert_file(&bytes, &path.display().to_string())?);
    }
    if let Some(p) = &a.collateral {
        let bytes = std::fs::read(p).with_context(|| format!("reading collateral {}", p.display()))?;
        e.collateral =
            Some(Endorsements::parse_collateral(&bytes).with_context(|| format!("collateral {}", p.display()))?);
    }
    if let Some(rd) = &a.report_data {
        let v = hex_arg(rd, 64, "--report-data")?;
        if v.len() != 64 {
            bail!("--report-data must be exactly 64 bytes (128 hex digits), got {}", v.len());
        }
        e.expected_report_data = Some(v);
    }
    let evidence = read_input(&a.evidence)?;
    let verifier = Verifier::new(policy);
    let result = verifier.verify(&evidence, &e, now).with_context(|| format!("evidence {}", a.evidence.display()))?;
    if let Some(p) = &a.cbor_out {
        std::fs::write(p, result.to_cbor()?).with_context(|| format!("writing {}", p.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        writeln!(stdout, "{}", serde_json::to_string(&result)?)?;
    } else {
        let verdict = if result.accepted() { "ACCEPTED" } else { "REJECTED" };
        writeln!(stdout, "{verdict}  {}", result.platform.as_str())?;
        writeln!(stdout, "  measurement  {}", result.measurement)?;
        writeln!(stdout, "  report_data  {}", result.report_data)?;
        writeln!(stdout, "  tcb_status   {}", result.tcb_status.as_deref().unwrap_or("-"))?;
        writeln!(stdout, "  workload     {}", workload_line(&result.claims))?;
        writeln!(stdout, "  checks:")?;
        for c in &result.checks {
            let mark = match c.status {
                CheckStatus::Pass => "ok  ",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Skipped => "skip",
            };
            match &c.detail {
                Some(d) => writeln!(stdout, "    {mark} {}: {d}", c.name)?,
                None => writeln!(stdout, "    {mark} {}", c.name)?,
            }
        }
        if !result.accepted() {
            writeln!(stdout, "  reasons:")?;
            for r in &result.reasons {
                writeln!(stdout, "    - {r}")?;
            }
        }
    }
    Ok(if result.accepted() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_REJECTED) })
}

fn collect(a: CollectArgs) -> anyhow::Result<()> {
    let rd: [u8; 64] =
        padded(&a.report_data.as_deref().map(|s| hex_arg(s, 64, "--report-data")).transpose()?.unwrap_or_default());
    let bundle = if a.sim {
        let m = match &a.measurement {
            Some(s) => {
                let v = hex_arg(s, 48, "--measurement")?;
                if v.len() != 48 {
                    bail!("--measurement must be 48 bytes");
                }
                padded::<48>(&v)
            }
            None => sigil_attest::sha384(b"sigil-sim"),
        };
        let hd = padded::<32>(
            &a.host_data.as_deref().map(|s| hex_arg(s, 32, "--host-data")).transpose()?.unwrap_or_default(),
        );
        eprintln!("warning: simulated evidence is INSECURE: anyone can produce it. Verifiers refuse it unless their policy sets [sim] allow = true.");
        sigil_attest::collect::collect_sim(m, rd, hd)?
    } else if a.vtpm {
        let ak = sigil_attest::collect::parse_handle(&a.ak).map_err(|e| anyhow::anyhow!("--ak: {e}"))?;
        let dev = sigil_attest::tpm::TpmDevice::parse(&a.tpm);
        sigil_attest::collect::collect_vtpm(&dev, ak, &rd, Some(&a.event_log))?
    } else if a.azure {
        let src = sigil_attest::collect::AzureSource::at(Some(&a.tpm), Some(&a.imds));
        sigil_attest::collect::collect_azure(&src, &rd)?
    } else {
        sigil_attest::collect::collect(&rd)?
    };
    let bytes = bundle.encode()?;
    match &a.out {
        Some(p) => {
            std::fs::write(p, &bytes).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {} evidence bundle ({} bytes) to {}", bundle.platform.as_str(), bytes.len(), p.display());
        }
        None => println!("{}", hex::encode(&bytes)),
    }
    Ok(())
}

fn bundle(a: BundleArgs) -> anyhow::Result<()> {
    use sigil_attest::{Evidence, Platform};
    let raw = read_input(&a.evidence)?;
    let mut certs = Vec::new();
    for path in &a.certs {
        let bytes = std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
        certs.extend(parse_cert_file(&bytes, &path.display().to_string())?.iter().map(|c| c.der().to_vec()));
    }
    let mut azure_hcl = match &a.azure_hcl {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let ev = Evidence::detect(&raw).with_context(|| format!("evidence {}", a.evidence.display()))?;
    let mut vtpm = None;
    let (platform, evidence) = match ev {
        Evidence::Snp(b) | Evidence::AzureHcl(b) => (Platform::SevSnp, b),
        Evidence::Quote(b) => (Platform::Tdx, b),
        Evidence::Sim(b) => (Platform::Sim, b),
        Evidence::AzureJson { hcl, vcek_pem, vtpm: v } => {
            vtpm = v;
            certs.extend(
                parse_cert_file(vcek_pem.as_bytes(), "VCEK in Azure evidence")?.iter().map(|c| c.der().to_vec()),
            );
            (Platform::SevSnp, hcl)
        }
        Evidence::AzureTdxJson { hcl, quote, vtpm: v } => {
            vtpm = v;
            if azure_hcl.replace(hcl).is_some() {
                bail!("{} already carries its HCL report; drop --azure-hcl", a.evidence.display());
            }
            (Platform::Tdx, quote)
        }
        Evidence::Bundle(_) => bail!("{} is already a bundle", a.evidence.display()),
    };
    let mut b = sigil_attest::Bundle::new(platform, evidence, certs);
    b.vtpm = vtpm;
    if let Some(p) = &a.collateral {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading collateral {}", p.display()))?;
        Endorsements::parse_collateral(text.as_bytes()).with_context(|| format!("collateral {}", p.display()))?;
        b.collateral = Some(text);
    }
    if let Some(hcl) = azure_hcl {
        if platform != Platform::Tdx {
            bail!(
                "--azure-hcl goes with an Azure TDX quote; {} is {} evidence",
                a.evidence.display(),
                platform.as_str()
            );
        }
        sigil_attest::azure::HclReport::parse(&hcl).context("Azure HCL report")?;
        b.azure_hcl = Some(hcl.into());
    }
    let bytes = b.encode()?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    let (kind, n, out) = (platform.as_str(), b.certs.len(), a.out.display());
    eprintln!("wrote {kind} evidence bundle ({} bytes, {n} certificates) to {out}", bytes.len());
    Ok(())
}

/// The `workload` claim in words: how the evidence establishes the code that runs, or that it does not.
pub(crate) fn workload_line(claims: &serde_json::Value) -> String {
    let w = &claims["workload"];
    match w["established_by"].as_str() {
        None => "not judged (the evidence did not verify)".into(),
        Some("unmeasured") => "unmeasured: the evidence proves the firmware, not the code that runs".into(),
        Some(by) => {
            let values: Vec<String> = w["values"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {}", v.as_str().map(str::to_string).unwrap_or(v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let note = if by == "vtpm-host" { " (what a TPM outside the TEE claims)" } else { "" };
            format!("{by}{note}: {}", values.join(", "))
        }
    }
}
