//! Invoke latency and throughput of the `hash` applet (built from `applets/hash`), against raw wasmtime in the same
//! run: `InstancePre` instantiate + call of the same module on the runtime's own engine (pooling allocator, fuel,
//! epoch interruption, NaN canonicalisation) with the thinnest host functions that can serve it.
//!
//! Run with `cargo bench -p enclave-runtime --bench invoke` (scripts/bench.sh does). Prints p50/p99 per
//! invocation and the ratio to raw, then invocations/s on one thread with and without signing the receipt.

#[path = "../tests/it/support.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::signature::{Ed25519KeyPair, KeyPair};
use sigil_primitives::Hash;
use sigil_runtime::{Call, MemState, Runtime, RuntimeConfig};
use wasmtime::{Caller, Engine, Linker, Module, Store};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;
const ROUNDS: usize = 3;

struct Raw {
    input: Vec<u8>,
    output: Vec<u8>,
}

fn raw_linker(engine: &Engine) -> Linker<Raw> {
    let mut l = Linker::new(engine);
    let mem = |c: &mut Caller<'_, Raw>| c.get_export("memory").unwrap().into_memory().unwrap();
    l.func_wrap("sigil", "input_len", |c: Caller<'_, Raw>| c.data().input.len() as i32).unwrap();
    l.func_wrap("sigil", "input_read", move |mut c: Caller<'_, Raw>, p: i32, n: i32| {
        let m = mem(&mut c);
        let (d, r) = m.data_and_store_mut(&mut c);
        d[p as usize..p as usize + n as usize].copy_from_slice(&r.input[..n as usize]);
    })
    .unwrap();
    l.func_wrap("sigil", "output_write", move |mut c: Caller<'_, Raw>, p: i32, n: i32| {
        let m = mem(&mut c);
        let (d, r) = m.data_and_store_mut(&mut c);
        r.output = d[p as usize..p as usize + n as usize].to_vec();
    })
    .unwrap();
    let w = "wasi_snapshot_preview1";
    l.func_wrap(w, "environ_get", |_: i32, _: i32| 0i32).unwrap();
    l.func_wrap(w, "environ_sizes_get", |_: i32, _: i32| 0i32).unwrap();
    l.func_wrap(w, "fd_write", |_: i32, _: i32, _: i32, _: i32| 8i32).unwrap();
    l.func_wrap(w, "proc_exit", |_: i32| {}).unwrap();
    l
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn main() {
    let (manifest, wasm) = support::applet("hash");
    let input = vec![0x5au8; 64];

    // Raw wasmtime.
    // The runtime's own engine (pooling allocator, fuel, epochs, NaN canonicalisation): the comparison is of the
    // host around it, nothing else.
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let engine = rt.engine().clone();
    let module = Module::new(&engine, &wasm).unwrap();
    let pre = raw_linker(&engine).instantiate_pre(&module).unwrap();
    // The export resolved once, as the runtime does at load: only instantiate + call are per invocation.
    let export = module.get_export_index("sigil:sha256").unwrap();
    let raw_once = || {
        let mut store = Store::new(&engine, Raw { input: input.clone(), output: Vec::new() });
        store.set_fuel(10_000_000).unwrap();
        store.set_epoch_deadline(1_000);
        let inst = pre.instantiate(&mut store).unwrap();
        let f = inst.get_module_export(&mut store, &export).and_then(|e| e.into_func()).unwrap();
        let f = f.typed::<(), i32>(&store).unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 0);
        black_box(store.into_data().output)
    };

    // Sigil: authorize, instantiate, call, hash input/output/write set, receipt fields.
    let applet = rt.load(&manifest, &wasm).unwrap();
    let state: Arc<MemState> = Arc::new(MemState::new());
    let call = Call { request_hash: Hash::digest(b"r"), caller: [1; 32], method: "sha256", input: &input, now_ms: 1 };
    let sigil_once = || {
        let e = rt.invoke(&applet, &call, state.clone()).unwrap();
        assert!(e.outcome.is_ok());
        black_box(e)
    };
    assert_eq!(raw_once(), sigil_once().output, "both paths compute the same digest");
    let fuel = sigil_once().fuel_used;

    // The floor: a one-page module with no imports that returns at once (the design's 1.64 µs baseline for one page, pooling allocator).
    let tiny = Module::new(
        &engine,
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "m") (result i32) i32.const 0))"#)
            .unwrap(),
    )
    .unwrap();
    let tiny_pre = Linker::<Raw>::new(&engine).instantiate_pre(&tiny).unwrap();
    let tiny_once = || {
        let mut store = Store::new(&engine, Raw { input: Vec::new(), output: Vec::new() });
        store.set_fuel(1_000).unwrap();
        store.set_epoch_deadline(1_000);
        let inst = tiny_pre.instantiate(&mut store).unwrap();
        let f = inst.get_typed_func::<(), i32>(&mut store, "m").unwrap();
        black_box(f.call(&mut store, ()).unwrap())
    };
    let mut floor: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            tiny_once();
            t.elapsed()
        })
        .collect();
    floor.sort();
    // Instantiating the hash module without calling it: the rest of a raw invocation is the applet's own work.
    let mut inst_only: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            let mut store = Store::new(&engine, Raw { input: input.clone(), output: Vec::new() });
            store.set_fuel(1_000).unwrap();
            black_box(pre.instantiate(&mut store).unwrap());
            drop(store);
            t.elapsed()
        })
        .collect();
    inst_only.sort();
    let mem_pages = module.exports().find_map(|e| e.ty().memory().map(|m| m.minimum())).unwrap_or(0);

    let mut raw = Vec::with_capacity(SAMPLES * ROUNDS);
    let mut sigil = Vec::with_capacity(SAMPLES * ROUNDS);
    for _ in 0..WARMUP {
        raw_once();
        sigil_once();
    }
    for _ in 0..ROUNDS {
        for _ in 0..SAMPLES {
            let t = Instant::now();
            raw_once();
            raw.push(t.elapsed());
        }
        for _ in 0..SAMPLES {
            let t = Instant::now();
            sigil_once();
            sigil.push(t.elapsed());
        }
    }
    raw.sort();
    sigil.sort();
    let (r50, r99, s50, s99) =
        (percentile(&raw, 0.5), percentile(&raw, 0.99), percentile(&sigil, 0.5), percentile(&sigil, 0.99));
    println!("invoke hash.sha256 (64-byte input), {} samples each, interleaved in {ROUNDS} rounds", SAMPLES * ROUNDS);
    println!(
        "  floor: one-page empty module, instantiate + call: p50 {:7.2} µs  p99 {:7.2} µs   (hash.wasm: {} KiB, {mem_pages} initial pages, {fuel} fuel per call)",
        us(percentile(&floor, 0.5)),
        us(percentile(&floor, 0.99)),
        wasm.len() / 1024
    );
    println!(
        "  raw wasmtime InstancePre instantiate only:   p50 {:7.2} µs  p99 {:7.2} µs",
        us(percentile(&inst_only, 0.5)),
        us(percentile(&inst_only, 0.99))
    );
    println!("  raw wasmtime InstancePre instantiate + call: p50 {:7.2} µs  p99 {:7.2} µs", us(r50), us(r99));
    println!(
        "  sigil invoke + receipt fields:               p50 {:7.2} µs  p99 {:7.2} µs  = {:.2}x / {:.2}x raw",
        us(s50),
        us(s99),
        us(s50) / us(r50),
        us(s99) / us(r99)
    );

    // Throughput on one thread, with and without the node's signature over the receipt's ledger entry.
    let key = Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
    let n = 30_000;
    let t = Instant::now();
    for _ in 0..n {
        sigil_once();
    }
    let plain = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n {
        let e = sigil_once();
        let r = &e.receipt;
        let entry = sigil_ledger::Entry::Invocation(sigil_ledger::entry::Invocation {
            request_hash: r.request_hash,
            caller: serde_bytes::ByteBuf::from(vec![1; 32]),
            applet: "hash".into(),
            method: "sha256".into(),
            code_digest: r.code_digest,
            input_hash: r.input_hash,
            output_hash: r.output_hash,
            write_set_hash: r.write_set_hash,
            executor: "node-0".into(),
            executor_attestation: 1,
            policy: None,
            outcome: r.outcome.clone(),
            fuel_used: r.fuel_used,
            at_ms: r.at_ms,
            delegate: None,
        });
        black_box(key.sign(&entry.encode()));
    }
    let signed = n as f64 / t.elapsed().as_secs_f64();
    let _ = key.public_key();
    println!("  one thread: {plain:8.0} invocations/s unsigned, {signed:8.0}/s with the receipt entry encoded and signed (ed25519) = {:.2}x", signed / plain);
}
