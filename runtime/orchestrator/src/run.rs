//! Running a workflow: steps claimed from the store with a lease, run as their needs
//! allow (several at once, up to a bound), inputs from `${{ }}` expressions, `if:`
//! conditions, retries with backoff, per-step timeouts, and failure propagation (the
//! dependents of a failed step are skipped and the run fails naming the root cause).
//!
//! This part runs plugin steps only: a workflow with an approval gate is refused before
//! anything starts (gates, resume and concurrency groups come next).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_manifest::{Step, Workflow};
use relo_sandbox::{Sandbox, StepContext, StepRequest};
use relo_store::{EvidenceWriter, Finished, NewRun, StepEnd, Store, StoreError};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::credentials::CredentialSource;
use crate::expr::{self, Context};
use crate::{CatalogError, PluginCatalog};

/// Why a run could not be started or carried on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The workflow has something this runner does not run yet.
    #[error("{0}")]
    Unsupported(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another instance holds a step this runner was about to run.
    #[error("step `{0}` is held by another instance")]
    StepHeld(String),
    /// A step's task panicked or was cancelled.
    #[error("a step's task ended abnormally: {0}")]
    Task(String),
    /// The evidence could not be made durable.
    #[error("the run's evidence could not be stored: {0}")]
    Evidence(String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step succeeded or was skipped by its condition.
    Succeeded,
    /// A step failed; its dependents were skipped.
    Failed {
        /// `step: why` of the first failure.
        root_cause: String,
    },
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
    /// This instance's name in leases.
    pub owner: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Steps run at once at most.
    pub parallel: usize,
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
}

impl Runner {
    /// Creates the run `run_id` of `workflow` with `params` (defaults filled in by the
    /// caller), requested by `requested_by` in the signed `request` (stored with the
    /// run), and runs it to its end.
    pub async fn run(
        self: &Arc<Self>,
        run_id: &str,
        workflow: &Workflow,
        params: BTreeMap<String, Value>,
        requested_by: &str,
        request: &str,
    ) -> Result<RunOutcome, RunError> {
        if let Some(gate) = workflow.steps.iter().find(|s| s.approval.is_some()) {
            return Err(RunError::Unsupported(format!(
                "step `{}` is an approval gate; this relo does not run gates yet",
                gate.id
            )));
        }
        let ids: Vec<&str> = workflow.steps.iter().map(|s| s.id.as_str()).collect();
        self.store
            .create_run(
                &NewRun {
                    id: run_id,
                    workflow: workflow.name.as_str(),
                    requested_by,
                    request,
                    steps: &ids,
                },
                SystemTime::now(),
            )
            .await?;
        let scope = Scope::Run(run_id.to_owned());
        self.record(
            &scope,
            None,
            EvidenceEvent::RunStarted {
                workflow: workflow.name.as_str().to_owned(),
                requested_by: requested_by.to_owned(),
                params: Value::Object(params.clone().into_iter().collect()),
            },
        );
        self.store
            .set_run_state(run_id, "running", SystemTime::now())
            .await?;

        let mut ended: BTreeMap<String, Ended> = BTreeMap::new();
        let mut root_cause: Option<String> = None;
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
                if ended.contains_key(id) {
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
                    self.skip(run_id, &scope, id, &reason).await?;
                    ended.insert(id.to_owned(), Ended::Skipped(reason));
                    continue;
                }
                let context = Context {
                    params: &params,
                    outputs: &outputs,
                };
                match step.condition.as_ref().map(|c| expr::holds(c, context)) {
                    Some(Ok(false)) => {
                        let reason = format!(
                            "its condition `{}` is false",
                            step.condition.as_ref().map_or("", |c| c.as_str())
                        );
                        self.skip(run_id, &scope, id, &reason).await?;
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
            if ready.is_empty() {
                break;
            }
            // One transaction claims the whole wave.
            let ids: Vec<&str> = ready.iter().map(|(step, _)| step.id.as_str()).collect();
            let claimed: Vec<String> = self
                .store
                .claim_steps(run_id, &ids, &self.owner, self.lease, SystemTime::now())
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let mut running = JoinSet::new();
            for (step, input) in ready {
                if !claimed.iter().any(|id| id == step.id.as_str()) {
                    // Another instance holds it: not this runner's to run or to finish.
                    return Err(RunError::StepHeld(step.id.as_str().to_owned()));
                }
                let runner = Arc::clone(self);
                let run_id = run_id.to_owned();
                let permit = Arc::clone(&semaphore);
                running.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    let id = step.id.as_str().to_owned();
                    let end = match input {
                        Err(reason) => Ok(Ended::Failed(reason)),
                        Ok(input) => runner.run_step(&run_id, &step, input).await,
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
            let stored: Vec<(StepEnd, Option<String>, Option<String>)> = wave
                .iter()
                .map(|(id, end)| match end {
                    Ended::Succeeded(output) => {
                        (StepEnd::Succeeded, Some(output.to_string()), None)
                    }
                    Ended::Failed(reason) => {
                        root_cause.get_or_insert_with(|| format!("{id}: {reason}"));
                        (StepEnd::Failed, None, Some(reason.clone()))
                    }
                    Ended::Skipped(reason) => (StepEnd::Skipped, None, Some(reason.clone())),
                })
                .collect();
            let finished: Vec<Finished<'_>> = wave
                .iter()
                .zip(&stored)
                .map(|((id, _), (end, output, error))| Finished {
                    step_id: id,
                    end: *end,
                    output: output.as_deref(),
                    error: error.as_deref(),
                })
                .collect();
            self.store
                .finish_steps(run_id, &self.owner, &finished, SystemTime::now())
                .await?;
            ended.extend(wave);
        }

        let outcome = match root_cause {
            None => RunOutcome::Succeeded,
            Some(root_cause) => RunOutcome::Failed { root_cause },
        };
        let (state, cause) = match &outcome {
            RunOutcome::Succeeded => ("succeeded", None),
            RunOutcome::Failed { root_cause } => ("failed", Some(root_cause.clone())),
        };
        let ticket = self.evidence.enqueue(EvidenceRecord::new(
            scope,
            None,
            EvidenceEvent::RunFinished {
                outcome: state.to_owned(),
                root_cause: cause,
            },
        ));
        self.evidence
            .durable(ticket)
            .await
            .map_err(|e| RunError::Evidence(e.to_string()))?;
        self.evidence
            .checkpoint()
            .await
            .map_err(|e| RunError::Evidence(e.to_string()))?;
        self.store
            .set_run_state(run_id, state, SystemTime::now())
            .await?;
        Ok(outcome)
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
        let _renewal = LeaseRenewal::start(
            self.store.clone(),
            run_id.to_owned(),
            id.to_owned(),
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
            let outcome = self
                .sandbox
                .run(
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
                        workspace: None,
                        evidence: self.evidence.clone() as Arc<dyn EvidenceSink>,
                        credentials: issued.credentials.clone(),
                    },
                )
                .await;
            issued.finish().await;
            match outcome.result {
                Ok(output) => {
                    let value = serde_json::from_str(&output).unwrap_or(Value::String(output));
                    return Ok(Ended::Succeeded(value));
                }
                Err(failure) => last = format!("{} (attempt {attempt} of {attempts})", failure),
            }
        }
        Ok(Ended::Failed(last))
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

    async fn skip(
        &self,
        run_id: &str,
        scope: &Scope,
        id: &str,
        reason: &str,
    ) -> Result<(), RunError> {
        let now = SystemTime::now();
        if self
            .store
            .claim_step(run_id, id, &self.owner, self.lease, now)
            .await?
            .is_some()
        {
            self.store
                .finish_step(
                    run_id,
                    id,
                    &self.owner,
                    StepEnd::Skipped,
                    None,
                    Some(reason),
                    now,
                )
                .await?;
        }
        self.record(
            scope,
            Some(id),
            EvidenceEvent::StepSkipped {
                reason: reason.to_owned(),
            },
        );
        Ok(())
    }

    fn record(&self, scope: &Scope, step: Option<&str>, event: EvidenceEvent) {
        self.evidence.enqueue(EvidenceRecord::new(
            scope.clone(),
            step.map(str::to_owned),
            event,
        ));
    }
}

/// Renews a step's lease every third of its length until dropped.
struct LeaseRenewal(tokio::task::JoinHandle<()>);

impl LeaseRenewal {
    fn start(
        store: Store,
        run_id: String,
        step_id: String,
        owner: String,
        lease: Duration,
    ) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                if let Err(error) = store
                    .renew_lease(&run_id, &step_id, &owner, lease, SystemTime::now())
                    .await
                {
                    tracing::warn!(run_id, step_id, "lease renewal stopped: {error}");
                    return;
                }
            }
        }))
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}
