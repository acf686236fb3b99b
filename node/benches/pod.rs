//! Consensus throughput and latency of a pod on this machine: committed entries/s and submit-to-commit p50/p99
//! for signed invocations (entry, executor signature, the caller's signed request), against the same pod committing empty blocks, for 4 and 7 nodes, in one run.
//!
//!   cargo bench -p sigil --bench pod [-- SECONDS]
//!
//! Every node runs in this process on 127.0.0.1 (libp2p over TCP, RocksDB with a synced write per block), all
//! sharing this machine's cores: the numbers are of the whole pod on one host, not of one node.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_pod::{local, testing, PodNode};
use support::{closed_loop, entry, pct, WINDOW};

struct Pod {
    nodes: Vec<PodNode>,
    dir: std::path::PathBuf,
}

async fn pod(n: usize, idle: Duration, tag: &str) -> Pod {
    let dir = std::env::temp_dir().join(format!("sigil-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes = Vec::new();
    for mut cfg in local::configs("bench-pod", n, &dir) {
        cfg.idle_block = idle;
        cfg.idle_interval = Duration::ZERO; // empty blocks back to back: the baseline
        cfg.mempool_capacity = 1_000_000;
        nodes.push(PodNode::start(cfg).await.expect("node starts"));
    }
    // Until the pod commits.
    let mut tip = nodes[0].tip();
    tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.height >= 2))
        .await
        .expect("the pod commits")
        .unwrap();
    let (e, a) = testing::deployment(&testing::probe(), testing::PROBE_CODE, 0);
    let c = nodes[0].submit_with(testing::approved("bench-pod", e), a).expect("queued").await.expect("deployed");
    for node in &nodes {
        let mut tip = node.tip();
        tokio::time::timeout(Duration::from_secs(60), tip.wait_for(|t| t.size > c.index)).await.unwrap().unwrap();
    }
    Pod { nodes, dir }
}

impl Pod {
    async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Empty blocks: heights per second and the interval between commits.
async fn empty(n: usize, secs: f64) -> (f64, Vec<Duration>) {
    let pod = pod(n, Duration::ZERO, "empty").await;
    let mut tip = pod.nodes[0].tip();
    let start_h = tip.borrow().height;
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut gaps = Vec::new();
    while t0.elapsed().as_secs_f64() < secs {
        if tokio::time::timeout(Duration::from_secs(5), tip.changed()).await.is_err() {
            break;
        }
        gaps.push(last.elapsed());
        last = Instant::now();
    }
    let heights = tip.borrow().height - start_h;
    let rate = heights as f64 / t0.elapsed().as_secs_f64();
    pod.stop().await;
    gaps.sort();
    (rate, gaps)
}

/// Loaded: a closed loop of WINDOW entries in flight, submitted round-robin to every node (each signs what it
/// executed). Returns entries/s, heights/s, mean entries per block, latencies.
async fn loaded(n: usize, secs: f64) -> (f64, f64, f64, Vec<Duration>) {
    let pod = pod(n, Duration::from_millis(2), "load").await;
    let start_h = pod.nodes[0].tip().borrow().height;
    let (l, elapsed) = closed_loop(&pod.nodes.iter().collect::<Vec<_>>(), secs, 0).await;
    let done = l.len();
    let heights = pod.nodes[0].tip().borrow().height - start_h;
    pod.stop().await;
    (done as f64 / elapsed, heights as f64 / elapsed, done as f64 / heights.max(1) as f64, l)
}

/// Open loop at `rate` entries/s (paced every millisecond): latency at the target load rather than at
/// saturation. Returns entries/s committed and latencies.
async fn paced(n: usize, rate: f64, secs: f64) -> (f64, Vec<Duration>) {
    let pod = pod(n, Duration::from_millis(2), "paced").await;
    let lat = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let t0 = Instant::now();
    let mut k = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut tasks = Vec::new();
    while t0.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        while k < due {
            let i = (k % n as u64) as usize;
            let submitted = Instant::now();
            let (e, a) = entry(i, k);
            let rx = pod.nodes[i].submit_with(e, a).expect("queued");
            let lat = lat.clone();
            tasks.push(tokio::spawn(async move {
                if rx.await.is_ok() {
                    lat.lock().unwrap().push(submitted.elapsed());
                }
            }));
            k += 1;
        }
    }
    // Let what was submitted in the last second commit, then count.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while lat.lock().unwrap().len() < k as usize {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for t in tasks {
        t.abort();
    }
    let mut l = lat.lock().unwrap().clone();
    l.sort();
    pod.stop().await;
    (l.len() as f64 / secs, l)
}

fn main() {
    let secs: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10.0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (e, a) = entry(0, 0);
    let size = e.encode().len() + 64 + a.len();
    println!(
        "pod consensus on this host ({} cores), {secs} s per measurement, entries {size} bytes with their signatures and request",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    for n in [4usize, 7] {
        let (empty_rate, gaps) = rt.block_on(empty(n, secs));
        let (eps, hps, per_block, lat) = rt.block_on(loaded(n, secs));
        let (paced_eps, paced_lat) = rt.block_on(paced(n, 2000.0, secs));
        println!("{n} nodes:");
        println!(
            "  empty blocks (baseline):   {empty_rate:7.1} blocks/s   commit interval p50 {:6.1} ms  p99 {:6.1} ms",
            pct(&gaps, 0.5),
            pct(&gaps, 0.99)
        );
        println!(
            "  loaded ({WINDOW} in flight):  {hps:7.1} blocks/s   {eps:8.0} entries/s ({per_block:.0} per block)   submit->commit p50 {:6.1} ms  p99 {:6.1} ms  = {:.2}x / {:.2}x the empty-block interval",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 0.5) / pct(&gaps, 0.5),
            pct(&lat, 0.99) / pct(&gaps, 0.99)
        );
        println!(
            "  paced at 2000 entries/s:   {paced_eps:8.0} entries/s committed   submit->commit p50 {:6.1} ms  p99 {:6.1} ms",
            pct(&paced_lat, 0.5),
            pct(&paced_lat, 0.99)
        );
    }
}
