//! The runtime: one wasmtime engine (pooling allocator, fuel, epoch deadlines, NaN canonicalisation), applets
//! pre-instantiated and cached by code digest, and invocations that always end in an [`Outcome`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sigil_primitives::Hash;
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Module, ModuleExport, PoolingAllocationConfig,
    Store, Trap, ValType,
};

use crate::host::{linker, Host, HostStop, PROVIDED};
use crate::manifest::Manifest;
use crate::state::{State, WriteSet};
use crate::RuntimeError;

/// Runtime-wide settings: the ceilings no manifest can raise.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Instances that may run at once (pool slots).
    pub max_instances: u32,
    /// Largest linear memory of any applet, bytes.
    pub max_memory_bytes: u64,
    /// Most fuel any invocation gets.
    pub max_fuel: u64,
    /// Longest deadline any invocation gets.
    pub max_deadline: Duration,
    /// Epoch tick: deadlines are enforced to this granularity.
    pub epoch_tick: Duration,
    /// Wasm stack, bytes.
    pub max_wasm_stack: usize,
    /// Trust roots for HTTPS egress (DER certificates); `None`: Mozilla's, from webpki-roots.
    pub egress_roots: Option<Vec<Vec<u8>>>,
    /// Most bytes of loaded applets (their wasm and compiled code) kept for reuse; the least recently used are
    /// dropped first. An applet larger than this is loaded for its call and not kept.
    pub max_cached_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 64,
            max_memory_bytes: 256 << 20,
            max_fuel: 10_000_000_000,
            max_deadline: Duration::from_secs(30),
            epoch_tick: Duration::from_millis(5),
            max_wasm_stack: 512 << 10,
            egress_roots: None,
            max_cached_bytes: 256 << 20,
        }
    }
}

/// One invocation's inputs: everything an auditor needs (with the state read) to replay it.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// SHA-256 of the signed request (it also seeds the applet's `random`).
    pub request_hash: Hash,
    /// The caller's Ed25519 key (already verified by the node).
    pub caller: [u8; 32],
    /// Method.
    pub method: &'a str,
    /// Input (the request's arguments).
    pub input: &'a [u8],
    /// The clock the applet sees, Unix milliseconds; recorded in the receipt.
    pub now_ms: u64,
}

/// Longest message an [`Outcome`] carries.
pub const MAX_OUTCOME_MESSAGE: usize = 512;

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to completion; its write set may be committed.
    Ok,
    /// The applet reported an error (its message is the output); writes discarded.
    Error(String),
    /// A wasm trap (panic, unreachable, out-of-bounds access, stack overflow, exit, ABI misuse).
    Trapped(String),
    /// Used all its fuel.
    OutOfFuel,
    /// Tried to grow memory past its limit.
    OutOfMemory,
    /// Called a capability it was not granted, or broke a limit on one (message says which).
    Denied(String),
    /// Ran past its wall-clock deadline.
    Deadline,
}

impl Outcome {
    /// The short name: `ok`, `error`, `trapped`, `out_of_fuel`, `out_of_memory`, `denied`, `deadline`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::Trapped(_) => "trapped",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::Denied(_) => "denied",
            Outcome::Deadline => "deadline",
        }
    }

    /// The same outcome with its message cut to [`MAX_OUTCOME_MESSAGE`] bytes: the message goes into every
    /// receipt and ledger entry, the full text of an `error` stays in the output.
    fn clipped(self) -> Outcome {
        let clip = |mut m: String| {
            if m.len() > MAX_OUTCOME_MESSAGE {
                let mut end = MAX_OUTCOME_MESSAGE;
                while !m.is_char_boundary(end) {
                    end -= 1;
                }
                m.truncate(end);
                m.push('…');
            }
            m
        };
        match self {
            Outcome::Error(m) => Outcome::Error(clip(m)),
            Outcome::Trapped(m) => Outcome::Trapped(clip(m)),
            Outcome::Denied(m) => Outcome::Denied(clip(m)),
            o => o,
        }
    }

    /// Whether the run completed (`ok`).
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

impl fmt::Display for Outcome {
    /// The receipt's `outcome` string: the kind, then `: message` where there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Error(m) | Outcome::Trapped(m) | Outcome::Denied(m) => write!(f, "{}: {m}", self.kind()),
            _ => f.write_str(self.kind()),
        }
    }
}

/// A log line an applet wrote (capability `log`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// 0 debug, 1 info, 2 warn, 3 error.
    pub level: u8,
    /// Text.
    pub message: String,
}

/// The receipt fields of one execution, ready for the node to sign and the ledger to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptFields {
    /// SHA-256 of the signed request.
    pub request_hash: Hash,
    /// SHA-256 of the wasm module that ran.
    pub code_digest: Hash,
    /// SHA-256 of the input.
    pub input_hash: Hash,
    /// SHA-256 of the output.
    pub output_hash: Hash,
    /// SHA-256 of the write set's canonical encoding (of the empty write set unless the outcome is `ok`).
    pub write_set_hash: Hash,
    /// The outcome string.
    pub outcome: String,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// The clock the applet saw.
    pub at_ms: u64,
}

/// The result of one invocation.
#[derive(Clone, Debug)]
pub struct Execution {
    /// How it ended.
    pub outcome: Outcome,
    /// The output (the error message for `error`; empty for other failures).
    pub output: Vec<u8>,
    /// Reads, listings and writes (no writes unless `ok`: a failed run changes nothing, but what it read is kept).
    pub write_set: WriteSet,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Log lines (capability `log`).
    pub logs: Vec<LogLine>,
    /// Receipt fields.
    pub receipt: ReceiptFields,
}

/// A loaded applet: its manifest and pre-instantiated module. Cheap to clone.
#[derive(Clone)]
pub struct Applet {
    inner: Arc<Loaded>,
}

struct Loaded {
    manifest: Arc<Manifest>,
    pre: InstancePre<Host>,
    memory: ModuleExport,
    methods: HashMap<String, ModuleExport>,
    initialize: Option<ModuleExport>,
}

impl Applet {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }
}

/// Loaded applets, bounded by the bytes of their wasm and compiled code: the least recently used go first, so
/// whoever can load applets (members deploying, callers of deployed applets) cannot grow the node's memory
/// without bound.
struct AppletCache {
    map: HashMap<(Hash, Hash), (Applet, usize, u64)>,
    bytes: usize,
    limit: usize,
    clock: u64,
}

impl AppletCache {
    fn new(limit: usize) -> AppletCache {
        AppletCache { map: HashMap::new(), bytes: 0, limit, clock: 0 }
    }

    fn get(&mut self, key: &(Hash, Hash)) -> Option<Applet> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|(a, _, used)| {
            *used = clock;
            a.clone()
        })
    }

    fn insert(&mut self, key: (Hash, Hash), applet: Applet, bytes: usize) {
        if bytes > self.limit || self.map.contains_key(&key) {
            return;
        }
        self.clock += 1;
        self.map.insert(key, (applet, bytes, self.clock));
        self.bytes += bytes;
        while self.bytes > self.limit {
            let Some(oldest) = self.map.iter().min_by_key(|(_, (_, _, used))| *used).map(|(k, _)| *k) else { break };
            if let Some((_, b, _)) = self.map.remove(&oldest) {
                self.bytes -= b;
            }
        }
    }
}

/// The applet host. One per node; share it (`&Runtime`) across threads.
pub struct Runtime {
    engine: Engine,
    linker: wasmtime::Linker<Host>,
    config: RuntimeConfig,
    /// Loaded applets by (code digest, manifest digest), bounded by bytes.
    cache: Mutex<AppletCache>,
    stop: Arc<AtomicBool>,
    tls: Arc<rustls::ClientConfig>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine and starts its epoch ticker (a thread that ends when the runtime is dropped).
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine_err = |e: wasmtime::Error| RuntimeError::Engine(e.to_string());
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(100_000)
            .max_memory_size(config.max_memory_bytes as usize);
        let mut c = Config::new();
        // Trap messages are on the record and compared by validators that re-execute: no source locations, whatever
        // WASMTIME_BACKTRACE_DETAILS says on this host.
        c.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
        c.consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .max_wasm_stack(config.max_wasm_stack)
            .wasm_relaxed_simd(false)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&c).map_err(engine_err)?;
        let linker = linker(&engine).map_err(engine_err)?;
        let tls = crate::egress::tls_config(config.egress_roots.as_deref()).map_err(RuntimeError::Engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let max_cached_bytes = config.max_cached_bytes;
        let (ticker, flag, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
        std::thread::Builder::new()
            .name("sigil-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime { engine, linker, config, cache: Mutex::new(AppletCache::new(max_cached_bytes)), stop, tls })
    }

    /// The engine, for baselines and tools that must run with exactly the runtime's settings.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Loads `wasm` under `manifest`: checks the digest, the manifest, every import (only what the host provides)
    /// and every method export, compiles, and pre-instantiates. Cached by (code digest, manifest digest).
    pub fn load(&self, manifest: &Manifest, wasm: &[u8]) -> Result<Applet, RuntimeError> {
        let digest = Hash::digest(wasm);
        if digest != manifest.code_digest {
            return Err(RuntimeError::DigestMismatch { manifest: manifest.code_digest, module: digest });
        }
        manifest.validate()?;
        let key = (digest, manifest.digest());
        if let Some(a) = self.cache.lock().expect("cache lock").get(&key) {
            return Ok(a);
        }
        if manifest.limits.memory_bytes > self.config.max_memory_bytes {
            return Err(RuntimeError::Manifest(format!(
                "limits.memory_bytes {} exceeds this node's maximum {}",
                manifest.limits.memory_bytes, self.config.max_memory_bytes
            )));
        }
        let module = Module::new(&self.engine, wasm).map_err(|e| RuntimeError::Module(format!("{e:#}")))?;
        for imp in module.imports() {
            let provided = PROVIDED.iter().any(|(m, names)| *m == imp.module() && names.contains(&imp.name()));
            if !provided {
                return Err(RuntimeError::Module(format!(
                    "imports {}::{}, which the Sigil host does not provide (applets get no files, sockets, \
                     environment or other ambient authority; see docs/applets.md for the ABI)",
                    imp.module(),
                    imp.name()
                )));
            }
        }
        let memory = match module.get_export("memory") {
            Some(ExternType::Memory(_)) => module.get_export_index("memory").expect("export exists"),
            _ => return Err(RuntimeError::Module("the module must export its linear memory as \"memory\"".into())),
        };
        let mut methods = HashMap::new();
        for m in &manifest.methods {
            let name = format!("sigil:{}", m.name);
            match module.get_export(&name) {
                Some(ExternType::Func(f))
                    if f.params().len() == 0 && f.results().map(|r| r.matches(&ValType::I32)).eq([true]) => {}
                Some(_) => return Err(RuntimeError::Module(format!("export {name:?} must be a function () -> i32"))),
                None => {
                    return Err(RuntimeError::Module(format!(
                        "method {:?} is in the manifest but the module exports no {name:?}",
                        m.name
                    )))
                }
            }
            methods.insert(m.name.clone(), module.get_export_index(&name).expect("export exists"));
        }
        let initialize = match module.get_export("_initialize") {
            Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {
                module.get_export_index("_initialize")
            }
            Some(_) => return Err(RuntimeError::Module("export \"_initialize\" must be a function () -> ()".into())),
            None => None,
        };
        let pre = self.linker.instantiate_pre(&module).map_err(|e| RuntimeError::Module(format!("{e:#}")))?;
        let applet = Applet {
            inner: Arc::new(Loaded { manifest: Arc::new(manifest.clone()), pre, memory, methods, initialize }),
        };
        let image = module.image_range();
        let bytes = wasm.len() + (image.end as usize).saturating_sub(image.start as usize);
        self.cache.lock().expect("cache lock").insert(key, applet.clone(), bytes);
        Ok(applet)
    }

    /// The applet `manifest` names, if it is loaded (see [`Runtime::load`]): no code needed.
    pub fn cached(&self, manifest: &Manifest) -> Option<Applet> {
        self.cache.lock().expect("cache lock").get(&(manifest.code_digest, manifest.digest()))
    }

    /// Bytes of the loaded applets kept, and how many.
    pub fn cached_bytes(&self) -> (usize, usize) {
        let c = self.cache.lock().expect("cache lock");
        (c.bytes, c.map.len())
    }

    /// Runs `call` on `applet` against `state`. Refusals (unknown method, caller not in the access rules, input too
    /// large) come back as `Err` before any code runs; everything that happens once the applet starts is an
    /// [`Outcome`] in the returned [`Execution`].
    pub fn invoke(&self, applet: &Applet, call: &Call<'_>, state: Arc<dyn State>) -> Result<Execution, RuntimeError> {
        let loaded = &applet.inner;
        let manifest = &loaded.manifest;
        manifest.authorize(&call.caller, call.method, call.input.len())?;
        let export = &loaded.methods[call.method];
        let limits = &manifest.limits;
        let fuel = limits.fuel.min(self.config.max_fuel);
        let deadline = Duration::from_millis(limits.deadline_ms).min(self.config.max_deadline);
        let mut seed_input = b"sigil-random-v1".to_vec();
        seed_input.extend_from_slice(call.request_hash.as_bytes());
        let host = Host {
            manifest: manifest.clone(),
            memory: None,
            input: call.input.to_vec(),
            caller: call.caller,
            output: Vec::new(),
            result: Vec::new(),
            state,
            write_set: WriteSet::default(),
            writes: 0,
            state_bytes: 0,
            logs: Vec::new(),
            log_bytes: 0,
            diagnostics: Vec::new(),
            now_ms: call.now_ms,
            seed: Hash::digest(&seed_input),
            random_counter: 0,
            http_budget: limits.max_http_requests,
            tls: self.tls.clone(),
            deadline: Instant::now() + deadline,
            memory_limit: limits.memory_bytes as usize,
            memory_hit: false,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| h);
        store.set_fuel(fuel).expect("fuel is enabled");
        let ticks = deadline.as_nanos().div_ceil(self.config.epoch_tick.as_nanos().max(1)) as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let instance = match loaded.pre.instantiate(&mut store) {
            Ok(i) => Ok(i),
            // Refused for the applet's own reasons (a start function trapped, its initial memory exceeds its
            // limit): an outcome like any other.
            Err(e) if e.downcast_ref::<Trap>().is_some() || store.data().memory_hit => Err(e),
            // Not the applet's doing (every pool slot busy, the host out of memory): nothing ran.
            Err(e) => return Err(RuntimeError::Unavailable(format!("{e:#}"))),
        };
        let run = instance.and_then(|instance| {
            let memory = instance
                .get_module_export(&mut store, &loaded.memory)
                .and_then(|e| e.into_memory())
                .expect("checked at load");
            store.data_mut().memory = Some(memory);
            if let Some(init) = &loaded.initialize {
                let f = instance.get_module_export(&mut store, init).and_then(|e| e.into_func()).expect("checked");
                f.typed::<(), ()>(&store)?.call(&mut store, ())?;
            }
            let f = instance.get_module_export(&mut store, export).and_then(|e| e.into_func()).expect("checked");
            f.typed::<(), i32>(&store)?.call(&mut store, ())
        });

        let fuel_used = fuel - store.get_fuel().unwrap_or(0);
        let host = store.into_data();
        let outcome = match &run {
            Ok(0) => Outcome::Ok,
            Ok(_) => Outcome::Error(String::from_utf8_lossy(&host.output).into_owned()),
            Err(e) => classify(e, &host),
        }
        .clipped();
        // A failed run writes nothing, but what it read stays on the record: its outcome can depend on it, and a
        // validator that re-executes it needs the same reads (`sigil_pod::replay`).
        let (output, write_set) = match &outcome {
            Outcome::Ok => (host.output, host.write_set),
            Outcome::Error(_) => (host.output, host.write_set.without_writes()),
            _ => (Vec::new(), host.write_set.without_writes()),
        };
        let receipt = ReceiptFields {
            request_hash: call.request_hash,
            code_digest: manifest.code_digest,
            input_hash: Hash::digest(call.input),
            output_hash: Hash::digest(&output),
            write_set_hash: write_set.hash(),
            outcome: outcome.to_string(),
            fuel_used,
            at_ms: call.now_ms,
        };
        Ok(Execution { outcome, output, write_set, fuel_used, logs: host.logs, receipt })
    }
}

fn classify(e: &wasmtime::Error, host: &Host) -> Outcome {
    if let Some(s) = e.downcast_ref::<HostStop>() {
        return match s {
            HostStop::Denied(m) | HostStop::Limit(m) => Outcome::Denied(m.clone()),
            HostStop::Abi(_) | HostStop::Exit(_) => Outcome::Trapped(s.to_string()),
        };
    }
    // What stopped the run decides: an applet that once hit its memory limit, recovered, and then ran out of
    // fuel or time is out of fuel or time.
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return Outcome::OutOfFuel,
        Some(Trap::Interrupt) => return Outcome::Deadline,
        _ => {}
    }
    if host.memory_hit {
        return Outcome::OutOfMemory;
    }
    let diagnostics = String::from_utf8_lossy(&host.diagnostics);
    let said = diagnostics.trim();
    match e.downcast_ref::<Trap>() {
        Some(t) if said.is_empty() => Outcome::Trapped(t.to_string()),
        Some(t) => Outcome::Trapped(format!("{t} ({said})")),
        None => Outcome::Trapped(format!("{e:#}")),
    }
}
