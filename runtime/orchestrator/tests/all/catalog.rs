//! The plugin catalog admits a signed, approved plugin and runs it; a block, a
//! revocation or a retired signer key made by another process refuses the next step of
//! a running one, with the refusal recorded.

use std::sync::Arc;

use relo_evidence::{EvidenceEvent, EvidenceRecord, MemorySink, Scope};
use relo_manifest::{OperatorConfig, PluginRef, parse_operator};
use relo_orchestrator::{CatalogError, PluginCatalog};
use relo_sandbox::{LoopbackOnly, Sandbox, SandboxConfig, StepContext, StepRequest};
use relo_store::Store;

use crate::support::{control, keys, register};

const CONFIG: &str = r#"
[[trust.signers]]
key = "keys/author.pub"
plugins = ["relo-test/*"]
person = "ivan"
retired = RETIRED

[[people]]
name = "olga"
keys = ["keys/olga.pub"]
roles = ["operator"]

[[people]]
name = "ivan"
keys = []
roles = ["plugin-author"]
"#;

const MANIFEST: &str = r#"
[plugin]
name = "relo-test/echo"
version = "1.0.0"

[limits]
timeout = "10s"
"#;

struct Fixture {
    home: tempfile::TempDir,
    store: Store,
    sandbox: Arc<Sandbox>,
    digest: String,
    approval_id: String,
}

fn config(retired: bool) -> OperatorConfig {
    let text = CONFIG.replace("RETIRED", if retired { "true" } else { "false" });
    parse_operator("relo.toml", text.as_bytes()).unwrap()
}

/// A home whose store holds the echo component, signed by ivan's author key and
/// approved by olga.
async fn fixture() -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let keys = keys(home.path());
    let store = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    let registered = register(
        &store,
        &config(false),
        home.path(),
        &keys,
        MANIFEST,
        relo_test_components::ECHO,
    )
    .await;
    let sandbox = Sandbox::new(SandboxConfig {
        address_filter: Arc::new(LoopbackOnly),
        ..SandboxConfig::default()
    })
    .unwrap();
    Fixture {
        home,
        store,
        sandbox: Arc::new(sandbox),
        digest: registered.digest,
        approval_id: registered.approval_id,
    }
}

async fn catalog(fixture: &Fixture, retired: bool) -> PluginCatalog {
    PluginCatalog::new(
        fixture.store.clone(),
        Arc::clone(&fixture.sandbox),
        config(retired),
        fixture.home.path(),
    )
    .await
    .unwrap()
}

/// Admits and runs one echo step; returns its output or the refusal's code, and the
/// evidence it recorded.
async fn step(
    fixture: &Fixture,
    catalog: &PluginCatalog,
) -> (Result<String, &'static str>, Vec<EvidenceRecord>) {
    let sink = Arc::new(MemorySink::new());
    let scope = Scope::Run("run-1".into());
    let admitted = match catalog.admit(&fixture.digest, sink.as_ref(), &scope).await {
        Ok(admitted) => admitted,
        Err(error) => return (Err(error.code()), sink.records()),
    };
    let outcome = fixture
        .sandbox
        .run(
            &admitted.plugin,
            StepRequest {
                context: StepContext {
                    run_id: "run-1".into(),
                    step_id: "echo".into(),
                    attempt: 1,
                },
                input: r#"{"hello":"world"}"#.into(),
                grant: Arc::clone(&admitted.grant),
                limits: admitted.limits,
                workspace: None,
                evidence: sink.clone(),
                credentials: Default::default(),
            },
        )
        .await;
    (Ok(outcome.result.expect("echo succeeds")), sink.records())
}

fn refusals(records: &[EvidenceRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|record| match &record.event {
            EvidenceEvent::PluginRefused { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_approved_plugin_runs_and_a_block_by_another_process_stops_the_next_step() {
    let fixture = fixture().await;
    let catalog = catalog(&fixture, false).await;

    let uses: PluginRef = "relo-test/echo@1.0.0".parse().unwrap();
    assert_eq!(catalog.resolve(&uses).await.unwrap(), fixture.digest);
    let by_digest: PluginRef = format!("relo-test/echo@sha256:{}", fixture.digest)
        .parse()
        .unwrap();
    assert_eq!(catalog.resolve(&by_digest).await.unwrap(), fixture.digest);
    let unknown: PluginRef = "relo-test/echo@9.9.9".parse().unwrap();
    assert!(matches!(
        catalog.resolve(&unknown).await,
        Err(CatalogError::UnknownPlugin(_))
    ));

    let (output, records) = step(&fixture, &catalog).await;
    let output: serde_json::Value = serde_json::from_str(&output.unwrap()).unwrap();
    assert_eq!(output["echo"], serde_json::json!({"hello": "world"}));
    assert!(refusals(&records).is_empty());

    // Another process (its own connection) blocks the digest while this one runs.
    let operator = Store::connect(fixture.home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    let blocked = EvidenceEvent::PluginBlocked {
        digest: fixture.digest.clone(),
        reason: "CVE-2026-0001".into(),
        by: "olga".into(),
    };
    assert!(
        operator
            .block(&fixture.digest, "CVE-2026-0001", "olga", &control(blocked))
            .await
            .unwrap()
    );

    let (output, records) = step(&fixture, &catalog).await;
    assert_eq!(output.unwrap_err(), "blocked");
    assert_eq!(refusals(&records), ["blocked"]);

    let control: Vec<String> = fixture
        .store
        .scope_entries("control", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.kind)
        .collect();
    assert_eq!(
        control,
        ["plugin.added", "approval.granted", "plugin.blocked"]
    );
}

#[tokio::test]
async fn a_revocation_by_another_process_stops_the_next_step() {
    let fixture = fixture().await;
    let catalog = catalog(&fixture, false).await;
    assert!(step(&fixture, &catalog).await.0.is_ok());

    let operator = Store::connect(fixture.home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    let revoked = EvidenceEvent::ApprovalRevoked {
        approval_id: fixture.approval_id.clone(),
        digest: fixture.digest.clone(),
        reason: "leaked token".into(),
        by: "olga".into(),
    };
    operator
        .revoke_approval(
            &fixture.approval_id,
            &fixture.digest,
            "leaked token",
            "olga",
            &control(revoked),
        )
        .await
        .unwrap();

    let (output, records) = step(&fixture, &catalog).await;
    assert_eq!(output.unwrap_err(), "revoked");
    assert_eq!(refusals(&records), ["revoked"]);
}

#[tokio::test]
async fn a_retired_signer_key_refuses_its_plugins_and_is_recorded_once() {
    let fixture = fixture().await;
    let catalog = catalog(&fixture, true).await;
    let (output, records) = step(&fixture, &catalog).await;
    assert_eq!(output.unwrap_err(), "revoked");
    assert_eq!(refusals(&records), ["revoked"]);
    // A second process starting with the same config does not record it again.
    let _again = self::catalog(&fixture, true).await;
    let retired = fixture
        .store
        .scope_entries("control", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == "signer.retired")
        .count();
    assert_eq!(retired, 1);
}

#[tokio::test]
async fn tampered_bytes_in_the_store_are_refused_before_compiling() {
    let fixture = fixture().await;
    // Someone with the database file replaces the component's bytes.
    sqlx_replace_bytes(&fixture).await;
    let catalog = catalog(&fixture, false).await;
    let (output, records) = step(&fixture, &catalog).await;
    assert_eq!(output.unwrap_err(), "digest-mismatch");
    assert_eq!(refusals(&records), ["digest-mismatch"]);
}

async fn sqlx_replace_bytes(fixture: &Fixture) {
    use sqlx::Connection as _;
    let path = fixture.home.path().join("relo.db");
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let changed = sqlx::query("UPDATE plugins SET bytes = X'0061736d0d000100' WHERE digest = $1")
        .bind(&fixture.digest)
        .execute(&mut connection)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
}
