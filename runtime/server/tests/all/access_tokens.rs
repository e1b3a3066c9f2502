//! Attacks on access tokens: no token, expiry by the injected clock (no leeway), a
//! tampered payload or signature, `alg: none`, another secret, a header naming RS256,
//! ES256 or HS512 over an HMAC signature, and a token claiming a longer life. Each
//! refusal is a 401 with its code. A token crafted here with the server's secret is
//! accepted, so each refusal is the attack's doing, not the crafting's.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::StatusCode;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{SECRET, TestServer, server_tests, start_time};

fn now_seconds() -> u64 {
    start_time().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims the server would issue for olga now, living `lifetime` seconds.
fn claims(lifetime: u64) -> Value {
    json!({
        "iss": "relo",
        "sub": "olga",
        "roles": ["operator"],
        "iat": now_seconds(),
        "exp": now_seconds() + lifetime,
        "jti": "crafted-in-a-test",
    })
}

fn b64(json: &Value) -> String {
    Base64UrlUnpadded::encode_string(json.to_string().as_bytes())
}

/// `header.payload.signature` where the signature is HMAC-SHA256 with `secret` over the
/// first two parts, whatever the header says.
fn hmac_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

async fn a_token_crafted_with_the_servers_secret_is_accepted(server: TestServer) {
    let token = hmac_token(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &claims(900),
        &SECRET,
    );
    let me = server.me(&token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["name"], "olga");
}

async fn a_missing_or_non_bearer_token_is_unauthenticated(server: TestServer) {
    let none = server.get("/v1/me", None).await;
    none.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        none.headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer"
    );
    let pair = server.login("olga").await;
    let basic = server
        .send(
            axum::http::Request::get("/v1/me")
                .header("authorization", format!("Basic {}", pair.access))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    basic.assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    server
        .get("/v1/me", Some(""))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    server
        .get("/v1/me", Some("not-a-jwt"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
}

async fn an_access_token_expires_after_15_minutes_by_the_servers_clock(server: TestServer) {
    let pair = server.login("olga").await;
    server.clock.advance(Duration::from_secs(15 * 60 - 1));
    assert_eq!(server.me(&pair.access).await.status, StatusCode::OK);
    server.clock.advance(Duration::from_secs(1));
    server
        .me(&pair.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-expired");
    server.clock.advance(Duration::from_secs(24 * 3600));
    server
        .me(&pair.access)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "token-expired");
}

async fn a_tampered_payload_or_signature_is_refused(server: TestServer) {
    let pair = server.login("ivan").await;
    let parts: Vec<&str> = pair.access.split('.').collect();
    let mut forged: Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[1]).unwrap()).unwrap();
    forged["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    server
        .me(&tampered)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");

    // A later expiry on the same signature.
    let mut longer: Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[1]).unwrap()).unwrap();
    longer["exp"] = json!(longer["exp"].as_u64().unwrap() + 3600);
    server
        .me(&format!("{}.{}.{}", parts[0], b64(&longer), parts[2]))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");

    // One signature character changed.
    let mut signature = parts[2].to_owned();
    let last = signature.pop().unwrap();
    signature.push(if last == 'A' { 'B' } else { 'A' });
    server
        .me(&format!("{}.{}.{signature}", parts[0], parts[1]))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    // No signature at all.
    server
        .me(&format!("{}.{}.", parts[0], parts[1]))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
}

async fn an_alg_none_token_is_refused(server: TestServer) {
    let pair = server.login("olga").await;
    let signature = pair.access.split('.').nth(2).unwrap();
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({ "alg": alg, "typ": "JWT" }));
        let payload = b64(&claims(900));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
            format!("{header}.{payload}.{signature}"),
        ] {
            server
                .me(&token)
                .await
                .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
        }
    }
}

async fn a_token_signed_with_another_secret_is_refused(server: TestServer) {
    let other = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(900),
        &EncodingKey::from_secret(b"another secret, of another relo!"),
    )
    .unwrap();
    server
        .me(&other)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
}

async fn a_header_naming_another_algorithm_is_refused(server: TestServer) {
    // The signature is a correct HMAC-SHA256 with the server's secret; only the header's
    // `alg` differs. The validation is pinned to HS256, so each is refused.
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "HS384", "HS512"] {
        let token = hmac_token(&json!({ "alg": alg, "typ": "JWT" }), &claims(900), &SECRET);
        server
            .me(&token)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    }
    // HS512 signed as HS512 with the right secret: still not HS256.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(900),
        &EncodingKey::from_secret(&SECRET),
    )
    .unwrap();
    server
        .me(&hs512)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
}

async fn a_token_claiming_more_than_15_minutes_is_refused(server: TestServer) {
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let long = hmac_token(&header, &claims(901), &SECRET);
    server
        .me(&long)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    let mut backwards = claims(900);
    backwards["exp"] = json!(now_seconds() - 1);
    backwards["iat"] = json!(now_seconds());
    server
        .me(&hmac_token(&header, &backwards, &SECRET))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    // Required claims: a token without `exp`, `sub` or `iss`, or with an unknown role.
    for (claim, value) in [
        ("exp", Value::Null),
        ("sub", Value::Null),
        ("iss", Value::Null),
        ("iss", json!("someone-else")),
        ("roles", json!(["root"])),
    ] {
        let mut claims = claims(900);
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(claim);
        } else {
            claims[claim] = value;
        }
        server
            .me(&hmac_token(&header, &claims, &SECRET))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid-token");
    }
}

server_tests!(
    a_token_crafted_with_the_servers_secret_is_accepted,
    a_missing_or_non_bearer_token_is_unauthenticated,
    an_access_token_expires_after_15_minutes_by_the_servers_clock,
    a_tampered_payload_or_signature_is_refused,
    an_alg_none_token_is_refused,
    a_token_signed_with_another_secret_is_refused,
    a_header_naming_another_algorithm_is_refused,
    a_token_claiming_more_than_15_minutes_is_refused,
);
