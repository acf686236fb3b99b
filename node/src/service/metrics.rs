//! Prometheus metrics of a node, in the text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Lets one log line through per interval and counts the ones it holds back, so that what a stranger can cause
/// at will (refused garbage) cannot flood the logs.
pub struct LogLimit {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    /// At most one line per `interval`.
    pub fn new(interval: Duration) -> LogLimit {
        LogLimit { interval, state: Mutex::new((None, 0)) }
    }

    /// `Some(n)`: log this one; `n` were held back since the last logged. `None`: hold this one back.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().expect("not poisoned");
        match s.0 {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }
}

/// A token bucket: `rate` per second on average, `burst` at once.
pub struct RateLimit {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Option<Instant>)>,
}

impl RateLimit {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> RateLimit {
        RateLimit { rate, burst, state: Mutex::new((burst, None)) }
    }

    /// Takes a token if there is one.
    pub fn take(&self, now: Instant) -> bool {
        let mut s = self.state.lock().expect("not poisoned");
        if let Some(last) = s.1 {
            s.0 = (s.0 + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        }
        s.1 = Some(now);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A token bucket per key (a caller's): `rate` a second on average, `burst` at once, for at most `cap` keys. Past
/// the cap, keys whose buckets have refilled are forgotten; a new key that still finds no room is not limited (it
/// fails open: keys are free, and a flood of fresh ones must not lock out the callers already counted; the
/// connection caps bound what any source sends). A `rate` of 0 limits nothing.
pub struct PerKey {
    rate: f64,
    burst: f64,
    cap: usize,
    buckets: Mutex<std::collections::HashMap<[u8; 32], (f64, Instant)>>,
}

impl PerKey {
    /// Full buckets for every key.
    pub fn new(rate: f64, burst: f64, cap: usize) -> PerKey {
        PerKey { rate, burst, cap, buckets: Mutex::new(Default::default()) }
    }

    /// Takes a token from `key`'s bucket if there is one.
    pub fn take(&self, key: &[u8; 32], now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        let level = |(tokens, last): &(f64, Instant)| {
            (tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst)
        };
        let mut b = self.buckets.lock().expect("not poisoned");
        if !b.contains_key(key) && b.len() >= self.cap {
            b.retain(|_, v| level(v) < burst);
            if b.len() >= self.cap {
                return true;
            }
        }
        let bucket = b.entry(*key).or_insert((burst, now));
        let tokens = level(bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
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
    /// Requests refused on their caller's record (each audited).
    pub rejected: Counter,
    /// Requests refused that prove no caller (malformed, or a signature that does not verify): not audited.
    pub unauthenticated: Counter,
    /// Refusals of signed requests answered without an audit entry: the request was too large to carry, or this
    /// node was recording refusals faster than its rate.
    pub refusals_not_recorded: Counter,
    /// Requests for another pod.
    pub redirected: Counter,
    /// Connections closed as they arrived: the API's connection caps were reached.
    pub connections_refused: Counter,
    /// Signed requests and reads refused because their key was over its rate (429, not recorded).
    pub rate_limited: Counter,
    /// MCP access tokens not issued because a source held its share, or the node its total.
    pub tokens_refused: Counter,
    /// Request bodies refused (503) because the node held its budget of body bytes in flight.
    pub bodies_refused: Counter,
    /// Reads of the record refused because they proved no key (401).
    pub reads_unauthenticated: Counter,
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
        let counters = [
            (
                "sigil_requests_rejected_total",
                "Requests refused on their caller's record (each audited).",
                &self.rejected,
            ),
            (
                "sigil_requests_unauthenticated_total",
                "Requests refused that prove no caller (not audited).",
                &self.unauthenticated,
            ),
            (
                "sigil_refusals_not_recorded_total",
                "Refusals of signed requests not audited (too large, or over the recording rate).",
                &self.refusals_not_recorded,
            ),
            ("sigil_requests_redirected_total", "Requests for another pod, redirected.", &self.redirected),
            (
                "sigil_connections_refused_total",
                "Connections closed on arrival (connection caps).",
                &self.connections_refused,
            ),
            (
                "sigil_requests_rate_limited_total",
                "Signed requests and reads refused (429, not recorded): their key was over its rate.",
                &self.rate_limited,
            ),
            (
                "sigil_tokens_refused_total",
                "MCP access tokens not issued: the source's share or the node's total of live tokens was reached.",
                &self.tokens_refused,
            ),
            (
                "sigil_bodies_refused_total",
                "Request bodies refused (503): the node held its budget of body bytes in flight.",
                &self.bodies_refused,
            ),
            (
                "sigil_reads_unauthenticated_total",
                "Reads of the audit log, entries or receipts refused (401): no signature or token that proves a key.",
                &self.reads_unauthenticated,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", c.get());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limit_lets_one_line_through_per_interval_and_counts_the_rest() {
        let limit = LogLimit::new(Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(limit.allow(t), Some(0));
        for ms in [1, 10, 999] {
            assert_eq!(limit.allow(t + Duration::from_millis(ms)), None);
        }
        assert_eq!(limit.allow(t + Duration::from_millis(1000)), Some(3), "three held back");
        assert_eq!(limit.allow(t + Duration::from_millis(1500)), None);
        assert_eq!(limit.allow(t + Duration::from_millis(2000)), Some(1));
    }

    #[test]
    fn each_key_has_its_own_bucket_and_a_full_table_fails_open() {
        let limit = PerKey::new(1.0, 2.0, 2);
        let t = Instant::now();
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        assert!(limit.take(&a, t) && limit.take(&a, t), "a's burst");
        assert!(!limit.take(&a, t), "a is over its rate");
        assert!(limit.take(&b, t), "b has its own bucket");
        // The table is full of keys still counting: a third key is not limited, and no key is forgotten.
        assert!((0..5).all(|_| limit.take(&c, t)));
        assert!(!limit.take(&a, t), "a is still counted");
        // Once a's bucket has refilled it can be forgotten to make room.
        let later = t + Duration::from_secs(5);
        assert!(limit.take(&c, later) && limit.take(&c, later) && !limit.take(&c, later), "c is counted now");
        assert!(PerKey::new(0.0, 0.0, 1).take(&a, t), "a rate of 0 limits nothing");
    }

    #[test]
    fn the_rate_limit_allows_its_burst_then_its_rate() {
        let limit = RateLimit::new(10.0, 3.0);
        let t = Instant::now();
        assert!((0..3).all(|_| limit.take(t)), "the burst");
        assert!(!limit.take(t), "then nothing at once");
        assert!(limit.take(t + Duration::from_millis(100)), "one token per 100 ms");
        assert!(!limit.take(t + Duration::from_millis(150)));
        assert!((0..3).all(|_| limit.take(t + Duration::from_secs(10))), "refilled to the burst, no more");
        assert!(!limit.take(t + Duration::from_secs(10)));
    }
}
