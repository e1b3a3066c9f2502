//! Carrying runs on in the background: the runs this instance starts or whose gates it
//! receives approvals for, and, through a periodic sweep, runs nobody drives any more
//! (their instance died: its lease on the run ran out).
//!
//! Every instance on one database runs the same sweep; the store hands each orphaned run
//! to exactly one of them ([`relo_store::Store::claim_orphaned_runs`]), and the step
//! leases make sure a step the dead instance held runs again only after its lease
//! expired.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use relo_orchestrator::{Progress, RunOutcome, RunSpec, Runner, StoredRun};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// Runs taken over by one sweep at most.
const SWEEP_BATCH: u32 = 16;

/// The runner this instance drives runs with, and the runs it is driving now.
#[derive(Debug)]
pub(crate) struct RunEngine {
    runner: Arc<Runner>,
    driving: Mutex<BTreeSet<String>>,
}

impl RunEngine {
    pub(crate) fn new(runner: Arc<Runner>) -> RunEngine {
        RunEngine {
            runner,
            driving: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Drives run `run_id` in a task of its own until it ends or waits, unless this
    /// instance already drives it.
    pub(crate) fn drive_in_background(self: &Arc<Self>, run_id: String, metrics: Arc<Metrics>) {
        let fresh = self
            .driving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_id.clone());
        if !fresh {
            return;
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let began = Instant::now();
            let outcome = engine.drive(&run_id).await;
            metrics.run_driven(outcome.as_ref().ok(), began.elapsed());
            match outcome {
                Ok(outcome) => tracing::info!(run_id, ?outcome, "stopped driving a run"),
                Err(error) => tracing::warn!(run_id, "cannot drive the run: {error}"),
            }
            engine
                .driving
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&run_id);
        });
    }

    async fn drive(
        &self,
        run_id: &str,
    ) -> Result<RunOutcome, Box<dyn std::error::Error + Send + Sync>> {
        let stored =
            StoredRun::load(&self.runner.store, self.runner.catalog.people(), run_id).await?;
        let spec = RunSpec {
            run_id: &stored.row.id,
            workflow: &stored.workflow,
            workflow_text: &stored.text,
            params: &stored.request.params,
            requested_by: &stored.request.requested_by,
            request: &stored.row.request,
            workspace: None,
        };
        Ok(Arc::clone(&self.runner).drive(&spec).await?)
    }

    /// Takes up the runs nobody drives and drives them; returns their ids.
    pub(crate) async fn sweep(
        self: &Arc<Self>,
        metrics: &Arc<Metrics>,
    ) -> Result<Vec<String>, relo_store::StoreError> {
        let taken = self
            .runner
            .store
            .claim_orphaned_runs(
                &self.runner.owner,
                self.runner.lease,
                SystemTime::now(),
                SWEEP_BATCH,
            )
            .await?;
        for run_id in &taken {
            tracing::info!(run_id, "taking up a run nobody drives");
            metrics.run_taken_over();
            self.drive_in_background(run_id.clone(), Arc::clone(metrics));
        }
        Ok(taken)
    }

    /// Sweeps every `every` until the task is aborted.
    pub(crate) fn spawn_sweeper(
        self: &Arc<Self>,
        every: Duration,
        metrics: Arc<Metrics>,
    ) -> JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(error) = engine.sweep(&metrics).await {
                    tracing::warn!("the sweep for runs nobody drives failed: {error}");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// Counts the runner's progress reports into `metrics` until the runner is dropped.
pub(crate) fn count_progress(
    mut progress: UnboundedReceiver<Progress>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(report) = progress.recv().await {
            metrics.progress(&report);
        }
    })
}
