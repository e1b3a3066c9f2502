//! Batch seals: one signature per write transaction over the whole log's size and root.
//!
//! An entry's hash is unkeyed, so whoever can write the database can rewrite the entries
//! after the last checkpoint consistently (bodies, hashes, links, `seq`). A seal closes
//! that window: each write transaction of the evidence log also stores a signature by
//! the evidence key over the log's size and its RFC 6962 root at that size (the tree
//! checkpoints sign), chained to the previous seal. A reader trusts an entry only if a
//! seal or a checkpoint covers it; a rewritten tail no longer gives the root its seal
//! signed.
//!
//! The signed message is text, one field per line:
//!
//! ```text
//! relo evidence seal v1
//! <origin>
//! <first seq of the batch>
//! <size: the last seq of the batch>
//! <root: 64 lowercase hex digits>
//! <previous: SHA-256 of the previous seal's signature, hex, or `-` for the first seal>
//! ```

use sha2::{Digest as _, Sha256};

use crate::checkpoint::{KeyRing, KeyStatus};
use crate::merkle::Hash;

/// The first line of every seal message.
const SEAL_HEADER: &str = "relo evidence seal v1";

/// What one batch seal signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStatement {
    /// The log's origin ([`evidence_origin`](crate::evidence_origin)).
    pub origin: String,
    /// The first `seq` the batch appended.
    pub first: u64,
    /// The log's size after the batch: its last `seq`.
    pub size: u64,
    /// The RFC 6962 root over every entry hash up to `size`.
    pub root: Hash,
    /// SHA-256 of the previous seal's signature; `None` for the first seal of the log.
    pub previous: Option<Hash>,
}

impl SealStatement {
    /// The exact bytes the evidence key signs.
    pub fn message(&self) -> Vec<u8> {
        let previous = self.previous.map_or_else(|| "-".to_owned(), hex::encode);
        format!(
            "{SEAL_HEADER}\n{}\n{}\n{}\n{}\n{previous}\n",
            self.origin,
            self.first,
            self.size,
            hex::encode(self.root)
        )
        .into_bytes()
    }
}

/// The link a seal gives the next one: SHA-256 of its signature bytes.
pub fn seal_link(signature: &[u8]) -> Hash {
    Sha256::digest(signature).into()
}

/// Why a seal was refused by [`verify_seal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No key of the ring has the seal's key id.
    #[error("it names key {key_id}, which is not an evidence key")]
    UnknownKey {
        /// relo's key id the seal row names.
        key_id: String,
    },
    /// The key was retired before the log reached this size.
    #[error("key {key_id} was retired at {last_size} entries; it cannot seal {size}")]
    RetiredKey {
        /// The key id.
        key_id: String,
        /// The largest size the key may have signed.
        last_size: u64,
        /// The seal's size.
        size: u64,
    },
    /// The signature does not verify over the statement.
    #[error("its signature by key {key_id} does not verify over its size and root")]
    BadSignature {
        /// The key id.
        key_id: String,
    },
}

/// Checks that `signature` by the key of the ring with relo key id `key_id` verifies over
/// `statement`, and that the key was allowed to sign a log of that size.
pub fn verify_seal(
    keys: &KeyRing,
    key_id: &str,
    statement: &SealStatement,
    signature: &[u8],
) -> Result<(), SealError> {
    let key = keys
        .keys()
        .iter()
        .find(|k| k.public_key().key_id() == key_id)
        .ok_or_else(|| SealError::UnknownKey {
            key_id: key_id.to_owned(),
        })?;
    // A key's last checkpoint is recorded in the log by one more entry (its
    // `checkpoint.cut`), which the key seals too.
    if let KeyStatus::Retired {
        last_size: Some(last_size),
    } = key.status()
        && statement.size > last_size + 1
    {
        return Err(SealError::RetiredKey {
            key_id: key_id.to_owned(),
            last_size,
            size: statement.size,
        });
    }
    key.public_key()
        .verify(&statement.message(), signature)
        .map_err(|_| SealError::BadSignature {
            key_id: key_id.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use relo_trust::{KeyAlgorithm, PrivateKey};

    fn statement(size: u64) -> SealStatement {
        SealStatement {
            origin: "relo.dev/evidence/test".into(),
            first: 1,
            size,
            root: [7; 32],
            previous: None,
        }
    }

    fn ring_with(key: &PrivateKey, status: KeyStatus) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.add("test", key.public_key().clone(), status)
            .expect("add");
        ring
    }

    #[test]
    fn the_message_names_every_field() {
        let mut s = statement(3);
        let text = String::from_utf8(s.message()).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "relo evidence seal v1\nrelo.dev/evidence/test\n1\n3\n{}\n-\n",
                "07".repeat(32)
            )
        );
        s.previous = Some([1; 32]);
        assert!(
            String::from_utf8(s.message())
                .expect("utf-8")
                .ends_with(&format!("{}\n", "01".repeat(32)))
        );
    }

    #[test]
    fn a_seal_verifies_only_over_what_was_signed() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let ring = ring_with(&key, KeyStatus::Active);
        let signed = statement(3);
        let signature = key.sign(&signed.message());
        let id = key.public_key().key_id();
        assert_eq!(verify_seal(&ring, id, &signed, &signature), Ok(()));
        let other_root = SealStatement {
            root: [8; 32],
            ..signed.clone()
        };
        assert!(matches!(
            verify_seal(&ring, id, &other_root, &signature),
            Err(SealError::BadSignature { .. })
        ));
        let unchained = SealStatement {
            previous: Some([0; 32]),
            ..signed.clone()
        };
        assert!(verify_seal(&ring, id, &unchained, &signature).is_err());
        assert!(matches!(
            verify_seal(&ring, "sha256:other", &signed, &signature),
            Err(SealError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_retired_key_seals_nothing_past_its_rotation() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let ring = ring_with(&key, KeyStatus::Retired { last_size: Some(3) });
        let id = key.public_key().key_id();
        let cut = SealStatement {
            first: 4,
            size: 4,
            ..statement(4)
        };
        let signature = key.sign(&cut.message());
        assert_eq!(verify_seal(&ring, id, &cut, &signature), Ok(()));
        let later = SealStatement {
            first: 5,
            size: 5,
            ..statement(5)
        };
        let signature = key.sign(&later.message());
        assert!(matches!(
            verify_seal(&ring, id, &later, &signature),
            Err(SealError::RetiredKey { last_size: 3, .. })
        ));
    }
}
