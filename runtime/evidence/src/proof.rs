//! The log's Merkle tree over entry hashes, and the proofs an export carries.
//!
//! Leaf `i` is `SHA-256(0x00 || hash of the entry with seq i+1)` ([`merkle::leaf_hash`]).
//! [`LogTree`] keeps every complete subtree, so any root, inclusion proof or consistency
//! proof costs O(log n) hashes; [`merkle`]'s slice functions define the same values and
//! serve as the reference in the tests.

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Hash};

/// Why a proof could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The entry is not in a tree of that size.
    #[error("entry {seq} is not in a tree of {tree_size} entries")]
    SeqOutOfRange {
        /// The entry.
        seq: u64,
        /// The tree size asked for.
        tree_size: u64,
    },
    /// A tree size larger than the log, or sizes in the wrong order.
    #[error("no tree of {size} entries: the log has {available}")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The entries the tree holds.
        available: u64,
    },
    /// A consistency proof needs `0 < old_size <= new_size`.
    #[error("no consistency proof from size {old_size} to size {new_size}")]
    BadSizes {
        /// The older size.
        old_size: u64,
        /// The newer size.
        new_size: u64,
    },
}

impl ProofError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SeqOutOfRange { .. } => "seq-out-of-range",
            Self::SizeOutOfRange { .. } => "size-out-of-range",
            Self::BadSizes { .. } => "bad-proof-sizes",
        }
    }
}

/// Proof that the entry `seq` is leaf `seq - 1` of the tree of `tree_size` entries
/// (RFC 6962 §2.1.1 audit path, hashes in lowercase hex when serialised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The entry's position in the log.
    pub seq: u64,
    /// The size of the tree (a checkpoint's size).
    pub tree_size: u64,
    /// The audit path, leaf to root.
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Whether the proof shows that an entry with hash `entry_hash` is at `seq` in the
    /// tree whose root is `root`.
    pub fn verify(&self, entry_hash: &Hash, root: &Hash) -> bool {
        let (Ok(index), Ok(size)) = (
            usize::try_from(self.seq.wrapping_sub(1)),
            usize::try_from(self.tree_size),
        ) else {
            return false;
        };
        self.seq >= 1
            && merkle::verify_inclusion(
                &merkle::leaf_hash(entry_hash),
                index,
                size,
                &self.path,
                root,
            )
    }

    /// [`InclusionProof::verify`] against a checkpoint of the same size.
    pub fn verify_in(&self, entry_hash: &Hash, checkpoint: &Checkpoint) -> bool {
        checkpoint.size == self.tree_size && self.verify(entry_hash, &checkpoint.root)
    }
}

/// Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`
/// entries (RFC 6962 §2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older, smaller size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// The proof's hashes.
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Whether the proof shows that `old_root` (of `old_size` entries) is a prefix of
    /// `new_root` (of `new_size` entries).
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> bool {
        let (Ok(old_size), Ok(new_size)) = (
            usize::try_from(self.old_size),
            usize::try_from(self.new_size),
        ) else {
            return false;
        };
        merkle::verify_consistency(old_size, new_size, old_root, new_root, &self.path)
    }

    /// [`ConsistencyProof::verify`] between two checkpoints of the proof's sizes.
    pub fn verify_between(&self, old: &Checkpoint, new: &Checkpoint) -> bool {
        old.size == self.old_size && new.size == self.new_size && self.verify(&old.root, &new.root)
    }
}

/// The Merkle tree of the log, built from entry hashes in `seq` order.
///
/// `levels[0]` holds the leaf hashes; `levels[h][j]` the root of the complete subtree of
/// leaves `j·2^h .. (j+1)·2^h`. Memory is two hashes per entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTree {
    levels: Vec<Vec<Hash>>,
}

impl LogTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree over these entry hashes, the first being `seq` 1.
    pub fn from_entry_hashes<'a>(hashes: impl IntoIterator<Item = &'a Hash>) -> Self {
        let mut tree = Self::new();
        for hash in hashes {
            tree.push(hash);
        }
        tree
    }

    /// Appends the entry with the next `seq`.
    pub fn push(&mut self, entry_hash: &Hash) {
        let mut node = merkle::leaf_hash(entry_hash);
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(node);
            if level.len() % 2 == 1 {
                break;
            }
            node = merkle::node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            height += 1;
        }
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The root over every entry.
    pub fn root(&self) -> Hash {
        self.subtree_root(0, self.leaves())
    }

    /// The root over the first `size` entries (what a checkpoint of that size signs).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        let size = self.check_size(size)?;
        Ok(self.subtree_root(0, size))
    }

    /// The proof that entry `seq` is in the tree of the first `tree_size` entries.
    pub fn inclusion_proof_for(
        &self,
        seq: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, ProofError> {
        let size = self.check_size(tree_size)?;
        if seq == 0 || seq > tree_size {
            return Err(ProofError::SeqOutOfRange { seq, tree_size });
        }
        let mut path = Vec::new();
        // seq <= tree_size, which fits in usize.
        self.inclusion_path((seq - 1) as usize, 0, size, &mut path);
        Ok(InclusionProof {
            seq,
            tree_size,
            path,
        })
    }

    /// The proof that the first `old_size` entries are a prefix of the first `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, ProofError> {
        if old_size == 0 || old_size > new_size {
            return Err(ProofError::BadSizes { old_size, new_size });
        }
        let new = self.check_size(new_size)?;
        let mut path = Vec::new();
        // old_size <= new_size, which fits in usize.
        self.subproof(old_size as usize, 0, new, true, &mut path);
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    fn leaves(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    fn check_size(&self, size: u64) -> Result<usize, ProofError> {
        match usize::try_from(size) {
            Ok(n) if n <= self.leaves() => Ok(n),
            _ => Err(ProofError::SizeOutOfRange {
                size,
                available: self.size(),
            }),
        }
    }

    /// The RFC 6962 root of leaves `start .. start + size`, where `start` is a multiple
    /// of the largest power of two not above `size` (true of every subtree the RFC's
    /// recursion visits).
    fn subtree_root(&self, start: usize, size: usize) -> Hash {
        match size {
            0 => merkle::empty_root(),
            _ if size.is_power_of_two() => {
                let height = size.trailing_zeros() as usize;
                self.levels[height][start >> height]
            }
            _ => {
                let k = split(size);
                merkle::node_hash(
                    &self.subtree_root(start, k),
                    &self.subtree_root(start + k, size - k),
                )
            }
        }
    }

    fn inclusion_path(&self, index: usize, start: usize, size: usize, path: &mut Vec<Hash>) {
        if size <= 1 {
            return;
        }
        let k = split(size);
        if index < k {
            self.inclusion_path(index, start, k, path);
            path.push(self.subtree_root(start + k, size - k));
        } else {
            self.inclusion_path(index - k, start + k, size - k, path);
            path.push(self.subtree_root(start, k));
        }
    }

    fn subproof(&self, m: usize, start: usize, size: usize, complete: bool, path: &mut Vec<Hash>) {
        if m == size {
            if !complete {
                path.push(self.subtree_root(start, size));
            }
            return;
        }
        let k = split(size);
        if m <= k {
            self.subproof(m, start, k, complete, path);
            path.push(self.subtree_root(start + k, size - k));
        } else {
            self.subproof(m - k, start + k, size - k, false, path);
            path.push(self.subtree_root(start, k));
        }
    }
}

/// The largest power of two strictly smaller than `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Serialises hashes as lowercase hex strings.
mod hex_hashes {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub(super) fn serialize<S: Serializer>(
        hashes: &[Hash],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hashes.iter().map(hex::encode))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Hash>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| {
                crate::entry::parse_hash_hex(text)
                    .ok_or_else(|| D::Error::custom("a hash must be 64 lowercase hex digits"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::frontier::Frontier;

    fn hashes(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest(i.to_le_bytes()).into())
            .collect()
    }

    #[test]
    fn roots_and_proofs_match_the_reference_functions() {
        let entries = hashes(70);
        let leaves: Vec<Hash> = entries.iter().map(|h| merkle::leaf_hash(h)).collect();
        let tree = LogTree::from_entry_hashes(&entries);
        let mut frontier = Frontier::new();
        assert_eq!(tree.root_at(0), Ok(merkle::empty_root()));
        assert_eq!(frontier.root(), merkle::empty_root());
        for n in 1..=70usize {
            frontier.push(&entries[n - 1]);
            let expected = merkle::root(&leaves[..n]);
            assert_eq!(tree.root_at(n as u64), Ok(expected), "n={n}");
            assert_eq!(frontier.root(), expected, "n={n}");
            assert_eq!(frontier.size(), n as u64);
            for index in 0..n {
                let proof = tree
                    .inclusion_proof_for(index as u64 + 1, n as u64)
                    .expect("in range");
                assert_eq!(
                    Some(proof.path.clone()),
                    merkle::inclusion_proof(&leaves[..n], index)
                );
                assert!(proof.verify(&entries[index], &expected));
                assert!(!proof.verify(&entries[(index + 1) % 70], &expected) || n == 1);
            }
            for m in 1..=n {
                let proof = tree
                    .consistency_proof(m as u64, n as u64)
                    .expect("in range");
                assert_eq!(
                    Some(proof.path.clone()),
                    merkle::consistency_proof(&leaves[..n], m)
                );
                assert!(proof.verify(&merkle::root(&leaves[..m]), &expected));
            }
        }
        assert_eq!(tree.root(), merkle::root(&leaves));
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = LogTree::from_entry_hashes(&hashes(5));
        assert_eq!(
            tree.root_at(6),
            Err(ProofError::SizeOutOfRange {
                size: 6,
                available: 5
            })
        );
        assert_eq!(
            tree.inclusion_proof_for(0, 5).map_err(|e| e.code()),
            Err("seq-out-of-range")
        );
        assert!(tree.inclusion_proof_for(5, 4).is_err());
        assert!(tree.inclusion_proof_for(1, u64::MAX).is_err());
        assert!(tree.consistency_proof(0, 5).is_err());
        assert!(tree.consistency_proof(4, 3).is_err());
        assert!(tree.consistency_proof(3, 6).is_err());
        let bogus = InclusionProof {
            seq: 0,
            tree_size: 5,
            path: Vec::new(),
        };
        assert!(!bogus.verify(&[0; 32], &tree.root()));
    }

    #[test]
    fn proofs_serialise_with_hex_hashes() {
        let entries = hashes(3);
        let tree = LogTree::from_entry_hashes(&entries);
        let proof = tree.inclusion_proof_for(2, 3).expect("in range");
        let json = serde_json::to_value(&proof).expect("serialises");
        assert_eq!(json["path"][0], hex::encode(proof.path[0]));
        let back: InclusionProof = serde_json::from_value(json).expect("parses");
        assert_eq!(back, proof);
        let bad = serde_json::json!({"seq": 1, "tree_size": 1, "path": ["AB"]});
        assert!(serde_json::from_value::<InclusionProof>(bad).is_err());
    }
}
