//! Plugins and their approvals (THREATS.md T6): the same checks as `relo plugin add` and
//! `relo plugin approve`, against the trust policy the server was given
//! ([`AppState::with_trust`]).
//!
//! An upload is verified before anything is stored (the attestation, then the
//! component's imports); an approval is a document signed offline by its approver (the
//! server never holds people's private keys), and is accepted only from the person who
//! signed it, who must not be the person `[[trust.signers]]` attributes the plugin's
//! signing key to. Each refusal by the trust policy is a `plugin.refused` entry of the
//! control chain, as with the CLI; each accepted change is stored together with its
//! `plugin.added` or `approval.granted` entry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64ct::{Base64, Encoding as _};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_policy::{Capabilities, CapabilityDiff};
use relo_store::{Added, NewApproval, NewPlugin, StoreError, StoredApproval, StoredPlugin};
use relo_trust::{
    Envelope, Refusal, VerifiedPlugin, read_envelope, sha256_hex, stored_approval_predicate,
};
use serde::{Deserialize, Serialize};

use crate::access::{Origin, Principal, record, refused};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::{AppState, Trust};

/// The largest request body `POST /v1/plugins` reads, in bytes: a component of up to
/// about 12 MiB, base64-encoded, with its attestation.
pub const PLUGIN_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// `POST /v1/plugins`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    /// The component, standard base64.
    wasm_base64: String,
    /// The attestation as text: a DSSE envelope or a Sigstore bundle, JSON.
    attestation: String,
}

/// The answer to an upload.
#[derive(Debug, Serialize)]
pub(crate) struct Uploaded {
    digest: String,
    name: String,
    version: String,
    signer_key_id: String,
}

/// A stored plugin as listed.
#[derive(Debug, Serialize)]
pub(crate) struct PluginEntry {
    digest: String,
    name: String,
    version: String,
    added_at: String,
}

/// A stored plugin as inspected: what its verified attestation says, and its approvals.
#[derive(Debug, Serialize)]
pub(crate) struct PluginDetail {
    digest: String,
    name: String,
    version: String,
    added_at: String,
    signer_key_id: String,
    signer_person: Option<String>,
    manifest: serde_json::Value,
    approvals: Vec<ApprovalView>,
}

/// A stored approval as listed (the signed document is not repeated).
#[derive(Debug, Serialize)]
pub(crate) struct ApprovalView {
    id: String,
    digest: String,
    approved_by: String,
    created_at: String,
    expires_at: Option<String>,
    revoked: Option<String>,
}

impl From<StoredApproval> for ApprovalView {
    fn from(approval: StoredApproval) -> ApprovalView {
        ApprovalView {
            id: approval.id,
            digest: approval.digest,
            approved_by: approval.approved_by,
            created_at: approval.created_at,
            expires_at: approval.expires_at,
            revoked: approval.revoked,
        }
    }
}

/// The answer to an accepted approval.
#[derive(Debug, Serialize)]
pub(crate) struct Approved {
    approval_id: String,
    plugin: String,
    digest: String,
    approver: String,
    key_id: String,
    expires_at: Option<String>,
}

fn plugin_not_found(digest: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "plugin-not-found",
        format!("no plugin with digest {digest} is stored; upload it with POST /v1/plugins"),
    )
}

/// The digest of a path: 64 hex digits, optionally after `sha256:`, as lowercase.
fn digest_of(text: &str) -> Result<String, ApiError> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(
            "invalid-field",
            "`digest` must be a sha256 digest: 64 hex digits, optionally after `sha256:`",
        )
        .with_field("digest"))
    }
}

/// Records the refusal of `digest` with `code` as a `plugin.refused` entry of the control
/// chain, counts it, and returns it as `status` (or `internal` when the entry could not
/// be written: a refusal is never answered unrecorded).
async fn refuse(
    state: &AppState,
    digest: &str,
    status: StatusCode,
    code: &'static str,
    reason: String,
) -> ApiError {
    state.metrics().refusal(code);
    tracing::warn!(digest, code, %reason, "refused a plugin or an approval");
    let event = EvidenceEvent::PluginRefused {
        digest: digest.to_owned(),
        code: code.to_owned(),
        reason: reason.clone(),
    };
    match record(state, event).await {
        Ok(()) => ApiError::new(status, code, reason),
        Err(failure) => failure,
    }
}

/// A trust refusal as an answer: 403 when it is about who may approve (separation of
/// duties), 422 otherwise; recorded either way.
async fn refuse_trust(state: &AppState, digest: &str, refusal: Refusal) -> ApiError {
    let status = match refusal {
        Refusal::SeparationOfDuties { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    refuse(state, digest, status, refusal.code(), refusal.to_string()).await
}

async fn stored(state: &AppState, digest: &str) -> Result<StoredPlugin, ApiError> {
    state
        .store()
        .plugin(digest)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| plugin_not_found(digest))
}

/// Verifies a stored plugin again (the policy may have changed since it was stored, a
/// signer retired); a refusal is recorded.
async fn verify_stored(
    state: &AppState,
    trust: &Trust,
    plugin: &StoredPlugin,
) -> Result<VerifiedPlugin, ApiError> {
    match trust
        .signers()
        .verify_plugin(&plugin.bytes, plugin.attestation.as_bytes())
    {
        Ok(verified) => Ok(verified),
        Err(refusal) => Err(refuse_trust(state, &plugin.digest, refusal).await),
    }
}

/// What `verified` declares, resolved against relo.toml; 422 `undeclarable` when an
/// endpoint it names is not bound there.
fn declared(trust: &Trust, verified: &VerifiedPlugin) -> Result<Capabilities, ApiError> {
    relo_policy::declared_capabilities(&verified.manifest, &trust.config).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "undeclarable",
            format!(
                "{}'s declared capabilities do not resolve against relo.toml: {error}",
                verified.reference()
            ),
        )
    })
}

/// The approvals stored for `plugin`'s digest, oldest first.
async fn approvals_of(
    state: &AppState,
    plugin: &StoredPlugin,
) -> Result<Vec<StoredApproval>, ApiError> {
    Ok(state
        .store()
        .approvals_of(&plugin.name)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|approval| approval.digest == plugin.digest)
        .collect())
}

/// `POST /v1/plugins`: verify, check the imports, store. The same digest again is 200
/// with the same answer; another digest under a stored `name@version` is 409.
pub(crate) async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<Upload>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let trust = state.trust()?;
    let wasm = Base64::decode_vec(request.wasm_base64.trim()).map_err(|_| {
        ApiError::bad_request("invalid-field", "`wasm_base64` is not standard base64")
            .with_field("wasm_base64")
    })?;
    let digest = sha256_hex(&wasm);
    let verified = match trust
        .signers()
        .verify_plugin(&wasm, request.attestation.as_bytes())
    {
        Ok(verified) => verified,
        Err(refusal) => return Err(refuse_trust(&state, &digest, refusal).await),
    };
    if let Err(error) = relo_sandbox::check_imports(&wasm) {
        return Err(refuse(
            &state,
            &digest,
            StatusCode::UNPROCESSABLE_ENTITY,
            error.code(),
            error.to_string(),
        )
        .await);
    }
    let mut event = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginAdded {
            name: verified.name.clone(),
            version: verified.version.clone(),
            digest: verified.digest.clone(),
            signer_key_id: verified.signer_key_id.clone(),
        },
    );
    event.time = state.clock().now();
    let added = state
        .store()
        .add_plugin(
            &NewPlugin {
                digest: &verified.digest,
                name: &verified.name,
                version: &verified.version,
                bytes: &wasm,
                attestation: &request.attestation,
            },
            &event,
        )
        .await;
    let status = match added {
        Ok(Added::New) => StatusCode::CREATED,
        Ok(Added::AlreadyPresent) => StatusCode::OK,
        Err(StoreError::VersionTaken { reference, digest }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "version-taken",
                format!(
                    "{reference} is already stored with digest {digest}; publish a new version"
                ),
            ));
        }
        Err(other) => return Err(ApiError::internal(other)),
    };
    // Kept for separation of duties: the uploader never approves what they uploaded.
    state
        .store()
        .record_upload(&verified.digest, &principal.user, state.clock().now())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(
        uploader = %principal.user,
        plugin = %verified.reference(),
        digest = %verified.digest,
        new = status == StatusCode::CREATED,
        "a plugin was uploaded"
    );
    Ok((
        status,
        Json(Uploaded {
            digest: verified.digest,
            name: verified.name,
            version: verified.version,
            signer_key_id: verified.signer_key_id,
        }),
    ))
}

/// `GET /v1/plugins`: every stored plugin, oldest first.
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<PluginEntry>>, ApiError> {
    let index = state
        .store()
        .plugin_index()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        index
            .into_iter()
            .map(|(digest, name, version, added_at)| PluginEntry {
                digest,
                name,
                version,
                added_at,
            })
            .collect(),
    ))
}

/// `GET /v1/plugins/{digest}`: the signed manifest and the approvals.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    let digest = digest_of(&digest)?;
    let trust = state.trust()?;
    let plugin = stored(&state, &digest).await?;
    let verified = verify_stored(&state, trust, &plugin).await?;
    let approvals = approvals_of(&state, &plugin).await?;
    let manifest = serde_json::to_value(&verified.manifest).map_err(ApiError::internal)?;
    Ok(Json(PluginDetail {
        digest: plugin.digest,
        name: plugin.name,
        version: plugin.version,
        added_at: plugin.added_at,
        signer_key_id: verified.signer_key_id,
        signer_person: verified.signer_person,
        manifest,
        approvals: approvals.into_iter().map(ApprovalView::from).collect(),
    }))
}

/// `GET /v1/plugins/{digest}/approvals`.
pub(crate) async fn list_approvals(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<Vec<ApprovalView>>, ApiError> {
    let digest = digest_of(&digest)?;
    let plugin = stored(&state, &digest).await?;
    let approvals = approvals_of(&state, &plugin).await?;
    Ok(Json(
        approvals.into_iter().map(ApprovalView::from).collect(),
    ))
}

/// `POST /v1/plugins/{digest}/approvals`: the body is the approval as `relo plugin
/// approve --out` writes it (a DSSE envelope, or a Sigstore bundle around one).
///
/// In order: the plugin is stored and still verifies; a person of `[[people]]` signed
/// the approval, and that person is the caller (403 `approver-mismatch`) and did not
/// upload the plugin (403 `separation-of-duties`); the trust
/// policy accepts it for this plugin (role, separation of duties as 403, digest, expiry,
/// capabilities no wider than declared, each else 422). The same approval again is 200.
pub(crate) async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    Path(digest): Path<String>,
    ApiJson(document): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<Approved>), ApiError> {
    let digest = digest_of(&digest)?;
    let trust = state.trust()?;
    let plugin = stored(&state, &digest).await?;
    let verified = verify_stored(&state, trust, &plugin).await?;
    let bytes = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    let envelope: Envelope = match read_envelope(&bytes) {
        Ok(envelope) => envelope,
        Err(refusal) => return Err(refuse_trust(&state, &digest, refusal).await),
    };
    let policy = trust.policy().await?;
    // Who signed it, before what it says: only its signer may submit it.
    if let Ok((person, key_id)) = policy.signed_by_person(&envelope)
        && person != principal.user
    {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "approver-mismatch",
            format!(
                "this approval is signed by {person} (key {key_id}); only {person} may submit it"
            ),
        );
        let detail = Some(format!("approval of {digest} signed by {person}"));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    // Nobody approves a plugin they uploaded.
    if state
        .store()
        .plugin_uploader(&digest)
        .await
        .map_err(ApiError::internal)?
        .as_deref()
        == Some(principal.user.as_str())
    {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "separation-of-duties",
            format!(
                "{} uploaded this plugin and cannot approve it",
                principal.user
            ),
        );
        let detail = Some(format!("approval of {digest} by its uploader"));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    let declared = declared(trust, &verified)?;
    let approval =
        match policy.verify_approval(&verified, &envelope, &declared, state.clock().now()) {
            Ok(approval) => approval,
            Err(refusal) => return Err(refuse_trust(&state, &digest, refusal).await),
        };
    let predicate = &approval.predicate;
    // verify_approval checked the signer against this claim; the caller is the signer.
    if predicate.approver.person != principal.user {
        return Err(ApiError::internal(
            "an approval verified for another person than its signer",
        ));
    }
    let answer = Approved {
        approval_id: approval.id.clone(),
        plugin: verified.reference(),
        digest: verified.digest.clone(),
        approver: predicate.approver.person.clone(),
        key_id: predicate.approver.key_id.clone(),
        expires_at: predicate.expires_at.clone(),
    };
    let already = state
        .store()
        .approval(&approval.id)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .any(|stored| stored.id == approval.id);
    if already {
        return Ok((StatusCode::OK, Json(answer)));
    }
    let mut event = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::ApprovalGranted {
            approval_id: approval.id.clone(),
            plugin: verified.reference(),
            digest: verified.digest.clone(),
            approver: predicate.approver.person.clone(),
            key_id: predicate.approver.key_id.clone(),
            expires_at: predicate.expires_at.clone(),
        },
    );
    event.time = state.clock().now();
    let stored_document = envelope.to_json_pretty();
    state
        .store()
        .add_approval(
            &NewApproval {
                id: &approval.id,
                digest: &verified.digest,
                approved_by: &predicate.approver.person,
                document: &stored_document,
                expires_at: predicate.expires_at.as_deref(),
            },
            &event,
        )
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(
        approver = %principal.user,
        plugin = %verified.reference(),
        digest = %verified.digest,
        approval = %approval.id,
        "a plugin was approved"
    );
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `POST /v1/plugins/{digest}/block` and `.../approvals/{id}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    /// Why, in the operator's words.
    reason: String,
}

/// The answer to a block or a revocation.
#[derive(Debug, Serialize)]
pub(crate) struct Stopped {
    digest: String,
    approval_id: Option<String>,
    by: String,
    /// `false` when it was blocked already.
    new: bool,
}

fn reason_of(request: &Reason) -> Result<&str, ApiError> {
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(
            ApiError::bad_request("invalid-field", "`reason` must be 1 to 500 characters")
                .with_field("reason"),
        );
    }
    Ok(reason)
}

/// `POST /v1/plugins/{digest}/block`: no step uses the digest from now on, whatever its
/// approvals. The operator is the caller (the CLI's `relo plugin block --as NAME` is a
/// claimed name; here it is the login). Stored with its `plugin.blocked` entry.
pub(crate) async fn block(
    State(state): State<AppState>,
    principal: Principal,
    Path(digest): Path<String>,
    ApiJson(request): ApiJson<Reason>,
) -> Result<(StatusCode, Json<Stopped>), ApiError> {
    let digest = digest_of(&digest)?;
    let reason = reason_of(&request)?;
    let mut record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::PluginBlocked {
            digest: digest.clone(),
            reason: reason.to_owned(),
            by: principal.user.clone(),
        },
    );
    record.time = state.clock().now();
    let new = state
        .store()
        .block(&digest, reason, &principal.user, &record)
        .await
        .map_err(ApiError::internal)?;
    tracing::warn!(by = %principal.user, digest, new, "a plugin was blocked");
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Stopped {
            digest,
            approval_id: None,
            by: principal.user,
            new,
        }),
    ))
}

/// `POST /v1/plugins/{digest}/approvals/{id}/revoke`: the approval stops counting from
/// the next step on. Stored with its `approval.revoked` entry, by the caller.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((digest, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<Reason>,
) -> Result<(StatusCode, Json<Stopped>), ApiError> {
    let digest = digest_of(&digest)?;
    let reason = reason_of(&request)?;
    let approval = state
        .store()
        .approval(&id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|a| a.id == id && a.digest == digest)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "approval-not-found",
                format!("plugin {digest} has no approval {id}"),
            )
        })?;
    if let Some(earlier) = approval.revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already-revoked",
            format!("approval {id} is already revoked ({earlier})"),
        ));
    }
    let mut record = EvidenceRecord::new(
        Scope::Control,
        None,
        EvidenceEvent::ApprovalRevoked {
            approval_id: id.clone(),
            digest: digest.clone(),
            reason: reason.to_owned(),
            by: principal.user.clone(),
        },
    );
    record.time = state.clock().now();
    state
        .store()
        .revoke_approval(&id, &digest, reason, &principal.user, &record)
        .await
        .map_err(ApiError::internal)?;
    tracing::warn!(by = %principal.user, digest, approval = %id, "an approval was revoked");
    Ok((
        StatusCode::CREATED,
        Json(Stopped {
            digest,
            approval_id: Some(id),
            by: principal.user,
            new: true,
        }),
    ))
}

/// `GET /v1/plugins/{digest}/diff?against=DIGEST`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffQuery {
    #[serde(default)]
    against: Option<String>,
}

/// What a plugin asks for beyond another, as `relo plugin diff --json` says it.
#[derive(Debug, Serialize)]
pub(crate) struct DiffView {
    old: String,
    new: String,
    widens: bool,
    changes: serde_json::Value,
}

/// `GET /v1/plugins/{digest}/diff`: the plugin's declared capabilities against those of
/// the stored plugin `against`, or, without it, against the newest unrevoked approval of
/// its name — what an operator reviews before approving a new version.
pub(crate) async fn diff(
    State(state): State<AppState>,
    Path(digest): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<DiffView>, ApiError> {
    let digest = digest_of(&digest)?;
    let trust = state.trust()?;
    let new = verify_stored(&state, trust, &stored(&state, &digest).await?).await?;
    let (old_caps, old) = match &query.against {
        Some(against) => {
            let against = digest_of(against).map_err(|e| e.with_field("against"))?;
            let old = verify_stored(&state, trust, &stored(&state, &against).await?).await?;
            (
                declared(trust, &old)?,
                format!("{} (declared)", old.reference()),
            )
        }
        None => {
            let approvals = state
                .store()
                .approvals_of(&new.name)
                .await
                .map_err(ApiError::internal)?;
            let latest = approvals
                .iter()
                .rev()
                .find(|a| a.revoked.is_none())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "no-approval",
                        format!(
                            "no unrevoked approval of {} is stored: name the version to \
                             compare with (`against`)",
                            new.name
                        ),
                    )
                })?;
            let predicate = stored_approval_predicate(latest.document.as_bytes())
                .map_err(ApiError::internal)?;
            let old = format!(
                "approval {} of {}@{} by {}",
                latest.id,
                predicate.plugin.name,
                predicate.plugin.version,
                predicate.approver.person
            );
            (predicate.capabilities, old)
        }
    };
    let diff = CapabilityDiff::between(&old_caps, &declared(trust, &new)?);
    Ok(Json(DiffView {
        old,
        new: new.reference(),
        widens: diff.widens(),
        changes: serde_json::to_value(&diff.changes).map_err(ApiError::internal)?,
    }))
}
