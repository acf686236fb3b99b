//! The Merkle tree against the RFC 6962 reference data, every transparency-dev proof probe, and a naive
//! recursive reference implementation of RFC 9162 §2.1 for every size up to a few thousand.

use base64::Engine;
use sigil_ledger::hash::{empty_root, leaf_hash, node_hash};
use sigil_ledger::merkle::{self, consistency_proof, inclusion_proof, root_at, MemTree};
use sigil_ledger::{Hash, ProofError};

fn h(hex_str: &str) -> Hash {
    Hash::from_slice(&hex::decode(hex_str).unwrap()).unwrap()
}

/// The RFC 6962 reference leaves (transparency-dev/merkle testonly).
fn reference_leaves() -> Vec<Vec<u8>> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
}

#[test]
fn roots_match_the_rfc6962_reference_tree() {
    let want = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut t = MemTree::default();
    assert_eq!(t.root(), h(want[0]));
    for (i, leaf) in reference_leaves().iter().enumerate() {
        t.push(leaf_hash(leaf));
        assert_eq!(t.root(), h(want[i + 1]), "size {}", i + 1);
    }
    for (size, w) in want.iter().enumerate() {
        assert_eq!(root_at(&t.nodes, size as u64).unwrap(), h(w), "root_at({size})");
    }
}

// ------------------------------------------------------------------ transparency-dev probes

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionProbe {
    leaf_idx: u64,
    tree_size: u64,
    root: Option<String>,
    leaf_hash: Option<String>,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyProbe {
    size1: u64,
    size2: u64,
    root1: Option<String>,
    root2: Option<String>,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn b64(s: &Option<String>) -> Vec<u8> {
    s.as_deref().map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap_or_default()
}

/// A root or leaf hash from a probe. A few probes use placeholder values that are not 32 bytes ("don't
/// care"); they are mapped through SHA-256, which keeps equal values equal and different values different.
/// An empty value is no hash at all.
fn probe_hash(s: &Option<String>) -> Result<Hash, ProofError> {
    let v = b64(s);
    if v.is_empty() {
        return Err(ProofError::RootMismatch);
    }
    Ok(Hash::from_slice(&v).unwrap_or_else(|| Hash::digest(&v)))
}

/// Proof elements as hashes; an element that is not 32 bytes makes the proof invalid (as in the probes'
/// "garbage" cases).
fn hashes(proof: &Option<Vec<String>>) -> Result<Vec<Hash>, ProofError> {
    proof
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| Hash::from_slice(&b64(&Some(p.clone()))).ok_or(ProofError::BadHash(i)))
        .collect()
}

fn probes(kind: &str) -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/transparency-dev").join(kind);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(out.len() > 40, "probes for {kind} are missing");
    out
}

#[test]
fn every_transparency_dev_inclusion_probe() {
    for (name, bytes) in probes("inclusion") {
        let p: InclusionProbe = serde_json::from_slice(&bytes).unwrap();
        let result = (|| {
            let (root, leaf) = (probe_hash(&p.root)?, probe_hash(&p.leaf_hash)?);
            merkle::verify_inclusion(p.leaf_idx, p.tree_size, &leaf, &hashes(&p.proof)?, &root)
        })();
        assert_eq!(result.is_err(), p.want_err, "{name} ({}): {result:?}", p.desc);
    }
}

#[test]
fn every_transparency_dev_consistency_probe() {
    for (name, bytes) in probes("consistency") {
        let p: ConsistencyProbe = serde_json::from_slice(&bytes).unwrap();
        let result = (|| {
            let (r1, r2) = (probe_hash(&p.root1)?, probe_hash(&p.root2)?);
            merkle::verify_consistency(p.size1, p.size2, &r1, &r2, &hashes(&p.proof)?)
        })();
        assert_eq!(result.is_err(), p.want_err, "{name} ({}): {result:?}", p.desc);
    }
}

// ------------------------------------------------------------------ against a naive reference

/// RFC 9162 MTH, straight from the definition.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 PATH, straight from the definition.
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m < k {
        [path(m, &leaves[..k]), vec![mth(&leaves[k..])]].concat()
    } else {
        [path(m - k, &leaves[k..]), vec![mth(&leaves[..k])]].concat()
    }
}

/// RFC 9162 SUBPROOF, straight from the definition.
fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { vec![] } else { vec![mth(leaves)] };
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m <= k {
        [subproof(m, &leaves[..k], complete), vec![mth(&leaves[k..])]].concat()
    } else {
        [subproof(m - k, &leaves[k..], false), vec![mth(&leaves[..k])]].concat()
    }
}

fn tree(n: usize) -> (MemTree, Vec<Hash>) {
    let leaves: Vec<Hash> = (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut t = MemTree::default();
    for l in &leaves {
        t.push(*l);
    }
    (t, leaves)
}

#[test]
fn inclusion_proofs_round_trip_for_every_size() {
    let (t, leaves) = tree(3000);
    for n in 1..=3000u64 {
        let root = root_at(&t.nodes, n).unwrap();
        // Every index for small trees, the edges and a spread of indices for larger ones.
        let idx: Vec<u64> = if n <= 64 { (0..n).collect() } else { vec![0, 1, n / 3, n / 2, n - 2, n - 1] };
        for m in idx {
            let proof = inclusion_proof(&t.nodes, m, n).unwrap();
            if n <= 300 {
                assert_eq!(proof, path(m as usize, &leaves[..n as usize]), "PATH({m}, {n})");
            }
            merkle::verify_inclusion(m, n, &leaves[m as usize], &proof, &root).unwrap();
            // The proof does not prove another leaf, index or size.
            assert!(merkle::verify_inclusion(m, n, &leaf_hash(b"other"), &proof, &root).is_err());
            if n > 1 {
                assert!(merkle::verify_inclusion((m + 1) % n, n, &leaves[m as usize], &proof, &root).is_err());
            }
            // (The size itself is not bound by the path: where two sizes share a path shape, the same proof
            // leads to the same root. The checkpoint signs size and root together; receipts check both.)
        }
    }
    assert_eq!(root_at(&t.nodes, 3000).unwrap(), mth(&leaves));
}

#[test]
fn consistency_proofs_round_trip_between_sizes() {
    let (t, leaves) = tree(2100);
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    for new in 1..=70u64 {
        for old in 1..=new {
            pairs.push((old, new));
        }
    }
    for new in [127u64, 128, 129, 1000, 1023, 1024, 1025, 2048, 2100] {
        for old in [1u64, 2, 3, 7, 8, 9, 63, 64, 65, 500, 511, 512, 513, new - 1, new] {
            if old <= new {
                pairs.push((old, new));
            }
        }
    }
    for (old, new) in pairs {
        let proof = consistency_proof(&t.nodes, old, new).unwrap();
        if new <= 70 {
            assert_eq!(proof, subproof(old as usize, &leaves[..new as usize], true), "PROOF({old}, {new})");
        }
        let (r1, r2) = (root_at(&t.nodes, old).unwrap(), root_at(&t.nodes, new).unwrap());
        merkle::verify_consistency(old, new, &r1, &r2, &proof).unwrap();
        if old < new {
            assert!(merkle::verify_consistency(old, new, &r2, &r1, &proof).is_err(), "swapped roots {old},{new}");
            assert!(merkle::verify_consistency(old + 1, new, &r1, &r2, &proof).is_err() || old + 1 == new);
        }
    }
}

#[test]
fn every_mutation_of_a_proof_is_refused() {
    let (t, leaves) = tree(37);
    let root = t.root();
    let proof = inclusion_proof(&t.nodes, 21, 37).unwrap();
    for i in 0..proof.len() {
        for bit in [0usize, 7, 100, 255] {
            let mut p = proof.clone();
            p[i].0[bit / 8] ^= 1 << (bit % 8);
            assert!(merkle::verify_inclusion(21, 37, &leaves[21], &p, &root).is_err());
        }
        let mut shorter = proof.clone();
        shorter.remove(i);
        assert!(merkle::verify_inclusion(21, 37, &leaves[21], &shorter, &root).is_err());
        let mut swapped = proof.clone();
        swapped.swap(i, (i + 1) % proof.len());
        if swapped != proof {
            assert!(merkle::verify_inclusion(21, 37, &leaves[21], &swapped, &root).is_err());
        }
    }
    let mut longer = proof.clone();
    longer.push(root);
    assert!(merkle::verify_inclusion(21, 37, &leaves[21], &longer, &root).is_err());
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let (t, _) = tree(5);
    assert!(inclusion_proof(&t.nodes, 5, 5).is_err());
    assert!(consistency_proof(&t.nodes, 0, 5).is_err());
    assert!(consistency_proof(&t.nodes, 6, 5).is_err());
    assert!(root_at(&t.nodes, 6).is_err(), "a size the store does not hold");
    assert!(merkle::verify_inclusion(0, 0, &Hash::default(), &[], &Hash::default()).is_err());
    assert!(merkle::verify_consistency(0, 1, &Hash::default(), &Hash::default(), &[]).is_err());
}
