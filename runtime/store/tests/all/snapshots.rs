//! Workspace snapshots on both backends: stored a chunk at a time as rows of their own
//! run, listed and opened only once finished, read back in order and checked against
//! their sha256; migration 0011 copies old shared snapshots into each run's chunks.

use std::time::SystemTime;

use relo_store::{NewRun, SNAPSHOT_CHUNK_BYTES, SnapshotError, SnapshotReader, Store};
use sha2::{Digest, Sha256};
use sqlx::Executor as _;

use crate::support::{Backend, Raw, TestDb, backend_tests};

async fn create(store: &Store, id: &str) {
    let run = NewRun {
        id,
        workflow: "release",
        requested_by: "rita",
        request: "{}",
        steps: &["deploy"],
        workflow_text: "name: release",
        concurrency: None,
        driver: None,
        active_limit: None,
    };
    store
        .create_run(&run, SystemTime::now())
        .await
        .expect("create the run");
}

/// `chunks` chunks' worth of bytes (the last one half full), each chunk unlike the
/// others, starting from `seed`.
fn archive(chunks: usize, seed: u8) -> Vec<u8> {
    let len = SNAPSHOT_CHUNK_BYTES * chunks - SNAPSHOT_CHUNK_BYTES / 2;
    (0..len)
        .map(|i| ((usize::from(seed) + i / SNAPSHOT_CHUNK_BYTES * 31 + i % 251) % 256) as u8)
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Saves `bytes` as the run's next snapshot, a chunk at a time; returns its digest.
async fn save(store: &Store, run_id: &str, step_id: Option<&str>, bytes: &[u8]) -> String {
    let mut upload = store
        .begin_snapshot(run_id, step_id, SystemTime::now())
        .await
        .expect("begin");
    for chunk in bytes.chunks(SNAPSHOT_CHUNK_BYTES) {
        upload.put_chunk(chunk).await.expect("chunk");
    }
    let digest = sha256(bytes);
    upload
        .finish(&digest, SystemTime::now())
        .await
        .expect("finish");
    digest
}

async fn open(store: &Store, run_id: &str, digest: &str) -> SnapshotReader {
    store
        .open_snapshot(run_id, digest)
        .await
        .expect("open")
        .expect("a complete snapshot")
}

/// Every chunk of the snapshot, in order, once the reader has checked them.
async fn read_all(mut reader: SnapshotReader) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = reader.next_chunk().await? {
        assert!(chunk.len() <= SNAPSHOT_CHUNK_BYTES, "one chunk at a time");
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn chunk_rows(db: &TestDb, run_id: &str) -> i64 {
    db.raw()
        .await
        .scalar(&format!(
            "SELECT COUNT(*) FROM snapshot_chunks WHERE run_id = '{run_id}'"
        ))
        .await
}

async fn a_snapshot_of_several_chunks_round_trips_as_the_runs_newest(db: TestDb) {
    let store = db.store().await;
    create(&store, "run-a").await;
    let first = archive(3, 0);
    let first_digest = save(&store, "run-a", None, &first).await;
    let second = archive(2, 7);
    let second_digest = save(&store, "run-a", Some("deploy"), &second).await;

    let reader = open(&store, "run-a", &first_digest).await;
    assert_eq!(
        (reader.seq(), reader.size()),
        (0, first.len() as i64),
        "the first snapshot, with its size"
    );
    assert_eq!(read_all(reader).await.expect("verified"), first);
    assert_eq!(
        read_all(open(&store, "run-a", &second_digest).await)
            .await
            .expect("verified"),
        second
    );
    let listed: Vec<_> = store
        .run_snapshots("run-a")
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.seq, s.step_id, s.digest, s.size, s.chunks))
        .collect();
    assert_eq!(
        listed,
        [
            (0, None, first_digest, first.len() as i64, 3),
            (
                1,
                Some("deploy".to_owned()),
                second_digest.clone(),
                second.len() as i64,
                2
            ),
        ]
    );
    assert_eq!(chunk_rows(&db, "run-a").await, 5);
    assert_eq!(
        store
            .run("run-a")
            .await
            .expect("run")
            .expect("row")
            .workspace_digest,
        Some(second_digest)
    );
}

async fn chunks_belong_to_their_run(db: TestDb) {
    let store = db.store().await;
    create(&store, "run-a").await;
    create(&store, "run-b").await;
    let bytes = archive(2, 3);
    let digest = save(&store, "run-a", None, &bytes).await;
    assert_eq!(save(&store, "run-b", None, &bytes).await, digest);
    assert_eq!(chunk_rows(&db, "run-a").await, 2);
    assert_eq!(chunk_rows(&db, "run-b").await, 2);

    // Another run's copy of the same archive is untouched by a change to this one's.
    db.raw()
        .await
        .execute("DELETE FROM snapshot_chunks WHERE run_id = 'run-a' AND chunk = 1")
        .await
        .expect("delete a chunk");
    assert_eq!(
        read_all(open(&store, "run-b", &digest).await)
            .await
            .expect("run-b's own rows"),
        bytes
    );
    let error = read_all(open(&store, "run-a", &digest).await)
        .await
        .expect_err("run-a lacks a chunk");
    assert!(
        matches!(&error, SnapshotError::Tampered { run_id, reason, .. }
            if run_id == "run-a" && reason.contains("lacks chunk 1")),
        "{error}"
    );
}

async fn an_unfinished_snapshot_is_neither_listed_nor_opened(db: TestDb) {
    let store = db.store().await;
    create(&store, "run-a").await;
    let done = archive(1, 1);
    let done_digest = save(&store, "run-a", None, &done).await;

    let bytes = archive(2, 2);
    let mut upload = store
        .begin_snapshot("run-a", Some("deploy"), SystemTime::now())
        .await
        .expect("begin");
    upload
        .put_chunk(&bytes[..SNAPSHOT_CHUNK_BYTES])
        .await
        .expect("first chunk");
    let half_written = sha256(&bytes);
    assert!(
        store
            .open_snapshot("run-a", &half_written)
            .await
            .expect("open")
            .is_none()
    );
    assert_eq!(store.run_snapshots("run-a").await.expect("list").len(), 1);
    assert_eq!(
        store
            .run("run-a")
            .await
            .expect("run")
            .expect("row")
            .workspace_digest,
        Some(done_digest.clone()),
        "the run's newest is still the finished one"
    );

    // Only the last chunk may be short, and none is longer than a chunk.
    for wrong in [&bytes[..0], &vec![0; SNAPSHOT_CHUNK_BYTES + 1][..]] {
        let error = upload.put_chunk(wrong).await.expect_err("refused");
        assert!(matches!(error, SnapshotError::Write { .. }), "{error}");
    }
    upload
        .put_chunk(&bytes[SNAPSHOT_CHUNK_BYTES..])
        .await
        .expect("last chunk");
    let error = upload.put_chunk(b"more").await.expect_err("after the last");
    assert!(matches!(error, SnapshotError::Write { .. }), "{error}");

    upload.abort().await.expect("abort");
    assert_eq!(chunk_rows(&db, "run-a").await, 1, "only the finished one's");
    assert_eq!(
        read_all(open(&store, "run-a", &done_digest).await)
            .await
            .expect("verified"),
        done
    );
}

async fn a_tampered_chunk_fails_the_digest_check(db: TestDb) {
    let store = db.store().await;
    create(&store, "run-a").await;
    let bytes = archive(3, 5);
    let digest = save(&store, "run-a", None, &bytes).await;
    // Chunk 0 becomes a copy of chunk 1: the same length, other bytes.
    db.raw()
        .await
        .execute(
            "UPDATE snapshot_chunks SET bytes = (
                 SELECT bytes FROM snapshot_chunks WHERE run_id = 'run-a' AND chunk = 1
             ) WHERE run_id = 'run-a' AND chunk = 0",
        )
        .await
        .expect("tamper");

    let mut reader = open(&store, "run-a", &digest).await;
    for _ in 0..3 {
        reader
            .next_chunk()
            .await
            .expect("a chunk")
            .expect("present");
    }
    let error = reader
        .next_chunk()
        .await
        .expect_err("the check after the last");
    assert!(
        matches!(&error, SnapshotError::Tampered { digest: recorded, reason, .. }
            if *recorded == digest && reason.contains("hash to")),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("snapshot-tampered: "),
        "{error}"
    );
    assert!(
        reader.next_chunk().await.is_err(),
        "asking again does not pass the check"
    );
}

/// Applies migrations 1 to 9 (before chunks) to the test database by hand.
async fn database_at_version_9(db: &TestDb) -> Raw {
    let folder = match db.backend {
        Backend::Sqlite => {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(db.home.path().join("relo.db"))
                .expect("create the database file");
            "sqlite"
        }
        Backend::Postgres => "postgres",
    };
    let mut raw = db.raw().await;
    raw.execute(
        "CREATE TABLE relo_schema_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL
         )",
    )
    .await
    .expect("migrations table");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    for version in 1..=9 {
        let prefix = format!("{version:04}_");
        let file = std::fs::read_dir(&dir)
            .expect("migrations")
            .map(|entry| entry.expect("entry").path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
            .expect("the migration file");
        let sql = std::fs::read_to_string(&file).expect("read the migration");
        match &mut raw {
            Raw::Sqlite(conn) => conn.execute(sql.as_str()).await.map(drop),
            Raw::Postgres(conn) => conn.execute(sql.as_str()).await.map(drop),
        }
        .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        raw.execute(&format!(
            "INSERT INTO relo_schema_migrations VALUES ({version}, 'old', 't')"
        ))
        .await
        .expect("record the migration");
    }
    raw
}

/// Inserts a snapshot row shared by digest, as schema 3 to 9 kept them.
async fn insert_old_snapshot(raw: &mut Raw, digest: &str, bytes: &[u8]) {
    let sql = "INSERT INTO snapshots (digest, bytes, created_at) VALUES ($1, $2, 't')";
    match raw {
        Raw::Sqlite(conn) => sqlx::query(sql)
            .bind(digest)
            .bind(bytes)
            .execute(&mut *conn)
            .await
            .map(drop),
        Raw::Postgres(conn) => sqlx::query(sql)
            .bind(digest)
            .bind(bytes)
            .execute(&mut *conn)
            .await
            .map(drop),
    }
    .expect("old snapshot");
}

async fn migration_11_copies_shared_snapshots_into_each_runs_chunks(db: TestDb) {
    let mut raw = database_at_version_9(&db).await;
    let big = archive(3, 9);
    let small = b"a small archive".to_vec();
    let (big_digest, small_digest) = (sha256(&big), sha256(&small));
    insert_old_snapshot(&mut raw, &big_digest, &big).await;
    insert_old_snapshot(&mut raw, &small_digest, &small).await;
    for (run, seq, digest) in [
        ("run-a", 0, &small_digest),
        ("run-a", 1, &big_digest),
        ("run-b", 0, &big_digest),
    ] {
        raw.execute(&format!(
            "INSERT INTO runs (id, workflow, state, requested_by, request, created_at, updated_at)
             SELECT '{run}', 'release', 'running', 'rita', '{{}}', 't', 't'
             WHERE NOT EXISTS (SELECT 1 FROM runs WHERE id = '{run}')"
        ))
        .await
        .expect("run");
        raw.execute(&format!(
            "INSERT INTO run_snapshots (run_id, seq, step_id, digest, created_at)
             VALUES ('{run}', {seq}, NULL, '{digest}', 't')"
        ))
        .await
        .expect("run snapshot");
    }

    let store = db.store().await;
    for (run, digest, bytes) in [
        ("run-a", &small_digest, &small),
        ("run-a", &big_digest, &big),
        ("run-b", &big_digest, &big),
    ] {
        assert_eq!(
            &read_all(open(&store, run, digest).await)
                .await
                .expect("verified"),
            bytes,
            "{run} {digest}"
        );
    }
    assert_eq!(chunk_rows(&db, "run-a").await, 1 + 3);
    assert_eq!(chunk_rows(&db, "run-b").await, 3);
    let chunks: Vec<_> = store
        .run_snapshots("run-a")
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.seq, s.size, s.chunks))
        .collect();
    assert_eq!(
        chunks,
        [(0, small.len() as i64, 1), (1, big.len() as i64, 3)]
    );
    let gone = db
        .raw()
        .await
        .execute("SELECT COUNT(*) FROM snapshots")
        .await
        .expect_err("the shared table is dropped");
    assert!(gone.contains("snapshots"), "{gone}");
}

backend_tests!(
    a_snapshot_of_several_chunks_round_trips_as_the_runs_newest,
    chunks_belong_to_their_run,
    an_unfinished_snapshot_is_neither_listed_nor_opened,
    a_tampered_chunk_fails_the_digest_check,
    migration_11_copies_shared_snapshots_into_each_runs_chunks,
);
