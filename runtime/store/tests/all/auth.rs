//! Users and refresh tokens on both backends: users round-trip and are unique by name;
//! rotation marks the presented token used and adds its successor to the family; a used
//! or revoked token revokes its whole family and stores nothing new; expired and unknown
//! tokens change nothing; concurrent rotations of one token have exactly one winner;
//! disabling a user revokes its families.

#![allow(
    clippy::unwrap_used,
    reason = "the backend tests are plain async fns run by a macro; a failure must fail loudly"
)]

use std::time::{Duration, SystemTime};

use relo_store::{NewRefreshToken, NewUser, Rotation, Store, StoreError};

use crate::support::{TestDb, backend_tests};

const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// A distinct 64-hex-digit "hash" per label.
fn token_hash(label: u8) -> String {
    format!("{label:02x}").repeat(32)
}

fn token(hash: &str, now: SystemTime) -> NewRefreshToken<'_> {
    NewRefreshToken {
        token_hash: hash,
        issued_at: now,
        expires_at: now + LIFETIME,
    }
}

async fn add_user(store: &Store, name: &str, now: SystemTime) {
    store
        .create_user(
            &NewUser {
                name,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                roles: &["operator".to_owned(), "auditor".to_owned()],
            },
            now,
        )
        .await
        .unwrap();
}

async fn users_round_trip_and_names_are_unique(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    assert_eq!(store.user("olga").await.unwrap(), None);
    add_user(&store, "olga", now).await;

    let olga = store.user("olga").await.unwrap().expect("stored");
    assert_eq!(olga.name, "olga");
    assert_eq!(olga.roles, ["operator", "auditor"]);
    assert!(olga.password_hash.starts_with("$argon2id$"));
    assert_eq!(olga.created_at, relo_store::rfc3339_utc(now));
    assert!(!olga.disabled);

    let err = store
        .create_user(
            &NewUser {
                name: "olga",
                password_hash: "other",
                roles: &[],
            },
            now,
        )
        .await
        .expect_err("a second olga");
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
    assert_eq!(
        store.user("olga").await.unwrap().unwrap().password_hash,
        olga.password_hash,
        "the first user is untouched"
    );

    assert!(store.set_user_disabled("olga", true, now).await.unwrap());
    assert!(store.user("olga").await.unwrap().unwrap().disabled);
    assert!(store.set_user_disabled("olga", false, now).await.unwrap());
    assert!(!store.user("olga").await.unwrap().unwrap().disabled);
    assert!(!store.set_user_disabled("nobody", true, now).await.unwrap());
}

async fn rotation_uses_the_token_and_extends_its_family(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    add_user(&store, "olga", now).await;
    let (first, second, third) = (token_hash(1), token_hash(2), token_hash(3));
    store
        .add_refresh_token("olga", "family-1", &token(&first, now))
        .await
        .unwrap();

    let later = now + Duration::from_secs(60);
    let rotated = store
        .rotate_refresh_token(&first, &token(&second, later), later)
        .await
        .unwrap();
    assert_eq!(
        rotated,
        Rotation::Rotated {
            user: "olga".into(),
            family_id: "family-1".into()
        }
    );
    let used = store.refresh_token(&first).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(relo_store::rfc3339_utc(later)));
    assert_eq!(used.revoked_at, None);
    let next = store.refresh_token(&second).await.unwrap().unwrap();
    assert_eq!(next.family_id, "family-1");
    assert_eq!(next.user, "olga");
    assert_eq!(next.used_at, None);
    assert_eq!(next.expires_at, relo_store::rfc3339_utc(later + LIFETIME));

    let again = store
        .rotate_refresh_token(&second, &token(&third, later), later)
        .await
        .unwrap();
    assert!(matches!(again, Rotation::Rotated { .. }), "{again:?}");
    let family = store.refresh_family("family-1").await.unwrap();
    assert_eq!(family.len(), 3);
    assert!(family.iter().all(|t| t.revoked_at.is_none()));
}

async fn a_reused_token_revokes_its_whole_family(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    add_user(&store, "olga", now).await;
    let (first, second, third, fourth) =
        (token_hash(1), token_hash(2), token_hash(3), token_hash(4));
    store
        .add_refresh_token("olga", "family-1", &token(&first, now))
        .await
        .unwrap();
    // Another login of the same user: a family of its own.
    let other = token_hash(9);
    store
        .add_refresh_token("olga", "family-2", &token(&other, now))
        .await
        .unwrap();
    store
        .rotate_refresh_token(&first, &token(&second, now), now)
        .await
        .unwrap();
    store
        .rotate_refresh_token(&second, &token(&third, now), now)
        .await
        .unwrap();

    // The first token again: a thief or a replay.
    let reused = store
        .rotate_refresh_token(&first, &token(&fourth, now), now)
        .await
        .unwrap();
    assert_eq!(
        reused,
        Rotation::Reused {
            user: "olga".into(),
            family_id: "family-1".into()
        }
    );
    assert_eq!(
        store.refresh_token(&fourth).await.unwrap(),
        None,
        "no successor"
    );
    let family = store.refresh_family("family-1").await.unwrap();
    assert_eq!(family.len(), 3);
    assert!(family.iter().all(|t| t.revoked_at.is_some()), "{family:?}");

    // The newest token of the family is refused too, as a reuse.
    let newest = store
        .rotate_refresh_token(&third, &token(&fourth, now), now)
        .await
        .unwrap();
    assert!(matches!(newest, Rotation::Reused { .. }), "{newest:?}");
    assert_eq!(store.refresh_token(&fourth).await.unwrap(), None);

    // The other family is untouched.
    let untouched = store.refresh_token(&other).await.unwrap().unwrap();
    assert_eq!(untouched.revoked_at, None);
    assert!(matches!(
        store
            .rotate_refresh_token(&other, &token(&fourth, now), now)
            .await
            .unwrap(),
        Rotation::Rotated { .. }
    ));
}

async fn expired_and_unknown_tokens_change_nothing(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    add_user(&store, "olga", now).await;
    let (first, second) = (token_hash(1), token_hash(2));
    store
        .add_refresh_token("olga", "family-1", &token(&first, now))
        .await
        .unwrap();

    let at_expiry = now + LIFETIME;
    assert_eq!(
        store
            .rotate_refresh_token(&first, &token(&second, at_expiry), at_expiry)
            .await
            .unwrap(),
        Rotation::Expired
    );
    let just_before = at_expiry - Duration::from_millis(1);
    assert_eq!(
        store
            .rotate_refresh_token(&token_hash(7), &token(&second, just_before), just_before)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    let stored = store.refresh_token(&first).await.unwrap().unwrap();
    assert_eq!((stored.used_at, stored.revoked_at), (None, None));
    assert_eq!(store.refresh_token(&second).await.unwrap(), None);

    // Still live a moment before its expiry.
    assert!(matches!(
        store
            .rotate_refresh_token(&first, &token(&second, just_before), just_before)
            .await
            .unwrap(),
        Rotation::Rotated { .. }
    ));
}

async fn concurrent_rotations_of_one_token_have_one_winner(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    add_user(&store, "olga", now).await;
    let first = token_hash(1);
    store
        .add_refresh_token("olga", "family-1", &token(&first, now))
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for label in 10..18u8 {
        let store = store.clone();
        let first = first.clone();
        tasks.push(tokio::spawn(async move {
            let next = token_hash(label);
            store
                .rotate_refresh_token(&first, &token(&next, now), now)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, Rotation::Rotated { .. }))
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    // The losers were reuses, so the family, the winner's successor included, is revoked.
    let family = store.refresh_family("family-1").await.unwrap();
    assert_eq!(family.len(), 2);
    assert!(family.iter().all(|t| t.revoked_at.is_some()), "{family:?}");
}

async fn logout_and_disabling_revoke_families(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    add_user(&store, "olga", now).await;
    add_user(&store, "ivan", now).await;
    store
        .add_refresh_token("olga", "family-1", &token(&token_hash(1), now))
        .await
        .unwrap();
    store
        .add_refresh_token("olga", "family-2", &token(&token_hash(2), now))
        .await
        .unwrap();
    store
        .add_refresh_token("ivan", "family-3", &token(&token_hash(3), now))
        .await
        .unwrap();

    assert_eq!(
        store.revoke_refresh_family("family-1", now).await.unwrap(),
        1
    );
    assert_eq!(
        store.revoke_refresh_family("family-1", now).await.unwrap(),
        0,
        "revoking twice changes nothing"
    );
    assert!(
        store
            .refresh_token(&token_hash(2))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );

    store.set_user_disabled("olga", true, now).await.unwrap();
    assert!(
        store
            .refresh_token(&token_hash(2))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .refresh_token(&token_hash(3))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "ivan's family is untouched"
    );
}

async fn a_refresh_token_names_a_stored_user(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    let err = store
        .add_refresh_token("nobody", "family-1", &token(&token_hash(1), now))
        .await
        .expect_err("a token of an unknown user");
    assert!(
        err.to_string().to_lowercase().contains("foreign key"),
        "{err}"
    );
}

backend_tests!(
    users_round_trip_and_names_are_unique,
    rotation_uses_the_token_and_extends_its_family,
    a_reused_token_revokes_its_whole_family,
    expired_and_unknown_tokens_change_nothing,
    concurrent_rotations_of_one_token_have_one_winner,
    logout_and_disabling_revoke_families,
    a_refresh_token_names_a_stored_user,
);
