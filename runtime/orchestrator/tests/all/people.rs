//! The people directory is checked against the control chain before any signature is
//! checked against it: a person, key or role a database writer added is `people-tampered`.

use std::sync::Arc;
use std::time::SystemTime;

use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_orchestrator::{People, PeopleError};
use relo_store::{EvidenceSeal, NewPersonKey, NewUser, Store};
use relo_trust::{KeyAlgorithm, PrivateKey, TrustPolicy};
use sqlx::Connection as _;

/// A sealed store whose directory holds rita (release-manager, one key), each change
/// recorded in the control chain as the server records it.
async fn directory() -> (tempfile::TempDir, Store) {
    let home = tempfile::tempdir().unwrap();
    let store = Store::connect(home.path(), "sqlite://relo.db")
        .await
        .unwrap();
    let origin = store.evidence_origin().await.unwrap();
    let evidence = Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519));
    let store = store.sealed(EvidenceSeal::with_key(evidence, &origin).unwrap());
    let now = SystemTime::now();
    let roles = ["release-manager".to_owned()];
    let user = NewUser {
        name: "rita",
        password_hash: "-",
        roles: &roles,
    };
    store.open_people_directory().await.unwrap();
    store.create_user(&user, now).await.unwrap();
    record(&store, "user.imported", "rita", "release-manager").await;
    add_key(&store, "rita").await;
    (home, store)
}

async fn add_key(store: &Store, user: &str) -> String {
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let key_id = key.key_id().to_owned();
    let new = NewPersonKey {
        user,
        key_id: &key_id,
        public_key: &key.public_key().to_pem(),
        added_by: "ada",
    };
    store.add_person_key(&new, SystemTime::now()).await.unwrap();
    record(store, "key.imported", user, &key_id).await;
    key_id
}

async fn record(store: &Store, action: &str, target: &str, detail: &str) {
    let event = EvidenceEvent::AdminAction {
        by: "relo.toml".into(),
        action: action.into(),
        target: target.into(),
        detail: Some(detail.into()),
    };
    store
        .record(&EvidenceRecord::new(Scope::Control, None, event))
        .await
        .unwrap();
}

async fn raw(home: &tempfile::TempDir) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", home.path().join("relo.db").display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

fn people(store: &Store) -> People {
    let config = relo_manifest::parse_operator("relo.toml", b"[trust]\nsigners = []\n").unwrap();
    let policy = TrustPolicy::load(&config, std::path::Path::new(".")).unwrap();
    People::new(store.clone(), policy)
}

fn assert_people_tampered(result: Result<Arc<TrustPolicy>, PeopleError>, words: &str) {
    match result {
        Err(PeopleError::Tampered(found)) => {
            assert_eq!(found.code(), "people-tampered");
            assert!(
                found.to_string().contains(words),
                "`{words}` not in: {found}"
            );
        }
        other => panic!("not people-tampered: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_directory_is_used() {
    let (_home, store) = directory().await;
    let policy = people(&store).policy().await.unwrap();
    assert!(policy.roles_of("rita").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_inserted_behind_relo_s_back_is_people_tampered() {
    let (home, store) = directory().await;
    let mallory = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut db = raw(&home).await;
    // The attacker gives rita a key of their own, with no control-chain entry.
    sqlx::query(
        "INSERT INTO person_keys (key_id, user_name, public_key, added_by, added_at) \
         VALUES ($1, 'rita', $2, 'ada', '2026-12-08T00:00:00Z')",
    )
    .bind(mallory.key_id())
    .bind(mallory.public_key().to_pem())
    .execute(&mut db)
    .await
    .unwrap();
    assert_people_tampered(people(&store).policy().await, "was never added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_given_behind_relo_s_back_is_people_tampered() {
    let (home, store) = directory().await;
    let mut db = raw(&home).await;
    sqlx::query("UPDATE users SET roles = '[\"release-manager\",\"admin\"]' WHERE name = 'rita'")
        .execute(&mut db)
        .await
        .unwrap();
    assert_people_tampered(people(&store).policy().await, "roles");
}
