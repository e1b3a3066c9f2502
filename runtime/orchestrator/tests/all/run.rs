//! Running workflows: outputs flow downstream through `${{ }}`, `if:` skips, a failed
//! step's dependents are skipped and the run fails naming the root cause, retries are
//! counted, the run's evidence is bracketed and checkpointed; approval gates wait for a
//! quorum of distinct people other than the requester; a run whose process died
//! continues without running finished steps again; concurrency groups queue or refuse;
//! the workspace is restored from the store (streamed in chunks, and refused if they
//! are not what was saved).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::Connection as _;

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink as _, Scope};
use relo_manifest::{OperatorConfig, parse_operator, parse_workflow};
use relo_orchestrator::{
    CredentialSource, GateApprovalPayload, PeopleError, PluginCatalog, RunError, RunOutcome,
    RunSpec, Runner, WorkspaceError, Workspaces,
};
use relo_sandbox::{LoopbackOnly, Sandbox, SandboxConfig};
use relo_store::{
    EvidenceWriter, GateApproval, Placed, SNAPSHOT_CHUNK_BYTES, SnapshotError, Store, StoreError,
    WriterOptions,
};
use relo_trust::{KeyAlgorithm, PrivateKey, TrustPolicy, sha256_hex};
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

[[people]]
name = "rita"
keys = ["keys/rita.pub"]
roles = ["release-manager"]

[[people]]
name = "max"
keys = ["keys/max.pub"]
roles = ["release-manager"]

[[people]]
name = "sam"
keys = ["keys/sam.pub"]
roles = ["release-manager"]
"#;

/// The release managers' keys, by name.
type Managers = BTreeMap<&'static str, PrivateKey>;

struct Setup {
    home: tempfile::TempDir,
    store: Store,
    runner: Arc<Runner>,
    managers: Managers,
    keys: crate::support::Keys,
}

/// A home whose store holds `relo-test/echo`, `relo-test/broken` (output-not-json),
/// `relo-test/sleeper` (timeout-busy), and with the read-write workspace
/// `relo-test/racer` (fs-symlink-race) and `relo-test/filler` (fs-fill), signed and
/// approved, and a runner over it.
async fn setup() -> Setup {
    let home = tempfile::tempdir().unwrap();
    let keys = keys(home.path());
    let mut managers = Managers::new();
    for name in ["rita", "max", "sam"] {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        std::fs::write(
            home.path().join(format!("keys/{name}.pub")),
            key.public_key().to_pem(),
        )
        .unwrap();
        managers.insert(name, key);
    }
    let config: OperatorConfig = parse_operator("relo.toml", CONFIG.as_bytes()).unwrap();
    let store = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    let read_write = "[filesystem]\nworkspace = \"read-write\"\n";
    for (name, wasm, extra) in [
        ("relo-test/echo", relo_test_components::ECHO, ""),
        (
            "relo-test/broken",
            relo_test_components::OUTPUT_NOT_JSON,
            "",
        ),
        ("relo-test/sleeper", relo_test_components::TIMEOUT_BUSY, ""),
        (
            "relo-test/racer",
            relo_test_components::FS_SYMLINK_RACE,
            read_write,
        ),
        (
            "relo-test/filler",
            relo_test_components::FS_FILL,
            read_write,
        ),
    ] {
        let manifest = format!("[plugin]\nname = \"{name}\"\nversion = \"1.0.0\"\n{extra}");
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
    // Sealed with the evidence key, as relo runs: every batch is covered by a seal.
    let store = store.sealed(relo_store::EvidenceSeal::with_key(key.clone(), &origin).unwrap());
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
        workspaces: Workspaces::new(home.path().join("workspaces")),
        progress: None,
        owner: "instance-test".into(),
        lease: Duration::from_secs(60),
        parallel: 4,
        max_active_runs: None,
    });
    Setup {
        home,
        store,
        runner,
        managers,
        keys,
    }
}

/// A workflow and its text.
struct Wf {
    workflow: relo_manifest::Workflow,
    text: String,
}

impl Wf {
    /// The run `run_id` of this workflow, requested by rita.
    fn spec<'a>(
        &'a self,
        run_id: &'a str,
        params: &'a BTreeMap<String, serde_json::Value>,
    ) -> RunSpec<'a> {
        RunSpec {
            run_id,
            workflow: &self.workflow,
            workflow_text: &self.text,
            params,
            requested_by: "rita",
            request: "{}",
            workspace: None,
        }
    }
}

fn workflow(steps: &str) -> Wf {
    workflow_with("", steps)
}

fn workflow_with(header: &str, steps: &str) -> Wf {
    let text = format!(
        "apiVersion: relo.dev/v1\nkind: Workflow\nname: release\nparams:\n  version: {{ type: string }}\n{header}steps:\n{steps}"
    );
    Wf {
        workflow: parse_workflow("release.yaml", text.as_bytes()).unwrap(),
        text,
    }
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
        .run(&wf.spec("run-1", &params()))
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
        .run(&wf.spec("run-2", &params()))
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
async fn an_unknown_plugin_fails_its_step_with_the_refusal() {
    let setup = setup().await;
    let wf = workflow("  - id: ghost\n    uses: relo-test/ghost@1.0.0\n");
    let outcome = setup
        .runner
        .run(&wf.spec("run-3", &params()))
        .await
        .unwrap();
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(root_cause.contains("unknown-plugin"), "{root_cause}");
}

/// A runner over the setup's store and sandbox, as the instance `owner` with `lease`.
fn with_lease(setup: &Setup, owner: &str, lease: Duration) -> Arc<Runner> {
    Arc::new(Runner {
        store: setup.runner.store.clone(),
        catalog: Arc::clone(&setup.runner.catalog),
        sandbox: Arc::clone(&setup.runner.sandbox),
        credentials: setup.runner.credentials.clone(),
        evidence: Arc::clone(&setup.runner.evidence),
        workspaces: setup.runner.workspaces.clone(),
        progress: None,
        owner: owner.into(),
        lease,
        parallel: 2,
        max_active_runs: None,
    })
}

/// An append that fails (here a trigger the test adds refuses the entries of one run)
/// fails the run waiting on it with `evidence-unavailable`; the evidence writer goes on,
/// and the next run in the same process succeeds with its evidence stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_evidence_append_fails_its_run_and_the_next_run_succeeds() {
    let setup = setup().await;
    let url = format!("sqlite://{}", setup.home.path().join("relo.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER test_poison BEFORE INSERT ON evidence_entries \
         WHEN NEW.body LIKE '%poisoned-version%' \
         BEGIN SELECT RAISE(ABORT, 'the test refuses this entry'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let wf = workflow("  - id: build\n    uses: relo-test/echo@1.0.0\n");
    let poisoned = [("version".to_owned(), json!("poisoned-version"))].into();
    let error = setup
        .runner
        .run(&wf.spec("run-poisoned", &poisoned))
        .await
        .unwrap_err();
    assert!(matches!(error, RunError::Evidence(_)), "{error:?}");
    assert!(
        error.to_string().contains("evidence unavailable"),
        "{error}"
    );

    let outcome = setup
        .runner
        .run(&wf.spec("run-after", &params()))
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Succeeded);
    let after = kinds(&setup.store, "run-after").await;
    assert!(after.iter().any(|k| k == "run.finished"), "{after:?}");
    assert!(kinds(&setup.store, "run-poisoned").await.is_empty());
}

/// A step that outlives its lease (here: retries whose backoffs add up to three leases)
/// keeps it, because the runner renews it while the step is alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_its_lease_keeps_it() {
    let setup = setup().await;
    let short = with_lease(&setup, "short-lease", Duration::from_secs(1));
    // Six retries back off 0.1, 0.2, 0.4, 0.8 and 1.6 s: 3.1 s in all, the last wait
    // longer than the 1 s lease. Renewals every third of a second leave a loaded machine
    // two thirds of a second of slack.
    let wf = workflow("  - id: build\n    uses: relo-test/broken@1.0.0\n    retries: 6\n");
    let outcome = short.run(&wf.spec("run-5", &params())).await.unwrap();
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(root_cause.contains("attempt 7 of 7"), "{root_cause}");
    let steps = setup.store.run_steps("run-5").await.unwrap();
    assert_eq!(steps[0].state, "failed");
    assert_eq!(steps[0].attempt, 1, "never taken over");
}

/// A runner that can no longer renew a step's lease (another instance took the step
/// over) stops the step at once instead of running it beside the new owner: the run's
/// driver ends with `lease-lost`, recorded as `step.lease-lost`, and the step's outcome
/// is never stored by the runner that lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_lease_is_lost_is_stopped_and_recorded() {
    let setup = setup().await;
    let losing = with_lease(&setup, "losing", Duration::from_millis(900));
    // The step sleeps until its 30 s timeout unless it is stopped.
    let wf =
        workflow("  - id: sleep\n    uses: relo-test/sleeper@1.0.0\n    with: { mode: sleep }\n");
    let path = setup.home.path().join("relo.db");
    // Another instance takes the step over behind the runner's back, once it is claimed.
    let thief = tokio::spawn(async move {
        let url = format!("sqlite://{}", path.display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let taken = sqlx::query(
                "UPDATE steps SET lease_owner = 'thief' \
                 WHERE run_id = 'run-lost' AND step_id = 'sleep' AND lease_owner = 'losing'",
            )
            .execute(&mut db)
            .await
            .unwrap()
            .rows_affected();
            if taken == 1 {
                return;
            }
        }
    });
    let error = losing
        .run(&wf.spec("run-lost", &params()))
        .await
        .unwrap_err();
    thief.await.unwrap();
    assert!(
        matches!(&error, RunError::LeaseLost { step, .. } if step == "sleep"),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("lease-lost"), "{error}");
    let kinds = kinds(&setup.store, "run-lost").await;
    assert!(kinds.iter().any(|k| k == "step.lease-lost"), "{kinds:?}");
    // Stopped by the runner, not left to run into its timeout.
    for absent in ["step.finished", "limit.exceeded"] {
        assert!(!kinds.iter().any(|k| k == absent), "{absent} in {kinds:?}");
    }
    let steps = setup.store.run_steps("run-lost").await.unwrap();
    assert_ne!(steps[0].state, "succeeded");
}

/// Signs `approver`'s approval of gate `step` of `run` and stores it with its evidence
/// entry, as `relo approve` does (but without the CLI's own checks: the runner must
/// refuse what does not count by itself).
async fn approve(setup: &Setup, wf: &Wf, run: &str, step: &str, approver: &str, key: &PrivateKey) {
    let payload = GateApprovalPayload {
        run_id: run.into(),
        step_id: step.into(),
        workflow_sha256: sha256_hex(wf.text.as_bytes()),
        approver: approver.into(),
        approved_at: "2026-11-23T00:00:00Z".into(),
    };
    let envelope = payload.sign(key).unwrap().to_json();
    store_approval(setup, run, step, approver, key.key_id(), envelope).await;
}

async fn store_approval(
    setup: &Setup,
    run: &str,
    step: &str,
    approver: &str,
    key_id: &str,
    envelope: String,
) {
    let record = EvidenceRecord::new(
        Scope::Run(run.into()),
        Some(step.into()),
        EvidenceEvent::GateApproved {
            approver: approver.into(),
            key_id: key_id.into(),
            approval_sha256: sha256_hex(envelope.as_bytes()),
        },
    );
    let row = GateApproval {
        run_id: run.into(),
        step_id: step.into(),
        approver: approver.into(),
        key_id: key_id.into(),
        envelope,
        approved_at: String::new(),
    };
    setup
        .store
        .add_gate_approval(&row, &record, SystemTime::now(), false)
        .await
        .unwrap();
}

/// The `code`s of the run's `gate.refused` entries.
async fn refusals(store: &Store, run: &str) -> Vec<String> {
    store
        .scope_entries(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "gate.refused")
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.body).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

const GATED: &str = "  - id: build\n    uses: relo-test/echo@1.0.0\n\
     \x20 - id: gate\n    needs: [build]\n    approval: { roles: [release-manager], quorum: 2 }\n\
     \x20 - id: deploy\n    needs: [gate]\n    uses: relo-test/echo@1.0.0\n    with: { by: \"${{ steps.gate.outputs.approved_by }}\" }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_waits_for_a_quorum_of_distinct_people_who_are_not_the_requester() {
    let setup = setup().await;
    let wf = workflow(GATED);
    let params = params();
    let spec = wf.spec("run-gate", &params);
    let waiting = RunOutcome::Waiting {
        gates: vec!["gate".into()],
    };
    assert_eq!(setup.runner.run(&spec).await.unwrap(), waiting);
    assert_eq!(
        setup.store.run_state("run-gate").await.unwrap().as_deref(),
        Some("waiting-approval")
    );

    // The requester, an operator without the role, and one manager: not a quorum.
    approve(
        &setup,
        &wf,
        "run-gate",
        "gate",
        "rita",
        &setup.managers["rita"],
    )
    .await;
    approve(&setup, &wf, "run-gate", "gate", "olga", &setup.keys.olga).await;
    approve(
        &setup,
        &wf,
        "run-gate",
        "gate",
        "max",
        &setup.managers["max"],
    )
    .await;
    assert_eq!(setup.runner.drive(&spec).await.unwrap(), waiting);
    let codes = refusals(&setup.store, "run-gate").await;
    assert!(
        codes.contains(&"separation-of-duties".to_owned()),
        "{codes:?}"
    );
    assert!(codes.contains(&"missing-role".to_owned()), "{codes:?}");

    approve(
        &setup,
        &wf,
        "run-gate",
        "gate",
        "sam",
        &setup.managers["sam"],
    )
    .await;
    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Succeeded
    );
    let steps = setup.store.run_steps("run-gate").await.unwrap();
    let by_id: BTreeMap<&str, &relo_store::StepRow> =
        steps.iter().map(|s| (s.step_id.as_str(), s)).collect();
    assert_eq!(
        by_id["build"].attempt, 1,
        "the finished step was not run again"
    );
    let deploy: serde_json::Value =
        serde_json::from_str(by_id["deploy"].output.as_deref().unwrap()).unwrap();
    assert_eq!(deploy["echo"]["by"], json!(["max", "sam"]));
    let kinds = kinds(&setup.store, "run-gate").await;
    for kind in [
        "gate.waiting",
        "gate.approved",
        "run.waiting",
        "run.resumed",
        "gate.passed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let builds = setup
        .store
        .scope_entries("run-gate", 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "step.started" && e.step_id.as_deref() == Some("build"))
        .count();
    assert_eq!(builds, 1, "one step.started for the finished step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_or_misplaced_approvals_are_refused_not_counted() {
    let setup = setup().await;
    let wf = workflow(&GATED.replace("quorum: 2", "quorum: 1"));
    let params = params();
    let spec = wf.spec("run-edit", &params);
    setup.runner.run(&spec).await.unwrap();

    // max's signed approval with its payload changed to name sam: the signature breaks.
    let payload = GateApprovalPayload {
        run_id: "run-edit".into(),
        step_id: "gate".into(),
        workflow_sha256: sha256_hex(wf.text.as_bytes()),
        approver: "max".into(),
        approved_at: "2026-11-23T00:00:00Z".into(),
    };
    let mut envelope = payload.sign(&setup.managers["max"]).unwrap();
    envelope.payload = String::from_utf8(envelope.payload)
        .unwrap()
        .replace("\"max\"", "\"sam\"")
        .into_bytes();
    store_approval(&setup, "run-edit", "gate", "sam", "x", envelope.to_json()).await;
    // A valid approval by sam, but of another run.
    let other = GateApprovalPayload {
        run_id: "run-other".into(),
        approver: "sam".into(),
        ..payload
    };
    let moved = other.sign(&setup.managers["sam"]).unwrap().to_json();
    store_approval(
        &setup,
        "run-edit",
        "gate",
        "max",
        setup.managers["sam"].key_id(),
        moved,
    )
    .await;

    let waiting = RunOutcome::Waiting {
        gates: vec!["gate".into()],
    };
    assert_eq!(setup.runner.drive(&spec).await.unwrap(), waiting);
    let codes = refusals(&setup.store, "run-edit").await;
    assert!(codes.contains(&"bad-signature".to_owned()), "{codes:?}");
    assert!(codes.contains(&"wrong-gate".to_owned()), "{codes:?}");
}

/// Moves the home's `[[people]]` into the store, as `relo serve` does at first start, and
/// opens the people directory.
async fn people_into_the_store(setup: &Setup) {
    let config = parse_operator("relo.toml", CONFIG.as_bytes()).unwrap();
    let policy = TrustPolicy::load(&config, setup.home.path()).unwrap();
    for person in policy.people() {
        let roles: Vec<String> = person.roles.iter().map(|r| r.as_str().to_owned()).collect();
        let user = relo_store::NewUser {
            name: &person.name,
            password_hash: "",
            roles: &roles,
        };
        setup
            .store
            .create_user(&user, SystemTime::now())
            .await
            .unwrap();
        admin_action(setup, "user.imported", &person.name, &roles.join(", ")).await;
        for key in &person.keys {
            add_key(setup, &person.name, &key.to_pem()).await;
        }
    }
    assert!(setup.store.open_people_directory().await.unwrap());
}

async fn add_key(setup: &Setup, person: &str, pem: &str) {
    let key = relo_trust::PublicKey::from_pem(pem).unwrap();
    let new = relo_store::NewPersonKey {
        user: person,
        key_id: key.key_id(),
        public_key: pem,
        added_by: "test",
    };
    setup
        .store
        .add_person_key(&new, SystemTime::now())
        .await
        .unwrap();
    admin_action(setup, "key.added", person, key.key_id()).await;
}

/// Records a change to the people in the control chain, as the server does (the
/// directory is checked against these entries).
async fn admin_action(setup: &Setup, action: &str, target: &str, detail: &str) {
    let event = EvidenceEvent::AdminAction {
        by: "test".into(),
        action: action.into(),
        target: target.into(),
        detail: Some(detail.into()),
    };
    setup
        .store
        .record(&EvidenceRecord::new(Scope::Control, None, event))
        .await
        .unwrap();
}

/// Sets the stored PEM of key `key_id` behind the store's back.
async fn edit_key_row(setup: &Setup, key_id: &str, pem: &str) {
    let url = format!("sqlite://{}", setup.home.path().join("relo.db").display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let edited = sqlx::query("UPDATE person_keys SET public_key = ? WHERE key_id = ?")
        .bind(pem)
        .bind(key_id)
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(edited.rows_affected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_people_live_in_the_store_its_keys_and_roles_decide_a_gate() {
    let setup = setup().await;
    let wf = workflow(&GATED.replace("quorum: 2", "quorum: 1"));
    let params = params();
    let spec = wf.spec("run-people", &params);
    let waiting = RunOutcome::Waiting {
        gates: vec!["gate".into()],
    };
    assert_eq!(setup.runner.run(&spec).await.unwrap(), waiting);
    people_into_the_store(&setup).await;

    // max is a release manager in relo.toml, an auditor in the store: the store wins.
    assert!(
        setup
            .store
            .set_user_roles("max", &["auditor".to_owned()])
            .await
            .unwrap()
    );
    admin_action(&setup, "user.roles-set", "max", "auditor").await;
    approve(
        &setup,
        &wf,
        "run-people",
        "gate",
        "max",
        &setup.managers["max"],
    )
    .await;
    // sam signs with a key relo.toml has never listed, added to the store.
    let new_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let new_pem = new_key.public_key().to_pem();
    add_key(&setup, "sam", &new_pem).await;
    approve(&setup, &wf, "run-people", "gate", "sam", &new_key).await;

    // An edited key row (olga's id, another key) makes every check fail, not pass.
    let olga = setup.keys.olga.key_id().to_owned();
    edit_key_row(&setup, &olga, &new_pem).await;
    let people = setup.runner.catalog.people();
    let err = people.policy().await.unwrap_err();
    assert!(
        matches!(&err, PeopleError::BadKey { person, key_id, .. } if person == "olga" && *key_id == olga),
        "{err}"
    );
    assert!(matches!(
        setup.runner.drive(&spec).await,
        Err(RunError::People(PeopleError::BadKey { .. }))
    ));
    edit_key_row(&setup, &olga, &setup.keys.olga.public_key().to_pem()).await;

    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Succeeded
    );
    assert!(
        refusals(&setup.store, "run-people")
            .await
            .contains(&"missing-role".to_owned())
    );
    let steps = setup.store.run_steps("run-people").await.unwrap();
    let deploy = steps.iter().find(|s| s.step_id == "deploy").unwrap();
    let output: serde_json::Value =
        serde_json::from_str(deploy.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["echo"]["by"], json!(["sam"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_instance_died_continues_without_rerunning_finished_steps() {
    let setup = setup().await;
    let wf = workflow(
        "  - id: first\n    uses: relo-test/echo@1.0.0\n    with: { v: \"${{ params.version }}\" }\n\
         \x20 - id: second\n    needs: [first]\n    uses: relo-test/echo@1.0.0\n    with: { from: \"${{ steps.first.outputs.echo.v }}\" }\n",
    );
    let params = params();
    let spec = wf.spec("run-crash", &params);
    setup.runner.start(&spec).await.unwrap();
    // A dead instance finished `first` and was running `second` when it died.
    let now = SystemTime::now();
    let lease = Duration::from_secs(600);
    setup
        .store
        .set_run_state("run-crash", "running", now)
        .await
        .unwrap();
    setup
        .store
        .claim_step("run-crash", "first", "dead", lease, now)
        .await
        .unwrap()
        .unwrap();
    setup
        .store
        .finish_step(
            "run-crash",
            "first",
            "dead",
            relo_store::StepEnd::Succeeded,
            Some(r#"{"echo":{"v":"from-the-dead"}}"#),
            None,
            now,
        )
        .await
        .unwrap();
    // It recorded that end first, as every instance does (an end without its evidence is
    // refused as state-tampered when the run is taken up).
    let ticket = setup.runner.evidence.enqueue(EvidenceRecord::new(
        Scope::Run("run-crash".into()),
        Some("first".into()),
        EvidenceEvent::StepFinished {
            outcome: "succeeded".into(),
            usage: relo_evidence::StepUsage::default(),
            output_sha256: Some(sha256_hex(br#"{"echo":{"v":"from-the-dead"}}"#)),
        },
    ));
    setup.runner.evidence.durable(ticket).await.unwrap();
    setup
        .store
        .claim_step("run-crash", "second", "dead", lease, now)
        .await
        .unwrap()
        .unwrap();

    // Its lease has not expired: the step is not taken.
    let error = setup.runner.drive(&spec).await.unwrap_err();
    assert!(
        error.to_string().contains("held by another instance"),
        "{error}"
    );
    // Once the dead owner's leases are released, the run continues.
    let released = setup
        .store
        .release_leases("run-crash", "dead")
        .await
        .unwrap();
    assert_eq!(released, vec!["second".to_owned()]);
    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Succeeded
    );
    let steps = setup.store.run_steps("run-crash").await.unwrap();
    assert_eq!(steps[0].attempt, 1, "first ran once");
    assert_eq!(steps[1].attempt, 2, "second was taken over");
    let second: serde_json::Value =
        serde_json::from_str(steps[1].output.as_deref().unwrap()).unwrap();
    assert_eq!(
        second["echo"]["from"], "from-the-dead",
        "the stored output fed it"
    );
    let kinds = kinds(&setup.store, "run-crash").await;
    assert!(kinds.iter().any(|k| k == "run.resumed"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_group_refuses_or_queues_a_second_run() {
    let setup = setup().await;
    let header = |on_conflict: &str| {
        format!(
            "concurrency: {{ group: \"release-${{{{ params.version }}}}\", on_conflict: {on_conflict} }}\n"
        )
    };
    let gate = "  - id: gate\n    approval: { roles: [release-manager], quorum: 1 }\n";
    let first = workflow_with(&header("wait"), gate);
    let params = params();
    let spec = first.spec("run-a", &params);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));

    let refusing = workflow_with(
        &header("refuse"),
        "  - id: x\n    uses: relo-test/echo@1.0.0\n",
    );
    let error = setup
        .runner
        .start(&refusing.spec("run-b", &params))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RunError::Store(StoreError::GroupBusy { group, run_id })
            if group == "release-1.2.3" && run_id == "run-a"),
        "{error}"
    );
    assert_eq!(
        setup.store.run_state("run-b").await.unwrap(),
        None,
        "nothing was created"
    );

    let waiting = workflow_with(
        &header("wait"),
        "  - id: x\n    uses: relo-test/echo@1.0.0\n",
    );
    let queued_spec = waiting.spec("run-c", &params);
    assert_eq!(
        setup.runner.start(&queued_spec).await.unwrap(),
        Placed::Queued {
            behind: "run-a".into()
        }
    );
    let runner = Arc::clone(&setup.runner);
    let (text, wf) = (waiting.text.clone(), waiting.workflow.clone());
    let queued = tokio::spawn(async move {
        let params = self::params();
        let spec = RunSpec {
            run_id: "run-c",
            workflow: &wf,
            workflow_text: &text,
            params: &params,
            requested_by: "rita",
            request: "{}",
            workspace: None,
        };
        runner.drive(&spec).await
    });
    // However long it waits, it stays queued while run-a holds the group.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        setup.store.run_state("run-c").await.unwrap().as_deref(),
        Some("queued")
    );
    assert!(!queued.is_finished());

    approve(
        &setup,
        &first,
        "run-a",
        "gate",
        "max",
        &setup.managers["max"],
    )
    .await;
    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Succeeded
    );
    assert_eq!(queued.await.unwrap().unwrap(), RunOutcome::Succeeded);
}

/// Two read-write steps in one wave: one swaps `data` between a file and a link toward
/// a secret outside the workspace while the other finishes and its snapshot is taken.
/// Whatever the timing, the orchestrator survives, and no snapshot it stores holds what
/// the link points to: a snapshot that meets the link, or a file mid-swap, is refused
/// (`workspace-entry-refused`, recorded as `workspace.refused`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_in_during_a_snapshot_never_copies_its_target() {
    let setup = setup().await;
    // The link `data` -> `../../secret` from workspaces/RUN/ reaches the home's `secret`.
    std::fs::write(setup.home.path().join("secret"), "TOP-SECRET-CONTENT").unwrap();
    let source = setup.home.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("VERSION"), "1.2.3\n").unwrap();
    let wf = workflow(
        "  - id: race\n    uses: relo-test/racer@1.0.0\n    with: { rounds: 4000, end_as_file: true }\n\
         \x20 - id: quick\n    uses: relo-test/filler@1.0.0\n    with: { files: 1, bytes: 10 }\n",
    );
    let params = params();
    let mut spec = wf.spec("run-race", &params);
    spec.workspace = Some(&source);
    let outcome = setup
        .runner
        .run(&spec)
        .await
        .expect("the orchestrator survives");
    let steps = setup.store.run_steps("run-race").await.unwrap();
    for step in &steps {
        if step.state == "failed" {
            let error = step.error.as_deref().unwrap_or_default();
            assert!(
                error.contains("workspace-entry-refused"),
                "{}: {error}",
                step.step_id
            );
        }
    }
    // Each refusal is recorded: by the sandbox's measure after the step (the outcome of
    // `step.finished`) or by the snapshot (`workspace.refused`).
    let entries = setup
        .store
        .scope_entries("run-race", 0, 1000)
        .await
        .unwrap();
    let recorded = entries
        .iter()
        .filter(|e| {
            e.kind == "workspace.refused"
                || (e.kind == "step.finished" && e.body.contains("workspace-entry-refused"))
        })
        .count();
    let failed = steps.iter().filter(|s| s.state == "failed").count();
    assert!(
        recorded >= failed,
        "{failed} failed, {recorded} recorded: {outcome:?}"
    );
    for snapshot in setup.store.run_snapshots("run-race").await.unwrap() {
        let bytes = stored_archive(&setup.store, "run-race", &snapshot.digest).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("TOP-SECRET-CONTENT"),
            "snapshot {} holds the secret",
            snapshot.digest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_is_restored_from_the_store_and_removed_at_the_end() {
    let setup = setup().await;
    let source = setup.home.path().join("source");
    std::fs::create_dir_all(source.join("deploy")).unwrap();
    std::fs::write(source.join("VERSION"), "1.2.3\n").unwrap();
    std::fs::write(source.join("deploy/values.yaml"), "image: a:1\n").unwrap();
    let wf = workflow(
        "  - id: gate\n    approval: { roles: [release-manager], quorum: 1 }\n\
         \x20 - id: after\n    needs: [gate]\n    uses: relo-test/echo@1.0.0\n",
    );
    let params = params();
    let mut spec = wf.spec("run-ws", &params);
    spec.workspace = Some(&source);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    let dir = setup.runner.workspaces.dir("run-ws");
    assert_eq!(
        std::fs::read_to_string(dir.join("VERSION")).unwrap(),
        "1.2.3\n"
    );
    let snapshots = setup.store.run_snapshots("run-ws").await.unwrap();
    assert_eq!(snapshots.len(), 1);

    // Another machine continues the run: it has no local copy.
    std::fs::remove_dir_all(&dir).unwrap();
    approve(&setup, &wf, "run-ws", "gate", "max", &setup.managers["max"]).await;
    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Succeeded
    );
    let kinds = kinds(&setup.store, "run-ws").await;
    assert!(kinds.iter().any(|k| k == "workspace.restored"), "{kinds:?}");
    assert!(!dir.exists(), "the workspace is removed when the run ends");
    assert_eq!(
        sha256_hex(&stored_archive(&setup.store, "run-ws", &snapshots[0].digest).await),
        snapshots[0].digest,
        "the snapshot stays with the run"
    );
}

/// The stored archive `digest` of `run`, read chunk by chunk and verified by the store.
async fn stored_archive(store: &Store, run: &str, digest: &str) -> Vec<u8> {
    let mut reader = store.open_snapshot(run, digest).await.unwrap().unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// A source folder holding `big.bin`, larger than two snapshot chunks, and `VERSION`.
fn big_source(setup: &Setup) -> (std::path::PathBuf, Vec<u8>) {
    let source = setup.home.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    let big: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 2 + 4096)
        .map(|i| (i % 253) as u8)
        .collect();
    std::fs::write(source.join("big.bin"), &big).unwrap();
    std::fs::write(source.join("VERSION"), "1.2.3\n").unwrap();
    (source, big)
}

const TWO_GATES: &str = "  - id: first\n    approval: { roles: [release-manager], quorum: 1 }\n\
     \x20 - id: build\n    needs: [first]\n    uses: relo-test/echo@1.0.0\n\
     \x20 - id: second\n    needs: [build]\n    approval: { roles: [release-manager], quorum: 1 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_of_several_chunks_survives_a_takeover() {
    let setup = setup().await;
    let (source, big) = big_source(&setup);
    let wf = workflow(TWO_GATES);
    let params = params();
    let mut spec = wf.spec("run-big", &params);
    spec.workspace = Some(&source);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    let snapshots = setup.store.run_snapshots("run-big").await.unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].chunks, 3, "{:?}", snapshots[0]);

    // Another machine continues the run: it has no local copy.
    let dir = setup.runner.workspaces.dir("run-big");
    std::fs::remove_dir_all(&dir).unwrap();
    approve(
        &setup,
        &wf,
        "run-big",
        "first",
        "max",
        &setup.managers["max"],
    )
    .await;
    assert!(matches!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_to_string(dir.join("VERSION")).unwrap(),
        "1.2.3\n"
    );
    let kinds = kinds(&setup.store, "run-big").await;
    assert!(kinds.iter().any(|k| k == "workspace.restored"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_snapshot_is_refused_and_its_workspace_not_left_to_use() {
    let setup = setup().await;
    let (source, _) = big_source(&setup);
    let wf = workflow(TWO_GATES);
    let params = params();
    let mut spec = wf.spec("run-bad", &params);
    spec.workspace = Some(&source);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    let dir = setup.runner.workspaces.dir("run-bad");
    std::fs::remove_dir_all(&dir).unwrap();
    // The first chunk becomes a copy of the second: the same length, other bytes.
    let url = format!("sqlite://{}", setup.home.path().join("relo.db").display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tampered = sqlx::query(
        "UPDATE snapshot_chunks SET bytes = (SELECT bytes FROM snapshot_chunks WHERE chunk = 1)
         WHERE run_id = 'run-bad' AND chunk = 0",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    assert_eq!(tampered.rows_affected(), 1);

    approve(
        &setup,
        &wf,
        "run-bad",
        "first",
        "max",
        &setup.managers["max"],
    )
    .await;
    let error = setup.runner.drive(&spec).await.unwrap_err();
    assert!(
        matches!(
            &error,
            RunError::Workspace(WorkspaceError::Store(SnapshotError::Tampered { .. }))
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("snapshot-tampered"),
        "{error}"
    );
    assert!(!dir.exists(), "the unverified workspace is removed");
    let steps = setup.store.run_steps("run-bad").await.unwrap();
    assert!(
        steps
            .iter()
            .all(|s| s.step_id != "build" || s.state == "pending"),
        "no step ran on it: {steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_starts_no_further_step_and_frees_its_group() {
    let setup = setup().await;
    let header = "concurrency: { group: release, on_conflict: wait }\n";
    let wf = workflow_with(header, GATED);
    let params = params();
    let spec = wf.spec("run-x", &params);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    let next = wf.spec("run-y", &params);
    assert!(matches!(
        setup.runner.start(&next).await.unwrap(),
        Placed::Queued { .. }
    ));

    setup
        .store
        .set_run_state("run-x", "cancelled", SystemTime::now())
        .await
        .unwrap();
    approve(&setup, &wf, "run-x", "gate", "max", &setup.managers["max"]).await;
    approve(&setup, &wf, "run-x", "gate", "sam", &setup.managers["sam"]).await;
    assert_eq!(
        setup.runner.drive(&spec).await.unwrap(),
        RunOutcome::Cancelled
    );
    let deploy = setup.store.run_steps("run-x").await.unwrap();
    assert!(
        deploy
            .iter()
            .all(|s| s.step_id != "deploy" || s.state == "pending"),
        "{deploy:?}"
    );
    // The next run of the group gets its turn, and waits at its own gate.
    assert!(matches!(
        setup.runner.drive(&next).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_without_its_quorum_by_its_timeout_fails_the_run() {
    let setup = setup().await;
    let wf = workflow(
        "  - id: gate\n    approval: { roles: [release-manager], quorum: 1 }\n    timeout: 1s\n\
         \x20 - id: deploy\n    needs: [gate]\n    uses: relo-test/echo@1.0.0\n",
    );
    let params = params();
    let spec = wf.spec("run-late", &params);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    // Only the order matters: the next decision comes after the gate's timeout.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let RunOutcome::Failed { root_cause } = setup.runner.drive(&spec).await.unwrap() else {
        panic!("the gate should have timed out")
    };
    assert_eq!(
        root_cause,
        "gate: 0 of 1 approvals within its timeout of 1s"
    );
    let steps = setup.store.run_steps("run-late").await.unwrap();
    assert_eq!(steps[0].state, "skipped", "{steps:?}");
}

/// A connection to the test home's database that bypasses relo-store, with the guard
/// against UPDATE of evidence entries lifted, as whoever holds the database can.
async fn tamperer(setup: &Setup) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", setup.home.path().join("relo.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER evidence_entries_no_update")
        .execute(&mut db)
        .await
        .unwrap();
    db
}

/// Asserts that the run failed as `state-tampered` (its cause containing `words`),
/// recorded in the control chain, and that deploy never started.
async fn assert_state_tampered(setup: &Setup, run: &str, outcome: RunOutcome, words: &str) {
    let RunOutcome::Failed { root_cause } = outcome else {
        panic!("not failed: {outcome:?}");
    };
    assert!(root_cause.starts_with("state-tampered: "), "{root_cause}");
    assert!(root_cause.contains(words), "`{words}` not in: {root_cause}");
    assert_eq!(
        setup.store.run_state(run).await.unwrap().as_deref(),
        Some("failed")
    );
    let control = kinds(&setup.store, &Scope::Control.to_string()).await;
    assert!(control.iter().any(|k| k == "state.tampered"), "{control:?}");
    let started = setup
        .store
        .scope_entries(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "step.started")
        .filter_map(|e| e.step_id)
        .collect::<Vec<_>>();
    assert_eq!(started, ["build"], "only build ever started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_row_set_to_succeeded_is_state_tampered_and_deploy_never_runs() {
    let setup = setup().await;
    let wf = workflow(GATED);
    let params = params();
    let spec = wf.spec("run-forged-gate", &params);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    // No approval was given: the attacker marks the gate passed in its row.
    let mut db = tamperer(&setup).await;
    sqlx::query(
        "UPDATE steps SET state = 'succeeded', output = '{\"approved_by\":[\"max\",\"sam\"]}' \
         WHERE run_id = 'run-forged-gate' AND step_id = 'gate'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let outcome = setup.runner.drive(&spec).await.unwrap();
    assert_state_tampered(&setup, "run-forged-gate", outcome, "step gate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_output_with_a_forged_step_finished_entry_is_state_tampered() {
    let setup = setup().await;
    let wf = workflow(GATED);
    let params = params();
    let spec = wf.spec("run-forged-output", &params);
    assert!(matches!(
        setup.runner.run(&spec).await.unwrap(),
        RunOutcome::Waiting { .. }
    ));
    // The attacker replaces build's output, and rewrites its `step.finished` entry to
    // record the new output's sha256, rehashing and relinking the rest of the run's
    // chain consistently: the chain verifies; only the batch seals can tell.
    let forged = r#"{"echo":{"version":"6.6.6"}}"#;
    let mut db = tamperer(&setup).await;
    sqlx::query(
        "UPDATE steps SET output = $1 WHERE run_id = 'run-forged-output' AND step_id = 'build'",
    )
    .bind(forged)
    .execute(&mut db)
    .await
    .unwrap();
    let chain = setup
        .store
        .scope_entries("run-forged-output", 0, 1000)
        .await
        .unwrap();
    let at = chain
        .iter()
        .position(|e| e.kind == "step.finished" && e.step_id.as_deref() == Some("build"))
        .unwrap();
    let mut prev_hash = chain[at].prev_hash.clone();
    for (index, entry) in chain.iter().enumerate().skip(at) {
        let mut rewritten = entry.clone();
        if index == at {
            let mut body: serde_json::Value = serde_json::from_str(&entry.body).unwrap();
            body["output_sha256"] = json!(sha256_hex(forged.as_bytes()));
            rewritten.body = body.to_string();
        }
        rewritten.prev_hash = prev_hash;
        rewritten.hash = hex::encode(relo_store::entry_hash(&rewritten.to_hash()).unwrap());
        sqlx::query(
            "UPDATE evidence_entries SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
        )
        .bind(&rewritten.body)
        .bind(&rewritten.prev_hash)
        .bind(&rewritten.hash)
        .bind(i64::try_from(rewritten.seq).unwrap())
        .execute(&mut db)
        .await
        .unwrap();
        prev_hash = rewritten.hash;
    }
    let outcome = setup.runner.drive(&spec).await.unwrap();
    assert_state_tampered(&setup, "run-forged-output", outcome, "signed the root").await;
}
