//! Two OS processes appending to the same scope at once still make one linear chain.
//!
//! The parent re-runs this test binary twice with `--exact processes::child_writer` and
//! the `RELO_STORE_TEST_CHILD_*` variables set; in that mode `child_writer` connects,
//! waits for the parent's "go" file so both start together, and appends. Run normally,
//! `child_writer` does nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relo_store::Store;

use crate::support::{
    Backend, TestDb, all_entries, assert_log_is_valid, backend_tests, draft, hash, label,
};

const CHILD_URL: &str = "RELO_STORE_TEST_CHILD_URL";
const CHILD_HOME: &str = "RELO_STORE_TEST_CHILD_HOME";
const CHILD_NAME: &str = "RELO_STORE_TEST_CHILD_NAME";
const CHILD_GO: &str = "RELO_STORE_TEST_CHILD_GO";
const BATCHES: usize = 150;
const SHARED_PER_BATCH: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let (Ok(url), Ok(home), Ok(name), Ok(go)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_HOME),
        std::env::var(CHILD_NAME),
        std::env::var(CHILD_GO),
    ) else {
        return; // not started as a child: nothing to do
    };
    let store = Store::connect(Path::new(&home), &url)
        .await
        .expect("child opens the store");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "the parent never said go");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for batch in 0..BATCHES {
        let mut drafts: Vec<_> = (0..SHARED_PER_BATCH)
            .map(|j| draft("shared", &format!("{name}-{batch:04}-{j}")))
            .collect();
        drafts.push(draft(&format!("own-{name}"), &format!("{name}-{batch:04}")));
        store.append(&drafts, &hash).await.expect("child append");
    }
}

fn spawn_child(db: &TestDb, name: &str, go: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "processes::child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, &db.url)
        .env(CHILD_HOME, db.home.path())
        .env(CHILD_NAME, name)
        .env(CHILD_GO, go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn wait(mut child: Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("poll child").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child {name} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("child output");
    assert!(
        output.status.success(),
        "child {name} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed"),
        "child {name} ran its test: {stdout}"
    );
}

async fn two_processes_appending_to_one_scope_make_one_linear_chain(db: TestDb) {
    // Migrate first, so the children only append.
    let store = db.store().await;
    let go: PathBuf = db.home.path().join("go");
    let a = spawn_child(&db, "a", &go);
    let b = spawn_child(&db, "b", &go);
    std::fs::write(&go, "go").expect("go file");
    tokio::task::spawn_blocking(move || {
        wait(a, "a");
        wait(b, "b");
    })
    .await
    .expect("children");

    let entries = all_entries(&store).await;
    assert_eq!(entries.len(), 2 * BATCHES * (SHARED_PER_BATCH + 1));
    assert_log_is_valid(&entries);

    let shared = store
        .scope_entries("shared", 0, u32::MAX)
        .await
        .expect("shared chain");
    assert_eq!(shared.len(), 2 * BATCHES * SHARED_PER_BATCH);
    for writer in ["a", "b"] {
        let own: Vec<_> = shared
            .iter()
            .map(label)
            .filter(|l| l.starts_with(writer))
            .collect();
        let mut sorted = own.clone();
        sorted.sort();
        assert_eq!(
            own, sorted,
            "{writer}'s entries keep their order in the shared chain"
        );
    }
    // Each batch is contiguous in the shared chain, and the two writers really did
    // interleave (otherwise this test proved nothing about concurrency).
    let writers: Vec<_> = shared.iter().map(|e| label(e)[..1].to_owned()).collect();
    for batch in writers.chunks(SHARED_PER_BATCH) {
        assert!(
            batch.iter().all(|w| *w == batch[0]),
            "a batch was split: {batch:?}"
        );
    }
    let switches = writers.windows(2).filter(|w| w[0] != w[1]).count();
    eprintln!("the writers took turns {switches} times");
    if db.backend == Backend::Postgres {
        // Advisory-lock waiters queue, so the two processes alternate. SQLite's busy
        // handler polls, so one process may well run all its batches first.
        assert!(switches > 0, "the two processes never overlapped");
    }
}

backend_tests!(two_processes_appending_to_one_scope_make_one_linear_chain);
