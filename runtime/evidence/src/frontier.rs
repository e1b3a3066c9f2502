//! The compact range of the log's Merkle tree: enough to extend it and give its root.
//!
//! A tree of `size` leaves splits, left to right, into perfect subtrees whose sizes are
//! the set bits of `size`, largest first (RFC 6962 §2.1 splits at the largest power of
//! two, so every tree is built this way). [`Frontier`] keeps only those subtree roots:
//! at most 64 hashes whatever the size. Appending a leaf merges the subtrees of equal
//! height it completes; the root folds them right to left. A store keeps one beside each
//! checkpoint ([`Frontier::to_text`]), so the next checkpoint reads only the entries
//! after it.

use crate::entry::{MAX_SAFE_INTEGER, hash_hex, parse_hash_hex};
use crate::merkle::{self, Hash};

/// The first word of every encoding [`Frontier::to_text`] writes.
const VERSION: &str = "v1";

/// Why a stored frontier was refused by [`Frontier::from_text`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The text does not start with a version this build reads.
    #[error("a frontier must start with `{VERSION}`")]
    UnknownVersion,
    /// The size is missing, not canonical decimal, or above the largest `seq`.
    #[error("a frontier's size must be a decimal number from 0 to {MAX_SAFE_INTEGER}")]
    BadSize,
    /// There is not one subtree root per set bit of the size.
    #[error("a frontier of {size} entries has {expected} subtree roots, not {found}")]
    WrongCount {
        /// The size the text gives.
        size: u64,
        /// The set bits of `size`.
        expected: u32,
        /// The hashes the text holds.
        found: usize,
    },
    /// A subtree root is not 64 lowercase hex digits.
    #[error("subtree root {index} of a frontier is not 64 lowercase hex digits")]
    BadHash {
        /// Its position, from 0 (the largest subtree).
        index: usize,
    },
}

impl FrontierError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownVersion => "frontier-version",
            Self::BadSize => "frontier-size",
            Self::WrongCount { .. } => "frontier-count",
            Self::BadHash { .. } => "frontier-hash",
        }
    }
}

/// The right edge of a Merkle tree being built: the roots of its perfect subtrees,
/// largest first, one per set bit of its size.
///
/// Gives the RFC 6962 root in O(log n) with O(log n) memory. [`LogTree`](crate::LogTree)
/// keeps every node and makes proofs; a frontier only extends and gives roots, which is
/// what cutting a checkpoint or checking checkpoints in one pass needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the entry with the next `seq`: its leaf is
    /// [`merkle::leaf_hash`]`(entry_hash)`, as in [`LogTree::push`](crate::LogTree::push).
    pub fn push(&mut self, entry_hash: &Hash) {
        // The new leaf completes one subtree per trailing set bit of the size: the
        // smallest subtrees, at the end of `roots`.
        let merges = (self.size.trailing_ones() as usize).min(self.roots.len());
        let keep = self.roots.len() - merges;
        let node = self
            .roots
            .drain(keep..)
            .rev()
            .fold(merkle::leaf_hash(entry_hash), |right, left| {
                merkle::node_hash(&left, &right)
            });
        self.roots.push(node);
        self.size += 1;
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root over every entry: [`merkle::empty_root`] when there is none.
    pub fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        match roots.next() {
            None => merkle::empty_root(),
            Some(last) => roots.fold(*last, |right, left| merkle::node_hash(left, &right)),
        }
    }

    /// The text a store keeps: `v1 <size>` then each subtree root in lowercase hex,
    /// largest first, separated by single spaces (`v1 0` for the empty tree).
    pub fn to_text(&self) -> String {
        let mut text = format!("{VERSION} {}", self.size);
        for root in &self.roots {
            text.push(' ');
            text.push_str(&hash_hex(root));
        }
        text
    }

    /// Reads what [`Frontier::to_text`] wrote, and nothing else: the version, a size
    /// in canonical decimal of at most [`MAX_SAFE_INTEGER`], and exactly one hash of 64
    /// lowercase hex digits per set bit of the size. Whether the hashes are the right
    /// ones is for the caller to check, against a root it trusts.
    pub fn from_text(text: &str) -> Result<Self, FrontierError> {
        let mut words = text.split(' ');
        if words.next() != Some(VERSION) {
            return Err(FrontierError::UnknownVersion);
        }
        let size = words
            .next()
            .and_then(parse_size)
            .ok_or(FrontierError::BadSize)?;
        let hashes: Vec<&str> = words.collect();
        let expected = size.count_ones();
        if hashes.len() != expected as usize {
            return Err(FrontierError::WrongCount {
                size,
                expected,
                found: hashes.len(),
            });
        }
        let roots = hashes
            .iter()
            .enumerate()
            .map(|(index, text)| parse_hash_hex(text).ok_or(FrontierError::BadHash { index }))
            .collect::<Result<Vec<Hash>, FrontierError>>()?;
        Ok(Self { size, roots })
    }
}

/// A size in canonical decimal (no sign, no leading zero) of at most
/// [`MAX_SAFE_INTEGER`].
fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok().filter(|&size| size <= MAX_SAFE_INTEGER)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::LogTree;

    fn hashes(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest((i as u64).to_be_bytes()).into())
            .collect()
    }

    #[test]
    fn every_size_up_to_300_has_the_log_tree_s_root_and_round_trips() {
        let entries = hashes(300);
        let mut frontier = Frontier::new();
        let mut tree = LogTree::new();
        assert_eq!(frontier.root(), tree.root());
        assert_eq!(frontier.to_text(), "v1 0");
        for (n, entry) in entries.iter().enumerate() {
            frontier.push(entry);
            tree.push(entry);
            let size = n as u64 + 1;
            assert_eq!(frontier.size(), size);
            assert_eq!(frontier.root(), tree.root(), "size {size}");
            let text = frontier.to_text();
            assert_eq!(text.split(' ').count(), 2 + size.count_ones() as usize);
            assert_eq!(Frontier::from_text(&text).as_ref(), Ok(&frontier));
        }
    }

    #[test]
    fn a_decoded_frontier_extends_like_the_original() {
        let entries = hashes(100);
        for cut in 0..entries.len() {
            let mut frontier = Frontier::new();
            entries[..cut].iter().for_each(|e| frontier.push(e));
            let mut resumed = Frontier::from_text(&frontier.to_text()).expect("decodes");
            entries[cut..].iter().for_each(|e| resumed.push(e));
            assert_eq!(
                resumed.root(),
                LogTree::from_entry_hashes(&entries).root(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn malformed_text_is_refused() {
        let mut three = Frontier::new();
        hashes(3).iter().for_each(|e| three.push(e));
        let good = three.to_text();
        let words: Vec<&str> = good.split(' ').collect();
        let (first, second) = (words[2], words[3]);
        let cases = [
            (String::new(), FrontierError::UnknownVersion),
            ("v2 0".to_owned(), FrontierError::UnknownVersion),
            (" v1 0".to_owned(), FrontierError::UnknownVersion),
            ("V1 0".to_owned(), FrontierError::UnknownVersion),
            ("v1".to_owned(), FrontierError::BadSize),
            ("v1 ".to_owned(), FrontierError::BadSize),
            ("v1 +3".to_owned(), FrontierError::BadSize),
            ("v1 -1".to_owned(), FrontierError::BadSize),
            ("v1 03".to_owned(), FrontierError::BadSize),
            ("v1 3x".to_owned(), FrontierError::BadSize),
            ("v1 9007199254740992".to_owned(), FrontierError::BadSize),
            ("v1 18446744073709551616".to_owned(), FrontierError::BadSize),
            (
                "v1 0 ".to_owned(),
                FrontierError::WrongCount {
                    size: 0,
                    expected: 0,
                    found: 1,
                },
            ),
            (
                format!("v1 3 {first}"),
                FrontierError::WrongCount {
                    size: 3,
                    expected: 2,
                    found: 1,
                },
            ),
            (
                format!("v1 4 {first} {second}"),
                FrontierError::WrongCount {
                    size: 4,
                    expected: 1,
                    found: 2,
                },
            ),
            (
                format!("v1 3  {first} {second}"),
                FrontierError::WrongCount {
                    size: 3,
                    expected: 2,
                    found: 3,
                },
            ),
            (
                format!("v1 3 {first} {second} "),
                FrontierError::WrongCount {
                    size: 3,
                    expected: 2,
                    found: 3,
                },
            ),
            (
                format!("v1 3 {first} {}", second.to_uppercase()),
                FrontierError::BadHash { index: 1 },
            ),
            (
                format!("v1 3 {} {second}", &first[..62]),
                FrontierError::BadHash { index: 0 },
            ),
            (
                format!("v1 3 {first}\n {second}"),
                FrontierError::BadHash { index: 0 },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Frontier::from_text(&text), Err(expected), "{text:?}");
        }
        assert_eq!(Frontier::from_text(&good).map(|f| f.size()), Ok(3));
        assert_eq!(FrontierError::BadSize.code(), "frontier-size");
    }

    #[test]
    fn the_largest_size_decodes_with_one_root_per_set_bit() {
        let roots = vec![hash_hex(&[7; 32]); 53].join(" ");
        let frontier =
            Frontier::from_text(&format!("v1 {MAX_SAFE_INTEGER} {roots}")).expect("decodes");
        assert_eq!(frontier.size(), MAX_SAFE_INTEGER);
        assert_eq!(frontier.to_text(), format!("v1 {MAX_SAFE_INTEGER} {roots}"));
    }

    proptest! {
        #[test]
        fn any_entries_give_the_log_tree_s_root(
            entries in proptest::collection::vec(any::<[u8; 32]>(), 0..300),
        ) {
            let mut frontier = Frontier::new();
            entries.iter().for_each(|e| frontier.push(e));
            prop_assert_eq!(frontier.root(), LogTree::from_entry_hashes(&entries).root());
            prop_assert_eq!(Frontier::from_text(&frontier.to_text()), Ok(frontier));
        }

        #[test]
        fn any_text_decodes_only_to_what_encodes_back_to_it(text in "v1 [0-9]{0,3}( [0-9a-f]{64}){0,4}|\\PC{0,80}") {
            if let Ok(frontier) = Frontier::from_text(&text) {
                prop_assert_eq!(frontier.to_text(), text);
            }
        }
    }
}
