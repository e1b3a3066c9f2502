//! Workflows and runs over the API (THREATS.md T6, T10): registering and validating
//! workflows, starting runs from requests their requester signed offline, reading them,
//! cancelling them, and approving their gates with approvals signed offline.
//!
//! The server never holds people's keys: a run request is signed by the requester with
//! their `[[people]]` key (as `relo run` signs it) and is accepted only from the logged-in
//! user it names; a gate approval likewise only from its signer, who must not be the
//! run's requester (separation of duties, checked by the same code as the runner's). A
//! requester has at most the server's limit of runs that have not ended. Every refusal is
//! recorded: in the control chain, and for a gate in the run's own evidence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use base64ct::{Base64, Encoding as _};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_manifest::{Diagnostics, Workflow};
use relo_orchestrator::{
    GateApprovalPayload, RunError, RunRequest, RunSpec, Runner, StoredRun, StoredRunError,
    Workspaces, cancel_run, params,
};
use relo_store::{GateApproval, Placed, RunRow, StoreError};
use relo_trust::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{Origin, Principal, refused};
use crate::engine::RunEngine;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::users::Role;

/// The largest request body `POST /v1/runs` reads, in bytes: a workspace of a few MiB,
/// base64-encoded, with its workflow and request.
pub const RUN_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Runs listed at most.
const MAX_LISTED: u32 = 500;

/// The longest `GET /v1/runs/{id}?wait=` holds a request, in seconds: well within the
/// request time limit.
pub const MAX_RUN_WAIT_SECONDS: u64 = 25;

/// How often a held `GET /v1/runs/{id}` looks at the run again.
const RUN_WAIT_POLL: Duration = Duration::from_millis(500);

/// `POST /v1/workflows` and `POST /v1/workflows/validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkflowText {
    /// The workflow, YAML.
    text: String,
}

/// One problem of a workflow.
#[derive(Debug, Serialize)]
pub(crate) struct Problem {
    code: String,
    line: u32,
    column: u32,
    path: String,
    message: String,
}

/// The answer to a validation.
#[derive(Debug, Serialize)]
pub(crate) struct Validation {
    valid: bool,
    name: Option<String>,
    sha256: String,
    steps: Vec<String>,
    problems: Vec<Problem>,
}

/// A registered workflow.
#[derive(Debug, Serialize)]
pub(crate) struct WorkflowView {
    sha256: String,
    name: String,
    registered_by: String,
    registered_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

/// `POST /v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartRun {
    /// The run request as `relo run` signs it: a DSSE envelope, as a JSON object.
    request: Value,
    /// The workflow's text; without it, the registered workflow whose sha256 the
    /// request names.
    #[serde(default)]
    workflow_text: Option<String>,
    /// The workspace the run starts with: a tar archive, standard base64.
    #[serde(default)]
    workspace_tar_base64: Option<String>,
}

/// The answer to a started run.
#[derive(Debug, Serialize)]
pub(crate) struct Started {
    run_id: String,
    state: &'static str,
    behind: Option<String>,
}

/// `GET /v1/runs?limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
}

/// A run as listed.
#[derive(Debug, Serialize)]
pub(crate) struct RunSummary {
    id: String,
    workflow: String,
    state: String,
    requested_by: String,
    created_at: String,
    finished_at: Option<String>,
}

impl From<&RunRow> for RunSummary {
    fn from(row: &RunRow) -> RunSummary {
        RunSummary {
            id: row.id.clone(),
            workflow: row.workflow.clone(),
            state: row.state.clone(),
            requested_by: row.requested_by.clone(),
            created_at: row.created_at.clone(),
            finished_at: row.finished_at.clone(),
        }
    }
}

/// A run with its steps.
#[derive(Debug, Serialize)]
pub(crate) struct RunDetail {
    #[serde(flatten)]
    summary: RunSummary,
    workflow_sha256: Option<String>,
    driver: Option<String>,
    steps: Vec<StepView>,
}

/// A step of a run.
#[derive(Debug, Serialize)]
pub(crate) struct StepView {
    step_id: String,
    state: String,
    attempt: i64,
    started_at: Option<String>,
    error: Option<String>,
    output: Value,
}

/// `GET /v1/runs/{id}?wait=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    wait: Option<u64>,
}

/// `GET /v1/runs/{id}/logs?step=S`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    #[serde(default)]
    step: Option<String>,
}

/// A line a step logged.
#[derive(Debug, Serialize)]
pub(crate) struct LogLine {
    step_id: String,
    attempt: i64,
    source: String,
    level: String,
    message: String,
}

/// The answer to a cancel.
#[derive(Debug, Serialize)]
pub(crate) struct Cancelled {
    id: String,
    state: &'static str,
}

/// The answer to an accepted gate approval.
#[derive(Debug, Serialize)]
pub(crate) struct GateApproved {
    run_id: String,
    step: String,
    approver: String,
    approvals: usize,
    quorum: u32,
}

fn no_runner() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no-runner",
        "this server was started without a runner, so it cannot run workflows",
    )
}

fn engine(state: &AppState) -> Result<&Arc<RunEngine>, ApiError> {
    state.engine().ok_or_else(no_runner)
}

fn run_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "run-not-found",
        format!("there is no run {id}"),
    )
}

/// Parses `text` as a workflow, or the problems found, for a body field `field`.
fn parse(text: &str) -> Result<Workflow, Diagnostics> {
    relo_manifest::parse_workflow("workflow", text.as_bytes())
}

fn invalid_workflow(diagnostics: &Diagnostics, field: &str) -> ApiError {
    let first = diagnostics.items().first();
    let message = match first {
        Some(d) => format!(
            "the workflow is invalid ({} problems); line {}, column {}{}: {}",
            diagnostics.len(),
            d.line,
            d.column,
            if d.path.is_empty() {
                String::new()
            } else {
                format!(", `{}`", d.path)
            },
            d.message
        ),
        None => "the workflow is invalid".to_owned(),
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-workflow",
        message,
    )
    .with_field(field)
}

/// `POST /v1/workflows/validate`: every problem of the workflow, with line, column and
/// field path; nothing is stored.
pub(crate) async fn validate(ApiJson(body): ApiJson<WorkflowText>) -> Json<Validation> {
    let sha256 = sha256_hex(body.text.as_bytes());
    Json(match parse(&body.text) {
        Ok(workflow) => Validation {
            valid: true,
            name: Some(workflow.name.as_str().to_owned()),
            sha256,
            steps: workflow
                .steps
                .iter()
                .map(|s| s.id.as_str().to_owned())
                .collect(),
            problems: Vec::new(),
        },
        Err(diagnostics) => Validation {
            valid: false,
            name: None,
            sha256,
            steps: Vec::new(),
            problems: diagnostics
                .into_items()
                .into_iter()
                .map(|d| Problem {
                    code: d.code.to_string(),
                    line: d.line,
                    column: d.column,
                    path: d.path,
                    message: d.message,
                })
                .collect(),
        },
    })
}

/// `POST /v1/workflows`: registers a valid workflow under the sha256 of its text; the
/// same text again is 200.
pub(crate) async fn register(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<WorkflowText>,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let workflow = parse(&body.text).map_err(|d| invalid_workflow(&d, "text"))?;
    let sha256 = sha256_hex(body.text.as_bytes());
    let new = state
        .store()
        .register_workflow(
            &sha256,
            workflow.name.as_str(),
            &body.text,
            &principal.user,
            state.clock().now(),
        )
        .await
        .map_err(ApiError::internal)?;
    let stored = state
        .store()
        .workflow(&sha256)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("a registered workflow is not in the store"))?;
    tracing::info!(by = %principal.user, workflow = %stored.name, %sha256, new, "a workflow was registered");
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(WorkflowView {
            sha256: stored.sha256,
            name: stored.name,
            registered_by: stored.registered_by,
            registered_at: stored.registered_at,
            text: None,
        }),
    ))
}

/// `GET /v1/workflows`: the registered workflows, newest first.
pub(crate) async fn list_workflows(
    State(state): State<AppState>,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let all = state
        .store()
        .workflows()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        all.into_iter()
            .map(|w| WorkflowView {
                sha256: w.sha256,
                name: w.name,
                registered_by: w.registered_by,
                registered_at: w.registered_at,
                text: None,
            })
            .collect(),
    ))
}

/// `GET /v1/workflows/{sha256}`: one registered workflow with its text.
pub(crate) async fn show_workflow(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let stored = state
        .store()
        .workflow(&sha256.to_ascii_lowercase())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "workflow-not-found",
                format!("no workflow with sha256 {sha256} is registered"),
            )
        })?;
    Ok(Json(WorkflowView {
        sha256: stored.sha256,
        name: stored.name,
        registered_by: stored.registered_by,
        registered_at: stored.registered_at,
        text: Some(stored.text),
    }))
}

/// What the request says, read before its signature is checked only to find the
/// registered workflow it names; [`RunRequest::verify`] then checks everything.
#[derive(Debug, Deserialize)]
struct Unverified {
    workflow_sha256: String,
}

fn unverified_sha256(envelope: &str) -> Option<String> {
    let envelope = relo_trust::Envelope::from_json(envelope.as_bytes()).ok()?;
    serde_json::from_slice::<Unverified>(&envelope.payload)
        .ok()
        .map(|u| u.workflow_sha256)
}

/// A run id a client may choose: 1 to 128 of `A-Za-z0-9._-`, not starting with a dot.
fn valid_run_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `POST /v1/runs`: verifies the signed request (by the caller, of this workflow text),
/// the parameters and the requester's limit of runs, stores the run with its
/// workspace, and drives it in the background. 202 with the run's id and placement.
pub(crate) async fn start(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let engine = engine(&state)?;
    let trust = state.trust()?;
    let envelope = serde_json::to_string(&body.request).map_err(ApiError::internal)?;
    let text = match body.workflow_text {
        Some(text) => text,
        None => {
            let sha256 = unverified_sha256(&envelope).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "malformed",
                    "the request is not a signed run request naming a workflow",
                )
                .with_field("request")
            })?;
            state
                .store()
                .workflow(&sha256)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "workflow-not-registered",
                        format!(
                            "no workflow with sha256 {sha256} is registered; send `workflow_text` \
                             or register it with POST /v1/workflows"
                        ),
                    )
                    .with_field("workflow_text")
                })?
                .text
        }
    };
    let workflow = parse(&text).map_err(|d| invalid_workflow(&d, "workflow_text"))?;
    let request = match RunRequest::verify(&envelope, &*trust.policy().await?, &text) {
        Ok(request) => request,
        Err(refusal) => {
            let err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                refusal.code,
                format!("the run request: {}", refusal.reason),
            )
            .with_field("request");
            let detail = Some("a run request that does not verify".to_owned());
            return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
        }
    };
    if request.requested_by != principal.user {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "requester-mismatch",
            format!(
                "this run request is signed by {}; only {} may submit it",
                request.requested_by, request.requested_by
            ),
        );
        let detail = Some(format!("run request signed by {}", request.requested_by));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    if !valid_run_id(&request.run_id) {
        return Err(ApiError::bad_request(
            "invalid-run-id",
            "a run id is 1 to 128 of A-Z a-z 0-9 . _ - and does not start with a dot",
        )
        .with_field("request"));
    }
    if workflow.name.as_str() != request.workflow {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "workflow-mismatch",
            format!(
                "the request names workflow {}, the text is {}",
                request.workflow, workflow.name
            ),
        )
        .with_field("request"));
    }
    let given: BTreeMap<String, String> = request
        .params
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect();
    params::resolve(&workflow, &given).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-params",
            format!("the request's parameters: {error}"),
        )
        .with_field("request")
    })?;
    let runner = engine.runner();
    let upload = body
        .workspace_tar_base64
        .as_deref()
        .map(|tar| unpack_workspace(runner, &request.run_id, tar))
        .transpose()?;
    if workflow.workspace.is_some() && upload.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "workspace-missing",
            "the workflow names a workspace; send it as `workspace_tar_base64`",
        )
        .with_field("workspace_tar_base64"));
    }
    let spec = RunSpec {
        run_id: &request.run_id,
        workflow: &workflow,
        workflow_text: &text,
        params: &request.params,
        requested_by: &request.requested_by,
        request: &envelope,
        workspace: upload.as_ref().map(|(_, dir)| dir.as_path()),
    };
    let placed = runner.start(&spec).await;
    if let Some((uploads, _)) = &upload
        && let Err(error) = uploads.remove(&request.run_id)
    {
        tracing::warn!(run_id = %request.run_id, "cannot remove the uploaded workspace: {error}");
    }
    let placed = match placed {
        Ok(placed) => placed,
        Err(RunError::Store(StoreError::RunQuota { active, limit, .. })) => {
            state.metrics().rate_limited("active-runs");
            let err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-active-runs",
                format!(
                    "{} has {active} runs that have not ended, the most allowed at once ({limit}); wait for one to end",
                    principal.user
                ),
            );
            let detail = Some(format!("{active} active runs, limit {limit}"));
            return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
        }
        Err(RunError::Store(StoreError::Duplicate(message))) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "run-exists", message));
        }
        Err(RunError::Store(StoreError::GroupBusy { group, run_id })) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "group-busy",
                format!(
                    "concurrency group `{group}` is busy with run {run_id}; the workflow refuses a second run"
                ),
            ));
        }
        Err(RunError::Workspace(error)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-workspace",
                format!("the workspace: {error}"),
            )
            .with_field("workspace_tar_base64"));
        }
        Err(other) => return Err(ApiError::internal(other)),
    };
    state.metrics().run_started();
    tracing::info!(run_id = %request.run_id, workflow = %workflow.name, by = %principal.user, "a run was started");
    engine.drive_in_background(request.run_id.clone(), Arc::clone(state.metrics()));
    let (state_name, behind) = match placed {
        Placed::Ready => ("pending", None),
        Placed::Queued { behind } => ("queued", Some(behind)),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            run_id: request.run_id,
            state: state_name,
            behind,
        }),
    ))
}

/// Unpacks an uploaded workspace next to the runner's workspaces; the runner copies it
/// from there into the run's own workspace and snapshot.
fn unpack_workspace(
    runner: &Runner,
    run_id: &str,
    tar_base64: &str,
) -> Result<(Workspaces, std::path::PathBuf), ApiError> {
    let bytes = Base64::decode_vec(tar_base64.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid-field",
            "`workspace_tar_base64` is not standard base64",
        )
        .with_field("workspace_tar_base64")
    })?;
    // Its own folder: two requests for one run id never unpack into the same place.
    static UPLOADS: AtomicU64 = AtomicU64::new(0);
    let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let uploads = Workspaces::new(
        runner
            .workspaces
            .dir(run_id)
            .with_extension(format!("upload-{n}")),
    );
    uploads.restore(run_id, &bytes).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-workspace",
            format!("the workspace archive: {error}"),
        )
        .with_field("workspace_tar_base64")
    })?;
    let dir = uploads.dir(run_id);
    Ok((uploads, dir))
}

/// `GET /v1/runs`: the newest runs, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LISTED);
    let rows = state
        .store()
        .runs(limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rows.iter().map(RunSummary::from).collect()))
}

async fn row(state: &AppState, id: &str) -> Result<RunRow, ApiError> {
    state
        .store()
        .run(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| run_not_found(id))
}

/// `GET /v1/runs/{id}[?wait=N]`: the run and its steps, with an `ETag` (the sha256 of
/// the body). With `If-None-Match` naming the current tag the answer is 304; with `wait`
/// as well, the request is held up to `wait` seconds (at most [`MAX_RUN_WAIT_SECONDS`],
/// within the request time limit, and while fewer than
/// [`MAX_HELD_READS`](crate::state::MAX_HELD_READS) are held) until the run changes, so a client follows a run with one request per change, or per
/// `wait`, instead of polling.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ShowQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_RUN_WAIT_SECONDS {
        return Err(ApiError::bad_request(
            "invalid-query",
            format!("`wait` is at most {MAX_RUN_WAIT_SECONDS} seconds"),
        )
        .with_field("wait"));
    }
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // Held at most until shortly before the request time limit would answer 503, and
    // only while fewer than MAX_HELD_READS are held; the permit lasts the request.
    let permit = if wait > 0 { state.hold_read() } else { None };
    let hold = match permit {
        Some(_) => Duration::from_secs(wait).min(state.request_timeout().mul_f64(0.8)),
        None => Duration::ZERO,
    };
    let deadline = Instant::now() + hold;
    loop {
        let body =
            serde_json::to_vec(&run_detail(&state, &id).await?).map_err(ApiError::internal)?;
        let etag = format!("\"{}\"", sha256_hex(&body));
        let unchanged = known
            .as_deref()
            .is_some_and(|tags| matches_tag(tags, &etag));
        if !unchanged {
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::ETAG, tag_value(&etag)?);
            return Ok(response);
        }
        let now = Instant::now();
        if now >= deadline {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response
                .headers_mut()
                .insert(header::ETAG, tag_value(&etag)?);
            return Ok(response);
        }
        tokio::time::sleep(RUN_WAIT_POLL.min(deadline - now)).await;
    }
}

/// Whether the `If-None-Match` value `tags` names `etag` (or is `*`).
fn matches_tag(tags: &str, etag: &str) -> bool {
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn tag_value(etag: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(etag).map_err(ApiError::internal)
}

/// The run `id` and its steps, as `GET /v1/runs/{id}` shows them.
async fn run_detail(state: &AppState, id: &str) -> Result<RunDetail, ApiError> {
    let row = row(state, id).await?;
    let steps = state
        .store()
        .run_steps(id)
        .await
        .map_err(ApiError::internal)?;
    Ok(RunDetail {
        summary: RunSummary::from(&row),
        workflow_sha256: row
            .workflow_text
            .as_deref()
            .map(|t| sha256_hex(t.as_bytes())),
        driver: row.driver.clone(),
        steps: steps
            .into_iter()
            .map(|step| StepView {
                output: step
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null),
                step_id: step.step_id,
                state: step.state,
                attempt: step.attempt,
                started_at: step.started_at,
                error: step.error,
            })
            .collect(),
    })
}

/// `GET /v1/runs/{id}/logs`: what the run's steps logged (redacted by the sandbox).
pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<Vec<LogLine>>, ApiError> {
    row(&state, &id).await?;
    let lines = state
        .store()
        .step_logs(&id, query.step.as_deref())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        lines
            .into_iter()
            .map(|line| LogLine {
                step_id: line.step_id,
                attempt: line.attempt,
                source: line.source,
                level: line.level,
                message: line.message,
            })
            .collect(),
    ))
}

/// `POST /v1/runs/{id}/cancel`: an operator cancels any run, anyone else only their own.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    Path(id): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let row = row(&state, &id).await?;
    if !principal.roles.contains(&Role::Operator) && principal.user != row.requested_by {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "not-your-run",
            format!(
                "run {id} was requested by {}; only they or an operator may cancel it",
                row.requested_by
            ),
        );
        let detail = Some(format!("cancel of run {id}"));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    if matches!(row.state.as_str(), "succeeded" | "failed" | "cancelled") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run-ended",
            format!("run {id} has already ended ({})", row.state),
        ));
    }
    cancel_run(state.store(), &id, &principal.user)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(run_id = %id, by = %principal.user, "a run was cancelled");
    Ok(Json(Cancelled {
        id,
        state: "cancelled",
    }))
}

/// `POST /v1/runs/{id}/gates/{step}/approvals`: the body is the approval as `relo
/// approve` signs it (a DSSE envelope). Accepted only from its signer, checked as the
/// runner checks it (the signer's key, the run, gate and workflow, a role of the gate,
/// and never the run's requester), stored with its `gate.approved` entry, and the run
/// carried on. Refusals are `gate.refused` entries of the run.
pub(crate) async fn approve_gate(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    Path((id, step_id)): Path<(String, String)>,
    ApiJson(document): ApiJson<Value>,
) -> Result<(StatusCode, Json<GateApproved>), ApiError> {
    let engine = engine(&state)?;
    let trust = state.trust()?;
    let stored = match StoredRun::load(state.store(), &trust.people, &id).await {
        Ok(stored) => stored,
        Err(StoredRunError::NoRun(_)) => return Err(run_not_found(&id)),
        Err(StoredRunError::Ended { state: ended, .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "run-ended",
                format!("run {id} has already ended ({ended})"),
            ));
        }
        Err(other) => return Err(ApiError::internal(other)),
    };
    let Some(gate) = stored
        .workflow
        .steps
        .iter()
        .find(|s| s.id.as_str() == step_id)
        .and_then(|s| s.approval.as_ref())
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "gate-not-found",
            format!("run {id} has no approval gate `{step_id}`"),
        ));
    };
    let envelope = serde_json::to_string(&document).map_err(ApiError::internal)?;
    let policy = trust.policy().await?;
    // Only its signer submits an approval.
    if let Ok(parsed) = relo_trust::Envelope::from_json(envelope.as_bytes())
        && let Ok((person, key_id)) = policy.signed_by_person(&parsed)
        && person != principal.user
    {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "approver-mismatch",
            format!(
                "this approval is signed by {person} (key {key_id}); only {person} may submit it"
            ),
        );
        let detail = Some(format!(
            "approval of gate {step_id} of run {id} signed by {person}"
        ));
        return Err(refused(&state, origin.site(), Some(&principal.user), detail, err).await);
    }
    let scope = Scope::Run(id.clone());
    let checked = GateApprovalPayload::check(
        &envelope,
        &policy,
        (&id, &stored.request.workflow_sha256),
        &step_id,
        gate,
        &stored.request.requested_by,
    );
    let approver = match checked {
        Ok(approver) => approver,
        Err(refusal) => {
            state.metrics().refusal(refusal.code);
            tracing::warn!(run_id = %id, step = %step_id, code = refusal.code, "refused a gate approval");
            let record = EvidenceRecord::new(
                scope,
                Some(step_id.clone()),
                EvidenceEvent::GateRefused {
                    approver: principal.user.clone(),
                    code: refusal.code.to_owned(),
                    reason: refusal.reason.clone(),
                },
            );
            state
                .store()
                .record(&record)
                .await
                .map_err(ApiError::internal)?;
            let status = if refusal.code == "separation-of-duties" || refusal.code == "missing-role"
            {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            return Err(ApiError::new(status, refusal.code, refusal.reason));
        }
    };
    let record = EvidenceRecord::new(
        scope,
        Some(step_id.clone()),
        EvidenceEvent::GateApproved {
            approver: approver.person.clone(),
            key_id: approver.key_id.clone(),
            approval_sha256: sha256_hex(envelope.as_bytes()),
        },
    );
    let approval = GateApproval {
        run_id: id.clone(),
        step_id: step_id.clone(),
        approver: approver.person.clone(),
        key_id: approver.key_id.clone(),
        envelope,
        approved_at: String::new(),
    };
    match state
        .store()
        .add_gate_approval(&approval, &record, state.clock().now(), true)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Duplicate(message)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already-approved",
                message,
            ));
        }
        Err(other) => return Err(ApiError::internal(other)),
    }
    let approvals = state
        .store()
        .gate_approvals(&id, &step_id)
        .await
        .map_err(ApiError::internal)?
        .len();
    tracing::info!(run_id = %id, step = %step_id, approver = %approver.person, approvals, "a gate was approved");
    engine.drive_in_background(id.clone(), Arc::clone(state.metrics()));
    Ok((
        StatusCode::CREATED,
        Json(GateApproved {
            run_id: id,
            step: step_id,
            approver: approver.person,
            approvals,
            quorum: gate.quorum,
        }),
    ))
}
