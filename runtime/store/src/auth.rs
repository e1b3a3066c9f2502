//! The server's users and refresh tokens (API tokens are in `api_tokens.rs`).
//!
//! A user has a name, an argon2id password hash (a PHC string the server made), role
//! names, and a disabled flag. A refresh token is stored only as the sha256 of its bytes
//! (lowercase hex): each login starts a family, and [`Store::rotate_refresh_token`]
//! replaces the presented token with the next one of its family in one locked
//! transaction. A token that was already used, or revoked, revokes its whole family when
//! presented again: two holders of one token cannot both keep refreshing.
//!
//! The store decides nothing about passwords or roles; it keeps what the server hands it,
//! and makes rotation a compare-and-set so that concurrent refreshes with one token, on
//! one instance or several, see exactly one winner.

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;

use crate::people::bump_people_revision;
use crate::store::{LockedTx, on_backend};
use crate::{Result, Store, StoreError};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// The login name (also the person's name in `[[people]]`).
    pub name: &'a str,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: &'a str,
    /// Role names.
    pub roles: &'a [String],
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// The login name.
    pub name: String,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: String,
    /// Role names, in the order given at creation.
    pub roles: Vec<String>,
    /// When the user was created (RFC 3339).
    pub created_at: String,
    /// Whether logging in and refreshing are refused.
    pub disabled: bool,
}

/// A refresh token to store: its hash, never the token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    /// sha256 of the token's bytes, lowercase hex.
    pub token_hash: &'a str,
    /// When it was issued.
    pub issued_at: SystemTime,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
}

/// A refresh token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefreshToken {
    /// sha256 of the token's bytes, lowercase hex.
    pub token_hash: String,
    /// The family: every token descending from one login.
    pub family_id: String,
    /// The user it was issued to.
    pub user: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When it stops being accepted (RFC 3339).
    pub expires_at: String,
    /// When it was exchanged for its successor.
    pub used_at: Option<String>,
    /// When its family was revoked.
    pub revoked_at: Option<String>,
}

/// What [`Store::rotate_refresh_token`] did with a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now used, and its successor is stored in its family.
    Rotated {
        /// The user the family belongs to.
        user: String,
        /// The family.
        family_id: String,
    },
    /// The token had already been used or revoked: its whole family is now revoked,
    /// and no successor was stored.
    Reused {
        /// The user the family belongs to.
        user: String,
        /// The family.
        family_id: String,
    },
    /// The token is unused but past its expiry; nothing changed.
    Expired,
    /// No token with this hash is stored.
    Unknown,
}

type UserTuple = (String, String, String, String, bool);

fn user_from_row(
    (name, password_hash, roles, created_at, disabled): UserTuple,
) -> Result<StoredUser> {
    let roles = serde_json::from_str(&roles)
        .map_err(|err| StoreError::Inconsistent(format!("the roles of user {name}: {err}")))?;
    Ok(StoredUser {
        name,
        password_hash,
        roles,
        created_at,
        disabled,
    })
}

/// The columns of a [`StoredRefreshToken`], in order.
const TOKEN_COLUMNS: &str =
    "token_hash, family_id, user_name, issued_at, expires_at, used_at, revoked_at";

type TokenTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

impl From<TokenTuple> for StoredRefreshToken {
    fn from(
        (token_hash, family_id, user, issued_at, expires_at, used_at, revoked_at): TokenTuple,
    ) -> Self {
        Self {
            token_hash,
            family_id,
            user,
            issued_at,
            expires_at,
            used_at,
            revoked_at,
        }
    }
}

impl Store {
    /// Creates a user. A second user with the same name is refused with
    /// [`StoreError::Duplicate`].
    pub async fn create_user(&self, user: &NewUser<'_>, now: SystemTime) -> Result<()> {
        let roles = serde_json::to_string(user.roles)
            .map_err(|err| StoreError::Inconsistent(format!("roles as JSON: {err}")))?;
        let mut locked = self.begin_locked().await?;
        let existing: Option<String> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar("SELECT name FROM users WHERE name = $1")
                .bind(user.name)
                .fetch_optional(&mut **tx)
                .await?
        });
        if existing.is_some() {
            return Err(StoreError::Duplicate(format!(
                "a user named {} already exists",
                user.name
            )));
        }
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO users (name, password_hash, roles, created_at, disabled)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user.name)
            .bind(user.password_hash)
            .bind(&roles)
            .bind(rfc3339_utc(now))
            .bind(false)
            .execute(&mut **tx)
            .await?;
        });
        bump_people_revision(&mut locked).await?;
        locked.commit().await
    }

    /// The user named `name`.
    pub async fn user(&self, name: &str) -> Result<Option<StoredUser>> {
        let row: Option<UserTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT name, password_hash, roles, created_at, disabled
                 FROM users WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        row.map(user_from_row).transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<StoredUser>> {
        let rows: Vec<UserTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT name, password_hash, roles, created_at, disabled
                 FROM users ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(user_from_row).collect()
    }

    /// Replaces the roles of the user `name`. Returns whether the user exists.
    pub async fn set_user_roles(&self, name: &str, roles: &[String]) -> Result<bool> {
        let roles = serde_json::to_string(roles)
            .map_err(|err| StoreError::Inconsistent(format!("roles as JSON: {err}")))?;
        let mut locked = self.begin_locked().await?;
        let changed = on_backend!(&mut locked.tx, |tx| {
            sqlx::query("UPDATE users SET roles = $2 WHERE name = $1")
                .bind(name)
                .bind(&roles)
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

    /// Replaces the password hash of the user `name` and revokes, in the same
    /// transaction, every refresh token family and every API token of the user (a reset
    /// password ends whatever the old one let anyone start). Returns whether the user
    /// exists.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
        now: SystemTime,
    ) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let changed = on_backend!(&mut locked.tx, |tx| {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
                .bind(name)
                .bind(password_hash)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        if changed > 0 {
            revoke_user_tokens(&mut locked, name, now).await?;
        }
        locked.commit().await?;
        Ok(changed > 0)
    }

    /// Disables or enables the user `name`; disabling also revokes every refresh token
    /// family and every API token of the user. Returns whether the user exists.
    pub async fn set_user_disabled(
        &self,
        name: &str,
        disabled: bool,
        now: SystemTime,
    ) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let changed = on_backend!(&mut locked.tx, |tx| {
            sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1")
                .bind(name)
                .bind(disabled)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        if disabled {
            revoke_user_tokens(&mut locked, name, now).await?;
        }
        if changed > 0 {
            bump_people_revision(&mut locked).await?;
        }
        locked.commit().await?;
        Ok(changed > 0)
    }

    /// Stores the first token of a new family `family_id` for `user` (a login).
    pub async fn add_refresh_token(
        &self,
        user: &str,
        family_id: &str,
        token: &NewRefreshToken<'_>,
    ) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO refresh_tokens
                     (token_hash, family_id, user_name, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.token_hash)
            .bind(family_id)
            .bind(user)
            .bind(rfc3339_utc(token.issued_at))
            .bind(rfc3339_utc(token.expires_at))
            .execute(&mut **tx)
            .await?;
        });
        locked.commit().await
    }

    /// Exchanges the token whose hash is `presented` for `next`, in one locked
    /// transaction:
    ///
    /// - unused, unrevoked and not expired at `now`: it is marked used and `next` joins
    ///   its family ([`Rotation::Rotated`]);
    /// - already used or revoked: every token of its family is revoked
    ///   ([`Rotation::Reused`]);
    /// - expired ([`Rotation::Expired`]) or unknown ([`Rotation::Unknown`]): nothing
    ///   changes.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        next: &NewRefreshToken<'_>,
        now: SystemTime,
    ) -> Result<Rotation> {
        let now = rfc3339_utc(now);
        let mut locked = self.begin_locked().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        let row: Option<TokenTuple> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_as(&sql)
                .bind(presented)
                .fetch_optional(&mut **tx)
                .await?
        });
        let Some(token) = row.map(StoredRefreshToken::from) else {
            return Ok(Rotation::Unknown);
        };
        if token.used_at.is_some() || token.revoked_at.is_some() {
            on_backend!(&mut locked.tx, |tx| {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2
                     WHERE family_id = $1 AND revoked_at IS NULL",
                )
                .bind(&token.family_id)
                .bind(&now)
                .execute(&mut **tx)
                .await?;
            });
            locked.commit().await?;
            return Ok(Rotation::Reused {
                user: token.user,
                family_id: token.family_id,
            });
        }
        // Fixed-width RFC 3339 UTC text: text order is time order.
        if token.expires_at <= now {
            return Ok(Rotation::Expired);
        }
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
                .bind(presented)
                .bind(&now)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens
                     (token_hash, family_id, user_name, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(next.token_hash)
            .bind(&token.family_id)
            .bind(&token.user)
            .bind(rfc3339_utc(next.issued_at))
            .bind(rfc3339_utc(next.expires_at))
            .execute(&mut **tx)
            .await?;
        });
        locked.commit().await?;
        Ok(Rotation::Rotated {
            user: token.user,
            family_id: token.family_id,
        })
    }

    /// The refresh token whose hash is `token_hash`.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<StoredRefreshToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        let row: Option<TokenTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(StoredRefreshToken::from))
    }

    /// Every token of the family `family_id`, oldest first.
    pub async fn refresh_family(&self, family_id: &str) -> Result<Vec<StoredRefreshToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE family_id = $1
             ORDER BY issued_at, token_hash"
        );
        let rows: Vec<TokenTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql).bind(family_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(StoredRefreshToken::from).collect())
    }

    /// Revokes every token of the family `family_id` not revoked yet (a logout). Returns
    /// how many tokens this revoked.
    pub async fn revoke_refresh_family(&self, family_id: &str, now: SystemTime) -> Result<u64> {
        let mut locked = self.begin_locked().await?;
        let revoked = on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2
                 WHERE family_id = $1 AND revoked_at IS NULL",
            )
            .bind(family_id)
            .bind(rfc3339_utc(now))
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        locked.commit().await?;
        Ok(revoked)
    }
}

/// Revokes, within `locked`'s transaction, every refresh token and API token of `user`
/// not revoked yet.
async fn revoke_user_tokens(locked: &mut LockedTx, user: &str, now: SystemTime) -> Result<()> {
    let now = rfc3339_utc(now);
    on_backend!(&mut locked.tx, |tx| {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2
             WHERE user_name = $1 AND revoked_at IS NULL",
        )
        .bind(user)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2
             WHERE user_name = $1 AND revoked_at IS NULL",
        )
        .bind(user)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    });
    Ok(())
}
