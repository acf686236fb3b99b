//! `runaway`: misbehaviour on purpose, for the runtime's negative tests. Each method must end in a precise outcome
//! and never harm the host.
//!
//! `spin` loops forever (out of fuel / deadline), `bomb` allocates without bound (out of memory), `recurse` overflows
//! the stack (Rust's shadow stack in linear memory: an out-of-bounds trap), `panic` panics (trapped), `egress` calls HTTP though its manifest grants none (denied), `write` writes
//! to a namespace it may only read (denied), `clock` reads the clock it was not granted (denied), `random` asks for
//! randomness and `log` logs without those capabilities (denied), `other_ns` reads a namespace it was not granted
//! (denied); `hoard`, `reread` and `relist` make the host hold or copy far more state than the guest's memory
//! (stopped at the state budget).

use sigil_sdk::{http, kv, Error};

fn spin(_: &[u8]) -> Result<Vec<u8>, Error> {
    let mut x: u64 = 1;
    loop {
        x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn bomb(_: &[u8]) -> Result<Vec<u8>, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        chunk[0] = 1;
        hoard.push(core::hint::black_box(chunk));
    }
}

fn depth(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let pad = core::hint::black_box([n; 16]);
    depth(n + 1).wrapping_add(pad[3])
}

fn recurse(_: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(depth(0).to_le_bytes().to_vec())
}

fn panic(_: &[u8]) -> Result<Vec<u8>, Error> {
    panic!("runaway panicked on purpose");
}

fn egress(input: &[u8]) -> Result<Vec<u8>, Error> {
    let url = String::from_utf8_lossy(input);
    let r = http::get(&url)?;
    Ok(r.body)
}

fn write(_: &[u8]) -> Result<Vec<u8>, Error> {
    kv::put("shared", b"k", b"v");
    Ok(Vec::new())
}

fn clock(_: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(sigil_sdk::now_ms().to_le_bytes().to_vec())
}

fn random(_: &[u8]) -> Result<Vec<u8>, Error> {
    let mut b = [0u8; 16];
    sigil_sdk::random(&mut b);
    Ok(b.to_vec())
}

fn log(_: &[u8]) -> Result<Vec<u8>, Error> {
    sigil_sdk::log(sigil_sdk::Level::Info, "may I?");
    Ok(Vec::new())
}

/// Writes one 256 KiB value under a thousand keys: 250 MiB the host would hold for an 8 MiB guest.
fn hoard(_: &[u8]) -> Result<Vec<u8>, Error> {
    let value = vec![7u8; 256 << 10];
    for i in 0u32..1000 {
        kv::put("scratch", &i.to_le_bytes(), &value);
    }
    Ok(Vec::new())
}

/// Reads the same (large) value over and over.
fn reread(_: &[u8]) -> Result<Vec<u8>, Error> {
    let mut total = 0usize;
    for _ in 0..1000 {
        total += kv::get("shared", b"big").map_or(0, |v| v.len());
    }
    Ok(total.to_le_bytes().to_vec())
}

/// Lists the same namespace over and over.
fn relist(_: &[u8]) -> Result<Vec<u8>, Error> {
    let mut total = 0usize;
    for _ in 0..100_000 {
        total += kv::list("shared", b"").len();
    }
    Ok(total.to_le_bytes().to_vec())
}

fn other_ns(_: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(kv::get("secrets", b"k").unwrap_or_default())
}

sigil_sdk::methods! {
    spin => spin,
    bomb => bomb,
    recurse => recurse,
    panic => panic,
    egress => egress,
    write => write,
    clock => clock,
    random => random,
    log => log,
    other_ns => other_ns,
    hoard => hoard,
    reread => reread,
    relist => relist,
}
