//! `relo run WORKFLOW`: runs a workflow on this machine, with the request signed by the
//! requester's key, and prints each step's outcome.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use relo_orchestrator::{CredentialSource, PluginCatalog, RunOutcome, Runner, params};
use relo_sandbox::{Sandbox, SandboxConfig};
use relo_store::{CheckpointPolicy, EvidenceWriter, WriterOptions};
use relo_trust::{Envelope, KeyFileSigner, Signer as _, TrustPolicy, sha256_hex};
use serde_json::json;

use crate::args::{EXIT_FAILED, RunArgs};
use crate::home::{Home, read_parsed};
use crate::plugin::config;

/// The payload type of a signed run request.
const RUN_REQUEST_TYPE: &str = "application/vnd.relo.run-request+json";

/// Runs `relo run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let (workflow, bytes) = read_parsed(&args.workflow, relo_manifest::parse_workflow)?;
    let mut given = BTreeMap::new();
    for pair in &args.params {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--param {pair}: expected NAME=VALUE");
        };
        given.insert(name.to_owned(), value.to_owned());
    }
    let params = params::resolve(&workflow, &given).context("the run's parameters")?;
    let config = config(&home)?.clone();

    // The requester signs the request; the key must be theirs in [[people]].
    let policy =
        TrustPolicy::load(&config, &home.path).context("cannot load relo.toml's people")?;
    let key_path = match (&args.key, &args.as_person) {
        (Some(key), _) => key.clone(),
        (None, Some(name)) => home.path.join("keys").join(format!("{name}.key")),
        (None, None) => bail!(
            "name the requester with --as NAME (and --key FILE if the key is not keys/NAME.key)"
        ),
    };
    let signer = KeyFileSigner::load(&key_path)
        .with_context(|| format!("cannot load the requester's key {}", key_path.display()))?;
    let Some(person) = policy.person_with_key(signer.key_id()).map(str::to_owned) else {
        bail!(
            "key {} belongs to no person in [[people]]",
            key_path.display()
        );
    };
    if let Some(name) = &args.as_person
        && name != &person
    {
        bail!("--as {name}, but key {} is {person}'s", key_path.display());
    }
    let now = SystemTime::now();
    let run_id = format!(
        "run-{}-{}",
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        &sha256_hex(format!("{:?}{}", now, std::process::id()).as_bytes())[..8]
    );
    let request = json!({
        "run_id": run_id,
        "workflow": workflow.name.as_str(),
        "workflow_sha256": sha256_hex(&bytes),
        "params": params,
        "requested_by": person,
        "requested_at": relo_store::rfc3339_utc(now),
    });
    let envelope = Envelope::sign(RUN_REQUEST_TYPE, request.to_string(), &[&signer])
        .context("cannot sign the run request")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = home.store().await?;
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            cache_dir: Some(home.path.join("cache")),
            ..SandboxConfig::default()
        })?);
        let catalog = PluginCatalog::new(store.clone(), Arc::clone(&sandbox), config.clone(), &home.path)
            .await
            .context("cannot load the trust policy")?;
        let credentials = CredentialSource::from_config(&config, &home.path)
            .await
            .context("cannot set up secrets and signing keys")?;
        let origin = store.evidence_origin().await?;
        let evidence_key: Arc<dyn relo_trust::Signer> = Arc::from(home.evidence_signer()?);
        let writer = EvidenceWriter::spawn(
            store.clone(),
            WriterOptions {
                checkpoints: Some(CheckpointPolicy {
                    every: 10_000,
                    signer: evidence_key,
                    key_name: origin.clone(),
                    origin,
                }),
                ..WriterOptions::default()
            },
        );
        let runner = Arc::new(Runner {
            store: store.clone(),
            catalog: Arc::new(catalog),
            sandbox,
            credentials,
            evidence: Arc::new(writer),
            owner: format!("cli-{}", std::process::id()),
            lease: Duration::from_secs(300),
            parallel: args.parallel,
        });
        if !args.json {
            eprintln!("run {run_id} of {} requested by {person}", workflow.name);
        }
        let outcome = runner
            .run(&run_id, &workflow, params, &person, &envelope.to_json())
            .await?;
        let steps = store.run_steps(&run_id).await?;
        if args.json {
            let out = json!({
                "run_id": run_id,
                "outcome": match &outcome { RunOutcome::Succeeded => "succeeded", RunOutcome::Failed { .. } => "failed" },
                "root_cause": match &outcome { RunOutcome::Failed { root_cause } => Some(root_cause), RunOutcome::Succeeded => None },
                "steps": steps.iter().map(|s| json!({
                    "id": s.step_id, "state": s.state, "attempt": s.attempt,
                    "output": s.output.as_deref().and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok()),
                    "error": s.error,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            for step in &steps {
                println!(
                    "  {:<20} {:<10} attempt {}{}",
                    step.step_id,
                    step.state,
                    step.attempt,
                    step.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
                );
            }
            match &outcome {
                RunOutcome::Succeeded => println!("run {run_id} succeeded"),
                RunOutcome::Failed { root_cause } => println!("run {run_id} failed: {root_cause}"),
            }
        }
        store.close().await;
        Ok(match outcome {
            RunOutcome::Succeeded => ExitCode::SUCCESS,
            RunOutcome::Failed { .. } => ExitCode::from(EXIT_FAILED),
        })
    })
}
