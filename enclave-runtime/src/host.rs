//! The host side of the applet ABI: per-invocation [`Host`] state and the [`linker`] with every import.
//!
//! Every function checks its capability at call time; a missing grant stops the run with [`HostStop::Denied`]
//! (the outcome `denied`), so the attempt is visible in the receipt. Guest pointers are bounds-checked; a bad one
//! stops the run with [`HostStop::Abi`].

use std::sync::Arc;
use std::time::Instant;

use sigil_primitives::Hash;
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use crate::egress::{Egress, EgressError};
use crate::manifest::{KvAccess, Limits, Manifest};
use crate::runtime::LogLine;
use crate::state::{list_hash, State, WriteSet, ABSENT, MAX_LIST};

/// Most log lines kept per invocation, and most bytes in all.
const MAX_LOG_LINES: usize = 100;
const MAX_LOG_BYTES: usize = 16 << 10;
/// Most bytes of stdout/stderr kept (they go into trap messages, never anywhere else).
const MAX_DIAGNOSTICS: usize = 4 << 10;
/// Longest namespace and key.
const MAX_KEY: usize = 1 << 10;
const MAX_VALUE: usize = 1 << 20;

/// Why the host stopped a run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostStop {
    #[error("{0}")]
    Denied(String),
    #[error("applet broke the host ABI: {0}")]
    Abi(String),
    #[error("applet exited with code {0}")]
    Exit(i32),
    #[error("{0}")]
    Limit(String),
}

fn stop(s: HostStop) -> wasmtime::Error {
    wasmtime::Error::new(s)
}

/// Per-invocation host state (the store's data).
pub(crate) struct Host {
    pub manifest: Arc<Manifest>,
    pub memory: Option<Memory>,
    pub input: Vec<u8>,
    pub caller: [u8; 32],
    pub output: Vec<u8>,
    pub result: Vec<u8>,
    pub state: Arc<dyn State>,
    pub write_set: WriteSet,
    pub writes: u64,
    /// Bytes of state this invocation made the host hold or hand it: values and keys in its write set, keys it
    /// read, values and listings returned. Bounded by the applet's memory limit (see [`charge`]).
    pub state_bytes: u64,
    pub logs: Vec<LogLine>,
    pub log_bytes: usize,
    pub diagnostics: Vec<u8>,
    pub now_ms: u64,
    pub seed: Hash,
    pub random_counter: u64,
    pub http_budget: u64,
    pub tls: Arc<rustls::ClientConfig>,
    pub deadline: Instant,
    pub memory_limit: usize,
    pub memory_hit: bool,
}

impl Host {
    pub fn limits(&self) -> &Limits {
        &self.manifest.limits
    }
}

impl ResourceLimiter for Host {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Guest memory and host state together.
fn split<'a>(caller: &'a mut Caller<'_, Host>) -> wasmtime::Result<(&'a mut [u8], &'a mut Host)> {
    let mem = caller.data().memory.ok_or_else(|| stop(HostStop::Abi("module has no memory export".into())))?;
    Ok(mem.data_and_store_mut(caller))
}

fn range(mem: &[u8], ptr: i32, len: i32) -> wasmtime::Result<std::ops::Range<usize>> {
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    if len < 0 || p.checked_add(l).is_none_or(|end| end > mem.len()) {
        return Err(stop(HostStop::Abi(format!("pointer {p:#x}+{l} is outside linear memory ({} bytes)", mem.len()))));
    }
    Ok(p..p + l)
}

fn bytes(mem: &[u8], ptr: i32, len: i32, max: usize, what: &str) -> wasmtime::Result<Vec<u8>> {
    if len as u32 as usize > max {
        return Err(stop(HostStop::Limit(format!("{what} of {} bytes exceeds {max}", len as u32))));
    }
    Ok(mem[range(mem, ptr, len)?].to_vec())
}

fn text(mem: &[u8], ptr: i32, len: i32, max: usize, what: &str) -> wasmtime::Result<String> {
    String::from_utf8(bytes(mem, ptr, len, max, what)?).map_err(|_| stop(HostStop::Abi(format!("{what} is not UTF-8"))))
}

fn kv_check(host: &Host, ns: &str, write: bool) -> wasmtime::Result<()> {
    match host.manifest.kv_access(ns) {
        Some(KvAccess::ReadWrite) => Ok(()),
        Some(KvAccess::Read) if !write => Ok(()),
        Some(KvAccess::Read) => Err(stop(HostStop::Denied(format!(
            "capability kv: namespace {ns:?} is granted read-only; the applet tried to write"
        )))),
        None => Err(stop(HostStop::Denied(format!(
            "capability kv: namespace {ns:?} is not granted to applet {}",
            host.manifest.name
        )))),
    }
}

fn denied(cap: &str, host: &Host) -> wasmtime::Error {
    stop(HostStop::Denied(format!("capability {cap} is not granted to applet {}", host.manifest.name)))
}

/// The next `n` bytes of the per-invocation generator: SHA-256(seed ‖ counter) blocks.
fn random_bytes(host: &mut Host, out: &mut [u8]) {
    for chunk in out.chunks_mut(32) {
        let mut block = [0u8; 40];
        block[..32].copy_from_slice(host.seed.as_bytes());
        block[32..].copy_from_slice(&host.random_counter.to_be_bytes());
        host.random_counter += 1;
        chunk.copy_from_slice(&Hash::digest(&block).as_bytes()[..chunk.len()]);
    }
}

/// Builds the linker with every import the host provides.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Host>> {
    let mut l = Linker::new(engine);
    let s = "sigil";

    l.func_wrap(s, "input_len", |c: Caller<'_, Host>| c.data().input.len() as i32)?;
    l.func_wrap(s, "input_read", |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let (mem, h) = split(&mut c)?;
        copy_out(mem, ptr, len, &h.input)
    })?;
    l.func_wrap(s, "caller_read", |mut c: Caller<'_, Host>, ptr: i32| -> wasmtime::Result<()> {
        let (mem, h) = split(&mut c)?;
        copy_out(mem, ptr, 32, &h.caller)
    })?;
    l.func_wrap(s, "output_write", |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let (mem, h) = split(&mut c)?;
        let max = h.limits().max_output_bytes as usize;
        h.output = bytes(mem, ptr, len, max, "output")?;
        Ok(())
    })?;
    l.func_wrap(s, "result_read", |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let (mem, h) = split(&mut c)?;
        copy_out(mem, ptr, len, &h.result)
    })?;

    l.func_wrap(
        s,
        "kv_get",
        |mut c: Caller<'_, Host>, nsp: i32, nsl: i32, kp: i32, kl: i32| -> wasmtime::Result<i64> {
            let (mem, h) = split(&mut c)?;
            let id = ns_key(mem, nsp, nsl, kp, kl)?;
            kv_check(h, &id.0, false)?;
            charge(h, id.0.len() + id.1.len())?;
            Ok(match current(h, &id) {
                Some(v) => {
                    charge(h, v.len())?;
                    h.result = v;
                    h.result.len() as i64
                }
                None => -1,
            })
        },
    )?;
    l.func_wrap(
        s,
        "kv_put",
        |mut c: Caller<'_, Host>, nsp: i32, nsl: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> wasmtime::Result<()> {
            let (mem, h) = split(&mut c)?;
            let (ns, key) = ns_key(mem, nsp, nsl, kp, kl)?;
            let value = bytes(mem, vp, vl, MAX_VALUE, "value")?;
            kv_check(h, &ns, true)?;
            write(h, ns, key, Some(value))
        },
    )?;
    l.func_wrap(
        s,
        "kv_delete",
        |mut c: Caller<'_, Host>, nsp: i32, nsl: i32, kp: i32, kl: i32| -> wasmtime::Result<i32> {
            let (mem, h) = split(&mut c)?;
            let id = ns_key(mem, nsp, nsl, kp, kl)?;
            kv_check(h, &id.0, true)?;
            let existed = current(h, &id).is_some();
            write(h, id.0, id.1, None)?;
            Ok(existed as i32)
        },
    )?;
    l.func_wrap(
        s,
        "kv_list",
        |mut c: Caller<'_, Host>, nsp: i32, nsl: i32, pp: i32, pl: i32| -> wasmtime::Result<i64> {
            let (mem, h) = split(&mut c)?;
            let ns = text(mem, nsp, nsl, 64, "namespace")?;
            let prefix = bytes(mem, pp, pl, MAX_KEY, "prefix")?;
            kv_check(h, &ns, false)?;
            charge(h, ns.len() + prefix.len())?;
            let from_state = h.state.list(&ns, &prefix, MAX_LIST);
            h.write_set.lists.insert((ns.clone(), prefix.clone()), list_hash(&from_state));
            let mut keys: std::collections::BTreeSet<Vec<u8>> = from_state.into_iter().collect();
            for ((wns, k), v) in &h.write_set.writes {
                if *wns == ns && k.starts_with(&prefix) {
                    if v.is_some() {
                        keys.insert(k.clone());
                    } else {
                        keys.remove(k);
                    }
                }
            }
            h.result.clear();
            for k in keys.into_iter().take(MAX_LIST) {
                h.result.extend_from_slice(&(k.len() as u32).to_le_bytes());
                h.result.extend_from_slice(&k);
            }
            charge(h, h.result.len())?;
            Ok(h.result.len() as i64)
        },
    )?;

    l.func_wrap(s, "log", |mut c: Caller<'_, Host>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
        let (mem, h) = split(&mut c)?;
        if !h.manifest.capabilities.log {
            return Err(denied("log", h));
        }
        let msg = text(mem, ptr, len, MAX_LOG_BYTES, "log line")?;
        if h.logs.len() < MAX_LOG_LINES && h.log_bytes + msg.len() <= MAX_LOG_BYTES {
            h.log_bytes += msg.len();
            h.logs.push(LogLine { level: level.clamp(0, 3) as u8, message: msg });
        }
        Ok(())
    })?;
    l.func_wrap(s, "clock_ms", |c: Caller<'_, Host>| -> wasmtime::Result<i64> {
        let h = c.data();
        if !h.manifest.capabilities.clock {
            return Err(denied("clock", h));
        }
        Ok(h.now_ms as i64)
    })?;
    l.func_wrap(s, "random_fill", |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
        fill_random(&mut c, ptr, len, "random")
    })?;
    l.func_wrap(
        s,
        "http_request",
        |mut c: Caller<'_, Host>, mp: i32, ml: i32, up: i32, ul: i32, bp: i32, bl: i32| -> wasmtime::Result<i64> {
            let (mem, h) = split(&mut c)?;
            let Some(grant) = h.manifest.capabilities.http.clone() else {
                return Err(denied("http", h));
            };
            let method = text(mem, mp, ml, 16, "HTTP method")?;
            let url = text(mem, up, ul, 8 << 10, "URL")?;
            let body = bytes(mem, bp, bl, MAX_VALUE, "request body")?;
            let egress = Egress::new(&grant.allow, h.limits().max_http_response_bytes, h.tls.clone());
            match egress.request(&method, &url, &body, &mut h.http_budget, h.deadline) {
                Ok(resp) => {
                    h.result = resp.body;
                    Ok(((resp.status as i64) << 32) | h.result.len() as i64)
                }
                Err(EgressError::Denied(why)) => Err(stop(HostStop::Denied(format!("capability http: {why}")))),
                Err(EgressError::Failed(why)) => {
                    h.result = why.into_bytes();
                    Ok(-(h.result.len() as i64) - 1)
                }
            }
        },
    )?;

    // The part of WASI preview 1 that Rust's std imports, each mapped onto the capabilities above. Nothing here
    // reaches a file, a socket or the environment.
    let w = "wasi_snapshot_preview1";
    const ERRNO_SUCCESS: i32 = 0;
    const ERRNO_BADF: i32 = 8;
    const ERRNO_INVAL: i32 = 28;
    // No environment and no arguments: both counts (and sizes) are zero, and there is nothing to copy.
    let none_sizes = |mut c: Caller<'_, Host>, count_ptr: i32, size_ptr: i32| -> wasmtime::Result<i32> {
        let (mem, _) = split(&mut c)?;
        for p in [count_ptr, size_ptr] {
            copy_out(mem, p, 4, &0u32.to_le_bytes())?;
        }
        Ok(ERRNO_SUCCESS)
    };
    let none = |_: Caller<'_, Host>, _: i32, _: i32| ERRNO_SUCCESS;
    l.func_wrap(w, "environ_sizes_get", none_sizes)?;
    l.func_wrap(w, "args_sizes_get", none_sizes)?;
    l.func_wrap(w, "environ_get", none)?;
    l.func_wrap(w, "args_get", none)?;
    l.func_wrap(w, "sched_yield", |_: Caller<'_, Host>| ERRNO_SUCCESS)?;
    l.func_wrap(w, "proc_exit", |_: Caller<'_, Host>, code: i32| -> wasmtime::Result<()> {
        Err(stop(HostStop::Exit(code)))
    })?;
    l.func_wrap(
        w,
        "fd_write",
        |mut c: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, nwritten: i32| -> wasmtime::Result<i32> {
            // stdout and stderr go to a small buffer that only ends up in a trap's message (e.g. a panic's text).
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let (mem, h) = split(&mut c)?;
            if !(0..=1024).contains(&n) {
                return Ok(ERRNO_INVAL);
            }
            let mut total: u32 = 0;
            for i in 0..n {
                let r = range(mem, iovs.wrapping_add(i * 8), 8)?;
                let ptr = i32::from_le_bytes(mem[r.start..r.start + 4].try_into().expect("4 bytes"));
                let len = i32::from_le_bytes(mem[r.start + 4..r.end].try_into().expect("4 bytes"));
                let data = &mem[range(mem, ptr, len)?];
                let room = MAX_DIAGNOSTICS.saturating_sub(h.diagnostics.len());
                h.diagnostics.extend_from_slice(&data[..data.len().min(room)]);
                total = total.wrapping_add(len as u32);
            }
            let r = range(mem, nwritten, 4)?;
            mem[r].copy_from_slice(&total.to_le_bytes());
            Ok(ERRNO_SUCCESS)
        },
    )?;
    l.func_wrap(w, "random_get", |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
        fill_random(&mut c, ptr, len, "random (via WASI random_get)").map(|()| ERRNO_SUCCESS)
    })?;
    l.func_wrap(
        w,
        "clock_time_get",
        |mut c: Caller<'_, Host>, _id: i32, _precision: i64, out: i32| -> wasmtime::Result<i32> {
            let (mem, h) = split(&mut c)?;
            if !h.manifest.capabilities.clock {
                return Err(denied("clock (via WASI clock_time_get)", h));
            }
            let r = range(mem, out, 8)?;
            mem[r].copy_from_slice(&(h.now_ms.saturating_mul(1_000_000)).to_le_bytes());
            Ok(ERRNO_SUCCESS)
        },
    )?;
    Ok(l)
}

/// Copies up to `len` bytes of `src` (all of it, if shorter) to guest memory at `ptr`.
fn copy_out(mem: &mut [u8], ptr: i32, len: i32, src: &[u8]) -> wasmtime::Result<()> {
    let n = (len.max(0) as usize).min(src.len());
    let r = range(mem, ptr, n as i32)?;
    mem[r].copy_from_slice(&src[..n]);
    Ok(())
}

/// Fills guest memory at `ptr..ptr+len` from the run's generator, if the applet has the `random` capability (`cap`
/// names the import in the denial).
fn fill_random(c: &mut Caller<'_, Host>, ptr: i32, len: i32, cap: &str) -> wasmtime::Result<()> {
    let (mem, h) = split(c)?;
    if !h.manifest.capabilities.random {
        return Err(denied(cap, h));
    }
    let r = range(mem, ptr, len)?;
    random_bytes(h, &mut mem[r]);
    Ok(())
}

/// The namespace and key an import names.
fn ns_key(mem: &[u8], nsp: i32, nsl: i32, kp: i32, kl: i32) -> wasmtime::Result<(String, Vec<u8>)> {
    Ok((text(mem, nsp, nsl, 64, "namespace")?, bytes(mem, kp, kl, MAX_KEY, "key")?))
}

/// The value the run sees at `id`: its own write if it made one, else the state's, whose version is recorded as
/// read (once, the first time).
fn current(h: &mut Host, id: &(String, Vec<u8>)) -> Option<Vec<u8>> {
    if let Some(own) = h.write_set.writes.get(id) {
        return own.clone();
    }
    let got = h.state.get(&id.0, &id.1);
    h.write_set.reads.entry(id.clone()).or_insert(got.as_ref().map_or(ABSENT, |(_, v)| *v));
    got.map(|(v, _)| v)
}

fn write(h: &mut Host, ns: String, key: Vec<u8>, value: Option<Vec<u8>>) -> wasmtime::Result<()> {
    if !h.write_set.writes.contains_key(&(ns.clone(), key.clone())) {
        h.writes += 1;
        if h.writes > h.limits().max_writes {
            return Err(stop(HostStop::Limit(format!("more than {} key-value writes", h.limits().max_writes))));
        }
        charge(h, ns.len() + key.len())?;
    }
    // Every value written counts, overwritten or not: the budget is what the applet made the host copy.
    charge(h, value.as_ref().map_or(0, Vec::len))?;
    h.write_set.writes.insert((ns, key), value);
    Ok(())
}

/// Counts `n` more bytes of state against the invocation's budget: as many bytes as the applet's own memory limit
/// (`limits.memory_bytes`), so an applet cannot make the host hold or copy more than it may hold itself (a
/// thousand 1 MiB writes, or a loop of reads and listings, against a 16 MiB guest).
fn charge(h: &mut Host, n: usize) -> wasmtime::Result<()> {
    h.state_bytes = h.state_bytes.saturating_add(n as u64);
    let max = h.limits().memory_bytes;
    if h.state_bytes > max {
        return Err(stop(HostStop::Limit(format!(
            "more than {max} bytes of state read and written (limits.memory_bytes)"
        ))));
    }
    Ok(())
}

/// The imports the host provides, by module: anything else is refused at load time with the reason.
pub(crate) const PROVIDED: &[(&str, &[&str])] = &[
    (
        "sigil",
        &[
            "input_len",
            "input_read",
            "caller_read",
            "output_write",
            "result_read",
            "kv_get",
            "kv_put",
            "kv_delete",
            "kv_list",
            "log",
            "clock_ms",
            "random_fill",
            "http_request",
        ],
    ),
    (
        "wasi_snapshot_preview1",
        &[
            "environ_sizes_get",
            "environ_get",
            "args_sizes_get",
            "args_get",
            "sched_yield",
            "proc_exit",
            "fd_write",
            "random_get",
            "clock_time_get",
        ],
    ),
];
