//! A real TPM 2.0 for the tests: swtpm (libtpms) on loopback ports, driven by Sigil's client and by tpm2-tools.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sigil_attest::tpm::TpmDevice;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A swtpm process with its own state directory, killed on drop.
pub struct Swtpm {
    child: Child,
    pub port: u16,
    _dir: tempdir::Dir,
}

pub mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The tests run one at a time: each has its own swtpm, and ports picked free are only free when picked.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

impl Swtpm {
    pub fn start() -> Swtpm {
        let dir =
            tempdir::Dir(std::env::temp_dir().join(format!("sigil-swtpm-{}-{}", std::process::id(), free_port())));
        std::fs::create_dir_all(&dir.0).unwrap();
        for _ in 0..5 {
            // tpm2-tools' swtpm TCTI expects the control port right after the command port.
            let port = free_port();
            if port >= u16::MAX - 1 {
                continue;
            }
            let ctrl = port + 1;
            let mut child = Command::new("swtpm")
                .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
                .arg("--tpmstate")
                .arg(format!("dir={}", dir.0.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("swtpm is installed (scripts/setup.sh installs swtpm and tpm2-tools)");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Still alive: the port is this swtpm's, not a program's that took it first.
                    std::thread::sleep(Duration::from_millis(100));
                    if child.try_wait().unwrap().is_none() {
                        return Swtpm { child, port, _dir: dir };
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("swtpm did not start");
    }

    pub fn device(&self) -> TpmDevice {
        TpmDevice::Tcp(format!("127.0.0.1:{}", self.port))
    }

    /// Runs a tpm2-tools command against this TPM.
    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        // swtpm serves one connection at a time; tpm2-tools connects per command.
        let out = Command::new(args[0])
            .args(&args[1..])
            .args(["-T", &format!("swtpm:host=127.0.0.1,port={}", self.port)])
            .output()
            .expect("tpm2-tools is installed (scripts/setup.sh)");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Swtpm {
    /// Makes an endorsement key and a restricted RSA attestation key (RSASSA, SHA-256) with tpm2-tools and makes
    /// the AK persistent at `handle` (`0x81...`), as a platform provisions its vTPM. `dir` holds the contexts.
    pub fn provision_ak(&self, dir: &std::path::Path, handle: &str) {
        let p = |f: &str| dir.join(f).display().to_string();
        // Without a resource manager, what tpm2-tools loads stays loaded: flush it (swtpm has three object slots).
        let flush = || {
            self.tool(&["tpm2_flushcontext", "-t"]);
            self.tool(&["tpm2_flushcontext", "-s"]);
        };
        self.tool(&["tpm2_createek", "-c", &p("ek.ctx"), "-G", "rsa", "-u", &p("ek.pub")]);
        flush();
        self.tool(&[
            "tpm2_createak",
            "-C",
            &p("ek.ctx"),
            "-c",
            &p("ak.ctx"),
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
        ]);
        flush();
        self.tool(&["tpm2_evictcontrol", "-C", "o", "-c", &p("ak.ctx"), handle]);
        flush();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
