//! Proof malleability: starting from a valid inclusion or consistency proof in a tree built from the input,
//! any mutation the fuzzer makes (to the proof, the index, the sizes, the leaf) must not verify unless it
//! leaves the statement unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sigil_ledger::hash::leaf_hash;
use sigil_ledger::merkle::{
    consistency_proof, inclusion_proof, root_at, verify_consistency, verify_inclusion, MemTree,
};
use sigil_ledger::Hash;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let n = 1 + (u16::from_le_bytes([data[0], data[1]]) % 600) as u64;
    let m = u16::from_le_bytes([data[2], data[3]]) as u64 % n;
    let (op, pos, bit) = (data[4], data[5] as usize, data[6]);
    let mut t = MemTree::default();
    for i in 0..n {
        t.push(leaf_hash(&i.to_le_bytes()));
    }
    let root = t.root();
    let leaf = leaf_hash(&m.to_le_bytes());
    let mut proof = inclusion_proof(&t.nodes, m, n).unwrap();
    verify_inclusion(m, n, &leaf, &proof, &root).unwrap();
    let (mut mi, mut ni, mut li) = (m, n, leaf);
    match op % 5 {
        0 if !proof.is_empty() => {
            let i = pos % proof.len();
            proof[i].0[(bit as usize / 8) % 32] ^= 1 << (bit % 8);
        }
        1 if !proof.is_empty() => {
            proof.remove(pos % proof.len());
        }
        2 => proof.push(Hash::digest(&data[7..])),
        3 => mi = (m + 1 + pos as u64) % n,
        _ => li = leaf_hash(&data[7..]),
    }
    let unchanged = mi == m && ni == n && li == leaf && proof == inclusion_proof(&t.nodes, m, n).unwrap();
    if !unchanged {
        assert!(verify_inclusion(mi, ni, &li, &proof, &root).is_err(), "mutated inclusion proof verified");
    }
    // Consistency from a smaller size.
    let old = 1 + m;
    let mut c = consistency_proof(&t.nodes, old, n).unwrap();
    let old_root = root_at(&t.nodes, old).unwrap();
    verify_consistency(old, n, &old_root, &root, &c).unwrap();
    if !c.is_empty() {
        let i = pos % c.len();
        c[i].0[(bit as usize / 8) % 32] ^= 1 << (bit % 8);
        assert!(verify_consistency(old, n, &old_root, &root, &c).is_err(), "mutated consistency proof verified");
    }
    ni = n + 1;
    let _ = verify_inclusion(m, ni, &leaf, &proof, &root);
});
