//! `relo runs list | show | logs | cancel`: what ran, how it ended, its steps and what
//! they logged; and stopping a run that has not ended.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use relo_orchestrator::{Workspaces, cancel_run};

use crate::args::{EXIT_FAILED, RunsArgs, RunsCommand};
use crate::home::Home;
use crate::plugin::policy;
use crate::run::people;

/// Runs a `relo runs` command.
pub fn run(args: &RunsArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = home.store().await?;
        match &args.command {
            RunsCommand::List { limit, json } => {
                let runs = store.runs(*limit).await?;
                if *json {
                    let out: Vec<Value> = runs
                        .iter()
                        .map(|r| {
                            json!({"id": r.id, "workflow": r.workflow, "state": r.state,
                                   "requested_by": r.requested_by, "created_at": r.created_at,
                                   "finished_at": r.finished_at})
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else if runs.is_empty() {
                    println!("no runs yet");
                } else {
                    for r in &runs {
                        println!(
                            "{:<32} {:<16} {:<17} {:<10} {}",
                            r.id, r.workflow, r.state, r.requested_by, r.created_at
                        );
                    }
                }
            }
            RunsCommand::Show { id, json } => {
                let Some(run) = store.run(id).await? else {
                    bail!("there is no run {id} (see `relo runs list`)");
                };
                let steps = store.run_steps(id).await?;
                let entries = store.scope_entries(id, 0, 100_000).await?;
                let root_cause = entries
                    .iter()
                    .rev()
                    .find(|e| e.kind == "run.finished")
                    .and_then(|e| serde_json::from_str::<Value>(&e.body).ok())
                    .and_then(|body| body["root_cause"].as_str().map(str::to_owned));
                let denials = entries
                    .iter()
                    .filter(|e| e.kind.ends_with(".denied") || e.kind == "plugin.refused")
                    .count();
                if *json {
                    let out = json!({
                        "id": run.id, "workflow": run.workflow, "state": run.state,
                        "requested_by": run.requested_by, "created_at": run.created_at,
                        "finished_at": run.finished_at, "root_cause": root_cause,
                        "evidence_entries": entries.len(), "denials": denials,
                        "steps": steps.iter().map(|s| json!({
                            "id": s.step_id, "state": s.state, "attempt": s.attempt, "error": s.error,
                        })).collect::<Vec<_>>(),
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!("run {} of {}: {} (requested by {} at {})", run.id, run.workflow, run.state, run.requested_by, run.created_at);
                    if let Some(cause) = &root_cause {
                        println!("root cause: {cause}");
                    }
                    crate::run::print_table(&crate::run::summary(&store, id).await?);
                    println!("evidence: {} entries, {denials} denials (relo evidence verify --run {})", entries.len(), run.id);
                }
            }
            RunsCommand::Logs { id, step, json } => {
                if store.run(id).await?.is_none() {
                    bail!("there is no run {id} (see `relo runs list`)");
                }
                let lines = store.step_logs(id, step.as_deref()).await?;
                if *json {
                    let out: Vec<Value> = lines
                        .iter()
                        .map(|l| json!({"step": l.step_id, "attempt": l.attempt, "source": l.source, "level": l.level, "message": l.message}))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    for l in &lines {
                        println!("{} #{} {:<6} {:<5} {}", l.step_id, l.attempt, l.source, l.level, l.message);
                    }
                }
            }
            RunsCommand::Cancel { id, as_person } => {
                let Some(run) = store.run(id).await? else {
                    bail!("there is no run {id} (see `relo runs list`)");
                };
                if matches!(run.state.as_str(), "succeeded" | "failed" | "cancelled") {
                    bail!("run {id} has already ended ({})", run.state);
                }
                let people = people(&store, &policy(&home)?).policy().await?;
                let operator = people
                    .roles_of(as_person)
                    .is_some_and(|roles| roles.iter().any(|r| r.as_str() == "operator"));
                if !operator && as_person != &run.requested_by {
                    eprintln!("refused: {as_person} is neither an operator nor the run's requester");
                    store.close().await;
                    return Ok(ExitCode::from(EXIT_FAILED));
                }
                // The cancellation is recorded: with the evidence key, like every append.
                let sealed = home.evidence_store().await?;
                cancel_run(&sealed, id, as_person).await?;
                sealed.close().await;
                Workspaces::new(home.path.join("workspaces")).remove(id)?;
                println!("run {id} cancelled by {as_person}; no further step starts");
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
