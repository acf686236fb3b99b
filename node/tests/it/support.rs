//! What the node's tests share: the pod's fixtures (from `sigil_pod::testing`), `sigil node run` processes, the devnet, the CLI.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use sigil_pod::PodConfig;

// The pod's fixtures: `genesis(n)`, `configs`, `invocation`, `submit`, `deploy_probe`, `commit_batch`, `agree`,
// `Link`, `TempDir`, `init_logs`, the published keys.
pub use sigil_pod::local::name;
pub use sigil_pod::testing::*;
pub use sigil_primitives::clock::now_ms;

/// Pods of several nodes run one at a time in this binary: on a 2-core machine two of them at once (each four
/// nodes, in processes or a devnet) starve each other's consensus past the 30 s commit timeout. Hold the guard for
/// the whole test; tests of one node need none.
pub fn one_pod_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A node running as its own `sigil node run` process; killed when dropped.
pub struct ProcessNode {
    pub child: Option<std::process::Child>,
    pub config: std::path::PathBuf,
    /// The last committed height it logged.
    pub height: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Writes node `cfg`'s configuration with an `[api]` on 127.0.0.1:`api_port`.
pub fn write_config_with_api(cfg: &PodConfig, api_port: u16) -> std::path::PathBuf {
    write_config_with_api_and(cfg, api_port, |_| {})
}

/// [`write_config_with_api`], with `change` made to the file first.
pub fn write_config_with_api_and(
    cfg: &PodConfig,
    api_port: u16,
    change: impl FnOnce(&mut sigil::config::NodeFile),
) -> std::path::PathBuf {
    let mut file = sigil::config::NodeFile::of(cfg);
    change(&mut file);
    file.api = Some(sigil::config::Api { listen: format!("127.0.0.1:{api_port}"), ..Default::default() });
    file.labels.insert("cloud".into(), "local".into());
    file.write_beside(cfg).unwrap()
}

/// Writes node `cfg`'s configuration (identity, genesis, TOML) under its data directory's parent.
pub fn write_config(cfg: &PodConfig) -> std::path::PathBuf {
    sigil::config::NodeFile::of(cfg).write_beside(cfg).unwrap()
}

impl ProcessNode {
    /// Starts `sigil node run --config CONFIG`: this build's `sigil`, or the binary `SIGIL_BIN` names (the soak runs
    /// a release build's nodes from a debug test build).
    pub fn spawn(config: &std::path::Path) -> ProcessNode {
        use std::io::BufRead;
        let bin = std::env::var_os("SIGIL_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_sigil").into());
        let mut child = std::process::Command::new(bin)
            .args(["node", "run", "--config"])
            .arg(config)
            .env("SIGIL_LOG", "warn,sigil::commit=info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sigil node run");
        let height = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let h = height.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let plain = strip_ansi(&line);
                if let Some(rest) = plain.split("committed height=").nth(1) {
                    if let Ok(n) = rest.split_whitespace().next().unwrap_or("").parse::<u64>() {
                        h.store(n, std::sync::atomic::Ordering::SeqCst);
                    }
                } else if std::env::var("SIGIL_LOG").is_ok() {
                    eprintln!("[child] {plain}");
                }
            }
        });
        ProcessNode { child: Some(child), config: config.to_path_buf(), height }
    }

    pub fn height(&self) -> u64 {
        self.height.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until it has logged a commit of `height` or later.
    pub async fn wait_height(&self, height: u64, within: Duration) {
        let t = std::time::Instant::now();
        while self.height() < height {
            assert!(
                t.elapsed() < within,
                "the process node reached height {} of {height} in {within:?}",
                self.height()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let t = std::time::Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if t.elapsed() > Duration::from_secs(20) {
                c.kill().unwrap();
                panic!("the node did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn tempdir() -> TempDir {
    TempDir::new()
}

/// A devnet process, stopped on drop.
pub struct Devnet(std::process::Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example applets as files, for the CLI: `DIR/NAME.wasm` and `DIR/NAME/sigil.toml` (written once per process).
pub fn applet_files() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("applets-{}", std::process::id()));
        for e in sigil_example_applets::ALL {
            std::fs::create_dir_all(dir.join(e.name)).unwrap();
            std::fs::write(dir.join(e.name).join("sigil.toml"), e.manifest).unwrap();
            std::fs::write(dir.join(format!("{}.wasm", e.name)), e.wasm).unwrap();
        }
        dir
    })
    .clone()
}

/// Manifest and module of an example applet.
pub fn example(name: &str) -> (sigil_runtime::Manifest, Vec<u8>) {
    let e = sigil_example_applets::example(name);
    (sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap(), e.wasm.to_vec())
}

/// Starts `sigil devnet --nodes NODES --data DATA` and waits for its `devnet.json`.
pub fn start_devnet(data: &std::path::Path, nodes: u16) -> (Devnet, serde_json::Value) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["devnet", "--nodes", &nodes.to_string(), "--data", data.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let devnet = Devnet(child);
    let info = data.join("devnet.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !info.exists() {
        assert!(std::time::Instant::now() < deadline, "the devnet did not come up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let v = serde_json::from_slice(&std::fs::read(&info).unwrap()).unwrap();
    (devnet, v)
}

/// Runs the `sigil` binary under test with `args` (standard input closed).
pub fn sigil(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sigil")
}

/// A command's output, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
