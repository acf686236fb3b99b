//! What the `pod` and `api` benches share: the probe entry, the closed loop that drives the consensus path, and
//! percentiles.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_ledger::Entry;
use sigil_pod::Attachments;
use sigil_pod::{local, testing, PodNode};
use tokio::sync::Semaphore;

/// Entries in flight at once (submitted, not yet committed), over the whole pod.
pub const WINDOW: usize = 4096;

pub use sigil_primitives::clock::now_ms;

/// An invocation of the `probe` applet as validators see it: the entry, the executor's signature, and the
/// caller's signed request (a second signature every validator verifies) with an empty write set.
pub fn entry(executor: usize, n: u64) -> (Entry, Attachments) {
    testing::probe_invocation("bench-pod", &local::name(executor), 0, &testing::CALLER_SEED, n, now_ms())
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

/// A closed loop for `secs`: probe entries numbered from `first`, submitted round-robin to `nodes` (each signs
/// what it executed), WINDOW in flight. Returns the sorted submit→commit latencies and the seconds it ran.
pub async fn closed_loop(nodes: &[&PodNode], secs: f64, first: u64) -> (Vec<Duration>, f64) {
    let lat = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let window = Arc::new(Semaphore::new(WINDOW));
    let t0 = Instant::now();
    let mut k = first;
    let mut tasks = Vec::new();
    while t0.elapsed().as_secs_f64() < secs {
        let permit = window.clone().acquire_owned().await.unwrap();
        let i = (k % nodes.len() as u64) as usize;
        let submitted = Instant::now();
        let (e, a) = entry(i, k);
        let rx = nodes[i].submit_with(e, a).expect("queued");
        let lat = lat.clone();
        tasks.push(tokio::spawn(async move {
            if rx.await.is_ok() {
                lat.lock().unwrap().push(submitted.elapsed());
            }
            drop(permit);
        }));
        k += 1;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    for t in tasks {
        t.abort();
    }
    let mut l = lat.lock().unwrap().clone();
    l.sort();
    (l, elapsed)
}
