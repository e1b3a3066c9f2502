//! The server's API tokens: long-lived, scoped, expiring credentials of a user.
//!
//! The store keeps a token's sha256 (lowercase hex), never the token, with its scopes (a
//! JSON array of permission names), its expiry and its revocation. What a token may do
//! is decided by the server: its scopes intersected with its user's current roles. A
//! disabled user's tokens are revoked with the user ([`Store::set_user_disabled`]).

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;

use crate::store::on_backend;
use crate::{Result, Store, StoreError};

/// An API token to store: its hash, never the token.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// A random id, shown to the user to list and revoke the token.
    pub id: &'a str,
    /// sha256 of the token's random bytes, lowercase hex.
    pub token_hash: &'a str,
    /// The user it acts for.
    pub user: &'a str,
    /// The user's label for it (`ci`, `release-bot`).
    pub name: &'a str,
    /// Permission names.
    pub scopes: &'a [String],
    /// When it was made.
    pub created_at: SystemTime,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiToken {
    /// Its id.
    pub id: String,
    /// sha256 of the token's random bytes, lowercase hex.
    pub token_hash: String,
    /// The user it acts for.
    pub user: String,
    /// The user's label for it.
    pub name: String,
    /// Permission names.
    pub scopes: Vec<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it stops being accepted (RFC 3339).
    pub expires_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

impl StoredApiToken {
    /// Whether it is unrevoked and not expired at `now`.
    pub fn is_live(&self, now: SystemTime) -> bool {
        // Fixed-width RFC 3339 UTC text: text order is time order.
        self.revoked_at.is_none() && self.expires_at > rfc3339_utc(now)
    }
}

const COLUMNS: &str = "id, token_hash, user_name, name, scopes, created_at, expires_at, revoked_at";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn from_row(
    (id, token_hash, user, name, scopes, created_at, expires_at, revoked_at): Row,
) -> Result<StoredApiToken> {
    let scopes = serde_json::from_str(&scopes)
        .map_err(|err| StoreError::Inconsistent(format!("the scopes of API token {id}: {err}")))?;
    Ok(StoredApiToken {
        id,
        token_hash,
        user,
        name,
        scopes,
        created_at,
        expires_at,
        revoked_at,
    })
}

impl Store {
    /// Stores a new API token.
    pub async fn add_api_token(&self, token: &NewApiToken<'_>) -> Result<()> {
        let scopes = serde_json::to_string(token.scopes)
            .map_err(|err| StoreError::Inconsistent(format!("scopes as JSON: {err}")))?;
        let mut locked = self.begin_locked().await?;
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO api_tokens
                     (id, token_hash, user_name, name, scopes, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token.id)
            .bind(token.token_hash)
            .bind(token.user)
            .bind(token.name)
            .bind(&scopes)
            .bind(rfc3339_utc(token.created_at))
            .bind(rfc3339_utc(token.expires_at))
            .execute(&mut **tx)
            .await?;
        });
        locked.commit().await
    }

    /// The API token whose hash is `token_hash`, live or not.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<StoredApiToken>> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1");
        let row: Option<Row> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Every API token of `user`, live or not, oldest first.
    pub async fn api_tokens_of(&self, user: &str) -> Result<Vec<StoredApiToken>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE user_name = $1 ORDER BY created_at, id"
        );
        let rows: Vec<Row> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&sql).bind(user).fetch_all(pool).await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Revokes the API token `id` of `user` (a token of another user is left alone).
    /// Returns whether `user` has a token with this id; revoking a revoked token again
    /// keeps its first revocation time.
    pub async fn revoke_api_token(&self, user: &str, id: &str, now: SystemTime) -> Result<bool> {
        let mut locked = self.begin_locked().await?;
        let found: Option<String> = on_backend!(&mut locked.tx, |tx| {
            let found =
                sqlx::query_scalar("SELECT id FROM api_tokens WHERE id = $1 AND user_name = $2")
                    .bind(id)
                    .bind(user)
                    .fetch_optional(&mut **tx)
                    .await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $3
                 WHERE id = $1 AND user_name = $2 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(user)
            .bind(rfc3339_utc(now))
            .execute(&mut **tx)
            .await?;
            found
        });
        locked.commit().await?;
        Ok(found.is_some())
    }
}
