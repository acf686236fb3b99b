//! A pod of nodes on 127.0.0.1 for the consensus tests: genesis, keys, entries.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use sigil_ledger::Entry;
use sigil_pod::Attachments;
use sigil_pod::Committed;
use sigil_pod::{self as pod, PodConfig, PodNode};
use tokio::sync::oneshot;

pub use sigil_pod::local::{name, seed};

pub fn genesis(n: usize) -> Entry {
    sigil_pod::local::genesis("test-pod", n)
}

pub use sigil_primitives::clock::now_ms;

/// An invocation of the `probe` applet executed by node `executor`, request number `n`, with its signed
/// request and write set.
pub fn invocation(executor: usize, n: u64) -> (Entry, Attachments) {
    pod::local::probe_invocation("test-pod", &name(executor), 0, &pod::local::CALLER_SEED, n, now_ms())
}

/// Queues an invocation at `node`.
pub fn submit(node: &PodNode, (e, a): (Entry, Attachments)) -> Result<oneshot::Receiver<Committed>, String> {
    node.submit_with(e, a).map_err(|r| r.to_string())
}

/// Deploys the `probe` applet through `nodes[0]` unless it is deployed, and waits until every node of `nodes`
/// has committed it.
pub async fn deploy_probe(nodes: &[PodNode]) {
    if nodes[0].rules().is_some_and(|r| r.applets.contains_key("probe")) {
        return;
    }
    let (e, a) = pod::local::deployment(&pod::local::probe(), pod::local::PROBE_CODE);
    let rx = nodes[0].submit_with(pod::local::approved("test-pod", e), a).expect("the deployment is queued");
    let c = tokio::time::timeout(Duration::from_secs(60), rx).await.expect("deployed in time").expect("deployed");
    for n in nodes {
        let mut tip = n.tip();
        tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.size > c.index))
            .await
            .expect("every node commits the deployment")
            .unwrap();
    }
}

/// Configs of an `n`-node pod whose data lives under `dir`.
pub fn configs(n: usize, dir: &Path) -> Vec<PodConfig> {
    sigil_pod::local::configs("test-pod", n, dir)
}

/// Logs to the test's output when `SIGIL_LOG` is set (e.g. `SIGIL_LOG=info,sigil_pod=debug`).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("SIGIL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_test_writer()
            .try_init();
    }
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
    let mut file = sigil::config::NodeFile::of(cfg);
    file.api = Some(sigil::config::Api { listen: format!("127.0.0.1:{api_port}"), cert: None, key: None });
    file.labels.insert("cloud".into(), "local".into());
    file.write_beside(cfg).unwrap()
}

/// Writes node `cfg`'s configuration (identity, genesis, TOML) under its data directory's parent.
pub fn write_config(cfg: &PodConfig) -> std::path::PathBuf {
    sigil::config::NodeFile::of(cfg).write_beside(cfg).unwrap()
}

impl ProcessNode {
    pub fn spawn(config: &std::path::Path) -> ProcessNode {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
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

/// A TCP link between two nodes through a proxy on 127.0.0.1 that the test can cut and restore.
#[derive(Clone)]
pub struct Link {
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Link {
    /// Starts a proxy forwarding to 127.0.0.1:`target`; returns its port.
    pub async fn start(target: u16) -> (u16, Link) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let link = Link { cut: Default::default(), tasks: Default::default() };
        let l = link.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if l.is_cut() {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut tasks = l.tasks.lock().unwrap();
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
        });
        (port, link)
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops every connection through the link and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Configs of an `n`-node pod in which node i reaches node j only through `links[i][j]`.
pub async fn configs_with_links(n: usize, dir: &Path) -> (Vec<PodConfig>, Vec<Vec<Option<Link>>>) {
    let mut cfgs = configs(n, dir);
    let ports: Vec<u16> = cfgs.iter().map(|c| c.listen.rsplit('/').next().unwrap().parse().unwrap()).collect();
    let mut links = vec![vec![None; n]; n];
    for i in 0..n {
        let mut peers = Vec::new();
        for j in (0..n).filter(|j| *j != i) {
            let (port, link) = Link::start(ports[j]).await;
            peers.push(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", pod::peer_id(&seed(j))));
            links[i][j] = Some(link);
        }
        cfgs[i].peers = peers;
    }
    (cfgs, links)
}

pub fn tempdir() -> TempDir {
    TempDir::new()
}

/// A directory removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sigil-pod-{}-{n}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
