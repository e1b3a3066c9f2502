//! Opening stores: where SQLite files go, and clear errors for bad files and URLs.

use relo_store::{Store, StoreError};

use crate::support::{TestDb, all_entries, draft, hash};

#[tokio::test]
async fn the_sqlite_file_and_its_directories_are_created_in_wal_mode() {
    let home = tempfile::tempdir().expect("home");
    let store = Store::connect(&home.path().join("new-home"), "sqlite://data/relo.db")
        .await
        .expect("open");
    let file = home.path().join("new-home/data/relo.db");
    assert_eq!(store.target(), file.display().to_string());
    assert_eq!(store.backend_name(), "sqlite");
    store
        .append(&[draft("run", "1")], &hash)
        .await
        .expect("append");
    assert!(file.is_file());
    assert!(
        home.path().join("new-home/data/relo.db-wal").exists(),
        "WAL journal in use"
    );
}

/// The folder, the database and its WAL are private to their owner, whatever the umask.
#[tokio::test]
async fn the_sqlite_file_its_wal_and_its_folder_are_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let home = tempfile::tempdir().expect("home");
    let store = Store::connect(home.path(), "sqlite://data/relo.db")
        .await
        .expect("open");
    store
        .append(&[draft("run", "1")], &hash)
        .await
        .expect("append");
    let mode = |name: &str| {
        std::fs::metadata(home.path().join(name))
            .expect(name)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/relo.db"), 0o600);
    assert_eq!(mode("data/relo.db-wal"), 0o600);
}

/// A database that the group or others may read is refused, naming the file and the fix,
/// before anything is read from it.
#[tokio::test]
async fn a_database_readable_beyond_its_owner_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;

    let home = tempfile::tempdir().expect("home");
    drop(
        Store::connect(home.path(), "sqlite://relo.db")
            .await
            .expect("open"),
    );
    for (name, mode) in [
        ("relo.db", 0o644),
        ("relo.db", 0o640),
        ("relo.db-wal", 0o604),
    ] {
        let file = home.path().join(name);
        if !file.exists() {
            std::fs::write(&file, b"").expect("wal");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let error = Store::connect(home.path(), "sqlite://relo.db")
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, StoreError::InsecurePermissions { path, mode: m }
                if *path == file && *m == mode),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("insecure-permissions"),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 600"), "{error}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    Store::connect(home.path(), "sqlite://relo.db")
        .await
        .expect("private again, accepted");
}

#[tokio::test]
async fn an_absolute_sqlite_path_ignores_the_home() {
    let elsewhere = tempfile::tempdir().expect("dir");
    let file = elsewhere.path().join("abs.db");
    let store = Store::connect(
        std::path::Path::new("/nonexistent-home"),
        &format!("sqlite://{}", file.display()),
    )
    .await
    .expect("open");
    assert_eq!(store.target(), file.display().to_string());
    assert!(file.is_file());
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let home = tempfile::tempdir().expect("home");
    let file = home.path().join("relo.db");
    std::fs::write(
        &file,
        "these are not the pages you are looking for\n".repeat(200),
    )
    .expect("write garbage");
    // Private, so that what is refused is the content, not the mode.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let err = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .expect_err("garbage is refused");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("file is not a database"), "{message}");
}

#[tokio::test]
async fn a_damaged_database_is_an_error_not_a_panic() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let drafts: Vec<_> = (0..2000)
        .map(|i| draft("run", &format!("{i:0>200}")))
        .collect();
    store.append(&drafts, &hash).await.expect("append");
    store.close().await;
    drop(store);
    let file = db.home.path().join("relo.db");
    // Fold the WAL into the main file, then overwrite every page after the first.
    {
        let mut raw = db.raw().await;
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint wal");
    }
    let mut bytes = std::fs::read(&file).expect("read db");
    assert!(bytes.len() > 8192, "the database spans several pages");
    for byte in &mut bytes[4096..] {
        *byte = 0xA5;
    }
    std::fs::write(&file, bytes).expect("damage db");

    let outcome = match Store::connect(db.home.path(), &db.url).await {
        Err(err) => Err(err),
        Ok(store) => store.entries(0, 10_000).await.map(|_| ()),
    };
    let err = outcome.expect_err("a damaged database is reported");
    let message = err.to_string();
    assert!(
        message.contains("malformed") || message.contains("not a database"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_schemes_are_refused_before_connecting() {
    let home = tempfile::tempdir().expect("home");
    let err = Store::connect(home.path(), "mysql://u:hunter2@db/relo")
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("expected sqlite://"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
    let home = tempfile::tempdir().expect("home");
    let err = Store::connect(home.path(), "postgres://relo:hunter2@127.0.0.1:1/relo")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://relo:***@127.0.0.1:1/relo"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn reopening_sees_what_was_committed() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    store
        .append(&[draft("run", "1"), draft("run", "2")], &hash)
        .await
        .expect("append");
    store.close().await;
    let reopened = db.store().await;
    let entries = all_entries(&reopened).await;
    assert_eq!(entries.len(), 2);
    let next = reopened
        .append(&[draft("run", "3")], &hash)
        .await
        .expect("append");
    assert_eq!((next[0].seq, next[0].scope_seq), (3, 3));
    assert_eq!(next[0].prev_hash, entries[1].hash);
}
