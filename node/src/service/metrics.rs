//! Prometheus metrics of a node, in the text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A monotonic counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram.
#[derive(Default)]
pub struct Histogram {
    inner: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut h = self.inner.lock().expect("not poisoned");
        if h.0.is_empty() {
            h.0 = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.0[i] += 1;
            }
        }
        h.1 += s;
        h.2 += 1;
    }

    fn render(&self, name: &str, out: &mut String) {
        let h = self.inner.lock().expect("not poisoned");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", h.0.get(i).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.2);
        let _ = writeln!(out, "{name}_sum {}", h.1);
        let _ = writeln!(out, "{name}_count {}", h.2);
    }
}

/// The node's metrics.
#[derive(Default)]
pub struct Metrics {
    /// Invocations committed, by outcome kind.
    pub invocations: Mutex<BTreeMap<String, u64>>,
    /// Requests refused (each audited).
    pub rejected: Counter,
    /// Requests for another pod.
    pub redirected: Counter,
    /// HTTP requests, by route and status.
    pub http: Mutex<BTreeMap<(String, u16), u64>>,
    /// Request receipt to committed receipt.
    pub invoke_latency: Histogram,
}

impl Metrics {
    /// Records a committed invocation.
    pub fn invoked(&self, outcome: &str, took: Duration) {
        let kind = outcome.split(':').next().unwrap_or(outcome).to_string();
        *self.invocations.lock().expect("not poisoned").entry(kind).or_default() += 1;
        self.invoke_latency.observe(took);
    }

    /// Records an HTTP response.
    pub fn http(&self, route: &str, status: u16) {
        *self.http.lock().expect("not poisoned").entry((route.to_string(), status)).or_default() += 1;
    }

    /// The exposition text, with the pod gauges given.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out.push_str("# HELP sigil_invocations_total Invocations committed, by outcome.\n");
        out.push_str("# TYPE sigil_invocations_total counter\n");
        for (k, v) in self.invocations.lock().expect("not poisoned").iter() {
            let _ = writeln!(out, "sigil_invocations_total{{outcome=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP sigil_requests_rejected_total Requests refused (each audited).\n# TYPE sigil_requests_rejected_total counter\nsigil_requests_rejected_total {}",
            self.rejected.get()
        );
        let _ = writeln!(
            out,
            "# HELP sigil_requests_redirected_total Requests for another pod, redirected.\n# TYPE sigil_requests_redirected_total counter\nsigil_requests_redirected_total {}",
            self.redirected.get()
        );
        out.push_str("# HELP sigil_http_responses_total HTTP responses, by route and status.\n");
        out.push_str("# TYPE sigil_http_responses_total counter\n");
        for ((route, status), v) in self.http.lock().expect("not poisoned").iter() {
            let _ = writeln!(out, "sigil_http_responses_total{{route=\"{route}\",status=\"{status}\"}} {v}");
        }
        out.push_str("# HELP sigil_invoke_seconds From a signed request's arrival to its committed receipt.\n");
        out.push_str("# TYPE sigil_invoke_seconds histogram\n");
        self.invoke_latency.render("sigil_invoke_seconds", &mut out);
        out
    }
}
