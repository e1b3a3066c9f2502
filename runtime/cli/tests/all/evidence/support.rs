//! A relo home with an evidence key and a database, evidence written through the
//! writer, the CLI run against it, and raw connections that bypass the guard.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, KeyRing, KeyStatus, Scope};
use relo_store::{EvidenceSeal, EvidenceWriter, Store, WriterOptions};
use relo_trust::{KeyFileSigner, Passphrase, PublicKey, Signer as _};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tempfile::TempDir;

/// Runs each named `async fn(TestHome)` on both backends, as `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::evidence::support::TestHome::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(home) = $crate::evidence::support::TestHome::postgres().await {
                        super::$name(home).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A relo home with an Ed25519 evidence key (made with `relo key generate`), a
/// database, a folder outside the home for trusted checkpoints and exports, and a state
/// folder (`XDG_STATE_HOME`) for the evidence witness, so no test writes under the real
/// home.
pub struct TestHome {
    pub home: TempDir,
    pub outside: TempDir,
    pub state: TempDir,
    pub url: String,
    pub backend: Backend,
    _schema: Option<PgSchema>,
}

impl TestHome {
    pub fn sqlite() -> TestHome {
        TestHome::new("sqlite://relo.db".to_owned(), Backend::Sqlite, None)
    }

    /// A fresh schema, or `None` when `RELO_SKIP_POSTGRES=1` (outside CI).
    pub async fn postgres() -> Option<TestHome> {
        let (url, schema) = fresh_schema().await?;
        Some(TestHome::new(url, Backend::Postgres, Some(schema)))
    }

    fn new(url: String, backend: Backend, schema: Option<PgSchema>) -> TestHome {
        let home = TestHome {
            home: tempfile::tempdir().expect("home"),
            outside: tempfile::tempdir().expect("outside"),
            state: tempfile::tempdir().expect("state"),
            url,
            backend,
            _schema: schema,
        };
        let out = home.relo(&[
            "key",
            "generate",
            "--type",
            "ed25519",
            "--out",
            &home.path().join("keys/evidence").display().to_string(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        home
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    /// A path in the folder outside the home.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.outside.path().join(name)
    }

    /// Runs `relo` with this home and database.
    pub fn relo(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("relo runs")
    }

    /// `relo` with this home, database and state folder, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_relo"));
        command
            .args(args)
            .current_dir(self.outside.path())
            .env("RELO_HOME", self.home.path())
            .env("RELO_DATABASE_URL", &self.url)
            .env("XDG_STATE_HOME", self.state.path());
        command
    }

    /// `relo evidence verify [extra...]`.
    pub fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["evidence", "verify"];
        args.extend_from_slice(extra);
        self.relo(&args)
    }

    /// Runs `relo` and insists on exit 0.
    pub fn relo_ok(&self, args: &[&str]) -> String {
        let out = self.relo(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "relo {args:?}: {}",
            describe(&out)
        );
        stdout(&out)
    }

    pub async fn store(&self) -> Store {
        Store::connect(self.home.path(), &self.url)
            .await
            .expect("open the store")
    }

    /// The store sealed with the home's evidence key ([`sealed_with_home_key`]).
    pub async fn sealed_store(&self) -> Store {
        sealed_with_home_key(self.store().await, self.path()).await
    }

    /// Writes `records` through the evidence writer (sealed with the home's evidence
    /// key, as relo writes) and waits until they are durable.
    pub async fn write(&self, records: Vec<EvidenceRecord>) {
        self.write_to(self.sealed_store().await, records).await;
    }

    /// Writes `records` sealed by `signer` (an evidence key that is not the home's key
    /// file, such as a Vault Transit key).
    pub async fn write_sealed_by(
        &self,
        signer: Arc<dyn relo_trust::Signer>,
        records: Vec<EvidenceRecord>,
    ) {
        let store = self.store().await;
        let origin = store.evidence_origin().await.expect("origin");
        let seal = EvidenceSeal::with_key(signer, &origin).expect("seal");
        self.write_to(store.sealed(seal), records).await;
    }

    async fn write_to(&self, store: Store, records: Vec<EvidenceRecord>) {
        let writer = EvidenceWriter::spawn(store.clone(), WriterOptions::default());
        let mut last = None;
        for record in records {
            last = Some(writer.enqueue(record));
        }
        if let Some(ticket) = last {
            writer.durable(ticket).await.expect("durable");
        }
        writer.close().await.expect("close");
        store.close().await;
    }

    /// A log of three runs and the control scope in three rounds, each ended by a
    /// checkpoint cut with the CLI; the last one is saved outside the home as the
    /// trusted checkpoint, whose path is returned. 30 entries in all.
    pub async fn fill(&self) -> PathBuf {
        for round in 0..3 {
            self.write(round_records(round)).await;
            self.relo_ok(&["evidence", "checkpoint"]);
        }
        let trusted = self.outside("trusted-checkpoint.txt");
        self.relo_ok(&[
            "evidence",
            "checkpoint",
            "--save",
            &trusted.display().to_string(),
        ]);
        trusted
    }

    /// A connection that bypasses relo-store and its guard: the append-only triggers
    /// dropped (SQLite) or disabled for the session (PostgreSQL).
    pub async fn tamperer(&self) -> Raw {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::connect_with(
                    &SqliteConnectOptions::new().filename(self.home.path().join("relo.db")),
                )
                .await
                .expect("raw sqlite connection");
                for trigger in [
                    "evidence_entries_no_update",
                    "evidence_entries_no_delete",
                    "checkpoints_no_update",
                    "checkpoints_no_delete",
                    "evidence_seals_no_update",
                    "evidence_seals_no_delete",
                ] {
                    conn.execute(format!("DROP TRIGGER {trigger}").as_str())
                        .await
                        .expect("drop the guard");
                }
                Raw::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect_with(
                    &PgConnectOptions::from_str(&self.url).expect("postgres url"),
                )
                .await
                .expect("raw postgres connection");
                conn.execute("SET session_replication_role = replica")
                    .await
                    .expect("bypass the guard");
                Raw::Postgres(conn)
            }
        }
    }
}

/// One round of records: runs a, b, c and the control scope, interleaved.
pub fn round_records(round: usize) -> Vec<EvidenceRecord> {
    let mut records = Vec::new();
    for i in 0..10 {
        let scope = match i % 4 {
            0 => Scope::Run("run-a".into()),
            1 => Scope::Run("run-b".into()),
            2 => Scope::Run("run-c".into()),
            _ => Scope::Control,
        };
        records.push(EvidenceRecord::new(
            scope,
            Some(format!("step-{round}")),
            EvidenceEvent::SecretRead {
                name: format!("secret-{round}-{i}"),
                reference: "kv/data/app#token".into(),
                version: Some(1),
            },
        ));
    }
    records
}

/// A fresh schema of the `RELO_TEST_POSTGRES_URL` database and its URL, or `None` when
/// `RELO_SKIP_POSTGRES=1` (outside CI). The schema is dropped with the returned guard.
pub async fn fresh_schema() -> Option<(String, PgSchema)> {
    let base = relo_test_env::postgres_url()?;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "relo_cli_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(&base).await.expect("connect");
    admin
        .execute(format!("CREATE SCHEMA {name}").as_str())
        .await
        .expect("create the test schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
    Some((url, PgSchema { base, name }))
}

/// A test schema, dropped when this is.
pub struct PgSchema {
    base: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&base).await {
                    let _ = conn.execute(sql.as_str()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A raw connection to the test database.
pub enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

macro_rules! on_raw {
    ($raw:expr, |$conn:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite($conn) => $body,
            Raw::Postgres($conn) => $body,
        }
    };
}

impl Raw {
    /// Runs statements (`;`-separated, no parameters).
    pub async fn execute(&mut self, sql: &str) {
        on_raw!(self, |conn| {
            sqlx::raw_sql(sql)
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"));
        })
    }

    /// One text value.
    pub async fn text(&mut self, sql: &str) -> String {
        on_raw!(self, |conn| sqlx::query_scalar(sql)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}")))
    }

    /// Inserts an entry row as given.
    #[allow(clippy::too_many_arguments, reason = "one row's columns")]
    pub async fn insert_entry(
        &mut self,
        seq: i64,
        scope: &str,
        scope_seq: i64,
        kind: &str,
        time: &str,
        body: &str,
        prev_hash: &str,
        hash: &str,
    ) {
        on_raw!(self, |conn| {
            sqlx::query(
            "INSERT INTO evidence_entries (seq, scope, scope_seq, step_id, kind, time, body, prev_hash, hash)
             VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8)"
        )
        .bind(seq)
        .bind(scope)
        .bind(scope_seq)
        .bind(kind)
        .bind(time)
        .bind(body)
        .bind(prev_hash)
        .bind(hash)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .expect("insert entry")
        });
    }

    /// Replaces the note (and key id) of checkpoint `id`.
    pub async fn set_checkpoint_note(&mut self, id: i64, note: &str, key_id: &str) {
        on_raw!(self, |conn| sqlx::query(
            "UPDATE checkpoints SET note = $1, key_id = $2 WHERE id = $3"
        )
        .bind(note)
        .bind(key_id)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .expect("replace the checkpoint"));
    }

    pub async fn close(self) {
        on_raw!(self, |conn| {
            let _ = conn.close().await;
        })
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `relo evidence verify --json` failed with tampering `code`; returns the finding.
pub fn assert_tampering(output: &Output, code: &str) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", describe(output)));
    assert_eq!(json["verified"], false, "{}", describe(output));
    assert_eq!(json["tampering"]["code"], code, "{}", describe(output));
    json["tampering"].clone()
}

/// The passphrase tests encrypt the evidence key with.
pub const EVIDENCE_PASSPHRASE: &str = "evidence passphrase 🔑";

/// `store` sealed with the evidence key of the home at `home` (`keys/evidence.key`,
/// unlocked with [`EVIDENCE_PASSPHRASE`] if encrypted), trusting its retired keys too,
/// as relo's own commands open it: what the tests write is covered by batch seals.
pub async fn sealed_with_home_key(store: Store, home: &Path) -> Store {
    let origin = store.evidence_origin().await.expect("origin");
    let keys = home.join("keys");
    let signer = Arc::new(
        KeyFileSigner::load_with_passphrase(keys.join("evidence.key"), || {
            Ok(Passphrase::new(EVIDENCE_PASSPHRASE))
        })
        .expect("evidence key"),
    );
    let mut ring = KeyRing::new();
    ring.add(&origin, signer.public_key().clone(), KeyStatus::Active)
        .expect("ring");
    let retired = keys.join("evidence-retired");
    if let Ok(text) = std::fs::read_to_string(retired.join("index.json")) {
        let index: serde_json::Value = serde_json::from_str(&text).expect("index.json");
        for key in index["retired"].as_array().into_iter().flatten() {
            let file = retired.join(key["public_key"].as_str().expect("file name"));
            let public = PublicKey::from_pem_file(&file).expect("retired key");
            let status = KeyStatus::Retired {
                last_size: key["last_size"].as_u64(),
            };
            ring.add(&origin, public, status).expect("ring");
        }
    }
    store.sealed(EvidenceSeal {
        signer,
        origin,
        keys: ring,
    })
}
