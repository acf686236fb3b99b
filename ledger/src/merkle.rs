//! The RFC 9162 (Certificate Transparency v2) Merkle tree: appends, roots at any size, inclusion and consistency
//! proofs, and their verification.
//!
//! Storage model: every *perfect* subtree is a node at [`NodePos`] `(level, index)`, covering leaves
//! `[index·2^level, (index+1)·2^level)`. Appending a leaf creates the leaf node and the perfect parents it
//! completes (O(log n) hashes, computed from the in-memory [`Frontier`]). A root or a proof for any size needs
//! O(log n) node reads: perfect siblings are read, and the one imperfect subtree on the right edge of the tree is
//! folded from the O(log n) perfect nodes that cover it.

use crate::error::{LedgerError, ProofError};
use crate::hash::{empty_root, node_hash, Hash};

/// Position of a perfect subtree: `level` 0 is the leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodePos {
    /// Height above the leaves.
    pub level: u8,
    /// Index among the nodes of that level.
    pub index: u64,
}

impl NodePos {
    /// A node position.
    pub fn new(level: u8, index: u64) -> NodePos {
        NodePos { level, index }
    }
}

/// Reads stored tree nodes (perfect subtrees). Storage adapters implement it.
pub trait NodeReader {
    /// The hash of the perfect subtree at `pos`. Missing nodes are an error (the caller asked for a size the
    /// store does not hold, or the store is damaged).
    fn node(&self, pos: NodePos) -> Result<Hash, LedgerError>;
}

/// The perfect subtrees of the binary decomposition of the tree size, largest first: all that is needed to
/// append and to compute the current root without reading storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from stored nodes (O(log n) reads).
    pub fn load(size: u64, nodes: &dyn NodeReader) -> Result<Frontier, LedgerError> {
        let hashes = decomposition(0, size).map(|pos| nodes.node(pos)).collect::<Result<_, _>>()?;
        Ok(Frontier { size, hashes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns every node to store: the leaf and the perfect parents it completes.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodePos, Hash)> {
        let mut out = vec![(NodePos::new(0, self.size), leaf)];
        let mut h = leaf;
        let mut idx = self.size;
        let mut level = 0u8;
        while idx & 1 == 1 {
            let left = self.hashes.pop().expect("an odd index has a left sibling in the frontier");
            h = node_hash(&left, &h);
            idx >>= 1;
            level += 1;
            out.push((NodePos::new(level, idx), h));
        }
        self.hashes.push(h);
        self.size += 1;
        out
    }

    /// The root hash of the tree (RFC 9162 MTH).
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, h| node_hash(h, &acc)),
        }
    }
}

/// The perfect subtrees covering leaves `[lo, hi)`, left to right, where `lo` is a multiple of the largest power
/// of two not above `hi - lo` (true of every range the RFC 9162 recursion produces, and of `[0, n)`).
fn decomposition(lo: u64, hi: u64) -> impl Iterator<Item = NodePos> {
    let mut start = lo;
    core::iter::from_fn(move || {
        if start >= hi {
            return None;
        }
        let level = 63 - (hi - start).leading_zeros();
        let level = level.min(if start == 0 { 63 } else { start.trailing_zeros() });
        let pos = NodePos::new(level as u8, start >> level);
        start += 1 << level;
        Some(pos)
    })
}

/// MTH(D[lo:hi]) from stored perfect nodes.
fn subtree_hash(nodes: &dyn NodeReader, lo: u64, hi: u64) -> Result<Hash, LedgerError> {
    let perfect: Vec<Hash> = decomposition(lo, hi).map(|p| nodes.node(p)).collect::<Result<_, _>>()?;
    let mut it = perfect.iter().rev();
    let last = it.next().copied().unwrap_or_else(empty_root);
    Ok(it.fold(last, |acc, h| node_hash(h, &acc)))
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of the tree at `size` leaves (O(log n) reads).
pub fn root_at(nodes: &dyn NodeReader, size: u64) -> Result<Hash, LedgerError> {
    subtree_hash(nodes, 0, size)
}

/// RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of `size` leaves, leaf to root.
pub fn inclusion_proof(nodes: &dyn NodeReader, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    // PATH(m, D[lo:hi]) iteratively, collecting siblings root to leaf.
    let (mut lo, mut hi, mut m) = (0u64, size, index);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < k {
            path.push(subtree_hash(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(subtree_hash(nodes, lo, lo + k)?);
            lo += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 9162 §2.1.4.1 consistency proof between the trees of `old` and `new` leaves (0 < old ≤ new).
pub fn consistency_proof(nodes: &dyn NodeReader, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new }.into());
    }
    // SUBPROOF(m, D[lo:hi], b) iteratively.
    let (mut lo, mut hi, mut m, mut complete) = (0u64, new, old, true);
    let mut proof = Vec::new();
    while m != hi - lo {
        let k = split(hi - lo);
        if m <= k {
            proof.push(subtree_hash(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(subtree_hash(nodes, lo, lo + k)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    if !complete {
        proof.push(subtree_hash(nodes, lo, hi)?);
    }
    proof.reverse();
    Ok(proof)
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2). The caller compares it with a trusted root.
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::TooLong);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::TooShort);
    }
    Ok(r)
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new` leaves with root
/// `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::TooLong);
        }
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (first, rest) = path.split_first().ok_or(ProofError::TooShort)?;
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::TooLong);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::TooShort);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Nodes in memory: for tests, benchmarks and light clients.
#[derive(Clone, Debug, Default)]
pub struct MemNodes {
    levels: Vec<Vec<Hash>>,
}

impl MemNodes {
    /// Stores nodes produced by [`Frontier::append`].
    pub fn put(&mut self, nodes: &[(NodePos, Hash)]) {
        for (pos, h) in nodes {
            let l = pos.level as usize;
            if self.levels.len() <= l {
                self.levels.resize_with(l + 1, Vec::new);
            }
            let level = &mut self.levels[l];
            debug_assert_eq!(level.len() as u64, pos.index, "nodes are appended in order");
            level.push(*h);
        }
    }
}

impl NodeReader for MemNodes {
    fn node(&self, pos: NodePos) -> Result<Hash, LedgerError> {
        self.levels
            .get(pos.level as usize)
            .and_then(|l| l.get(pos.index as usize))
            .copied()
            .ok_or(LedgerError::MissingNode(pos))
    }
}

/// An in-memory tree: frontier plus nodes.
#[derive(Clone, Debug, Default)]
pub struct MemTree {
    /// The frontier.
    pub frontier: Frontier,
    /// All perfect nodes.
    pub nodes: MemNodes,
}

impl MemTree {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let new = self.frontier.append(leaf);
        self.nodes.put(&new);
    }
    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
    /// Current root.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}
