//! The runtime against the example applets in `applets/`, built from source: capabilities, limits, outcomes,
//! write sets, replay and the load-time checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::*;
use sigil_primitives::Hash;
use sigil_runtime::manifest::AccessRule;
use sigil_runtime::state::Conflict;
use sigil_runtime::{
    Call, Manifest, MemState, Outcome, Refusal, Runtime, RuntimeConfig, RuntimeError, State, WriteSet,
};

fn output(e: &sigil_runtime::Execution) -> String {
    String::from_utf8_lossy(&e.output).into_owned()
}

#[test]
fn notes_put_get_list_delete_through_committed_write_sets() {
    let rt = shared();
    let (m, wasm) = applet("notes");
    let state = Arc::new(MemState::new());

    let put = run(rt, &m, &wasm, "put", r#"{"key":"greeting","value":"hello"}"#, &state);
    assert_eq!(put.outcome, Outcome::Ok, "{}", output(&put));
    assert_eq!(put.write_set.writes.len(), 1);
    assert_eq!(put.write_set.reads.len(), 1, "put reads the previous value");
    // Not applied yet: a read sees nothing.
    let get = run(rt, &m, &wasm, "get", r#"{"key":"greeting"}"#, &state);
    assert_eq!(get.outcome.kind(), "error");
    assert!(output(&get).contains("no note"), "{}", output(&get));
    assert!(get.write_set.is_empty(), "a failed run writes nothing");
    assert_eq!(get.write_set.reads.len(), 1, "and keeps what it read, on which its outcome depends");

    state.apply(&put.write_set, 1).unwrap();
    let get = run(rt, &m, &wasm, "get", r#"{"key":"greeting"}"#, &state);
    assert_eq!(get.outcome, Outcome::Ok);
    assert_eq!(output(&get), r#"{"key":"greeting","value":"hello"}"#);
    assert!(get.write_set.writes.is_empty());
    assert_eq!(get.write_set.reads.values().copied().collect::<Vec<_>>(), vec![1], "version read is recorded");

    for (i, k) in ["a/1", "a/2", "b/1"].iter().enumerate() {
        let e = run(rt, &m, &wasm, "put", &format!(r#"{{"key":"{k}","value":"v"}}"#), &state);
        state.apply(&e.write_set, 2 + i as u64).unwrap();
    }
    let list = run(rt, &m, &wasm, "list", r#"{"prefix":"a/"}"#, &state);
    assert_eq!(output(&list), r#"{"keys":["a/1","a/2"]}"#);
    let del = run(rt, &m, &wasm, "delete", r#"{"key":"a/1"}"#, &state);
    assert_eq!(output(&del), r#"{"deleted":true,"key":"a/1"}"#);
    state.apply(&del.write_set, 9).unwrap();
    let list = run(rt, &m, &wasm, "list", "", &state);
    assert_eq!(output(&list), r#"{"keys":["a/2","b/1","greeting"]}"#);

    // An error's message is clipped in the outcome (it goes into every receipt) but whole in the output.
    let long_key = "k".repeat(900);
    let missing = run(rt, &m, &wasm, "get", &format!(r#"{{"key":"{long_key}"}}"#), &state);
    assert!(output(&missing).contains(&long_key));
    assert!(
        missing.receipt.outcome.len() < 600 && missing.receipt.outcome.ends_with('…'),
        "{}",
        missing.receipt.outcome
    );
    let bad = run(rt, &m, &wasm, "put", r#"{"key":"x"}"#, &state);
    assert_eq!(bad.outcome.kind(), "error");
    assert!(output(&bad).contains("missing field `value`"), "{}", output(&bad));
}

#[test]
fn stale_reads_conflict_and_change_nothing() {
    let rt = shared();
    let (m, wasm) = applet("notes");
    let state = Arc::new(MemState::new());
    let first = run(rt, &m, &wasm, "put", r#"{"key":"k","value":"one"}"#, &state);
    let second = run(rt, &m, &wasm, "put", r#"{"key":"k","value":"two"}"#, &state);
    state.apply(&first.write_set, 1).unwrap();
    let err = state.apply(&second.write_set, 2).unwrap_err();
    assert!(matches!(err, Conflict::Read { read: 0, now: 1, .. }), "{err}");
    assert_eq!(state.get("notes", b"k").unwrap(), (b"one".to_vec(), 1));

    // A listing that has changed since is a conflict too.
    let list = run(rt, &m, &wasm, "list", "", &state);
    let mut ws = list.write_set.clone();
    ws.writes.insert(("notes".into(), b"z".to_vec()), Some(b"1".to_vec()));
    state.apply(&run(rt, &m, &wasm, "put", r#"{"key":"k2","value":"v"}"#, &state).write_set, 3).unwrap();
    assert!(matches!(state.apply(&ws, 4), Err(Conflict::List { .. })));
    assert!(state.get("notes", b"z").is_none());
}

#[test]
fn runaway_outcomes_are_precise_and_the_host_survives() {
    let rt = shared();
    let (m, wasm) = applet("runaway");
    let state = Arc::new(MemState::new());
    let go = |method: &str| run(rt, &m, &wasm, method, "", &state);

    let spin = go("spin");
    assert_eq!(spin.outcome, Outcome::OutOfFuel);
    assert_eq!(spin.fuel_used, m.limits.fuel);
    assert_eq!(spin.receipt.outcome, "out_of_fuel");

    let bomb = go("bomb");
    assert_eq!(bomb.outcome, Outcome::OutOfMemory, "{:?}", bomb.outcome);

    let rec = go("recurse");
    // Rust keeps its frames' locals on a shadow stack in linear memory: running off its end is an out-of-bounds trap.
    assert!(matches!(&rec.outcome, Outcome::Trapped(m) if m.contains("out of bounds")), "{:?}", rec.outcome);

    let panic = go("panic");
    assert!(
        matches!(&panic.outcome, Outcome::Trapped(m) if m.contains("runaway panicked on purpose")),
        "{:?}",
        panic.outcome
    );

    let egress = go("egress");
    assert!(
        matches!(&egress.outcome, Outcome::Denied(m) if m.contains("capability http is not granted")),
        "{:?}",
        egress.outcome
    );
    let write = go("write");
    assert!(matches!(&write.outcome, Outcome::Denied(m) if m.contains("read-only")), "{:?}", write.outcome);
    assert!(write.write_set.is_empty());
    let clock = go("clock");
    assert!(matches!(&clock.outcome, Outcome::Denied(m) if m.contains("capability clock")), "{:?}", clock.outcome);

    let random = go("random");
    assert!(matches!(&random.outcome, Outcome::Denied(m) if m.contains("capability random")), "{:?}", random.outcome);
    let log = go("log");
    assert!(matches!(&log.outcome, Outcome::Denied(m) if m.contains("capability log")), "{:?}", log.outcome);
    assert!(log.logs.is_empty());
    let other = go("other_ns");
    assert!(matches!(&other.outcome, Outcome::Denied(m) if m.contains("secrets")), "{:?}", other.outcome);

    // Every failure left an output hash of nothing and no writes (what it read stays), and the runtime still works.
    for e in [&spin, &bomb, &rec, &panic, &egress, &write, &clock, &random, &log, &other] {
        assert_eq!(e.receipt.output_hash, Hash::digest(b""));
        assert!(e.write_set.writes.is_empty());
        assert_eq!(e.receipt.write_set_hash, e.write_set.hash());
    }
    let (hm, hw) = applet("hash");
    assert_eq!(run(rt, &hm, &hw, "sha256", "abc", &state).outcome, Outcome::Ok);
}

#[test]
fn an_applet_cannot_make_the_host_hold_or_copy_more_state_than_its_own_memory() {
    let rt = shared();
    let (mut m, wasm) = applet("runaway");
    assert_eq!(m.limits.memory_bytes, 8 << 20);
    m.limits.fuel = 1_000_000_000; // the state budget, not fuel, is what stops them
                                   // A 1 MiB value and 200 keys to list.
    let state = Arc::new(MemState::new());
    let mut ws = WriteSet::default();
    ws.writes.insert(("shared".into(), b"big".to_vec()), Some(vec![1; 1 << 20]));
    for i in 0..200u32 {
        ws.writes.insert(("shared".into(), format!("key-{i:04}").into_bytes()), Some(vec![]));
    }
    state.apply(&ws, 1).unwrap();
    // A thousand 256 KiB writes (250 MiB the host would hold), a thousand reads of 1 MiB, 100,000 listings: each
    // stops at 8 MiB, the applet's own memory limit, with nothing written.
    for method in ["hoard", "reread", "relist"] {
        let e = run(rt, &m, &wasm, method, "", &state);
        assert!(
            matches!(&e.outcome, Outcome::Denied(why) if why.contains("bytes of state read and written")),
            "{method}: {:?}",
            e.outcome
        );
        assert!(e.write_set.writes.is_empty(), "{method}");
        assert_eq!(e.receipt.write_set_hash, e.write_set.hash(), "{method}");
    }
    // Within the budget the same loop runs: a thousand reads of 1 KiB.
    let small = Arc::new(MemState::new());
    let mut ws = WriteSet::default();
    ws.writes.insert(("shared".into(), b"big".to_vec()), Some(vec![1; 1024]));
    small.apply(&ws, 1).unwrap();
    let e = run(rt, &m, &wasm, "reread", "", &small);
    assert_eq!(e.outcome, Outcome::Ok);
}

#[test]
fn wall_clock_deadline_stops_a_loop_that_still_has_fuel() {
    let rt = shared();
    let (mut m, wasm) = applet("runaway");
    m.limits.fuel = u64::MAX / 4;
    m.limits.deadline_ms = 100;
    let e = run(rt, &m, &wasm, "spin", "", &Arc::new(MemState::new()));
    assert_eq!(e.outcome, Outcome::Deadline);
    assert!(e.fuel_used > 0 && e.fuel_used < m.limits.fuel);
}

#[test]
fn memory_limit_is_the_manifest_s_not_the_pool_s() {
    let rt = shared();
    let (mut m, wasm) = applet("runaway");
    let state = Arc::new(MemState::new());
    m.limits.memory_bytes = 2 << 20;
    m.limits.fuel = 1_000_000_000;
    let small = run(rt, &m, &wasm, "bomb", "", &state);
    m.limits.memory_bytes = 32 << 20;
    let big = run(rt, &m, &wasm, "bomb", "", &state);
    assert_eq!((small.outcome.clone(), big.outcome.clone()), (Outcome::OutOfMemory, Outcome::OutOfMemory));
    assert!(big.fuel_used > 4 * small.fuel_used, "a bigger limit lets it allocate more before stopping");
}

/// Counts every state access.
struct Spy(AtomicUsize);
impl State for Spy {
    fn get(&self, _: &str, _: &[u8]) -> Option<(Vec<u8>, u64)> {
        self.0.fetch_add(1, Ordering::SeqCst);
        None
    }
    fn list(&self, _: &str, _: &[u8], _: usize) -> Vec<Vec<u8>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Vec::new()
    }
}

#[test]
fn callers_outside_the_access_rules_are_refused_before_any_code_runs() {
    let rt = shared();
    let (mut m, wasm) = applet("notes");
    m.groups.insert("editors".into(), vec![format!("ed25519:{}", hex::encode(ALICE))]);
    m.access = vec![
        AccessRule { methods: vec!["get".into()], callers: vec![format!("ed25519:{}", hex::encode(BOB))] },
        AccessRule { methods: vec!["put".into(), "get".into()], callers: vec!["group:editors".into()] },
    ];
    let applet = rt.load(&m, &wasm).unwrap();
    let spy = Arc::new(Spy(AtomicUsize::new(0)));
    let input = br#"{"key":"k","value":"v"}"#;
    let as_bob = Call { caller: BOB, ..call("put", input) };
    let err = rt.invoke(&applet, &as_bob, spy.clone()).unwrap_err();
    assert!(matches!(&err, RuntimeError::Refused(Refusal::NotAuthorized { method, .. }) if method == "put"), "{err}");
    assert!(err.to_string().contains(&hex::encode(BOB)), "{err}");
    assert_eq!(spy.0.load(Ordering::SeqCst), 0, "no code ran, no state was read");

    // Bob may get; Alice (an editor) may put; nobody may call a method the manifest does not list.
    rt.invoke(&applet, &Call { caller: BOB, ..call("get", br#"{"key":"k"}"#) }, spy.clone()).unwrap();
    assert_eq!(rt.invoke(&applet, &call("put", input), spy.clone()).unwrap().outcome, Outcome::Ok);
    let unknown = rt.invoke(&applet, &call("drop_table", b""), spy.clone()).unwrap_err();
    assert!(matches!(unknown, RuntimeError::Refused(Refusal::UnknownMethod { .. })));
    // An empty access list lets nobody in.
    m.access.clear();
    let closed = rt.load(&m, &wasm).unwrap();
    assert!(matches!(rt.invoke(&closed, &call("get", b"{}"), spy.clone()), Err(RuntimeError::Refused(_))));
    // Oversized input is refused before running as well.
    m.access = vec![AccessRule { methods: vec!["*".into()], callers: vec!["*".into()] }];
    m.limits.max_input_bytes = 8;
    let small = rt.load(&m, &wasm).unwrap();
    let err = rt.invoke(&small, &call("put", input), spy.clone()).unwrap_err();
    assert!(matches!(err, RuntimeError::Refused(Refusal::InputTooLarge { len: 23, max: 8 })), "{err}");
}

#[test]
fn deterministic_replay_gives_the_same_hashes() {
    let (mut m, wasm) = applet("tools");
    // Alice is the ticket desk (the manifest leaves the group to whoever deploys it).
    m.groups.insert("desk".into(), vec![format!("ed25519:{}", hex::encode(ALICE))]);
    let start = Arc::new(MemState::new());
    let input = br#"{"title":"Disk full","body":"node-3 /var at 98%","priority":"high"}"#;
    let c =
        Call { request_hash: Hash::digest(b"request-1"), caller: ALICE, method: "create_ticket", input, now_ms: 42 };
    // Two runtimes (two "nodes": separate engines, each compiling the module itself), each from its own copy of
    // the same state.
    let a = {
        let rt = shared();
        let applet = rt.load(&m, &wasm).unwrap();
        rt.invoke(&applet, &c, Arc::new(start.snapshot())).unwrap()
    };
    let b = {
        let rt = runtime();
        let applet = rt.load(&m, &wasm).unwrap();
        rt.invoke(&applet, &c, Arc::new(start.snapshot())).unwrap()
    };
    assert_eq!(a.outcome, Outcome::Ok, "{}", output(&a));
    assert_eq!(a.receipt, b.receipt);
    assert_eq!(a.write_set, b.write_set);
    assert!(output(&a).contains(r#""created_ms":42"#) && output(&a).contains(&hex::encode(ALICE)));
    assert_eq!(a.logs[0].message, "ticket 1 created");
    // A different clock is a different execution.
    let rt = shared();
    let applet = rt.load(&m, &wasm).unwrap();
    let later = rt.invoke(&applet, &Call { now_ms: 43, ..c.clone() }, Arc::new(start.snapshot())).unwrap();
    assert_ne!(later.receipt.output_hash, a.receipt.output_hash);
    assert_ne!(later.receipt.write_set_hash, a.receipt.write_set_hash);
}

#[test]
fn nans_are_canonical() {
    let rt = shared();
    let (m, wasm) = applet("hash");
    let e = run(rt, &m, &wasm, "nan", "x", &Arc::new(MemState::new()));
    // x86 computes 0/0 as 0xffc00000; with canonicalisation every platform gives 0x7fc00000.
    assert_eq!(output(&e), "7fc00000");
}

#[test]
fn receipt_fields_describe_the_execution_and_fit_the_ledger_entry() {
    let rt = shared();
    let (m, wasm) = applet("hash");
    let e = run(rt, &m, &wasm, "sha256", "abc", &Arc::new(MemState::new()));
    assert_eq!(output(&e), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let r = &e.receipt;
    assert_eq!(r.code_digest, Hash::digest(&wasm));
    assert_eq!(r.input_hash, Hash::digest(b"abc"));
    assert_eq!(r.output_hash, Hash::digest(&e.output));
    assert_eq!(r.request_hash, Hash::digest(b"abc"));
    assert_eq!(r.write_set_hash, WriteSet::default().hash());
    assert!(r.fuel_used > 0 && r.fuel_used == e.fuel_used);
    assert_eq!(r.outcome, "ok");
}

#[test]
fn a_module_that_is_not_the_manifest_s_is_refused() {
    let rt = shared();
    let (m, mut wasm) = applet("hash");
    let last = wasm.len() - 1;
    wasm[last] ^= 1;
    let err = rt.load(&m, &wasm).err().expect("refused");
    assert!(matches!(err, RuntimeError::DigestMismatch { .. }), "{err}");
    let text = sigil_example_applets::example("hash").manifest.to_string();
    let pinned = format!("code_digest = \"{}\"\n{text}", m.code_digest);
    assert!(matches!(Manifest::from_toml(&pinned, &wasm), Err(RuntimeError::DigestMismatch { .. })));
}

fn wat_manifest(wasm: &[u8], methods: &[&str]) -> Manifest {
    let methods = methods.iter().map(|m| format!("[[methods]]\nname = \"{m}\"\n")).collect::<String>();
    let text = format!("name = \"t\"\nversion = \"1\"\n{methods}[[access]]\nmethods = [\"*\"]\ncallers = [\"*\"]\n");
    Manifest::from_toml(&text, wasm).unwrap()
}

#[test]
fn imports_beyond_the_abi_and_missing_methods_are_refused_at_load() {
    let rt = shared();
    let fs = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
                   (memory (export "memory") 1) (func (export "sigil:m") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let err = rt.load(&wat_manifest(&fs, &["m"]), &fs).err().unwrap().to_string();
    assert!(err.contains("wasi_snapshot_preview1::path_open") && err.contains("does not provide"), "{err}");

    let wrong_type = wat::parse_str(
        r#"(module (import "sigil" "input_len" (func (result i64)))
                   (memory (export "memory") 1) (func (export "sigil:m") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let err = rt.load(&wat_manifest(&wrong_type, &["m"]), &wrong_type).err().unwrap().to_string();
    assert!(err.contains("input_len"), "{err}");

    let ok =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "sigil:m") (result i32) i32.const 0))"#)
            .unwrap();
    let err = rt.load(&wat_manifest(&ok, &["m", "n"]), &ok).err().unwrap().to_string();
    assert!(err.contains("exports no \"sigil:n\""), "{err}");
    let no_memory = wat::parse_str(r#"(module (func (export "sigil:m") (result i32) i32.const 0))"#).unwrap();
    let err = rt.load(&wat_manifest(&no_memory, &["m"]), &no_memory).err().unwrap().to_string();
    assert!(err.contains("\"memory\""), "{err}");
    assert!(rt.load(&wat_manifest(&ok, &["m"]), &ok).is_ok());
    let bad_init = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_initialize") (param i32))
                   (func (export "sigil:m") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let err = rt.load(&wat_manifest(&bad_init, &["m"]), &bad_init).err().unwrap().to_string();
    assert!(err.contains("_initialize"), "{err}");
    // A reactor's _initialize runs before the method, once per instance.
    let init = wat::parse_str(
        r#"(module (import "sigil" "output_write" (func $out (param i32 i32)))
                   (memory (export "memory") 1) (data (i32.const 0) "no")
                   (func (export "_initialize") (i32.store8 (i32.const 0) (i32.const 121)))
                   (func (export "sigil:m") (result i32) (call $out (i32.const 0) (i32.const 2)) i32.const 0))"#,
    )
    .unwrap();
    let e = run(rt, &wat_manifest(&init, &["m"]), &init, "m", "", &Arc::new(MemState::new()));
    assert_eq!(e.output, b"yo");
}

#[test]
fn bad_guest_pointers_trap_without_touching_the_host() {
    let rt = shared();
    let wasm = wat::parse_str(
        r#"(module (import "sigil" "output_write" (func $out (param i32 i32)))
                   (memory (export "memory") 1)
                   (func (export "sigil:m") (result i32) (call $out (i32.const 65000) (i32.const 1000)) i32.const 0))"#,
    )
    .unwrap();
    let e = run(rt, &wat_manifest(&wasm, &["m"]), &wasm, "m", "", &Arc::new(MemState::new()));
    assert!(matches!(&e.outcome, Outcome::Trapped(m) if m.contains("outside linear memory")), "{:?}", e.outcome);
}

#[test]
fn native_stack_overflow_is_a_trap() {
    let rt = shared();
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
                   (func $f (param i64) (result i64) (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
                   (func (export "sigil:m") (result i32) (drop (call $f (i64.const 0))) i32.const 0))"#,
    )
    .unwrap();
    let e = run(rt, &wat_manifest(&wasm, &["m"]), &wasm, "m", "", &Arc::new(MemState::new()));
    assert!(matches!(&e.outcome, Outcome::Trapped(m) if m.contains("call stack exhausted")), "{:?}", e.outcome);
}

#[test]
fn manifests_validate_and_encode_canonically() {
    let (m, _) = applet("notes");
    let cbor = m.to_cbor();
    assert_eq!(Manifest::from_cbor(&cbor).unwrap(), m);
    assert_eq!(m.digest(), Hash::digest(&cbor));
    let mut noncanonical = cbor.clone();
    noncanonical.push(0);
    assert!(Manifest::from_cbor(&noncanonical).is_err());

    let base = sigil_example_applets::example("notes").manifest.to_string();
    let wasm = b"\0asm\x01\0\0\0";
    let cases: &[(&str, &str)] = &[
        ("colour = \"blue\"\n", "unknown field `colour`"),
        ("[capabilities.http]\nallow = [\"example.com\"]\n", "deterministic applets may not have the http"),
    ];
    for (extra, want) in cases {
        let (head, tail) = base.split_once("[[methods]]").unwrap();
        let text =
            if extra.starts_with('[') { format!("{base}\n{extra}") } else { format!("{head}{extra}[[methods]]{tail}") };
        let err = Manifest::from_toml(&text, wasm).unwrap_err().to_string();
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let bad_rule = base.replace("callers = [\"*\"]\n\n[[access]]", "callers = [\"group:nobody\"]\n\n[[access]]");
    let err = Manifest::from_toml(&bad_rule, wasm).unwrap_err().to_string();
    assert!(err.contains("group:nobody"), "{err}");
    let bad_method = base.replace("name = \"put\"", "name = \"Put\"");
    assert!(Manifest::from_toml(&bad_method, wasm).unwrap_err().to_string().contains("methods[0].name"));
}

#[test]
fn a_full_instance_pool_is_unavailable_not_an_outcome() {
    let rt =
        sigil_runtime::Runtime::new(sigil_runtime::RuntimeConfig { max_instances: 1, ..Default::default() }).unwrap();
    let (mut spin_m, spin_w) = applet("runaway");
    spin_m.limits.fuel = u64::MAX / 4;
    spin_m.limits.deadline_ms = 1_500;
    let (hash_m, hash_w) = applet("hash");
    let (spinner, hasher) = (rt.load(&spin_m, &spin_w).unwrap(), rt.load(&hash_m, &hash_w).unwrap());
    let state: Arc<dyn State> = Arc::new(MemState::new());
    std::thread::scope(|s| {
        let busy = s.spawn(|| rt.invoke(&spinner, &call("spin", b""), state.clone()).unwrap());
        // Wait until the spinner holds the only slot, then try to run something else.
        let mut refused = None;
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            if let Err(e) = rt.invoke(&hasher, &call("sha256", b"x"), state.clone()) {
                refused = Some(e);
                break;
            }
        }
        let err = refused.expect("the second invocation must find the pool full");
        assert!(matches!(&err, RuntimeError::Unavailable(m) if m.contains("limit")), "{err}");
        // The spinner ends at its deadline or at the runtime's fuel ceiling, whichever this machine reaches first.
        assert!(matches!(busy.join().unwrap().outcome, Outcome::Deadline | Outcome::OutOfFuel));
    });
    // The slot is free again.
    assert!(rt.invoke(&hasher, &call("sha256", b"x"), state).unwrap().outcome.is_ok());
}

#[test]
fn loaded_applets_are_kept_within_a_byte_budget_least_recently_used_first() {
    let (notes, notes_wasm) = applet("notes");
    let (hash, hash_wasm) = applet("hash");
    // Measure each applet's size with a roomy cache.
    let roomy = runtime();
    roomy.load(&notes, &notes_wasm).unwrap();
    let (one, n) = roomy.cached_bytes();
    assert_eq!(n, 1);
    assert!(one > notes_wasm.len(), "the compiled code counts too: {one} bytes");
    roomy.load(&hash, &hash_wasm).unwrap();
    let (both, _) = roomy.cached_bytes();
    let two = both - one;

    // A budget that holds the larger of the two, not both.
    let rt = Runtime::new(RuntimeConfig { max_cached_bytes: one.max(two), ..Default::default() }).unwrap();
    rt.load(&notes, &notes_wasm).unwrap();
    rt.load(&hash, &hash_wasm).unwrap();
    let (bytes, n) = rt.cached_bytes();
    assert_eq!(n, 1, "one applet fits");
    assert!(bytes <= one.max(two));
    assert!(rt.cached(&hash).is_some() && rt.cached(&notes).is_none(), "the least recently used went");
    // Evicted is not lost: it loads again (and is kept, evicting the other).
    let again = rt.load(&notes, &notes_wasm).unwrap();
    assert_eq!(again.manifest(), &notes);
    assert!(rt.cached(&notes).is_some() && rt.cached(&hash).is_none());

    // An applet larger than the whole budget runs but is not kept.
    let tiny = Runtime::new(RuntimeConfig { max_cached_bytes: 1024, ..Default::default() }).unwrap();
    tiny.load(&notes, &notes_wasm).unwrap();
    assert_eq!(tiny.cached_bytes(), (0, 0));
}
