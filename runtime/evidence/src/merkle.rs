//! The RFC 6962 Merkle tree over entry hashes, with inclusion and consistency proofs.
//!
//! Leaves are `SHA-256(0x00 || data)`, interior nodes `SHA-256(0x01 || left || right)`,
//! and a tree of `n` leaves splits at the largest power of two smaller than `n`. Proofs
//! are O(log n) hashes and verify without the tree.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over leaf hashes `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path proving leaf `index` is in the tree of `leaves` (RFC 6962 §2.1.1).
/// `None` if `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    (index < leaves.len()).then(|| {
        let mut proof = Vec::new();
        inclusion_path(leaves, index, &mut proof);
        proof
    })
}

fn inclusion_path(leaves: &[Hash], index: usize, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        inclusion_path(&leaves[..k], index, proof);
        proof.push(root(&leaves[k..]));
    } else {
        inclusion_path(&leaves[k..], index - k, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows that `leaf` is at `index` in a tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: usize,
    size: usize,
    proof: &[Hash],
    expected_root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    // RFC 9162 §2.1.3.2.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            hash = node_hash(sibling, &hash);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && hash == *expected_root
}

/// The proof that the tree of the first `old_size` leaves is a prefix of the tree of all
/// `leaves` (RFC 6962 §2.1.2). `None` if `old_size` is 0 or larger than the tree.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    (old_size > 0 && old_size <= leaves.len()).then(|| {
        let mut proof = Vec::new();
        subproof(leaves, old_size, true, &mut proof);
        proof
    })
}

fn subproof(leaves: &[Hash], m: usize, complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(&leaves[..k], m, complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(&leaves[k..], m - k, false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows that the tree of `old_size` leaves with `old_root` is a prefix
/// of the tree of `new_size` leaves with `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: usize,
    new_size: usize,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn known_roots() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 leaf of the empty string.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let two = leaves(2);
        assert_eq!(root(&two), node_hash(&two[0], &two[1]));
        let three = leaves(3);
        assert_eq!(
            root(&three),
            node_hash(&node_hash(&three[0], &three[1]), &three[2])
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_wrong_one_does() {
        for n in 1..=33 {
            let tree = leaves(n);
            let expected = root(&tree);
            for index in 0..n {
                let proof = inclusion_proof(&tree, index).expect("in range");
                assert!(proof.len() <= 6);
                assert!(
                    verify_inclusion(&tree[index], index, n, &proof, &expected),
                    "n={n} i={index}"
                );
                let other = (index + 1) % n;
                if other != index {
                    assert!(
                        !verify_inclusion(&tree[other], index, n, &proof, &expected),
                        "n={n} i={index}"
                    );
                }
            }
            assert!(inclusion_proof(&tree, n).is_none());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_fork_does_not() {
        for n in 1..=33 {
            let tree = leaves(n);
            let new_root = root(&tree);
            for m in 1..=n {
                let old_root = root(&tree[..m]);
                let proof = consistency_proof(&tree, m).expect("in range");
                assert!(
                    verify_consistency(m, n, &old_root, &new_root, &proof),
                    "m={m} n={n}"
                );
                let mut forked = tree[..m].to_vec();
                forked[m - 1] = leaf_hash(b"forged");
                let forked_root = root(&forked);
                assert!(
                    !verify_consistency(m, n, &forked_root, &new_root, &proof),
                    "fork m={m} n={n}"
                );
            }
        }
        assert!(consistency_proof(&leaves(3), 0).is_none());
        assert!(consistency_proof(&leaves(3), 4).is_none());
    }
}
