//! No secret at rest: steps that read, reveal, log, print, panic with and return a
//! secret run with their evidence written to SQLite and to PostgreSQL; then the SQLite
//! files (database, WAL) and a `pg_dump` of the schema are searched for the value.

use std::sync::Arc;
use std::time::Duration;

use relo_evidence::{EvidenceSink, Scope};
use relo_manifest::parse_operator;
use relo_orchestrator::{CredentialSource, SecretBackend};
use relo_policy::{Grant, SecretGrant};
use relo_sandbox::{LoopbackOnly, Sandbox, SandboxConfig, StepContext, StepRequest};
use relo_secrets::FileProvider;
use relo_store::{EvidenceWriter, Store, WriterOptions};
use sqlx::Connection as _;

const VALUE: &str = "at-rest-canary-7f3e9a1c";

const CONFIG: &str = r#"
[secrets]
provider = "file"

[secrets.bindings."relo-test/leaky"]
forge_token = "demo/forge#token"
"#;

fn grant() -> Grant {
    let mut grant = Grant::deny_all();
    grant.declared_secrets.insert("forge_token".into());
    grant.secrets.insert(
        "forge_token".into(),
        SecretGrant {
            inject: Vec::new(),
            reveal: true,
        },
    );
    grant
}

/// Runs every leaking component once with its evidence going to `store`.
async fn run_leaky_steps(home: &std::path::Path, store: &Store) {
    let file = home.join("secrets.json");
    std::fs::write(
        &file,
        format!(r#"{{"demo/forge": {{"token": "{VALUE}"}}}}"#),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = parse_operator("relo.toml", CONFIG.as_bytes()).unwrap();
    let backend = SecretBackend::File(Arc::new(FileProvider::open(&file).unwrap()));
    let source = CredentialSource::new(Some(backend), &config, Default::default());
    let sandbox = Sandbox::new(SandboxConfig {
        address_filter: Arc::new(LoopbackOnly),
        ..SandboxConfig::default()
    })
    .unwrap();
    let writer = Arc::new(EvidenceWriter::spawn(
        store.clone(),
        WriterOptions::default(),
    ));
    let grant = Arc::new(grant());
    for (index, component) in [
        relo_test_components::SECRETS_LEAK_LOG,
        relo_test_components::SECRETS_LEAK_STDOUT,
        relo_test_components::SECRETS_LEAK_PANIC,
        relo_test_components::SECRETS_LEAK_OUTPUT,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = std::fs::read(component).unwrap();
        let plugin = sandbox
            .load(&bytes, writer.as_ref(), &Scope::Control)
            .unwrap();
        let issued = source
            .issue(
                "relo-test/leaky",
                &grant,
                Duration::from_secs(10),
                "at-rest",
            )
            .await
            .unwrap();
        let outcome = sandbox
            .run(
                &plugin,
                StepRequest {
                    context: StepContext {
                        run_id: "run-at-rest".into(),
                        step_id: format!("leak-{index}"),
                        attempt: 1,
                    },
                    input: "{}".into(),
                    grant: Arc::clone(&grant),
                    limits: relo_policy::Limits::default(),
                    workspace: None,
                    evidence: writer.clone() as Arc<dyn EvidenceSink>,
                    credentials: issued.credentials.clone(),
                },
            )
            .await;
        issued.finish().await;
        let text = format!("{:?}", outcome.result);
        assert!(!text.contains(VALUE), "{text}");
    }
    writer.checkpoint().await.ok();
    writer.close().await.unwrap();
}

fn assert_absent(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
        "the secret value is in {what}"
    );
}

#[tokio::test]
async fn no_secret_value_reaches_the_sqlite_files() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    run_leaky_steps(home.path(), &store).await;
    let entries = store.all_entries().await.unwrap();
    assert!(entries.iter().any(|e| e.kind == "secret.revealed"));
    assert!(entries.iter().any(|e| e.kind == "secret.leak-blocked"));
    store.close().await;
    let mut searched = 0;
    for name in ["relo.db", "relo.db-wal", "relo.db-shm"] {
        if let Ok(bytes) = std::fs::read(home.path().join(name)) {
            assert_absent(name, &bytes);
            searched += bytes.len();
        }
    }
    assert!(searched > 0);
}

#[tokio::test]
async fn no_secret_value_reaches_postgresql() {
    let Some(base) = relo_test_env::postgres_url() else {
        return;
    };
    let schema = format!("relo_at_rest_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let home = tempfile::tempdir().unwrap();
    let store = Store::connect(home.path(), &url).await.unwrap();
    run_leaky_steps(home.path(), &store).await;
    assert!(store.all_entries().await.unwrap().len() > 10);
    store.close().await;
    let dump = std::process::Command::new("pg_dump")
        .args(["--schema", &schema, &base])
        .output()
        .expect("pg_dump runs (Debian postgresql-client)");
    assert!(dump.status.success(), "{dump:?}");
    assert!(String::from_utf8_lossy(&dump.stdout).contains("secret.revealed"));
    assert_absent("the pg_dump", &dump.stdout);
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}
