//! Running one step: a fresh store, the limits, the call, the outcome and its evidence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use relo_evidence::{EvidenceEvent, EvidenceSink, Scope, StepUsage};
use relo_policy::{Grant, LimitKind, Limits, WorkspaceAccess};
use relo_secrets::StepSecrets;
use relo_trust::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::Instrument;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::exports::relo::plugin::step::StepError as WitStepError;
use crate::bindings::relo::plugin::types::StepContext as WitStepContext;
use crate::budget::{MAX_FIELD_BYTES, MAX_HOST_RESOURCES, RefusedCalls};
use crate::capture::{LogLine, Stdio, StepLog};
use crate::engine::Sandbox;
use crate::error::{LimitExceeded, StepFailure};
use crate::host::egress::{EgressCounters, EgressGate, InFlight};
use crate::limiter::StepLimiter;
use crate::plugin::Plugin;
use crate::recorder::Recorder;
use crate::redact::Redactor;
use crate::state::StepState;
use crate::tree::{Tree, TreeError, TreeLimits};

/// Where the run's workspace appears inside a step that was granted it.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";

/// How long a finished step waits for its abandoned requests to record their outcome.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(1);

/// How much of stderr a trap message carries (a panic message is printed there).
const STDERR_TAIL: usize = 2048;

/// Which run, step and attempt a step belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepContext {
    /// The run's id; also the evidence scope.
    pub run_id: String,
    /// The step's id in its workflow.
    pub step_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// Everything one step needs to run.
pub struct StepRequest {
    /// Which run, step and attempt.
    pub context: StepContext,
    /// The step's input, JSON.
    pub input: String,
    /// What the step may do.
    pub grant: Arc<Grant>,
    /// What the step may use.
    pub limits: Limits,
    /// The run's workspace directory on the host, preopened only if the grant allows it.
    pub workspace: Option<PathBuf>,
    /// Where the step's evidence goes.
    pub evidence: Arc<dyn EvidenceSink>,
    /// The step's secrets and signing keys.
    pub credentials: StepCredentials,
}

/// What a step's granted secrets and signing keys are read and made with. The default
/// has neither: every granted secret or key answers `unavailable`.
#[derive(Clone, Default)]
pub struct StepCredentials {
    /// Where granted secrets are read from: a provider holding the step's own scoped
    /// credentials, and the bindings of its logical names to paths.
    pub secrets: Option<StepSecrets>,
    /// The signers behind the logical key names of `[signing.keys]` (key files or Vault
    /// Transit keys); only names the grant allows are ever used.
    pub signers: BTreeMap<String, Arc<dyn Signer>>,
}

impl std::fmt::Debug for StepCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCredentials")
            .field("secrets", &self.secrets)
            .field("signers", &self.signers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How a step ended, what it used and what it wrote.
#[derive(Debug)]
pub struct StepOutcome {
    /// The output JSON, or why there is none.
    pub result: Result<String, StepFailure>,
    /// What the step used, whatever its outcome.
    pub usage: StepUsage,
    /// Log lines from the step and notes from the host.
    pub logs: Vec<LogLine>,
    /// What the step wrote to stdout.
    pub stdout: Vec<u8>,
    /// What the step wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Sandbox {
    /// Runs one step of `plugin` in a fresh store with the request's grant and limits.
    ///
    /// The outcome is returned only after the step's evidence is durable; if it cannot be
    /// made durable the result is replaced by [`StepFailure::Evidence`].
    pub async fn run(&self, plugin: &Plugin, request: StepRequest) -> StepOutcome {
        let span = tracing::info_span!(
            "step.run",
            digest = %plugin.digest,
            run_id = %request.context.run_id,
            step_id = %request.context.step_id,
            attempt = request.context.attempt,
            fuel = tracing::field::Empty,
            memory_peak = tracing::field::Empty,
            wall_ms = tracing::field::Empty,
            egress = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let outcome = self
            .run_step(plugin, request)
            .instrument(span.clone())
            .await;
        span.record("fuel", outcome.usage.fuel);
        span.record("memory_peak", outcome.usage.memory_peak_bytes);
        span.record("wall_ms", outcome.usage.wall_ms);
        span.record("egress", outcome.usage.egress_requests);
        span.record(
            "outcome",
            outcome
                .result
                .as_ref()
                .map_or_else(StepFailure::code, |_| "succeeded"),
        );
        outcome
    }

    async fn run_step(&self, plugin: &Plugin, request: StepRequest) -> StepOutcome {
        let StepRequest {
            context,
            input,
            grant,
            limits,
            workspace,
            evidence,
            credentials,
        } = request;
        let StepCredentials { secrets, signers } = credentials;
        let redactor = Redactor::default();
        let recorder = Recorder::new(
            evidence,
            Scope::Run(context.run_id.clone()),
            &context.step_id,
        );
        recorder.record(EvidenceEvent::StepStarted {
            digest: plugin.digest.to_hex(),
            attempt: context.attempt,
            grant: serde_json::to_value(grant.summary()).unwrap_or_default(),
            limits: serde_json::to_value(limits).unwrap_or_default(),
        });

        let log = StepLog::new(limits.log_bytes);
        let counters = Arc::new(EgressCounters::new(&limits));
        let refused = Arc::new(RefusedCalls::new(limits.host_calls));
        let in_flight = InFlight::default();
        let started = Instant::now();
        let (result, fuel, memory_peak) = match build_wasi(&grant, workspace.as_deref(), &log) {
            Err(reason) => (Err(StepFailure::Setup { reason }), 0, 0),
            Ok(wasi) => {
                let state = StepState {
                    step_id: context.step_id.clone(),
                    grant: Arc::clone(&grant),
                    recorder: recorder.clone(),
                    log: log.clone(),
                    table: bounded_table(),
                    wasi,
                    http: bounded_http(),
                    egress: EgressGate {
                        grant: Arc::clone(&grant),
                        recorder: recorder.clone(),
                        log: log.clone(),
                        guard: Arc::clone(&self.config.address_filter),
                        resolver: Arc::clone(&self.config.resolver),
                        circuits: Arc::clone(&self.circuits),
                        counters: Arc::clone(&counters),
                        in_flight: in_flight.clone(),
                        secrets: secrets.clone(),
                        redactor: redactor.clone(),
                        refused: Arc::clone(&refused),
                        plugin: Arc::from(plugin.digest.to_hex()),
                    },
                    limiter: StepLimiter::new(limits.memory_bytes, limits.table_elements),
                    secrets,
                    signers,
                    redactor: redactor.clone(),
                    refused,
                };
                let mut store = Store::new(&self.engine, state);
                let result =
                    call(&mut store, plugin, &context, &input, &limits, started, &log).await;
                let fuel_left = store.get_fuel().unwrap_or(0);
                let memory_peak = store.data().limiter.memory_peak();
                (result, limits.fuel.saturating_sub(fuel_left), memory_peak)
            }
        };
        let result = match (result, grant.workspace, workspace.as_deref()) {
            (Ok(output), Some(WorkspaceAccess::ReadWrite), Some(dir)) => {
                check_workspace(dir, &limits).await.map(|()| output)
            }
            (result, _, _) => result,
        };
        let wall = started.elapsed();
        // The store is gone: requests still in flight are being aborted; let them record.
        in_flight.idle(IN_FLIGHT_GRACE).await;

        let usage = StepUsage {
            fuel,
            memory_peak_bytes: memory_peak,
            wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            egress_requests: counters.requests.load(Ordering::Relaxed),
            egress_bytes_in: counters.bytes_in.load(Ordering::Relaxed),
            egress_bytes_out: counters.bytes_out.load(Ordering::Relaxed),
            log_bytes: log.used(),
        };
        let result = refuse_secret_output(result, &redactor, &recorder);
        if let Err(StepFailure::LimitExceeded(limit)) = &result {
            log.host_note("error", format!("step stopped: {limit}"));
            recorder.record(EvidenceEvent::LimitExceeded {
                limit: limit.kind.code().to_owned(),
                allowed: limit.allowed,
                requested: limit.requested,
            });
        }
        recorder.record(EvidenceEvent::StepFinished {
            outcome: result
                .as_ref()
                .map_or_else(|f| f.code().to_owned(), |_| "succeeded".to_owned()),
            usage,
            output_sha256: result
                .as_ref()
                .ok()
                .map(|output| hex::encode(Sha256::digest(output))),
        });
        let result = match recorder.durable().await {
            Ok(()) => result,
            Err(err) => Err(StepFailure::Evidence {
                reason: err.to_string(),
            }),
        };
        let (logs, stdout, stderr) = log.take();
        let (result, logs, stdout, stderr) = if redactor.is_empty() {
            (result, logs, stdout, stderr)
        } else {
            (
                result.map_err(|failure| failure.redacted(&|text| redactor.redact(text))),
                logs.into_iter()
                    .map(|line| LogLine {
                        message: redactor.redact(&line.message),
                        ..line
                    })
                    .collect(),
                redactor.redact_bytes(&stdout),
                redactor.redact_bytes(&stderr),
            )
        };
        StepOutcome {
            result,
            usage,
            logs,
            stdout,
            stderr,
        }
    }
}

/// Measures the workspace a read-write step left, through handles and without reading a
/// byte: past its byte or entry limit the step fails with the limit `workspace`; a link
/// or special file fails it with `workspace-entry-refused`.
async fn check_workspace(dir: &Path, limits: &Limits) -> Result<(), StepFailure> {
    let dir = dir.to_owned();
    let bounds = TreeLimits {
        bytes: limits.workspace_bytes,
        entries: limits.workspace_files,
    };
    match tokio::task::spawn_blocking(move || Tree::scan(&dir, bounds)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(TreeError::TooLarge(limit))) => Err(StepFailure::LimitExceeded(limit)),
        Ok(Err(error)) => Err(StepFailure::WorkspaceRefused {
            reason: error.to_string(),
        }),
        Err(join) => Err(StepFailure::WorkspaceRefused {
            reason: format!("measuring the workspace failed: {join}"),
        }),
    }
}

/// The step's resource table, capped at [`MAX_HOST_RESOURCES`] live entries.
fn bounded_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HOST_RESOURCES);
    table
}

/// The step's wasi:http context, each header map capped at [`MAX_FIELD_BYTES`].
fn bounded_http() -> WasiHttpCtx {
    let mut http = WasiHttpCtx::new();
    http.set_field_size_limit(MAX_FIELD_BYTES);
    http
}

/// The WASI context: captured stdio, granted environment, the workspace if granted,
/// no sockets.
fn build_wasi(grant: &Grant, workspace: Option<&Path>, log: &StepLog) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(log.stream(Stdio::Stdout))
        .stderr(log.stream(Stdio::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let env: Vec<(&String, &String)> = grant.env.iter().collect();
    builder.envs(&env);
    match (grant.workspace, workspace) {
        (None, _) => {}
        (Some(_), None) => {
            return Err(
                "the grant includes the workspace, but the run has no workspace directory".into(),
            );
        }
        (Some(access), Some(dir)) => {
            let perms = match access {
                WorkspaceAccess::ReadOnly => FsPerms::ReadOnly,
                WorkspaceAccess::ReadWrite => FsPerms::ReadWrite,
            };
            builder
                .preopened_dir(dir, WORKSPACE_GUEST_PATH, perms)
                .map_err(|err| format!("workspace {}: {err}", dir.display()))?;
        }
    }
    Ok(builder.build())
}

/// Instantiates and calls the step under its limits; maps every ending to an outcome.
async fn call(
    store: &mut Store<StepState>,
    plugin: &Plugin,
    context: &StepContext,
    input: &str,
    limits: &Limits,
    started: Instant,
    log: &StepLog,
) -> Result<String, StepFailure> {
    store.limiter(|state| &mut state.limiter);
    store
        .set_fuel(limits.fuel)
        .map_err(|err| StepFailure::Setup {
            reason: err.to_string(),
        })?;
    let deadline = started + limits.timeout;
    let timeout = *limits;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |store| {
        if let Some(limit) = stopping_limit(store.data()) {
            return Err(wasmtime::Error::new(limit));
        }
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(timeout_exceeded(&timeout, started)))
        } else {
            // Yield at every tick, so a busy step never starves the executor.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let wit_context = WitStepContext {
        run_id: context.run_id.clone(),
        step_id: context.step_id.clone(),
        attempt: context.attempt,
    };
    let run = async {
        let instance = plugin
            .pre
            .instantiate_async(&mut *store)
            .instrument(tracing::debug_span!("step.instantiate"))
            .await
            .map_err(|err| classify(&err, limits, log, true))?;
        instance
            .relo_plugin_step()
            .call_run(&mut *store, &wit_context, input)
            .await
            .map_err(|err| classify(&err, limits, log, false))
    };
    let returned = match tokio::time::timeout_at(deadline.into(), run).await {
        Err(_elapsed) => {
            return Err(StepFailure::LimitExceeded(timeout_exceeded(
                limits, started,
            )));
        }
        Ok(returned) => returned?,
    };
    // A budget exhausted while the step was waiting in the host ends it too.
    if let Some(limit) = stopping_limit(store.data()) {
        return Err(StepFailure::LimitExceeded(limit));
    }
    let output = returned.map_err(|err| {
        let (kind, message) = match err {
            WitStepError::InvalidInput(message) => ("invalid-input", message),
            WitStepError::Failed(message) => ("failed", message),
            WitStepError::Denied(message) => ("denied", message),
        };
        StepFailure::StepError {
            kind: kind.to_owned(),
            message,
        }
    })?;
    if output.len() as u64 > limits.output_bytes {
        return Err(StepFailure::LimitExceeded(LimitExceeded {
            kind: LimitKind::Output,
            allowed: limits.output_bytes,
            requested: output.len() as u64,
        }));
    }
    let value: serde_json::Value =
        serde_json::from_str(&output).map_err(|err| StepFailure::InvalidOutput {
            reason: err.to_string(),
        })?;
    // The output in its one serialised form: what the store and the API keep, what the
    // next step gets, and what `step.finished`'s `output_sha256` is the hash of.
    Ok(value.to_string())
}

/// Refuses an output that contains a secret value the step touched, recording that the
/// leak was blocked (by name, never the value). The output is checked as what it means,
/// not as the text the step wrote: its serialised form (the one `call` returns, which the
/// store, the API and the next step's input hold) and every string and key in it,
/// decoded, so a `\u`-escaped character hides nothing. A step that touched no secret
/// has nothing to check.
fn refuse_secret_output(
    result: Result<String, StepFailure>,
    redactor: &Redactor,
    recorder: &Recorder,
) -> Result<String, StepFailure> {
    let output = result?;
    if redactor.is_empty() {
        return Ok(output);
    }
    let found = redactor.find_in(&output).or_else(|| {
        // `call` accepted only valid JSON.
        let value: serde_json::Value = serde_json::from_str(&output).ok()?;
        find_in_strings(redactor, &value)
    });
    match found {
        None => Ok(output),
        Some(name) => {
            recorder.record(EvidenceEvent::SecretLeakBlocked {
                name: name.clone(),
                channel: "output".to_owned(),
            });
            Err(StepFailure::SecretInOutput { name })
        }
    }
}

/// A budget the step exhausted through the host (egress, refused host calls): the step
/// must stop at its next chance.
fn stopping_limit(state: &StepState) -> Option<LimitExceeded> {
    state
        .egress
        .counters
        .exceeded()
        .or_else(|| state.refused.exceeded())
}

/// The name of a secret whose value occurs in a string (or an object key) of `value`.
fn find_in_strings(redactor: &Redactor, value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => redactor.find_in(text),
        Value::Array(items) => items
            .iter()
            .find_map(|item| find_in_strings(redactor, item)),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            redactor
                .find_in(key)
                .or_else(|| find_in_strings(redactor, item))
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn timeout_exceeded(limits: &Limits, started: Instant) -> LimitExceeded {
    LimitExceeded {
        kind: LimitKind::Timeout,
        allowed: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        requested: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Names why the guest stopped: a limit, a trap, or a setup failure at instantiation.
fn classify(
    err: &wasmtime::Error,
    limits: &Limits,
    log: &StepLog,
    instantiating: bool,
) -> StepFailure {
    let limit = err.downcast_ref::<LimitExceeded>().copied().or_else(|| {
        err.chain()
            .find_map(|cause| cause.downcast_ref::<LimitExceeded>().copied())
    });
    if let Some(limit) = limit {
        return StepFailure::LimitExceeded(limit);
    }
    let table_full = err.chain().any(|cause| {
        cause
            .downcast_ref::<ResourceTableError>()
            .is_some_and(|e| matches!(e, ResourceTableError::Full))
    });
    if table_full {
        return StepFailure::LimitExceeded(LimitExceeded {
            kind: LimitKind::HostResources,
            allowed: MAX_HOST_RESOURCES as u64,
            requested: MAX_HOST_RESOURCES as u64 + 1,
        });
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => StepFailure::LimitExceeded(LimitExceeded {
            kind: LimitKind::Fuel,
            allowed: limits.fuel,
            requested: limits.fuel.saturating_add(1),
        }),
        Some(trap) => {
            let stderr = log.stderr_tail(STDERR_TAIL);
            let message = if stderr.is_empty() {
                trap.to_string()
            } else {
                format!("{trap}; stderr: {stderr}")
            };
            StepFailure::Trap { message }
        }
        None if instantiating => StepFailure::Setup {
            reason: format!("instantiation failed: {err}"),
        },
        None => StepFailure::Trap {
            message: format!("{err}"),
        },
    }
}
