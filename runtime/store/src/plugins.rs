//! Plugins, approvals, revocations and blocks: the trust state every instance shares.
//!
//! The store keeps what was verified and signed; it decides nothing. Each change is
//! written in one transaction together with its `control`-scope evidence entry, so an
//! approval, a block or a revocation is never stored without its record, nor recorded
//! without being stored.

use std::time::SystemTime;

use relo_evidence::{EvidenceRecord, rfc3339_utc};
use sqlx::Row as _;

use crate::evidence::{EntryDraft, chain, entry_hash, insert_entries};
use crate::store::{LockedTx, on_backend};
use crate::{Result, Store, StoreError};

/// A plugin to import: component bytes and their signed attestation.
#[derive(Debug, Clone)]
pub struct NewPlugin<'a> {
    /// sha256 of `bytes`, lowercase hex (the caller verified it).
    pub digest: &'a str,
    /// `namespace/name`.
    pub name: &'a str,
    /// The version.
    pub version: &'a str,
    /// The component.
    pub bytes: &'a [u8],
    /// The attestation as given (a DSSE envelope or a Sigstore bundle, JSON).
    pub attestation: &'a str,
}

/// A stored plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlugin {
    /// sha256 of the bytes, lowercase hex.
    pub digest: String,
    /// `namespace/name`.
    pub name: String,
    /// The version.
    pub version: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// The attestation, JSON.
    pub attestation: String,
    /// When it was imported (RFC 3339).
    pub added_at: String,
}

/// Whether [`Store::add_plugin`] imported the plugin or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Newly imported.
    New,
    /// The same digest was already in the store.
    AlreadyPresent,
}

/// A stored approval, with whether it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApproval {
    /// The approval id.
    pub id: String,
    /// The approved digest.
    pub digest: String,
    /// The approving person.
    pub approved_by: String,
    /// The signed approval, JSON.
    pub document: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// When it expires (RFC 3339), if ever.
    pub expires_at: Option<String>,
    /// The reason of its revocation, if it was revoked.
    pub revoked: Option<String>,
}

/// A new approval row.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    /// The approval id.
    pub id: &'a str,
    /// The approved digest.
    pub digest: &'a str,
    /// The approving person.
    pub approved_by: &'a str,
    /// The signed approval, JSON.
    pub document: &'a str,
    /// When it expires (RFC 3339), if ever.
    pub expires_at: Option<&'a str>,
}

/// A block of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The blocked digest.
    pub digest: String,
    /// Why.
    pub reason: String,
    /// Who blocked it.
    pub blocked_by: String,
    /// When (RFC 3339).
    pub blocked_at: String,
}

impl Store {
    /// Imports a plugin and appends `record` (its `plugin.added` entry) in the same
    /// transaction. The same digest twice is [`Added::AlreadyPresent`] and records
    /// nothing; another digest under a taken `name@version` is
    /// [`StoreError::VersionTaken`].
    pub async fn add_plugin(
        &self,
        plugin: &NewPlugin<'_>,
        record: &EvidenceRecord,
    ) -> Result<Added> {
        let mut locked = self.begin_locked().await?;
        let existing: Option<(String, String, String)> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_as(
                "SELECT digest, name, version FROM plugins
                 WHERE digest = $1 OR (name = $2 AND version = $3)",
            )
            .bind(plugin.digest)
            .bind(plugin.name)
            .bind(plugin.version)
            .fetch_optional(&mut **tx)
            .await?
        });
        if let Some((digest, name, version)) = existing {
            if digest == plugin.digest {
                return Ok(Added::AlreadyPresent);
            }
            return Err(StoreError::VersionTaken {
                reference: format!("{name}@{version}"),
                digest,
            });
        }
        let added_at = rfc3339_utc(SystemTime::now());
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO plugins (digest, name, version, bytes, attestation, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(plugin.digest)
            .bind(plugin.name)
            .bind(plugin.version)
            .bind(plugin.bytes)
            .bind(plugin.attestation)
            .bind(&added_at)
            .execute(&mut **tx)
            .await?;
        });
        self.record_in(&mut locked, record).await?;
        locked.commit().await?;
        Ok(Added::New)
    }

    /// The plugin with this digest.
    pub async fn plugin(&self, digest: &str) -> Result<Option<StoredPlugin>> {
        let row = on_backend!(self.pools(), |pool| {
            sqlx::query(
                "SELECT digest, name, version, bytes, attestation, added_at
                 FROM plugins WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<StoredPlugin> {
                Ok(StoredPlugin {
                    digest: row.try_get(0)?,
                    name: row.try_get(1)?,
                    version: row.try_get(2)?,
                    bytes: row.try_get(3)?,
                    attestation: row.try_get(4)?,
                    added_at: row.try_get(5)?,
                })
            })
        });
        row.transpose()
    }

    /// The attestation of the plugin with this digest (without reading its bytes).
    pub async fn plugin_attestation(&self, digest: &str) -> Result<Option<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT attestation FROM plugins WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The digest `name@version` resolves to.
    pub async fn plugin_digest(&self, name: &str, version: &str) -> Result<Option<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT digest FROM plugins WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Every stored plugin as `(digest, name, version, added_at)`, oldest first.
    pub async fn plugin_index(&self) -> Result<Vec<(String, String, String, String)>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT digest, name, version, added_at FROM plugins ORDER BY added_at, digest",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Stores an approval and appends `record` (its `approval.granted` entry) in the
    /// same transaction. The digest must be a stored plugin's.
    pub async fn add_approval(
        &self,
        approval: &NewApproval<'_>,
        record: &EvidenceRecord,
    ) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        let created_at = rfc3339_utc(SystemTime::now());
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO approvals (id, digest, approved_by, document, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(approval.id)
            .bind(approval.digest)
            .bind(approval.approved_by)
            .bind(approval.document)
            .bind(&created_at)
            .bind(approval.expires_at)
            .execute(&mut **tx)
            .await?;
        });
        self.record_in(&mut locked, record).await?;
        locked.commit().await?;
        Ok(())
    }

    /// Every approval of any version of the plugin `name`, oldest first, each with its
    /// revocation reason if it was revoked (by id, or by a revocation of its whole digest).
    pub async fn approvals_of(&self, name: &str) -> Result<Vec<StoredApproval>> {
        self.approvals_where("p.name = $1", name).await
    }

    /// The approval with this id, or the one whose id starts with `prefix` when exactly
    /// one does.
    pub async fn approval(&self, prefix: &str) -> Result<Vec<StoredApproval>> {
        let pattern = format!("{}%", prefix.replace(|c: char| !c.is_ascii_hexdigit(), ""));
        self.approvals_where("a.id LIKE $1", &pattern).await
    }

    async fn approvals_where(&self, condition: &str, value: &str) -> Result<Vec<StoredApproval>> {
        let sql = format!(
            "SELECT a.id, a.digest, a.approved_by, a.document, a.created_at, a.expires_at,
                    (SELECT r.reason FROM revocations r
                      WHERE r.approval_id = a.id OR (r.approval_id IS NULL AND r.digest = a.digest)
                      ORDER BY r.id LIMIT 1)
             FROM approvals a JOIN plugins p ON p.digest = a.digest
             WHERE {condition}
             ORDER BY a.created_at, a.id"
        );
        let rows = on_backend!(self.pools(), |pool| {
            sqlx::query(&sql)
                .bind(value)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<StoredApproval> {
                    Ok(StoredApproval {
                        id: row.try_get(0)?,
                        digest: row.try_get(1)?,
                        approved_by: row.try_get(2)?,
                        document: row.try_get(3)?,
                        created_at: row.try_get(4)?,
                        expires_at: row.try_get(5)?,
                        revoked: row.try_get(6)?,
                    })
                })
                .collect::<Vec<_>>()
        });
        rows.into_iter().collect()
    }

    /// Revokes the approval `id` of `digest`, appending `record` (its
    /// `approval.revoked` entry) in the same transaction.
    pub async fn revoke_approval(
        &self,
        id: &str,
        digest: &str,
        reason: &str,
        by: &str,
        record: &EvidenceRecord,
    ) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        let at = rfc3339_utc(SystemTime::now());
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO revocations (digest, approval_id, reason, revoked_by, revoked_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(digest)
            .bind(id)
            .bind(reason)
            .bind(by)
            .bind(&at)
            .execute(&mut **tx)
            .await?;
        });
        self.record_in(&mut locked, record).await?;
        locked.commit().await?;
        Ok(())
    }

    /// Blocks `digest`, appending `record` (its `plugin.blocked` entry) in the same
    /// transaction. Returns `false`, recording nothing, if it was already blocked.
    pub async fn block(
        &self,
        digest: &str,
        reason: &str,
        by: &str,
        record: &EvidenceRecord,
    ) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let at = rfc3339_utc(SystemTime::now());
        let inserted = on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO blocks (digest, reason, blocked_by, blocked_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest)
            .bind(reason)
            .bind(by)
            .bind(&at)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Ok(false);
        }
        self.record_in(&mut locked, record).await?;
        locked.commit().await?;
        Ok(true)
    }

    /// Records that `by` uploaded the plugin `digest` through the server, unless an
    /// upload of it is recorded already (the first uploader is kept).
    pub async fn record_upload(&self, digest: &str, by: &str, now: SystemTime) -> Result<()> {
        on_backend!(self.pools(), |pool| {
            sqlx::query(
                "INSERT INTO plugin_uploads (digest, uploaded_by, uploaded_at) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest)
            .bind(by)
            .bind(rfc3339_utc(now))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Who first uploaded the plugin `digest` through the server, if anyone did.
    pub async fn plugin_uploader(&self, digest: &str) -> Result<Option<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT uploaded_by FROM plugin_uploads WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The block of `digest`, if it is blocked.
    pub async fn block_of(&self, digest: &str) -> Result<Option<Block>> {
        let row: Option<(String, String, String, String)> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT digest, reason, blocked_by, blocked_at FROM blocks WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(digest, reason, blocked_by, blocked_at)| Block {
            digest,
            reason,
            blocked_by,
            blocked_at,
        }))
    }

    /// Appends one record in a transaction of its own (a control-plane refusal, say).
    pub async fn record(&self, record: &EvidenceRecord) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        self.record_in(&mut locked, record).await?;
        locked.commit().await
    }

    /// Appends `record` unless the control scope already holds an entry of the same
    /// kind and body (a fact recorded once, such as `signer.retired`). Returns whether
    /// it appended.
    pub async fn record_once(&self, record: &EvidenceRecord) -> Result<bool> {
        let draft = EntryDraft::from_record(record);
        let mut locked = self.begin_locked().await?;
        let found: Option<i64> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar(
                "SELECT seq FROM evidence_entries WHERE scope = $1 AND kind = $2 AND body = $3 LIMIT 1",
            )
            .bind(&draft.scope)
            .bind(&draft.kind)
            .bind(&draft.body)
            .fetch_optional(&mut **tx)
            .await?
        });
        if found.is_some() {
            return Ok(false);
        }
        self.record_in(&mut locked, record).await?;
        locked.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Chains and inserts `record` inside the caller's locked transaction, sealed when
    /// this store seals ([`Store::sealed`]).
    pub(crate) async fn record_in(
        &self,
        locked: &mut LockedTx,
        record: &EvidenceRecord,
    ) -> Result<()> {
        let entries = chain(locked, &[EntryDraft::from_record(record)], &entry_hash).await?;
        insert_entries(locked, &entries).await?;
        if let Some(seal) = self.seal() {
            crate::seal::seal_batch(locked, &entries, seal, &entry_hash).await?;
        }
        Ok(())
    }
}
