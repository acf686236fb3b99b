//! A minimal TPM 2.0 client for the NV indices Azure's paravisor uses: `NV_ReadPublic`, `NV_DefineSpace`,
//! `NV_Write`, `NV_Read` (owner or index authorization, empty password) and the one `GetCapability` property that
//! sizes NV reads; and for vTPM evidence, `ReadPublic` (the attestation key), `PCR_Read` and `Quote`. Commands are marshalled by hand as TPM 2.0 Part 3 defines them; there is no TSS dependency.
//!
//! The transport is the kernel's resource-managed device (`/dev/tpmrm0`, one command written, one response read)
//! or, for tests and debugging, a TPM simulator's TCP command port (`swtpm socket --server type=tcp`, started
//! with `--flags startup-clear`) given as `tcp:HOST:PORT`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::error::{Error, Result};

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const CC_NV_DEFINE_SPACE: u32 = 0x12A;
const CC_NV_WRITE: u32 = 0x137;
const CC_NV_READ: u32 = 0x14E;
const CC_NV_READ_PUBLIC: u32 = 0x169;
const CC_GET_CAPABILITY: u32 = 0x17A;
const CC_QUOTE: u32 = 0x158;
const CC_READ_PUBLIC: u32 = 0x173;
const CC_PCR_READ: u32 = 0x17E;
const ALG_NULL: u16 = 0x0010;
/// The owner hierarchy.
pub const RH_OWNER: u32 = 0x4000_0001;
const RS_PW: u32 = 0x4000_0009;
const ALG_SHA256: u16 = 0x000B;
const CAP_TPM_PROPERTIES: u32 = 6;
const PT_NV_BUFFER_MAX: u32 = 0x12C;
/// Largest response accepted.
const MAX_RESPONSE: usize = 16 * 1024;
/// Largest NV index read.
pub const MAX_NV_SIZE: usize = 64 * 1024;

/// TPMA_NV bits.
pub mod attr {
    /// Writable with owner authorization.
    pub const OWNERWRITE: u32 = 1 << 1;
    /// Writable with the index's own authorization.
    pub const AUTHWRITE: u32 = 1 << 2;
    /// Readable with owner authorization.
    pub const OWNERREAD: u32 = 1 << 17;
    /// Readable with the index's own authorization.
    pub const AUTHREAD: u32 = 1 << 18;
    /// Not subject to dictionary-attack lockout.
    pub const NO_DA: u32 = 1 << 25;
    /// Has been written.
    pub const WRITTEN: u32 = 1 << 29;
}

/// Where the TPM is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TpmDevice {
    /// A character device (`/dev/tpmrm0`).
    Path(std::path::PathBuf),
    /// A simulator's command port, `HOST:PORT`.
    Tcp(String),
}

impl TpmDevice {
    /// The kernel's resource manager.
    pub const DEFAULT: &'static str = "/dev/tpmrm0";

    /// `tcp:HOST:PORT` or a device path.
    pub fn parse(s: &str) -> TpmDevice {
        match s.strip_prefix("tcp:") {
            Some(addr) => TpmDevice::Tcp(addr.to_string()),
            None => TpmDevice::Path(s.into()),
        }
    }
}

impl Default for TpmDevice {
    fn default() -> TpmDevice {
        TpmDevice::Path(TpmDevice::DEFAULT.into())
    }
}

impl std::fmt::Display for TpmDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TpmDevice::Path(p) => write!(f, "{}", p.display()),
            TpmDevice::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

trait Channel: Read + Write {}
impl<T: Read + Write> Channel for T {}

/// An open TPM.
pub struct Tpm {
    io: Box<dyn Channel>,
    name: String,
    /// TPM_PT_NV_BUFFER_MAX, asked once.
    nv_buffer_max: Option<usize>,
}

/// The public area of an NV index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NvPublic {
    /// TPMA_NV bits (see [`attr`]).
    pub attributes: u32,
    /// Size in bytes.
    pub size: u16,
}

/// A TPM response code other than success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    /// TPM_RC_HANDLE on any handle: the object (here, the NV index) does not exist.
    pub fn is_missing_handle(self) -> bool {
        self.0 & 0x80 != 0 && self.0 & 0x3F == 0x0B
    }

    /// TPM_RC_NV_DEFINED: the index exists already.
    pub fn is_nv_defined(self) -> bool {
        self.0 & 0x80 == 0 && self.0 & 0x7FF == 0x14C
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.0 {
            rc if self.is_missing_handle() => return write!(f, "TPM_RC_HANDLE ({rc:#x}): no such NV index"),
            0x146 => "TPM_RC_NV_RANGE",
            0x148 => "TPM_RC_NV_LOCKED",
            0x149 => "TPM_RC_NV_AUTHORIZATION",
            0x14A => "TPM_RC_NV_UNINITIALIZED (the index was never written)",
            0x14B => "TPM_RC_NV_SPACE",
            0x14C => "TPM_RC_NV_DEFINED",
            0x920 => "TPM_RC_NV_RATE",
            0x921 => "TPM_RC_LOCKOUT",
            0x922 => "TPM_RC_RETRY",
            0x923 => "TPM_RC_NV_UNAVAILABLE",
            rc if rc & 0x80 != 0 && rc & 0x3F == 0x0E => "TPM_RC_AUTH_FAIL (the hierarchy has a password?)",
            rc if rc & 0x80 != 0 && rc & 0x3F == 0x22 => "TPM_RC_BAD_AUTH (the hierarchy has a password?)",
            rc if rc & 0x80 != 0 && rc & 0x3F == 0x15 => "TPM_RC_SIZE",
            rc if rc & 0x80 != 0 && rc & 0x3F == 0x02 => "TPM_RC_ATTRIBUTES",
            _ => "TPM error",
        };
        write!(f, "{what} ({:#x})", self.0)
    }
}

/// What a command returned.
enum Outcome {
    Ok(Vec<u8>),
    Rc(ResponseCode),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A 3-byte PCR selection bitmap.
fn selection_bits(pcrs: &[u32]) -> [u8; 3] {
    let mut bits = [0u8; 3];
    for &p in pcrs.iter().filter(|&&p| p < 24) {
        bits[p as usize / 8] |= 1 << (p % 8);
    }
    bits
}

/// A command under construction.
struct Cmd(Vec<u8>);

impl Cmd {
    fn new(sessions: bool, code: u32) -> Cmd {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&(if sessions { ST_SESSIONS } else { ST_NO_SESSIONS }).to_be_bytes());
        b.extend_from_slice(&[0; 4]); // size, patched in finish()
        b.extend_from_slice(&code.to_be_bytes());
        Cmd(b)
    }
    fn u8(mut self, v: u8) -> Cmd {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Cmd {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Cmd {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A TPM2B: u16 size then the bytes.
    fn sized(mut self, v: &[u8]) -> Cmd {
        let n = u16::try_from(v.len()).expect("TPM2B fits u16");
        self.0.extend_from_slice(&n.to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }
    /// The authorization area with one password session and an empty password.
    fn raw(mut self, v: &[u8]) -> Cmd {
        self.0.extend_from_slice(v);
        self
    }

    fn password_auth(self) -> Cmd {
        // sessionHandle ‖ nonceCaller (empty) ‖ sessionAttributes (continueSession) ‖ hmac (empty password)
        self.u32(9).u32(RS_PW).u16(0).u8(1).u16(0)
    }
    fn finish(mut self) -> Vec<u8> {
        let n = u32::try_from(self.0.len()).expect("small command");
        self.0[2..6].copy_from_slice(&n.to_be_bytes());
        self.0
    }
}

impl Tpm {
    /// Opens the TPM at `dev`.
    pub fn open(dev: &TpmDevice) -> Result<Tpm> {
        let name = dev.to_string();
        let io: Box<dyn Channel> = match dev {
            TpmDevice::Path(p) => Box::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .map_err(|e| Error::Collect(format!("opening the TPM {name}: {e}")))?,
            ),
            TpmDevice::Tcp(addr) => {
                let s = TcpStream::connect(addr)
                    .map_err(|e| Error::Collect(format!("connecting to the TPM {name}: {e}")))?;
                s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                Box::new(s)
            }
        };
        Ok(Tpm { io, name, nv_buffer_max: None })
    }

    /// Sends one command and reads its response; a non-success response code is returned as such. A TPM that
    /// asks to be asked again (`TPM_RC_RETRY`, `TPM_RC_YIELDED`, `TPM_RC_TESTING`: a self-test of the algorithm
    /// is running) is asked again, up to ten times, as TSS stacks do.
    fn call(&mut self, cmd: Vec<u8>, what: &str) -> Result<Outcome> {
        for _ in 0..10 {
            match self.call_once(&cmd, what)? {
                Outcome::Rc(ResponseCode(0x908 | 0x90A | 0x922)) => std::thread::sleep(Duration::from_millis(20)),
                done => return Ok(done),
            }
        }
        self.call_once(&cmd, what)
    }

    fn call_once(&mut self, cmd: &[u8], what: &str) -> Result<Outcome> {
        let io_err = |e: std::io::Error| Error::Collect(format!("TPM {} {what}: {e}", self.name));
        self.io.write_all(cmd).map_err(io_err)?;
        self.io.flush().map_err(io_err)?;
        let mut resp = vec![0u8; 10];
        let mut have = 0;
        let mut want = 10;
        while have < want {
            let n = self.io.read(&mut resp[have..want]).map_err(io_err)?;
            if n == 0 {
                return Err(Error::Collect(format!("TPM {} {what}: connection closed mid-response", self.name)));
            }
            have += n;
            if have >= 10 && want == 10 {
                let size = be32(&resp, 2).expect("10 bytes") as usize;
                if !(10..=MAX_RESPONSE).contains(&size) {
                    return Err(Error::Collect(format!("TPM {} {what}: response size {size} is invalid", self.name)));
                }
                want = size;
                resp.resize(size, 0);
            }
        }
        let rc = be32(&resp, 6).expect("10 bytes");
        if rc != 0 {
            return Ok(Outcome::Rc(ResponseCode(rc)));
        }
        Ok(Outcome::Ok(resp))
    }

    fn ok(&mut self, cmd: Vec<u8>, what: &str) -> Result<Vec<u8>> {
        match self.call(cmd, what)? {
            Outcome::Ok(r) => Ok(r),
            Outcome::Rc(rc) => Err(Error::Collect(format!("TPM {} {what}: {rc}", self.name))),
        }
    }

    fn malformed(&self, what: &str) -> Error {
        Error::Collect(format!("TPM {} {what}: malformed response", self.name))
    }

    /// The public area of NV index `index`, or `None` when it is not defined.
    pub fn nv_read_public(&mut self, index: u32) -> Result<Option<NvPublic>> {
        let what = format!("NV_ReadPublic({index:#010x})");
        let r = match self.call(Cmd::new(false, CC_NV_READ_PUBLIC).u32(index).finish(), &what)? {
            Outcome::Ok(r) => r,
            Outcome::Rc(rc) if rc.is_missing_handle() => return Ok(None),
            Outcome::Rc(rc) => return Err(Error::Collect(format!("TPM {} {what}: {rc}", self.name))),
        };
        // TPM2B_NV_PUBLIC { size, nvIndex, nameAlg, attributes, authPolicy (TPM2B), dataSize }
        let parse = || -> Option<NvPublic> {
            let got = be32(&r, 12)?;
            let attributes = be32(&r, 18)?;
            let policy = be16(&r, 22)? as usize;
            let size = be16(&r, 24 + policy)?;
            (got == index).then_some(NvPublic { attributes, size })
        };
        parse().map(Some).ok_or_else(|| self.malformed(&what))
    }

    /// The largest NV_Read/NV_Write buffer this TPM takes (TPM_PT_NV_BUFFER_MAX), asked of the TPM once.
    pub fn nv_buffer_max(&mut self) -> Result<usize> {
        if let Some(max) = self.nv_buffer_max {
            return Ok(max);
        }
        let what = "GetCapability(TPM_PT_NV_BUFFER_MAX)";
        let cmd = Cmd::new(false, CC_GET_CAPABILITY).u32(CAP_TPM_PROPERTIES).u32(PT_NV_BUFFER_MAX).u32(1).finish();
        let r = self.ok(cmd, what)?;
        // moreData ‖ capability ‖ count ‖ (property ‖ value)*
        match (be32(&r, 11), be32(&r, 15), be32(&r, 19), be32(&r, 23)) {
            (Some(CAP_TPM_PROPERTIES), Some(n), Some(PT_NV_BUFFER_MAX), Some(v)) if n >= 1 && v >= 32 => {
                let max = (v as usize).min(4096);
                self.nv_buffer_max = Some(max);
                Ok(max)
            }
            _ => Err(self.malformed(what)),
        }
    }

    /// Defines NV index `index` of `size` bytes under the owner hierarchy (empty owner password). An index
    /// already defined (by a concurrent caller) is not an error: the caller reads its public area next.
    pub fn nv_define(&mut self, index: u32, size: u16, attributes: u32) -> Result<()> {
        let what = format!("NV_DefineSpace({index:#010x})");
        let public = Cmd(Vec::new()).u32(index).u16(ALG_SHA256).u32(attributes).u16(0).u16(size).0;
        let cmd = Cmd::new(true, CC_NV_DEFINE_SPACE).u32(RH_OWNER).password_auth().u16(0).sized(&public).finish();
        match self.call(cmd, &what)? {
            Outcome::Ok(_) => Ok(()),
            Outcome::Rc(rc) if rc.is_nv_defined() => Ok(()),
            Outcome::Rc(rc) => Err(Error::Collect(format!("TPM {} {what}: {rc}", self.name))),
        }
    }

    /// Writes `data` at the start of NV index `index`, authorizing as `auth` (the owner or the index).
    pub fn nv_write(&mut self, auth: u32, index: u32, data: &[u8]) -> Result<()> {
        let max = self.nv_buffer_max()?;
        for (i, chunk) in data.chunks(max).enumerate() {
            let what = format!("NV_Write({index:#010x})");
            let off = u16::try_from(i * max).map_err(|_| Error::Collect(format!("{what}: data too large")))?;
            let cmd = Cmd::new(true, CC_NV_WRITE).u32(auth).u32(index).password_auth().sized(chunk).u16(off).finish();
            self.ok(cmd, &what)?;
        }
        Ok(())
    }

    /// Reads all of NV index `index`, authorizing as `auth` (the owner or the index).
    pub fn nv_read(&mut self, auth: u32, index: u32, size: usize) -> Result<Vec<u8>> {
        if size > MAX_NV_SIZE {
            return Err(Error::Collect(format!("NV index {index:#010x} of {size} bytes exceeds {MAX_NV_SIZE}")));
        }
        let max = self.nv_buffer_max()?;
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let n = (size - out.len()).min(max);
            let what = format!("NV_Read({index:#010x}, offset {})", out.len());
            let cmd = Cmd::new(true, CC_NV_READ)
                .u32(auth)
                .u32(index)
                .password_auth()
                .u16(n as u16)
                .u16(out.len() as u16)
                .finish();
            let r = self.ok(cmd, &what)?;
            // header ‖ parameterSize ‖ TPM2B_MAX_NV_BUFFER ‖ auth response
            let got = be16(&r, 14).map(usize::from).ok_or_else(|| self.malformed(&what))?;
            let data = r.get(16..16 + got).filter(|_| got == n).ok_or_else(|| self.malformed(&what))?;
            out.extend_from_slice(data);
        }
        Ok(out)
    }

    /// The public area of the persistent or transient object `handle` (an attestation key).
    pub fn read_public(&mut self, handle: u32) -> Result<crate::vtpm::quote::PublicArea> {
        self.public_area(handle)?
            .ok_or_else(|| Error::Collect(format!("TPM {} ReadPublic({handle:#010x}): no such object", self.name)))
    }

    /// [`Tpm::read_public`], or `None` when there is no object at `handle`.
    pub fn public_area(&mut self, handle: u32) -> Result<Option<crate::vtpm::quote::PublicArea>> {
        let what = format!("ReadPublic({handle:#010x})");
        let r = match self.call(Cmd::new(false, CC_READ_PUBLIC).u32(handle).finish(), &what)? {
            Outcome::Ok(r) => r,
            Outcome::Rc(rc) if rc.is_missing_handle() => return Ok(None),
            Outcome::Rc(rc) => return Err(Error::Collect(format!("TPM {} {what}: {rc}", self.name))),
        };
        // header ‖ TPM2B_PUBLIC ‖ TPM2B_NAME name ‖ TPM2B_NAME qualifiedName
        let size = be16(&r, 10).map(usize::from).ok_or_else(|| self.malformed(&what))?;
        let public = r.get(12..12 + size).ok_or_else(|| self.malformed(&what))?;
        crate::vtpm::quote::PublicArea::parse(public)
            .map(Some)
            .map_err(|e| Error::Collect(format!("TPM {} {what}: {e}", self.name)))
    }

    /// The values of `pcrs` in the bank `alg` (`PCR_Read`, up to eight per command).
    pub fn pcr_read(&mut self, alg: crate::vtpm::HashAlg, pcrs: &[u32]) -> Result<BTreeMap<u32, Vec<u8>>> {
        let mut pcrs = pcrs.to_vec();
        pcrs.sort_unstable();
        pcrs.dedup();
        let mut out = BTreeMap::new();
        for chunk in pcrs.chunks(8) {
            let what = format!("PCR_Read({alg} {chunk:?})");
            let cmd = Cmd::new(false, CC_PCR_READ).u32(1).u16(alg.id()).u8(3).raw(&selection_bits(chunk)).finish();
            let r = self.ok(cmd, &what)?;
            // header ‖ pcrUpdateCounter ‖ TPML_PCR_SELECTION (one bank: 4 + 2 + 1 + 3) ‖ TPML_DIGEST
            let count = be32(&r, 24).ok_or_else(|| self.malformed(&what))? as usize;
            let read: Vec<u32> = match r.get(21..24) {
                Some(bits) => (0..24).filter(|i| bits[*i as usize / 8] & (1 << (i % 8)) != 0).collect(),
                None => return Err(self.malformed(&what)),
            };
            let one_bank = be32(&r, 14) == Some(1) && r.get(20) == Some(&3);
            if !one_bank || read.len() != count || read != chunk || be16(&r, 18) != Some(alg.id()) {
                return Err(Error::Collect(format!(
                    "TPM {} {what}: the TPM returned PCRs {read:?} (is the {alg} bank allocated?)",
                    self.name
                )));
            }
            let mut at = 28;
            for p in read {
                let n =
                    be16(&r, at).map(usize::from).filter(|n| *n == alg.size()).ok_or_else(|| self.malformed(&what))?;
                out.insert(p, r.get(at + 2..at + 2 + n).ok_or_else(|| self.malformed(&what))?.to_vec());
                at += 2 + n;
            }
        }
        Ok(out)
    }

    /// `Quote`: the attestation key at `ak` (empty password, its own signing scheme) signs `nonce` and the digest
    /// of `pcrs` in the bank `alg`. Returns the raw `TPMS_ATTEST` and `TPMT_SIGNATURE`.
    pub fn quote(
        &mut self,
        ak: u32,
        nonce: &[u8],
        alg: crate::vtpm::HashAlg,
        pcrs: &[u32],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let what = format!("Quote({ak:#010x})");
        if nonce.len() > 64 {
            return Err(Error::Collect(format!("{what}: a nonce of {} bytes exceeds 64", nonce.len())));
        }
        let cmd = Cmd::new(true, CC_QUOTE)
            .u32(ak)
            .password_auth()
            .sized(nonce)
            .u16(ALG_NULL)
            .u32(1)
            .u16(alg.id())
            .u8(3)
            .raw(&selection_bits(pcrs))
            .finish();
        let r = self.ok(cmd, &what)?;
        // header ‖ parameterSize ‖ TPM2B_ATTEST ‖ TPMT_SIGNATURE ‖ auth response
        let params = be32(&r, 10).map(|n| n as usize).ok_or_else(|| self.malformed(&what))?;
        let size = be16(&r, 14).map(usize::from).ok_or_else(|| self.malformed(&what))?;
        let attest = r.get(16..16 + size).ok_or_else(|| self.malformed(&what))?.to_vec();
        let end = params.checked_add(14).ok_or_else(|| self.malformed(&what))?;
        let sig = r.get(16 + size..end).ok_or_else(|| self.malformed(&what))?.to_vec();
        Ok((attest, sig))
    }

    /// The handle to authorize a read of `public` with: the owner where it allows, else the index itself.
    pub fn read_auth(index: u32, public: NvPublic) -> Option<u32> {
        Self::auth(index, public, attr::OWNERREAD, attr::AUTHREAD)
    }

    /// The handle to authorize a write of `public` with.
    pub fn write_auth(index: u32, public: NvPublic) -> Option<u32> {
        Self::auth(index, public, attr::OWNERWRITE, attr::AUTHWRITE)
    }

    fn auth(index: u32, public: NvPublic, owner: u32, own: u32) -> Option<u32> {
        if public.attributes & owner != 0 {
            Some(RH_OWNER)
        } else if public.attributes & own != 0 {
            Some(index)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nv_read_public_is_marshalled_as_part_3_defines() {
        let c = Cmd::new(false, CC_NV_READ_PUBLIC).u32(0x0140_0001).finish();
        assert_eq!(hex::encode(c), "80010000000e0000016901400001");
    }

    #[test]
    fn a_password_session_command_carries_a_9_byte_auth_area() {
        let c = Cmd::new(true, CC_NV_READ).u32(RH_OWNER).u32(0x0140_0001).password_auth().u16(64).u16(0).finish();
        let want =
            ["8002", "00000023", "0000014e", "40000001", "01400001", "00000009", "40000009", "0000", "01", "0000"];
        assert_eq!(hex::encode(c), want.concat() + "00400000");
    }

    #[test]
    fn response_codes_are_classified() {
        assert!(ResponseCode(0x18B).is_missing_handle());
        assert!(ResponseCode(0x28B).is_missing_handle());
        assert!(!ResponseCode(0x14C).is_missing_handle());
        assert!(ResponseCode(0x14C).is_nv_defined());
        assert!(ResponseCode(0x9A2).to_string().contains("BAD_AUTH"));
    }
}
