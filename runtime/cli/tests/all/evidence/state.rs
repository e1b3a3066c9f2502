//! `relo evidence verify` against rows a database writer changed without touching the
//! log: a checkpoint row whose columns no longer say what its signed note says, and runs
//! and steps that disagree with the evidence that recorded them. Each test drives a real
//! run of the reference release (the official plugins, the demo's stand-ins) to its
//! approval gate and on to its end, on SQLite and on PostgreSQL.

use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::support::{Backend, PgSchema, Raw, assert_tampering, describe, fresh_schema};
use crate::release::{Release, ok};

/// A release run on one backend, and what tampering with its database needs.
struct RunDb {
    release: Release,
    backend: Backend,
    url: Option<String>,
    runtime: tokio::runtime::Runtime,
    _schema: Option<PgSchema>,
}

impl RunDb {
    /// A release home on `backend`, or `None` when PostgreSQL is skipped.
    fn new(backend: Backend) -> Option<RunDb> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (url, schema) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (url, schema) = runtime.block_on(fresh_schema())?;
                (Some(url), Some(schema))
            }
        };
        Some(RunDb {
            release: Release::with_database(url.clone()),
            backend,
            url,
            runtime,
            _schema: schema,
        })
    }

    /// Runs the release up to its approval gate; returns the run id.
    fn run_to_the_gate(&self) -> String {
        let args = self.release.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.release.relo(&args);
        assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        result["run_id"].as_str().expect("run id").to_owned()
    }

    /// Runs the release to its end (rita approves the gate); returns the run id.
    fn run_to_the_end(&self) -> String {
        let run = self.run_to_the_gate();
        ok(&self.release.relo(&[
            "approve",
            "--run",
            &run,
            "--step",
            "approve-release",
            "--as",
            "rita",
        ]));
        let result = ok(&self.release.relo(&["resume", &run, "--json"]));
        assert_eq!(result["outcome"], "succeeded", "{result}");
        run
    }

    fn verify(&self) -> std::process::Output {
        self.release.relo(&["evidence", "verify", "--json"])
    }

    /// Runs `sql` behind relo-store's back, the append-only guard lifted.
    fn tamper(&self, sql: &str) {
        self.runtime.block_on(async {
            let mut raw = match self.backend {
                Backend::Sqlite => {
                    let path = self.release.home.join("relo.db");
                    let mut conn =
                        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
                            .await
                            .expect("raw sqlite connection");
                    for trigger in ["checkpoints_no_update", "checkpoints_no_delete"] {
                        sqlx::raw_sql(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                            .execute(&mut conn)
                            .await
                            .expect("drop the guard");
                    }
                    Raw::Sqlite(conn)
                }
                Backend::Postgres => {
                    let url = self.url.as_deref().expect("url");
                    let mut conn =
                        PgConnection::connect_with(&PgConnectOptions::from_str(url).expect("url"))
                            .await
                            .expect("raw postgres connection");
                    sqlx::raw_sql("SET session_replication_role = replica")
                        .execute(&mut conn)
                        .await
                        .expect("bypass the guard");
                    Raw::Postgres(conn)
                }
            };
            raw.execute(sql).await;
            raw.close().await;
        });
    }
}

fn untouched_run_verifies(db: RunDb) {
    db.run_to_the_end();
    let out = db.verify();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

fn an_edited_checkpoint_root_is_checkpoint_mismatch(db: RunDb) {
    db.run_to_the_end();
    db.tamper(&format!(
        "UPDATE checkpoints SET root = '{}' WHERE id = (SELECT MAX(id) FROM checkpoints)",
        "ab".repeat(32)
    ));
    let finding = assert_tampering(&db.verify(), "checkpoint-mismatch");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("its signed note says"), "{finding}");
}

fn deleted_checkpoint_rows_are_checkpoint_deleted(db: RunDb) {
    db.run_to_the_end();
    // Without its rows the log verifies on its own, every entry in the uncovered tail;
    // its `checkpoint.cut` entries still name the checkpoints that were cut.
    db.tamper("DELETE FROM checkpoints");
    let finding = assert_tampering(&db.verify(), "checkpoint-deleted");
    assert_eq!(finding["scope"], "control", "{finding}");
    assert!(finding["seq"].as_u64().is_some(), "{finding}");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("it was deleted"), "{finding}");
}

fn a_run_stored_with_another_end_is_state_mismatch(db: RunDb) {
    let run = db.run_to_the_end();
    db.tamper(&format!(
        "UPDATE runs SET state = 'failed' WHERE id = '{run}'"
    ));
    let finding = assert_tampering(&db.verify(), "state-mismatch");
    assert_eq!(finding["scope"], run.as_str(), "{finding}");
    let message = finding["message"].as_str().expect("message");
    assert!(
        message.contains("run.finished entry records `succeeded`"),
        "{finding}"
    );
}

fn a_step_stored_as_succeeded_without_evidence_is_state_mismatch(db: RunDb) {
    let run = db.run_to_the_gate();
    // The deploy step has not run: mark it done with an output of the writer's choice,
    // for the resumed run to build on.
    db.tamper(&format!(
        r#"UPDATE steps SET state = 'succeeded', output = '{{"deployed":"sha256:{}"}}'
           WHERE run_id = '{run}' AND step_id = 'deploy'"#,
        "0".repeat(64)
    ));
    let finding = assert_tampering(&db.verify(), "state-mismatch");
    assert_eq!(finding["scope"], run.as_str(), "{finding}");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("step deploy of run"), "{finding}");
}

fn a_changed_workspace_digest_is_state_mismatch(db: RunDb) {
    let run = db.run_to_the_gate();
    db.tamper(&format!(
        "UPDATE runs SET workspace_digest = '{}' WHERE id = '{run}'",
        "cd".repeat(32)
    ));
    let finding = assert_tampering(&db.verify(), "state-mismatch");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("workspace digest"), "{finding}");
}

/// A finished step's output replaced by other JSON: its sha256 is no longer the one
/// its `step.finished` entry recorded.
fn a_replaced_step_output_is_state_mismatch(db: RunDb) {
    let run = db.run_to_the_end();
    db.tamper(&format!(
        "UPDATE steps SET output = '{{\"verified\": true}}' \
         WHERE run_id = '{run}' AND step_id = 'verify-release'"
    ));
    let finding = assert_tampering(&db.verify(), "state-mismatch");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("step verify-release"), "{finding}");
    assert!(message.contains("stored output"), "{finding}");
}

/// Runs each named `fn(RunDb)` on both backends, as `sqlite::NAME` and `postgres::NAME`.
macro_rules! run_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = super::RunDb::new(super::Backend::Sqlite).expect("sqlite");
                    super::$name(db);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::RunDb::new(super::Backend::Postgres) {
                        super::$name(db);
                    }
                }
            )*
        }
    };
}

run_tests!(
    untouched_run_verifies,
    deleted_checkpoint_rows_are_checkpoint_deleted,
    an_edited_checkpoint_root_is_checkpoint_mismatch,
    a_run_stored_with_another_end_is_state_mismatch,
    a_step_stored_as_succeeded_without_evidence_is_state_mismatch,
    a_changed_workspace_digest_is_state_mismatch,
    a_replaced_step_output_is_state_mismatch,
);
