//! People's signing keys: listed, added and revoked through the API (DESIGN §5: with the
//! server, people live in the store). A key that counts proves a person's run requests,
//! gate approvals and plugin approvals, so adding and revoking one is an admin's action,
//! each an `admin.action` entry; a revoked key counts nowhere from the next check on, on
//! every instance.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use relo_store::{NewPersonKey, StoreError, StoredPersonKey};
use relo_trust::PublicKey;
use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::admin::{admin_action, user_not_found};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// A person's key as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct KeyView {
    key_id: String,
    public_key: String,
    added_by: String,
    added_at: String,
    revoked_by: Option<String>,
    revoked_at: Option<String>,
}

impl From<StoredPersonKey> for KeyView {
    fn from(key: StoredPersonKey) -> KeyView {
        let (revoked_by, revoked_at) = key.revoked.unzip();
        KeyView {
            key_id: key.key_id,
            public_key: key.public_key,
            added_by: key.added_by,
            added_at: key.added_at,
            revoked_by,
            revoked_at,
        }
    }
}

/// `POST /v1/users/{name}/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddKey {
    public_key: String,
}

/// `GET /v1/users/{name}/keys`: every key of the user, revoked ones included.
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let store = state.store();
    if store
        .user(&name)
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(user_not_found(&name));
    }
    let keys = store.person_keys(&name).await.map_err(ApiError::internal)?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}

/// `POST /v1/users/{name}/keys`: adds a public key (PEM) to the user; its id is computed
/// from the key. A key already stored for anyone is 409 `key-exists`.
pub(crate) async fn add_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let key = PublicKey::from_pem(&request.public_key).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-key",
            format!("`public_key` is not a PEM public key relo accepts: {error}"),
        )
        .with_field("public_key")
    })?;
    let pem = key.to_pem();
    let store = state.store();
    let added = store
        .add_person_key(
            &NewPersonKey {
                user: &name,
                key_id: key.key_id(),
                public_key: &pem,
                added_by: &principal.user,
            },
            state.clock().now(),
        )
        .await;
    match added {
        Ok(()) => {}
        Err(StoreError::UnknownUser(_)) => return Err(user_not_found(&name)),
        Err(StoreError::Duplicate(message)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "key-exists", message));
        }
        Err(other) => return Err(ApiError::internal(other)),
    }
    admin_action(
        &state,
        &principal,
        "key.added",
        &name,
        Some(key.key_id().to_owned()),
    )
    .await?;
    let stored = store
        .person_keys(&name)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|stored| stored.key_id == key.key_id())
        .ok_or_else(|| ApiError::internal("a new key is not in the store"))?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// `POST /v1/users/{name}/keys/{key_id}/revoke`: the key stops counting at once, on
/// every instance; it stays listed, revoked.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let revoked = state
        .store()
        .revoke_person_key(&name, &key_id, &principal.user, state.clock().now())
        .await
        .map_err(ApiError::internal)?;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key-not-found",
            format!("{name} has no unrevoked key {key_id}"),
        ));
    }
    admin_action(&state, &principal, "key.revoked", &name, Some(key_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
