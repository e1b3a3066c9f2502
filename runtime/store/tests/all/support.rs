//! The test database of each backend, a test hasher, and a full chain check.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use relo_evidence::EntryError;
use relo_store::{EntryDraft, EntryToHash, GENESIS_PREV_HASH, Hash, Store, StoredEntry};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tempfile::TempDir;

/// The variable naming the PostgreSQL database the tests may create schemas in.
pub const POSTGRES_URL_ENV: &str = "RELO_TEST_POSTGRES_URL";

/// Runs each named `async fn(TestDb)` of the calling module on both backends, as
/// `sqlite::NAME` and `postgres::NAME`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::support::TestDb::postgres().await {
                        super::$name(db).await;
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

/// A database of its own for one test: a temporary relo home, and on PostgreSQL a
/// schema dropped when the test ends.
pub struct TestDb {
    pub home: TempDir,
    pub url: String,
    pub backend: Backend,
    /// Held only to be dropped with the test, which drops the schema.
    _schema: Option<PgSchema>,
}

impl TestDb {
    /// A SQLite file `relo.db` in a new temporary home.
    pub fn sqlite() -> TestDb {
        TestDb {
            home: tempfile::tempdir().expect("temporary home"),
            url: "sqlite://relo.db".to_owned(),
            backend: Backend::Sqlite,
            _schema: None,
        }
    }

    /// A fresh schema in the `RELO_TEST_POSTGRES_URL` database, or `None` when
    /// `RELO_SKIP_POSTGRES=1`.
    pub async fn postgres() -> Option<TestDb> {
        let base = relo_test_env::postgres_url()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "relo_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {POSTGRES_URL_ENV}: {err}"));
        admin
            .execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .expect("create the test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(TestDb {
            home: tempfile::tempdir().expect("temporary home"),
            url: format!("{base}{separator}options=-c%20search_path%3D{name}"),
            backend: Backend::Postgres,
            _schema: Some(PgSchema { base, name }),
        })
    }

    /// Opens (and migrates) the store.
    pub async fn store(&self) -> Store {
        Store::connect(self.home.path(), &self.url)
            .await
            .unwrap_or_else(|err| panic!("open {}: {err}", self.url))
    }

    /// A plain connection that bypasses relo-store, for poking at the tables.
    pub async fn raw(&self) -> Raw {
        match self.backend {
            Backend::Sqlite => Raw::Sqlite(
                SqliteConnection::connect_with(
                    &SqliteConnectOptions::new().filename(self.home.path().join("relo.db")),
                )
                .await
                .expect("raw sqlite connection"),
            ),
            Backend::Postgres => Raw::Postgres(
                PgConnection::connect_with(
                    &PgConnectOptions::from_str(&self.url).expect("postgres url"),
                )
                .await
                .expect("raw postgres connection"),
            ),
        }
    }
}

struct PgSchema {
    base: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime, so the cleanup gets a thread of its own.
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

/// A connection straight to the test database.
pub enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Evaluates `$body` with `$conn` bound to the connection of either backend.
macro_rules! on_raw {
    ($raw:expr, |$conn:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite($conn) => $body,
            Raw::Postgres($conn) => $body,
        }
    };
}

impl Raw {
    /// Runs one statement, returning the rows it affected or the database's error text.
    pub async fn execute(&mut self, sql: &str) -> Result<u64, String> {
        on_raw!(self, |conn| conn
            .execute(sql)
            .await
            .map(|done| done.rows_affected())
            .map_err(|err| err.to_string()))
    }

    /// One integer.
    pub async fn scalar(&mut self, sql: &str) -> i64 {
        on_raw!(self, |conn| sqlx::query_scalar(sql)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}")))
    }

    /// Inserts a plugin row with `bytes`.
    pub async fn insert_plugin(&mut self, digest: &str, name: &str, bytes: &[u8]) {
        on_raw!(self, |conn| sqlx::query(
            "INSERT INTO plugins (digest, name, version, bytes, attestation, added_at)
             VALUES ($1, $2, '1.0.0', $3, '{}', '2026-01-01T00:00:00.000000000Z')"
        )
        .bind(digest)
        .bind(name)
        .bind(bytes)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .expect("insert plugin"));
    }

    /// A plugin's bytes.
    pub async fn plugin_bytes(&mut self, digest: &str) -> Vec<u8> {
        on_raw!(self, |conn| sqlx::query_scalar(
            "SELECT bytes FROM plugins WHERE digest = $1"
        )
        .bind(digest)
        .fetch_one(&mut *conn)
        .await
        .expect("plugin bytes"))
    }
}

/// The test hash: SHA-256 over every covered field, length-prefixed (independent of
/// relo-evidence's, so the store's numbering is tested on its own).
pub fn hash(entry: &EntryToHash<'_>) -> Result<Hash, EntryError> {
    let mut h = Sha256::new();
    h.update(entry.seq.to_be_bytes());
    h.update(entry.scope_seq.to_be_bytes());
    let step = entry.step_id.map_or(String::from("-"), |s| format!("+{s}"));
    for part in [
        entry.scope,
        step.as_str(),
        entry.kind,
        entry.time,
        entry.body,
        entry.prev_hash,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    Ok(h.finalize().into())
}

/// A draft in `scope` whose body carries `label`.
pub fn draft(scope: &str, label: &str) -> EntryDraft {
    EntryDraft {
        scope: scope.to_owned(),
        step_id: Some("step".to_owned()),
        kind: "test.event".to_owned(),
        time: relo_store::rfc3339_utc(SystemTime::now()),
        body: serde_json::json!({ "label": label }).to_string(),
    }
}

/// The label a [`draft`] carries.
pub fn label(entry: &StoredEntry) -> String {
    let body: serde_json::Value = serde_json::from_str(&entry.body).expect("json body");
    body["label"].as_str().expect("label").to_owned()
}

/// Every entry of the log, read in pages.
pub async fn all_entries(store: &Store) -> Vec<StoredEntry> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |e: &StoredEntry| e.seq);
        let page = store.entries(after, 97).await.expect("read entries");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Checks the whole log: `seq` is 1..=n, each scope's `scope_seq` is 1..=k, each entry
/// links to the previous entry of its scope, and every hash recomputes.
pub fn assert_log_is_valid(entries: &[StoredEntry]) {
    let mut heads: HashMap<&str, (u64, &str)> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, index as u64 + 1, "seq is gapless: {entry:?}");
        let (last, prev) = heads
            .get(entry.scope.as_str())
            .copied()
            .unwrap_or((0, GENESIS_PREV_HASH));
        assert_eq!(entry.scope_seq, last + 1, "scope_seq is gapless: {entry:?}");
        assert_eq!(entry.prev_hash, prev, "prev_hash links: {entry:?}");
        assert_eq!(
            entry.hash,
            hex::encode(hash(&entry.to_hash()).expect("hash")),
            "hash recomputes: {entry:?}"
        );
        heads.insert(&entry.scope, (entry.scope_seq, &entry.hash));
    }
}

/// Lifts the guard that refuses UPDATE (and on PostgreSQL DELETE) of `table`, as whoever
/// holds the database can.
pub async fn unguard(db: &TestDb, raw: &mut Raw, table: &str) {
    let statements = match db.backend {
        Backend::Sqlite => vec![
            format!("DROP TRIGGER {table}_no_update"),
            format!("DROP TRIGGER {table}_no_delete"),
        ],
        Backend::Postgres => vec![format!(
            "ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"
        )],
    };
    for sql in statements {
        raw.execute(&sql).await.expect("lift the guard");
    }
}
