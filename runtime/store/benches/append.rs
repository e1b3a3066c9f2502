//! Durable evidence appends per second, side by side in one run, printed as a Markdown
//! table with each figure's ratio to the plain INSERT loop.
//!
//! ```sh
//! cargo bench -p relo-store --bench append
//! RELO_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p relo-store --bench append
//! ```
//!
//! Each figure is the median of three runs. On each backend (PostgreSQL only when `RELO_BENCH_POSTGRES_URL` or
//! `RELO_TEST_POSTGRES_URL` names a database; the run uses a schema of its own):
//!
//! - **writer, bulk**: 8 tasks enqueue through `EvidenceWriter`, then wait until durable;
//! - **writer, steps**: 128 concurrent "steps" each enqueue 4 events and wait until they
//!   are durable before the next 4, as the sandbox does before accepting a result;
//! - **append, 1 per call**: `Store::append` of one entry per transaction (chained);
//! - **append, 1000 per call**: `Store::append` of 1000 entries per transaction;
//! - baselines without the chain or the lock, into a table of the same columns:
//!   **one INSERT per transaction**, and the plain **INSERT loop** committed every 1000
//!   rows (the batched transaction without the chain, at the batch size of the
//!   `Store::append` row above);
//! - **sealed**: the 1-per-call append and the 128 steps again on a store that seals
//!   every transaction with an Ed25519 evidence key (batch seals, docs/evidence.md); with
//!   `RELO_BAO` set, the 128 steps once more on a new SQLite log sealed by an Ed25519
//!   Transit key of a real OpenBao (`bao server -dev` on loopback). Every figure is durable: SQLite runs WAL with
//!   `synchronous=FULL`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_secrets::TransitSigner;
use relo_store::{EntryDraft, EvidenceSeal, EvidenceWriter, Store, WriterOptions, entry_hash};
use relo_test_openbao::Bao;
use relo_trust::{KeyAlgorithm, PrivateKey, Signer};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Executor};

const PLAIN_TABLE: &str = "CREATE TABLE plain_entries (
    seq BIGINT PRIMARY KEY, scope TEXT NOT NULL, scope_seq BIGINT NOT NULL, step_id TEXT,
    kind TEXT NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL)";
const PLAIN_INSERT: &str = "INSERT INTO plain_entries
    (seq, scope, scope_seq, step_id, kind, time, body, prev_hash, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

fn record(run: usize, i: usize) -> EvidenceRecord {
    EvidenceRecord::new(
        Scope::Run(format!("run-{run}")),
        Some("deploy".into()),
        EvidenceEvent::EgressDenied {
            method: "GET".into(),
            scheme: "https".into(),
            host: "evil.example".into(),
            port: 443,
            path: format!("/api/{i}"),
            code: "egress-denied".into(),
            reason: "no rule allows this host".into(),
        },
    )
}

fn draft(run: usize, i: usize) -> EntryDraft {
    EntryDraft::from_record(&record(run, i))
}

struct Row {
    backend: &'static str,
    scenario: &'static str,
    entries: usize,
    elapsed: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64()
    }
}

/// A plain table to INSERT into, on a pool of either backend.
enum Plain {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! on_plain {
    ($plain:expr, |$pool:ident| $body:expr) => {
        match $plain {
            Plain::Sqlite($pool) => $body,
            Plain::Postgres($pool) => $body,
        }
    };
}

impl Plain {
    /// One INSERT per transaction (autocommit), `n` times from `from`.
    async fn insert_each(&self, from: usize, n: usize) {
        let drafts: Vec<_> = (from..from + n).map(|i| draft(0, i)).collect();
        on_plain!(self, |pool| for (i, d) in drafts.iter().enumerate() {
            bind(sqlx::query(PLAIN_INSERT), from + i, d)
                .execute(pool)
                .await
                .expect("insert");
        });
    }

    /// `n` INSERTs from `from`, in transactions of `per_transaction`.
    async fn insert_in_transactions(&self, from: usize, n: usize, per_transaction: usize) {
        let drafts: Vec<_> = (from..from + n).map(|i| draft(0, i)).collect();
        on_plain!(self, |pool| {
            for (chunk_index, chunk) in drafts.chunks(per_transaction).enumerate() {
                let mut tx = pool.begin().await.expect("begin");
                for (i, d) in chunk.iter().enumerate() {
                    bind(
                        sqlx::query(PLAIN_INSERT),
                        from + chunk_index * per_transaction + i,
                        d,
                    )
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                }
                tx.commit().await.expect("commit");
            }
        });
    }
}

fn bind<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    seq: usize,
    d: &'q EntryDraft,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let zeros = relo_store::GENESIS_PREV_HASH;
    query
        .bind(seq as i64 + 1)
        .bind(d.scope.as_str())
        .bind(seq as i64 + 1)
        .bind(d.step_id.as_deref())
        .bind(d.kind.as_str())
        .bind(d.time.as_str())
        .bind(d.body.as_str())
        .bind(zeros)
        .bind(zeros)
}

async fn writer_bulk(store: &Store, tasks: usize, per_task: usize) -> Duration {
    let writer = Arc::new(EvidenceWriter::spawn(
        store.clone(),
        WriterOptions::default(),
    ));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                let mut last = None;
                for i in 0..per_task {
                    last = Some(writer.enqueue(record(t, i)));
                }
                if let Some(ticket) = last {
                    writer.durable(ticket).await.expect("durable");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = start.elapsed();
    writer.close().await.expect("close");
    elapsed
}

async fn writer_steps(store: &Store, steps: usize, rounds: usize, per_round: usize) -> Duration {
    let writer = Arc::new(EvidenceWriter::spawn(
        store.clone(),
        WriterOptions::default(),
    ));
    let start = Instant::now();
    let handles: Vec<_> = (0..steps)
        .map(|s| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                for round in 0..rounds {
                    let mut last = None;
                    for i in 0..per_round {
                        last = Some(writer.enqueue(record(s, round * per_round + i)));
                    }
                    if let Some(ticket) = last {
                        writer.durable(ticket).await.expect("durable");
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = start.elapsed();
    writer.close().await.expect("close");
    elapsed
}

async fn append_calls(store: &Store, calls: usize, per_call: usize) -> Duration {
    let batches: Vec<Vec<_>> = (0..calls)
        .map(|c| (0..per_call).map(|i| draft(c % 16, i)).collect())
        .collect();
    let start = Instant::now();
    for batch in &batches {
        store.append(batch, &entry_hash).await.expect("append");
    }
    start.elapsed()
}

async fn timed(f: impl Future<Output = ()>) -> Duration {
    let start = Instant::now();
    f.await;
    start.elapsed()
}

/// The median of three runs; `run` gets the round (0, 1, 2).
async fn median_of_3<F, Fut>(mut run: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Duration>,
{
    let mut times = [Duration::ZERO; 3];
    for (round, time) in times.iter_mut().enumerate() {
        *time = run(round).await;
    }
    times.sort();
    times[1]
}

/// Every scenario on one backend; with `transit` (a Vault Transit evidence key), also the
/// steps sealed by it, on a new log in `fresh_dir`.
async fn run_backend(
    (backend, store, plain): (&'static str, Store, Plain),
    scale: usize,
    transit: Option<Arc<dyn Signer>>,
    fresh_dir: &std::path::Path,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |scenario, entries, elapsed| {
        rows.push(Row {
            backend,
            scenario,
            entries,
            elapsed,
        })
    };
    let each = 400 * scale / 4;
    let bulk = 100_000 * scale / 4;
    let plain = &plain;
    push(
        "one INSERT per transaction (no chain)",
        each,
        median_of_3(|round| timed(plain.insert_each(round * each, each))).await,
    );
    push(
        "INSERT loop, 1000 per transaction (no chain)",
        bulk,
        median_of_3(|round| {
            timed(plain.insert_in_transactions(3 * each + round * bulk, bulk, 1000))
        })
        .await,
    );
    push(
        "`Store::append`, 1 entry per call",
        each,
        median_of_3(|_| append_calls(&store, each, 1)).await,
    );
    push(
        "`Store::append`, 1000 entries per call",
        bulk,
        median_of_3(|_| append_calls(&store, bulk / 1000, 1000)).await,
    );
    push(
        "writer, 8 tasks enqueue, then durable",
        bulk,
        median_of_3(|_| writer_bulk(&store, 8, bulk / 8)).await,
    );
    let steps = 128;
    let rounds = bulk / steps / 4;
    push(
        "writer, 128 steps × (4 events, durable)",
        steps * rounds * 4,
        median_of_3(|_| writer_steps(&store, steps, rounds, 4)).await,
    );
    // Last: once a log has seals, an unsealed append would be refused as tampering.
    let key: Arc<dyn Signer> = Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519));
    let by_key = sealed(&store, key).await;
    push(
        "`Store::append`, 1 entry per call, sealed",
        each,
        median_of_3(|_| append_calls(&by_key, each, 1)).await,
    );
    push(
        "writer, 128 steps × (4 events, durable), sealed",
        steps * rounds * 4,
        median_of_3(|_| writer_steps(&by_key, steps, rounds, 4)).await,
    );
    if let Some(transit) = transit {
        // The next seal trusts the last one only if its key is in the ring: a new log.
        let fresh = Store::connect(fresh_dir, "sqlite://transit.db")
            .await
            .expect("store");
        let by_transit = sealed(&fresh, transit).await;
        push(
            "writer, 128 steps × (4 events, durable), sealed by a Vault Transit key",
            steps * rounds * 4,
            median_of_3(|_| writer_steps(&by_transit, steps, rounds, 4)).await,
        );
        fresh.close().await;
    }
    store.close().await;
    rows
}

/// `store` sealing every batch with the evidence key `key` (one signature check of the
/// previous seal and one signature per transaction).
async fn sealed(store: &Store, key: Arc<dyn Signer>) -> Store {
    let origin = store.evidence_origin().await.expect("origin");
    store
        .clone()
        .sealed(EvidenceSeal::with_key(key, &origin).expect("seal"))
}

async fn sqlite(dir: &std::path::Path, transit: Option<Arc<dyn Signer>>) -> Vec<Row> {
    let store = Store::connect(dir, "sqlite://relo.db")
        .await
        .expect("store");
    let options = SqliteConnectOptions::new()
        .filename(dir.join("plain.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("plain db");
    pool.execute(PLAIN_TABLE).await.expect("plain table");
    run_backend(("SQLite", store, Plain::Sqlite(pool)), 4, transit, dir).await
}

async fn postgres(base: &str, dir: &std::path::Path) -> Vec<Row> {
    let schema = format!("relo_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("postgres");
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .expect("schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::connect(dir, &url).await.expect("store");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(PgConnectOptions::from_str(&url).expect("url"))
        .await
        .expect("plain pool");
    pool.execute(PLAIN_TABLE).await.expect("plain table");
    let rows = run_backend(
        ("PostgreSQL", store, Plain::Postgres(pool.clone())),
        2,
        None,
        dir,
    )
    .await;
    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .expect("drop schema");
    rows
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
    let started = SystemTime::now();
    // With RELO_BAO (a `bao` binary), a real OpenBao's Transit key seals one more row.
    let bao = std::env::var_os("RELO_BAO").map(|_| runtime.block_on(Bao::start()));
    let transit = bao.as_ref().map(|bao| {
        let signer = TransitSigner::connect(&bao.address, bao.root(), "transit", &bao.ed25519_key)
            .expect("the Transit key");
        Arc::new(signer) as Arc<dyn Signer>
    });
    if transit.is_none() {
        eprintln!("Vault Transit sealing skipped: set RELO_BAO to include it");
    }
    let mut rows = runtime.block_on(sqlite(&dir.path().join("sqlite"), transit));
    let postgres_url = std::env::var("RELO_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("RELO_TEST_POSTGRES_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    match postgres_url {
        Some(url) => rows.extend(runtime.block_on(postgres(&url, &dir.path().join("pg")))),
        None => eprintln!("PostgreSQL skipped: set RELO_BENCH_POSTGRES_URL to include it"),
    }

    println!(
        "| backend | scenario | entries | seconds | appends/s | × one INSERT per txn | × INSERT loop, 1000/txn |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        let baseline = |index: usize| {
            rows.iter()
                .filter(|r| r.backend == row.backend)
                .nth(index)
                .map_or(f64::NAN, Row::rate)
        };
        println!(
            "| {} | {} | {} | {:.3} | {:.0} | {:.1} | {:.2} |",
            row.backend,
            row.scenario,
            row.entries,
            row.elapsed.as_secs_f64(),
            row.rate(),
            row.rate() / baseline(0),
            row.rate() / baseline(1)
        );
    }
    eprintln!(
        "total {:.1} s",
        started.elapsed().map_or(0.0, |d| d.as_secs_f64())
    );
}
