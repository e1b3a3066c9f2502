//! Running a workflow: steps claimed from the store with a lease, run as their needs
//! allow (several at once, up to a bound), inputs from `${{ }}` expressions, `if:`
//! conditions, retries with backoff, per-step timeouts, failure propagation (the
//! dependents of a failed step are skipped and the run fails naming the root cause),
//! approval gates, concurrency groups, per-run workspaces, and continuing a run that
//! waited or whose process died.
//!
//! A run is created with [`Runner::start`] and carried on with [`Runner::drive`], which
//! rebuilds everything it needs from the store: finished steps are never run again, and
//! their outputs feed the steps still to run. A gate short of its quorum parks as
//! `waiting`; when nothing else can run, the run is persisted as `waiting-approval` and
//! `drive` returns [`RunOutcome::Waiting`]. Driving it again after approvals continues.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_manifest::{Approval, Step, Workflow};
use relo_policy::WorkspaceAccess;
use relo_sandbox::{LogSource, Sandbox, StepContext, StepOutcome, StepRequest, TreeLimits};
use relo_store::{
    DriverClaim, EvidenceWriter, Finished, NewRun, Placed, StepEnd, Store, StoreError, StoredRun,
    check_state,
};
use relo_trust::{TrustPolicy, sha256_hex};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use crate::credentials::CredentialSource;
use crate::expr::{self, Context};
use crate::request::GateApprovalPayload;
use crate::workspace::{Archived, SEED_LIMITS, WorkspaceError, Workspaces, archive};
use crate::{CatalogError, PeopleError, PluginCatalog};

/// How often a queued run asks whether its concurrency group is free.
const QUEUE_POLL: Duration = Duration::from_millis(200);

/// Why a run could not be started or carried on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// There is no such run.
    #[error("there is no run {0}")]
    NoRun(String),
    /// Another instance holds a step this runner was about to run.
    #[error("step `{0}` is held by another instance; it can be taken over when its lease expires")]
    StepHeld(String),
    /// A step's task panicked or was cancelled.
    #[error("a step's task ended abnormally: {0}")]
    Task(String),
    /// The evidence could not be made durable.
    #[error("the run's evidence could not be stored: {0}")]
    Evidence(String),
    /// The run's workspace could not be made, saved or restored.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The concurrency group's name could not be worked out from the parameters.
    #[error("the concurrency group: {0}")]
    Group(String),
    /// Another runner drives the run (its lease on the run is live).
    #[error("run {run_id} is driven by {by} (its lease runs until {until})")]
    Driven {
        /// The run.
        run_id: String,
        /// The runner driving it.
        by: String,
        /// When its lease runs out unless renewed.
        until: String,
    },
    /// The store names a workspace snapshot it does not hold.
    #[error("the run's workspace snapshot {0} is missing from the store")]
    SnapshotMissing(String),
    /// The people whose approvals count could not be read.
    #[error(transparent)]
    People(#[from] PeopleError),
    /// This runner could no longer renew its lease on a step: the step was stopped,
    /// `step.lease-lost` recorded, and another instance may take the step over.
    #[error(
        "lease-lost: the lease on step `{step}` could not be renewed ({reason}); the step was stopped"
    )]
    LeaseLost {
        /// The step.
        step: String,
        /// Why the renewal failed.
        reason: String,
    },
}

/// How a run ended, or where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step succeeded or was skipped by its condition.
    Succeeded,
    /// A step failed; its dependents were skipped.
    Failed {
        /// `step: why` of the first failure.
        root_cause: String,
    },
    /// Approval gates are short of their quorum; the run continues when driven again.
    Waiting {
        /// The gates waiting.
        gates: Vec<String>,
    },
    /// The run was cancelled.
    Cancelled,
}

/// What a run is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The run waits for its concurrency group, behind the run named.
    Queued {
        /// The run ahead.
        behind: String,
    },
    /// The run continues after waiting or after its process ended.
    Resumed {
        /// Steps already finished, not run again.
        finished: Vec<String>,
    },
    /// A step's attempt began.
    StepStarted {
        /// The step.
        step: String,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// A step ended: `succeeded`, `failed` or `skipped`.
    StepEnded {
        /// The step.
        step: String,
        /// How.
        state: &'static str,
        /// Why it failed or was skipped.
        detail: Option<String>,
    },
    /// A gate waits for approvals.
    GateWaiting {
        /// The gate.
        step: String,
        /// Valid approvals so far.
        approvals: u32,
        /// Approvals needed.
        quorum: u32,
    },
}

/// A run to start or to carry on.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec<'a> {
    /// The run id; also its evidence scope.
    pub run_id: &'a str,
    /// The workflow.
    pub workflow: &'a Workflow,
    /// The workflow's text as requested (its sha256 is in the signed request).
    pub workflow_text: &'a str,
    /// The resolved parameters.
    pub params: &'a BTreeMap<String, Value>,
    /// The requester, as proven by the signed request.
    pub requested_by: &'a str,
    /// The signed request, JSON.
    pub request: &'a str,
    /// The folder the run's workspace starts as (the workflow's `workspace:`, resolved).
    pub workspace: Option<&'a Path>,
}

/// What runs steps: the store, the catalog, the sandbox, the credentials and the
/// evidence writer, as one instance (`owner`) holding leases of `lease`.
pub struct Runner {
    /// The store runs and claims live in.
    pub store: Store,
    /// Admits plugins.
    pub catalog: Arc<PluginCatalog>,
    /// Runs steps.
    pub sandbox: Arc<Sandbox>,
    /// Issues each step its credentials.
    pub credentials: CredentialSource,
    /// Where evidence goes.
    pub evidence: Arc<EvidenceWriter>,
    /// Where runs' workspaces live.
    pub workspaces: Workspaces,
    /// Where progress is reported, if anywhere.
    pub progress: Option<UnboundedSender<Progress>>,
    /// This instance's name in leases.
    pub owner: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Steps run at once at most.
    pub parallel: usize,
    /// At most this many runs of one requester may not have ended; `None`: no limit.
    pub max_active_runs: Option<u32>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.owner)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

/// What a finished step hands on.
enum Ended {
    Succeeded(Value),
    Failed(String),
    Skipped(String),
    /// A gate short of its quorum.
    Waiting,
}

impl Runner {
    /// Creates the run: every step `pending`, the run `pending` (or `queued` behind its
    /// concurrency group, or refused with [`StoreError::GroupBusy`] when the workflow
    /// says `on_conflict: refuse`), the workspace seeded and saved as the first
    /// snapshot, and `run.started` in the evidence.
    pub async fn start(&self, spec: &RunSpec<'_>) -> Result<Placed, RunError> {
        let ids: Vec<&str> = spec.workflow.steps.iter().map(|s| s.id.as_str()).collect();
        let group = match &spec.workflow.concurrency {
            None => None,
            Some(concurrency) => {
                let context = Context {
                    params: spec.params,
                    outputs: &BTreeMap::new(),
                };
                let name = match expr::render(&concurrency.group, context) {
                    Ok(Value::String(name)) => name,
                    Ok(other) => other.to_string(),
                    Err(error) => return Err(RunError::Group(error.to_string())),
                };
                let wait = matches!(concurrency.on_conflict, relo_manifest::OnConflict::Wait);
                Some((name, wait))
            }
        };
        // The workspace is archived (and refused if it holds what cannot be archived)
        // before anything is stored.
        if let Some(folder) = spec.workspace {
            archive(folder, SEED_LIMITS, std::io::sink())?;
        }
        let placed = self
            .store
            .create_run(
                &NewRun {
                    id: spec.run_id,
                    workflow: spec.workflow.name.as_str(),
                    requested_by: spec.requested_by,
                    request: spec.request,
                    steps: &ids,
                    workflow_text: spec.workflow_text,
                    concurrency: group.as_ref().map(|(g, wait)| (g.as_str(), *wait)),
                    driver: Some((&self.owner, self.lease)),
                    active_limit: self.max_active_runs,
                },
                SystemTime::now(),
            )
            .await?;
        let scope = Scope::Run(spec.run_id.to_owned());
        if let Some(folder) = spec.workspace {
            let saved = self
                .workspaces
                .save(&self.store, spec.run_id, None, folder, SEED_LIMITS)
                .await?;
            self.restore_workspace(spec.run_id, &saved.digest).await?;
            self.record(&scope, None, snapshot_event(&saved));
        }
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            scope,
            None,
            EvidenceEvent::RunStarted {
                workflow: spec.workflow.name.as_str().to_owned(),
                requested_by: spec.requested_by.to_owned(),
                params: Value::Object(spec.params.clone().into_iter().collect()),
            },
        ));
        self.durable(ticket).await?;
        Ok(placed)
    }

    /// Starts the run and drives it (see [`Runner::start`] and [`Runner::drive`]).
    pub async fn run(self: &Arc<Self>, spec: &RunSpec<'_>) -> Result<RunOutcome, RunError> {
        self.start(spec).await?;
        self.drive(spec).await
    }

    /// Carries the run on until it ends or waits for approvals: waits for its
    /// concurrency group's turn, restores its workspace from the store if this machine
    /// does not hold its newest state, rebuilds finished steps' results from the store
    /// (they are not run again), and runs the rest.
    ///
    /// The runner drives the run under a lease on it (renewed while it drives, released
    /// when it stops); while another runner's lease is live, [`RunError::Driven`].
    pub async fn drive(self: &Arc<Self>, spec: &RunSpec<'_>) -> Result<RunOutcome, RunError> {
        let run_id = spec.run_id;
        match self
            .store
            .claim_run_driver(run_id, &self.owner, self.lease, SystemTime::now())
            .await?
        {
            DriverClaim::Claimed | DriverClaim::Ended => {}
            DriverClaim::Held { by, until } => {
                return Err(RunError::Driven {
                    run_id: run_id.to_owned(),
                    by,
                    until,
                });
            }
            DriverClaim::NoRun => return Err(RunError::NoRun(run_id.to_owned())),
        }
        let renewal = LeaseRenewal::start(
            self.store.clone(),
            run_id.to_owned(),
            None,
            self.owner.clone(),
            self.lease,
        );
        let outcome = self.drive_held(spec).await;
        drop(renewal);
        if let Err(error) = self.store.release_run_driver(run_id, &self.owner).await {
            // The lease runs out by itself; nothing is lost.
            tracing::warn!(run_id, "could not release the run: {error}");
        }
        outcome
    }

    /// [`Runner::drive`], once the run is held.
    async fn drive_held(self: &Arc<Self>, spec: &RunSpec<'_>) -> Result<RunOutcome, RunError> {
        let run_id = spec.run_id;
        let workflow = spec.workflow;
        let scope = Scope::Run(run_id.to_owned());
        let mut reported_queue = false;
        // Only a run with a concurrency group is ever queued: the others skip the write
        // transaction of asking for a turn.
        while spec.workflow.concurrency.is_some()
            && let Some(behind) = self
                .store
                .take_group_turn(run_id, SystemTime::now())
                .await?
        {
            if !reported_queue {
                self.report(Progress::Queued { behind });
                reported_queue = true;
            }
            if self.store.run_state(run_id).await?.as_deref() == Some("cancelled") {
                return Ok(RunOutcome::Cancelled);
            }
            tokio::time::sleep(QUEUE_POLL).await;
        }
        let row = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| RunError::NoRun(run_id.to_owned()))?;
        let rows = self.store.run_steps(run_id).await?;
        let mut ended: BTreeMap<String, Ended> = BTreeMap::new();
        for row in &rows {
            let reason = || row.error.clone().unwrap_or_default();
            let end = match row.state.as_str() {
                "succeeded" => Ended::Succeeded(
                    row.output
                        .as_deref()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or(Value::Null),
                ),
                "failed" => Ended::Failed(reason()),
                "skipped" => Ended::Skipped(reason()),
                _ => continue,
            };
            ended.insert(row.step_id.clone(), end);
        }
        let mut root_cause =
            workflow
                .steps
                .iter()
                .find_map(|step| match ended.get(step.id.as_str()) {
                    Some(Ended::Failed(reason)) => Some(format!("{}: {reason}", step.id)),
                    _ => None,
                });
        match row.state.as_str() {
            "succeeded" => return Ok(RunOutcome::Succeeded),
            "failed" => {
                return Ok(RunOutcome::Failed {
                    root_cause: root_cause.unwrap_or_default(),
                });
            }
            "cancelled" => return Ok(RunOutcome::Cancelled),
            "pending" => {}
            _ => {
                if let Some(reason) = self.tampered_state(&row, &rows).await? {
                    return self.fail_tampered(run_id, reason).await;
                }
                let finished: Vec<String> = ended.keys().cloned().collect();
                self.report(Progress::Resumed {
                    finished: finished.clone(),
                });
                self.record(
                    &scope,
                    None,
                    EvidenceEvent::RunResumed {
                        by: self.owner.clone(),
                        finished_steps: finished,
                    },
                );
            }
        }
        self.store
            .set_run_state(run_id, "running", SystemTime::now())
            .await?;
        if let Some(digest) = &row.workspace_digest {
            self.ensure_workspace(run_id, digest, &scope).await?;
        }
        let workflow_sha256 = sha256_hex(spec.workflow_text.as_bytes());

        let mut waiting: BTreeSet<String> = BTreeSet::new();
        // Ends not stored yet: they go with the next wave's claims, in one transaction.
        let mut unstored: Vec<Unstored> = Vec::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.parallel.max(1)));
        loop {
            let outputs: BTreeMap<String, Value> = ended
                .iter()
                .filter_map(|(id, end)| match end {
                    Ended::Succeeded(output) => Some((id.clone(), output.clone())),
                    _ => None,
                })
                .collect();
            let mut ready = Vec::new();
            for step in &workflow.steps {
                let id = step.id.as_str();
                if ended.contains_key(id) || waiting.contains(id) {
                    continue;
                }
                if !step.needs.iter().all(|n| ended.contains_key(n.as_str())) {
                    continue;
                }
                if let Some(need) = step
                    .needs
                    .iter()
                    .find(|n| !matches!(ended.get(n.as_str()), Some(Ended::Succeeded(_))))
                {
                    let reason = format!("it needs `{need}`, which did not succeed");
                    self.skip(&scope, id, &reason, &mut unstored);
                    ended.insert(id.to_owned(), Ended::Skipped(reason));
                    continue;
                }
                let context = Context {
                    params: spec.params,
                    outputs: &outputs,
                };
                match step.condition.as_ref().map(|c| expr::holds(c, context)) {
                    Some(Ok(false)) => {
                        let reason = format!(
                            "its condition `{}` is false",
                            step.condition.as_ref().map_or("", |c| c.as_str())
                        );
                        self.skip(&scope, id, &reason, &mut unstored);
                        ended.insert(id.to_owned(), Ended::Skipped(reason));
                        continue;
                    }
                    Some(Err(error)) => {
                        ready.push((step.clone(), Err(format!("its condition: {error}"))));
                        continue;
                    }
                    _ => {}
                }
                let input = expr::input(step.with.as_ref().unwrap_or(&Value::Null), context)
                    .map(|value| {
                        if value.is_null() {
                            Value::Object(Default::default())
                        } else {
                            value
                        }
                    })
                    .map_err(|e| format!("its input: {e}"));
                ready.push((step.clone(), input));
            }
            let finished: Vec<Finished<'_>> = unstored.iter().map(Unstored::finished).collect();
            // The people a gate of this wave is decided against, read before the wave
            // claims anything. When they cannot be read, the last wave's ends are still
            // stored (steps that ran are never run again for it) and nothing is claimed.
            let people = if ready.iter().any(|(step, _)| step.approval.is_some()) {
                match self.catalog.people().policy().await {
                    Ok(people) => Some(people),
                    Err(error) => {
                        self.store
                            .advance(
                                run_id,
                                &self.owner,
                                &finished,
                                &[],
                                self.lease,
                                SystemTime::now(),
                            )
                            .await?;
                        return Err(error.into());
                    }
                }
            } else {
                None
            };
            // One transaction stores the last wave's ends and claims this wave.
            let ids: Vec<&str> = ready.iter().map(|(step, _)| step.id.as_str()).collect();
            let advanced = self
                .store
                .advance(
                    run_id,
                    &self.owner,
                    &finished,
                    &ids,
                    self.lease,
                    SystemTime::now(),
                )
                .await?;
            drop(finished);
            unstored.clear();
            if advanced.cancelled {
                return Ok(RunOutcome::Cancelled);
            }
            if ready.is_empty() {
                break;
            }
            let claimed = advanced.claimed;
            let mut running = JoinSet::new();
            for (step, input) in ready {
                if !claimed.iter().any(|id| id == step.id.as_str()) {
                    // Another instance holds it: not this runner's to run or to finish.
                    return Err(RunError::StepHeld(step.id.as_str().to_owned()));
                }
                let runner = Arc::clone(self);
                let run_id = run_id.to_owned();
                let requester = spec.requested_by.to_owned();
                let workflow_sha256 = workflow_sha256.clone();
                let permit = Arc::clone(&semaphore);
                let people = people.clone();
                running.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    let id = step.id.as_str().to_owned();
                    let end = match (&step.approval, people, input) {
                        (Some(gate), Some(people), _) => {
                            let run = (run_id.as_str(), workflow_sha256.as_str());
                            runner.gate(&people, run, &step, gate, &requester).await
                        }
                        (Some(_), None, _) => Err(RunError::Task(format!(
                            "gate `{id}` was reached before the people were read"
                        ))),
                        (None, _, Err(reason)) => Ok(Ended::Failed(reason)),
                        (None, _, Ok(input)) => runner.run_step(&run_id, &step, input).await,
                    };
                    (id, end)
                });
            }
            // The wave's results are stored together: one transaction for the wave.
            let mut wave: Vec<(String, Ended)> = Vec::new();
            while let Some(joined) = running.join_next().await {
                let (id, end) = joined.map_err(|e| RunError::Task(e.to_string()))?;
                wave.push((id, end?));
            }
            for (id, end) in &wave {
                let (state, output, error) = match end {
                    Ended::Succeeded(output) => {
                        (StepEnd::Succeeded, Some(output.to_string()), None)
                    }
                    Ended::Failed(reason) => {
                        root_cause.get_or_insert_with(|| format!("{id}: {reason}"));
                        (StepEnd::Failed, None, Some(reason.clone()))
                    }
                    Ended::Skipped(reason) => (StepEnd::Skipped, None, Some(reason.clone())),
                    Ended::Waiting => {
                        self.store
                            .wait_step(run_id, id, &self.owner, SystemTime::now())
                            .await?;
                        waiting.insert(id.clone());
                        continue;
                    }
                };
                self.report(Progress::StepEnded {
                    step: id.clone(),
                    state: state_name(state),
                    detail: error.clone(),
                });
                unstored.push(Unstored {
                    step_id: id.clone(),
                    end: state,
                    output,
                    error,
                });
            }
            ended.extend(
                wave.into_iter()
                    .filter(|(_, end)| !matches!(end, Ended::Waiting)),
            );
        }

        if !waiting.is_empty() && root_cause.is_none() {
            let gates: Vec<String> = waiting.into_iter().collect();
            let ticket = self.evidence.enqueue(EvidenceRecord::new(
                scope,
                None,
                EvidenceEvent::RunWaiting {
                    gates: gates.clone(),
                },
            ));
            self.durable(ticket).await?;
            self.evidence
                .checkpoint()
                .await
                .map_err(|e| RunError::Evidence(e.to_string()))?;
            self.store
                .set_run_state(run_id, "waiting-approval", SystemTime::now())
                .await?;
            return Ok(RunOutcome::Waiting { gates });
        }
        let outcome = match root_cause {
            None => RunOutcome::Succeeded,
            Some(root_cause) => RunOutcome::Failed { root_cause },
        };
        self.finish(run_id, &outcome).await?;
        Ok(outcome)
    }

    /// Why a run being taken up cannot be trusted, if it cannot: the log must verify
    /// (every entry covered by a batch seal or a checkpoint, [`Store::trusted_entries`]),
    /// and the run's finished steps (state and output sha256), passed gates and workspace
    /// digest must be what its evidence recorded ([`check_state`]). A database writer who
    /// sets a gate's row to `succeeded`, or replaces a step's output together with a
    /// forged `step.finished` entry, is caught here, before anything runs on it.
    async fn tampered_state(
        &self,
        row: &relo_store::RunRow,
        steps: &[relo_store::StepRow],
    ) -> Result<Option<String>, RunError> {
        let entries = match self.store.trusted_entries().await {
            Ok(entries) => entries,
            Err(StoreError::Tampered(found)) => return Ok(Some(found.to_string())),
            Err(other) => return Err(other.into()),
        };
        let recorded: Vec<_> = entries
            .iter()
            .filter(|e| e.scope == row.id)
            .map(relo_store::StoredEntry::to_evidence_entry)
            .collect();
        let stored = StoredRun {
            run: row.clone(),
            steps: steps.to_vec(),
        };
        Ok(check_state(&recorded, &[stored])
            .err()
            .map(|found| found.message))
    }

    /// Fails a run whose state cannot be trusted (`state-tampered`), recorded in the
    /// control chain and as the run's end, without running anything more.
    async fn fail_tampered(&self, run_id: &str, reason: String) -> Result<RunOutcome, RunError> {
        self.record(
            &Scope::Control,
            None,
            EvidenceEvent::StateTampered {
                run_id: run_id.to_owned(),
                reason: reason.clone(),
            },
        );
        let root_cause = format!("state-tampered: {reason}");
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            Scope::Run(run_id.to_owned()),
            None,
            EvidenceEvent::RunFinished {
                outcome: "failed".to_owned(),
                root_cause: Some(root_cause.clone()),
            },
        ));
        self.durable(ticket).await?;
        self.store
            .set_run_state(run_id, "failed", SystemTime::now())
            .await?;
        Ok(RunOutcome::Failed { root_cause })
    }

    /// Records the run's end, cuts a checkpoint, stores the final state and removes the
    /// workspace (its snapshots stay in the store).
    async fn finish(&self, run_id: &str, outcome: &RunOutcome) -> Result<(), RunError> {
        let (state, cause) = match outcome {
            RunOutcome::Failed { root_cause } => ("failed", Some(root_cause.clone())),
            _ => ("succeeded", None),
        };
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            Scope::Run(run_id.to_owned()),
            None,
            EvidenceEvent::RunFinished {
                outcome: state.to_owned(),
                root_cause: cause,
            },
        ));
        self.durable(ticket).await?;
        self.evidence
            .checkpoint()
            .await
            .map_err(|e| RunError::Evidence(e.to_string()))?;
        self.store
            .set_run_state(run_id, state, SystemTime::now())
            .await?;
        self.workspaces.remove(run_id)?;
        Ok(())
    }

    /// Makes the local workspace the snapshot `digest`, restoring it from the store
    /// unless it already is.
    async fn ensure_workspace(
        &self,
        run_id: &str,
        digest: &str,
        scope: &Scope,
    ) -> Result<(), RunError> {
        let dir = self.workspaces.dir(run_id);
        // A local copy that cannot be archived is replaced from the store like one that
        // differs.
        let local = dir
            .is_dir()
            .then(|| self.workspaces.snapshot(run_id, SEED_LIMITS));
        if local.is_some_and(|snapshot| snapshot.is_ok_and(|s| s.digest == digest)) {
            return Ok(());
        }
        self.restore_workspace(run_id, digest).await?;
        self.record(
            scope,
            None,
            EvidenceEvent::WorkspaceRestored {
                digest: digest.to_owned(),
            },
        );
        Ok(())
    }

    /// Replaces the run's workspace by its stored snapshot `digest`, streamed from the
    /// store and verified against the digest (the workspace is removed if it fails).
    async fn restore_workspace(&self, run_id: &str, digest: &str) -> Result<(), RunError> {
        let snapshot = self
            .store
            .open_snapshot(run_id, digest)
            .await?
            .ok_or_else(|| RunError::SnapshotMissing(digest.to_owned()))?;
        Ok(self.workspaces.restore_snapshot(run_id, snapshot).await?)
    }

    /// Decides a gate: it passes with a quorum of valid approvals by distinct people;
    /// each stored approval is verified again, and one that does not verify (an edited
    /// row, the requester, a missing role) is refused and recorded, never counted.
    async fn gate(
        &self,
        people: &TrustPolicy,
        (run_id, workflow_sha256): (&str, &str),
        step: &Step,
        gate: &Approval,
        requester: &str,
    ) -> Result<Ended, RunError> {
        let id = step.id.as_str();
        let scope = Scope::Run(run_id.to_owned());
        let mut approved_by: Vec<String> = Vec::new();
        for stored in self.store.gate_approvals(run_id, id).await? {
            match GateApprovalPayload::check(
                &stored.envelope,
                people,
                (run_id, workflow_sha256),
                id,
                gate,
                requester,
            ) {
                Ok(approver) if approver.person == stored.approver => {
                    if !approved_by.contains(&approver.person) {
                        approved_by.push(approver.person);
                    }
                }
                Ok(approver) => self.record(
                    &scope,
                    Some(id),
                    EvidenceEvent::GateRefused {
                        approver: stored.approver.clone(),
                        code: "identity-mismatch".into(),
                        reason: format!(
                            "the row names {} but the approval is signed by {}",
                            stored.approver, approver.person
                        ),
                    },
                ),
                Err(refusal) => self.record(
                    &scope,
                    Some(id),
                    EvidenceEvent::GateRefused {
                        approver: stored.approver.clone(),
                        code: refusal.code.into(),
                        reason: refusal.reason,
                    },
                ),
            }
        }
        let count = u32::try_from(approved_by.len()).unwrap_or(u32::MAX);
        if count < gate.quorum
            && let Some(timeout) = &step.timeout
            && let Some(since) = self
                .store
                .run_steps(run_id)
                .await?
                .into_iter()
                .find(|row| row.step_id == id)
                .and_then(|row| row.started_at)
                .and_then(|at| relo_trust::parse_rfc3339(&at))
            && SystemTime::now() > since + timeout.duration()
        {
            return Ok(Ended::Failed(format!(
                "{count} of {} approvals within its timeout of {}",
                gate.quorum,
                humanize(timeout.duration())
            )));
        }
        if count >= gate.quorum {
            self.record(
                &scope,
                Some(id),
                EvidenceEvent::GatePassed {
                    approved_by: approved_by.clone(),
                },
            );
            return Ok(Ended::Succeeded(json!({ "approved_by": approved_by })));
        }
        self.record(
            &scope,
            Some(id),
            EvidenceEvent::GateWaiting {
                roles: gate.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                quorum: gate.quorum,
                approvals: count,
            },
        );
        self.report(Progress::GateWaiting {
            step: id.to_owned(),
            approvals: count,
            quorum: gate.quorum,
        });
        Ok(Ended::Waiting)
    }

    /// Runs one claimed step, with its retries; the claim stays with this runner.
    async fn run_step(&self, run_id: &str, step: &Step, input: Value) -> Result<Ended, RunError> {
        let id = step.id.as_str();
        let scope = Scope::Run(run_id.to_owned());
        let Some(uses) = &step.uses else {
            return Ok(Ended::Failed("the step names no plugin".to_owned()));
        };
        let attempts = 1 + step.retries.unwrap_or(0);
        let mut last = String::new();
        // While the step runs (and waits between retries), its lease is renewed every
        // third of the lease, so no other instance takes over a step that is alive.
        let mut renewal = LeaseRenewal::start(
            self.store.clone(),
            run_id.to_owned(),
            Some(id.to_owned()),
            self.owner.clone(),
            self.lease,
        );
        for attempt in 1..=attempts {
            if attempt > 1 {
                let backoff = Duration::from_millis(100 * (1 << (attempt - 2).min(6)));
                tokio::time::sleep(backoff).await;
            }
            let admitted = match self.admit(uses, &scope).await {
                Ok(admitted) => admitted,
                // A refusal does not get better by retrying.
                Err(error) => {
                    return Ok(Ended::Failed(format!(
                        "refused ({}): {error}",
                        error.code()
                    )));
                }
            };
            let mut limits = admitted.limits;
            if let Some(timeout) = &step.timeout {
                limits.timeout = limits.timeout.min(timeout.duration());
            }
            let issued = match self
                .credentials
                .issue(
                    &admitted.verified.name,
                    &admitted.grant,
                    limits.timeout,
                    &format!("{run_id}-{id}"),
                )
                .await
            {
                Ok(issued) => issued,
                Err(error) => {
                    last = format!("credentials: {error}");
                    continue;
                }
            };
            let access = admitted.grant.workspace;
            let workspace: Option<PathBuf> = access
                .map(|_| self.workspaces.dir(run_id))
                .filter(|dir| dir.is_dir());
            self.report(Progress::StepStarted {
                step: id.to_owned(),
                attempt,
            });
            let running = self.sandbox.run(
                &admitted.plugin,
                StepRequest {
                    context: StepContext {
                        run_id: run_id.to_owned(),
                        step_id: id.to_owned(),
                        attempt,
                    },
                    input: input.to_string(),
                    grant: Arc::clone(&admitted.grant),
                    limits,
                    workspace,
                    evidence: self.evidence.clone() as Arc<dyn EvidenceSink>,
                    credentials: issued.credentials.clone(),
                },
            );
            // A step whose lease this runner can no longer renew is stopped at once
            // (dropping the future drops its store), since another instance may run it.
            let outcome = tokio::select! {
                outcome = running => outcome,
                reason = renewal.lost() => {
                    issued.finish().await;
                    return Err(self.lease_lost(run_id, id, reason).await);
                }
            };
            issued.finish().await;
            self.store_logs(run_id, id, attempt, &outcome).await?;
            if access == Some(WorkspaceAccess::ReadWrite) && self.workspaces.dir(run_id).is_dir() {
                let bounds = TreeLimits {
                    bytes: limits.workspace_bytes,
                    entries: limits.workspace_files,
                };
                let dir = self.workspaces.dir(run_id);
                let saved = self
                    .workspaces
                    .save(&self.store, run_id, Some(id), &dir, bounds)
                    .await;
                let saved = match saved {
                    Ok(saved) => saved,
                    Err(refused) => return self.workspace_refused(&scope, id, refused).await,
                };
                self.record(&scope, Some(id), snapshot_event(&saved));
            }
            match outcome.result {
                Ok(output) => {
                    let value = serde_json::from_str(&output).unwrap_or(Value::String(output));
                    return Ok(Ended::Succeeded(value));
                }
                Err(failure) => last = format!("{failure} (attempt {attempt} of {attempts})"),
            }
        }
        Ok(Ended::Failed(last))
    }

    /// Ends a step whose workspace could not be saved: past its limits (`workspace`,
    /// recorded as `limit.exceeded`) or holding what cannot be archived
    /// (`workspace-entry-refused`, recorded as `workspace.refused`). Not retried: the
    /// workspace would be the same.
    async fn workspace_refused(
        &self,
        scope: &Scope,
        id: &str,
        error: WorkspaceError,
    ) -> Result<Ended, RunError> {
        let event = match &error {
            WorkspaceError::TooLarge(limit) => EvidenceEvent::LimitExceeded {
                limit: limit.kind.code().to_owned(),
                allowed: limit.allowed,
                requested: limit.requested,
            },
            WorkspaceError::Refused(reason) => EvidenceEvent::WorkspaceRefused {
                reason: reason.clone(),
            },
            WorkspaceError::Io { .. } | WorkspaceError::Store(_) => return Err(error.into()),
        };
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            scope.clone(),
            Some(id.to_owned()),
            event,
        ));
        self.durable(ticket).await?;
        Ok(Ended::Failed(error.to_string()))
    }

    /// Stores what an attempt logged, and its stdout and stderr line by line (the
    /// sandbox has already redacted every secret value the step touched).
    async fn store_logs(
        &self,
        run_id: &str,
        step_id: &str,
        attempt: u32,
        outcome: &StepOutcome,
    ) -> Result<(), RunError> {
        let stdout = String::from_utf8_lossy(&outcome.stdout);
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        let mut lines: Vec<(&str, &str, &str)> = outcome
            .logs
            .iter()
            .map(|line| {
                let source = match line.source {
                    LogSource::Step => "step",
                    LogSource::Host => "host",
                };
                (source, line.level.as_str(), line.message.as_str())
            })
            .collect();
        lines.extend(stdout.lines().map(|line| ("stdout", "info", line)));
        lines.extend(stderr.lines().map(|line| ("stderr", "warn", line)));
        self.store
            .add_step_logs(run_id, step_id, attempt, &lines)
            .await?;
        Ok(())
    }

    async fn admit(
        &self,
        uses: &relo_manifest::PluginRef,
        scope: &Scope,
    ) -> Result<crate::AdmittedPlugin, CatalogError> {
        let digest = self.catalog.resolve(uses).await?;
        self.catalog
            .admit(&digest, self.evidence.as_ref(), scope)
            .await
    }

    /// Records that step `id` is skipped; its end is stored with the next claims.
    fn skip(&self, scope: &Scope, id: &str, reason: &str, unstored: &mut Vec<Unstored>) {
        self.record(
            scope,
            Some(id),
            EvidenceEvent::StepSkipped {
                reason: reason.to_owned(),
            },
        );
        self.report(Progress::StepEnded {
            step: id.to_owned(),
            state: "skipped",
            detail: Some(reason.to_owned()),
        });
        unstored.push(Unstored {
            step_id: id.to_owned(),
            end: StepEnd::Skipped,
            output: None,
            error: Some(reason.to_owned()),
        });
    }

    fn record(&self, scope: &Scope, step: Option<&str>, event: EvidenceEvent) {
        self.evidence.enqueue(EvidenceRecord::new(
            scope.clone(),
            step.map(str::to_owned),
            event,
        ));
    }

    fn report(&self, progress: Progress) {
        if let Some(sender) = &self.progress {
            // A display that went away does not stop the run.
            let _ = sender.send(progress);
        }
    }

    async fn durable(&self, ticket: relo_evidence::Ticket) -> Result<(), RunError> {
        self.evidence
            .durable(ticket)
            .await
            .map_err(|e| RunError::Evidence(e.to_string()))
    }
}

/// A step's end that is not in the store yet.
struct Unstored {
    step_id: String,
    end: StepEnd,
    output: Option<String>,
    error: Option<String>,
}

impl Unstored {
    fn finished(&self) -> Finished<'_> {
        Finished {
            step_id: &self.step_id,
            end: self.end,
            output: self.output.as_deref(),
            error: self.error.as_deref(),
        }
    }
}

/// `90s`, `5m`, `24h`: a duration as a workflow would write it.
fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", duration.as_millis()),
    }
}

fn state_name(end: StepEnd) -> &'static str {
    match end {
        StepEnd::Succeeded => "succeeded",
        StepEnd::Failed => "failed",
        StepEnd::Skipped => "skipped",
    }
}

impl Runner {
    /// Records that the lease on `step` was lost, and the error that stops the driver.
    async fn lease_lost(&self, run_id: &str, step: &str, reason: String) -> RunError {
        tracing::warn!(run_id, step, "lease lost, step stopped: {reason}");
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            Scope::Run(run_id.to_owned()),
            Some(step.to_owned()),
            EvidenceEvent::LeaseLost {
                owner: self.owner.clone(),
                reason: reason.clone(),
            },
        ));
        if let Err(error) = self.durable(ticket).await {
            return error;
        }
        RunError::LeaseLost {
            step: step.to_owned(),
            reason,
        }
    }
}

fn snapshot_event(saved: &Archived) -> EvidenceEvent {
    EvidenceEvent::WorkspaceSnapshot {
        digest: saved.digest.clone(),
        bytes: saved.size,
        files: saved.files,
    }
}

/// Renews a step's lease (or, without a step, the run's driver lease) every third of its
/// length until dropped; [`LeaseRenewal::lost`] resolves, with the reason, once a renewal
/// fails.
struct LeaseRenewal {
    task: tokio::task::JoinHandle<()>,
    lost: tokio::sync::watch::Receiver<Option<String>>,
}

impl LeaseRenewal {
    fn start(
        store: Store,
        run_id: String,
        step_id: Option<String>,
        owner: String,
        lease: Duration,
    ) -> Self {
        let (report, lost) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let now = SystemTime::now();
                let renewed = match &step_id {
                    Some(step_id) => store
                        .renew_lease(&run_id, step_id, &owner, lease, now)
                        .await
                        .map(|()| true),
                    None => store.renew_run_driver(&run_id, &owner, lease, now).await,
                };
                let reason = match renewed {
                    Ok(true) => continue,
                    Ok(false) => "another runner took the run over".to_owned(),
                    Err(error) => error.to_string(),
                };
                tracing::warn!(run_id, ?step_id, "lease renewal stopped: {reason}");
                let _ = report.send(Some(reason));
                return;
            }
        });
        Self { task, lost }
    }

    /// Resolves with the reason once a renewal has failed; never while they succeed.
    async fn lost(&mut self) -> String {
        let reported = match self.lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The task is gone without reporting (it is only aborted by drop): wait on.
            Err(_) => None,
        };
        match reported {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
