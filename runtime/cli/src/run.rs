//! `relo run WORKFLOW` and `relo resume RUN`: run a workflow on this machine, with the
//! request signed by the requester's key, showing progress while steps run and a table
//! of what each step used at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_orchestrator::{
    CredentialSource, People, PluginCatalog, Progress, RunOutcome, RunRequest, RunSpec, Runner,
    StoredRun, StoredRunError, Workspaces, params,
};
use relo_sandbox::{Sandbox, SandboxConfig};
use relo_store::{CheckpointHook, CheckpointPolicy, EvidenceWriter, Placed, Store, WriterOptions};
use relo_trust::{KeyFileSigner, Signer as _, TrustPolicy, sha256_hex};
use serde_json::{Value, json};

use crate::args::{EXIT_FAILED, EXIT_WAITING, ResumeArgs, RunArgs};
use crate::home::{Home, read_parsed};
use crate::plugin::{config, policy};

/// How long a step's claim lasts without renewal (the runner renews it while the step
/// is alive); a run whose process died can be taken over by another after this.
const LEASE: Duration = Duration::from_secs(60);

/// A run request made and signed on this machine by the requester's key, for `relo
/// run` here or on a server (`relo --server URL run`).
pub struct SignedRequest {
    /// The workflow.
    pub workflow: relo_manifest::Workflow,
    /// Its exact text, whose sha256 is signed.
    pub workflow_text: String,
    /// The resolved parameters.
    pub params: BTreeMap<String, Value>,
    /// The requester, as `[[people]]` names them.
    pub person: String,
    /// The new run's id: `run-SECONDS-8HEX`.
    pub run_id: String,
    /// The signed request (a DSSE envelope), JSON.
    pub envelope: String,
    /// The workflow's `workspace:` folder, resolved next to the workflow file.
    pub workspace: Option<std::path::PathBuf>,
}

/// Reads the workflow and `--param`s of `args`, and signs the run request with the key
/// of `--as`/`--key` in `home`.
pub fn sign_request(home: &Home, args: &RunArgs) -> anyhow::Result<SignedRequest> {
    let (workflow, bytes) = read_parsed(&args.workflow, relo_manifest::parse_workflow)?;
    let workflow_text = String::from_utf8(bytes).context("the workflow is not UTF-8")?;
    let given = given_params(&args.params)?;
    let params = params::resolve(&workflow, &given).context("the run's parameters")?;
    let policy = policy(home)?;
    let (signer, person) = signing_person(
        home,
        &policy,
        args.key.as_deref(),
        args.as_person.as_deref(),
    )?;
    let now = SystemTime::now();
    let run_id = new_run_id(now);
    let request = RunRequest {
        run_id: run_id.clone(),
        workflow: workflow.name.as_str().to_owned(),
        workflow_sha256: sha256_hex(workflow_text.as_bytes()),
        params: params.clone(),
        requested_by: person.clone(),
        requested_at: relo_store::rfc3339_utc(now),
    };
    let envelope = request
        .sign(&signer)
        .context("cannot sign the run request")?
        .to_json();
    let workspace = workflow.workspace.as_ref().map(|folder| {
        args.workflow
            .parent()
            .unwrap_or(Path::new("."))
            .join(folder.as_str())
    });
    Ok(SignedRequest {
        workflow,
        workflow_text,
        params,
        person,
        run_id,
        envelope,
        workspace,
    })
}

/// `--param NAME=VALUE` and `NAME=@FILE` (the file's text) as a map.
fn given_params(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut given = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--param {pair}: expected NAME=VALUE (or NAME=@FILE)");
        };
        let value = match value.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("--param {name}=@{file}: cannot read {file}"))?,
            None => value.to_owned(),
        };
        given.insert(name.to_owned(), value);
    }
    Ok(given)
}

/// A new run id: `run-SECONDS-8HEX`.
fn new_run_id(now: SystemTime) -> String {
    format!(
        "run-{}-{}",
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        &sha256_hex(format!("{:?}{}", now, std::process::id()).as_bytes())[..8]
    )
}

/// Runs `relo run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let SignedRequest {
        workflow,
        workflow_text,
        params,
        person,
        run_id,
        envelope,
        workspace,
    } = sign_request(&home, args)?;
    let spec = RunSpec {
        run_id: &run_id,
        workflow: &workflow,
        workflow_text: &workflow_text,
        params: &params,
        requested_by: &person,
        request: &envelope,
        workspace: workspace.as_deref(),
    };
    let display = Display { json: args.json };
    runtime()?.block_on(async {
        let store = home.store().await?;
        let (runner, progress) = runner(&home, &store, RunnerOptions::local(args.parallel)).await?;
        // The request is checked as a server checks it, against the people who count now
        // (the store's, once a server imported them): a key relo.toml does not list, or
        // one revoked or of a disabled person, starts nothing.
        let people = runner.catalog.people().policy().await?;
        if let Err(refusal) = RunRequest::verify(&envelope, &people, &workflow_text) {
            store
                .record(&EvidenceRecord::new(
                    Scope::Control,
                    None,
                    EvidenceEvent::AuthRefused {
                        who: Some(person.clone()),
                        code: refusal.code.to_owned(),
                        route: "relo run".to_owned(),
                        client: "local".to_owned(),
                        detail: Some(refusal.reason.clone()),
                    },
                ))
                .await?;
            eprintln!("refused ({}): {}", refusal.code, refusal.reason);
            store.close().await;
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        display.line(format!(
            "run {run_id} of {} requested by {person}",
            workflow.name
        ));
        let shown = display.follow(progress);
        let placed = runner.start(&spec).await?;
        if let Placed::Queued { behind } = &placed {
            display.line(format!(
                "queued: concurrency group busy with run {behind}; waiting for its turn"
            ));
        }
        let outcome = runner.drive(&spec).await;
        finish(&display, &store, &run_id, runner, shown, outcome).await
    })
}

/// Runs `relo resume`.
pub fn resume(args: &ResumeArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let policy = policy(&home)?;
    let display = Display { json: args.json };
    runtime()?.block_on(async {
        let store = home.store().await?;
        let stored = stored_run(&store, &policy, &args.run_id).await?;
        let (row, request, workflow, text) =
            (stored.row, stored.request, stored.workflow, stored.text);
        let released = take_over_dead_local_owners(&store, &row.id).await?;
        if !released.is_empty() {
            display.line(format!(
                "taking over {} from a relo process on this machine that is gone",
                released.join(", ")
            ));
        }
        let spec = RunSpec {
            run_id: &row.id,
            workflow: &workflow,
            workflow_text: &text,
            params: &request.params,
            requested_by: &request.requested_by,
            request: &row.request,
            workspace: None,
        };
        let (runner, progress) = runner(&home, &store, RunnerOptions::local(args.parallel)).await?;
        display.line(format!(
            "resuming run {} of {} requested by {}",
            row.id, workflow.name, request.requested_by
        ));
        let shown = display.follow(progress);
        let outcome = runner.drive(&spec).await;
        finish(&display, &store, &row.id, runner, shown, outcome).await
    })
}

/// The signer of `--key`, else of `--as NAME` (`keys/NAME.key` in the home), and the
/// person it signs as: the person of `[[people]]` holding the key (whom `--as` must name,
/// if given), or, for a key `[[people]]` does not list, the person `--as` names. Such a
/// key is one an admin added through the server; whoever checks the signature (the
/// server, or the store's people) decides whether it is that person's.
pub fn signing_person(
    home: &Home,
    policy: &TrustPolicy,
    key: Option<&Path>,
    person: Option<&str>,
) -> anyhow::Result<(KeyFileSigner, String)> {
    let key_path = match (key, person) {
        (Some(key), _) => key.to_owned(),
        (None, Some(name)) => home.path.join("keys").join(format!("{name}.key")),
        (None, None) => {
            bail!("name the person with --as NAME (and --key FILE if the key is not keys/NAME.key)")
        }
    };
    let signer = KeyFileSigner::load(&key_path)
        .with_context(|| format!("cannot load the key {}", key_path.display()))?;
    let Some(owner) = policy.person_with_key(signer.key_id()).map(str::to_owned) else {
        let Some(name) = person else {
            bail!(
                "key {} belongs to no person in [[people]]; if it was added to a person on the server, name them with --as NAME",
                key_path.display()
            );
        };
        return Ok((signer, name.to_owned()));
    };
    if let Some(name) = person
        && name != owner
    {
        bail!("--as {name}, but key {} is {owner}'s", key_path.display());
    }
    Ok((signer, owner))
}

/// The people whose signatures count now on `store`: relo.toml's (`policy`) until a
/// `relo serve` imported people into the store, the store's from then on.
pub fn people(store: &Store, policy: &TrustPolicy) -> People {
    People::new(store.clone(), policy.clone())
}

/// Loads the run `id` for `resume` or `approve`; an ended, unknown or tampered run is an
/// error.
pub async fn stored_run(
    store: &Store,
    policy: &TrustPolicy,
    id: &str,
) -> anyhow::Result<StoredRun> {
    StoredRun::load(store, &people(store, policy), id)
        .await
        .map_err(|error| match error {
            StoredRunError::NoRun(id) => {
                anyhow::anyhow!("there is no run {id} (see `relo runs list`)")
            }
            other => anyhow::Error::new(other),
        })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// This process's name in leases: `cli@HOST:PID`, so that a later `relo resume` on the
/// same machine can tell that the process is gone.
fn owner() -> String {
    format!("cli@{}:{}", hostname(), std::process::id())
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Releases the steps of the run held by `relo` processes of this machine that no
/// longer exist (a crash, SIGKILL): their leases would otherwise have to expire first.
async fn take_over_dead_local_owners(store: &Store, run_id: &str) -> anyhow::Result<Vec<String>> {
    let prefix = format!("cli@{}:", hostname());
    let mut released = Vec::new();
    let mut owners: std::collections::BTreeSet<String> = store
        .run_steps(run_id)
        .await?
        .into_iter()
        .filter_map(|step| step.lease_owner)
        .collect();
    owners.extend(store.run(run_id).await?.and_then(|run| run.driver));
    for owner in owners {
        let Some(pid) = owner.strip_prefix(&prefix) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            released.extend(store.release_leases(run_id, &owner).await?);
            store.release_run_driver(run_id, &owner).await?;
        }
    }
    Ok(released)
}

/// How a runner of this home drives runs: as whom, how many steps at once, with which
/// lease, and how many unended runs one requester may have.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The instance's name in leases.
    pub owner: String,
    /// Steps run at once at most.
    pub parallel: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// At most this many unended runs per requester (`None`: no limit).
    pub max_active_runs: Option<u32>,
}

impl RunnerOptions {
    /// The options of `relo run` and `relo resume`: this process's owner name, the
    /// default lease, no limit.
    fn local(parallel: usize) -> RunnerOptions {
        RunnerOptions {
            owner: owner(),
            parallel,
            lease: LEASE,
            max_active_runs: None,
        }
    }
}

/// The runner of this home, and where it reports progress.
pub async fn runner(
    home: &Home,
    store: &Store,
    options: RunnerOptions,
) -> anyhow::Result<(Arc<Runner>, tokio::sync::mpsc::UnboundedReceiver<Progress>)> {
    let config = config(home)?.clone();
    let evidence_key: Arc<dyn relo_trust::Signer> = Arc::from(home.evidence_signer()?);
    let store = &home.seal(store.clone(), Arc::clone(&evidence_key)).await?;
    let sandbox = Arc::new(Sandbox::new(SandboxConfig {
        cache_dir: Some(home.path.join("cache")),
        ..SandboxConfig::default()
    })?);
    let catalog = PluginCatalog::new(
        store.clone(),
        Arc::clone(&sandbox),
        config.clone(),
        &home.path,
    )
    .await
    .context("cannot load the trust policy")?;
    let credentials = CredentialSource::from_config(&config, &home.path)
        .await
        .context("cannot set up secrets and signing keys")?;
    let origin = store.evidence_origin().await?;
    let witness = home.witness(&origin)?;
    let writer = EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            checkpoints: Some(CheckpointPolicy {
                every: 10_000,
                signer: evidence_key,
                key_name: origin.clone(),
                origin,
            }),
            on_checkpoint: Some(CheckpointHook::new(move |checkpoint| {
                Ok(witness.append(&checkpoint.note)?)
            })),
            ..WriterOptions::default()
        },
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let runner = Arc::new(Runner {
        store: store.clone(),
        catalog: Arc::new(catalog),
        sandbox,
        credentials,
        evidence: Arc::new(writer),
        workspaces: Workspaces::new(home.path.join("workspaces")),
        progress: Some(sender),
        owner: options.owner,
        lease: options.lease,
        parallel: options.parallel,
        max_active_runs: options.max_active_runs,
    });
    Ok((runner, receiver))
}

/// Prints the outcome and the step table (or JSON), and picks the exit code.
async fn finish(
    display: &Display,
    store: &Store,
    run_id: &str,
    runner: Arc<Runner>,
    shown: tokio::task::JoinHandle<()>,
    outcome: Result<RunOutcome, relo_orchestrator::RunError>,
) -> anyhow::Result<ExitCode> {
    // The runner holds the progress sender: dropping it ends the display task.
    drop(runner);
    shown.await.ok();
    let outcome = outcome?;
    let summary = summary(store, run_id).await?;
    let (state, code) = match &outcome {
        RunOutcome::Succeeded => ("succeeded", ExitCode::SUCCESS),
        RunOutcome::Failed { .. } => ("failed", ExitCode::from(EXIT_FAILED)),
        RunOutcome::Waiting { .. } => ("waiting-approval", ExitCode::from(EXIT_WAITING)),
        RunOutcome::Cancelled => ("cancelled", ExitCode::from(EXIT_FAILED)),
    };
    if display.json {
        let out = json!({
            "run_id": run_id,
            "outcome": state,
            "root_cause": match &outcome { RunOutcome::Failed { root_cause } => Some(root_cause), _ => None },
            "waiting_for": match &outcome { RunOutcome::Waiting { gates } => gates.clone(), _ => Vec::new() },
            "steps": summary,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&summary);
        match &outcome {
            RunOutcome::Succeeded => println!("run {run_id} succeeded"),
            RunOutcome::Failed { root_cause } => println!("run {run_id} failed: {root_cause}"),
            RunOutcome::Cancelled => println!("run {run_id} was cancelled"),
            RunOutcome::Waiting { gates } => {
                println!(
                    "run {run_id} is waiting for approval of {}",
                    gates.join(", ")
                );
                for gate in gates {
                    println!("  relo approve --run {run_id} --step {gate} --as NAME");
                }
                println!("  then: relo resume {run_id}");
            }
        }
    }
    Ok(code)
}

/// Per step in the workflow's order, from the store and the run's evidence: state,
/// attempts, fuel, peak memory, milliseconds, egress allowed and denied, secrets used,
/// and the error.
pub async fn summary(store: &Store, run_id: &str) -> anyhow::Result<Vec<Value>> {
    let mut steps = store.run_steps(run_id).await?;
    let order: Vec<String> = store
        .run(run_id)
        .await?
        .and_then(|run| run.workflow_text)
        .and_then(|text| relo_manifest::parse_workflow("workflow", text.as_bytes()).ok())
        .map(|workflow| {
            workflow
                .steps
                .iter()
                .map(|s| s.id.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    steps.sort_by_key(|step| order.iter().position(|id| id == &step.step_id));
    let entries = store.scope_entries(run_id, 0, 1_000_000).await?;
    let mut rows = Vec::new();
    for step in &steps {
        let mine = entries
            .iter()
            .filter(|e| e.step_id.as_deref() == Some(step.step_id.as_str()));
        let (mut fuel, mut memory, mut ms, mut allowed, mut denied) = (0u64, 0u64, 0u64, 0, 0);
        let mut secrets: Vec<String> = Vec::new();
        for entry in mine {
            let body: Value = serde_json::from_str(&entry.body).unwrap_or(Value::Null);
            match entry.kind.as_str() {
                "step.finished" => {
                    let usage = &body["usage"];
                    fuel += usage["fuel"].as_u64().unwrap_or(0);
                    memory = memory.max(usage["memory_peak_bytes"].as_u64().unwrap_or(0));
                    ms += usage["wall_ms"].as_u64().unwrap_or(0);
                }
                "egress.allowed" => allowed += 1,
                "egress.denied" | "egress.circuit-refused" => denied += 1,
                "secret.read" | "secret.injected" | "secret.revealed" => {
                    if let Some(name) = body["name"].as_str()
                        && !secrets.iter().any(|s| s == name)
                    {
                        secrets.push(name.to_owned());
                    }
                }
                _ => {}
            }
        }
        rows.push(json!({
            "id": step.step_id, "state": step.state, "attempt": step.attempt,
            "fuel": fuel, "memory_peak_bytes": memory, "wall_ms": ms,
            "egress_allowed": allowed, "egress_denied": denied, "secrets": secrets,
            "error": step.error,
            "output": step.output.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok()),
        }));
    }
    Ok(rows)
}

/// The step table of a run.
pub fn print_table(rows: &[Value]) {
    println!(
        "  {:<20} {:<10} {:>12} {:>9} {:>7} {:>7} {:>6}  secrets",
        "step", "status", "fuel", "memory", "ms", "egress", "denied"
    );
    for row in rows {
        let memory = row["memory_peak_bytes"].as_u64().unwrap_or(0);
        let secrets: Vec<&str> = row["secrets"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let number = |field: &str| row[field].as_u64().unwrap_or(0);
        println!(
            "  {:<20} {:<10} {:>12} {:>8}K {:>7} {:>7} {:>6}  {}",
            row["id"].as_str().unwrap_or(""),
            row["state"].as_str().unwrap_or(""),
            number("fuel"),
            memory / 1024,
            number("wall_ms"),
            number("egress_allowed"),
            number("egress_denied"),
            if secrets.is_empty() {
                "-".to_owned()
            } else {
                secrets.join(",")
            },
        );
        if let Some(error) = row["error"].as_str() {
            println!("  {:<20} {error}", "");
        }
    }
}

/// Human progress on stderr, or nothing with `--json`.
struct Display {
    json: bool,
}

impl Display {
    fn line(&self, text: String) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// Prints progress as it comes, until the runner goes away.
    fn follow(
        &self,
        mut progress: tokio::sync::mpsc::UnboundedReceiver<Progress>,
    ) -> tokio::task::JoinHandle<()> {
        let quiet = self.json;
        tokio::spawn(async move {
            while let Some(event) = progress.recv().await {
                if quiet {
                    continue;
                }
                let text = match event {
                    Progress::Queued { behind } => {
                        format!("  queued behind run {behind} (concurrency group)")
                    }
                    Progress::Resumed { finished } => format!(
                        "  {} finished step(s) are not run again: {}",
                        finished.len(),
                        finished.join(", ")
                    ),
                    Progress::StepStarted { step, attempt } if attempt > 1 => {
                        format!("  > {step}: attempt {attempt}")
                    }
                    Progress::StepStarted { step, .. } => format!("  > {step}"),
                    Progress::StepEnded {
                        step,
                        state,
                        detail,
                    } => match detail {
                        Some(detail) => format!("  {} {step}: {state}: {detail}", mark(state)),
                        None => format!("  {} {step}: {state}", mark(state)),
                    },
                    Progress::GateWaiting {
                        step,
                        approvals,
                        quorum,
                    } => format!("  ? {step}: waiting for approval ({approvals} of {quorum})"),
                };
                eprintln!("{text}");
            }
        })
    }
}

fn mark(state: &str) -> &'static str {
    match state {
        "succeeded" => "+",
        "skipped" => "-",
        _ => "x",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn params_are_read_as_the_local_run_reads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key.pub");
        std::fs::write(&file, "PUBLIC KEY\n").expect("write");
        let given = given_params(&[
            "image=sha256:abc".to_owned(),
            format!("key=@{}", file.display()),
            "empty=".to_owned(),
        ])
        .expect("parsed");
        assert_eq!(given["image"], "sha256:abc");
        assert_eq!(given["key"], "PUBLIC KEY\n");
        assert_eq!(given["empty"], "");
        let error = given_params(&["no-equals".to_owned()]).expect_err("refused");
        assert!(error.to_string().contains("expected NAME=VALUE"), "{error}");
    }

    #[test]
    fn run_ids_have_the_local_shape() {
        let id = new_run_id(UNIX_EPOCH + Duration::from_secs(1_795_472_000));
        let (seconds, hex) = id
            .strip_prefix("run-")
            .and_then(|rest| rest.split_once('-'))
            .expect("run-SECONDS-HEX");
        assert_eq!(seconds, "1795472000");
        assert_eq!(hex.len(), 8);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
