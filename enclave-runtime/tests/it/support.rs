//! Shared by the runtime's tests and its bench: the example applets (built by `sigil-example-applets`), runtimes.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use sigil_primitives::Hash;
use sigil_runtime::{Call, Execution, Manifest, MemState, Runtime, RuntimeConfig};

/// Manifest and module of an example applet.
pub fn applet(name: &str) -> (Manifest, Vec<u8>) {
    let e = sigil_example_applets::example(name);
    let m = Manifest::from_toml(e.manifest, e.wasm).unwrap_or_else(|err| panic!("{name}: {err}"));
    (m, e.wasm.to_vec())
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
