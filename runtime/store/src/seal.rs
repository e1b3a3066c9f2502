//! Batch seals: each evidence write transaction signs the whole log's size and root.
//!
//! A [`Store`] made [`sealed`](Store::sealed) with an [`EvidenceSeal`] stores, in the
//! same transaction as every batch of entries it appends, a row of `evidence_seals`: the
//! evidence key's signature over relo-evidence's [`SealStatement`] (origin, the batch's
//! first `seq`, the log's size and RFC 6962 root after it, and a link to the previous
//! seal). The row keeps the tree's [`Frontier`], so the next seal costs one signature
//! check, one signature and the new leaves, not a read of the log.
//!
//! [`SealCheck`] walks a run of seals as a reader rebuilds the tree: each must verify
//! with a key of the ring, follow the previous seal, and sign the root the stored
//! entries give at its size. A database writer who rewrites entries consistently
//! (bodies, hashes, links, `seq`) cannot make that root without the key.

use std::fmt;
use std::sync::Arc;

use relo_evidence::{
    Frontier, KeyRing, KeyStatus, SealStatement, open_checkpoint, seal_link, verify_seal,
};
use relo_trust::Signer;

use crate::error::{Result, StoreError};
use crate::evidence::{EvidenceTampered, Hash, HashFn, StoredEntry, decode_hash, non_negative};
use crate::store::{LockedTx, on_backend};

/// The columns of `evidence_seals`, in the order [`SealRow`] decodes them.
const SEAL_COLUMNS: &str = "id, first_seq, size, root, previous, frontier, key_id, signature";

/// A row of `evidence_seals` as the drivers decode it.
type SealRow = (i64, i64, i64, String, String, String, String, String);

/// The key a store seals its evidence batches with, and the keys whose seals it trusts.
#[derive(Clone)]
pub struct EvidenceSeal {
    /// The evidence key (the one checkpoints are signed with).
    pub signer: Arc<dyn Signer>,
    /// The log's origin ([`Store::evidence_origin`](crate::Store::evidence_origin)).
    pub origin: String,
    /// Every evidence key whose seals verify: the active one and the retired ones.
    pub keys: KeyRing,
}

impl EvidenceSeal {
    /// A seal by `signer` that trusts only `signer`'s key (active, named after the log's
    /// `origin`): a log that never rotated its evidence key.
    pub fn with_key(
        signer: Arc<dyn Signer>,
        origin: &str,
    ) -> std::result::Result<EvidenceSeal, relo_evidence::CheckpointError> {
        let mut keys = KeyRing::new();
        keys.add(origin, signer.public_key().clone(), KeyStatus::Active)?;
        Ok(EvidenceSeal {
            signer,
            origin: origin.to_owned(),
            keys,
        })
    }
}

impl fmt::Debug for EvidenceSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvidenceSeal")
            .field("key_id", &self.signer.key_id())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A stored batch seal, its columns as the database holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeal {
    /// Its position among seals, from 1, gapless.
    pub id: u64,
    /// The first `seq` of its batch.
    pub first: u64,
    /// The log's size after its batch (the batch's last `seq`).
    pub size: u64,
    /// The Merkle root it signed, lowercase hex.
    pub root: String,
    /// SHA-256 of the previous seal's signature, hex, or `-` for the first seal.
    pub previous: String,
    /// The tree's compact range at `size` ([`Frontier::to_text`]).
    pub frontier: String,
    /// relo's key id of the evidence key that signed it.
    pub key_id: String,
    /// The signature, hex.
    pub signature: String,
}

impl StoredSeal {
    fn from_row(row: SealRow) -> Result<StoredSeal> {
        let (id, first, size, root, previous, frontier, key_id, signature) = row;
        Ok(StoredSeal {
            id: non_negative(id, "evidence_seals.id")?,
            first: non_negative(first, "evidence_seals.first_seq")?,
            size: non_negative(size, "evidence_seals.size")?,
            root,
            previous,
            frontier,
            key_id,
            signature,
        })
    }

    /// `seal 3 (entries 5-9)`: how findings name it.
    pub fn subject(&self) -> String {
        format!("seal {} (entries {}-{})", self.id, self.first, self.size)
    }

    /// What the seal claims to have signed, decoded from its columns.
    fn statement(&self, origin: &str) -> std::result::Result<SealStatement, String> {
        let root = decode_hash(&self.root).ok_or("its root is not 64 hex digits")?;
        let previous = match self.previous.as_str() {
            "-" => None,
            text => Some(decode_hash(text).ok_or("its link is neither `-` nor 64 hex digits")?),
        };
        Ok(SealStatement {
            origin: origin.to_owned(),
            first: self.first,
            size: self.size,
            root,
            previous,
        })
    }

    /// Checks its signature over its own columns with `keys`; returns its link.
    fn verified(&self, keys: &KeyRing, origin: &str) -> std::result::Result<Hash, String> {
        let statement = self.statement(origin)?;
        let signature = hex::decode(&self.signature).map_err(|_| "its signature is not hex")?;
        verify_seal(keys, &self.key_id, &statement, &signature).map_err(|err| err.to_string())?;
        Ok(seal_link(&signature))
    }

    fn tampered(&self, reason: impl Into<String>) -> EvidenceTampered {
        EvidenceTampered {
            seq: self.first,
            subject: self.subject(),
            reason: reason.into(),
        }
    }
}

/// Checks a run of seals, in `id` order, against the Merkle tree a reader rebuilds
/// from the stored entries.
///
/// Give it the seals that end after the point the reader starts from and, as the
/// `anchor`, the seal just before them (its signature is checked, and it links the
/// first). Call [`reached`](SealCheck::reached) after each leaf; when the tree's size is
/// a seal's size, that seal must verify with a key of the ring, follow the previous
/// seal (its `first` right after the previous size, its link the previous signature's
/// SHA-256, its `id` the next) and have signed the tree's root.
#[derive(Debug)]
pub struct SealCheck<'a> {
    keys: &'a KeyRing,
    origin: &'a str,
    pending: std::vec::IntoIter<StoredSeal>,
    next: Option<StoredSeal>,
    /// The previous seal's `(id, size, link)`.
    previous: Option<(u64, u64, Hash)>,
}

impl<'a> SealCheck<'a> {
    /// Starts a check of `seals` (ordered by `id`) after `anchor`.
    pub fn new(
        keys: &'a KeyRing,
        origin: &'a str,
        anchor: Option<&StoredSeal>,
        seals: Vec<StoredSeal>,
    ) -> std::result::Result<SealCheck<'a>, EvidenceTampered> {
        let previous = anchor
            .map(|seal| {
                let link = seal.verified(keys, origin).map_err(|r| seal.tampered(r))?;
                Ok::<_, EvidenceTampered>((seal.id, seal.size, link))
            })
            .transpose()?;
        let mut pending = seals.into_iter();
        let next = pending.next();
        Ok(SealCheck {
            keys,
            origin,
            pending,
            next,
            previous,
        })
    }

    /// The tree now has `size` leaves: checks the seal ending here against the tree's
    /// root, which `root` computes only when a seal ends here.
    pub fn reached(
        &mut self,
        size: u64,
        root: impl FnOnce() -> Hash,
    ) -> std::result::Result<(), EvidenceTampered> {
        let Some(seal) = self.next.take_if(|seal| seal.size <= size) else {
            return Ok(());
        };
        if seal.size < size {
            return Err(seal.tampered(format!(
                "ends inside the log at {}, after an earlier seal ended at or past it",
                seal.size
            )));
        }
        let link = self.check(&seal, root()).map_err(|r| seal.tampered(r))?;
        self.previous = Some((seal.id, seal.size, link));
        self.next = self.pending.next();
        Ok(())
    }

    fn check(&self, seal: &StoredSeal, root: Hash) -> std::result::Result<Hash, String> {
        let statement = seal.statement(self.origin)?;
        match self.previous {
            Some((id, size, link)) => {
                if seal.id != id + 1 || seal.first != size + 1 {
                    return Err(format!(
                        "does not follow seal {id}, which ends at entry {size}: a seal is missing"
                    ));
                }
                if statement.previous != Some(link) {
                    return Err(format!("does not link to seal {id}'s signature"));
                }
            }
            None if statement.previous.is_some() => {
                return Err("links to a seal that is not stored".into());
            }
            None => {}
        }
        if statement.root != root {
            return Err(format!(
                "signed the root {} but the stored entries give {} at {}: entries it covers were changed",
                seal.root,
                hex::encode(root),
                seal.size
            ));
        }
        seal.verified(self.keys, self.origin)
    }

    /// The size the last checked seal (or the anchor) covers; 0 when none.
    pub fn sealed_size(&self) -> u64 {
        self.previous.map_or(0, |(_, size, _)| size)
    }

    /// Ends the check at a log of `size` entries: a seal not reached claims entries
    /// the log lacks.
    pub fn finish(self, size: u64) -> std::result::Result<u64, EvidenceTampered> {
        if let Some(seal) = self.next {
            return Err(seal.tampered(format!(
                "covers entries up to {} but the log holds {size}: entries were deleted",
                seal.size
            )));
        }
        Ok(self.sealed_size())
    }
}

/// Seals a batch just inserted in `locked`: `entries` (numbered, chained and inserted by
/// the caller, in `seq` order) extend the frontier of the latest seal, whose signature
/// and frontier are checked first, and the new size and root are signed and stored.
///
/// The latest seal must end right before the batch: entries after it that no seal
/// covers were put there outside relo's writer, and nothing more is sealed over them
/// ([`StoreError::Tampered`]). When the log has no seal yet (a log from before schema
/// version 10), the first seal extends the latest checkpoint that verifies with the
/// ring, checking every entry after it as a checkpoint does.
pub(crate) async fn seal_batch(
    locked: &mut LockedTx,
    entries: &[StoredEntry],
    seal: &EvidenceSeal,
    hasher: &HashFn,
) -> Result<()> {
    let Some(first) = entries.first() else {
        return Ok(());
    };
    let (frontier, previous, id) = match latest_seal(locked).await? {
        Some(last) => {
            let (mut frontier, link) = trusted_frontier(&last, seal)?;
            if last.size + 1 != first.seq {
                return Err(EvidenceTampered {
                    seq: last.size + 1,
                    subject: format!("entries {}-{}", last.size + 1, first.seq - 1),
                    reason:
                        "are covered by no seal: they were stored outside relo's evidence writer"
                            .into(),
                }
                .into());
            }
            for entry in entries {
                frontier.push(&leaf(entry)?);
            }
            (frontier, Some(link), last.id + 1)
        }
        None => (first_frontier(locked, seal, hasher).await?, None, 1),
    };
    let statement = SealStatement {
        origin: seal.origin.clone(),
        first: first.seq,
        size: frontier.size(),
        root: frontier.root(),
        previous,
    };
    let signature = seal
        .signer
        .sign(&statement.message())
        .map_err(StoreError::Seal)?;
    insert_seal(locked, id, &statement, &frontier, seal, &signature).await
}

/// The frontier and link of `last`, once its frontier matches its size and root and its
/// signature verifies.
fn trusted_frontier(last: &StoredSeal, seal: &EvidenceSeal) -> Result<(Frontier, Hash)> {
    let link = last
        .verified(&seal.keys, &seal.origin)
        .map_err(|reason| last.tampered(reason))?;
    let frontier = Frontier::from_text(&last.frontier)
        .ok()
        .filter(|f| f.size() == last.size && hex::encode(f.root()) == last.root)
        .ok_or_else(|| last.tampered("has a frontier that is not its size and root"))?;
    Ok((frontier, link))
}

/// The tree over the whole log (the batch just inserted included) for the log's first
/// seal: the latest checkpoint's frontier when its note verifies with the ring, extended
/// with every entry after it, each checked ([`crate::evidence::extend_frontier`]).
async fn first_frontier(
    locked: &mut LockedTx,
    seal: &EvidenceSeal,
    hasher: &HashFn,
) -> Result<Frontier> {
    let latest: Option<(i64, String, String, Option<String>)> = on_backend!(&mut locked.tx, |tx| {
        sqlx::query_as(
            "SELECT size, root, note, frontier FROM checkpoints ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut **tx)
        .await?
    });
    let trusted = latest.and_then(|(size, root, note, frontier)| {
        let verified = open_checkpoint(note.as_bytes(), &seal.keys, Some(&seal.origin)).ok()?;
        let frontier = Frontier::from_text(&frontier?).ok()?;
        let matches = i64::try_from(frontier.size()).ok() == Some(size)
            && verified.checkpoint.size == frontier.size()
            && hex::encode(frontier.root()) == root
            && verified.checkpoint.root == frontier.root();
        matches.then_some(frontier)
    });
    crate::evidence::extend_frontier(locked, trusted, hasher, None).await
}

async fn insert_seal(
    locked: &mut LockedTx,
    id: u64,
    statement: &SealStatement,
    frontier: &Frontier,
    seal: &EvidenceSeal,
    signature: &[u8],
) -> Result<()> {
    let previous = statement
        .previous
        .map_or_else(|| "-".to_owned(), hex::encode);
    let numbers = [id, statement.first, statement.size].map(i64::try_from);
    let [Ok(id), Ok(first), Ok(size)] = numbers else {
        return Err(StoreError::InvalidEntry(
            "a seal's numbers do not fit the database's 64-bit integers".into(),
        ));
    };
    on_backend!(&mut locked.tx, |tx| {
        sqlx::query(
            "INSERT INTO evidence_seals (id, first_seq, size, root, previous, frontier, key_id, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(first)
        .bind(size)
        .bind(hex::encode(statement.root))
        .bind(&previous)
        .bind(frontier.to_text())
        .bind(seal.signer.key_id())
        .bind(hex::encode(signature))
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
}

async fn latest_seal(locked: &mut LockedTx) -> Result<Option<StoredSeal>> {
    let sql = format!("SELECT {SEAL_COLUMNS} FROM evidence_seals ORDER BY id DESC LIMIT 1");
    let row: Option<SealRow> = on_backend!(&mut locked.tx, |tx| {
        sqlx::query_as(&sql).fetch_optional(&mut **tx).await?
    });
    row.map(StoredSeal::from_row).transpose()
}

/// The seals that end after `size`, and the one before the first of them (the anchor),
/// read in `locked`.
pub(crate) async fn seals_after(
    locked: &mut LockedTx,
    size: u64,
) -> Result<(Option<StoredSeal>, Vec<StoredSeal>)> {
    let size = i64::try_from(size)
        .map_err(|_| StoreError::InvalidEntry(format!("{size} does not fit 64 bits")))?;
    let sql = format!(
        "SELECT {SEAL_COLUMNS} FROM evidence_seals
         WHERE id >= (SELECT COALESCE(MAX(id), 0) FROM evidence_seals WHERE size <= $1)
         ORDER BY id"
    );
    let rows: Vec<SealRow> = on_backend!(&mut locked.tx, |tx| {
        sqlx::query_as(&sql).bind(size).fetch_all(&mut **tx).await?
    });
    split_anchor(rows, size)
}

impl crate::Store {
    /// Every batch seal, in `id` order.
    pub async fn seals(&self) -> Result<Vec<StoredSeal>> {
        let sql = format!("SELECT {SEAL_COLUMNS} FROM evidence_seals ORDER BY id");
        let rows: Vec<SealRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(StoredSeal::from_row).collect()
    }
}

fn split_anchor(rows: Vec<SealRow>, size: i64) -> Result<(Option<StoredSeal>, Vec<StoredSeal>)> {
    let mut seals = rows
        .into_iter()
        .map(StoredSeal::from_row)
        .collect::<Result<Vec<_>>>()?;
    let anchored = seals
        .first()
        .is_some_and(|s| i64::try_from(s.size).ok() <= Some(size));
    let anchor = anchored.then(|| seals.remove(0));
    Ok((anchor, seals))
}

fn leaf(entry: &StoredEntry) -> Result<Hash> {
    decode_hash(&entry.hash).ok_or_else(|| {
        StoreError::Inconsistent(format!(
            "entry {} has hash `{}`, not 64 hex digits",
            entry.seq, entry.hash
        ))
    })
}
