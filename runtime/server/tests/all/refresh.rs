//! Refresh tokens: rotation on every use, reuse of a used token revoking its whole family
//! (the newest token too), logout, expiry after 30 days by the injected clock, and tokens
//! that were never issued.

use std::time::Duration;

use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use sha2::{Digest as _, Sha256};

use crate::support::{Pair, TestServer, pair, server_tests};

/// The stored row of a refresh token.
async fn stored(server: &TestServer, refresh: &str) -> relo_store::StoredRefreshToken {
    let bytes = Base64UrlUnpadded::decode_vec(refresh).unwrap();
    let hash: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    server.store.refresh_token(&hash).await.unwrap().unwrap()
}

async fn refreshed(server: &TestServer, refresh: &str) -> Pair {
    let answer = server.refresh(refresh).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    pair(&answer)
}

async fn a_refresh_rotates_the_token(server: TestServer) {
    let first = server.login("olga").await;
    server.clock.advance(Duration::from_secs(10 * 60));
    let second = refreshed(&server, &first.refresh).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    let me = server.me(&second.access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["name"], "olga");

    let old = stored(&server, &first.refresh).await;
    let new = stored(&server, &second.refresh).await;
    assert!(old.used_at.is_some(), "the presented token is used");
    assert_eq!(old.revoked_at, None);
    assert_eq!(new.family_id, old.family_id, "same family");
    assert_eq!(new.used_at, None);

    // The new access token lives 15 minutes from the refresh, not from the login.
    server.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(server.me(&second.access).await.status, StatusCode::OK);
    server
        .me(&first.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-expired");

    let third = refreshed(&server, &second.refresh).await;
    assert_eq!(server.me(&third.access).await.status, StatusCode::OK);
}

async fn reusing_a_refresh_token_revokes_its_whole_family(server: TestServer) {
    let first = server.login("olga").await;
    let other_login = server.login("olga").await;
    let second = refreshed(&server, &first.refresh).await;
    let third = refreshed(&server, &second.refresh).await;

    // The first token again, as a thief holding a copy would present it.
    server
        .refresh(&first.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    // The newest token of the family no longer works either.
    server
        .refresh(&third.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    let family = server
        .store
        .refresh_family(&stored(&server, &third.refresh).await.family_id)
        .await
        .unwrap();
    assert_eq!(family.len(), 3);
    assert!(family.iter().all(|t| t.revoked_at.is_some()), "{family:?}");

    // Another login of the same user is a family of its own and goes on.
    let other = refreshed(&server, &other_login.refresh).await;
    assert_eq!(server.me(&other.access).await.status, StatusCode::OK);
}

async fn a_used_token_presented_right_after_its_rotation_is_a_reuse(server: TestServer) {
    let first = server.login("ivan").await;
    let second = refreshed(&server, &first.refresh).await;
    server
        .refresh(&first.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    server
        .refresh(&second.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
}

async fn logout_revokes_the_family(server: TestServer) {
    let first = server.login("olga").await;
    let second = refreshed(&server, &first.refresh).await;
    let other_login = server.login("olga").await;

    let out = server.logout(&second.refresh).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(out.body, serde_json::Value::Null);
    server
        .refresh(&second.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    assert!(stored(&server, &first.refresh).await.revoked_at.is_some());
    // Logging out twice is harmless; the other login is untouched.
    assert_eq!(
        server.logout(&second.refresh).await.status,
        StatusCode::NO_CONTENT
    );
    refreshed(&server, &other_login.refresh).await;

    // A token never issued.
    let never = Base64UrlUnpadded::encode_string(&[7u8; 32]);
    server
        .logout(&never)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    server
        .logout("not a token")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
}

async fn a_refresh_token_expires_after_30_days(server: TestServer) {
    let first = server.login("olga").await;
    let second = server.login("ivan").await;
    server
        .clock
        .advance(Duration::from_secs(30 * 24 * 3600 - 1));
    refreshed(&server, &second.refresh).await;
    server.clock.advance(Duration::from_secs(1));
    server
        .refresh(&first.refresh)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "refresh-token-expired");
    let row = stored(&server, &first.refresh).await;
    assert_eq!((row.used_at, row.revoked_at), (None, None));
}

async fn tokens_never_issued_are_refused(server: TestServer) {
    let never = Base64UrlUnpadded::encode_string(&[9u8; 32]);
    for token in [never.as_str(), "", "short", &"A".repeat(44), "!!!!"] {
        server
            .refresh(token)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    }
    // An access token is not a refresh token.
    let pair = server.login("olga").await;
    server
        .refresh(&pair.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
}

async fn a_disabled_user_cannot_refresh(server: TestServer) {
    let pair = server.login("olga").await;
    server
        .store
        .set_user_disabled("olga", true, crate::support::start_time())
        .await
        .unwrap();
    let answer = server.refresh(&pair.refresh).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
}

server_tests!(
    a_refresh_rotates_the_token,
    reusing_a_refresh_token_revokes_its_whole_family,
    a_used_token_presented_right_after_its_rotation_is_a_reuse,
    logout_revokes_the_family,
    a_refresh_token_expires_after_30_days,
    tokens_never_issued_are_refused,
    a_disabled_user_cannot_refresh,
);
