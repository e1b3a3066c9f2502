//! Login, refresh, logout and the caller's identity.
//!
//! A login checks the password (argon2id) and answers a pair: an access token (an HS256
//! JWT living 15 minutes) and a refresh token (opaque, 30 days, starting a new family in
//! the store). A refresh exchanges a live refresh token for a new pair and marks it used;
//! a used or revoked refresh token revokes its whole family. A logout revokes the family
//! of the refresh token given.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use relo_evidence::EvidenceEvent;
use relo_store::{NewRefreshToken, Rotation};
use serde::{Deserialize, Serialize};

use crate::access::{Origin, Principal, over_limit, rate_limit, record, refused, roles};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ratelimit::Limit;
use crate::state::AppState;
use crate::tokens::{ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME, RefreshToken, random_id};
use crate::users::{MAX_NAME_BYTES, Role, verify_password};

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    name: String,
    password: String,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

/// The answer to a login or a refresh.
#[derive(Debug, Serialize)]
pub(crate) struct TokenPair {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

/// The answer of `GET /v1/me`.
#[derive(Debug, Serialize)]
pub(crate) struct Me {
    name: String,
    roles: Vec<Role>,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid-credentials", "the name or the password is wrong")
}

fn invalid_refresh_token() -> ApiError {
    ApiError::unauthorized(
        "invalid-refresh-token",
        "the refresh token is not valid; log in again",
    )
}

pub(crate) async fn login(
    State(state): State<AppState>,
    origin: Origin,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let site = origin.site();
    let limits = state.limits();
    let name = Some(request.name.as_str());
    let client = origin.client.bucket();
    let client_bucket = format!("login-client:{client}");
    rate_limit(
        &state,
        site,
        name,
        ("login-client", &client_bucket, limits.login_per_client),
    )
    .await?;
    // Failures are charged to the name, from anywhere, and to this client on this name.
    // Once the name's failures are spent, only a client that failed on it lately is
    // refused: the name's owner elsewhere still gets their password checked.
    // No user has a longer name: such names share one bucket rather than fill memory.
    let tried = if request.name.len() <= MAX_NAME_BYTES {
        request.name.as_str()
    } else {
        "(too long)"
    };
    let name_bucket = format!("login-name:{tried}");
    let failed_here = format!("login-failed:{client} {tried}");
    let failed_here_limit = Limit {
        burst: 1,
        per: limits.login_per_name.per,
    };
    let now = state.clock().now();
    if let Err(name_spent) = state
        .limiter()
        .peek(&name_bucket, limits.login_per_name, now)
        && let Err(failed_lately) = state.limiter().peek(&failed_here, failed_here_limit, now)
    {
        let limited = name_spent.min(failed_lately);
        return Err(over_limit(&state, site, name, "login-name", limited).await);
    }
    let user = state
        .store()
        .user(&request.name)
        .await
        .map_err(ApiError::internal)?
        .filter(|user| !user.disabled);
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = verify_password(request.password, stored).await?;
    let Some(user) = user.filter(|_| verified) else {
        let now = state.clock().now();
        state
            .limiter()
            .charge(&name_bucket, limits.login_per_name, now);
        state.limiter().charge(&failed_here, failed_here_limit, now);
        tracing::warn!(user = ?request.name, "login refused: unknown or disabled user, or wrong password");
        return Err(refused(&state, site, name, None, invalid_credentials()).await);
    };
    let roles = roles(&user)?;
    let now = state.clock().now();
    let refresh = RefreshToken::generate().map_err(ApiError::internal)?;
    let family = random_id().map_err(ApiError::internal)?;
    state
        .store()
        .add_refresh_token(&user.name, &family, &refresh_row(&refresh.hash(), now))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user = %user.name, family, "logged in");
    token_pair(&state, &user.name, &roles, &refresh, now)
}

/// Takes one request of the refresh and logout routes from the client address's bucket:
/// they exchange credentials, so they are held to the login rate per client.
async fn limit_token_route(state: &AppState, origin: &Origin) -> Result<(), ApiError> {
    let bucket = format!("token-client:{}", origin.client.bucket());
    rate_limit(
        state,
        origin.site(),
        None,
        ("token-client", &bucket, state.limits().login_per_client),
    )
    .await
}

pub(crate) async fn refresh(
    State(state): State<AppState>,
    origin: Origin,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    limit_token_route(&state, &origin).await?;
    let site = origin.site();
    let Some(presented) = RefreshToken::parse(&request.refresh_token) else {
        return Err(refused(&state, site, None, None, invalid_refresh_token()).await);
    };
    let next = RefreshToken::generate().map_err(ApiError::internal)?;
    let now = state.clock().now();
    let rotation = state
        .store()
        .rotate_refresh_token(&presented.hash(), &refresh_row(&next.hash(), now), now)
        .await
        .map_err(ApiError::internal)?;
    match rotation {
        Rotation::Rotated { user, family_id } => {
            let live = state
                .store()
                .user(&user)
                .await
                .map_err(ApiError::internal)?
                .filter(|u| !u.disabled);
            let Some(user) = live else {
                state
                    .store()
                    .revoke_refresh_family(&family_id, now)
                    .await
                    .map_err(ApiError::internal)?;
                tracing::warn!(
                    user,
                    family = family_id,
                    "refresh refused: the user is disabled or gone; family revoked"
                );
                return Err(
                    refused(&state, site, Some(&user), None, invalid_refresh_token()).await,
                );
            };
            let roles = roles(&user)?;
            tracing::info!(user = %user.name, family = family_id, "refreshed");
            token_pair(&state, &user.name, &roles, &next, now)
        }
        Rotation::Reused { user, family_id } => {
            tracing::warn!(
                user,
                family = family_id,
                "refresh token reused: its whole family is revoked"
            );
            let err = ApiError::unauthorized(
                "refresh-token-reused",
                "this refresh token was already used or revoked, so every token of its login \
                 is now revoked; log in again",
            );
            state.metrics().refusal(err.code);
            record(
                &state,
                EvidenceEvent::AuthTokenReused {
                    user,
                    family: family_id,
                    client: origin.client.to_string(),
                },
            )
            .await?;
            Err(err)
        }
        Rotation::Expired => {
            let err = ApiError::unauthorized(
                "refresh-token-expired",
                "the refresh token has expired; log in again",
            );
            Err(refused(&state, site, None, None, err).await)
        }
        Rotation::Unknown => {
            tracing::warn!("refresh refused: unknown refresh token");
            Err(refused(&state, site, None, None, invalid_refresh_token()).await)
        }
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    origin: Origin,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    limit_token_route(&state, &origin).await?;
    let site = origin.site();
    let stored = match RefreshToken::parse(&request.refresh_token) {
        Some(presented) => state
            .store()
            .refresh_token(&presented.hash())
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    let Some(stored) = stored else {
        return Err(refused(&state, site, None, None, invalid_refresh_token()).await);
    };
    let now = state.clock().now();
    state
        .store()
        .revoke_refresh_family(&stored.family_id, now)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user = stored.user, family = stored.family_id, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        name: principal.user,
        roles: principal.roles,
    })
}

fn refresh_row(token_hash: &str, now: SystemTime) -> NewRefreshToken<'_> {
    NewRefreshToken {
        token_hash,
        issued_at: now,
        expires_at: now + REFRESH_TOKEN_LIFETIME,
    }
}

fn token_pair(
    state: &AppState,
    user: &str,
    roles: &[Role],
    refresh: &RefreshToken,
    now: SystemTime,
) -> Result<Json<TokenPair>, ApiError> {
    let (access_token, _) = state
        .access_tokens()
        .issue(user, roles, now)
        .map_err(ApiError::internal)?;
    Ok(Json(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
        refresh_token: refresh.encode(),
    }))
}
