//! The store handle: opening either backend, migrations, and the write lock.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Postgres, Sqlite, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Result, StoreError};
use crate::url::{DATABASE_URL_ENV, DatabaseUrl, effective_database_url, redact};
use relo_evidence::rfc3339_utc;

/// How long a SQLite connection waits for another process's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL advisory lock key that serialises appends, checkpoints and
/// migrations: the bytes `relo-evd` read as a big-endian integer.
const PG_APPEND_LOCK: i64 = i64::from_be_bytes(*b"relo-evd");

/// One value per backend; [`on_backend!`] runs the same code on either.
#[derive(Debug)]
pub(crate) enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// Evaluates `$body` with `$name` bound to the SQLite or the PostgreSQL value of a
/// [`Backend`]. The body is the same text for both and type-checks once per backend, so
/// every query is written once and runs on both.
macro_rules! on_backend {
    ($value:expr, |$name:ident| $body:expr) => {
        match $value {
            $crate::store::Backend::Sqlite($name) => $body,
            $crate::store::Backend::Postgres($name) => $body,
        }
    };
}
pub(crate) use on_backend;

/// A transaction that holds the store's write lock until it commits or is dropped.
pub(crate) struct LockedTx {
    pub(crate) tx: Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>,
    _in_process: OwnedMutexGuard<()>,
}

impl LockedTx {
    /// Commits, making everything written durable, and releases the lock.
    pub(crate) async fn commit(self) -> Result<()> {
        on_backend!(self.tx, |tx| tx.commit().await?);
        Ok(())
    }
}

/// relo's persistent state, on SQLite or PostgreSQL.
///
/// Cheap to clone: clones share the connection pool and the in-process write lock.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// The key this handle seals evidence batches with, if any ([`Store::sealed`]).
    seal: Option<Arc<crate::seal::EvidenceSeal>>,
}

#[derive(Debug)]
struct Inner {
    pools: Backend<SqlitePool, PgPool>,
    /// Serialises this process's writers before they reach the database lock, so they
    /// queue in order instead of polling SQLite's busy handler.
    write_lock: Arc<Mutex<()>>,
    target: String,
}

impl Store {
    /// Opens the store of the relo home `home`.
    ///
    /// The URL is [`RELO_DATABASE_URL`](crate::DATABASE_URL_ENV) if set, else
    /// `configured_url` (`[store] url` in `relo.toml`), else `sqlite://relo.db`; see
    /// [`connect`](Store::connect) for what each form means.
    pub async fn open(home: &Path, configured_url: Option<&str>) -> Result<Store> {
        let env = std::env::var(DATABASE_URL_ENV).ok();
        Store::connect(home, effective_database_url(configured_url, env.as_deref())).await
    }

    /// Opens the database `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): a SQLite file, relative to `home` unless the
    ///   path is absolute (`sqlite:///var/lib/relo.db`). The file and its directory are
    ///   created if missing. Connections use WAL, `synchronous=FULL`, foreign keys, and
    ///   wait up to 30 s for another process's write lock.
    /// - `postgres://...` or `postgresql://...`: a PostgreSQL database; every parameter
    ///   the driver knows is honoured (`?options=-c search_path=relo` picks a schema).
    pub async fn connect(home: &Path, url: &str) -> Result<Store> {
        let parsed = DatabaseUrl::parse(url)?;
        let (pools, target) = match parsed.sqlite_path(home) {
            Some(path) => {
                prepare_sqlite_file(&path)?;
                let target = path.display().to_string();
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Open {
                        target: target.clone(),
                        source,
                    })?;
                (Backend::Sqlite(pool), target)
            }
            None => {
                let target = redact(url);
                let options =
                    PgConnectOptions::from_str(url).map_err(|err| StoreError::InvalidUrl {
                        url: target.clone(),
                        reason: err.to_string(),
                    })?;
                let open_error = |source| StoreError::Open {
                    target: target.clone(),
                    source,
                };
                // One plain connection first: the pool retries a refused connection until
                // its acquire timeout, while a wrong URL should fail at once.
                let probe = PgConnection::connect_with(&options)
                    .await
                    .map_err(open_error)?;
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await
                    .map_err(open_error)?;
                (Backend::Postgres(pool), target)
            }
        };
        let store = Store {
            inner: Arc::new(Inner {
                pools,
                write_lock: Arc::new(Mutex::new(())),
                target,
            }),
            seal: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// This store, sealing every evidence batch it appends with `seal`'s key
    /// ([`crate::seal`]) and checking the seals before it signs a checkpoint. Other
    /// clones are unchanged.
    pub fn sealed(mut self, seal: crate::seal::EvidenceSeal) -> Store {
        self.seal = Some(Arc::new(seal));
        self
    }

    /// The seal this handle appends with, if any.
    pub(crate) fn seal(&self) -> Option<&crate::seal::EvidenceSeal> {
        self.seal.as_deref()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.pools {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The SQLite file or the PostgreSQL URL (password hidden) this store uses.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The schema version of the database (the newest migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> = on_backend!(&self.inner.pools, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM relo_schema_migrations")
                .fetch_one(pool)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// Closes every connection; waits for queries in flight. Other clones stop working.
    pub async fn close(&self) {
        on_backend!(&self.inner.pools, |pool| pool.close().await);
    }

    pub(crate) fn pools(&self) -> &Backend<SqlitePool, PgPool> {
        &self.inner.pools
    }

    /// Begins a transaction holding the write lock: `BEGIN IMMEDIATE` on SQLite (the
    /// database's single writer lock), `pg_advisory_xact_lock` on PostgreSQL. The lock
    /// is held until the transaction commits or is dropped (rolled back).
    ///
    /// PostgreSQL runs it at READ COMMITTED, so every statement after the lock sees
    /// everything the previous holder committed. The primary key on `seq` and the unique
    /// `(scope, scope_seq)` remain a backstop: a numbering mistake fails the transaction
    /// instead of forking a chain.
    pub(crate) async fn begin_locked(&self) -> Result<LockedTx> {
        let in_process = Arc::clone(&self.inner.write_lock).lock_owned().await;
        let tx = match &self.inner.pools {
            Backend::Sqlite(pool) => Backend::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => {
                // READ COMMITTED whatever the server's default: every statement after
                // the lock must see what the previous holder committed, which a
                // snapshot taken at the lock statement (REPEATABLE READ) would not.
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_APPEND_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Backend::Postgres(tx)
            }
        };
        Ok(LockedTx {
            tx,
            _in_process: in_process,
        })
    }

    /// Applies the migrations this database lacks, all in one locked transaction.
    async fn migrate(&self) -> Result<()> {
        let migrations = match self.inner.pools {
            Backend::Sqlite(_) => SQLITE_MIGRATIONS,
            Backend::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        let supported = migrations.last().map_or(0, |m| m.version);
        let mut locked = self.begin_locked().await?;
        let applied: Option<i64> = on_backend!(&mut locked.tx, |tx| {
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS relo_schema_migrations (
                    version    BIGINT PRIMARY KEY,
                    name       TEXT NOT NULL,
                    applied_at TEXT NOT NULL
                )",
            )
            .execute(&mut **tx)
            .await?;
            sqlx::query_scalar("SELECT MAX(version) FROM relo_schema_migrations")
                .fetch_one(&mut **tx)
                .await?
        });
        let applied = applied.unwrap_or(0);
        if applied > supported {
            return Err(StoreError::SchemaTooNew {
                found: applied,
                supported,
            });
        }
        for migration in migrations.iter().filter(|m| m.version > applied) {
            let now = rfc3339_utc(SystemTime::now());
            let outcome: Result<(), sqlx::Error> = on_backend!(&mut locked.tx, |tx| {
                async {
                    sqlx::raw_sql(migration.sql).execute(&mut **tx).await?;
                    sqlx::query(
                        "INSERT INTO relo_schema_migrations (version, name, applied_at)
                         VALUES ($1, $2, $3)",
                    )
                    .bind(migration.version)
                    .bind(migration.name)
                    .bind(&now)
                    .execute(&mut **tx)
                    .await?;
                    Ok(())
                }
                .await
            });
            outcome.map_err(|source| StoreError::Migrate {
                version: migration.version,
                source,
            })?;
            tracing::info!(
                target = %self.inner.target,
                version = migration.version,
                name = migration.name,
                "applied database migration"
            );
        }
        locked.commit().await
    }
}

/// One schema step, embedded in the binary.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "evidence-log",
        sql: include_str!("../migrations/sqlite/0002_evidence_log.sql"),
    },
    Migration {
        version: 3,
        name: "run-state",
        sql: include_str!("../migrations/sqlite/0003_run_state.sql"),
    },
    Migration {
        version: 4,
        name: "auth",
        sql: include_str!("../migrations/sqlite/0004_auth.sql"),
    },
    Migration {
        version: 5,
        name: "api-tokens",
        sql: include_str!("../migrations/sqlite/0005_api_tokens.sql"),
    },
    Migration {
        version: 6,
        name: "plugin-uploads",
        sql: include_str!("../migrations/sqlite/0006_plugin_uploads.sql"),
    },
    Migration {
        version: 7,
        name: "run-drivers",
        sql: include_str!("../migrations/sqlite/0007_run_drivers.sql"),
    },
    Migration {
        version: 8,
        name: "people",
        sql: include_str!("../migrations/sqlite/0008_people.sql"),
    },
    Migration {
        version: 9,
        name: "checkpoint-frontier",
        sql: include_str!("../migrations/sqlite/0009_checkpoint_frontier.sql"),
    },
    Migration {
        version: 10,
        name: "evidence-seals",
        sql: include_str!("../migrations/sqlite/0010_evidence_seals.sql"),
    },
    Migration {
        version: 11,
        name: "snapshot-chunks",
        sql: include_str!("../migrations/sqlite/0011_snapshot_chunks.sql"),
    },
];

const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "evidence-log",
        sql: include_str!("../migrations/postgres/0002_evidence_log.sql"),
    },
    Migration {
        version: 3,
        name: "run-state",
        sql: include_str!("../migrations/postgres/0003_run_state.sql"),
    },
    Migration {
        version: 4,
        name: "auth",
        sql: include_str!("../migrations/postgres/0004_auth.sql"),
    },
    Migration {
        version: 5,
        name: "api-tokens",
        sql: include_str!("../migrations/postgres/0005_api_tokens.sql"),
    },
    Migration {
        version: 6,
        name: "plugin-uploads",
        sql: include_str!("../migrations/postgres/0006_plugin_uploads.sql"),
    },
    Migration {
        version: 7,
        name: "run-drivers",
        sql: include_str!("../migrations/postgres/0007_run_drivers.sql"),
    },
    Migration {
        version: 8,
        name: "people",
        sql: include_str!("../migrations/postgres/0008_people.sql"),
    },
    Migration {
        version: 9,
        name: "checkpoint-frontier",
        sql: include_str!("../migrations/postgres/0009_checkpoint_frontier.sql"),
    },
    Migration {
        version: 10,
        name: "evidence-seals",
        sql: include_str!("../migrations/postgres/0010_evidence_seals.sql"),
    },
    Migration {
        version: 11,
        name: "snapshot-chunks",
        sql: include_str!("../migrations/postgres/0011_snapshot_chunks.sql"),
    },
];

/// Makes the SQLite file private before SQLite opens it: its folder is created 0700 if
/// missing, the file itself 0600 (SQLite gives its WAL and shared-memory files the
/// database's mode); an existing file, WAL or shared-memory file that the group or others
/// may read is refused with [`StoreError::InsecurePermissions`].
fn prepare_sqlite_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    // `create_new` never truncates or re-modes a file that raced in: it is checked below.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::InsecurePermissions { path: file, mode });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions =
            |ms: &[Migration]| ms.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE_MIGRATIONS), versions(POSTGRES_MIGRATIONS));
        for pair in SQLITE_MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "versions increase");
        }
    }
}
