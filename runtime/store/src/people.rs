//! People's signing keys and the people directory's revision.
//!
//! With the server, people and roles live in the store (DESIGN §5): a user's roles are in
//! `users`, their public keys (PEM, by key id) in `person_keys`. Keys are revoked, never
//! deleted. The single `people_directory` row appears when `relo serve` first imports
//! `[[people]]` ([`Store::open_people_directory`]); from then on the store, not relo.toml,
//! decides whose signature counts, for every instance. Every change to a user's roles,
//! state or keys raises the directory's revision in the same transaction, so an instance
//! reloads people only when they changed ([`Store::people_revision`]).
//!
//! The store checks nothing about the keys themselves; the caller parses them.

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;

use crate::store::{LockedTx, on_backend};
use crate::{Result, Store, StoreError};

/// A public key to add to a person.
#[derive(Debug, Clone)]
pub struct NewPersonKey<'a> {
    /// The user the key belongs to.
    pub user: &'a str,
    /// The key's id (as relo-trust computes it from the key).
    pub key_id: &'a str,
    /// The public key, PEM.
    pub public_key: &'a str,
    /// Who added it (a user name, or `relo.toml` for an import).
    pub added_by: &'a str,
}

/// A person's key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPersonKey {
    /// The key's id.
    pub key_id: String,
    /// The user the key belongs to.
    pub user: String,
    /// The public key, PEM.
    pub public_key: String,
    /// Who added it.
    pub added_by: String,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// Who revoked it, and when (RFC 3339); `None` while it counts.
    pub revoked: Option<(String, String)>,
}

/// A person as the directory holds them: an enabled user, their roles and their
/// unrevoked keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPerson {
    /// The user's name.
    pub name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Unrevoked keys, by key id.
    pub keys: Vec<StoredPersonKey>,
}

/// The people directory at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleDirectory {
    /// The revision these people were read at.
    pub revision: i64,
    /// Every enabled user, by name.
    pub people: Vec<DirectoryPerson>,
}

type KeyRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn key_from_row(row: KeyRow) -> StoredPersonKey {
    let (key_id, user, public_key, added_by, added_at, revoked_by, revoked_at) = row;
    StoredPersonKey {
        key_id,
        user,
        public_key,
        added_by,
        added_at,
        revoked: revoked_by.zip(revoked_at),
    }
}

const KEY_COLUMNS: &str =
    "key_id, user_name, public_key, added_by, added_at, revoked_by, revoked_at";

impl Store {
    /// Adds a public key to the user `key.user`. A key id already stored (for anyone,
    /// revoked or not) is refused with [`StoreError::Duplicate`]; an unknown user with
    /// [`StoreError::UnknownUser`].
    pub async fn add_person_key(&self, key: &NewPersonKey<'_>, now: SystemTime) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        let (user, existing): (Option<String>, Option<String>) =
            on_backend!(&mut locked.tx, |tx| {
                let user = sqlx::query_scalar("SELECT name FROM users WHERE name = $1")
                    .bind(key.user)
                    .fetch_optional(&mut **tx)
                    .await?;
                let existing =
                    sqlx::query_scalar("SELECT user_name FROM person_keys WHERE key_id = $1")
                        .bind(key.key_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                (user, existing)
            });
        if user.is_none() {
            return Err(StoreError::UnknownUser(key.user.to_owned()));
        }
        if let Some(holder) = existing {
            return Err(StoreError::Duplicate(format!(
                "key {} is already {holder}'s",
                key.key_id
            )));
        }
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO person_keys (key_id, user_name, public_key, added_by, added_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.key_id)
            .bind(key.user)
            .bind(key.public_key)
            .bind(key.added_by)
            .bind(rfc3339_utc(now))
            .execute(&mut **tx)
            .await?;
        });
        bump_people_revision(&mut locked).await?;
        locked.commit().await
    }

    /// Revokes the key `key_id` of the user `user`, by `by`. Returns whether an
    /// unrevoked key of that user was revoked.
    pub async fn revoke_person_key(
        &self,
        user: &str,
        key_id: &str,
        by: &str,
        now: SystemTime,
    ) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let changed = on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "UPDATE person_keys SET revoked_by = $3, revoked_at = $4
                 WHERE user_name = $1 AND key_id = $2 AND revoked_at IS NULL",
            )
            .bind(user)
            .bind(key_id)
            .bind(by)
            .bind(rfc3339_utc(now))
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        if changed > 0 {
            bump_people_revision(&mut locked).await?;
        }
        locked.commit().await?;
        Ok(changed > 0)
    }

    /// Every key of the user `user`, revoked ones included, oldest first.
    pub async fn person_keys(&self, user: &str) -> Result<Vec<StoredPersonKey>> {
        let rows: Vec<KeyRow> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&format!(
                "SELECT {KEY_COLUMNS} FROM person_keys WHERE user_name = $1
                 ORDER BY added_at, key_id"
            ))
            .bind(user)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(key_from_row).collect())
    }

    /// Makes the store the source of people from now on: creates the directory row at
    /// revision 1 unless it exists. Returns whether it was created by this call.
    pub async fn open_people_directory(&self) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let created = on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO people_directory (id, revision) VALUES (1, 1)
                 ON CONFLICT (id) DO NOTHING",
            )
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        locked.commit().await?;
        Ok(created > 0)
    }

    /// The people directory's revision; `None` while people still come from relo.toml
    /// (no `relo serve` has imported them).
    pub async fn people_revision(&self) -> Result<Option<i64>> {
        let revision = on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT revision FROM people_directory WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        Ok(revision)
    }

    /// The people directory: every enabled user with their roles and unrevoked keys, read
    /// in one transaction with the revision they belong to. `None` while people still
    /// come from relo.toml.
    pub async fn people_directory(&self) -> Result<Option<PeopleDirectory>> {
        let (revision, users, keys): (Option<i64>, Vec<(String, String)>, Vec<KeyRow>) =
            on_backend!(self.pools(), |pool| {
                // The revision is read first: the people read after it are at least that
                // new, so a cache keyed by the revision never keeps older people under a
                // newer revision (at worst newer people under an older one, reloaded at
                // the next check).
                let mut tx = pool.begin().await?;
                let revision =
                    sqlx::query_scalar("SELECT revision FROM people_directory WHERE id = 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                let users = sqlx::query_as(
                    "SELECT name, roles FROM users WHERE disabled = FALSE ORDER BY name",
                )
                .fetch_all(&mut *tx)
                .await?;
                let keys = sqlx::query_as(&format!(
                    "SELECT {KEY_COLUMNS} FROM person_keys WHERE revoked_at IS NULL
                     ORDER BY user_name, added_at, key_id"
                ))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (revision, users, keys)
            });
        let Some(revision) = revision else {
            return Ok(None);
        };
        let mut keys: Vec<StoredPersonKey> = keys.into_iter().map(key_from_row).collect();
        let people = users
            .into_iter()
            .map(|(name, roles)| {
                let roles: Vec<String> = serde_json::from_str(&roles).map_err(|err| {
                    StoreError::Inconsistent(format!("the roles of user {name}: {err}"))
                })?;
                let (theirs, rest) = keys.drain(..).partition(|key| key.user == name);
                keys = rest;
                Ok(DirectoryPerson {
                    name,
                    roles,
                    keys: theirs,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(PeopleDirectory { revision, people }))
    }
}

/// Raises the people directory's revision, inside the caller's transaction (nothing
/// while there is no directory).
pub(crate) async fn bump_people_revision(locked: &mut LockedTx) -> Result<()> {
    on_backend!(&mut locked.tx, |tx| {
        sqlx::query("UPDATE people_directory SET revision = revision + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
    });
    Ok(())
}
