//! Logging in: a pair for the right password, one answer for a wrong password, an unknown
//! user and a disabled user; the access token's claims; the refresh token stored only
//! as its sha256.

use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{PASSWORD, TestServer, server_tests, start_time};

/// The JSON of a JWT part.
fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

async fn login_answers_a_pair_whose_access_token_works(server: TestServer) {
    let pair = server.login("olga").await;
    let me = server.me(&pair.access).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(
        me.body,
        json!({ "name": "olga", "roles": ["operator", "auditor"] })
    );

    let header = jwt_part(&pair.access, 0);
    assert_eq!(header["alg"], "HS256");
    let claims = jwt_part(&pair.access, 1);
    assert_eq!(claims["sub"], "olga");
    assert_eq!(claims["iss"], "relo");
    assert_eq!(claims["roles"], json!(["operator", "auditor"]));
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(
        iat,
        start_time()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    assert_eq!(claims["exp"].as_u64().unwrap() - iat, 900);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // Another login: another token id, another refresh token family.
    let again = server.login("olga").await;
    assert_ne!(jwt_part(&again.access, 1)["jti"], claims["jti"]);
    assert_ne!(again.refresh, pair.refresh);
}

async fn the_refresh_token_is_stored_only_as_its_sha256(server: TestServer) {
    let pair = server.login("ivan").await;
    let bytes = Base64UrlUnpadded::decode_vec(&pair.refresh).unwrap();
    assert_eq!(bytes.len(), 32, "32 random bytes");
    let stored = server
        .store
        .refresh_token(&hex_sha256(&bytes))
        .await
        .unwrap()
        .expect("stored by its sha256");
    assert_eq!(stored.user, "ivan");
    assert_eq!(stored.issued_at, relo_store::rfc3339_utc(start_time()));
    assert_eq!(
        stored.expires_at,
        relo_store::rfc3339_utc(start_time() + relo_server::REFRESH_TOKEN_LIFETIME)
    );
    assert_eq!(
        server.store.refresh_token(&pair.refresh).await.unwrap(),
        None
    );
    let family = server
        .store
        .refresh_family(&stored.family_id)
        .await
        .unwrap();
    assert!(family.iter().all(|t| t.token_hash != pair.refresh));
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(server: TestServer) {
    let wrong = server.try_login("olga", "not the password at all").await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(wrong.field(), None);
    assert!(wrong.headers.contains_key("www-authenticate"));
    let unknown = server.try_login("mallory", PASSWORD).await;
    unknown.assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(
        wrong.body, unknown.body,
        "the answers do not tell which names exist"
    );
    let empty = server.try_login("olga", "").await;
    assert_eq!(empty.body, wrong.body);
}

async fn a_disabled_user_cannot_log_in(server: TestServer) {
    let wrong = server.try_login("olga", "not the password at all").await;
    assert!(
        server
            .store
            .set_user_disabled("olga", true, start_time())
            .await
            .unwrap()
    );
    let disabled = server.try_login("olga", PASSWORD).await;
    disabled.assert_error(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(disabled.body, wrong.body);
    server
        .store
        .set_user_disabled("olga", false, start_time())
        .await
        .unwrap();
    server.login("olga").await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

server_tests!(
    login_answers_a_pair_whose_access_token_works,
    the_refresh_token_is_stored_only_as_its_sha256,
    a_wrong_password_and_an_unknown_user_get_the_same_answer,
    a_disabled_user_cannot_log_in,
);
