//! People's keys and the people directory on both backends: there is no directory until
//! it is opened; adding and revoking keys, and changing a user's roles or state, raise
//! its revision in the same transaction; the directory holds enabled users with their
//! unrevoked keys; a key id is one person's only, and belongs to a stored user; revoked
//! keys stay listed.

#![allow(
    clippy::unwrap_used,
    reason = "the backend tests are plain async fns run by a macro; a failure must fail loudly"
)]

use std::time::SystemTime;

use relo_store::{NewPersonKey, NewUser, Store, StoreError};

use crate::support::{TestDb, backend_tests};

async fn user(store: &Store, name: &str, roles: &[&str]) {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    store
        .create_user(
            &NewUser {
                name,
                password_hash: "",
                roles: &roles,
            },
            SystemTime::now(),
        )
        .await
        .unwrap();
}

async fn add_key(store: &Store, user: &str, key_id: &str) -> Result<(), StoreError> {
    store
        .add_person_key(
            &NewPersonKey {
                user,
                key_id,
                public_key: &format!("PEM of {key_id}"),
                added_by: "ada",
            },
            SystemTime::now(),
        )
        .await
}

/// Asserts `now` is above `revision`, and moves `revision` to it.
fn raised(revision: &mut i64, now: Option<i64>, what: &str) {
    let now = now.unwrap();
    assert!(now > *revision, "{what} raises the revision");
    *revision = now;
}

async fn every_change_to_people_raises_the_revision(db: TestDb) {
    let store = db.store().await;
    user(&store, "olga", &["operator"]).await;
    add_key(&store, "olga", "k-olga").await.unwrap();
    // Before a server opens the directory, people come from relo.toml.
    assert_eq!(store.people_revision().await.unwrap(), None);
    assert_eq!(store.people_directory().await.unwrap(), None);
    assert!(store.open_people_directory().await.unwrap());
    assert!(!store.open_people_directory().await.unwrap(), "opened once");
    let mut revision = store.people_revision().await.unwrap().unwrap();

    user(&store, "rita", &["release-manager"]).await;
    raised(
        &mut revision,
        store.people_revision().await.unwrap(),
        "a new user",
    );
    add_key(&store, "rita", "k-rita").await.unwrap();
    raised(
        &mut revision,
        store.people_revision().await.unwrap(),
        "a new key",
    );
    assert!(
        store
            .set_user_roles("rita", &["auditor".to_owned()])
            .await
            .unwrap()
    );
    raised(
        &mut revision,
        store.people_revision().await.unwrap(),
        "new roles",
    );
    assert!(
        store
            .revoke_person_key("rita", "k-rita", "ada", SystemTime::now())
            .await
            .unwrap()
    );
    raised(
        &mut revision,
        store.people_revision().await.unwrap(),
        "a revoked key",
    );
    assert!(
        !store
            .revoke_person_key("rita", "k-rita", "ada", SystemTime::now())
            .await
            .unwrap(),
        "a key is revoked once"
    );
    assert!(
        !store
            .revoke_person_key("olga", "k-rita", "ada", SystemTime::now())
            .await
            .unwrap(),
        "only the holder's key is revoked"
    );
    assert_eq!(store.people_revision().await.unwrap(), Some(revision));
    user(&store, "ivan", &["release-manager"]).await;
    add_key(&store, "ivan", "k-ivan").await.unwrap();
    assert!(
        store
            .set_user_disabled("ivan", true, SystemTime::now())
            .await
            .unwrap()
    );
    let before = revision;
    raised(
        &mut revision,
        store.people_revision().await.unwrap(),
        "disabling",
    );
    assert!(revision >= before + 3);

    let directory = store.people_directory().await.unwrap().unwrap();
    assert_eq!(directory.revision, revision);
    let names: Vec<&str> = directory.people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["olga", "rita"], "a disabled user is nobody");
    let olga = &directory.people[0];
    assert_eq!(olga.roles, ["operator"]);
    assert_eq!(olga.keys.len(), 1);
    assert_eq!(olga.keys[0].key_id, "k-olga");
    assert_eq!(olga.keys[0].public_key, "PEM of k-olga");
    let rita = &directory.people[1];
    assert_eq!(rita.roles, ["auditor"]);
    assert!(
        rita.keys.is_empty(),
        "a revoked key is not in the directory"
    );

    let listed = store.person_keys("rita").await.unwrap();
    assert_eq!(listed.len(), 1, "a revoked key stays listed");
    assert_eq!(listed[0].revoked.as_ref().unwrap().0, "ada");
}

async fn a_key_is_one_stored_persons(db: TestDb) {
    let store = db.store().await;
    user(&store, "olga", &["operator"]).await;
    user(&store, "oscar", &["operator"]).await;
    add_key(&store, "olga", "k-1").await.unwrap();
    for holder in ["olga", "oscar"] {
        let err = add_key(&store, holder, "k-1").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Duplicate(m) if m.contains("olga")),
            "{err}"
        );
    }
    let err = add_key(&store, "nobody", "k-2").await.unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownUser(ref n) if n == "nobody"),
        "{err}"
    );
    // Revoked, a key id is still taken: it cannot be handed to someone else.
    store
        .revoke_person_key("olga", "k-1", "ada", SystemTime::now())
        .await
        .unwrap();
    assert!(matches!(
        add_key(&store, "oscar", "k-1").await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(store.person_keys("oscar").await.unwrap().is_empty());
}

backend_tests!(
    every_change_to_people_raises_the_revision,
    a_key_is_one_stored_persons,
);
