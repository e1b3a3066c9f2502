//! Users and roles (admin), API tokens (each user's own), and the control-plane audit
//! chain. The access guard has already checked the permission of each route; these
//! handlers check what depends on the request: an admin cannot lock themselves out, and
//! a token never gets a scope its maker cannot use.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use relo_evidence::EvidenceEvent;
use relo_store::{CONTROL_SCOPE, NewApiToken, StoredApiToken, StoredUser};
use serde::{Deserialize, Serialize};

use crate::access::{Credential, Origin, Principal, record, refused, roles};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::permissions::Permission;
use crate::state::AppState;
use crate::tokens::{API_TOKEN_PREFIX, RefreshToken, random_id};
use crate::users::{self, Role};

/// The longest an API token may live, in days.
pub const MAX_TOKEN_DAYS: u32 = 90;

/// The most audit entries one `GET /v1/audit` answers.
const AUDIT_PAGE: u32 = 500;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub(crate) struct UserView {
    name: String,
    roles: Vec<Role>,
    disabled: bool,
    created_at: String,
}

impl UserView {
    fn of(user: StoredUser) -> Result<UserView, ApiError> {
        Ok(UserView {
            roles: roles(&user)?,
            name: user.name,
            disabled: user.disabled,
            created_at: user.created_at,
        })
    }
}

/// `POST /v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    name: String,
    password: String,
    roles: Vec<Role>,
}

/// `PUT /v1/users/{name}/roles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRoles {
    roles: Vec<Role>,
}

pub(crate) fn user_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "user-not-found",
        format!("no user is named `{name}`"),
    )
}

fn self_lockout(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "self-lockout",
        format!("an admin cannot {what}; another admin has to"),
    )
}

/// Sorted, without duplicates.
fn distinct<T: Ord + Copy>(items: &[T]) -> Vec<T> {
    items
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub(crate) async fn list_users(
    State(state): State<AppState>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store().users().await.map_err(ApiError::internal)?;
    Ok(Json(
        users
            .into_iter()
            .map(UserView::of)
            .collect::<Result<_, _>>()?,
    ))
}

/// Logs `principal`'s `action` on `target` and appends it to the control chain as an
/// `admin.action` entry.
pub(crate) async fn admin_action(
    state: &AppState,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    tracing::info!(by = %principal.user, action, target, ?detail, "administration");
    record(
        state,
        EvidenceEvent::AdminAction {
            by: principal.user.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        },
    )
    .await
}

fn role_names(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let roles = distinct(&request.roles);
    // Recorded as `user.created` by the admin in the same call.
    users::create_user_by(
        state.store(),
        &request.name,
        &request.password,
        &roles,
        &principal.user,
    )
    .await?;
    let user = state
        .store()
        .user(&request.name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| user_not_found(&request.name))?;
    Ok((StatusCode::CREATED, Json(UserView::of(user)?)))
}

pub(crate) async fn set_roles(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SetRoles>,
) -> Result<Json<UserView>, ApiError> {
    let roles = distinct(&request.roles);
    if name == principal.user && !roles.contains(&Role::Admin) {
        return Err(self_lockout("remove their own admin role"));
    }
    let names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let found = state
        .store()
        .set_user_roles(&name, &names)
        .await
        .map_err(ApiError::internal)?;
    if !found {
        return Err(user_not_found(&name));
    }
    admin_action(
        &state,
        &principal,
        "user.roles-set",
        &name,
        Some(role_names(&roles)),
    )
    .await?;
    let user = state
        .store()
        .user(&name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| user_not_found(&name))?;
    Ok(Json(UserView::of(user)?))
}

/// `PUT /v1/users/{name}/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    password: String,
}

/// `PUT /v1/users/{name}/password`: the first password of a user imported from
/// `[[people]]`, or a new one, which revokes every refresh token and API token the user
/// had (their access tokens end within 15 minutes).
pub(crate) async fn set_password(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock().now();
    if !users::set_password(state.store(), &name, &request.password, now).await? {
        return Err(user_not_found(&name));
    }
    admin_action(&state, &principal, "user.password-set", &name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn disable_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if name == principal.user {
        return Err(self_lockout("disable themselves"));
    }
    let now = state.clock().now();
    let found = state
        .store()
        .set_user_disabled(&name, true, now)
        .await
        .map_err(ApiError::internal)?;
    if !found {
        return Err(user_not_found(&name));
    }
    admin_action(&state, &principal, "user.disabled", &name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    scopes: Vec<Permission>,
    expires_in_days: u32,
}

/// An API token as listed (never its secret).
#[derive(Debug, Serialize)]
pub(crate) struct TokenView {
    id: String,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    expires_at: String,
    revoked_at: Option<String>,
}

impl From<StoredApiToken> for TokenView {
    fn from(token: StoredApiToken) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name,
            scopes: token.scopes,
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// The answer to `POST /v1/tokens`: the only time the token is shown.
#[derive(Debug, Serialize)]
pub(crate) struct CreatedToken {
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    // A token making its own successors would outlive every expiry: only a login does.
    if let Credential::ApiToken { id, .. } = &principal.credential {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "session-required",
            "an API token cannot make API tokens; log in and make it with that session",
        );
        let detail = Some(format!("api token {id}"));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid-field",
            "`name` must be 1 to 64 characters, none of them control characters",
        )
        .with_field("name"));
    }
    if !(1..=MAX_TOKEN_DAYS).contains(&request.expires_in_days) {
        return Err(ApiError::bad_request(
            "invalid-field",
            format!("`expires_in_days` must be 1 to {MAX_TOKEN_DAYS}"),
        )
        .with_field("expires_in_days"));
    }
    let scopes = distinct(&request.scopes);
    if scopes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-field",
            "`scopes` must name at least one permission",
        )
        .with_field("scopes"));
    }
    // A token never gets more than its maker can use now.
    if let Some(&missing) = scopes.iter().find(|&&p| !principal.allows(p)) {
        let err = ApiError::forbidden(missing);
        let detail = Some(missing.as_str().to_owned());
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    let secret = RefreshToken::generate().map_err(ApiError::internal)?;
    let id = random_id().map_err(ApiError::internal)?;
    let now = state.clock().now();
    let scope_names: Vec<String> = scopes.iter().map(|p| p.as_str().to_owned()).collect();
    let hash = secret.hash();
    state
        .store()
        .add_api_token(&NewApiToken {
            id: &id,
            token_hash: &hash,
            user: &principal.user,
            name,
            scopes: &scope_names,
            created_at: now,
            expires_at: now + Duration::from_secs(u64::from(request.expires_in_days) * 86_400),
        })
        .await
        .map_err(ApiError::internal)?;
    admin_action(
        &state,
        &principal,
        "token.created",
        &id,
        Some(scope_names.join(", ")),
    )
    .await?;
    let stored = state
        .store()
        .api_token_by_hash(&hash)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("a new API token is not in the store"))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: format!("{API_TOKEN_PREFIX}{}", secret.encode()),
            view: stored.into(),
        }),
    ))
}

pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state
        .store()
        .api_tokens_of(&principal.user)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = state
        .store()
        .revoke_api_token(&principal.user, &id, state.clock().now())
        .await
        .map_err(ApiError::internal)?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "token-not-found",
            "you have no API token with this id",
        ));
    }
    admin_action(&state, &principal, "token.revoked", &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One entry of the control chain as `GET /v1/audit` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AuditEntry {
    seq: u64,
    scope_seq: u64,
    kind: String,
    time: String,
    body: serde_json::Value,
    prev_hash: String,
    hash: String,
}

/// `GET /v1/audit[?after=N]`: up to 500 entries of the control chain after its entry
/// `N` (0 by default), oldest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    uri: Uri,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let mut after = 0;
    for pair in uri.query().unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("after=") {
            after = value.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid-field", "`after` must be a whole number")
                    .with_field("after")
            })?;
        }
    }
    let entries = state
        .store()
        .scope_entries(CONTROL_SCOPE, after, AUDIT_PAGE)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|entry| AuditEntry {
                body: serde_json::from_str(&entry.body).unwrap_or(serde_json::Value::Null),
                seq: entry.seq,
                scope_seq: entry.scope_seq,
                kind: entry.kind,
                time: entry.time,
                prev_hash: entry.prev_hash,
                hash: entry.hash,
            })
            .collect(),
    ))
}
