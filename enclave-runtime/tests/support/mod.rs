//! Shared by the runtime's test binaries and its bench: the example applets built once per process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use enclave_runtime::{examples, Call, Execution, Manifest, MemState, Runtime, RuntimeConfig};
use ledger::Hash;

/// Directory of the built `.wasm` files.
pub fn wasm_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("applets");
        examples::build(&target).unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

/// Manifest and module of an example applet.
pub fn applet(name: &str) -> (Manifest, Vec<u8>) {
    examples::load(&wasm_dir(), name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A fresh runtime.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

/// One runtime per test process (modules compile once: wasmtime's compiler is slow in debug builds).
pub fn shared() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(runtime)
}

pub const ALICE: [u8; 32] = [0xa1; 32];
pub const BOB: [u8; 32] = [0xb0; 32];

pub fn call<'a>(method: &'a str, input: &'a [u8]) -> Call<'a> {
    Call { request_hash: Hash::digest(input), caller: ALICE, method, input, now_ms: 1_764_000_000_000 }
}

/// Runs `method` of `manifest`/`wasm` with `input` against `state`.
pub fn run(rt: &Runtime, m: &Manifest, wasm: &[u8], method: &str, input: &str, state: &Arc<MemState>) -> Execution {
    let applet = rt.load(m, wasm).expect("load");
    rt.invoke(&applet, &call(method, input.as_bytes()), state.clone()).expect("invoke")
}
