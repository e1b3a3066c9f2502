//! Running workflows: outputs flow downstream through `${{ }}`, `if:` skips, a failed
//! step's dependents are skipped and the run fails naming the root cause, retries are
//! counted, and the run's evidence is bracketed and checkpointed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use relo_manifest::{OperatorConfig, parse_operator, parse_workflow};
use relo_orchestrator::{CredentialSource, PluginCatalog, RunOutcome, Runner};
use relo_sandbox::{LoopbackOnly, Sandbox, SandboxConfig};
use relo_store::{EvidenceWriter, Store, WriterOptions};
use relo_trust::{KeyAlgorithm, PrivateKey};
use serde_json::json;

use crate::support::{keys, register};

const CONFIG: &str = r#"
[[trust.signers]]
key = "keys/author.pub"
plugins = ["relo-test/*"]

[[people]]
name = "olga"
keys = ["keys/olga.pub"]
roles = ["operator"]
"#;

struct Setup {
    _home: tempfile::TempDir,
    store: Store,
    runner: Arc<Runner>,
}

/// A home whose store holds `relo-test/echo` and `relo-test/broken` (output-not-json),
/// signed and approved, and a runner over it.
async fn setup() -> Setup {
    let home = tempfile::tempdir().unwrap();
    let keys = keys(home.path());
    let config: OperatorConfig = parse_operator("relo.toml", CONFIG.as_bytes()).unwrap();
    let store = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    for (name, wasm) in [
        ("relo-test/echo", relo_test_components::ECHO),
        ("relo-test/broken", relo_test_components::OUTPUT_NOT_JSON),
    ] {
        let manifest = format!("[plugin]\nname = \"{name}\"\nversion = \"1.0.0\"\n");
        register(&store, &config, home.path(), &keys, &manifest, wasm).await;
    }
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            address_filter: Arc::new(LoopbackOnly),
            ..SandboxConfig::default()
        })
        .unwrap(),
    );
    let catalog = PluginCatalog::new(
        store.clone(),
        Arc::clone(&sandbox),
        config.clone(),
        home.path(),
    )
    .await
    .unwrap();
    let key = Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519));
    let origin = store.evidence_origin().await.unwrap();
    let writer = EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            checkpoints: Some(relo_store::CheckpointPolicy {
                every: 10_000,
                signer: key,
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
        credentials: CredentialSource::new(None, &config, BTreeMap::new()),
        evidence: Arc::new(writer),
        owner: "instance-test".into(),
        lease: Duration::from_secs(60),
        parallel: 4,
    });
    Setup {
        _home: home,
        store,
        runner,
    }
}

fn workflow(steps: &str) -> relo_manifest::Workflow {
    let text = format!(
        "apiVersion: relo.dev/v1\nkind: Workflow\nname: release\nparams:\n  version: {{ type: string }}\nsteps:\n{steps}"
    );
    parse_workflow("release.yaml", text.as_bytes()).unwrap()
}

fn params() -> BTreeMap<String, serde_json::Value> {
    [("version".to_owned(), json!("1.2.3"))].into()
}

async fn kinds(store: &Store, run: &str) -> Vec<String> {
    store
        .scope_entries(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_flow_downstream_and_conditions_skip() {
    let setup = setup().await;
    let wf = workflow(
        "  - id: first\n    uses: relo-test/echo@1.0.0\n    with: { version: \"${{ params.version }}\" }\n\
         \x20 - id: second\n    needs: [first]\n    uses: relo-test/echo@1.0.0\n    with: { tag: \"v${{ steps.first.outputs.echo.version }}\" }\n\
         \x20 - id: never\n    needs: [first]\n    if: \"${{ params.version == '9.9.9' }}\"\n    uses: relo-test/echo@1.0.0\n",
    );
    let outcome = setup
        .runner
        .run("run-1", &wf, params(), "rita", "{}")
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    let steps = setup.store.run_steps("run-1").await.unwrap();
    let by_id: BTreeMap<&str, &relo_store::StepRow> =
        steps.iter().map(|s| (s.step_id.as_str(), s)).collect();
    let second: serde_json::Value =
        serde_json::from_str(by_id["second"].output.as_deref().unwrap()).unwrap();
    assert_eq!(second["echo"], json!({"tag": "v1.2.3"}));
    assert_eq!(by_id["never"].state, "skipped");
    assert_eq!(
        setup.store.run_state("run-1").await.unwrap().as_deref(),
        Some("succeeded")
    );
    let kinds = kinds(&setup.store, "run-1").await;
    assert_eq!(kinds.first().map(String::as_str), Some("run.started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run.finished"));
    assert!(kinds.iter().any(|k| k == "step.skipped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_skips_its_dependents_and_names_the_root_cause_after_retries() {
    let setup = setup().await;
    let wf = workflow(
        "  - id: build\n    uses: relo-test/broken@1.0.0\n    retries: 2\n\
         \x20 - id: deploy\n    needs: [build]\n    uses: relo-test/echo@1.0.0\n\
         \x20 - id: lint\n    uses: relo-test/echo@1.0.0\n",
    );
    let outcome = setup
        .runner
        .run("run-2", &wf, params(), "rita", "{}")
        .await
        .unwrap();
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(root_cause.starts_with("build: "), "{root_cause}");
    assert!(root_cause.contains("attempt 3 of 3"), "{root_cause}");
    let steps = setup.store.run_steps("run-2").await.unwrap();
    let state = |id: &str| {
        steps
            .iter()
            .find(|s| s.step_id == id)
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(state("build"), "failed");
    assert_eq!(state("deploy"), "skipped");
    assert_eq!(state("lint"), "succeeded", "an independent step still runs");
    let starts = setup
        .store
        .scope_entries("run-2", 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "step.started" && e.step_id.as_deref() == Some("build"))
        .count();
    assert_eq!(starts, 3, "one step.started per attempt");
    assert_eq!(
        setup.store.run_state("run-2").await.unwrap().as_deref(),
        Some("failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_plugin_fails_its_step_with_the_refusal_and_gates_are_not_run_yet() {
    let setup = setup().await;
    let wf = workflow("  - id: ghost\n    uses: relo-test/ghost@1.0.0\n");
    let outcome = setup
        .runner
        .run("run-3", &wf, params(), "rita", "{}")
        .await
        .unwrap();
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(root_cause.contains("unknown-plugin"), "{root_cause}");

    let gated = workflow(
        "  - id: gate\n    approval: { roles: [operator], quorum: 1 }\n\
         \x20 - id: after\n    needs: [gate]\n    uses: relo-test/echo@1.0.0\n",
    );
    let error = setup
        .runner
        .run("run-4", &gated, params(), "rita", "{}")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("approval gate"), "{error}");
    assert_eq!(
        setup.store.run_state("run-4").await.unwrap(),
        None,
        "nothing was created"
    );
}

/// A step that outlives its lease (here: retries whose backoffs add up to three leases)
/// keeps it, because the runner renews it while the step is alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_its_lease_keeps_it() {
    let setup = setup().await;
    let short = Arc::new(Runner {
        store: setup.runner.store.clone(),
        catalog: Arc::clone(&setup.runner.catalog),
        sandbox: Arc::clone(&setup.runner.sandbox),
        credentials: setup.runner.credentials.clone(),
        evidence: Arc::clone(&setup.runner.evidence),
        owner: "short-lease".into(),
        lease: Duration::from_secs(1),
        parallel: 2,
    });
    // Six retries back off 0.1, 0.2, 0.4, 0.8 and 1.6 s: 3.1 s in all, the last wait
    // longer than the 1 s lease. Renewals every third of a second leave a loaded machine
    // two thirds of a second of slack.
    let wf = workflow("  - id: build\n    uses: relo-test/broken@1.0.0\n    retries: 6\n");
    let outcome = short
        .run("run-5", &wf, params(), "rita", "{}")
        .await
        .unwrap();
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(root_cause.contains("attempt 7 of 7"), "{root_cause}");
    let steps = setup.store.run_steps("run-5").await.unwrap();
    assert_eq!(steps[0].state, "failed");
    assert_eq!(steps[0].attempt, 1, "never taken over");
}
