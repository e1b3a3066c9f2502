//! The evidence log: appending hash-chained entries, checkpoints, and reading them back.

use std::collections::HashMap;
use std::time::SystemTime;

use relo_evidence::{
    EntryContent, EntryError, EntryFields, EvidenceEntry, EvidenceEvent, EvidenceRecord, Frontier,
    Scope,
};

use relo_trust::Signer;

use crate::error::{Result, StoreError};
use crate::seal::{SealCheck, seal_batch, seals_after};
use crate::store::{Backend, LockedTx, Store, on_backend};
use relo_evidence::rfc3339_utc;

/// A SHA-256 hash (or any 32-byte digest the caller's hasher returns).
pub type Hash = [u8; 32];

/// The `prev_hash` of the first entry of every scope: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries per INSERT statement: 9 parameters each stays far below both backends' limits.
const ROWS_PER_INSERT: usize = 500;

/// Scopes whose last entry one statement looks up.
const SCOPES_PER_LOOKUP: usize = 100;

/// The columns of `evidence_entries`, in the order [`EntryRow`] decodes them.
const ENTRY_COLUMNS: &str = "seq, scope, scope_seq, step_id, kind, time, body, prev_hash, hash";

/// A row of `evidence_entries` as the drivers decode it.
type EntryRow = (
    i64,
    String,
    i64,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
);

/// A row of `checkpoints` as the drivers decode it.
type CheckpointRow = (i64, i64, String, String, String, String);

/// A row of `checkpoints` with its frontier (NULL before schema version 9).
type CheckpointFrontierRow = (i64, i64, String, String, String, String, Option<String>);

/// An evidence entry before the store numbers and chains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    /// The chain it belongs to: a run id or `control`.
    pub scope: String,
    /// The step it concerns, if any.
    pub step_id: Option<String>,
    /// The event kind (`egress.denied`, `step.finished`, ...).
    pub kind: String,
    /// When it happened: RFC 3339 UTC, as [`rfc3339_utc`] writes it.
    pub time: String,
    /// The event as canonical JSON.
    pub body: String,
}

impl EntryDraft {
    /// The draft of an evidence record: relo-evidence's
    /// [`EntryContent::from_record`] (scope, step, kind, RFC 3339 time, and the event
    /// without its `kind` tag as the body), with the body as RFC 8785 canonical JSON.
    /// This is the one way a record becomes a stored entry.
    pub fn from_record(record: &EvidenceRecord) -> EntryDraft {
        EntryDraft::from_content(&EntryContent::from_record(record))
    }

    /// The draft of entry content made by hand (a control-scope entry such as
    /// `key.rotated`), its body written as canonical JSON.
    pub fn from_content(content: &EntryContent) -> EntryDraft {
        EntryDraft {
            scope: content.scope.clone(),
            step_id: content.step_id.clone(),
            kind: content.kind.clone(),
            time: content.time.clone(),
            body: content.body_json(),
        }
    }
}

/// The hash relo's evidence log chains with: relo-evidence's [`relo_evidence::entry_hash`]
/// over the entry's fields, the stored body text read back as JSON.
///
/// This is [`WriterOptions`](crate::WriterOptions)'s default hasher and what the
/// verifier recomputes. It fails for a body that is not a JSON object or holds a number
/// RFC 8785 cannot represent; drafts made by [`EntryDraft::from_record`] never do.
pub fn entry_hash(entry: &EntryToHash<'_>) -> std::result::Result<Hash, EntryError> {
    let body = EvidenceEntry::parse_stored_body(entry.body);
    relo_evidence::entry_hash(&EntryFields {
        seq: entry.seq,
        scope: entry.scope,
        scope_seq: entry.scope_seq,
        step_id: entry.step_id,
        kind: entry.kind,
        time: entry.time,
        body: &body,
        prev_hash: entry.prev_hash,
    })
}

/// Everything an entry's hash covers, handed to the caller's hasher during an append.
///
/// relo-store does not define the hash: relo-evidence hashes the canonical JSON of these
/// fields. `prev_hash` is the hex hash of the previous entry of the same scope, or
/// [`GENESIS_PREV_HASH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryToHash<'a> {
    /// Position in the global log, from 1, gapless.
    pub seq: u64,
    /// The chain.
    pub scope: &'a str,
    /// Position in the scope's chain, from 1, gapless.
    pub scope_seq: u64,
    /// The step, if any.
    pub step_id: Option<&'a str>,
    /// The event kind.
    pub kind: &'a str,
    /// When it happened (RFC 3339).
    pub time: &'a str,
    /// The event as canonical JSON.
    pub body: &'a str,
    /// The previous entry's hash in this scope, lowercase hex.
    pub prev_hash: &'a str,
}

/// An evidence entry as stored.
///
/// Hashes are kept as the text the database holds, so a reader sees exactly what is
/// stored, valid or tampered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Position in the global log, from 1.
    pub seq: u64,
    /// The chain.
    pub scope: String,
    /// Position in the scope's chain, from 1.
    pub scope_seq: u64,
    /// The step, if any.
    pub step_id: Option<String>,
    /// The event kind.
    pub kind: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// The event as canonical JSON.
    pub body: String,
    /// The previous entry's hash in this scope, lowercase hex.
    pub prev_hash: String,
    /// This entry's hash, lowercase hex.
    pub hash: String,
}

impl StoredEntry {
    /// The fields the hash covers, to recompute it.
    pub fn to_hash(&self) -> EntryToHash<'_> {
        EntryToHash {
            seq: self.seq,
            scope: &self.scope,
            scope_seq: self.scope_seq,
            step_id: self.step_id.as_deref(),
            kind: &self.kind,
            time: &self.time,
            body: &self.body,
            prev_hash: &self.prev_hash,
        }
    }

    /// The entry as relo-evidence's verifier reads it: the body text parsed back into
    /// JSON (text that is not JSON becomes `null`, which never verifies).
    pub fn to_evidence_entry(&self) -> EvidenceEntry {
        EvidenceEntry {
            seq: self.seq,
            scope: self.scope.clone(),
            scope_seq: self.scope_seq,
            step_id: self.step_id.clone(),
            kind: self.kind.clone(),
            time: self.time.clone(),
            body: EvidenceEntry::parse_stored_body(&self.body),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }

    fn from_row(row: EntryRow) -> Result<StoredEntry> {
        let (seq, scope, scope_seq, step_id, kind, time, body, prev_hash, hash) = row;
        Ok(StoredEntry {
            seq: non_negative(seq, "evidence_entries.seq")?,
            scope,
            scope_seq: non_negative(scope_seq, "evidence_entries.scope_seq")?,
            step_id,
            kind,
            time,
            body,
            prev_hash,
            hash,
        })
    }
}

/// What a checkpoint is cut over: the whole log at the moment the write lock was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBasis {
    /// The number of entries (the Merkle tree's size); the highest `seq`.
    pub size: u64,
    /// The compact range of the Merkle tree over every entry hash in `seq` order: its
    /// [`root`](Frontier::root) is the root the checkpoint must sign.
    pub frontier: Frontier,
    /// The latest checkpoint stored before this one.
    pub previous: Option<Checkpoint>,
}

/// A checkpoint to store, made by the caller from a [`CheckpointBasis`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDraft {
    /// The Merkle root over the log: the basis's [`Frontier::root`], or the checkpoint
    /// is refused.
    pub root: Hash,
    /// The signed note (C2SP format) that commits to the size and root.
    pub note: String,
    /// The id of the key that signed the note.
    pub key_id: String,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its position among checkpoints, increasing.
    pub id: u64,
    /// The tree size it covers.
    pub size: u64,
    /// The Merkle root, lowercase hex.
    pub root: String,
    /// The signed note.
    pub note: String,
    /// The id of the key that signed it.
    pub key_id: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
}

impl Checkpoint {
    fn from_row(row: CheckpointRow) -> Result<Checkpoint> {
        let (id, size, root, note, key_id, created_at) = row;
        Ok(Checkpoint {
            id: non_negative(id, "checkpoints.id")?,
            size: non_negative(size, "checkpoints.size")?,
            root,
            note,
            key_id,
            created_at,
        })
    }
}

/// A hash function for [`Store::append`]: [`entry_hash`], or a test's own. An error
/// fails the append ([`StoreError::Hash`]) and nothing of it is stored.
pub type HashFn = dyn Fn(&EntryToHash<'_>) -> std::result::Result<Hash, EntryError> + Sync;

/// A caller-supplied function that builds a checkpoint; an error refuses it.
pub type CheckpointError = Box<dyn std::error::Error + Send + Sync>;

impl Store {
    /// Appends `drafts`, in order, as one transaction, and returns them as stored.
    ///
    /// Under the write lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock) it
    /// reads the highest `seq` and the last `(scope_seq, hash)` of each scope in the
    /// batch, numbers the drafts gaplessly, links each to the previous entry of its
    /// scope, hashes it with `hasher`, inserts them all, and commits. When this returns
    /// `Ok` the entries are durable; on error none of them is stored.
    pub async fn append(&self, drafts: &[EntryDraft], hasher: &HashFn) -> Result<Vec<StoredEntry>> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        for draft in drafts {
            if draft.scope.is_empty() || draft.kind.is_empty() {
                return Err(StoreError::InvalidEntry(format!(
                    "scope and kind must not be empty (scope `{}`, kind `{}`)",
                    draft.scope, draft.kind
                )));
            }
        }
        let mut locked = self.begin_locked().await?;
        let entries = chain(&mut locked, drafts, hasher).await?;
        insert_entries(&mut locked, &entries).await?;
        if let Some(seal) = self.seal() {
            seal_batch(&mut locked, &entries, seal, hasher).await?;
        }
        locked.commit().await?;
        Ok(entries)
    }

    /// Stores a checkpoint of the whole log, under the write lock.
    ///
    /// `make` receives the log's size, the [`Frontier`] of its Merkle tree and the
    /// previous checkpoint, and returns the root and signed note; no entry can be
    /// appended between reading the basis and storing the checkpoint. The frontier is
    /// the previous checkpoint's, extended with the entries after it, so the cost grows
    /// with the entries since then, not with the log; a previous checkpoint stored
    /// before schema version 9 has none, and the first checkpoint after it reads every
    /// entry. The new checkpoint is stored with its frontier.
    ///
    /// The previous frontier is used only when `trust_previous` accepts the previous
    /// checkpoint (for [`Store::checkpoint`]: its note verifies with the signing key and
    /// names the row's size and root), so a checkpoint row inserted behind the store's
    /// back cannot make the next checkpoint sign over subtrees it chose; otherwise every
    /// entry is read.
    ///
    /// Before anything is signed, every entry the new checkpoint adds to the tree is
    /// checked as stored: its hash is recomputed with `hasher` from its columns, and its
    /// `scope_seq` and `prev_hash` must follow the previous entry of its scope. The
    /// first entry that fails refuses the checkpoint with [`StoreError::Checkpoint`]
    /// holding an [`EvidenceTampered`] (code `evidence-tampered`) that names its `seq`,
    /// so a database writer who edits an entry after it was appended cannot have the
    /// edit signed.
    ///
    /// In the same transaction, right after the checkpoint row, the cut is recorded as a
    /// `checkpoint.cut` entry of the control scope (its size and root, hashed with
    /// `hasher`): the entry after the ones the checkpoint covers, so the next checkpoint
    /// covers it and recording a checkpoint never calls for another. `relo evidence
    /// verify` names a checkpoint the log records but the table lacks
    /// (`checkpoint-deleted`).
    ///
    /// A previous frontier that does not decode, or whose size or root is not its
    /// checkpoint's, and a log that lacks an entry the previous checkpoint covers or has
    /// a gap, are [`StoreError::Inconsistent`]: nothing is signed over them. If `make`
    /// fails, or returns a root that is not the frontier's, nothing is stored and the
    /// error comes back as [`StoreError::Checkpoint`].
    pub async fn append_checkpoint<T, F>(
        &self,
        hasher: &HashFn,
        trust_previous: T,
        make: F,
    ) -> Result<Checkpoint>
    where
        T: FnOnce(&Checkpoint) -> bool + Send,
        F: FnOnce(&CheckpointBasis) -> Result<CheckpointDraft, CheckpointError> + Send,
    {
        let mut locked = self.begin_locked().await?;
        let previous: Option<CheckpointFrontierRow> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_as(
                "SELECT id, size, root, note, key_id, created_at, frontier
                 FROM checkpoints ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(&mut **tx)
            .await?
        });
        let (previous, frontier) = match previous {
            None => (None, None),
            Some((id, size, root, note, key_id, created_at, frontier)) => {
                let checkpoint = Checkpoint::from_row((id, size, root, note, key_id, created_at))?;
                let frontier = frontier
                    .map(|text| checked_frontier(&checkpoint, &text))
                    .transpose()?
                    .filter(|_| trust_previous(&checkpoint));
                (Some(checkpoint), frontier)
            }
        };
        let frontier = self.checked_frontier(&mut locked, frontier, hasher).await?;
        let basis = CheckpointBasis {
            size: frontier.size(),
            frontier,
            previous,
        };
        let draft = make(&basis).map_err(StoreError::Checkpoint)?;
        let expected = basis.frontier.root();
        if draft.root != expected {
            return Err(StoreError::Checkpoint(
                format!(
                    "the root {} is not the Merkle root {} of the log's {} entries",
                    hex::encode(draft.root),
                    hex::encode(expected),
                    basis.size
                )
                .into(),
            ));
        }
        let size = to_i64(basis.size)?;
        let root = hex::encode(draft.root);
        let frontier = basis.frontier.to_text();
        let created_at = rfc3339_utc(SystemTime::now());
        let id: i64 = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar(
                "INSERT INTO checkpoints (size, root, note, key_id, created_at, frontier)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(size)
            .bind(&root)
            .bind(&draft.note)
            .bind(&draft.key_id)
            .bind(&created_at)
            .bind(&frontier)
            .fetch_one(&mut **tx)
            .await?
        });
        let cut = EntryDraft::from_record(&EvidenceRecord::new(
            Scope::Control,
            None,
            EvidenceEvent::CheckpointCut {
                size: basis.size,
                root: root.clone(),
            },
        ));
        let recorded = chain(&mut locked, &[cut], hasher).await?;
        insert_entries(&mut locked, &recorded).await?;
        if let Some(seal) = self.seal() {
            seal_batch(&mut locked, &recorded, seal, hasher).await?;
        }
        locked.commit().await?;
        Ok(Checkpoint {
            id: non_negative(id, "checkpoints.id")?,
            size: basis.size,
            root,
            note: draft.note,
            key_id: draft.key_id,
            created_at,
        })
    }

    /// `frontier` (the previous checkpoint's, if trusted) extended with every entry after
    /// it ([`extend_frontier`]). A sealed store whose log has seals also checks, as the
    /// tree grows, every seal that ends after the frontier ([`SealCheck`]), and refuses
    /// entries no seal covers: a consistent rewrite of the tail is refused as
    /// `evidence-tampered` naming the first seal whose root or signature fails.
    async fn checked_frontier(
        &self,
        locked: &mut LockedTx,
        frontier: Option<Frontier>,
        hasher: &HashFn,
    ) -> Result<Frontier> {
        let Some(seal) = self.seal() else {
            return extend_frontier(locked, frontier, hasher, None).await;
        };
        let from = frontier.as_ref().map_or(0, Frontier::size);
        let (anchor, seals) = seals_after(locked, from).await?;
        if anchor.is_none() && seals.is_empty() {
            return extend_frontier(locked, frontier, hasher, None).await;
        }
        let refuse = |found: EvidenceTampered| StoreError::Checkpoint(Box::new(found));
        let mut check =
            SealCheck::new(&seal.keys, &seal.origin, anchor.as_ref(), seals).map_err(refuse)?;
        let frontier = extend_frontier(locked, frontier, hasher, Some(&mut check)).await?;
        let size = frontier.size();
        let sealed = check.finish(size).map_err(refuse)?;
        if sealed < size {
            return Err(refuse(EvidenceTampered {
                seq: sealed + 1,
                subject: format!("entries {}-{size}", sealed + 1),
                reason: "are covered by no seal: they were stored outside relo's evidence writer"
                    .into(),
            }));
        }
        Ok(frontier)
    }

    /// Cuts a checkpoint of the whole log now, under the write lock: the RFC 6962 root
    /// over every entry hash (the basis's [`Frontier`]), signed by `signer` as a C2SP
    /// note of `origin` under `key_name` ([`relo_evidence::Checkpoint::sign`]; the key
    /// must be Ed25519). The entries it newly covers are recomputed with [`entry_hash`]
    /// and their links checked first ([`Store::append_checkpoint`]). Returns the stored
    /// checkpoint, whose `note` is what `relo evidence checkpoint --save` writes.
    pub async fn checkpoint(
        &self,
        signer: &dyn Signer,
        key_name: &str,
        origin: &str,
    ) -> Result<Checkpoint> {
        let trusted = |previous: &Checkpoint| signed_by(previous, signer, key_name, origin);
        self.append_checkpoint(&entry_hash, trusted, |basis| {
            let root = basis.frontier.root();
            let note = relo_evidence::Checkpoint::new(origin, basis.size, root)?
                .sign(&[(key_name, signer)])?;
            Ok(CheckpointDraft {
                root,
                note,
                key_id: signer.key_id().to_owned(),
            })
        })
        .await
    }

    /// The origin of this database's evidence log, `relo.dev/evidence/<id>`: made once,
    /// at first use, and kept in the store (table `evidence_log`), so every instance and
    /// every tool on this database names the same log. Checkpoints carry it.
    pub async fn evidence_origin(&self) -> Result<String> {
        if let Some(origin) = self.stored_origin().await? {
            return Ok(origin);
        }
        let mut locked = self.begin_locked().await?;
        let found: Option<String> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar("SELECT origin FROM evidence_log WHERE id = 1")
                .fetch_optional(&mut **tx)
                .await?
        });
        if let Some(origin) = found {
            return Ok(origin);
        }
        let now = SystemTime::now();
        let nanos = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let origin = relo_evidence::evidence_origin(&format!("{nanos:x}{:x}", std::process::id()));
        let created_at = rfc3339_utc(now);
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query("INSERT INTO evidence_log (id, origin, created_at) VALUES (1, $1, $2)")
                .bind(&origin)
                .bind(&created_at)
                .execute(&mut **tx)
                .await?;
        });
        locked.commit().await?;
        Ok(origin)
    }

    /// The log's origin if one was made ([`evidence_origin`](Store::evidence_origin)).
    pub async fn stored_origin(&self) -> Result<Option<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT origin FROM evidence_log WHERE id = 1")
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Every entry of the log in `seq` order (read in pages).
    pub async fn all_entries(&self) -> Result<Vec<StoredEntry>> {
        let mut all: Vec<StoredEntry> = Vec::new();
        loop {
            let after = all.last().map_or(0, |e| e.seq);
            let page = self.entries(after, 10_000).await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// The number of entries in the log (its highest `seq`).
    pub async fn evidence_size(&self) -> Result<u64> {
        let max: i64 = on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM evidence_entries")
                .fetch_one(pool)
                .await?
        });
        non_negative(max, "evidence_entries.seq")
    }

    /// How many entries of each of `kinds` the log holds (kinds with none are left out),
    /// in `kinds`' order.
    pub async fn evidence_kind_counts(&self, kinds: &[&str]) -> Result<Vec<(String, u64)>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=kinds.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT kind, COUNT(*) FROM evidence_entries WHERE kind IN ({}) GROUP BY kind",
            placeholders.join(", ")
        );
        let rows: Vec<(String, i64)> = on_backend!(self.pools(), |pool| {
            let mut query = sqlx::query_as(&sql);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.fetch_all(pool).await?
        });
        let mut counts = Vec::new();
        for kind in kinds {
            if let Some((_, n)) = rows.iter().find(|(k, _)| k == kind) {
                counts.push(((*kind).to_owned(), non_negative(*n, "a count")?));
            }
        }
        Ok(counts)
    }

    /// Up to `limit` entries with `seq > after`, in `seq` order. Page through the log
    /// by passing the last `seq` returned.
    pub async fn entries(&self, after: u64, limit: u32) -> Result<Vec<StoredEntry>> {
        let after = to_i64(after)?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM evidence_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let rows: Vec<EntryRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredEntry::from_row).collect()
    }

    /// Up to `limit` entries of `scope` with `scope_seq > after`, in chain order.
    pub async fn scope_entries(
        &self,
        scope: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>> {
        let after = to_i64(after)?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM evidence_entries
             WHERE scope = $1 AND scope_seq > $2 ORDER BY scope_seq LIMIT $3"
        );
        let rows: Vec<EntryRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql)
                .bind(scope)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredEntry::from_row).collect()
    }

    /// The most recent checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let row: Option<CheckpointRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT id, size, root, note, key_id, created_at
                 FROM checkpoints ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        row.map(Checkpoint::from_row).transpose()
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows: Vec<CheckpointRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT id, size, root, note, key_id, created_at FROM checkpoints ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Checkpoint::from_row).collect()
    }
}

/// Whether `previous`'s note verifies with `signer`'s key under `key_name` for the log
/// `origin`, and names the row's size and root.
fn signed_by(previous: &Checkpoint, signer: &dyn Signer, key_name: &str, origin: &str) -> bool {
    let mut ring = relo_evidence::KeyRing::new();
    if ring
        .add(
            key_name,
            signer.public_key().clone(),
            relo_evidence::KeyStatus::Active,
        )
        .is_err()
    {
        return false;
    }
    relo_evidence::open_checkpoint(previous.note.as_bytes(), &ring, Some(origin)).is_ok_and(
        |verified| {
            verified.checkpoint.size == previous.size
                && hex::encode(verified.checkpoint.root) == previous.root
        },
    )
}

/// The frontier stored with `checkpoint`, once it is shown to be that checkpoint's:
/// it decodes, and its size and root are the checkpoint's.
fn checked_frontier(checkpoint: &Checkpoint, text: &str) -> Result<Frontier> {
    let id = checkpoint.id;
    let frontier = Frontier::from_text(text).map_err(|err| {
        StoreError::Inconsistent(format!(
            "checkpoint {id} has a frontier that does not decode: {err}"
        ))
    })?;
    if frontier.size() != checkpoint.size {
        return Err(StoreError::Inconsistent(format!(
            "checkpoint {id} covers {} entries but its frontier covers {}",
            checkpoint.size,
            frontier.size()
        )));
    }
    let root = hex::encode(frontier.root());
    if root != checkpoint.root {
        return Err(StoreError::Inconsistent(format!(
            "checkpoint {id} has root {} but its frontier gives {root}",
            checkpoint.root
        )));
    }
    Ok(frontier)
}

/// `frontier` (the previous checkpoint's, or the empty tree's when there is none)
/// extended with every entry after it, read under the lock in `seq` order. The entry
/// the previous frontier ends with must still be there, and `seq` must have no gap.
/// Each added entry must recompute with `hasher` and link to the previous entry of its
/// scope ([`EvidenceTampered`] otherwise).
pub(crate) async fn extend_frontier(
    locked: &mut LockedTx,
    frontier: Option<Frontier>,
    hasher: &HashFn,
    mut seals: Option<&mut SealCheck<'_>>,
) -> Result<Frontier> {
    let mut frontier = frontier.unwrap_or_default();
    let covered = frontier.size();
    // From the last covered entry, to see that it is still there; from 1 when none is.
    let from = to_i64(covered)?;
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM evidence_entries WHERE seq >= $1 ORDER BY seq");
    let rows: Vec<EntryRow> = on_backend!(&mut locked.tx, |tx| {
        sqlx::query_as(&sql).bind(from).fetch_all(&mut **tx).await?
    });
    let mut rows = rows.into_iter().peekable();
    if covered > 0 && rows.next_if(|row| row.0 == from).is_none() {
        return Err(StoreError::Inconsistent(format!(
            "the last checkpoint covers {covered} entries, but entry {covered} is not in the log"
        )));
    }
    let entries = rows
        .map(StoredEntry::from_row)
        .collect::<Result<Vec<_>>>()?;
    let mut heads = covered_heads(locked, &entries).await?;
    for entry in &entries {
        let expected = frontier.size() + 1;
        if entry.seq != expected {
            return Err(StoreError::Inconsistent(format!(
                "entry {expected} is missing: the log goes on at {}",
                entry.seq
            )));
        }
        let leaf = decode_hash(&entry.hash).ok_or_else(|| {
            StoreError::Inconsistent(format!(
                "entry {} has hash `{}`, not 64 hex digits",
                entry.seq, entry.hash
            ))
        })?;
        check_entry(entry, leaf, &mut heads, hasher)?;
        frontier.push(&leaf);
        if let Some(check) = seals.as_deref_mut() {
            check
                .reached(frontier.size(), || frontier.root())
                .map_err(|found| StoreError::Checkpoint(Box::new(found)))?;
        }
    }
    Ok(frontier)
}

/// Why evidence cannot be signed over or trusted: an entry does not recompute from its
/// stored columns or does not follow the previous entry of its scope, or a batch seal
/// does not verify over the entries it covers. Carried by [`StoreError::Checkpoint`]
/// when [`Store::append_checkpoint`] refuses, and by [`StoreError::Tampered`] when a
/// sealed append or a verified read refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence-tampered: {subject} {reason}; nothing was signed over it")]
pub struct EvidenceTampered {
    /// The `seq` of the first bad entry, or the first entry of the bad seal's batch.
    pub seq: u64,
    /// What is bad: `entry 7 (scope run-b)` or `seal 3 (entries 5-9)`.
    pub subject: String,
    /// What is wrong with it.
    pub reason: String,
}

impl EvidenceTampered {
    /// The stable machine code: `evidence-tampered`.
    pub fn code(&self) -> &'static str {
        "evidence-tampered"
    }

    /// The finding for `entry`.
    pub(crate) fn at_entry(entry: &StoredEntry, reason: String) -> EvidenceTampered {
        EvidenceTampered {
            seq: entry.seq,
            subject: format!("entry {} (scope {})", entry.seq, entry.scope),
            reason,
        }
    }

    fn refuse(entry: &StoredEntry, reason: String) -> StoreError {
        StoreError::Checkpoint(Box::new(EvidenceTampered::at_entry(entry, reason)))
    }
}

/// The last `(scope_seq, hash)` of each scope of `entries` among the entries before
/// them: where each scope's chain stands before the first of them. A scope whose
/// first new entry is its first has none.
async fn covered_heads(
    locked: &mut LockedTx,
    entries: &[StoredEntry],
) -> Result<HashMap<String, (u64, String)>> {
    let mut wanted: Vec<(&str, i64)> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for entry in entries {
        if seen.insert(&entry.scope) && entry.scope_seq > 1 {
            wanted.push((&entry.scope, to_i64(entry.scope_seq - 1)?));
        }
    }
    let mut heads = HashMap::new();
    let placeholders = Placeholders::of(locked);
    for chunk in wanted.chunks(SCOPES_PER_LOOKUP) {
        let sql = predecessors_sql(chunk.len(), placeholders);
        let found: Vec<(String, i64, String)> = on_backend!(&mut locked.tx, |tx| {
            let mut query = sqlx::query_as(&sql);
            for (scope, scope_seq) in chunk {
                query = query.bind(*scope).bind(*scope_seq);
            }
            query.fetch_all(&mut **tx).await?
        });
        for (scope, scope_seq, hash) in found {
            let scope_seq = non_negative(scope_seq, "evidence_entries.scope_seq")?;
            heads.insert(scope, (scope_seq, hash));
        }
    }
    Ok(heads)
}

/// Checks that `entry` (whose stored hash decodes to `leaf`) recomputes with `hasher`
/// and follows `heads`' entry of its scope, then makes it that scope's head.
pub(crate) fn check_entry(
    entry: &StoredEntry,
    leaf: Hash,
    heads: &mut HashMap<String, (u64, String)>,
    hasher: &HashFn,
) -> Result<()> {
    match hasher(&entry.to_hash()) {
        Ok(recomputed) if recomputed == leaf => {}
        Ok(_) => {
            return Err(EvidenceTampered::refuse(
                entry,
                "no longer matches its hash: its stored columns were changed".into(),
            ));
        }
        Err(err) => {
            return Err(EvidenceTampered::refuse(
                entry,
                format!("cannot be hashed from its stored columns: {err}"),
            ));
        }
    }
    let (count, last) = heads
        .get(&entry.scope)
        .map_or((0, GENESIS_PREV_HASH), |(count, hash)| {
            (*count, hash.as_str())
        });
    if entry.scope_seq != count + 1 {
        return Err(EvidenceTampered::refuse(
            entry,
            format!(
                "has scope_seq {} where its scope's chain is at {count}",
                entry.scope_seq
            ),
        ));
    }
    if entry.prev_hash != last {
        return Err(EvidenceTampered::refuse(
            entry,
            format!(
                "links to {} but the previous entry of its scope has hash {last}",
                entry.prev_hash
            ),
        ));
    }
    heads.insert(entry.scope.clone(), (entry.scope_seq, entry.hash.clone()));
    Ok(())
}

/// Numbers and chains `drafts` after what the locked transaction sees.
pub(crate) async fn chain(
    locked: &mut LockedTx,
    drafts: &[EntryDraft],
    hasher: &HashFn,
) -> Result<Vec<StoredEntry>> {
    let last_seq: i64 = on_backend!(&mut locked.tx, |tx| {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM evidence_entries")
            .fetch_one(&mut **tx)
            .await?
    });
    let mut seq = non_negative(last_seq, "evidence_entries.seq")?;
    let mut scopes: Vec<&str> = Vec::new();
    let mut heads: HashMap<&str, (u64, String)> = HashMap::new();
    for draft in drafts {
        if !heads.contains_key(draft.scope.as_str()) {
            heads.insert(&draft.scope, (0, GENESIS_PREV_HASH.to_owned()));
            scopes.push(&draft.scope);
        }
    }
    let placeholders = Placeholders::of(locked);
    for chunk in scopes.chunks(SCOPES_PER_LOOKUP) {
        let sql = heads_sql(chunk.len(), placeholders);
        let found: Vec<(String, i64, String)> = on_backend!(&mut locked.tx, |tx| {
            let mut query = sqlx::query_as(&sql);
            for scope in chunk {
                query = query.bind(*scope);
            }
            query.fetch_all(&mut **tx).await?
        });
        for (scope, scope_seq, hash) in found {
            let scope_seq = non_negative(scope_seq, "evidence_entries.scope_seq")?;
            if let Some(head) = heads.get_mut(scope.as_str()) {
                *head = (scope_seq, hash);
            }
        }
    }
    let mut entries = Vec::with_capacity(drafts.len());
    for draft in drafts {
        seq += 1;
        let Some((scope_seq, prev_hash)) = heads.get_mut(draft.scope.as_str()) else {
            return Err(StoreError::Inconsistent(format!(
                "no head for scope `{}`",
                draft.scope
            )));
        };
        *scope_seq += 1;
        let hash = hasher(&EntryToHash {
            seq,
            scope: &draft.scope,
            scope_seq: *scope_seq,
            step_id: draft.step_id.as_deref(),
            kind: &draft.kind,
            time: &draft.time,
            body: &draft.body,
            prev_hash,
        })
        .map_err(|source| StoreError::Hash {
            seq,
            scope: draft.scope.clone(),
            source,
        })?;
        let hash = hex::encode(hash);
        let entry = StoredEntry {
            seq,
            scope: draft.scope.clone(),
            scope_seq: *scope_seq,
            step_id: draft.step_id.clone(),
            kind: draft.kind.clone(),
            time: draft.time.clone(),
            body: draft.body.clone(),
            prev_hash: std::mem::replace(prev_hash, hash.clone()),
            hash,
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// Inserts numbered entries with multi-row INSERTs.
pub(crate) async fn insert_entries(locked: &mut LockedTx, entries: &[StoredEntry]) -> Result<()> {
    let placeholders = Placeholders::of(locked);
    for rows in entries.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql(rows.len(), placeholders);
        let numbers = rows
            .iter()
            .map(|e| Ok((to_i64(e.seq)?, to_i64(e.scope_seq)?)))
            .collect::<Result<Vec<_>>>()?;
        on_backend!(&mut locked.tx, |tx| {
            let mut query = sqlx::query(&sql);
            for (entry, (seq, scope_seq)) in rows.iter().zip(numbers) {
                query = query
                    .bind(seq)
                    .bind(&entry.scope)
                    .bind(scope_seq)
                    .bind(&entry.step_id)
                    .bind(&entry.kind)
                    .bind(&entry.time)
                    .bind(&entry.body)
                    .bind(&entry.prev_hash)
                    .bind(&entry.hash);
            }
            query.execute(&mut **tx).await?;
        });
    }
    Ok(())
}

/// How a statement names its parameters.
#[derive(Debug, Clone, Copy)]
enum Placeholders {
    /// `?`: SQLite binds them by position. Its `$N` names cost a linear lookup each,
    /// which makes a statement with thousands of them quadratic.
    Anonymous,
    /// `$1, $2, ...`: what PostgreSQL requires.
    Numbered,
}

impl Placeholders {
    fn of(locked: &LockedTx) -> Placeholders {
        match locked.tx {
            Backend::Sqlite(_) => Placeholders::Anonymous,
            Backend::Postgres(_) => Placeholders::Numbered,
        }
    }

    /// Appends the placeholder of parameter `index` (from 1).
    fn push(self, sql: &mut String, index: usize) {
        match self {
            Placeholders::Anonymous => sql.push('?'),
            Placeholders::Numbered => {
                sql.push('$');
                sql.push_str(&index.to_string());
            }
        }
    }
}

/// `INSERT INTO evidence_entries (...) VALUES (?, ...), (?, ...), ...` for `rows` rows.
fn insert_sql(rows: usize, placeholders: Placeholders) -> String {
    let mut sql = format!("INSERT INTO evidence_entries ({ENTRY_COLUMNS}) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..9 {
            if column > 0 {
                sql.push_str(", ");
            }
            placeholders.push(&mut sql, row * 9 + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// One statement that finds the last `(scope, scope_seq, hash)` of each of `scopes`
/// scopes: an index seek per scope, one round trip for all. Scopes without entries
/// return no row.
fn heads_sql(scopes: usize, placeholders: Placeholders) -> String {
    let mut sql = String::new();
    for index in 1..=scopes {
        if index > 1 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str(
            "SELECT * FROM (SELECT scope, scope_seq, hash FROM evidence_entries WHERE scope = ",
        );
        placeholders.push(&mut sql, index);
        sql.push_str(" ORDER BY scope_seq DESC LIMIT 1) AS head");
    }
    sql
}

/// One statement that finds `(scope, scope_seq, hash)` of `pairs` given
/// `(scope, scope_seq)` pairs: an index seek each. Pairs with no entry return no row.
fn predecessors_sql(pairs: usize, placeholders: Placeholders) -> String {
    let mut sql = String::new();
    for pair in 0..pairs {
        if pair > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str("SELECT scope, scope_seq, hash FROM evidence_entries WHERE scope = ");
        placeholders.push(&mut sql, pair * 2 + 1);
        sql.push_str(" AND scope_seq = ");
        placeholders.push(&mut sql, pair * 2 + 2);
    }
    sql
}

pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

pub(crate) fn non_negative(value: i64, column: &str) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| StoreError::Inconsistent(format!("{column} holds the negative value {value}")))
}

fn to_i64(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        StoreError::InvalidEntry(format!(
            "{value} does not fit the database's 64-bit integers"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use relo_evidence::{EvidenceEvent, Scope};

    #[test]
    fn insert_sql_names_every_parameter() {
        let columns = format!("INSERT INTO evidence_entries ({ENTRY_COLUMNS}) VALUES ");
        assert_eq!(
            insert_sql(2, Placeholders::Numbered),
            format!(
                "{columns}($1, $2, $3, $4, $5, $6, $7, $8, $9), \
                 ($10, $11, $12, $13, $14, $15, $16, $17, $18)"
            )
        );
        assert_eq!(
            insert_sql(1, Placeholders::Anonymous),
            format!("{columns}(?, ?, ?, ?, ?, ?, ?, ?, ?)")
        );
    }

    #[test]
    fn heads_sql_seeks_each_scope() {
        let one = "SELECT * FROM (SELECT scope, scope_seq, hash FROM evidence_entries \
                   WHERE scope = $1 ORDER BY scope_seq DESC LIMIT 1) AS head";
        assert_eq!(heads_sql(1, Placeholders::Numbered), one);
        let two = heads_sql(2, Placeholders::Anonymous);
        assert_eq!(two.matches(" UNION ALL ").count(), 1);
        assert_eq!(two.matches("scope = ?").count(), 2);
    }

    #[test]
    fn a_record_becomes_a_draft_with_sorted_keys() {
        let record = EvidenceRecord::new(
            Scope::Run("run-7".into()),
            Some("deploy".into()),
            EvidenceEvent::SecretDenied {
                name: "token".into(),
                reference: None,
                code: "secret-not-declared".into(),
                reason: "not declared".into(),
            },
        );
        let draft = EntryDraft::from_record(&record);
        assert_eq!(draft.scope, "run-7");
        assert_eq!(draft.step_id.as_deref(), Some("deploy"));
        assert_eq!(draft.kind, "secret.denied");
        assert_eq!(draft.time, rfc3339_utc(record.time));
        assert_eq!(
            draft.body,
            r#"{"code":"secret-not-declared","name":"token","reason":"not declared","reference":null}"#
        );
    }

    #[test]
    fn the_default_hash_is_relo_evidence_s() {
        let record = EvidenceRecord::new(
            Scope::Run("run-7".into()),
            None,
            EvidenceEvent::SecretRead {
                name: "token".into(),
                reference: "kv/data/app#token".into(),
                version: Some(1),
            },
        );
        let content = EntryContent::from_record(&record);
        let draft = EntryDraft::from_record(&record);
        let expected =
            relo_evidence::entry_hash(&content.fields(3, 1, GENESIS_PREV_HASH)).expect("hash");
        let to_hash = EntryToHash {
            seq: 3,
            scope: &draft.scope,
            scope_seq: 1,
            step_id: None,
            kind: &draft.kind,
            time: &draft.time,
            body: &draft.body,
            prev_hash: GENESIS_PREV_HASH,
        };
        assert_eq!(entry_hash(&to_hash), Ok(expected));
        let not_an_object = EntryToHash {
            body: "[1]",
            ..to_hash
        };
        assert_eq!(entry_hash(&not_an_object), Err(EntryError::BodyNotObject));
    }

    #[test]
    fn hashes_decode_only_from_64_hex_digits() {
        assert_eq!(decode_hash(GENESIS_PREV_HASH), Some([0; 32]));
        assert_eq!(decode_hash("zz"), None);
        assert_eq!(decode_hash(&"ab".repeat(31)), None);
    }
}
