//! The tables, the append-only triggers and the migrations.

use relo_store::{CheckpointDraft, Store, StoreError};

use crate::support::{Backend, TestDb, all_entries, backend_tests, draft, hash};

async fn evidence_and_checkpoints_refuse_update_delete_and_truncate(db: TestDb) {
    let store = db.store().await;
    store
        .append(&[draft("run", "1"), draft("run", "2")], &hash)
        .await
        .expect("append");
    store
        .append_checkpoint(
            &hash,
            |_| true,
            |basis| {
                Ok(CheckpointDraft {
                    root: basis.frontier.root(),
                    note: "note".into(),
                    key_id: "key".into(),
                })
            },
        )
        .await
        .expect("checkpoint");
    let before = all_entries(&store).await;
    let checkpoints_before = store.checkpoints().await.expect("checkpoints");

    let mut raw = db.raw().await;
    let mut statements = vec![
        (
            "evidence_entries",
            "UPDATE evidence_entries SET body = '{}' WHERE seq = 1",
        ),
        (
            "evidence_entries",
            "UPDATE evidence_entries SET seq = seq + 10",
        ),
        (
            "evidence_entries",
            "DELETE FROM evidence_entries WHERE seq = 2",
        ),
        ("evidence_entries", "DELETE FROM evidence_entries"),
        ("checkpoints", "UPDATE checkpoints SET size = 1"),
        ("checkpoints", "DELETE FROM checkpoints"),
    ];
    if db.backend == Backend::Postgres {
        statements.push(("evidence_entries", "TRUNCATE evidence_entries"));
        statements.push(("checkpoints", "TRUNCATE checkpoints"));
    }
    for (table, sql) in statements {
        let err = raw.execute(sql).await.expect_err(sql);
        assert!(
            err.contains(&format!("{table} is append-only")),
            "{sql} was refused for another reason: {err}"
        );
    }
    assert_eq!(all_entries(&store).await, before);
    assert_eq!(
        store.checkpoints().await.expect("checkpoints"),
        checkpoints_before
    );
}

async fn plugins_approvals_and_revocations_hold_their_rows(db: TestDb) {
    let _store = db.store().await;
    let mut raw = db.raw().await;
    let digest = "ab".repeat(32);
    let bytes = b"\0asm\x0d\0\x01\0 and some bytes \xff".to_vec();
    raw.insert_plugin(&digest, "acme/tag", &bytes).await;
    assert_eq!(raw.plugin_bytes(&digest).await, bytes);

    raw.execute(&format!(
        "INSERT INTO approvals (id, digest, approved_by, document, created_at)
         VALUES ('ap-1', '{digest}', 'olga', '{{}}', '2026-01-01T00:00:00.000000000Z')"
    ))
    .await
    .expect("approval");
    raw.execute(&format!(
        "INSERT INTO revocations (digest, approval_id, reason, revoked_by, revoked_at)
         VALUES ('{digest}', 'ap-1', 'leaked key', 'olga', '2026-01-02T00:00:00.000000000Z')"
    ))
    .await
    .expect("revocation");
    for (table, sql) in [
        ("approvals", "UPDATE approvals SET approved_by = 'mallory'"),
        ("approvals", "DELETE FROM approvals"),
        ("revocations", "DELETE FROM revocations"),
        ("revocations", "UPDATE revocations SET reason = 'none'"),
    ] {
        let err = raw.execute(sql).await.expect_err(sql);
        assert!(
            err.contains(&format!("{table} is append-only")),
            "{sql}: {err}"
        );
    }

    // An approval must name a stored plugin (foreign keys are on).
    let err = raw
        .execute(
            "INSERT INTO approvals (id, digest, approved_by, document, created_at)
             VALUES ('ap-2', 'unknown', 'olga', '{}', 'now')",
        )
        .await
        .expect_err("dangling approval");
    assert!(err.to_lowercase().contains("foreign key"), "{err}");

    // Runs and steps are ordinary, updatable state.
    raw.execute(
        "INSERT INTO runs (id, workflow, state, requested_by, request, created_at, updated_at)
         VALUES ('run-1', 'release', 'running', 'ivan', '{}', 't', 't')",
    )
    .await
    .expect("run");
    raw.execute(
        "INSERT INTO steps (run_id, step_id, state, attempt, lease_owner, lease_expires_at)
         VALUES ('run-1', 'tag', 'claimed', 1, 'instance-a', '2026-01-01T00:00:30.000000000Z')",
    )
    .await
    .expect("step");
    let updated = raw
        .execute("UPDATE steps SET state = 'succeeded', output = '{}' WHERE run_id = 'run-1'")
        .await
        .expect("update step");
    assert_eq!(updated, 1);
    raw.execute(&format!(
        "INSERT INTO blocks (digest, reason, blocked_by, blocked_at) VALUES ('{digest}', 'cve', 'olga', 't')"
    ))
    .await
    .expect("block");
    assert_eq!(raw.execute("DELETE FROM blocks").await.expect("unblock"), 1);
}

async fn migrations_run_once_and_a_newer_schema_is_refused(db: TestDb) {
    let store = db.store().await;
    assert_eq!(store.schema_version().await.expect("version"), 11);
    store.close().await;
    let again = db.store().await;
    assert_eq!(again.schema_version().await.expect("version"), 11);
    let mut raw = db.raw().await;
    assert_eq!(
        raw.scalar("SELECT COUNT(*) FROM relo_schema_migrations")
            .await,
        11
    );

    raw.execute(
        "INSERT INTO relo_schema_migrations (version, name, applied_at) VALUES (99, 'future', 't')",
    )
    .await
    .expect("pretend a newer relo migrated");
    let err = Store::connect(db.home.path(), &db.url)
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 11
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade relo"), "{err}");
}

backend_tests!(
    evidence_and_checkpoints_refuse_update_delete_and_truncate,
    plugins_approvals_and_revocations_hold_their_rows,
    migrations_run_once_and_a_newer_schema_is_refused,
);
