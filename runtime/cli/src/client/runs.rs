//! `relo --server URL run | approve | runs ...`: runs on the server.
//!
//! A run request and a gate approval are signed here, with the person's key of the
//! local home, exactly as the local `relo run` and `relo approve` sign them; the server
//! verifies them against its own `[[people]]`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64ct::{Base64, Encoding as _};
use relo_orchestrator::{SEED_LIMITS, snapshot_of};
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{Call, Refusal, Session};
use crate::approve::sign_gate_approval;
use crate::args::{ApproveArgs, EXIT_FAILED, EXIT_WAITING, RunArgs, RunsCommand};
use crate::home::Home;
use crate::plugin::policy;
use crate::run::{SignedRequest, sign_request, signing_person};

/// How often a followed run is asked for when the server does not hold the request.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// How long the server is asked to hold each request for the run's next change.
const FOLLOW_WAIT_SECONDS: u64 = 20;

/// Run states in which following stops.
const SETTLED: [&str; 4] = ["succeeded", "failed", "cancelled", "waiting-approval"];

/// The answer to `POST /v1/runs`.
#[derive(Debug, Deserialize)]
struct Started {
    run_id: String,
    state: String,
    behind: Option<String>,
}

/// A run as listed.
#[derive(Debug, Deserialize)]
struct RunSummary {
    id: String,
    workflow: String,
    state: String,
    requested_by: String,
    created_at: String,
}

/// A run with its steps.
#[derive(Debug, Deserialize)]
struct RunDetail {
    id: String,
    workflow: String,
    state: String,
    requested_by: String,
    created_at: String,
    workflow_sha256: Option<String>,
    steps: Vec<StepView>,
}

/// A step of a run.
#[derive(Debug, Clone, Deserialize)]
struct StepView {
    step_id: String,
    state: String,
    attempt: i64,
    error: Option<String>,
}

/// A line a step logged.
#[derive(Debug, Deserialize)]
struct LogLine {
    step_id: String,
    attempt: i64,
    source: String,
    level: String,
    message: String,
}

/// The answer to an accepted gate approval.
#[derive(Debug, Deserialize)]
struct GateApproved {
    run_id: String,
    step: String,
    approver: String,
    approvals: u64,
    quorum: u64,
}

/// `relo --server URL run`: signs the request, sends it with the workflow and its
/// workspace, and follows the run.
pub async fn start(session: &mut Session, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let SignedRequest {
        workflow,
        workflow_text,
        person,
        envelope,
        workspace,
        ..
    } = sign_request(&home, args)?;
    let mut body = json!({
        "request": serde_json::from_str::<Value>(&envelope)?,
        "workflow_text": workflow_text,
    });
    if let Some(source) = &workspace {
        let snapshot = snapshot_of(source, SEED_LIMITS)
            .with_context(|| format!("cannot archive the workspace {}", source.display()))?;
        body["workspace_tar_base64"] = Value::String(Base64::encode_string(&snapshot.bytes));
        note(
            args.json,
            format!(
                "workspace {}: {} files, sha256 {}",
                source.display(),
                snapshot.files,
                snapshot.digest
            ),
        );
    }
    let started: Started = session
        .call_json(&Call::post(&["v1", "runs"], &body))
        .await?;
    note(
        args.json,
        format!(
            "run {} of {} requested by {person} on {}: {}",
            started.run_id,
            workflow.name,
            session.server(),
            started.state
        ),
    );
    if let Some(behind) = &started.behind {
        note(
            args.json,
            format!("queued: concurrency group busy with run {behind}; waiting for its turn"),
        );
    }
    if args.no_follow {
        if args.json {
            let out =
                json!({"run_id": started.run_id, "state": started.state, "behind": started.behind});
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "run {} accepted; follow it with `relo --server {} runs show {}`",
                started.run_id,
                session.server(),
                started.run_id
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    note(
        args.json,
        "following the run; Ctrl-C stops following, not the run".to_owned(),
    );
    let (run, steps) = follow(session, &started.run_id, args.json)
        .await
        .with_context(|| {
            format!(
                "stopped following run {} (it goes on on the server: `relo --server {} runs show {}`)",
                started.run_id,
                session.server(),
                started.run_id
            )
        })?;
    finish(session, &run, &steps, args.json)
}

/// A line of progress on stderr, unless the output is JSON.
fn note(json: bool, text: String) {
    if !json {
        eprintln!("{text}");
    }
}

/// Follows the run until it is settled, printing each step's change of state; the run's
/// last view, with its steps as JSON. Each request after the first names the run's
/// `ETag` and asks the server to hold it up to [`FOLLOW_WAIT_SECONDS`] for the next
/// change, so following costs a request per change rather than per poll.
async fn follow(
    session: &mut Session,
    run_id: &str,
    json: bool,
) -> anyhow::Result<(RunDetail, Vec<Value>)> {
    let mut seen: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let mut tag: Option<String> = None;
    loop {
        let mut call = Call::get(&["v1", "runs", run_id]);
        if let Some(tag) = &tag {
            call = call
                .if_none_match(tag)
                .with_query("wait", &FOLLOW_WAIT_SECONDS.to_string());
        }
        let asked = Instant::now();
        let answer = match session.call(&call).await {
            Ok(answer) if answer.status == reqwest::StatusCode::NOT_MODIFIED => {
                // Unchanged; a server that did not hold the request is asked less often.
                if asked.elapsed() < POLL_EVERY {
                    tokio::time::sleep(POLL_EVERY).await;
                }
                continue;
            }
            Ok(answer) => answer,
            // Polling shares the caller's request budget: wait as long as asked.
            Err(error)
                if error
                    .downcast_ref::<Refusal>()
                    .is_some_and(|r| r.status == 429) =>
            {
                let seconds = error
                    .downcast_ref::<Refusal>()
                    .and_then(|r| r.retry_after)
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(seconds.max(1))).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        tag = answer.etag.clone();
        let value: Value = answer.json()?;
        let run: RunDetail = serde_json::from_value(value.clone())
            .context("the server's answer is not the run expected")?;
        for step in &run.steps {
            let now = (step.state.clone(), step.attempt);
            if seen.get(&step.step_id) != Some(&now) {
                if let Some(line) = progress(step) {
                    note(json, line);
                }
                seen.insert(step.step_id.clone(), now);
            }
        }
        if SETTLED.contains(&run.state.as_str()) {
            let steps = value["steps"].as_array().cloned().unwrap_or_default();
            return Ok((run, steps));
        }
        if tag.is_none() {
            // A server without tags: ask again after a pause.
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Whether a step's state is a gate short of its quorum.
fn is_waiting(state: &str) -> bool {
    matches!(state, "waiting" | "waiting-approval")
}

/// The progress line of a step's new state (the store's: `pending`, `claimed`,
/// `running`, `waiting`, `succeeded`, `failed`, `skipped`); none for a step that has not
/// started.
fn progress(step: &StepView) -> Option<String> {
    let id = &step.step_id;
    Some(match step.state.as_str() {
        "pending" | "queued" | "claimed" => return None,
        "running" if step.attempt > 1 => format!("  > {id}: attempt {}", step.attempt),
        "running" => format!("  > {id}"),
        "succeeded" => format!("  + {id}: succeeded"),
        "skipped" => format!("  - {id}: skipped"),
        "waiting" | "waiting-approval" => format!("  ? {id}: waiting for approval"),
        state => match &step.error {
            Some(error) => format!("  x {id}: {state}: {error}"),
            None => format!("  x {id}: {state}"),
        },
    })
}

/// Prints the settled run (a step table, or JSON) and picks the exit code as the
/// local `relo run` does.
fn finish(
    session: &Session,
    run: &RunDetail,
    steps: &[Value],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let waiting: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| is_waiting(&s.state))
        .map(|s| s.step_id.as_str())
        .collect();
    let failed = run
        .steps
        .iter()
        .find(|s| s.state == "failed")
        .map(|s| match &s.error {
            Some(error) => format!("step {}: {error}", s.step_id),
            None => format!("step {}", s.step_id),
        });
    let code = match run.state.as_str() {
        "succeeded" => ExitCode::SUCCESS,
        "waiting-approval" => ExitCode::from(EXIT_WAITING),
        _ => ExitCode::from(EXIT_FAILED),
    };
    if json {
        let out = json!({
            "run_id": run.id, "outcome": run.state, "failed": failed,
            "waiting_for": waiting, "steps": steps,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(code);
    }
    print_steps(&run.steps);
    let id = &run.id;
    match run.state.as_str() {
        "succeeded" => println!("run {id} succeeded"),
        "waiting-approval" => {
            println!("run {id} is waiting for approval of {}", waiting.join(", "));
            for gate in &waiting {
                println!(
                    "  relo --server {} approve --run {id} --step {gate} --as NAME",
                    session.server()
                );
            }
        }
        "cancelled" => println!("run {id} was cancelled"),
        _ => match &failed {
            Some(failed) => println!("run {id} failed at {failed}"),
            None => println!("run {id} {}", run.state),
        },
    }
    Ok(code)
}

/// The step table of a run: step, state, attempt, error.
fn print_steps(steps: &[StepView]) {
    println!("  {:<24} {:<17} {:>7}  error", "step", "state", "attempt");
    for step in steps {
        println!(
            "  {:<24} {:<17} {:>7}  {}",
            step.step_id,
            step.state,
            step.attempt,
            step.error.as_deref().unwrap_or("-")
        );
    }
}

/// `relo --server URL approve`: signs the approval of the gate of the run (whose
/// workflow sha256 the server tells) and sends it.
pub async fn approve(session: &mut Session, args: &ApproveArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let policy = policy(&home)?;
    let (signer, person) = signing_person(
        &home,
        &policy,
        args.key.as_deref(),
        args.as_person.as_deref(),
    )?;
    let run: RunDetail = session
        .call_json(&Call::get(&["v1", "runs", &args.run]))
        .await?;
    let Some(workflow_sha256) = run.workflow_sha256 else {
        bail!(
            "the server does not say which workflow run {} runs, so there is nothing to sign",
            run.id
        );
    };
    let envelope = sign_gate_approval(&signer, (&run.id, &workflow_sha256), &args.step, &person)?;
    let body: Value = serde_json::from_str(&envelope)?;
    let answer: Value = session
        .call_json(&Call::post(
            &["v1", "runs", &run.id, "gates", &args.step, "approvals"],
            &body,
        ))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let approved: GateApproved =
        serde_json::from_value(answer).context("the server's answer is not the one expected")?;
    println!(
        "{} approved step {} of run {} ({} of {} needed)",
        approved.approver, approved.step, approved.run_id, approved.approvals, approved.quorum
    );
    Ok(ExitCode::SUCCESS)
}

/// `relo --server URL runs list | show | logs | cancel`.
pub async fn runs(session: &mut Session, command: &RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::List { limit, json } => {
            let listed: Value = session
                .call_json(&Call::get(&["v1", "runs"]).with_query("limit", &limit.to_string()))
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&listed)?);
                return Ok(ExitCode::SUCCESS);
            }
            let runs: Vec<RunSummary> = serde_json::from_value(listed)
                .context("the server's answer is not the run list expected")?;
            if runs.is_empty() {
                println!("no runs yet");
            }
            for r in &runs {
                println!(
                    "{:<32} {:<16} {:<17} {:<10} {}",
                    r.id, r.workflow, r.state, r.requested_by, r.created_at
                );
            }
        }
        RunsCommand::Show { id, json } => {
            let shown: Value = session.call_json(&Call::get(&["v1", "runs", id])).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(ExitCode::SUCCESS);
            }
            let run: RunDetail = serde_json::from_value(shown)
                .context("the server's answer is not the run expected")?;
            println!(
                "run {} of {}: {} (requested by {} at {})",
                run.id, run.workflow, run.state, run.requested_by, run.created_at
            );
            print_steps(&run.steps);
        }
        RunsCommand::Logs { id, step, json } => {
            let mut call = Call::get(&["v1", "runs", id, "logs"]);
            if let Some(step) = step {
                call = call.with_query("step", step);
            }
            let logged: Value = session.call_json(&call).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&logged)?);
                return Ok(ExitCode::SUCCESS);
            }
            let lines: Vec<LogLine> = serde_json::from_value(logged)
                .context("the server's answer is not the log expected")?;
            for l in &lines {
                println!(
                    "{} #{} {:<6} {:<5} {}",
                    l.step_id, l.attempt, l.source, l.level, l.message
                );
            }
        }
        RunsCommand::Cancel { id, as_person } => {
            if !as_person.is_empty() {
                bail!(
                    "--as is not used with --server: the login says who cancels (you are \
                     logged in to {}); drop --as {as_person}",
                    session.server()
                );
            }
            #[derive(Deserialize)]
            struct Cancelled {
                id: String,
                state: String,
            }
            let cancelled: Cancelled = session
                .call_json(&Call::post_empty(&["v1", "runs", id, "cancel"]))
                .await?;
            println!(
                "run {} {}; no further step starts",
                cancelled.id, cancelled.state
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_each_state_change() {
        let step = |state: &str, attempt: i64, error: Option<&str>| StepView {
            step_id: "deploy".to_owned(),
            state: state.to_owned(),
            attempt,
            error: error.map(str::to_owned),
        };
        assert_eq!(progress(&step("pending", 0, None)), None);
        assert_eq!(
            progress(&step("running", 1, None)).as_deref(),
            Some("  > deploy")
        );
        assert_eq!(
            progress(&step("running", 2, None)).as_deref(),
            Some("  > deploy: attempt 2")
        );
        assert_eq!(
            progress(&step("failed", 2, Some("egress-denied: api.example.com"))).as_deref(),
            Some("  x deploy: failed: egress-denied: api.example.com")
        );
        assert_eq!(progress(&step("claimed", 0, None)), None);
        assert_eq!(
            progress(&step("waiting", 1, None)).as_deref(),
            Some("  ? deploy: waiting for approval")
        );
    }
}
