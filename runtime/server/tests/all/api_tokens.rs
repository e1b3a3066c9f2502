//! API tokens: shown once, stored as sha256, acting with their scopes intersected with
//! their user's current permissions; expired, revoked and disabled users' tokens are
//! refused with 401; a token never makes tokens.

use std::time::Duration;

use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{TestServer, server_tests};

async fn make(
    server: &TestServer,
    bearer: &str,
    scopes: Value,
    days: u32,
) -> crate::support::Answer {
    server
        .call(
            "POST",
            "/v1/tokens",
            Some(bearer),
            Some(json!({"name": "ci", "scopes": scopes, "expires_in_days": days})),
            None,
        )
        .await
}

fn secret(answer: &crate::support::Answer) -> String {
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.body["token"].as_str().unwrap().to_owned()
}

async fn a_token_can_do_no_more_than_its_scopes_and_its_user(server: TestServer) {
    let olga = server.login("olga").await.access;
    let made = make(&server, &olga, json!(["users.read", "audit.read"]), 30).await;
    let token = secret(&made);
    let text = token.strip_prefix("relo_at_").unwrap();
    assert_eq!(text.len(), 43);
    let mut bytes = [0u8; 32];
    Base64UrlUnpadded::decode(text, &mut bytes).unwrap();
    let stored = server
        .store
        .api_token_by_hash(&hex::encode(Sha256::digest(bytes)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user, "olga");
    assert_eq!(stored.scopes, ["users.read", "audit.read"]);

    assert_eq!(
        server.get("/v1/users", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get("/v1/audit", Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(server.me(&token).await.body["name"], "olga");
    // Not in its scopes, though olga holds it.
    server
        .get("/v1/tokens", Some(&token))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A scope olga does not hold is refused at creation.
    make(&server, &olga, json!(["users.manage"]), 30)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let bad = make(&server, &olga, json!(["audit.read", "root"]), 30).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(bad.field(), Some("scopes[1]"));
    for days in [0, 91] {
        let bad = make(&server, &olga, json!(["audit.read"]), days).await;
        bad.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
        assert_eq!(bad.field(), Some("expires_in_days"));
    }
    make(&server, &olga, json!([]), 1)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid-field");

    // olga loses the auditor role: the token loses users.read, keeps audit.read.
    let ada = server.login("ada").await.access;
    let demoted = server
        .call(
            "PUT",
            "/v1/users/olga/roles",
            Some(&ada),
            Some(json!({"roles": ["operator"]})),
            None,
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK);
    server
        .get("/v1/users", Some(&token))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        server.get("/v1/audit", Some(&token)).await.status,
        StatusCode::OK
    );

    // The listing never shows a secret.
    let list = server.get("/v1/tokens", Some(&olga)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(text));
    assert!(list.body[0].get("token").is_none());
    server.assert_audit_sound(&[text]).await;
}

async fn expired_revoked_and_disabled_users_tokens_are_refused(server: TestServer) {
    let olga = server.login("olga").await.access;
    let short = secret(&make(&server, &olga, json!(["audit.read"]), 1).await);
    let revoked = make(&server, &olga, json!(["audit.read"]), 90).await;
    let revoked_id = revoked.body["id"].as_str().unwrap().to_owned();
    let revoked = secret(&revoked);
    let kept = secret(&make(&server, &olga, json!(["audit.read"]), 90).await);

    // Only olga can revoke olga's token.
    let ivan = server.login("ivan").await.access;
    let path = format!("/v1/tokens/{revoked_id}");
    server
        .call("DELETE", &path, Some(&ivan), None, None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "token-not-found");
    let answer = server.call("DELETE", &path, Some(&olga), None, None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    server
        .get("/v1/audit", Some(&revoked))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-revoked");

    server.clock.advance(Duration::from_secs(86_400 - 1));
    assert_eq!(
        server.get("/v1/audit", Some(&short)).await.status,
        StatusCode::OK
    );
    server.clock.advance(Duration::from_secs(1));
    server
        .get("/v1/audit", Some(&short))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-expired");
    assert_eq!(
        server.get("/v1/audit", Some(&kept)).await.status,
        StatusCode::OK
    );

    // A forged token of the right form, and a malformed one.
    let forged = format!("relo_at_{}", "A".repeat(43));
    server
        .get("/v1/audit", Some(&forged))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    server
        .get("/v1/audit", Some("relo_at_short"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");

    let ada = server.login("ada").await.access;
    let answer = server
        .call("POST", "/v1/users/olga/disable", Some(&ada), None, None)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    server
        .get("/v1/audit", Some(&kept))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-revoked");
    let tokens = server.store.api_tokens_of("olga").await.unwrap();
    assert!(tokens.iter().all(|t| t.revoked_at.is_some()));
    // Re-enabling does not bring the tokens back.
    server
        .store
        .set_user_disabled("olga", false, relo_server::Clock::now(&*server.clock))
        .await
        .unwrap();
    server
        .get("/v1/audit", Some(&kept))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-revoked");

    let refusals = server.audit_bodies("auth.refused").await;
    let codes: Vec<_> = refusals
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    for code in ["token-revoked", "token-expired", "invalid-token"] {
        assert!(codes.contains(&code), "{codes:?}");
    }
    assert!(
        refusals
            .iter()
            .any(|b| b["code"] == "token-expired" && b["who"] == "olga")
    );
    // Making and revoking tokens is in the control chain, by token id (never the token).
    let actions = server.audit_bodies("admin.action").await;
    assert!(actions.iter().any(|b| b["action"] == "token.created"
        && b["by"] == "olga"
        && b["detail"] == "audit.read"));
    assert!(actions.iter().any(|b| b["action"] == "token.revoked"
        && b["by"] == "olga"
        && b["target"] == revoked_id.as_str()));
    server
        .assert_audit_sound(&[&short[8..], &kept[8..], &revoked[8..]])
        .await;
}

/// A token holding `tokens.manage-own` cannot make its own successor: otherwise one
/// stolen token would renew itself past every expiry and revocation of its ancestors.
async fn an_api_token_cannot_make_tokens(server: TestServer) {
    let olga = server.login("olga").await.access;
    let made = make(
        &server,
        &olga,
        json!(["tokens.manage-own", "audit.read"]),
        1,
    )
    .await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    let token = secret(&made);
    let successor = make(&server, &token, json!(["audit.read"]), 90).await;
    successor.assert_error(StatusCode::FORBIDDEN, "session-required");
    assert!(
        successor.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("log in")
    );
    // The token keeps its other uses of the permission.
    let listed = server.get("/v1/tokens", Some(&token)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(server.store.api_tokens_of("olga").await.unwrap().len(), 1);

    let refused: Vec<_> = server
        .audit_bodies("auth.refused")
        .await
        .into_iter()
        .filter(|b| b["code"] == "session-required")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["who"], "olga");
    assert_eq!(refused[0]["route"], "POST /v1/tokens");
    assert_eq!(refused[0]["detail"], format!("api token {id}"));
    let created = server.audit_bodies("admin.action").await;
    assert_eq!(
        created
            .iter()
            .filter(|b| b["action"] == "token.created")
            .count(),
        1
    );
    server.assert_audit_sound(&[&token[8..]]).await;
}

server_tests!(
    a_token_can_do_no_more_than_its_scopes_and_its_user,
    expired_revoked_and_disabled_users_tokens_are_refused,
    an_api_token_cannot_make_tokens
);
